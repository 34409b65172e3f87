/**
 * The instances of array jobs running on this node, by allocation and index: each from the ask to its end, its
 * output kept as `<allocationId>:<index>`, its end told to its allocation actor (`instance.ended`). A WASM instance
 * runs in its requester's warm runner (WasmRunnerPool: one process per requester, a fresh WebAssembly instance per
 * run); without a pool, or for a process job, each instance is an execution of its own through the executor.
 * A WASM instance with `wasm.outputs` gets its own /out, `<data-dir>/outputs/<allocationId>/<index>/files`, emptied
 * before it starts; its manifest is written when it ends, before its end is reported (results-manifest.ts).
 */
import { availableParallelism } from 'node:os';
import type { Execution, Executor, OutputChunk } from '../../actors/executor.ts';
import type { InstancesEndedEvent } from '../../machines/batch.machine.ts';
import type { ExecutionOutcome } from '../../machines/allocation.messages.ts';
import type { JobSpec } from '../../machines/job.ts';
import type { Clock } from '../clock.ts';
import type { PoolInstance, PoolInstanceSpec } from '../executors/wasm-pool.ts';
import type { ModuleStore } from './module-store.ts';
import type { InstanceOutput } from './instance-output.ts';
import { OUTPUT_LIMIT_BYTES } from './output-log.ts';
import { type ResultsLayout, resultsLayout } from './results-manifest.ts';
import { prepareResults, sealResults } from './results-store.ts';

/** What BatchRuns needs of a warm runner pool (runtime/executors/wasm-pool.ts). */
export interface InstancePool {
  run(owner: string, spec: PoolInstanceSpec, onOutput?: (chunk: OutputChunk) => void): Promise<PoolInstance>;
  /** The cores the owner's running work may use. */
  setCpu(owner: string, cpu: number): void;
  /** The most memory one instance may have (a job asking more runs in a process of its own). */
  readonly maxMemoryBytes: number;
}

export interface BatchRunsDeps {
  readonly executor: (kind: string) => Promise<Executor | undefined>;
  readonly pool: () => InstancePool | undefined;
  readonly output: InstanceOutput;
  readonly modules: ModuleStore;
  readonly clock: Clock;
  /** The data dir, under which an instance with `wasm.outputs` gets its /out; none: no /out. */
  readonly outputsRoot?: string;
}

/** The output key of one instance. */
export const instanceOutputId = (allocationId: string, index: number) => `${allocationId}:${index}`;

interface Run {
  cancel: (() => void) | null;
  cancelled: boolean;
}

/** Writes the instance's manifest (when it has /out); what to add to its message when that failed. */
async function seal(results: ResultsLayout | undefined): Promise<string> {
  if (!results) return '';
  return sealResults(results).then(() => '', (e: Error) => `; its result files could not be listed: ${e.message}`);
}

/**
 * Instances started as processes of their own (no pool, or a process job) at once, at most: a provider that took
 * 100 slots of 0.01 cpu must not start 100 processes together (each costs ~45 MiB and ~60 ms of CPU to start).
 */
export const MAX_PROCESS_INSTANCES = Math.max(2, availableParallelism());

export class BatchRuns {
  readonly #runs = new Map<string, Run>();
  /** Process instances waiting for one of the MAX_PROCESS_INSTANCES places. */
  readonly #waiting: (() => void)[] = [];
  #processes = 0;
  /** The array allocations here with the cores each holds (slots x cpu): a requester's runner may use their sum. */
  readonly #allocations = new Map<string, { readonly requester: string; readonly cpu: number }>();

  constructor(private readonly deps: BatchRunsDeps) {}

  /** Runs one instance and reports its end; never rejects (a refusal is a failed instance). */
  /**
   * Runs one instance and reports its end to `report`, together with the other instances of its allocation that
   * ended in the same turn (one event for all of them); never rejects (a refusal is a failed instance).
   */
  async run(allocationId: string, requester: string, index: number, job: JobSpec, slots: number, report: (e: InstancesEndedEvent) => void): Promise<void> {
    const id = instanceOutputId(allocationId, index);
    const run: Run = { cancel: null, cancelled: false };
    this.#runs.set(id, run);
    this.hold(allocationId, requester, job.resources.cpu * slots);
    const { clock, output } = this.deps;
    const started = clock.now();
    const ended = (outcome: Omit<ExecutionOutcome, 'durationMs'> & { durationMs?: number }) =>
      this.#ended(allocationId, report, { index, outcome: { durationMs: clock.now() - started, ...outcome } });
    const results = this.#results(allocationId, index, job);
    try {
      const env = { DMS_INDEX: String(index), DMS_COUNT: String(job.count ?? 1) };
      const onOutput = (chunk: OutputChunk) => output.append(allocationId, index, chunk.stream, chunk.data);
      if (results) await prepareResults(results);
      const exec = await this.#start(requester, job, env, onOutput, results);
      run.cancel = () => exec.cancel();
      if (run.cancelled) exec.cancel();
      const r = await exec.wait();
      await output.end(allocationId, index);
      const unsealed = await seal(results);
      ended({ exitCode: r.exitCode, reason: r.reason, message: r.message + unsealed, durationMs: r.durationMs, outputBytes: r.outputBytes, outputTruncated: r.outputTruncated });
    } catch (e) {
      await output.end(allocationId, index);
      const unsealed = await seal(results);
      ended({ exitCode: null, reason: 'failed', message: (e as Error).message + unsealed, outputBytes: 0, outputTruncated: false });
    } finally {
      this.#runs.delete(id);
    }
  }

  /** Where the instance's result files go, for a WASM job with `outputs` on a node that keeps them. */
  #results(allocationId: string, index: number, job: JobSpec): ResultsLayout | undefined {
    if (job.executor !== 'wasm' || !job.wasm.outputs || this.deps.outputsRoot === undefined) return undefined;
    return resultsLayout(this.deps.outputsRoot, allocationId, index);
  }

  async #start(requester: string, job: JobSpec, env: Record<string, string>, onOutput: (chunk: OutputChunk) => void, results: ResultsLayout | undefined) {
    const limits = { memoryBytes: job.resources.memory, timeoutMs: job.timeoutMs, cpu: job.resources.cpu };
    if (job.executor === 'wasm') {
      const { sha256 } = job.wasm.module;
      const module = { path: this.deps.modules.path(sha256), sha256 };
      const pool = this.deps.pool();
      const wasmEnv = { ...job.wasm.env, ...env };
      const outputs = results ? { outputsDir: results.files, outputsMaxBytes: job.resources.disk } : {};
      // an instance asking more memory than the pool gives one runs in a process of its own
      if (pool && limits.memoryBytes <= pool.maxMemoryBytes) {
        return pool.run(requester, { name: job.name, module, args: job.wasm.args, env: wasmEnv, memoryBytes: limits.memoryBytes, timeoutMs: limits.timeoutMs, logLimitBytes: OUTPUT_LIMIT_BYTES, ...outputs }, onOutput);
      }
      const executor = await this.#executor('wasm');
      return this.#placed(() => executor.start({ executor: 'wasm', name: job.name, limits, logLimitBytes: OUTPUT_LIMIT_BYTES, wasm: { module: { path: module.path }, sha256, args: job.wasm.args, env: wasmEnv, ...outputs } }, onOutput));
    }
    const executor = await this.#executor('process');
    const processEnv = { ...job.process.env, ...env };
    return this.#placed(() => executor.start({ executor: 'process', name: job.name, limits, logLimitBytes: OUTPUT_LIMIT_BYTES, process: { command: job.process.command, args: job.process.args, env: processEnv } }, onOutput));
  }

  /** Starts a process instance once one of the MAX_PROCESS_INSTANCES places is free; the place is kept until it ends. */
  async #placed(start: () => Promise<Execution>): Promise<Execution> {
    if (this.#processes >= MAX_PROCESS_INSTANCES) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#processes += 1;
    const free = () => {
      this.#processes -= 1;
      this.#waiting.shift()?.();
    };
    let exec: Execution;
    try {
      exec = this.#drained(await start());
    } catch (e) {
      free();
      throw e;
    }
    void exec.wait().then(free, free);
    return exec;
  }

  async #executor(kind: string): Promise<Executor> {
    const executor = await this.deps.executor(kind);
    if (!executor) throw new Error(`executor "${kind}" is not enabled on this node`);
    return executor;
  }

  /** An execution's output iterator is drained (chunks are kept until read; the listener already wrote them). */
  #drained<T extends { output: AsyncIterable<OutputChunk> }>(exec: T): T {
    void (async () => {
      for await (const _ of exec.output);
    })().catch(() => {});
    return exec;
  }

  /** The requester's runner may use the cores its array allocations here hold (its cgroup, where there is one). */
  #setCpu(requester: string): void {
    let cpu = 0;
    for (const a of this.#allocations.values()) if (a.requester === requester) cpu += a.cpu;
    if (cpu > 0) this.deps.pool()?.setCpu(requester, Math.round(cpu * 1e6) / 1e6);
  }

  /**
   * An allocation here (an array job's, or a WASM job run in the pool) holds `cpu` cores of its requester's
   * runner: the runner may use what its requester's allocations here hold together. Once per allocation.
   */
  hold(allocationId: string, requester: string, cpu: number): void {
    if (this.#allocations.has(allocationId)) return;
    this.#allocations.set(allocationId, { requester, cpu });
    this.#setCpu(requester);
  }

  /** An allocation ended: its cores no longer count for its requester's runner. */
  ended(allocationId: string): void {
    const a = this.#allocations.get(allocationId);
    if (!a) return;
    this.#allocations.delete(allocationId);
    this.#setCpu(a.requester);
  }

  /** Ends of one turn, by allocation: delivered together once the turn is over. */
  readonly #ends = new Map<string, { report: (e: InstancesEndedEvent) => void; ended: InstancesEndedEvent['ended'][number][] }>();

  #ended(allocationId: string, report: (e: InstancesEndedEvent) => void, one: InstancesEndedEvent['ended'][number]): void {
    const pending = this.#ends.get(allocationId);
    if (pending) return void pending.ended.push(one);
    this.#ends.set(allocationId, { report, ended: [one] });
    setImmediate(() => {
      const p = this.#ends.get(allocationId);
      this.#ends.delete(allocationId);
      if (p) p.report({ type: 'instances.ended', ended: p.ended, now: this.deps.clock.now() });
    });
  }

  /** Makes the pool (its spare runner starts), so the first instance does not wait for a process start. */
  warm(): void {
    this.deps.pool();
  }

  /** Stops one instance; one still starting is stopped the moment it has. */
  cancel(allocationId: string, index: number): void {
    const run = this.#runs.get(instanceOutputId(allocationId, index));
    if (!run) return;
    run.cancelled = true;
    run.cancel?.();
  }

  cancelAll(): void {
    for (const run of this.#runs.values()) {
      run.cancelled = true;
      run.cancel?.();
    }
  }

  get running(): number {
    return this.#runs.size;
  }
}
