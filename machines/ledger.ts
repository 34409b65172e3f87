/**
 * The capability ledger: registered, locked (with an absolute expiry), allocated and available resources.
 * Pure decider functions: each takes the ledger and a command and returns a new ledger or a refusal.
 * Nothing is partially applied: a refused command leaves the ledger exactly as it was.
 */
import {
  type Capability,
  type Resources,
  ZERO_RESOURCES,
  capabilityOf,
  formatBytes,
  resourcesOf,
  shortfall,
  subtractResources,
  sumResources,
  tidy,
} from './capability.ts';

/** Ports a node hands out for jobs: an inclusive range. */
export interface PortRange {
  readonly from: number;
  readonly to: number;
}

/** Ports a lock asks for: fixed ones, and a count of any free ones. */
export interface PortRequest {
  readonly static?: readonly number[];
  readonly dynamic?: number;
}

export interface Lock {
  readonly id: string;
  readonly resources: Resources;
  readonly ports: readonly number[];
  /** Absolute expiry, ms since the epoch. */
  readonly expiresAt: number;
  readonly holder?: string;
}

export interface Allocation {
  readonly id: string;
  readonly lockId: string;
  readonly resources: Resources;
  readonly ports: readonly number[];
  readonly since: number;
  readonly holder?: string;
}

/** Upper bounds observed on the machine by monitoring (other programs use the rest). */
export interface Ceiling {
  readonly memory?: number;
  readonly disk?: number;
}

export interface Ledger {
  readonly registered: Capability;
  readonly portRange: PortRange;
  readonly locks: Readonly<Record<string, Lock>>;
  readonly allocations: Readonly<Record<string, Allocation>>;
  readonly ceiling: Ceiling;
}

export type LedgerRefusalCode =
  | 'insufficient'
  | 'duplicate'
  | 'expired'
  | 'port-out-of-range'
  | 'port-taken'
  | 'ports-exhausted'
  | 'not-committed'
  | 'invalid';

export interface LedgerRefusal {
  readonly ok: false;
  readonly code: LedgerRefusalCode;
  readonly message: string;
}
export interface LedgerOk<T = Ledger> {
  readonly ok: true;
  readonly ledger: T;
}
export type LedgerResult = LedgerOk | LedgerRefusal;

export const DEFAULT_PORT_RANGE: PortRange = Object.freeze({ from: 32768, to: 60999 });

export function emptyLedger(registered: Capability, portRange: PortRange = DEFAULT_PORT_RANGE): Ledger {
  return { registered, portRange, locks: {}, allocations: {}, ceiling: {} };
}

export function lockedTotal(l: Ledger): Resources {
  return sumResources(Object.values(l.locks).map((x) => x.resources));
}

export function allocatedTotal(l: Ledger): Resources {
  return sumResources(Object.values(l.allocations).map((x) => x.resources));
}

/** registered - locked - allocated, then bounded by what monitoring says the machine still has. */
export function availableResources(l: Ledger): Resources {
  const free = subtractResources(subtractResources(resourcesOf(l.registered), lockedTotal(l)), allocatedTotal(l));
  return {
    ...free,
    memory: l.ceiling.memory === undefined ? free.memory : Math.min(free.memory, l.ceiling.memory),
    disk: l.ceiling.disk === undefined ? free.disk : Math.min(free.disk, l.ceiling.disk),
  };
}

/** The four views `info` shows, as capabilities. */
export function ledgerView(l: Ledger): { registered: Capability; locked: Capability; allocated: Capability; available: Capability } {
  return {
    registered: l.registered,
    locked: capabilityOf(lockedTotal(l), l.registered),
    allocated: capabilityOf(allocatedTotal(l), l.registered),
    available: capabilityOf(availableResources(l), l.registered),
  };
}

function refuse(code: LedgerRefusalCode, message: string): LedgerRefusal {
  return { ok: false, code, message };
}

function portsInUse(l: Ledger): Set<number> {
  const used = new Set<number>();
  for (const x of Object.values(l.locks)) x.ports.forEach((p) => used.add(p));
  for (const x of Object.values(l.allocations)) x.ports.forEach((p) => used.add(p));
  return used;
}

/** Picks the ports for a request, lowest free first; a refusal if any port cannot be had. */
export function pickPorts(l: Ledger, req: PortRequest | undefined): { ok: true; ports: number[] } | LedgerRefusal {
  const { from, to } = l.portRange;
  const used = portsInUse(l);
  const fixed = req?.static ?? [];
  const dynamic = req?.dynamic ?? 0;
  if (!Number.isInteger(dynamic) || dynamic < 0) return refuse('invalid', `dynamic port count ${dynamic} must be a whole number >= 0`);
  for (const p of fixed) {
    if (!Number.isInteger(p) || p < from || p > to) return refuse('port-out-of-range', `port ${p} is outside this node's range ${from}-${to}`);
    if (used.has(p)) return refuse('port-taken', `port ${p} is already reserved`);
  }
  if (new Set(fixed).size !== fixed.length) return refuse('invalid', 'a static port is listed twice');
  const taken = new Set([...used, ...fixed]);
  if (dynamic > to - from + 1 - taken.size) {
    return refuse('ports-exhausted', `${dynamic} dynamic ports asked for, but only ${to - from + 1 - taken.size} are free in ${from}-${to}`);
  }
  const picked: number[] = [];
  for (let p = from; p <= to && picked.length < dynamic; p += 1) if (!taken.has(p)) picked.push(p);
  return { ok: true, ports: [...fixed, ...picked] };
}

function describeShortfall(l: Ledger, need: Resources): string | undefined {
  const have = availableResources(l);
  const missing = shortfall(have, need);
  if (missing.length === 0) return undefined;
  const fmt = (f: string, v: number) => (f === 'memory' || f === 'disk' ? formatBytes(v) : String(v));
  return missing.map((f) => `${f}: asked ${fmt(f, need[f])}, available ${fmt(f, have[f])}`).join('; ');
}

function validResources(r: Resources): boolean {
  return [r.cpu, r.memory, r.disk, r.gpus].every((v) => Number.isFinite(v) && v >= 0);
}

const MiB = 1024 ** 2;

/**
 * The steps a bid's lock is charged in: cpu in hundredths of a core (at least one), memory in MiB (at least one),
 * disk in MiB. Without them a request for `cpu: 1e-9` would fit any number of times: every job costs its node
 * something (a runner, a share of a core), and the steps bound how many a node can hold at once.
 */
export const LOCK_STEP = Object.freeze({ cpu: 0.01, memory: MiB, disk: MiB });

/**
 * What a bid's lock takes out of the ledger for `need`: each field rounded up to its step (LOCK_STEP), but never
 * above what `registered` holds when `need` itself fits in it (an offer that is not a whole number of steps can
 * still be asked for in full). Invalid resources come back as they are, for `lock` to refuse.
 */
export function chargeFor(need: Resources, registered: Resources): Resources {
  if (!validResources(need)) return need;
  const up = (v: number, step: number, min: number) => Math.max(min, Math.ceil(tidy(v / step)) * step);
  const fit = (charged: number, f: 'cpu' | 'memory' | 'disk') => (need[f] <= registered[f] ? Math.min(charged, registered[f]) : charged);
  return {
    cpu: fit(tidy(up(need.cpu, LOCK_STEP.cpu, LOCK_STEP.cpu)), 'cpu'),
    memory: fit(up(need.memory, LOCK_STEP.memory, LOCK_STEP.memory), 'memory'),
    disk: fit(up(need.disk, LOCK_STEP.disk, 0), 'disk'),
    gpus: need.gpus,
  };
}

/** The cpu and memory `holder` holds here: its locks and its allocations. */
export function heldBy(l: Ledger, holder: string): { cpu: number; memory: number } {
  let cpu = 0;
  let memory = 0;
  for (const x of [...Object.values(l.locks), ...Object.values(l.allocations)]) {
    if (x.holder !== holder) continue;
    cpu += x.resources.cpu;
    memory += x.resources.memory;
  }
  return { cpu, memory };
}

/** Locks held for `holder` (bids not yet allocated, when the holder is a requester). */
export function locksHeldBy(l: Ledger, holder: string): number {
  let n = 0;
  for (const id in l.locks) if (l.locks[id]!.holder === holder) n += 1;
  return n;
}

export interface LockCommand {
  readonly id: string;
  readonly resources: Resources;
  readonly ports?: PortRequest;
  readonly expiresAt: number;
  readonly now: number;
  readonly holder?: string;
}

/** Locks resources for a deal; refused whole if anything is short. */
export function lock(l: Ledger, cmd: LockCommand): LedgerResult {
  if (l.locks[cmd.id] || l.allocations[cmd.id]) return refuse('duplicate', `lock ${cmd.id} already exists`);
  if (!validResources(cmd.resources)) return refuse('invalid', 'resources must be finite numbers >= 0');
  if (cmd.expiresAt <= cmd.now) return refuse('expired', `lock ${cmd.id} would expire before it starts`);
  const short = describeShortfall(l, cmd.resources);
  if (short) return refuse('insufficient', `not enough free resources (${short})`);
  const ports = pickPorts(l, cmd.ports);
  if (!ports.ok) return ports;
  const entry: Lock = { id: cmd.id, resources: cmd.resources, ports: ports.ports, expiresAt: cmd.expiresAt, ...(cmd.holder ? { holder: cmd.holder } : {}) };
  return { ok: true, ledger: { ...l, locks: { ...l.locks, [cmd.id]: entry } } };
}

/** Releases a lock; an unknown id is harmless. */
export function unlock(l: Ledger, id: string): Ledger {
  if (!l.locks[id]) return l;
  const { [id]: _gone, ...locks } = l.locks;
  return { ...l, locks };
}

/** Drops every lock whose expiry is at or before `now`; returns the ledger and the expired ids. */
export function expire(l: Ledger, now: number): { ledger: Ledger; expired: string[] } {
  const expired = Object.values(l.locks).filter((x) => x.expiresAt <= now).map((x) => x.id);
  if (expired.length === 0) return { ledger: l, expired };
  const locks = Object.fromEntries(Object.entries(l.locks).filter(([, x]) => x.expiresAt > now));
  return { ledger: { ...l, locks }, expired };
}

/** Turns a live lock into an allocation (the lock is consumed). Asking again for the same pair is answered ok. */
export function allocate(l: Ledger, cmd: { allocationId: string; lockId: string; now: number }): LedgerResult {
  // asked again (an answer lost with a restart or a timeout): that lock is this allocation already
  if (l.allocations[cmd.allocationId]?.lockId === cmd.lockId) return { ok: true, ledger: l };
  const held = l.locks[cmd.lockId];
  if (!held || held.expiresAt <= cmd.now) return refuse('not-committed', `not committed: no live lock ${cmd.lockId}`);
  if (l.allocations[cmd.allocationId]) return refuse('duplicate', `allocation ${cmd.allocationId} already exists`);
  const alloc: Allocation = {
    id: cmd.allocationId,
    lockId: cmd.lockId,
    resources: held.resources,
    ports: held.ports,
    since: cmd.now,
    ...(held.holder ? { holder: held.holder } : {}),
  };
  const { [cmd.lockId]: _consumed, ...locks } = l.locks;
  return { ok: true, ledger: { ...l, locks, allocations: { ...l.allocations, [cmd.allocationId]: alloc } } };
}

/** Frees an allocation's resources; an unknown id is harmless. */
export function release(l: Ledger, allocationId: string): Ledger {
  if (!l.allocations[allocationId]) return l;
  const { [allocationId]: _gone, ...allocations } = l.allocations;
  return { ...l, allocations };
}

/** The earliest lock expiry, or null when nothing is locked. */
export function nextExpiry(l: Ledger): number | null {
  let next: number | null = null;
  for (const x of Object.values(l.locks)) if (next === null || x.expiresAt < next) next = x.expiresAt;
  return next;
}

export const NOTHING: Capability = Object.freeze({ ...ZERO_RESOURCES, gpus: [], executors: [] });
