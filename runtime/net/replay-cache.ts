/**
 * Envelope ids seen per sender, kept until the envelope expires, so an id is accepted once only.
 * - An id is admitted only for an envelope that passed every check (signature and payload): forged or invalid
 *   envelopes cannot fill the cache. `has` looks without admitting, so a replay is still refused before its
 *   signature is verified.
 * - Bounded in live ids per sender, and in ids and (estimated) bytes across senders: gossip authors cost
 *   nothing to make, so the number of senders alone bounds nothing.
 * - Never evicts a live id: forgetting one would let its envelope be replayed until it expires. When a bound is
 *   reached, expired ids are swept and, if that is not enough, the new id is refused ('full') until some expire.
 */

export interface ReplayCacheInit {
  /** Live ids one sender may hold. */
  readonly perPeer: number;
  /** Live ids across all senders. */
  readonly maxEntries: number;
  /** Estimated bytes across all senders (ids, their expiry, the maps holding them). */
  readonly maxBytes: number;
}

/**
 * 250k ids per sender: the net-flood benchmark's sender (about 170k envelopes in half a minute, each living
 * 2 min) fits; 600k ids and 64 MiB in all (about 100 bytes an id, measured in V8): three such senders at once.
 */
export const REPLAY_CACHE_DEFAULTS: ReplayCacheInit = Object.freeze({ perPeer: 250_000, maxEntries: 600_000, maxBytes: 64 << 20 });

/** Estimated heap bytes of one id in a sender's map (measured: ~85 bytes of Map entry, hash slot and number). */
const ENTRY_BYTES = 88;
/** Estimated heap bytes of one sender's map, beyond its ids. */
const SENDER_BYTES = 256;
/** A full sweep (every id of every sender) runs at most this often, when a bound is reached. */
const FULL_SWEEP_EVERY_MS = 1_000;

export type ReplayVerdict = 'fresh' | 'replayed' | 'full';

export class ReplayCache {
  readonly #bySender = new Map<string, Map<string, number>>();
  #entries = 0;
  #bytes = 0;
  #nextFullSweep = -Infinity;

  constructor(readonly init: ReplayCacheInit = REPLAY_CACHE_DEFAULTS) {}

  /** True when `id` from `peer` was admitted and has not expired. */
  has(peer: string, id: string, now: number): boolean {
    const exp = this.#bySender.get(peer)?.get(id);
    return exp !== undefined && exp >= now;
  }

  /** Records `id` from `peer` (live until `exp`) unless it was seen already or a bound is reached. */
  admit(peer: string, id: string, exp: number, now: number): ReplayVerdict {
    const known = this.#bySender.get(peer);
    const seen = known?.get(id);
    if (seen !== undefined && seen >= now) return 'replayed';
    if (seen !== undefined) this.#remove(known!, id);
    if (!this.#fits(peer, id) && !this.#sweptRoom(peer, id, now)) return 'full';
    let ids = this.#bySender.get(peer);
    if (!ids) {
      ids = new Map();
      this.#bySender.set(peer, ids);
      this.#bytes += SENDER_BYTES + peer.length;
    }
    ids.set(id, exp);
    this.#entries += 1;
    this.#bytes += ENTRY_BYTES + id.length;
    return 'fresh';
  }

  /** Drops expired ids (each sender's ids are mostly in order of expiry, so this stops at its first live one). */
  sweep(now: number): void {
    for (const [peer, ids] of this.#bySender) this.#sweepSender(peer, ids, now);
  }

  /** Live ids held (expired ones not yet swept included). */
  get size(): number {
    return this.#entries;
  }

  /** Estimated bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  #fits(peer: string, id: string): boolean {
    const ids = this.#bySender.get(peer);
    const cost = ENTRY_BYTES + id.length + (ids ? 0 : SENDER_BYTES + peer.length);
    return (ids?.size ?? 0) < this.init.perPeer && this.#entries < this.init.maxEntries && this.#bytes + cost <= this.init.maxBytes;
  }

  /** Makes room by dropping expired ids: the sender's oldest first, then (not too often) every expired id. */
  #sweptRoom(peer: string, id: string, now: number): boolean {
    const ids = this.#bySender.get(peer);
    if (ids) this.#sweepSender(peer, ids, now);
    if (this.#fits(peer, id)) return true;
    return this.#sweepAll(now) && this.#fits(peer, id);
  }

  #sweepSender(peer: string, ids: Map<string, number>, now: number): void {
    for (const [id, exp] of ids) {
      if (exp >= now) break;
      this.#remove(ids, id);
    }
    this.#dropIfEmpty(peer, ids);
  }

  /** Drops every expired id, wherever it is in its sender's map; false when one ran too recently to run again. */
  #sweepAll(now: number): boolean {
    if (now < this.#nextFullSweep) return false;
    this.#nextFullSweep = now + FULL_SWEEP_EVERY_MS;
    for (const [peer, ids] of this.#bySender) {
      for (const [id, exp] of ids) if (exp < now) this.#remove(ids, id);
      this.#dropIfEmpty(peer, ids);
    }
    return true;
  }

  #remove(ids: Map<string, number>, id: string): void {
    if (!ids.delete(id)) return;
    this.#entries -= 1;
    this.#bytes -= ENTRY_BYTES + id.length;
  }

  #dropIfEmpty(peer: string, ids: Map<string, number>): void {
    if (ids.size > 0) return;
    this.#bySender.delete(peer);
    this.#bytes -= SENDER_BYTES + peer.length;
  }
}
