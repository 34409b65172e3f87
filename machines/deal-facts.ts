/**
 * The facts the deal actors record for the indexes (machines/indexes.ts), derived from two successive contexts,
 * live and during replay alike.
 */
import type { Fact } from './indexes.ts';
import type { ProviderContext } from './provider.machine.ts';
import type { RequesterContext } from './requester.context.ts';

export function requesterFacts(b: RequesterContext, a: RequesterContext): Fact[] {
  if (a === b) return [];
  const facts: Fact[] = [];
  const { dealId } = a.input;
  if (a.nonce !== b.nonce && a.nonce > 0) facts.push({ type: 'BidRequestSent', dealId, nonce: a.nonce });
  const before = a.nonce === b.nonce ? b.bids.length : 0;
  for (const rb of a.bids.slice(before)) facts.push({ type: 'BidReceived', dealId, nonce: rb.bid.nonce, provider: rb.bid.provider });
  const r = a.record;
  if (r.state !== b.record.state || r.provider !== b.record.provider || r.exitCode !== b.record.exitCode || (b.nonce === 0 && a.nonce > 0)) {
    facts.push({ type: 'JobChanged', job: { id: r.id, name: r.name, state: r.state, provider: r.provider, exitCode: r.exitCode, createdAt: r.createdAt, startedAt: r.startedAt } });
  }
  return facts;
}

export function providerFacts(b: ProviderContext, a: ProviderContext): Fact[] {
  // the first event of a provider negotiation sends its bid
  if (b.record.createdAt !== 0 || a.record.createdAt === 0) return [];
  return [{ type: 'BidSent', dealId: a.record.dealId, nonce: a.record.nonce, requester: a.record.requester }];
}
