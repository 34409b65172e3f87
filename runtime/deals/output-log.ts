/**
 * A job's output on its provider: `<data-dir>/allocations/<id>.log`, one line per record (`o <base64>` for stdout,
 * `e <base64>` for stderr). A record is a run of one stream's output, so the lines keep the order in which the two
 * streams were read and keep them apart.
 *
 * Output is written in batches, not per chunk: a job that writes a byte at a time reaches us as 1-byte chunks, and
 * an append per chunk costs a file write each and a line each. Chunks are buffered per allocation; the batch is
 * written in one append when OUTPUT_FLUSH_BYTES are pending, else OUTPUT_FLUSH_DELAY_MS after its first chunk
 * (on the node's clock), and at once when the job ends (`flush`). Batches land in order. So a job makes at most
 * one append per OUTPUT_FLUSH_BYTES of output plus one per OUTPUT_FLUSH_DELAY_MS of its life, and a record per
 * OUTPUT_RECORD_BYTES or per switch between stdout and stderr.
 *
 * The executor caps what a job may write (OUTPUT_LIMIT_BYTES), so the file is bounded. Readers page through it by
 * offset (output-page.ts).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { type Clock, realClock, type Timer } from '../clock.ts';
import { type OutputPage, OUTPUT_PAGE_BYTES, readPage } from './output-page.ts';

export { OUTPUT_PAGE_BYTES, type OutputChunk, type OutputPage } from './output-page.ts';

export const OUTPUT_DIR = 'allocations';
/** Output kept per allocation; the rest is counted and dropped by the executor. */
export const OUTPUT_LIMIT_BYTES = 1 << 20;
/** Pending output that is written at once, without waiting for the delay. */
export const OUTPUT_FLUSH_BYTES = 64 * 1024;
/** Longest a chunk waits before it is written (and readable by `logs`). */
export const OUTPUT_FLUSH_DELAY_MS = 100;
/** Most output bytes in one record: its line decodes to a chunk far smaller than a page, even when every byte is
 * invalid UTF-8 (3 bytes of U+FFFD each). */
export const OUTPUT_RECORD_BYTES = 32 * 1024;

type Stream = 'stdout' | 'stderr';

export interface OutputLogInit {
  /** The node's clock, for the flush delay; the real one by default. */
  readonly clock?: Clock;
  readonly flushDelayMs?: number;
  readonly flushBytes?: number;
  readonly recordBytes?: number;
  /** Appends text to a file: fs.appendFile by default (a test counts the writes, or makes them fail). */
  readonly appendFile?: (file: string, text: string) => Promise<void>;
}

/** One stream's run of output, in the bytes read. */
interface Run {
  readonly stream: Stream;
  readonly parts: Buffer[];
  bytes: number;
}

/** Output not yet written, and the promise of its write. */
interface Batch {
  readonly runs: Run[];
  bytes: number;
  readonly timer: Timer;
  readonly written: Promise<void>;
  readonly resolve: () => void;
}

interface AllocationOutput {
  pending: Batch | undefined;
  /** The last write asked for: every write waits for the one before it. */
  tail: Promise<void>;
  /** Per stream: holds a character split across two chunks until it is whole. */
  readonly decoders: Record<Stream, StringDecoder>;
}

export class OutputLog {
  readonly dir: string;
  readonly #allocations = new Map<string, AllocationOutput>();
  readonly #clock: Clock;
  readonly #delayMs: number;
  readonly #flushBytes: number;
  readonly #recordBytes: number;
  readonly #appendFile: (file: string, text: string) => Promise<void>;

  constructor(
    dataDir: string,
    readonly onError: (allocationId: string, e: Error) => void = () => {},
    init: OutputLogInit = {},
  ) {
    this.dir = path.join(dataDir, OUTPUT_DIR);
    this.#clock = init.clock ?? realClock;
    this.#delayMs = init.flushDelayMs ?? OUTPUT_FLUSH_DELAY_MS;
    this.#flushBytes = init.flushBytes ?? OUTPUT_FLUSH_BYTES;
    this.#recordBytes = Math.max(1, init.recordBytes ?? OUTPUT_RECORD_BYTES);
    this.#appendFile = init.appendFile ?? ((file, text) => fs.appendFile(file, text));
  }

  file(allocationId: string): string {
    return path.join(this.dir, `${encodeURIComponent(allocationId)}.log`);
  }

  /** Makes the (empty) file, so `logs` finds it before the job writes anything; never truncates one. */
  async create(allocationId: string): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await fs.appendFile(this.file(allocationId), '');
  }

  /**
   * Takes a chunk of the job's output; resolves once it is written (after the delay, a full batch or `flush`).
   * Stored as whole UTF-8 characters (bytes that are not UTF-8 become U+FFFD), in the order of the calls.
   */
  append(allocationId: string, stream: Stream, data: Uint8Array): Promise<void> {
    const out = this.#output(allocationId);
    if (data.byteLength === 0) return out.pending?.written ?? out.tail;
    const batch = (out.pending ??= this.#batch(allocationId));
    for (let at = 0; at < data.byteLength; ) {
      let run = batch.runs.at(-1);
      if (!run || run.stream !== stream || run.bytes >= this.#recordBytes) batch.runs.push((run = { stream, parts: [], bytes: 0 }));
      const take = Math.min(this.#recordBytes - run.bytes, data.byteLength - at);
      run.parts.push(Buffer.from(data.subarray(at, at + take))); // a copy: the caller may reuse its buffer
      run.bytes += take;
      at += take;
    }
    batch.bytes += data.byteLength;
    const { written } = batch;
    if (batch.bytes >= this.#flushBytes) this.#write(allocationId, out);
    return written;
  }

  /** The job ended: writes what is pending and what its streams still held, and waits until all is written. */
  async flush(allocationId: string): Promise<void> {
    const out = this.#allocations.get(allocationId);
    if (!out) return;
    this.#write(allocationId, out);
    const rest = (['stdout', 'stderr'] as const).map((s) => lineOf(s, out.decoders[s].end())).join('');
    if (rest !== '') this.#chain(allocationId, out, rest);
    const last = out.tail;
    await last;
    // output that came while we waited keeps the entry (and its place in the order)
    if (this.#allocations.get(allocationId) === out && out.tail === last && !out.pending) this.#allocations.delete(allocationId);
  }

  #output(allocationId: string): AllocationOutput {
    let out = this.#allocations.get(allocationId);
    if (!out) {
      out = { pending: undefined, tail: Promise.resolve(), decoders: { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') } };
      this.#allocations.set(allocationId, out);
    }
    return out;
  }

  #batch(allocationId: string): Batch {
    let resolve!: () => void;
    const written = new Promise<void>((r) => (resolve = r));
    const timer = this.#clock.after(this.#delayMs, () => {
      const out = this.#allocations.get(allocationId);
      if (out?.pending === batch) this.#write(allocationId, out);
    }, { keepAlive: true }); // output waiting to be written holds the process for at most the delay
    const batch: Batch = { runs: [], bytes: 0, timer, written, resolve };
    return batch;
  }

  /** Writes the pending batch, if any, after the writes before it. */
  #write(allocationId: string, out: AllocationOutput): void {
    const batch = out.pending;
    if (!batch) return;
    out.pending = undefined;
    batch.timer.clear();
    let text = '';
    for (const run of batch.runs) {
      text += lineOf(run.stream, out.decoders[run.stream].write(run.parts.length === 1 ? run.parts[0]! : Buffer.concat(run.parts, run.bytes)));
    }
    this.#chain(allocationId, out, text).then(batch.resolve);
  }

  #chain(allocationId: string, out: AllocationOutput, text: string): Promise<void> {
    if (text === '') return out.tail;
    out.tail = out.tail.then(() => this.#appendFile(this.file(allocationId), text)).catch((e: Error) => this.onError(allocationId, e));
    return out.tail;
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

  /** Whole lines from `offset`, as many as fit `maxBytes` of DAG-CBOR (a `logs.page` payload). */
  read(allocationId: string, offset: number, maxBytes = OUTPUT_PAGE_BYTES): Promise<OutputPage> {
    return readPage(this.file(allocationId), offset, maxBytes);
  }
}

/** A record's line; nothing for no text. */
function lineOf(stream: Stream, text: string): string {
  return text === '' ? '' : `${stream === 'stdout' ? 'o' : 'e'} ${Buffer.from(text).toString('base64')}\n`;
}
