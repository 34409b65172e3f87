/**
 * `/out` for an instance in a pool runner's worker thread (a job with `wasm.outputs`): the preopen of
 * wasm-outputs.ts with its writes made in place (writeOutputsInPlace: without it a large write crashes the runner),
 * and the OS files it holds open noted in a table the runner's main thread shares (OpenFilesTable).
 *
 * Why the table: an OS file descriptor belongs to the runner process, not to the thread that opened it, and a
 * runner outlives its instances. An instance that ends closes what it left open (release); one whose thread is
 * terminated (time limit, cancel) or dies cannot, so the main thread closes what the table lists once the thread
 * is gone. An fd leaves the table before it is closed, so a descriptor is never closed twice (at worst, in that
 * instant, one is left open).
 */
import { type Fd, type WASI, wasi as wasiDefs } from '@bjorn3/browser_wasi_shim';
import { closeSync } from 'node:fs';
import { MAX_OPEN_FILES, OutputsFileFd, type OutputsUsage, outputsPreopen, writeOutputsInPlace } from './wasm-outputs.ts';
import type { InstanceOutputsSpec } from './wasm-pool-runner.protocol.ts';

/** The shared memory of one thread's OpenFilesTable: a slot per file /out may hold open. */
export function createOpenFilesTable(): SharedArrayBuffer {
  return new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT * MAX_OPEN_FILES);
}

/** The OS fds one worker thread's instance holds open in /out; a slot holds fd + 1 (0: free). */
export class OpenFilesTable {
  readonly #slots: Int32Array;

  constructor(buffer: SharedArrayBuffer) {
    this.#slots = new Int32Array(buffer);
  }

  /** Notes an open fd; false when every slot is taken (cannot happen while /out holds at most MAX_OPEN_FILES). */
  add(fd: number): boolean {
    for (let i = 0; i < this.#slots.length; i += 1) {
      if (Atomics.compareExchange(this.#slots, i, 0, fd + 1) === 0) return true;
    }
    return false;
  }

  remove(fd: number): void {
    for (let i = 0; i < this.#slots.length; i += 1) if (Atomics.compareExchange(this.#slots, i, fd + 1, 0) === fd + 1) return;
  }

  /** Forgets every fd, closing none (their instance closed them). */
  clear(): void {
    this.#slots.fill(0);
  }

  /** Closes every fd still listed and forgets them: only once the thread that opened them is gone. */
  closeAll(): number {
    let closed = 0;
    for (let i = 0; i < this.#slots.length; i += 1) {
      const v = Atomics.exchange(this.#slots, i, 0);
      if (v === 0) continue;
      try {
        closeSync(v - 1);
        closed += 1;
      } catch {
        // already closed: nothing held
      }
    }
    return closed;
  }
}

/** One instance's /out, seen from its worker thread. */
export interface InstanceOutputs {
  /** The preopen: fd 3, right after stdio. */
  readonly preopen: Fd;
  usage(): OutputsUsage;
  /** Makes the instance's WASI write /out in place and note the files it opens; call before its imports are taken. */
  attach(wasi: WASI): void;
  /** Closes what the instance left open in /out (it has ended) and clears the table. */
  release(): void;
}

type Imports = Record<string, (...args: never[]) => number>;

export function instanceOutputs(spec: InstanceOutputsSpec, table: OpenFilesTable): InstanceOutputs {
  const { preopen, usage } = outputsPreopen(spec.dir, spec.capBytes);
  let attached: WASI | undefined;
  return {
    preopen,
    usage,
    attach(w) {
      attached = w;
      writeOutputsInPlace(w);
      track(w, table);
    },
    release() {
      for (const fd of attached?.fds ?? []) if (fd instanceof OutputsFileFd) fd.fd_close(); // EBADF when closed already
      table.clear();
    },
  };
}

/** Notes the OS fd of every /out file the module opens, and lets it go before the module closes it. */
function track(w: WASI, table: OpenFilesTable): void {
  const imports = w.wasiImport as Imports;
  const { path_open: open, fd_close: close, fd_renumber: renumber } = imports as Required<Pick<Imports, 'path_open' | 'fd_close' | 'fd_renumber'>>;
  const fileAt = (fd: number) => {
    const f = w.fds[fd];
    return f instanceof OutputsFileFd ? f : undefined;
  };
  imports.path_open = ((...args: unknown[]) => {
    const ret = open(...(args as never[]));
    if (ret === wasiDefs.ERRNO_SUCCESS) {
      const opened = new DataView(w.inst.exports.memory.buffer).getUint32(args[8] as number, true);
      const file = fileAt(opened);
      if (file) table.add(file.fd);
    }
    return ret;
  }) as never;
  imports.fd_close = ((fd: number) => {
    const file = fileAt(fd);
    if (file) table.remove(file.fd);
    return close(...([fd] as never[]));
  }) as never;
  // renumber closes `to` first
  imports.fd_renumber = ((fd: number, to: number) => {
    const file = w.fds[fd] !== undefined ? fileAt(to) : undefined;
    if (file) table.remove(file.fd);
    return renumber(...([fd, to] as never[]));
  }) as never;
}
