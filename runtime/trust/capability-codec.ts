/**
 * The capability token's wire format. A token is its chain of links, root first, each link a signed grant:
 *
 *   token   = base64url( DAG-CBOR [ [payload, sig], ... ] )          at most MAX_TOKEN_CHARS, 1..MAX_LINKS links
 *   payload = DAG-CBOR { v: 1, iss, aud, act, exp, iat, dep, nbf?, prf? }
 *   sig     = ed25519 by `iss` over SIGNING_DOMAIN + payload           (never valid as an envelope signature)
 *   id      = base64url( sha256(payload) )                            a link's id; `prf` is its parent's, raw
 *
 * `iss`/`aud` are ed25519 did:keys, `act` the actions granted, `exp`/`iat`/`nbf` ms since the epoch, `dep` how
 * many more links may follow. The root has no `prf`; every other link names its parent's id, so a link cannot be
 * moved under another proof. Decoding checks the shape only; capability.ts checks what the chain means.
 */
import { createHash } from 'node:crypto';
import * as dagCbor from '@ipld/dag-cbor';
import { z } from 'zod';
import { CapabilityTokenError } from './capability-errors.ts';
import { DID_KEY_PATTERN, type SigningKey, signWith } from './did-key.ts';

/** What a grant can allow on a node. */
export const ACTIONS = ['deploy', 'logs', 'results', 'cancel'] as const;
export type Action = (typeof ACTIONS)[number];

/** Bounds checked before a token costs anything: its encoded length and its number of links. */
export const MAX_TOKEN_CHARS = 8 * 1024;
export const MAX_LINKS = 8;
/** The most delegations a root grant can allow: a chain never outgrows MAX_LINKS. */
export const MAX_DEPTH = MAX_LINKS - 1;

const SIGNING_DOMAIN = new TextEncoder().encode('dms capability v1\0');

/** One signed grant, as its payload says it. */
export interface GrantPayload {
  readonly v: 1;
  readonly iss: string;
  readonly aud: string;
  readonly act: readonly Action[];
  readonly exp: number;
  readonly iat: number;
  readonly dep: number;
  readonly nbf?: number;
  readonly prf?: Uint8Array;
}

export interface TokenLink {
  readonly payload: GrantPayload;
  /** The payload's encoded bytes, as signed. */
  readonly bytes: Uint8Array;
  readonly sig: Uint8Array;
  /** sha256(bytes): what the next link's `prf` holds. */
  readonly digest: Uint8Array;
  /** base64url(digest). */
  readonly id: string;
}

/** A decoded token: its links, root first. */
export interface CapabilityToken {
  readonly links: readonly TokenLink[];
}

const time = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const payloadSchema = z.strictObject({
  v: z.literal(1),
  iss: z.string().regex(DID_KEY_PATTERN),
  aud: z.string().regex(DID_KEY_PATTERN),
  act: z
    .array(z.enum(ACTIONS))
    .min(1)
    .max(ACTIONS.length)
    .refine((a) => new Set(a).size === a.length, 'an action is listed twice'),
  exp: time,
  iat: time,
  dep: z.number().int().min(0).max(MAX_DEPTH),
  nbf: time.optional(),
  prf: z
    .instanceof(Uint8Array)
    .refine((b) => b.length === 32, 'a proof id is 32 bytes')
    .optional(),
});

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest();
function linkOf(payload: GrantPayload, bytes: Uint8Array, sig: Uint8Array): TokenLink {
  const digest = sha256(bytes);
  return { payload, bytes, sig, digest: new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength), id: digest.toString('base64url') };
}
const signingBytes = (payload: Uint8Array) => {
  const out = new Uint8Array(SIGNING_DOMAIN.length + payload.length);
  out.set(SIGNING_DOMAIN);
  out.set(payload, SIGNING_DOMAIN.length);
  return out;
};

/** The bytes a link's signature covers. */
export const linkSigningBytes = (link: TokenLink): Uint8Array => signingBytes(link.bytes);

/** Signs a payload into a link. No rule is checked here: capability.ts decides what may be signed. */
export function signLink(key: SigningKey, payload: GrantPayload): TokenLink {
  const fields = Object.fromEntries(Object.entries(payload).filter(([, v]) => v !== undefined)); // DAG-CBOR has no undefined
  const bytes = dagCbor.encode(fields);
  return linkOf(payload, bytes, signWith(key, signingBytes(bytes)));
}

/** The token as its compact string; refuses one over MAX_TOKEN_CHARS or MAX_LINKS. */
export function encodeToken(token: CapabilityToken): string {
  if (token.links.length === 0 || token.links.length > MAX_LINKS) throw new CapabilityTokenError(`a token has 1 to ${MAX_LINKS} links, not ${token.links.length}`);
  const s = Buffer.from(dagCbor.encode(token.links.map((l) => [l.bytes, l.sig]))).toString('base64url');
  if (s.length > MAX_TOKEN_CHARS) throw new CapabilityTokenError(`the token would take ${s.length} characters, over the limit of ${MAX_TOKEN_CHARS}; grant to shorter DIDs or fewer links`);
  return s;
}

const malformed = (why: string) => new CapabilityTokenError(`not a capability token: ${why}`);

function decodeLink(pair: unknown, i: number): TokenLink {
  if (!Array.isArray(pair) || pair.length !== 2 || !(pair[0] instanceof Uint8Array) || !(pair[1] instanceof Uint8Array)) throw malformed(`link ${i} is not [payload, signature]`);
  const [bytes, sig] = pair as [Uint8Array, Uint8Array];
  if (sig.length !== 64) throw malformed(`link ${i}'s signature is ${sig.length} bytes, not 64`);
  let raw: unknown;
  try {
    raw = dagCbor.decode(bytes);
  } catch (e) {
    throw malformed(`link ${i}'s payload is not DAG-CBOR (${(e as Error).message})`);
  }
  const parsed = payloadSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw malformed(`link ${i}'s ${issue?.path.join('.') || 'payload'}: ${issue?.message ?? 'invalid'}`);
  }
  return linkOf(parsed.data, bytes, sig);
}

/** Reads a token string, checking its bounds before decoding and the shape of every link; throws CapabilityTokenError. */
export function decodeToken(s: string): CapabilityToken {
  if (typeof s !== 'string') throw malformed('not a string');
  if (s.length > MAX_TOKEN_CHARS) throw malformed(`${s.length} characters, over the limit of ${MAX_TOKEN_CHARS}`);
  if (s.length === 0 || !BASE64URL.test(s)) throw malformed('not base64url');
  let pairs: unknown;
  try {
    pairs = dagCbor.decode(Buffer.from(s, 'base64url'));
  } catch (e) {
    throw malformed(`not DAG-CBOR (${(e as Error).message})`);
  }
  if (!Array.isArray(pairs)) throw malformed('not a list of links');
  if (pairs.length === 0 || pairs.length > MAX_LINKS) throw malformed(`${pairs.length} links; a token has 1 to ${MAX_LINKS}`);
  return { links: pairs.map(decodeLink) };
}
