/**
 * The store: Dexie over fake-indexeddb (in memory, store-db.ts), made durable by the journal. The journal tee
 * (journal-tee.ts) writes every committed read-write transaction into the journal as one record; writers wait for
 * `durable()` before they acknowledge. At start the newest checkpoint is loaded and the journal after it replayed
 * into Dexie (store-recovery.ts). Compaction writes a checkpoint of the (small) live tables and starts a new
 * journal segment (checkpoint.ts); old segments stay on disk as the node's history, which `replay` reads
 * (history-reader.ts), until retention removes those older than `--retain` (history-retention.ts). A failed journal
 * write is cut off again and stops the store (journal.ts): it takes no more writes until it is reopened.
 */
import path from 'node:path';
import { Dexie } from 'dexie';
import type { VersionedSnapshot } from '../../actors/actor.protocol.ts';
import type { ActorRecord, EventLog, LoggedEvent, MetaEntry } from '../../actors/event-log.ts';
import { type Clock, realClock } from '../clock.ts';
import { readCheckpoint, writeCheckpoint } from './checkpoint.ts';
import { JOURNAL_DIR } from './constants.ts';
import { type HistoryLimits, type HistoryPruneReport, pruneHistory } from './history-retention.ts';
import { Journal } from './journal.ts';
import { journalTee } from './journal-tee.ts';
import { StoreDb } from './store-db.ts';
import { recoverStore } from './store-recovery.ts';

export interface StoreInit {
  readonly dataDir: string;
  /** Compact once the current journal segment grows past this many bytes. */
  readonly compactBytes: number;
  /** Stamps snapshots and checkpoints (default: the real clock). */
  readonly clock?: Clock;
  /** How much history (segments before the newest checkpoint's) to keep; with a size, pruned after each compaction. */
  readonly history?: HistoryLimits;
  /** Told what a prune after a compaction removed (and why it failed). */
  readonly onHistoryPruned?: (r: HistoryPruneReport | Error) => void;
  /** Told how long each journal group commit (write and fdatasync) took, in seconds. */
  readonly onJournalCommit?: (seconds: number) => void;
}

export interface RecoveryReport {
  readonly checkpoint: boolean;
  readonly segments: number;
  readonly records: number;
  readonly tornBytes: number;
  readonly ms: number;
}

export class DexieEventLog implements EventLog {
  readonly db = new StoreDb();
  readonly journal: Journal;
  #suspended = true;
  #compacting: Promise<void> | null = null;
  /** Compactions done, and those that failed (a checkpoint that could not be written: the next one tries again). */
  readonly stats = { compactions: 0, compactionFailures: 0, lastCompactionError: null as string | null };
  readonly #clock: Clock;

  private constructor(readonly init: StoreInit) {
    this.#clock = init.clock ?? realClock;
    this.journal = new Journal({ dir: path.join(init.dataDir, JOURNAL_DIR), onCommit: init.onJournalCommit });
    this.db.use(journalTee(this.journal, () => !this.#suspended));
  }

  /** Opens the store in the data dir: checkpoint, then the journal after it. */
  static async open(init: StoreInit): Promise<{ store: DexieEventLog; recovery: RecoveryReport }> {
    const t0 = performance.now();
    const store = new DexieEventLog(init);
    await store.db.open();
    const { segments, tornBytes } = await store.journal.open();
    const cp = await readCheckpoint(init.dataDir);
    const replayed = await recoverStore(store.db, store.journal, segments, cp);
    store.#suspended = false;
    return { store, recovery: { checkpoint: cp !== undefined, ...replayed, tornBytes, ms: Math.round(performance.now() - t0) } };
  }

  /** Waits for the journal to hold every committed write, then compacts if the segment is large. */
  async #settle(): Promise<void> {
    await this.journal.durable();
    if (this.journal.segmentBytes > this.init.compactBytes && !this.#compacting) void this.compact().catch(() => {}); // counted in stats
  }

  /**
   * Refuses a write once the journal has stopped (a failed write), before it reaches the in-memory tables: the
   * store takes no more writes until it is reopened from what the disk holds.
   */
  #writable(): void {
    const failure = this.journal.failure;
    if (failure) throw failure;
  }

  async append(actor: string, events: readonly LoggedEvent[]): Promise<number> {
    if (events.length === 0) return 0;
    this.#writable();
    const json = JSON.stringify(events);
    await this.db.events.add({ actor, seq: events.at(-1)!.seq, first: events[0]!.seq, json });
    await this.#settle();
    return json.length;
  }

  async markDropped(actor: string, seq: number, reason: string): Promise<void> {
    this.#writable();
    await this.db.dropped.put({ actor, seq, reason });
    await this.#settle();
  }

  async saveSnapshot(actor: string, snapshot: VersionedSnapshot, meta: readonly MetaEntry[] = []): Promise<void> {
    this.#writable();
    await this.db.transaction('rw', this.db.snapshots, this.db.events, this.db.meta, async () => {
      if (meta.length > 0) await this.db.meta.bulkPut(meta.map((m) => ({ key: m.key, value: m.value })));
      await this.db.snapshots.put({ ...snapshot, actor, ts: this.#clock.now() });
      await this.db.events.where('[actor+seq]').between([actor, 0], [actor, snapshot.seq], true, true).delete();
    });
    await this.#settle();
  }

  async latestSnapshot(actor: string): Promise<VersionedSnapshot | undefined> {
    const row = await this.db.snapshots.get(actor);
    if (!row) return undefined;
    return { kind: row.kind, version: row.version, seq: row.seq, snapshot: row.snapshot };
  }

  async eventsAfter(actor: string, seq: number): Promise<LoggedEvent[]> {
    const pages = await this.db.events.where('[actor+seq]').between([actor, seq + 1], [actor, Dexie.maxKey], true, true).toArray();
    const dropped = new Set((await this.db.dropped.where('[actor+seq]').between([actor, seq + 1], [actor, Dexie.maxKey], true, true).toArray()).map((d) => d.seq));
    return pages.flatMap((p) => JSON.parse(p.json) as LoggedEvent[]).filter((e) => e.seq > seq && !dropped.has(e.seq));
  }

  async lastSeq(actor: string): Promise<number> {
    const page = await this.db.events.where('[actor+seq]').between([actor, Dexie.minKey], [actor, Dexie.maxKey]).last();
    return page?.seq ?? (await this.db.snapshots.get(actor))?.seq ?? 0;
  }

  async register(record: ActorRecord): Promise<void> {
    this.#writable();
    await this.db.actors.put(record);
    await this.#settle();
  }

  actor(id: string): Promise<ActorRecord | undefined> {
    return this.db.actors.get(id);
  }

  actors(): Promise<ActorRecord[]> {
    return this.db.actors.toArray();
  }

  async forget(actor: string): Promise<void> {
    this.#writable();
    // plain number bounds: the journal records the range as JSON, where Dexie.minKey (-Infinity) would not survive
    await this.db.transaction('rw', [this.db.events, this.db.snapshots, this.db.dropped, this.db.actors], async () => {
      await this.db.events.where('[actor+seq]').between([actor, 0], [actor, Number.MAX_SAFE_INTEGER], true, true).delete();
      await this.db.dropped.where('[actor+seq]').between([actor, 0], [actor, Number.MAX_SAFE_INTEGER], true, true).delete();
      await this.db.snapshots.delete(actor);
      await this.db.actors.delete(actor);
    });
    await this.#settle();
  }

  async getMeta<T>(key: string): Promise<T | undefined> {
    return (await this.db.meta.get(key))?.value as T | undefined;
  }

  /** Every meta row whose key starts with `prefix`, in key order. */
  async metaWithPrefix<T>(prefix: string): Promise<{ key: string; value: T }[]> {
    return (await this.db.meta.where('key').startsWith(prefix).toArray()) as { key: string; value: T }[];
  }

  /** The keys of the meta rows whose key starts with `prefix` (their values are not read). */
  async metaKeysWithPrefix(prefix: string): Promise<string[]> {
    return this.db.meta.where('key').startsWith(prefix).primaryKeys();
  }

  async putMeta(key: string, value: unknown): Promise<void> {
    this.#writable();
    await this.db.meta.put({ key, value });
    await this.#settle();
  }

  async deleteMeta(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    this.#writable();
    await this.db.meta.bulkDelete([...keys]);
    await this.#settle();
  }

  /**
   * Writes a checkpoint of every table and starts a new journal segment, cut exactly between the
   * transactions the checkpoint holds and those after it.
   */
  compact(): Promise<void> {
    this.#compacting ??= this.#compact().finally(() => {
      this.#compacting = null;
    });
    return this.#compacting;
  }

  async #compact(): Promise<void> {
    try {
      await writeCheckpoint(this.db, this.journal, this.init.dataDir, this.#clock);
    } catch (e) {
      // the rotation may have happened without a checkpoint: recovery then starts at the older one, which is whole
      this.stats.compactionFailures += 1;
      this.stats.lastCompactionError = (e as Error).message;
      throw e;
    }
    this.stats.compactions += 1;
    // a size cap is kept as the history grows, not only at the hourly sweep
    if ((this.init.history?.maxBytes ?? 0) > 0) {
      const r = await pruneHistory(this.init.dataDir, this.init.history!, this.#clock.now()).catch((e: Error) => e);
      if (r instanceof Error || r.segments.length > 0) this.init.onHistoryPruned?.(r);
    }
  }

  /**
   * Removes the journal segments (the node's history for `replay`) older than the retention or past its size (by
   * default the store's `history`), back to one that a checkpoint starts; never one that recovery needs
   * (history-retention.ts). 0 keeps everything.
   */
  async pruneHistory(limits: HistoryLimits | number | undefined = this.init.history): Promise<HistoryPruneReport> {
    await this.#compacting?.catch(() => {});
    return pruneHistory(this.init.dataDir, limits ?? 0, this.#clock.now());
  }

  async close(): Promise<void> {
    await this.#compacting?.catch(() => {});
    await this.journal.close();
    this.db.close();
  }
}
