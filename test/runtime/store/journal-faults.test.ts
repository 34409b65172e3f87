// The journal when a group commit fails (faults injected into its file handles): what the commit wrote is cut off
// again, in the segment it began in and in any segment it started, so nothing a writer was told failed is read back;
// when the cut fails too, the journal says so and acknowledges nothing afterwards, even once the disk recovers.
import { type FileHandle, mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Journal, type JournalWriteError, listSegments, readSegments } from '../../../runtime/store/journal.ts';

interface Ctx {
  dir: string;
  journals: Journal[];
}

type Fault = () => Error | null;
type Faults = Partial<Record<'write' | 'datasync' | 'truncate', Fault>>;

const eio = (what: string) => Object.assign(new Error(`EIO: i/o error, ${what}`), { code: 'EIO' });
const rec = (i: number) => ({ i, body: `record ${i}` });

/** A file handle whose methods named in `faults` first ask the fault (null: do the real thing). */
function faulty(fh: FileHandle, faults: Faults): FileHandle {
  return new Proxy(fh, {
    get(target, key) {
      const fault = faults[key as keyof Faults];
      const real = Reflect.get(target, key) as unknown;
      if (typeof real !== 'function') return real;
      if (!fault) return real.bind(target);
      return async (...args: unknown[]) => {
        const e = fault();
        if (e) throw e;
        return (real as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/** A journal whose segment `n` handles get the faults of `faults(n)`. */
function journalWith(ctx: Ctx, faults: (segment: number) => Faults = () => ({})): Journal {
  const j = new Journal({ dir: ctx.dir, openFile: async (file) => faulty(await open(file, 'a', 0o600), faults(Number(path.basename(file, '.log')))) });
  ctx.journals.push(j);
  return j;
}

async function records(dir: string): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const seg of readSegments(dir, await listSegments(dir))) out.push(...seg.records);
  return out;
}

const Faults = suite<Ctx>('journal: a failed group commit', { dir: '', journals: [] });
Faults.before.each(async (ctx) => {
  ctx.dir = await mkdtemp(path.join(os.tmpdir(), 'dms-journal-fault-'));
  ctx.journals = [];
});
Faults.after.each(async (ctx) => {
  for (const j of ctx.journals) await j.close().catch(() => {});
  await rm(ctx.dir, { recursive: true, force: true });
});

Faults('a commit that fails in the segment it started is cut off in both: the records before it are all that is read back', async (ctx) => {
  let failNew = false;
  const j = journalWith(ctx, (n) => (n === 2 ? { write: () => (failNew ? eio('write') : null) } : {}));
  await j.open();
  await j.append(rec(0));
  await j.append(rec(1));
  failNew = true;
  // one commit: two records for segment 1 (written and synced), the switch, then a record segment 2 cannot take
  j.enqueue(rec(2));
  j.enqueue(rec(3));
  j.rotate();
  j.enqueue(rec(4));
  const e = (await j.durable().then(() => null, (err: Error) => err)) as JournalWriteError | null;
  assert.ok(e, 'the failed commit was acknowledged');
  assert.is(e.name, 'JournalWriteError');
  assert.is(e.rolledBack, true);
  assert.match(e.message, /EIO.*cut off .*segment 0000000001\.log byte \d+.* takes no more writes/);
  assert.equal(await listSegments(ctx.dir), [1], 'the segment the failed commit started is gone');
  assert.equal(await records(ctx.dir), [rec(0), rec(1)], 'the failed commit\'s records in segment 1 were cut off too');
  assert.throws(() => j.enqueue(rec(5)), /takes no more writes/);
  const later = await j.durable().then(() => null, (err: Error) => err);
  assert.match(String(later?.message), /takes no more writes/);
  await j.close();

  const again = journalWith(ctx);
  await again.open();
  await again.append(rec(6));
  assert.equal(await records(ctx.dir), [rec(0), rec(1), rec(6)], 'reopened, the journal appends after the last acknowledged record');
});

Faults('when cutting back fails too, the journal says so and acknowledges nothing later, even once the disk recovers', async (ctx) => {
  let broken = false;
  const j = journalWith(ctx, () => ({ datasync: () => (broken ? eio('fdatasync') : null), truncate: () => (broken ? eio('ftruncate') : null) }));
  await j.open();
  await j.append(rec(0));
  broken = true; // the write lands, its fdatasync fails, and so does the truncate after it
  const e = (await j.append(rec(1)).then(() => null, (err: Error) => err)) as JournalWriteError | null;
  assert.ok(e);
  assert.is(e.rolledBack, false);
  assert.match(e.message, /fdatasync.*cutting it back .* failed too: EIO: i\/o error, ftruncate; records reported as failed may be replayed at the next start\. The store takes no more writes/);
  broken = false;
  assert.throws(() => j.enqueue(rec(2)), /failed too/);
  const later = await j.durable().then(() => null, (err: Error) => err);
  assert.match(String(later?.message), /failed too/, 'a later durable() is refused, not acknowledged');
  assert.throws(() => j.rotate(), /failed too/);
});

Faults('a commit whose fdatasync fails is cut off in place and the journal stops', async (ctx) => {
  let failures = 0; // fdatasync fails this many more times
  const j = journalWith(ctx, () => ({ datasync: () => (failures-- > 0 ? eio('fdatasync') : null) }));
  await j.open();
  await j.append(rec(0));
  const size = j.segmentBytes;
  failures = 1;
  const writers = [j.append(rec(1)), j.append(rec(2)), j.append(rec(3))].map((p) => p.then(() => 'ok', (err: Error) => err.name));
  assert.equal(await Promise.all(writers), ['JournalWriteError', 'JournalWriteError', 'JournalWriteError']);
  assert.is(j.failure?.rolledBack, true);
  assert.is(j.segmentBytes, size);
  assert.equal(await records(ctx.dir), [rec(0)]);
});

Faults.run();
