/**
 * The node's full on-disk history: every journal segment, old ones included, read without opening the store
 * (for `replay`).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { LoggedEvent } from '../../actors/event-log.ts';
import { readJson } from '../files.ts';
import { CHECKPOINT_FILE, JOURNAL_DIR } from './constants.ts';
import { listSegments, readSegments, segmentName } from './journal.ts';
import type { JournaledPage, Mutation } from './journal-record.ts';
import type { DroppedRow } from './store-db.ts';

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
