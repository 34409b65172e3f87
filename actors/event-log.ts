/**
 * The event log port: where every event an actor accepts is written before the actor acts on it, and where
 * its snapshots are kept. The runtime implements it (DexieEventLog); tests use MemoryEventLog.
 */
import type { VersionedSnapshot } from './actor.protocol.ts';

/** One event as the log keeps it. */
export interface LoggedEvent {
  readonly seq: number;
  /** When the event was accepted, ms since the epoch. */
  readonly ts: number;
  readonly type: string;
  /** Who sent it: 'local', 'api', 'timer', 'monitor', or a peer id. */
  readonly origin: string;
  /** The event itself (including `type`). */
  readonly payload: unknown;
}

export interface MetaEntry {
  readonly key: string;
  readonly value: unknown;
}

/** An actor the log knows: enough to start it again from nothing. */
export interface ActorRecord {
  readonly id: string;
  readonly kind: string;
  readonly input: unknown;
  readonly createdAt: number;
}

export interface EventLog {
  /**
   * Appends events of one actor; resolves once they are durable, with the bytes they take in the log (0 when the
   * log does not know). Seqs must continue the actor's sequence.
   */
  append(actor: string, events: readonly LoggedEvent[]): Promise<number | void>;
  /** Records that the event at `seq` made the actor fail and was dropped; replays skip it. */
  markDropped(actor: string, seq: number, reason: string): Promise<void>;
  /**
   * Stores a snapshot and lets go of the events it covers (they stay in the on-disk history), together with
   * `meta` rows that must change atomically with it (e.g. indexes as of the snapshot).
   */
  saveSnapshot(actor: string, snapshot: VersionedSnapshot, meta?: readonly MetaEntry[]): Promise<void>;
  latestSnapshot(actor: string): Promise<VersionedSnapshot | undefined>;
  /** Events after `seq` (not dropped), in order. */
  eventsAfter(actor: string, seq: number): Promise<LoggedEvent[]>;
  /** The highest seq logged for the actor (0 when none). */
  lastSeq(actor: string): Promise<number>;
  register(record: ActorRecord): Promise<void>;
  actor(id: string): Promise<ActorRecord | undefined>;
  actors(): Promise<ActorRecord[]>;
  /**
   * Lets go of an ended actor: its registry record, snapshot, events and dropped marks leave the live tables at
   * once (the on-disk history keeps them for `replay`), so ended actors cost the live store nothing.
   */
  forget(actor: string): Promise<void>;
}

/** An in-memory EventLog for unit tests (nothing survives the process). */
export class MemoryEventLog implements EventLog {
  readonly #events = new Map<string, LoggedEvent[]>();
  readonly #snapshots = new Map<string, VersionedSnapshot>();
  readonly #dropped = new Map<string, Set<number>>();
  readonly #actors = new Map<string, ActorRecord>();

  async append(actor: string, events: readonly LoggedEvent[]): Promise<number | void> {
    const list = this.#events.get(actor) ?? [];
    let last = list.at(-1)?.seq ?? this.#snapshots.get(actor)?.seq ?? 0;
    for (const e of events) {
      if (e.seq <= last) throw new Error(`event seq ${e.seq} of ${actor} does not follow ${last}`);
      last = e.seq;
    }
    list.push(...events);
    this.#events.set(actor, list);
  }

  async markDropped(actor: string, seq: number): Promise<void> {
    const set = this.#dropped.get(actor) ?? new Set<number>();
    set.add(seq);
    this.#dropped.set(actor, set);
  }

  readonly meta = new Map<string, unknown>();

  async saveSnapshot(actor: string, snapshot: VersionedSnapshot, meta: readonly MetaEntry[] = []): Promise<void> {
    for (const m of meta) this.meta.set(m.key, m.value);
    this.#snapshots.set(actor, snapshot);
    this.#events.set(actor, (this.#events.get(actor) ?? []).filter((e) => e.seq > snapshot.seq));
  }

  async latestSnapshot(actor: string): Promise<VersionedSnapshot | undefined> {
    return this.#snapshots.get(actor);
  }

  async eventsAfter(actor: string, seq: number): Promise<LoggedEvent[]> {
    const dropped = this.#dropped.get(actor);
    return (this.#events.get(actor) ?? []).filter((e) => e.seq > seq && !dropped?.has(e.seq));
  }

  async lastSeq(actor: string): Promise<number> {
    return this.#events.get(actor)?.at(-1)?.seq ?? this.#snapshots.get(actor)?.seq ?? 0;
  }

  async register(record: ActorRecord): Promise<void> {
    this.#actors.set(record.id, record);
  }

  async actor(id: string): Promise<ActorRecord | undefined> {
    return this.#actors.get(id);
  }

  async actors(): Promise<ActorRecord[]> {
    return [...this.#actors.values()];
  }

  async forget(actor: string): Promise<void> {
    this.#events.delete(actor);
    this.#snapshots.delete(actor);
    this.#dropped.delete(actor);
    this.#actors.delete(actor);
  }
}
