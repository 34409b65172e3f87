/** The trust machine: keeps anchors, tokens and revocations as told, bounded, and prunes what expired. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createActor } from 'xstate';
import { EMPTY_TRUST, TRUST_LIMITS, type TokenEntry, applyTrust, trustMachine } from '../../machines/trust.machine.ts';

const test = suite('trust machine');

const entry = (id: string, addedAt: number, expiresAt = addedAt + 1000): TokenEntry => ({ id, token: `t-${id}`, kind: 'held', root: 'did:r', audience: 'did:a', actions: ['deploy'], expiresAt, links: [id], addedAt });

test('anchors are added once and removed', () => {
  let c = applyTrust(EMPTY_TRUST, { type: 'trust.anchor', did: 'did:x', now: 5 });
  c = applyTrust(c, { type: 'trust.anchor', did: 'did:x', now: 9 });
  assert.equal(c.anchors, { 'did:x': { addedAt: 5 } });
  c = applyTrust(c, { type: 'trust.anchor', did: 'did:x', remove: true, now: 10 });
  assert.equal(c.anchors, {});
});

test('tokens and revocations past their end are pruned when something new comes in', () => {
  let c = applyTrust(EMPTY_TRUST, { type: 'trust.token', entry: entry('a', 0, 100) });
  c = applyTrust(c, { type: 'trust.revoke', id: 'r1', by: 'self', until: 150, now: 10 });
  c = applyTrust(c, { type: 'trust.revoke', id: 'r2', by: 'self', until: null, now: 20 });
  assert.equal(Object.keys(c.tokens), ['a']);
  c = applyTrust(c, { type: 'trust.token', entry: entry('b', 200) });
  assert.equal(Object.keys(c.tokens), ['b'], 'a expired at 100');
  assert.equal(Object.keys(c.revoked), ['r2'], 'r1 was kept until 150; r2 has no known end');
  c = applyTrust(c, { type: 'trust.revoke', id: 'r3', by: 'did:x', until: null, now: 200 });
  assert.equal(Object.keys(c.revoked).sort(), ['r2', 'r3']);
});

test('bounded: past the limit the oldest token goes', () => {
  let c = EMPTY_TRUST;
  for (let i = 0; i <= TRUST_LIMITS.tokens; i += 1) c = applyTrust(c, { type: 'trust.token', entry: entry(`t${i}`, i + 1, 1e12) });
  assert.is(Object.keys(c.tokens).length, TRUST_LIMITS.tokens);
  assert.not.ok(c.tokens.t0, 'the oldest went');
  assert.ok(c.tokens[`t${TRUST_LIMITS.tokens}`]);
});

test('the actor answers a command once it is kept', () => {
  const a = createActor(trustMachine).start();
  const replies: unknown[] = [];
  a.on('*', (e) => replies.push(e));
  a.send({ type: 'trust.anchor', did: 'did:y', now: 1, replyTo: 'r1' });
  assert.equal(replies, [{ type: 'reply.send', replyTo: 'r1', ok: true }]);
  assert.ok(a.getSnapshot().context.anchors['did:y']);
});

test.run();

const bound = suite('trust machine: revocations are bounded by who made them');

bound("no other revoker can push this node's own revocations out, nor fill the list alone", () => {
  let c = applyTrust(EMPTY_TRUST, { type: 'trust.revoke', id: 'mine', by: 'self', until: null, now: 1 });
  c = applyTrust(c, { type: 'trust.revoke', id: 'theirs', by: 'did:b', until: null, now: 2 });
  for (let i = 0; i < TRUST_LIMITS.perRevoker + 50; i += 1) c = applyTrust(c, { type: 'trust.revoke', id: `flood${i}`, by: 'did:mallory', until: null, now: 10 + i });
  assert.ok(c.revoked.mine, "this node's own stays");
  assert.ok(c.revoked.theirs, "another revoker's stays");
  assert.is(Object.values(c.revoked).filter((r) => r.by === 'did:mallory').length, TRUST_LIMITS.perRevoker, 'one revoker keeps at most perRevoker');
  assert.not.ok(c.revoked.flood0, 'its oldest went first');
  assert.ok(c.revoked[`flood${TRUST_LIMITS.perRevoker + 49}`]);
  const again = applyTrust(c, { type: 'trust.revoke', id: 'mine', by: 'self', until: null, now: 99_999 });
  assert.is(again.revoked.mine!.at, 1, 'a revocation repeated keeps its first time');
});

bound.run();
