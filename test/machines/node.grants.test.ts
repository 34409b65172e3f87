// Who a Node bids for (issue 14): with grants required (`--require-grants` through node.configure, or the preference
// provider.requireGrants), a request whose capability tokens the runtime did not find good is declined
// `unauthorized`, saying why, and counted; a good grant is bid on and kept in the deal's input, down to the
// allocation's record; with grants not required, tokens change nothing. Pure: decideBid, then a started Node actor.
import * as assert from 'uvu/assert';
import { presentNode } from '../../actors/node.actor.ts';
import { allocationMachine } from '../../machines/allocation.machine.ts';
import type { AllocationInput } from '../../machines/allocation.messages.ts';
import { type BidState, decideBid, emptyAnswered, requiresGrant } from '../../machines/bidding.ts';
import type { BidRequestEvent, GrantCheck } from '../../machines/bidding.messages.ts';
import { batchMachine } from '../../machines/batch.machine.ts';
import { PERMANENT_DECLINES } from '../../machines/deal.constants.ts';
import type { JobSpec } from '../../machines/job.ts';
import { emptyLedger } from '../../machines/ledger.ts';
import { type NodeContext, type NodeMachine, nodeMachine } from '../../machines/node.machine.ts';
import type { NodeEvent, NodeIntent } from '../../machines/node.messages.ts';
import { DEFAULT_PREFERENCES, type Preferences } from '../../machines/preferences.ts';
import { providerMachine } from '../../machines/provider.machine.ts';
import type { ProviderInput, ProviderIntent } from '../../machines/provider.messages.ts';
import { createActor } from 'xstate';
import { suite } from 'uvu';
import { type Harness as MH, machineHarness } from '../fixtures/machine-harness.ts';
import { BENCH, CAPABILITY, HOST, OFFER, T0, res } from '../fixtures/node-fixtures.ts';

const SELF = '12D3KooWProviderAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const REQ = '12D3KooWRequesterBBBBBBBBBBBBBBBBBBBBBBBBBBBB';
const MiB = 1024 ** 2;
const ID = (c: string) => c.repeat(43);

const job = (): JobSpec => ({ executor: 'wasm', name: 'j', resources: res(0.1, MiB), timeoutMs: 60_000, constraints: { peers: [], excludePeers: [] }, wasm: { module: { sha256: 'a'.repeat(64), size: 1 }, args: [], env: {} } });
let deals = 0;
const request = (extra: Partial<BidRequestEvent> = {}): BidRequestEvent => ({ type: 'bid.request', dealId: `deal-${++deals}`, nonce: 1, job: job(), expiresAt: T0 + 2000, from: REQ, now: T0, self: SELF, ...extra });
const GOOD: GrantCheck = { ok: true, ids: [ID('r'), ID('l')], expiresAt: T0 + 3_600_000 };
const EXPIRED: GrantCheck = { ok: false, reason: 'expired', detail: 'link 0 expired at 2024-01-01T00:00:00.000Z' };
const REVOKED: GrantCheck = { ok: false, reason: 'revoked', detail: `link 1 (${ID('l')}) is revoked` };
const requiring: Preferences = { ...DEFAULT_PREFERENCES, provider: { ...DEFAULT_PREFERENCES.provider, requireGrants: true } };

type Harness = MH<NodeMachine, NodeIntent>;
const { behaviour, send, ofType } = machineHarness<NodeMachine, NodeEvent, NodeIntent>(nodeMachine, {});
const ctx = (h: Harness): NodeContext => h.actor.getSnapshot().context;

function registered(h: Harness, opts: { requireGrants?: boolean; preferences?: Preferences } = {}): void {
  send(h, { type: 'node.onboard', offer: OFFER, host: HOST, benchmark: BENCH });
  if (opts.requireGrants !== undefined) send(h, { type: 'node.configure', minFreeDisk: 0, requireGrants: opts.requireGrants });
  if (opts.preferences) send(h, { type: 'preferences.set', preferences: opts.preferences });
  assert.is(h.actor.getSnapshot().value, 'registered');
}
function outcome(intents: readonly NodeIntent[]) {
  const open = ofType(intents, 'bid.open')[0];
  const decline = ofType(intents, 'bid.decline.send')[0];
  assert.ok((open === undefined) !== (decline === undefined), `one bid or one decline: ${JSON.stringify(intents)}`);
  return { input: open?.input, decline };
}

// ---------------------------------------------------------------------------------------------------------------

const Decide = suite('grants: decideBid, the pure decision');

function state(over: Partial<BidState> = {}): BidState {
  return { registered: true, registration: { capability: CAPABILITY, benchmark: BENCH, offer: OFFER }, ledger: emptyLedger(CAPABILITY), preferences: DEFAULT_PREFERENCES, answered: emptyAnswered(100), ...over };
}

Decide('required and no token: declined unauthorized, nothing locked', () => {
  const s = state({ requireGrants: true });
  const d = decideBid(s, request());
  assert.is(d.ledger, undefined);
  const decline = d.intents.find((i) => i.type === 'bid.decline.send') as Extract<NodeIntent, { type: 'bid.decline.send' }>;
  assert.is(decline.code, 'unauthorized');
  assert.match(decline.reason, /^unauthorized: no-grant \(the request carried no capability token\)/);
});

Decide('required and granted: a bid, its input keeping the grant (ids and expiry)', () => {
  const d = decideBid(state({ requireGrants: true }), request({ grant: GOOD }));
  const open = d.intents.find((i) => i.type === 'bid.open') as Extract<NodeIntent, { type: 'bid.open' }>;
  assert.ok(open, JSON.stringify(d.intents));
  assert.equal(open.input.grant, { ids: [ID('r'), ID('l')], expiresAt: T0 + 3_600_000 });
});

Decide('not required: tokens are ignored, good or bad, and the input keeps no grant', () => {
  for (const grant of [undefined, GOOD, EXPIRED]) {
    const d = decideBid(state(), request(grant ? { grant } : {}));
    const open = d.intents.find((i) => i.type === 'bid.open') as Extract<NodeIntent, { type: 'bid.open' }> | undefined;
    assert.ok(open, `bid with ${JSON.stringify(grant)}`);
    assert.is(open!.input.grant, undefined);
  }
});

Decide('unauthorized comes first: a requester not served learns nothing of the node (not even not-onboarded)', () => {
  const d = decideBid(state({ requireGrants: true, registered: false, registration: null }), request({ grant: REVOKED }));
  const decline = d.intents.find((i) => i.type === 'bid.decline.send') as Extract<NodeIntent, { type: 'bid.decline.send' }>;
  assert.is(decline.code, 'unauthorized');
  assert.ok(decline.reason.startsWith(`unauthorized: revoked (link 1 (${ID('l')}) is revoked)`), decline.reason);
});

Decide('a grant that ended before the request was decided is expired, however the runtime found it', () => {
  const d = decideBid(state({ requireGrants: true }), request({ grant: { ...GOOD, ok: true, expiresAt: T0 } as GrantCheck }));
  const decline = d.intents.find((i) => i.type === 'bid.decline.send') as Extract<NodeIntent, { type: 'bid.decline.send' }>;
  assert.is(decline.code, 'unauthorized');
  assert.match(decline.reason, /^unauthorized: expired/);
});

Decide('either switch turns it on: the run setting or the preference', () => {
  assert.not.ok(requiresGrant({ preferences: DEFAULT_PREFERENCES }));
  assert.ok(requiresGrant({ requireGrants: true, preferences: DEFAULT_PREFERENCES }));
  assert.ok(requiresGrant({ requireGrants: false, preferences: requiring }));
});

Decide('unauthorized ends a job at once when every provider says it: asking again with the same tokens will not help', () => {
  assert.ok(PERMANENT_DECLINES.includes('unauthorized'));
});

Decide.run();

// ---------------------------------------------------------------------------------------------------------------

const Node = behaviour('grants: the Node actor, switched on by node.configure or its preferences');

Node('off by default: a request without a token is bid on', (h) => {
  registered(h);
  assert.is(ctx(h).requireGrants, false);
  assert.ok(outcome(send(h, request())).input);
});

Node('--require-grants (node.configure): declined unauthorized, the reason naming why, and counted for info', (h) => {
  registered(h, { requireGrants: true });
  assert.is(ctx(h).requireGrants, true);
  const none = outcome(send(h, request())).decline!;
  assert.is(none.code, 'unauthorized');
  assert.is(none.to, REQ);
  const expired = outcome(send(h, request({ grant: EXPIRED }))).decline!;
  assert.is(expired.reason.split(';')[0], 'unauthorized: expired (link 0 expired at 2024-01-01T00:00:00.000Z)');
  assert.equal(presentNode(ctx(h), 'registered').declined, { unauthorized: 2 });
  assert.equal(ctx(h).ledger.locks, {}, 'nothing locked for a requester not served');
});

Node('--require-grants: a good grant is bid on, the provider input keeping it', (h) => {
  registered(h, { requireGrants: true });
  const { input } = outcome(send(h, request({ grant: GOOD })));
  assert.equal(input!.grant, { ids: GOOD.ok ? GOOD.ids : [], expiresAt: T0 + 3_600_000 });
  assert.is(Object.keys(ctx(h).ledger.locks).length, 1);
});

Node('the preference alone switches it on, and off again', (h) => {
  registered(h, { preferences: requiring });
  assert.is(outcome(send(h, request())).decline!.code, 'unauthorized');
  send(h, { type: 'preferences.set', preferences: DEFAULT_PREFERENCES });
  assert.ok(outcome(send(h, request())).input);
});

Node('a later configure without the flag switches it off, and says so in the log', (h) => {
  registered(h, { requireGrants: true });
  const out = send(h, { type: 'node.configure', minFreeDisk: 0 });
  assert.ok(out.some((i) => i.type === 'log.write' && /no longer required/.test(i.message)), JSON.stringify(out));
  assert.ok(outcome(send(h, request())).input);
});

Node('its own request is still ignored, grant or not', (h) => {
  registered(h, { requireGrants: true });
  assert.equal(send(h, request({ from: SELF })), []);
});

Node.run();

// ---------------------------------------------------------------------------------------------------------------

const Carried = suite('grants: the grant a deal was bid under goes down to its allocation and stays in its record');

Carried('the provider spawns the allocation with the grant; the allocation and batch records keep it', () => {
  const grant = { ids: [ID('r')], expiresAt: T0 + 60_000 };
  const key = `deal-x.1@${REQ}`;
  const input: ProviderInput = { key, bid: { dealId: 'deal-x', nonce: 1, provider: SELF, price: 0, score: 1, resources: res(0.1, MiB), expiresAt: T0 + 10_000 }, requester: REQ, job: job(), lockId: key, grant };
  const out: ProviderIntent[] = [];
  const p = createActor(providerMachine, { input });
  p.on('*', (e) => out.push(e as ProviderIntent));
  p.start();
  p.send({ type: 'provider.start', now: T0, bidSent: true });
  p.send({ type: 'deal.commit', dealId: 'deal-x', nonce: 1, from: REQ, now: T0 + 1 });
  p.send({ type: 'deal.allocate', dealId: 'deal-x', nonce: 1, from: REQ, now: T0 + 2, moduleReady: true });
  p.send({ type: 'ledger.allocated', ok: true, now: T0 + 3 });
  const spawn = out.find((i) => i.type === 'allocation.spawn') as Extract<ProviderIntent, { type: 'allocation.spawn' }> | undefined;
  p.stop();
  assert.ok(spawn, out.map((i) => i.type).join(', '));
  assert.equal(spawn!.input.grant, grant);
  for (const machine of [allocationMachine, batchMachine]) {
    const a = createActor(machine as typeof allocationMachine, { input: { ...spawn!.input, ...(machine === batchMachine ? { slots: 1, assign: [] } : {}) } as AllocationInput });
    a.start();
    assert.equal((a.getSnapshot().context as { record: { grant?: unknown } }).record.grant, grant);
    a.stop();
  }
});

Carried('a deal bid without a grant keeps none', () => {
  const d = decideBid(state(), request());
  const open = d.intents.find((i) => i.type === 'bid.open') as Extract<NodeIntent, { type: 'bid.open' }>;
  assert.not.ok('grant' in open.input);
});

Carried.run();
