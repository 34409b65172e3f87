// A job's output on its provider (runtime/deals/output-log.ts): real files in a fresh temp data dir per test, the
// flush delay on a manual clock. What a user of `logs` cares about: every byte comes back, in the order the job
// wrote it, on the right stream, whatever bytes it held; a reader paging by offset never sees half a line, and
// knows when it reached the end. What the provider cares about: a job that writes a byte at a time costs a write
// per batch, not per byte, and a file proportional to its output.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { OUTPUT_DIR, OUTPUT_FLUSH_BYTES, OUTPUT_FLUSH_DELAY_MS, OUTPUT_RECORD_BYTES, type OutputChunk, OutputLog } from '../../../runtime/deals/output-log.ts';
import { ID, behaviour, err, out, pages, put, runs, storedBytes, utf8 } from './output-log.fixture.ts';

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
  // a record per run of one stream: the interleaving is kept, and nothing more is stored
  assert.equal(all.flatMap((p) => p.chunks), runs(expected));
  assert.is(ctx.writes.length, 1, 'one write for the whole batch');
});

Order('a chunk is readable within the flush delay, not later: a reader following by offset sees every chunk once', async (ctx) => {
  await ctx.log.create(ID);
  let offset = 0;
  const seen: OutputChunk[] = [];
  for (let i = 0; i < 20; i += 1) {
    const written = ctx.log.append(ID, 'stdout', utf8(`${i}`));
    ctx.clock.advance(OUTPUT_FLUSH_DELAY_MS - 1);
    await new Promise((r) => setTimeout(r, 5));
    assert.equal((await ctx.log.read(ID, offset)).chunks, [], 'written before the delay is over');
    ctx.clock.advance(1);
    await written;
    const page = await ctx.log.read(ID, offset);
    assert.is(page.eof, true);
    seen.push(...page.chunks);
    offset = page.next;
  }
  assert.equal(seen, Array.from({ length: 20 }, (_, i) => out(`${i}`)));
  assert.is(ctx.writes.length, 20);
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
  assert.equal((await pages(ctx.log, 'a.1')).flatMap((p) => p.chunks), [out(Array.from({ length: 50 }, (_, i) => `a${i}`).join(''))]);
  assert.equal((await pages(ctx.log, 'b.1')).flatMap((p) => p.chunks), [err(Array.from({ length: 50 }, (_, i) => `b${i}`).join(''))]);
});

Order('an allocation id with "/" or other odd characters names one file inside the output dir', async (ctx) => {
  const id = '../../etc/passwd x?';
  await ctx.log.create(id);
  await put(ctx, 'stdout', utf8('ok'), id);
  assert.is(path.dirname(ctx.log.file(id)), path.join(ctx.dir, OUTPUT_DIR));
  assert.equal((await ctx.log.read(id, 0)).chunks, [out('ok')]);
});

Order.run();

// ---------------------------------------------------------------------------------------------------------------

const Batches = behaviour('output log: chunks are written in batches, proportional to the output, not to the chunks');

Batches('150,000 one-byte chunks: a write per 64 KiB batch and a line per 32 KiB record, the file about 4/3 of the output', async (ctx) => {
  await ctx.log.create(ID);
  const n = 150_000;
  let expected = '';
  for (let i = 0; i < n; i += 1) {
    const c = String.fromCharCode(48 + (i % 10));
    expected += c;
    void ctx.log.append(ID, 'stdout', utf8(c));
  }
  await ctx.log.flush(ID);
  const lines = ctx.writes.join('').split('\n').length - 1;
  const size = (await fs.stat(ctx.log.file(ID))).size;
  assert.ok(ctx.writes.length <= Math.ceil(n / OUTPUT_FLUSH_BYTES) + 1, `${ctx.writes.length} writes for ${n} bytes`);
  assert.ok(lines <= Math.ceil(n / OUTPUT_RECORD_BYTES) + ctx.writes.length, `${lines} lines for ${n} bytes`);
  assert.ok(size <= Math.ceil((n * 4) / 3) + lines * 6, `a ${size}-byte file for ${n} bytes of output`);
  assert.is((await pages(ctx.log, ID)).flatMap((p) => p.chunks).map((c) => c.text).join(''), expected);
});

Batches('a full batch is written at once; a smaller one when the delay passes, not before', async (ctx) => {
  await ctx.log.create(ID);
  const big = ctx.log.append(ID, 'stdout', new Uint8Array(OUTPUT_FLUSH_BYTES).fill(0x61));
  await big; // no clock moved
  assert.is(ctx.writes.length, 1);
  const small = ctx.log.append(ID, 'stdout', utf8('b'));
  ctx.clock.advance(OUTPUT_FLUSH_DELAY_MS - 1);
  await new Promise((r) => setTimeout(r, 5));
  assert.is(ctx.writes.length, 1, 'the small batch waits for the delay');
  ctx.clock.advance(1);
  await small;
  assert.is(ctx.writes.length, 2);
});

Batches('stdout and stderr interleaved in one batch keep their order: a record per run', async (ctx) => {
  await ctx.log.create(ID);
  const sent: [OutputChunk['stream'], string][] = [['stdout', 'a'], ['stdout', 'b'], ['stderr', '1'], ['stdout', 'c'], ['stderr', '2'], ['stderr', '3'], ['stdout', 'd']];
  for (const [stream, text] of sent) void ctx.log.append(ID, stream, utf8(text));
  await put(ctx, 'stdout', utf8('e'));
  assert.is(ctx.writes.length, 1);
  assert.equal((await ctx.log.read(ID, 0)).chunks, [out('ab'), err('1'), out('c'), err('23'), out('de')]);
});

Batches('a record holds at most OUTPUT_RECORD_BYTES; a character cut at a record boundary comes back whole', async (ctx) => {
  await ctx.log.create(ID);
  const text = `${'x'.repeat(OUTPUT_RECORD_BYTES - 1)}€${'y'.repeat(2 * OUTPUT_RECORD_BYTES)}`;
  await put(ctx, 'stdout', utf8(text));
  await ctx.log.flush(ID);
  const all = (await pages(ctx.log, ID)).flatMap((p) => p.chunks);
  assert.is(all.length, 4, 'three records of 32 KiB and the rest');
  for (const c of all) assert.ok(Buffer.byteLength(c.text) <= OUTPUT_RECORD_BYTES + 3, `a record of ${Buffer.byteLength(c.text)} bytes`);
  assert.is(all.map((c) => c.text).join(''), text);
});

Batches('flush() writes what is pending at once, and a character the job left unfinished as U+FFFD', async (ctx) => {
  await ctx.log.create(ID);
  void ctx.log.append(ID, 'stdout', utf8('done '));
  void ctx.log.append(ID, 'stdout', Uint8Array.from([0xe2, 0x82])); // the start of a euro sign, never finished
  await ctx.log.flush(ID); // no clock moved
  assert.equal(runs((await ctx.log.read(ID, 0)).chunks), [out('done \uFFFD')]);
});

Batches('a failed write is reported and resolves; the writes after it still land', async (ctx) => {
  const errors: string[] = [];
  let fail = true;
  const log = new OutputLog(ctx.dir, (id, e) => errors.push(`${id}: ${e.message}`), {
    clock: ctx.clock,
    appendFile: async (file, text) => {
      if (fail) {
        fail = false;
        throw new Error('ENOSPC: no space left on device');
      }
      await fs.appendFile(file, text);
    },
  });
  await log.create(ID);
  const lost = log.append(ID, 'stdout', utf8('lost'));
  ctx.clock.advance(OUTPUT_FLUSH_DELAY_MS);
  await lost;
  assert.equal(errors, [`${ID}: ENOSPC: no space left on device`]);
  void log.append(ID, 'stdout', utf8('kept'));
  await log.flush(ID);
  assert.equal((await log.read(ID, 0)).chunks, [out('kept')]);
});

Batches.run();

// ---------------------------------------------------------------------------------------------------------------

const Bytes = behaviour('output log: any bytes round-trip');

Bytes('binary bytes (NUL, newlines, 0xFF) are stored as text and do not break the lines', async (ctx) => {
  await ctx.log.create(ID);
  const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
  const newlines = utf8('\n\n\r\n');
  await put(ctx, 'stdout', binary);
  await put(ctx, 'stderr', newlines);
  await put(ctx, 'stdout', new Uint8Array(0));
  await put(ctx, 'stdout', utf8('end'));
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
  await put(ctx, 'stderr', bytes);
  const [chunk] = (await ctx.log.read(ID, 0)).chunks;
  assert.is(chunk!.stream, 'stderr');
  assert.is(chunk!.text, 'ok \uFFFD( \uFFFD\uFFFD €');
});

Bytes('multi-byte characters of every width come back whole', async (ctx) => {
  await ctx.log.create(ID);
  const text = 'héllo wörld — 日本語 🎉\n';
  await put(ctx, 'stdout', utf8(text));
  assert.equal((await ctx.log.read(ID, 0)).chunks, [out(text)]);
});

Bytes('a character split across two chunks (as a pipe may split it) comes back whole', async (ctx) => {
  await ctx.log.create(ID);
  const bytes = utf8('price: 5€, 日本');
  const cut = bytes.indexOf(0xe2) + 1; // inside the euro sign
  await put(ctx, 'stdout', bytes.subarray(0, cut));
  await put(ctx, 'stdout', bytes.subarray(cut));
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
  await put(ctx, 'stdout', utf8('x'));
  assert.equal((await ctx.log.read(ID, 0)).chunks, [out('x')]);
});

Pid.run();
