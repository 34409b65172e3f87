/**
 * What this node trusts and holds: the anchors it accepts root grants from, the capability tokens it issued and
 * those given to it (its deals carry them), and the token ids revoked. A record keeper: the runtime
 * (runtime/trust/trust-service.ts) checks signatures and narrowing before it sends anything here, so this machine
 * only keeps what was accepted, bounded, and `replay --actor trust` shows when each grant was made, added or revoked.
 */
import { enqueueActions, setup } from 'xstate';

export const TRUST_MACHINE_VERSION = 1;

/**
 * At most this many anchors, tokens and revocations; past the limit the oldest go first. Revocations are bounded
 * by who made them, so that no peer can push this node's own out (or another revoker's): this node's own keep
 * `revoked` places; each other revoker at most `perRevoker`, and all of them together `revoked`.
 */
export const TRUST_LIMITS = { anchors: 256, tokens: 1024, revoked: 10_000, perRevoker: 1000 } as const;

export interface TokenEntry {
  /** The leaf link's id (`cap revoke` takes it, or any link's id). */
  readonly id: string;
  readonly token: string;
  /** 'issued' by this node (grant, delegate), or 'held': given to this node (`cap add`), carried by its deals. */
  readonly kind: 'issued' | 'held';
  /** The root grant's issuer, and the leaf's audience and terms. */
  readonly root: string;
  readonly audience: string;
  readonly actions: readonly string[];
  readonly expiresAt: number;
  /** Every link's id, root first: revoking any of them revokes the token. */
  readonly links: readonly string[];
  readonly addedAt: number;
}

export interface Revocation {
  readonly at: number;
  /** Who revoked it: this node ('self') or the DID whose revocation reached it. */
  readonly by: string;
  /** Kept until then (the token is dead anyway after); null when not known. */
  readonly until: number | null;
}

export interface TrustContext {
  readonly anchors: Readonly<Record<string, { readonly addedAt: number }>>;
  readonly tokens: Readonly<Record<string, TokenEntry>>;
  readonly revoked: Readonly<Record<string, Revocation>>;
}

type Reply = { readonly replyTo?: string };
export type TrustEvent =
  | ({ readonly type: 'trust.anchor'; readonly did: string; readonly remove?: boolean; readonly now: number } & Reply)
  | ({ readonly type: 'trust.token'; readonly entry: TokenEntry } & Reply)
  | ({ readonly type: 'trust.revoke'; readonly id: string; readonly by: string; readonly until: number | null; readonly now: number } & Reply);

export type TrustIntent = { readonly type: 'reply.send'; readonly replyTo: string; readonly ok: true; readonly value?: unknown };

export const EMPTY_TRUST: TrustContext = { anchors: {}, tokens: {}, revoked: {} };

/** `record` with `key` set, the oldest entries (by `age`) dropped past `max`. */
function bounded<V>(record: Readonly<Record<string, V>>, key: string, value: V, max: number, age: (v: V) => number): Record<string, V> {
  const out: Record<string, V> = { ...record, [key]: value };
  const keys = Object.keys(out);
  if (keys.length <= max) return out;
  const oldest = keys.sort((a, b) => age(out[a]!) - age(out[b]!)).slice(0, keys.length - max);
  for (const k of oldest) delete out[k];
  return out;
}

/** `revoked` with one more, the oldest of the same kind dropped past its limit (this node's own, one revoker's, all others'). */
function withRevocation(revoked: Readonly<Record<string, Revocation>>, id: string, r: Revocation): Record<string, Revocation> {
  const out: Record<string, Revocation> = { ...revoked, [id]: r };
  const entries = Object.entries(out);
  const dropOldest = (match: (v: Revocation) => boolean, max: number) => {
    const of = entries.filter(([k, v]) => match(v) && out[k] !== undefined);
    if (of.length <= max) return;
    for (const [k] of of.sort((a, b) => a[1].at - b[1].at).slice(0, of.length - max)) delete out[k];
  };
  if (r.by === 'self') dropOldest((v) => v.by === 'self', TRUST_LIMITS.revoked);
  else {
    dropOldest((v) => v.by === r.by, TRUST_LIMITS.perRevoker);
    dropOldest((v) => v.by !== 'self', TRUST_LIMITS.revoked);
  }
  return out;
}

/** Tokens and revocations past their expiry are of no use to anyone: they go when something new comes in. */
function pruned(c: TrustContext, now: number): TrustContext {
  const tokens = Object.fromEntries(Object.entries(c.tokens).filter(([, t]) => t.expiresAt > now));
  const revoked = Object.fromEntries(Object.entries(c.revoked).filter(([, r]) => r.until === null || r.until > now));
  return { ...c, tokens, revoked };
}

export function applyTrust(c: TrustContext, e: TrustEvent): TrustContext {
  switch (e.type) {
    case 'trust.anchor': {
      if (e.remove) {
        const { [e.did]: _gone, ...anchors } = c.anchors;
        return { ...c, anchors };
      }
      return { ...c, anchors: bounded(c.anchors, e.did, c.anchors[e.did] ?? { addedAt: e.now }, TRUST_LIMITS.anchors, (a) => a.addedAt) };
    }
    case 'trust.token': {
      const p = pruned(c, e.entry.addedAt);
      return { ...p, tokens: bounded(p.tokens, e.entry.id, e.entry, TRUST_LIMITS.tokens, (t) => t.addedAt) };
    }
    case 'trust.revoke': {
      const p = pruned(c, e.now);
      if (p.revoked[e.id]) return p;
      return { ...p, revoked: withRevocation(p.revoked, e.id, { at: e.now, by: e.by, until: e.until }) };
    }
  }
}

export const trustMachine = setup({
  types: {} as { context: TrustContext; events: TrustEvent; emitted: TrustIntent },
  actions: {
    record: enqueueActions(({ context, event, enqueue }) => {
      enqueue.assign(applyTrust(context, event));
      if (event.replyTo) enqueue.emit({ type: 'reply.send', replyTo: event.replyTo, ok: true });
    }),
  },
}).createMachine({
  id: 'trust',
  context: EMPTY_TRUST,
  initial: 'keeping',
  states: {
    keeping: {
      on: { 'trust.anchor': { actions: 'record' }, 'trust.token': { actions: 'record' }, 'trust.revoke': { actions: 'record' } },
    },
  },
});
