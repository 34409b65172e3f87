// The live index store (@xstate/store) must hold exactly what the pure fold of the same facts gives, however the
// facts are batched, and resume from saved indexes as if it had seen the whole history.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { HostedActor } from '../../../actors/hosted-actor.ts';
import { nodeActorKind } from '../../../actors/node.actor.ts';
import { EMPTY_INDEXES, type Fact, type Indexes, evolveIndexes } from '../../../machines/indexes.ts';
import type { NodeEvent } from '../../../machines/node.messages.ts';
import { createIndexStore, recordFacts } from '../../../runtime/store/projections.ts';
import type { FactRecord } from '../../../runtime/supervisor/supervisor.ts';
import { BENCH, GiB, HOST, OFFER, T0 } from '../../fixtures/node-fixtures.ts';

const lockEv = (id: string, expiresAt: number, holder?: string): NodeEvent => ({
  type: 'ledger.lock',
  id,
  resources: { cpu: 0.25, memory: GiB, disk: 0, gpus: 0 },
  expiresAt,
  now: T0,
  ...(holder ? { holder } : {}),
});
const HISTORY: NodeEvent[] = [
  { type: 'node.onboard', offer: OFFER, host: HOST, benchmark: BENCH },
  lockEv('a', T0 + 1000, 'peer-a'),
  lockEv('b', T0 + 500),
  lockEv('c', T0 + 5000),
  { type: 'ledger.allocate', allocationId: 'job-a', lockId: 'a', now: T0 + 100 },
  { type: 'ledger.expire', now: T0 + 600 },
  { type: 'ledger.allocate', allocationId: 'job-c', lockId: 'c', now: T0 + 700 },
  { type: 'ledger.release', allocationId: 'job-a' },
  lockEv('d', T0 + 9000),
  { type: 'ledger.unlock', id: 'd' },
  lockEv('e', T0 + 9000),
];

/** The fact records the supervisor would report for HISTORY, delivered in batches of `size` (seq 1..n). */
function factRecords(size: number): FactRecord[][] {
  const actor = new HostedActor('node', nodeActorKind, { input: {} });
  const batches: FactRecord[][] = [];
  try {
    for (let from = 0; from < HISTORY.length; from += size) {
      const r = actor.deliver(HISTORY.slice(from, from + size));
      assert.is(r.failure, undefined);
      batches.push((r.facts ?? []).map((f) => ({ actor: 'node', seq: from + f.index + 1, ts: T0 + (from + f.index + 1) * 1000, fact: f.fact })));
    }
  } finally {
    actor.stop();
  }
  return batches;
}

const fold = (records: readonly FactRecord[], from: Indexes = EMPTY_INDEXES): Indexes =>
  records.reduce((ix, r) => evolveIndexes(ix, { ...r, fact: r.fact as Fact }), from);

const Store = suite('projections: the index store equals the fold of the facts');

Store('recordFacts in one batch or many gives the same indexes as folding evolveIndexes', () => {
  const all = factRecords(HISTORY.length).flat();
  const expected = fold(all);
  // the history did something worth indexing
  assert.equal(Object.keys(expected.allocations).sort(), ['job-a', 'job-c']);
  assert.is(expected.allocations['job-a']!.endedAt, T0 + 8000);
  assert.is(expected.allocations['job-a']!.holder, 'peer-a');
  assert.is(expected.allocations['job-c']!.endedAt, null);
  assert.equal(expected.locks, { granted: 5, allocated: 2, released: 2 });

  for (const size of [HISTORY.length, 3, 1]) {
    const batches = factRecords(size);
    assert.equal(batches.flat(), all, `batches of ${size} report the same facts`);
    const store = createIndexStore();
    for (const b of batches) recordFacts(store, b);
    assert.equal(store.getSnapshot().context, expected, `batches of ${size}`);
  }
});

Store('a store started from saved indexes continues as if it had seen the whole history', () => {
  const all = factRecords(HISTORY.length).flat();
  const cut = all.findIndex((r) => r.seq > 5);
  assert.ok(cut > 0 && cut < all.length);
  const early = createIndexStore();
  recordFacts(early, all.slice(0, cut));
  const saved = JSON.parse(JSON.stringify(early.getSnapshot().context)) as Indexes;

  const resumed = createIndexStore(saved);
  recordFacts(resumed, all.slice(cut));
  assert.equal(resumed.getSnapshot().context, fold(all));
  // the first store did not change when the second one moved on
  assert.equal(early.getSnapshot().context, fold(all.slice(0, cut)));
});

Store('an empty batch leaves the store as it was, and a fresh store starts empty', () => {
  const store = createIndexStore();
  assert.equal(store.getSnapshot().context, EMPTY_INDEXES);
  recordFacts(store, []);
  assert.equal(store.getSnapshot().context, EMPTY_INDEXES);
});

Store.run();
