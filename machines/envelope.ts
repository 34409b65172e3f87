/**
 * The signed envelope every remote message travels in, and the pure rules a received envelope must pass.
 * Types and rules only: encoding, signing and verifying live in runtime/net/. Time arrives as `now`.
 */

/** Wire version of the envelope. */
export const ENVELOPE_VERSION = 1;
/** Largest frame (envelope or control) accepted from the network, in bytes. */
export const MAX_FRAME_BYTES = 1 << 20;
/** Longest life an envelope may ask for (`exp - ts`). */
export const MAX_TTL_MS = 5 * 60_000;
/** Default life of a message: the Go DMS's default expiry. */
export const DEFAULT_TTL_MS = 30_000;
/** How far a sender's clock may run ahead of ours. */
export const MAX_CLOCK_SKEW_MS = 30_000;
/** `to.peer` of a broadcast (gossipsub) envelope. */
export const BROADCAST_PEER = '*';

/** Where a message goes: an inbox on a peer. */
export interface Address {
  readonly peer: string;
  readonly inbox: string;
}

/** Who sent a message: the peer, its did:key (the same ed25519 key) and the sending inbox. */
export interface Sender extends Address {
  readonly did: string;
}

/** An envelope before signing; its canonical encoding is what the signature covers. */
export interface UnsignedEnvelope<T extends string = string, P = unknown> {
  readonly v: number;
  readonly id: string;
  readonly from: Sender;
  readonly to: Address;
  readonly type: T;
  readonly payload: P;
  /** Sent at, ms since the epoch (sender's clock). */
  readonly ts: number;
  /** Expires at, ms since the epoch: the deadline of a request and of its reply. */
  readonly exp: number;
  /** The inbox on `from.peer` that the answer goes to (a one-shot reply inbox for requests). */
  readonly replyTo?: string;
}

/**
 * A signed envelope: ed25519 over a domain prefix plus the canonical encoding of the unsigned part, or, for
 * envelopes sent together, over the Merkle root of the batch's encodings, with this one's place and path.
 */
export interface Envelope<T extends string = string, P = unknown> extends UnsignedEnvelope<T, P> {
  readonly sig: Uint8Array;
  readonly batch?: { readonly count: number; readonly index: number; readonly path: readonly Uint8Array[] };
}

/** Why a frame or envelope from the network was refused. Every one is counted by this name. */
export const REJECT_REASONS = [
  'malformed',
  'oversized',
  'truncated',
  'unknown-frame',
  'version',
  'bad-signature',
  'from-mismatch',
  'did-mismatch',
  'misaddressed',
  'expired',
  'future',
  'ttl-too-long',
  'replayed',
  'unknown-type',
  'invalid-payload',
  'no-inbox',
  'not-accepted',
  'flow-violation',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/** What the receiver knows when it checks an envelope. */
export interface ArrivalContext {
  readonly now: number;
  readonly localPeer: string;
  /** The authenticated peer the envelope came from (the connection's remote peer, or the gossip author). */
  readonly remotePeer: string;
  readonly broadcast: boolean;
}

/** The rules that need no crypto and no state: version, sender, addressee and time. */
export function checkArrival(env: UnsignedEnvelope, ctx: ArrivalContext): RejectReason | null {
  if (env.v !== ENVELOPE_VERSION) return 'version';
  if (env.from.peer !== ctx.remotePeer) return 'from-mismatch';
  if (ctx.broadcast ? env.to.peer !== BROADCAST_PEER : env.to.peer !== ctx.localPeer) return 'misaddressed';
  if (env.exp < ctx.now) return 'expired';
  if (env.ts > ctx.now + MAX_CLOCK_SKEW_MS) return 'future';
  if (env.exp - env.ts > MAX_TTL_MS || env.exp < env.ts) return 'ttl-too-long';
  return null;
}

/** The deadline of a reply: the request's own, never longer than a fresh message's life. */
export function replyExpiry(request: UnsignedEnvelope, now: number): number {
  return Math.min(request.exp, now + DEFAULT_TTL_MS);
}

/**
 * Refusals that are the author's fault and look the same to every node (bytes that are not an envelope, a forged
 * or misaddressed one). A broadcast refused for one of these is rejected in gossip, so no node relays it again.
 */
const AUTHOR_FAULTS: ReadonlySet<RejectReason> = new Set<RejectReason>([
  'malformed', 'oversized', 'truncated', 'unknown-frame', 'bad-signature', 'from-mismatch', 'did-mismatch', 'misaddressed', 'ttl-too-long',
]);

/**
 * What gossip does with a broadcast this node checked: `accept` relays it; `reject` drops it as invalid (gossipsub
 * may then score down the peer that relayed it); `ignore` drops it without blame, for refusals that depend on this
 * node (its clock, the ids it saw, the message types and versions it knows), since an honest relay passed it on
 * when it was fine.
 */
export function gossipVerdict(refusal: RejectReason | null): 'accept' | 'ignore' | 'reject' {
  if (refusal === null) return 'accept';
  return AUTHOR_FAULTS.has(refusal) ? 'reject' : 'ignore';
}
