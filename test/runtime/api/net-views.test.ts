import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { netInfo } from '../../../runtime/api/net-views.ts';
import { ManualClock } from '../../../runtime/clock.ts';
import { NetCounters } from '../../../runtime/net/net-counters.ts';
import type { NetworkService } from '../../../runtime/net/network-service.ts';
import { EDGE_BUDGETS, PeerBudgets } from '../../../runtime/net/peer-budgets.ts';

const Info = suite('info: the network\'s refusals by reason, and the peers refused now');

/** A network that shows real counters and budgets, and nothing else. */
function network(counters: NetCounters, budgets: PeerBudgets): NetworkService {
  const view = { listen: () => ['/ip4/127.0.0.1/tcp/1/ws/p2p/A'], peers: () => [], reach: () => ({ connected: 0, subscribed: 0, beyond: 0 }), counters: () => counters.view(), refusedPeers: () => budgets.refusedPeers() };
  return view as unknown as NetworkService;
}

Info('the edge\'s reasons are counted with the others; a refused peer is listed with its budget and until when', () => {
  const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
  const counters = new NetCounters();
  const budgets = new PeerBudgets(EDGE_BUDGETS, clock);
  for (const r of ['rate-limited', 'rate-limited', 'peer-refused', 'replay-cache-full', 'bad-signature'] as const) counters.reject(r);
  counters.tooLargeOut += 1;
  for (let i = 0; i < 401; i += 1) budgets.typed('12D3KooWFlood', 'bid.request');
  clock.advance(1000);
  const info = netInfo(network(counters, budgets));
  assert.equal(info.messages?.rejected, { 'bad-signature': 1, 'peer-refused': 1, 'rate-limited': 2, 'replay-cache-full': 1 });
  assert.is(info.messages?.rejectedTotal, 5);
  assert.is(info.messages?.tooLargeOut, 1);
  assert.equal(info.messages?.refusedPeers, [{ peer: '12D3KooWFlood', until: '2026-01-01T00:01:00.000Z', budget: 'bid.request' }]);
  // once the refusal ends, the peer is no longer listed
  clock.advance(59_000);
  assert.equal(netInfo(network(counters, budgets)).messages?.refusedPeers, []);
});

Info('no network: no messages', () => {
  assert.is(netInfo(undefined).messages, null);
});

Info.run();
