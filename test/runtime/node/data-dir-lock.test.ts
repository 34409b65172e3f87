// One node per data dir: the pid lock (live holder refused, stale lock taken over, release) and the modes.
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LOCK_FILE, lockDataDir, tightenModes } from '../../../runtime/node/data-dir-lock.ts';

const tmpDir = () => fs.mkdtemp(path.join(os.tmpdir(), 'dms-lock-'));

/** The pid of a process that has exited (so surely not alive). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => child.on('exit', r));
  return child.pid!;
}

test('the first process takes the lock; a second one is refused naming the holder; release frees it', async () => {
  const dir = await tmpDir();
  const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)']);
  try {
    const held = await lockDataDir(dir, sleeper.pid!);
    assert.is((await fs.readFile(held.file, 'utf8')).trim(), String(sleeper.pid));
    const err = await lockDataDir(dir).then(() => null, (e: Error) => e);
    assert.is(err?.name, 'DataDirLockedError');
    assert.match(err!.message, `pid ${sleeper.pid}`);
    assert.is((err as unknown as { exitCode: number }).exitCode, 2);
    assert.is((await fs.readFile(held.file, 'utf8')).trim(), String(sleeper.pid), 'the refused process touched the lock');
    await held.release();
    const mine = await lockDataDir(dir);
    assert.is((await fs.readFile(mine.file, 'utf8')).trim(), String(process.pid));
    await mine.release();
    assert.equal(await fs.readdir(dir), [], 'lock or temp files were left behind');
  } finally {
    sleeper.kill('SIGKILL');
  }
});

test('a lock left by a dead process is stale and taken over', async () => {
  const dir = await tmpDir();
  await fs.writeFile(path.join(dir, LOCK_FILE), `${await deadPid()}\n`);
  const lock = await lockDataDir(dir);
  assert.is((await fs.readFile(lock.file, 'utf8')).trim(), String(process.pid));
  assert.equal((await fs.readdir(dir)).sort(), [LOCK_FILE]);
  await lock.release();
});

test('a garbled lock file is treated as stale', async () => {
  const dir = await tmpDir();
  await fs.writeFile(path.join(dir, LOCK_FILE), 'not a pid');
  const lock = await lockDataDir(dir);
  assert.is((await fs.readFile(lock.file, 'utf8')).trim(), String(process.pid));
  await lock.release();
});

test('release leaves a lock that someone else holds now', async () => {
  const dir = await tmpDir();
  const lock = await lockDataDir(dir);
  await fs.writeFile(lock.file, '1\n'); // pid 1 (init) took it over
  await lock.release();
  assert.is((await fs.readFile(lock.file, 'utf8')).trim(), '1');
});

test('tightenModes: 0700 dirs and 0600 files, two levels down', async () => {
  const dir = await tmpDir();
  await fs.chmod(dir, 0o755);
  await fs.mkdir(path.join(dir, 'allocations', 'a1'), { recursive: true, mode: 0o755 });
  await fs.writeFile(path.join(dir, 'checkpoint.json'), '{}', { mode: 0o644 });
  await fs.writeFile(path.join(dir, 'allocations', 'x.json'), '{}', { mode: 0o644 });
  await tightenModes(dir);
  const mode = async (p: string) => (await fs.stat(path.join(dir, p))).mode & 0o777;
  assert.is(await mode('.'), 0o700);
  assert.is(await mode('checkpoint.json'), 0o600);
  assert.is(await mode('allocations'), 0o700);
  assert.is(await mode('allocations/a1'), 0o700);
  assert.is(await mode('allocations/x.json'), 0o600);
});

test.run();
