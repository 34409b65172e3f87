/**
 * The provider's end of `/dms/results/1.0.0`: reads one request per stream, asks `authorize` whether the dialling
 * peer is the requester of the allocation it names, and answers the manifest or a range of a listed file.
 *
 * Bounds: a request of at most MAX_REQUEST_BYTES within requestTimeoutMs; at most maxStreamsPerPeer streams per
 * peer and maxStreams in all (more are answered `busy`); a range of at most MAX_RANGE_BYTES, read RANGE_CHUNK_BYTES
 * at a time and sent only as fast as the stream drains (yamux's window is the dialler's reading), so what waits
 * in memory is a chunk and the muxer's window; a stream that moves nothing for inactivityTimeoutMs is aborted.
 */
import type { Connection, Libp2p, Stream } from '@libp2p/interface';
import type { ResultsLayout } from '../../deals/results-manifest.ts';
import { manifestOrRefuse, openRange } from '../../deals/results-store.ts';
import { readFrame } from '../tunnel/frame-reader.ts';
import type { TunnelLog } from '../tunnel/tunnel-counters.ts';
import { MAX_RANGE_BYTES, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, RESULTS_PROTOCOL, type RefusalResponse, type ResultsRefusal, type ResultsRequest, decodeJson, encodeJsonFrame, frameOf, resultsRequestSchema } from './results.protocol.ts';

export interface ResultsInit {
  readonly maxStreamsPerPeer: number;
  readonly maxStreams: number;
  readonly requestTimeoutMs: number;
  readonly inactivityTimeoutMs: number;
  /** A refused stream is reset if the dialler has not closed its end within this long. */
  readonly refuseGraceMs: number;
}

export const RESULTS_DEFAULTS: ResultsInit = Object.freeze({
  maxStreamsPerPeer: 4,
  maxStreams: 32,
  requestTimeoutMs: 10_000,
  inactivityTimeoutMs: 60_000,
  refuseGraceMs: 2_000,
});

export interface ResultsAcceptorOptions {
  /**
   * Where the results of `allocationId` (instance `index`) are, when `peer` is its requester; else undefined. May
   * reject with a ResultsRefusedError (by name) to refuse with its code.
   */
  readonly authorize: (peer: string, allocationId: string, index?: number) => Promise<ResultsLayout | undefined>;
  readonly log: TunnelLog;
  readonly init?: Partial<ResultsInit>;
}

export interface ResultsAcceptor {
  /** Streams `peer` holds open here now. */
  streamsOf(peer: string): number;
  /** Bytes of files sent so far, and refusals by code. */
  readonly counters: { bytesSent: number; ranges: number; refused: Partial<Record<ResultsRefusal, number>> };
  stop(): Promise<void>;
}

type Host = Pick<Libp2p, 'handle' | 'unhandle'>;

/** Registers the results protocol's handler on `host`. */
export async function serveResults(host: Host, opts: ResultsAcceptorOptions): Promise<ResultsAcceptor> {
  const a = new Libp2pResultsAcceptor(host, opts);
  await a.start();
  return a;
}

class Refusal extends Error {
  constructor(readonly code: ResultsRefusal, message: string) {
    super(message);
  }
}

class Libp2pResultsAcceptor implements ResultsAcceptor {
  readonly counters = { bytesSent: 0, ranges: 0, refused: {} as Partial<Record<ResultsRefusal, number>> };
  readonly #init: ResultsInit;
  readonly #perPeer = new Map<string, number>();
  readonly #streams = new Set<Stream>();
  #stopped = false;

  constructor(readonly host: Host, readonly opts: ResultsAcceptorOptions) {
    this.#init = { ...RESULTS_DEFAULTS, ...opts.init };
  }

  async start(): Promise<void> {
    // libp2p's own per-connection cap sits a little above ours, so a peer just over ours is answered `busy`. The
    // registration also caps this node's own fetches from one provider (outbound: ResultsRequests dials under it),
    // which run several at once (a transfer per file, an array job's instances): the same cap, not 1
    await this.host.handle(RESULTS_PROTOCOL, (stream: Stream, connection: Connection) => void this.#accept(stream, connection.remotePeer.toString()), {
      maxInboundStreams: this.#init.maxStreamsPerPeer + 4,
      maxOutboundStreams: this.#init.maxStreamsPerPeer + 4,
    });
  }

  streamsOf(peer: string): number {
    return this.#perPeer.get(peer) ?? 0;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.host.unhandle(RESULTS_PROTOCOL);
    for (const s of this.#streams) s.abort(new Error('the results service stopped'));
  }

  async #accept(stream: Stream, peer: string): Promise<void> {
    const held = this.streamsOf(peer);
    if (this.#stopped) return stream.abort(new Error('the results service stopped'));
    stream.inactivityTimeout = this.#init.inactivityTimeoutMs;
    if (held >= this.#init.maxStreamsPerPeer || this.#streams.size >= this.#init.maxStreams) {
      return this.#refuse(stream, peer, new Refusal('busy', `${held} results streams of yours are open here already; fetch fewer files at once`));
    }
    this.#perPeer.set(peer, held + 1);
    this.#streams.add(stream);
    try {
      await this.#serve(stream, peer);
    } catch (e) {
      if (e instanceof Refusal) await this.#refuse(stream, peer, e);
      else {
        this.opts.log.warn({ peer, err: (e as Error).message }, 'a results stream failed');
        stream.abort(e as Error);
      }
    } finally {
      this.#streams.delete(stream);
      const n = this.streamsOf(peer) - 1;
      if (n > 0) this.#perPeer.set(peer, n);
      else this.#perPeer.delete(peer);
    }
  }

  async #serve(stream: Stream, peer: string): Promise<void> {
    const req = await this.#request(stream);
    const what = `allocation ${req.allocationId}${req.index === undefined ? '' : ` instance ${req.index}`}`;
    const layout = await this.opts.authorize(peer, req.allocationId, req.index).catch(asRefusal);
    if (!layout) throw new Refusal('not-found', `no ${what} of yours on this node`);
    const manifest = await manifestOrRefuse(layout, what).catch(asRefusal);
    if (req.type === 'manifest') {
      stream.send(encodeJsonFrame({ ok: true, files: manifest }, MAX_RESPONSE_BYTES));
      return void (await stream.close());
    }
    const range = await openRange(layout, manifest, req.path, req.offset, MAX_RANGE_BYTES).catch(asRefusal);
    try {
      stream.send(encodeJsonFrame({ ok: true, size: range.size, sha256: range.sha256, offset: range.offset, length: range.length }, MAX_RESPONSE_BYTES));
      this.counters.ranges += 1;
      for await (const chunk of range.chunks) {
        if (stream.status !== 'open') throw new Error(`the stream closed (${stream.status}) during the range`);
        this.counters.bytesSent += chunk.byteLength;
        if (!stream.send(chunk)) await stream.onDrain();
      }
    } finally {
      await range.close();
    }
    await stream.close();
  }

  async #request(stream: Stream): Promise<ResultsRequest> {
    let body: Uint8Array;
    try {
      body = await readFrame(stream, frameOf(MAX_REQUEST_BYTES), this.#init.requestTimeoutMs, 'request');
    } catch (e) {
      throw new Refusal('bad-request', (e as Error).message);
    }
    let parsed: ReturnType<typeof resultsRequestSchema.safeParse>;
    try {
      parsed = resultsRequestSchema.safeParse(decodeJson(body));
    } catch {
      throw new Refusal('bad-request', 'the request is not JSON');
    }
    if (!parsed.success) throw new Refusal('bad-request', `not a results request: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'request'}: ${i.message}`).join('; ')}`);
    return parsed.data as ResultsRequest;
  }

  /** Answers the refusal and closes this end; the stream is reset if the dialler has not closed within the grace. */
  async #refuse(stream: Stream, peer: string, why: Refusal): Promise<void> {
    this.counters.refused[why.code] = (this.counters.refused[why.code] ?? 0) + 1;
    this.opts.log.debug({ peer, code: why.code, err: why.message }, 'results request refused');
    const grace = setTimeout(() => stream.abort(new Error(`results refused (${why.code}); the dialler did not close`)), this.#init.refuseGraceMs);
    grace.unref();
    stream.addEventListener('close', () => clearTimeout(grace), { once: true });
    try {
      const answer: RefusalResponse = { ok: false, code: why.code, message: why.message };
      if (stream.writeStatus === 'writable') stream.send(encodeJsonFrame(answer, MAX_RESPONSE_BYTES));
      if (stream.readStatus === 'readable' || stream.readStatus === 'paused') await stream.closeRead();
      await stream.close();
    } catch {
      stream.abort(why);
    }
    if (stream.status !== 'open') clearTimeout(grace);
  }
}

/** A refusal of the store (results-store.ts) as the protocol's; anything else stays an error. */
function asRefusal(e: unknown): never {
  if ((e as Error).name === 'ResultsRefusedError') throw new Refusal((e as { code: ResultsRefusal }).code, (e as Error).message);
  throw e;
}
