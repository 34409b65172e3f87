/**
 * The wire format of `/dms/results/1.0.0`: a requester fetches the result files of a job from the provider that
 * ran it, one request per stream.
 *
 *   dialler -> acceptor   [varint n][n bytes of UTF-8 JSON: ResultsRequest]      (n <= MAX_REQUEST_BYTES)
 *   acceptor -> dialler   [varint n][n bytes of UTF-8 JSON: ResultsResponse]     (n <= MAX_RESPONSE_BYTES)
 *   after a `range`       exactly `length` bytes of the file from `offset`, unframed; then the acceptor closes
 *
 * A range is at most MAX_RANGE_BYTES: a large file takes several streams, each resumable from any offset. Only
 * files the manifest lists can be asked for, only by the requester of the allocation that wrote them.
 */
import { z } from 'zod';
import { varintLength, writeVarint } from '../wire/frame-codec.ts';
import { JOB_ID_PATTERN } from '../../../machines/job.ts';
import { type Manifest, MAX_MANIFEST_BYTES, isResultPath, resultIndexSchema } from '../../deals/results-manifest.ts';
import type { PrefixRead } from '../tunnel/tunnel.protocol.ts';

export const RESULTS_PROTOCOL = '/dms/results/1.0.0';
export const MAX_REQUEST_BYTES = 2048;
export const MAX_RESPONSE_BYTES = MAX_MANIFEST_BYTES + 1024;
/** Most bytes one stream carries; the dialler asks again from where it got to. */
export const MAX_RANGE_BYTES = 32 * 1024 * 1024;

/** The manifest of an allocation's results (of instance `index` of an array job). */
export interface ManifestRequest {
  readonly type: 'manifest';
  readonly allocationId: string;
  readonly index?: number;
}

/** Bytes of one listed file from `offset` (to its end, or MAX_RANGE_BYTES, whichever is first). */
export interface RangeRequest {
  readonly type: 'range';
  readonly allocationId: string;
  readonly index?: number;
  readonly path: string;
  readonly offset: number;
}

export type ResultsRequest = ManifestRequest | RangeRequest;

export interface ManifestResponse {
  readonly ok: true;
  readonly files: Manifest;
}

/** What follows: `length` bytes from `offset` of a file of `size` bytes whose manifest sha256 is `sha256`. */
export interface RangeResponse {
  readonly ok: true;
  readonly size: number;
  readonly sha256: string;
  readonly offset: number;
  readonly length: number;
}

/** Why not (`unauthorized`: the allocation's deal was accepted under a capability grant that no longer holds). */
export const RESULTS_REFUSALS = ['bad-request', 'not-found', 'not-ready', 'changed', 'busy', 'error', 'unauthorized'] as const;
export type ResultsRefusal = (typeof RESULTS_REFUSALS)[number];

export interface RefusalResponse {
  readonly ok: false;
  readonly code: ResultsRefusal;
  readonly message: string;
}

export type ResultsResponse = ManifestResponse | RangeResponse | RefusalResponse;

const allocationId = z.string().regex(JOB_ID_PATTERN).max(400);
const offset = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
export const resultsRequestSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('manifest'), allocationId, index: resultIndexSchema.optional() }),
  z.strictObject({ type: z.literal('range'), allocationId, index: resultIndexSchema.optional(), path: z.string().refine(isResultPath), offset }),
]);

/** A varint-length-prefixed JSON frame. */
export function encodeJsonFrame(value: unknown, max: number): Uint8Array {
  const body = new TextEncoder().encode(JSON.stringify(value));
  if (body.length > max) throw new RangeError(`a results frame is at most ${max} bytes; this one is ${body.length}`);
  const out = new Uint8Array(varintLength(body.length) + body.length);
  out.set(body, writeVarint(body.length, out, 0));
  return out;
}

/** A reader of one length-prefixed frame of at most `max` bytes (for readFrame). */
export function frameOf(max: number): (buf: Uint8Array) => PrefixRead {
  const prefixMax = varintLength(max);
  return (buf) => {
    let n = 0;
    let i = 0;
    for (; ; i += 1) {
      if (i >= buf.length) return { kind: 'need-more' };
      if (i >= prefixMax) return { kind: 'bad', why: `length prefix longer than ${prefixMax} bytes` };
      const b = buf[i]!;
      n += (b & 0x7f) * 128 ** i;
      if ((b & 0x80) === 0) break;
    }
    if (n > max) return { kind: 'bad', why: `frame of ${n} bytes, over ${max}` };
    const start = i + 1;
    if (buf.length < start + n) return { kind: 'need-more' };
    return { kind: 'done', body: buf.subarray(start, start + n), used: start + n };
  };
}

export function decodeJson(body: Uint8Array): unknown {
  return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
}
