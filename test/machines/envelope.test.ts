import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BROADCAST_PEER, DEFAULT_TTL_MS, MAX_CLOCK_SKEW_MS, MAX_TTL_MS, REJECT_REASONS, type RejectReason, type UnsignedEnvelope, checkArrival, gossipVerdict, replyExpiry } from '../../machines/envelope.ts';

const NOW = 1_700_000_000_000;
const ME = '12D3KooWMe';
const THEM = '12D3KooWThem';
const env = (over: Partial<UnsignedEnvelope> = {}): UnsignedEnvelope => ({
  v: 1,
  id: 'abcdefgh.1',
  from: { peer: THEM, did: 'did:key:z6Mk', inbox: 'net' },
  to: { peer: ME, inbox: 'net' },
  type: 'net.ping',
  payload: { seq: 1 },
  ts: NOW - 10,
  exp: NOW + 1000,
  ...over,
});
const direct = { now: NOW, localPeer: ME, remotePeer: THEM, broadcast: false };

const Arrival = suite('checkArrival: the rules that need no crypto');

Arrival('a fresh envelope from the connection\'s peer to this node passes', () => {
  assert.is(checkArrival(env(), direct), null);
});

Arrival('refuses another wire version', () => {
  assert.is(checkArrival(env({ v: 2 }), direct), 'version');
});

Arrival('refuses a `from` that names a peer other than the authenticated one', () => {
  assert.is(checkArrival(env({ from: { peer: 'someone-else', did: 'did:key:z6Mk', inbox: 'net' } }), direct), 'from-mismatch');
});

Arrival('refuses an envelope addressed to another peer, and a broadcast sent directly', () => {
  assert.is(checkArrival(env({ to: { peer: 'other', inbox: 'net' } }), direct), 'misaddressed');
  assert.is(checkArrival(env({ to: { peer: BROADCAST_PEER, inbox: 'net' } }), direct), 'misaddressed');
  assert.is(checkArrival(env({ to: { peer: BROADCAST_PEER, inbox: 'net' } }), { ...direct, broadcast: true }), null);
  assert.is(checkArrival(env(), { ...direct, broadcast: true }), 'misaddressed');
});

Arrival('refuses an expired envelope; one expiring right now still counts', () => {
  assert.is(checkArrival(env({ exp: NOW - 1 }), direct), 'expired');
  assert.is(checkArrival(env({ exp: NOW }), direct), null);
});

Arrival('refuses a timestamp too far in the future, tolerating clock skew', () => {
  assert.is(checkArrival(env({ ts: NOW + MAX_CLOCK_SKEW_MS, exp: NOW + MAX_CLOCK_SKEW_MS + 1 }), direct), null);
  assert.is(checkArrival(env({ ts: NOW + MAX_CLOCK_SKEW_MS + 1, exp: NOW + MAX_CLOCK_SKEW_MS + 2 }), direct), 'future');
});

Arrival('refuses a life longer than the maximum, or an expiry before the timestamp', () => {
  assert.is(checkArrival(env({ ts: NOW, exp: NOW + MAX_TTL_MS }), direct), null);
  assert.is(checkArrival(env({ ts: NOW, exp: NOW + MAX_TTL_MS + 1 }), direct), 'ttl-too-long');
  assert.is(checkArrival(env({ ts: NOW + 100, exp: NOW + 50 }), direct), 'ttl-too-long');
});

Arrival.run();

const Reply = suite('replyExpiry: a reply carries the request\'s deadline');

Reply('the request\'s own deadline when it is sooner than a fresh life', () => {
  assert.is(replyExpiry(env({ exp: NOW + 500 }), NOW), NOW + 500);
});

Reply('never longer than a fresh message\'s life', () => {
  assert.is(replyExpiry(env({ ts: NOW, exp: NOW + MAX_TTL_MS }), NOW), NOW + DEFAULT_TTL_MS);
});

Reply.run();

const Gossip = suite('gossipVerdict: a broadcast is rejected for its author\'s faults, ignored for this node\'s own refusals');

/** The same to every node: bytes that are not an envelope, or a forged or misaddressed one. */
const AUTHOR_FAULTS: readonly RejectReason[] = ['malformed', 'oversized', 'truncated', 'unknown-frame', 'bad-signature', 'from-mismatch', 'did-mismatch', 'misaddressed', 'ttl-too-long'];
/** Depend on this node: its clock, the ids it saw, the types, versions and inboxes it knows, its flow control. */
const LOCAL_REFUSALS: readonly RejectReason[] = ['expired', 'future', 'replayed', 'unknown-type', 'invalid-payload', 'version', 'no-inbox', 'not-accepted', 'flow-violation'];

Gossip('a broadcast that passed every check is accepted', () => {
  assert.is(gossipVerdict(null), 'accept');
});

Gossip('an author\'s fault is rejected', () => {
  for (const r of AUTHOR_FAULTS) assert.is(gossipVerdict(r), 'reject', r);
});

Gossip('a refusal that depends on this node is ignored, so the honest relay is not scored down', () => {
  for (const r of LOCAL_REFUSALS) assert.is(gossipVerdict(r), 'ignore', r);
});

Gossip('every reject reason has a verdict, and is listed above as a fault or a local refusal', () => {
  for (const r of REJECT_REASONS) assert.ok(['reject', 'ignore'].includes(gossipVerdict(r)), r);
  assert.equal([...AUTHOR_FAULTS, ...LOCAL_REFUSALS].sort(), [...REJECT_REASONS].sort());
});

Gossip.run();
