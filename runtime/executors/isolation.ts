/**
 * How a job is fenced in beyond its rlimits, decided once per process: a cgroup per job where cgroups can be made
 * (cgroup.ts; else the rlimits alone, and `isolationReport()` says why), and, for process jobs of a node that runs
 * as root, an unprivileged user (`nobody`) with no way into the data dir (0700, the node's) and no right to signal
 * the node.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type CgroupLimits, type CgroupSupport, type JobCgroup, createJobCgroup, probeCgroups, sweepStaleGroups } from './cgroup.ts';

let support: Promise<CgroupSupport> | undefined;

/** Whether job cgroups can be made here (probed once). */
export function cgroupSupport(): Promise<CgroupSupport> {
  support ??= probeCgroups().then(async (s) => {
    // job cgroups of nodes that died (kill -9) are swept once, before this node makes its own
    if (s.ok) await sweepStaleGroups(s.root).catch(() => 0);
    return s;
  });
  return support;
}

/** A fresh cgroup for one job, or undefined where cgroups cannot be made. */
export async function jobCgroup(kind: string, limits: CgroupLimits): Promise<JobCgroup | undefined> {
  const s = await cgroupSupport();
  if (!s.ok) return undefined;
  return createJobCgroup(s.root, `${kind}-${randomUUID()}`, limits);
}

export interface JobUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/** The user process jobs run as: `nobody` when this node runs as root and the machine has it; else none (the node's own). */
export function processJobUser(): JobUser | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  try {
    const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('nobody:'));
    const [, , uid, gid] = line?.split(':') ?? [];
    if (uid === undefined || gid === undefined) return undefined;
    return { name: 'nobody', uid: Number(uid), gid: Number(gid) };
  } catch {
    return undefined;
  }
}

/** One line on how jobs are isolated here, for the node's log at start. */
export async function isolationReport(): Promise<{ cgroups: boolean; why?: string; processUser: string | null }> {
  const s = await cgroupSupport();
  return { cgroups: s.ok, ...(s.ok ? {} : { why: s.why }), processUser: processJobUser()?.name ?? null };
}
