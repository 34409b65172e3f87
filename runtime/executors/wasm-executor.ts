/**
 * WasiExecutor: runs a WASI preview1 command module in a child process (wasm-runner.js), never in the node's own
 * process, so nothing a module does (or a WASI host bug it triggers) can take the node down.
 *
 * Memory is capped three ways: V8's `--wasm-max-mem-pages` makes memory.grow past the job's limit return -1 (the
 * module sees an ordinary out-of-memory); `--disable-wasm-trap-handler` stops V8 reserving 10 GiB of guard pages
 * per memory, which lets RLIMIT_AS (`prlimit --as`) cap the whole runner at limit + RUNNER_ADDRESS_SPACE_BYTES;
 * `--max-old-space-size` caps the runner's JS heap. Time: SIGKILL to the process group at the timeout.
 */
import { access } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ExecutorStartError,
  InvalidJobError,
  type Execution,
  type ExecutionLimits,
  type ExecutionResult,
  type ExecutionSpec,
  type Executor,
  type OutputListener,
  type WasmJob,
} from '../../actors/executor.ts';
import { jobCgroup } from './isolation.ts';
import { ChildJob, executionOf, killedResult, type ChildOutcome } from './child-job.ts';
import { checkLimits, formatBytes, MAX_RUNNABLE_MODULE_BYTES, RUNNER_ADDRESS_SPACE_BYTES, RUNNER_HEAP_MIB } from './limits.ts';
import { cpuSecondsFor, findExecutable, withOsLimits } from './os-limits.ts';
import { loadCheckedModule } from './wasm-module.ts';
import { overflowMessage } from './wasm-outputs.ts';
import { encodeRunnerInput, parseRunnerResult, type RunnerResult } from './wasm-runner.protocol.ts';

const PAGE_BYTES = 65536;
const MAX_PAGES = 65536; // 4 GiB: the most a 32-bit memory can address
/** A failure with the memory this close to its cap is put down to memory. */
const MEMORY_FULL_SHARE = 0.9;

/** Memory the runner's cgroup allows beyond the module's memory cap: what compiling and running it allocate. */
export const RUNNER_CGROUP_OVERHEAD_BYTES = 64 * 1024 * 1024;
/** Threads the runner (a Node process) may have in its cgroup: V8's and libuv's, with room for compiler threads. */
const RUNNER_PIDS = 64;

export interface WasiExecutorInit {
  readonly maxModuleBytes?: number;
  /** The compiled runner script; default wasm-runner.js beside this file. */
  readonly runnerPath?: string;
  /** Node binary for the runner; default this process's. */
  readonly nodePath?: string;
  /** Virtual memory allowed to the runner on top of the job's memory limit. */
  readonly runnerAddressSpaceBytes?: number;
  /** Fence each job in a cgroup of its own where the machine allows (default true; see isolation.ts). */
  readonly cgroups?: boolean;
  /** prlimit's path; null to use the `sh -c ulimit` wrapper; default: found on `searchPath`. */
  readonly prlimitPath?: string | null;
  /** Where to look for prlimit; default /usr/bin:/bin:/usr/sbin:/sbin. */
  readonly searchPath?: string;
}

export class WasiExecutor implements Executor {
  readonly kind = 'wasm' as const;
  readonly #maxModuleBytes: number;
  readonly #runnerPath: string;
  readonly #nodePath: string;
  readonly #runnerAddressSpace: number;
  readonly #prlimit: string | undefined;
  #runnerChecked: Promise<void> | undefined;

  readonly #cgroups: boolean;

  constructor(init: WasiExecutorInit = {}) {
    this.#maxModuleBytes = init.maxModuleBytes ?? MAX_RUNNABLE_MODULE_BYTES;
    this.#runnerPath = init.runnerPath ?? fileURLToPath(new URL('./wasm-runner.js', import.meta.url));
    this.#nodePath = init.nodePath ?? process.execPath;
    this.#runnerAddressSpace = init.runnerAddressSpaceBytes ?? RUNNER_ADDRESS_SPACE_BYTES;
    this.#cgroups = init.cgroups ?? true;
    this.#prlimit = init.prlimitPath === null ? undefined : (init.prlimitPath ?? findExecutable('prlimit', init.searchPath ?? '/usr/bin:/bin:/usr/sbin:/sbin'));
  }

  /** How the runner's memory is capped here: 'prlimit' or 'ulimit' (for reports and tests). */
  get osLimitTool(): 'prlimit' | 'ulimit' {
    return this.#prlimit ? 'prlimit' : 'ulimit';
  }

  async #checkRunner(): Promise<void> {
    this.#runnerChecked ??= access(this.#runnerPath).catch(() => {
      this.#runnerChecked = undefined;
      throw new ExecutorStartError(`the WASM runner ${this.#runnerPath} is missing; build the sources with "npm run build"`);
    });
    return this.#runnerChecked;
  }

  async start(spec: ExecutionSpec, onOutput?: OutputListener): Promise<Execution> {
    if (spec.executor !== 'wasm') throw new InvalidJobError(`the wasm executor cannot run a "${spec.executor}" job; send it to a node that offers "${spec.executor}"`);
    checkLimits(spec);
    const pages = Math.min(MAX_PAGES, Math.floor(spec.limits.memoryBytes / PAGE_BYTES));
    if (pages < 1) throw new InvalidJobError(`limits.memoryBytes is ${spec.limits.memoryBytes}; a WASM job needs at least one 64 KiB page`);
    const module = await loadCheckedModule(spec.wasm, this.#maxModuleBytes);
    await this.#checkRunner();
    const name = spec.name ?? 'job.wasm';
    const env = Object.entries(spec.wasm.env ?? {}).map(([k, v]) => `${k}=${v}`);
    const node = [
      '--disable-wasm-trap-handler',
      `--wasm-max-mem-pages=${pages}`,
      `--max-old-space-size=${RUNNER_HEAP_MIB}`,
      '--no-warnings',
      this.#runnerPath,
    ];
    const capBytes = pages * PAGE_BYTES;
    const limited = withOsLimits(this.#nodePath, node, { addressSpaceBytes: capBytes + this.#runnerAddressSpace, cpuSeconds: cpuSecondsFor(spec.limits.timeoutMs, spec.limits.cpu) }, this.#prlimit);
    // the runner enters the job's cgroup itself once started, so the module's CPU and memory are the job's and the
    // runner's own start (~60 ms CPU, ~45 MiB) is not: a 0.1-cpu job would otherwise wait 0.6 s to begin
    const cgroup = this.#cgroups ? await jobCgroup('wasm', { cpu: spec.limits.cpu, memoryBytes: capBytes + RUNNER_CGROUP_OVERHEAD_BYTES, pids: RUNNER_PIDS }) : undefined;
    let job: ChildJob;
    try {
      job = await ChildJob.spawn({
        ...limited,
        env: {},
        cwd: os.tmpdir(),
        stdin: encodeRunnerInput({ argv: [name, ...(spec.wasm.args ?? [])], env, ...(cgroup ? { cgroupProcs: cgroup.procsFiles } : {}), ...outputsOf(spec.wasm) }, module),
        controlPipe: true,
        timeoutMs: spec.limits.timeoutMs,
        logLimitBytes: spec.logLimitBytes,
        ...(onOutput ? { onOutput } : {}),
        ...(cgroup ? { cgroup } : {}),
      });
    } catch (e) {
      await cgroup?.remove();
      throw e;
    }
    return executionOf(job, (outcome) => interpretWasm(outcome, spec.limits, capBytes));
  }
}

type Head = Pick<ExecutionResult, 'exitCode' | 'reason' | 'message'>;

/** The runner's `/out`, for a job with an outputs directory (bounded by outputsMaxBytes, 0 when not given). */
function outputsOf(job: WasmJob): { outputs?: { dir: string; capBytes: number } } {
  return job.outputsDir ? { outputs: { dir: path.resolve(job.outputsDir), capBytes: Math.max(0, job.outputsMaxBytes ?? 0) } } : {};
}

function interpretWasm(outcome: ChildOutcome, limits: ExecutionLimits, capBytes: number): Head {
  const killed = killedResult(outcome, limits);
  if (killed) return killed;
  const result = parseRunnerResult(outcome.control);
  return result ? fromRunner(result, capBytes) : runnerDied(outcome);
}

function fromRunner(result: RunnerResult, capBytes: number): Head {
  const over = result.type !== 'refused' ? result.outputs : undefined;
  if (over && over.overflowBytes !== null) {
    const how = result.type === 'exited' ? `exited with code ${result.code}` : `trapped (${result.message})`;
    return {
      exitCode: result.type === 'exited' ? result.code : null,
      reason: 'failed',
      message: overflowMessage(over.overflowBytes, over.capBytes, how),
    };
  }
  const full = (memoryBytes: number) => memoryBytes >= MEMORY_FULL_SHARE * capBytes;
  const atCap = (memoryBytes: number, what: string): Head => ({
    exitCode: null,
    reason: 'memory',
    message: `${what} with its memory at ${formatBytes(memoryBytes)} of its ${formatBytes(capBytes)} limit (memory.grow past the limit fails); ask for more memory`,
  });
  switch (result.type) {
    case 'exited':
      if (result.code === 0) return { exitCode: 0, reason: 'completed', message: 'exited with code 0' };
      if (full(result.memoryBytes)) return { ...atCap(result.memoryBytes, `exited with code ${result.code}`), exitCode: result.code };
      return { exitCode: result.code, reason: 'failed', message: `exited with code ${result.code}` };
    case 'trapped':
      if (full(result.memoryBytes)) return atCap(result.memoryBytes, `trapped (${result.message})`);
      return { exitCode: null, reason: 'failed', message: `trapped: ${result.message}` };
    case 'refused':
      return { exitCode: null, reason: result.cause === 'memory' ? 'memory' : 'failed', message: result.message };
    default: {
      const never: never = result;
      return never;
    }
  }
}

/** The runner ended without a result: a signal, or a fatal error in Node or V8 (its last words are on stderr). */
function runnerDied(outcome: ChildOutcome): Head {
  const lastWords = outcome.stderrTail.trim().split('\n').slice(-2).join(' | ').slice(-300);
  if (/out of memory|allocation failed|Cannot allocate/i.test(lastWords)) {
    return { exitCode: null, reason: 'memory', message: `the WASM runner ran out of memory (${lastWords}); ask for more memory` };
  }
  const how = outcome.signal ? `was killed by ${outcome.signal}` : `exited with code ${outcome.exitCode}`;
  const hint = outcome.signal === 'SIGKILL' ? ' (by someone else: the kernel\'s out-of-memory killer?)' : '';
  return {
    exitCode: null,
    reason: 'crashed',
    message: `the WASM runner ${how}${hint} before the module finished${lastWords ? `: ${lastWords}` : ''}; the node is unaffected, and the job can be retried`,
  };
}
