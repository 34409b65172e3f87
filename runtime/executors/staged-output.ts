/**
 * An instance's output on its way out of a worker thread: a ring buffer in shared memory, written by the worker as
 * the instance writes and read by the runner's main thread (now and then while the instance runs, at its end, and
 * after its thread was terminated), so output needs no message of its own, streams while a module computes, and
 * what a module wrote just before it was stopped is not lost. One writer, one reader; when the ring is full the
 * writer asks the reader to drain it and waits (the instance is slowed to the speed its output is taken at).
 *
 * Layout: Int32 [0] bytes written (the writer's), [1] bytes read (the reader's), both running totals modulo 2^32;
 * a Float64 at 8, every byte the instance wrote (kept or not); the ring from 16. A record is [fd: 1 byte]
 * [length: 4 bytes LE][bytes], and may wrap around the ring's end.
 */
import type { OutputPiece } from './wasm-pool-runner.protocol.ts';

const WRITTEN = 0;
const READ = 1;
const TOTAL_AT = 8;
const RING_AT = 16;
const RECORD_HEAD = 5;
/** Ring bytes per worker thread. */
export const RING_BYTES = 64 * 1024;
/** How long a writer waits for the reader at a time before it asks again. */
const WAIT_MS = 200;

export function createRing(): SharedArrayBuffer {
  return new SharedArrayBuffer(RING_AT + RING_BYTES);
}

export class OutputRing {
  readonly #counters: Int32Array;
  readonly #view: DataView;
  readonly #ring: Uint8Array;

  constructor(buffer: SharedArrayBuffer) {
    this.#counters = new Int32Array(buffer, 0, 2);
    this.#view = new DataView(buffer);
    this.#ring = new Uint8Array(buffer, RING_AT, RING_BYTES);
  }

  /** Bytes the current instance wrote, kept or not (the writer keeps it up to date). */
  get total(): number {
    return this.#view.getFloat64(TOTAL_AT, true);
  }

  set total(n: number) {
    this.#view.setFloat64(TOTAL_AT, n, true);
  }

  /** Bytes written and not yet read. */
  get pending(): number {
    return (Atomics.load(this.#counters, WRITTEN) - Atomics.load(this.#counters, READ)) >>> 0;
  }

  // ---- the writer (worker thread)

  /** Appends a piece; when the ring is full, calls `full()` (to ask for a drain) and waits for room. */
  write(fd: 1 | 2, data: Uint8Array, full: () => void): void {
    const most = RING_BYTES / 2 - RECORD_HEAD;
    for (let off = 0; off < data.byteLength; off += most) {
      const part = data.subarray(off, Math.min(data.byteLength, off + most));
      const need = RECORD_HEAD + part.byteLength;
      while (RING_BYTES - this.pending < need) {
        full();
        Atomics.wait(this.#counters, READ, Atomics.load(this.#counters, READ), WAIT_MS);
      }
      const at = Atomics.load(this.#counters, WRITTEN) >>> 0;
      const head = new Uint8Array(RECORD_HEAD);
      head[0] = fd;
      new DataView(head.buffer).setUint32(1, part.byteLength, true);
      this.#put(at, head);
      this.#put(at + RECORD_HEAD, part);
      Atomics.store(this.#counters, WRITTEN, (at + need) | 0);
    }
  }

  #put(at: number, bytes: Uint8Array): void {
    const start = at % RING_BYTES;
    const first = Math.min(bytes.byteLength, RING_BYTES - start);
    this.#ring.set(bytes.subarray(0, first), start);
    if (first < bytes.byteLength) this.#ring.set(bytes.subarray(first), 0);
  }

  // ---- the reader (the runner's main thread)

  /** Everything written since the last drain, consecutive pieces of one fd joined; wakes a waiting writer. */
  drain(): OutputPiece[] {
    const written = Atomics.load(this.#counters, WRITTEN) >>> 0;
    let at = Atomics.load(this.#counters, READ) >>> 0;
    if (written === at) return [];
    const pieces: OutputPiece[] = [];
    let run: { fd: 1 | 2; parts: Uint8Array[] } | undefined;
    const close = () => {
      if (run) pieces.push({ fd: run.fd, data: run.parts.length === 1 ? run.parts[0]! : Buffer.concat(run.parts) });
      run = undefined;
    };
    while (at !== written) {
      const head = this.#get(at, RECORD_HEAD);
      const fd = head[0] === 2 ? 2 : 1;
      const len = new DataView(head.buffer).getUint32(1, true);
      if (run && run.fd !== fd) close();
      run ??= { fd, parts: [] };
      run.parts.push(this.#get(at + RECORD_HEAD, len));
      at = (at + RECORD_HEAD + len) >>> 0;
    }
    close();
    Atomics.store(this.#counters, READ, at | 0);
    Atomics.notify(this.#counters, READ);
    return pieces;
  }

  #get(at: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    const start = at % RING_BYTES;
    const first = Math.min(len, RING_BYTES - start);
    out.set(this.#ring.subarray(start, start + first));
    if (first < len) out.set(this.#ring.subarray(0, len - first), first);
    return out;
  }
}
