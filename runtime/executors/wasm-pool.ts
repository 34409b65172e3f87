/**
 * WasmRunnerPool: many small WASM instances of one requester, cheaply, without giving up isolation between
 * requesters. The process boundary is the requester: each requester (owner) gets a runner process of its own
 * (wasm-pool-runner.js), never shared with another, and all of its instances run in that process's worker threads,
 * each a fresh WebAssembly.Instance (new linear memory) of a module compiled once per runner.
 *
 * Runners are started ahead of need (`spare`), so a new requester's first instance does not wait for a process
 * start; an owner's runner that has been idle for `idleMs` is stopped. A runner that dies ends every instance it
 * was running with reason 'crashed', and only those: other requesters' runners are untouched.
 *
 * Limits: each instance's linear memory is checked at every WASI call and at its end (over its cap: reason
 * 'memory'); V8's --wasm-max-mem-pages (the pool's largest cap, `maxMemoryBytes`) bounds what it can grow to between
 * checks; RLIMIT_AS and, where cgroups are available, a cgroup per runner (memory, pids, and the owner's CPU share
 * from setCpu) bound the whole runner. Without cgroups the runner's CPU is not capped (as WasiExecutor degrades).
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExecutorStartError, InvalidJobError, type ExecutionResult, type OutputChunk } from '../../actors/executor.ts';
import { formatBytes, MAX_RUNNABLE_MODULE_BYTES, RUNNER_ADDRESS_SPACE_BYTES } from './limits.ts';
import { findExecutable } from './os-limits.ts';
import { loadCheckedModule } from './wasm-module.ts';
import { RunnerProcess, type RunnerProcessInit } from './wasm-pool-process.ts';
import { resultOf } from './wasm-pool-result.ts';
import type { InstanceRun } from './wasm-pool-runner.protocol.ts';

const PAGE_BYTES = 65536;
/**
 * Address space each worker thread may map beyond its live instance's memory: its V8 isolate and stack (~0.2 GiB
 * measured) and the reservations of ended instances' memories it has not collected yet (RESERVE_BUDGET_BYTES in
 * wasm-pool-runner.worker.ts). Reserved, not used: the cgroup holds what is used.
 */
const THREAD_ADDRESS_SPACE_BYTES = 65 * 2 ** 30;
/** Memory a runner uses beyond its instances' linear memories: Node, V8, each thread's heap (measured ~60 MiB + 15 MiB a thread). */
const RUNNER_BASE_BYTES = 96 * 2 ** 20;
const THREAD_BYTES = 32 * 2 ** 20;
/** Compiled modules a runner keeps; the oldest beyond this is forgotten (its bytes sent again when next needed). */
const MODULES_PER_RUNNER = 16;
/** Checked module bytes the pool keeps to send to new runners without reading and hashing the file again. */
const MODULE_CACHE_BYTES = 64 * 2 ** 20;

export interface WasmRunnerPoolInit {
  /** Runners started ahead of need (default 1). */
  readonly spare?: number;
  /** Runner processes at most, spares included (default 32). */
  readonly maxRunners?: number;
  /** A cgroup per runner where the machine allows (default true; see isolation.ts). */
  readonly cgroups?: boolean;
  /** The compiled runner script; default wasm-pool-runner.js beside this file. */
  readonly runnerPath?: string;
  /** Node binary for runners; default this process's. */
  readonly nodePath?: string;
  /** An owner's runner with nothing to run is stopped after this (default 30 s). */
  readonly idleMs?: number;
  /** Worker threads per runner: instances of one owner that run at once (default: cores, at most 4). */
  readonly threads?: number;
  /** The largest memory cap an instance may ask for (default 256 MiB). */
  readonly maxMemoryBytes?: number;
  readonly maxModuleBytes?: number;
  /** prlimit's path; null for the `sh -c ulimit` wrapper; default: found in /usr/bin:/bin:/usr/sbin:/sbin. */
  readonly prlimitPath?: string | null;
}

/** One instance: a module file checked by sha256, its argv after argv[0], its whole environment, its limits. */
export interface PoolInstanceSpec {
  /** argv[0], and the instance's name in messages. */
  readonly name: string;
  readonly module: { readonly path: string; readonly sha256: string };
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** The instance's linear memory cap (rounded down to 64 KiB pages); at most the pool's maxMemoryBytes. */
  readonly memoryBytes: number;
  /** Wall-clock time from when the instance starts in its thread (not its wait for a free thread). */
  readonly timeoutMs: number;
  /** Output kept, stdout and stderr together; the rest is counted and dropped. */
  readonly logLimitBytes: number;
  /**
   * A job with `wasm.outputs`: an existing, empty directory the instance gets as `/out` (wasm-outputs.ts), its files
   * together at most `outputsMaxBytes` (the job's resources.disk; 0 when not given). A write past it fails with
   * ENOSPC, and the instance then ends failed saying it wrote more than its disk, as WasiExecutor says it.
   */
  readonly outputsDir?: string;
  readonly outputsMaxBytes?: number;
}

export interface PoolInstance {
  /** The pid of the owner's runner process (shared by the owner's instances, never with another owner's). */
  readonly pid: number;
  /** Resolves once, when the instance has ended; never rejects. */
  wait(): Promise<ExecutionResult>;
  /** Stops the instance (reason 'cancelled'); idempotent, no effect once it ended. */
  cancel(): void;
}

export interface WasmRunnerPoolStats {
  /** Runner processes running or starting, spares included. */
  readonly runners: number;
  readonly spare: number;
  /** Runner processes started since the pool was made. */
  readonly started: number;
  /** Runner processes the pool stopped (idle, evicted, closed). */
  readonly killed: number;
  /** Runner processes that died by themselves (signal, out of memory). */
  readonly crashed: number;
  /** Median spawn-to-ready time of the runners started so far, ms (null before the first is ready). */
  readonly startMs: number | null;
}

export class WasmRunnerPool {
  readonly #spareTarget: number;
  readonly #maxRunners: number;
  readonly #idleMs: number;
  readonly #maxMemoryBytes: number;

  /** The most memory an instance may have here (a job asking more runs in a process of its own). */
  get maxMemoryBytes(): number {
    return this.#maxMemoryBytes;
  }
  readonly #maxModuleBytes: number;
  readonly #runnerInit: RunnerProcessInit;
  readonly #spares: RunnerProcess[] = [];
  readonly #owned = new Map<string, RunnerProcess>();
  readonly #cpu = new Map<string, number>();
  readonly #idleTimers = new Map<RunnerProcess, NodeJS.Timeout>();
  readonly #modules = new Map<string, { bytes: Promise<Uint8Array>; size: number }>();
  readonly #startMs: number[] = [];
  #nextId = 1;
  #started = 0;
  #killed = 0;
  #crashed = 0;
  #closed = false;

  constructor(init: WasmRunnerPoolInit = {}) {
    this.#spareTarget = init.spare ?? 1;
    this.#maxRunners = Math.max(1, init.maxRunners ?? 32);
    this.#idleMs = init.idleMs ?? 30_000;
    this.#maxMemoryBytes = Math.max(PAGE_BYTES, Math.floor((init.maxMemoryBytes ?? 256 * 2 ** 20) / PAGE_BYTES) * PAGE_BYTES);
    this.#maxModuleBytes = init.maxModuleBytes ?? MAX_RUNNABLE_MODULE_BYTES;
    const threads = Math.max(1, init.threads ?? Math.min(4, os.availableParallelism()));
    // a terminated thread may linger while its replacement starts: room for one more
    const threadRoom = threads + 1;
    this.#runnerInit = {
      nodePath: init.nodePath ?? process.execPath,
      runnerPath: init.runnerPath ?? fileURLToPath(new URL('./wasm-pool-runner.js', import.meta.url)),
      threads,
      workerHeapMib: 64,
      maxInstanceBytes: this.#maxMemoryBytes,
      addressSpaceBytes: RUNNER_ADDRESS_SPACE_BYTES + threadRoom * (this.#maxMemoryBytes + THREAD_ADDRESS_SPACE_BYTES),
      cgroupMemoryBytes: RUNNER_BASE_BYTES + threadRoom * (this.#maxMemoryBytes + THREAD_BYTES),
      cgroupPids: 64 + 2 * threadRoom,
      cgroups: init.cgroups ?? true,
      prlimit: init.prlimitPath === null ? undefined : (init.prlimitPath ?? findExecutable('prlimit', '/usr/bin:/bin:/usr/sbin:/sbin')),
    };
    this.#refill();
  }

  /**
   * Runs one instance for `owner` (a requester's peer id) in the owner's runner: the one it has, else a spare
   * (a new spare is then started), else one started now. Rejects with an ExecutorError when the instance is refused
   * before it is sent: InvalidJobError (limits), ModuleNotFoundError / ModuleTooLargeError /
   * ModuleHashMismatchError / NotWasmError (the module file; read only when this runner lacks the module), or
   * ExecutorStartError (no runner could be had: `maxRunners` busy, or a process start failed). A module that does
   * not compile or link, is not a WASI command, or whose initial memory is over the cap resolves, and its wait()
   * gives reason 'failed' ('memory' for the last) with the reason in the message.
   */
  async run(owner: string, spec: PoolInstanceSpec, onOutput?: (chunk: OutputChunk) => void): Promise<PoolInstance> {
    const capBytes = this.#check(spec);
    const runner = this.#runnerFor(owner);
    this.#busy(runner);
    await runner.spawned;
    const sha256 = spec.module.sha256.toLowerCase();
    let module: Uint8Array | undefined;
    if (!runner.modules.has(sha256)) {
      module = await this.#load(spec.module.path, sha256);
      if (runner.modules.has(sha256)) module = undefined; // another instance sent it meanwhile
    }
    this.#useModule(runner, sha256);
    const id = this.#nextId++;
    const msg: InstanceRun = {
      type: 'instance.run',
      id,
      sha256,
      ...(module ? { module } : {}),
      argv: [spec.name, ...spec.args],
      env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
      memoryBytes: capBytes,
      timeoutMs: spec.timeoutMs,
      logLimitBytes: spec.logLimitBytes,
      ...(spec.outputsDir !== undefined ? { outputs: { dir: path.resolve(spec.outputsDir), capBytes: spec.outputsMaxBytes ?? 0 } } : {}),
    };
    const sentAt = performance.now();
    let outputBytes = 0;
    const result = new Promise<ExecutionResult>((resolve) => {
      runner.run(msg, {
        onOutput: (p) => {
          outputBytes += p.data.byteLength;
          onOutput?.({ stream: p.fd === 2 ? 'stderr' : 'stdout', data: p.data });
        },
        onEnd: (end) => resolve(resultOf(end, { capBytes, timeoutMs: spec.timeoutMs, sentAt, outputBytes })),
      });
    });
    return { pid: runner.pid, wait: () => result, cancel: () => runner.cancel(id) };
  }

  /**
   * The CPU cores `owner`'s running work may use: its runner's cgroup CPU quota, applied now and to the runner it
   * gets later. Until set, an owner's runner may use every core. No effect where cgroups are unavailable.
   * Forgotten when the owner's runner is stopped for idleness.
   */
  setCpu(owner: string, cpu: number): void {
    if (!Number.isFinite(cpu) || cpu <= 0) throw new InvalidJobError(`cpu is ${cpu}; it must be a positive number of cores`);
    this.#cpu.set(owner, cpu);
    void this.#owned.get(owner)?.setCpu(cpu);
  }

  /** Resolves once every spare runner is up (or has failed to start). */
  async warm(): Promise<void> {
    await Promise.all(this.#spares.map((r) => r.ready));
  }

  /** Kills every runner; their running instances end 'cancelled'. No instance can be run afterwards. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const t of this.#idleTimers.values()) clearTimeout(t);
    this.#idleTimers.clear();
    const all = [...this.#spares, ...this.#owned.values()];
    this.#spares.length = 0;
    this.#owned.clear();
    this.#killed += all.length;
    await Promise.all(all.map((r) => r.stop()));
  }

  stats(): WasmRunnerPoolStats {
    const sorted = [...this.#startMs].sort((a, b) => a - b);
    return {
      runners: this.#spares.length + this.#owned.size,
      spare: this.#spares.length,
      started: this.#started,
      killed: this.#killed,
      crashed: this.#crashed,
      startMs: sorted.length ? sorted[sorted.length >> 1]! : null,
    };
  }

  #check(spec: PoolInstanceSpec): number {
    const bad = (what: string) => new InvalidJobError(what);
    if (this.#closed) throw new ExecutorStartError('the WASM runner pool is closed');
    if (!Number.isFinite(spec.timeoutMs) || spec.timeoutMs <= 0) throw bad(`timeoutMs is ${spec.timeoutMs}; it must be a positive number of milliseconds`);
    if (!Number.isInteger(spec.logLimitBytes) || spec.logLimitBytes < 0) throw bad(`logLimitBytes is ${spec.logLimitBytes}; it must be a whole number of bytes, 0 or more`);
    const cap = Math.floor(spec.memoryBytes / PAGE_BYTES) * PAGE_BYTES;
    if (!(cap >= PAGE_BYTES)) throw bad(`memoryBytes is ${spec.memoryBytes}; a WASM instance needs at least one 64 KiB page`);
    if (cap > this.#maxMemoryBytes) throw bad(`memoryBytes is ${formatBytes(spec.memoryBytes)}, over the ${formatBytes(this.#maxMemoryBytes)} this pool gives an instance; ask for less, or run it as a job of its own`);
    const outCap = spec.outputsMaxBytes;
    if (outCap !== undefined && !(Number.isSafeInteger(outCap) && outCap >= 0)) throw bad(`outputsMaxBytes is ${outCap}; it must be a whole number of bytes, 0 or more`);
    if (spec.outputsDir === '') throw bad('outputsDir is empty; give the directory the instance gets as /out');
    return cap;
  }

  /** The owner's runner: its own, else a spare, else a new one. Never another owner's. */
  #runnerFor(owner: string): RunnerProcess {
    const own = this.#owned.get(owner);
    if (own?.alive) return own;
    this.#owned.delete(owner);
    let runner = this.#spares.shift();
    if (!runner) {
      if (this.#owned.size >= this.#maxRunners && !this.#evictIdle()) {
        throw new ExecutorStartError(`all ${this.#maxRunners} WASM runners are busy with other requesters' instances; try again later`);
      }
      runner = this.#start();
    }
    runner.owner = owner;
    this.#owned.set(owner, runner);
    const cpu = this.#cpu.get(owner);
    if (cpu !== undefined) void runner.setCpu(cpu);
    this.#refill();
    return runner;
  }

  #start(): RunnerProcess {
    this.#started += 1;
    const runner = new RunnerProcess(this.#runnerInit, { onExit: (r) => this.#onExit(r), onIdle: (r) => this.#onIdle(r) });
    void runner.ready.then((ms) => ms >= 0 && this.#startMs.push(ms));
    return runner;
  }

  #refill(): void {
    while (!this.#closed && this.#spares.length < this.#spareTarget && this.#spares.length + this.#owned.size < this.#maxRunners) {
      this.#spares.push(this.#start());
    }
  }

  /** Stops the owned runner idle longest; false when every runner is busy. */
  #evictIdle(): boolean {
    const idle = [...this.#owned.values()].find((r) => r.busy === 0);
    if (!idle) return false;
    this.#stopOwned(idle);
    return true;
  }

  #stopOwned(runner: RunnerProcess): void {
    clearTimeout(this.#idleTimers.get(runner));
    this.#idleTimers.delete(runner);
    if (runner.owner !== undefined && this.#owned.get(runner.owner) === runner) {
      this.#owned.delete(runner.owner);
      this.#cpu.delete(runner.owner);
    }
    this.#killed += 1;
    void runner.stop();
  }

  #busy(runner: RunnerProcess): void {
    clearTimeout(this.#idleTimers.get(runner));
    this.#idleTimers.delete(runner);
    // owners are kept in order of last use, for #evictIdle
    if (runner.owner !== undefined) {
      this.#owned.delete(runner.owner);
      this.#owned.set(runner.owner, runner);
    }
  }

  #onIdle(runner: RunnerProcess): void {
    if (this.#closed || !runner.alive) return;
    clearTimeout(this.#idleTimers.get(runner));
    const t = setTimeout(() => {
      this.#idleTimers.delete(runner);
      if (runner.busy === 0 && runner.alive) this.#stopOwned(runner);
    }, this.#idleMs);
    t.unref();
    this.#idleTimers.set(runner, t);
  }

  #onExit(runner: RunnerProcess): void {
    clearTimeout(this.#idleTimers.get(runner));
    this.#idleTimers.delete(runner);
    const spare = this.#spares.indexOf(runner);
    if (spare >= 0) this.#spares.splice(spare, 1);
    const own = runner.owner !== undefined && this.#owned.get(runner.owner) === runner;
    if (own) this.#owned.delete(runner.owner!);
    if (spare >= 0 || own) this.#crashed += 1; // the pool had not stopped it
    this.#refill();
  }

  /** Marks the module as used by the runner; the runner forgets the one used longest ago beyond its budget. */
  #useModule(runner: RunnerProcess, sha256: string): void {
    runner.modules.delete(sha256);
    runner.modules.set(sha256, true);
    if (runner.modules.size > MODULES_PER_RUNNER) runner.forget(runner.modules.keys().next().value!);
  }

  /** The module's checked bytes: from the pool's cache, else read, hashed and checked (rejects with an ExecutorError). */
  async #load(file: string, sha256: string): Promise<Uint8Array> {
    let entry = this.#modules.get(sha256);
    if (!entry) {
      const bytes = loadCheckedModule({ module: { path: file }, sha256 }, this.#maxModuleBytes);
      entry = { bytes, size: 0 };
      this.#modules.set(sha256, entry);
      bytes.then(
        (b) => {
          entry!.size = b.byteLength;
          this.#trimModules();
        },
        () => this.#modules.get(sha256) === entry && this.#modules.delete(sha256),
      );
    } else {
      this.#modules.delete(sha256); // most recently used last
      this.#modules.set(sha256, entry);
    }
    return entry.bytes;
  }

  #trimModules(): void {
    let total = [...this.#modules.values()].reduce((n, e) => n + e.size, 0);
    for (const [sha, e] of this.#modules) {
      if (total <= MODULE_CACHE_BYTES) return;
      total -= e.size;
      this.#modules.delete(sha);
    }
  }
}
