/**
 * Retention of the journal's history: the segments before a compaction's cut are the node's history (for
 * `replay`), not needed to recover. Once every one of them is older than the retention (`--retain`; by its mtime,
 * the time of its last record) they are removed, down to a segment that has a base (the checkpoint cut where it
 * starts, checkpoint.ts), so `replay` can start there; never the segment the newest checkpoint needs or any after it.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { keepAsBase, readBase, readCheckpoint } from './checkpoint.ts';
import { JOURNAL_DIR } from './constants.ts';
import { listSegments, segmentName } from './journal.ts';

export interface HistoryPruneReport {
  /** The segments removed, ascending (empty: nothing was old enough). */
  readonly segments: number[];
  readonly bytes: number;
  /** The oldest segment kept, and when its base was cut: history before that is gone. */
  readonly from: number | null;
  readonly before: number | null;
  /** A line for the log when something was removed. */
  readonly note?: string;
}

const BASE_RE = /^(\d{10})\.base\.json$/;
const NOTHING: HistoryPruneReport = { segments: [], bytes: 0, from: null, before: null };

async function syncDir(dir: string): Promise<void> {
  const d = await fs.open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** Removes the journal segments older than `retainMs` (see the module comment); 0 keeps everything. */
export async function pruneHistory(dataDir: string, retainMs: number, now: number): Promise<HistoryPruneReport> {
  if (retainMs <= 0) return NOTHING;
  const dir = path.join(dataDir, JOURNAL_DIR);
  const cp = await readCheckpoint(dataDir);
  if (!cp) return NOTHING; // never compacted: one segment, the live one
  const cutoff = now - retainMs;
  const segments = await listSegments(dir);
  const sizes = new Map<number, number>();
  let keepFrom: number | null = null;
  for (let i = 1; i < segments.length; i += 1) {
    const k = segments[i]!;
    if (k > cp.segment) break; // recovery needs the newest checkpoint's segment and every one after it
    const prev = await fs.stat(path.join(dir, segmentName(segments[i - 1]!)));
    if (prev.mtimeMs >= cutoff) break; // history this young stays, and so does everything after it
    sizes.set(segments[i - 1]!, prev.size);
    if (k === cp.segment || (await readBase(dataDir, k).catch(() => undefined))) keepFrom = k;
  }
  if (keepFrom === null) return NOTHING;
  if (keepFrom === cp.segment && !(await readBase(dataDir, keepFrom).catch(() => undefined))) await keepAsBase(dataDir, keepFrom); // a data dir from before bases
  const base = await readBase(dataDir, keepFrom);
  if (!base) return NOTHING;
  await syncDir(dir); // the base is on disk before anything it stands in for goes
  const removed = segments.filter((s) => s < keepFrom!);
  let bytes = 0;
  for (const s of removed) {
    await fs.rm(path.join(dir, segmentName(s)), { force: true });
    bytes += sizes.get(s) ?? 0;
  }
  for (const name of await fs.readdir(dir)) {
    const n = BASE_RE.exec(name)?.[1];
    if (n !== undefined && Number(n) < keepFrom) await fs.rm(path.join(dir, name), { force: true });
  }
  await syncDir(dir);
  const which = removed.length === 1 ? `segment ${removed[0]}` : `segments ${removed[0]}-${removed.at(-1)}`;
  const when = base.createdAt === undefined ? '' : ` before ${new Date(base.createdAt).toISOString()}`;
  const note = `retention: removed journal ${which} (${(bytes / 1e6).toFixed(1)} MB, the history${when}); replay starts at segment ${keepFrom}`;
  return { segments: removed, bytes, from: keepFrom, before: base.createdAt ?? null, note };
}
