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
  | { readonly type: 'AllocationReleased'; readonly id: string };

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
  /** Every allocation that ran on this node. */
  readonly allocations: Readonly<Record<string, AllocationRecord>>;
  readonly locks: { readonly granted: number; readonly allocated: number; readonly released: number };
  /** Filled by the deal actors (requester and provider negotiations). */
  readonly jobs: Readonly<Record<string, unknown>>;
  readonly bidRequestsSent: Readonly<Record<string, unknown>>;
  readonly bidRequestsReceived: Readonly<Record<string, unknown>>;
  readonly bidsSent: Readonly<Record<string, unknown>>;
  readonly bidsReceived: Readonly<Record<string, unknown>>;
}

export const EMPTY_INDEXES: Indexes = Object.freeze({
  allocations: {},
  locks: { granted: 0, allocated: 0, released: 0 },
  jobs: {},
  bidRequestsSent: {},
  bidRequestsReceived: {},
  bidsSent: {},
  bidsReceived: {},
});

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
      return rec ? { ...ix, allocations: { ...ix.allocations, [fact.id]: { ...rec, endedAt: f.ts } } } : ix;
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
