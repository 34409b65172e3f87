/**
 * One node per data dir: `dms.lock` holds the pid of the process that owns the dir. A second process finds a live
 * owner and refuses to start (it would truncate the first one's live journal segment as a torn tail and overwrite
 * its checkpoint and api.json). A lock left by a process that died (kill -9, power loss) is stale and taken over.
 *
 * Taking it is atomic: our pid goes into a private temp file that is hard-linked to `dms.lock` (link fails if the
 * name exists). A stale lock is first renamed away, which only one contender can do to that file; the contender
 * checks that what it moved is the stale lock it judged, and puts it back otherwise.
 *
 * The data dir's modes are tightened at every start too: 0700 for the dir and its directories, 0600 for its
 * files (job env, keys and tokens live there).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.ts';
import { pidAlive } from '../pids.ts';

export const LOCK_FILE = 'dms.lock';

export class DataDirLockedError extends UsageError {
  override name = 'DataDirLockedError';
  constructor(
    readonly dataDir: string,
    readonly holder: number,
  ) {
    super(`data dir ${dataDir} is in use by another node (pid ${holder}); stop it first, or give this node its own --data-dir. If pid ${holder} is not a DMS node, remove ${path.join(dataDir, LOCK_FILE)}`);
  }
}

export interface DataDirLock {
  readonly file: string;
  /** Removes the lock if it is still ours. */
  release(): Promise<void>;
}

async function holderOf(file: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await fs.readFile(file, 'utf8')).trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Takes the data dir for this process, or throws DataDirLockedError naming the live holder. */
export async function lockDataDir(dataDir: string, pid = process.pid): Promise<DataDirLock> {
  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, LOCK_FILE);
  const tmp = `${file}.${pid}.tmp`;
  await fs.writeFile(tmp, `${pid}\n`, { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 5; attempt += 1) {
      try {
        await fs.link(tmp, file);
        return { file, release: () => release(file, pid) };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const holder = await holderOf(file);
      if (holder === undefined) continue; // released meanwhile: try again
      if (holder === pid) return { file, release: () => release(file, pid) };
      if (holder > 0 && pidAlive(holder)) throw new DataDirLockedError(dataDir, holder);
      await takeStale(file, holder, pid);
    }
    throw new Error(`could not take ${file}: it keeps changing hands`);
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

/** Moves a stale lock away; if what moved was not the lock judged stale (someone took it meanwhile), puts it back. */
async function takeStale(file: string, stale: number, pid: number): Promise<void> {
  const moved = `${file}.stale.${pid}`;
  try {
    await fs.rename(file, moved);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  const was = await holderOf(moved);
  if (was !== stale) await fs.link(moved, file).catch(() => {});
  await fs.rm(moved, { force: true });
}

async function release(file: string, pid: number): Promise<void> {
  if ((await holderOf(file).catch(() => undefined)) === pid) await fs.rm(file, { force: true });
}

/**
 * 0700 for the data dir and the directories in it, 0600 for the files, two levels down (deeper entries are
 * unreachable to others once these are closed; job output trees can be large). Symlinks are left alone.
 */
export async function tightenModes(dataDir: string, depth = 2): Promise<void> {
  await fs.chmod(dataDir, 0o700);
  const walk = async (dir: string, left: number): Promise<void> => {
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        await fs.chmod(p, 0o700);
        if (left > 1) await walk(p, left - 1);
      } else if (entry.isFile()) await fs.chmod(p, 0o600);
    }
  };
  await walk(dataDir, depth);
}
