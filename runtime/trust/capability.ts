// Choice: our own small token format (capability-codec.ts): ed25519 via node:crypto, DAG-CBOR we already ship.
// Measured here (Node 20, 2 loaded cores), verifying a 3-link chain: @ucanto/core 10.4.6 + principal 9.0.3 + validator
// 10.0.1 + @ipld/dag-ucan 3.4.5 add 18 packages / 12 MB (second copies of dag-cbor and multiformats; @noble/ed25519 1.x)
// and take ~7,500 µs (~1,550 µs with a node:crypto verifier swapped in); @ucans/ucans 0.12.0 adds 14 / 5.5 MB and takes
// ~36,000 µs (pure-JS @stablelib). Both sign with our raw seed and give didKeyOf's DID, but neither has a delegation
// depth or names its refusals. Ours: ~410 µs vs ~340 µs for its 3 raw signature checks; 1.1 KB (test/bench/trust.mjs).
/**
 * Capability tokens: signed grants of actions to a DID, delegable only by narrowing, verified offline from the
 * chain to one of the node's anchors. Pure functions but for the crypto; time comes in as `now` (ms).
 */
import { CapabilityGrantError, CapabilityTokenError, CapabilityWideningError } from './capability-errors.ts';
import { ACTIONS, type Action, type CapabilityToken, type GrantPayload, MAX_DEPTH, MAX_LINKS, type TokenLink, decodeToken, encodeToken, linkSigningBytes, signLink } from './capability-codec.ts';
import { DID_KEY_PATTERN, type SigningKey, didOfKey, verifyBy } from './did-key.ts';

export { ACTIONS, type Action, type CapabilityToken, decodeToken, encodeToken, MAX_DEPTH, MAX_LINKS };
export { MAX_TOKEN_CHARS } from './capability-codec.ts';
export type { SigningKey } from './did-key.ts';

/** Why a chain was refused. */
export type RefusalReason =
  | 'malformed'
  | 'no-anchor'
  | 'wrong-audience'
  | 'depth-exceeded'
  | 'widening'
  | 'action-not-granted'
  | 'revoked'
  | 'expired'
  | 'not-yet-valid'
  | 'bad-signature';

export type VerifyResult =
  | { readonly ok: true; readonly expiresAt: number; readonly issuerRoot: string; readonly ids: readonly string[] }
  | { readonly ok: false; readonly reason: RefusalReason; readonly detail: string };

export interface VerifyOptions {
  /** The DID presenting the token: the leaf's audience must be it. */
  readonly audienceDid: string;
  readonly action: Action;
  /** DIDs this node accepts root grants from (its own among them). */
  readonly anchors: ReadonlySet<string>;
  readonly revoked: (id: string) => boolean;
  readonly now: number;
}

interface GrantTerms {
  readonly audienceDid: string;
  readonly actions: readonly Action[];
  /** ms since the epoch; the grant holds while now < expiresAt. */
  readonly expiresAt: number;
  /** How many more delegations may follow this grant (default 0: none). */
  readonly depth?: number;
  /** ms since the epoch; the grant holds from then on. */
  readonly notBefore?: number;
  readonly now: number;
}

const toToken = (token: string | CapabilityToken): CapabilityToken => (typeof token === 'string' ? decodeToken(token) : token);
const leafOf = (token: CapabilityToken): TokenLink => token.links[token.links.length - 1]!;

/** The id of a token: its most specific (leaf) link's id, base64url(sha256(payload)). */
export const tokenId = (token: string | CapabilityToken): string => leafOf(toToken(token)).id;

/** The ids of every link of a token, root first (what revoking any one of them refuses). */
export const linkIds = (token: string | CapabilityToken): string[] => toToken(token).links.map((l) => l.id);

function checkTerms(t: GrantTerms): { actions: Action[]; depth: number } {
  if (!Number.isSafeInteger(t.now) || t.now < 0) throw new CapabilityGrantError(`now (${t.now}) must be whole ms since the epoch`);
  if (!DID_KEY_PATTERN.test(t.audienceDid)) throw new CapabilityGrantError(`the audience ${JSON.stringify(t.audienceDid)} is not an ed25519 did:key (did:key:z6Mk...)`);
  const actions = [...new Set(t.actions)].sort();
  if (actions.length === 0) throw new CapabilityGrantError(`a grant needs at least one action (${ACTIONS.join(', ')})`);
  const unknown = actions.filter((a) => !(ACTIONS as readonly string[]).includes(a));
  if (unknown.length) throw new CapabilityGrantError(`unknown action ${unknown.join(', ')}; the actions are ${ACTIONS.join(', ')}`);
  if (!Number.isSafeInteger(t.expiresAt) || t.expiresAt <= t.now) throw new CapabilityGrantError(`the expiry (${t.expiresAt}) must be a time in ms after now (${t.now})`);
  if (t.notBefore !== undefined && (!Number.isSafeInteger(t.notBefore) || t.notBefore >= t.expiresAt)) throw new CapabilityGrantError(`notBefore (${t.notBefore}) must be a time in ms before the expiry`);
  const depth = t.depth ?? 0;
  if (!Number.isInteger(depth) || depth < 0 || depth > MAX_DEPTH) throw new CapabilityGrantError(`depth ${depth} is out of range: 0 (no re-delegation) to ${MAX_DEPTH}`);
  return { actions, depth };
}

function payloadOf(issuer: string, t: GrantTerms, checked: { actions: Action[]; depth: number }, prf?: Uint8Array): GrantPayload {
  return { v: 1, iss: issuer, aud: t.audienceDid, act: checked.actions, exp: t.expiresAt, iat: t.now, dep: checked.depth, ...(t.notBefore !== undefined ? { nbf: t.notBefore } : {}), ...(prf ? { prf } : {}) };
}

/** A root grant by `issuerKey` (a node, which then anchors it) to `audienceDid`: the encoded token. */
export function issueGrant(input: GrantTerms & { readonly issuerKey: SigningKey }): string {
  const checked = checkTerms(input);
  return encodeToken({ links: [signLink(input.issuerKey, payloadOf(didOfKey(input.issuerKey), input, checked))] });
}

/**
 * Re-grants `token` from its holder (`holderKey`, the token's audience) to `audienceDid`, never wider: the actions
 * a subset of the proof's, the expiry no later, the depth below the proof's. Throws CapabilityWideningError
 * naming what would widen, CapabilityGrantError for bad terms, CapabilityTokenError for an unreadable token.
 */
export function delegate(input: GrantTerms & { readonly token: string | CapabilityToken; readonly holderKey: SigningKey }): string {
  const proof = toToken(input.token);
  const leaf = leafOf(proof).payload;
  const holder = didOfKey(input.holderKey);
  if (holder !== leaf.aud) throw new CapabilityWideningError('holder', `only the token's audience ${leaf.aud} can delegate it, not ${holder}`);
  const expiresAt = Math.min(...proof.links.map((l) => l.payload.exp));
  if (expiresAt <= input.now) throw new CapabilityGrantError(`the proof expired at ${new Date(expiresAt).toISOString()}; ask its issuer for a new grant`);
  const checked = checkTerms(input);
  const extra = checked.actions.filter((a) => !leaf.act.includes(a));
  if (extra.length) throw new CapabilityWideningError('actions', `the proof does not grant ${extra.join(', ')} (it grants ${leaf.act.join(', ')})`);
  if (input.expiresAt > expiresAt) throw new CapabilityWideningError('expiry', `the expiry ${new Date(input.expiresAt).toISOString()} is past the proof's ${new Date(expiresAt).toISOString()}`);
  if (leaf.dep === 0) throw new CapabilityWideningError('depth', 'the proof allows no further delegation (its depth is 0)');
  if (checked.depth >= leaf.dep) throw new CapabilityWideningError('depth', `depth ${checked.depth} is not below the proof's remaining depth ${leaf.dep}; use at most ${leaf.dep - 1}`);
  if (proof.links.length >= MAX_LINKS) throw new CapabilityTokenError(`the chain already has ${MAX_LINKS} links, the most a token can have`);
  const link = signLink(input.holderKey, payloadOf(holder, input, checked, leafOf(proof).digest));
  return encodeToken({ links: [...proof.links, link] });
}

const refuse = (reason: RefusalReason, detail: string): VerifyResult => ({ ok: false, reason, detail });
const sameBytes = (a: Uint8Array | undefined, b: Uint8Array) => a !== undefined && Buffer.compare(a, b) === 0;

/** Each link against its parent: the chain links up, is issued by the parent's audience and only narrows. */
function checkLinks(links: readonly TokenLink[]): VerifyResult | null {
  if (links[0]!.payload.prf !== undefined) return refuse('malformed', 'the root link names a proof');
  for (let i = 1; i < links.length; i += 1) {
    const parent = links[i - 1]!.payload;
    const p = links[i]!.payload;
    if (!sameBytes(p.prf, links[i - 1]!.digest)) return refuse('malformed', `link ${i} does not name link ${i - 1} as its proof`);
    if (p.iss !== parent.aud) return refuse('wrong-audience', `link ${i} is issued by ${p.iss}, but link ${i - 1} grants to ${parent.aud}`);
    if (parent.dep === 0) return refuse('depth-exceeded', `link ${i - 1} allows no further delegation, yet link ${i} follows it`);
    if (p.dep >= parent.dep) return refuse('widening', `link ${i}'s depth ${p.dep} is not below link ${i - 1}'s ${parent.dep}`);
    const extra = p.act.filter((a) => !parent.act.includes(a));
    if (extra.length) return refuse('widening', `link ${i} grants ${extra.join(', ')}, which link ${i - 1} does not`);
    if (p.exp > parent.exp) return refuse('widening', `link ${i} expires after link ${i - 1}`);
  }
  return null;
}

/**
 * Verifies a chain for `audienceDid` doing `action`, cheapest checks first and the signatures last. On success,
 * `expiresAt` is the earliest expiry in the chain, `issuerRoot` the anchor it starts from, `ids` its link ids.
 */
export function verifyChain(token: string | CapabilityToken, o: VerifyOptions): VerifyResult {
  let t: CapabilityToken;
  try {
    t = typeof token === 'string' || !Array.isArray(token?.links) ? decodeToken(token as string) : token;
  } catch (e) {
    return refuse('malformed', (e as Error).message);
  }
  const { links } = t;
  const root = links[0]!.payload;
  const leaf = leafOf(t).payload;
  const structural = checkLinks(links);
  if (structural) return structural;
  if (!o.anchors.has(root.iss)) return refuse('no-anchor', `the chain starts at ${root.iss}, which this node does not anchor`);
  if (leaf.aud !== o.audienceDid) return refuse('wrong-audience', `the token is granted to ${leaf.aud}, not to ${o.audienceDid}`);
  if (!leaf.act.includes(o.action)) return refuse('action-not-granted', `the token grants ${leaf.act.join(', ')}, not ${o.action}`);
  let expiresAt = Number.POSITIVE_INFINITY;
  for (let i = 0; i < links.length; i += 1) {
    const { id, payload: p } = links[i]!;
    if (o.revoked(id)) return refuse('revoked', `link ${i} (${id}) is revoked`);
    if (p.exp <= o.now) return refuse('expired', `link ${i} expired at ${new Date(p.exp).toISOString()}`);
    if (p.nbf !== undefined && p.nbf > o.now) return refuse('not-yet-valid', `link ${i} is valid from ${new Date(p.nbf).toISOString()}`);
    expiresAt = Math.min(expiresAt, p.exp);
  }
  for (let i = 0; i < links.length; i += 1) {
    const l = links[i]!;
    if (!verifyBy(l.payload.iss, linkSigningBytes(l), l.sig)) return refuse('bad-signature', `link ${i}'s signature is not ${l.payload.iss}'s`);
  }
  return { ok: true, expiresAt, issuerRoot: root.iss, ids: links.map((l) => l.id) };
}
