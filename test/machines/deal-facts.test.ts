import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostedActor } from '../../actors/hosted-actor.ts';
import { providerActorKind } from '../../actors/provider.actor.ts';
import { requesterActorKind } from '../../actors/requester.actor.ts';
import { DEAL_DEFAULTS } from '../../machines/deal.constants.ts';
import type { Bid } from '../../machines/deal.wire.ts';
import { EMPTY_INDEXES, type Fact, evolveIndexes } from '../../machines/indexes.ts';
import type { JobSpec } from '../../machines/job.ts';
import type { ProviderInput } from '../../machines/provider.messages.ts';
import type { RequesterInput } from '../../machines/requester.messages.ts';
import { PEER_A, PEER_B, PEER_SELF } from '../fixtures/deal-fixtures.ts';

const T0 = 1_800_000_000_000;
const [SELF, A, B] = [PEER_SELF, PEER_A, PEER_B];
const JOB: JobSpec = {
  executor: 'process', name: 'hello', resources: { cpu: 1, memory: 2 ** 30, disk: 0, gpus: 0 }, timeoutMs: 60_000,
  constraints: { peers: [], excludePeers: [] }, process: { command: 'echo', args: ['hi'], env: {} },
};
const INPUT: RequesterInput = { dealId: 'job-1', job: JOB, self: SELF, createdAt: T0, deadline: T0 + 60_000, weights: { price: 1, score: 0, rtt: 0 }, timing: DEAL_DEFAULTS.requester };
const bid = (provider: string, price: number): Bid => ({ dealId: 'job-1', nonce: 1, provider, price, score: 1, resources: JOB.resources, expiresAt: T0 + 15_000 });

/** Delivers events one by one and returns every fact they produced, in order. */
function factsOf(actor: HostedActor, events: readonly unknown[]): Fact[] {
  return events.flatMap((e) => (actor.deliver([e]).facts ?? []).map((f) => f.fact as Fact));
}

test('a requester records the bid request, each bid and each change of the job, and the indexes fold them', () => {
  const actor = new HostedActor('job/job-1', requesterActorKind, { input: INPUT });
  const facts = factsOf(actor, [
    { type: 'deal.start', now: T0 },
    { type: 'bid.request.sent', nonce: 1, candidates: [A, B], now: T0 + 1 },
    { type: 'bid.submit', bid: bid(A, 2), from: A, rttMs: 1, now: T0 + 2 },
    { type: 'bid.submit', bid: bid(B, 1), from: B, rttMs: 1, now: T0 + 3 },
    { type: 'deal.committed', dealId: 'job-1', nonce: 1, from: B, now: T0 + 4 },
    { type: 'deal.allocated', dealId: 'job-1', nonce: 1, allocationId: 'job-1.1', from: B, now: T0 + 5 },
    { type: 'allocation.status', dealId: 'job-1', nonce: 1, allocationId: 'job-1.1', state: 'running', exitCode: null, message: '', from: B, now: T0 + 6 },
    { type: 'allocation.status', dealId: 'job-1', nonce: 1, allocationId: 'job-1.1', state: 'completed', exitCode: 0, message: '', from: B, now: T0 + 7 },
  ]);
  actor.stop();
  const types = facts.map((f) => f.type);
  assert.equal(types.slice(0, 2), ['BidRequestSent', 'JobChanged']);
  assert.equal(facts.filter((f) => f.type === 'BidReceived').map((f) => (f as { provider: string }).provider), [A, B]);
  const states = facts.flatMap((f) => (f.type === 'JobChanged' ? [f.job.state] : []));
  assert.equal(states, ['requesting', 'committing', 'provisioning', 'running', 'completed']);
  const ix = facts.reduce((acc, fact, i) => evolveIndexes(acc, { actor: 'job/job-1', seq: i + 1, ts: T0 + i, fact }), EMPTY_INDEXES);
  assert.equal(ix.bidRequestsSent, { count: 1, last: 'job-1.1' });
  assert.is(ix.bidsReceived.count, 2);
  assert.is(ix.jobs['job-1']!.state, 'completed');
  assert.is(ix.jobs['job-1']!.provider, B);
  assert.is(ix.jobs['job-1']!.exitCode, 0);
});

test('a provider records its bid once, when it starts', () => {
  const input: ProviderInput = { key: 'job-1.1', bid: bid(A, 1), requester: SELF, job: JOB, lockId: 'job-1.1' };
  const actor = new HostedActor('provider/job-1.1', providerActorKind, { input });
  const facts = factsOf(actor, [
    { type: 'provider.start', now: T0 },
    { type: 'deal.commit', dealId: 'job-1', nonce: 1, from: SELF, now: T0 + 1 },
  ]);
  actor.stop();
  assert.equal(facts, [{ type: 'BidSent', dealId: 'job-1', nonce: 1, requester: SELF }]);
});

test.run();
