/**
 * What the actors just did, for the dashboard: every event an actor's log accepts (seen where it is appended, after
 * it is durable), kept as the last few per actor, and pushed to subscribers in batches a few times a second. It
 * keeps only a summary (seq, time, type, origin), never payloads.
 */
import type { EventLog, LoggedEvent } from '../../actors/event-log.ts';
import type { Clock, Timer } from '../clock.ts';

export interface Activity {
  readonly actor: string;
  readonly seq: number;
  readonly ts: number;
  readonly type: string;
  readonly origin: string;
}

export interface ActivityFeedInit {
  /** Events kept per actor. */
  readonly perActor: number;
  /** Actors kept (the least recently active go first). */
  readonly actors: number;
  /** Subscribers hear at most one batch this often. */
  readonly batchMs: number;
  /** A batch holds at most this many events (the newest); the rest are counted as dropped. */
  readonly batchMax: number;
}

export const ACTIVITY_DEFAULTS: ActivityFeedInit = { perActor: 30, actors: 500, batchMs: 250, batchMax: 200 };

export type ActivityListener = (batch: readonly Activity[], dropped: number) => void;

export class ActivityFeed {
  readonly #recent = new Map<string, Activity[]>();
  readonly #listeners = new Set<ActivityListener>();
  #pending: Activity[] = [];
  #dropped = 0;
  #timer: Timer | null = null;

  constructor(
    private readonly init: ActivityFeedInit,
    private readonly clock: Clock,
  ) {}

  /** Notes events an actor's log accepted. */
  appended(actor: string, events: readonly LoggedEvent[]): void {
    let list = this.#recent.get(actor);
    if (list) this.#recent.delete(actor); // re-inserted: the map's order is least recently active first
    else list = [];
    this.#recent.set(actor, list);
    if (this.#recent.size > this.init.actors) this.#recent.delete(this.#recent.keys().next().value!);
    for (const e of events) {
      const a: Activity = { actor, seq: e.seq, ts: e.ts, type: e.type, origin: e.origin };
      list.push(a);
      if (this.#listeners.size > 0) this.#pending.push(a);
    }
    if (list.length > this.init.perActor) list.splice(0, list.length - this.init.perActor);
    if (this.#pending.length > this.init.batchMax) {
      this.#dropped += this.#pending.length - this.init.batchMax;
      this.#pending.splice(0, this.#pending.length - this.init.batchMax);
    }
    if (this.#pending.length > 0 && !this.#timer) this.#timer = this.clock.after(this.init.batchMs, () => this.#flush());
  }

  /** The last events of an actor, oldest first. */
  recent(actor: string): readonly Activity[] {
    return this.#recent.get(actor) ?? [];
  }

  /** Hears batches of activity until the returned function is called. */
  subscribe(listener: ActivityListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  stop(): void {
    this.#timer?.clear();
    this.#timer = null;
    this.#listeners.clear();
  }

  #flush(): void {
    this.#timer = null;
    const batch = this.#pending;
    const dropped = this.#dropped;
    this.#pending = [];
    this.#dropped = 0;
    for (const l of this.#listeners) l(batch, dropped);
  }
}

/** An event log that tells `feed` what it appended, once durable; everything else goes straight through. */
export function observedLog<L extends EventLog>(log: L, feed: ActivityFeed): L {
  const append = async (actor: string, events: readonly LoggedEvent[]) => {
    const r = await log.append(actor, events);
    feed.appended(actor, events);
    return r;
  };
  // each method bound once (the supervisor calls the log on every batch), `append` observed
  const bound = new Map<PropertyKey, unknown>([['append', append]]);
  return new Proxy(log, {
    get(target, prop) {
      if (bound.has(prop)) return bound.get(prop);
      const v = Reflect.get(target, prop, target) as unknown;
      if (typeof v !== 'function') return v;
      const f = (v as (...a: unknown[]) => unknown).bind(target);
      bound.set(prop, f);
      return f;
    },
  });
}
