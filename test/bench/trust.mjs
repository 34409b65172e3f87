// Capability tokens (runtime/trust/): what a grant costs a provider.
//   trust-verify-cold   verifyChain of a 3-link chain from its string (decode, every rule, 3 signatures), a different
//                       token each time and no result cache, vs the raw floor: 3 node:crypto ed25519 verifies of the
//                       same signed bytes with key objects made beforehand (as our verifier keeps them per DID)
//   trust-verify-cached GrantVerifier.verify of a chain it has already verified (hash the token, look up, check
//                       the expiry), vs a Map lookup of the token string
// Per check, lower is better (µs cold, ns cached). The targets: a cold check within 1.5x its 3 signature checks, a
// cached one under 10 µs (a deal's messages must not pay for a verification each).
//
// Standalone: `npm run build && node test/bench/trust.mjs [--json FILE]`; from run.mjs: `trustBenches` gives
// [id, fn] pairs, each fn resolving to an array of rows in run.mjs's shape.
import { createPublicKey, verify } from 'node:crypto';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { didKeyOf } from '../../runtime/node/identity.js';
import { decodeToken, delegate, issueGrant, verifyChain } from '../../runtime/trust/capability.js';
import { GrantVerifier } from '../../runtime/trust/verifier-cache.js';
import { alternate, isMain, median, round, runStandalone } from './common.mjs';

const CHAINS = 400;
const RUNS = 5;
const CACHED_N = 200_000;
const NOW = 1_700_000_000_000;
const HOUR = 3_600_000;
const SIGNING_DOMAIN = Buffer.from('dms capability v1\0');

const party = async () => {
  const key = await generateKeyPair('Ed25519');
  return { key, did: didKeyOf(key.publicKey.raw) };
};
const cast = async () => ({ root: await party(), a: await party(), b: await party(), c: await party() });

/** root -> A -> B -> C, made at `now` (so every chain has its own ids). */
function chain3(p, now) {
  const t1 = issueGrant({ issuerKey: p.root.key, audienceDid: p.a.did, actions: ['deploy', 'logs', 'results'], expiresAt: now + 3 * HOUR, depth: 3, now });
  const t2 = delegate({ token: t1, holderKey: p.a.key, audienceDid: p.b.did, actions: ['deploy', 'logs'], expiresAt: now + 2 * HOUR, depth: 2, now });
  return delegate({ token: t2, holderKey: p.b.key, audienceDid: p.c.did, actions: ['deploy'], expiresAt: now + HOUR, now });
}

/** The raw side's inputs for a token: [key object, signed bytes, signature] per link. */
function rawInputs(token, keyObjects) {
  return decodeToken(token).links.map((l) => [keyObjects.get(l.payload.iss), Buffer.concat([SIGNING_DOMAIN, l.bytes]), l.sig]);
}

const usPer = (ms, n) => (ms * 1000) / n;
const nsPer = (ms, n) => (ms * 1e6) / n;

function row(id, name, unit, oursRuns, rawRuns, targets, notes, detail = {}) {
  const ours = median(oursRuns);
  const raw = median(rawRuns);
  return { id, name, unit, lowerIsBetter: true, ours: round(ours, 2), raw: round(raw, 2), ratio: round(ours / raw, 2), targets, detail: { oursRuns: oursRuns.map((x) => round(x, 2)), rawRuns: rawRuns.map((x) => round(x, 2)), ...detail }, notes };
}

/** Both sides once to warm up, then RUNS runs of each, alternating which goes first: [ours, raw]. */
async function alternateRuns(ours, raw) {
  ours();
  raw();
  const o = [];
  const r = [];
  for (let k = 0; k < RUNS; k += 1) {
    const [a, b] = await alternate(k, async () => ours(), async () => raw());
    o.push(a);
    r.push(b);
  }
  return [o, r];
}

async function benchVerifyCold() {
  const p = await cast();
  const keyObjects = new Map(Object.values(p).map((x) => [x.did, createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(x.key.publicKey.raw).toString('base64url') } })]));
  const tokens = Array.from({ length: CHAINS }, (_, i) => chain3(p, NOW + i));
  const raws = tokens.map((t) => rawInputs(t, keyObjects));
  const opts = { audienceDid: p.c.did, action: 'deploy', anchors: new Set([p.root.did]), revoked: () => false, now: NOW };

  const ours = () => {
    const t0 = performance.now();
    for (const t of tokens) if (!verifyChain(t, opts).ok) throw new Error('a valid chain was refused');
    return usPer(performance.now() - t0, tokens.length);
  };
  const raw = () => {
    const t0 = performance.now();
    for (const links of raws) for (const [k, bytes, sig] of links) if (!verify(null, bytes, k, sig)) throw new Error('a raw signature did not verify');
    return usPer(performance.now() - t0, raws.length);
  };
  const [o, r] = await alternateRuns(ours, raw);

  // the first chain from DIDs never seen: their public key objects are made on the way
  const fresh = await Promise.all(Array.from({ length: 50 }, cast));
  const freshTokens = fresh.map((q) => [chain3(q, NOW), { ...opts, audienceDid: q.c.did, anchors: new Set([q.root.did]) }]);
  const t0 = performance.now();
  for (const [t, o2] of freshTokens) if (!verifyChain(t, o2).ok) throw new Error('a valid chain was refused');
  const firstSightUs = usPer(performance.now() - t0, freshTokens.length);

  const decodeT0 = performance.now();
  for (const t of tokens) decodeToken(t);
  const decodeUs = usPer(performance.now() - decodeT0, tokens.length);
  const notes = [
    `${CHAINS} distinct 3-link chains a run (${tokens[0].length} characters each), ${RUNS} runs a side (medians); the same four DIDs, so their key objects are made once`,
    `of which decoding (base64url, DAG-CBOR, the payload schema, 3 sha256): ${round(decodeUs, 1)} µs; chains from DIDs never seen before (4 key objects to make): ${round(firstSightUs)} µs`,
  ];
  return row('trust-verify-cold', 'verify a 3-link capability chain, no cache (µs, lower is better): verifyChain from the token string vs 3 raw node:crypto ed25519 verifies', 'µs', o, r, [{ kind: 'ratio', max: 1.5 }], notes, { decodeUs: round(decodeUs, 1), firstSightUs: round(firstSightUs) });
}

async function benchVerifyCached() {
  const p = await cast();
  const token = chain3(p, NOW);
  const verifier = new GrantVerifier({ anchors: [p.root.did], revoked: () => false });
  const check = { audienceDid: p.c.did, action: 'deploy', now: NOW };
  if (!verifier.verify(token, check).ok) throw new Error('a valid chain was refused');
  const map = new Map([[token, { ok: true }]]);
  // copies of the string, taken in turn, as tokens arriving in messages would be (V8 keeps a string's hash once made)
  const copies = Array.from({ length: 64 }, () => Buffer.from(token).toString());

  const ours = () => {
    const t0 = performance.now();
    for (let i = 0; i < CACHED_N; i += 1) if (!verifier.verify(copies[i & 63], check).ok) throw new Error('refused');
    return nsPer(performance.now() - t0, CACHED_N);
  };
  const raw = () => {
    const t0 = performance.now();
    for (let i = 0; i < CACHED_N; i += 1) if (!map.get(copies[i & 63])?.ok) throw new Error('missing');
    return nsPer(performance.now() - t0, CACHED_N);
  };
  const [o, r] = await alternateRuns(ours, raw);
  const s = verifier.stats();
  if (s.misses !== 1) throw new Error(`the cached side verified ${s.misses} times, not once`);
  const notes = [
    `${CACHED_N} checks a run of one ${token.length}-character token (64 string copies in turn), ${RUNS} runs a side (medians); ${s.hits} hits, ${s.misses} miss`,
    'ours hashes the token (sha256, so a kept entry costs a fixed 43-character key, not the token) before its lookup',
  ];
  return row('trust-verify-cached', 'check a capability chain already verified (ns, lower is better): GrantVerifier hit vs a Map lookup of the token string', 'ns', o, r, [{ kind: 'ours', max: 10_000 }], notes);
}

/** [id, fn] pairs for run.mjs; each fn resolves to an array of rows. */
export const trustBenches = [
  ['trust-verify-cold', async () => [await benchVerifyCold()]],
  ['trust-verify-cached', async () => [await benchVerifyCached()]],
];


// ---------------------------------------------------------------------------------------------- standalone

if (isMain(import.meta.url)) await runStandalone('trust', trustBenches, { watchdogMs: 120_000 });
