/**
 * The store: Dexie over fake-indexeddb (in memory), made durable by the journal. A DBCore middleware tees
 * every committed read-write transaction into the journal as one record; writers wait for `durable()` before
 * they acknowledge. At start the newest checkpoint is loaded and the journal after it replayed into Dexie.
 * Compaction writes a checkpoint of the (small) live tables and starts a new journal segment; old segments
 * stay on disk as the node's full history, which `replay` reads.
 *
 * Events are stored one row per delivered batch (a page): fake-indexeddb adds ~46k rows/s here and costs
 * ~1 KB a row, so a row per event would cap durable appends below 50k/s. Pages of events already covered by
 * a snapshot are deleted from Dexie, so memory stays bounded however long the history grows.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Dexie, type DBCoreKeyRange, type DBCoreMutateRequest, type DBCoreMutateResponse, type Table } from 'dexie';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import type { VersionedSnapshot } from '../../actors/actor.protocol.ts';
import type { ActorRecord, EventLog, LoggedEvent, MetaEntry } from '../../actors/event-log.ts';
import { readJson, writeFileDurable } from '../files.ts';
import { Journal, listSegments, readSegments, segmentName } from './journal.ts';

export const JOURNAL_DIR = 'journal';
export const CHECKPOINT_FILE = 'checkpoint.json';
const CHECKPOINT_FORMAT = 1;

/** A page of one actor's events as Dexie keeps it: the events as JSON text, which clones cheaply. */
export interface EventPage {
  readonly actor: string;
  /** Seq of the last event in the page (the key). */
  readonly seq: number;
  readonly first: number;
  readonly json: string;
}

/** A page as the journal holds it: the same JSON text, embedded as a value rather than as a string. */
interface JournaledPage {
  readonly actor: string;
  readonly seq: number;
  readonly first: number;
  readonly events: LoggedEvent[];
}
interface SnapshotRow extends VersionedSnapshot {
  readonly actor: string;
  readonly ts: number;
}
interface DroppedRow {
  readonly actor: string;
  readonly seq: number;
  readonly reason: string;
}
interface MetaRow {
  readonly key: string;
  readonly value: unknown;
}

/** One journaled mutation of a table. */
type Mutation =
  | { t: string; op: 'add' | 'put'; values: unknown[] }
  | { t: string; op: 'delete'; keys: unknown[] }
  | { t: string; op: 'deleteRange'; range: DBCoreKeyRange };

const TABLES = ['events', 'snapshots', 'dropped', 'actors', 'meta'] as const;

class StoreDb extends Dexie {
  events!: Table<EventPage, [string, number]>;
  snapshots!: Table<SnapshotRow, string>;
  dropped!: Table<DroppedRow, [string, number]>;
  actors!: Table<ActorRecord, string>;
  meta!: Table<MetaRow, string>;

  constructor() {
    super('dms', { indexedDB: new IDBFactory(), IDBKeyRange });
    this.version(1).stores({ events: '[actor+seq]', snapshots: 'actor', dropped: '[actor+seq]', actors: 'id', meta: 'key' });
  }
}

export interface StoreInit {
  readonly dataDir: string;
  /** Compact once the current journal segment grows past this many bytes. */
  readonly compactBytes: number;
}

export const STORE_DEFAULTS = { compactBytes: 32 * 1024 * 1024 };

export interface RecoveryReport {
  readonly checkpoint: boolean;
  readonly segments: number;
  readonly records: number;
  readonly tornBytes: number;
  readonly ms: number;
}

/** JSON text of a transaction's mutations; event pages embed their JSON text as is (no re-encoding). */
function encodeTx(list: readonly Mutation[]): string {
  const parts = list.map((m) =>
    m.t === 'events' && (m.op === 'add' || m.op === 'put')
      ? `{"t":"events","op":"${m.op}","values":[${(m.values as EventPage[]).map((p) => `{"actor":${JSON.stringify(p.actor)},"seq":${p.seq},"first":${p.first},"events":${p.json}}`).join(',')}]}`
      : JSON.stringify(m),
  );
  return `{"tx":[${parts.join(',')}]}`;
}

/** Turns journaled pages back into Dexie rows. */
function decodeMutation(m: Mutation): Mutation {
  if (m.t !== 'events' || (m.op !== 'add' && m.op !== 'put')) return m;
  return { ...m, values: (m.values as JournaledPage[]).map((p) => ({ actor: p.actor, seq: p.seq, first: p.first, json: JSON.stringify(p.events) })) };
}

/** Event pages are keyed [actor, seq]; held pages are looked up by this text of the key. */
const pageKey = (k: readonly [string, number]) => `${k[1]}\u0000${k[0]}`;
const isPageKey = (k: unknown): k is [string, number] => Array.isArray(k) && k.length === 2 && typeof k[0] === 'string' && typeof k[1] === 'number' && Number.isFinite(k[1]);
/** A range over one actor's pages ([actor, a] .. [actor, b], as saveSnapshot deletes), which recovery can apply to held pages. */
const isPageRange = (r: DBCoreKeyRange): boolean => r.type === 2 && isPageKey(r.lower) && isPageKey(r.upper) && r.lower[0] === r.upper[0];
function inPageRange(p: JournaledPage, r: DBCoreKeyRange): boolean {
  const [actor, lo] = r.lower as [string, number];
  const hi = (r.upper as [string, number])[1];
  return p.actor === actor && (r.lowerOpen ? p.seq > lo : p.seq >= lo) && (r.upperOpen ? p.seq < hi : p.seq <= hi);
}

function serialize(table: string, req: DBCoreMutateRequest, res: DBCoreMutateResponse): Mutation | null {
  const ok = <T>(list: readonly T[]) => (res.numFailures === 0 ? [...list] : list.filter((_, i) => !res.failures[i]));
  switch (req.type) {
    case 'add':
    case 'put': {
      const values = ok(req.values);
      return values.length ? { t: table, op: req.type, values } : null;
    }
    case 'delete':
      return req.keys.length ? { t: table, op: 'delete', keys: [...req.keys] } : null;
    case 'deleteRange':
      return { t: table, op: 'deleteRange', range: { type: req.range.type, lower: req.range.lower, upper: req.range.upper, lowerOpen: req.range.lowerOpen ?? false, upperOpen: req.range.upperOpen ?? false } };
  }
}

export class DexieEventLog implements EventLog {
  readonly db = new StoreDb();
  readonly journal: Journal;
  #suspended = true;
  #compacting: Promise<void> | null = null;
  readonly stats = { compactions: 0 };

  private constructor(readonly init: StoreInit) {
    this.journal = new Journal({ dir: path.join(init.dataDir, JOURNAL_DIR) });
    const txRecords = new WeakMap<object, Mutation[]>();
    this.db.use({
      stack: 'dbcore',
      name: 'journal',
      create: (down) => ({
        ...down,
        transaction: (stores, mode, options) => {
          const tx = down.transaction(stores, mode, options);
          if (mode === 'readwrite' && !this.#suspended) {
            const list: Mutation[] = [];
            txRecords.set(tx, list);
            (tx as unknown as EventTarget).addEventListener('complete', () => {
              if (list.length > 0) this.journal.enqueueText(encodeTx(list));
            });
          }
          return tx;
        },
        table: (name) => {
          const table = down.table(name);
          return {
            ...table,
            mutate: async (req) => {
              const res = await table.mutate(req);
              const m = txRecords.get(req.trans) && serialize(name, req, res);
              if (m) txRecords.get(req.trans)!.push(m);
              return res;
            },
          };
        },
      }),
    });
  }

  /** Opens the store in the data dir: checkpoint, then the journal after it. */
  static async open(init: StoreInit): Promise<{ store: DexieEventLog; recovery: RecoveryReport }> {
    const t0 = performance.now();
    const store = new DexieEventLog(init);
    await store.db.open();
    const { segments, tornBytes } = await store.journal.open();
    const cp = (await readJson(path.join(init.dataDir, CHECKPOINT_FILE))) as { format: number; segment: number; tx: Mutation[] } | undefined;
    if (cp && cp.format !== CHECKPOINT_FORMAT) throw Object.assign(new Error(`checkpoint format ${cp.format} is not ${CHECKPOINT_FORMAT}; this build cannot read it`), { name: 'CheckpointFormatError' });
    const held = new Map<string, JournaledPage>();
    if (cp) await store.#recover(cp.tx, held);
    const todo = segments.filter((s) => s >= (cp?.segment ?? 0));
    // the newest segment was parsed by journal.open() already (to find a torn tail): use those records
    const newest = store.journal.takeOpened(todo.at(-1) ?? -1);
    let records = 0;
    for await (const seg of readSegments(store.journal.init.dir, newest ? todo.slice(0, -1) : todo)) {
      for (const r of seg.records) await store.#recover((r as { tx: Mutation[] }).tx, held);
      records += seg.records.length;
    }
    for (const r of newest ?? []) await store.#recover((r as { tx: Mutation[] }).tx, held);
    records += newest?.length ?? 0;
    await store.#flushHeld(held);
    store.#suspended = false;
    return { store, recovery: { checkpoint: cp !== undefined, segments: todo.length, records, tornBytes, ms: Math.round(performance.now() - t0) } };
  }

  /**
   * Applies one journaled transaction at recovery, holding event pages back instead of inserting them: most are
   * deleted again by a later snapshot's deleteRange in the same journal, and inserting a page costs re-encoding its
   * events and a structured clone of the text. The result is that of applying every transaction as it comes:
   * deletes on the events table apply to the held pages (and to the table); anything else on that table first
   * inserts the held pages. Pages still held at the end are inserted by #flushHeld.
   */
  async #recover(tx: readonly Mutation[], held: Map<string, JournaledPage>): Promise<void> {
    const rest: Mutation[] = [];
    for (const m of tx) {
      if (m.t !== 'events') rest.push(m);
      else if (m.op === 'add' || m.op === 'put') for (const p of m.values as JournaledPage[]) held.set(pageKey([p.actor, p.seq]), p);
      else if (m.op === 'delete' && m.keys.every(isPageKey)) {
        for (const k of m.keys) held.delete(pageKey(k as [string, number]));
        rest.push(m);
      } else if (m.op === 'deleteRange' && isPageRange(m.range)) {
        for (const [k, p] of held) if (inPageRange(p, m.range)) held.delete(k);
        rest.push(m);
      } else {
        if (rest.length > 0) await this.#apply(rest.splice(0).map(decodeMutation));
        await this.#flushHeld(held);
        rest.push(m);
      }
    }
    if (rest.length > 0) await this.#apply(rest.map(decodeMutation));
  }

  async #flushHeld(held: Map<string, JournaledPage>): Promise<void> {
    if (held.size === 0) return;
    const values = [...held.values()];
    held.clear();
    await this.#apply([decodeMutation({ t: 'events', op: 'put', values })]);
  }

  async #apply(tx: readonly Mutation[]): Promise<void> {
    const tables = [...new Set(tx.map((m) => m.t))].map((t) => this.db.table(t));
    await this.db.transaction('rw', tables, async () => {
      for (const m of tx) {
        const table = this.db.table(m.t);
        if (m.op === 'add' || m.op === 'put') await table.bulkPut(m.values);
        else if (m.op === 'delete') await table.bulkDelete(m.keys as never[]);
        else if (m.op === 'deleteRange') await table.where(':id').between(m.range.lower, m.range.upper, !m.range.lowerOpen, !m.range.upperOpen).delete();
      }
    });
  }

  /** Waits for the journal to hold every committed write, then compacts if the segment is large. */
  async #settle(): Promise<void> {
    await this.journal.durable();
    if (this.journal.segmentBytes > this.init.compactBytes && !this.#compacting) void this.compact();
  }

  async append(actor: string, events: readonly LoggedEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.db.events.add({ actor, seq: events.at(-1)!.seq, first: events[0]!.seq, json: JSON.stringify(events) });
    await this.#settle();
  }

  async markDropped(actor: string, seq: number, reason: string): Promise<void> {
    await this.db.dropped.put({ actor, seq, reason });
    await this.#settle();
  }

  async saveSnapshot(actor: string, snapshot: VersionedSnapshot, meta: readonly MetaEntry[] = []): Promise<void> {
    await this.db.transaction('rw', this.db.snapshots, this.db.events, this.db.meta, async () => {
      if (meta.length > 0) await this.db.meta.bulkPut(meta.map((m) => ({ key: m.key, value: m.value })));
      await this.db.snapshots.put({ ...snapshot, actor, ts: Date.now() });
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
    await this.db.actors.put(record);
    await this.#settle();
  }

  actor(id: string): Promise<ActorRecord | undefined> {
    return this.db.actors.get(id);
  }

  actors(): Promise<ActorRecord[]> {
    return this.db.actors.toArray();
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
    await this.db.meta.put({ key, value });
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
    let segment = 0;
    const puts: Mutation[] = [];
    await this.db.transaction('r', TABLES.map((t) => this.db.table(t)), async () => {
      puts.push({ t: TABLES[0], op: 'put', values: await this.db.table(TABLES[0]).toArray() });
      // The read transaction is now active: every earlier write has committed (and is queued in the
      // journal) and no later one can commit until it ends, so the segment boundary falls exactly here.
      segment = this.journal.rotate();
      for (const t of TABLES.slice(1)) puts.push({ t, op: 'put', values: await this.db.table(t).toArray() });
    });
    await this.journal.durable();
    const text = `{"format":${CHECKPOINT_FORMAT},"segment":${segment},"createdAt":${Date.now()},"tx":${encodeTx(puts).slice('{"tx":'.length, -1)}}`;
    await writeFileDurable(path.join(this.init.dataDir, CHECKPOINT_FILE), text);
    this.stats.compactions += 1;
  }

  async close(): Promise<void> {
    await this.#compacting;
    await this.journal.close();
    this.db.close();
  }
}

/**
 * Seqs of the actor's dropped events. The `dropped` table is never pruned, so the newest checkpoint holds every
 * drop made before its cut and the segments from the cut on hold the rest; a drop may land in a later segment
 * than its event (a compaction between the two), so it must be known before the history is read.
 */
async function droppedSeqs(dataDir: string, actor: string, segments: readonly number[]): Promise<Set<number>> {
  const dropped = new Set<number>();
  const collect = (tx: readonly Mutation[]) => {
    for (const m of tx) if (m.t === 'dropped' && (m.op === 'add' || m.op === 'put')) for (const d of m.values as DroppedRow[]) if (d.actor === actor) dropped.add(d.seq);
  };
  const cp = (await readJson(path.join(dataDir, CHECKPOINT_FILE))) as { segment: number; tx: Mutation[] } | undefined;
  if (cp) collect(cp.tx);
  for await (const seg of readSegments(path.join(dataDir, JOURNAL_DIR), segments.filter((s) => s >= (cp?.segment ?? 0)))) {
    for (const r of seg.records) collect((r as { tx: Mutation[] }).tx);
  }
  return dropped;
}

/** Every event of one actor in the full on-disk history, oldest first (for replay; reads segments lazily). */
export async function* historyOf(dataDir: string, actor: string): AsyncGenerator<{ event: LoggedEvent; bytesRead: number; bytesTotal: number }> {
  const dir = path.join(dataDir, JOURNAL_DIR);
  const segments = await listSegments(dir);
  let bytesTotal = 0;
  for (const s of segments) bytesTotal += (await fs.stat(path.join(dir, segmentName(s)))).size;
  let bytesRead = 0;
  const dropped = await droppedSeqs(dataDir, actor, segments);
  for await (const seg of readSegments(dir, segments)) {
    bytesRead += seg.bytes;
    for (const r of seg.records) {
      for (const m of (r as { tx: Mutation[] }).tx) {
        if (m.t !== 'events' || (m.op !== 'add' && m.op !== 'put')) continue;
        for (const page of m.values as JournaledPage[]) {
          if (page.actor !== actor) continue;
          for (const event of page.events) if (!dropped.has(event.seq)) yield { event, bytesRead, bytesTotal };
        }
      }
    }
  }
}
