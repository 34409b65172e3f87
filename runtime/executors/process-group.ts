/** A job's process group: killing it whole, and measuring its resident memory (Linux /proc). */
import { readdirSync, readFileSync } from 'node:fs';

/** SIGKILLs every process in the group; false when none was left. */
export function killGroup(pgid: number): boolean {
  try {
    process.kill(-pgid, 'SIGKILL');
    return true;
  } catch {
    return false; // ESRCH: the group is already gone
  }
}

/** The start time of a process (clock ticks since boot, /proc/PID/stat field 22): with its pid, names it uniquely. */
export function startTimeOf(pid: number): string | null {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === '') return null;
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
}

/**
 * Measures the resident memory of a job's processes: the root and its descendants (walked through
 * /proc/PID/task/TID/children), plus processes seen before that are still in the group though their parent died.
 * A few small synchronous reads per sample (a full /proc scan cost ~15 ms of CPU with 100 processes).
 */
export class GroupMemory {
  readonly #seen = new Set<number>();

  constructor(private readonly pgid: number) {}

  /** Bytes resident now; undefined where /proc cannot be read (not Linux). */
  sample(): number | undefined {
    if (!readText(`/proc/${this.pgid}/stat`) && this.#seen.size === 0) return undefined;
    const pids = new Set<number>();
    const queue = [this.pgid, ...this.#seen];
    for (let pid = queue.pop(); pid !== undefined; pid = queue.pop()) {
      if (pids.has(pid) || !this.#inGroup(pid)) continue;
      pids.add(pid);
      queue.push(...childrenOf(pid));
    }
    this.#seen.clear();
    let total = 0;
    for (const pid of pids) {
      this.#seen.add(pid);
      const kb = /VmRSS:\s+(\d+) kB/.exec(readText(`/proc/${pid}/status`))?.[1];
      if (kb) total += Number(kb) * 1024;
    }
    return total;
  }

  #inGroup(pid: number): boolean {
    const stat = readText(`/proc/${pid}/stat`);
    // Fields after "(comm)": state ppid pgrp …; comm may contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return stat !== '' && fields[0] !== 'Z' && Number(fields[2]) === this.pgid;
  }
}

function childrenOf(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  return tasks.flatMap((tid) => readText(`/proc/${pid}/task/${tid}/children`).split(' ').filter(Boolean).map(Number));
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'latin1');
  } catch {
    return ''; // the process ended
  }
}
