/**
 * Reads the journal's segments as a stream of frames for the history readers (`replay`): a few MB at a time, never
 * a whole segment, read-only, so it works on a running node's data dir too. Unlike recovery (journal.ts), damage
 * does not throw: the read stops at the first frame that does not check, says where and why, and whatever came
 * before it is still the history. Frames are as journal.ts writes them: u32 LE length, u32 CRC-32, payload.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { MAX_RECORD_BYTES, segmentName } from './journal.ts';

const HEADER = 8;
/** Bytes read at a time. */
export const SCAN_CHUNK_BYTES = 4 * 1024 * 1024;

/** One intact frame: its payload (a view into a buffer of its own chunk, valid as long as it is held). */
export interface Frame {
  readonly segment: number;
  /** Byte offset of the frame (its header) in the segment file. */
  readonly offset: number;
  readonly body: Buffer;
}

/** Where and why the read stopped before the end of the history. */
export interface ScanStop {
  readonly segment: number;
  readonly file: string;
  /** Byte offset of the first frame that does not check. */
  readonly offset: number;
  readonly reason: string;
  /**
   * True when no intact frame follows in that segment: a torn last write (the node cuts it off at its next start),
   * or a write still under way on a running node. False: damage with intact records after it.
   */
  readonly tail: boolean;
  /** True when the segment itself was gone when its turn came (retention removed it meanwhile). */
  readonly gone: boolean;
  /** Segments after it that were not read. */
  readonly unread: number;
}

/** Why the frame at `off` of `buf` (holding the file from `off` on, `left` bytes of it in all) does not check. */
function problemAt(buf: Buffer, off: number, left: number): string | null {
  if (left < HEADER) return 'truncated header';
  const len = buf.readUInt32LE(off);
  if (len === 0 || len > MAX_RECORD_BYTES) return `impossible length ${len}`;
  if (HEADER + len > left) return 'truncated record';
  return null;
}

/** Whether an intact frame starts anywhere after `from` in `buf` (a torn tail has none). */
function intactFrameAfter(buf: Buffer, from: number): boolean {
  for (let i = from + 1; i + HEADER <= buf.length; i += 1) {
    const len = buf.readUInt32LE(i);
    if (len === 0 || len > MAX_RECORD_BYTES || i + HEADER + len > buf.length) continue;
    if (crc32(buf.subarray(i + HEADER, i + HEADER + len)) === buf.readUInt32LE(i + 4)) return true;
  }
  return false;
}

/** The part of a segment file read so far and not yet handed out as frames. */
class SegmentChunk {
  #buf = Buffer.alloc(0);
  /** File offset of #buf[0]. */
  #at = 0;
  /** Offset in #buf of the next frame. */
  #off = 0;

  constructor(
    readonly fh: fs.FileHandle,
    readonly size: number,
  ) {}

  /** File offset of the next frame. */
  get position(): number {
    return this.#at + this.#off;
  }

  get done(): boolean {
    return this.position >= this.size;
  }

  /** The whole frames in the buffer, and why the next one is bad if it is (so far as the buffer shows). */
  take(segment: number): { frames: Frame[]; bad: string | null } {
    const frames: Frame[] = [];
    const buf = this.#buf;
    for (;;) {
      const left = this.size - this.position;
      if (left === 0 || buf.length - this.#off < Math.min(HEADER, left)) return { frames, bad: null };
      const bad = problemAt(buf, this.#off, left);
      if (bad) return { frames, bad };
      const len = buf.readUInt32LE(this.#off);
      if (buf.length - this.#off < HEADER + len) return { frames, bad: null };
      const body = buf.subarray(this.#off + HEADER, this.#off + HEADER + len);
      if (crc32(body) !== buf.readUInt32LE(this.#off + 4)) return { frames, bad: 'checksum mismatch' };
      frames.push({ segment, offset: this.position, body });
      this.#off += HEADER + len;
    }
  }

  /**
   * Reads on: a chunk, or the whole next frame if it is larger. A new buffer each time, so the frames handed out
   * keep their bytes. Returns the bytes read.
   */
  async fill(): Promise<number> {
    const have = this.#buf.length - this.#off;
    const need = have >= HEADER ? HEADER + this.#buf.readUInt32LE(this.#off) : HEADER;
    const target = Math.min(this.size - this.position, Math.max(need, SCAN_CHUNK_BYTES));
    if (target <= have) return 0;
    const next = Buffer.allocUnsafe(target);
    this.#buf.copy(next, 0, this.#off);
    const { bytesRead } = await this.fh.read(next, have, target - have, this.#at + this.#buf.length);
    if (bytesRead === 0) throw new Error(`segment shrank while it was read (at byte ${this.#at + this.#buf.length} of ${this.size})`);
    this.#at += this.#off;
    this.#off = 0;
    this.#buf = next.subarray(0, have + bytesRead);
    return bytesRead;
  }
}

/**
 * Streams the frames of the given segments in order, in batches (one per chunk read). After the iteration ends,
 * `stop` says whether (and where) it stopped early; `bytesRead`/`bytesTotal` measure progress.
 */
export class JournalScan {
  stop: ScanStop | null = null;
  bytesRead = 0;
  bytesTotal = 0;

  constructor(
    readonly dir: string,
    readonly segments: readonly number[],
  ) {}

  async *batches(): AsyncGenerator<Frame[]> {
    for (const s of this.segments) this.bytesTotal += await fs.stat(path.join(this.dir, segmentName(s))).then((st) => st.size, () => 0);
    for (let i = 0; i < this.segments.length && !this.stop; i += 1) {
      yield* this.#segment(this.segments[i]!, this.segments.length - i - 1);
    }
  }

  async *#segment(segment: number, after: number): AsyncGenerator<Frame[]> {
    const file = path.join(this.dir, segmentName(segment));
    const fh = await fs.open(file, 'r').catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
      this.stop = { segment, file, offset: 0, reason: 'the segment was removed while the history was read (retention on a running node?)', tail: false, gone: true, unread: after };
      return null;
    });
    if (!fh) return;
    try {
      // the size when the read began: what a running node appends meanwhile is not read
      const size = (await fh.stat()).size;
      const chunk = new SegmentChunk(fh, size);
      while (!chunk.done) {
        const { frames, bad } = chunk.take(segment);
        if (frames.length > 0) yield frames;
        if (bad) {
          await this.#stopAt(fh, file, segment, chunk.position, size, bad, after);
          return;
        }
        this.bytesRead += await chunk.fill();
      }
    } finally {
      await fh.close();
    }
  }

  async #stopAt(fh: fs.FileHandle, file: string, segment: number, offset: number, size: number, reason: string, after: number): Promise<void> {
    const rest = Buffer.allocUnsafe(size - offset);
    await fh.read(rest, 0, rest.length, offset);
    this.stop = { segment, file, offset, reason, tail: !intactFrameAfter(rest, 0), gone: false, unread: after };
  }
}

/** Reads the frame at `offset` of a segment (one found by a scan), or undefined when it is not there intact. */
export async function readFrameAt(dir: string, segment: number, offset: number): Promise<Buffer | undefined> {
  const fh = await fs.open(path.join(dir, segmentName(segment)), 'r').catch(() => null);
  if (!fh) return undefined;
  try {
    const head = Buffer.alloc(HEADER);
    if ((await fh.read(head, 0, HEADER, offset)).bytesRead < HEADER) return undefined;
    const len = head.readUInt32LE(0);
    if (len === 0 || len > MAX_RECORD_BYTES) return undefined;
    const body = Buffer.allocUnsafe(len);
    if ((await fh.read(body, 0, len, offset + HEADER)).bytesRead < len) return undefined;
    return crc32(body) === head.readUInt32LE(4) ? body : undefined;
  } finally {
    await fh.close();
  }
}
