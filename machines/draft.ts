/**
 * A context being changed by one event, and the intents the change emits, in order: what the steps of the
 * requester and ensemble machines write into (requester.context.ts, ensemble.context.ts), the machine then
 * committing both at once. This part knows the context only as one holding pending timers (deal.timers.ts).
 */
import type { PendingTimers, TimerBook, TimerIntent, TimerStep } from './deal.timers.ts';

export class TimedDraft<C extends { readonly timers: PendingTimers }, I> {
  readonly out: I[] = [];
  /** The context before the event. */
  readonly before: C;
  constructor(
    public ctx: C,
    readonly now: number,
    readonly book: TimerBook,
  ) {
    this.before = ctx;
  }

  set(patch: Partial<C>): this {
    this.ctx = { ...this.ctx, ...patch };
    return this;
  }

  emit(...intents: I[]): this {
    this.out.push(...intents);
    return this;
  }

  schedule(key: string, at: number): this {
    return this.timers(this.book.schedule(this.ctx.timers, key, at));
  }

  /** Cancels a pending timer; nothing for one that fired or was never set. */
  cancel(key: string): this {
    return this.timers(this.book.cancel(this.ctx.timers, key));
  }

  /** Takes a step of the timer bookkeeping: the pending timers it leaves, then its intents. */
  timers(step: TimerStep): this {
    if (step.timers !== this.ctx.timers) this.set({ timers: step.timers } as Partial<C>);
    return this.emit(...(step.intents as readonly TimerIntent[] as readonly I[]));
  }
}

/** Entries a record's history keeps: the newest win. */
export const HISTORY_LIMIT = 50;

/** A record people see: its state and message now, stamped, and how it got there. */
export interface ProgressRecord<S extends string> {
  readonly state: S;
  readonly message: string;
  readonly updatedAt: number;
  readonly history: readonly { readonly at: number; readonly state: S; readonly message: string }[];
}

/**
 * A draft of a context whose `record` is what clients see and whose `pendingReply` is a `job.cancel` to answer:
 * what the requester, ensemble and array drafts share.
 */
export class RecordDraft<S extends string, R extends ProgressRecord<S>, C extends { readonly timers: PendingTimers; readonly record: R; readonly pendingReply: string | null }, I> extends TimedDraft<C, I> {
  /** Changes the record; every change stamps `updatedAt`. */
  record(patch: Partial<R>): this {
    return this.set({ record: { ...this.ctx.record, ...patch, updatedAt: this.now } } as Partial<C>);
  }

  /** The record's state and message with a history entry for them (capped at HISTORY_LIMIT, the newest kept). */
  protected entry(state: S, message: string): this {
    const history = [...this.ctx.record.history, { at: this.now, state, message }].slice(-HISTORY_LIMIT);
    return this.record({ state, message, history } as unknown as Partial<R>);
  }

  /** Answers the pending `job.cancel` with the record as it is now. */
  reply(): this {
    const replyTo = this.ctx.pendingReply;
    if (replyTo === null) return this;
    this.emit({ type: 'reply.send', replyTo, ok: true, value: this.ctx.record } as I);
    return this.set({ pendingReply: null } as Partial<C>);
  }
}
