import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Actor, createActor } from 'xstate';
import { requesterActorKind } from '../../actors/requester.actor.ts';
import type { AllocationState, Bid } from '../../machines/deal.wire.ts';
import type { JobSpec } from '../../machines/job.ts';
import { type RequesterContext, type RequesterMachine, requesterMachine } from '../../machines/requester.machine.ts';
import { spreadOver } from '../../machines/requester.rules.ts';
import type { JobRecord, RequesterEvent, RequesterInput, RequesterIntent, RequesterTiming, RoundReach } from '../../machines/requester.messages.ts';
import { GiB, T0 } from '../fixtures/node-fixtures.ts';
import { PROCESS_JOB, TEST_TIMING, PEER_A, PEER_B, PEER_C, PEER_SELF } from '../fixtures/deal-fixtures.ts';

// Three providers and this node. Peer ids only need to be distinct strings here.
const [SELF, A, B, C] = [PEER_SELF, PEER_A, PEER_B, PEER_C];
const DEAL = 'job-1';

const TIMING: RequesterTiming = TEST_TIMING;
const JOB: JobSpec = PROCESS_JOB;
/** Price alone decides the ranking unless a suite says otherwise. */
const INPUT: RequesterInput = { dealId: DEAL, job: JOB, self: SELF, createdAt: T0, deadline: T0 + 60_000, weights: { price: 1, score: 0, rtt: 0 }, timing: TIMING };

const t = (ms: number) => T0 + ms;

interface Harness {
  actor: Actor<RequesterMachine>;
  /** Every intent the actor emitted, in order. */
  out: RequesterIntent[];
  input: RequesterInput;
}

function spawn(input: RequesterInput, snapshot?: unknown): Harness {
  const h: Harness = { actor: createActor(requesterMachine, { input, ...(snapshot ? { snapshot: snapshot as never } : {}) }), out: [], input };
  h.actor.on('*', (e) => h.out.push(e));
  h.actor.start();
  return h;
}

/** One suite per behaviour: a fresh, started actor before each test, stopped after it. */
function behaviour(name: string, input: RequesterInput = INPUT) {
  const s = suite<Harness>(name, {} as Harness);
  s.before.each((h) => {
    Object.assign(h, spawn(input));
  });
  s.after.each((h) => {
    h.actor.stop();
  });
  return s;
}

const ctx = (h: Harness): RequesterContext => h.actor.getSnapshot().context;
const rec = (h: Harness): JobRecord => ctx(h).record;
const value = (h: Harness): unknown => h.actor.getSnapshot().value;

/** Sends an event and returns only the intents it caused. */
function send(h: Harness, e: RequesterEvent): RequesterIntent[] {
  const from = h.out.length;
  h.actor.send(e);
  return h.out.slice(from);
}
function ofType<K extends RequesterIntent['type']>(intents: readonly RequesterIntent[], type: K): Extract<RequesterIntent, { type: K }>[] {
  return intents.filter((i): i is Extract<RequesterIntent, { type: K }> => i.type === type);
}
const types = (intents: readonly RequesterIntent[]) => intents.map((i) => i.type);
const revert = (to: string, reason: string, nonce = 1): RequesterIntent => ({ type: 'deal.revert.send', to, dealId: DEAL, nonce, reason });

const start = (h: Harness, now = T0) => send(h, { type: 'deal.start', now });
const sent = (h: Harness, candidates: string[], nonce = 1, now = t(10)) => send(h, { type: 'bid.request.sent', nonce, candidates, now });
/** What closing the window early on a usable bid emits: cancel its timer, commit and allocate to `to`, time the step. */
const closesAndCommits = (to: string, stepAt: number) => [
  { type: 'timer.cancel', key: 'window' },
  { type: 'deal.commit.send', to, dealId: DEAL, nonce: 1 },
  { type: 'deal.allocate.send', to, dealId: DEAL, nonce: 1 },
  { type: 'timer.schedule', key: 'step', at: stepAt },
];
/** `bid.request.sent` as the runtime sends it now: whether the request went beyond the candidates, and how far. */
function sentTo(h: Harness, candidates: string[], o: { open?: boolean; reach?: RoundReach; nonce?: number; now?: number } = {}) {
  const { nonce = 1, now = t(10), ...more } = o;
  return send(h, { type: 'bid.request.sent', nonce, candidates, now, ...more });
}
function bidOf(provider: string, o: Partial<Bid> = {}): Bid {
  return { dealId: DEAL, nonce: 1, provider, price: 10, score: 100, resources: JOB.resources, expiresAt: t(15_000), ...o };
}
function submit(h: Harness, provider: string, o: Partial<Bid> & { from?: string; now?: number; rttMs?: number } = {}) {
  const { from = provider, now = t(100), rttMs = 20, ...bid } = o;
  return send(h, { type: 'bid.submit', bid: bidOf(provider, bid), from, rttMs, now });
}
const decline = (h: Harness, from: string, reason = 'not enough free cpu', now = t(100), nonce = 1) =>
  send(h, { type: 'bid.decline', dealId: DEAL, nonce, code: 'insufficient', reason, from, now });
const fire = (h: Harness, key: string, now: number) => send(h, { type: 'timer.fired', key, now });
const committed = (h: Harness, from: string, now: number, nonce = 1) => send(h, { type: 'deal.committed', dealId: DEAL, nonce, from, now });
const refused = (h: Harness, from: string, now: number, reason = 'busy', step: 'commit' | 'allocate' = 'commit') =>
  send(h, { type: 'deal.refused', dealId: DEAL, nonce: 1, step, reason, from, now });
const allocated = (h: Harness, from: string, now: number, allocationId = `${DEAL}.1`) => send(h, { type: 'deal.allocated', dealId: DEAL, nonce: 1, allocationId, from, now });
function status(h: Harness, from: string, state: AllocationState, now: number, o: { exitCode?: number | null; message?: string; allocationId?: string; nonce?: number } = {}) {
  const { exitCode = null, message = '', allocationId = `${DEAL}.1`, nonce = 1 } = o;
  return send(h, { type: 'allocation.status', dealId: DEAL, nonce, allocationId, state, exitCode, message, from, now });
}
const cancel = (h: Harness, now: number, replyTo: string | undefined = 'api-1') => send(h, { type: 'job.cancel', now, ...(replyTo ? { replyTo } : {}) });

/** Round 1 with candidates A and B; B bids 20, then A bids 10: the window closes and A (cheapest) is committed. */
function toCommitting(h: Harness): RequesterIntent[] {
  start(h);
  sent(h, [A, B]);
  submit(h, B, { price: 20, now: t(100) });
  return submit(h, A, { price: 10, now: t(200) });
}
/** On to running on A: committed at +300, allocated at +400, running at +500. */
function toRunning(h: Harness): void {
  toCommitting(h);
  committed(h, A, t(300));
  allocated(h, A, t(400));
  status(h, A, 'running', t(500));
  assert.is(rec(h).state, 'running');
}

// ---------------------------------------------------------------------------------------------------------------

const Happy = behaviour('requester: a job placed on the best bid, run, and completed');

Happy('deal.start asks for bids once and arms the window timer', (h) => {
  assert.is(value(h), 'idle');
  const out = start(h);
  assert.equal(out, [
    { type: 'bid.request.send', dealId: DEAL, nonce: 1, job: JOB, expiresAt: t(2000) },
    { type: 'timer.schedule', key: 'window', at: t(2000) },
  ]);
  assert.equal(value(h), { requesting: 'collecting' });
  assert.is(ctx(h).nonce, 1);
  assert.is(rec(h).rounds, 1);
  assert.is(rec(h).state, 'requesting');
  assert.equal(rec(h).history, [{ at: T0, state: 'requesting', message: 'asking for bids' }]);
});

Happy('the window closes when both candidates bid, without its timer, and the cheapest bid is committed', (h) => {
  start(h);
  assert.equal(sent(h, [A, B]), []);
  assert.equal(ctx(h).candidates, [A, B]);
  assert.equal(submit(h, B, { price: 20, now: t(100) }), []);
  const out = submit(h, A, { price: 10, now: t(200) });
  // the allocate goes right behind the commit: the provider takes them in order
  assert.equal(out, closesAndCommits(A, t(3200)));
  assert.is(value(h), 'committing');
  const r = rec(h);
  assert.is(r.state, 'committing');
  assert.is(r.provider, A);
  assert.equal(r.bids.map((b) => [b.provider, b.rank, b.price, b.outcome]), [[A, 1, 10, 'chosen'], [B, 2, 20, 'candidate']]);
  assert.match(r.history[1]!.message, `2 bids, no declines; best: ${A} (rank 1, price 10, score 100, rtt 20 ms)`);
});

Happy('committed, allocated, running, completed: the record follows and job.ended is emitted once', (h) => {
  toCommitting(h);
  // the allocate went with the commit: only the allocate's timer now
  assert.equal(committed(h, A, t(300)), [{ type: 'timer.schedule', key: 'step', at: t(5300) }]);
  assert.equal(value(h), { provisioning: 'allocating' });
  assert.is(rec(h).state, 'provisioning');

  const out = allocated(h, A, t(400));
  assert.equal(out, [{ type: 'timer.schedule', key: 'step', at: t(60_400) }, revert(B, 'not chosen')]);
  assert.equal(value(h), { provisioning: 'starting' });
  assert.is(rec(h).allocationId, `${DEAL}.1`);
  assert.equal(rec(h).allocations, [`${DEAL}.1`]);
  assert.equal(rec(h).bids.map((b) => b.outcome), ['chosen', 'not-taken']);

  assert.equal(status(h, A, 'starting', t(450)), []);
  assert.equal(status(h, A, 'running', t(500)), [{ type: 'timer.cancel', key: 'step' }, { type: 'timer.schedule', key: 'watch', at: t(6500) }]);
  assert.is(rec(h).state, 'running');
  assert.is(rec(h).startedAt, t(500));
  // a heartbeat pushes the watch back
  assert.equal(status(h, A, 'running', t(2500)), [{ type: 'timer.schedule', key: 'watch', at: t(8500) }]);

  const end = status(h, A, 'completed', t(3000), { exitCode: 0, message: 'exited' });
  assert.equal(types(end), ['timer.cancel', 'job.ended']);
  assert.equal(value(h), { ended: 'completed' });
  const r = rec(h);
  assert.equal(ofType(end, 'job.ended')[0]!.record, r);
  assert.is(r.state, 'completed');
  assert.is(r.exitCode, 0);
  assert.is(r.endedAt, t(3000));
  assert.is(r.updatedAt, t(3000));
  assert.equal(ctx(h).timers, {});
  assert.equal(r.history.map((e) => e.state), ['requesting', 'requesting', 'committing', 'provisioning', 'provisioning', 'running', 'completed']);
  assert.match(r.history.at(-1)!.message, `completed on ${A} with exit code 0`);
  // a repeated final status changes nothing and ends nothing again
  const again = status(h, A, 'completed', t(3100), { exitCode: 0 });
  assert.equal(ofType(again, 'job.ended'), []);
  assert.equal(h.out.filter((i) => i.type === 'job.ended').length, 1);
});

Happy('the actor kind presents the record', (h) => {
  toCommitting(h);
  assert.equal(requesterActorKind.present!(ctx(h), value(h)), rec(h));
  assert.is(requesterActorKind.kind, 'requester');
});

Happy.run();

const ByScore = behaviour('requester: bids are ranked by the requester\'s weights', { ...INPUT, weights: { price: 0, score: 1, rtt: 0 } });

ByScore('with only score weighted, the faster provider ranks first although it is dearer', (h) => {
  start(h);
  sent(h, [A, B]);
  submit(h, A, { price: 10, score: 100 });
  const out = submit(h, B, { price: 50, score: 300 });
  assert.equal(ofType(out, 'deal.commit.send'), [{ type: 'deal.commit.send', to: B, dealId: DEAL, nonce: 1 }]);
  assert.equal(rec(h).bids.map((b) => b.provider), [B, A]);
  assert.ok(rec(h).bids[0]!.utility > rec(h).bids[1]!.utility);
});

ByScore.run();

// ---------------------------------------------------------------------------------------------------------------

const Enough = behaviour('requester: the window closes early on enoughBids', { ...INPUT, timing: { ...TIMING, enoughBids: 2 } });

Enough('two bids of three candidates close the window; the third bid comes too late and is reverted', (h) => {
  start(h);
  sent(h, [A, B, C]);
  submit(h, A, { price: 30 });
  const out = submit(h, B, { price: 20 });
  assert.equal(types(out), ['timer.cancel', 'deal.commit.send', 'deal.allocate.send', 'timer.schedule']);
  assert.is(rec(h).provider, B);
  const late = submit(h, C, { price: 1, now: t(300) });
  assert.equal(late, [revert(C, 'not taken: the bid window had closed')]);
  assert.equal(rec(h).bids.map((b) => b.provider), [B, A]);
});

Enough.run();

const Window = behaviour('requester: the window timer closes a round with fewer bids');

Window('one bid of three candidates waits for the timer; then that bid is committed', (h) => {
  start(h);
  sent(h, [A, B, C]);
  assert.equal(submit(h, A), []);
  assert.equal(value(h), { requesting: 'collecting' });
  const out = fire(h, 'window', t(2000));
  // the timer fired: no cancel for it
  assert.equal(out, [{ type: 'deal.commit.send', to: A, dealId: DEAL, nonce: 1 }, { type: 'deal.allocate.send', to: A, dealId: DEAL, nonce: 1 }, { type: 'timer.schedule', key: 'step', at: t(5000) }]);
  assert.match(rec(h).history[1]!.message, `1 bid, no declines; best: ${A}`);
});

Window('without bid.request.sent the candidates are unknown and only the timer closes the window', (h) => {
  start(h);
  submit(h, A);
  submit(h, B);
  assert.equal(value(h), { requesting: 'collecting' });
  fire(h, 'window', t(2000));
  assert.is(value(h), 'committing');
});

Window('this node among the candidates is not waited for', (h) => {
  start(h);
  sent(h, [A, SELF]);
  submit(h, A);
  assert.is(value(h), 'committing');
});

Window('a decline is recorded once and counts as an answer', (h) => {
  start(h);
  sent(h, [A, B]);
  assert.equal(decline(h, B, 'not enough free cpu'), []);
  decline(h, B, 'again');
  assert.equal(rec(h).declines, [{ provider: B, code: 'insufficient', reason: 'not enough free cpu' }]);
  submit(h, A);
  assert.is(value(h), 'committing');
  assert.match(rec(h).history[1]!.message, '1 bid, 1 decline');
});

Window('an early or unknown timer does not close the window', (h) => {
  start(h);
  sent(h, [A, B]);
  submit(h, A);
  assert.equal(types(fire(h, 'window', t(500))), ['log.write']);
  assert.equal(types(fire(h, 'bogus', t(2000))), ['log.write']);
  assert.equal(value(h), { requesting: 'collecting' });
});

Window.run();

const Open = behaviour('requester: an open round (the request went beyond the candidates) waits for a bid');

Open('every candidate declined and no bid is in: the window stays open until its timer fires', (h) => {
  start(h);
  assert.equal(sentTo(h, [A, B], { open: true }), []);
  assert.is(ctx(h).open, true);
  assert.equal(decline(h, A), []);
  assert.equal(decline(h, B, 'not enough free memory', t(200)), []);
  assert.equal(value(h), { requesting: 'collecting' });
  assert.equal(ctx(h).timers, { window: t(2000) });
  // the timer fired: no cancel for it, and no warn (two peers answered)
  assert.equal(fire(h, 'window', t(2000)), [{ type: 'timer.schedule', key: 'retry', at: t(2500) }]);
  assert.equal(value(h), { requesting: 'waiting' });
  assert.equal(rec(h).history[1], { at: t(2000), state: 'requesting', message: 'bid window of round 1 closed: no bids, 2 declines' });
});

Open('a bid from a peer that is not a candidate is taken, and once every candidate answered it wins at once', (h) => {
  start(h);
  sentTo(h, [A, B], { open: true });
  decline(h, A);
  // B has not answered: the window waits for it
  assert.equal(submit(h, C, { price: 30, now: t(150) }), []);
  assert.equal(ctx(h).bids.map((b) => b.bid.provider), [C]);
  assert.equal(value(h), { requesting: 'collecting' });
  const out = decline(h, B, 'not enough free cpu', t(200));
  assert.equal(out, closesAndCommits(C, t(3200)));
  assert.is(value(h), 'committing');
  assert.is(rec(h).provider, C);
  assert.equal(rec(h).bids.map((b) => [b.provider, b.rank, b.outcome]), [[C, 1, 'chosen']]);
  assert.match(rec(h).history[1]!.message, `1 bid, 2 declines; best: ${C}`);
});

Open('every candidate answered and one bid is in: the window closes at once', (h) => {
  start(h);
  sentTo(h, [A, B], { open: true, reach: { connected: 2, subscribed: 2 } });
  assert.equal(submit(h, A), []);
  assert.equal(value(h), { requesting: 'collecting' });
  const out = decline(h, B);
  assert.equal(types(out), ['timer.cancel', 'deal.commit.send', 'deal.allocate.send', 'timer.schedule']);
  assert.equal(ofType(out, 'deal.commit.send'), [{ type: 'deal.commit.send', to: A, dealId: DEAL, nonce: 1 }]);
  assert.is(value(h), 'committing');
});

Open('a round without `open` (as old logs have it) still closes at once when every candidate answered', (h) => {
  start(h);
  sent(h, [A, B]);
  assert.is(ctx(h).open, false);
  assert.equal(decline(h, A), []);
  const out = decline(h, B, 'not enough free cpu', t(200));
  assert.equal(out, [{ type: 'timer.cancel', key: 'window' }, { type: 'timer.schedule', key: 'retry', at: t(700) }]);
  assert.equal(value(h), { requesting: 'waiting' });
  assert.equal(rec(h).history[1], { at: t(200), state: 'requesting', message: 'bid window of round 1 closed: no bids, 2 declines' });
});

Open('open with no candidates: the window waits for its timer and does not say there was no peer to ask', (h) => {
  start(h);
  assert.equal(sentTo(h, [], { open: true, reach: { connected: 2, subscribed: 2 } }), []);
  assert.equal(value(h), { requesting: 'collecting' });
  const out = fire(h, 'window', t(2000));
  assert.equal(types(out), ['log.write', 'timer.schedule']);
  const closed = rec(h).history[1]!.message;
  assert.not.match(closed, 'no peer to ask');
  assert.match(closed, 'bid window of round 1 closed: no bids, no declines: the request reached no one: 2 DMS peers connected, 2 subscribed');
});

Open('not open with no candidates: the window closes at once, saying there was no peer to ask, without a warn', (h) => {
  start(h);
  const out = sentTo(h, [], { reach: { connected: 0, subscribed: 0 } });
  assert.equal(out, [{ type: 'timer.cancel', key: 'window' }, { type: 'timer.schedule', key: 'retry', at: t(510) }]);
  assert.equal(rec(h).history[1], {
    at: t(10),
    state: 'requesting',
    message: 'bid window of round 1 closed: no bids, no declines: no peer to ask (no DMS peer is connected, or the job\'s peers are not reachable; see `peers`)',
  });
});

Open('the next round starts neither open nor with the last round\'s reach', (h) => {
  start(h);
  sentTo(h, [A, B], { open: true, reach: { connected: 14, subscribed: 14 } });
  assert.is(ctx(h).open, true);
  assert.equal(ctx(h).reach, { connected: 14, subscribed: 14 });
  decline(h, A);
  decline(h, B);
  fire(h, 'window', t(2000));
  fire(h, 'retry', t(2500));
  assert.is(ctx(h).nonce, 2);
  assert.is(ctx(h).open, false);
  assert.is(ctx(h).reach, null);
  // round 2 is not open: both declines close it at once
  sent(h, [A, B], 2, t(2510));
  decline(h, A, 'busy', t(2600), 2);
  decline(h, B, 'busy', t(2700), 2);
  assert.equal(value(h), { requesting: 'waiting' });
  assert.match(rec(h).history.at(-2)!.message, 'bid window of round 2 closed: no bids, 2 declines');
  // round 3 carries no reach: a silent round's warn names no counts
  fire(h, 'retry', t(3700));
  sent(h, [A, B], 3, t(3710));
  const warn = ofType(fire(h, 'window', t(5700)), 'log.write');
  assert.equal(warn.map((w) => w.data), [{ job: DEAL, round: 3 }]);
  assert.match(warn[0]!.message, 'the request reached no one (2 peers asked)');
});

Open.run();

// ---------------------------------------------------------------------------------------------------------------

const Silent = behaviour('requester: a round nobody answered says how far its request went, at warn');

/** Round 1 sent to A, B and C with `reach`; its window timer fires with no answer. Returns the timer's intents. */
function unanswered(h: Harness, reach: RoundReach): RequesterIntent[] {
  start(h);
  sentTo(h, [A, B, C], { reach });
  return fire(h, 'window', t(2000));
}

Silent('14 peers connected and subscribed, none answered: the history names both counts and a warn carries them', (h) => {
  const out = unanswered(h, { connected: 14, subscribed: 14 });
  assert.equal(types(out), ['log.write', 'timer.schedule']);
  const closed = rec(h).history[1]!;
  assert.is(closed.at, t(2000));
  assert.match(closed.message, 'bid window of round 1 closed: no bids, no declines: the request reached no one: 14 DMS peers connected, 14 subscribed to the bid topic, and none answered');
  const [warn] = ofType(out, 'log.write');
  assert.equal(warn, { type: 'log.write', level: 'warn', message: `job ${DEAL}: ${closed.message}`, data: { job: DEAL, round: 1, connected: 14, subscribed: 14 } });
  // then the round is asked again, as any round without a bid
  assert.equal(value(h), { requesting: 'waiting' });
  assert.match(rec(h).message, 'no usable bid in round 1');
});

Silent('none subscribed to the bid topic: it says so', (h) => {
  const out = unanswered(h, { connected: 1, subscribed: 0 });
  const closed = rec(h).history[1]!.message;
  assert.match(closed, 'the request reached no one: 1 DMS peer connected, 0 subscribed to the bid topic; peers subscribe within seconds of connecting');
  assert.not.match(closed, 'none answered');
  assert.equal(ofType(out, 'log.write').map((w) => [w.level, w.data]), [['warn', { job: DEAL, round: 1, connected: 1, subscribed: 0 }]]);
});

Silent('the next silent round with the same reach logs at info; a changed reach warns again; the retry and the final message keep the reason', (h) => {
  unanswered(h, { connected: 14, subscribed: 14 });
  assert.match(rec(h).message, /^no usable bid in round 1 \(the request reached no one: 14 DMS peers connected, 14 subscribed/);
  fire(h, 'retry', t(2500));
  sentTo(h, [A, B, C], { nonce: 2, now: t(2510), reach: { connected: 14, subscribed: 14 } });
  const same = ofType(fire(h, 'window', t(4510)), 'log.write');
  assert.equal(same.map((w) => [w.level, w.data]), [['info', { job: DEAL, round: 2, connected: 14, subscribed: 14 }]]);
  fire(h, 'retry', t(5510));
  sentTo(h, [A, B, C], { nonce: 3, now: t(5520), reach: { connected: 15, subscribed: 15 } });
  const changed = ofType(fire(h, 'window', t(7520)), 'log.write');
  assert.equal(changed.map((w) => [w.level, w.data]), [['warn', { job: DEAL, round: 3, connected: 15, subscribed: 15 }]]);
});

Silent('a round with declines, or with a bid, logs no warn', (h) => {
  start(h);
  sentTo(h, [A, B, C], { reach: { connected: 14, subscribed: 14 } });
  decline(h, A);
  const declined = fire(h, 'window', t(2000));
  assert.equal(declined, [{ type: 'timer.schedule', key: 'retry', at: t(2500) }]);
  assert.equal(rec(h).history[1]!.message, 'bid window of round 1 closed: no bids, 1 decline');

  fire(h, 'retry', t(2500));
  sentTo(h, [A, B, C], { nonce: 2, now: t(2510), reach: { connected: 14, subscribed: 14 } });
  submit(h, A, { nonce: 2, now: t(2600) });
  const bid = fire(h, 'window', t(4500));
  assert.equal(ofType(bid, 'log.write'), []);
  assert.is(value(h), 'committing');
});

Silent.run();

// ---------------------------------------------------------------------------------------------------------------

const Retry = behaviour('requester: rounds without a provider are asked again with a growing pause');

Retry('no candidates: the window closes at once and retries back off 500, 1000, 1500 (capped), 1500 ms', (h) => {
  start(h);
  const first = sent(h, [], 1, t(10));
  assert.equal(first, [{ type: 'timer.cancel', key: 'window' }, { type: 'timer.schedule', key: 'retry', at: t(510) }]);
  assert.equal(value(h), { requesting: 'waiting' });
  assert.match(rec(h).message, 'no usable bid in round 1; queued, asking again in 500 ms');
  assert.is(rec(h).state, 'queued');
  let now = t(510);
  for (const [nonce, delay] of [[2, 1000], [3, 1500], [4, 1500]] as const) {
    const ask = fire(h, 'retry', now);
    assert.equal(ask, [
      { type: 'bid.request.send', dealId: DEAL, nonce, job: JOB, expiresAt: now + 2000 },
      { type: 'timer.schedule', key: 'window', at: now + 2000 },
    ]);
    assert.is(rec(h).rounds, nonce);
    const retry = ofType(sent(h, [], nonce, now + 5), 'timer.schedule');
    assert.equal(retry, [{ type: 'timer.schedule', key: 'retry', at: now + 5 + delay }]);
    now += 5 + delay;
  }
});

Retry('a new round forgets the last round\'s bids, declines and candidates', (h) => {
  start(h);
  sent(h, [A]);
  decline(h, A);
  fire(h, 'retry', t(600));
  assert.equal(ctx(h).candidates, null);
  assert.equal(rec(h).declines, []);
  assert.equal(ctx(h).bids, []);
  assert.is(ctx(h).nonce, 2);
});

Retry.run();

const Deadline = behaviour('requester: a job nobody takes before its deadline fails', { ...INPUT, deadline: T0 + 1000 });

Deadline('both candidates decline after the deadline: failed, naming their reasons', (h) => {
  start(h);
  sent(h, [A, B]);
  decline(h, A, 'not enough free cpu', t(1200));
  const out = decline(h, B, 'the requester is refused', t(1500));
  assert.equal(types(out), ['timer.cancel', 'job.ended']);
  assert.equal(value(h), { ended: 'failed' });
  const r = rec(h);
  assert.is(r.message, `no provider took the job before its deadline: ${A}: not enough free cpu; ${B}: the requester is refused`);
  assert.is(r.endedAt, t(1500));
  assert.equal(ofType(out, 'job.ended')[0]!.record, r);
});

Deadline.run();

// ---------------------------------------------------------------------------------------------------------------

const Taken = behaviour('requester: which bids are taken', { ...INPUT, job: { ...JOB, constraints: { peers: [], excludePeers: [C] } } });

Taken('a bid from an excluded peer is not taken (its lock is released) and the peer is not waited for', (h) => {
  start(h);
  sent(h, [A, C]);
  assert.equal(submit(h, C, { price: 1 }), [revert(C, 'not taken: the job excludes this peer')]);
  assert.equal(ctx(h).bids, []);
  submit(h, A, { price: 10 });
  assert.is(value(h), 'committing');
  assert.equal(rec(h).bids.map((b) => b.provider), [A]);
});

Taken('a bid whose sender is not its provider is ignored: no revert, not counted', (h) => {
  start(h);
  sent(h, [A, B]);
  const out = submit(h, A, { from: B });
  assert.equal(types(out), ['log.write']);
  assert.equal(ctx(h).bids, []);
});

Taken('a bid for another deal or a future round is ignored', (h) => {
  start(h);
  assert.equal(types(submit(h, A, { dealId: 'other' })), ['log.write']);
  assert.equal(types(submit(h, A, { nonce: 2 })), ['log.write']);
  assert.equal(ctx(h).bids, []);
});

Taken('a repeated bid counts once, and a repeat after the window closed is not reverted', (h) => {
  start(h);
  sent(h, [A, B]);
  submit(h, A);
  submit(h, A);
  assert.is(ctx(h).bids.length, 1);
  submit(h, B, { price: 20 });
  assert.is(rec(h).provider, A);
  assert.equal(ofType(submit(h, A, { now: t(300) }), 'deal.revert.send'), []);
});

Taken('a bid of an earlier round is reverted for that round', (h) => {
  start(h);
  sent(h, []);
  fire(h, 'retry', t(600));
  assert.equal(submit(h, A, { nonce: 1, now: t(700) }), [revert(A, 'not taken: the bid window had closed', 1)]);
});

Taken.run();

const OnlyPeers = behaviour('requester: a job bound to peers takes bids from them only', { ...INPUT, job: { ...JOB, constraints: { peers: [A], excludePeers: [] } } });

OnlyPeers('a bid from a peer not named is not taken', (h) => {
  start(h);
  assert.equal(submit(h, B), [revert(B, 'not taken: the job asks for other peers')]);
  assert.equal(ctx(h).bids, []);
});

OnlyPeers.run();

// ---------------------------------------------------------------------------------------------------------------

const Fallback = behaviour('requester: a failed attempt falls back to the next bid, then to a new round');

Fallback('a refused commit reverts the provider and commits to the next bid', (h) => {
  toCommitting(h);
  const out = refused(h, A, t(300), 'busy');
  assert.equal(out, [
    { type: 'timer.cancel', key: 'step' },
    revert(A, 'refused the commit: busy'),
    { type: 'deal.commit.send', to: B, dealId: DEAL, nonce: 1 },
    { type: 'deal.allocate.send', to: B, dealId: DEAL, nonce: 1 },
    { type: 'timer.schedule', key: 'step', at: t(3300) },
  ]);
  assert.is(value(h), 'committing');
  assert.is(rec(h).provider, B);
  assert.equal(rec(h).bids.map((b) => [b.provider, b.outcome, b.note]), [[A, 'failed', 'refused the commit: busy'], [B, 'chosen', undefined]]);
  assert.ok(rec(h).history.some((e) => e.message === `${A} refused the commit: busy; trying ${B}`));
});

Fallback('an unanswered commit times out: revert and next', (h) => {
  toCommitting(h);
  const out = fire(h, 'step', t(3200));
  assert.equal(out, [revert(A, 'did not answer the commit within 3 s'), { type: 'deal.commit.send', to: B, dealId: DEAL, nonce: 1 }, { type: 'deal.allocate.send', to: B, dealId: DEAL, nonce: 1 }, { type: 'timer.schedule', key: 'step', at: t(6200) }]);
  assert.ok(rec(h).history.some((e) => e.message === `${A} did not answer the commit within 3 s; trying ${B}`));
});

Fallback('a commit that cannot be sent fails the attempt at once', (h) => {
  toCommitting(h);
  const out = send(h, { type: 'send.failed', to: A, nonce: 1, step: 'commit', reason: 'no connection', now: t(250) });
  assert.equal(ofType(out, 'deal.revert.send'), [revert(A, 'could not be reached for the commit: no connection')]);
  assert.is(rec(h).provider, B);
});

Fallback('an unanswered allocate falls back to the next bid, still held', (h) => {
  toCommitting(h);
  committed(h, A, t(300));
  const out = fire(h, 'step', t(5300));
  assert.equal(ofType(out, 'deal.revert.send'), [revert(A, 'did not answer the allocate within 5 s')]);
  assert.equal(ofType(out, 'deal.commit.send'), [{ type: 'deal.commit.send', to: B, dealId: DEAL, nonce: 1 }]);
});

Fallback('when every bid fails, a new round asks again with nonce 2', (h) => {
  toCommitting(h);
  refused(h, A, t(300));
  const out = fire(h, 'step', t(3300));
  assert.equal(out, [revert(B, 'did not answer the commit within 3 s'), { type: 'timer.schedule', key: 'retry', at: t(3800) }]);
  assert.equal(value(h), { requesting: 'waiting' });
  assert.is(rec(h).provider, null);
  const ask = fire(h, 'retry', t(3800));
  assert.equal(ofType(ask, 'bid.request.send'), [{ type: 'bid.request.send', dealId: DEAL, nonce: 2, job: JOB, expiresAt: t(5800) }]);
  assert.is(rec(h).rounds, 2);
  assert.equal(rec(h).bids, []);
});

Fallback('a bid whose hold expired is skipped', (h) => {
  start(h);
  sent(h, [A, B]);
  submit(h, B, { price: 20, expiresAt: t(1000) });
  submit(h, A, { price: 10 });
  fire(h, 'step', t(3200));
  // B's hold ran out at +1000: nothing left to try
  assert.equal(value(h), { requesting: 'waiting' });
  assert.equal(rec(h).bids.map((b) => [b.provider, b.outcome]), [[A, 'failed'], [B, 'not-taken']]);
});

Fallback('answers from the wrong peer, round or allocation are ignored', (h) => {
  toCommitting(h);
  assert.equal(types(committed(h, B, t(300))), ['log.write']);
  assert.equal(types(committed(h, A, t(300), 2)), ['log.write']);
  assert.equal(types(refused(h, B, t(300))), ['log.write']);
  // a step timer fired long before its time is the stale fire of an earlier one
  assert.equal(types(fire(h, 'step', t(300))), ['log.write']);
  assert.is(value(h), 'committing');
  committed(h, A, t(400));
  allocated(h, A, t(500));
  assert.equal(types(status(h, A, 'running', t(600), { allocationId: 'other' })), ['log.write']);
  assert.equal(value(h), { provisioning: 'starting' });
});

Fallback('a failed attempt after the deadline fails the job, naming what went wrong', (h) => {
  toRunning(h);
  const out = fire(h, 'watch', t(61_000));
  assert.equal(types(out), ['deal.revert.send', 'job.ended']);
  assert.equal(value(h), { ended: 'failed' });
  assert.is(rec(h).message, `no provider took the job before its deadline: ${A}: sent no status for 6 s: taken as lost`);
  assert.ok(rec(h).history.some((e) => e.message === `${A} sent no status for 6 s: taken as lost; the deadline has passed`));
});

Fallback.run();

// ---------------------------------------------------------------------------------------------------------------

// A later deadline, so a failed attempt leads to a new round rather than the end.
const Running = behaviour('requester: watching a running job', { ...INPUT, deadline: T0 + 600_000 });

Running('a provider that goes silent is taken as lost: reverted, and the job is asked for again', (h) => {
  toRunning(h);
  const out = fire(h, 'watch', t(6500));
  assert.equal(out, [revert(A, 'sent no status for 6 s: taken as lost'), { type: 'timer.schedule', key: 'retry', at: t(7000) }]);
  assert.equal(value(h), { requesting: 'waiting' });
  assert.is(rec(h).startedAt, null);
  assert.equal(rec(h).allocations, [`${DEAL}.1`]);
  const ask = fire(h, 'retry', t(7000));
  assert.equal(ofType(ask, 'bid.request.send')[0]!.nonce, 2);
});

Running('the provider stopping the job on its own fails it', (h) => {
  toRunning(h);
  status(h, A, 'terminated', t(1000), { message: 'killed by its operator' });
  assert.equal(value(h), { ended: 'failed' });
  assert.is(rec(h).message, 'the provider stopped the job: killed by its operator');
});

Running('a failed job fails with the provider\'s message and exit code', (h) => {
  toRunning(h);
  status(h, A, 'failed', t(1000), { exitCode: 3, message: 'exit status 3' });
  assert.is(rec(h).state, 'failed');
  assert.is(rec(h).exitCode, 3);
  assert.is(rec(h).message, `failed on ${A}: exit status 3`);
});

Running('a job that ends while still starting ends normally, it is not a failed attempt', (h) => {
  toCommitting(h);
  committed(h, A, t(300));
  allocated(h, A, t(400));
  const out = status(h, A, 'completed', t(450), { exitCode: 0 });
  assert.equal(ofType(out, 'deal.revert.send'), []);
  assert.equal(value(h), { ended: 'completed' });
  assert.is(rec(h).exitCode, 0);
});

Running('a status while allocating counts as allocated', (h) => {
  toCommitting(h);
  committed(h, A, t(300));
  const out = status(h, A, 'running', t(400), { allocationId: 'a-7' });
  assert.equal(ofType(out, 'deal.revert.send'), [revert(B, 'not chosen')]);
  assert.is(value(h), 'running');
  assert.is(rec(h).allocationId, 'a-7');
  assert.equal(rec(h).allocations, ['a-7']);
});

Running('a job that never starts is a failed attempt', (h) => {
  toCommitting(h);
  committed(h, A, t(300));
  allocated(h, A, t(400));
  const out = fire(h, 'step', t(60_400));
  assert.equal(ofType(out, 'deal.revert.send'), [revert(A, 'did not start the job within 60 s')]);
  assert.equal(value(h), { requesting: 'waiting' });
});

Running.run();

// ---------------------------------------------------------------------------------------------------------------

const Cancel = behaviour('requester: cancelling a job in each phase');

/** The reply among `out`, which must come last, after the transition. */
function lastReply(out: readonly RequesterIntent[]) {
  const last = out.at(-1);
  assert.ok(last?.type === 'reply.send', `expected a reply last, got ${JSON.stringify(types(out))}`);
  return last as Extract<RequesterIntent, { type: 'reply.send' }>;
}

Cancel('while asking for bids: the bids held are reverted and the job ends cancelled', (h) => {
  start(h);
  sent(h, [A, B]);
  submit(h, A);
  const out = cancel(h, t(500));
  assert.equal(types(out), ['deal.revert.send', 'timer.cancel', 'job.ended', 'reply.send']);
  assert.equal(ofType(out, 'deal.revert.send'), [revert(A, 'the job was cancelled')]);
  assert.equal(value(h), { ended: 'cancelled' });
  const r = lastReply(out);
  assert.equal(r, { type: 'reply.send', replyTo: 'api-1', ok: true, value: rec(h) });
  assert.is(r.value.state, 'cancelled');
  assert.is(r.value.message, 'cancelled while asking for bids');
});

Cancel('while committing: the chosen provider and the other candidates are reverted', (h) => {
  toCommitting(h);
  const out = cancel(h, t(300));
  // in the order the bids arrived
  assert.equal(ofType(out, 'deal.revert.send'), [revert(B, 'the job was cancelled'), revert(A, 'the job was cancelled')]);
  assert.equal(ofType(out, 'timer.cancel'), [{ type: 'timer.cancel', key: 'step' }]);
  assert.is(lastReply(out).value.state, 'cancelled');
});

Cancel('while running, confirmed: deal.cancel is sent, and the provider\'s final status ends it cancelled', (h) => {
  toRunning(h);
  const out = cancel(h, t(1000));
  assert.equal(out.slice(0, 3), [
    { type: 'timer.cancel', key: 'watch' },
    { type: 'deal.cancel.send', to: A, dealId: DEAL, nonce: 1 },
    { type: 'timer.schedule', key: 'cancel', at: t(16_000) },
  ]);
  assert.is(value(h), 'cancelling');
  assert.is(lastReply(out).value.state, 'cancelling');
  // heartbeats while stopping change nothing
  assert.equal(types(status(h, A, 'running', t(1500))), ['log.write']);
  const end = status(h, A, 'terminated', t(2000), { exitCode: 137, message: 'cancelled' });
  assert.equal(types(end), ['timer.cancel', 'job.ended']);
  assert.equal(value(h), { ended: 'cancelled' });
  assert.is(rec(h).exitCode, 137);
  assert.is(rec(h).message, `cancelled: ${A} stopped the job`);
});

Cancel('while running, unconfirmed: the cancel timer ends it cancelled, saying so', (h) => {
  toRunning(h);
  cancel(h, t(1000), undefined);
  const out = fire(h, 'cancel', t(16_000));
  assert.equal(types(out), ['job.ended']);
  assert.equal(value(h), { ended: 'cancelled' });
  assert.match(rec(h).message, `${A} did not confirm within 15 s`);
});

Cancel('a second cancel while cancelling is answered and changes nothing', (h) => {
  toRunning(h);
  cancel(h, t(1000));
  const before = h.actor.getPersistedSnapshot();
  const out = cancel(h, t(1100), 'api-2');
  assert.equal(out, [{ type: 'reply.send', replyTo: 'api-2', ok: true, value: rec(h) }]);
  assert.equal(h.actor.getPersistedSnapshot(), before);
});

Cancel('an ended job answers a cancel with its record and does not change', (h) => {
  toRunning(h);
  status(h, A, 'completed', t(1000), { exitCode: 0 });
  const before = h.actor.getPersistedSnapshot();
  const out = cancel(h, t(2000), 'api-3');
  assert.equal(out, [{ type: 'reply.send', replyTo: 'api-3', ok: true, value: rec(h) }]);
  assert.is(rec(h).state, 'completed');
  assert.equal(h.actor.getPersistedSnapshot(), before);
});

Cancel('a job cancelled before it started ends at once', (h) => {
  const out = cancel(h, t(5));
  assert.equal(types(out), ['job.ended', 'reply.send']);
  assert.is(rec(h).message, 'cancelled before it started');
});

Cancel.run();

// ---------------------------------------------------------------------------------------------------------------

const Recovery = behaviour('requester: recovery and persisted snapshots');

function restore(h: Harness): Harness {
  return spawn(h.input, JSON.parse(JSON.stringify(h.actor.getPersistedSnapshot())));
}

const recovered = (h: Harness, now: number) => send(h, { type: 'deal.recovered', now });

Recovery('deal.recovered asks again for every pending timer, at its old time, and only those', (h) => {
  start(h);
  assert.equal(recovered(h, t(50)), [{ type: 'timer.schedule', key: 'window', at: t(2000) }]);
  sent(h, []);
  assert.equal(recovered(h, t(60)), [{ type: 'timer.schedule', key: 'retry', at: t(510) }]);
  fire(h, 'retry', t(510));
  sent(h, [A, B], 2, t(520));
  submit(h, A, { nonce: 2, now: t(600) });
  submit(h, B, { nonce: 2, now: t(700) });
  committed(h, A, t(800), 2);
  allocated(h, A, t(900), `${DEAL}.2`);
  status(h, A, 'running', t(1000), { allocationId: `${DEAL}.2`, nonce: 2 });
  // running: the watch starts again from the recovery (the node's own downtime is not the provider's silence)
  assert.equal(recovered(h, t(2000)), [{ type: 'timer.schedule', key: 'watch', at: t(2000) + TIMING.lostAfterMs }]);
});

Recovery('deal.recovered sends the unanswered step again: commit, allocate, cancel', (h) => {
  toCommitting(h);
  const step = { type: 'timer.schedule', key: 'step', at: t(3200) } as const;
  assert.equal(recovered(h, t(1000)), [step, { type: 'deal.commit.send', to: A, dealId: DEAL, nonce: 1 }, { type: 'deal.allocate.send', to: A, dealId: DEAL, nonce: 1 }]);
  committed(h, A, t(1100));
  assert.equal(recovered(h, t(1200)), [{ ...step, at: t(6100) }, { type: 'deal.allocate.send', to: A, dealId: DEAL, nonce: 1 }]);
  allocated(h, A, t(1300));
  status(h, A, 'running', t(1400));
  cancel(h, t(1500));
  assert.equal(recovered(h, t(1600)), [{ type: 'timer.schedule', key: 'cancel', at: t(16_500) }, { type: 'deal.cancel.send', to: A, dealId: DEAL, nonce: 1 }]);
});

Recovery('a JSON round trip of the snapshot carries on exactly like the original', (h) => {
  toCommitting(h);
  const r = restore(h);
  try {
    assert.equal(r.out, []);
    assert.equal(r.actor.getSnapshot().value, value(h));
    assert.equal(r.actor.getSnapshot().context, ctx(h));
    const script: RequesterEvent[] = [
      { type: 'deal.recovered', now: t(1000) },
      { type: 'deal.refused', dealId: DEAL, nonce: 1, step: 'commit', reason: 'busy', from: A, now: t(1100) },
      { type: 'deal.committed', dealId: DEAL, nonce: 1, from: B, now: t(1200) },
      { type: 'deal.allocated', dealId: DEAL, nonce: 1, allocationId: 'x', from: B, now: t(1300) },
      { type: 'allocation.status', dealId: DEAL, nonce: 1, allocationId: 'x', state: 'running', exitCode: null, message: '', from: B, now: t(1400) },
      { type: 'job.cancel', now: t(1500), replyTo: 'api' },
      { type: 'timer.fired', key: 'cancel', now: t(16_500) },
    ];
    for (const e of script) {
      assert.equal(send(r, e), send(h, e), `after ${e.type}`);
      assert.equal(r.actor.getPersistedSnapshot(), h.actor.getPersistedSnapshot(), `after ${e.type}`);
    }
    assert.equal(r.actor.getSnapshot().value, { ended: 'cancelled' });
    assert.equal(JSON.parse(JSON.stringify(ctx(h))), ctx(h));
  } finally {
    r.actor.stop();
  }
});

Recovery('history keeps the newest 50 entries', (h) => {
  start(h);
  let now = T0;
  for (let nonce = 1; nonce <= 20; nonce += 1) {
    sent(h, [], nonce, now);
    now = ctx(h).timers['retry']!;
    fire(h, 'retry', now);
  }
  const history = rec(h).history;
  assert.is(history.length, 50);
  assert.equal(history.at(-1), { at: now, state: 'requesting', message: 'asking for bids again (round 21)' });
  assert.is(rec(h).rounds, 21);
});

Recovery('a running job recovered after a long stop gives its provider a full lostAfterMs from now, not the time that passed while down', (h) => {
  toRunning(h);
  const back = t(60_000);
  const out = send(h, { type: 'deal.recovered', now: back });
  assert.equal(ofType(out, 'timer.schedule'), [{ type: 'timer.schedule', key: 'watch', at: back + TIMING.lostAfterMs }]);
  assert.is(ctx(h).timers.watch, back + TIMING.lostAfterMs);
  // the old watch firing (it was due long ago) is stale now: the job is not taken as lost
  send(h, { type: 'timer.fired', key: 'watch', now: back + 1 });
  assert.is(rec(h).state, 'running');
});

Recovery.run();

// ---------------------------------------------------------------------------------------------------------------
// A part of an ensemble: held after its commit until every part is placed; its ensemble hears every change.

const PART_JOB: JobSpec = { ...JOB, part: { ensemble: 'ens', name: 'kv', type: 'service', ports: ['http'], restart: 'always', dependsOn: [], maxRestarts: { count: 5, withinMs: 60_000 } } };
const Part = behaviour('requester: a part of an ensemble', { ...INPUT, job: PART_JOB, parent: 'ensemble/ens' });
const notes = (out: readonly RequesterIntent[]) => ofType(out, 'parent.notify').map((n) => n.update.state);

Part('the commit goes out alone; once committed the part holds (placed) and tells its ensemble, until the bid expires', (h) => {
  start(h);
  sent(h, [A]);
  const out = submit(h, A);
  assert.equal(ofType(out, 'deal.allocate.send'), [], 'no allocate behind the commit');
  assert.equal(ofType(out, 'deal.commit.send').map((c) => c.to), [A]);
  const held = committed(h, A, t(200));
  assert.equal(value(h), 'placed');
  assert.is(rec(h).state, 'placed');
  const [n] = ofType(held, 'parent.notify');
  assert.equal(n?.to, 'ensemble/ens');
  assert.equal(n?.update, { part: 'kv', dealId: DEAL, state: 'placed', provider: A, nonce: 1, allocationId: null, exitCode: null, message: rec(h).message });
  assert.equal(ofType(held, 'timer.schedule').find((x) => x.key === 'step')?.at, t(15_000), 'held until the bid expires');
});

Part('once committed, the other bids are let go at once (their locks would count against the other parts)', (h) => {
  start(h);
  sent(h, [A, B]);
  submit(h, B, { price: 20 });
  submit(h, A, { price: 10 });
  const held = committed(h, A, t(200));
  assert.equal(ofType(held, 'deal.revert.send').map((r) => r.to), [B]);
  assert.is(rec(h).bids.find((b) => b.provider === B)?.outcome, 'not-taken');
});

Part('part.allocate sends the allocate with who runs every part; statuses reach the ensemble', (h) => {
  start(h);
  sent(h, [A]);
  submit(h, A);
  committed(h, A, t(200));
  const members = [{ part: 'kv', provider: A }, { part: 'client', provider: B }];
  const out = send(h, { type: 'part.allocate', members, now: t(300) });
  assert.equal(ofType(out, 'deal.allocate.send'), [{ type: 'deal.allocate.send', to: A, dealId: DEAL, nonce: 1, members }]);
  assert.equal(notes(out), ['provisioning']);
  allocated(h, A, t(400));
  const run = send(h, { type: 'allocation.status', dealId: DEAL, nonce: 1, allocationId: `${DEAL}.1`, state: 'running', exitCode: null, message: '', healthy: true, restarts: 2, from: A, now: t(500) });
  const [n] = ofType(run, 'parent.notify');
  assert.equal(n?.update.allocation, { state: 'running', healthy: true, restarts: 2 });
  assert.equal(notes(run), ['running']);
  // a heartbeat that changes nothing is not repeated to the ensemble
  assert.equal(notes(send(h, { type: 'allocation.status', dealId: DEAL, nonce: 1, allocationId: `${DEAL}.1`, state: 'running', exitCode: null, message: '', healthy: true, restarts: 2, from: A, now: t(2500) })), []);
});

Part('a hold that outlives the bid lets the provider go and asks again', (h) => {
  start(h);
  sent(h, [A]);
  submit(h, A);
  committed(h, A, t(200));
  const out = fire(h, 'step', t(15_000));
  assert.ok(out.some((i) => i.type === 'deal.revert.send' && i.to === A), JSON.stringify(out));
  assert.match(JSON.stringify(rec(h).history), /let its commit go before every part of the ensemble was placed/);
  assert.ok(notes(out).length > 0, 'the ensemble hears it is no longer placed');
});

Part('a job of its own (no parent) still allocates right behind the commit', () => {
  const h = spawn(INPUT);
  start(h);
  sent(h, [A]);
  assert.equal(ofType(submit(h, A), 'deal.allocate.send').length, 1);
  assert.equal(ofType(h.out, 'parent.notify'), []);
  h.actor.stop();
});

Part.run();

// ---------------------------------------------------------------------------------------------------------------
// Parts of one ensemble spread over near-equal providers (requester.rules.ts spreadOver).

const SpreadSuite = behaviour('requester: a part prefers the provider its place names among near-equal bids');

SpreadSuite('bids within 10% of the best are rotated by the part\'s place, ranks renumbered; a far worse bid stays last', () => {
  const rb = (provider: string, utility: number, rank: number) => ({ provider, nonce: 1, price: 0, score: 1, rttMs: 1, rank, utility, outcome: 'candidate' as const });
  const bids = [rb(A, 1.0, 1), rb(B, 0.95, 2), rb(C, 0.5, 3)];
  assert.equal(spreadOver(bids, undefined), bids, 'a job of its own: as ranked');
  assert.equal(spreadOver(bids, 0).map((b) => b.provider), [A, B, C]);
  assert.equal(spreadOver(bids, 1).map((b) => b.provider), [B, A, C]);
  assert.equal(spreadOver(bids, 2).map((b) => b.provider), [A, B, C], '2 near-equal bids: part 2 is back at the first');
  assert.equal(spreadOver(bids, 1).map((b) => b.rank), [1, 2, 3]);
  assert.equal(spreadOver([rb(A, 1, 1), rb(B, 0.5, 2)], 1).map((b) => b.provider), [A, B], 'no near-equal second: the best');
});

SpreadSuite('in a round, part 1 of an ensemble commits to the second of two equal bids', () => {
  const h = spawn({ ...INPUT, job: PART_JOB, parent: 'ensemble/ens', spread: 1 });
  start(h);
  sent(h, [A, B]);
  submit(h, A, { price: 10 });
  const out = submit(h, B, { price: 10 });
  assert.equal(ofType(out, 'deal.commit.send').map((c) => c.to), [B]);
  h.actor.stop();
});

SpreadSuite.run();
