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
