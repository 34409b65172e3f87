/**
 * Message counters shown by `info`: envelopes in and out, every rejection by reason, and the envelopes this
 * node would not send because they were over the size limit.
 */
import type { EdgeRejectReason } from './edge-reasons.ts';

export interface NetCountersView {
  readonly in: number;
  readonly out: number;
  readonly broadcastIn: number;
  readonly broadcastOut: number;
  readonly rejected: Readonly<Partial<Record<EdgeRejectReason, number>>>;
  readonly rejectedTotal: number;
  /** Envelopes not sent for being over the size limit (a reply becomes a `net.error` saying so). */
  readonly tooLargeOut: number;
}

export class NetCounters {
  in = 0;
  out = 0;
  broadcastIn = 0;
  broadcastOut = 0;
  tooLargeOut = 0;
  readonly #rejected = new Map<EdgeRejectReason, number>();

  reject(reason: EdgeRejectReason): void {
    this.#rejected.set(reason, (this.#rejected.get(reason) ?? 0) + 1);
  }

  view(): NetCountersView {
    const rejected = Object.fromEntries([...this.#rejected].sort(([a], [b]) => a.localeCompare(b)));
    return { in: this.in, out: this.out, broadcastIn: this.broadcastIn, broadcastOut: this.broadcastOut, rejected, rejectedTotal: [...this.#rejected.values()].reduce((a, b) => a + b, 0), tooLargeOut: this.tooLargeOut };
  }
}
