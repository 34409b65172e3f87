/**
 * The seed's indexes of a node's activity (every allocation ever; jobs, bid requests and bids sent and
 * received), as a pure fold over recorded facts. Facts are derived from the actors' state changes, so the
 * indexes can be rebuilt from the event log at any time.
 */
import type { Resources } from './capability.ts';
import type { Allocation, Ledger, Lock } from './ledger.ts';

/** Things that happened, in the past tense (what the indexes are built from). */
export type Fact =
  | { readonly type: 'ResourcesLocked'; readonly lock: Lock }
  | { readonly type: 'LockReleased'; readonly id: string; readonly reason: 'allocated' | 'released' }
  | { readonly type: 'AllocationCreated'; readonly allocation: Allocation }
  | { readonly type: 'AllocationReleased'; readonly id: string }
  | { readonly type: 'BidRequestSent'; readonly dealId: string; readonly nonce: number }
  | { readonly type: 'BidRequestReceived'; readonly dealId: string; readonly nonce: number }
  | { readonly type: 'BidSent'; readonly dealId: string; readonly nonce: number; readonly requester: string }
  | { readonly type: 'BidReceived'; readonly dealId: string; readonly nonce: number; readonly provider: string }
  | { readonly type: 'JobChanged'; readonly job: JobSummary };

/** A job this node asked for, as the jobs index keeps it. */
export interface JobSummary {
  readonly id: string;
  readonly name: string;
  readonly state: string;
  readonly provider: string | null;
  readonly exitCode: number | null;
  /** When it was deployed, and when it last started running (null while it does not run yet); metrics' deal time. */
  readonly createdAt?: number;
  readonly startedAt?: number | null;
}

/** The states a job this node asked for ends in. */
export type JobEndState = 'completed' | 'failed' | 'cancelled';

/** How many of a kind of deal message there were, and the latest (`dealId.nonce`). */
export interface DealCounter {
  readonly count: number;
  readonly last: string | null;
}

/** A fact with where it came from in the log. */
export interface LoggedFact {
  readonly actor: string;
  readonly seq: number;
  readonly ts: number;
  readonly fact: Fact;
}

export interface AllocationRecord {
  readonly id: string;
  readonly lockId: string;
  readonly resources: Resources;
  readonly holder?: string;
  readonly createdAt: number;
  readonly createdSeq: number;
  readonly endedAt: number | null;
}

export interface Indexes {
  /** The allocations running on this node, and the newest MAX_ENDED_INDEXED that ended. */
  readonly allocations: Readonly<Record<string, AllocationRecord>>;
  readonly locks: { readonly granted: number; readonly allocated: number; readonly released: number };
  /** The jobs this node asked for that have not ended, and the newest MAX_ENDED_INDEXED that did, with their latest state. */
  readonly jobs: Readonly<Record<string, JobSummary & { readonly updatedAt: number }>>;
  readonly bidRequestsSent: DealCounter;
  readonly bidRequestsReceived: DealCounter;
  readonly bidsSent: DealCounter;
  readonly bidsReceived: DealCounter;
  /** Jobs this node asked for that ended, by how (counted as they end, so the bound on ended jobs kept above does not cap it). */
  readonly jobsEnded: Readonly<Record<JobEndState, number>>;
}

const NO_DEALS: DealCounter = Object.freeze({ count: 0, last: null });
const NO_JOBS_ENDED: Indexes['jobsEnded'] = Object.freeze({ completed: 0, failed: 0, cancelled: 0 });

function counted(c: DealCounter | undefined, dealId: string, nonce: number): DealCounter {
  return { count: (c?.count ?? 0) + 1, last: `${dealId}.${nonce}` };
}

export const EMPTY_INDEXES: Indexes = Object.freeze({
  allocations: {},
  locks: { granted: 0, allocated: 0, released: 0 },
  jobs: {},
  bidRequestsSent: NO_DEALS,
  bidRequestsReceived: NO_DEALS,
  bidsSent: NO_DEALS,
  bidsReceived: NO_DEALS,
  jobsEnded: NO_JOBS_ENDED,
});

/**
 * Ended allocations and jobs the indexes keep, the newest: the live ones are always kept. Older ended ones are in
 * their records (the store's `allocation/` and `job/` rows, kept for `--retain`), so the indexes stay small and a
 * fact does not copy a table that grows with every deal the node ever made.
 */
export const MAX_ENDED_INDEXED = 1000;

/** `table` without its oldest ended entries past MAX_ENDED_INDEXED (entries keep insertion order). */
function boundEnded<T>(table: Readonly<Record<string, T>>, ended: (t: T) => boolean): Readonly<Record<string, T>> {
  let n = 0;
  for (const k in table) if (ended(table[k]!)) n += 1;
  if (n <= MAX_ENDED_INDEXED) return table;
  const out: Record<string, T> = {};
  let drop = n - MAX_ENDED_INDEXED;
  for (const k in table) {
    const t = table[k]!;
    if (drop > 0 && ended(t)) {
      drop -= 1;
      continue;
    }
    out[k] = t;
  }
  return out;
}

const JOB_ENDED: ReadonlySet<string> = new Set<JobEndState>(['completed', 'failed', 'cancelled']);

export function evolveIndexes(ix: Indexes, f: LoggedFact): Indexes {
  const fact = f.fact;
  switch (fact.type) {
    case 'ResourcesLocked':
      return { ...ix, locks: { ...ix.locks, granted: ix.locks.granted + 1 } };
    case 'LockReleased':
      return { ...ix, locks: { ...ix.locks, [fact.reason]: ix.locks[fact.reason] + 1 } };
    case 'AllocationCreated': {
      const a = fact.allocation;
      const rec: AllocationRecord = { id: a.id, lockId: a.lockId, resources: a.resources, ...(a.holder ? { holder: a.holder } : {}), createdAt: f.ts, createdSeq: f.seq, endedAt: null };
      return { ...ix, allocations: { ...ix.allocations, [a.id]: rec } };
    }
    case 'AllocationReleased': {
      const rec = ix.allocations[fact.id];
      return rec ? { ...ix, allocations: boundEnded({ ...ix.allocations, [fact.id]: { ...rec, endedAt: f.ts } }, (a) => a.endedAt !== null) } : ix;
    }
    case 'BidRequestSent':
      return { ...ix, bidRequestsSent: counted(ix.bidRequestsSent, fact.dealId, fact.nonce) };
    case 'BidRequestReceived':
      return { ...ix, bidRequestsReceived: counted(ix.bidRequestsReceived, fact.dealId, fact.nonce) };
    case 'BidSent':
      return { ...ix, bidsSent: counted(ix.bidsSent, fact.dealId, fact.nonce) };
    case 'BidReceived':
      return { ...ix, bidsReceived: counted(ix.bidsReceived, fact.dealId, fact.nonce) };
    case 'JobChanged': {
      const jobs = boundEnded({ ...ix.jobs, [fact.job.id]: { ...fact.job, updatedAt: f.ts } }, (j) => JOB_ENDED.has(j.state));
      const prev = ix.jobs[fact.job.id];
      // counted once, as it ends (a later change of an ended job, or its replay, is no second end)
      if (!JOB_ENDED.has(fact.job.state) || (prev && JOB_ENDED.has(prev.state))) return { ...ix, jobs };
      const ended = ix.jobsEnded ?? NO_JOBS_ENDED; // indexes saved before the count existed lack it
      const state = fact.job.state as JobEndState;
      return { ...ix, jobs, jobsEnded: { ...ended, [state]: ended[state] + 1 } };
    }
    default: {
      const never: never = fact;
      return never;
    }
  }
}

/** The facts between two ledgers: locks granted or released, allocations created or released. */
export function ledgerFacts(before: Ledger, after: Ledger): Fact[] {
  if (before === after) return [];
  const facts: Fact[] = [];
  if (before.locks !== after.locks) {
    for (const [id, lock] of Object.entries(after.locks)) if (!before.locks[id]) facts.push({ type: 'ResourcesLocked', lock });
    for (const id of Object.keys(before.locks)) {
      if (!after.locks[id]) facts.push({ type: 'LockReleased', id, reason: Object.values(after.allocations).some((a) => a.lockId === id && !before.allocations[a.id]) ? 'allocated' : 'released' });
    }
  }
  if (before.allocations !== after.allocations) {
    for (const [id, allocation] of Object.entries(after.allocations)) if (!before.allocations[id]) facts.push({ type: 'AllocationCreated', allocation });
    for (const id of Object.keys(before.allocations)) if (!after.allocations[id]) facts.push({ type: 'AllocationReleased', id });
  }
  return facts;
}

/**
 * The bid request this Node answered (bid or decline) between two versions of its answered table: one at most per
 * event, read from the count of requests recorded, without comparing the tables (answered.ts).
 */
export function answeredFacts(before: { readonly recorded: number }, after: { readonly recorded: number; readonly last: string | null }): Fact[] {
  if (before === after || after.recorded === before.recorded || after.last === null) return [];
  // `${requester}/${dealId}:${nonce}`
  const deal = after.last.slice(after.last.indexOf('/') + 1);
  const cut = deal.lastIndexOf(':');
  return [{ type: 'BidRequestReceived', dealId: deal.slice(0, cut), nonce: Number(deal.slice(cut + 1)) }];
}
