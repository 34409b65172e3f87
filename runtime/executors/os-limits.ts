/**
 * OS resource limits for a job's process, set before it runs: `prlimit` (util-linux) when the machine has it,
 * else `ulimit` in a `sh -c` wrapper. Both exec the command, so the job keeps the pid that was spawned.
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

export interface OsLimits {
  /** RLIMIT_AS: the most virtual memory each process may map (inherited by its children, each on its own). */
  readonly addressSpaceBytes?: number;
  /**
   * RLIMIT_CPU: CPU seconds each process may use before the kernel kills it. A backstop that holds even when the
   * node that started the job is gone (a job runs in its own process group, so it outlives a SIGKILLed node).
   */
  readonly cpuSeconds?: number;
  /** Run as this user (needs root and setpriv; without setpriv the job runs as the node's user). */
  readonly user?: { readonly uid: number; readonly gid: number };
}

/** CPU seconds a job may use: its timeout on each core it was granted, plus a margin. */
export function cpuSecondsFor(timeoutMs: number, cpu: number): number {
  return Math.ceil((timeoutMs / 1000) * Math.max(1, Math.ceil(cpu))) + 5;
}

export interface LimitedCommand {
  readonly command: string;
  readonly args: string[];
}

/** The first executable `name` on a PATH-style list, or undefined. */
export function findExecutable(name: string, searchPath: string): string | undefined {
  if (name.includes('/')) return isExecutable(name) ? name : undefined;
  for (const dir of searchPath.split(':')) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Wraps `command args` so it runs under `limits`, with core dumps off. `prlimit` is the path to prlimit, or
 * undefined to use the shell wrapper.
 */
export function withOsLimits(command: string, args: readonly string[], limits: OsLimits, prlimit: string | undefined): LimitedCommand {
  return diesWithParent(limited(command, args, limits, prlimit), limits.user);
}

function limited(command: string, args: readonly string[], limits: OsLimits, prlimit: string | undefined): LimitedCommand {
  const as = limits.addressSpaceBytes;
  if (prlimit) {
    const flags = ['--core=0'];
    if (as !== undefined) flags.push(`--as=${Math.floor(as)}`);
    if (limits.cpuSeconds !== undefined) flags.push(`--cpu=${Math.ceil(limits.cpuSeconds)}`);
    return { command: prlimit, args: [...flags, '--', command, ...args] };
  }
  const ulimits = ['ulimit -c 0'];
  if (as !== undefined) ulimits.push(`ulimit -v ${Math.floor(as / 1024)}`);
  if (limits.cpuSeconds !== undefined) ulimits.push(`ulimit -t ${Math.ceil(limits.cpuSeconds)}`);
  // "$0" "$@" are the command and its arguments, passed as separate words: nothing is parsed by the shell.
  return { command: '/bin/sh', args: ['-c', `${ulimits.join(' && ')} && exec "$0" "$@"`, command, ...args] };
}

/** setpriv (util-linux), when the machine has it. */
const SETPRIV = findExecutable('setpriv', '/usr/bin:/bin:/usr/sbin:/sbin');

/**
 * A job runs in its own process group (so a cancel kills all of it), so a node killed with SIGKILL would leave it
 * running: `setpriv --pdeathsig KILL` makes the kernel kill the job's process when the node's dies (it holds
 * across the exec chain: setpriv, prlimit, the job). Processes a job starts itself are ended by the node when it
 * starts again, and by their CPU-time limit.
 */
function diesWithParent(c: LimitedCommand, user: OsLimits['user']): LimitedCommand {
  if (!SETPRIV) return c;
  const as = user ? ['--reuid', String(user.uid), '--regid', String(user.gid), '--clear-groups'] : [];
  return { command: SETPRIV, args: ['--pdeathsig', 'KILL', ...as, '--', c.command, ...c.args] };
}
