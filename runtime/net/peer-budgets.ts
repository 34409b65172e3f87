/**
 * Per-peer budgets at the network edge: token buckets per sender, checked before a message costs anything
 * (decoding aside, before its signature is verified; always before an inbox sees it or it is journaled).
 * - Gossip has no flow control: an author's broadcasts are limited in envelopes/s and bytes/s. The direct
 *   channel is paced by its credit flow control (channel/) and is not limited here.
 * - Some event types cost the node real work (a `bid.request` is a decision of the Node actor, journaled):
 *   they are limited per author on either path.
 * Over budget, a message is dropped. Every drop is a strike; a sender whose strikes outrun their own bucket
 * (more than `strikeBurst` drops at once, or more than `strikesPerSec` a second for a while) is refused for
 * `refuseMs`: everything from it is dropped, it is hung up on, and its connections are refused.
 * The sender is always authenticated before it is charged: the connection's peer on the direct path, the
 * gossip author (whose gossipsub signature is verified before our validator runs) on the broadcast path.
 */
import { type Clock, realClock } from '../clock.ts';
import { TokenBucket } from './channel/flow-control.ts';

/** A rate and the burst above it. */
export interface Rate {
  readonly perSec: number;
  readonly burst: number;
}

export interface PeerBudgetInit {
  /** Broadcast envelopes one author may send us, whatever their type. */
  readonly gossipEnvelopes: Rate;
  /** Broadcast bytes one author may send us (the burst must hold the largest frame, 1 MiB). */
  readonly gossipBytes: Rate;
  /** Envelopes of these types one author may send us, on either path. */
  readonly perType: Readonly<Record<string, Rate>>;
  /** Drops a sender may cause before it is refused: `burst` at once, `perSec` a second for as long as it likes. */
  readonly strikes: Rate;
  /** How long a sender that ran out of strikes is refused. */
  readonly refuseMs: number;
  /** Senders whose buckets are kept at once; past that the one seen longest ago is forgotten (it starts afresh). */
  readonly maxSenders: number;
  /** Senders refused at once; past that the refusal that ends first is lifted. */
  readonly maxRefused: number;
}

const MiB = 1 << 20;

/**
 * The defaults, far above what a legitimate peer sends: the deal-throughput benchmark's requester sends 30-60
 * bid requests a second, a node broadcasts little else; the direct channel's flood (net-flood, ~20k
 * envelopes/s) is paced by credit and never charged here.
 */
export const EDGE_BUDGETS: PeerBudgetInit = Object.freeze({
  /** 200 broadcasts/s per author, bursts of 400: a requester's bid requests at their own limit, twice over. */
  gossipEnvelopes: { perSec: 200, burst: 400 },
  /** 2 MiB/s of broadcasts per author, bursts of 4 MiB (four frames of the largest size). */
  gossipBytes: { perSec: 2 * MiB, burst: 4 * MiB },
  perType: Object.freeze({
    /** 100 bid requests/s per author, bursts of 200: each is a journaled decision of the Node actor. */
    'bid.request': { perSec: 100, burst: 200 },
    /** 2 revocations/s per author, bursts of 20: each is a journaled event of the trust actor (runtime/trust/trust-inbox.ts). */
    'trust.revoke': { perSec: 2, burst: 20 },
  }),
  /** Refused after 200 drops at once, or while dropping more than 20 a second: far over budget, not near it. */
  strikes: { perSec: 20, burst: 200 },
  /** Refused (hung up on, connections refused) for 60 s. */
  refuseMs: 60_000,
  /** Buckets of up to 10k senders (a few hundred bytes each); one idle for long is the same as a new one. */
  maxSenders: 10_000,
  /** Up to 4096 refused peers at once. */
  maxRefused: 4096,
});

/** Which budget a message was over. */
export type BudgetName = 'gossip-envelopes' | 'gossip-bytes' | `type:${string}`;

/** A peer refused for a while, and why. */
export interface RefusedPeer {
  readonly peer: string;
  /** Until when (ms since the epoch). */
  readonly until: number;
  /** The budget it stayed over. */
  readonly budget: BudgetName;
}

export interface PeerBudgetHooks {
  /** A sender ran out of strikes and is refused until `until`: hang up on it. */
  onRefuse?(refused: RefusedPeer): void;
}

interface SenderState {
  readonly buckets: Map<BudgetName, TokenBucket>;
  strikes: TokenBucket;
  seen: number;
}

export class PeerBudgets {
  readonly #senders = new Map<string, SenderState>();
  readonly #refused = new Map<string, RefusedPeer>();
  readonly #clock: Clock;
  /** How long a sender must be idle for all its buckets to be full again (then forgetting it loses nothing). */
  readonly #idleMs: number;

  constructor(readonly init: PeerBudgetInit = EDGE_BUDGETS, clock: Clock = realClock, readonly hooks: PeerBudgetHooks = {}) {
    this.#clock = clock;
    const rates = [init.gossipEnvelopes, init.gossipBytes, init.strikes, ...Object.values(init.perType)];
    this.#idleMs = Math.max(...rates.map((r) => Math.ceil((r.burst / r.perSec) * 1000)));
  }

  /** The refusal of `peer` while it lasts, else null. */
  refusal(peer: string, now = this.#clock.now()): RefusedPeer | null {
    const r = this.#refused.get(peer);
    if (!r) return null;
    if (r.until > now) return r;
    this.#refused.delete(peer);
    return null;
  }

  /** Charges a broadcast of `bytes` to its author: null when within budget, else the budget it is over. */
  gossip(peer: string, bytes: number, now = this.#clock.now()): BudgetName | null {
    const s = this.#sender(peer, now);
    if (!this.#bucket(s, 'gossip-envelopes', this.init.gossipEnvelopes, now).tryTake(1, now)) return this.#strike(peer, s, 'gossip-envelopes', now);
    if (!this.#bucket(s, 'gossip-bytes', this.init.gossipBytes, now).tryTake(bytes, now)) return this.#strike(peer, s, 'gossip-bytes', now);
    return null;
  }

  /** Charges an envelope of `type` to its author (types without a budget cost nothing here). */
  typed(peer: string, type: string, now = this.#clock.now()): BudgetName | null {
    const rate = Object.hasOwn(this.init.perType, type) ? this.init.perType[type] : undefined;
    if (!rate) return null;
    const name: BudgetName = `type:${type}`;
    const s = this.#sender(peer, now);
    return this.#bucket(s, name, rate, now).tryTake(1, now) ? null : this.#strike(peer, s, name, now);
  }

  /** The peers refused now, the refusal that ends first first. */
  refusedPeers(now = this.#clock.now()): RefusedPeer[] {
    this.sweep(now);
    return [...this.#refused.values()].sort((a, b) => a.until - b.until);
  }

  /** Forgets senders idle long enough that their buckets are full again, and refusals that ended. */
  sweep(now = this.#clock.now()): void {
    for (const [peer, s] of this.#senders) if (now - s.seen >= this.#idleMs) this.#senders.delete(peer);
    for (const [peer, r] of this.#refused) if (r.until <= now) this.#refused.delete(peer);
  }

  /** Senders whose buckets are kept now. */
  get senders(): number {
    return this.#senders.size;
  }

  #sender(peer: string, now: number): SenderState {
    let s = this.#senders.get(peer);
    if (s) {
      // kept in order of last use, so the one forgotten when full is the one seen longest ago
      this.#senders.delete(peer);
    } else {
      if (this.#senders.size >= this.init.maxSenders) this.#senders.delete(this.#senders.keys().next().value!);
      s = { buckets: new Map(), strikes: new TokenBucket(this.init.strikes.perSec, this.init.strikes.burst, now), seen: now };
    }
    s.seen = now;
    this.#senders.set(peer, s);
    return s;
  }

  #bucket(s: SenderState, name: BudgetName, rate: Rate, now: number): TokenBucket {
    let b = s.buckets.get(name);
    if (!b) {
      b = new TokenBucket(rate.perSec, rate.burst, now);
      s.buckets.set(name, b);
    }
    return b;
  }

  #strike(peer: string, s: SenderState, budget: BudgetName, now: number): BudgetName {
    if (!s.strikes.tryTake(1, now) && !this.refusal(peer, now)) {
      if (this.#refused.size >= this.init.maxRefused) {
        this.sweep(now);
        if (this.#refused.size >= this.init.maxRefused) this.#refused.delete(this.#refused.keys().next().value!);
      }
      const refused: RefusedPeer = { peer, until: now + this.init.refuseMs, budget };
      this.#refused.set(peer, refused);
      // it starts afresh when the refusal ends
      this.#senders.delete(peer);
      this.hooks.onRefuse?.(refused);
    }
    return budget;
  }
}
