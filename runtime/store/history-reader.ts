/**
 * The node's on-disk history: every journal segment still on disk, read without opening the store (for
 * `replay`). When retention removed the oldest segments (history-retention.ts), the history starts at the base of
 * the oldest segment kept: the checkpoint cut where it starts, which holds each live actor's record, its snapshot
 * and the events after it.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { VersionedSnapshot } from '../../actors/actor.protocol.ts';
import type { ActorRecord, LoggedEvent } from '../../actors/event-log.ts';
import { readJson } from '../files.ts';
import { type Checkpoint, baseName, readBase } from './checkpoint.ts';
import { CHECKPOINT_FILE, JOURNAL_DIR } from './constants.ts';
import { listSegments, readSegments, segmentName } from './journal.ts';
import type { JournaledPage, Mutation } from './journal-record.ts';
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

/** The events of one actor's pages in a list of mutations, in order. */
function* pageEvents(tx: readonly Mutation[], actor: string): Generator<LoggedEvent> {
  for (const m of tx) {
    if (m.t !== 'events' || (m.op !== 'add' && m.op !== 'put')) continue;
    for (const page of m.values as JournaledPage[]) if (page.actor === actor) yield* page.events;
  }
}

/**
 * Every event of one actor in the on-disk history, oldest first (for replay; reads segments lazily). With a
 * `base` (the oldest segments are gone), the history starts with the base's pages after the actor's snapshot there.
 */
export async function* historyOf(dataDir: string, actor: string, base?: Checkpoint): AsyncGenerator<{ event: LoggedEvent; bytesRead: number; bytesTotal: number }> {
  const dir = path.join(dataDir, JOURNAL_DIR);
  const segments = await listSegments(dir);
  let bytesTotal = 0;
  for (const s of segments) bytesTotal += (await fs.stat(path.join(dir, segmentName(s)))).size;
  let bytesRead = 0;
  const dropped = await droppedSeqs(dataDir, actor, segments);
  const after = base ? (actorAtBase(base, actor).snapshot?.seq ?? 0) : 0;
  if (base) {
    // a page is written once, so the base's pages and the segments' are disjoint; a page may straddle the snapshot
    const events = [...pageEvents(base.tx, actor)].sort((a, b) => a.seq - b.seq);
    for (const event of events) if (event.seq > after && !dropped.has(event.seq)) yield { event, bytesRead, bytesTotal };
  }
  for await (const seg of readSegments(dir, segments)) {
    bytesRead += seg.bytes;
    for (const r of seg.records) {
      for (const event of pageEvents((r as { tx: Mutation[] }).tx, actor)) if (event.seq > after && !dropped.has(event.seq)) yield { event, bytesRead, bytesTotal };
    }
  }
}
