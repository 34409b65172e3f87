// Capability grants on the deal path (runtime/deals/deal-grants.ts): what a bid request carries, what the Node is
// told of a request's tokens, when a deal's later messages are refused, the bounds of `grants` on the wire, and the
// tunnel refusal of a part whose deal's grant lapsed.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { DealGrant } from '../../../machines/deal.events.ts';
import { dealKey } from '../../../machines/deal.ids.ts';
import type { JobSpec, PartRole } from '../../../machines/job.ts';
import { BidGate } from '../../../runtime/deals/bid-gate.ts';
import { DealGrants, type DealTrust, MAX_GRANT_DETAIL } from '../../../runtime/deals/deal-grants.ts';
import { dealInboxes } from '../../../runtime/deals/deal-inboxes.ts';
import { MAX_BID_GRANTS, MAX_BID_GRANT_CHARS, dealPayloadSchemas } from '../../../runtime/deals/deal-schemas.ts';
import { PartRegistry } from '../../../runtime/deals/part-registry.ts';
import { parsePayload } from '../../../runtime/net/wire/envelope-schema.ts';
import type { Authorization } from '../../../runtime/trust/trust-service.ts';
import { PROCESS_JOB } from '../../fixtures/deal-fixtures.ts';

const T = 1_700_000_000_000;
const DID = 'did:key:z6MkRequesterRequesterRequesterRequesterRequester';
const ID = (c: string) => c.repeat(43);

/** A trust service that answers what it is told, and remembers what it was asked. */
function fakeTrust(over: Partial<{ held: string[]; answer: Authorization; revoked: Set<string> }> = {}) {
  const asked: { tokens: readonly string[] | undefined; did: string }[] = [];
  const revoked = over.revoked ?? new Set<string>();
  let now = T;
  const trust: DealTrust = {
    grantsFor: () => over.held ?? [],
    authorize: (tokens, did) => (asked.push({ tokens, did }), over.answer ?? { ok: true, ids: [ID('a')], expiresAt: T + 60_000, root: 'did:key:root' }),
    stillHolds: (g: DealGrant) => g.expiresAt > now && !g.ids.some((id) => revoked.has(id)),
  };
  return { trust, asked, revoked, at: (t: number) => (now = t), now: () => now };
}

const Grants = suite('deal grants: what requests carry, what the Node is told, when later messages are refused');

Grants('a requester attaches the tokens it holds for deploy, and nothing when it holds none (or has no trust service)', () => {
  assert.equal(new DealGrants(fakeTrust({ held: ['tok1', 'tok2'] }).trust, () => T).tokens(), { grants: ['tok1', 'tok2'] });
  assert.equal(new DealGrants(fakeTrust({ held: [] }).trust, () => T).tokens(), {});
  assert.equal(new DealGrants(undefined, () => T).tokens(), {});
});

Grants('a request without tokens is not checked: the Node is told nothing (and decides no-grant itself)', () => {
  const f = fakeTrust();
  const g = new DealGrants(f.trust, () => T);
  assert.is(g.check(undefined, DID), undefined);
  assert.is(g.check([], DID), undefined);
  assert.equal(f.asked, []);
});

Grants("a request's tokens are checked for the envelope's signer: the grant's ids and expiry, or why not (bounded)", () => {
  const ok = fakeTrust();
  assert.equal(new DealGrants(ok.trust, () => T).check(['tok'], DID), { ok: true, ids: [ID('a')], expiresAt: T + 60_000 });
  assert.equal(ok.asked, [{ tokens: ['tok'], did: DID }]);
  const bad = fakeTrust({ answer: { ok: false, reason: 'bad-signature', detail: 'x'.repeat(5000) } });
  const r = new DealGrants(bad.trust, () => T).check(['tok'], DID);
  assert.ok(r && !r.ok && r.reason === 'bad-signature' && r.detail.length === MAX_GRANT_DETAIL, JSON.stringify(r).slice(0, 200));
});

Grants('a deal accepted under a grant is refused once it expired or a link of it was revoked, counted by message', () => {
  const f = fakeTrust();
  const g = new DealGrants(f.trust, f.now);
  const grant = { ids: [ID('a'), ID('b')], expiresAt: T + 1000 };
  assert.is(g.lapsed(grant, 'deal.commit'), null);
  f.revoked.add(ID('b'));
  assert.is(g.lapsed(grant, 'deal.commit'), 'the capability grant this deal was accepted under was revoked');
  f.revoked.clear();
  f.at(T + 1000);
  assert.is(g.lapsed(grant, 'logs.request'), `the capability grant this deal was accepted under expired at ${new Date(T + 1000).toISOString()}`);
  assert.equal(g.refused, { 'deal.commit': 1, 'logs.request': 1 });
});

Grants('a deal accepted without a grant is never refused (a node not requiring grants behaves as before)', () => {
  const f = fakeTrust();
  f.at(T + 10 ** 9);
  const g = new DealGrants(f.trust, f.now);
  assert.is(g.lapsed(undefined, 'deal.commit'), null);
  assert.equal(g.refused, {});
});

Grants.run();

// ---------------------------------------------------------------------------------------------------------------

const Inboxes = suite("deal grants at the inboxes: the Node is told what the tokens prove; a lapsed deal's messages are refused");

const REQ = '12D3KooWRequesterBBBBBBBBBBBBBBBBBBBBBBBBBBBB';
const inbound = (type: string, payload: unknown, inbox = 'provider') =>
  ({ envelope: { type, payload, from: { peer: REQ, did: DID, inbox } }, broadcast: false, reply: undefined }) as never;

/** The inboxes over a fake deal service whose one deal (nonce 1) was accepted under `grant`; what they did. */
function inboxes(f: ReturnType<typeof fakeTrust>, grant: DealGrant | undefined) {
  const key = dealKey('job-1', 1, REQ);
  const did = { toNode: [] as Record<string, unknown>[], sent: [] as [string, string, Record<string, unknown>][], delivered: [] as [string, { type: string }][], replies: [] as [string, unknown][] };
  const svc = {
    deps: { log: { warn() {}, info() {}, debug() {} }, self: 'me', store: { getMeta: async () => undefined } },
    replyAddrs: { note() {} },
    gate: new BidGate(),
    grants: new DealGrants(f.trust, f.now),
    now: f.now,
    whenRecovered: (run: () => void) => run(),
    provisions: { get: (k: string) => (k === key ? { key, requester: REQ, job: PROCESS_JOB, ...(grant ? { grant } : {}) } : undefined) },
    registry: { has: () => true, deliver: (id: string, e: { type: string }) => (did.delivered.push([id, e]), true) },
    deliver: (id: string, e: { type: string }) => (did.delivered.push([id, e]), true),
    sendTo: async (peer: string, inbox: string, type: string, payload: Record<string, unknown>) => (did.sent.push([type, peer, payload]), true),
    output: { exists: async () => true, read: async () => ({ chunks: [], next: 0, eof: true }) },
  };
  const node = { backlog: 0, send: (e: Record<string, unknown>) => did.toNode.push(e) };
  const router = { reject() {}, reply: async (_m: unknown, type: string, payload: unknown) => void did.replies.push([type, payload]) };
  const [nodeInbox, , providerInbox] = dealInboxes(svc as never, node as never, router as never);
  return { node: nodeInbox!, provider: providerInbox!, did, key };
}
const flush = () => new Promise((resolve) => setImmediate(resolve));

Inboxes("a bid request's tokens are checked for the envelope's did; the Node gets the result, not the tokens", () => {
  const f = fakeTrust();
  const { node, did } = inboxes(f, undefined);
  node.handle(inbound('bid.request', { dealId: 'job-2', nonce: 1, job: {}, expiresAt: T + 10_000, grants: ['tok'] }, 'requester'));
  node.handle(inbound('bid.request', { dealId: 'job-3', nonce: 1, job: {}, expiresAt: T + 10_000 }, 'requester'));
  assert.equal(f.asked, [{ tokens: ['tok'], did: DID }]);
  assert.equal(did.toNode[0]!.grant, { ok: true, ids: [ID('a')], expiresAt: T + 60_000 });
  assert.not.ok('grants' in did.toNode[0]!, 'the tokens reached the Node (and its log)');
  assert.not.ok('grant' in did.toNode[1]!, 'a request without tokens is told as none');
});

Inboxes('once the grant lapsed: commit and allocate are answered deal.refused unauthorized; revert and cancel still go through', async () => {
  const f = fakeTrust();
  const { provider, did, key } = inboxes(f, { ids: [ID('a')], expiresAt: T + 1000 });
  provider.handle(inbound('deal.commit', { dealId: 'job-1', nonce: 1 }));
  await flush();
  assert.equal(did.delivered.map(([, e]) => e.type), ['deal.commit'], 'while it holds');
  f.revoked.add(ID('a'));
  provider.handle(inbound('deal.commit', { dealId: 'job-1', nonce: 1 }));
  provider.handle(inbound('deal.allocate', { dealId: 'job-1', nonce: 1 }));
  await flush();
  assert.equal(did.sent.map(([type, , p]) => [type, p.step, p.reason]), [
    ['deal.refused', 'commit', 'unauthorized: the capability grant this deal was accepted under was revoked'],
    ['deal.refused', 'allocate', 'unauthorized: the capability grant this deal was accepted under was revoked'],
  ]);
  provider.handle(inbound('deal.revert', { dealId: 'job-1', nonce: 1, reason: 'x' }));
  provider.handle(inbound('deal.cancel', { dealId: 'job-1', nonce: 1 }));
  provider.handle(inbound('batch.assign', { dealId: 'job-1', nonce: 1, indexes: [1] }));
  provider.handle(inbound('batch.release', { dealId: 'job-1', nonce: 1 }));
  await flush();
  assert.equal(did.delivered.slice(1).map(([id, e]) => `${id} ${e.type}`), [`provider/${key} deal.revert`, `provider/${key} deal.cancel`, `allocation/${key} batch.release`]);
});

Inboxes("once the grant lapsed, the deal's output is refused with the code unauthorized", async () => {
  const f = fakeTrust();
  const { provider, did, key } = inboxes(f, { ids: [ID('a')], expiresAt: T + 1000 });
  provider.handle(inbound('logs.request', { allocationId: key, offset: 0 }));
  await flush();
  assert.is(did.replies[0]![0], 'logs.page');
  f.at(T + 1000);
  provider.handle(inbound('logs.request', { allocationId: key, offset: 0 }));
  await flush();
  assert.equal(did.replies[1], ['net.error', { code: 'unauthorized', message: `the capability grant this deal was accepted under expired at ${new Date(T + 1000).toISOString()}` }]);
});

Inboxes('a deal accepted without a grant: nothing is refused, whatever the trust service says', async () => {
  const f = fakeTrust();
  f.at(T + 10 ** 9);
  const { provider, did } = inboxes(f, undefined);
  provider.handle(inbound('deal.commit', { dealId: 'job-1', nonce: 1 }));
  provider.handle(inbound('batch.assign', { dealId: 'job-1', nonce: 1, indexes: [1] }));
  await flush();
  assert.equal(did.delivered.map(([, e]) => e.type), ['deal.commit', 'batch.assign']);
  assert.equal(did.sent, []);
});

Inboxes.run();

// ---------------------------------------------------------------------------------------------------------------

const Wire = suite('deal grants on the wire: bid.request carries at most 4 tokens of at most 8192 characters');

const JOB: JobSpec = { ...PROCESS_JOB, constraints: { peers: [], excludePeers: [] } };
const bidRequest = (grants?: unknown) => ({ dealId: 'deal-0123456789abcdef', nonce: 1, job: JOB, expiresAt: T + 5000, ...(grants === undefined ? {} : { grants }) });
const parse = (payload: unknown) => parsePayload(dealPayloadSchemas, 'bid.request', payload);

Wire('none, or up to 4 base64url tokens, pass unchanged', () => {
  for (const grants of [undefined, ['a'], ['a'.repeat(8192), 'b-_9', 'c', 'd']]) {
    const r = parse(bidRequest(grants));
    assert.ok(r.ok, JSON.stringify(r).slice(0, 300));
    if (r.ok) assert.equal(r.payload, bidRequest(grants));
  }
});

Wire('5 tokens, a token of 8193 characters, an empty list or one that is not base64url is refused, naming grants', () => {
  for (const grants of [['a', 'b', 'c', 'd', 'e'], ['a'.repeat(8193)], [], ['not a token!'], [42]]) {
    const r = parse(bidRequest(grants));
    assert.not.ok(r.ok, `accepted ${JSON.stringify(grants).slice(0, 80)}`);
    if (!r.ok) assert.match(r.detail, /grants/);
  }
});

Wire("the bounds are the trust service's own (which loads the token codec, so only here, dynamically)", async () => {
  const { MAX_GRANTS_PER_REQUEST } = await import('../../../runtime/trust/trust-service.ts');
  const { MAX_TOKEN_CHARS } = await import('../../../runtime/trust/capability.ts');
  assert.equal([MAX_BID_GRANTS, MAX_BID_GRANT_CHARS], [MAX_GRANTS_PER_REQUEST, MAX_TOKEN_CHARS]);
});

Wire('a decline may say unauthorized', () => {
  assert.ok(parsePayload(dealPayloadSchemas, 'bid.decline', { dealId: 'deal-0123456789abcdef', nonce: 1, code: 'unauthorized', reason: 'unauthorized: expired (link 0 expired)' }).ok);
});

Wire.run();

// ---------------------------------------------------------------------------------------------------------------

const Tunnel = suite('deal grants and tunnels: a part whose deal grant lapsed is not reached');

Tunnel('the requester and the members are refused unauthorized once the grant lapsed; not before', () => {
  const REQUESTER = '12D3KooWRequesterRequesterRequesterRequester1';
  const P_WEB = '12D3KooWProviderOfWebProviderOfWebProviderOf1';
  const kv: PartRole = { ensemble: 'ens-1', name: 'kv', type: 'service', ports: ['http'], restart: 'always', dependsOn: [], maxRestarts: { count: 5, withinMs: 60_000 } };
  const key = dealKey('ens-1-kv', 1, REQUESTER);
  const parts = new PartRegistry();
  parts.noteMembers(key, kv, REQUESTER, [{ part: 'web', provider: P_WEB }]);
  parts.started(key, { ...PROCESS_JOB, part: kv }, { DMS_PORT_HTTP: '41000' });
  let lapsed: string | null = null;
  const asked: string[] = [];
  parts.lapsed = (id) => (asked.push(id), lapsed);
  assert.equal(parts.authorize(P_WEB, { deal: 'ens-1', part: 'kv', port: 'http' }), { port: 41_000 });
  lapsed = 'the capability grant this deal was accepted under was revoked';
  for (const peer of [P_WEB, REQUESTER]) assert.equal(parts.authorize(peer, { deal: 'ens-1', part: 'kv', port: 'http' }), { refused: 'unauthorized', detail: lapsed });
  assert.ok(asked.every((id) => id === key));
  // a stranger is still told it is not allowed: the grant is not asked for it
  const r = parts.authorize('12D3KooWStrangerStrangerStrangerStrangerStra1', { deal: 'ens-1', part: 'kv', port: 'http' });
  assert.is('refused' in r && r.refused, 'not-allowed');
});

Tunnel.run();
