// GrantVerifier (runtime/trust/verifier-cache.ts): a chain verified once per token, audience and action, kept
// until its earliest expiry, dropped on revocation or when its anchor goes, bounded, and counted.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { GrantVerifier } from '../../../runtime/trust/verifier-cache.ts';
import { type Cast, HOUR, NOW, type TrustLib, cast, chain3, loadTrust } from './trust-fixtures.ts';

let T: TrustLib;
let p: Cast;
/** Ids the revocation store holds, and how often the verifier asked it (a full verification asks per link). */
let revokedIds: Set<string>;
let asked: number;
let v: GrantVerifier;

const fresh = (maxEntries?: number) =>
  new T.GrantVerifier({
    anchors: [p.root.did],
    revoked: (id) => {
      asked += 1;
      return revokedIds.has(id);
    },
    ...(maxEntries ? { maxEntries } : {}),
  });

const Cache = suite('GrantVerifier');
Cache.before(async () => {
  T = await loadTrust();
  p = await cast();
});
Cache.before.each(() => {
  revokedIds = new Set();
  asked = 0;
  v = fresh();
});

const C_DEPLOY = () => ({ audienceDid: p.c.did, action: 'deploy' as const, now: NOW });

Cache('a second check of the same token, audience and action is a hit and verifies nothing', () => {
  const { t3 } = chain3(p);
  const first = v.verify(t3, C_DEPLOY());
  assert.ok(first.ok);
  assert.is(asked, 3);
  const second = v.verify(t3, { ...C_DEPLOY(), now: NOW + 1000 });
  assert.equal(second, first);
  assert.is(asked, 3, 'a hit does not verify again');
  assert.equal(v.stats(), { hits: 1, misses: 1, entries: 1, evictions: 0, refusals: {} });
});

Cache('another audience or action is its own entry, and a refusal is counted by reason, never kept', () => {
  const { t2, t3 } = chain3(p);
  assert.ok(v.verify(t3, C_DEPLOY()).ok);
  assert.is(v.verify(t3, { ...C_DEPLOY(), action: 'logs' }).ok, false);
  assert.is(v.verify(t3, { ...C_DEPLOY(), audienceDid: p.b.did }).ok, false);
  assert.is(v.verify(t3, { ...C_DEPLOY(), audienceDid: p.b.did }).ok, false);
  assert.ok(v.verify(t2, { ...C_DEPLOY(), audienceDid: p.b.did, action: 'logs' }).ok);
  assert.is(v.verify('garbage!', C_DEPLOY()).ok, false);
  assert.is(v.verify('A'.repeat(T.MAX_TOKEN_CHARS + 1), C_DEPLOY()).ok, false);
  const s = v.stats();
  assert.equal(s.refusals, { 'action-not-granted': 1, 'wrong-audience': 2, malformed: 2 });
  assert.is(s.entries, 2);
  assert.is(s.hits, 0);
});

Cache('a kept result holds until the earliest expiry in its chain, then the chain is verified again and refused', () => {
  const { t3 } = chain3(p);
  assert.ok(v.verify(t3, C_DEPLOY()).ok);
  assert.ok(v.verify(t3, { ...C_DEPLOY(), now: NOW + HOUR - 1 }).ok);
  assert.is(v.stats().hits, 1);
  const late = v.verify(t3, { ...C_DEPLOY(), now: NOW + HOUR });
  assert.is(late.ok ? 'ok' : late.reason, 'expired');
  assert.equal(v.stats(), { hits: 1, misses: 2, entries: 0, evictions: 0, refusals: { expired: 1 } });
});

Cache('revoke(id) of the root, a middle link or the leaf drops every kept result holding it', () => {
  for (let i = 0; i < 3; i += 1) {
    revokedIds = new Set();
    v = fresh();
    const { t3 } = chain3(p, NOW + i);
    const sibling = T.delegate({ token: chain3(p, NOW + i).t2, holderKey: p.b.key, audienceDid: p.stranger.did, actions: ['logs'], expiresAt: NOW + HOUR, now: NOW });
    assert.ok(v.verify(t3, C_DEPLOY()).ok);
    assert.ok(v.verify(t3, { ...C_DEPLOY(), action: 'deploy' }).ok);
    assert.ok(v.verify(sibling, { audienceDid: p.stranger.did, action: 'logs', now: NOW }).ok);
    const id = T.linkIds(t3)[i]!;
    revokedIds.add(id);
    v.revoke(id);
    const r = v.verify(t3, C_DEPLOY());
    assert.is(r.ok ? 'ok' : r.reason, 'revoked', `link ${i}`);
    // the sibling shares the root and A's link with t3, not B's link to C
    assert.is(v.verify(sibling, { audienceDid: p.stranger.did, action: 'logs', now: NOW }).ok, i === 2, `sibling after revoking link ${i}`);
  }
});

Cache('without revoke(id) a kept result outlives a revocation: the store must call it', () => {
  const { t3 } = chain3(p);
  assert.ok(v.verify(t3, C_DEPLOY()).ok);
  revokedIds.add(T.tokenId(t3));
  assert.ok(v.verify(t3, C_DEPLOY()).ok, 'still the kept answer');
  v.revoke(T.tokenId(t3));
  assert.is(v.verify(t3, C_DEPLOY()).ok, false);
});

Cache('setAnchors drops the results of chains whose root is no longer an anchor', () => {
  const { t3 } = chain3(p);
  assert.ok(v.verify(t3, C_DEPLOY()).ok);
  v.setAnchors([p.root.did, p.stranger.did]);
  assert.ok(v.verify(t3, C_DEPLOY()).ok);
  assert.is(v.stats().hits, 1, 'still kept while its root is an anchor');
  v.setAnchors([p.stranger.did]);
  const r = v.verify(t3, C_DEPLOY());
  assert.is(r.ok ? 'ok' : r.reason, 'no-anchor');
});

Cache('bounded: past maxEntries the least recently used result goes first', () => {
  v = fresh(2);
  const tokens = [0, 1, 2].map((i) => chain3(p, NOW + i).t3);
  const check = (t: string) => v.verify(t, C_DEPLOY());
  check(tokens[0]!);
  check(tokens[1]!);
  check(tokens[0]!); // a hit: token 0 is now the most recent
  check(tokens[2]!); // evicts token 1
  assert.equal(v.stats(), { hits: 1, misses: 3, entries: 2, evictions: 1, refusals: {} });
  asked = 0;
  check(tokens[0]!);
  check(tokens[2]!);
  assert.is(asked, 0, 'tokens 0 and 2 are kept');
  check(tokens[1]!);
  assert.is(asked, 3, 'token 1 was verified again');
  assert.is(v.stats().entries, 2);
  // token 0 went out for token 1: revoking its link finds nothing to drop; revoking token 2's drops it
  v.revoke(T.tokenId(tokens[0]!));
  assert.is(v.stats().entries, 2);
  v.revoke(T.tokenId(tokens[2]!));
  assert.is(v.stats().entries, 1);
});

Cache('a bad maxEntries is refused', () => {
  assert.throws(() => fresh(-1), /maxEntries/);
  assert.throws(() => new T.GrantVerifier({ anchors: [], revoked: () => false, maxEntries: 0 }), /maxEntries/);
});

Cache.run();
