/**
 * A worker thread of a pool runner (wasm-pool-runner.ts): runs one instance at a time, each a fresh
 * WebAssembly.Instance (new linear memory, new globals) of a module the main thread compiled once, under
 * @bjorn3/browser_wasi_shim with only its argv and env, no preopened directories and no sockets.
 *
 * The instance's memory cap is checked at every WASI call and at the end: past it the instance is stopped (a JS
 * exception unwinds the module) and ends 'over-memory'. V8's --wasm-max-mem-pages (the pool's largest cap) bounds
 * what a module can grow to between two checks. A module that never returns is the main thread's to stop, with
 * worker.terminate().
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ConsoleStdout, type Fd, WASI } from '@bjorn3/browser_wasi_shim';
import { OutputRing } from './staged-output.ts';
import { EmptyStdin, fixArgsSizes } from './wasi-shim-fixes.ts';
import { type InstanceOutputs, instanceOutputs } from './wasm-pool-outputs.ts';
import type { InstanceEnd, MainToWorker, WorkerRun, WorkerToMain } from './wasm-pool-runner.protocol.ts';

interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmInstance {
  readonly exports: Record<string, unknown>;
}
const wasm = (globalThis as unknown as { WebAssembly: { Instance: new (module: unknown, imports: object) => WasmInstance } }).WebAssembly;

const WASI_MODULE = 'wasi_snapshot_preview1';

const port = parentPort!;
// nothing here reads a stack, and the shim's proc_exit throws an Error per instance
Error.stackTraceLimit = 0;
/** The modules this thread was sent, by sha256. */
const modules = new Map<string, unknown>();
const data = workerData as { ring: SharedArrayBuffer; reserveBytes: number };
const ring = new OutputRing(data.ring);

/**
 * Linear memories of ended instances are garbage, but V8 frees them only at a full GC, which it does not know to
 * run early: each holds an address-space reservation (up to --wasm-max-mem-pages) and what it committed. A full GC
 * costs a few ms here, so it runs once the instances since the last one may hold this much address space ...
 */
const RESERVE_BUDGET_BYTES = 64 * 2 ** 30;
/** ... or have committed this much memory. */
const COMMIT_BUDGET_BYTES = 64 * 2 ** 20;
const collect = (globalThis as unknown as { gc?: () => void }).gc;
let reserved = 0;
let committed = 0;

function collectGarbage(memoryBytes: number): void {
  reserved += data.reserveBytes;
  committed += memoryBytes;
  if (reserved < RESERVE_BUDGET_BYTES && committed < COMMIT_BUDGET_BYTES) return;
  reserved = 0;
  committed = 0;
  collect?.();
}

class OverMemory extends Error {
  override name = 'OverMemory';
  constructor(readonly memoryBytes: number) {
    super(`memory at ${memoryBytes} bytes, over the instance's cap`);
  }
}

const drainMsg: WorkerToMain = { type: 'drain' };
const askForDrain = () => port.postMessage(drainMsg);

/** The instance's output: capped at its log limit (the rest counted and dropped), into the thread's ring. */
class Sink {
  bytes = 0;
  kept = 0;

  constructor(readonly limit: number) {}

  write(fd: 1 | 2, data: Uint8Array): void {
    this.bytes += data.byteLength;
    ring.total = this.bytes;
    const room = this.limit - this.kept;
    if (room <= 0) return;
    const piece = data.byteLength > room ? data.subarray(0, room) : data;
    this.kept += piece.byteLength;
    ring.write(fd, piece, askForDrain);
  }
}

/** The WASI imports, each checking the memory cap first. */
function guarded(imports: Record<string, unknown>, memory: () => WasmMemory | undefined, capBytes: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(imports)) {
    if (typeof f !== 'function') continue;
    out[name] = (...args: unknown[]) => {
      const bytes = memory()?.buffer.byteLength ?? 0;
      if (bytes > capBytes) throw new OverMemory(bytes);
      return (f as (...a: unknown[]) => unknown)(...args);
    };
  }
  return out;
}

function refused(err: unknown): InstanceEnd {
  const e = err as Error;
  if (e?.name === 'RangeError') return { type: 'refused', cause: 'memory', message: `the module's initial memory is over the instance's memory limit: ${e.message}` };
  if (e?.name === 'LinkError') return { type: 'refused', cause: 'link', message: `the module cannot be linked: ${e.message}` };
  return { type: 'refused', cause: 'compile', message: `the module could not be instantiated: ${e?.message ?? String(err)}` };
}

let memoryOf: WasmMemory | undefined;

function run(job: WorkerRun, sink: Sink, out: InstanceOutputs | undefined): InstanceEnd {
  const fds: Fd[] = [new EmptyStdin(), new ConsoleStdout((d) => sink.write(1, d)), new ConsoleStdout((d) => sink.write(2, d))];
  if (out) fds.push(out.preopen); // fd 3: wasi-libc finds preopens from fd 3 up
  const wasi = new WASI([...job.argv], [...job.env], fds, { debug: false }); // debug logs to stdout
  fixArgsSizes(wasi, job.argv);
  out?.attach(wasi);
  let memory: WasmMemory | undefined;
  let instance: WasmInstance;
  try {
    instance = new wasm.Instance(modules.get(job.sha256), { [WASI_MODULE]: guarded(wasi.wasiImport, () => memory, job.memoryBytes) });
  } catch (err) {
    return refused(err);
  }
  memory = instance.exports['memory'] as WasmMemory;
  memoryOf = memory;
  const initial = memory.buffer.byteLength;
  if (initial > job.memoryBytes) return { type: 'refused', cause: 'memory', message: `the module's initial memory (${initial} bytes) is over the instance's memory limit of ${job.memoryBytes} bytes` };
  let end: InstanceEnd;
  try {
    const code = wasi.start(instance as unknown as Parameters<WASI['start']>[0]);
    end = { type: 'exited', code, memoryBytes: memory.buffer.byteLength };
  } catch (err) {
    if (err instanceof OverMemory) return { type: 'over-memory', memoryBytes: err.memoryBytes };
    const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    end = { type: 'trapped', message, memoryBytes: memory.buffer.byteLength };
  }
  if (end.memoryBytes > job.memoryBytes) return { type: 'over-memory', memoryBytes: end.memoryBytes };
  return end;
}

port.on('message', (msg: MainToWorker) => {
  if (msg.type === 'forget') {
    modules.delete(msg.sha256);
    return;
  }
  if (msg.module) modules.set(msg.sha256, msg.module);
  runJob(msg);
});

function runJob(job: WorkerRun): void {
  const started = performance.now();
  const sink = new Sink(job.logLimitBytes);
  ring.total = 0;
  const out = job.outputs ? instanceOutputs(job.outputs) : undefined;
  let end: InstanceEnd;
  try {
    end = run(job, sink, out);
  } finally {
    out?.release();
  }
  const outputs = out?.usage();
  const msg: WorkerToMain = {
    type: 'instance.ended',
    id: job.id,
    end,
    durationMs: performance.now() - started,
    outputBytes: sink.bytes,
    outputTruncated: sink.bytes > sink.kept,
    ...(outputs ? { outputs } : {}),
  };
  port.postMessage(msg);
  const memoryBytes = memoryOf?.buffer.byteLength ?? 0;
  memoryOf = undefined;
  collectGarbage(memoryBytes);
}
