/**
 * A cgroup per job, so a job is charged for what it uses: its CPU share enforced by the kernel (a 0.001-cpu job
 * can no longer burn a core until its timeout), its memory (all its processes together) and its process count,
 * and killed as a whole: the freezer stops every process of the job (no fork can race the kill), then each gets
 * SIGKILL, so a grandchild that called setsid does not escape as it escapes a process-group kill.
 *
 * cgroup v1, as on these machines (root may write /sys/fs/cgroup/{cpu,memory,pids,freezer}): the job's directory
 * `dms/<job>` in each hierarchy, `cpu.cfs_quota_us` over a 100 ms period, `memory.limit_in_bytes` (swap too when
 * the kernel accounts it), `pids.max`. The job enters its cgroups before it execs (a `sh` wrapper writes its own
 * pid into each `cgroup.procs`), so nothing it starts runs outside them. Where cgroups are not writable (not root,
 * v2 only, a read-only mount) `probeCgroups` says why and the executors keep today's rlimits, with a warning.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { pidAlive } from '../pids.ts';

export const CGROUP_ROOT = '/sys/fs/cgroup';
/** cpuacct counts the job's CPU time; where it is mounted with cpu (`cpu,cpuacct`) both names reach one directory. */
const CONTROLLERS = ['cpu', 'cpuacct', 'memory', 'pids', 'freezer'] as const;
const PERIOD_US = 100_000;
/** The smallest quota the kernel takes (1 ms per period): 0.01 cpu. */
const MIN_QUOTA_US = 1000;

export interface CgroupLimits {
  /** Cores, e.g. 0.5 = half of one core. */
  readonly cpu: number;
  readonly memoryBytes: number;
  readonly pids: number;
}

export interface JobCgroup {
  readonly name: string;
  /** One cgroup.procs file per controller: writing a pid into each moves that process in. */
  readonly procsFiles: readonly string[];
  /** Wraps a command so its process enters the job's cgroups before it execs. */
  wrap(command: string, args: readonly string[]): { command: string; args: string[] };
  /** Sets the CPU share (cores) from now on; resolves when written. */
  setCpu(cpu: number): Promise<void>;
  /** CPU time the job's processes used, in ms. */
  cpuMs(): Promise<number>;
  /** How many of the job's processes the kernel killed for going over its memory. */
  oomKills(): Promise<number>;
  /** Freezes the job, SIGKILLs every process in it, thaws it so they die; resolves when none is left (bounded). */
  kill(): Promise<void>;
  /** Kills what is left and removes the job's directories. */
  remove(): Promise<void>;
}

export type CgroupSupport = { readonly ok: true; readonly root: string } | { readonly ok: false; readonly why: string };

/** Whether this process can make job cgroups under `root` (v1, every controller writable). */
export async function probeCgroups(root = CGROUP_ROOT): Promise<CgroupSupport> {
  for (const c of CONTROLLERS) {
    const dir = path.join(root, c, 'dms');
    try {
      await fs.mkdir(dir, { recursive: true });
      await fs.access(path.join(dir, 'cgroup.procs'));
    } catch (e) {
      const v2 = await fs.access(path.join(root, 'cgroup.controllers')).then(() => true, () => false);
      const why = v2 ? 'this machine has cgroup v2 only, which the node does not drive yet' : `cannot use the ${c} cgroup controller at ${dir}: ${(e as Error).message}`;
      return { ok: false, why };
    }
  }
  return { ok: true, root };
}

/**
 * Removes the job cgroups of nodes that are gone (`dms/<pid>` whose pid no longer runs): a node killed with -9
 * never removed its jobs' cgroups, and what ran in them (a process job's grandchildren) is killed here. Says how
 * many job cgroups it removed.
 */
export async function sweepStaleGroups(root = CGROUP_ROOT): Promise<number> {
  let removed = 0;
  const groups = await fs.readdir(path.join(root, 'pids', 'dms'), { withFileTypes: true }).catch(() => []);
  for (const g of groups) {
    if (!g.isDirectory() || !/^\d+$/.test(g.name) || pidAlive(Number(g.name))) continue;
    const jobs = await fs.readdir(path.join(root, 'pids', 'dms', g.name), { withFileTypes: true }).catch(() => []);
    for (const j of jobs) {
      if (!j.isDirectory()) continue;
      await jobCgroupAt(root, `${g.name}/${j.name}`).remove();
      removed += 1;
    }
    for (const c of CONTROLLERS) await fs.rmdir(path.join(root, c, 'dms', g.name)).catch(() => {});
  }
  return removed;
}

/** A cgroup name from a job id: what a path may hold, bounded. */
function nameOf(jobId: string): string {
  return jobId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100);
}

/**
 * Creates the job's cgroups with its limits, under `dms/<group>` (the node's pid: a node that died leaves its
 * group behind, and the next one to start sweeps it, see sweepStaleGroups).
 */
export async function createJobCgroup(root: string, jobId: string, limits: CgroupLimits, group = String(process.pid)): Promise<JobCgroup> {
  const name = `${nameOf(group)}/${nameOf(jobId)}`;
  const dir = (c: (typeof CONTROLLERS)[number]) => path.join(root, c, 'dms', name);
  for (const c of CONTROLLERS) await fs.mkdir(dir(c), { recursive: true });
  await fs.writeFile(path.join(dir('cpu'), 'cpu.cfs_period_us'), String(PERIOD_US));
  await fs.writeFile(path.join(dir('cpu'), 'cpu.cfs_quota_us'), String(quotaOf(limits.cpu)));
  await fs.writeFile(path.join(dir('memory'), 'memory.limit_in_bytes'), String(Math.floor(limits.memoryBytes)));
  // swap counts too where the kernel accounts it (memsw files exist only with swap accounting on)
  await fs.writeFile(path.join(dir('memory'), 'memory.memsw.limit_in_bytes'), String(Math.floor(limits.memoryBytes))).catch(() => {});
  await fs.writeFile(path.join(dir('pids'), 'pids.max'), String(Math.max(1, Math.floor(limits.pids))));
  return jobCgroupAt(root, name);
}

/** The CFS quota for `cpu` cores, per PERIOD_US. */
const quotaOf = (cpu: number) => Math.max(MIN_QUOTA_US, Math.round(cpu * PERIOD_US));

/** The handle on an existing job cgroup `dms/<name>` (nothing is written). */
function jobCgroupAt(root: string, name: string): JobCgroup {
  const dir = (c: (typeof CONTROLLERS)[number]) => path.join(root, c, 'dms', name);
  const procsFiles = CONTROLLERS.map((c) => path.join(dir(c), 'cgroup.procs'));
  const procs = async (): Promise<number[]> => {
    const text = await fs.readFile(path.join(dir('pids'), 'cgroup.procs'), 'utf8').catch(() => '');
    return text.split('\n').filter(Boolean).map(Number);
  };
  const killAll = async (): Promise<void> => {
    const freezer = path.join(dir('freezer'), 'freezer.state');
    for (let round = 0; round < 50; round += 1) {
      const pids = await procs();
      if (pids.length === 0) return;
      await fs.writeFile(freezer, 'FROZEN').catch(() => {});
      for (const pid of await procs()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      await fs.writeFile(freezer, 'THAWED').catch(() => {});
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return {
    name,
    procsFiles,
    wrap(command, args) {
      // each path is ours (root + 'dms' + a sanitised name), so it can sit in the script unquoted-safe in '...'
      const enter = procsFiles.map((f) => `echo $$ > '${f}'`).join(' && ');
      // unset PWD: the shell exports it, and the job's environment is exactly what it asked for
      return { command: '/bin/sh', args: ['-c', `${enter} && unset PWD && exec "$0" "$@"`, command, ...args] };
    },
    async setCpu(cpu) {
      await fs.writeFile(path.join(dir('cpu'), 'cpu.cfs_quota_us'), String(quotaOf(cpu)));
    },
    async cpuMs() {
      return Number(await fs.readFile(path.join(dir('cpuacct'), 'cpuacct.usage'), 'utf8')) / 1e6;
    },
    async oomKills() {
      const text = await fs.readFile(path.join(dir('memory'), 'memory.oom_control'), 'utf8').catch(() => '');
      return Number(/oom_kill (\d+)/.exec(text)?.[1] ?? 0);
    },
    kill: killAll,
    async remove() {
      await killAll();
      for (const c of CONTROLLERS) await fs.rmdir(dir(c)).catch(() => {});
    },
  };
}
