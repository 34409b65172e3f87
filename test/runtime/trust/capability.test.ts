// Capability tokens (runtime/trust/capability.ts): issuing, delegating only by narrowing, and verifying a chain
// offline to an anchor, with every refusal named.
import { createPublicKey, verify } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { VerifyResult } from '../../../runtime/trust/capability.ts';
import { type Cast, HOUR, NOW, type TrustLib, cast, chain3, forgeUnder, fromPairs, linksOf, loadTrust, party, rawPairs, verifyOptions } from './trust-fixtures.ts';

const refusal = (r: VerifyResult) => (r.ok ? 'ok' : r.reason);
const throwsNamed = (fn: () => unknown, name: string, message: RegExp, field?: string) => {
  try {
    fn();
  } catch (e) {
    const err = e as Error & { field?: string };
    assert.is(err.name, name, err.message);
    assert.match(err.message, message);
    if (field) assert.is(err.field, field);
    return;
  }
  assert.unreachable(`expected ${name}`);
};

let T: TrustLib;
let p: Cast;
const setup = async () => {
  T = await loadTrust();
  p = await cast();
};

// ------------------------------------------------------------------------------------------ keys and format

const Keys = suite('keys: the node\'s libp2p ed25519 key signs, with the DID identity.ts gives it');
Keys.before(setup);

Keys('didOfKey of a libp2p key is didKeyOf of its public key', () => {
  assert.is(T.didOfKey(p.root.key), T.didKeyOf(p.root.key.publicKey.raw));
  assert.match(T.didOfKey(p.root.key), /^did:key:z6Mk/);
});

Keys('a root grant\'s signature verifies with the key its DID names, over the domain-prefixed payload', () => {
  const [link] = linksOf(T.issueGrant({ issuerKey: p.root.key, audienceDid: p.a.did, actions: ['deploy'], expiresAt: NOW + HOUR, now: NOW }));
  const pub = createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(p.root.key.publicKey.raw).toString('base64url') } });
  const signed = Buffer.concat([Buffer.from('dms capability v1\0'), link!.bytes]);
  assert.ok(verify(null, signed, pub, link!.sig));
  assert.not.ok(verify(null, link!.bytes, pub, link!.sig), 'the bare payload (as an envelope would sign it) must not verify');
});

Keys('a key whose public half is not its seed\'s is refused', () => {
  const bad = { raw: p.root.key.raw, publicKey: { raw: p.a.key.publicKey.raw } };
  assert.throws(() => T.issueGrant({ issuerKey: bad, audienceDid: p.a.did, actions: ['deploy'], expiresAt: NOW + HOUR, now: NOW }), /does not belong/);
});

const Format = suite('format: a compact base64url string that round-trips');
Format.before(setup);

Format('encode(decode(t)) is t; tokenId is the leaf\'s id, stable across decodes; linkIds root first', () => {
  const { t1, t3 } = chain3(p);
  assert.match(t3, /^[A-Za-z0-9_-]+$/);
  assert.ok(t3.length < 1500, `3 links take ${t3.length} characters`);
  assert.is(T.encodeToken(T.decodeToken(t3)), t3);
  assert.is(T.tokenId(t3), T.tokenId(T.decodeToken(t3)));
  assert.match(T.tokenId(t3), /^[A-Za-z0-9_-]{43}$/);
  assert.is(T.linkIds(t3).length, 3);
  assert.is(T.linkIds(t3)[0], T.tokenId(t1));
  assert.is(T.linkIds(t3)[2], T.tokenId(t3));
  assert.is.not(T.tokenId(t1), T.tokenId(t3));
});

// ------------------------------------------------------------------------------------------ delegation

const Narrowing = suite('delegate: only ever narrower than its proof');
Narrowing.before(setup);

Narrowing('an action the proof does not grant is refused, naming it', () => {
  const { t2 } = chain3(p);
  throwsNamed(() => T.delegate({ token: t2, holderKey: p.b.key, audienceDid: p.c.did, actions: ['deploy', 'cancel'], expiresAt: NOW + HOUR, now: NOW }), 'CapabilityWideningError', /does not grant cancel/, 'actions');
});

Narrowing('an expiry past the proof\'s (the earliest in its chain) is refused', () => {
  const { t2 } = chain3(p);
  throwsNamed(() => T.delegate({ token: t2, holderKey: p.b.key, audienceDid: p.c.did, actions: ['deploy'], expiresAt: NOW + 2 * HOUR + 1, now: NOW }), 'CapabilityWideningError', /expiry .* past the proof's/, 'expiry');
  T.delegate({ token: t2, holderKey: p.b.key, audienceDid: p.c.did, actions: ['deploy'], expiresAt: NOW + 2 * HOUR, now: NOW }); // equal is fine
});

Narrowing('a depth not below the proof\'s remaining depth is refused; a proof of depth 0 cannot be delegated', () => {
  const { t2, t3 } = chain3(p);
  throwsNamed(() => T.delegate({ token: t2, holderKey: p.b.key, audienceDid: p.c.did, actions: ['deploy'], expiresAt: NOW + HOUR, depth: 2, now: NOW }), 'CapabilityWideningError', /depth 2 is not below .* 2/, 'depth');
  throwsNamed(() => T.delegate({ token: t3, holderKey: p.c.key, audienceDid: p.stranger.did, actions: ['deploy'], expiresAt: NOW + HOUR, now: NOW }), 'CapabilityWideningError', /no further delegation/, 'depth');
});

Narrowing('a holder that is not the proof\'s audience is refused', () => {
  const { t2 } = chain3(p);
  throwsNamed(() => T.delegate({ token: t2, holderKey: p.a.key, audienceDid: p.c.did, actions: ['deploy'], expiresAt: NOW + HOUR, now: NOW }), 'CapabilityWideningError', new RegExp(`only the token's audience ${p.b.did}`), 'holder');
});

Narrowing('bad terms: no action, an unknown one, an expiry not after now, depth out of range, a bad DID, an expired proof', () => {
  const g = (o: object) => () => T.issueGrant({ issuerKey: p.root.key, audienceDid: p.a.did, actions: ['deploy'], expiresAt: NOW + HOUR, now: NOW, ...o });
  throwsNamed(g({ actions: [] }), 'CapabilityGrantError', /at least one action/);
  throwsNamed(g({ actions: ['deploy', 'admin'] }), 'CapabilityGrantError', /unknown action admin/);
  throwsNamed(g({ expiresAt: NOW }), 'CapabilityGrantError', /after now/);
  throwsNamed(g({ now: NOW + 0.5 }), 'CapabilityGrantError', /whole ms/);
  throwsNamed(g({ depth: 8 }), 'CapabilityGrantError', /depth 8 is out of range/);
  throwsNamed(g({ depth: -1 }), 'CapabilityGrantError', /out of range/);
  throwsNamed(g({ audienceDid: 'did:web:example.com' }), 'CapabilityGrantError', /not an ed25519 did:key/);
  const { t2 } = chain3(p);
  throwsNamed(() => T.delegate({ token: t2, holderKey: p.b.key, audienceDid: p.c.did, actions: ['deploy'], expiresAt: NOW + 3 * HOUR, now: NOW + 2 * HOUR }), 'CapabilityGrantError', /the proof expired/);
  throwsNamed(() => T.delegate({ token: 'not a token', holderKey: p.b.key, audienceDid: p.c.did, actions: ['deploy'], expiresAt: NOW + HOUR, now: NOW }), 'CapabilityTokenError', /not base64url/);
});

// ------------------------------------------------------------------------------------------ verification

const Valid = suite('verifyChain: a valid 3-link chain');
Valid.before(setup);

Valid('passes for the leaf audience, with the earliest expiry, the root and the ids', () => {
  const { t3 } = chain3(p);
  const r = T.verifyChain(t3, verifyOptions(p));
  assert.equal(r, { ok: true, expiresAt: NOW + HOUR, issuerRoot: p.root.did, ids: T.linkIds(t3) });
  assert.ok(T.verifyChain(T.decodeToken(t3), verifyOptions(p)).ok, 'a decoded token verifies too');
  assert.ok(T.verifyChain(t3, verifyOptions(p, { anchors: [p.stranger.did, p.root.did] })).ok);
});

Valid('a root grant alone verifies for its audience', () => {
  const t = T.issueGrant({ issuerKey: p.root.key, audienceDid: p.a.did, actions: ['logs'], expiresAt: NOW + HOUR, now: NOW });
  assert.ok(T.verifyChain(t, verifyOptions(p, { audienceDid: p.a.did, action: 'logs' })).ok);
});

Valid('an action the leaf does not hold is not granted, though an ancestor holds it', () => {
  const { t3 } = chain3(p);
  assert.is(refusal(T.verifyChain(t3, verifyOptions(p, { action: 'logs' }))), 'action-not-granted');
  assert.is(refusal(T.verifyChain(t3, verifyOptions(p, { action: 'cancel' }))), 'action-not-granted');
});

const Widening = suite('verifyChain: a validly signed link wider than its proof is refused');
Widening.before(setup);

Widening('an action the proof does not grant', () => {
  const { t2 } = chain3(p);
  const t = forgeUnder(t2, p.b, { aud: p.c.did, act: ['deploy', 'cancel'] });
  const r = T.verifyChain(t, verifyOptions(p));
  assert.is(refusal(r), 'widening');
  assert.match((r as { detail: string }).detail, /link 2 grants cancel/);
});

Widening('an expiry past the proof\'s', () => {
  const { t2 } = chain3(p);
  assert.is(refusal(T.verifyChain(forgeUnder(t2, p.b, { aud: p.c.did, exp: NOW + 2 * HOUR + 1 }), verifyOptions(p))), 'widening');
  assert.ok(T.verifyChain(forgeUnder(t2, p.b, { aud: p.c.did, exp: NOW + 2 * HOUR }), verifyOptions(p)).ok);
});

Widening('a depth not below the proof\'s', () => {
  const { t2 } = chain3(p);
  assert.is(refusal(T.verifyChain(forgeUnder(t2, p.b, { aud: p.c.did, dep: 2 }), verifyOptions(p))), 'widening');
  assert.is(refusal(T.verifyChain(forgeUnder(t2, p.b, { aud: p.c.did, dep: 5 }), verifyOptions(p))), 'widening');
});

Widening('a link issued by someone other than the proof\'s audience', () => {
  const { t2 } = chain3(p);
  const r = T.verifyChain(forgeUnder(t2, p.a, { aud: p.c.did }), verifyOptions(p));
  assert.is(refusal(r), 'wrong-audience');
  assert.match((r as { detail: string }).detail, /link 2 is issued by/);
});

Widening('a link that names another proof than its parent, or a root that names one', () => {
  const { t3 } = chain3(p);
  const t2b = chain3(p, NOW + 1).t2; // the same grants made a millisecond later: other ids
  assert.is(linksOf(t2b)[1]!.payload.aud, p.b.did);
  const spliced = T.encodeToken({ links: [...linksOf(t2b), linksOf(t3)[2]!] });
  assert.is(refusal(T.verifyChain(spliced, verifyOptions(p))), 'malformed');
  const rootWithProof = T.encodeToken({ links: [T.signLink(p.root.key, { v: 1, iss: p.root.did, aud: p.c.did, act: ['deploy'], exp: NOW + HOUR, iat: NOW, dep: 0, prf: new Uint8Array(32) })] });
  assert.is(refusal(T.verifyChain(rootWithProof, verifyOptions(p))), 'malformed');
});

const Depth = suite('verifyChain: depth');
Depth.before(setup);

Depth('a chain deeper than its root allows is refused as depth-exceeded', () => {
  const t1 = T.issueGrant({ issuerKey: p.root.key, audienceDid: p.a.did, actions: ['deploy'], expiresAt: NOW + HOUR, depth: 1, now: NOW });
  const t2 = T.delegate({ token: t1, holderKey: p.a.key, audienceDid: p.b.did, actions: ['deploy'], expiresAt: NOW + HOUR, depth: 0, now: NOW });
  assert.ok(T.verifyChain(t2, verifyOptions(p, { audienceDid: p.b.did })).ok);
  const t3 = forgeUnder(t2, p.b, { aud: p.c.did, dep: 0 });
  const r = T.verifyChain(t3, verifyOptions(p));
  assert.is(refusal(r), 'depth-exceeded');
  assert.match((r as { detail: string }).detail, /link 1 allows no further delegation/);
});

Depth('a root of depth 0 cannot be followed at all', () => {
  const t1 = T.issueGrant({ issuerKey: p.root.key, audienceDid: p.a.did, actions: ['deploy'], expiresAt: NOW + HOUR, now: NOW });
  assert.is(refusal(T.verifyChain(forgeUnder(t1, p.a, { aud: p.c.did, dep: 0 }), verifyOptions(p))), 'depth-exceeded');
});

Depth('the longest chain (MAX_LINKS links) verifies; one more link is malformed', async () => {
  const parties = [p.root, ...(await Promise.all(Array.from({ length: T.MAX_LINKS }, party)))];
  let t = T.issueGrant({ issuerKey: p.root.key, audienceDid: parties[1]!.did, actions: ['deploy'], expiresAt: NOW + HOUR, depth: T.MAX_LINKS - 1, now: NOW });
  for (let i = 1; i < T.MAX_LINKS; i += 1) t = T.delegate({ token: t, holderKey: parties[i]!.key, audienceDid: parties[i + 1]!.did, actions: ['deploy'], expiresAt: NOW + HOUR, depth: T.MAX_LINKS - 1 - i, now: NOW });
  assert.is(linksOf(t).length, T.MAX_LINKS);
  assert.ok(T.verifyChain(t, verifyOptions(p, { audienceDid: parties[T.MAX_LINKS]!.did })).ok);
  const pairs = rawPairs(t);
  const longer = fromPairs([...pairs, pairs[pairs.length - 1]]);
  const r = T.verifyChain(longer, verifyOptions(p, { audienceDid: parties[T.MAX_LINKS]!.did }));
  assert.is(refusal(r), 'malformed');
  assert.match((r as { detail: string }).detail, /9 links/);
});

const Time = suite('verifyChain: expiry and not-before');
Time.before(setup);

Time('valid until the earliest expiry (exclusive), then expired', () => {
  const { t3 } = chain3(p);
  assert.ok(T.verifyChain(t3, verifyOptions(p, { now: NOW + HOUR - 1 })).ok);
  assert.is(refusal(T.verifyChain(t3, verifyOptions(p, { now: NOW + HOUR }))), 'expired');
});

Time('the root expired: refused, naming link 0', () => {
  const { t3 } = chain3(p);
  const r = T.verifyChain(t3, verifyOptions(p, { now: NOW + 3 * HOUR }));
  assert.is(refusal(r), 'expired');
  assert.match((r as { detail: string }).detail, /link 0 expired/);
});

Time('a middle link expired (the leaf within it, the root still valid): refused, naming link 1', () => {
  const t1 = T.issueGrant({ issuerKey: p.root.key, audienceDid: p.a.did, actions: ['deploy'], expiresAt: NOW + 3 * HOUR, depth: 2, now: NOW });
  const t2 = T.delegate({ token: t1, holderKey: p.a.key, audienceDid: p.b.did, actions: ['deploy'], expiresAt: NOW + HOUR, depth: 1, now: NOW });
  const t3 = T.delegate({ token: t2, holderKey: p.b.key, audienceDid: p.c.did, actions: ['deploy'], expiresAt: NOW + HOUR, now: NOW });
  const r = T.verifyChain(t3, verifyOptions(p, { now: NOW + 2 * HOUR }));
  assert.is(refusal(r), 'expired');
  assert.match((r as { detail: string }).detail, /link 1 expired/);
});

Time('a grant with notBefore is not yet valid before it', () => {
  const t = T.issueGrant({ issuerKey: p.root.key, audienceDid: p.c.did, actions: ['deploy'], notBefore: NOW + HOUR, expiresAt: NOW + 2 * HOUR, now: NOW });
  assert.is(refusal(T.verifyChain(t, verifyOptions(p))), 'not-yet-valid');
  assert.ok(T.verifyChain(t, verifyOptions(p, { now: NOW + HOUR })).ok);
});

const Forgery = suite('verifyChain: forged or tampered links');
Forgery.before(setup);

Forgery('a link re-signed by another key (its issuer unchanged) is a bad signature', () => {
  const { t3 } = chain3(p);
  for (const i of [0, 1, 2]) {
    const l = linksOf(t3)[i]!;
    const resigned = T.signLink(p.stranger.key, l.payload);
    const links = [...linksOf(t3)];
    links[i] = resigned;
    const r = T.verifyChain(T.encodeToken({ links }), verifyOptions(p));
    assert.is(refusal(r), 'bad-signature', `link ${i}`);
    assert.match((r as { detail: string }).detail, new RegExp(`link ${i}'s signature`));
  }
});

Forgery('a byte flipped in any signature is a bad signature', () => {
  const { t3 } = chain3(p);
  for (const i of [0, 1, 2]) {
    for (const at of [0, 31, 63]) {
      const pairs = rawPairs(t3);
      const sig = Uint8Array.from(pairs[i]![1]);
      sig[at]! ^= 0x01;
      pairs[i] = [pairs[i]![0], sig];
      assert.is(refusal(T.verifyChain(fromPairs(pairs), verifyOptions(p))), 'bad-signature', `link ${i} byte ${at}`);
    }
  }
});

Forgery('a byte flipped in a payload is refused: the leaf\'s as a bad signature, a parent\'s as a broken chain', () => {
  const { t3 } = chain3(p);
  const flipExp = (i: number) => {
    const pairs = rawPairs(t3);
    const bytes = Uint8Array.from(pairs[i]![0]);
    const at = Buffer.from(bytes).indexOf(Buffer.from('exp')) + 'exp'.length + 8; // the uint64's last byte: exp moves 1 ms
    bytes[at]! ^= 0x01;
    pairs[i] = [bytes, pairs[i]![1]];
    return fromPairs(pairs);
  };
  assert.is(refusal(T.verifyChain(flipExp(2), verifyOptions(p))), 'bad-signature');
  assert.is(refusal(T.verifyChain(flipExp(1), verifyOptions(p))), 'malformed');
  assert.is(refusal(T.verifyChain(flipExp(0), verifyOptions(p))), 'malformed');
});

Forgery('any single flipped bit of the token string is refused', () => {
  const t = T.issueGrant({ issuerKey: p.root.key, audienceDid: p.c.did, actions: ['deploy'], expiresAt: NOW + HOUR, now: NOW });
  const bytes = Buffer.from(t, 'base64url');
  let refused = 0;
  for (let i = 0; i < bytes.length; i += 1) {
    const b = Buffer.from(bytes);
    b[i]! ^= 0x04;
    const r = T.verifyChain(b.toString('base64url'), verifyOptions(p));
    if (!r.ok) refused += 1;
  }
  assert.is(refused, bytes.length);
});

const Parties = suite('verifyChain: audience and anchors');
Parties.before(setup);

Parties('presented by anyone but the leaf\'s audience: wrong-audience', () => {
  const { t2, t3 } = chain3(p);
  assert.is(refusal(T.verifyChain(t3, verifyOptions(p, { audienceDid: p.b.did }))), 'wrong-audience');
  assert.is(refusal(T.verifyChain(t3, verifyOptions(p, { audienceDid: p.stranger.did }))), 'wrong-audience');
  assert.is(refusal(T.verifyChain(t2, verifyOptions(p))), 'wrong-audience'); // C presents B's token
});

Parties('a chain whose root is not an anchor: no-anchor, even when a later issuer is one', () => {
  const { t3 } = chain3(p);
  assert.is(refusal(T.verifyChain(t3, verifyOptions(p, { anchors: [p.stranger.did] }))), 'no-anchor');
  assert.is(refusal(T.verifyChain(t3, verifyOptions(p, { anchors: [p.a.did, p.b.did] }))), 'no-anchor');
  assert.is(refusal(T.verifyChain(t3, verifyOptions(p, { anchors: [] }))), 'no-anchor');
  const selfIssued = T.issueGrant({ issuerKey: p.stranger.key, audienceDid: p.c.did, actions: ['deploy'], expiresAt: NOW + HOUR, now: NOW });
  assert.is(refusal(T.verifyChain(selfIssued, verifyOptions(p))), 'no-anchor');
});

const Revoked = suite('verifyChain: revocation of any link');
Revoked.before(setup);

Revoked('revoking the root, a middle link or the leaf refuses the chain; another id does not', () => {
  const { t3 } = chain3(p);
  const ids = T.linkIds(t3);
  for (let i = 0; i < 3; i += 1) {
    const r = T.verifyChain(t3, verifyOptions(p, { revoked: (id) => id === ids[i] }));
    assert.is(refusal(r), 'revoked', `link ${i}`);
    assert.match((r as { detail: string }).detail, new RegExp(`link ${i} \\(`));
  }
  const other = T.tokenId(chain3(p, NOW + 1).t3);
  assert.ok(T.verifyChain(t3, verifyOptions(p, { revoked: (id) => id === other })).ok);
});

const Malformed = suite('verifyChain: malformed and oversized input');
Malformed.before(setup);

Malformed('garbage, wrong shapes and oversize are malformed, never thrown', () => {
  const cases: [string, unknown][] = [
    ['empty', ''],
    ['not base64url', 'abc+/='],
    ['not cbor', Buffer.from('hello world, not a token').toString('base64url')],
    ['a map, not a list', fromPairs({ links: [] })],
    ['no links', fromPairs([])],
    ['a link not a pair', fromPairs([[new Uint8Array(3)]])],
    ['a short signature', fromPairs([[new Uint8Array(3), new Uint8Array(10)]])],
    ['a payload not cbor', fromPairs([[new Uint8Array([0xff, 0xff]), new Uint8Array(64)]])],
    ['oversize', 'A'.repeat(T.MAX_TOKEN_CHARS + 1)],
    ['not a string', 42],
  ];
  for (const [what, input] of cases) {
    const r = T.verifyChain(input as string, verifyOptions(p));
    assert.is(refusal(r), 'malformed', what);
  }
  throwsNamed(() => T.decodeToken('A'.repeat(T.MAX_TOKEN_CHARS + 1)), 'CapabilityTokenError', /over the limit of 8192/);
});

Malformed('a signed payload with an unknown action, an extra field or a bad DID is malformed', () => {
  const base = { v: 1 as const, iss: p.root.did, aud: p.c.did, act: ['deploy' as const], exp: NOW + HOUR, iat: NOW, dep: 0 };
  const bad = [
    { ...base, act: ['deploy', 'admin'] },
    { ...base, act: ['deploy', 'deploy'] },
    { ...base, extra: 1 },
    { ...base, aud: 'did:web:example.com' },
    { ...base, dep: 8 },
    { ...base, exp: -1 },
    { ...base, v: 2 },
  ];
  for (const payload of bad) {
    const t = T.encodeToken({ links: [T.signLink(p.root.key, payload as never)] });
    assert.is(refusal(T.verifyChain(t, verifyOptions(p))), 'malformed', JSON.stringify(payload));
  }
  assert.ok(T.verifyChain(T.encodeToken({ links: [T.signLink(p.root.key, base)] }), verifyOptions(p)).ok, 'the unbroken payload verifies');
});

for (const s of [Keys, Format, Narrowing, Valid, Widening, Depth, Time, Forgery, Parties, Revoked, Malformed]) s.run();
