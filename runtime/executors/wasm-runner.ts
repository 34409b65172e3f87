/**
 * The child process WasiExecutor starts for one WASM job (run as compiled JS: `node wasm-runner.js`). It reads the
 * job from stdin (wasm-runner.protocol.ts), runs the module's `_start` under @bjorn3/browser_wasi_shim with only
 * the given argv and env, no preopened directories (so no file system) but `/out` for a job with outputs (a
 * directory on disk, bounded: wasm-outputs.ts), and no sockets, writes the module's fd 1
 * and 2 to its own stdout and stderr, and reports how the module ended as one JSON line on fd 3.
 *
 * Why the shim and not node:wasi: node:wasi (Node 20) keeps a stale pointer to the module's memory after
 * memory.grow, so the next WASI call segfaults (nodejs/node#51303; exit 139 measured here). The shim reads the
 * memory afresh on every call. Memory is capped by the executor's V8 flags and RLIMIT_AS, not here.
 */
import { readSync, writeFileSync, writeSync } from 'node:fs';
import { ConsoleStdout, type Fd, WASI } from '@bjorn3/browser_wasi_shim';

import { decodeRunnerInput, type RunnerJob, type RunnerOutputs, type RunnerResult } from './wasm-runner.protocol.ts';
import { outputsPreopen, writeOutputsInPlace } from './wasm-outputs.ts';
import { EmptyStdin, fixArgsSizes } from './wasi-shim-fixes.ts';

/** The part of the WebAssembly JS API used here (the project's lib has no DOM types, where it is declared). */
interface WasmModuleRef {
  readonly __brand: 'WebAssembly.Module';
}
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmInstance {
  readonly exports: Record<string, unknown>;
}
interface WasmApi {
  compile(bytes: Uint8Array): Promise<WasmModuleRef>;
  instantiate(module: WasmModuleRef, imports: Record<string, Record<string, unknown>>): Promise<WasmInstance>;
  Module: {
    imports(module: WasmModuleRef): { module: string; name: string; kind: string }[];
    exports(module: WasmModuleRef): { name: string; kind: string }[];
  };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

const CONTROL_FD = 3;
const WASI_MODULE = 'wasi_snapshot_preview1';
const pause = new Int32Array(new SharedArrayBuffer(4));

/** Retries EAGAIN: the pipes may be non-blocking, and the job's output must not be lost or reordered. */

function retrying<T>(op: () => T): T {
  for (;;) {
    try {
      return op();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

function readStdin(): Buffer {
  const chunks: Buffer[] = [];
  const chunk = Buffer.alloc(1 << 20);
  for (;;) {
    const n = retrying(() => readSync(0, chunk));
    if (n === 0) return Buffer.concat(chunks);
    chunks.push(Buffer.from(chunk.subarray(0, n)));
  }
}

function writeAll(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.byteLength) off += retrying(() => writeSync(fd, data, off));
}

function report(result: RunnerResult): void {
  writeAll(CONTROL_FD, Buffer.from(`${JSON.stringify(result)}\n`));
}


function refusal(err: unknown): RunnerResult {
  const e = err as Error;
  if (e?.name === 'CompileError') return { type: 'refused', cause: 'compile', message: `the module is not valid WebAssembly: ${e.message}` };
  if (e?.name === 'LinkError') return { type: 'refused', cause: 'link', message: `the module cannot be linked: ${e.message}` };
  if (e?.name === 'RangeError') return { type: 'refused', cause: 'memory', message: `the module's initial memory is over the job's memory limit: ${e.message}` };
  return { type: 'refused', cause: 'compile', message: `the module could not be loaded: ${e?.message ?? String(err)}` };
}

interface Ready {
  readonly wasi: WASI;
  readonly instance: WasmInstance;
  readonly outputs?: () => RunnerOutputs;
}

async function instantiate(job: RunnerJob, bytes: Uint8Array): Promise<Ready | RunnerResult> {
  let module: WasmModuleRef;
  try {
    module = await wasm.compile(bytes);
  } catch (err) {
    return refusal(err);
  }
  const foreign = wasm.Module.imports(module).filter((i) => i.module !== WASI_MODULE);
  if (foreign.length > 0) {
    const names = foreign.map((i) => `${i.module}.${i.name}`).join(', ');
    return { type: 'refused', cause: 'link', message: `the module imports ${names}; only ${WASI_MODULE} (WASI preview1) is provided` };
  }
  const exports = wasm.Module.exports(module);
  const missing = [['_start', 'function'], ['memory', 'memory']].filter(([name, kind]) => !exports.some((e) => e.name === name && e.kind === kind));
  if (missing.length > 0) {
    return { type: 'refused', cause: 'not-command', message: `the module does not export ${missing.map(([n]) => n).join(' and ')}: it is not a WASI command (build it as an executable, e.g. wasm32-wasi with a main)` };
  }
  const fds: Fd[] = [
    new EmptyStdin(),
    new ConsoleStdout((data) => writeAll(1, data)),
    new ConsoleStdout((data) => writeAll(2, data)),
  ];
  const out = job.outputs ? outputsPreopen(job.outputs.dir, job.outputs.capBytes) : undefined;
  if (out) fds.push(out.preopen); // fd 3: wasi-libc finds preopens from fd 3 up
  const wasi = new WASI([...job.argv], [...job.env], fds, { debug: false }); // debug logs to stdout: the job's
  fixArgsSizes(wasi, job.argv);
  if (out) writeOutputsInPlace(wasi);
  try {
    const instance = await wasm.instantiate(module, { [WASI_MODULE]: wasi.wasiImport });
    return out ? { wasi, instance, outputs: out.usage } : { wasi, instance };
  } catch (err) {
    return refusal(err);
  }
}

function run({ wasi, instance, outputs }: Ready): RunnerResult {
  const memory = instance.exports['memory'] as WasmMemory;
  const start = instance as unknown as Parameters<WASI['start']>[0];
  const used = () => (outputs ? { outputs: outputs() } : {});
  try {
    const code = wasi.start(start);
    return { type: 'exited', code, memoryBytes: memory.buffer.byteLength, ...used() };
  } catch (err) {
    const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    return { type: 'trapped', message, memoryBytes: memory.buffer.byteLength, ...used() };
  }
}

const { job, module } = decodeRunnerInput(readStdin());
for (const f of job.cgroupProcs ?? []) writeFileSync(f, String(process.pid)); // from here on the job's limits apply
const ready = await instantiate(job, module);
report('type' in ready ? ready : run(ready));
process.exit(0);
