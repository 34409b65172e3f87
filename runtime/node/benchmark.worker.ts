/**
 * CPU benchmark worker: runs a fixed, deterministic integer-hash workload on one core and reports its rate.
 * Loaded by runtime/node/benchmark.ts from the compiled `benchmark.worker.js`; it imports nothing at run time, so it
 * starts fast and runs the same under tsx and plain node.
 *
 * Protocol: the worker warms up (so the JIT has compiled the loop) and posts `cpu.ready`; then each `cpu.run`
 * is answered with one `cpu.result` (or `cpu.error`).
 */
import { parentPort } from 'node:worker_threads';

/** Main -> worker: hash for `millis`, recording one rate per `sliceMillis`. */
export interface CpuRunMessage {
  readonly type: 'cpu.run';
  readonly millis: number;
  readonly sliceMillis: number;
}
export interface CpuReadyMessage {
  readonly type: 'cpu.ready';
}
/** Worker -> main: work done. An op is one block of HASH_ROUNDS_PER_OP hash rounds. */
export interface CpuResultMessage {
  readonly type: 'cpu.result';
  readonly ops: number;
  readonly elapsedMs: number;
  /** Ops per second in each slice of the run; their median resists a preempted or GC-paused slice. */
  readonly sliceRates: readonly number[];
  /** The hash state at the end; consumed so the compiler cannot drop the work. */
  readonly checksum: number;
}
export interface CpuErrorMessage {
  readonly type: 'cpu.error';
  readonly message: string;
}
export type CpuWorkerReply = CpuReadyMessage | CpuResultMessage | CpuErrorMessage;

/** Hash rounds in one op; the loop looks at the clock every OPS_PER_CLOCK_READ ops. */
export const HASH_ROUNDS_PER_OP = 256;
const OPS_PER_CLOCK_READ = 32;
const WARMUP_MILLIS = 20;

/** One op: a chain of murmur3-finalizer rounds over a 32-bit state, seeded by the op's index. */
function hashBlock(state: number, index: number): number {
  let x = (state ^ index) | 0;
  for (let r = 0; r < HASH_ROUNDS_PER_OP; r++) {
    x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
    x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
    x = (x ^ (x >>> 16)) + r;
  }
  return x | 0;
}

function run(millis: number, sliceMillis: number): CpuResultMessage {
  const start = performance.now();
  const end = start + millis;
  const sliceRates: number[] = [];
  let state = 0x9e3779b9 | 0;
  let ops = 0;
  let sliceStart = start;
  let sliceOps = 0;
  let now = start;
  do {
    for (let k = 0; k < OPS_PER_CLOCK_READ; k++) state = hashBlock(state, ops + k);
    ops += OPS_PER_CLOCK_READ;
    sliceOps += OPS_PER_CLOCK_READ;
    now = performance.now();
    if (now - sliceStart >= sliceMillis) {
      sliceRates.push((sliceOps * 1000) / (now - sliceStart));
      sliceStart = now;
      sliceOps = 0;
    }
  } while (now < end);
  if (sliceOps > 0 && now > sliceStart) sliceRates.push((sliceOps * 1000) / (now - sliceStart));
  return { type: 'cpu.result', ops, elapsedMs: now - start, sliceRates, checksum: state };
}

function isRunMessage(m: unknown): m is CpuRunMessage {
  if (typeof m !== 'object' || m === null) return false;
  const r = m as Record<string, unknown>;
  return r['type'] === 'cpu.run' && typeof r['millis'] === 'number' && r['millis'] > 0 && typeof r['sliceMillis'] === 'number' && r['sliceMillis'] > 0;
}

if (parentPort) {
  const port = parentPort;
  run(WARMUP_MILLIS, WARMUP_MILLIS);
  port.on('message', (m: unknown) => {
    if (!isRunMessage(m)) {
      port.postMessage({ type: 'cpu.error', message: `expected {type: 'cpu.run', millis > 0, sliceMillis > 0}, got ${JSON.stringify(m)}` } satisfies CpuErrorMessage);
      return;
    }
    port.postMessage(run(m.millis, m.sliceMillis) satisfies CpuResultMessage);
  });
  port.postMessage({ type: 'cpu.ready' } satisfies CpuReadyMessage);
}
