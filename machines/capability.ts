/**
 * Capability arithmetic and comparison: pure functions over what a machine offers and what a job asks for.
 * Sizes are bytes, cpu is cores (fractional allowed), gpus are listed on capabilities and counted in requests.
 */

/** One GPU of the machine. Containers usually report none. */
export interface Gpu {
  readonly vendor: string;
  readonly model: string;
  /** Video memory in bytes (0 when unknown). */
  readonly vram: number;
}

/** What a node offers, or has locked, allocated or free. */
export interface Capability {
  readonly cpu: number;
  readonly memory: number;
  readonly disk: number;
  readonly gpus: readonly Gpu[];
  readonly executors: readonly string[];
}

/** What a lock or an allocation takes out of the ledger. */
export interface Resources {
  readonly cpu: number;
  readonly memory: number;
  readonly disk: number;
  /** Number of GPUs (any model). */
  readonly gpus: number;
}

/** Go DMS comparison outcome: how an offer stands against a requirement. */
export type Comparison = 'Better' | 'Worse' | 'Equal' | 'None';

export const NUMERIC_FIELDS = ['cpu', 'memory', 'disk', 'gpus'] as const;
export type NumericField = (typeof NUMERIC_FIELDS)[number];

export const ZERO_RESOURCES: Resources = Object.freeze({ cpu: 0, memory: 0, disk: 0, gpus: 0 });

/** Removes floating-point dust from fractional cpu arithmetic (0.1 + 0.2). */
export function tidy(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}

export function resourcesOf(c: Capability): Resources {
  return { cpu: c.cpu, memory: c.memory, disk: c.disk, gpus: c.gpus.length };
}

export function addResources(a: Resources, b: Resources): Resources {
  return { cpu: tidy(a.cpu + b.cpu), memory: a.memory + b.memory, disk: a.disk + b.disk, gpus: a.gpus + b.gpus };
}

/** a - b, clamped at zero per field. */
export function subtractResources(a: Resources, b: Resources): Resources {
  return {
    cpu: Math.max(0, tidy(a.cpu - b.cpu)),
    memory: Math.max(0, a.memory - b.memory),
    disk: Math.max(0, a.disk - b.disk),
    gpus: Math.max(0, a.gpus - b.gpus),
  };
}

export function sumResources(list: Iterable<Resources>): Resources {
  let total = ZERO_RESOURCES;
  for (const r of list) total = addResources(total, r);
  return total;
}

/** Float slack on cpu comparisons, shared by the ledger and the comparator so both agree on what fits. */
const CPU_TOLERANCE = 1e-9;

/** The fields where `need` exceeds `have`; empty when it fits. */
export function shortfall(have: Resources, need: Resources): NumericField[] {
  return NUMERIC_FIELDS.filter((f) => need[f] > have[f] + (f === 'cpu' ? CPU_TOLERANCE : 0));
}

/** A capability view of resources: gpus are taken from `from` (the first n of its list). */
export function capabilityOf(r: Resources, from: Capability): Capability {
  return {
    cpu: r.cpu,
    memory: r.memory,
    disk: r.disk,
    gpus: from.gpus.slice(0, r.gpus),
    executors: from.executors,
  };
}

/** Differences within `tolerance` count as Equal (cpu uses the same 1e-9 as `shortfall`, so 0.1 + 0.2 fits 0.3). */
export function compareNumber(offered: number | undefined, required: number | undefined, tolerance = 0): Comparison {
  if (offered === undefined || required === undefined) return 'None';
  if (Math.abs(offered - required) <= tolerance) return 'Equal';
  if (offered > required) return 'Better';
  if (offered < required) return 'Worse';
  return 'Equal';
}

/** Offered executors against required ones: missing any is Worse, more is Better. */
export function compareSets(offered: readonly string[], required: readonly string[]): Comparison {
  if (required.length === 0) return 'None';
  if (required.some((x) => !offered.includes(x))) return 'Worse';
  return offered.length > required.length ? 'Better' : 'Equal';
}

/** Worse anywhere dominates; then Better; then Equal; None when nothing was comparable. */
export function combine(results: Iterable<Comparison>): Comparison {
  let seen: Comparison = 'None';
  for (const r of results) {
    if (r === 'Worse') return 'Worse';
    if (r === 'Better') seen = 'Better';
    else if (r === 'Equal' && seen === 'None') seen = 'Equal';
  }
  return seen;
}

export interface CapabilityComparison {
  readonly overall: Comparison;
  readonly fields: Readonly<Record<NumericField | 'executors', Comparison>>;
  /** Mean log2 ratio offered/required over the numeric fields that were asked for; > 0 means headroom. */
  readonly score: number;
}

/** How `offered` stands against `required` (what a job asks for). */
export function compareCapability(
  offered: Resources & { executors?: readonly string[] },
  required: Partial<Resources> & { executors?: readonly string[] },
): CapabilityComparison {
  const fields = {
    cpu: compareNumber(offered.cpu, required.cpu, CPU_TOLERANCE),
    memory: compareNumber(offered.memory, required.memory),
    disk: compareNumber(offered.disk, required.disk),
    gpus: required.gpus ? compareNumber(offered.gpus, required.gpus) : 'None',
    executors: compareSets(offered.executors ?? [], required.executors ?? []),
  } satisfies Record<NumericField | 'executors', Comparison>;
  return { overall: combine(Object.values(fields)), fields, score: headroomScore(offered, required) };
}

function headroomScore(offered: Resources, required: Partial<Resources>): number {
  let sum = 0;
  let n = 0;
  for (const f of NUMERIC_FIELDS) {
    const need = required[f];
    if (need === undefined || need <= 0) continue;
    sum += Math.log2(Math.max(offered[f], 1e-9) / need);
    n += 1;
  }
  return n === 0 ? 0 : sum / n;
}

/** Formats bytes with binary units for messages ("1.5 GiB"). */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}
