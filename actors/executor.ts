/**
 * The executor port: how an Allocation runs its job. The runtime implements it (WasiExecutor runs a WASI preview1
 * module in a child process, ProcessExecutor a local command in its own process group); an actor knows only this.
 *
 * A job is started once, streams its output while it runs, and ends exactly once with an ExecutionResult. Nothing
 * a job does can end the caller's process: every job runs in a child process that is killed with its process group
 * on timeout or cancel. Refusals before anything runs (bad hash, not WASM, unknown command, …) reject `start` with an
 * ExecutorError; everything after that, including crashes, ends in `wait()`'s result.
 */

/** Which executor runs a job; the job file's `executor` field. */
export type ExecutorKind = 'wasm' | 'process';

/** OS-level limits for one job. */
export interface ExecutionLimits {
  /** Memory the job may use, in bytes: the WASM linear memory cap, or the process group's resident memory. */
  readonly memoryBytes: number;
  /** Wall-clock time from start until the job is killed with reason 'timeout'. */
  readonly timeoutMs: number;
  /** Cores granted (may be fractional). Scheduling only: not enforced by the OS here (no cgroups). */
  readonly cpu: number;
}

/** A WASI preview1 command module: it has `_start` and exports its memory. */
export interface WasmJob {
  /** The module's bytes, or a file to read them from (read once, then checked like bytes). */
  readonly module: { readonly bytes: Uint8Array } | { readonly path: string };
  /** Hex sha256 of the module's bytes; a module whose bytes do not match is refused before it runs. */
  readonly sha256: string;
  /** argv after argv[0] (argv[0] is the job's name). */
  readonly args?: readonly string[];
  /** The module's whole environment: nothing of the provider's leaks in. */
  readonly env?: Readonly<Record<string, string>>;  /**
   * A job with `wasm.outputs`: an existing, empty directory on the provider's disk, preopened in the module as
   * `/out`, whose files may hold `outputsMaxBytes` together (the job's `resources.disk`); a write past it fails
   * with ENOSPC and the job ends `failed`.
   */
  readonly outputsDir?: string;
  readonly outputsMaxBytes?: number;
}

/** A local command, run without a shell unless the command is one. */
export interface ProcessJob {
  readonly command: string;
  readonly args?: readonly string[];
  /**
   * The job's whole environment, plus PATH set by the executor (a PATH given here is searched first); nothing
   * else of the provider's environment is passed.
   */
  readonly env?: Readonly<Record<string, string>>;
  /** Working directory; the executor's default when absent. */
  readonly cwd?: string;
}

interface ExecutionSpecBase {
  /** A short name for messages and argv[0]. */
  readonly name?: string;
  readonly limits: ExecutionLimits;
  /** Output kept and streamed, stdout and stderr together; the rest is counted and dropped. */
  readonly logLimitBytes: number;
}

export interface WasmExecutionSpec extends ExecutionSpecBase {
  readonly executor: 'wasm';
  readonly wasm: WasmJob;
}

export interface ProcessExecutionSpec extends ExecutionSpecBase {
  readonly executor: 'process';
  readonly process: ProcessJob;
}

export type ExecutionSpec = WasmExecutionSpec | ProcessExecutionSpec;

/** A piece of the job's output, in the order it was read. */
export interface OutputChunk {
  readonly stream: 'stdout' | 'stderr';
  readonly data: Uint8Array;
}

/**
 * Why a job ended: `completed` exit 0; `failed` non-zero exit, trap, or the module could not load;
 * `timeout` killed at its time limit; `cancelled` killed by `cancel()`; `memory` ended by its memory limit;
 * `crashed` the job's host process died on its own (a signal, a runtime fault) without a result.
 */
export type ExecutionEndReason = 'completed' | 'failed' | 'timeout' | 'cancelled' | 'memory' | 'crashed';

export interface ExecutionResult {
  /** The job's exit code; null when it did not exit by itself (killed, trapped, crashed). */
  readonly exitCode: number | null;
  readonly reason: ExecutionEndReason;
  /** One line for people: what happened and, when it failed, what to do. */
  readonly message: string;
  /** The signal that ended the job's process, if one did (e.g. 'SIGKILL' after a timeout). */
  readonly signal: string | null;
  readonly durationMs: number;
  /** Output bytes the job wrote, kept or not. */
  readonly outputBytes: number;
  /** True when output beyond `logLimitBytes` was dropped. */
  readonly outputTruncated: boolean;
}

/** One running job. */
export interface Execution {
  /** The OS process id of the job's host process (its process group id too). */
  readonly pid: number;
  /**
   * The job's output from its start, capped at `logLimitBytes`; ends when the job ends. Iterate it once: chunks
   * are buffered until read, so a late reader misses nothing.
   */
  readonly output: AsyncIterable<OutputChunk>;
  /** Resolves once, when the job has ended and its processes are gone; never rejects. */
  wait(): Promise<ExecutionResult>;
  /** Kills the job and its process group (reason 'cancelled'). Idempotent; no effect once it ended. */
  cancel(): void;
}

/** Called with each output chunk as it is read (kept chunks only), before `output` yields it. */
export type OutputListener = (chunk: OutputChunk) => void;

export interface Executor {
  readonly kind: ExecutorKind;
  /**
   * Checks the spec and starts the job. Rejects with an ExecutorError (matched by `name`) when the job is refused
   * before it runs; once it resolves, the job's end is reported only through the Execution.
   */
  start(spec: ExecutionSpec, onOutput?: OutputListener): Promise<Execution>;
}

/** Base of every refusal by an executor. */
export class ExecutorError extends Error {
  override name = 'ExecutorError';
}

/** The spec is for another executor, or its limits make no sense. */
export class InvalidJobError extends ExecutorError {
  override name = 'InvalidJobError';
}

/** The module's bytes do not start with the WASM magic and version 1. */
export class NotWasmError extends ExecutorError {
  override name = 'NotWasmError';
}

export class ModuleTooLargeError extends ExecutorError {
  override name = 'ModuleTooLargeError';
}

/** The module's bytes do not hash to the sha256 the job names. */
export class ModuleHashMismatchError extends ExecutorError {
  override name = 'ModuleHashMismatchError';
}

/** The module's file could not be read. */
export class ModuleNotFoundError extends ExecutorError {
  override name = 'ModuleNotFoundError';
}

/** A process job's command is not an executable file on the job's PATH. */
export class CommandNotFoundError extends ExecutorError {
  override name = 'CommandNotFoundError';
}

/** The executor could not start its host process (e.g. out of processes). */
export class ExecutorStartError extends ExecutorError {
  override name = 'ExecutorStartError';
}
