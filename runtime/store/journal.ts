/**
 * An append-only journal on disk: numbered segment files of framed records, written with group commit
 * (one write and one fdatasync cover every record appended while the previous sync ran).
 *
 * Frame: u32 little-endian payload length, u32 CRC-32 of the payload, payload (UTF-8 JSON).
 * A torn last frame (a crash mid-write) is detected and cut off when the journal is opened; a bad frame with
 * valid data after it is damage in the middle and is reported, never skipped silently.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';

const HEADER = 8;
/** No single record may be larger than this (a length above it is damage, not data). */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;
const SEGMENT_RE = /^(\d{10})\.log$/;

export class JournalCorruptError extends Error {
  override name = 'JournalCorruptError';
  constructor(readonly file: string, readonly offset: number, reason: string) {
    super(`journal ${file} is damaged at byte ${offset} (${reason}) with intact records after it; this is not a torn write. Restore the data dir from a backup, or move the file away to start from the last checkpoint`);
  }
}

/**
 * A group commit failed (a full disk, an I/O error). What it wrote was cut off again, back to the last acknowledged
 * record (or could not be: `rolledBack` false); either way the journal takes no more writes until it is reopened.
 */
export class JournalWriteError extends Error {
  override name = 'JournalWriteError';
  constructor(message: string, readonly rolledBack: boolean, override readonly cause: Error) {
    super(message);
  }
}

export class JournalClosedError extends Error {
  override name = 'JournalClosedError';
  constructor() {
    super('the journal is closed');
  }
}

export function segmentName(n: number): string {
  return `${String(n).padStart(10, '0')}.log`;
}

/** Segment numbers present in a directory, ascending. */
export async function listSegments(dir: string): Promise<number[]> {
  const names = await fs.readdir(dir).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? [] : Promise.reject(e)));
  return names
    .map((n) => SEGMENT_RE.exec(n)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

export function frame(payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(HEADER + payload.length);
  out.writeUInt32LE(payload.length, 0);
  out.writeUInt32LE(crc32(payload), 4);
  payload.copy(out, HEADER);
  return out;
}

/** Whether a valid frame starts anywhere in buf after `from` (used to tell a torn tail from damage). */
function validFrameAfter(buf: Buffer, from: number): boolean {
  for (let i = from + 1; i + HEADER <= buf.length; i += 1) {
    const len = buf.readUInt32LE(i);
    if (len === 0 || len > MAX_RECORD_BYTES || i + HEADER + len > buf.length) continue;
    if (crc32(buf.subarray(i + HEADER, i + HEADER + len)) === buf.readUInt32LE(i + 4)) return true;
  }
  return false;
}

export interface ScanResult {
  readonly records: unknown[];
  /** Bytes of intact frames; anything after is a torn tail. */
  readonly validBytes: number;
  readonly tornBytes: number;
}

/** Parses the frames of one segment. Throws JournalCorruptError on damage in the middle. */
export function parseSegment(buf: Buffer, file: string): ScanResult {
  const records: unknown[] = [];
  let off = 0;
  while (off < buf.length) {
    const problem = checkFrame(buf, off);
    if (problem) {
      if (validFrameAfter(buf, off)) throw new JournalCorruptError(file, off, problem);
      return { records, validBytes: off, tornBytes: buf.length - off };
    }
    const len = buf.readUInt32LE(off);
    const body = buf.subarray(off + HEADER, off + HEADER + len);
    try {
      records.push(JSON.parse(body.toString('utf8')));
    } catch {
      throw new JournalCorruptError(file, off, 'checksum matches but the record is not JSON');
    }
    off += HEADER + len;
  }
  return { records, validBytes: off, tornBytes: 0 };
}

function checkFrame(buf: Buffer, off: number): string | null {
  if (off + HEADER > buf.length) return 'truncated header';
  const len = buf.readUInt32LE(off);
  if (len === 0 || len > MAX_RECORD_BYTES) return `impossible length ${len}`;
  if (off + HEADER + len > buf.length) return 'truncated record';
  if (crc32(buf.subarray(off + HEADER, off + HEADER + len)) !== buf.readUInt32LE(off + 4)) return 'checksum mismatch';
  return null;
}

/** Reads every record of the given segments in order (used by recovery and replay). */
export async function* readSegments(dir: string, segments: readonly number[]): AsyncGenerator<{ segment: number; records: unknown[]; bytes: number }> {
  for (const n of segments) {
    const file = path.join(dir, segmentName(n));
    const buf = await fs.readFile(file);
    const r = parseSegment(buf, file);
    yield { segment: n, records: r.records, bytes: buf.length };
  }
}

export interface JournalInit {
  readonly dir: string;
  /** Opens a segment file for appending (tests wrap the handle to inject I/O faults). */
  readonly openFile?: (file: string) => Promise<fs.FileHandle>;
  /** Told how long each group commit's write and fdatasync took, in seconds (the node's metrics). */
  readonly onCommit?: (seconds: number) => void;
}

/** A place in the journal: bytes into a segment. */
interface Position {
  readonly segment: number;
  readonly bytes: number;
}

const openAppend = (file: string) => fs.open(file, 'a', 0o600);

interface Waiter {
  resolve(): void;
  reject(e: Error): void;
}

/** The writable journal: appends go to the newest segment; `rotate()` starts a new one. */
export class Journal {
  #fh: fs.FileHandle | null = null;
  #segment = 0;
  #bytes = 0;
  /** Frames to write, and segment numbers to switch to at that point. */
  #pending: (Buffer | number)[] = [];
  /** The segment the next enqueued record goes to (ahead of #segment while a rotation is pending). */
  #head = 0;
  #waiters: Waiter[] = [];
  #writing: Promise<void> | null = null;
  #failed: JournalWriteError | null = null;
  /** The newest segment the running commit opened (for its rollback). */
  #touched = 0;
  #closed = false;
  /** The newest segment's records as open() parsed them, kept until takeOpened() or the first write. */
  #opened: { segment: number; records: unknown[] } | null = null;
  /** Counters for `info` and benchmarks. */
  readonly stats = { records: 0, syncs: 0, bytes: 0 };

  constructor(readonly init: JournalInit) {}

  /** The segment new records go to. */
  get segment(): number {
    return this.#head;
  }

  /** Bytes in the current segment. */
  get segmentBytes(): number {
    return this.#bytes;
  }

  /** Why the journal takes no more writes (a failed commit), or null while it does. */
  get failure(): JournalWriteError | null {
    return this.#failed;
  }

  #open(segment: number): Promise<fs.FileHandle> {
    return (this.init.openFile ?? openAppend)(path.join(this.init.dir, segmentName(segment)));
  }

  /**
   * Opens the newest segment for appending (creating the first one), after cutting off a torn tail.
   * Returns what the existing segments hold, for recovery.
   */
  async open(): Promise<{ segments: number[]; tornBytes: number }> {
    await fs.mkdir(this.init.dir, { recursive: true, mode: 0o700 });
    const segments = await listSegments(this.init.dir);
    let tornBytes = 0;
    const last = segments.at(-1);
    if (last !== undefined) {
      const file = path.join(this.init.dir, segmentName(last));
      const r = parseSegment(await fs.readFile(file), file);
      this.#opened = { segment: last, records: r.records };
      if (r.tornBytes > 0) {
        await fs.truncate(file, r.validBytes);
        tornBytes = r.tornBytes;
      }
      this.#segment = last;
      this.#bytes = r.validBytes;
    } else {
      this.#segment = 1;
      this.#bytes = 0;
    }
    this.#head = this.#segment;
    this.#fh = await this.#open(this.#segment);
    if (last === undefined) await this.#syncDir();
    return { segments: last === undefined ? [] : segments, tornBytes };
  }

  /**
   * The records open() read from the newest segment (its intact part, after any torn tail was cut), if that is
   * `segment`: recovery uses them instead of reading and parsing the file a second time. Handed over once.
   */
  takeOpened(segment: number): unknown[] | undefined {
    const o = this.#opened;
    this.#opened = null;
    return o?.segment === segment ? o.records : undefined;
  }

  /** Queues a record; it is written with the next group commit. Resolves once it is on disk. */
  append(record: unknown): Promise<void> {
    this.enqueue(record);
    return this.durable();
  }

  /** Queues a record without waiting; `durable()` later covers it. */
  enqueue(record: unknown): void {
    this.enqueueText(JSON.stringify(record));
  }

  /** Queues a record already encoded as JSON text. */
  enqueueText(json: string): void {
    if (this.#closed) throw new JournalClosedError();
    if (this.#failed) throw this.#failed;
    this.#opened = null; // recovery is over once writing starts
    this.#pending.push(frame(Buffer.from(json, 'utf8')));
  }

  /** Resolves when everything queued so far is on disk. */
  durable(): Promise<void> {
    if (this.#failed) return Promise.reject(this.#failed);
    if (this.#closed) return Promise.reject(new JournalClosedError());
    if (this.#pending.length === 0 && !this.#writing) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#kick();
    });
  }

  /**
   * Marks a segment boundary now: records queued before the call stay in the current segment, later ones go
   * to a new one. Synchronous, so a caller can cut exactly between two records. Returns the new number.
   */
  rotate(): number {
    if (this.#closed) throw new JournalClosedError();
    if (this.#failed) throw this.#failed;
    this.#head += 1;
    this.#pending.push(this.#head);
    return this.#head;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.durable().catch(() => {});
    this.#closed = true;
    await this.#fh?.close();
    this.#fh = null;
  }

  #kick(): void {
    if (this.#writing) return;
    this.#writing = this.#commit().finally(() => {
      this.#writing = null;
      if (this.#waiters.length > 0) this.#kick();
    });
  }

  async #commit(): Promise<void> {
    while (this.#pending.length > 0 || this.#waiters.length > 0) {
      const batch = this.#pending;
      const waiters = this.#waiters;
      this.#pending = [];
      this.#waiters = [];
      // every batch before this one is on disk and acknowledged: a failure cuts the journal back to here
      const acked: Position = { segment: this.#segment, bytes: this.#bytes };
      this.#touched = this.#segment;
      try {
        let frames: Buffer[] = [];
        for (const item of batch) {
          if (typeof item !== 'number') {
            frames.push(item);
            continue;
          }
          await this.#write(frames);
          frames = [];
          await this.#switchTo(item);
        }
        await this.#write(frames);
        for (const w of waiters) w.resolve();
      } catch (e) {
        this.#failed = await this.#fail(e as Error, acked);
        this.#pending = [];
        for (const w of waiters) w.reject(this.#failed);
        for (const w of this.#waiters.splice(0)) w.reject(this.#failed);
        return;
      }
    }
  }

  /**
   * A commit failed: cuts what it wrote off again (frames after `acked` in its segment, and any segment the commit
   * started), so no record a writer was told failed is replayed at the next start. The journal stops either way:
   * the store above has already applied those writes in memory, and only a reopen makes memory equal the disk.
   */
  async #fail(e: Error, acked: Position): Promise<JournalWriteError> {
    const at = `segment ${segmentName(acked.segment)} byte ${acked.bytes}`;
    try {
      await this.#rollback(acked);
      return new JournalWriteError(`journal write failed: ${e.message}; the records of that commit were cut off (the journal ends at its last acknowledged record, ${at}), and the store takes no more writes until it is reopened: restart the node (once the disk has room, if it was full)`, true, e);
    } catch (e2) {
      return new JournalWriteError(`journal write failed: ${e.message}, and cutting it back to the last acknowledged record (${at}) failed too: ${(e2 as Error).message}; records reported as failed may be replayed at the next start. The store takes no more writes`, false, e);
    }
  }

  async #rollback(to: Position): Promise<void> {
    if (this.#touched !== to.segment || this.#segment !== to.segment) {
      await this.#fh?.close().catch(() => {});
      this.#fh = null;
      for (let s = this.#touched; s > to.segment; s -= 1) await fs.rm(path.join(this.init.dir, segmentName(s)), { force: true });
      await this.#syncDir();
      this.#fh = await this.#open(to.segment);
      this.#segment = to.segment;
    }
    await this.#fh!.truncate(to.bytes);
    await this.#fh!.datasync();
    this.#bytes = to.bytes;
  }

  async #write(frames: Buffer[]): Promise<void> {
    if (frames.length === 0) return;
    const t0 = performance.now();
    const buf = frames.length === 1 ? frames[0]! : Buffer.concat(frames);
    // write(2) may take fewer bytes than asked (a nearly full disk); the rest must follow before the sync
    for (let off = 0; off < buf.length; ) {
      const n = (await this.#fh!.write(buf, off)).bytesWritten;
      if (n <= 0) throw Object.assign(new Error(`write took no bytes at ${off} of ${buf.length} (the disk is full?)`), { code: 'ENOSPC' });
      off += n;
    }
    await this.#fh!.datasync();
    this.init.onCommit?.((performance.now() - t0) / 1000);
    this.#bytes += buf.length;
    this.stats.records += frames.length;
    this.stats.bytes += buf.length;
    this.stats.syncs += 1;
  }

  async #switchTo(segment: number): Promise<void> {
    this.#touched = segment;
    const fh = await this.#open(segment);
    await this.#fh!.close().catch(() => {});
    this.#fh = fh;
    this.#segment = segment;
    this.#bytes = 0;
    await this.#syncDir();
  }

  async #syncDir(): Promise<void> {
    const d = await fs.open(this.init.dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
}
