/**
 * `/out` for an instance in a pool runner's worker thread (a job with `wasm.outputs`): the preopen of
 * wasm-outputs.ts with its writes made in place (writeOutputsInPlace: without it a large write crashes the runner).
 *
 * Open files: an OS file descriptor belongs to the runner process, and a worker thread outlives its instances, so
 * what an instance left open in /out is closed when it ends (release). A thread that is terminated (time limit,
 * cancel) or dies needs nothing here: Node closes the fds a Worker opened through `fs` when it exits (the Worker
 * option trackUnmanagedFds, on by default; wasm-pool-outputs.test.ts checks it).
 */
import type { Fd, WASI } from '@bjorn3/browser_wasi_shim';
import { OutputsFileFd, type OutputsUsage, outputsPreopen, writeOutputsInPlace } from './wasm-outputs.ts';
import type { InstanceOutputsSpec } from './wasm-pool-runner.protocol.ts';

/** One instance's /out, seen from its worker thread. */
export interface InstanceOutputs {
  /** The preopen: fd 3, right after stdio. */
  readonly preopen: Fd;
  usage(): OutputsUsage;
  /** Makes the instance's WASI write /out in place; call before its imports are taken. */
  attach(wasi: WASI): void;
  /** Closes the files the instance left open in /out: it has ended. */
  release(): void;
}

export function instanceOutputs(spec: InstanceOutputsSpec): InstanceOutputs {
  const { preopen, usage } = outputsPreopen(spec.dir, spec.capBytes);
  let attached: WASI | undefined;
  return {
    preopen,
    usage,
    attach(w) {
      attached = w;
      writeOutputsInPlace(w);
    },
    release() {
      for (const fd of attached?.fds ?? []) if (fd instanceof OutputsFileFd) fd.fd_close(); // EBADF when closed already
    },
  };
}
