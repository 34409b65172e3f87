/**
 * What the API shows of the network: the parts `info` adds, the topology with its DOT rendering, and ping
 * round trips.
 */
import type { NetCountersView } from '../net/net-counters.ts';
import type { NetworkService, Reach } from '../net/network-service.ts';
import { topologyToDot } from '../net/topology.ts';

/** A peer the edge refuses for now, as `info` shows it. */
export interface RefusedPeerView {
  readonly peer: string;
  /** Until when, ISO 8601. */
  readonly until: string;
  /** The budget it stayed far over (`bid.request` per author, gossip envelopes or bytes). */
  readonly budget: string;
}

/** Message counters, with the peers refused now. */
export type MessagesView = NetCountersView & { readonly refusedPeers: readonly RefusedPeerView[] };

/**
 * What `info` adds about the network: addresses, peers, how far a broadcast reaches, and the messages: counters
 * in and out, refusals by reason, and which peers are refused and until when.
 */
export function netInfo(net: NetworkService | undefined): { listen: string[]; peers: number; reach: Reach | null; messages: MessagesView | null } {
  if (!net) return { listen: [], peers: 0, reach: null, messages: null };
  const refusedPeers = net.refusedPeers().map((r) => ({ peer: r.peer, until: new Date(r.until).toISOString(), budget: r.budget.replace(/^type:/, '') }));
  return { listen: net.listen(), peers: net.peers().length, reach: net.reach(), messages: { ...net.counters(), refusedPeers } };
}

export async function topologyView(net: NetworkService | undefined): Promise<unknown> {
  if (!net) return { vertex: null, vertices: [], edges: [], dot: 'graph dms {\n}\n' };
  const t = await net.topology();
  return { ...t, dot: topologyToDot(t) };
}

export async function pingView(net: NetworkService | undefined, peer: string, count: number): Promise<unknown> {
  if (!net) throw new Error('the network is not running');
  const rtts = await net.ping(peer, count);
  const sorted = [...rtts].sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return { peer, count: rtts.length, rttMs: rtts.map(round), minMs: round(sorted[0]!), p50Ms: round(sorted[Math.floor(sorted.length / 2)]!), maxMs: round(sorted.at(-1)!) };
}
