/**
 * What the Node makes of a monitoring sample: how much of its offer the machine still has (other programs use the
 * rest), and whether its disk is too full to take new work (`--min-free-disk`). Pure: each step returns the new
 * values and the log lines that say what changed, once per change.
 */
import { formatBytes, resourcesOf, subtractResources } from './capability.ts';
import { type Ceiling, type Ledger, allocatedTotal, lockedTotal } from './ledger.ts';
import type { NodeIntent, Sample } from './node.messages.ts';

/** Which offered resources monitoring found short on the machine. */
export interface Constrained {
  readonly memory: boolean;
  readonly disk: boolean;
}

/** Whether the Node takes new work, as far as its disk goes. */
export interface DiskAdmission {
  /** Bytes that must stay free on the data dir's disk (`--min-free-disk`, resolved); null until the runtime says. */
  readonly minFreeDisk: number | null;
  /** The latest sample's free bytes were under `minFreeDisk`: new work is declined with `disk-full`. */
  readonly diskFull: boolean;
}

export const OPEN_ADMISSION: DiskAdmission = Object.freeze({ minFreeDisk: null, diskFull: false });

/** Bounds from a sample, and a message for each resource whose shortage started or ended. */
export function applySample(ledger: Ledger, was: Constrained, s: Sample): { ceiling: Ceiling; constrained: Constrained; notes: NodeIntent[] } {
  const unbounded = subtractResources(subtractResources(resourcesOf(ledger.registered), lockedTotal(ledger)), allocatedTotal(ledger));
  const ceiling: Ceiling = { memory: s.memoryAvailable, disk: s.diskFree };
  const constrained = { memory: s.memoryAvailable < unbounded.memory, disk: s.diskFree < unbounded.disk };
  const notes: NodeIntent[] = [];
  for (const f of ['memory', 'disk'] as const) {
    if (constrained[f] === was[f]) continue;
    const observed = f === 'memory' ? s.memoryAvailable : s.diskFree;
    notes.push(
      constrained[f]
        ? { type: 'log.write', level: 'warn', message: `other programs use this machine's ${f}: offering ${formatBytes(observed)} instead of ${formatBytes(unbounded[f])} until it is free again`, data: { resource: f, observed, offered: unbounded[f] } }
        : { type: 'log.write', level: 'info', message: `${f} is free again: offering the full ${formatBytes(unbounded[f])}`, data: { resource: f, observed } },
    );
  }
  return { ceiling, constrained, notes };
}

/**
 * The disk admission after a sample or a new minimum: full while the latest sample's free bytes are under the
 * minimum. A change is logged at warn, both ways, once.
 */
export function admitDisk(was: DiskAdmission, minFreeDisk: number | null, sample: Sample | null): { admission: DiskAdmission; notes: NodeIntent[] } {
  const diskFull = minFreeDisk !== null && sample !== null && sample.diskFree < minFreeDisk;
  const admission = was.minFreeDisk === minFreeDisk && was.diskFull === diskFull ? was : { minFreeDisk, diskFull };
  if (diskFull === was.diskFull) return { admission, notes: [] };
  const free = sample ? `${formatBytes(sample.diskFree)} free` : 'free space unknown';
  const min = minFreeDisk === null ? 'no minimum' : `the minimum is ${formatBytes(minFreeDisk)}`;
  const message = diskFull
    ? `the data dir's disk is nearly full (${free}; ${min}, --min-free-disk): declining new work (disk-full); running jobs go on`
    : `the data dir's disk has room again (${free}; ${min}): taking new work`;
  return { admission, notes: [{ type: 'log.write', level: 'warn', message, data: { diskFree: sample?.diskFree ?? null, minFreeDisk } }] };
}

/** What a bid decision needs to know of the disk: null while new work is welcome. */
export function diskRefusal(a: DiskAdmission, sample: Sample | null): { readonly free: number; readonly min: number } | null {
  return a.diskFull && sample && a.minFreeDisk !== null ? { free: sample.diskFree, min: a.minFreeDisk } : null;
}
