// The indexes: ledgerFacts (what changed between two ledgers, in the past tense) and evolveIndexes (the fold of
// those facts into every allocation ever and the lock counters). Pure functions: no actor, no clock.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createActor } from 'xstate';
import { EMPTY_INDEXES, type Fact, type Indexes, type LoggedFact, MAX_ENDED_INDEXED, evolveIndexes, ledgerFacts } from '../../machines/indexes.ts';
import { type Ledger, type LedgerResult, allocate, emptyLedger, expire, lock, release, unlock } from '../../machines/ledger.ts';
import { nodeMachine } from '../../machines/node.machine.ts';
import type { NodeEvent } from '../../machines/node.messages.ts';
import { BENCH, CAPABILITY, GiB, HOST, OFFER, T0, res } from '../fixtures/node-fixtures.ts';

/** The ledger of an accepted command; fails the test on a refusal. */
function ok(r: LedgerResult): Ledger {
  if (!r.ok) throw new Error(`ledger refused: ${r.code}: ${r.message}`);
  return r.ledger;
}

function locked(l: Ledger, id: string, expiresAt = T0 + 10_000, holder?: string): Ledger {
  return ok(lock(l, { id, resources: res(0.5, GiB), expiresAt, now: T0, ...(holder ? { holder } : {}) }));
}

/** A registered ledger with locks a (expires T0+1000) and b (expires T0+2000, held by peer-b). */
function twoLocks(): Ledger {
  return locked(locked(emptyLedger(CAPABILITY), 'a', T0 + 1000), 'b', T0 + 2000, 'peer-b');
}

function logged(fact: Fact, seq: number, ts = T0 + seq * 1000): LoggedFact {
  return { actor: 'node', seq, ts, fact };
}

// ---------------------------------------------------------------------------------------------------------------

const Facts = suite('indexes: ledgerFacts names what changed between two ledgers');

Facts('a granted lock is ResourcesLocked with the lock as granted', () => {
  const before = locked(emptyLedger(CAPABILITY), 'a', T0 + 1000);
  const after = locked(before, 'b', T0 + 2000, 'peer-b');
  assert.equal(ledgerFacts(before, after), [{ type: 'ResourcesLocked', lock: after.locks['b']! }]);
  assert.equal(after.locks['b'], { id: 'b', resources: res(0.5, GiB), ports: [], expiresAt: T0 + 2000, holder: 'peer-b' });
});

Facts('an unlocked lock is LockReleased with reason released', () => {
  const before = twoLocks();
  assert.equal(ledgerFacts(before, unlock(before, 'a')), [{ type: 'LockReleased', id: 'a', reason: 'released' }]);
});

Facts('each expired lock is LockReleased with reason released; live ones give nothing', () => {
  const before = locked(twoLocks(), 'c', T0 + 1000);
  const r = expire(before, T0 + 1000);
  assert.equal(r.expired.sort(), ['a', 'c']);
  assert.equal(
    ledgerFacts(before, r.ledger),
    [
      { type: 'LockReleased', id: 'a', reason: 'released' },
      { type: 'LockReleased', id: 'c', reason: 'released' },
    ],
  );
});

Facts('an allocation consumes its lock: LockReleased allocated, then AllocationCreated', () => {
  const before = twoLocks();
  const after = ok(allocate(before, { allocationId: 'job-b', lockId: 'b', now: T0 + 100 }));
  assert.equal(ledgerFacts(before, after), [
    { type: 'LockReleased', id: 'b', reason: 'allocated' },
    { type: 'AllocationCreated', allocation: { id: 'job-b', lockId: 'b', resources: res(0.5, GiB), ports: [], since: T0 + 100, holder: 'peer-b' } },
  ]);
});

Facts('a released allocation is AllocationReleased', () => {
  const before = ok(allocate(twoLocks(), { allocationId: 'job-a', lockId: 'a', now: T0 + 100 }));
  assert.equal(ledgerFacts(before, release(before, 'job-a')), [{ type: 'AllocationReleased', id: 'job-a' }]);
});

Facts('identical ledgers give no facts, even as fresh copies or with other fields changed', () => {
  const l = ok(allocate(twoLocks(), { allocationId: 'job-a', lockId: 'a', now: T0 + 100 }));
  assert.equal(ledgerFacts(l, l), []);
  assert.equal(ledgerFacts(l, { ...l, locks: { ...l.locks }, allocations: { ...l.allocations } }), []);
  assert.equal(ledgerFacts(l, { ...l, ceiling: { memory: GiB } }), []);
  // unknown ids are no-ops of the ledger, so no facts either
  assert.equal(ledgerFacts(l, unlock(l, 'zzz')), []);
  assert.equal(ledgerFacts(l, release(l, 'zzz')), []);
});

Facts.run();

// ---------------------------------------------------------------------------------------------------------------

const Fold = suite('indexes: evolveIndexes folds facts into allocations and lock counters');

Fold('allocations get createdAt/createdSeq from the fact that created them and endedAt from the release', () => {
  const l = twoLocks();
  const jobB = ok(allocate(l, { allocationId: 'job-b', lockId: 'b', now: T0 + 100 })).allocations['job-b']!;
  const jobA = ok(allocate(l, { allocationId: 'job-a', lockId: 'a', now: T0 + 100 })).allocations['job-a']!;
  let ix = [logged({ type: 'AllocationCreated', allocation: jobB }, 7, T0 + 70), logged({ type: 'AllocationCreated', allocation: jobA }, 8, T0 + 80)].reduce(evolveIndexes, EMPTY_INDEXES);
  assert.equal(ix.allocations, {
    'job-b': { id: 'job-b', lockId: 'b', resources: res(0.5, GiB), holder: 'peer-b', createdAt: T0 + 70, createdSeq: 7, endedAt: null },
    'job-a': { id: 'job-a', lockId: 'a', resources: res(0.5, GiB), createdAt: T0 + 80, createdSeq: 8, endedAt: null },
  });
  assert.not.ok('holder' in ix.allocations['job-a']!, 'no holder key when the allocation has none');

  ix = evolveIndexes(ix, logged({ type: 'AllocationReleased', id: 'job-b' }, 12, T0 + 120));
  assert.is(ix.allocations['job-b']!.endedAt, T0 + 120);
  assert.is(ix.allocations['job-b']!.createdSeq, 7);
  assert.is(ix.allocations['job-a']!.endedAt, null);
});

Fold('lock facts count granted, allocated and released locks', () => {
  const l = twoLocks();
  const facts: Fact[] = [
    { type: 'ResourcesLocked', lock: l.locks['a']! },
    { type: 'ResourcesLocked', lock: l.locks['b']! },
    { type: 'ResourcesLocked', lock: l.locks['a']! },
    { type: 'LockReleased', id: 'a', reason: 'allocated' },
    { type: 'LockReleased', id: 'b', reason: 'released' },
    { type: 'LockReleased', id: 'a', reason: 'released' },
  ];
  const ix = facts.map((f, i) => logged(f, i + 1)).reduce(evolveIndexes, EMPTY_INDEXES);
  assert.equal(ix.locks, { granted: 3, allocated: 1, released: 2 });
  assert.equal(ix.allocations, {});
});

Fold('releasing an unknown allocation changes nothing, and the empty indexes are never mutated', () => {
  const ix = evolveIndexes(EMPTY_INDEXES, logged({ type: 'AllocationReleased', id: 'ghost' }, 1));
  assert.is(ix, EMPTY_INDEXES);
  evolveIndexes(EMPTY_INDEXES, logged({ type: 'ResourcesLocked', lock: twoLocks().locks['a']! }, 2));
  assert.equal(EMPTY_INDEXES.locks, { granted: 0, allocated: 0, released: 0 });
  assert.equal(EMPTY_INDEXES.allocations, {});
});

Fold.run();

// ---------------------------------------------------------------------------------------------------------------

Fold('the indexes keep every live allocation and job but only the newest MAX_ENDED_INDEXED ended ones', () => {
  const alloc = (i: number) => ({ id: `a${i}`, lockId: `a${i}`, resources: res(0.01, GiB), ports: [], since: T0 });
  let ix = EMPTY_INDEXES;
  let seq = 0;
  ix = evolveIndexes(ix, logged({ type: 'AllocationCreated', allocation: alloc(-1) }, ++seq)); // stays live throughout
  for (let i = 0; i < MAX_ENDED_INDEXED + 5; i += 1) {
    ix = evolveIndexes(ix, logged({ type: 'AllocationCreated', allocation: alloc(i) }, ++seq));
    ix = evolveIndexes(ix, logged({ type: 'AllocationReleased', id: `a${i}` }, ++seq));
    ix = evolveIndexes(ix, logged({ type: 'JobChanged', job: { id: `j${i}`, name: 'n', state: 'completed', provider: null, exitCode: 0 } }, ++seq));
  }
  ix = evolveIndexes(ix, logged({ type: 'JobChanged', job: { id: 'live', name: 'n', state: 'running', provider: null, exitCode: null } }, ++seq));
  const ids = Object.keys(ix.allocations);
  assert.is(ids.length, MAX_ENDED_INDEXED + 1);
  assert.ok(ids.includes('a-1'), 'the live one stays');
  assert.not.ok(ids.includes('a0') || ids.includes('a4'), 'the oldest ended went');
  assert.ok(ids.includes('a5') && ids.includes(`a${MAX_ENDED_INDEXED + 4}`));
  const jobs = Object.keys(ix.jobs);
  assert.is(jobs.length, MAX_ENDED_INDEXED + 1);
  assert.ok(jobs.includes('live') && !jobs.includes('j0'));
  assert.equal(ix.jobsEnded, { completed: MAX_ENDED_INDEXED + 5, failed: 0, cancelled: 0 }, 'every end counted, past the bound on those kept');
});

const History = suite('indexes: the facts of a whole Node history fold into every allocation ever');

const lockEv = (id: string, expiresAt: number): NodeEvent => ({ type: 'ledger.lock', id, resources: res(0.25, GiB), expiresAt, now: T0 });
const HISTORY: NodeEvent[] = [
  { type: 'node.onboard', offer: OFFER, host: HOST, benchmark: BENCH }, // seq 1
  lockEv('a', T0 + 1000), // 2
  lockEv('b', T0 + 500), // 3
  lockEv('c', T0 + 5000), // 4
  lockEv('d', T0 + 9000), // 5
  { type: 'ledger.allocate', allocationId: 'job-a', lockId: 'a', now: T0 + 100 }, // 6
  { type: 'ledger.expire', now: T0 + 600 }, // 7: b expires
  { type: 'ledger.unlock', id: 'd' }, // 8
  { type: 'ledger.lock', id: 'refused', resources: res(99), expiresAt: T0 + 9000, now: T0 }, // 9: refused, no fact
  { type: 'ledger.allocate', allocationId: 'job-c', lockId: 'c', now: T0 + 700 }, // 10
  { type: 'ledger.release', allocationId: 'job-a' }, // 11
  lockEv('e', T0 + 9000), // 12
  { type: 'node.stop' }, // 13: stops job-c, drops lock e
];
const tsOf = (seq: number) => T0 + seq * 1000;

History('facts from consecutive snapshots of the real nodeMachine rebuild allocations and counters', () => {
  const actor = createActor(nodeMachine, { input: {} });
  actor.start();
  const logs: LoggedFact[] = [];
  try {
    let before = actor.getSnapshot().context.ledger;
    HISTORY.forEach((event, i) => {
      actor.send(event);
      const after = actor.getSnapshot().context.ledger;
      for (const fact of ledgerFacts(before, after)) logs.push({ actor: 'node', seq: i + 1, ts: tsOf(i + 1), fact });
      before = after;
    });
    // the history ran as intended: everything ended, nothing is left in the ledger
    assert.is(actor.getSnapshot().value, 'stopped');
    assert.equal(actor.getSnapshot().context.ledger.allocations, {});
    assert.equal(actor.getSnapshot().context.ledger.locks, {});
  } finally {
    actor.stop();
  }

  assert.equal(
    logs.map((l) => [l.seq, l.fact.type]),
    [
      [2, 'ResourcesLocked'],
      [3, 'ResourcesLocked'],
      [4, 'ResourcesLocked'],
      [5, 'ResourcesLocked'],
      [6, 'LockReleased'],
      [6, 'AllocationCreated'],
      [7, 'LockReleased'],
      [8, 'LockReleased'],
      [10, 'LockReleased'],
      [10, 'AllocationCreated'],
      [11, 'AllocationReleased'],
      [12, 'ResourcesLocked'],
      [13, 'LockReleased'],
      [13, 'AllocationReleased'],
    ],
  );

  const ix: Indexes = logs.reduce(evolveIndexes, EMPTY_INDEXES);
  assert.equal(ix.allocations, {
    'job-a': { id: 'job-a', lockId: 'a', resources: res(0.25, GiB), createdAt: tsOf(6), createdSeq: 6, endedAt: tsOf(11) },
    'job-c': { id: 'job-c', lockId: 'c', resources: res(0.25, GiB), createdAt: tsOf(10), createdSeq: 10, endedAt: tsOf(13) },
  });
  // a, c allocated; b expired, d unlocked, e dropped by the stop
  assert.equal(ix.locks, { granted: 5, allocated: 2, released: 3 });
});

History.run();
