import * as assert from 'uvu/assert';
import { createActor } from 'xstate';
import type { Bid } from '../../machines/deal.wire.ts';
import type { JobSpec } from '../../machines/job.ts';
import { type ProviderContext, type ProviderMachine, providerMachine } from '../../machines/provider.machine.ts';
import type { ProviderEvent, ProviderInput, ProviderIntent } from '../../machines/provider.messages.ts';
import { GiB, T0, res } from '../fixtures/node-fixtures.ts';
import { type Harness as H, machineHarness } from '../fixtures/machine-harness.ts';

const REQUESTER = 'peer-requester';
const STRANGER = 'peer-stranger';
const DEAL = 'deal-1';
const NONCE = 2;
const KEY = `${DEAL}.${NONCE}`;
const EXPIRES = T0 + 15_000;

const JOB: JobSpec = {
  executor: 'process',
  name: 'hello',
  resources: res(1, GiB, GiB),
  timeoutMs: 30_000,
  constraints: { peers: [], excludePeers: [] },
  process: { command: 'echo', args: ['hi'], env: {} },
};
const BID: Bid = { dealId: DEAL, nonce: NONCE, provider: 'peer-provider', price: 1, score: 1000, resources: res(1, GiB, GiB), expiresAt: EXPIRES };
const INPUT: ProviderInput = { key: KEY, bid: BID, requester: REQUESTER, job: JOB, lockId: KEY };

type Harness = H<ProviderMachine, ProviderIntent>;
const { behaviour, send, ofType, types } = machineHarness<ProviderMachine, ProviderEvent, ProviderIntent>(providerMachine, INPUT);
const state = (h: Harness) => h.actor.getSnapshot().value;
const ctx = (h: Harness): ProviderContext => h.actor.getSnapshot().context;

const peer = { from: REQUESTER, dealId: DEAL, nonce: NONCE };
const start = (now = T0): ProviderEvent => ({ type: 'provider.start', now });
const commit = (now = T0 + 1_000, extra: Partial<typeof peer> = {}): ProviderEvent => ({ type: 'deal.commit', ...peer, ...extra, now });
const allocate = (now = T0 + 2_000, moduleReady = true, moduleProblem?: string): ProviderEvent => ({ type: 'deal.allocate', ...peer, now, moduleReady, ...(moduleProblem ? { moduleProblem } : {}) });
const ledger = (ok: boolean, reason?: string, now = T0 + 2_100): ProviderEvent => ({ type: 'ledger.allocated', ok, now, ...(reason ? { reason } : {}) });
const revert = (now = T0 + 3_000): ProviderEvent => ({ type: 'deal.revert', ...peer, reason: 'took another bid', now });
const cancel = (now = T0 + 4_000): ProviderEvent => ({ type: 'deal.cancel', ...peer, now });
const expiry = (now = EXPIRES): ProviderEvent => ({ type: 'timer.fired', key: 'expiry', now });
const ended = (now = T0 + 9_000, allocationId = KEY): ProviderEvent => ({ type: 'allocation.ended', allocationId, state: 'completed', now });

const UNLOCK: ProviderIntent = { type: 'ledger.unlock', lockId: KEY };
const refused = (step: 'commit' | 'allocate', reason: string): ProviderIntent => ({ type: 'deal.refused.send', to: REQUESTER, dealId: DEAL, nonce: NONCE, step, reason });

function toCommitted(h: Harness): void {
  send(h, start());
  send(h, commit());
  assert.is(state(h), 'committed');
}
function toAllocating(h: Harness): void {
  toCommitted(h);
  send(h, allocate());
  assert.is(state(h), 'allocating');
}
function toAllocated(h: Harness): void {
  toAllocating(h);
  send(h, ledger(true));
  assert.is(state(h), 'allocated');
}
/** The one provider.ended among all intents so far, with the final state it records. */
function theEnd(h: Harness) {
  const e = ofType(h.out, 'provider.ended');
  assert.is(e.length, 1, `expected one provider.ended, got ${e.length}`);
  return e[0]!.record;
}

// ---------------------------------------------------------------------------------------------------------------

const Happy = behaviour('provider: bid, commit, allocate, run to the end');

Happy('start sends the bid and arms the expiry timer', (h) => {
  assert.is(state(h), 'opening');
  const out = send(h, start());
  assert.equal(out, [
    { type: 'bid.submit.send', to: REQUESTER, bid: BID },
    { type: 'timer.schedule', key: 'expiry', at: EXPIRES },
  ]);
  assert.is(state(h), 'bidding');
  assert.equal(ctx(h).timers, { expiry: EXPIRES });
  assert.is(ctx(h).record.createdAt, T0);
});

Happy('the whole deal, with each answer in turn', (h) => {
  send(h, start());
  assert.equal(send(h, commit()), [{ type: 'deal.committed.send', to: REQUESTER, dealId: DEAL, nonce: NONCE }]);
  assert.is(ctx(h).record.state, 'committed');
  assert.equal(send(h, allocate()), [{ type: 'ledger.allocate.request', allocationId: KEY, lockId: KEY }]);
  const out = send(h, ledger(true));
  assert.equal(out, [
    { type: 'timer.cancel', key: 'expiry' },
    { type: 'allocation.spawn', input: { allocationId: KEY, dealId: DEAL, nonce: NONCE, requester: REQUESTER, job: JOB } },
    { type: 'deal.allocated.send', to: REQUESTER, dealId: DEAL, nonce: NONCE, allocationId: KEY },
  ]);
  assert.equal(ctx(h).timers, {});
  assert.is(ctx(h).record.allocationId, KEY);
  assert.is(ctx(h).record.state, 'allocated');
  const end = send(h, ended());
  assert.equal(types(end), ['provider.ended']);
  assert.is(state(h), 'done');
  assert.is(h.actor.getSnapshot().status, 'done');
  const record = theEnd(h);
  assert.is(record.state, 'done');
  assert.is(record.updatedAt, T0 + 9_000);
  assert.is(record.createdAt, T0);
});

Happy('the whole job (args and env) that came with the allocate is the one the allocation runs', (h) => {
  toCommitted(h);
  const whole = { ...JOB, process: { ...JOB.process, args: ['--big'], env: { K: 'v' } } };
  send(h, { ...allocate(), job: whole } as ProviderEvent);
  const out = send(h, ledger(true));
  assert.equal(ofType(out, 'allocation.spawn')[0]!.input.job, whole);
  assert.equal(ctx(h).input.job, JOB, 'the bid was on the requirements; they stay as they were');
});

Happy('an allocation.ended for another allocation does not end the deal', (h) => {
  toAllocated(h);
  assert.equal(send(h, ended(T0 + 9_000, 'other.1')), []);
  assert.is(state(h), 'allocated');
});

Happy('a repeated commit or allocate is answered again (the first answer may have been lost)', (h) => {
  toCommitted(h);
  assert.equal(types(send(h, commit(T0 + 1_500))), ['deal.committed.send']);
  send(h, allocate());
  send(h, ledger(true));
  assert.equal(types(send(h, allocate(T0 + 5_000))), ['deal.allocated.send']);
  assert.is(state(h), 'allocated');
});

Happy('a bid the runtime already sent is not sent again; the hold timer is armed all the same', (h) => {
  const out = send(h, { type: 'provider.start', now: T0, bidSent: true });
  assert.equal(out, [{ type: 'timer.schedule', key: 'expiry', at: EXPIRES }]);
  assert.is(state(h), 'bidding');
  assert.equal(types(send(h, commit())), ['deal.committed.send']);
});

Happy.run();

// ---------------------------------------------------------------------------------------------------------------

const Strangers = behaviour('provider: only the requester of this deal counts');

Strangers('a commit from another peer is ignored with a warning', (h) => {
  send(h, start());
  const out = send(h, commit(T0 + 1_000, { from: STRANGER }));
  assert.equal(types(out), ['log.write']);
  assert.is(ofType(out, 'log.write')[0]!.level, 'warn');
  assert.is(state(h), 'bidding');
});

Strangers('a commit naming another nonce or deal is ignored', (h) => {
  send(h, start());
  assert.equal(types(send(h, commit(T0 + 1_000, { nonce: NONCE + 1 }))), ['log.write']);
  assert.equal(types(send(h, commit(T0 + 1_000, { dealId: 'deal-2' }))), ['log.write']);
  assert.is(state(h), 'bidding');
});

Strangers('a revert or cancel from another peer does not drop an allocated deal', (h) => {
  toAllocated(h);
  const out = [...send(h, { ...revert(), from: STRANGER } as ProviderEvent), ...send(h, { ...cancel(), from: STRANGER } as ProviderEvent)];
  assert.equal(ofType(out, 'allocation.cancel'), []);
  assert.is(state(h), 'allocated');
});

Strangers.run();

// ---------------------------------------------------------------------------------------------------------------

const Expiry = behaviour('provider: the bid expires');

Expiry('a commit at the expiry time is refused and the lock released', (h) => {
  send(h, start());
  const out = send(h, commit(EXPIRES));
  assert.equal(out.slice(0, 2), [refused('commit', `the bid expired at ${new Date(EXPIRES).toISOString()}`), UNLOCK]);
  assert.equal(types(out.slice(2)), ['timer.cancel', 'provider.ended']);
  assert.is(state(h), 'expired');
  assert.is(theEnd(h).state, 'expired');
});

Expiry('the expiry timer while bidding unlocks and ends as expired', (h) => {
  send(h, start());
  const out = send(h, expiry());
  assert.equal(types(out), ['ledger.unlock', 'provider.ended']);
  assert.equal(out[0], UNLOCK);
  assert.is(state(h), 'expired');
});

Expiry('the expiry timer while committed unlocks and ends as expired', (h) => {
  toCommitted(h);
  assert.equal(types(send(h, expiry())), ['ledger.unlock', 'provider.ended']);
  assert.is(state(h), 'expired');
});

Expiry('a stale expiry timer after allocation changes nothing', (h) => {
  toAllocated(h);
  assert.equal(send(h, expiry()), []);
  assert.is(state(h), 'allocated');
});

Expiry.run();

// ---------------------------------------------------------------------------------------------------------------

const Revert = behaviour('provider: the requester reverts');

Revert('in bidding: unlock and release', (h) => {
  send(h, start());
  const out = send(h, revert());
  assert.equal(types(out), ['ledger.unlock', 'timer.cancel', 'provider.ended']);
  assert.is(state(h), 'released');
  assert.match(theEnd(h).message, /took another bid/);
});

Revert('in committed: unlock and release', (h) => {
  toCommitted(h);
  assert.equal(types(send(h, revert())), ['ledger.unlock', 'timer.cancel', 'provider.ended']);
  assert.is(state(h), 'released');
});

Revert('in allocating, then the ledger allocates: spawn and cancel at once, no deal.allocated', (h) => {
  toAllocating(h);
  assert.equal(send(h, revert()), []);
  assert.is(state(h), 'allocating');
  const out = send(h, ledger(true));
  assert.equal(types(out), ['timer.cancel', 'allocation.spawn', 'allocation.cancel']);
  assert.equal(ofType(out, 'allocation.cancel'), [{ type: 'allocation.cancel', allocationId: KEY }]);
  assert.is(state(h), 'allocated');
  // a second revert does not cancel again; the allocation's end ends the deal
  assert.equal(send(h, revert()), []);
  send(h, ended());
  assert.is(state(h), 'done');
});

Revert('in allocating, then the ledger refuses: unlock and release without a refusal', (h) => {
  toAllocating(h);
  send(h, revert());
  const out = send(h, ledger(false, 'lock expired'));
  assert.equal(types(out), ['ledger.unlock', 'timer.cancel', 'provider.ended']);
  assert.is(state(h), 'released');
});

Revert('in allocated: cancel the allocation once', (h) => {
  toAllocated(h);
  assert.equal(send(h, revert()), [{ type: 'allocation.cancel', allocationId: KEY }]);
  assert.is(state(h), 'allocated');
});

Revert.run();

// ---------------------------------------------------------------------------------------------------------------

const Refusals = behaviour('provider: allocate refusals');

Refusals('a module that is not ready: refused with the problem, unlocked, released', (h) => {
  toCommitted(h);
  const out = send(h, allocate(T0 + 2_000, false, 'the module does not match its sha256'));
  assert.equal(out.slice(0, 2), [refused('allocate', 'the module does not match its sha256'), UNLOCK]);
  assert.equal(ofType(out, 'ledger.allocate.request'), []);
  assert.is(state(h), 'released');
  assert.is(theEnd(h).state, 'released');
});

Refusals('the ledger refuses: refused with its reason, unlocked, released', (h) => {
  toAllocating(h);
  const out = send(h, ledger(false, 'not enough memory'));
  assert.equal(out.slice(0, 2), [refused('allocate', 'not enough memory'), UNLOCK]);
  assert.equal(ofType(out, 'allocation.spawn'), []);
  assert.is(state(h), 'released');
});

Refusals('allocate before commit: refused as not committed, still bidding, lock kept', (h) => {
  send(h, start());
  const out = send(h, allocate());
  assert.equal(out, [refused('allocate', 'not committed')]);
  assert.is(state(h), 'bidding');
  assert.equal(ctx(h).timers, { expiry: EXPIRES });
});

Refusals.run();

// ---------------------------------------------------------------------------------------------------------------

const Cancel = behaviour('provider: the requester cancels an allocated deal');

Cancel('cancel sends allocation.cancel once, however often it is asked', (h) => {
  toAllocated(h);
  assert.equal(send(h, cancel()), [{ type: 'allocation.cancel', allocationId: KEY }]);
  assert.equal(send(h, cancel(T0 + 4_500)), []);
  assert.equal(send(h, revert(T0 + 4_600)), []);
  assert.is(state(h), 'allocated');
  assert.equal(types(send(h, ended())), ['provider.ended']);
  assert.is(theEnd(h).state, 'done');
});

Cancel('nothing more comes out after the end', (h) => {
  toAllocated(h);
  send(h, ended());
  assert.equal([...send(h, cancel()), ...send(h, ended(T0 + 9_500)), ...send(h, commit())], []);
  theEnd(h);
});

Cancel.run();

// ---------------------------------------------------------------------------------------------------------------

const Recovery = behaviour('provider: recovered after a restart');

/** A new actor restored from the old one's persisted snapshot, as the runtime rebuilds it. */
function restore(h: Harness): void {
  const snapshot = JSON.parse(JSON.stringify(h.actor.getPersistedSnapshot()));
  h.actor.stop();
  h.actor = createActor(providerMachine, { snapshot, input: INPUT });
  h.actor.on('*', (e) => h.out.push(e));
  h.actor.start();
}

Recovery('in bidding: the expiry timer is asked for again', (h) => {
  send(h, start());
  restore(h);
  assert.equal(send(h, { type: 'deal.recovered', now: T0 + 500 }), [{ type: 'timer.schedule', key: 'expiry', at: EXPIRES }]);
  assert.is(state(h), 'bidding');
  assert.equal(types(send(h, expiry())), ['ledger.unlock', 'provider.ended']);
});

Recovery('in allocating: timers re-armed and the ledger asked again', (h) => {
  toAllocating(h);
  restore(h);
  const out = send(h, { type: 'deal.recovered', now: T0 + 2_500 });
  assert.equal(out, [
    { type: 'timer.schedule', key: 'expiry', at: EXPIRES },
    { type: 'ledger.allocate.request', allocationId: KEY, lockId: KEY },
  ]);
  assert.equal(types(send(h, ledger(true))), ['timer.cancel', 'allocation.spawn', 'deal.allocated.send']);
});

Recovery('in allocated: no timers and nothing to ask', (h) => {
  toAllocated(h);
  restore(h);
  assert.equal(send(h, { type: 'deal.recovered', now: T0 + 5_000 }), []);
  assert.is(state(h), 'allocated');
});

Recovery('before the start: the bid is sent', (h) => {
  assert.equal(types(send(h, { type: 'deal.recovered', now: T0 })), ['bid.submit.send', 'timer.schedule']);
  assert.is(state(h), 'bidding');
});

Recovery.run();
