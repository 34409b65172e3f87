/**
 * Message counters shown by `info`: envelopes in and out, and every rejection by reason.
 */
import type { RejectReason } from '../../machines/envelope.ts';

export interface NetCountersView {
  readonly in: number;
  readonly out: number;
  readonly broadcastIn: number;
  readonly broadcastOut: number;
  readonly rejected: Readonly<Partial<Record<RejectReason, number>>>;
  readonly rejectedTotal: number;
}

export class NetCounters {
  in = 0;
  out = 0;
  broadcastIn = 0;
  broadcastOut = 0;
  readonly #rejected = new Map<RejectReason, number>();

  reject(reason: RejectReason): void {
    this.#rejected.set(reason, (this.#rejected.get(reason) ?? 0) + 1);
  }

  view(): NetCountersView {
    const rejected = Object.fromEntries([...this.#rejected].sort(([a], [b]) => a.localeCompare(b)));
    return { in: this.in, out: this.out, broadcastIn: this.broadcastIn, broadcastOut: this.broadcastOut, rejected, rejectedTotal: [...this.#rejected.values()].reduce((a, b) => a + b, 0) };
  }
}
