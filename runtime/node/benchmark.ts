/**
 * Measures what this machine can do, for onboarding: CPU work rate in worker threads, fsync'd write throughput
 * of the data dir's disk, plus memory, disk space, GPUs and CPU model. `readMachineFacts` is the fast subset
 * used to check CLI flags before anything starts.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { type FileHandle, open, statfs, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import si, { type Systeminformation } from 'systeminformation';
import { z } from 'zod';
import type { Gpu } from '../../machines/capability.ts';
import type { Benchmark } from '../../machines/onboarding.ts';
import { type Clock, type Timer, realClock } from '../clock.ts';
import type { CpuResultMessage, CpuWorkerReply } from './benchmark.worker.ts';

export const DEFAULT_CPU_MILLIS = 300;
export const DEFAULT_DISK_BYTES = 16 * 1024 * 1024;
/** How long the GPU and CPU-model probes may take before the benchmark goes on without them. */
export const PROBE_TIMEOUT_MS = 1000;
const CPU_SLICE_MILLIS = 25;
/** A worker must answer within its run time plus this (startup, a busy machine). */
const WORKER_GRACE_MS = 5000;
const DISK_CHUNK_BYTES = 1024 * 1024;
const MIB = 1024 * 1024;
const WORKER_URL = new URL('./benchmark.worker.js', import.meta.url);

export type BenchmarkStage = 'options' | 'dataDir' | 'cpu' | 'disk';

/** The benchmark could not be taken; `stage` says which part failed. */
export class BenchmarkError extends Error {
  override name = 'BenchmarkError';
  readonly stage: BenchmarkStage;
  constructor(stage: BenchmarkStage, message: string, options?: ErrorOptions) {
    super(message, options);
    this.stage = stage;
  }
}

export interface BenchmarkOptions {
  readonly dataDir: string;
  /** How long each CPU phase (one worker alone, then all together) runs. */
  readonly cpuMillis?: number;
  /** How many bytes the disk test writes and fsyncs. */
  readonly diskBytes?: number;
  /** Stamps `measuredAt` and times the probes' and workers' time limits (default: the real clock). The rates
   * themselves are always measured in real time. */
  readonly clock?: Clock;
}

export interface MachineFacts {
  readonly cores: number;
  readonly memoryTotal: number;
  readonly diskTotal: number;
  readonly diskFree: number;
}

/** Cores, memory and data-dir disk space, read without measuring anything (well under 30 ms). */
export async function readMachineFacts(dataDir: string): Promise<MachineFacts> {
  return { cores: os.availableParallelism(), memoryTotal: memoryTotal(), ...(await readDiskSpace(dataDir)) };
}

/** Memory the process may use: the machine's total, lowered to a cgroup limit when one is set. */
export function memoryTotal(): number {
  const total = os.totalmem();
  const limit = process.constrainedMemory?.();
  return limit !== undefined && limit > 0 && limit < total ? limit : total;
}

/** Runs the whole benchmark (about 1 s with the defaults on a 2-core machine). Rejects with a BenchmarkError. */
export async function runBenchmark(opts: BenchmarkOptions): Promise<Benchmark> {
  const started = performance.now();
  const clock = opts.clock ?? realClock;
  const measuredAt = new Date(clock.now()).toISOString();
  const { dataDir, cpuMillis, diskBytes } = checkOptions(opts);
  const cores = os.availableParallelism();
  const tmp = await createTempFile(dataDir);
  let pool: CpuPool | undefined;
  let failed = true;
  try {
    pool = startCpuPool(cores, clock); // workers start and warm up while the disk is measured
    const [diskWriteBytesPerSec, host] = await Promise.all([writeAndSync(tmp, diskBytes), readHostFacts(clock)]);
    await tmp.remove();
    const space = await readDiskSpace(dataDir);
    const cpu = await pool.measure(cpuMillis);
    failed = false;
    return {
      cores,
      cpuOpsPerSecPerCore: cpu.perCore,
      cpuOpsPerSecTotal: cpu.total,
      memoryTotal: memoryTotal(),
      ...space,
      diskWriteBytesPerSec,
      ...host,
      arch: os.arch(),
      measuredAt,
      durationMs: Math.round(performance.now() - started),
    };
  } finally {
    await pool?.close();
    // a failure to delete must not hide the error that brought us here
    await tmp.remove().catch((err: unknown) => {
      if (!failed) throw err;
    });
  }
}

function checkOptions(opts: BenchmarkOptions): Required<Omit<BenchmarkOptions, 'clock'>> {
  const cpuMillis = opts.cpuMillis ?? DEFAULT_CPU_MILLIS;
  const diskBytes = opts.diskBytes ?? DEFAULT_DISK_BYTES;
  if (typeof opts.dataDir !== 'string' || opts.dataDir === '') {
    throw new BenchmarkError('options', 'benchmark needs a data dir to measure the disk in; pass dataDir');
  }
  if (!Number.isFinite(cpuMillis) || cpuMillis <= 0) {
    throw new BenchmarkError('options', `cpuMillis ${cpuMillis} must be a positive number of milliseconds (default ${DEFAULT_CPU_MILLIS})`);
  }
  if (!Number.isSafeInteger(diskBytes) || diskBytes <= 0) {
    throw new BenchmarkError('options', `diskBytes ${diskBytes} must be a positive whole number of bytes (default ${DEFAULT_DISK_BYTES})`);
  }
  return { dataDir: opts.dataDir, cpuMillis, diskBytes };
}

// ---- disk ----

async function readDiskSpace(dataDir: string): Promise<{ diskTotal: number; diskFree: number }> {
  try {
    const s = await statfs(dataDir);
    return { diskTotal: s.blocks * s.bsize, diskFree: s.bavail * s.bsize };
  } catch (err) {
    throw dataDirError(dataDir, err);
  }
}

interface TempFile {
  readonly path: string;
  readonly handle: FileHandle;
  /** Closes and deletes the file; safe to call more than once. */
  remove(): Promise<void>;
}

/** Creating the file first is the writability check: `access(W_OK)` says yes to root even on read-only trees. */
async function createTempFile(dataDir: string): Promise<TempFile> {
  const file = path.join(dataDir, `.dms-benchmark-${process.pid}-${randomUUID()}.tmp`);
  let handle: FileHandle;
  try {
    handle = await open(file, 'wx', 0o600);
  } catch (err) {
    throw dataDirError(dataDir, err);
  }
  let removed = false;
  const remove = async (): Promise<void> => {
    if (removed) return;
    removed = true;
    await handle.close().catch(() => undefined); // already closed or failed: the unlink below is what matters
    await unlink(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw new BenchmarkError('disk', `could not delete the benchmark file ${file}: ${err.message}; delete it by hand`, { cause: err });
    });
  };
  return { path: file, handle, remove };
}

function dataDirError(dataDir: string, err: unknown): BenchmarkError {
  const code = (err as NodeJS.ErrnoException).code;
  const fix = 'create it, fix its permissions, or pass another --data-dir';
  const what =
    code === 'ENOENT' ? 'does not exist'
    : code === 'ENOTDIR' ? 'is not a directory'
    : code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? `is not writable (${code})`
    : `cannot be used (${err instanceof Error ? err.message : String(err)})`;
  return new BenchmarkError('dataDir', `data dir ${dataDir} ${what}; ${fix}`, { cause: err });
}

/** Sequential write of `bytes` in 1 MiB chunks, then fsync; bytes per second over both. */
async function writeAndSync(tmp: TempFile, bytes: number): Promise<number> {
  const chunk = randomBytes(Math.min(bytes, DISK_CHUNK_BYTES)); // random, so a compressing file system cannot cheat
  const t0 = performance.now();
  try {
    for (let written = 0; written < bytes; ) {
      const { bytesWritten } = await tmp.handle.write(chunk, 0, Math.min(chunk.length, bytes - written));
      written += bytesWritten;
    }
    await tmp.handle.sync();
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new BenchmarkError('disk', `writing ${bytes} bytes to ${tmp.path} failed: ${msg}; free some space or pass a smaller diskBytes`, { cause: err });
  }
  return (bytes * 1000) / Math.max(performance.now() - t0, 0.001);
}

// ---- static facts: CPU model and GPUs ----

async function readHostFacts(clock: Clock): Promise<{ cpuModel: string; gpus: Gpu[] }> {
  const [cpu, graphics] = await Promise.all([withTimeout(si.cpu(), clock), withTimeout(si.graphics(), clock)]);
  return { cpuModel: cpuModelOf(cpu), gpus: gpusOf(graphics) };
}

/** The probe's result, or undefined when it throws or takes longer than PROBE_TIMEOUT_MS. */
async function withTimeout<T>(p: Promise<T>, clock: Clock): Promise<T | undefined> {
  let timer: Timer | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = clock.after(PROBE_TIMEOUT_MS, () => resolve(undefined));
  });
  try {
    return await Promise.race([p.catch(() => undefined), timeout]);
  } finally {
    timer?.clear();
  }
}

function cpuModelOf(cpu: Systeminformation.CpuData | undefined): string {
  const brand = cpu?.brand?.trim() ?? '';
  const maker = cpu?.manufacturer?.trim() ?? '';
  if (brand !== '') return maker !== '' && !brand.toLowerCase().includes(maker.toLowerCase()) ? `${maker} ${brand}` : brand;
  return os.cpus()[0]?.model?.trim() || 'unknown';
}

function gpusOf(g: Systeminformation.GraphicsData | undefined): Gpu[] {
  const controllers: readonly Partial<Systeminformation.GraphicsControllerData>[] = Array.isArray(g?.controllers) ? g.controllers : [];
  return controllers.map((c) => {
    const mib = c.vram ?? c.memoryTotal ?? 0; // systeminformation reports MiB
    return {
      vendor: c.vendor?.trim() || c.subVendor?.trim() || 'unknown',
      model: c.model?.trim() || c.name?.trim() || 'unknown',
      vram: Number.isFinite(mib) && mib > 0 ? Math.round(mib * MIB) : 0,
    };
  });
}

// ---- CPU: one worker thread per logical core ----

const workerReplySchema: z.ZodType<CpuWorkerReply> = z.discriminatedUnion('type', [
  z.object({ type: z.literal('cpu.ready') }),
  z.object({
    type: z.literal('cpu.result'),
    ops: z.number().nonnegative(),
    elapsedMs: z.number().nonnegative(),
    sliceRates: z.array(z.number().nonnegative()),
    checksum: z.number(),
  }),
  z.object({ type: z.literal('cpu.error'), message: z.string() }),
]);

interface CpuPool {
  /** Per core: one worker alone; total: every worker at once. Median slice rates, in ops per second. */
  measure(millis: number): Promise<{ perCore: number; total: number }>;
  /** Terminates every worker. */
  close(): Promise<void>;
}

function startCpuPool(cores: number, clock: Clock): CpuPool {
  if (!existsSync(WORKER_URL)) {
    throw new BenchmarkError('cpu', `the CPU worker ${fileURLToPath(WORKER_URL)} is missing; build it with \`npx tsc -p tsconfig.json\``);
  }
  const workers = Array.from({ length: Math.max(1, cores) }, (_, i) => startCpuWorker(i, clock));
  return {
    async measure(millis) {
      await Promise.all(workers.map((w) => w.ready));
      const solo = await workers[0]!.run(millis);
      const together = await Promise.all(workers.map((w) => w.run(millis)));
      return { perCore: rateOf(solo), total: together.reduce((sum, r) => sum + rateOf(r), 0) };
    },
    async close() {
      await Promise.all(workers.map((w) => w.worker.terminate()));
    },
  };
}

interface CpuWorker {
  readonly worker: Worker;
  /** Settles when the worker has warmed up. */
  readonly ready: Promise<void>;
  run(millis: number): Promise<CpuResultMessage>;
}

function startCpuWorker(index: number, clock: Clock): CpuWorker {
  // execArgv: [] keeps loaders such as tsx out of the worker: it is plain JS and starts ~4x faster without them
  const worker = new Worker(WORKER_URL, { name: `benchmark-cpu-${index}`, execArgv: [] });
  let waiting: { resolve(m: CpuWorkerReply): void; reject(e: Error): void } | undefined;
  let failure: BenchmarkError | undefined;
  const fail = (message: string, cause?: unknown): void => {
    failure ??= new BenchmarkError('cpu', `CPU worker ${index} ${message}; the CPU benchmark cannot run here`, { cause });
    waiting?.reject(failure);
    waiting = undefined;
  };
  worker.on('error', (err) => fail(`failed: ${err.message}`, err));
  worker.on('exit', (code) => fail(`exited with code ${code} before reporting`));
  worker.on('message', (raw: unknown) => {
    const parsed = workerReplySchema.safeParse(raw);
    if (!parsed.success) return fail(`sent a malformed message: ${parsed.error.message}`);
    if (parsed.data.type === 'cpu.error') return fail(`refused the run: ${parsed.data.message}`);
    const w = waiting;
    waiting = undefined;
    w?.resolve(parsed.data);
  });
  const next = (timeoutMs: number): Promise<CpuWorkerReply> => {
    if (failure) return Promise.reject(failure);
    return new Promise<CpuWorkerReply>((resolve, reject) => {
      const timer = clock.after(timeoutMs, () => fail(`did not answer within ${timeoutMs} ms`), { keepAlive: true });
      const done = (): void => timer.clear();
      waiting = { resolve: (m) => (done(), resolve(m)), reject: (e) => (done(), reject(e)) };
    });
  };
  const ready = next(WORKER_GRACE_MS).then(() => undefined);
  ready.catch(() => undefined); // observed later by measure(); a failure before then must not be unhandled
  return {
    worker,
    ready,
    async run(millis) {
      const reply = next(millis + WORKER_GRACE_MS);
      worker.postMessage({ type: 'cpu.run', millis, sliceMillis: CPU_SLICE_MILLIS });
      const m = await reply;
      if (m.type !== 'cpu.result') throw new BenchmarkError('cpu', `CPU worker ${index} answered ${m.type} to a run; rebuild the worker`);
      return m;
    },
  };
}

/** Median of the run's slice rates; the whole run's average when it was too short to slice. */
function rateOf(r: CpuResultMessage): number {
  const s = [...r.sliceRates].sort((a, b) => a - b);
  const mid = s.length >> 1;
  if (s.length === 0) return (r.ops * 1000) / Math.max(r.elapsedMs, 0.001);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
