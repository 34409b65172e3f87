// A job's output on its provider (runtime/deals/output-log.ts): real files in a fresh temp data dir per test.
// What a user of `logs` cares about: every chunk comes back, in the order the job wrote it, on the right stream,
// whatever bytes it held; a reader paging by offset never sees half a line, and knows when it reached the end.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { OUTPUT_DIR, type OutputChunk, OutputLog, type OutputPage } from '../../../runtime/deals/output-log.ts';

interface Ctx {
  dir: string;
  log: OutputLog;
}

function behaviour(title: string) {
  const s = suite<Ctx>(title, {} as Ctx);
  s.before.each(async (ctx) => {
    ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dms-output-log-'));
    ctx.log = new OutputLog(ctx.dir);
  });
  s.after.each(async (ctx) => {
    await fs.rm(ctx.dir, { recursive: true, force: true });
  });
  return s;
}

const ID = 'job-1.1';
const utf8 = (s: string) => new TextEncoder().encode(s);
const out = (text: string): OutputChunk => ({ stream: 'stdout', text });
const err = (text: string): OutputChunk => ({ stream: 'stderr', text });

/** Every page from `offset` to the end, `max` bytes at most each. */
async function pages(log: OutputLog, id: string, max?: number, offset = 0): Promise<OutputPage[]> {
  const all: OutputPage[] = [];
  for (let i = 0; i < 10_000; i += 1) {
    const page = await log.read(id, offset, max);
    all.push(page);
    if (page.eof) return all;
    assert.ok(page.next > offset, `the page at ${offset} did not move on (next ${page.next}): a reader would loop forever`);
    offset = page.next;
  }
  throw new Error('no end after 10000 pages');
}

/** The bytes of each line of the file, decoded: what was stored, exactly. */
async function storedBytes(ctx: Ctx, id = ID): Promise<{ stream: string; bytes: Buffer }[]> {
  const text = await fs.readFile(ctx.log.file(id), 'utf8');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => ({ stream: l.slice(0, 1), bytes: Buffer.from(l.slice(2), 'base64') }));
}

// ---------------------------------------------------------------------------------------------------------------

const Order = behaviour('output log: appends keep their order and their stream');

Order('create() makes an empty log under <data-dir>/allocations; reading it gives nothing and eof', async (ctx) => {
  assert.is(await ctx.log.exists(ID), false);
  await ctx.log.create(ID);
  assert.is(await ctx.log.exists(ID), true);
  assert.is(path.dirname(ctx.log.file(ID)), path.join(ctx.dir, OUTPUT_DIR));
  assert.equal(await ctx.log.read(ID, 0), { chunks: [], next: 0, eof: true });
});

Order('1000 appends fired without waiting (as the executor does) come back in order, stdout and stderr apart', async (ctx) => {
  await ctx.log.create(ID);
  const expected: OutputChunk[] = [];
  for (let i = 0; i < 1000; i += 1) {
    const stream = i % 3 === 0 ? 'stderr' : 'stdout';
    void ctx.log.append(ID, stream, utf8(`line ${i}\n`));
    expected.push({ stream, text: `line ${i}\n` });
  }
  await ctx.log.flush(ID);
  const all = await pages(ctx.log, ID);
  assert.equal(all.flatMap((p) => p.chunks), expected);
});

Order('what is written is readable at once, while the job still writes: a reader following by offset sees every chunk once', async (ctx) => {
  await ctx.log.create(ID);
  let offset = 0;
  const seen: OutputChunk[] = [];
  for (let i = 0; i < 20; i += 1) {
    await ctx.log.append(ID, 'stdout', utf8(`${i}`));
    const page = await ctx.log.read(ID, offset);
    assert.is(page.eof, true);
    seen.push(...page.chunks);
    offset = page.next;
  }
  assert.equal(seen, Array.from({ length: 20 }, (_, i) => out(`${i}`)));
});

Order('appends made while a flush() waits still land after the ones before it', async (ctx) => {
  await ctx.log.create(ID);
  void ctx.log.append(ID, 'stdout', utf8('0'));
  const flushed = ctx.log.flush(ID);
  for (let i = 1; i < 5; i += 1) void ctx.log.append(ID, 'stdout', utf8(`${i}`));
  await flushed;
  for (let i = 5; i < 10; i += 1) void ctx.log.append(ID, 'stdout', utf8(`${i}`));
  await ctx.log.flush(ID);
  // flush() waits only for the appends made before it; give any append still under way time to land
  await new Promise((r) => setTimeout(r, 50));
  const text = (await pages(ctx.log, ID)).flatMap((p) => p.chunks).map((c) => c.text).join('');
  assert.is(text, '0123456789', 'the output came back out of order');
});

Order('two allocations write their own files and do not mix', async (ctx) => {
  await ctx.log.create('a.1');
  await ctx.log.create('b.1');
  for (let i = 0; i < 50; i += 1) {
    void ctx.log.append('a.1', 'stdout', utf8(`a${i}`));
    void ctx.log.append('b.1', 'stderr', utf8(`b${i}`));
  }
  await Promise.all([ctx.log.flush('a.1'), ctx.log.flush('b.1')]);
  assert.equal((await pages(ctx.log, 'a.1')).flatMap((p) => p.chunks), Array.from({ length: 50 }, (_, i) => out(`a${i}`)));
  assert.equal((await pages(ctx.log, 'b.1')).flatMap((p) => p.chunks), Array.from({ length: 50 }, (_, i) => err(`b${i}`)));
});

Order('an allocation id with "/" or other odd characters names one file inside the output dir', async (ctx) => {
  const id = '../../etc/passwd x?';
  await ctx.log.create(id);
  await ctx.log.append(id, 'stdout', utf8('ok'));
  assert.is(path.dirname(ctx.log.file(id)), path.join(ctx.dir, OUTPUT_DIR));
  assert.equal((await ctx.log.read(id, 0)).chunks, [out('ok')]);
});

Order.run();

// ---------------------------------------------------------------------------------------------------------------

const Paging = behaviour('output log: pages by offset hold whole lines, with next and eof right');

Paging('small pages: each page holds whole chunks only, next continues where it ended, eof only on the last', async (ctx) => {
  await ctx.log.create(ID);
  const expected: OutputChunk[] = [];
  for (let i = 0; i < 40; i += 1) {
    const text = `chunk ${i} ${'x'.repeat(i % 7)}`;
    await ctx.log.append(ID, i % 2 ? 'stderr' : 'stdout', utf8(text));
    expected.push({ stream: i % 2 ? 'stderr' : 'stdout', text });
  }
  const size = (await fs.stat(ctx.log.file(ID))).size;
  const all = await pages(ctx.log, ID, 100);
  assert.ok(all.length > 5, `only ${all.length} pages for ${size} bytes at 100 per page`);
  for (const p of all.slice(0, -1)) assert.is(p.eof, false);
  assert.is(all.at(-1)!.eof, true);
  assert.is(all.at(-1)!.next, size);
  // whole lines: each page ends on a line end, and together they give every chunk once
  const text = await fs.readFile(ctx.log.file(ID), 'latin1');
  let from = 0;
  for (const p of all) {
    assert.ok(p.next === 0 || text[p.next - 1] === '\n', `page ends at ${p.next}, inside a line`);
    assert.ok(p.next - from <= 100, `a page of ${p.next - from} bytes, over the 100 asked for`);
    from = p.next;
  }
  assert.equal(all.flatMap((p) => p.chunks), expected);
});

Paging('a page asked for at the end, or past it, is empty, keeps the offset and says eof', async (ctx) => {
  await ctx.log.create(ID);
  await ctx.log.append(ID, 'stdout', utf8('hello'));
  const first = await ctx.log.read(ID, 0);
  assert.equal(first.chunks, [out('hello')]);
  assert.is(first.eof, true);
  assert.equal(await ctx.log.read(ID, first.next), { chunks: [], next: first.next, eof: true });
  assert.equal(await ctx.log.read(ID, first.next + 1000), { chunks: [], next: first.next + 1000, eof: true });
  // and more output later is found from the same offset
  await ctx.log.append(ID, 'stderr', utf8('world'));
  const second = await ctx.log.read(ID, first.next);
  assert.equal(second.chunks, [err('world')]);
  assert.is(second.eof, true);
});

Paging('a page of the default size holds everything a job may write: one page, eof', async (ctx) => {
  await ctx.log.create(ID);
  const chunk = new Uint8Array(4096).fill(0x61);
  for (let i = 0; i < 64; i += 1) void ctx.log.append(ID, 'stdout', chunk); // 256 KiB of output
  await ctx.log.flush(ID);
  const page = await ctx.log.read(ID, 0);
  assert.is(page.eof, true);
  assert.is(page.chunks.length, 64);
  assert.is(page.chunks.map((c) => c.text.length).reduce((a, b) => a + b, 0), 64 * 4096);
});

Paging('a chunk longer than a page is still read: the reader never gets stuck at its offset', async (ctx) => {
  await ctx.log.create(ID);
  await ctx.log.append(ID, 'stdout', utf8('before'));
  await ctx.log.append(ID, 'stdout', new Uint8Array(300).fill(0x62)); // 400 bytes of base64
  await ctx.log.append(ID, 'stdout', utf8('after'));
  const all = await pages(ctx.log, ID, 100);
  assert.equal(all.flatMap((p) => p.chunks).map((c) => c.text), ['before', 'b'.repeat(300), 'after']);
});

Paging.run();

// ---------------------------------------------------------------------------------------------------------------

const Bytes = behaviour('output log: any bytes round-trip');

Bytes('binary bytes (NUL, newlines, 0xFF) are stored as text and do not break the lines', async (ctx) => {
  await ctx.log.create(ID);
  const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
  const newlines = utf8('\n\n\r\n');
  await ctx.log.append(ID, 'stdout', binary);
  await ctx.log.append(ID, 'stderr', newlines);
  await ctx.log.append(ID, 'stdout', new Uint8Array(0));
  await ctx.log.append(ID, 'stdout', utf8('end'));
  await ctx.log.flush(ID);
  // the output is kept as the text a reader sees: whole characters, the bytes that are not UTF-8 replaced
  const stored = await storedBytes(ctx);
  assert.equal(stored.map((s) => s.stream), ['o', 'e', 'o']);
  assert.equal([...stored[0]!.bytes], [...Buffer.from(Buffer.from(binary).toString('utf8'))]);
  assert.equal([...stored[1]!.bytes], [...newlines]);
  const chunks = (await pages(ctx.log, ID)).flatMap((p) => p.chunks);
  // the empty chunk holds nothing to show; the others come back, as UTF-8 text with invalid bytes replaced
  assert.equal(chunks.filter((c) => c.text !== ''), [out(Buffer.from(binary).toString('utf8')), err('\n\n\r\n'), out('end')]);
});

Bytes('invalid UTF-8 comes back with U+FFFD where the bad bytes were, the rest intact', async (ctx) => {
  await ctx.log.create(ID);
  const bytes = Uint8Array.from([0x6f, 0x6b, 0x20, 0xc3, 0x28, 0x20, 0xff, 0xfe, 0x20, 0xe2, 0x82, 0xac]); // "ok " bad bad " €"
  await ctx.log.append(ID, 'stderr', bytes);
  const [chunk] = (await ctx.log.read(ID, 0)).chunks;
  assert.is(chunk!.stream, 'stderr');
  assert.is(chunk!.text, 'ok \uFFFD( \uFFFD\uFFFD €');
});

Bytes('multi-byte characters of every width come back whole', async (ctx) => {
  await ctx.log.create(ID);
  const text = 'héllo wörld — 日本語 🎉\n';
  await ctx.log.append(ID, 'stdout', utf8(text));
  assert.equal((await ctx.log.read(ID, 0)).chunks, [out(text)]);
});

Bytes('a character split across two chunks (as a pipe may split it) comes back whole', async (ctx) => {
  await ctx.log.create(ID);
  const bytes = utf8('price: 5€, 日本');
  const cut = bytes.indexOf(0xe2) + 1; // inside the euro sign
  await ctx.log.append(ID, 'stdout', bytes.subarray(0, cut));
  await ctx.log.append(ID, 'stdout', bytes.subarray(cut));
  const text = (await pages(ctx.log, ID)).flatMap((p) => p.chunks).map((c) => c.text).join('');
  assert.is(text, 'price: 5€, 日本', 'the user sees replacement characters where the job printed a valid character');
});

Bytes.run();

// ---------------------------------------------------------------------------------------------------------------

const Pid = behaviour("output log: the job's process is noted beside its output");

Pid('notePid, notedPid and forgetPid keep and drop the pid and start time', async (ctx) => {
  await ctx.log.create(ID);
  assert.is(await ctx.log.notedPid(ID), undefined);
  await ctx.log.notePid(ID, 4242, 'Mon Jan  1 00:00:00 2024');
  assert.equal(await ctx.log.notedPid(ID), { pid: 4242, start: 'Mon Jan  1 00:00:00 2024' });
  await ctx.log.notePid(ID, 4343, null);
  assert.equal(await ctx.log.notedPid(ID), { pid: 4343, start: null });
  await ctx.log.forgetPid(ID);
  assert.is(await ctx.log.notedPid(ID), undefined);
  await ctx.log.forgetPid(ID); // twice is fine
  // the output itself is untouched
  await ctx.log.append(ID, 'stdout', utf8('x'));
  assert.equal((await ctx.log.read(ID, 0)).chunks, [out('x')]);
});

Pid.run();
