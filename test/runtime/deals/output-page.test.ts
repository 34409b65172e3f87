// Pages of a job's output log (runtime/deals/output-page.ts): whole lines from an offset, next and eof right, and
// every page small enough for one `logs.page` envelope (frames are limited to 1 MiB), measured with the real
// encoder, whatever the output: 1-byte records of characters that escape badly, a log written a line per chunk.
import { promises as fs } from 'node:fs';
import * as assert from 'uvu/assert';
import { encodedSize } from '../../../runtime/deals/encoded-size.ts';
import { OUTPUT_RECORD_BYTES, type OutputChunk, type OutputPage } from '../../../runtime/deals/output-log.ts';
import { type Ctx, ID, behaviour, err, out, pages, put, utf8 } from './output-log.fixture.ts';

const Paging = behaviour('output pages: pages by offset hold whole lines, with next and eof right');

Paging('a chunk longer than a page is still read: the reader never gets stuck at its offset', async (ctx) => {
  await ctx.log.create(ID);
  await put(ctx, 'stdout', utf8('before'));
  await put(ctx, 'stdout', new Uint8Array(300).fill(0x62)); // 400 bytes of base64
  await put(ctx, 'stdout', utf8('after'));
  const all = await pages(ctx.log, ID, 100);
  assert.equal(all.flatMap((p) => p.chunks).map((c) => c.text), ['before', 'b'.repeat(300), 'after']);
});

Paging('small pages: each page holds whole chunks within its encoded budget, next continues where it ended, eof only on the last', async (ctx) => {
  await ctx.log.create(ID);
  const expected: OutputChunk[] = [];
  for (let i = 0; i < 40; i += 1) {
    const text = `chunk ${i} ${'x'.repeat(i % 7)}`;
    await put(ctx, i % 2 ? 'stderr' : 'stdout', utf8(text));
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
  for (const p of all) {
    assert.ok(p.next === 0 || text[p.next - 1] === '\n', `page ends at ${p.next}, inside a line`);
    assert.ok(p.chunks.length === 1 || encodedSize(p) <= 100, `a page of ${encodedSize(p)} bytes encoded, over the 100 asked for`);
  }
  assert.equal(all.flatMap((p) => p.chunks), expected);
});

Paging('a page asked for at the end, or past it, is empty, keeps the offset and says eof', async (ctx) => {
  await ctx.log.create(ID);
  await put(ctx, 'stdout', utf8('hello'));
  const first = await ctx.log.read(ID, 0);
  assert.equal(first.chunks, [out('hello')]);
  assert.is(first.eof, true);
  assert.equal(await ctx.log.read(ID, first.next), { chunks: [], next: first.next, eof: true });
  assert.equal(await ctx.log.read(ID, first.next + 1000), { chunks: [], next: first.next + 1000, eof: true });
  // and more output later is found from the same offset
  await put(ctx, 'stderr', utf8('world'));
  const second = await ctx.log.read(ID, first.next);
  assert.equal(second.chunks, [err('world')]);
  assert.is(second.eof, true);
});

Paging('a line still being written is not read: eof before it, and a follower gets it whole once it ends', async (ctx) => {
  await ctx.log.create(ID);
  await put(ctx, 'stdout', utf8('whole'));
  const line = `o ${Buffer.from('half').toString('base64')}\n`;
  await fs.appendFile(ctx.log.file(ID), line.slice(0, 4));
  const page = await ctx.log.read(ID, 0);
  assert.equal(page, { chunks: [out('whole')], next: page.next, eof: true }, 'eof: nothing whole is left, so `logs --follow` waits instead of asking again at once');
  await fs.appendFile(ctx.log.file(ID), line.slice(4));
  assert.equal((await ctx.log.read(ID, page.next)).chunks, [out('half')]);
});

Paging.run();

// ---------------------------------------------------------------------------------------------------------------

const Envelopes = behaviour('output pages: every page fits one logs.page envelope, whatever the output');

// the envelope encoder is ESM only and suites run through a require hook: load it dynamically
const wire = (async () => ({ ...(await import('@ipld/dag-cbor')), ...(await import('../../../runtime/net/wire/envelope-codec.ts')), ...(await import('../../../machines/envelope.ts')) }))();

/** The bytes of the signed frame that carries `page` as a `logs.page` reply. */
async function frameBytes(page: OutputPage): Promise<{ payload: number; frame: number }> {
  const { encode, encodeBody, SIGNATURE_BYTES } = await wire;
  const peer = `12D3KooW${'x'.repeat(44)}`;
  const body = encodeBody({
    v: 1, id: 'f'.repeat(32), from: { peer, inbox: 'provider', did: `did:key:z6Mk${'y'.repeat(44)}` }, to: { peer, inbox: `reply/${'r'.repeat(32)}` },
    type: 'logs.page', payload: page, ts: Date.now(), exp: Date.now() + 30_000,
  });
  return { payload: encode(page).byteLength, frame: 1 + 5 + SIGNATURE_BYTES + body.byteLength };
}

/** Output that costs the most on the wire per byte of the file: 1-byte records, stdout and stderr in turn, of
 * control characters (JSON escapes them as 6 bytes), bytes that are not UTF-8 (3 bytes of U+FFFD each) and text. */
const NASTY = [0x00, 0x1b, 0xff, 0x22, 0x5c, 0x07, 0xc3, 0x0a, 0x41];

async function checkPages(ctx: Ctx, expected: { stdout: string; stderr: string }): Promise<void> {
  const { MAX_FRAME_BYTES } = await wire;
  const all = await pages(ctx.log, ID);
  for (const p of all) {
    const { payload, frame } = await frameBytes(p);
    assert.ok(payload === encodedSize(p), `encodedSize ${encodedSize(p)} != the encoder's ${payload}`);
    assert.ok(frame <= MAX_FRAME_BYTES / 2, `a page of ${p.chunks.length} chunks makes a ${frame}-byte frame; the limit is ${MAX_FRAME_BYTES}`);
  }
  assert.ok(all.length > 1, 'more than one page: the budget, not the file, ended them');
  for (const stream of ['stdout', 'stderr'] as const) {
    const got = all.flatMap((p) => p.chunks).filter((c) => c.stream === stream).map((c) => c.text).join('');
    const want = expected[stream];
    let at = 0;
    while (at < want.length && got[at] === want[at]) at += 1;
    assert.ok(got === want, `${stream} read back differs from what was written at character ${at} of ${want.length}`);
  }
}

Envelopes('256 KiB of 1-byte records, streams in turn, of characters that escape badly: pages of well under a frame, nothing lost', async (ctx) => {
  await ctx.log.create(ID);
  const sent = { stdout: [] as number[], stderr: [] as number[] };
  for (let i = 0; i < 256 * 1024; i += 1) {
    const stream = i % 2 ? 'stderr' : 'stdout';
    const byte = NASTY[i % NASTY.length]!;
    void ctx.log.append(ID, stream, Uint8Array.of(byte));
    sent[stream].push(byte);
  }
  await ctx.log.flush(ID);
  await checkPages(ctx, { stdout: Buffer.from(sent.stdout).toString('utf8'), stderr: Buffer.from(sent.stderr).toString('utf8') });
});

Envelopes('a log written a line per 1-byte chunk (as before batching) pages the same way', async (ctx) => {
  await ctx.log.create(ID);
  let expected = '';
  let text = '';
  for (let i = 0; i < 200_000; i += 1) {
    const c = String.fromCharCode(NASTY[i % NASTY.length]! & 0x7f);
    text += `o ${Buffer.from(c).toString('base64')}\n`;
    expected += c;
  }
  await fs.appendFile(ctx.log.file(ID), text);
  await checkPages(ctx, { stdout: expected, stderr: '' });
});

Envelopes('records of 32 KiB of bytes that are not UTF-8 (each 96 KiB as text) page within the budget too', async (ctx) => {
  await ctx.log.create(ID);
  for (let i = 0; i < 32; i += 1) void ctx.log.append(ID, i % 2 ? 'stderr' : 'stdout', new Uint8Array(OUTPUT_RECORD_BYTES).fill(0xff));
  await ctx.log.flush(ID);
  const half = '\uFFFD'.repeat(16 * OUTPUT_RECORD_BYTES);
  await checkPages(ctx, { stdout: half, stderr: half });
});

Envelopes.run();
