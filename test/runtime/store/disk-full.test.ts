// The store on a real full disk: a 1 MiB tmpfs mounted by the test (these machines run as root; where mount is
// refused the suite says so and skips). A group commit the disk cannot hold is cut off again: its writers hear the
// error and nothing they were told failed comes back after a reopen. The store then takes no more writes (its
// in-memory tables already hold the failed writes) even once space returns; reopened, it works again. A compaction
// whose checkpoint does not fit fails without taking the store down or leaving its temp file.
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { LoggedEvent } from '../../../actors/event-log.ts';
import { DexieEventLog } from '../../../runtime/store/dexie-event-log.ts';
import { JOURNAL_DIR } from '../../../runtime/store/constants.ts';
import { listSegments } from '../../../runtime/store/journal.ts';

interface Ctx {
  tmp: string;
  mount?: string;
  stores: DexieEventLog[];
}

const BIG = 64 * 1024 * 1024;
const PAGE = 4096;

/** An event of about `bytes` of JSON. */
const big = (seq: number, bytes = 2000): LoggedEvent => ({ seq, ts: 1_700_000_000_000 + seq, type: 'tick', origin: 'api', payload: { type: 'tick', n: seq, pad: 'x'.repeat(bytes) } });
const seqsOf = (events: readonly LoggedEvent[]) => events.map((e) => e.seq);

/** Fills the disk under `file` to the last byte, then frees `leave` bytes of it. */
async function fill(file: string, leave: number): Promise<void> {
  const fh = await fs.open(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  let size = 0;
  try {
    for (;;) {
      const { bytesWritten } = await fh.write(chunk, 0, chunk.length, size);
      size += bytesWritten;
      if (bytesWritten < chunk.length) break;
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  }
  // whole pages only: what is left in the last one is not counted as free
  for (let piece = PAGE; ; piece = Math.max(1, piece >> 1)) {
    try {
      const { bytesWritten } = await fh.write(Buffer.alloc(piece, 1), 0, piece, size);
      size += bytesWritten;
    } catch {
      if (piece === 1) break;
    }
  }
  await fh.truncate(Math.max(0, size - leave));
  await fh.close();
}

async function open(ctx: Ctx, dataDir: string, compactBytes = BIG): Promise<DexieEventLog> {
  const { store } = await DexieEventLog.open({ dataDir, compactBytes });
  ctx.stores.push(store);
  return store;
}

const DiskFull = suite<Ctx>('store: a full disk (a 1 MiB tmpfs)', { tmp: '', stores: [] });

DiskFull.before(async (ctx) => {
  ctx.tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'dms-store-full-'));
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', ctx.tmp], { encoding: 'utf8' });
  if (m.status !== 0) {
    console.log(`SKIP store on a full disk: cannot mount a tmpfs (${(m.stderr || m.error?.message || `exit ${m.status}`).trim()}); run as root to test it`);
    return;
  }
  ctx.mount = ctx.tmp;
});

DiskFull.after.each(async (ctx) => {
  for (const s of ctx.stores.splice(0)) await s.close().catch(() => {});
  if (ctx.mount) for (const name of await fs.readdir(ctx.mount)) await fs.rm(path.join(ctx.mount, name), { recursive: true, force: true });
});

DiskFull.after(async (ctx) => {
  if (ctx.mount) spawnSync('umount', ['-l', ctx.mount]);
  await fs.rm(ctx.tmp, { recursive: true, force: true });
});

DiskFull('a commit the disk cannot hold is cut off: its writers hear why, none of it comes back, the store stays stopped until reopened', async (ctx) => {
  if (!ctx.mount) return;
  const dataDir = path.join(ctx.mount, 'data');
  const filler = path.join(ctx.mount, 'fill.bin');
  const store = await open(ctx, dataDir);
  await store.register({ id: 'a', kind: 'counter', input: null, createdAt: 1 });
  const acked: number[] = [];
  for (let seq = 1; seq <= 3; seq += 1) {
    await store.append('a', [big(seq)]);
    acked.push(seq);
  }
  await fill(filler, 4 * PAGE); // room for a few of the 40 records below, not for all of them

  const attempts = Array.from({ length: 40 }, (_, i) => 4 + i);
  const results = await Promise.allSettled(attempts.map((seq) => store.append('a', [big(seq)])));
  const failed: number[] = [];
  for (const [i, r] of results.entries()) {
    if (r.status === 'fulfilled') acked.push(attempts[i]!);
    else {
      failed.push(attempts[i]!);
      const e = r.reason as Error;
      assert.is(e.name, 'JournalWriteError', e.stack);
      assert.match(e.message, /ENOSPC|no space/i);
      assert.match(e.message, /cut off .* takes no more writes/);
    }
  }
  assert.ok(failed.length > 0, 'the disk was full, yet every write was acknowledged');

  await fs.rm(filler); // space returns
  const late = await store.append('a', [big(100)]).then(() => null, (e: Error) => e);
  assert.ok(late, 'the stopped store acknowledged a write');
  assert.match(late.message, /takes no more writes/);
  const meta = await store.putMeta('k', 1).then(() => null, (e: Error) => e);
  assert.match(String(meta?.message), /takes no more writes/, 'every kind of write is refused');
  assert.is(await store.getMeta('k'), undefined, 'a refused write does not reach the in-memory tables');
  await store.close();

  const again = await open(ctx, dataDir);
  assert.equal(seqsOf(await again.eventsAfter('a', 0)), acked.sort((x, y) => x - y), `only what was acknowledged comes back (failed: ${failed.join(' ')})`);
  assert.equal(await again.actor('a'), { id: 'a', kind: 'counter', input: null, createdAt: 1 });
  await again.append('a', [big(200)]);
  await again.close();
  const third = await open(ctx, dataDir);
  assert.equal(seqsOf(await third.eventsAfter('a', 0)), [...acked, 200], 'reopened once the disk has room, the store works again');
});

DiskFull('a checkpoint that does not fit fails on its own: the store goes on, no temp file is left, nothing is lost', async (ctx) => {
  if (!ctx.mount) return;
  const dataDir = path.join(ctx.mount, 'data');
  const filler = path.join(ctx.mount, 'fill.bin');
  const store = await open(ctx, dataDir, 6000);
  await store.register({ id: 'a', kind: 'counter', input: null, createdAt: 1 });
  await store.append('a', [big(1, 2400)]);
  await store.append('a', [big(2, 2400)]); // the segment is now ~5.3 kB: two pages, the second with room left
  await fill(filler, PAGE);
  await store.append('a', [big(3, 2400)]); // fits the segment's pages; past 6000 bytes it starts a compaction
  assert.ok(store.stats.compactionFailures > 0 || (await fs.stat(path.join(dataDir, JOURNAL_DIR, '0000000001.log'))).size <= 2 * PAGE, 'the test\'s records fit two pages');
  for (let i = 0; i < 100 && store.stats.compactionFailures === 0; i += 1) await new Promise((r) => setTimeout(r, 20));
  assert.is(store.stats.compactionFailures, 1, `the checkpoint (~8 kB) cannot fit one free page: ${JSON.stringify(store.stats)}`);
  assert.match(String(store.stats.lastCompactionError), /ENOSPC|no space/i);
  assert.equal((await fs.readdir(dataDir)).filter((n) => n.includes('checkpoint')), [], 'no checkpoint and no temp file of one');
  await store.append('a', [big(4, 100)]); // the freed page takes the next record, in the new segment
  assert.equal(await listSegments(path.join(dataDir, JOURNAL_DIR)), [1, 2]);
  await store.close();
  await fs.rm(filler);
  const again = await open(ctx, dataDir);
  assert.equal(seqsOf(await again.eventsAfter('a', 0)), [1, 2, 3, 4]);
});

DiskFull.run();
