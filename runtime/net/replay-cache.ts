/**
 * Envelope ids seen per sender, kept until the envelope expires, so an id is accepted once only. Bounded:
 * each sender may hold `perPeer` live ids; a sender past that has its next envelopes refused until some
 * expire, which limits a flooding peer without making others forget theirs.
 */

export interface ReplayCacheInit {
  readonly perPeer: number;
  /** At most this many senders are tracked; the one seen longest ago is forgotten first. */
  readonly peers: number;
}

// 300k ids: a peer sending 10k envelopes/s with the default 30 s life; ~30 MB at worst per such peer
export const REPLAY_CACHE_DEFAULTS: ReplayCacheInit = Object.freeze({ perPeer: 300_000, peers: 4096 });

export type ReplayVerdict = 'fresh' | 'replayed' | 'full';

export class ReplayCache {
  readonly #bySender = new Map<string, Map<string, number>>();

  constructor(readonly init: ReplayCacheInit = REPLAY_CACHE_DEFAULTS) {}

  /** Records `id` from `peer` (live until `exp`) unless it was seen already or the sender's share is full. */
  admit(peer: string, id: string, exp: number, now: number): ReplayVerdict {
    let ids = this.#bySender.get(peer);
    if (!ids) {
      if (this.#bySender.size >= this.init.peers) this.#bySender.delete(this.#bySender.keys().next().value!);
      ids = new Map();
      this.#bySender.set(peer, ids);
    }
    const seen = ids.get(id);
    if (seen !== undefined && seen >= now) return 'replayed';
    if (ids.size >= this.init.perPeer) {
      sweep(ids, now);
      if (ids.size >= this.init.perPeer) return 'full';
    }
    ids.set(id, exp);
    return 'fresh';
  }

  /** Forgets an id admitted for an envelope that then failed verification. */
  forget(peer: string, id: string): void {
    this.#bySender.get(peer)?.delete(id);
  }

  /** Drops expired ids (ids are mostly inserted in order of expiry, so this stops at the first live one). */
  sweep(now: number): void {
    for (const [peer, ids] of this.#bySender) {
      sweep(ids, now);
      if (ids.size === 0) this.#bySender.delete(peer);
    }
  }

  get size(): number {
    let n = 0;
    for (const ids of this.#bySender.values()) n += ids.size;
    return n;
  }
}

function sweep(ids: Map<string, number>, now: number): void {
  for (const [id, exp] of ids) {
    if (exp >= now) break;
    ids.delete(id);
  }
}
