/**
 * A job's output on its provider: `<data-dir>/allocations/<id>.log`, one line per chunk read from the job
 * (`o <base64>` for stdout, `e <base64>` for stderr), so stdout and stderr keep their order and stay apart. The
 * executor caps what a job may write (logLimitBytes), so the file is bounded. Readers page through it by offset.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';

export const OUTPUT_DIR = 'allocations';
/** Output kept per allocation; the rest is counted and dropped by the executor. */
export const OUTPUT_LIMIT_BYTES = 1 << 20;
/** Largest page a reader gets at once (fits a network frame with room to spare). */
export const OUTPUT_PAGE_BYTES = 512 * 1024;

export interface OutputChunk {
  readonly stream: 'stdout' | 'stderr';
  /** The bytes as UTF-8 text (invalid sequences replaced). */
  readonly text: string;
}

export interface OutputPage {
  readonly chunks: readonly OutputChunk[];
  /** Offset to ask for next. */
  readonly next: number;
  /** True when `next` is the end of what was written so far. */
  readonly eof: boolean;
}

export class OutputLog {
  readonly dir: string;
  readonly #appends = new Map<string, Promise<void>>();
  /** Per allocation and stream: holds a character split across two reads of the job's pipe until it is whole. */
  readonly #decoders = new Map<string, StringDecoder>();

  constructor(
    dataDir: string,
    readonly onError: (allocationId: string, e: Error) => void = () => {},
  ) {
    this.dir = path.join(dataDir, OUTPUT_DIR);
  }

  file(allocationId: string): string {
    return path.join(this.dir, `${encodeURIComponent(allocationId)}.log`);
  }

  /** Makes the (empty) file, so `logs` finds it before the job writes anything; never truncates one. */
  async create(allocationId: string): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await fs.appendFile(this.file(allocationId), '');
  }

  /** Appends a chunk as whole UTF-8 characters (bytes that are not UTF-8 become U+FFFD); appends land in order. */
  append(allocationId: string, stream: 'stdout' | 'stderr', data: Uint8Array): Promise<void> {
    const key = `${allocationId}\0${stream}`;
    let decoder = this.#decoders.get(key);
    if (!decoder) this.#decoders.set(key, (decoder = new StringDecoder('utf8')));
    return this.#write(allocationId, stream, decoder.write(Buffer.from(data)));
  }

  #write(allocationId: string, stream: 'stdout' | 'stderr', text: string): Promise<void> {
    const prev = this.#appends.get(allocationId) ?? Promise.resolve();
    if (text === '') return prev;
    const line = `${stream === 'stdout' ? 'o' : 'e'} ${Buffer.from(text).toString('base64')}\n`;
    const next = prev.then(() => fs.appendFile(this.file(allocationId), line)).catch((e: Error) => this.onError(allocationId, e));
    this.#appends.set(allocationId, next);
    return next;
  }

  /** The job ended: writes what its streams still held, and waits until every append is written. */
  async flush(allocationId: string): Promise<void> {
    for (const stream of ['stdout', 'stderr'] as const) {
      const key = `${allocationId}\0${stream}`;
      const rest = this.#decoders.get(key)?.end() ?? '';
      this.#decoders.delete(key);
      void this.#write(allocationId, stream, rest);
    }
    const last = this.#appends.get(allocationId);
    await last;
    if (this.#appends.get(allocationId) === last) this.#appends.delete(allocationId);
  }

  /** Notes the job's process (its group id and start time) so a node that died under it can end it on restart. */
  async notePid(allocationId: string, pid: number, start: string | null): Promise<void> {
    await fs.writeFile(`${this.file(allocationId)}.pid`, JSON.stringify({ pid, start })).catch(() => {});
  }

  async forgetPid(allocationId: string): Promise<void> {
    await fs.rm(`${this.file(allocationId)}.pid`, { force: true });
  }

  async notedPid(allocationId: string): Promise<{ pid: number; start: string | null } | undefined> {
    try {
      return JSON.parse(await fs.readFile(`${this.file(allocationId)}.pid`, 'utf8')) as { pid: number; start: string | null };
    } catch {
      return undefined;
    }
  }

  async exists(allocationId: string): Promise<boolean> {
    return fs.access(this.file(allocationId)).then(() => true, () => false);
  }

  /** Whole lines from `offset`, at most about `max` bytes of the file. */
  async read(allocationId: string, offset: number, max = OUTPUT_PAGE_BYTES): Promise<OutputPage> {
    const fh = await fs.open(this.file(allocationId), 'r');
    try {
      const size = (await fh.stat()).size;
      // a line longer than a page is read whole, or the reader would never get past it
      const firstLine = await lineEnd(fh, offset, size);
      const want = Math.max(0, Math.min(Math.max(max, firstLine - offset), size - offset));
      const buf = Buffer.alloc(want);
      const { bytesRead } = await fh.read(buf, 0, want, offset);
      const text = buf.subarray(0, bytesRead).toString('latin1');
      const end = text.lastIndexOf('\n') + 1; // whole lines only
      const chunks: OutputChunk[] = [];
      for (const line of text.slice(0, end).split('\n')) {
        if (line.length < 2) continue;
        chunks.push({ stream: line[0] === 'o' ? 'stdout' : 'stderr', text: Buffer.from(line.slice(2), 'base64').toString('utf8') });
      }
      return { chunks, next: offset + end, eof: offset + end >= size };
    } finally {
      await fh.close();
    }
  }
}

/** Where the line starting at `offset` ends (just past its newline), or `size` when it has none yet. */
async function lineEnd(fh: fs.FileHandle, offset: number, size: number): Promise<number> {
  const buf = Buffer.alloc(64 * 1024);
  for (let at = offset; at < size; at += buf.length) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - at), at);
    const nl = buf.subarray(0, bytesRead).indexOf(10);
    if (nl >= 0) return at + nl + 1;
    if (bytesRead === 0) break;
  }
  return size;
}
