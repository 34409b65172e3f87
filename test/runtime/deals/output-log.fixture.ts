// Shared by the output log's suites (output-log.test.ts, output-page.test.ts): a fresh temp data dir per test, the
// flush delay on a manual clock, and every write to the file recorded.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock } from '../../../runtime/clock.ts';
import { OUTPUT_FLUSH_DELAY_MS, type OutputChunk, OutputLog, type OutputPage } from '../../../runtime/deals/output-log.ts';

export interface Ctx {
  dir: string;
  clock: ManualClock;
  log: OutputLog;
  /** Every append to a file, in order. */
  writes: string[];
}

export function behaviour(title: string) {
  const s = suite<Ctx>(title, {} as Ctx);
  s.before.each(async (ctx) => {
    ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dms-output-log-'));
    ctx.clock = new ManualClock(0);
    ctx.writes = [];
    ctx.log = new OutputLog(ctx.dir, undefined, {
      clock: ctx.clock,
      appendFile: async (file, text) => {
        ctx.writes.push(text);
        await fs.appendFile(file, text);
      },
    });
  });
  s.after.each(async (ctx) => {
    await fs.rm(ctx.dir, { recursive: true, force: true });
  });
  return s;
}

export const ID = 'job-1.1';
export const utf8 = (s: string) => new TextEncoder().encode(s);
export const out = (text: string): OutputChunk => ({ stream: 'stdout', text });
export const err = (text: string): OutputChunk => ({ stream: 'stderr', text });

/** Appends and waits until it is written: the flush delay passes on the clock. */
export async function put(ctx: Ctx, stream: OutputChunk['stream'], data: Uint8Array, id = ID): Promise<void> {
  const written = ctx.log.append(id, stream, data);
  ctx.clock.advance(OUTPUT_FLUSH_DELAY_MS);
  await written;
}

/** The output as a reader sees it: each stream's runs, adjacent chunks of one stream joined. */
export function runs(chunks: readonly OutputChunk[]): OutputChunk[] {
  const all: OutputChunk[] = [];
  for (const c of chunks) {
    const last = all.at(-1);
    if (last?.stream === c.stream) all[all.length - 1] = { stream: c.stream, text: last.text + c.text };
    else all.push(c);
  }
  return all;
}

/** Every page from `offset` to the end, `max` bytes at most each. */
export async function pages(log: OutputLog, id: string, max?: number, offset = 0): Promise<OutputPage[]> {
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
export async function storedBytes(ctx: Ctx, id = ID): Promise<{ stream: string; bytes: Buffer }[]> {
  const text = await fs.readFile(ctx.log.file(id), 'utf8');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => ({ stream: l.slice(0, 1), bytes: Buffer.from(l.slice(2), 'base64') }));
}
