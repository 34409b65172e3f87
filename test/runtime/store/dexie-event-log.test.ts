// The durable store: Dexie tables made durable by the journal. What was acknowledged survives a reopen, compaction
// cuts the journal exactly between the checkpoint and the later writes, and historyOf reads the whole history.
import { mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { LoggedEvent } from '../../../actors/event-log.ts';
import { listSegments, readSegments, segmentName } from '../../../runtime/store/journal.ts';
import { CHECKPOINT_FILE, JOURNAL_DIR } from '../../../runtime/store/constants.ts';
import { DexieEventLog, type RecoveryReport } from '../../../runtime/store/dexie-event-log.ts';
import { historyOf } from '../../../runtime/store/history-reader.ts';
import { ev, range } from './event-log.contract.ts';

interface Ctx {
  dir: string;
  store?: DexieEventLog;
}

const BIG = 64 * 1024 * 1024;
const snap = (seq: number) => ({ kind: 'counter', version: 2, seq, snapshot: { value: seq, context: { at: seq } } });
const seqs = (events: readonly LoggedEvent[]) => events.map((e) => e.seq);
const upTo = (n: number, from = 1) => Array.from({ length: n - from + 1 }, (_, i) => from + i);

function storeSuite(title: string) {
  const s = suite<Ctx>(title);
  s.before.each(async (ctx) => {
    ctx.dir = await mkdtemp(path.join(os.tmpdir(), 'dms-store-test-'));
    delete ctx.store;
  });
  s.after.each(async (ctx) => {
    await ctx.store?.close();
    await rm(ctx.dir, { recursive: true, force: true });
  });
  return s;
}

/** Closes the test's store (if open) and opens it again from disk. */
async function reopen(ctx: Ctx, compactBytes = BIG): Promise<{ store: DexieEventLog; recovery: RecoveryReport }> {
  await ctx.store?.close();
  const r = await DexieEventLog.open({ dataDir: ctx.dir, compactBytes });
  ctx.store = r.store;
  return r;
}

const journalDir = (ctx: Ctx) => path.join(ctx.dir, JOURNAL_DIR);

type Tx = { t: string; op: string; values?: { actor?: string; seq?: number; first?: number; events?: LoggedEvent[] }[] }[];

async function journalRecords(ctx: Ctx, from = 0): Promise<{ segment: number; tx: Tx }[]> {
  const dir = journalDir(ctx);
  const out: { segment: number; tx: Tx }[] = [];
  for await (const seg of readSegments(dir, (await listSegments(dir)).filter((s) => s >= from))) for (const r of seg.records) out.push({ segment: seg.segment, tx: (r as { tx: Tx }).tx });
  return out;
}

async function history(dir: string, actor: string): Promise<LoggedEvent[]> {
  const out: LoggedEvent[] = [];
  for await (const h of historyOf(dir, actor)) out.push(h.event);
  return out;
}

/** Everything the EventLog port shows about one actor. */
async function view(store: DexieEventLog, actor: string) {
  const snapshot = await store.latestSnapshot(actor);
  return { snapshot, lastSeq: await store.lastSeq(actor), after: seqs(await store.eventsAfter(actor, snapshot?.seq ?? 0)), all: seqs(await store.eventsAfter(actor, 0)) };
}

// ---- durability across reopen ----

const durable = storeSuite('writes survive close and reopen');

durable('meta, actors, event pages, drops and snapshots come back as written', async (ctx) => {
  const { store, recovery: first } = await reopen(ctx);
  assert.equal({ ...first, ms: 0 }, { checkpoint: false, segments: 0, records: 0, tornBytes: 0, ms: 0 });
  await store.putMeta('identity', { peerId: 'p1', keys: [1, 2, 3] });
  await store.register({ id: 'n', kind: 'node', input: { offer: { cpu: 2 } }, createdAt: 5 });
  await store.register({ id: 'a1', kind: 'allocation', input: null, createdAt: 6 });
  await store.append('n', range('n', 1, 10));
  await store.append('n', range('n', 11, 20));
  await store.append('a1', range('a1', 1, 3));
  await store.saveSnapshot('n', snap(10));
  await store.markDropped('n', 15, 'boom');
  const before = await view(store, 'n');
  const { store: again, recovery } = await reopen(ctx);
  assert.equal({ ...recovery, ms: 0 }, { checkpoint: false, segments: 1, records: 8, tornBytes: 0, ms: 0 });
  assert.equal(await again.getMeta('identity'), { peerId: 'p1', keys: [1, 2, 3] });
  assert.is(await again.getMeta('nothing'), undefined);
  assert.equal(await again.actor('n'), { id: 'n', kind: 'node', input: { offer: { cpu: 2 } }, createdAt: 5 });
  assert.equal((await again.actors()).map((a) => a.id).sort(), ['a1', 'n']);
  assert.equal(await view(again, 'n'), before);
  assert.equal(await again.latestSnapshot('n'), snap(10));
  assert.equal(await again.eventsAfter('n', 10), range('n', 11, 20).filter((e) => e.seq !== 15));
  assert.equal(await again.eventsAfter('a1', 0), range('a1', 1, 3));
  assert.is(await again.lastSeq('n'), 20);
});

durable('forget(actor) survives a reopen, and after a compaction; the on-disk history still holds the actor', async (ctx) => {
  const { store } = await reopen(ctx);
  await store.register({ id: 'gone', kind: 'provider', input: { job: 'x'.repeat(100) }, createdAt: 1 });
  await store.register({ id: 'kept', kind: 'provider', input: null, createdAt: 2 });
  await store.append('gone', range('gone', 1, 6));
  await store.append('kept', range('kept', 1, 2));
  await store.saveSnapshot('gone', snap(3));
  await store.markDropped('gone', 5, 'boom');
  await store.forget('gone');
  const { store: again } = await reopen(ctx);
  assert.is(await again.actor('gone'), undefined);
  assert.equal(await view(again, 'gone'), { snapshot: undefined, lastSeq: 0, after: [], all: [] });
  assert.equal((await again.actors()).map((a) => a.id), ['kept']);
  assert.equal(seqs(await history(ctx.dir, 'gone')), [1, 2, 3, 4, 6], 'replay lost the forgotten actor\'s history (5 was dropped)');
  await again.compact();
  const { store: compacted } = await reopen(ctx);
  assert.equal((await compacted.actors()).map((a) => a.id), ['kept']);
  assert.equal(seqs(await compacted.eventsAfter('kept', 0)), [1, 2]);
});

durable('several reopen cycles keep appending to one growing history', async (ctx) => {
  for (let round = 0; round < 4; round += 1) {
    const { store } = await reopen(ctx);
    const from = (await store.lastSeq('a')) + 1;
    assert.is(from, round * 5 + 1);
    await store.append('a', range('a', from, from + 4));
  }
  const { store, recovery } = await reopen(ctx);
  assert.is(recovery.records, 4);
  assert.equal(await store.eventsAfter('a', 0), range('a', 1, 20));
  assert.equal(await listSegments(journalDir(ctx)), [1]);
});

durable('a torn last transaction is dropped as a whole: neither the snapshot nor its deletions apply', async (ctx) => {
  const { store } = await reopen(ctx);
  await store.append('a', range('a', 1, 5));
  await store.append('a', range('a', 6, 10));
  await store.saveSnapshot('a', snap(10));
  assert.equal((await view(store, 'a')).all, []);
  await store.close();
  delete ctx.store;
  const file = path.join(journalDir(ctx), segmentName(1));
  await truncate(file, (await stat(file)).size - 4);
  const { store: again, recovery } = await reopen(ctx);
  assert.ok(recovery.tornBytes > 0, 'tornBytes reported');
  assert.is(recovery.records, 2);
  assert.is(await again.latestSnapshot('a'), undefined);
  assert.equal(await again.eventsAfter('a', 0), range('a', 1, 10));
});

durable('damage in the middle of the journal fails open() with JournalCorruptError', async (ctx) => {
  const { store } = await reopen(ctx);
  for (let i = 0; i < 5; i += 1) await store.append('a', range('a', i * 2 + 1, i * 2 + 2));
  await store.close();
  delete ctx.store;
  const file = path.join(journalDir(ctx), segmentName(1));
  const buf = await readFile(file);
  buf[20] = buf[20]! ^ 0x04;
  await writeFile(file, buf);
  let err: Error | undefined;
  await DexieEventLog.open({ dataDir: ctx.dir, compactBytes: BIG }).catch((e: Error) => (err = e));
  assert.is(err?.name, 'JournalCorruptError');
  assert.ok(err!.message.includes(file), err!.message);
});

durable.run();

// ---- atomic transactions ----

const atomic = storeSuite('one Dexie transaction is one journal record');

atomic('saveSnapshot journals the snapshot and the deletion of covered pages in a single record', async (ctx) => {
  const { store } = await reopen(ctx);
  await store.append('a', range('a', 1, 5));
  await store.append('a', range('a', 6, 10));
  await store.saveSnapshot('a', snap(5));
  const records = await journalRecords(ctx);
  assert.is(records.length, 3);
  const last = records[2]!.tx;
  assert.equal(last.map((m) => `${m.t}.${m.op}`).sort(), ['events.deleteRange', 'snapshots.put']);
  assert.is(records.filter((r) => r.tx.some((m) => m.t === 'snapshots')).length, 1);
});

atomic('appends are journaled as pages holding the events, with actor, first and last seq', async (ctx) => {
  const { store } = await reopen(ctx);
  await store.append('a', range('a', 1, 4));
  const [r] = await journalRecords(ctx);
  assert.equal(r!.tx, [{ t: 'events', op: 'add', values: [{ actor: 'a', seq: 4, first: 1, events: range('a', 1, 4) }] }]);
});

atomic.run();

// ---- compaction ----

const compaction = storeSuite('compaction writes a checkpoint and starts a new segment');

compaction('reopen after compaction gives the same data and replays only what came after it', async (ctx) => {
  const { store } = await reopen(ctx);
  await store.register({ id: 'a', kind: 'counter', input: 1, createdAt: 1 });
  for (let i = 0; i < 30; i += 1) await store.append('a', range('a', i * 4 + 1, i * 4 + 4));
  await store.saveSnapshot('a', snap(60));
  const { recovery: plain } = await reopen(ctx);
  assert.is(plain.records, 32);
  assert.is(plain.checkpoint, false);
  await ctx.store!.compact();
  assert.equal(await listSegments(journalDir(ctx)), [1, 2]);
  const cp = JSON.parse(await readFile(path.join(ctx.dir, CHECKPOINT_FILE), 'utf8')) as { format: number; segment: number; tx: Tx };
  assert.is(cp.format, 1);
  assert.is(cp.segment, 2);
  assert.equal(seqs(cp.tx.find((m) => m.t === 'events')!.values!.flatMap((p) => p.events!)), upTo(120, 61));
  await ctx.store!.append('a', range('a', 121, 124));
  await ctx.store!.putMeta('k', 'v');
  const before = await view(ctx.store!, 'a');
  const { store: again, recovery } = await reopen(ctx);
  assert.equal({ ...recovery, ms: 0 }, { checkpoint: true, segments: 1, records: 2, tornBytes: 0, ms: 0 });
  assert.equal(await view(again, 'a'), before);
  assert.equal(before.after, upTo(124, 61));
  assert.equal(await again.actor('a'), { id: 'a', kind: 'counter', input: 1, createdAt: 1 });
  assert.is(await again.getMeta('k'), 'v');
  assert.equal(await again.eventsAfter('a', 60), range('a', 61, 124));
});

compaction('a segment over compactBytes compacts by itself; the data survives', async (ctx) => {
  const { store } = await reopen(ctx, 8 * 1024);
  for (let i = 0; i < 100; i += 1) await store.append('a', range('a', i * 5 + 1, i * 5 + 5));
  await store.close();
  assert.ok(store.stats.compactions >= 3, `compactions: ${store.stats.compactions}`);
  const segments = await listSegments(journalDir(ctx));
  assert.is(segments.length, store.stats.compactions + 1);
  for (const s of segments.slice(0, -1)) assert.ok((await stat(path.join(journalDir(ctx), segmentName(s)))).size > 8 * 1024);
  delete ctx.store;
  const { store: again, recovery } = await reopen(ctx);
  assert.ok(recovery.checkpoint);
  assert.is(recovery.segments, 1);
  assert.ok(recovery.records < 100 / store.stats.compactions + 1, `replayed ${recovery.records} records`);
  assert.equal(await again.eventsAfter('a', 0), range('a', 1, 500));
});

compaction('appends in flight around compact() all survive a reopen exactly once; the cut is exact', async (ctx) => {
  const { store } = await reopen(ctx);
  const PAGES = 300;
  const acks: Promise<unknown>[] = [];
  const compactions: Promise<void>[] = [];
  for (let i = 0; i < PAGES; i += 1) {
    acks.push(store.append('a', range('a', i * 3 + 1, i * 3 + 3)));
    if (i === 120) compactions.push(store.compact());
    if (i % 25 === 0) await new Promise(setImmediate);
  }
  await Promise.all([...acks, ...compactions]);
  assert.is(store.stats.compactions, 1);
  const cp = JSON.parse(await readFile(path.join(ctx.dir, CHECKPOINT_FILE), 'utf8')) as { segment: number; tx: Tx };
  const inCheckpoint = cp.tx.find((m) => m.t === 'events')!.values!.map((p) => p.seq!);
  const after = (await journalRecords(ctx, cp.segment)).flatMap((r) => r.tx.flatMap((m) => (m.t === 'events' ? m.values!.map((p) => p.seq!) : [])));
  const all = upTo(PAGES).map((i) => i * 3);
  assert.ok(inCheckpoint.length > 0 && after.length > 0, `cut at ${inCheckpoint.length}: both sides hold pages`);
  assert.equal([...inCheckpoint, ...after], all, 'checkpoint then later segments: every page once, in order');
  await store.append('a', range('a', PAGES * 3 + 1, PAGES * 3 + 3));
  const { store: again } = await reopen(ctx);
  assert.equal(seqs(await again.eventsAfter('a', 0)), upTo(PAGES * 3 + 3));
  assert.equal(seqs(await history(ctx.dir, 'a')), upTo(PAGES * 3 + 3));
});

compaction('writes and snapshots racing repeated compactions leave the same state after reopen', async (ctx) => {
  const { store } = await reopen(ctx);
  const acks: Promise<unknown>[] = [];
  let compacting = Promise.resolve();
  for (let i = 0; i < 400; i += 1) {
    const last = i * 2 + 2;
    acks.push(store.append('a', range('a', last - 1, last)));
    acks.push(store.append('b', [ev('b', i + 1)]));
    if (i % 37 === 0) acks.push(store.saveSnapshot('a', snap(last)));
    if (i % 53 === 0) {
      // one at a time (a call during a compaction joins it), each started with writes still in flight
      await compacting;
      compacting = store.compact();
    }
    if (i % 10 === 0) await new Promise(setImmediate);
  }
  await Promise.all([...acks, compacting]);
  assert.is(store.stats.compactions, 8);
  const before = { a: await view(store, 'a'), b: await view(store, 'b') };
  assert.equal(before.a.after, upTo(800, before.a.snapshot!.seq + 1));
  const { store: again, recovery } = await reopen(ctx);
  assert.ok(recovery.checkpoint);
  assert.equal({ a: await view(again, 'a'), b: await view(again, 'b') }, before);
  assert.equal(seqs(await history(ctx.dir, 'a')), upTo(800));
  assert.equal(seqs(await history(ctx.dir, 'b')), upTo(400));
});

compaction.run();

// ---- full history ----

const full = storeSuite('historyOf reads an actor’s whole history from the journal');

full('every event in order, after snapshots evicted them from Dexie and after compactions', async (ctx) => {
  const { store } = await reopen(ctx);
  for (let i = 0; i < 40; i += 1) {
    await store.append('a', range('a', i * 5 + 1, i * 5 + 5));
    await store.append('other', [ev('other', i + 1)]);
    if (i % 10 === 9) await store.saveSnapshot('a', snap(i * 5 + 5));
    if (i % 15 === 14) await store.compact();
  }
  assert.equal(await store.eventsAfter('a', 0), [], 'Dexie no longer holds the covered events');
  assert.ok((await listSegments(journalDir(ctx))).length >= 3);
  assert.equal(await history(ctx.dir, 'a'), range('a', 1, 200));
  assert.equal(await history(ctx.dir, 'other'), range('other', 1, 40));
  assert.equal(await history(ctx.dir, 'nobody'), []);
  await reopen(ctx);
  assert.equal(await history(ctx.dir, 'a'), range('a', 1, 200));
});

full('progress: bytesRead grows to bytesTotal', async (ctx) => {
  const { store } = await reopen(ctx);
  for (let i = 0; i < 10; i += 1) {
    await store.append('a', range('a', i * 5 + 1, i * 5 + 5));
    if (i % 3 === 2) await store.compact();
  }
  const reads: number[] = [];
  let total = 0;
  for await (const h of historyOf(ctx.dir, 'a')) {
    reads.push(h.bytesRead);
    total = h.bytesTotal;
  }
  let size = 0;
  for (const s of await listSegments(journalDir(ctx))) size += (await stat(path.join(journalDir(ctx), segmentName(s)))).size;
  assert.is(total, size);
  assert.is(reads.at(-1), size);
  assert.ok(reads.every((r, i) => i === 0 || r >= reads[i - 1]!));
});

full('dropped events are skipped, also when a compaction fell between the event and its drop', async (ctx) => {
  const { store } = await reopen(ctx);
  await store.append('a', range('a', 1, 5));
  await store.markDropped('a', 2, 'same segment');
  await store.append('a', range('a', 6, 10));
  await store.compact();
  await store.markDropped('a', 8, 'next segment');
  await store.append('a', range('a', 11, 12));
  assert.equal(seqs(await store.eventsAfter('a', 0)), [1, 3, 4, 5, 6, 7, 9, 10, 11, 12]);
  assert.equal(seqs(await history(ctx.dir, 'a')), [1, 3, 4, 5, 6, 7, 9, 10, 11, 12]);
});

full.run();
