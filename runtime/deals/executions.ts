/**
 * The jobs this node runs for its allocations, by allocation id, from asking the executor to the end: output to
 * the output log, the process group noted (so a node that died leaves no job behind: recovery ends it), and each
 * step reported to the allocation actor. A cancel that comes before the job has started cancels it the moment it
 * has; a stopping node cancels them all. An allocation has at most one execution: a part started again while its
 * previous execution still runs (or starts) stops that one, waits for its end, and only then starts; what the
 * stopped one still reports is dropped (its allocation has moved on). Also runs a part's health checks.
 */
import type { Executor, ExecutionResult, ExecutionSpec, OutputChunk } from '../../actors/executor.ts';
import { parseDealKey } from '../../machines/deal.ids.ts';
import type { InstancePool } from './batch-runs.ts';
import type { ExecutionEndedEvent, ExecutionRefusedEvent, ExecutionStartedEvent, HealthResultEvent } from '../../machines/allocation.messages.ts';
import type { HealthProbeTarget } from '../../machines/health.ts';
import type { JobSpec } from '../../machines/job.ts';
import type { Clock } from '../clock.ts';
import { type HealthProbe, probeHealth } from '../executors/health-probe.ts';
import { startTimeOf } from '../executors/process-group.ts';
import type { ModuleStore } from './module-store.ts';
import { OUTPUT_LIMIT_BYTES, type OutputLog } from './output-log.ts';
import { type ResultsLayout, resultsLayout } from './results-manifest.ts';
import { prepareResults, sealResults } from './results-store.ts';

/** What an execution tells its allocation actor. */
export type ExecutionEvent = ExecutionStartedEvent | ExecutionRefusedEvent | ExecutionEndedEvent;

export type Env = Readonly<Record<string, string>>;

export interface ExecutionsDeps {
  /** The executor for a kind, when this node offers it now. */
  readonly executor: (kind: string) => Promise<Executor | undefined>;
  readonly output: OutputLog;
  readonly modules: ModuleStore;
  readonly clock: Clock;
  /** Runs one health check (default: probeHealth, HTTP on loopback or a command). */
  readonly probe?: HealthProbe;
  /** The data dir, under which a job with `wasm.outputs` gets its /out (results-manifest.ts); none: no /out. */
  readonly outputsRoot?: string;
  /**
   * The warm runners (one per requester): a WASM job of its own runs in its requester's, a fresh instance, instead
   * of a process started for it (~60 ms of CPU and ~30 ms); none: every job gets a process.
   */
  readonly pool?: () => InstancePool | undefined;
  /** A pooled job's allocation holds `cpu` cores of its requester's runner (BatchRuns.hold). */
  readonly holdCpu?: (allocationId: string, requester: string, cpu: number) => void;
}

/** Which execution of an allocation this is: an array job's instance has an index. */
export interface RunOptions {
  readonly index?: number;
}

/** One execution of an allocation's job, from the ask to its end. */
interface Run {
  /** The job once started; null while it starts. */
  exec: { cancel(): void } | null;
  /** Asked to stop before it started: stopped the moment it has. */
  cancelled: boolean;
  /** A newer execution of the same allocation took its place: it reports nothing more. */
  superseded: boolean;
  /** Settles when this run is over (its job ended or never started), after its output and pid are put away. */
  done: Promise<void>;
}

export class Executions {
  /** The current execution of each allocation (starting or running). */
  readonly #runs = new Map<string, Run>();

  constructor(private readonly deps: ExecutionsDeps) {}

  /**
   * Starts the job of an allocation and follows it to its end, reporting each step. `env` is merged over the
   * job's own env (a part's DMS_PORT_* and DMS_ADDR_*).
   */
  async run(allocationId: string, job: JobSpec, report: (event: ExecutionEvent) => void, env?: Env, opts: RunOptions = {}): Promise<void> {
    const previous = this.#runs.get(allocationId);
    let finish!: () => void;
    const run: Run = { exec: null, cancelled: false, superseded: false, done: new Promise<void>((resolve) => (finish = resolve)) };
    this.#runs.set(allocationId, run);
    const tell = (event: ExecutionEvent): void => {
      if (!run.superseded) report(event);
    };
    try {
      if (previous) await this.#stop(previous);
      await this.#follow(allocationId, run, job, env, tell, opts);
    } catch (e) {
      tell({ type: 'execution.refused', reason: (e as Error).message, now: this.deps.clock.now() });
    } finally {
      if (this.#runs.get(allocationId) === run) this.#runs.delete(allocationId);
      finish();
    }
  }

  async #follow(allocationId: string, run: Run, job: JobSpec, env: Env | undefined, tell: (event: ExecutionEvent) => void, opts: RunOptions): Promise<void> {
    const { output, clock } = this.deps;
    const executor = await this.deps.executor(job.executor);
    if (!executor) {
      tell({ type: 'execution.refused', reason: `executor "${job.executor}" is not enabled on this node; send the job to a node started with --executors ${job.executor}`, now: clock.now() });
      return;
    }
    // taken over by a newer execution before anything ran: nothing to start (and nothing to tell)
    if (run.superseded) return;
    const results = this.#results(allocationId, job, opts);
    if (results) await prepareResults(results);
    const onOutput = (chunk: OutputChunk) => void output.append(allocationId, chunk.stream, chunk.data);
    const spec = this.#spec(job, env, results);
    const pooled = this.#pooled(allocationId, job);
    // every runner busy (the pool's maxRunners) or none could start: a process of its own, as without a pool
    const inPool = pooled && spec.executor === 'wasm' ? await pooled.pool.run(pooled.requester, this.#instanceSpec(spec), onOutput).catch((e: Error) => (e.name === 'ExecutorStartError' ? undefined : Promise.reject(e))) : undefined;
    const exec: { pid: number; cancel(): void; wait(): Promise<ExecutionResult>; output?: AsyncIterable<OutputChunk> } = inPool ?? (await executor.start(spec, onOutput));
    run.exec = exec;
    if (run.cancelled || run.superseded) exec.cancel();
    // a pooled job shares its requester's runner: that process is not the job's to note (it ends with this node)
    if (!inPool) void output.notePid(allocationId, exec.pid, startTimeOf(exec.pid));
    tell({ type: 'execution.started', pid: exec.pid, now: clock.now() });
    // drain the output iterator: chunks are kept until read (they are already written by the listener)
    const iterator = exec.output;
    if (iterator) {
      void (async () => {
        for await (const _ of iterator);
      })().catch(() => {});
    }
    const result = await exec.wait();
    run.exec = null;
    await output.flush(allocationId);
    // a newer execution noted its own pid: that one stays
    if (this.#runs.get(allocationId) === run) await output.forgetPid(allocationId);
    const { exitCode, reason, durationMs, outputBytes, outputTruncated } = result;
    // the manifest is written before the end is told, so a requester that sees the job ended finds its files
    const unsealed = results ? await sealResults(results).then(() => '', (e: Error) => `; its result files could not be listed: ${e.message}`) : '';
    const message = result.message + unsealed;
    tell({ type: 'execution.ended', outcome: { exitCode, reason, message, durationMs, outputBytes, outputTruncated }, now: clock.now() });
  }

  /** Stops a run taken over by a newer one of its allocation, and waits until it is over. */
  async #stop(run: Run): Promise<void> {
    run.superseded = true;
    if (run.exec) run.exec.cancel();
    else run.cancelled = true;
    await run.done;
  }

  /** Stops the job of an allocation; one still starting is stopped the moment it has started. */
  cancel(allocationId: string): void {
    const run = this.#runs.get(allocationId);
    if (!run) return;
    if (run.exec) run.exec.cancel();
    else run.cancelled = true;
  }

  /** A job must not outlive its node: every job is stopped (the allocation finds out when the node starts again). */
  cancelAll(): void {
    for (const id of this.#runs.keys()) this.cancel(id);
  }

  /**
   * Runs one health check of a part and reports its result; never rejects (a probe that throws is a failed check
   * whose output says why). A command check runs a program on this node: only where the node runs process jobs.
   */
  async check(target: HealthProbeTarget, timeoutMs: number, env: Env | undefined, report: (event: HealthResultEvent) => void): Promise<void> {
    const probe = this.deps.probe ?? probeHealth;
    const startedAt = this.deps.clock.now();
    let r: { ok: boolean; output: string; ms: number };
    try {
      if (target.type === 'command' && !(await this.deps.executor('process'))) {
        r = { ok: false, output: 'a command health check runs a program on the provider, and this node does not run process jobs; use an http check', ms: 0 };
      } else r = await probe(target, { timeoutMs, ...(env ? { env } : {}) });
    } catch (e) {
      r = { ok: false, output: `the health check could not run: ${(e as Error).message}`, ms: Math.max(0, this.deps.clock.now() - startedAt) };
    }
    report({ type: 'health.result', ok: r.ok, output: r.output, ms: r.ms, now: this.deps.clock.now() });
  }

  /**
   * The pool and the requester whose runner runs this job, for a WASM job of its own (not a part of an ensemble: a
   * service would hold one of the runner's threads for its whole life) within the pool's memory; else undefined.
   */
  #pooled(allocationId: string, job: JobSpec): { pool: InstancePool; requester: string } | undefined {
    if (job.executor !== 'wasm' || job.part) return undefined;
    const pool = this.deps.pool?.();
    const requester = parseDealKey(allocationId)?.requester;
    if (!pool || !requester || job.resources.memory > pool.maxMemoryBytes) return undefined;
    this.deps.holdCpu?.(allocationId, requester, job.resources.cpu);
    return { pool, requester };
  }

  #instanceSpec(spec: Extract<ExecutionSpec, { executor: 'wasm' }>): Parameters<InstancePool['run']>[1] {
    const { wasm, limits } = spec;
    if (!('path' in wasm.module)) throw new Error('a pooled job names its module by path');
    return {
      name: spec.name ?? 'job.wasm',
      module: { path: wasm.module.path, sha256: wasm.sha256 },
      args: wasm.args ?? [],
      env: wasm.env ?? {},
      memoryBytes: limits.memoryBytes,
      timeoutMs: limits.timeoutMs,
      logLimitBytes: spec.logLimitBytes,
      ...(wasm.outputsDir !== undefined ? { outputsDir: wasm.outputsDir, outputsMaxBytes: wasm.outputsMaxBytes ?? 0 } : {}),
    };
  }

  /** Where this execution's result files go, for a WASM job with `outputs` on a node that keeps them. */
  #results(allocationId: string, job: JobSpec, opts: RunOptions): ResultsLayout | undefined {
    if (job.executor !== 'wasm' || !job.wasm.outputs || this.deps.outputsRoot === undefined) return undefined;
    return resultsLayout(this.deps.outputsRoot, allocationId, opts.index);
  }

  #spec(job: JobSpec, env: Env | undefined, results?: ResultsLayout): ExecutionSpec {
    const limits = { memoryBytes: job.resources.memory, timeoutMs: job.timeoutMs, cpu: job.resources.cpu };
    if (job.executor === 'wasm') {
      const { sha256 } = job.wasm.module;
      const wasmEnv = env ? { ...job.wasm.env, ...env } : job.wasm.env;
      const outputs = results ? { outputsDir: results.files, outputsMaxBytes: job.resources.disk } : {};
      return { executor: 'wasm', name: job.name, limits, logLimitBytes: OUTPUT_LIMIT_BYTES, wasm: { module: { path: this.deps.modules.path(sha256) }, sha256, args: job.wasm.args, env: wasmEnv, ...outputs } };
    }
    const processEnv = env ? { ...job.process.env, ...env } : job.process.env;
    return { executor: 'process', name: job.name, limits, logLimitBytes: OUTPUT_LIMIT_BYTES, process: { command: job.process.command, args: job.process.args, env: processEnv } };
  }
}
