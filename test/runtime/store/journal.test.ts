// The on-disk journal: framed records in numbered segments, group commit, segment cuts, and what open() does
// with a torn tail (cut it) and with damage in the middle (refuse, naming file and offset).
import { appendFile, mkdtemp, open, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Journal, frame, listSegments, parseSegment, readSegments, segmentName } from '../../../runtime/store/journal.ts';

interface Ctx {
  dir: string;
  journal?: Journal;
}

const rec = (i: number) => ({ i, body: `record ${i} ${'x'.repeat(i % 7)}`, nested: { n: i } });
const frameOf = (r: unknown) => frame(Buffer.from(JSON.stringify(r), 'utf8'));
const bytesOf = (rs: readonly unknown[]) => rs.reduce<number>((n, r) => n + frameOf(r).length, 0);

function journalSuite(title: string) {
  const s = suite<Ctx>(title);
  s.before.each(async (ctx) => {
    ctx.dir = await mkdtemp(path.join(os.tmpdir(), 'dms-journal-test-'));
    delete ctx.journal;
  });
  s.after.each(async (ctx) => {
    await ctx.journal?.close();
    await rm(ctx.dir, { recursive: true, force: true });
  });
  return s;
}

async function openJournal(ctx: Ctx) {
  await ctx.journal?.close();
  ctx.journal = new Journal({ dir: ctx.dir });
  return ctx.journal.open();
}

/** Writes records 0..n-1 in a closed journal and returns the first segment's path. */
async function writeRecords(ctx: Ctx, n: number): Promise<string> {
  await openJournal(ctx);
  for (let i = 0; i < n; i += 1) await ctx.journal!.append(rec(i));
  await ctx.journal!.close();
  delete ctx.journal;
  return path.join(ctx.dir, segmentName(1));
}

async function allRecords(dir: string): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const seg of readSegments(dir, await listSegments(dir))) out.push(...seg.records);
  return out;
}

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => rec(from + i));

// ---- round trip ----

const roundTrip = journalSuite('records survive close and reopen');

roundTrip('a fresh journal creates segment 1 and reports nothing to recover', async (ctx) => {
  const r = await openJournal(ctx);
  assert.equal(r, { segments: [], tornBytes: 0 });
  assert.is(ctx.journal!.segment, 1);
  assert.equal(await listSegments(ctx.dir), [1]);
});

roundTrip('appended records read back in order, byte-exact framing, after reopen', async (ctx) => {
  const file = await writeRecords(ctx, 25);
  assert.is((await stat(file)).size, bytesOf(range(25)));
  const r = await openJournal(ctx);
  assert.equal(r, { segments: [1], tornBytes: 0 });
  assert.is(ctx.journal!.segmentBytes, bytesOf(range(25)));
  assert.equal(await allRecords(ctx.dir), range(25));
});

roundTrip('appending after reopen continues the same segment', async (ctx) => {
  await writeRecords(ctx, 3);
  await openJournal(ctx);
  assert.is(ctx.journal!.segment, 1);
  await ctx.journal!.append(rec(3));
  await ctx.journal!.append(rec(4));
  assert.equal(await listSegments(ctx.dir), [1]);
  assert.equal(parseSegment(await readFile(path.join(ctx.dir, segmentName(1))), 'seg').records, range(5));
});

roundTrip('enqueue()d records are written by the next durable()', async (ctx) => {
  await openJournal(ctx);
  ctx.journal!.enqueue(rec(0));
  ctx.journal!.enqueueText(JSON.stringify(rec(1)));
  await ctx.journal!.durable();
  assert.equal(await allRecords(ctx.dir), range(2));
});

roundTrip('appending to a closed journal throws JournalClosedError', async (ctx) => {
  await openJournal(ctx);
  await ctx.journal!.close();
  assert.throws(() => ctx.journal!.enqueue(rec(0)), (e: Error) => e.name === 'JournalClosedError');
});

roundTrip.run();

// ---- group commit ----

const group = journalSuite('group commit: one sync covers many records');

group('1000 concurrent appends are all durable with far fewer syncs than records', async (ctx) => {
  await openJournal(ctx);
  const j = ctx.journal!;
  await Promise.all(range(1000).map((r) => j.append(r)));
  assert.is(j.stats.records, 1000);
  assert.is(j.stats.bytes, bytesOf(range(1000)));
  assert.ok(j.stats.syncs >= 1 && j.stats.syncs <= 10, `expected <= 10 syncs for 1000 records, got ${j.stats.syncs}`);
  assert.equal(await allRecords(ctx.dir), range(1000));
});

group('each append resolves only after its record is on disk', async (ctx) => {
  await openJournal(ctx);
  const j = ctx.journal!;
  const file = path.join(ctx.dir, segmentName(1));
  const sizes: number[] = [];
  await Promise.all(range(50).map((r, i) => j.append(r).then(async () => sizes[i] = (await stat(file)).size)));
  range(50).forEach((_, i) => assert.ok(sizes[i]! >= bytesOf(range(i + 1)), `record ${i} acked at file size ${sizes[i]}`));
});

group('sequential appends each get their own sync', async (ctx) => {
  await openJournal(ctx);
  for (const r of range(5)) await ctx.journal!.append(r);
  assert.equal(ctx.journal!.stats, { records: 5, syncs: 5, bytes: bytesOf(range(5)) });
});

group('onCommit is told the time of each group commit (the metrics\' dms_event_log_append_seconds)', async (ctx) => {
  const seconds: number[] = [];
  ctx.journal = new Journal({ dir: ctx.dir, onCommit: (s) => seconds.push(s) });
  await ctx.journal.open();
  const j = ctx.journal;
  for (const r of range(3)) await j.append(r);
  await Promise.all(range(200, 3).map((r) => j.append(r)));
  assert.is(seconds.length, j.stats.syncs, 'one timing per write + fdatasync');
  assert.ok(seconds.every((s) => s > 0 && s < 10), `plausible seconds: ${seconds.join(', ')}`);
});

group('short writes (the kernel taking fewer bytes than asked) are finished before the ack', async (ctx) => {
  // a fault fake: every FileHandle.write takes at most 7 bytes, as write(2) may when the disk is nearly full
  const probe = await open(path.join(ctx.dir, 'probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as { write: (buf: Buffer, offset?: number, length?: number, position?: number | null) => Promise<{ bytesWritten: number; buffer: Buffer }> };
  await probe.close();
  const write = proto.write;
  proto.write = function (this: unknown, buf: Buffer, offset = 0, length = buf.length - offset, position = null) {
    return write.call(this, buf, offset, Math.min(length, 7), position);
  };
  try {
    await openJournal(ctx);
    await Promise.all(range(20).map((r) => ctx.journal!.append(r)));
    await ctx.journal!.append(rec(20));
  } finally {
    proto.write = write;
  }
  assert.is((await stat(path.join(ctx.dir, segmentName(1)))).size, bytesOf(range(21)));
  assert.equal(await openJournal(ctx), { segments: [1], tornBytes: 0 });
  assert.equal(await allRecords(ctx.dir), range(21));
});

group.run();

// ---- rotate ----

const rotation = journalSuite('rotate() cuts the journal exactly where it is called');

rotation('records queued before rotate() go to the old segment, later ones to the new one', async (ctx) => {
  await openJournal(ctx);
  const j = ctx.journal!;
  const before = range(30).map((r) => j.append(r));
  assert.is(j.rotate(), 2);
  assert.is(j.segment, 2);
  const after = range(20, 30).map((r) => j.append(r));
  await Promise.all([...before, ...after]);
  assert.equal(await listSegments(ctx.dir), [1, 2]);
  const segs: { segment: number; records: unknown[] }[] = [];
  for await (const s of readSegments(ctx.dir, [1, 2])) segs.push(s);
  assert.equal(segs.map((s) => s.segment), [1, 2]);
  assert.equal(segs[0]!.records, range(30));
  assert.equal(segs[1]!.records, range(20, 30));
});

rotation('two rotations in one batch leave an empty middle segment; reopen appends to the newest', async (ctx) => {
  await openJournal(ctx);
  const j = ctx.journal!;
  const p = [j.append(rec(0))];
  j.rotate();
  j.rotate();
  p.push(j.append(rec(1)));
  await Promise.all(p);
  assert.equal(await listSegments(ctx.dir), [1, 2, 3]);
  assert.is((await stat(path.join(ctx.dir, segmentName(2)))).size, 0);
  const r = await openJournal(ctx);
  assert.equal(r, { segments: [1, 2, 3], tornBytes: 0 });
  await ctx.journal!.append(rec(2));
  assert.equal(parseSegment(await readFile(path.join(ctx.dir, segmentName(3))), 's3').records, [rec(1), rec(2)]);
  assert.equal(await allRecords(ctx.dir), range(3));
});

rotation.run();

// ---- torn tail ----

const torn = journalSuite('a torn last record is cut off at open, never misread');

/** Reopens after damage, and checks the intact records, the file length and tornBytes. */
async function expectCut(ctx: Ctx, file: string, intact: number, tornBytes: number) {
  const r = await openJournal(ctx);
  assert.equal(r, { segments: [1], tornBytes });
  assert.is((await stat(file)).size, bytesOf(range(intact)), 'file truncated to the intact records');
  assert.is(ctx.journal!.segmentBytes, bytesOf(range(intact)));
  assert.equal(await allRecords(ctx.dir), range(intact));
  // the journal goes on cleanly after the cut
  await ctx.journal!.append(rec(100));
  assert.equal(await allRecords(ctx.dir), [...range(intact), rec(100)]);
}

torn('the last frame cut a few bytes short', async (ctx) => {
  const file = await writeRecords(ctx, 5);
  const size = (await stat(file)).size;
  await truncate(file, size - 3);
  await expectCut(ctx, file, 4, frameOf(rec(4)).length - 3);
});

torn('the last frame cut inside its header', async (ctx) => {
  const file = await writeRecords(ctx, 5);
  await truncate(file, bytesOf(range(4)) + 5);
  await expectCut(ctx, file, 4, 5);
});

torn('half a frame appended after intact records', async (ctx) => {
  const file = await writeRecords(ctx, 3);
  const half = frameOf(rec(3)).subarray(0, 20);
  await appendFile(file, half);
  await expectCut(ctx, file, 3, 20);
});

torn('zero bytes after the last record (a file extended but never written)', async (ctx) => {
  const file = await writeRecords(ctx, 3);
  await appendFile(file, Buffer.alloc(4096));
  await expectCut(ctx, file, 3, 4096);
});

torn('a full-length last frame whose payload does not match its checksum', async (ctx) => {
  const file = await writeRecords(ctx, 4);
  const buf = await readFile(file);
  const at = buf.length - 2;
  buf[at] = buf[at]! ^ 0xff;
  await writeFile(file, buf);
  await expectCut(ctx, file, 3, frameOf(rec(3)).length);
});

torn('a segment holding only a torn frame is cut to empty', async (ctx) => {
  await openJournal(ctx);
  await ctx.journal!.close();
  delete ctx.journal;
  const file = path.join(ctx.dir, segmentName(1));
  await writeFile(file, frameOf(rec(0)).subarray(0, 11));
  await expectCut(ctx, file, 0, 11);
});

torn('parseSegment reports the same cut without changing anything', async (ctx) => {
  const buf = Buffer.concat([...range(3).map(frameOf), frameOf(rec(3)).subarray(0, 9)]);
  const r = parseSegment(buf, 'mem');
  assert.equal(r, { records: range(3), validBytes: bytesOf(range(3)), tornBytes: 9 });
});

torn.run();

// ---- damage in the middle ----

const damage = journalSuite('damage in the middle is reported, not skipped');

async function expectCorrupt(ctx: Ctx, file: string, offset: number) {
  const sizeBefore = (await stat(file)).size;
  const j = new Journal({ dir: ctx.dir });
  let err: Error | undefined;
  await j.open().catch((e: Error) => (err = e));
  assert.ok(err, 'open() must reject');
  assert.is(err!.name, 'JournalCorruptError');
  assert.ok(err!.message.includes(file), `message names the file: ${err!.message}`);
  assert.ok(err!.message.includes(`byte ${offset}`), `message names offset ${offset}: ${err!.message}`);
  assert.is((err as Error & { offset: number }).offset, offset);
  assert.is((await stat(file)).size, sizeBefore, 'a damaged journal is left as it was');
}

damage('a flipped byte inside an early record with valid records after it', async (ctx) => {
  const file = await writeRecords(ctx, 6);
  const buf = await readFile(file);
  const second = frameOf(rec(0)).length;
  buf[second + 8 + 3] = buf[second + 8 + 3]! ^ 0x01;
  await writeFile(file, buf);
  await expectCorrupt(ctx, file, second);
});

damage('a damaged length field in the first record', async (ctx) => {
  const file = await writeRecords(ctx, 4);
  const buf = await readFile(file);
  buf.writeUInt32LE(0x7fffffff, 0);
  await writeFile(file, buf);
  await expectCorrupt(ctx, file, 0);
});

damage('a zeroed hole in the middle (lost page) with intact records after it', async (ctx) => {
  const file = await writeRecords(ctx, 6);
  const buf = await readFile(file);
  const at = bytesOf(range(2));
  buf.fill(0, at, at + frameOf(rec(2)).length);
  await writeFile(file, buf);
  await expectCorrupt(ctx, file, at);
});

damage('damage in an older segment makes readSegments throw for that segment', async (ctx) => {
  await openJournal(ctx);
  const j = ctx.journal!;
  await Promise.all(range(3).map((r) => j.append(r)));
  j.rotate();
  await j.append(rec(3));
  await j.close();
  delete ctx.journal;
  const old = path.join(ctx.dir, segmentName(1));
  const buf = await readFile(old);
  buf[10] = buf[10]! ^ 0x20;
  await writeFile(old, buf);
  // opening only looks at the newest segment; reading the history finds the damage
  assert.equal(await openJournal(ctx), { segments: [1, 2], tornBytes: 0 });
  let err: Error | undefined;
  await allRecords(ctx.dir).catch((e: Error) => (err = e));
  assert.is(err?.name, 'JournalCorruptError');
  assert.ok(err!.message.includes(old) && err!.message.includes('byte 0'), err!.message);
});

damage.run();
