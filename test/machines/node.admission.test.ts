// What a stranger's bid request may cost a Node (issue 10): locks charged in steps, a cap on one requester's
// unanswered locks, a lock that lives only as long as the bid needs it, and no new work while the disk is full.
// Driven through a started Node actor, the way the runtime drives it.
import * as assert from 'uvu/assert';
import { presentNode } from '../../actors/node.actor.ts';
import type { BidRequestEvent } from '../../machines/bidding.messages.ts';
import { type Resources, resourcesOf } from '../../machines/capability.ts';
import { DEAL_DEFAULTS, PERMANENT_DECLINES } from '../../machines/deal.constants.ts';
import type { JobSpec } from '../../machines/job.ts';
import { LOCK_STEP, availableResources, chargeFor } from '../../machines/ledger.ts';
import { type NodeContext, type NodeMachine, nodeMachine } from '../../machines/node.machine.ts';
import type { NodeEvent, NodeIntent, Sample } from '../../machines/node.messages.ts';
import { DEFAULT_PREFERENCES, type Preferences } from '../../machines/preferences.ts';
import { type Harness as MH, machineHarness } from '../fixtures/machine-harness.ts';
import { BENCH, GiB, HOST, OFFER, T0, res } from '../fixtures/node-fixtures.ts';

const SELF = '12D3KooWProviderAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const REQ = '12D3KooWRequesterBBBBBBBBBBBBBBBBBBBBBBBBBBBB';
const OTHER = '12D3KooWSomebodyCCCCCCCCCCCCCCCCCCCCCCCCCCCCC';
const MiB = 1024 ** 2;
const GRACE = DEAL_DEFAULTS.bidGraceMs;
const HOLD = DEAL_DEFAULTS.bidHoldMs;
const peer = (i: number) => `12D3KooWPeer${String(i).padStart(33, '0')}`;

function job(resources: Resources = res(1, GiB), excludePeers: string[] = []): JobSpec {
  return { executor: 'wasm', name: 'j', resources, timeoutMs: 60_000, constraints: { peers: [], excludePeers }, wasm: { module: { sha256: 'a'.repeat(64), size: 1 }, args: [], env: {} } };
}
let deals = 0;
function request(extra: Partial<BidRequestEvent> = {}): BidRequestEvent {
  return { type: 'bid.request', dealId: `deal-${++deals}`, nonce: 1, job: job(), expiresAt: T0 + 2000, from: REQ, now: T0, self: SELF, ...extra };
}
const sample = (diskFree: number, at = T0): Sample => ({ at, load1: 0.1, memoryTotal: 10 * GiB, memoryAvailable: 8 * GiB, diskFree });

type Harness = MH<NodeMachine, NodeIntent>;
const { behaviour, send, ofType } = machineHarness<NodeMachine, NodeEvent, NodeIntent>(nodeMachine, {});
const ctx = (h: Harness): NodeContext => h.actor.getSnapshot().context;

function registered(h: Harness, preferences?: Preferences): void {
  send(h, { type: 'node.onboard', offer: OFFER, host: HOST, benchmark: BENCH });
  if (preferences) send(h, { type: 'preferences.set', preferences });
  assert.is(h.actor.getSnapshot().value, 'registered');
}
/** What came of one request: its bid's resources and expiry, or its decline. */
function outcome(intents: readonly NodeIntent[]) {
  const bid = ofType(intents, 'bid.open')[0]?.input.bid;
  const decline = ofType(intents, 'bid.decline.send')[0];
  assert.ok((bid === undefined) !== (decline === undefined), `one bid or one decline: ${JSON.stringify(intents)}`);
  return { bid, decline };
}
const logs = (intents: readonly NodeIntent[], level: string) => intents.filter((i) => i.type === 'log.write' && i.level === level).map((i) => (i as { message: string }).message);

// ---------------------------------------------------------------------------------------------------------------

const Step = behaviour('admission: a lock is charged in steps, so a tiny request cannot fit without end');

Step('a request for 1e-9 cpu and 1 byte is charged 0.01 cpu and 1 MiB, in its lock and its bid', (h) => {
  registered(h);
  const { bid } = outcome(send(h, request({ job: job(res(1e-9, 1)) })));
  assert.equal(bid!.resources, res(0.01, MiB));
  assert.equal(Object.values(ctx(h).ledger.locks)[0]!.resources, res(0.01, MiB));
});

Step('2 cpu hold exactly 200 locks of 1e-9 cpu; the next is declined insufficient, saying what it was charged', (h) => {
  registered(h, { ...DEFAULT_PREFERENCES, provider: { ...DEFAULT_PREFERENCES.provider, maxLocksPerRequester: 1000 } });
  for (let i = 0; i < 200; i += 1) assert.ok(outcome(send(h, request({ from: peer(i), job: job(res(1e-9, 1)) }))).bid, `bid ${i}`);
  assert.is(availableResources(ctx(h).ledger).cpu, 0);
  const { decline } = outcome(send(h, request({ from: peer(200), job: job(res(1e-9, 1)) })));
  assert.is(decline!.code, 'insufficient');
  assert.is(decline!.reason, 'this node offers 0 cpu free, the job asks for 0.01 cpu (it asked for 1e-9 cpu; this node charges cpu in steps of 0.01, memory and disk in steps of 1.0 MiB, at least 0.01 cpu and 1.0 MiB memory)');
  assert.is(Object.keys(ctx(h).ledger.locks).length, 200);
});

Step('amounts are rounded up to their step; whole steps are charged as asked', () => {
  const reg = res(2, 4 * GiB, 50 * GiB);
  assert.equal(chargeFor(res(0.5, 64 * MiB, 0), reg), res(0.5, 64 * MiB, 0));
  assert.equal(chargeFor(res(0.011, 64 * MiB + 1, 1), reg), res(0.02, 65 * MiB, MiB));
  assert.equal(chargeFor(res(0.07, MiB, 3 * MiB), reg), res(0.07, MiB, 3 * MiB), 'no float dust: 0.07 stays 0.07');
  assert.equal(LOCK_STEP, { cpu: 0.01, memory: MiB, disk: MiB });
});

Step('an offer that is not a whole number of steps can still be asked for in full', (h) => {
  const odd = 512e6; // --memory 512MB: 488.3 MiB
  assert.equal(chargeFor(res(1, odd), res(2, odd)), res(1, odd));
  send(h, { type: 'node.onboard', offer: { ...OFFER, memory: 2 * GiB + 1000 }, host: HOST, benchmark: BENCH });
  const { bid } = outcome(send(h, request({ job: job(res(1, 2 * GiB + 1000)) })));
  assert.equal(bid!.resources, res(1, 2 * GiB + 1000));
});

Step('invalid resources stay invalid (not rounded into a valid lock)', (h) => {
  registered(h);
  assert.is(outcome(send(h, request({ job: job(res(-1)) }))).decline!.code, 'invalid');
});

Step.run();

// ---------------------------------------------------------------------------------------------------------------

const Cap = behaviour('admission: one requester holds at most provider.maxLocksPerRequester unanswered locks');

Cap('by default 8: the 9th request is declined lock-limit, naming the preference; another requester still gets a bid', (h) => {
  registered(h);
  assert.is(DEFAULT_PREFERENCES.provider.maxLocksPerRequester, 8);
  for (let i = 0; i < 8; i += 1) assert.ok(outcome(send(h, request({ job: job(res(0.1, MiB)) }))).bid, `bid ${i}`);
  const { decline } = outcome(send(h, request({ job: job(res(0.1, MiB)) })));
  assert.is(decline!.code, 'lock-limit');
  assert.match(decline!.reason, /8 unanswered bids for this requester/);
  assert.match(decline!.reason, /provider\.maxLocksPerRequester/);
  assert.ok(outcome(send(h, request({ from: OTHER, job: job(res(0.1, MiB)) }))).bid);
  assert.equal(presentNode(ctx(h), 'registered').declined, { 'lock-limit': 1 }, 'counted by code, for info');
});

Cap('a lock answered (allocated) or let go (unlocked, expired) frees a place for the requester', (h) => {
  registered(h, { ...DEFAULT_PREFERENCES, provider: { ...DEFAULT_PREFERENCES.provider, maxLocksPerRequester: 2 } });
  const a = outcome(send(h, request({ job: job(res(0.1, MiB)) }))).bid!;
  const b = outcome(send(h, request({ job: job(res(0.1, MiB)) }))).bid!;
  assert.is(outcome(send(h, request({ job: job(res(0.1, MiB)) }))).decline!.code, 'lock-limit');
  const key = (x: typeof a) => `${x.dealId}.1@${REQ}`;
  send(h, { type: 'ledger.allocate', allocationId: key(a), lockId: key(a), now: T0 + 10 });
  assert.ok(outcome(send(h, request({ job: job(res(0.1, MiB)) }))).bid, 'after an allocation');
  send(h, { type: 'ledger.unlock', id: key(b) });
  assert.ok(outcome(send(h, request({ job: job(res(0.1, MiB)) }))).bid, 'after an unlock');
  assert.is(outcome(send(h, request({ job: job(res(0.1, MiB)) }))).decline!.code, 'lock-limit');
  send(h, { type: 'ledger.expire', now: T0 + HOLD });
  assert.ok(outcome(send(h, request({ now: T0 + HOLD, expiresAt: T0 + HOLD + 2000, job: job(res(0.1, MiB)) }))).bid, 'after the locks expired');
});

Cap('a decline for the cap is not one that ends a job: the requester asks again', () => {
  assert.not.ok(PERMANENT_DECLINES.includes('lock-limit'));
  assert.not.ok(PERMANENT_DECLINES.includes('disk-full'));
});

Cap.run();

// ---------------------------------------------------------------------------------------------------------------

const Life = behaviour('admission: a lock lives as long as its bid can be taken, no longer');

Life('held until the request expires plus the time to commit and allocate; the bid says so', (h) => {
  registered(h);
  const out = send(h, request({ expiresAt: T0 + 500 }));
  const { bid } = outcome(out);
  assert.is(bid!.expiresAt, T0 + 500 + GRACE);
  assert.equal(ofType(out, 'timer.schedule'), [{ type: 'timer.schedule', at: T0 + 500 + GRACE }]);
  send(h, { type: 'ledger.expire', now: T0 + 500 + GRACE });
  assert.equal(ctx(h).ledger.locks, {}, 'gone at its time, not at the old 15 s hold');
});

Life('a request that expires far ahead is held bidHoldMs at most', (h) => {
  registered(h);
  assert.is(outcome(send(h, request({ expiresAt: T0 + 60_000 }))).bid!.expiresAt, T0 + HOLD);
});

Life('the grace covers what the requester waits: its window, then the commit and allocate timeouts', (h) => {
  registered(h);
  const t = DEAL_DEFAULTS.requester;
  assert.ok(GRACE >= t.commitTimeoutMs + t.allocateTimeoutMs);
  // a request sent at T0 with the default window arrives 100 ms later; the requester commits as the window closes
  const expiresAt = T0 + t.bidWindowMs;
  const { bid } = outcome(send(h, request({ now: T0 + 100, expiresAt })));
  const key = `${bid!.dealId}.1@${REQ}`;
  // the allocate comes at the latest as the requester gives up waiting for it
  const last = expiresAt + t.commitTimeoutMs + t.allocateTimeoutMs - 1;
  send(h, { type: 'ledger.expire', now: last });
  const r = send(h, { type: 'ledger.allocate', allocationId: key, lockId: key, now: last, replyTo: 'r1' });
  assert.equal(ofType(r, 'reply.send')[0], { type: 'reply.send', replyTo: 'r1', ok: true, value: ctx(h).ledger.allocations[key] });
});

Life.run();

// ---------------------------------------------------------------------------------------------------------------

const Disk = behaviour('admission: under --min-free-disk the node declines new work with disk-full, and resumes');

Disk('disk nearly full: warn once, decline with disk-full naming the figures, say so in the view', (h) => {
  registered(h);
  send(h, { type: 'node.configure', minFreeDisk: GiB });
  const full = send(h, { type: 'monitor.sample', sample: sample(512 * MiB) });
  const nearlyFull = (intents: readonly NodeIntent[]) => logs(intents, 'warn').filter((m) => m.includes('nearly full'));
  assert.equal(nearlyFull(full), [`the data dir's disk is nearly full (512 MiB free; the minimum is 1.0 GiB, --min-free-disk): declining new work (disk-full); running jobs go on`]);
  assert.equal(nearlyFull(send(h, { type: 'monitor.sample', sample: sample(500 * MiB) })), [], 'once per change');
  const { decline } = outcome(send(h, request({ job: job(res(0.1, MiB)) })));
  assert.is(decline!.code, 'disk-full');
  assert.is(decline!.reason, "this node's disk is nearly full (500 MiB free, under its minimum of 1.0 GiB): it takes no new work until space returns");
  assert.equal(ctx(h).ledger.locks, {});
  const view = presentNode(ctx(h), 'registered');
  assert.equal(view.admission, { minFreeDisk: GiB, diskFull: true });
  assert.equal(view.declined, { 'disk-full': 1 });
});

Disk('what runs, and what was bid before, goes on: an earlier lock is still allocated', (h) => {
  registered(h);
  send(h, { type: 'node.configure', minFreeDisk: GiB });
  const { bid } = outcome(send(h, request({ job: job(res(0.1, MiB)) })));
  send(h, { type: 'monitor.sample', sample: sample(MiB) });
  const key = `${bid!.dealId}.1@${REQ}`;
  const r = send(h, { type: 'ledger.allocate', allocationId: key, lockId: key, now: T0 + 10, replyTo: 'r' });
  assert.is(ofType(r, 'reply.send')[0]!.ok, true);
});

Disk('space back: warn once that it takes new work, and bid again', (h) => {
  registered(h);
  send(h, { type: 'node.configure', minFreeDisk: GiB });
  send(h, { type: 'monitor.sample', sample: sample(MiB) });
  const back = send(h, { type: 'monitor.sample', sample: sample(3 * GiB) });
  assert.equal(logs(back, 'warn').filter((m) => m.includes('data dir')), [`the data dir's disk has room again (3.0 GiB free; the minimum is 1.0 GiB): taking new work`]);
  assert.ok(outcome(send(h, request({ job: job(res(0.1, MiB)) }))).bid);
  assert.is(ctx(h).admission.diskFull, false);
});

Disk('a new minimum applies to the latest sample at once; without one the disk never blocks', (h) => {
  registered(h);
  send(h, { type: 'monitor.sample', sample: sample(MiB) });
  assert.ok(outcome(send(h, request({ job: job(res(0.1, MiB)) }))).bid, 'no minimum configured');
  const out = send(h, { type: 'node.configure', minFreeDisk: 2 * MiB });
  assert.is(logs(out, 'warn').length, 1);
  assert.is(outcome(send(h, request({ job: job(res(0.1, MiB)) }))).decline!.code, 'disk-full');
  send(h, { type: 'node.configure', minFreeDisk: 0 });
  assert.ok(outcome(send(h, request({ job: job(res(0.1, MiB)) }))).bid, '--min-free-disk 0');
});

Disk('declines that never change come first: a job that excludes the node still hears excluded', (h) => {
  registered(h);
  send(h, { type: 'node.configure', minFreeDisk: GiB });
  send(h, { type: 'monitor.sample', sample: sample(MiB) });
  assert.is(outcome(send(h, request({ job: job(res(0.1, MiB), [SELF]) }))).decline!.code, 'excluded');
  assert.is(outcome(send(h, request({ job: job(res(64, MiB)) }))).decline!.code, 'too-large');
});

Disk('the admission survives a snapshot round trip', (h) => {
  registered(h);
  send(h, { type: 'node.configure', minFreeDisk: GiB });
  send(h, { type: 'monitor.sample', sample: sample(MiB) });
  const snap = JSON.parse(JSON.stringify(h.actor.getPersistedSnapshot()));
  assert.equal(snap.context.admission, { minFreeDisk: GiB, diskFull: true });
});

Disk.run();

const Share = behaviour('admission: one requester holds at most provider.maxShare of the node (absent: no cap)');

Share('at 0.5 of a node: bids until the requester holds half the cpu, then lock-limit naming maxShare; others still get bids', (h) => {
  registered(h, { ...DEFAULT_PREFERENCES, provider: { ...DEFAULT_PREFERENCES.provider, maxShare: 0.5 } });
  const cpu = resourcesOf(ctx(h).ledger.registered).cpu;
  assert.ok(outcome(send(h, request({ job: job(res(cpu / 4, MiB)) }))).bid);
  assert.ok(outcome(send(h, request({ job: job(res(cpu / 4, MiB)) }))).bid, 'exactly half');
  const { decline } = outcome(send(h, request({ job: job(res(0.01, MiB)) })));
  assert.is(decline!.code, 'lock-limit');
  assert.match(decline!.reason, /holds .* of this node's .* at most 50% \(provider\.maxShare\)/);
  assert.ok(outcome(send(h, request({ from: OTHER, job: job(res(cpu / 4, MiB)) }))).bid, 'another requester is not held back');
});

Share('allocated resources count too; releasing them makes room again; without maxShare one requester may take the whole node', (h) => {
  registered(h, { ...DEFAULT_PREFERENCES, provider: { ...DEFAULT_PREFERENCES.provider, maxShare: 0.5 } });
  const cpu = resourcesOf(ctx(h).ledger.registered).cpu;
  const a = outcome(send(h, request({ job: job(res(cpu / 2, MiB)) }))).bid!;
  const key = `${a.dealId}.1@${REQ}`;
  send(h, { type: 'ledger.allocate', allocationId: key, lockId: key, now: T0 + 10 });
  assert.is(outcome(send(h, request({ job: job(res(0.01, MiB)) }))).decline!.code, 'lock-limit', 'the allocation still counts');
  send(h, { type: 'ledger.release', allocationId: key });
  assert.ok(outcome(send(h, request({ job: job(res(cpu / 2, MiB)) }))).bid, 'room again once released');
});

Share('absent (the default): one requester may hold the whole node', (h) => {
  registered(h);
  assert.is(DEFAULT_PREFERENCES.provider.maxShare, undefined);
  const cpu = resourcesOf(ctx(h).ledger.registered).cpu;
  assert.ok(outcome(send(h, request({ job: job(res(cpu / 2, MiB)) }))).bid);
  assert.ok(outcome(send(h, request({ job: job(res(cpu / 2, MiB)) }))).bid, 'the second half too');
  assert.is(outcome(send(h, request({ job: job(res(0.01, MiB)) }))).decline!.code, 'insufficient', 'then the node is simply full');
});

Share.run();
