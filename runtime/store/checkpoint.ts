/**
 * Checkpoints: compaction writes one of the (small) live tables and starts a new journal segment, so recovery
 * loads the newest checkpoint and replays only the segments from its cut on. Old segments stay on disk as the
 * node's full history.
 */
import path from 'node:path';
import { type Clock, realClock } from '../clock.ts';
import { readJson, writeFileDurable } from '../files.ts';
import { CHECKPOINT_FILE } from './constants.ts';
import type { Journal } from './journal.ts';
import { type Mutation, encodeTx } from './journal-record.ts';
import { type StoreDb, TABLES } from './store-db.ts';

const CHECKPOINT_FORMAT = 1;

/** The checkpoint file: every table as puts, and the first journal segment written after it. */
export interface Checkpoint {
  readonly format: number;
  readonly segment: number;
  readonly tx: Mutation[];
}

/** The data dir's checkpoint, or undefined if there is none; throws `CheckpointFormatError` on another format. */
export async function readCheckpoint(dataDir: string): Promise<Checkpoint | undefined> {
  const cp = (await readJson(path.join(dataDir, CHECKPOINT_FILE))) as Checkpoint | undefined;
  if (cp && cp.format !== CHECKPOINT_FORMAT) throw Object.assign(new Error(`checkpoint format ${cp.format} is not ${CHECKPOINT_FORMAT}; this build cannot read it`), { name: 'CheckpointFormatError' });
  return cp;
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
  await writeFileDurable(path.join(dataDir, CHECKPOINT_FILE), text);
}
