/**
 * The jobs this node runs for its allocations, by allocation id, from asking the executor to the end: output to
 * the output log, the process group noted (so a node that died leaves no job behind: recovery ends it), and each
 * step reported to the allocation actor. A cancel that comes before the job has started cancels it the moment it
 * has; a stopping node cancels them all.
 */
import type { Executor, ExecutionSpec } from '../../actors/executor.ts';
import type { ExecutionEndedEvent, ExecutionRefusedEvent, ExecutionStartedEvent } from '../../machines/allocation.messages.ts';
import type { JobSpec } from '../../machines/job.ts';
import type { Clock } from '../clock.ts';
import { startTimeOf } from '../executors/process-group.ts';
import type { ModuleStore } from './module-store.ts';
import { OUTPUT_LIMIT_BYTES, type OutputLog } from './output-log.ts';

/** What an execution tells its allocation actor. */
export type ExecutionEvent = ExecutionStartedEvent | ExecutionRefusedEvent | ExecutionEndedEvent;

export interface ExecutionsDeps {
  /** The executor for a kind, when this node offers it now. */
  readonly executor: (kind: string) => Promise<Executor | undefined>;
  readonly output: OutputLog;
  readonly modules: ModuleStore;
  readonly clock: Clock;
}

export class Executions {
  /** Jobs running now. */
  readonly #running = new Map<string, { cancel(): void }>();
  /** Asked to start, not started yet; and those of them asked to stop meanwhile. */
  readonly #starting = new Set<string>();
  readonly #cancelled = new Set<string>();

  constructor(private readonly deps: ExecutionsDeps) {}

  /** Starts the job of an allocation and follows it to its end, reporting each step. */
  async run(allocationId: string, job: JobSpec, report: (event: ExecutionEvent) => void): Promise<void> {
    const { output, clock } = this.deps;
    this.#starting.add(allocationId);
    try {
      const executor = await this.deps.executor(job.executor);
      if (!executor) {
        report({ type: 'execution.refused', reason: `executor "${job.executor}" is not enabled on this node; send the job to a node started with --executors ${job.executor}`, now: clock.now() });
        return;
      }
      const exec = await executor.start(this.#spec(job), (chunk) => void output.append(allocationId, chunk.stream, chunk.data));
      this.#starting.delete(allocationId);
      this.#running.set(allocationId, exec);
      if (this.#cancelled.delete(allocationId)) exec.cancel();
      void output.notePid(allocationId, exec.pid, startTimeOf(exec.pid));
      report({ type: 'execution.started', pid: exec.pid, now: clock.now() });
      // drain the output iterator: chunks are kept until read (they are already written by the listener)
      void (async () => {
        for await (const _ of exec.output);
      })().catch(() => {});
      const result = await exec.wait();
      this.#running.delete(allocationId);
      await output.flush(allocationId);
      await output.forgetPid(allocationId);
      const { exitCode, reason, message, durationMs, outputBytes, outputTruncated } = result;
      report({ type: 'execution.ended', outcome: { exitCode, reason, message, durationMs, outputBytes, outputTruncated }, now: clock.now() });
    } catch (e) {
      this.#running.delete(allocationId);
      report({ type: 'execution.refused', reason: (e as Error).message, now: clock.now() });
    } finally {
      this.#starting.delete(allocationId);
      this.#cancelled.delete(allocationId);
    }
  }

  /** Stops the job of an allocation; one still starting is stopped the moment it has started. */
  cancel(allocationId: string): void {
    const running = this.#running.get(allocationId);
    if (running) running.cancel();
    else if (this.#starting.has(allocationId)) this.#cancelled.add(allocationId);
  }

  /** A job must not outlive its node: every job is stopped (the allocation finds out when the node starts again). */
  cancelAll(): void {
    for (const e of this.#running.values()) e.cancel();
    for (const id of this.#starting) this.#cancelled.add(id);
  }

  #spec(job: JobSpec): ExecutionSpec {
    const limits = { memoryBytes: job.resources.memory, timeoutMs: job.timeoutMs, cpu: job.resources.cpu };
    if (job.executor === 'wasm') {
      const { sha256 } = job.wasm.module;
      return { executor: 'wasm', name: job.name, limits, logLimitBytes: OUTPUT_LIMIT_BYTES, wasm: { module: { path: this.deps.modules.path(sha256) }, sha256, args: job.wasm.args, env: job.wasm.env } };
    }
    return { executor: 'process', name: job.name, limits, logLimitBytes: OUTPUT_LIMIT_BYTES, process: { command: job.process.command, args: job.process.args, env: job.process.env } };
  }
}
