/**
 * What WasiExecutor and its child process (wasm-runner.js) say to each other. The job goes in on the child's stdin
 * as one frame: a 4-byte big-endian length, that many bytes of JSON (RunnerJob), then the module's bytes to EOF.
 * The result comes back as one JSON line (RunnerResult) on fd 3, so the job's own stdout and stderr stay its own.
 */

export interface RunnerJob {
  /** argv, argv[0] included. */
  readonly argv: readonly string[];
  /** "KEY=VALUE" strings. */
  readonly env: readonly string[];
  /**
   * The job's cgroup.procs files: the runner writes its pid into each once it has started, right before the
   * module is compiled, so the job is charged for the module's CPU and memory, not for the runner's own start.
   */
  readonly cgroupProcs?: readonly string[];
  /**
   * A job with `wasm.outputs`: the existing, empty directory preopened as `/out` (fd 3), and the bytes its files
   * may hold together (the job's `resources.disk`). See wasm-outputs.ts.
   */
  readonly outputs?: { readonly dir: string; readonly capBytes: number };
}

/** What a module with `/out` did with it (on an `exited` or `trapped` result). */
export interface RunnerOutputs {
  readonly usedBytes: number;
  readonly capBytes: number;
  /** Set when a write would have taken /out past capBytes (it failed with ENOSPC): the total it asked for. */
  readonly overflowBytes: number | null;
}

/** The module ran and called proc_exit, or returned from _start (code 0). */
export interface RunnerExited {
  readonly type: 'exited';
  readonly code: number;
  readonly memoryBytes: number;
  readonly outputs?: RunnerOutputs;
}

/** The module trapped (unreachable, out-of-bounds access, stack overflow, …). */
export interface RunnerTrapped {
  readonly type: 'trapped';
  readonly message: string;
  readonly memoryBytes: number;
  readonly outputs?: RunnerOutputs;
}

/** The module never started: it did not compile or link, is not a WASI command, or its memory is over the cap. */
export interface RunnerRefused {
  readonly type: 'refused';
  readonly cause: 'compile' | 'link' | 'not-command' | 'memory';
  readonly message: string;
}

export type RunnerResult = RunnerExited | RunnerTrapped | RunnerRefused;

export function encodeRunnerInput(job: RunnerJob, module: Uint8Array): Buffer {
  const header = Buffer.from(JSON.stringify(job), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(header.byteLength);
  return Buffer.concat([length, header, module]);
}

export function decodeRunnerInput(frame: Buffer): { job: RunnerJob; module: Uint8Array } {
  const length = frame.readUInt32BE(0);
  const job = JSON.parse(frame.subarray(4, 4 + length).toString('utf8')) as RunnerJob;
  return { job, module: frame.subarray(4 + length) };
}

/** The last well-formed result line the runner wrote, if any. */
export function parseRunnerResult(control: string): RunnerResult | undefined {
  const line = control.trim().split('\n').pop();
  if (!line) return undefined;
  try {
    const value = JSON.parse(line) as RunnerResult;
    return value && typeof value === 'object' && typeof value.type === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}
