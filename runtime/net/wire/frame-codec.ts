/**
 * Frames on the actor protocol: an unsigned-varint length prefix, then one kind byte and its body.
 * `FrameDecoder` splits a byte stream into frames and names what is wrong with a bad one (oversized, garbage,
 * truncated at the end), so the caller can count it by reason.
 */
import { MAX_FRAME_BYTES } from '../../../machines/envelope.ts';

/** The kinds of frame. Only ENVELOPE frames carry signed data; the others are flow control and probes. */
export const FrameKind = Object.freeze({
  /** [64-byte ed25519 signature][DAG-CBOR of the unsigned envelope] */
  ENVELOPE: 0x01,
  /** [64-byte signature of a batch's Merkle root][varint batch size][varint index][path: 32-byte hashes][body] */
  ENVELOPE_BATCHED: 0x05,
  /** [varint n]: the receiver grants the sender n more envelope frames. */
  CREDIT: 0x02,
  /** [8 bytes]: measure the round-trip time; answered by PROBE_ACK with the same bytes. */
  PROBE: 0x03,
  PROBE_ACK: 0x04,
});

export function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len += 1;
  }
  return len;
}

export function writeVarint(n: number, buf: Uint8Array, offset: number): number {
  while (n >= 0x80) {
    buf[offset++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[offset++] = n;
  return offset;
}

/** Reads a varint at `offset`: [value, next offset], or null when the bytes end first. Throws past 8 bytes. */
export function readVarint(buf: Uint8Array, offset: number): [number, number] | null {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 8; i += 1) {
    if (offset + i >= buf.length) return null;
    const b = buf[offset + i]!;
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return [value, offset + i + 1];
    scale *= 128;
  }
  throw new FrameError('malformed', 'length prefix longer than 8 bytes');
}

/** Builds one length-prefixed frame of `kind` with the given body parts. */
export function encodeFrame(kind: number, ...parts: Uint8Array[]): Uint8Array {
  const bodyLen = 1 + parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(varintLength(bodyLen) + bodyLen);
  let o = writeVarint(bodyLen, out, 0);
  out[o++] = kind;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function encodeVarint(n: number): Uint8Array {
  const v = new Uint8Array(varintLength(n));
  writeVarint(n, v, 0);
  return v;
}

export function encodeCredit(n: number): Uint8Array {
  return encodeFrame(FrameKind.CREDIT, encodeVarint(n));
}

/** Frame kinds that carry an envelope (and use up credit). */
export function isEnvelopeKind(kind: number): boolean {
  return kind === FrameKind.ENVELOPE || kind === FrameKind.ENVELOPE_BATCHED;
}

export class FrameError extends Error {
  override name = 'FrameError';
  constructor(readonly reason: 'malformed' | 'oversized' | 'truncated', message: string) {
    super(message);
  }
}

/** A decoded frame: its kind and body (without the kind byte). */
export interface Frame {
  readonly kind: number;
  readonly body: Uint8Array;
}

/**
 * Splits bytes into frames. `push` returns the complete frames; an oversized length prefix throws
 * (the stream cannot be resynchronised), and `end` throws when the stream stopped inside a frame.
 */
export class FrameDecoder {
  #buf: Uint8Array = new Uint8Array(0);

  constructor(readonly maxFrameBytes = MAX_FRAME_BYTES) {}

  get buffered(): number {
    return this.#buf.length;
  }

  push(chunk: Uint8Array): Frame[] {
    const buf = this.#buf.length === 0 ? chunk : concat(this.#buf, chunk);
    const frames: Frame[] = [];
    let offset = 0;
    while (offset < buf.length) {
      const head = readVarint(buf, offset);
      if (head === null) break;
      const [len, start] = head;
      if (len > this.maxFrameBytes) {
        this.#buf = new Uint8Array(0);
        throw new FrameError('oversized', `frame of ${len} bytes is over the ${this.maxFrameBytes}-byte limit`);
      }
      if (start + len > buf.length) break;
      if (len === 0) frames.push({ kind: -1, body: new Uint8Array(0) });
      else frames.push({ kind: buf[start]!, body: buf.subarray(start + 1, start + len) });
      offset = start + len;
    }
    this.#buf = offset === buf.length ? new Uint8Array(0) : buf.slice(offset);
    return frames;
  }

  /** The stream ended: anything left is a truncated frame. */
  end(): void {
    if (this.#buf.length > 0) {
      const n = this.#buf.length;
      this.#buf = new Uint8Array(0);
      throw new FrameError('truncated', `stream ended ${n} bytes into an incomplete frame`);
    }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
