/**
 * The wire format of `/dms/tunnel/1.0.0`: TCP connections carried over libp2p streams, one stream per connection.
 *
 *   dialler -> acceptor   [unsigned varint n][n bytes of UTF-8 JSON: TunnelHeader]   (n <= MAX_HEADER_BYTES)
 *   acceptor -> dialler   [1 status byte]: STATUS.ok, or the code of a refusal; a refusal is followed by the
 *                         acceptor closing its end
 *   after ok              the connection's bytes, both ways, unframed; each end's close is the TCP half-close
 *
 * The dialler sends nothing after the header until it has read the status; the acceptor connects to its target
 * before it answers, so `ok` means a TCP connection is open at the far end.
 */
import { z } from 'zod';
import { varintLength, writeVarint } from '../wire/frame-codec.ts';

export const TUNNEL_PROTOCOL = '/dms/tunnel/1.0.0';

/** Most bytes of a header's JSON (its length prefix not counted). */
export const MAX_HEADER_BYTES = 1024;

/** The first thing on a tunnel stream: which part's named port the dialler wants to reach. */
export interface TunnelHeader {
  readonly deal: string;
  readonly part: string;
  readonly port: string;
}

const name = z.string().min(1).max(256);
export const tunnelHeaderSchema = z.object({ deal: name, part: name, port: name }).strict();

/** Refusals the acceptor's `authorize` may answer. */
export const AUTH_REFUSALS = ['unknown-deal', 'unknown-part', 'unknown-port', 'not-allowed', 'unauthorized'] as const;
export type AuthRefusal = (typeof AUTH_REFUSALS)[number];

/** Every refusal on the wire, by its status byte. */
export const STATUS = Object.freeze({
  ok: 0x00,
  /** The header was garbage, oversized, cut short by the stream's end, or too slow to arrive. */
  'bad-header': 0x01,
  'unknown-deal': 0x02,
  'unknown-part': 0x03,
  'unknown-port': 0x04,
  /** The dialling peer may not reach this part (not a part of the same ensemble). */
  'not-allowed': 0x05,
  /** The dialling peer holds as many tunnel streams to this node as it may (TUNNEL_DEFAULTS.maxStreamsPerPeer). */
  busy: 0x06,
  /** Nothing accepted a connection on the target's port. */
  unreachable: 0x07,
  /** The acceptor failed deciding (its authorize threw). */
  error: 0x08,
  /** The part's deal was accepted under a capability grant that no longer holds (expired or revoked). */
  unauthorized: 0x09,
});
export type TunnelRefusal = Exclude<keyof typeof STATUS, 'ok'>;

const BY_CODE = new Map<number, TunnelRefusal>(
  Object.entries(STATUS)
    .filter(([k]) => k !== 'ok')
    .map(([k, v]) => [v, k as TunnelRefusal]),
);

/** The refusal a status byte names; a code this version does not know reads as `error`. */
export function refusalOf(code: number): TunnelRefusal {
  return BY_CODE.get(code) ?? 'error';
}

export function encodeHeader(h: TunnelHeader): Uint8Array {
  const body = new TextEncoder().encode(JSON.stringify({ deal: h.deal, part: h.part, port: h.port }));
  if (body.length > MAX_HEADER_BYTES) throw new RangeError(`a tunnel header is at most ${MAX_HEADER_BYTES} bytes; this one is ${body.length}`);
  const out = new Uint8Array(varintLength(body.length) + body.length);
  out.set(body, writeVarint(body.length, out, 0));
  return out;
}

/** The header in `body` (the bytes after the length prefix), or null when it is not one. */
export function decodeHeader(body: Uint8Array): TunnelHeader | null {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    return null;
  }
  const r = tunnelHeaderSchema.safeParse(json);
  return r.success ? r.data : null;
}

export type PrefixRead = { readonly kind: 'need-more' } | { readonly kind: 'bad'; readonly why: string } | { readonly kind: 'done'; readonly body: Uint8Array; readonly used: number };

/**
 * Reads one length-prefixed header from the start of `buf`. A prefix longer than 2 bytes or a length over
 * MAX_HEADER_BYTES is `bad` at once, before the body arrives.
 */
export function readHeaderFrame(buf: Uint8Array): PrefixRead {
  let n = 0;
  let i = 0;
  for (; ; i += 1) {
    if (i >= buf.length) return { kind: 'need-more' };
    if (i >= 2) return { kind: 'bad', why: 'length prefix longer than 2 bytes' };
    const b = buf[i]!;
    n += (b & 0x7f) * 128 ** i;
    if ((b & 0x80) === 0) break;
  }
  if (n > MAX_HEADER_BYTES) return { kind: 'bad', why: `header of ${n} bytes, over ${MAX_HEADER_BYTES}` };
  if (n === 0) return { kind: 'bad', why: 'empty header' };
  const start = i + 1;
  if (buf.length < start + n) return { kind: 'need-more' };
  return { kind: 'done', body: buf.subarray(start, start + n), used: start + n };
}

/** Reads the status byte at the start of `buf`. */
export function readStatusFrame(buf: Uint8Array): PrefixRead {
  return buf.length === 0 ? { kind: 'need-more' } : { kind: 'done', body: buf.subarray(0, 1), used: 1 };
}
