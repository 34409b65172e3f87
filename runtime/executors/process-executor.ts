/**
 * ProcessExecutor: runs a local command as a child process in its own process group (setsid), with only the job's
 * environment plus PATH, its output captured through pipes (capped), SIGKILLed with its whole group on timeout or
 * cancel. Memory: each process gets RLIMIT_AS (limit + PROCESS_ADDRESS_SPACE_SLACK_BYTES, since address space is
 * not memory used), and the group's resident memory is sampled and the group killed when it passes the limit.
 * It runs other people's code unsandboxed: a node offers it only when its operator enables it.
 */
import { stat } from 'node:fs/promises';
import os from 'node:os';
import {
  CommandNotFoundError,
  InvalidJobError,
  type Execution,
  type ExecutionLimits,
  type ExecutionResult,
  type ExecutionSpec,
  type Executor,
  type OutputListener,
} from '../../actors/executor.ts';
import { type JobUser, jobCgroup, processJobUser } from './isolation.ts';
import { ChildJob, executionOf, killedResult, type ChildOutcome } from './child-job.ts';
import { checkLimits, PROCESS_ADDRESS_SPACE_SLACK_BYTES, RSS_SAMPLE_MS } from './limits.ts';
import { cpuSecondsFor, findExecutable, withOsLimits } from './os-limits.ts';

export interface ProcessExecutorInit {
  /** PATH given to every job (and where commands are looked up); default /usr/local/bin:/usr/bin:/bin. */
  readonly path?: string;
  /** Working directory when the job names none; default the OS temp dir. */
  readonly defaultCwd?: string;
  /** prlimit's path; null to use the `sh -c ulimit` wrapper; default: found on `path`. */
  readonly prlimitPath?: string | null;
  readonly rssSampleMs?: number;
  readonly addressSpaceSlackBytes?: number;
  /** Fence each job in a cgroup of its own where the machine allows (default true; see isolation.ts). */
  readonly cgroups?: boolean;
  /** The user jobs run as; default `nobody` when the node runs as root, else the node's own (null: the node's own). */
  readonly user?: JobUser | null;
}

/** Processes (threads included) a process job may run at once. */
export const PROCESS_JOB_PIDS = 256;

export class ProcessExecutor implements Executor {
  readonly kind = 'process' as const;
  readonly #path: string;
  readonly #defaultCwd: string;
  readonly #prlimit: string | undefined;
  readonly #rssSampleMs: number;
  readonly #slack: number;
  readonly #cgroups: boolean;
  readonly #user: JobUser | undefined;

  constructor(init: ProcessExecutorInit = {}) {
    this.#path = init.path ?? '/usr/local/bin:/usr/bin:/bin';
    this.#defaultCwd = init.defaultCwd ?? os.tmpdir();
    this.#prlimit = init.prlimitPath === null ? undefined : (init.prlimitPath ?? findExecutable('prlimit', `${this.#path}:/usr/bin:/bin`));
    this.#rssSampleMs = init.rssSampleMs ?? RSS_SAMPLE_MS;
    this.#slack = init.addressSpaceSlackBytes ?? PROCESS_ADDRESS_SPACE_SLACK_BYTES;
    this.#cgroups = init.cgroups ?? true;
    this.#user = init.user === null ? undefined : (init.user ?? processJobUser());
  }

  async start(spec: ExecutionSpec, onOutput?: OutputListener): Promise<Execution> {
    if (spec.executor !== 'process') throw new InvalidJobError(`the process executor cannot run a "${spec.executor}" job; send it to a node that offers "${spec.executor}"`);
    checkLimits(spec);
    const { command, args = [], env = {}, cwd = this.#defaultCwd } = spec.process;
    if (!command) throw new InvalidJobError('process.command is empty; name the program to run');
    const searchPath = env['PATH'] ? `${env['PATH']}:${this.#path}` : this.#path;
    const resolved = findExecutable(command, searchPath);
    if (!resolved) throw new CommandNotFoundError(`process.command "${command}" is not an executable file on PATH (${searchPath}); give a full path or install it on the provider`);
    await checkCwd(cwd);
    const osLimits = { addressSpaceBytes: spec.limits.memoryBytes + this.#slack, cpuSeconds: cpuSecondsFor(spec.limits.timeoutMs, spec.limits.cpu), ...(this.#user ? { user: this.#user } : {}) };
    const limited = withOsLimits(resolved, args, osLimits, this.#prlimit);
    // the cgroup is entered before the exec chain starts (setpriv, prlimit, the job), so nothing escapes it
    const cgroup = this.#cgroups ? await jobCgroup('process', { cpu: spec.limits.cpu, memoryBytes: spec.limits.memoryBytes, pids: PROCESS_JOB_PIDS }) : undefined;
    let job: ChildJob;
    try {
      job = await ChildJob.spawn({
        ...(cgroup ? cgroup.wrap(limited.command, limited.args) : limited),
        ...(cgroup ? { cgroup } : {}),
        env: { ...env, PATH: searchPath },
        cwd,
        timeoutMs: spec.limits.timeoutMs,
        logLimitBytes: spec.logLimitBytes,
        rssWatch: { limitBytes: spec.limits.memoryBytes, intervalMs: this.#rssSampleMs },
        ...(onOutput ? { onOutput } : {}),
      });
    } catch (e) {
      await cgroup?.remove();
      throw e;
    }
    return executionOf(job, (outcome) => interpretProcess(outcome, spec.limits));
  }
}

async function checkCwd(cwd: string): Promise<void> {
  const isDir = await stat(cwd).then((s) => s.isDirectory(), () => false);
  if (!isDir) throw new InvalidJobError(`process.cwd "${cwd}" is not a directory on the provider; leave it out or name one that exists`);
}

function interpretProcess(outcome: ChildOutcome, limits: ExecutionLimits): Pick<ExecutionResult, 'exitCode' | 'reason' | 'message'> {
  const killed = killedResult(outcome, limits);
  if (killed) return killed;
  if (outcome.exitCode === 0) return { exitCode: 0, reason: 'completed', message: 'exited with code 0' };
  if (outcome.exitCode !== null) return { exitCode: outcome.exitCode, reason: 'failed', message: `exited with code ${outcome.exitCode}` };
  return { exitCode: null, reason: 'crashed', message: `died from ${outcome.signal ?? 'a signal'} that the executor did not send` };
}
