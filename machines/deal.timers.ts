/**
 * The timer bookkeeping of the deal machines (requester, provider, allocation), as pure functions over the
 * pending timers a machine keeps in its context: by key, at absolute times (ms since the epoch). A step returns
 * the new pending timers and the intents that tell the runtime (`timer.schedule {key, at}`, `timer.cancel {key}`);
 * the runtime answers with `timer.fired {key, now}`. Keeping them in the context is what lets a recovered actor ask
 * again for exactly the timers it had (`rearm`). No clock is read here: time arrives in events.
 *
 * The machines differ in one rule, their slack: how long before its time a fire of a pending timer still counts.
 */
import type { TimerCancelIntent, TimerScheduleIntent } from './deal.events.ts';

/** Pending timers by key, at absolute times: a machine's `timers` field, saved with its snapshot. */
export type PendingTimers = Readonly<Record<string, number>>;

export type TimerIntent = TimerScheduleIntent | TimerCancelIntent;

/** A change to the pending timers, and the intents that carry it out, in order. */
export interface TimerStep {
  readonly timers: PendingTimers;
  readonly intents: readonly TimerIntent[];
}

export interface TimerRule {
  /**
   * How long before its time (ms) a `timer.fired` of a pending timer still counts as due: a runtime's timer can
   * fire a little early, and a fire earlier than this is taken as the stale fire of a timer since scheduled again
   * under the same key (and ignored; the timer stays pending). `Infinity`: every fire of a pending timer counts,
   * for a machine that never schedules a key again while it is pending. Either way a fire of a key that is not
   * pending (cancelled, or already fired) never counts.
   */
  readonly slackMs: number;
}

/** The bookkeeping of one machine, bound to its rule. */
export interface TimerBook {
  readonly slackMs: number;
  /** Sets `key` to fire at `at` (replacing a pending one). */
  schedule(timers: PendingTimers, key: string, at: number): TimerStep;
  /** Cancels a pending timer; no change and no intent for a key that is not pending. */
  cancel(timers: PendingTimers, key: string): TimerStep;
  /** Cancels every pending timer (a machine entering a final state). */
  cancelAll(timers: PendingTimers): TimerStep;
  /** Whether `event` is the fire of the pending timer `key` at its time (within the slack). */
  due(timers: PendingTimers, event: { readonly type: string; readonly now: number }, key: string): boolean;
  /** The pending timers once `event` is handled: a due fire is no longer pending; anything else changes nothing. */
  afterFire(timers: PendingTimers, event: { readonly type: string; readonly now: number }): PendingTimers;
  /** After a restart the runtime holds no timers: asks for every pending one again (one already due fires at once). */
  rearm(timers: PendingTimers): readonly TimerScheduleIntent[];
}

/** The key of a `timer.fired` event; undefined for any other event. */
function firedKey(event: { readonly type: string }): string | undefined {
  return event.type === 'timer.fired' && 'key' in event && typeof event.key === 'string' ? event.key : undefined;
}

function without(timers: PendingTimers, key: string): PendingTimers {
  const { [key]: _gone, ...rest } = timers;
  return rest;
}

export function timerBook(rule: TimerRule): TimerBook {
  const { slackMs } = rule;
  if (!(slackMs >= 0)) throw new RangeError(`a timer slack is a duration >= 0 (or Infinity), not ${slackMs}`);
  const due = (timers: PendingTimers, event: { readonly type: string; readonly now: number }, key: string): boolean => {
    if (firedKey(event) !== key || !Object.hasOwn(timers, key)) return false;
    return event.now >= (timers[key] ?? 0) - slackMs;
  };
  const cancel = (timers: PendingTimers, key: string): TimerStep =>
    Object.hasOwn(timers, key) ? { timers: without(timers, key), intents: [{ type: 'timer.cancel', key }] } : { timers, intents: [] };
  return Object.freeze({
    slackMs,
    schedule: (timers: PendingTimers, key: string, at: number): TimerStep => ({ timers: { ...timers, [key]: at }, intents: [{ type: 'timer.schedule', key, at }] }),
    cancel,
    cancelAll: (timers: PendingTimers): TimerStep => ({ timers: {}, intents: Object.keys(timers).map((key) => ({ type: 'timer.cancel', key })) }),
    due,
    afterFire(timers: PendingTimers, event: { readonly type: string; readonly now: number }): PendingTimers {
      const key = firedKey(event);
      return key !== undefined && due(timers, event, key) ? without(timers, key) : timers;
    },
    rearm: (timers: PendingTimers): readonly TimerScheduleIntent[] => Object.entries(timers).map(([key, at]) => ({ type: 'timer.schedule', key, at })),
  });
}
