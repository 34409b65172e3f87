/**
 * The provider's results service: `/dms/results/1.0.0` on the node's libp2p host, answering only the requester of
 * each allocation (the authenticated remote peer of the stream, checked against the allocation's requester).
 */
import type { Libp2p } from '@libp2p/interface';
import type { DealService } from './deal-service.ts';
import { resultsLayout } from './results-manifest.ts';
import { ResultsRefusedError } from './results-store.ts';
import { type ResultsAcceptor, type ResultsInit, serveResults } from '../net/results/results-acceptor.ts';
import type { TunnelLog } from '../net/tunnel/tunnel-counters.ts';

export function serveJobResults(host: Pick<Libp2p, 'handle' | 'unhandle'>, svc: Pick<DealService, 'provisions' | 'queries' | 'deps' | 'grants'>, log: TunnelLog, init?: Partial<ResultsInit>): Promise<ResultsAcceptor> {
  return serveResults(host, {
    log,
    ...(init ? { init } : {}),
    authorize: async (peer, allocationId, index) => {
      // an open deal knows its requester (and grant); an allocation that ended, its record
      const deal = svc.provisions.get(allocationId) ?? (await svc.queries.allocation(allocationId).catch(() => undefined));
      if (deal?.requester !== peer) return undefined;
      const lapsed = svc.grants.lapsed(deal.grant, 'results');
      if (lapsed) throw new ResultsRefusedError('unauthorized', lapsed);
      return resultsLayout(svc.deps.dataDir, allocationId, index);
    },
  });
}
