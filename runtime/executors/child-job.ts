/**
 * The part both executors share: a child process in its own process group (detached, so setsid), its stdout and
 * stderr read through its own pipes into a capped OutputQueue, SIGKILLed with its whole group on timeout, cancel or
 * memory, and the group killed again when the child exits so no grandchild outlives the job.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { ExecutorStartError, type Execution, type ExecutionLimits, type ExecutionResult, type OutputListener } from '../../actors/executor.ts';
import { formatBytes, formatMs } from './limits.ts';
import { OutputQueue } from './output-queue.ts';
import type { JobCgroup } from './cgroup.ts';
import { GroupMemory, killGroup } from './process-group.ts';

export type KillReason = 'timeout' | 'cancelled' | 'memory';

export interface ChildJobInit {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  /** Written to the child's stdin, which is then closed; without it stdin is /dev/null. */
  readonly stdin?: Uint8Array;
  /** Open fd 3 as a pipe from the child and collect what it writes (the WASM runner's result). */
  readonly controlPipe?: boolean;
  readonly timeoutMs: number;
  readonly logLimitBytes: number;
  readonly onOutput?: OutputListener;
  /** Kill the group (reason 'memory') when its resident memory exceeds this, sampled every `intervalMs`. */
  readonly rssWatch?: { readonly limitBytes: number; readonly intervalMs: number };
  /**
   * The job's cgroup (cgroup.ts): the job is killed through it (setsid grandchildren included), a kernel OOM kill in
   * it reads as 'memory', and it is removed when the job has ended. Who enters it is the executor's choice.
   */
  readonly cgroup?: JobCgroup;
}

/** How the child ended, before an executor interprets it. */
export interface ChildOutcome {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Set when this module killed the group, and why. */
  readonly killedFor: KillReason | null;
  /** Everything the child wrote to fd 3. */
  readonly control: string;
  /** The last bytes of stderr, kept even past the output cap, for diagnosing a crash. */
  readonly stderrTail: string;
  readonly peakRssBytes: number | null;
  readonly durationMs: number;
  readonly outputBytes: number;
  readonly outputTruncated: boolean;
}

const STDERR_TAIL_BYTES = 2048;
/** After the child exits, how long its pipes may stay open (held by a dying grandchild) before we stop reading. */
const CLOSE_GRACE_MS = 1000;

export class ChildJob {
  readonly output: OutputQueue;
  readonly ended: Promise<ChildOutcome>;
  #killedFor: KillReason | null = null;
  #done = false;
  /** The child exited by itself or by a kill: a later timeout or cancel must not claim its end. */
  #exited = false;
  #stderrTail = '';
  #control = '';
  #peakRss: number | null = null;
  readonly #cgroup: JobCgroup | undefined;

  private constructor(
    private readonly child: ChildProcess & { pid: number },
    init: ChildJobInit,
    private readonly startedAt: number,
  ) {
    this.output = new OutputQueue(init.logLimitBytes, init.onOutput);
    this.#cgroup = init.cgroup;
    const ended = this.#watch(init);
    // the cgroup goes once the job has ended (whatever is still in it is killed first)
    this.ended = init.cgroup ? ended.finally(() => init.cgroup!.remove().catch(() => {})) : ended;
  }

  /** Spawns the child; rejects with ExecutorStartError when it cannot be started at all. */
  static async spawn(init: ChildJobInit): Promise<ChildJob> {
    const startedAt = performance.now();
    const child = spawn(init.command, [...init.args], {
      cwd: init.cwd,
      env: { ...init.env },
      detached: true,
      stdio: [init.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', ...(init.controlPipe ? (['pipe'] as const) : [])],
      windowsHide: true,
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => reject(new ExecutorStartError(`could not start ${init.command}: ${err.message}; check that it exists and that the machine has free processes`)));
    });
    if (init.stdin && child.stdin) {
      child.stdin.on('error', () => {}); // EPIPE when the child dies before reading everything: its outcome says why
      child.stdin.end(init.stdin);
    }
    return new ChildJob(child as ChildProcess & { pid: number }, init, startedAt);
  }

  get pid(): number {
    return this.child.pid;
  }

  /** SIGKILLs the whole group, remembering the first reason; no effect once the child has exited. */
  kill(reason: KillReason): void {
    if (this.#exited || this.#killedFor) return;
    this.#killedFor = reason;
    killGroup(this.child.pid);
    void this.#cgroup?.kill();
  }

  #watch(init: ChildJobInit): Promise<ChildOutcome> {
    const { child } = this;
    child.stdout!.on('data', (d: Buffer) => this.output.push('stdout', d));
    child.stderr!.on('data', (d: Buffer) => {
      this.output.push('stderr', d);
      this.#stderrTail = (this.#stderrTail + d.toString('utf8')).slice(-STDERR_TAIL_BYTES);
    });
    const control = child.stdio[3] as Readable | undefined;
    control?.on('data', (d: Buffer) => (this.#control += d.toString('utf8')));
    const timer = setTimeout(() => this.kill('timeout'), init.timeoutMs);
    const stopRss = init.rssWatch ? this.#watchRss(init.rssWatch.limitBytes, init.rssWatch.intervalMs) : () => {};
    return new Promise((resolve) => {
      let closeTimer: NodeJS.Timeout | undefined;
      const finish = (exitCode: number | null, signal: NodeJS.Signals | null) => {
        if (this.#done) return;
        this.#done = true;
        clearTimeout(timer);
        clearTimeout(closeTimer);
        stopRss();
        this.output.end();
        resolve({
          exitCode,
          signal,
          killedFor: this.#killedFor,
          control: this.#control,
          stderrTail: this.#stderrTail,
          peakRssBytes: this.#peakRss,
          durationMs: performance.now() - this.startedAt,
          outputBytes: this.output.bytes,
          outputTruncated: this.output.truncated,
        });
      };
      child.once('exit', (code, signal) => {
        this.#exited = true;
        clearTimeout(timer);
        killGroup(child.pid); // grandchildren left behind die with the job
        // and those that left the group (setsid) with its cgroup; a kernel OOM kill there was the memory limit
        const swept = this.#cgroup ? this.#sweepCgroup() : Promise.resolve();
        const end = () => void swept.then(() => finish(code, signal));
        closeTimer = setTimeout(() => {
          for (const s of child.stdio) s?.destroy();
          end();
        }, CLOSE_GRACE_MS);
        child.once('close', end);
      });
    });
  }

  async #sweepCgroup(): Promise<void> {
    const cg = this.#cgroup!;
    await cg.kill().catch(() => {});
    if (!this.#killedFor && (await cg.oomKills().catch(() => 0)) > 0) this.#killedFor = 'memory';
  }

  #watchRss(limitBytes: number, intervalMs: number): () => void {
    const group = new GroupMemory(this.child.pid);
    const tick = () => {
      const rss = group.sample();
      if (rss === undefined || this.#done) return;
      this.#peakRss = Math.max(this.#peakRss ?? 0, rss);
      if (rss > limitBytes) this.kill('memory');
    };
    const interval = setInterval(tick, intervalMs);
    tick();
    return () => clearInterval(interval);
  }
}

/** How an executor reads a child's end: the result's first three fields. */
export type Interpret = (outcome: ChildOutcome) => Pick<ExecutionResult, 'exitCode' | 'reason' | 'message'>;

/** The end of a job this module killed, worded the same for every executor. */
export function killedResult(outcome: ChildOutcome, limits: ExecutionLimits): Pick<ExecutionResult, 'exitCode' | 'reason' | 'message'> | undefined {
  switch (outcome.killedFor) {
    case null:
      return undefined;
    case 'timeout':
      return { exitCode: null, reason: 'timeout', message: `killed at its time limit of ${formatMs(limits.timeoutMs)}; give the job a longer timeout or make it faster` };
    case 'cancelled':
      return { exitCode: null, reason: 'cancelled', message: `cancelled after ${formatMs(outcome.durationMs)}` };
    case 'memory':
      return { exitCode: null, reason: 'memory', message: `killed: its processes used ${formatBytes(outcome.peakRssBytes ?? 0)}, over its memory limit of ${formatBytes(limits.memoryBytes)}; ask for more memory` };
    default: {
      const never: never = outcome.killedFor;
      return never;
    }
  }
}

/** The Execution handle over a spawned child; `wait()` never rejects. */
export function executionOf(job: ChildJob, interpret: Interpret): Execution {
  const result: Promise<ExecutionResult> = job.ended.then((outcome) => {
    let head: Pick<ExecutionResult, 'exitCode' | 'reason' | 'message'>;
    try {
      head = interpret(outcome);
    } catch (err) {
      head = { exitCode: outcome.exitCode, reason: 'crashed', message: `the job ended but its end could not be read: ${(err as Error).message}` };
    }
    return { ...head, signal: outcome.signal, durationMs: outcome.durationMs, outputBytes: outcome.outputBytes, outputTruncated: outcome.outputTruncated };
  });
  return { pid: job.pid, output: job.output, wait: () => result, cancel: () => job.kill('cancelled') };
}
