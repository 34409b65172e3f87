// Which actors and events are a deal's, and which received message was which node's send (replay --deal): the
// matching by type and content, for broadcasts, directed sends, repeats without a send, lost sends and clocks
// that disagree.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type MatchEntry, type WireSend, dealIdOfActor, dealIdsOf, inDeal, jobIdOf, matchHops, messageKey, nodeEventInDeal, wireSendsOf } from '../../../runtime/replay/deal-match.ts';

const J = 'fa4a89a37a53c36019e8a1317a4b8932';
const A = '12D3KooWRequesterAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const B = '12D3KooWProviderBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';
const C = '12D3KooWProviderCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC';
const key = `${J}.1@${A}`;

const Members = suite('the deal\'s actors and events');

Members('actor ids name their deal: job, ensemble, and provider/allocation by their deal key', () => {
  assert.is(dealIdOfActor(`job/${J}`), J);
  assert.is(dealIdOfActor(`ensemble/${J}`), J);
  assert.is(dealIdOfActor(`job/${J}@kv`), `${J}@kv`);
  assert.is(dealIdOfActor(`provider/${key}`), J);
  assert.is(dealIdOfActor(`allocation/${J}@kv.3@${A}`), `${J}@kv`);
  assert.is(dealIdOfActor('node'), undefined);
  assert.is(dealIdOfActor('trust'), undefined);
  assert.is(dealIdOfActor('provider/not-a-key'), undefined);
});

Members('an ensemble\'s parts are in its deal; another job whose id starts the same is not', () => {
  assert.ok(inDeal(J, J));
  assert.ok(inDeal(`${J}@client`, J));
  assert.ok(inDeal(`${J}@client.2`, J));
  assert.not.ok(inDeal(`${J}0`, J));
  assert.not.ok(inDeal(undefined, J));
  assert.is(jobIdOf(`job/${J}`), J);
  assert.is(jobIdOf(J), J);
});

Members('a Node event is the deal\'s when its payload names the deal, its bid\'s, or a key of it', () => {
  assert.ok(nodeEventInDeal({ type: 'bid.request', dealId: J, nonce: 1 }, J));
  assert.ok(nodeEventInDeal({ type: 'ledger.allocate', allocationId: key, lockId: key }, J));
  assert.ok(nodeEventInDeal({ type: 'ledger.release', allocationId: `${J}@kv.1@${A}` }, J));
  assert.not.ok(nodeEventInDeal({ type: 'ledger.lock', lockId: 'k1' }, J));
  assert.not.ok(nodeEventInDeal({ type: 'monitor.sample', sample: {} }, J));
  assert.equal(dealIdsOf({ bid: { dealId: J } }), [J]);
  assert.equal(dealIdsOf(null), []);
});

Members.run();

const Sends = suite('intents as the messages they send');

Sends('X.send intents are X messages; status.push is allocation.status; bid.open sends the bid; others send nothing', () => {
  const s = wireSendsOf([
    { type: 'deal.commit.send', to: B, dealId: J, nonce: 1 },
    { type: 'bid.request.send', dealId: J, nonce: 2, job: {}, expiresAt: 1 },
    { type: 'status.push', to: A, status: { dealId: J, nonce: 1, allocationId: key, state: 'running', message: 'the job runs' } },
    { type: 'bid.open', input: { requester: A, bid: { dealId: J, nonce: 1, provider: B } } },
    { type: 'reply.send', replyTo: 'x#1', ok: true },
    { type: 'timer.schedule', key: 'w', at: 5 },
  ]);
  assert.equal(s.map((x) => [x.type, x.to]), [['deal.commit', B], ['bid.request', null], ['allocation.status', A], ['bid.submit', A]]);
  assert.is(s[0]!.key, messageKey('deal.commit', { dealId: J, nonce: 1, from: B, now: 9 }));
  assert.is(s[2]!.key, messageKey('allocation.status', { dealId: J, nonce: 1, allocationId: key, state: 'running', message: 'the job runs', exitCode: null, from: B, now: 9 }));
  assert.is(s[3]!.key, messageKey('bid.submit', { bid: { dealId: J, nonce: 1, price: 0 }, rttMs: 3, from: B }));
});

Sends('a message logged without its deal id (part.start to an allocation) is keyed by the receiving actor', () => {
  const [send] = wireSendsOf([{ type: 'part.start.send', to: C, dealId: `${J}@client`, nonce: 1, addrs: [], members: [] }]);
  assert.is(messageKey('part.start', { type: 'part.start', addrsEnv: {} }, `allocation/${J}@client.1@${A}`), send!.key);
  assert.is.not(messageKey('part.start', { type: 'part.start' }, `allocation/${J}@client.2@${A}`), send!.key);
});

Sends.run();

// ---- matchHops ----

let seq = 0;
function ev(node: string, actor: string, at: number, type: string, origin: string, payload: unknown, sends: WireSend[] = []): MatchEntry {
  seq += 1;
  return { node, actor, seq, at, type, origin, payload, sends };
}
const send = (type: string, to: string | null, payload: unknown): WireSend => ({ type, to, key: messageKey(type, payload) });
const NODES = new Set([A, B, C]);

const Hops = suite('matchHops: a received message and the event that sent it');

Hops('a broadcast is matched by every receiver; each answer by its own send; latency is receiver minus sender', () => {
  const start = ev(A, `job/${J}`, 1000, 'deal.start', 'local', {}, [send('bid.request', null, { dealId: J, nonce: 1 })]);
  const atB = ev(B, 'node', 1040, 'bid.request', A, { dealId: J, nonce: 1, from: A });
  const atC = ev(C, 'node', 1055, 'bid.request', A, { dealId: J, nonce: 1, from: A });
  // B's Node answered with a bid (its bid.open intent)
  const entries = [start, { ...atB, sends: [send('bid.submit', A, { bid: { dealId: J, nonce: 1 } })] }, atC, ev(A, `job/${J}`, 1070, 'bid.submit', B, { bid: { dealId: J, nonce: 1 }, from: B })];
  const hops = matchHops(entries, NODES);
  assert.equal(hops.get(1), { from: { node: A, actor: `job/${J}`, seq: start.seq }, latencyMs: 40 });
  assert.equal(hops.get(2), { from: { node: A, actor: `job/${J}`, seq: start.seq }, latencyMs: 55 });
  assert.equal(hops.get(3), { from: { node: B, actor: 'node', seq: atB.seq }, latencyMs: 30 });
  assert.not.ok(hops.has(0), 'a local event is no hop');
});

Hops('a directed send is matched once, and only by its addressee', () => {
  const commit = ev(A, `job/${J}`, 100, 'bid.submit', B, {}, [send('deal.commit', B, { dealId: J, nonce: 1 })]);
  const atC = ev(C, `provider/${key}`, 120, 'deal.commit', A, { dealId: J, nonce: 1 });
  const atB = ev(B, `provider/${key}`, 130, 'deal.commit', A, { dealId: J, nonce: 1 });
  const again = ev(B, `provider/${key}`, 140, 'deal.commit', A, { dealId: J, nonce: 1 });
  const hops = matchHops([commit, atC, atB, again], NODES);
  assert.is(hops.get(1), null, 'C was not sent it');
  assert.equal(hops.get(2)?.latencyMs, 30);
  assert.is(hops.get(3), null, 'a second receipt has no second send');
});

Hops('a status heartbeat (the same status again, sent by the runtime alone) stays unmatched', () => {
  const status = { dealId: J, nonce: 1, allocationId: key, state: 'running', message: 'the job runs' };
  const running = ev(B, `allocation/${key}`, 200, 'execution.started', 'local', {}, [send('allocation.status', A, status)]);
  const first = ev(A, `job/${J}`, 210, 'allocation.status', B, { ...status, from: B });
  const beat = ev(A, `job/${J}`, 5210, 'allocation.status', B, { ...status, from: B });
  const hops = matchHops([running, first, beat], NODES);
  assert.equal(hops.get(1)?.latencyMs, 10);
  assert.is(hops.get(2), null);
});

Hops('statuses differ by state and message: each receipt finds its own send', () => {
  const s1 = { dealId: J, nonce: 1, state: 'running', message: 'the job runs' };
  const s2 = { dealId: J, nonce: 1, state: 'running', message: 'the job runs and is healthy' };
  const e1 = ev(B, `allocation/${key}`, 100, 'execution.started', 'local', {}, [send('allocation.status', A, s1)]);
  const e2 = ev(B, `allocation/${key}`, 300, 'health.result', 'local', {}, [send('allocation.status', A, s2)]);
  const r2 = ev(A, `job/${J}`, 310, 'allocation.status', B, s2);
  const r1 = ev(A, `job/${J}`, 110, 'allocation.status', B, s1);
  const hops = matchHops([e1, e2, r2, r1], NODES);
  assert.equal(hops.get(2)?.from.seq, e2.seq);
  assert.equal(hops.get(3)?.from.seq, e1.seq);
});

Hops('a send lost and sent again: the receipt is paired with the latest send before it, not the lost one', () => {
  const p = { dealId: J, nonce: 1 };
  const lost = ev(A, `job/${J}`, 100, 'a', 'local', {}, [send('deal.cancel', B, p)]);
  const retry = ev(A, `job/${J}`, 5100, 'timer.fired', 'timer', {}, [send('deal.cancel', B, p)]);
  const got = ev(B, `provider/${key}`, 5120, 'deal.cancel', A, p);
  assert.equal(matchHops([lost, retry, got], NODES).get(2), { from: { node: A, actor: `job/${J}`, seq: retry.seq }, latencyMs: 20 });
});

Hops('clocks that disagree: a receipt logged before its send still finds it (a negative latency says so)', () => {
  const p = { dealId: J, nonce: 1 };
  const sent = ev(A, `job/${J}`, 1000, 'x', 'local', {}, [send('deal.commit', B, p)]);
  const got = ev(B, `provider/${key}`, 990, 'deal.commit', A, p);
  assert.equal(matchHops([sent, got], NODES).get(1)?.latencyMs, -10);
});

Hops('a message from a peer whose data dir was not given is no hop at all (not even an unmatched one)', () => {
  const other = '12D3KooWSomeoneElseDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD';
  const got = ev(A, `job/${J}`, 10, 'bid.submit', other, { bid: { dealId: J, nonce: 1 } });
  assert.not.ok(matchHops([got], NODES).has(0));
});

Hops.run();
