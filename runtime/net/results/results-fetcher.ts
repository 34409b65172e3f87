/**
 * The requester's end of `/dms/results/1.0.0`: asks a provider for a manifest, or for a range of a file as a Node
 * Readable that reads the stream only as fast as it is consumed (the stream is paused while the Readable is full,
 * so yamux stops granting the provider window: memory holds at most that window).
 */
import { Readable } from 'node:stream';
import type { Libp2p, Stream, StreamMessageEvent } from '@libp2p/interface';
import { type Manifest, manifestSchema } from '../../deals/results-manifest.ts';
import { readFrame } from '../tunnel/frame-reader.ts';
import { MAX_RANGE_BYTES, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, RESULTS_PROTOCOL, type RangeRequest, type RangeResponse, type ResultsRefusal, type ResultsRequest, decodeJson, encodeJsonFrame, frameOf } from './results.protocol.ts';

type Host = Pick<Libp2p, 'dialProtocol'>;
type DialTarget = Parameters<Libp2p['dialProtocol']>[0];

/** Bytes a paused stream may hold: above yamux's largest window, or a fast provider's burst would reset it. */
const MAX_READ_BUFFER_BYTES = 16 * 1024 * 1024 + 256 * 1024;

export interface FetchOptions {
  /** Opening the stream and getting the response header, each. */
  readonly timeoutMs?: number;
}

/** A results request that failed: the provider's refusal code, or what went wrong on the way. */
export class ResultsFetchError extends Error {
  override name = 'ResultsFetchError';
  constructor(readonly code: ResultsRefusal | 'unreachable' | 'cut-short' | 'bad-response', message: string) {
    super(message);
  }
}

async function ask(host: Host, peer: DialTarget, req: ResultsRequest, timeoutMs: number): Promise<{ stream: Stream; header: Record<string, unknown> }> {
  let stream: Stream;
  try {
    stream = await host.dialProtocol(peer, RESULTS_PROTOCOL, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw new ResultsFetchError('unreachable', `no results stream to ${String(peer)}: ${(e as Error).message}`);
  }
  stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, MAX_READ_BUFFER_BYTES);
  let header: Record<string, unknown>;
  try {
    stream.send(encodeJsonFrame(req, MAX_REQUEST_BYTES));
    header = decodeJson(await readFrame(stream, frameOf(MAX_RESPONSE_BYTES), timeoutMs, 'response')) as Record<string, unknown>;
  } catch (e) {
    stream.abort(e as Error);
    throw new ResultsFetchError('bad-response', `${String(peer)} gave no results response: ${(e as Error).message}`);
  }
  if (header?.ok !== true) {
    stream.close().catch(() => {});
    const code = typeof header?.code === 'string' ? (header.code as ResultsRefusal) : 'error';
    throw new ResultsFetchError(code, typeof header?.message === 'string' ? header.message : `${String(peer)} refused the results request`);
  }
  return { stream, header };
}

/** The manifest of an allocation's results on `peer`. */
export async function fetchManifest(host: Host, peer: DialTarget, req: { allocationId: string; index?: number }, opts: FetchOptions = {}): Promise<Manifest> {
  const { stream, header } = await ask(host, peer, { type: 'manifest', ...req }, opts.timeoutMs ?? 10_000);
  stream.close().catch(() => {});
  const files = manifestSchema.safeParse(header.files);
  if (!files.success) throw new ResultsFetchError('bad-response', `${String(peer)} sent a manifest that is not one: ${files.error.issues[0]?.message ?? ''}`);
  return files.data;
}

/** A range of a result file on `peer`: its header, and its bytes as a Readable that errors if cut short. */
export async function fetchRange(host: Host, peer: DialTarget, req: Omit<RangeRequest, 'type'>, opts: FetchOptions = {}): Promise<{ header: RangeResponse; body: Readable }> {
  const { stream, header: h } = await ask(host, peer, { type: 'range', ...req }, opts.timeoutMs ?? 10_000);
  const ok = [h.size, h.offset, h.length].every((n) => Number.isSafeInteger(n) && (n as number) >= 0) && typeof h.sha256 === 'string';
  const header = h as unknown as RangeResponse;
  if (!ok || header.offset !== req.offset || header.length > MAX_RANGE_BYTES || header.offset + header.length > header.size) {
    stream.abort(new Error('bad range header'));
    throw new ResultsFetchError('bad-response', `${String(peer)} sent a range header that does not fit the request: ${JSON.stringify(h).slice(0, 200)}`);
  }
  return { header, body: rangeBody(stream, header.length, String(peer)) };
}

/** The next `length` bytes of `stream` as a Readable, with back-pressure both ways. */
function rangeBody(stream: Stream, length: number, peer: string): Readable {
  let got = 0;
  let done = false;
  const body = new Readable({
    highWaterMark: 256 * 1024,
    read() {
      if (stream.readStatus === 'paused') stream.resume();
    },
    destroy(err, cb) {
      if (!done) {
        done = true;
        stream.abort(err ?? new Error('the reader went away'));
      }
      cb(err);
    },
  });
  const finish = (err?: Error): void => {
    if (done) return;
    done = true;
    stream.removeEventListener('message', onMessage);
    if (err) {
      stream.abort(err);
      body.destroy(err);
    } else {
      stream.close().catch(() => {});
      body.push(null);
    }
  };
  const checkEnd = (): void => {
    if (done || !stream.readableEnded || stream.readBufferLength > 0) return;
    finish(got === length ? undefined : new ResultsFetchError('cut-short', `${peer} ended the range after ${got} of ${length} bytes`));
  };
  const onMessage = (e: StreamMessageEvent): void => {
    if (done) return;
    const data = e.data instanceof Uint8Array ? e.data : e.data.subarray();
    got += data.byteLength;
    if (got > length) return finish(new ResultsFetchError('bad-response', `${peer} sent more than the ${length} bytes of the range`));
    const more = body.push(data);
    if (got === length) return finish();
    if (!more && stream.readStatus === 'readable') stream.pause();
    checkEnd();
  };
  stream.addEventListener('message', onMessage);
  stream.addEventListener('end', checkEnd);
  stream.addEventListener('close', (e) => finish(got === length ? undefined : new ResultsFetchError('cut-short', `the stream from ${peer} closed after ${got} of ${length} bytes${e.error ? `: ${e.error.message}` : ''}`)));
  if (length === 0) finish();
  else checkEnd();
  return body;
}
