/**
 * Checkpoints: compaction writes one of the (small) live tables and starts a new journal segment, so recovery
 * loads the newest checkpoint and replays only the segments from its cut on.
 *
 * Each checkpoint is also kept beside the segment it starts, as that segment's base (`journal/NNNNNNNNNN.base.json`,
 * a hard link to the file compaction wrote, so no second write): once retention removes the segments before it,
 * `replay` starts there. A base goes with the segments before it; with nothing removed every base stays.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { type Clock, realClock } from '../clock.ts';
import { readJson, writeFileDurable } from '../files.ts';
import { CHECKPOINT_FILE, JOURNAL_DIR } from './constants.ts';
import type { Journal } from './journal.ts';
import { type Mutation, encodeTx } from './journal-record.ts';
import { type StoreDb, TABLES } from './store-db.ts';

const CHECKPOINT_FORMAT = 1;

/** The checkpoint file: every table as puts, and the first journal segment written after it. */
export interface Checkpoint {
  readonly format: number;
  readonly segment: number;
  /** When it was cut (the store's clock). */
  readonly createdAt?: number;
  readonly tx: Mutation[];
}

function checkFormat(cp: Checkpoint | undefined): Checkpoint | undefined {
  if (cp && cp.format !== CHECKPOINT_FORMAT) throw Object.assign(new Error(`checkpoint format ${cp.format} is not ${CHECKPOINT_FORMAT}; this build cannot read it`), { name: 'CheckpointFormatError' });
  return cp;
}

/** The data dir's checkpoint, or undefined if there is none; throws `CheckpointFormatError` on another format. */
export async function readCheckpoint(dataDir: string): Promise<Checkpoint | undefined> {
  return checkFormat((await readJson(path.join(dataDir, CHECKPOINT_FILE))) as Checkpoint | undefined);
}

/** The base file of a segment: the checkpoint cut where the segment starts. */
export function baseName(segment: number): string {
  return `${String(segment).padStart(10, '0')}.base.json`;
}

/** The checkpoint kept as the base of `segment`, or undefined if there is none. */
export async function readBase(dataDir: string, segment: number): Promise<Checkpoint | undefined> {
  const cp = checkFormat((await readJson(path.join(dataDir, JOURNAL_DIR, baseName(segment)))) as Checkpoint | undefined);
  return cp?.segment === segment ? cp : undefined;
}

/**
 * Keeps the data dir's checkpoint (which starts `segment`) as that segment's base: a hard link, or a copy where
 * links are refused. Replaces a base left by an earlier attempt.
 */
export async function keepAsBase(dataDir: string, segment: number): Promise<void> {
  const base = path.join(dataDir, JOURNAL_DIR, baseName(segment));
  await fs.rm(base, { force: true });
  await fs.link(path.join(dataDir, CHECKPOINT_FILE), base).catch(() => fs.copyFile(path.join(dataDir, CHECKPOINT_FILE), base));
}

/**
 * Writes a checkpoint of every table and starts a new journal segment, cut exactly between the
 * transactions the checkpoint holds and those after it.
 */
export async function writeCheckpoint(db: StoreDb, journal: Journal, dataDir: string, clock: Clock = realClock): Promise<void> {
  let segment = 0;
  const puts: Mutation[] = [];
  await db.transaction('r', TABLES.map((t) => db.table(t)), async () => {
    puts.push({ t: TABLES[0], op: 'put', values: await db.table(TABLES[0]).toArray() });
    // The read transaction is now active: every earlier write has committed (and is queued in the
    // journal) and no later one can commit until it ends, so the segment boundary falls exactly here.
    segment = journal.rotate();
    for (const t of TABLES.slice(1)) puts.push({ t, op: 'put', values: await db.table(t).toArray() });
  });
  await journal.durable();
  const text = `{"format":${CHECKPOINT_FORMAT},"segment":${segment},"createdAt":${clock.now()},"tx":${encodeTx(puts).slice('{"tx":'.length, -1)}}`;
  const file = path.join(dataDir, CHECKPOINT_FILE);
  try {
    await writeFileDurable(file, text);
  } catch (e) {
    // a full disk: leave no half-written temp file behind (files.ts names it so), and keep the older checkpoint
    await fs.rm(`${file}.${process.pid}.tmp`, { force: true });
    throw e;
  }
  // without a base this segment cannot start a replay, so retention keeps the segments before it: no harm done
  await keepAsBase(dataDir, segment).catch(() => {});
}
