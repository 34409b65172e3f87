/**
 * What WasmRunnerPool and its runner processes (wasm-pool-runner.js) say to each other over the child's IPC
 * channel ('advanced' serialization, so bytes cross as bytes), and what the runner's main thread and its worker
 * threads (wasm-pool-runner.worker.js) say. Each IPC message is a batch: an array of the messages one side had
 * ready in one turn of its event loop.
 */

/** How the runner is set up: JSON in its argv[2]. */
export interface RunnerConfig {
  /** Worker threads, each running one instance at a time. */
  readonly threads: number;
  /** JS heap of each worker thread, MiB (the shim's buffers; the module's linear memory is not JS heap). */
  readonly workerHeapMib: number;
  /** The address space one instance's memory may reserve (V8's --wasm-max-mem-pages, in bytes). */
  readonly reserveBytes: number;
}

// ---- pool -> runner

/** Run one instance. `module` is sent with the first instance of a module in this runner only. */
export interface InstanceRun {
  readonly type: 'instance.run';
  readonly id: number;
  readonly sha256: string;
  readonly module?: Uint8Array;
  /** argv, argv[0] included. */
  readonly argv: readonly string[];
  /** "KEY=VALUE" strings. */
  readonly env: readonly string[];
  /** The instance's linear memory cap, a whole number of 64 KiB pages. */
  readonly memoryBytes: number;
  readonly timeoutMs: number;
  readonly logLimitBytes: number;
  /** A job with `wasm.outputs`: its /out (see InstanceOutputsSpec). */
  readonly outputs?: InstanceOutputsSpec;
}

/**
 * The instance's `/out` (wasm-outputs.ts): an existing, empty directory (an absolute path) preopened as fd 3, and the
 * bytes its files may hold together (the job's `resources.disk`).
 */
export interface InstanceOutputsSpec {
  readonly dir: string;
  readonly capBytes: number;
}

/** What an instance with /out did with it: past capBytes a write failed with ENOSPC, and overflowBytes says so. */
export interface InstanceOutputsUsage {
  readonly usedBytes: number;
  readonly capBytes: number;
  readonly overflowBytes: number | null;
}

export interface InstanceCancel {
  readonly type: 'instance.cancel';
  readonly id: number;
}

/** Drop a compiled module: the pool will send its bytes again before it is run here again. */
export interface ModuleForget {
  readonly type: 'module.forget';
  readonly sha256: string;
}

export type PoolToRunner = InstanceRun | InstanceCancel | ModuleForget;

// ---- runner -> pool

/** The runner's worker threads are up. */
export interface RunnerReady {
  readonly type: 'runner.ready';
}

/** Output of a running instance, in order; fd 1 is stdout, fd 2 stderr. */
export interface OutputPiece {
  readonly fd: 1 | 2;
  readonly data: Uint8Array;
}

export interface InstanceOutput {
  readonly type: 'instance.output';
  readonly id: number;
  readonly pieces: readonly OutputPiece[];
}

/** How an instance ended, as the runner saw it. */
export type InstanceEnd =
  | { readonly type: 'exited'; readonly code: number; readonly memoryBytes: number }
  | { readonly type: 'trapped'; readonly message: string; readonly memoryBytes: number }
  /** It never started: not valid WASM, cannot be linked, not a WASI command, or its initial memory is over the cap. */
  | { readonly type: 'refused'; readonly cause: 'compile' | 'link' | 'not-command' | 'memory'; readonly message: string }
  /** Its memory was seen over its cap at a WASI call or at the end. */
  | { readonly type: 'over-memory'; readonly memoryBytes: number }
  | { readonly type: 'timeout' }
  | { readonly type: 'cancelled' }
  /** Its worker thread died under it (e.g. the thread's JS heap ran out). */
  | { readonly type: 'thread-died'; readonly message: string; readonly memory: boolean };

export interface InstanceEnded {
  readonly type: 'instance.ended';
  readonly id: number;
  readonly end: InstanceEnd;
  /** From the instance's start in its thread (not its wait in the runner's queue). */
  readonly durationMs: number;
  readonly outputBytes: number;
  readonly outputTruncated: boolean;
  /** For an instance with /out whose thread saw it end (not one stopped or lost): what it wrote there. */
  readonly outputs?: InstanceOutputsUsage;
  /** The output not sent yet. */
  readonly pieces: readonly OutputPiece[];
}

export type RunnerToPool = RunnerReady | InstanceOutput | InstanceEnded;

// ---- runner main thread <-> worker thread

export interface WorkerRun {
  readonly type: 'run';
  readonly id: number;
  readonly sha256: string;
  /** The WebAssembly.Module, when this thread has not been sent it yet (it keeps each by sha256). */
  readonly module?: unknown;
  readonly argv: readonly string[];
  readonly env: readonly string[];
  readonly memoryBytes: number;
  readonly logLimitBytes: number;
  readonly outputs?: InstanceOutputsSpec;
}

/** The thread may drop its copy of a module. */
export interface WorkerForget {
  readonly type: 'forget';
  readonly sha256: string;
}

export type MainToWorker = WorkerRun | WorkerForget;

/** The thread's instance ended; its output is in the thread's ring (staged-output.ts), not here. */
export type WorkerEnded = Omit<InstanceEnded, 'pieces'>;

/** The thread's output ring is full: the instance waits until it is drained. */
export interface WorkerDrain {
  readonly type: 'drain';
}

export type WorkerToMain = WorkerEnded | WorkerDrain;
