// Retention of the journal's history: segments before a compaction's cut go once they (by mtime) are older than
// the retention, back to a segment whose base (the checkpoint where it begins) is kept; never the segment the newest
// checkpoint needs, nor any after it; 0 keeps everything. Recovery is unchanged, and the history read for replay
// starts at the base: the actor's snapshot there, then the events after it.
import { copyFile, link, mkdtemp, readdir, rm, stat, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { LoggedEvent } from '../../../actors/event-log.ts';
import { baseName } from '../../../runtime/store/checkpoint.ts';
import { CHECKPOINT_FILE, JOURNAL_DIR } from '../../../runtime/store/constants.ts';
import { DexieEventLog } from '../../../runtime/store/dexie-event-log.ts';
import { actorAtBase, describeRemoved, historyOf, historyStart } from '../../../runtime/store/history-reader.ts';
import { listSegments, segmentName } from '../../../runtime/store/journal.ts';
import { range } from './event-log.contract.ts';

interface Ctx {
  dir: string;
  store?: DexieEventLog;
}

const HOUR = 3_600_000;
const BIG = 64 * 1024 * 1024;
const snap = (seq: number) => ({ kind: 'counter', version: 2, seq, snapshot: { value: seq, context: { at: seq } } });
const seqs = (events: readonly LoggedEvent[]) => events.map((e) => e.seq);

const R = suite<Ctx>('store: journal segments older than the retention are removed');
R.before.each(async (ctx) => {
  ctx.dir = await mkdtemp(path.join(os.tmpdir(), 'dms-history-retention-'));
  delete ctx.store;
});
R.after.each(async (ctx) => {
  await ctx.store?.close();
  await rm(ctx.dir, { recursive: true, force: true });
});

async function reopen(ctx: Ctx): Promise<DexieEventLog> {
  await ctx.store?.close();
  ctx.store = (await DexieEventLog.open({ dataDir: ctx.dir, compactBytes: BIG })).store;
  return ctx.store;
}

const journal = (ctx: Ctx) => path.join(ctx.dir, JOURNAL_DIR);

/** Segments 1..5: actor a's events 1-10 in segment 1, 11-20 in 2, ... (a snapshot at 15), each cut by a compaction. */
async function fiveSegments(ctx: Ctx): Promise<DexieEventLog> {
  const store = await reopen(ctx);
  await store.register({ id: 'a', kind: 'counter', input: { start: 0 }, createdAt: 1 });
  for (let s = 0; s < 5; s += 1) {
    await store.append('a', range('a', s * 10 + 1, s * 10 + 10));
    if (s === 1) await store.saveSnapshot('a', snap(15));
    if (s < 4) await store.compact();
  }
  assert.equal(await listSegments(journal(ctx)), [1, 2, 3, 4, 5]);
  return store;
}

/** Sets the mtime of the given segments to `hours` ago. */
async function age(ctx: Ctx, segments: readonly number[], hours: number): Promise<void> {
  const t = new Date(Date.now() - hours * HOUR);
  for (const s of segments) await utimes(path.join(journal(ctx), segmentName(s)), t, t);
}

const bases = async (ctx: Ctx) => (await readdir(journal(ctx))).filter((n) => n.endsWith('.base.json')).sort();

async function history(ctx: Ctx, actor: string): Promise<number[]> {
  const start = await historyStart(ctx.dir);
  const out: number[] = [];
  for await (const h of historyOf(ctx.dir, actor, start.removed?.base)) out.push(h.event.seq);
  return out;
}

R('each compaction keeps its checkpoint as the base of the segment it starts', async (ctx) => {
  await fiveSegments(ctx);
  assert.equal(await bases(ctx), [2, 3, 4, 5].map(baseName));
});

R('old segments go, back to one with a base; young ones and everything after them stay; recovery is unchanged', async (ctx) => {
  const store = await fiveSegments(ctx);
  const before = { after: seqs(await store.eventsAfter('a', 15)), snapshot: await store.latestSnapshot('a') };
  await age(ctx, [1, 2], 3);
  const r = await store.pruneHistory(2 * HOUR);
  assert.equal(r.segments, [1, 2]);
  assert.is(r.from, 3);
  assert.ok(r.bytes > 0);
  assert.match(String(r.note), /^retention: removed journal segments 1-2 \(.* MB, the history before \d{4}-\d\d-\d\dT.*Z, older than the retention\); replay starts at segment 3$/);
  assert.equal(await listSegments(journal(ctx)), [3, 4, 5]);
  assert.equal(await bases(ctx), [3, 4, 5].map(baseName), 'the bases of removed segments go with them');

  const again = await reopen(ctx);
  assert.equal({ after: seqs(await again.eventsAfter('a', 15)), snapshot: await again.latestSnapshot('a') }, before, 'recovery needs only the newest checkpoint and what follows it');

  const start = await historyStart(ctx.dir);
  assert.is(start.removed?.through, 2);
  assert.is(start.removed?.base?.segment, 3);
  assert.match(String(describeRemoved(start)), /^history before \d{4}-.*Z \(segments 1-2\) was removed by retention; replaying from segment 3$/);
  const at = actorAtBase(start.removed!.base!, 'a');
  assert.equal(at.record, { id: 'a', kind: 'counter', input: { start: 0 }, createdAt: 1 });
  assert.equal(at.snapshot, snap(15));
  assert.equal(await history(ctx, 'a'), Array.from({ length: 35 }, (_, i) => 16 + i), 'the history starts after the snapshot in the base');
});

R('never the segment the newest checkpoint needs, even when every segment is old', async (ctx) => {
  const store = await fiveSegments(ctx);
  await age(ctx, [1, 2, 3, 4, 5], 100);
  const r = await store.pruneHistory(HOUR);
  assert.equal(r.segments, [1, 2, 3, 4]);
  assert.equal(await listSegments(journal(ctx)), [5], 'segment 5 is where recovery starts (and the live one)');
  // the checkpoint.json of the compaction that cut segment 4 is the newest, as when the last one failed to write
  const ctx2: Ctx = { dir: await mkdtemp(path.join(os.tmpdir(), 'dms-history-retention-')) };
  try {
    const s2 = await fiveSegments(ctx2);
    await copyFile(path.join(journal(ctx2), baseName(4)), path.join(ctx2.dir, `${CHECKPOINT_FILE}.tmp`));
    await rm(path.join(ctx2.dir, CHECKPOINT_FILE));
    await link(path.join(ctx2.dir, `${CHECKPOINT_FILE}.tmp`), path.join(ctx2.dir, CHECKPOINT_FILE));
    await age(ctx2, [1, 2, 3, 4, 5], 100);
    assert.equal((await s2.pruneHistory(HOUR)).segments, [1, 2, 3], 'segment 4 is where recovery starts');
    assert.equal(await listSegments(journal(ctx2)), [4, 5]);
  } finally {
    await ctx2.store?.close();
    await rm(ctx2.dir, { recursive: true, force: true });
  }
});

R('0 keeps everything; so does a history younger than the retention', async (ctx) => {
  const store = await fiveSegments(ctx);
  await age(ctx, [1, 2, 3, 4], 24 * 365);
  assert.equal((await store.pruneHistory(0)).segments, []);
  assert.equal((await store.pruneHistory(24 * 366 * HOUR)).segments, []);
  assert.equal(await listSegments(journal(ctx)), [1, 2, 3, 4, 5]);
  assert.is((await historyStart(ctx.dir)).removed, null);
  assert.equal(await history(ctx, 'a'), Array.from({ length: 50 }, (_, i) => 1 + i));
});

R('past a size, the oldest segments go whatever their age, back to one with a base; under it nothing goes', async (ctx) => {
  const store = await fiveSegments(ctx);
  const sizes = await Promise.all([1, 2, 3, 4].map(async (k) => (await stat(path.join(journal(ctx), segmentName(k)))).size + (k > 1 ? (await stat(path.join(journal(ctx), baseName(k)))).size : 0)));
  const total = sizes.reduce((a, b) => a + b, 0);
  assert.equal((await store.pruneHistory({ retainMs: 0, maxBytes: total })).segments, [], 'a history of exactly the size stays');
  // one byte less: segment 1 must go (segment 2 has a base, so the cut can fall there)
  const r = await store.pruneHistory({ retainMs: 0, maxBytes: total - 1 });
  assert.equal(r.segments, [1]);
  assert.match(String(r.note), /past the history's \d+ MB\); replay starts at segment 2$/);
  // room for the newest history segment alone (4, with its base): 2 and 3 go too
  assert.equal((await store.pruneHistory({ retainMs: 0, maxBytes: sizes[3]! })).segments, [2, 3]);
  assert.equal(await listSegments(journal(ctx)), [4, 5]);
  assert.equal(await history(ctx, 'a'), Array.from({ length: 35 }, (_, i) => 16 + i), 'replay starts at the base of segment 4 (a\'s snapshot at 15, then its events)');
});

R('a store with a history size prunes after each compaction by itself, and says what it removed', async (ctx) => {
  const told: unknown[] = [];
  ctx.store = (await DexieEventLog.open({ dataDir: ctx.dir, compactBytes: BIG, history: { retainMs: 0, maxBytes: 1 }, onHistoryPruned: (r) => told.push(r) })).store;
  const store = ctx.store;
  await store.register({ id: 'a', kind: 'counter', input: { start: 0 }, createdAt: 1 });
  for (let s = 0; s < 4; s += 1) {
    await store.append('a', range('a', s * 10 + 1, s * 10 + 10));
    await store.compact();
  }
  assert.equal(await listSegments(journal(ctx)), [5], 'only the segment recovery needs is left');
  assert.is(told.length, 4, 'each compaction cut one segment off');
  assert.ok(told.every((r) => !(r instanceof Error) && /past the history's 0 MB/.test(String((r as { note?: string }).note))), JSON.stringify(told));
  assert.equal(await history(ctx, 'a'), Array.from({ length: 40 }, (_, i) => 1 + i), 'the base holds what the removed segments did');
  assert.equal(seqs(await (await reopen(ctx)).eventsAfter('a', 0)).length, 40, 'recovery is whole');
});

R('a data dir from before bases is cut only at the newest checkpoint, which becomes the base there', async (ctx) => {
  const store = await fiveSegments(ctx);
  for (const b of await bases(ctx)) await rm(path.join(journal(ctx), b));
  await age(ctx, [1, 2, 3], 3);
  assert.equal((await store.pruneHistory(HOUR)).segments, [], 'segment 4 is young, and no older segment has a base');
  await age(ctx, [4], 3);
  assert.equal((await store.pruneHistory(HOUR)).segments, [1, 2, 3, 4]);
  assert.equal(await bases(ctx), [baseName(5)]);
  // the base holds a's snapshot at 15 and its pages after it (16-40), segment 5 the rest
  assert.equal(await history(ctx, 'a'), Array.from({ length: 35 }, (_, i) => 16 + i));
});

R('a history whose base is gone says so instead of pretending', async (ctx) => {
  await fiveSegments(ctx);
  await rm(path.join(journal(ctx), segmentName(1)));
  await rm(path.join(journal(ctx), baseName(2)));
  const start = await historyStart(ctx.dir);
  assert.is(start.removed?.base, undefined);
  assert.match(String(describeRemoved(start)), /^history \(segment 1\) is gone and there is no checkpoint where segment 2 begins \(journal\/0000000002\.base\.json\)$/);
});

R.run();
