// Keys, DIDs and chains for the capability token tests: a root (the anchor) granting to A, A to B, B to C.
import type { Ed25519PrivateKey } from '@libp2p/interface';
import type { GrantPayload, TokenLink } from '../../../runtime/trust/capability-codec.ts';
import type { Action } from '../../../runtime/trust/capability.ts';

// the runtime's trust modules load ESM-only packages and uvu runs suites through tsx's require hook: load dynamically
const lib = (async () => ({
  ...(await import('@libp2p/crypto/keys')),
  dagCbor: await import('@ipld/dag-cbor'),
  ...(await import('../../../runtime/node/identity.ts')),
  ...(await import('../../../runtime/trust/did-key.ts')),
  ...(await import('../../../runtime/trust/capability-codec.ts')),
  ...(await import('../../../runtime/trust/capability.ts')),
  ...(await import('../../../runtime/trust/verifier-cache.ts')),
}))();
export type TrustLib = Awaited<typeof lib>;
let T: TrustLib;

/** The trust modules, loaded once; every other helper here needs it awaited first. */
export async function loadTrust(): Promise<TrustLib> {
  T = await lib;
  return T;
}

export const NOW = 1_700_000_000_000;
export const HOUR = 3_600_000;

export interface Party {
  readonly key: Ed25519PrivateKey;
  readonly did: string;
}

export async function party(): Promise<Party> {
  const key = (await T.generateKeyPair('Ed25519')) as Ed25519PrivateKey;
  return { key, did: T.didKeyOf(key.publicKey.raw) };
}

export interface Cast {
  readonly root: Party;
  readonly a: Party;
  readonly b: Party;
  readonly c: Party;
  readonly stranger: Party;
}

export const cast = async (): Promise<Cast> => ({ root: await party(), a: await party(), b: await party(), c: await party(), stranger: await party() });

/** root -> A (deploy, logs, results; 3 h; depth 3) -> B (deploy, logs; 2 h; depth 2) -> C (deploy; 1 h; depth 0). */
export function chain3(p: Cast, now = NOW): { t1: string; t2: string; t3: string } {
  const t1 = T.issueGrant({ issuerKey: p.root.key, audienceDid: p.a.did, actions: ['deploy', 'logs', 'results'], expiresAt: now + 3 * HOUR, depth: 3, now });
  const t2 = T.delegate({ token: t1, holderKey: p.a.key, audienceDid: p.b.did, actions: ['deploy', 'logs'], expiresAt: now + 2 * HOUR, depth: 2, now });
  const t3 = T.delegate({ token: t2, holderKey: p.b.key, audienceDid: p.c.did, actions: ['deploy'], expiresAt: now + HOUR, depth: 0, now });
  return { t1, t2, t3 };
}

/**
 * A link signed by `signer` under `proof`'s leaf with whatever terms are given: no rule checked, for chains that
 * break one (delegate() would refuse to make them).
 */
export function forgeUnder(proof: string, signer: Party, terms: Partial<GrantPayload> & { aud: string }): string {
  const t = T.decodeToken(proof);
  const leaf = t.links[t.links.length - 1]!;
  const payload: GrantPayload = { v: 1, iss: signer.did, act: leaf.payload.act, exp: leaf.payload.exp, iat: NOW, dep: Math.max(0, leaf.payload.dep - 1), prf: leaf.digest, ...terms };
  return T.encodeToken({ links: [...t.links, T.signLink(signer.key, payload)] });
}

/** The token's links as [payload, sig] byte pairs, for tampering, and back to a token string. */
export const rawPairs = (token: string): [Uint8Array, Uint8Array][] => T.dagCbor.decode(Buffer.from(token, 'base64url')) as [Uint8Array, Uint8Array][];
export const fromPairs = (pairs: unknown): string => Buffer.from(T.dagCbor.encode(pairs)).toString('base64url');

export const verifyOptions = (p: Cast, o: { audienceDid?: string; action?: Action; now?: number; revoked?: (id: string) => boolean; anchors?: string[] } = {}) => ({
  audienceDid: o.audienceDid ?? p.c.did,
  action: o.action ?? ('deploy' as Action),
  anchors: new Set(o.anchors ?? [p.root.did]),
  revoked: o.revoked ?? (() => false),
  now: o.now ?? NOW,
});

export const linksOf = (token: string): readonly TokenLink[] => T.decodeToken(token).links;
