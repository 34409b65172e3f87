/**
 * Declines, before they are journaled, the bid requests the Node would only decline again. The Node decides every
 * bid (machines/bidding.ts); the gate remembers its declines that do not depend on the job asked for, and answers
 * the same to the next requests without writing them to the log or waking the Node:
 *
 * - `lock-limit`: the requester holds as many unanswered bids as the Node holds for one. Closed for that requester
 *   until one of its locks goes (the Node's ResourcesLocked / LockReleased facts say so) or `HOLD_MS` passes.
 * - `disk-full` and `not-onboarded`: no new work for anyone. `not-onboarded` is closed until the node saves a
 *   registration (`noteRegistered`). `disk-full` is closed until `HOLD_MS` passes; then one request goes
 *   to the Node, which decides again on its current state.
 *
 * `unauthorized` is not remembered: it depends on the capability tokens each request carries, so every request
 * goes to the Node, which logs why it declined. The gate only ever declines, so it can never bid for a requester
 * the Node would not serve.
 *
 * The gate only ever lags the Node: it learns of a closure from a decline and of a reopening from a fact or the
 * clock, so at worst a request it let through is declined by the Node (as without it), and it never declines one
 * the Node has not refused under the same conditions within `HOLD_MS`. A flood from one identity costs the journal
 * at most one request per `HOLD_MS` per closure instead of every request.
 */
import type { DeclineCode } from '../../machines/deal.wire.ts';
import type { FactRecord } from '../supervisor/supervision.ts';

/** How long a learned closure stands without a fact that reopens it. */
export const HOLD_MS = 1_000;
/** Most requesters the gate remembers as at their lock limit (the oldest is let go first). */
export const MAX_GATED_REQUESTERS = 4_096;
/** Most live locks whose holder the gate tracks (the Node's ledger holds far fewer). */
const MAX_TRACKED_LOCKS = 65_536;

const NODE_WIDE: ReadonlySet<DeclineCode> = new Set<DeclineCode>(['disk-full', 'not-onboarded']);

export interface GateDecline {
  readonly code: DeclineCode;
  readonly reason: string;
}

interface Closure extends GateDecline {
  readonly until: number;
}

export class BidGate {
  #nodeWide: Closure | null = null;
  readonly #requesters = new Map<string, Closure>();
  /** Live lock id -> its holder, from the Node's facts. */
  readonly #holders = new Map<string, string>();
  /** Requests the gate declined, by code (added to the Node's own count in `info`). */
  readonly declined: Partial<Record<DeclineCode, number>> = {};
  /**
   * Requests dropped unlogged because they expire before a bid could reach their requester in time (the Node would
   * only have logged them as expired, or locked resources for a bid that arrives after the window closed).
   */
  tooLate = 0;

  /** The decline for a request from `requester` at `now`, or null to hand it to the Node. */
  check(requester: string, now: number): GateDecline | null {
    const closure = this.#live(this.#nodeWide, now) ?? this.#live(this.#requesters.get(requester), now);
    if (!closure) return null;
    this.declined[closure.code] = (this.declined[closure.code] ?? 0) + 1;
    return { code: closure.code, reason: closure.reason };
  }

  /** The Node declined `requester`: remember the declines that hold for the next requests as well. */
  noteDecline(requester: string, code: DeclineCode, reason: string, now: number): void {
    // not onboarded stays so until the node registers (noteRegistered): no request needs the Node to say it again
    const closure = { code, reason, until: code === 'not-onboarded' ? Infinity : now + HOLD_MS };
    if (NODE_WIDE.has(code)) this.#nodeWide = closure;
    else if (code === 'lock-limit') {
      this.#requesters.delete(requester);
      this.#requesters.set(requester, closure);
      if (this.#requesters.size > MAX_GATED_REQUESTERS) this.#requesters.delete(this.#requesters.keys().next().value!);
    }
  }

  /** The Node saved a registration (onboarded, offboarded, new preferences): whatever closed the node as a whole is over. */
  noteRegistered(): void {
    this.#nodeWide = null;
  }

  /** The Node took a bid (so it is onboarded and has room on its disk): whatever closed the node as a whole is over. */
  noteBid(): void {
    this.#nodeWide = null;
  }

  /** The Node's facts: a lock released reopens its holder. */
  facts(records: readonly FactRecord[]): void {
    for (const { fact } of records) {
      const f = fact as { type: string; lock?: { id: string; holder?: string }; id?: string };
      if (f.type === 'ResourcesLocked' && f.lock?.holder) {
        if (this.#holders.size < MAX_TRACKED_LOCKS) this.#holders.set(f.lock.id, f.lock.holder);
      } else if (f.type === 'LockReleased' && f.id !== undefined) {
        const holder = this.#holders.get(f.id);
        this.#holders.delete(f.id);
        if (holder !== undefined) this.#requesters.delete(holder);
      }
    }
  }

  #live(c: Closure | null | undefined, now: number): Closure | null {
    return c && c.until > now ? c : null;
  }
}
