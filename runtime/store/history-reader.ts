/**
 * The node's on-disk history: every journal segment still on disk, read without opening the store, streaming (for
 * `replay`). When retention removed the oldest segments (history-retention.ts), the history starts at the base of
 * the oldest segment kept: the checkpoint cut where it starts, which holds each live actor's record, its snapshot
 * and the events after it.
 */
import path from 'node:path';
import type { VersionedSnapshot } from '../../actors/actor.protocol.ts';
import type { ActorRecord, LoggedEvent } from '../../actors/event-log.ts';
import { readJson } from '../files.ts';
import { type Checkpoint, baseName, readBase } from './checkpoint.ts';
import { CHECKPOINT_FILE, JOURNAL_DIR } from './constants.ts';
import { listSegments, segmentName } from './journal.ts';
import type { Mutation } from './journal-record.ts';
import { JournalScan, type ScanStop, readFrameAt } from './journal-scan.ts';
import { type HistoryPage, type HistoryRecord, decodeRecord, splitMutations } from './history-records.ts';
import type { DroppedRow, SnapshotRow } from './store-db.ts';

/** Where the history on disk begins. */
export interface HistoryStart {
  /** The segments on disk, ascending. */
  readonly segments: number[];
  /** Set when segments before the oldest one on disk are gone. */
  readonly removed: {
    /** Segments 1..through are gone. */
    readonly through: number;
    /** When the oldest kept segment began (its base's cut), if known. */
    readonly before: number | null;
    /** The checkpoint where the oldest kept segment begins, if it was kept (without it nothing can be rebuilt). */
    readonly base: Checkpoint | undefined;
  } | null;
}

export async function historyStart(dataDir: string): Promise<HistoryStart> {
  const segments = await listSegments(path.join(dataDir, JOURNAL_DIR));
  const first = segments[0];
  if (first === undefined || first <= 1) return { segments, removed: null };
  const base = await readBase(dataDir, first);
  return { segments, removed: { through: first - 1, before: base?.createdAt ?? null, base } };
}

/** One line saying what history is gone, e.g. "history before <time> (segments 1-3) was removed by retention; ...". */
export function describeRemoved(start: HistoryStart): string | null {
  const r = start.removed;
  if (!r) return null;
  const which = r.through === 1 ? 'segment 1' : `segments 1-${r.through}`;
  const when = r.before === null ? '' : ` before ${new Date(r.before).toISOString()}`;
  if (!r.base) return `history${when} (${which}) is gone and there is no checkpoint where segment ${r.through + 1} begins (${JOURNAL_DIR}/${baseName(r.through + 1)})`;
  return `history${when} (${which}) was removed by retention; replaying from segment ${r.through + 1}`;
}

/** What a base holds of one actor: its record, its snapshot, and (for the node) the indexes saved with it. */
export interface ActorAtBase {
  readonly record: ActorRecord | undefined;
  readonly snapshot: VersionedSnapshot | undefined;
  readonly meta: ReadonlyMap<string, unknown>;
}

const putsOf = <T>(cp: Checkpoint, table: string): T[] => cp.tx.flatMap((m) => (m.t === table && (m.op === 'put' || m.op === 'add') ? (m.values as T[]) : []));

export function actorAtBase(base: Checkpoint, actor: string): ActorAtBase {
  const record = putsOf<ActorRecord>(base, 'actors').find((a) => a.id === actor);
  const row = putsOf<SnapshotRow>(base, 'snapshots').find((s) => s.actor === actor);
  const snapshot = row ? { kind: row.kind, version: row.version, seq: row.seq, snapshot: row.snapshot } : undefined;
  const meta = new Map(putsOf<{ key: string; value: unknown }>(base, 'meta').map((m) => [m.key, m.value]));
  return { record, snapshot, meta };
}

/** One line saying where and why the history read stopped early, or null when it read everything. */
export function describeStop(stop: ScanStop | null): string | null {
  if (!stop) return null;
  const where = `${JOURNAL_DIR}/${segmentName(stop.segment)} at byte ${stop.offset}`;
  const after = stop.unread > 0 ? `; ${stop.unread} later segment${stop.unread === 1 ? ' was' : 's were'} not read` : '';
  if (stop.gone) return `the history stops at ${JOURNAL_DIR}/${segmentName(stop.segment)}: ${stop.reason}${after}`;
  if (stop.tail && stop.unread === 0) return `the history ends at ${where}: the last record there does not check (${stop.reason}): a torn write, or one still being written on a running node; everything before it was read`;
  return `the history stops at ${where}: a record there does not check (${stop.reason}) and ${stop.tail ? 'nothing intact follows it in that segment' : 'intact records follow it (damage, not a torn write)'}${after}; everything before it was read`;
}

/** Where a record was read: a segment and the byte offset of its frame; null for the base checkpoint. */
export interface RecordAt {
  readonly segment: number;
  readonly offset: number;
}

/** What a history scan hands its reader, record by record. */
export interface HistoryVisitor {
  /** An event page. */
  page(page: HistoryPage, at: RecordAt | null): void;
  /** Any other mutation (actors, snapshots, dropped, meta, deletes). */
  other?(m: Mutation, at: RecordAt | null): void;
  /** Asked after each record: true ends the read there (the reader found what it wanted). */
  done?(): boolean;
}

export interface HistoryScanReport {
  readonly start: HistoryStart;
  /** Set when the read stopped before the end (see describeStop). */
  readonly stop: ScanStop | null;
  readonly bytes: number;
}

/**
 * Reads the whole on-disk history once, in order, streaming: the base checkpoint first when the oldest segments
 * are gone (its tables as puts, the pages last), then every record of every segment. `progress` is told the bytes
 * read so far and in all.
 */
export async function scanHistory(dataDir: string, visitor: HistoryVisitor, opts: { progress?: (read: number, total: number) => void; start?: HistoryStart } = {}): Promise<HistoryScanReport> {
  const start = opts.start ?? (await historyStart(dataDir));
  const visit = (r: HistoryRecord, at: RecordAt | null) => {
    // a checkpoint's tables in the order a reader needs them: records and snapshots before the pages after them
    if (at === null && visitor.other) for (const m of r.others) visitor.other(m, at);
    for (const p of r.pages) visitor.page(p, at);
    if (at !== null && visitor.other) for (const m of r.others) visitor.other(m, at);
  };
  if (start.removed?.base) visit(splitMutations(start.removed.base.tx), null);
  const scan = new JournalScan(path.join(dataDir, JOURNAL_DIR), start.segments);
  for await (const frames of scan.batches()) {
    for (const f of frames) {
      visit(decodeRecord(f.body), { segment: f.segment, offset: f.offset });
      if (visitor.done?.()) return { start, stop: null, bytes: scan.bytesRead };
    }
    opts.progress?.(scan.bytesRead, scan.bytesTotal);
  }
  return { start, stop: scan.stop, bytes: scan.bytesRead };
}

/** The pages of the record at `at` (found by an earlier scan), read again. */
export async function pagesAt(dataDir: string, at: RecordAt): Promise<readonly HistoryPage[]> {
  const body = await readFrameAt(path.join(dataDir, JOURNAL_DIR), at.segment, at.offset);
  if (!body) throw new Error(`the journal record at ${JOURNAL_DIR}/${segmentName(at.segment)} byte ${at.offset} is gone or changed since it was read`);
  return decodeRecord(body).pages;
}

const isPut = (m: Mutation): m is Extract<Mutation, { values: unknown[] }> => m.op === 'put' || m.op === 'add';

/**
 * Seqs of the actor's dropped events. The `dropped` table is never pruned, so the newest checkpoint holds every
 * drop made before its cut and the segments from the cut on hold the rest; a drop may land in a later segment
 * than its event (a compaction between the two), so it must be known before the history is read.
 */
async function droppedSeqs(dataDir: string, actor: string, segments: readonly number[]): Promise<Set<number>> {
  const dropped = new Set<number>();
  const collect = (m: Mutation) => {
    if (m.t === 'dropped' && isPut(m)) for (const d of m.values as DroppedRow[]) if (d.actor === actor) dropped.add(d.seq);
  };
  const cp = (await readJson(path.join(dataDir, CHECKPOINT_FILE))) as { segment: number; tx: Mutation[] } | undefined;
  if (cp) cp.tx.forEach(collect);
  const scan = new JournalScan(path.join(dataDir, JOURNAL_DIR), segments.filter((s) => s >= (cp?.segment ?? 0)));
  for await (const frames of scan.batches()) for (const f of frames) decodeRecord(f.body).others.forEach(collect);
  return dropped;
}

/**
 * Every event of one actor in the on-disk history, oldest first (for replay; streams the segments and parses only
 * that actor's pages). With a `base` (the oldest segments are gone), the history starts with the base's pages after
 * the actor's snapshot there. A read that stops early (damage, a torn tail) ends the events there and is told to
 * `onStop`.
 */
export async function* historyOf(dataDir: string, actor: string, base?: Checkpoint, onStop?: (stop: ScanStop) => void): AsyncGenerator<{ event: LoggedEvent; bytesRead: number; bytesTotal: number }> {
  const segments = await listSegments(path.join(dataDir, JOURNAL_DIR));
  const dropped = await droppedSeqs(dataDir, actor, segments);
  const after = base ? (actorAtBase(base, actor).snapshot?.seq ?? 0) : 0;
  const keep = (event: LoggedEvent) => event.seq > after && !dropped.has(event.seq);
  const scan = new JournalScan(path.join(dataDir, JOURNAL_DIR), segments);
  if (base) {
    // a page is written once, so the base's pages and the segments' are disjoint; a page may straddle the snapshot
    const events = splitMutations(base.tx).pages.filter((p) => p.actor === actor).flatMap((p) => p.events()).sort((a, b) => a.seq - b.seq);
    for (const event of events) if (keep(event)) yield { event, bytesRead: 0, bytesTotal: scan.bytesTotal };
  }
  for await (const frames of scan.batches()) {
    for (const f of frames) {
      for (const page of decodeRecord(f.body).pages) {
        if (page.actor !== actor) continue;
        for (const event of page.events()) if (keep(event)) yield { event, bytesRead: scan.bytesRead, bytesTotal: scan.bytesTotal };
      }
    }
  }
  if (scan.stop) onStop?.(scan.stop);
}
