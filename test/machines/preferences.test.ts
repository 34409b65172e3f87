import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Resources } from '../../machines/capability.ts';
import {
  type Candidate,
  DEFAULT_PREFERENCES,
  type Preferences,
  type ProviderPreferences,
  type RankingWeights,
  createComparator,
} from '../../machines/preferences.ts';

const GiB = 1024 ** 3;

function withWeights(weights: RankingWeights): Preferences {
  return { ...DEFAULT_PREFERENCES, requester: { weights } };
}

function withProvider(p: Partial<ProviderPreferences>): Preferences {
  return { ...DEFAULT_PREFERENCES, provider: { ...DEFAULT_PREFERENCES.provider, ...p } };
}

function ids<C extends Candidate>(ranked: readonly { candidate: C }[]): string[] {
  return ranked.map((r) => r.candidate.id);
}

/** Cheap but slow and far; dear but fast; middling. */
const cheap: Candidate = { id: 'cheap', price: 1, score: 100, rttMs: 200 };
const fast: Candidate = { id: 'fast', price: 10, score: 1000, rttMs: 150 };
const near: Candidate = { id: 'near', price: 5, score: 400, rttMs: 5 };
const all = [cheap, fast, near];

const Rank = suite('preferences: ranking follows the weights');

Rank('cheaper wins when the price weight dominates', () => {
  const r = createComparator(withWeights({ price: 10, score: 1, rtt: 0 })).rank(all);
  assert.equal(ids(r), ['cheap', 'near', 'fast']);
  assert.equal(
    r.map((x) => x.rank),
    [1, 2, 3],
  );
});

Rank('faster wins when the score weight dominates', () => {
  const r = createComparator(withWeights({ price: 1, score: 10, rtt: 0 })).rank(all);
  assert.equal(ids(r), ['fast', 'near', 'cheap']);
});

Rank('lower round-trip time wins when the rtt weight dominates', () => {
  const r = createComparator(withWeights({ price: 0, score: 0, rtt: 1 })).rank(all);
  assert.equal(ids(r), ['near', 'fast', 'cheap']);
});

Rank('utilities are normalised per criterion and weighted', () => {
  const r = createComparator(withWeights({ price: 2, score: 0, rtt: 0 })).rank([
    { id: 'a', price: 3, score: 0, rttMs: 0 },
    { id: 'b', price: 1, score: 0, rttMs: 0 },
    { id: 'c', price: 2, score: 0, rttMs: 0 },
  ]);
  assert.equal(ids(r), ['b', 'c', 'a']);
  assert.equal(
    r.map((x) => x.utility),
    // price: 2 * (1 - normalised price); score and rtt are all equal, so they normalise to 1 (weight 0 here).
    [2, 1, 0],
  );
});

Rank('default weights balance price and score above rtt', () => {
  // a and b trade price against score evenly; rtt decides.
  const a: Candidate = { id: 'a', price: 1, score: 10, rttMs: 100 };
  const b: Candidate = { id: 'b', price: 2, score: 20, rttMs: 10 };
  const r = createComparator(DEFAULT_PREFERENCES).rank([a, b]);
  assert.equal(ids(r), ['b', 'a']);
  assert.equal(
    r.map((x) => x.utility),
    // b: price 0 + score 1 + rtt 0.5; a: price 1 + score 0 + rtt 0.
    [1.5, 1],
  );
});

Rank('ties keep the input order', () => {
  const twins: Candidate[] = [
    { id: 'first', price: 5, score: 5, rttMs: 5 },
    { id: 'second', price: 5, score: 5, rttMs: 5 },
    { id: 'third', price: 5, score: 5, rttMs: 5 },
  ];
  const cmp = createComparator(DEFAULT_PREFERENCES);
  assert.equal(ids(cmp.rank(twins)), ['first', 'second', 'third']);
  assert.equal(ids(cmp.rank([...twins].reverse())), ['third', 'second', 'first']);
  // A tie between two of them, with a clear winner ahead.
  const mixed = [twins[0]!, { id: 'best', price: 1, score: 9, rttMs: 1 }, twins[1]!];
  assert.equal(ids(cmp.rank(mixed)), ['best', 'first', 'second']);
});

Rank('ranking an empty list gives an empty list; one candidate ranks first', () => {
  const cmp = createComparator(DEFAULT_PREFERENCES);
  assert.equal(cmp.rank([]), []);
  const one = cmp.rank([cheap]);
  assert.is(one.length, 1);
  assert.is(one[0]?.rank, 1);
  assert.is(one[0]?.candidate, cheap);
});

Rank('rank keeps the caller’s candidate objects (extra fields survive)', () => {
  const withExtra = [{ ...cheap, peer: 'p1' }, { ...fast, peer: 'p2' }];
  const r = createComparator(withWeights({ price: 1, score: 0, rtt: 0 })).rank(withExtra);
  assert.is(r[0]?.candidate.peer, 'p1');
});

Rank.run();

const Compare = suite('preferences: compare()');

Compare('Better when a is preferred, Worse when b is, Equal on a tie', () => {
  const byPrice = createComparator(withWeights({ price: 1, score: 0, rtt: 0 }));
  assert.is(byPrice.compare(cheap, fast), 'Better');
  assert.is(byPrice.compare(fast, cheap), 'Worse');
  assert.is(byPrice.compare(cheap, { ...cheap, id: 'copy' }), 'Equal');
  const byScore = createComparator(withWeights({ price: 0, score: 1, rtt: 0 }));
  assert.is(byScore.compare(cheap, fast), 'Worse');
  assert.is(byScore.compare(fast, cheap), 'Better');
});

Compare('candidates equal on the weighted criteria compare Equal even if they differ elsewhere', () => {
  const byPrice = createComparator(withWeights({ price: 1, score: 0, rtt: 0 }));
  assert.is(byPrice.compare({ ...cheap, score: 1 }, { ...cheap, score: 1e6 }), 'Equal');
});

Compare('compare agrees with rank on every pair', () => {
  const cmp = createComparator(DEFAULT_PREFERENCES);
  const order = ids(cmp.rank(all));
  for (let i = 0; i < order.length; i += 1) {
    for (let j = i + 1; j < order.length; j += 1) {
      const a = all.find((c) => c.id === order[i])!;
      const b = all.find((c) => c.id === order[j])!;
      assert.is(cmp.compare(a, b, all), 'Better', `${a.id} vs ${b.id}`);
      assert.is(cmp.compare(b, a, all), 'Worse', `${b.id} vs ${a.id}`);
    }
  }
});

Compare.run();

const Accepts = suite('preferences: accepts() as a provider');

const registered: Resources = { cpu: 4, memory: 8 * GiB, disk: 100 * GiB, gpus: 0 };
const small: Resources = { cpu: 1, memory: GiB, disk: GiB, gpus: 0 };

Accepts('default preferences accept anyone at any price when resources fit', () => {
  assert.equal(createComparator(DEFAULT_PREFERENCES).accepts({ requester: 'did:key:zA', price: 0, resources: small }, registered, registered), { ok: true });
});

Accepts('a refused requester is refused, even if also on the accept list', () => {
  const cmp = createComparator(withProvider({ refuseRequesters: ['did:key:zBad'], acceptRequesters: ['did:key:zBad', 'did:key:zGood'] }));
  const r = cmp.accepts({ requester: 'did:key:zBad', price: 5, resources: small }, registered, registered);
  assert.is(r.ok, false);
  assert.match(!r.ok ? r.reason : '', /did:key:zBad is refused/);
  assert.equal(cmp.accepts({ requester: 'did:key:zGood', price: 5, resources: small }, registered, registered), { ok: true });
});

Accepts('with an accept list, only listed requesters are served', () => {
  const cmp = createComparator(withProvider({ acceptRequesters: ['did:key:zFriend'] }));
  const r = cmp.accepts({ requester: 'did:key:zStranger', price: 5, resources: small }, registered, registered);
  assert.is(r.ok, false);
  assert.match(!r.ok ? r.reason : '', /not in the accepted list/);
  assert.equal(cmp.accepts({ requester: 'did:key:zFriend', price: 5, resources: small }, registered, registered), { ok: true });
});

Accepts('a price below the minimum is refused; exactly the minimum is accepted', () => {
  const cmp = createComparator(withProvider({ minPrice: 10 }));
  const r = cmp.accepts({ requester: 'x', price: 9.99, resources: small }, registered, registered);
  assert.is(r.ok, false);
  assert.match(!r.ok ? r.reason : '', /price 9\.99 is below the minimum 10/);
  assert.equal(cmp.accepts({ requester: 'x', price: 10, resources: small }, registered, registered), { ok: true });
});

Accepts('a request larger than free resources is refused, naming the short fields', () => {
  const cmp = createComparator(DEFAULT_PREFERENCES);
  const free: Resources = { cpu: 0.5, memory: 8 * GiB, disk: 0, gpus: 0 };
  const r = cmp.accepts({ requester: 'x', price: 1, resources: small }, free, registered);
  assert.is(r.ok, false);
  assert.match(!r.ok ? r.reason : '', /not enough free cpu, disk/);
});

Accepts('the keepFree reserve refuses a request that would otherwise fit', () => {
  const big: Resources = { cpu: 3.5, memory: 4 * GiB, disk: 10 * GiB, gpus: 0 };
  const req = { requester: 'x', price: 1, resources: big };
  assert.equal(createComparator(DEFAULT_PREFERENCES).accepts(req, registered, registered), { ok: true });
  const r = createComparator(withProvider({ keepFree: 0.25 })).accepts(req, registered, registered);
  assert.is(r.ok, false);
  assert.match(!r.ok ? r.reason : '', /not enough free cpu after keeping 25% free/);
  // Exactly what is left after the reserve (4 - 25% = 3 cores) still fits.
  assert.equal(createComparator(withProvider({ keepFree: 0.25 })).accepts({ ...req, resources: { ...big, cpu: 3 } }, registered, registered), { ok: true });
});

Accepts('the reserve applies to memory and disk as well as cpu', () => {
  const cmp = createComparator(withProvider({ keepFree: 0.5 }));
  const fits = { requester: 'x', price: 1, resources: { cpu: 1, memory: 4 * GiB, disk: 50 * GiB, gpus: 0 } };
  assert.equal(cmp.accepts(fits, registered, registered), { ok: true });
  const mem = cmp.accepts({ ...fits, resources: { ...fits.resources, memory: 4 * GiB + 1 } }, registered, registered);
  assert.match(!mem.ok ? mem.reason : '', /not enough free memory after keeping 50% free/);
  const disk = cmp.accepts({ ...fits, resources: { ...fits.resources, disk: 50 * GiB + 1 } }, registered, registered);
  assert.match(!disk.ok ? disk.reason : '', /not enough free disk after keeping 50% free/);
});

Accepts('the reserve is taken from what is free now, not from the registered total', () => {
  const cmp = createComparator(withProvider({ keepFree: 0.5 }));
  const free: Resources = { cpu: 3, memory: 8 * GiB, disk: 100 * GiB, gpus: 0 };
  // 50% of 4 registered cores is 2; 3 free - 2 = 1 core offerable.
  assert.equal(cmp.accepts({ requester: 'x', price: 1, resources: small }, free, registered), { ok: true });
  assert.is(cmp.accepts({ requester: 'x', price: 1, resources: { ...small, cpu: 1.5 } }, free, registered).ok, false);
});

Accepts('fractional cpu: 0.1 + 0.2 cores fit in 0.3 free cores, as they do in the ledger', () => {
  const cmp = createComparator(DEFAULT_PREFERENCES);
  const free: Resources = { cpu: 0.3, memory: GiB, disk: GiB, gpus: 0 };
  assert.equal(cmp.accepts({ requester: 'x', price: 1, resources: { cpu: 0.1 + 0.2, memory: 0, disk: 0, gpus: 0 } }, free, registered), { ok: true });
  // With a 10% reserve of 3 cores (0.30000000000000004) out of 3.3 free, 3 cores remain.
  const reserve = createComparator(withProvider({ keepFree: 0.1 }));
  const reg3: Resources = { ...registered, cpu: 3 };
  assert.equal(reserve.accepts({ requester: 'x', price: 1, resources: { ...small, cpu: 3 } }, { ...registered, cpu: 3.3 }, reg3), { ok: true });
});

Accepts('gpus asked for but not free are refused', () => {
  const cmp = createComparator(DEFAULT_PREFERENCES);
  const r = cmp.accepts({ requester: 'x', price: 1, resources: { ...small, gpus: 1 } }, registered, registered);
  assert.is(r.ok, false);
  assert.match(!r.ok ? r.reason : '', /gpus/);
});

Accepts.run();
