// The history as replay streams it (journal-scan.ts, history-records.ts): frames read a chunk at a time, a record
// bigger than a chunk, a torn tail or damage ending the read where it is (what came before is kept and the place is
// said), and big event pages read from their header: the same actor, seqs, times and events as parsing them whole,
// and parsed whole whenever the header shortcut cannot be sure.
import { appendFile, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { LoggedEvent } from '../../../actors/event-log.ts';
import { JOURNAL_DIR } from '../../../runtime/store/constants.ts';
import { DexieEventLog } from '../../../runtime/store/dexie-event-log.ts';
import { decodeRecord } from '../../../runtime/store/history-records.ts';
import { describeStop, scanHistory } from '../../../runtime/store/history-reader.ts';
import { frame, segmentName } from '../../../runtime/store/journal.ts';
import { type Mutation, encodeTx } from '../../../runtime/store/journal-record.ts';
import { type Frame, JournalScan, SCAN_CHUNK_BYTES, readFrameAt } from '../../../runtime/store/journal-scan.ts';

interface Ctx {
  dir: string;
}

const withDir = (title: string) => {
  const s = suite<Ctx>(title);
  s.before.each(async (ctx) => {
    ctx.dir = await mkdtemp(path.join(os.tmpdir(), 'dms-history-scan-'));
  });
  s.after.each(async (ctx) => {
    await rm(ctx.dir, { recursive: true, force: true });
  });
  return s;
};

const jdir = (ctx: Ctx) => path.join(ctx.dir, JOURNAL_DIR);
const seg = (ctx: Ctx, n = 1) => path.join(jdir(ctx), segmentName(n));
const rec = (i: number, pad = 0) => ({ tx: [{ t: 'meta', op: 'put', values: [{ key: `k${i}`, value: 'x'.repeat(pad) }] }] });

async function writeSegment(ctx: Ctx, n: number, records: readonly unknown[]): Promise<void> {
  await appendFile(seg(ctx, n), Buffer.concat(records.map((r) => frame(Buffer.from(JSON.stringify(r))))));
}

async function scanAll(dir: string, segments: number[]): Promise<{ frames: Frame[]; scan: JournalScan }> {
  const scan = new JournalScan(dir, segments);
  const frames: Frame[] = [];
  for await (const batch of scan.batches()) frames.push(...batch);
  return { frames, scan };
}

const keys = (frames: readonly Frame[]) => frames.map((f) => (JSON.parse(f.body.toString()) as { tx: { values: { key: string }[] }[] }).tx[0]!.values[0]!.key);

const Scan = withDir('JournalScan: frames a chunk at a time, stopping at damage');

Scan.before.each(async (ctx) => {
  const { mkdir } = await import('node:fs/promises');
  await mkdir(jdir(ctx), { recursive: true });
});

Scan('every frame of every segment, in order, with its offset; a record larger than a chunk comes whole', async (ctx) => {
  await writeSegment(ctx, 1, [rec(0), rec(1, SCAN_CHUNK_BYTES + 1000), rec(2)]);
  await writeSegment(ctx, 2, [rec(3), rec(4)]);
  const { frames, scan } = await scanAll(jdir(ctx), [1, 2]);
  assert.equal(keys(frames), ['k0', 'k1', 'k2', 'k3', 'k4']);
  assert.is(scan.stop, null);
  assert.is(scan.bytesRead, scan.bytesTotal);
  assert.is(frames[1]!.offset, frame(Buffer.from(JSON.stringify(rec(0)))).length);
  const again = await readFrameAt(jdir(ctx), 1, frames[2]!.offset);
  assert.equal(again?.toString(), frames[2]!.body.toString(), 'a frame can be read again by its offset');
});

Scan('a torn last record: the frames before it, and a stop at its offset that says it is the tail', async (ctx) => {
  await writeSegment(ctx, 1, [rec(0), rec(1), rec(2, 500)]);
  const size = (await stat(seg(ctx))).size;
  await truncate(seg(ctx), size - 100);
  const { frames, scan } = await scanAll(jdir(ctx), [1]);
  assert.equal(keys(frames), ['k0', 'k1']);
  assert.is(scan.stop?.offset, frames[1]!.offset + frames[1]!.body.length + 8);
  assert.is(scan.stop?.tail, true);
  assert.is(scan.stop?.reason, 'truncated record');
  assert.match(String(describeStop(scan.stop)), /^the history ends at journal\/0000000001\.log at byte \d+: the last record there does not check \(truncated record\)/);
});

Scan('damage in the middle: the read stops there, says intact records follow, and counts the segments not read', async (ctx) => {
  await writeSegment(ctx, 1, [rec(0), rec(1), rec(2), rec(3)]);
  await writeSegment(ctx, 2, [rec(4)]);
  const buf = await readFile(seg(ctx));
  const at = frame(Buffer.from(JSON.stringify(rec(0)))).length;
  buf[at + 20] = buf[at + 20]! ^ 0xff; // inside record 1's payload: its checksum fails
  await writeFile(seg(ctx), buf);
  const { frames, scan } = await scanAll(jdir(ctx), [1, 2]);
  assert.equal(keys(frames), ['k0']);
  assert.equal({ offset: scan.stop?.offset, tail: scan.stop?.tail, reason: scan.stop?.reason, unread: scan.stop?.unread }, { offset: at, tail: false, reason: 'checksum mismatch', unread: 1 });
  assert.match(String(describeStop(scan.stop)), /intact records follow it \(damage, not a torn write\); 1 later segment was not read; everything before it was read$/);
});

Scan('a segment gone while it was to be read (retention on a running node) ends the read and says so', async (ctx) => {
  await writeSegment(ctx, 2, [rec(0)]);
  const { frames, scan } = await scanAll(jdir(ctx), [1, 2]);
  assert.equal(frames, []);
  assert.is(scan.stop?.segment, 1);
  assert.is(scan.stop?.gone, true);
  assert.match(String(describeStop(scan.stop)), /^the history stops at journal\/0000000001\.log: the segment was removed while the history was read .*; 1 later segment was not read$/);
});

Scan.run();

// ---- event pages ----

const big = (n: number, first = 1, extra = ''): LoggedEvent[] =>
  Array.from({ length: n }, (_, i) => ({ seq: first + i, ts: 1_700_000_000_000 + i, type: 'ledger.lock', origin: 'api', payload: { type: 'ledger.lock', id: `lock-${first + i}${extra}`, note: 'x'.repeat(40) } }));

const pageRecord = (actor: string, events: LoggedEvent[]): Buffer => Buffer.from(encodeTx([{ t: 'events', op: 'add', values: [{ actor, seq: events.at(-1)!.seq, first: events[0]!.seq, json: JSON.stringify(events) }] } as Mutation]));

function parsedWhole(body: Buffer) {
  return (JSON.parse(body.toString()) as { tx: { t: string; values: { actor: string; seq: number; first: number; events: LoggedEvent[] }[] }[] }).tx.flatMap((m) => (m.t === 'events' ? m.values : []));
}

const Pages = withDir('decodeRecord: big pages read from their header, as parsing them whole would');

Pages('the header shortcut gives the same actor, seqs, first and last time and events as a whole parse', () => {
  const events = big(400, 17);
  const body = pageRecord('job/x', events);
  assert.ok(body.length > 16 * 1024, 'big enough for the shortcut');
  const [page] = decodeRecord(body).pages;
  const [whole] = parsedWhole(body);
  assert.equal({ actor: page!.actor, first: page!.first, seq: page!.seq, firstTs: page!.firstTs, lastTs: page!.lastTs }, { actor: 'job/x', first: 17, seq: 416, firstTs: events[0]!.ts, lastTs: events.at(-1)!.ts });
  assert.equal(page!.events(), whole!.events);
  assert.ok(page!.mayMention(Buffer.from('lock-200')));
  assert.not.ok(page!.mayMention(Buffer.from('lock-999')));
});

Pages('two pages in one record (no writer does that today) are both read, by parsing it whole', () => {
  const a = big(300, 1);
  const b = big(300, 1, '-b');
  const body = Buffer.from(encodeTx([{ t: 'events', op: 'add', values: [{ actor: 'a', seq: 300, first: 1, json: JSON.stringify(a) }, { actor: 'b', seq: 300, first: 1, json: JSON.stringify(b) }] } as Mutation]));
  const pages = decodeRecord(body).pages;
  assert.equal(pages.map((p) => [p.actor, p.events().length, p.events().at(-1)!.payload]), [['a', 300, a.at(-1)!.payload], ['b', 300, b.at(-1)!.payload]]);
});

Pages('a page followed by another mutation in its record, and a last event whose payload quotes an event header', () => {
  const events = big(300);
  const body = Buffer.from(encodeTx([{ t: 'events', op: 'add', values: [{ actor: 'a', seq: 300, first: 1, json: JSON.stringify(events) }] } as Mutation, { t: 'meta', op: 'put', values: [{ key: 'm', value: [1] }] }]));
  const r = decodeRecord(body);
  assert.equal(r.pages.map((p) => p.events().length), [300]);
  assert.equal(r.others.map((m) => m.t), ['meta']);
  const tricky = big(300);
  (tricky[299]!.payload as Record<string, unknown>).text = '{"seq":300,"ts":1}';
  const [page] = decodeRecord(pageRecord('a', tricky)).pages;
  assert.is(page!.lastTs, tricky[299]!.ts);
  assert.equal(page!.events(), tricky);
});

Pages('what the store writes: every append is one record with one page, and the shortcut reads it as parsing would', async (ctx) => {
  const { store } = await DexieEventLog.open({ dataDir: ctx.dir, compactBytes: 64 * 1024 * 1024 });
  await store.append('node', big(500, 1));
  await store.append('job/j', big(3, 1));
  await store.append('node', big(500, 501));
  await store.close();
  const seen: [string, number, number, number][] = [];
  await scanHistory(ctx.dir, { page: (p) => seen.push([p.actor, p.first, p.seq, p.events().length]) });
  assert.equal(seen, [['node', 1, 500, 500], ['job/j', 1, 3, 3], ['node', 501, 1000, 500]]);
  const { frames } = await scanAll(jdir(ctx), [1]);
  for (const f of frames) {
    const whole = parsedWhole(f.body);
    if (whole.length === 0) continue;
    assert.is(whole.length, 1, 'one page per record');
    const [page] = decodeRecord(f.body).pages;
    assert.equal([page!.actor, page!.first, page!.seq, page!.firstTs, page!.lastTs, page!.events()], [whole[0]!.actor, whole[0]!.first, whole[0]!.seq, whole[0]!.events[0]!.ts, whole[0]!.events.at(-1)!.ts, whole[0]!.events]);
  }
});

Pages.run();
