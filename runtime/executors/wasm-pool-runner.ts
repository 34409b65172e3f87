/**
 * A runner process of WasmRunnerPool (run as compiled JS: `node wasm-pool-runner.js '<RunnerConfig JSON>'`): it
 * serves one requester, for as long as the pool keeps it. It compiles each module once (by sha256; the pool sends
 * the bytes with a module's first instance here), checks it is a WASI command, and runs each instance in one of
 * its worker threads (wasm-pool-runner.worker.ts), one instance per thread at a time, the rest queued in order.
 * An instance past its time limit, or cancelled, is stopped with worker.terminate() (nothing else stops a wasm
 * loop) and its thread replaced; what it wrote before is read from its thread's staging area (staged-output.ts).
 *
 * The runner holds no secrets, and no files but its instances' /out directories (a job with outputs, opened in the
 * worker threads: wasm-pool-outputs.ts): a module that escaped its instance would find only this requester's other
 * instances, which is why the process boundary is the requester.
 */
import { Worker } from 'node:worker_threads';
import { createRing, OutputRing } from './staged-output.ts';
import type { InstanceEnd, InstanceEnded, InstanceRun, MainToWorker, PoolToRunner, RunnerConfig, RunnerToPool, WorkerRun, WorkerToMain } from './wasm-pool-runner.protocol.ts';

interface WasmApi {
  compile(bytes: Uint8Array): Promise<object>;
  Module: {
    imports(module: object): { module: string; name: string; kind: string }[];
    exports(module: object): { name: string; kind: string }[];
  };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

const WASI_MODULE = 'wasi_snapshot_preview1';
const WORKER_URL = new URL('./wasm-pool-runner.worker.js', import.meta.url);
const config = JSON.parse(process.argv[2] ?? '{}') as RunnerConfig;

type Compiled = { readonly module: object } | { readonly refusal: InstanceEnd };

interface Job {
  readonly run: InstanceRun;
  module?: object;
  startedAt?: number;
  /** Output bytes sent on so far (kept ones). */
  sent: number;
  ended: boolean;
}

interface Slot {
  worker: Worker;
  ring: OutputRing;
  /** Modules (sha256) this slot's thread has been sent. */
  modules: Set<string>;
  job?: Job | undefined;
  timer?: NodeJS.Timeout | undefined;
}

const compiling = new Map<string, Promise<Compiled>>();
const compiled = new Map<string, Compiled>();
const jobs = new Map<number, Job>();
const queue: Job[] = [];
const slots: Slot[] = [];

// ---- to the pool, batched per turn of the event loop

let outbox: RunnerToPool[] = [];
function send(msg: RunnerToPool): void {
  if (outbox.length === 0) setImmediate(flush);
  outbox.push(msg);
}
function flush(): void {
  const batch = outbox;
  outbox = [];
  if (process.connected) process.send!(batch);
}

function end(job: Job, endOf: InstanceEnd, extra: Partial<Pick<InstanceEnded, 'durationMs' | 'outputBytes' | 'outputTruncated' | 'pieces'>> = {}): void {
  if (job.ended) return;
  job.ended = true;
  jobs.delete(job.run.id);
  const pieces = extra.pieces ?? [];
  const kept = job.sent + pieces.reduce((n, p) => n + p.data.byteLength, 0);
  send({
    type: 'instance.ended',
    id: job.run.id,
    end: endOf,
    durationMs: extra.durationMs ?? (job.startedAt === undefined ? 0 : performance.now() - job.startedAt),
    outputBytes: Math.max(kept, extra.outputBytes ?? 0),
    outputTruncated: extra.outputTruncated ?? (extra.outputBytes ?? 0) > kept,
    pieces,
  });
}

// ---- modules

async function compile(bytes: Uint8Array): Promise<Compiled> {
  let module: object;
  try {
    module = await wasm.compile(bytes);
  } catch (err) {
    return { refusal: { type: 'refused', cause: 'compile', message: `the module is not valid WebAssembly: ${(err as Error).message}` } };
  }
  const foreign = wasm.Module.imports(module).filter((i) => i.module !== WASI_MODULE);
  if (foreign.length > 0) {
    const names = foreign.map((i) => `${i.module}.${i.name}`).join(', ');
    return { refusal: { type: 'refused', cause: 'link', message: `the module imports ${names}; only ${WASI_MODULE} (WASI preview1) is provided` } };
  }
  const exports = wasm.Module.exports(module);
  const missing = [['_start', 'function'], ['memory', 'memory']].filter(([name, kind]) => !exports.some((e) => e.name === name && e.kind === kind));
  if (missing.length > 0) {
    const message = `the module does not export ${missing.map(([n]) => n).join(' and ')}: it is not a WASI command (build it as an executable, e.g. wasm32-wasi with a main)`;
    return { refusal: { type: 'refused', cause: 'not-command', message } };
  }
  return { module };
}

function moduleFor(run: InstanceRun): Compiled | Promise<Compiled> {
  if (run.module) {
    const p: Promise<Compiled> = compile(run.module).then((c) => (compiling.get(run.sha256) === p && compiled.set(run.sha256, c), c));
    compiling.set(run.sha256, p);
    compiled.delete(run.sha256);
    return p;
  }
  const ready = compiled.get(run.sha256);
  if (ready) return ready;
  return compiling.get(run.sha256) ?? { refusal: { type: 'refused', cause: 'compile', message: 'the runner was not sent this module (a pool bug); run the instance again' } };
}

function admit(job: Job, c: Compiled): void {
  if (job.ended) return;
  if ('refusal' in c) return end(job, c.refusal);
  job.module = c.module;
  queue.push(job);
  dispatch();
}

// ---- worker threads

function startWorker(slot: Partial<Slot>): Slot {
  const buffer = createRing();
  const worker = new Worker(WORKER_URL, { workerData: { ring: buffer, reserveBytes: config.reserveBytes }, resourceLimits: { maxOldGenerationSizeMb: config.workerHeapMib } });
  const s = Object.assign(slot, { worker, ring: new OutputRing(buffer), modules: new Set<string>() }) as Slot;
  worker.on('message', (msg: WorkerToMain) => onWorkerMessage(s, worker, msg));
  worker.on('error', (err) => onWorkerDied(s, worker, err));
  worker.on('exit', (code) => onWorkerDied(s, worker, new Error(`its thread exited with code ${code}`)));
  return s;
}

/** Sends on what the slot's instance has written so far. */
function drain(slot: Slot): void {
  const job = slot.job;
  const pieces = slot.ring.drain();
  if (!job || pieces.length === 0) return;
  job.sent += pieces.reduce((n, p) => n + p.data.byteLength, 0);
  send({ type: 'instance.output', id: job.run.id, pieces });
}

function onWorkerMessage(slot: Slot, worker: Worker, msg: WorkerToMain): void {
  if (slot.worker !== worker) return; // retired: its instance was ended when it was stopped
  if (msg.type === 'drain') return drain(slot);
  const job = slot.job;
  if (job?.run.id !== msg.id) return;
  clearTimeout(slot.timer);
  slot.job = undefined;
  if (!job.ended) {
    job.ended = true;
    jobs.delete(msg.id);
    send({ ...msg, pieces: slot.ring.drain() });
  }
  dispatch();
}

function onWorkerDied(slot: Slot, worker: Worker, err: Error): void {
  if (slot.worker !== worker) return; // retired on purpose
  const { job, ring } = slot;
  clearTimeout(slot.timer);
  slot.job = undefined;
  startWorker(slot);
  if (job) {
    const memory = (err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY';
    end(job, { type: 'thread-died', memory, message: err.message }, { pieces: ring.drain(), outputBytes: ring.total });
  }
  dispatch();
}

/** Stops the slot's instance: terminates its thread (replaced at once) and ends it with what it had written. */
function stop(slot: Slot, why: 'timeout' | 'cancelled'): void {
  const { job, worker, ring } = slot;
  if (!job) return;
  clearTimeout(slot.timer);
  slot.job = undefined;
  startWorker(slot);
  void worker.terminate().then(() => {
    end(job, { type: why }, { pieces: ring.drain(), outputBytes: ring.total });
    dispatch();
  });
}

/** While instances run, their output is sent on at least this often. */
const DRAIN_MS = 50;
let drainTimer: NodeJS.Timeout | undefined;
function drainRunning(): void {
  const busy = slots.filter((s) => s.job);
  for (const slot of busy) drain(slot);
  if (busy.length === 0) {
    clearInterval(drainTimer);
    drainTimer = undefined;
  }
}

function dispatch(): void {
  drainTimer ??= setInterval(drainRunning, DRAIN_MS);
  for (const slot of slots) {
    if (queue.length === 0) return;
    if (slot.job) continue;
    const job = queue.shift()!;
    slot.job = job;
    job.startedAt = performance.now();
    const { id, sha256, argv, env, memoryBytes, logLimitBytes, timeoutMs, outputs } = job.run;
    const fresh = !slot.modules.has(sha256);
    if (fresh) slot.modules.add(sha256);
    const msg: WorkerRun = { type: 'run', id, sha256, ...(fresh ? { module: job.module } : {}), argv, env, memoryBytes, logLimitBytes, ...(outputs ? { outputs } : {}) };
    slot.worker.postMessage(msg);
    slot.timer = setTimeout(() => stop(slot, 'timeout'), timeoutMs);
  }
}

function cancel(id: number): void {
  const job = jobs.get(id);
  if (!job) return;
  const slot = slots.find((s) => s.job === job);
  if (slot) return stop(slot, 'cancelled');
  const at = queue.indexOf(job);
  if (at >= 0) queue.splice(at, 1);
  end(job, { type: 'cancelled' });
}

// ---- from the pool

function onMessage(msg: PoolToRunner): void {
  switch (msg.type) {
    case 'instance.run': {
      const job: Job = { run: msg, sent: 0, ended: false };
      jobs.set(msg.id, job);
      const c = moduleFor(msg);
      if (c instanceof Promise) void c.then((r) => admit(job, r));
      else admit(job, c);
      return;
    }
    case 'instance.cancel':
      return cancel(msg.id);
    case 'module.forget': {
      compiling.delete(msg.sha256);
      compiled.delete(msg.sha256);
      const forget: MainToWorker = { type: 'forget', sha256: msg.sha256 };
      for (const slot of slots) if (slot.modules.delete(msg.sha256)) slot.worker.postMessage(forget);
      return;
    }
    default: {
      const never: never = msg;
      return never;
    }
  }
}

process.on('message', (batch: PoolToRunner[]) => {
  for (const msg of batch) onMessage(msg);
});
process.on('disconnect', () => process.exit(0)); // the pool is gone

let online = 0;
for (let i = 0; i < Math.max(1, config.threads); i += 1) {
  const slot = startWorker({});
  slots.push(slot);
  slot.worker.once('online', () => {
    online += 1;
    if (online === slots.length) send({ type: 'runner.ready' });
  });
}
