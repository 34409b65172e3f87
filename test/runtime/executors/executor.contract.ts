// The Executor port's behaviour, written once and run against every implementation (executors.test.ts).
// An implementation supplies its executor and the same few jobs in its own terms (a WASM module, a shell script).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Execution, ExecutionLimits, ExecutionResult, ExecutionSpec, Executor, OutputChunk } from '../../../actors/executor.ts';

export interface ContractJobs {
  /**
   * Prints "hello from …", then "arg: X" for each arg and "env: K=V" for each env entry to stdout, "hello on
   * stderr" to stderr, and exits with `exitCode`.
   */
  hello(args: readonly string[], env: Record<string, string>, exitCode: number): ExecutionSpec;
  /** Prints "looping\n" to stdout, then runs until killed. */
  forever(): ExecutionSpec;
  /** Writes 2 MiB to stdout, then exits 0. */
  chatty(): ExecutionSpec;
}

export interface ExecutorFixture {
  readonly executor: Executor;
  readonly jobs: ContractJobs;
}

export type ExecutorFactory = () => Promise<ExecutorFixture>;

/** Generous because CI machines are slow and busy; a kill that does not happen takes forever, not a second. */
export const KILL_GRACE_MS = 2000;
export const CHATTY_BYTES = 2 * 2 ** 20;

export const limitsOf = (spec: ExecutionSpec, limits: Partial<ExecutionLimits>, logLimitBytes = spec.logLimitBytes): ExecutionSpec =>
  ({ ...spec, limits: { ...spec.limits, ...limits }, logLimitBytes }) as ExecutionSpec;

export interface Run {
  readonly result: ExecutionResult;
  readonly chunks: OutputChunk[];
  readonly stdout: string;
  readonly stderr: string;
  readonly wallMs: number;
}

/** Starts a job, optionally acts on it once it printed something, and collects everything until it ends. */
export async function runJob(executor: Executor, spec: ExecutionSpec, onFirstOutput?: (execution: Execution) => void): Promise<Run> {
  const t0 = performance.now();
  const execution = await executor.start(spec);
  const chunks: OutputChunk[] = [];
  for await (const chunk of execution.output) {
    if (chunks.length === 0) onFirstOutput?.(execution);
    chunks.push(chunk);
  }
  const result = await execution.wait();
  const text = (stream: OutputChunk['stream']) => Buffer.concat(chunks.filter((c) => c.stream === stream).map((c) => c.data)).toString('utf8');
  return { result, chunks, stdout: text('stdout'), stderr: text('stderr'), wallMs: performance.now() - t0 };
}

export async function rejectsWith(promise: Promise<unknown>, name: string, messagePart?: RegExp): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    const e = err as Error;
    assert.is(e.name, name, `expected ${name}, got ${e.name}: ${e.message}`);
    if (messagePart) assert.match(e.message, messagePart);
    return e;
  }
  assert.unreachable(`expected a ${name} rejection, but it resolved`);
  throw new Error('unreachable');
}

interface Ctx {
  fx?: ExecutorFixture;
}

export function executorContract(impl: string, factory: ExecutorFactory): void {
  const make = (behaviour: string) => {
    const s = suite<Ctx>(`${impl}: ${behaviour}`);
    s.before.each(async (ctx) => {
      ctx.fx = await factory();
    });
    s.after.each((ctx) => {
      delete ctx.fx;
    });
    return s;
  };
  const fx = (ctx: Ctx) => ctx.fx!;

  const completes = make('a job that exits 0 completes with its output captured');
  completes('stdout, stderr, args and env reach the caller; exit code 0', async (ctx) => {
    const { executor, jobs } = fx(ctx);
    const run = await runJob(executor, jobs.hello(['one', 'two words'], { GREETING: 'hi there' }, 0));
    assert.is(run.result.reason, 'completed', run.result.message);
    assert.is(run.result.exitCode, 0);
    assert.is(run.result.signal, null);
    assert.match(run.stdout, /^hello from /);
    assert.match(run.stdout, /arg: one\narg: two words\n/);
    assert.match(run.stdout, /env: GREETING=hi there\n/);
    assert.is(run.stderr, 'hello on stderr\n');
    assert.is(run.result.outputBytes, Buffer.byteLength(run.stdout) + Buffer.byteLength(run.stderr));
    assert.is(run.result.outputTruncated, false);
  });
  completes('the listener sees the same chunks, in order, before the iterator', async (ctx) => {
    const { executor, jobs } = fx(ctx);
    const heard: OutputChunk[] = [];
    const execution = await executor.start(jobs.hello(['x'], {}, 0), (chunk) => heard.push(chunk));
    const read: OutputChunk[] = [];
    for await (const chunk of execution.output) read.push(chunk);
    assert.equal(heard, read);
    assert.ok(read.length >= 2);
    assert.is((await execution.wait()).reason, 'completed');
  });
  completes('wait() gives the same result every time; cancel() after the end changes nothing', async (ctx) => {
    const { executor, jobs } = fx(ctx);
    const execution = await executor.start(jobs.hello([], {}, 0));
    const first = await execution.wait();
    execution.cancel();
    assert.is(await execution.wait(), first);
    assert.is(first.reason, 'completed');
  });
  completes.run();

  const fails = make('a non-zero exit fails the job');
  fails('exit code 3 -> failed, exit code kept', async (ctx) => {
    const { executor, jobs } = fx(ctx);
    const run = await runJob(executor, jobs.hello([], {}, 3));
    assert.is(run.result.reason, 'failed');
    assert.is(run.result.exitCode, 3);
    assert.match(run.result.message, /code 3/);
    assert.is(run.stderr, 'hello on stderr\n');
  });
  fails.run();

  const timeout = make('a job is killed at its timeout');
  timeout('a job that never ends is killed within timeout + grace, reason timeout', async (ctx) => {
    const { executor, jobs } = fx(ctx);
    const run = await runJob(executor, limitsOf(jobs.forever(), { timeoutMs: 400 }));
    assert.is(run.result.reason, 'timeout', run.result.message);
    assert.is(run.result.exitCode, null);
    assert.is(run.result.signal, 'SIGKILL');
    assert.ok(run.result.durationMs >= 400, `ended after ${run.result.durationMs} ms, before its timeout`);
    assert.ok(run.wallMs < 400 + KILL_GRACE_MS, `took ${run.wallMs} ms`);
    assert.match(run.result.message, /time limit/);
  });
  timeout.run();

  const cancel = make('cancel kills a running job');
  cancel('cancel after its first output -> cancelled, promptly, nothing after', async (ctx) => {
    const { executor, jobs } = fx(ctx);
    let cancelledAt = 0;
    const run = await runJob(executor, limitsOf(jobs.forever(), { timeoutMs: 30_000 }), (execution) => {
      cancelledAt = performance.now();
      execution.cancel();
      execution.cancel(); // idempotent
    });
    assert.is(run.result.reason, 'cancelled', run.result.message);
    assert.is(run.result.exitCode, null);
    assert.is(run.stdout, 'looping\n');
    assert.ok(performance.now() - cancelledAt < KILL_GRACE_MS, 'the job outlived its cancel');
  });
  cancel('cancel right after start, before any output', async (ctx) => {
    const { executor, jobs } = fx(ctx);
    const execution = await executor.start(limitsOf(jobs.forever(), { timeoutMs: 30_000 }));
    execution.cancel();
    const result = await execution.wait();
    assert.is(result.reason, 'cancelled');
  });
  cancel.run();

  const capped = make('output is capped at logLimitBytes');
  capped('2 MiB written, 64 KiB kept, all counted, job still completes', async (ctx) => {
    const { executor, jobs } = fx(ctx);
    const run = await runJob(executor, limitsOf(jobs.chatty(), {}, 64 * 1024));
    assert.is(run.result.reason, 'completed', run.result.message);
    assert.is(run.chunks.reduce((n, c) => n + c.data.byteLength, 0), 64 * 1024);
    assert.is(run.result.outputBytes, CHATTY_BYTES);
    assert.is(run.result.outputTruncated, true);
  });
  capped('logLimitBytes 0 keeps nothing', async (ctx) => {
    const { executor, jobs } = fx(ctx);
    const run = await runJob(executor, limitsOf(jobs.hello([], {}, 0), {}, 0));
    assert.is(run.chunks.length, 0);
    assert.is(run.result.outputTruncated, true);
    assert.is(run.result.reason, 'completed');
  });
  capped.run();

  const refuses = make('a bad spec is refused before anything runs');
  refuses('a job for another executor -> InvalidJobError', async (ctx) => {
    const { executor, jobs } = fx(ctx);
    const spec = jobs.hello([], {}, 0);
    const other = spec.executor === 'wasm'
      ? ({ executor: 'process', process: { command: 'true' }, limits: spec.limits, logLimitBytes: 1024 } as const)
      : ({ executor: 'wasm', wasm: { module: { bytes: new Uint8Array() }, sha256: '0'.repeat(64) }, limits: spec.limits, logLimitBytes: 1024 } as const);
    await rejectsWith(executor.start(other), 'InvalidJobError', /cannot run/);
  });
  refuses('zero or negative limits -> InvalidJobError naming the field', async (ctx) => {
    const { executor, jobs } = fx(ctx);
    await rejectsWith(executor.start(limitsOf(jobs.hello([], {}, 0), { timeoutMs: 0 })), 'InvalidJobError', /limits\.timeoutMs/);
    await rejectsWith(executor.start(limitsOf(jobs.hello([], {}, 0), { memoryBytes: -1 })), 'InvalidJobError', /limits\.memoryBytes/);
  });
  refuses.run();
}
