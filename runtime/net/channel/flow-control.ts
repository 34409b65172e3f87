/**
 * Tunables of the actor protocol's credit-based flow control, and the token bucket that paces the credit a
 * receiver hands to each peer.
 */

export interface FlowInit {
  /** Envelope frames a sender may send before the receiver grants more. */
  readonly initialCredit: number;
  /** The receiver grants credit back once this many frames were processed. */
  readonly creditBatch: number;
  /** Envelopes a sender queues per peer before `send` waits for room. */
  readonly maxQueue: number;
  /** Bytes coalesced into one write on the stream. */
  readonly maxWriteBytes: number;
  /** Envelopes per second a receiver grants to one peer, on average, and the burst above that. */
  readonly ratePerSec: number;
  readonly burst: number;
}

export const FLOW_DEFAULTS: FlowInit = Object.freeze({
  initialCredit: 256,
  creditBatch: 64,
  maxQueue: 4096,
  maxWriteBytes: 64 * 1024,
  ratePerSec: 20_000,
  burst: 2_000,
});

/** A token bucket: `take(n)` returns how many of n tokens are available now; `tryTake(n)` all or none. */
export class TokenBucket {
  #tokens: number;
  #at: number;

  constructor(readonly ratePerSec: number, readonly burst: number, now: number) {
    this.#tokens = burst;
    this.#at = now;
  }

  take(n: number, now: number): number {
    this.#refill(now);
    const got = Math.min(n, Math.floor(this.#tokens));
    this.#tokens -= got;
    return got;
  }

  /** Takes all `n` tokens when that many are available now, else none. */
  tryTake(n: number, now: number): boolean {
    this.#refill(now);
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }

  #refill(now: number): void {
    if (now > this.#at) this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) * this.ratePerSec) / 1000);
    this.#at = Math.max(this.#at, now);
  }

  /** Milliseconds until at least one token is available. */
  waitMs(): number {
    return this.#tokens >= 1 ? 0 : Math.ceil(((1 - this.#tokens) * 1000) / this.ratePerSec);
  }
}
