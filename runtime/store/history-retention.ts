/**
 * Retention of the journal's history: the segments before a compaction's cut are the node's history (for
 * `replay`), not needed to recover. Once every one of them is older than the retention (`--retain`; by its mtime,
 * the time of its last record) they are removed, down to a segment that has a base (the checkpoint cut where it
 * starts, checkpoint.ts), so `replay` can start there; never the segment the newest checkpoint needs or any after it.
 * With a size (`--retain-history`), the oldest segments also go while the history is larger than that, so a node
 * under a flood of requests keeps a bounded data dir whatever the age of what it logged.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { baseName, keepAsBase, readBase, readCheckpoint } from './checkpoint.ts';
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

/** What history to keep: none older than `retainMs` (0: any age), and at most `maxBytes` of it (0: any size). */
export interface HistoryLimits {
  readonly retainMs: number;
  readonly maxBytes?: number;
}

/**
 * Removes the journal segments older than `retainMs`, and the oldest ones while the history (segments before the
 * newest checkpoint's, with their bases) holds more than `maxBytes` (see the module comment).
 */
export async function pruneHistory(dataDir: string, limits: HistoryLimits | number, now: number): Promise<HistoryPruneReport> {
  const { retainMs, maxBytes = 0 } = typeof limits === 'number' ? { retainMs: limits } : limits;
  if (retainMs <= 0 && maxBytes <= 0) return NOTHING;
  const dir = path.join(dataDir, JOURNAL_DIR);
  const cp = await readCheckpoint(dataDir);
  if (!cp) return NOTHING; // never compacted: one segment, the live one
  const cutoff = retainMs > 0 ? now - retainMs : -Infinity;
  const segments = await listSegments(dir);
  // what each history segment costs on disk (its base, a checkpoint of its own, counts with the segment it starts)
  const sizes = new Map<number, number>();
  const mtimes = new Map<number, number>();
  for (const k of segments) {
    if (k >= cp.segment) break;
    const st = await fs.stat(path.join(dir, segmentName(k)));
    const base = await fs.stat(path.join(dir, baseName(k))).then((b) => b.size, () => 0);
    sizes.set(k, st.size + base);
    mtimes.set(k, st.mtimeMs);
  }
  let history = [...sizes.values()].reduce((a, b) => a + b, 0);
  let keepFrom: number | null = null;
  for (let i = 1; i < segments.length; i += 1) {
    const k = segments[i]!;
    if (k > cp.segment) break; // recovery needs the newest checkpoint's segment and every one after it
    const prev = segments[i - 1]!;
    const tooOld = mtimes.get(prev)! < cutoff;
    const tooMuch = maxBytes > 0 && history > maxBytes;
    if (!tooOld && !tooMuch) break; // history this young and this small stays, and so does everything after it
    history -= sizes.get(prev)!;
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
  const why = maxBytes > 0 && retainMs > 0 ? `older than the retention or past the history's ${(maxBytes / 1e6).toFixed(0)} MB` : maxBytes > 0 ? `past the history's ${(maxBytes / 1e6).toFixed(0)} MB` : 'older than the retention';
  const note = `retention: removed journal ${which} (${(bytes / 1e6).toFixed(1)} MB, the history${when}, ${why}); replay starts at segment ${keepFrom}`;
  return { segments: removed, bytes, from: keepFrom, before: base.createdAt ?? null, note };
}
