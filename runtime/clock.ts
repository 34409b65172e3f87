/**
 * The clock port (DESIGN.md): the one way the runtime reads time and schedules work later. Machines never read a
 * clock (time reaches them in events); the runtime takes a `Clock` so that tests, and the simulator, can drive
 * time by hand instead of sleeping and hoping.
 *
 * `realClock` is wall time and Node's timers. `ManualClock` moves only when told to: `advance(ms)` runs every
 * timer that falls due, in due order (ties in the order they were set), each seeing `now()` at its due time.
 */

/** A scheduled callback; `clear` cancels it (a no-op once it has run). */
export interface Timer {
  clear(): void;
}

export interface TimerOptions {
  /** Keep the process alive while the timer is pending, as a plain Node timer does: for a wait that something is
   * blocked on when nothing else may hold the process (a request's deadline, a reconnect). Real timers only. */
  readonly keepAlive?: boolean;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `fn` once, `ms` from now (a delay that is not a positive number means now). Real timers are unref'd
   * unless `keepAlive` is asked for: by default a pending timer never keeps the process alive. */
  after(ms: number, fn: () => void, opts?: TimerOptions): Timer;
  /** Runs `fn` every `ms` (at least 1) until cleared, the first time `ms` from now. */
  every(ms: number, fn: () => void, opts?: TimerOptions): Timer;
}

/** The longest delay Node's timers take; a longer one would fire after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay as the clocks use it: NaN and negative delays are 0. */
const delayOf = (ms: number): number => (ms > 0 ? ms : 0);
const periodOf = (ms: number): number => Math.max(1, delayOf(ms));

export const realClock: Clock = Object.freeze({
  now: () => Date.now(),
  after(ms: number, fn: () => void, opts?: TimerOptions): Timer {
    let t: NodeJS.Timeout;
    // delays past Node's limit are waited out in steps, not cut short
    const arm = (left: number): void => {
      t = setTimeout(() => (left > MAX_TIMER_MS ? arm(left - MAX_TIMER_MS) : fn()), Math.min(left, MAX_TIMER_MS));
      if (!opts?.keepAlive) t.unref();
    };
    arm(delayOf(ms));
    return { clear: () => clearTimeout(t) };
  },
  every(ms: number, fn: () => void, opts?: TimerOptions): Timer {
    const period = periodOf(ms);
    if (period > MAX_TIMER_MS) {
      let timer: Timer;
      const arm = (): void => {
        timer = realClock.after(
          period,
          () => {
            arm();
            fn();
          },
          opts,
        );
      };
      arm();
      return { clear: () => timer.clear() };
    }
    const t = setInterval(fn, period);
    if (!opts?.keepAlive) t.unref();
    return { clear: () => clearInterval(t) };
  },
});

interface Scheduled {
  at: number;
  readonly order: number;
  readonly fn: () => void;
  readonly period: number | undefined;
  live: boolean;
}

/**
 * A clock that moves only by `advance` or `set`: deterministic time for tests and simulation. A timer that throws
 * stops the `advance` at its due time and the error reaches the caller; the timers after it run on the next one.
 */
export class ManualClock implements Clock {
  #now: number;
  #order = 0;
  #timers: Scheduled[] = [];
  #advancing = false;

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  after(ms: number, fn: () => void): Timer {
    return this.#schedule(delayOf(ms), fn, undefined);
  }

  every(ms: number, fn: () => void): Timer {
    const period = periodOf(ms);
    return this.#schedule(period, fn, period);
  }

  /** Timers set and not yet run or cleared. */
  get pending(): number {
    return this.#timers.filter((t) => t.live).length;
  }

  /** Moves time forward by `ms`, running each timer that falls due at its due time. */
  advance(ms: number): void {
    if (!(ms >= 0 && Number.isFinite(ms))) throw new RangeError(`advance takes a finite duration >= 0, not ${ms}`);
    if (this.#advancing) throw new Error('advance was called from a timer; time would run backwards for the timers due before the end of the outer advance');
    const end = this.#now + ms;
    this.#advancing = true;
    try {
      for (;;) {
        const next = this.#next(end);
        if (!next) break;
        this.#now = next.at;
        if (next.period === undefined) next.live = false;
        else next.at += next.period;
        next.fn();
      }
      this.#now = end;
    } finally {
      this.#advancing = false;
      this.#timers = this.#timers.filter((t) => t.live);
    }
  }

  /** Runs the timers due by `at`, then stands at `at` (which must not be in the past). */
  set(at: number): void {
    if (at < this.#now) throw new RangeError(`set(${at}) would move the clock back from ${this.#now}`);
    this.advance(at - this.#now);
  }

  /** The earliest live timer due by `end` (ties: the one set first). */
  #next(end: number): Scheduled | undefined {
    let best: Scheduled | undefined;
    for (const t of this.#timers) {
      if (!t.live || t.at > end) continue;
      if (!best || t.at < best.at || (t.at === best.at && t.order < best.order)) best = t;
    }
    return best;
  }

  #schedule(delay: number, fn: () => void, period: number | undefined): Timer {
    const t: Scheduled = { at: this.#now + delay, order: this.#order++, fn, period, live: true };
    this.#timers.push(t);
    return { clear: () => void (t.live = false) };
  }
}
