/**
 * The requester's side of result files: a job's manifest and a file's bytes, from the provider that ran it over
 * `/dms/results/1.0.0` (or from this node's own disk when it ran here), for the API.
 *
 * A file is streamed from an offset to its end as one Readable, range after range (MAX_RANGE_BYTES each), each
 * pulled only as fast as the reader reads. At most maxTransfers files are in flight at once.
 */
import { Readable } from 'node:stream';
import type { Libp2p } from '@libp2p/interface';
import type { DealQueries } from './deal-queries.ts';
import { ResultsBusyError, ResultsConflictError, ResultsNotFoundError, ResultsQueryError } from './results-errors.ts';
import { type ArrayResultsView, type ResultsLocation, findResults, locateResults } from './results-locator.ts';
import { type Manifest, resultsLayout } from './results-manifest.ts';
import { manifestOrRefuse, openRange } from './results-store.ts';
import { ResultsFetchError, fetchManifest, fetchRange } from '../net/results/results-fetcher.ts';
import { MAX_RANGE_BYTES } from '../net/results/results.protocol.ts';

export const MAX_RESULT_TRANSFERS = 8;

export interface ResultsRequestsDeps {
  readonly queries: Pick<DealQueries, 'job'>;
  /** The libp2p host, while the network runs. */
  readonly host: () => Pick<Libp2p, 'dialProtocol'> | undefined;
  /** This node's peer id: a job it ran itself is read from its own disk. */
  readonly self: string;
  readonly dataDir: string;
  readonly maxTransfers?: number;
}

export interface ResultsManifestView extends ResultsLocation {
  readonly files: Manifest;
}

/** A file's bytes from `offset` to its end. */
export interface ResultsFileStream {
  readonly size: number;
  readonly sha256: string;
  readonly offset: number;
  readonly body: Readable;
}

type Range = { size: number; sha256: string; end: number; body: Readable };

export class ResultsRequests {
  #transfers = 0;

  constructor(readonly deps: ResultsRequestsDeps) {}

  get transfers(): number {
    return this.#transfers;
  }

  /** The manifest of a job (of instance `index` of an array job); an array job asked without an index: its completed instances. */
  async manifest(jobId: string, index?: number): Promise<ResultsManifestView | ArrayResultsView> {
    const at = await findResults(this.deps.queries, jobId, index);
    if ('count' in at) return at;
    const files = await this.#call(async () => (this.#local(at) ? manifestOrRefuse(this.#layout(at), `job ${jobId}`) : fetchManifest(this.#host(), await this.#peer(at), this.#req(at))));
    return { ...at, files };
  }

  async file(jobId: string, path: string, offset: number, index?: number): Promise<ResultsFileStream> {
    const at = await locateResults(this.deps.queries, jobId, index);
    if (this.#transfers >= (this.deps.maxTransfers ?? MAX_RESULT_TRANSFERS)) throw new ResultsBusyError(`${this.#transfers} result files are being fetched already; try again when one is done`);
    this.#transfers += 1;
    let counted = true;
    const release = () => {
      if (counted) this.#transfers -= 1;
      counted = false;
    };
    try {
      const first = await this.#range(at, path, offset);
      const next = (from: number) => this.#range(at, path, from);
      async function* all(): AsyncGenerator<Uint8Array> {
        let r = first;
        for (;;) {
          for await (const chunk of r.body) yield chunk as Uint8Array;
          if (r.end >= r.size) return;
          r = await next(r.end);
        }
      }
      const body = Readable.from(all(), { objectMode: false });
      body.once('close', release);
      return { size: first.size, sha256: first.sha256, offset, body };
    } catch (e) {
      release();
      throw e;
    }
  }

  async #range(at: ResultsLocation, path: string, offset: number): Promise<Range> {
    return this.#call(async () => {
      if (this.#local(at)) {
        const layout = this.#layout(at);
        const r = await openRange(layout, await manifestOrRefuse(layout, `job ${at.jobId}`), path, offset, MAX_RANGE_BYTES);
        return { size: r.size, sha256: r.sha256, end: r.offset + r.length, body: Readable.from(r.chunks, { objectMode: false }) };
      }
      const { header, body } = await fetchRange(this.#host(), await this.#peer(at), { ...this.#req(at), path, offset });
      return { size: header.size, sha256: header.sha256, end: header.offset + header.length, body };
    });
  }

  #local(at: ResultsLocation): boolean {
    return at.provider === this.deps.self;
  }

  #layout(at: ResultsLocation) {
    return resultsLayout(this.deps.dataDir, at.allocationId, at.index);
  }

  #req(at: ResultsLocation): { allocationId: string; index?: number } {
    return at.index === undefined ? { allocationId: at.allocationId } : { allocationId: at.allocationId, index: at.index };
  }

  #host(): Pick<Libp2p, 'dialProtocol'> {
    const host = this.deps.host();
    if (!host) throw new ResultsFetchError('unreachable', 'the network is not running');
    return host;
  }

  #peer(at: ResultsLocation): Promise<Parameters<Libp2p['dialProtocol']>[0]> {
    return peerIdOf(at.provider);
  }

  /** Runs `op`, turning a refusal (the provider's or the local store's) into the API's error for it. */
  async #call<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      const code = (e as { code?: string }).code;
      const name = (e as Error).name;
      if (name !== 'ResultsFetchError' && name !== 'ResultsRefusedError') throw e;
      const message = (e as Error).message;
      if (code === 'not-found') throw new ResultsNotFoundError(message);
      if (code === 'not-ready' || code === 'changed') throw new ResultsConflictError(message);
      if (code === 'busy') throw new ResultsBusyError(message);
      if (code === 'bad-request') throw new ResultsQueryError(message);
      throw e;
    }
  }
}

/** The provider's PeerId (@libp2p/peer-id is loaded with the network; imported here only when needed). */
async function peerIdOf(peer: string): Promise<Parameters<Libp2p['dialProtocol']>[0]> {
  const { peerIdFromString } = await import('@libp2p/peer-id');
  return peerIdFromString(peer);
}
