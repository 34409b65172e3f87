/**
 * The runtime side of the deal machines' timers: a machine asks for one with `timer.schedule {key, at}` (an
 * absolute time) and gets `timer.fired {key, now}` back when it is due; `timer.cancel {key}` drops it. One timer
 * per actor and key, on the node's clock; an actor's timers go when it is retired, every timer when the node stops.
 */
import type { Clock, Timer } from '../clock.ts';

export class DealTimers {
  readonly #timers = new Map<string, Map<string, Timer>>();
  #closed = false;

  /** `fire` hands the actor its `timer.fired`. */
  constructor(
    private readonly clock: Clock,
    private readonly fire: (actorId: string, key: string) => void,
  ) {}

  /** Sets the timer `key` of an actor to fire at `at` (at once when that has passed), replacing a pending one. */
  schedule(actorId: string, key: string, at: number): void {
    this.cancel(actorId, key);
    if (this.#closed) return;
    const timers = this.#timers.get(actorId) ?? new Map<string, Timer>();
    this.#timers.set(actorId, timers);
    const timer = this.clock.after(at - this.clock.now(), () => {
      timers.delete(key);
      this.fire(actorId, key);
    });
    timers.set(key, timer);
  }

  cancel(actorId: string, key: string): void {
    const timers = this.#timers.get(actorId);
    timers?.get(key)?.clear();
    timers?.delete(key);
  }

  /** Drops every timer of an actor (it ended). */
  cancelAll(actorId: string): void {
    for (const t of this.#timers.get(actorId)?.values() ?? []) t.clear();
    this.#timers.delete(actorId);
  }

  /** Timers pending now, over all actors. */
  get pending(): number {
    let n = 0;
    for (const timers of this.#timers.values()) n += timers.size;
    return n;
  }

  /** Drops every timer and sets no more (a stopping node). */
  close(): void {
    this.#closed = true;
    for (const id of [...this.#timers.keys()]) this.cancelAll(id);
  }
}
