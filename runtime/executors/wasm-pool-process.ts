/**
 * One runner process of WasmRunnerPool, seen from the pool: started with its memory fenced (V8 flags, RLIMIT_AS,
 * and a cgroup of its own where the machine has them), talked to over its IPC channel in batches, and watched, so
 * that when it dies every instance it was running ends at once with reason 'crashed'.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { ExecutorStartError } from '../../actors/executor.ts';
import type { JobCgroup } from './cgroup.ts';
import { jobCgroup } from './isolation.ts';
import { RUNNER_HEAP_MIB } from './limits.ts';
import { withOsLimits } from './os-limits.ts';
import { killGroup } from './process-group.ts';
import type { InstanceEnded, InstanceRun, OutputPiece, PoolToRunner, RunnerConfig, RunnerToPool } from './wasm-pool-runner.protocol.ts';

const PAGE_BYTES = 65536;
const STDERR_TAIL_BYTES = 2048;

export interface RunnerProcessInit {
  readonly nodePath: string;
  readonly runnerPath: string;
  readonly threads: number;
  readonly workerHeapMib: number;
  /** The largest linear memory an instance may have: V8's --wasm-max-mem-pages for the whole runner. */
  readonly maxInstanceBytes: number;
  /** RLIMIT_AS of the runner. */
  readonly addressSpaceBytes: number;
  /** The runner's cgroup memory limit (its instances' memories and its own). */
  readonly cgroupMemoryBytes: number;
  readonly cgroupPids: number;
  readonly cgroups: boolean;
  /** prlimit's path, or undefined for the `ulimit` wrapper. */
  readonly prlimit: string | undefined;
}

/** The runner died: how, for the message of each instance it was running. */
export interface RunnerLost {
  readonly type: 'runner.lost';
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly oomKilled: boolean;
  readonly stderrTail: string;
  /** The pool stopped it (close, idle): not a crash. */
  readonly stoppedByPool: boolean;
}

export interface InstanceWatch {
  readonly onOutput: ((piece: OutputPiece) => void) | undefined;
  readonly onEnd: (end: InstanceEnded | RunnerLost) => void;
}

export interface RunnerHooks {
  /** The runner's process has ended (or never started). */
  readonly onExit: (runner: RunnerProcess) => void;
  /** Its last instance ended. */
  readonly onIdle: (runner: RunnerProcess) => void;
}

/**
 * The least CPU a requester's runner gets, whatever its allocations hold: the runner's own work per instance (its
 * IPC, compiling a module, its JS warming up) is the provider's overhead, and under a 0.01-cpu quota (1 ms per 100 ms)
 * a tiny first instance took seconds. A requester's instances may so use up to 0.05 cpu more than they hold.
 */
export const MIN_RUNNER_CPU = 0.05;

export class RunnerProcess {
  /** The requester it serves; undefined while it is a spare. */
  owner: string | undefined;
  /** Modules this runner has compiled (sha256), oldest use first. */
  readonly modules = new Map<string, true>();
  /** Resolves once the process runs (rejects with ExecutorStartError when it cannot be started). */
  readonly spawned: Promise<void>;
  /** Resolves with spawn-to-ready milliseconds once its worker threads are up. */
  readonly ready: Promise<number>;
  #readyResolve!: (ms: number) => void;
  #child: ChildProcess | undefined;
  #cgroup: JobCgroup | undefined;
  /** The CPU quota last asked for (cores). */
  #cpu: number | undefined;
  #outbox: PoolToRunner[] = [];
  #flushScheduled = false;
  readonly #instances = new Map<number, InstanceWatch>();
  #exited = false;
  #stopping = false;
  #stderrTail = '';
  readonly #exitedPromise: Promise<void>;
  #exitedResolve!: () => void;

  constructor(
    private readonly init: RunnerProcessInit,
    private readonly hooks: RunnerHooks,
  ) {
    this.ready = new Promise((resolve) => (this.#readyResolve = resolve));
    this.#exitedPromise = new Promise((resolve) => (this.#exitedResolve = resolve));
    this.spawned = this.#boot();
    this.spawned.catch(() => this.#onExit(null, null));
  }

  get pid(): number {
    return this.#child?.pid ?? -1;
  }

  get alive(): boolean {
    return !this.#exited && !this.#stopping;
  }

  /** Instances sent and not yet ended. */
  get busy(): number {
    return this.#instances.size;
  }

  async #boot(): Promise<void> {
    const { init } = this;
    const pages = Math.max(1, Math.floor(init.maxInstanceBytes / PAGE_BYTES));
    const config: RunnerConfig = { threads: init.threads, workerHeapMib: init.workerHeapMib, reserveBytes: pages * PAGE_BYTES };
    const node = [
      '--disable-wasm-trap-handler',
      `--wasm-max-mem-pages=${pages}`,
      '--expose-gc', // the worker threads free ended instances' memories (wasm-pool-runner.worker.ts)
      `--max-old-space-size=${RUNNER_HEAP_MIB}`,
      '--no-warnings',
      init.runnerPath,
      JSON.stringify(config),
    ];
    const limited = withOsLimits(init.nodePath, node, { addressSpaceBytes: init.addressSpaceBytes }, init.prlimit);
    // a spare does not know its requester's CPU share yet: every core until setCpu
    this.#cgroup = init.cgroups ? await jobCgroup('wasm-pool', { cpu: os.availableParallelism(), memoryBytes: init.cgroupMemoryBytes, pids: init.cgroupPids }) : undefined;
    const cmd = this.#cgroup ? this.#cgroup.wrap(limited.command, limited.args) : limited;
    const t0 = performance.now();
    const child = spawn(cmd.command, cmd.args, {
      env: {},
      cwd: os.tmpdir(),
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'advanced',
      windowsHide: true,
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => reject(new ExecutorStartError(`could not start a WASM runner: ${err.message}; check that the machine has free processes`)));
    }).catch(async (err) => {
      await this.#cgroup?.remove();
      throw err;
    });
    this.#child = child;
    child.on('error', () => {}); // a send to a dying child: its exit says what happened
    child.stderr!.on('data', (d: Buffer) => (this.#stderrTail = (this.#stderrTail + d.toString('utf8')).slice(-STDERR_TAIL_BYTES)));
    child.on('message', (batch: RunnerToPool[]) => {
      if (!Array.isArray(batch)) return;
      for (const msg of batch) this.#onMessage(msg, t0);
    });
    child.once('exit', (code, signal) => this.#onExit(code, signal));
    this.#flush();
  }

  #onMessage(msg: RunnerToPool, t0: number): void {
    switch (msg?.type) {
      case 'runner.ready':
        return this.#readyResolve(performance.now() - t0);
      case 'instance.output': {
        const watch = this.#instances.get(msg.id);
        if (watch?.onOutput) for (const p of msg.pieces) watch.onOutput(p);
        return;
      }
      case 'instance.ended': {
        const watch = this.#instances.get(msg.id);
        if (!watch) return;
        this.#instances.delete(msg.id);
        if (watch.onOutput) for (const p of msg.pieces) watch.onOutput(p);
        watch.onEnd(msg);
        if (this.#instances.size === 0) this.hooks.onIdle(this);
        return;
      }
      default:
        return; // not ours to act on: the runner is our code, so this is a bug, not an attack
    }
  }

  async #onExit(code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (this.#exited) return;
    this.#exited = true;
    if (this.#child?.pid) killGroup(this.#child.pid);
    const oomKilled = ((await this.#cgroup?.oomKills().catch(() => 0)) ?? 0) > 0;
    await this.#cgroup?.remove().catch(() => {});
    const lost: RunnerLost = { type: 'runner.lost', exitCode: code, signal, oomKilled, stderrTail: this.#stderrTail, stoppedByPool: this.#stopping };
    const watches = [...this.#instances.values()];
    this.#instances.clear();
    for (const w of watches) w.onEnd(lost);
    this.#readyResolve(-1);
    this.#exitedResolve();
    this.hooks.onExit(this);
  }

  /** Sends an instance to run; `watch` hears its output and its end (at once when the runner is gone). */
  run(msg: InstanceRun, watch: InstanceWatch): void {
    if (this.#exited) {
      watch.onEnd({ type: 'runner.lost', exitCode: null, signal: null, oomKilled: false, stderrTail: this.#stderrTail, stoppedByPool: this.#stopping });
      return;
    }
    this.#instances.set(msg.id, watch);
    this.#send(msg);
  }

  cancel(id: number): void {
    if (this.#instances.has(id)) this.#send({ type: 'instance.cancel', id });
  }

  forget(sha256: string): void {
    this.modules.delete(sha256);
    this.#send({ type: 'module.forget', sha256 });
  }

  /**
   * Sets the runner's CPU quota (cores, at least MIN_RUNNER_CPU), where it has a cgroup; resolves when written. A runner still starting keeps
   * every core until it is ready: starting a Node process and its worker threads is the provider's cost (~0.1-0.2
   * CPU-s), and under a 0.01-cpu quota (1 ms per 100 ms period) it would take half a minute. The latest value wins.
   */
  async setCpu(cpu: number): Promise<void> {
    this.#cpu = cpu;
    await this.ready;
    if (!this.#cgroup || this.#exited || this.#cpu !== cpu) return;
    await this.#cgroup.setCpu(Math.max(cpu, MIN_RUNNER_CPU)).catch(() => {});
  }

  /** Kills the runner and everything in it; resolves once it has exited and its cgroup is gone. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.spawned.catch(() => {});
    if (this.#child?.pid && !this.#exited) {
      killGroup(this.#child.pid);
      void this.#cgroup?.kill();
    }
    await this.#exitedPromise;
  }

  #send(msg: PoolToRunner): void {
    this.#outbox.push(msg);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    const child = this.#child;
    if (!child || this.#outbox.length === 0) return;
    const batch = this.#outbox;
    this.#outbox = [];
    if (child.connected) child.send(batch, (err) => void err); // a send that fails is a dead runner: its exit ends the instances
  }
}
