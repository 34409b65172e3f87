/**
 * The API's result-file routes, on the requester: `GET /v1/jobs/:id/results?index=I` answers the manifest with
 * where it came from; `GET /v1/jobs/:id/results/file?path=P&offset=N&index=I` streams the file's bytes from
 * offset N to its end (headers `x-dms-size`, `x-dms-sha256`, `x-dms-offset`; content-length the bytes that follow).
 * A transfer cut short ends the response early: the client resumes from the offset it has.
 */
import type http from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { DealService } from '../deals/deal-service.ts';
import { ResultsQueryError } from '../deals/results-errors.ts';
import { isResultPath, resultIndexSchema } from '../deals/results-manifest.ts';
import { ResultsRequests } from '../deals/results-requests.ts';
import type { NetworkService } from '../net/network-service.ts';

export interface ResultsApi {
  results(id: string, query: URLSearchParams): Promise<unknown>;
  resultFile(id: string, query: URLSearchParams, res: http.ServerResponse): Promise<void>;
}

function indexOf(query: URLSearchParams): number | undefined {
  const raw = query.get('index');
  if (raw === null) return undefined;
  const r = resultIndexSchema.safeParse(raw);
  if (!r.success || raw.trim() === '') throw new ResultsQueryError(`index "${raw}" is not an instance index (0 to 99999)`);
  return r.data;
}

function offsetOf(query: URLSearchParams): number {
  const raw = query.get('offset') ?? '0';
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n)) throw new ResultsQueryError(`offset "${raw}" is not a byte offset`);
  return n;
}

export function resultsApi(deps: { deals: DealService; net: () => NetworkService | undefined; dataDir: string }): ResultsApi {
  const requests = new ResultsRequests({ queries: deps.deals.queries, host: () => deps.net()?.libp2p, self: deps.deals.deps.self, dataDir: deps.dataDir });
  return {
    results: (id, query) => requests.manifest(id, indexOf(query)),
    async resultFile(id, query, res) {
      const path = query.get('path') ?? '';
      if (!isResultPath(path)) throw new ResultsQueryError(`path "${path}" is not the path of a result file (relative, without . or ..)`);
      const f = await requests.file(id, path, offsetOf(query), indexOf(query));
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': f.size - f.offset,
        'x-dms-size': f.size,
        'x-dms-sha256': f.sha256,
        'x-dms-offset': f.offset,
      });
      await pipeline(f.body, res);
    },
  };
}
