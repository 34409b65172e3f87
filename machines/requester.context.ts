/**
 * The requester negotiation's context, and the draft its steps (requester.rules.ts) write into: a step takes a
 * draft of the context, changes it and lists the intents to emit, and the machine commits both at once.
 */
import type { Bid, PartMember } from './deal.wire.ts';
import { type PendingTimers, timerBook } from './deal.timers.ts';
import { RecordDraft } from './draft.ts';
import type { JobRecord, JobState, PartUpdate, RankedBid, RequesterEvent, RequesterInput, RequesterIntent, RoundReach } from './requester.messages.ts';

/** A bid of the current round as it arrived, with the round-trip time the runtime measured to its sender. */
export interface RoundBid {
  readonly bid: Bid;
  readonly rttMs: number;
}

export interface RequesterContext {
  readonly input: RequesterInput;
  /** The current round (0 before the first). */
  readonly nonce: number;
  /** The peers the round's request reached, or null until the runtime says. */
  readonly candidates: readonly string[] | null;
  /** Peers beyond the candidates may answer this round (see BidRequestSentEvent.open). */
  readonly open?: boolean;
  /** How far the round's request went (absent in contexts saved before it was recorded). */
  readonly reach?: RoundReach | null;
  /** The reach (as JSON) a round nobody answered was last reported at warn for: repeats go to info. */
  readonly silenceWarned?: string;
  /** The round's bids in arrival order; `record.bids` holds them ranked once the window closed. */
  readonly bids: readonly RoundBid[];
  /** The bid being committed, allocated or run. */
  readonly chosen: Bid | null;
  /** Pending timers by key, at absolute times: `deal.recovered` re-arms them after a restart. */
  readonly timers: PendingTimers;
  /** A `job.cancel` to answer once the state it leads to is entered. */
  readonly pendingReply: string | null;
  /**
   * The allocate is sent right behind the commit (the provider takes them in order and refuses an allocate it
   * did not commit), saving a round trip: `${provider}#${nonce}` of the deal it was sent for.
   */
  readonly allocateSent?: string | null;
  /** A part: who runs every part of its ensemble, from `part.allocate` (sent with the allocate). */
  readonly members?: readonly PartMember[];
  /** A part: its allocation's latest status (for the ensemble). */
  readonly allocation?: PartUpdate['allocation'];
  readonly record: JobRecord;
}

/** History entries kept in the record: the newest win. */
export { HISTORY_LIMIT } from './draft.ts';

/**
 * A timer that fires this much before its time is still taken (a runtime's timer can fire a little early); a
 * `timer.fired` earlier than that is the stale fire of a timer since re-scheduled under the same key.
 */
export const TIMER_SLACK_MS = 1_000;

/**
 * The requester's timer bookkeeping, with a slack of TIMER_SLACK_MS: it schedules `step` and `watch` again under
 * the same key while one is pending, so a fire well before the pending time is a stale one.
 */
export const requesterTimers = timerBook({ slackMs: TIMER_SLACK_MS });

export function initialContext(input: RequesterInput): RequesterContext {
  return {
    input,
    nonce: 0,
    candidates: null,
    bids: [],
    chosen: null,
    timers: {},
    pendingReply: null,
    record: {
      id: input.dealId,
      name: input.job.name,
      executor: input.job.executor,
      state: 'requesting',
      provider: null,
      allocationId: null,
      allocations: [],
      bids: [],
      declines: [],
      rounds: 0,
      exitCode: null,
      message: 'waiting to ask for bids',
      createdAt: input.createdAt,
      updatedAt: input.createdAt,
      startedAt: null,
      endedAt: null,
      deadline: input.deadline,
      history: [],
    },
  };
}

/** Whether `e` is a timer firing at its time (see TIMER_SLACK_MS). */
export function timerDue(c: RequesterContext, e: RequesterEvent, key: string): boolean {
  return requesterTimers.due(c.timers, e, key);
}

/** A context being changed by one event, and the intents the change emits, in order. */
export class Draft extends RecordDraft<JobState, JobRecord, RequesterContext, RequesterIntent> {
  constructor(ctx: RequesterContext, now: number) {
    super(ctx, now, requesterTimers);
  }

  /** A step people should see: the record's state and message, and a history entry. */
  progress(state: JobState, message: string): this {
    return this.entry(state, message);
  }

  /** Sets what became of a ranked bid of the current round. */
  mark(provider: string, outcome: RankedBid['outcome'], note?: string): this {
    const bids = this.ctx.record.bids.map((b) => (b.provider === provider ? { ...b, outcome, ...(note === undefined ? {} : { note }) } : b));
    return this.record({ bids });
  }

  /** Tells a provider to drop its part of the deal (best effort: it may be gone). */
  revert(to: string, nonce: number, reason: string): this {
    return this.emit({ type: 'deal.revert.send', to, dealId: this.ctx.input.dealId, nonce, reason });
  }
}

/** A draft at the event's time; a timer that fired (at its time) is no longer pending. */
export function begin(c: RequesterContext, e: RequesterEvent): Draft {
  return new Draft(c, e.now).timers({ timers: requesterTimers.afterFire(c.timers, e), intents: [] });
}

/** `3 s`, `1.5 s`, `500 ms`. */
export function duration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Number((ms / 1000).toFixed(1))} s`;
}

/** `no bids`, `1 bid`, `3 bids`. */
export function count(n: number, noun: string): string {
  return n === 0 ? `no ${noun}s` : n === 1 ? `1 ${noun}` : `${n} ${noun}s`;
}
