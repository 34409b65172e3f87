// Parts of the deals room that own state of their own, driven by a manual clock instead of sleeps: the deal
// actors' timers (runtime/deals/deal-timers.ts), the allocations' heartbeat (status-heartbeat.ts) and who may
// answer a job (job-requests.ts); and the typed view of a message at a deal inbox (deal-inboxes.ts).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BidGate } from '../../../runtime/deals/bid-gate.ts';
import { DealGrants } from '../../../runtime/deals/deal-grants.ts';
import { ManualClock } from '../../../runtime/clock.ts';
import { MAX_NODE_BACKLOG, MIN_ANSWER_MS, PROVIDER_ACCEPTS, REQUESTER_ACCEPTS, dealInboxes, inboundDeal } from '../../../runtime/deals/deal-inboxes.ts';
import { DealTimers } from '../../../runtime/deals/deal-timers.ts';
import { JobRequests, MAX_ANSWERERS } from '../../../runtime/deals/job-requests.ts';
import { type AllocationStatus, StatusHeartbeat } from '../../../runtime/deals/status-heartbeat.ts';
import { PROCESS_JOB } from '../../fixtures/deal-fixtures.ts';

const T0 = 1_700_000_000_000;

interface TimersCtx {
  clock: ManualClock;
  timers: DealTimers;
  fired: [actor: string, key: string, at: number][];
}

const Timers = suite<TimersCtx>('deal timers: one per actor and key, on the clock', {} as TimersCtx);
Timers.before.each((ctx) => {
  ctx.clock = new ManualClock(T0);
  ctx.fired = [];
  ctx.timers = new DealTimers(ctx.clock, (actor, key) => ctx.fired.push([actor, key, ctx.clock.now()]));
});

Timers('a timer fires at its absolute time, once', ({ clock, timers, fired }) => {
  timers.schedule('job/a', 'window', T0 + 2000);
  clock.advance(1999);
  assert.equal(fired, []);
  clock.advance(1);
  assert.equal(fired, [['job/a', 'window', T0 + 2000]]);
  clock.advance(10_000);
  assert.is(fired.length, 1);
  assert.is(timers.pending, 0);
});

Timers('a time that has passed fires at once (a recovered actor re-arming a due timer)', ({ clock, timers, fired }) => {
  timers.schedule('job/a', 'watch', T0 - 5000);
  clock.advance(0);
  assert.equal(fired, [['job/a', 'watch', T0]]);
});

Timers('scheduling a key again replaces its timer; other keys and actors keep theirs', ({ clock, timers, fired }) => {
  timers.schedule('job/a', 'step', T0 + 1000);
  timers.schedule('job/a', 'watch', T0 + 1500);
  timers.schedule('job/b', 'step', T0 + 1000);
  timers.schedule('job/a', 'step', T0 + 3000);
  assert.is(timers.pending, 3);
  clock.advance(3000);
  assert.equal(fired, [['job/b', 'step', T0 + 1000], ['job/a', 'watch', T0 + 1500], ['job/a', 'step', T0 + 3000]]);
});

Timers('cancel drops one timer, cancelAll every timer of an actor', ({ clock, timers, fired }) => {
  timers.schedule('job/a', 'step', T0 + 1000);
  timers.schedule('job/a', 'watch', T0 + 1000);
  timers.schedule('job/b', 'step', T0 + 1000);
  timers.cancel('job/a', 'step');
  timers.cancel('job/a', 'never-set');
  timers.cancelAll('job/b');
  clock.advance(1000);
  assert.equal(fired, [['job/a', 'watch', T0 + 1000]]);
});

Timers('once closed, every timer is dropped and none is set', ({ clock, timers, fired }) => {
  timers.schedule('job/a', 'step', T0 + 1000);
  timers.close();
  timers.schedule('job/a', 'watch', T0 + 1000);
  assert.is(timers.pending, 0);
  clock.advance(5000);
  assert.equal(fired, []);
  assert.is(clock.pending, 0);
});

Timers.run();

const status = (allocationId: string, state: AllocationStatus['state']): AllocationStatus => ({ dealId: 'd', nonce: 1, allocationId, state, exitCode: null, message: '' });

interface BeatCtx {
  clock: ManualClock;
  heartbeat: StatusHeartbeat;
  sent: [to: string, allocationId: string, state: string][];
}

const Beat = suite<BeatCtx>('status heartbeat: the latest status of each unfinished allocation, again every interval', {} as BeatCtx);
Beat.before.each((ctx) => {
  ctx.clock = new ManualClock(T0);
  ctx.sent = [];
  ctx.heartbeat = new StatusHeartbeat({ clock: ctx.clock, intervalMs: 2000, send: (to, s) => ctx.sent.push([to, s.allocationId, s.state]) });
});
Beat.after.each((ctx) => ctx.heartbeat.stop());

Beat('repeats the latest status of each allocation short of its end', ({ clock, heartbeat, sent }) => {
  heartbeat.start();
  heartbeat.note('peerA', status('x', 'starting'), false);
  heartbeat.note('peerA', status('x', 'running'), false);
  heartbeat.note('peerB', status('y', 'running'), false);
  clock.advance(1999);
  assert.equal(sent, []);
  clock.advance(1);
  assert.equal(sent, [['peerA', 'x', 'running'], ['peerB', 'y', 'running']]);
  clock.advance(2000);
  assert.is(sent.length, 4);
});

Beat('an ended allocation, or one forgotten, is not repeated', ({ clock, heartbeat, sent }) => {
  heartbeat.start();
  heartbeat.note('peerA', status('x', 'running'), false);
  heartbeat.note('peerA', status('x', 'completed'), true);
  heartbeat.note('peerB', status('y', 'running'), false);
  heartbeat.forget('y');
  clock.advance(10_000);
  assert.equal(sent, []);
});

Beat('beats only between start and stop', ({ clock, heartbeat, sent }) => {
  heartbeat.note('peerA', status('x', 'running'), false);
  clock.advance(5000);
  assert.equal(sent, [], 'not started');
  heartbeat.start();
  heartbeat.start(); // a second start is no second heartbeat
  clock.advance(2000);
  assert.is(sent.length, 1);
  heartbeat.stop();
  clock.advance(10_000);
  assert.is(sent.length, 1);
  assert.is(clock.pending, 0);
});

Beat.run();

const Asked = suite('job requests: who may answer a job');

Asked('only peers a round asked may answer; nothing reaches a job not asked for or ended', () => {
  const r = new JobRequests();
  assert.not.ok(r.mayAnswer('job-1', 'peerA', 'bid.submit'), 'no such job');
  r.open('job-1', PROCESS_JOB);
  r.asked('job-1', ['peerA'], false);
  assert.ok(r.mayAnswer('job-1', 'peerA', 'deal.committed'));
  assert.not.ok(r.mayAnswer('job-1', 'peerB', 'bid.submit'), 'not asked, round not open');
  r.asked('job-1', ['peerB'], false);
  assert.ok(r.mayAnswer('job-1', 'peerA', 'bid.submit'), 'a later round adds to the peers asked before');
  assert.ok(r.mayAnswer('job-1', 'peerB', 'bid.submit'));
  assert.is(r.spec('job-1'), PROCESS_JOB);
  r.close('job-1');
  assert.not.ok(r.mayAnswer('job-1', 'peerA', 'deal.committed'));
  assert.is(r.spec('job-1'), undefined);
});

Asked('in an open round any peer may bid or decline, and joins the asked ones, up to MAX_ANSWERERS', () => {
  const r = new JobRequests();
  r.asked('job-1', [], true);
  assert.not.ok(r.mayAnswer('job-1', 'far', 'deal.committed'), 'only bids and declines come from strangers');
  assert.ok(r.mayAnswer('job-1', 'far', 'bid.decline'));
  r.asked('job-1', [], false);
  assert.ok(r.mayAnswer('job-1', 'far', 'deal.committed'), 'it stays asked when the next round is not open');
  r.asked('job-1', [], true);
  for (let i = 1; i < MAX_ANSWERERS; i += 1) assert.ok(r.mayAnswer('job-1', `p${i}`, 'bid.submit'));
  assert.not.ok(r.mayAnswer('job-1', 'one-too-many', 'bid.submit'));
});

Asked('a recovered job takes answers from the peers its record names, in a round that is not open', () => {
  const r = new JobRequests();
  r.recovered('job-1', ['peerA', 'peerB']);
  assert.ok(r.mayAnswer('job-1', 'peerB', 'allocation.status'));
  assert.not.ok(r.mayAnswer('job-1', 'peerC', 'bid.submit'));
});

Asked.run();

const Inbound = suite('deal inboxes: a message as an inbox takes it');

const inbound = (type: string, payload: unknown) =>
  ({ envelope: { type, payload, from: { peer: 'peerA', did: 'did:key:z', inbox: 'provider' } }, broadcast: false }) as unknown as Parameters<typeof inboundDeal>[0];

Inbound('carries the type, the parsed payload and the authenticated sender', () => {
  const payload = { dealId: 'job-1', nonce: 2 };
  const m = inboundDeal(inbound('deal.commit', payload), PROVIDER_ACCEPTS);
  assert.equal(m, { type: 'deal.commit', payload, from: 'peerA' });
  if (m.type === 'deal.commit') assert.is(m.payload.nonce, 2);
});

Inbound('refuses a type the inbox does not take (the router never hands one over)', () => {
  assert.throws(() => inboundDeal(inbound('deal.commit', {}), REQUESTER_ACCEPTS), /does not accept/);
});

Inbound('the node inbox drops a bid request unlogged, counted as node-busy, while the Node has MAX_NODE_BACKLOG events waiting', () => {
  const sent: unknown[] = [];
  const rejected: string[] = [];
  const node = { backlog: 0, send: (e: unknown) => sent.push(e) };
  const svc = { deps: { log: { warn() {} }, self: 'me' }, replyAddrs: { note() {} }, whenRecovered: (run: () => void) => run(), now: () => 1, gate: new BidGate(), grants: new DealGrants(undefined, () => 1) };
  const router = { reject: (_peer: string, reason: string) => void rejected.push(reason) };
  const inboxes = dealInboxes(svc as never, node as never, router as never);
  const nodeInbox = inboxes.find((i) => i.name === 'node')!;
  const request = inbound('bid.request', { dealId: 'job-1', nonce: 1, job: {}, expiresAt: 10_000 });
  nodeInbox.handle(request);
  assert.is(sent.length, 1);
  node.backlog = MAX_NODE_BACKLOG;
  nodeInbox.handle(request);
  assert.is(sent.length, 1, 'a request reached the Node past its backlog bound');
  assert.equal(rejected, ['node-busy']);
  node.backlog = MAX_NODE_BACKLOG - 1;
  nodeInbox.handle(request);
  assert.is(sent.length, 2);
});

Inbound('the node inbox drops unlogged a bid request that expires before a bid could reach its requester, counting it', () => {
  const sent: unknown[] = [];
  const node = { backlog: 0, send: (e: unknown) => sent.push(e) };
  const gate = new BidGate();
  const svc = { deps: { log: { warn() {} }, self: 'me' }, replyAddrs: { note() {} }, whenRecovered: (run: () => void) => run(), now: () => 1000, gate, grants: new DealGrants(undefined, () => 1000) };
  const inboxes = dealInboxes(svc as never, node as never, { reject() {} } as never);
  const nodeInbox = inboxes.find((i) => i.name === 'node')!;
  for (const expiresAt of [900, 1000, 1000 + MIN_ANSWER_MS - 1]) nodeInbox.handle(inbound('bid.request', { dealId: 'job-1', nonce: 1, job: {}, expiresAt }));
  assert.is(sent.length, 0, 'a request too late to answer reached the Node');
  assert.is(gate.tooLate, 3);
  nodeInbox.handle(inbound('bid.request', { dealId: 'job-1', nonce: 2, job: {}, expiresAt: 1000 + MIN_ANSWER_MS }));
  assert.is(sent.length, 1, 'a request with time enough to answer goes on');
  assert.is(gate.tooLate, 3);
});

Inbound.run();
