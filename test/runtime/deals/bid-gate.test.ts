// The bid gate (runtime/deals/bid-gate.ts): what it declines before a request is logged, and what reopens it. It
// must never decline what the Node has not refused: only after a decline of the same kind, only within HOLD_MS or
// until a fact says the reason is gone.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BidGate, HOLD_MS, MAX_GATED_REQUESTERS } from '../../../runtime/deals/bid-gate.ts';
import type { FactRecord } from '../../../runtime/supervisor/supervision.ts';

const fact = (f: unknown): FactRecord => ({ actor: 'node', seq: 1, ts: 0, fact: f as FactRecord['fact'] });
const locked = (id: string, holder: string) => fact({ type: 'ResourcesLocked', lock: { id, holder, resources: {}, ports: [], expiresAt: 0 } });
const released = (id: string) => fact({ type: 'LockReleased', id, reason: 'released' });

test('a fresh gate lets everything through to the Node', () => {
  const g = new BidGate();
  assert.is(g.check('p1', 0), null);
  assert.equal(g.declined, {});
});

test('lock-limit closes the gate for that requester alone, with the Node\'s own reason, counted', () => {
  const g = new BidGate();
  g.noteDecline('p1', 'lock-limit', 'holds 8 unanswered bids', 100);
  assert.equal(g.check('p1', 101), { code: 'lock-limit', reason: 'holds 8 unanswered bids' });
  assert.is(g.check('p2', 101), null, 'another requester is not affected');
  assert.equal(g.declined, { 'lock-limit': 1 });
});

test('a closure ends after HOLD_MS, so the Node decides again', () => {
  const g = new BidGate();
  g.noteDecline('p1', 'lock-limit', 'r', 100);
  assert.ok(g.check('p1', 100 + HOLD_MS - 1));
  assert.is(g.check('p1', 100 + HOLD_MS), null);
});

test('a released lock of the requester reopens it at once; a lock of another holder does not', () => {
  const g = new BidGate();
  g.facts([locked('k1', 'p1'), locked('k2', 'p2')]);
  g.noteDecline('p1', 'lock-limit', 'r', 100);
  g.facts([released('k2')]);
  assert.ok(g.check('p1', 101), 'p2\'s lock going does not reopen p1');
  g.facts([released('k1')]);
  assert.is(g.check('p1', 102), null);
});

test('disk-full and not-onboarded close the gate for everyone; a bid the Node makes reopens it', () => {
  for (const code of ['disk-full', 'not-onboarded'] as const) {
    const g = new BidGate();
    g.noteDecline('p1', code, `why ${code}`, 0);
    assert.equal(g.check('p9', 1), { code, reason: `why ${code}` });
    g.noteBid();
    assert.is(g.check('p9', 2), null);
  }
});

test('not-onboarded holds until the node saves a registration; disk-full only for HOLD_MS', () => {
  const g = new BidGate();
  g.noteDecline('p1', 'not-onboarded', 'not onboarded', 0);
  assert.equal(g.check('p9', 3_600_000), { code: 'not-onboarded', reason: 'not onboarded' }, 'an hour later it is still not onboarded');
  g.noteRegistered();
  assert.is(g.check('p9', 3_600_001), null);
  const d = new BidGate();
  d.noteDecline('p1', 'disk-full', 'full', 0);
  assert.ok(d.check('p2', HOLD_MS - 1));
  assert.is(d.check('p2', HOLD_MS), null, 'the Node decides again on the disk it has now');
});

test('declines that depend on the job (too-large, insufficient, preferences, excluded) are not remembered', () => {
  const g = new BidGate();
  for (const code of ['too-large', 'insufficient', 'preferences', 'excluded', 'not-chosen', 'executor', 'privileged'] as const) g.noteDecline('p1', code, 'r', 0);
  assert.is(g.check('p1', 1), null);
});

test('the requesters it remembers are capped, the oldest let go first', () => {
  const g = new BidGate();
  for (let i = 0; i <= MAX_GATED_REQUESTERS; i += 1) g.noteDecline(`p${i}`, 'lock-limit', 'r', 0);
  assert.is(g.check('p0', 1), null, 'the oldest was let go');
  assert.ok(g.check('p1', 1));
  assert.ok(g.check(`p${MAX_GATED_REQUESTERS}`, 1));
});

test.run();
