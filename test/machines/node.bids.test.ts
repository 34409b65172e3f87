// The Node deciding whether to bid: the Go DMS's provider scenarios 1-7 (dms-behaviour.md), plus the races and
// bookkeeping around them. Driven through a started Node actor, the way the runtime drives it.
import * as assert from 'uvu/assert';
import { createActor } from 'xstate';
import type { BidRequestEvent } from '../../machines/bidding.messages.ts';
import { MAX_ANSWERED, answeredKey, decideBid, emptyAnswered } from '../../machines/bidding.ts';
import { rememberAnswered } from '../../machines/answered.ts';
import type { Resources } from '../../machines/capability.ts';
import { DEAL_DEFAULTS } from '../../machines/deal.constants.ts';
import type { JobSpec } from '../../machines/job.ts';
import { availableResources, emptyLedger } from '../../machines/ledger.ts';
import { type NodeContext, type NodeMachine, nodeMachine } from '../../machines/node.machine.ts';
import type { NodeEvent, NodeIntent } from '../../machines/node.messages.ts';
import { type Harness as MH, machineHarness } from '../fixtures/machine-harness.ts';
import type { Offer } from '../../machines/onboarding.ts';
import { DEFAULT_PREFERENCES, type Preferences } from '../../machines/preferences.ts';
import type { ProviderInput } from '../../machines/provider.messages.ts';
// OFFER: 2 cpu, 4 GiB, 50 GiB, the wasm executor only.
import { BENCH, CAPABILITY, GiB, HOST, OFFER, T0, res } from '../fixtures/node-fixtures.ts';

const SELF = '12D3KooWProviderAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const REQ = '12D3KooWRequesterBBBBBBBBBBBBBBBBBBBBBBBBBBBB';
const OTHER = '12D3KooWSomebodyCCCCCCCCCCCCCCCCCCCCCCCCCCCCC';
const TTL = DEAL_DEFAULTS.answeredTtlMs;
const HOLD = DEAL_DEFAULTS.bidHoldMs;
/** A bid's lock lasts until its request expires plus this (capped at HOLD). */
const GRACE = DEAL_DEFAULTS.bidGraceMs;

function wasmJob(resources: Resources = res(1, GiB), constraints: Partial<JobSpec['constraints']> = {}): JobSpec {
  return {
    executor: 'wasm',
    name: 'hello',
    resources,
    timeoutMs: 60_000,
    constraints: { peers: [], excludePeers: [], ...constraints },
    wasm: { module: { sha256: 'a'.repeat(64), size: 1000 }, args: [], env: {} },
  };
}
function processJob(resources: Resources = res(1, GiB)): JobSpec {
  return { executor: 'process', name: 'sh', resources, timeoutMs: 60_000, constraints: { peers: [], excludePeers: [] }, process: { command: 'sh', args: ['-c', 'true'], env: {} } };
}
function request(extra: Partial<BidRequestEvent> = {}): BidRequestEvent {
  return { type: 'bid.request', dealId: 'deal-1', nonce: 1, job: wasmJob(), expiresAt: T0 + 5000, from: REQ, now: T0, self: SELF, ...extra };
}

type Harness = MH<NodeMachine, NodeIntent>;
const { behaviour, send, ofType } = machineHarness<NodeMachine, NodeEvent, NodeIntent>(nodeMachine, {});

const ctx = (h: Harness): NodeContext => h.actor.getSnapshot().context;
const state = (h: Harness): unknown => h.actor.getSnapshot().value;
const available = (h: Harness): Resources => availableResources(ctx(h).ledger);
/** The one decline among `intents`; fails the test when there is not exactly one, or a bid was opened too. */
function theDecline(intents: readonly NodeIntent[]) {
  const d = ofType(intents, 'bid.decline.send');
  assert.is(d.length, 1, `expected one decline, got ${JSON.stringify(intents)}`);
  assert.equal(ofType(intents, 'bid.open'), []);
  return d[0]!;
}
function theBid(intents: readonly NodeIntent[]): ProviderInput {
  const b = ofType(intents, 'bid.open');
  assert.is(b.length, 1, `expected one bid.open, got ${JSON.stringify(intents)}`);
  assert.equal(ofType(intents, 'bid.decline.send'), []);
  return b[0]!.input;
}
function registered(h: Harness, offer: Offer = OFFER, preferences?: Preferences): void {
  send(h, { type: 'node.onboard', offer, host: HOST, benchmark: BENCH });
  if (preferences) send(h, { type: 'preferences.set', preferences });
  assert.is(state(h), 'registered');
}

// ---------------------------------------------------------------------------------------------------------------

const Own = behaviour('bids (scenario 1): a node ignores its own bid request and does not mark it answered');

Own('a request from itself gets no intent, no lock and no answered entry', (h) => {
  registered(h);
  const ledger = ctx(h).ledger;
  assert.equal(send(h, request({ from: SELF })), []);
  assert.is(ctx(h).ledger, ledger);
  assert.equal(ctx(h).answered.until, {});
});

Own('the same (dealId, nonce) from a requester is then still answered', (h) => {
  registered(h);
  send(h, request({ from: SELF }));
  theBid(send(h, request()));
});

Own.run();

// ---------------------------------------------------------------------------------------------------------------

const NotOnboarded = behaviour('bids (scenario 2): a node that is not onboarded does not bid');

const notRegistered: Record<string, (h: Harness) => void> = {
  offboarded: () => {},
  benchmarking: (h) => void send(h, { type: 'node.onboard', offer: OFFER, host: HOST }),
  failed: (h) => void send(h, { type: 'node.onboard', offer: { cpu: 99 }, host: HOST, benchmark: BENCH }),
  stopped: (h) => {
    registered(h);
    send(h, { type: 'node.stop' });
  },
  'offboarded after registering': (h) => {
    registered(h);
    send(h, { type: 'node.offboard' });
  },
};

for (const [name, reach] of Object.entries(notRegistered)) {
  NotOnboarded(`${name}: declines with not-onboarded and locks nothing`, (h) => {
    reach(h);
    const ledger = ctx(h).ledger;
    const d = theDecline(send(h, request()));
    assert.equal(d, { type: 'bid.decline.send', to: REQ, dealId: 'deal-1', nonce: 1, code: 'not-onboarded', reason: d.reason });
    assert.match(d.reason, /not onboarded/);
    assert.is(ctx(h).ledger, ledger);
  });
}

NotOnboarded('the decline is remembered: onboarding later does not answer the same request again', (h) => {
  theDecline(send(h, request()));
  registered(h);
  assert.equal(send(h, request()), []);
  theBid(send(h, request({ nonce: 2 })));
});

NotOnboarded.run();

// ---------------------------------------------------------------------------------------------------------------

const Excluded = behaviour('bids (scenario 3): peer constraints');

Excluded('a node in excludePeers declines with excluded', (h) => {
  registered(h);
  const d = theDecline(send(h, request({ job: wasmJob(res(1), { excludePeers: [OTHER, SELF] }) })));
  assert.is(d.code, 'excluded');
  assert.match(d.reason, /excludePeers/);
  assert.equal(ctx(h).ledger.locks, {});
});

Excluded('a job pinned to other peers is declined with not-chosen; pinned to this node it gets a bid', (h) => {
  registered(h);
  const d = theDecline(send(h, request({ job: wasmJob(res(1), { peers: [OTHER] }) })));
  assert.is(d.code, 'not-chosen');
  theBid(send(h, request({ nonce: 2, job: wasmJob(res(1), { peers: [OTHER, SELF] }) })));
});

Excluded('excluding someone else does not matter', (h) => {
  registered(h);
  theBid(send(h, request({ job: wasmJob(res(1), { excludePeers: [OTHER] }) })));
});

Excluded.run();

// ---------------------------------------------------------------------------------------------------------------

const Executor = behaviour('bids (scenario 4): a request for an executor the node lacks');

Executor('a wasm job on a process-only node is declined with executor, naming what is offered', (h) => {
  registered(h, { ...OFFER, executors: ['process'] });
  const d = theDecline(send(h, request()));
  assert.is(d.code, 'executor');
  assert.is(d.reason, 'executor "wasm" is not offered here; this node offers process');
  assert.equal(ctx(h).ledger.locks, {});
});

Executor.run();

// ---------------------------------------------------------------------------------------------------------------

const Privileged = behaviour('bids (scenario 5): process jobs are privileged execution');

Privileged('a process job on a wasm-only node is declined with privileged and says how to allow it', (h) => {
  registered(h);
  const d = theDecline(send(h, request({ job: processJob() })));
  assert.is(d.code, 'privileged');
  assert.match(d.reason, /unsandboxed/);
  assert.match(d.reason, /--executors wasm,process/);
  assert.equal(ctx(h).ledger.locks, {});
});

Privileged('a node that allows process jobs bids on one', (h) => {
  registered(h, { ...OFFER, executors: ['wasm', 'process'] });
  const input = theBid(send(h, request({ job: processJob() })));
  assert.is(input.job.executor, 'process');
});

Privileged.run();

// ---------------------------------------------------------------------------------------------------------------

const Repeat = behaviour('bids (scenario 6): the same (dealId, nonce) is answered once');

Repeat('a repeated request gets nothing and locks nothing more', (h) => {
  registered(h);
  theBid(send(h, request()));
  const ledger = ctx(h).ledger;
  assert.equal(send(h, request({ now: T0 + 10 })), []);
  assert.is(ctx(h).ledger, ledger);
  assert.equal(Object.keys(ctx(h).ledger.locks), [`deal-1.1@${REQ}`]);
});

Repeat("another peer reusing a deal's id and nonce gets its own deal: it cannot take over or block the first", (h) => {
  registered(h);
  theBid(send(h, request({ job: wasmJob(res(0.5, GiB)) })));
  const other = theBid(send(h, request({ now: T0 + 20, from: OTHER, job: wasmJob(res(0.5, GiB)) })));
  assert.is(other.key, `deal-1.1@${OTHER}`);
  assert.is(other.requester, OTHER);
  assert.equal(Object.keys(ctx(h).ledger.locks).sort(), [`deal-1.1@${OTHER}`, `deal-1.1@${REQ}`].sort());
  // the real requester's next round is still answered
  theBid(send(h, request({ nonce: 2, now: T0 + 30, job: wasmJob(res(0.5, GiB)) })));
});

Repeat('a repeated declined request is not declined again', (h) => {
  registered(h);
  theDecline(send(h, request({ job: processJob() })));
  assert.equal(send(h, request({ job: processJob(), now: T0 + 1 })), []);
});

Repeat('another nonce of the same deal is a new request', (h) => {
  registered(h);
  theBid(send(h, request()));
  const input = theBid(send(h, request({ nonce: 2 })));
  assert.is(input.key, `deal-1.2@${REQ}`);
  assert.equal(Object.keys(ctx(h).answered.until).sort(), [`${REQ}/deal-1:1`, `${REQ}/deal-1:2`]);
});

Repeat.run();

// ---------------------------------------------------------------------------------------------------------------

const Happy = behaviour('bids (scenario 7): a valid request within free resources gets a bid, remembered');

Happy('locks the job resources until the request expires plus the grace, arms the lock timer, opens the provider negotiation and remembers the request', (h) => {
  registered(h, OFFER, { ...DEFAULT_PREFERENCES, provider: { ...DEFAULT_PREFERENCES.provider, minPrice: 7 } });
  const out = send(h, request());
  const key = `deal-1.1@${REQ}`;
  assert.equal(out, [
    { type: 'timer.schedule', at: T0 + 5000 + GRACE },
    {
      type: 'bid.open',
      input: {
        key,
        lockId: key,
        requester: REQ,
        job: wasmJob(),
        bid: { dealId: 'deal-1', nonce: 1, provider: SELF, price: 7, score: BENCH.cpuOpsPerSecPerCore, resources: res(1, GiB), expiresAt: T0 + 5000 + GRACE },
      },
    },
  ]);
  assert.equal(ctx(h).ledger.locks[key], { id: key, resources: res(1, GiB), ports: [], expiresAt: T0 + 5000 + GRACE, holder: REQ });
  // remembered until the request itself expires: after that it is ignored as expired anyway
  assert.equal(ctx(h).answered.until, { [`${REQ}/deal-1:1`]: T0 + 5000 });
});

Happy("bid.open's lock shows in availableResources", (h) => {
  registered(h);
  assert.equal(available(h), res(2, 4 * GiB, 50 * GiB));
  send(h, request({ job: wasmJob(res(1.5, 3 * GiB, 10 * GiB)) }));
  assert.equal(available(h), res(0.5, GiB, 40 * GiB));
  // And the lock expires like any other, giving the resources back.
  send(h, { type: 'ledger.expire', now: T0 + HOLD });
  assert.equal(available(h), res(2, 4 * GiB, 50 * GiB));
});

Happy('the lock can be allocated under the deal key, as the provider negotiation will ask', (h) => {
  registered(h);
  const input = theBid(send(h, request()));
  send(h, { type: 'ledger.allocate', allocationId: input.key, lockId: input.lockId, now: T0 + 100 });
  assert.equal(Object.keys(ctx(h).ledger.allocations), [`deal-1.1@${REQ}`]);
});

Happy.run();

// ---------------------------------------------------------------------------------------------------------------

const Shortage = behaviour('bids: resources, preferences and the ledger');

Shortage('two requests competing for the last core: exactly one bid.open and one insufficient decline', (h) => {
  registered(h);
  theBid(send(h, request({ dealId: 'first' })));
  const a = send(h, request({ dealId: 'a', from: REQ, now: T0 + 1 }));
  const b = send(h, request({ dealId: 'b', from: OTHER, now: T0 + 1 }));
  const all = [...a, ...b];
  assert.is(ofType(all, 'bid.open').length, 1);
  assert.equal(theBid(a).requester, REQ);
  const d = theDecline(b);
  assert.equal(d, { type: 'bid.decline.send', to: OTHER, dealId: 'b', nonce: 1, code: 'insufficient', reason: 'this node offers 0 cpu free, the job asks for 1 cpu' });
  assert.is(available(h).cpu, 0);
});

Shortage('more than the node registers at all is too-large, naming every short resource in one sentence', (h) => {
  registered(h);
  const d = theDecline(send(h, request({ job: wasmJob(res(3, 5 * GiB)) })));
  assert.is(d.code, 'too-large');
  assert.is(d.reason, 'this node offers 2 cpu and 4.0 GiB memory in all, the job asks for 3 cpu and 5.0 GiB memory');
});

Shortage('less free than asked, though the node has it in all, is insufficient, naming every short resource', (h) => {
  registered(h);
  send(h, request({ dealId: 'held', job: wasmJob(res(1.5, 3 * GiB)) }));
  const d = theDecline(send(h, request({ dealId: 'more', job: wasmJob(res(1, 2 * GiB)) })));
  assert.is(d.code, 'insufficient');
  assert.is(d.reason, 'this node offers 0.5 cpu and 1.0 GiB memory free, the job asks for 1 cpu and 2.0 GiB memory');
});

Shortage('a decline leaves the ledger exactly as it was', (h) => {
  registered(h);
  send(h, request({ dealId: 'held', job: wasmJob(res(1.5, GiB)) }));
  const before = ctx(h).ledger;
  const snapshot = JSON.parse(JSON.stringify(before));
  for (const [i, job] of [wasmJob(res(1)), processJob(), wasmJob(res(0.5), { excludePeers: [SELF] })].entries()) {
    const out = send(h, request({ dealId: `d${i}`, job }));
    theDecline(out);
    assert.equal(ofType(out, 'timer.schedule'), []);
    assert.is(ctx(h).ledger, before);
  }
  assert.equal(JSON.parse(JSON.stringify(ctx(h).ledger)), snapshot);
});

Shortage('a requester refused by preference is declined with preferences and the reason', (h) => {
  registered(h, OFFER, { ...DEFAULT_PREFERENCES, provider: { ...DEFAULT_PREFERENCES.provider, refuseRequesters: [REQ] } });
  const d = theDecline(send(h, request()));
  assert.is(d.code, 'preferences');
  assert.match(d.reason, /refused by preference/);
  theBid(send(h, request({ dealId: 'deal-2', from: OTHER })));
});

Shortage('what the preferences keep free is not bid away', (h) => {
  registered(h, OFFER, { ...DEFAULT_PREFERENCES, provider: { ...DEFAULT_PREFERENCES.provider, keepFree: 0.5 } });
  const d = theDecline(send(h, request({ job: wasmJob(res(1.5)) })));
  assert.is(d.code, 'preferences');
  assert.match(d.reason, /cpu after keeping 50% free/);
  theBid(send(h, request({ nonce: 2, job: wasmJob(res(1)) })));
});

Shortage('resources the ledger refuses as invalid are declined with invalid', (h) => {
  registered(h);
  const d = theDecline(send(h, request({ job: wasmJob(res(-1)) })));
  assert.is(d.code, 'invalid');
  assert.equal(ctx(h).ledger.locks, {});
});

Shortage.run();

// ---------------------------------------------------------------------------------------------------------------

const Expiry = behaviour('bids: expired requests and forgetting answered ones');

Expiry('an expired request is ignored, logged at debug and not remembered', (h) => {
  registered(h);
  const out = send(h, request({ expiresAt: T0 }));
  assert.equal(
    out.map((i) => i.type === 'log.write' && i.level),
    ['debug'],
  );
  assert.equal(ctx(h).answered.until, {});
  assert.equal(ctx(h).ledger.locks, {});
});

Expiry('the answered map forgets a request when it expires, and after answeredTtlMs at the latest', (h) => {
  registered(h);
  theBid(send(h, request({ expiresAt: T0 + 5000 })));
  send(h, { type: 'ledger.expire', now: T0 + HOLD });
  assert.equal(send(h, request({ now: T0 + 4999, expiresAt: T0 + TTL + 5000 })), []);
  // expired: answered again (its lock expired meanwhile), remembered until the new expiry, capped at the TTL
  const again = send(h, request({ now: T0 + HOLD + 1, expiresAt: T0 + 2 * TTL }));
  theBid(again);
  assert.equal(ctx(h).answered.until, { [`${REQ}/deal-1:1`]: T0 + HOLD + 1 + TTL });
});

Expiry('forgotten while its lock is still held, the request is declined as a duplicate', (h) => {
  registered(h);
  theBid(send(h, request()));
  // no ledger.expire: the lock is still in the ledger when the request comes round again
  const d = theDecline(send(h, request({ now: T0 + TTL, expiresAt: T0 + TTL + 5000 })));
  assert.is(d.code, 'duplicate');
});

Expiry('answering prunes forgotten entries; node.recovered prunes them too', (h) => {
  registered(h);
  send(h, request({ dealId: 'old' }));
  send(h, request({ dealId: 'newer', now: T0 + 1000, expiresAt: T0 + 9000 }));
  send(h, request({ dealId: 'new', now: T0 + 6000, expiresAt: T0 + 20_000 }));
  assert.equal(Object.keys(ctx(h).answered.until).sort(), [`${REQ}/new:1`, `${REQ}/newer:1`]);
  assert.equal(send(h, { type: 'node.recovered', now: T0 + 10_000 }).filter((i) => i.type !== 'timer.schedule' && i.type !== 'log.write'), []);
  assert.equal(Object.keys(ctx(h).answered.until), [`${REQ}/new:1`]);
});

Expiry(`at most ${MAX_ANSWERED} requests are remembered; the soonest to be forgotten go first`, () => {
  let answered = emptyAnswered();
  // recorded latest-due first, so the soonest due is the last one in
  for (let i = MAX_ANSWERED - 1; i >= 0; i -= 1) answered = rememberAnswered(answered, answeredKey('d', i, REQ), T0 + 1 + i, T0);
  const s = { registered: true, registration: null, ledger: emptyLedger(CAPABILITY), preferences: DEFAULT_PREFERENCES, answered };
  const d = decideBid(s, request({ dealId: 'fresh' }));
  const keys = Object.keys(d.answered.until);
  assert.is(keys.length, MAX_ANSWERED);
  assert.is(d.answered.size, MAX_ANSWERED);
  assert.ok(!keys.includes(answeredKey('d', 0, REQ)), 'the soonest-expiring entry is dropped');
  assert.ok(keys.includes(answeredKey('d', 1, REQ)));
  assert.is(d.answered.until[answeredKey('fresh', 1, REQ)], T0 + 5000);
});

Expiry.run();

// ---------------------------------------------------------------------------------------------------------------

const Persist = behaviour('bids: the answered map survives a snapshot round trip');

Persist('a restored node still ignores a request it answered before', (h) => {
  registered(h);
  theBid(send(h, request()));
  const snapshot = JSON.parse(JSON.stringify(h.actor.getPersistedSnapshot()));
  const r: Harness = { actor: createActor(nodeMachine, { snapshot, input: {} }), out: [] };
  r.actor.on('*', (e) => r.out.push(e));
  r.actor.start();
  try {
    assert.equal(ctx(r).answered.until, { [`${REQ}/deal-1:1`]: T0 + 5000 });
    assert.equal(send(r, request({ now: T0 + 500 })), []);
    theBid(send(r, request({ nonce: 2, now: T0 + 500 })));
  } finally {
    r.actor.stop();
  }
});

Persist.run();

// ---------------------------------------------------------------------------------------------------------------

const Relayed = behaviour('bids: a request relayed from a requester this node is not linked to gets a bid or nothing');

Relayed('a refusal of a relayed request is noted (counted, quiet) but not for sending; a direct one is sent', (h) => {
  registered(h);
  const big = wasmJob(res(64, GiB));
  const quiet = theDecline(send(h, request({ job: big, relayed: true })));
  assert.is(quiet.code, 'too-large');
  assert.is(quiet.quiet, true);
  const loud = theDecline(send(h, request({ job: big, nonce: 2 })));
  assert.is(loud.quiet, undefined);
  assert.is(ctx(h).declined['too-large'], 2, 'both count in info');
});

Relayed('a relayed request the node can take gets its bid as a direct one does', (h) => {
  registered(h);
  theBid(send(h, request({ relayed: true })));
});

Relayed.run();
