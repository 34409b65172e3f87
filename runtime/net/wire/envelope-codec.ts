/**
 * The envelope on the wire. A body is the canonical (DAG-CBOR) encoding of the unsigned envelope; the
 * signature covers a domain prefix plus exactly those bytes, so the receiver verifies what it received
 * without encoding anything again. Two frame kinds carry envelopes:
 * - ENVELOPE: [64-byte signature over DOMAIN + body][body]
 * - ENVELOPE_BATCHED: [64-byte signature over BATCH_DOMAIN + Merkle root][varint size][varint index]
 *   [path][body]: envelopes sent together share one signature, each still verifiable on its own.
 */
import * as dagCbor from '@ipld/dag-cbor';
import { MAX_FRAME_BYTES, type UnsignedEnvelope } from '../../../machines/envelope.ts';
import { FrameKind, encodeFrame, encodeVarint, readVarint } from './frame-codec.ts';
import { HASH_BYTES, buildBatch, leafHash } from './merkle-batch.ts';

/** Separates envelope signatures from every other use of the node key. */
export const SIGNING_DOMAIN = new TextEncoder().encode('dms/envelope/v1\n');
export const BATCH_SIGNING_DOMAIN = new TextEncoder().encode('dms/envelope-batch/v1\n');
export const SIGNATURE_BYTES = 64;
/** Most envelopes under one batch signature. */
export const MAX_BATCH = 32;
/**
 * The largest envelope body that fits in a frame the receiver takes (MAX_FRAME_BYTES, counted from the kind
 * byte), however it is sealed: kind, signature, and for a batch its size, index (one byte each up to 127) and
 * the longest path.
 */
export const MAX_BODY_BYTES = MAX_FRAME_BYTES - (1 + SIGNATURE_BYTES + 2 + Math.ceil(Math.log2(MAX_BATCH)) * HASH_BYTES);

/** The canonical encoding of an unsigned envelope (optional fields left out when absent). */
export function encodeBody(env: UnsignedEnvelope): Uint8Array {
  const plain: Record<string, unknown> = { v: env.v, id: env.id, from: env.from, to: env.to, type: env.type, payload: env.payload ?? null, ts: env.ts, exp: env.exp };
  if (env.replyTo !== undefined) plain.replyTo = env.replyTo;
  return dagCbor.encode(plain);
}

function prefixed(domain: Uint8Array, bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(domain.length + bytes.length);
  out.set(domain, 0);
  out.set(bytes, domain.length);
  return out;
}

/** The bytes an envelope signature covers. */
export const signingBytes = (body: Uint8Array) => prefixed(SIGNING_DOMAIN, body);
/** The bytes a batch signature covers. */
export const batchSigningBytes = (root: Uint8Array) => prefixed(BATCH_SIGNING_DOMAIN, root);

/** Signs already-prefixed bytes with the node key. */
export type SignFn = (bytes: Uint8Array) => Uint8Array;

/** One envelope alone: its frame, and the same bytes without the length prefix (gossipsub message data). */
export function sealOne(body: Uint8Array, sign: SignFn): { frame: Uint8Array; data: Uint8Array } {
  const sig = sign(signingBytes(body));
  const frame = encodeFrame(FrameKind.ENVELOPE, sig, body);
  return { frame, data: frame.subarray(frame.length - body.length - sig.length - 1) };
}

/** The frames of envelopes sent together: one signature when there are several, each with its path. */
export function sealBatch(bodies: readonly Uint8Array[], sign: SignFn): Uint8Array[] {
  if (bodies.length === 1) return [sealOne(bodies[0]!, sign).frame];
  const { root, paths } = buildBatch(bodies.map(leafHash));
  const sig = sign(batchSigningBytes(root));
  const count = encodeVarint(bodies.length);
  return bodies.map((body, i) => encodeFrame(FrameKind.ENVELOPE_BATCHED, sig, count, encodeVarint(i), ...paths[i]!, body));
}

/** What a received envelope frame holds, before any check. */
export interface SignedBody {
  readonly body: Uint8Array;
  readonly sig: Uint8Array;
  readonly batch?: { readonly count: number; readonly index: number; readonly path: readonly Uint8Array[] };
}

/** Splits an envelope frame's body (after the kind byte); null when it cannot hold what its kind says. */
export function splitSigned(kind: number, frameBody: Uint8Array): SignedBody | null {
  if (frameBody.length <= SIGNATURE_BYTES) return null;
  const sig = frameBody.subarray(0, SIGNATURE_BYTES);
  if (kind === FrameKind.ENVELOPE) return { sig, body: frameBody.subarray(SIGNATURE_BYTES) };
  if (kind !== FrameKind.ENVELOPE_BATCHED) return null;
  try {
    const c = readVarint(frameBody, SIGNATURE_BYTES);
    const x = c && readVarint(frameBody, c[1]);
    if (!c || !x || c[0] < 2 || c[0] > MAX_BATCH || x[0] >= c[0]) return null;
    const depth = Math.ceil(Math.log2(c[0]));
    const path: Uint8Array[] = [];
    let o = x[1];
    // the path is as long as the levels where this leaf had a sibling; at most `depth`
    for (let i = 0, n = c[0], idx = x[0]; n > 1 && i < depth; i += 1) {
      if ((idx ^ 1) < n) {
        if (o + HASH_BYTES > frameBody.length) return null;
        path.push(frameBody.subarray(o, o + HASH_BYTES));
        o += HASH_BYTES;
      }
      idx = Math.floor(idx / 2);
      n = Math.ceil(n / 2);
    }
    if (o >= frameBody.length) return null;
    return { sig, body: frameBody.subarray(o), batch: { count: c[0], index: x[0], path } };
  } catch {
    return null;
  }
}

/** Decodes an envelope body; throws on bytes that are not DAG-CBOR. The result is still unchecked data. */
export function decodeBody(body: Uint8Array): unknown {
  return dagCbor.decode(body);
}
