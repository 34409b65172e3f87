// The requester machine (machines/requester.machine.ts) when no provider can ever take the job: a round in which
// every candidate declined for a reason asking again will not change (PERMANENT_DECLINES) ends the job at once,
// saying why each declined, instead of asking again until the deadline. A round with a temporary decline in it
// waits and asks again; a round with a bid in it commits to the bid. A started actor, no runtime, no clock.
import * as assert from 'uvu/assert';
import { PERMANENT_DECLINES } from '../../machines/deal.constants.ts';
import type { DeclineCode } from '../../machines/deal.wire.ts';
import type { JobSpec } from '../../machines/job.ts';
import { type RequesterContext, type RequesterMachine, requesterMachine } from '../../machines/requester.machine.ts';
import type { JobRecord, RequesterEvent, RequesterInput, RequesterIntent } from '../../machines/requester.messages.ts';
import { GiB, T0 } from '../fixtures/node-fixtures.ts';
import { PROCESS_JOB, PEER_A, PEER_B, PEER_C, PEER_SELF } from '../fixtures/deal-fixtures.ts';
import { type Harness as MH, machineHarness } from '../fixtures/machine-harness.ts';

const [SELF, A, B, C] = [PEER_SELF, PEER_A, PEER_B, PEER_C];
const DEAL = 'job-1';

const JOB: JobSpec = PROCESS_JOB;
const INPUT: RequesterInput = {
  dealId: DEAL,
  job: JOB,
  self: SELF,
  createdAt: T0,
  deadline: T0 + 60_000,
  weights: { price: 1, score: 0, rtt: 0 },
  timing: { bidWindowMs: 2_000, enoughBids: 3, commitTimeoutMs: 3_000, allocateTimeoutMs: 5_000, startTimeoutMs: 60_000, lostAfterMs: 6_000, retryMs: 500, retryMaxMs: 1_500, cancelTimeoutMs: 15_000 },
};
const t = (ms: number) => T0 + ms;

/** What each permanent code sounds like from a provider (the Node's bidding words, shortened). */
const REASONS: Record<string, string> = {
  excluded: "the job's excludePeers names this node",
  'not-chosen': "the job's peers list does not name this node",
  executor: 'executor "process" is not offered here; this node offers wasm',
  privileged: 'process jobs run unsandboxed and this node does not allow them',
  'too-large': 'the job needs 1 cpu, this node has 0.5 in all',
  insufficient: 'not enough free memory: 0.5 GiB free, 1 GiB needed',
  preferences: 'the price is below this node\'s minimum',
  unauthorized: 'unauthorized: no-grant (the request carried no capability token)',
};

type Harness = MH<RequesterMachine, RequesterIntent>;
const { behaviour: H, send, ofType } = machineHarness<RequesterMachine, RequesterEvent, RequesterIntent>(requesterMachine, INPUT);
const ctx = (h: Harness): RequesterContext => h.actor.getSnapshot().context;
const rec = (h: Harness): JobRecord => ctx(h).record;
const value = (h: Harness): unknown => h.actor.getSnapshot().value;

const start = (h: Harness) => send(h, { type: 'deal.start', now: T0 });
const sent = (h: Harness, candidates: string[], nonce = 1, now = t(10)) => send(h, { type: 'bid.request.sent', nonce, candidates, now });
const decline = (h: Harness, from: string, code: DeclineCode, now = t(100), nonce = 1) =>
  send(h, { type: 'bid.decline', dealId: DEAL, nonce, code, reason: REASONS[code] ?? code, from, now });
const submit = (h: Harness, from: string, now = t(100), price = 10) =>
  send(h, { type: 'bid.submit', bid: { dealId: DEAL, nonce: 1, provider: from, price, score: 100, resources: JOB.resources, expiresAt: t(15_000) }, from, rttMs: 20, now });
const fire = (h: Harness, key: string, now: number) => send(h, { type: 'timer.fired', key, now });

/** The job failed at once: state, message naming every provider's reason, job.ended with that record, no timers. */
function assertHopeless(h: Harness, out: readonly RequesterIntent[], declined: readonly [string, DeclineCode][]): void {
  assert.equal(value(h), { ended: 'failed' });
  const r = rec(h);
  assert.is(r.state, 'failed');
  assert.ok(r.message.startsWith('no provider can take this job'), r.message);
  for (const [provider, code] of declined) assert.match(r.message, `${provider}: ${REASONS[code]}`);
  const ended = ofType(out, 'job.ended');
  assert.is(ended.length, 1, `job.ended ${ended.length} times`);
  assert.equal(ended[0]!.record, r);
  assert.equal(ofType(out, 'timer.schedule'), [], 'a timer was scheduled for a job that ended');
  assert.equal(ctx(h).timers, {});
  assert.ok(r.endedAt !== null && r.endedAt === r.updatedAt, `endedAt ${String(r.endedAt)}, updatedAt ${r.updatedAt}`);
  assert.is(r.history.at(-1)!.state, 'failed');
  assert.ok(r.history.at(-1)!.message.startsWith('no provider can take this job'));
}

// ---------------------------------------------------------------------------------------------------------------

const Hopeless = H('requester: every candidate declines for good -> the job fails at once');

Hopeless('three candidates decline with excluded, executor and too-large: failed on the last decline, each reason named', (h) => {
  start(h);
  sent(h, [A, B, C]);
  assert.equal(decline(h, A, 'excluded', t(100)), []);
  assert.equal(decline(h, B, 'executor', t(120)), []);
  assert.equal(value(h), { requesting: 'collecting' }, 'failed before every candidate answered');
  const out = decline(h, C, 'too-large', t(150));
  assertHopeless(h, out, [[A, 'excluded'], [B, 'executor'], [C, 'too-large']]);
  assert.equal(ofType(out, 'timer.cancel'), [{ type: 'timer.cancel', key: 'window' }]);
  assert.is(rec(h).endedAt, t(150));
  assert.is(rec(h).rounds, 1);
  assert.equal(ofType(h.out, 'bid.request.send').length, 1, 'asked for bids again');
});

for (const code of PERMANENT_DECLINES) {
  Hopeless(`a single candidate declining with "${code}" ends the job at once`, (h) => {
    start(h);
    sent(h, [A]);
    assertHopeless(h, decline(h, A, code), [[A, code]]);
  });
}

Hopeless('every permanent code at once, from five candidates', (h) => {
  const providers = PERMANENT_DECLINES.map((_, i) => `12D3KooWPeer${i}`.padEnd(44, String(i)));
  start(h);
  sent(h, providers);
  let out: RequesterIntent[] = [];
  PERMANENT_DECLINES.forEach((code, i) => (out = decline(h, providers[i]!, code, t(100 + i))));
  assertHopeless(h, out, PERMANENT_DECLINES.map((code, i) => [providers[i]!, code] as [string, DeclineCode]));
});

Hopeless('declines that arrive before bid.request.sent count once the candidates are known', (h) => {
  start(h);
  decline(h, A, 'privileged', t(5));
  decline(h, B, 'not-chosen', t(6));
  assert.equal(value(h), { requesting: 'collecting' });
  const out = sent(h, [A, B], 1, t(10));
  assertHopeless(h, out, [[A, 'privileged'], [B, 'not-chosen']]);
});

Hopeless('in a later round: a first round with a temporary decline waits, the second one all permanent fails', (h) => {
  start(h);
  sent(h, [A]);
  decline(h, A, 'insufficient', t(100));
  assert.equal(value(h), { requesting: 'waiting' });
  fire(h, 'retry', t(600));
  sent(h, [A, B], 2, t(610));
  decline(h, A, 'too-large', t(700), 2);
  const out = decline(h, B, 'excluded', t(710), 2);
  assertHopeless(h, out, [[A, 'too-large'], [B, 'excluded']]);
  assert.is(rec(h).rounds, 2);
  // only the last round's reasons: the first round's "insufficient" no longer holds
  assert.not.match(rec(h).message, REASONS.insufficient!);
});

Hopeless('after the end, a late decline or round event changes nothing and ends nothing again', (h) => {
  start(h);
  sent(h, [A]);
  decline(h, A, 'excluded');
  const r = rec(h);
  assert.equal(ofType(decline(h, B, 'too-large', t(200)), 'job.ended'), []);
  assert.equal(ofType(sent(h, [A, B], 1, t(300)), 'job.ended'), []);
  assert.equal(rec(h), r);
  assert.is(h.out.filter((i) => i.type === 'job.ended').length, 1);
});

Hopeless.run();

// ---------------------------------------------------------------------------------------------------------------

const Hope = H('requester: a round that is not hopeless goes on as before');

Hope('one temporary (insufficient) and one permanent decline: the job waits and asks again', (h) => {
  start(h);
  sent(h, [A, B]);
  decline(h, A, 'excluded', t(100));
  const out = decline(h, B, 'insufficient', t(120));
  assert.equal(value(h), { requesting: 'waiting' });
  assert.is(rec(h).state, 'queued');
  assert.equal(ofType(out, 'job.ended'), []);
  assert.equal(ofType(out, 'timer.schedule'), [{ type: 'timer.schedule', key: 'retry', at: t(620) }]);
  assert.not.match(rec(h).message, 'no provider can take this job');
  const ask = fire(h, 'retry', t(620));
  assert.equal(ofType(ask, 'bid.request.send').map((i) => i.nonce), [2]);
  assert.equal(value(h), { requesting: 'collecting' });
});

for (const code of ['insufficient', 'preferences', 'lock-limit', 'disk-full', 'not-onboarded', 'expired'] as const) {
  Hope(`a lone "${code}" decline is temporary: the job waits and asks again`, (h) => {
    start(h);
    sent(h, [A]);
    const out = decline(h, A, code);
    assert.equal(value(h), { requesting: 'waiting' });
    assert.equal(ofType(out, 'timer.schedule').map((i) => i.key), ['retry']);
    assert.equal(ofType(out, 'job.ended'), []);
  });
}

Hope('a permanent decline and a bid: the job commits to the bid', (h) => {
  start(h);
  sent(h, [A, B]);
  decline(h, A, 'too-large', t(100));
  const out = submit(h, B, t(150));
  assert.is(value(h), 'committing');
  assert.equal(ofType(out, 'deal.commit.send'), [{ type: 'deal.commit.send', to: B, dealId: DEAL, nonce: 1 }]);
  assert.equal(ofType(out, 'job.ended'), []);
  assert.is(rec(h).provider, B);
});

Hope('a bid that came first, then permanent declines from the rest: the job commits to the bid', (h) => {
  start(h);
  sent(h, [A, B, C]);
  submit(h, C, t(90));
  decline(h, A, 'executor', t(100));
  const out = decline(h, B, 'privileged', t(110));
  assert.is(value(h), 'committing');
  assert.equal(ofType(out, 'deal.commit.send').map((i) => i.to), [C]);
});

Hope('permanent declines from some candidates and silence from another: the window closes on its timer and the job waits', (h) => {
  start(h);
  sent(h, [A, B]);
  decline(h, A, 'excluded', t(100));
  assert.equal(value(h), { requesting: 'collecting' });
  const out = fire(h, 'window', t(2000));
  assert.equal(value(h), { requesting: 'waiting' });
  assert.equal(ofType(out, 'job.ended'), []);
  assert.equal(ofType(out, 'timer.schedule').map((i) => i.key), ['retry']);
});

Hope('a round with no candidates at all is not hopeless: the job waits for providers to appear', (h) => {
  start(h);
  const out = sent(h, []);
  assert.equal(value(h), { requesting: 'waiting' });
  assert.equal(ofType(out, 'job.ended'), []);
});

Hope('a permanent decline for an old round does not end the current one', (h) => {
  start(h);
  sent(h, [A]);
  decline(h, A, 'insufficient', t(100));
  fire(h, 'retry', t(600));
  sent(h, [A], 2, t(610));
  const out = decline(h, A, 'excluded', t(620), 1); // round 1's nonce
  assert.equal(ofType(out, 'job.ended'), []);
  assert.equal(value(h), { requesting: 'collecting' });
});

Hope.run();
