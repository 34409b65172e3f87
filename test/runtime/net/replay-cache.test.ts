import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { REPLAY_CACHE_DEFAULTS, ReplayCache } from '../../../runtime/net/replay-cache.ts';

const Replay = suite('replay cache: an id is accepted once until it expires');

Replay('the same id from the same sender is replayed; from another sender it is fresh', () => {
  const c = new ReplayCache({ perPeer: 10, maxEntries: 100, maxBytes: 1 << 20 });
  assert.not.ok(c.has('p', 'id1', 0));
  assert.is(c.admit('p', 'id1', 1000, 0), 'fresh');
  assert.ok(c.has('p', 'id1', 1));
  assert.is(c.admit('p', 'id1', 1000, 1), 'replayed');
  assert.is(c.admit('q', 'id1', 1000, 1), 'fresh');
});

Replay('an expired id may come again (the envelope itself is refused as expired before it gets here)', () => {
  const c = new ReplayCache({ perPeer: 10, maxEntries: 100, maxBytes: 1 << 20 });
  c.admit('p', 'x', 100, 0);
  assert.not.ok(c.has('p', 'x', 101));
  assert.is(c.admit('p', 'x', 300, 101), 'fresh');
  assert.is(c.size, 1);
});

Replay.run();

const Bounds = suite('replay cache: bounded per sender and in total, and never forgets a live id');

Bounds('a sender at its share is refused until its ids expire, others are not affected', () => {
  const c = new ReplayCache({ perPeer: 3, maxEntries: 100, maxBytes: 1 << 20 });
  for (const id of ['a', 'b', 'c']) assert.is(c.admit('p', id, 100, 0), 'fresh');
  assert.is(c.admit('p', 'd', 100, 50), 'full');
  assert.is(c.admit('q', 'd', 100, 50), 'fresh');
  assert.is(c.admit('p', 'd', 300, 101), 'fresh');
  c.sweep(1000);
  assert.is(c.size, 0);
  assert.is(c.bytes, 0);
});

Bounds('many senders cannot hold more ids than the total: 4096 senders x 300 ids stop at the cap', () => {
  const c = new ReplayCache({ perPeer: 300, maxEntries: 10_000, maxBytes: 64 << 20 });
  const verdicts = { fresh: 0, full: 0, replayed: 0 };
  for (let p = 0; p < 4096; p += 1) for (let i = 0; i < 300; i += 1) verdicts[c.admit(`peer${p}`, `id${i}`, 60_000, 0)] += 1;
  assert.is(verdicts.fresh, 10_000);
  assert.is(verdicts.full, 4096 * 300 - 10_000);
  assert.is(c.size, 10_000);
});

Bounds('the estimated bytes are bounded too: long ids hit the byte cap before the entry cap', () => {
  const c = new ReplayCache({ perPeer: 100_000, maxEntries: 100_000, maxBytes: 100_000 });
  let fresh = 0;
  for (let i = 0; i < 10_000; i += 1) if (c.admit(`p${i % 50}`, `${'x'.repeat(120)}${i}`, 60_000, 0) === 'fresh') fresh += 1;
  assert.ok(c.bytes <= 100_000, `${c.bytes} bytes`);
  assert.ok(fresh > 100 && fresh < 1000, `${fresh} admitted`);
});

Bounds('when full, a live id is never evicted: the first sender\'s first id stays replayed, the newcomer is refused', () => {
  const c = new ReplayCache({ perPeer: 10, maxEntries: 50, maxBytes: 1 << 20 });
  for (let p = 0; p < 5; p += 1) for (let i = 0; i < 10; i += 1) c.admit(`peer${p}`, `id${i}`, 60_000, 0);
  for (let p = 5; p < 5000; p += 1) assert.is(c.admit(`peer${p}`, 'id0', 60_000, 1), 'full');
  assert.is(c.admit('peer0', 'id0', 60_000, 2), 'replayed');
  // once they expire there is room again
  assert.is(c.admit('peer9', 'id0', 120_000, 60_001), 'fresh');
  assert.is(c.admit('peer0', 'id0', 120_000, 60_001), 'fresh');
});

Bounds('ids that expired behind a longer-lived one are reclaimed when the cache is full', () => {
  const c = new ReplayCache({ perPeer: 1000, maxEntries: 11, maxBytes: 1 << 20 });
  assert.is(c.admit('p', 'long', 300_000, 0), 'fresh');
  for (let i = 0; i < 10; i += 1) c.admit('p', `short${i}`, 1_000, 0);
  c.sweep(2_000); // stops at 'long', the first live id
  assert.is(c.size, 11);
  assert.is(c.admit('q', 'new', 30_000, 2_000), 'fresh');
  assert.is(c.size, 2);
  assert.is(c.admit('p', 'long', 300_000, 2_000), 'replayed');
});

Bounds('the defaults bound the cache to 600k ids and 64 MiB, and hold the net-flood sender\'s ids', () => {
  assert.equal(REPLAY_CACHE_DEFAULTS, { perPeer: 250_000, maxEntries: 600_000, maxBytes: 64 << 20 });
  const c = new ReplayCache();
  for (let i = 0; i < 170_000; i += 1) assert.is(c.admit('bench', `Xq3bootid.${i.toString(36)}`, 120_000, 0), 'fresh');
  assert.ok(c.bytes < 64 << 20);
});

Bounds.run();
