/**
 * Verified chains remembered, so a grant costs one verification per requester and token, not one per message.
 * A result is kept per (token, audience, action) until the earliest expiry in its chain, dropped when any of its
 * links is revoked or its anchor removed, and at most `maxEntries` are kept (least recently used out first).
 * Only successes are kept: a refusal may turn into a success (an anchor added, a not-yet-valid grant maturing).
 */
import { hash } from 'node:crypto';
import { type Action, MAX_TOKEN_CHARS, type RefusalReason, type VerifyResult, verifyChain } from './capability.ts';

export const GRANT_CACHE_DEFAULTS = { maxEntries: 10_000 } as const;

export interface GrantVerifierInit {
  /** DIDs accepted as the root of a chain (the node's own among them). */
  readonly anchors: Iterable<string>;
  /** The revocation store's answer for a link id. `revoke(id)` must follow every revocation it records. */
  readonly revoked: (id: string) => boolean;
  readonly maxEntries?: number;
}

export interface GrantCheck {
  readonly audienceDid: string;
  readonly action: Action;
  readonly now: number;
}

export interface GrantVerifierStats {
  readonly hits: number;
  readonly misses: number;
  readonly entries: number;
  readonly evictions: number;
  readonly refusals: Readonly<Partial<Record<RefusalReason, number>>>;
}

interface Entry {
  readonly ids: readonly string[];
  readonly issuerRoot: string;
  readonly result: VerifyResult & { ok: true };
}

/**
 * The key of a (token, audience, action): a hash of the token string rather than the string (up to 8 KiB) or
 * its leaf id (which costs a decode), so a hit costs one hash and a map lookup.
 */
const keyOf = (token: string, c: GrantCheck) => `${hash('sha256', token, 'base64url')} ${c.audienceDid} ${c.action}`;

export class GrantVerifier {
  private anchors: ReadonlySet<string>;
  private readonly revoked: (id: string) => boolean;
  private readonly maxEntries: number;
  /** Insertion order is recency: a hit moves its entry to the end. */
  private readonly entries = new Map<string, Entry>();
  /** Link id -> keys of the entries whose chain holds it. */
  private readonly byLink = new Map<string, Set<string>>();
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private readonly refusals: Partial<Record<RefusalReason, number>> = {};

  constructor(init: GrantVerifierInit) {
    this.anchors = new Set(init.anchors);
    this.revoked = init.revoked;
    this.maxEntries = init.maxEntries ?? GRANT_CACHE_DEFAULTS.maxEntries;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) throw new RangeError(`maxEntries must be a positive integer, not ${this.maxEntries}`);
  }

  /** The chain's verdict for `c`: from the cache while it holds, else verified (and kept when it passes). */
  verify(token: string, c: GrantCheck): VerifyResult {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS) {
      return this.refused({ ok: false, reason: 'malformed', detail: `a token is a string of at most ${MAX_TOKEN_CHARS} characters` }); // not worth hashing
    }
    const key = keyOf(token, c);
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      if (c.now < hit.result.expiresAt) {
        this.entries.set(key, hit);
        this.hits += 1;
        return hit.result;
      }
      this.unindex(key, hit);
    }
    this.misses += 1;
    const r = verifyChain(token, { ...c, anchors: this.anchors, revoked: this.revoked });
    if (!r.ok) return this.refused(r);
    this.remember(key, { ids: r.ids, issuerRoot: r.issuerRoot, result: r });
    return r;
  }

  /** Drops every kept result whose chain holds link `id`. Call it after recording the revocation. */
  revoke(id: string): void {
    const keys = this.byLink.get(id);
    if (!keys) return;
    for (const key of [...keys]) this.drop(key);
  }

  /** Replaces the anchors; drops the results of chains whose root is no longer one. */
  setAnchors(anchors: Iterable<string>): void {
    this.anchors = new Set(anchors);
    for (const [key, e] of [...this.entries]) if (!this.anchors.has(e.issuerRoot)) this.drop(key);
  }

  stats(): GrantVerifierStats {
    return { hits: this.hits, misses: this.misses, entries: this.entries.size, evictions: this.evictions, refusals: { ...this.refusals } };
  }

  private refused(r: VerifyResult): VerifyResult {
    if (!r.ok) this.refusals[r.reason] = (this.refusals[r.reason] ?? 0) + 1;
    return r;
  }

  private remember(key: string, e: Entry): void {
    while (this.entries.size >= this.maxEntries) {
      this.drop(this.entries.keys().next().value!);
      this.evictions += 1;
    }
    this.entries.set(key, e);
    for (const id of e.ids) {
      let keys = this.byLink.get(id);
      if (!keys) this.byLink.set(id, (keys = new Set()));
      keys.add(key);
    }
  }

  private drop(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.unindex(key, e);
  }

  private unindex(key: string, e: Entry): void {
    for (const id of e.ids) {
      const keys = this.byLink.get(id);
      keys?.delete(key);
      if (keys?.size === 0) this.byLink.delete(id);
    }
  }
}
