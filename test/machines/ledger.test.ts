import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Capability, Resources } from '../../machines/capability.ts';
import {
  type Ledger,
  type LedgerResult,
  type LockCommand,
  NOTHING,
  allocate,
  allocatedTotal,
  availableResources,
  emptyLedger,
  expire,
  ledgerView,
  lock,
  lockedTotal,
  nextExpiry,
  pickPorts,
  release,
  unlock,
} from '../../machines/ledger.ts';

const GiB = 1024 ** 3;
const NOW = 1_700_000_000_000;

const machine: Capability = {
  cpu: 4,
  memory: 8 * GiB,
  disk: 100 * GiB,
  gpus: [{ vendor: 'nvidia', model: 'T4', vram: 16 * GiB }],
  executors: ['wasm', 'process'],
};

/** A small port range so exhaustion is easy to reach. */
const RANGE = { from: 40000, to: 40009 };

function fresh(): Ledger {
  return emptyLedger(machine, RANGE);
}

function res(cpu: number, memory = 0, disk = 0, gpus = 0): Resources {
  return { cpu, memory, disk, gpus };
}

function cmd(id: string, resources: Resources, extra: Partial<LockCommand> = {}): LockCommand {
  return { id, resources, expiresAt: NOW + 10_000, now: NOW, ...extra };
}

/** The ledger of an accepted command; fails the test with the refusal otherwise. */
function ok(r: LedgerResult): Ledger {
  if (!r.ok) assert.unreachable(`refused: ${r.code} ${r.message}`);
  return (r as { ledger: Ledger }).ledger;
}

function refusal(r: LedgerResult): { code: string; message: string } {
  if (r.ok) assert.unreachable('expected a refusal, got ok');
  return r as { code: string; message: string };
}

// --- Scenario 8: commit (lock) refusals reserve nothing -------------------------------------------------------

const LockRefusals = suite('ledger: refused locks reserve nothing (scenario 8)');

LockRefusals('a lock beyond free resources fails and leaves ledger and available unchanged', () => {
  const l = ok(lock(fresh(), cmd('a', res(3, 2 * GiB))));
  const snapshot = JSON.parse(JSON.stringify(l));
  const availBefore = availableResources(l);
  assert.equal(availBefore, res(1, 6 * GiB, 100 * GiB, 1));

  const r = lock(l, cmd('b', res(2, 1 * GiB, 0, 0), { ports: { dynamic: 2 } }));
  const why = refusal(r);
  assert.is(why.code, 'insufficient');
  assert.match(why.message, /cpu: asked 2, available 1/);
  assert.equal(JSON.parse(JSON.stringify(l)), snapshot);
  assert.equal(availableResources(l), availBefore);
  assert.is(l.locks['b'], undefined);
  // The ports that were asked for were not taken either.
  assert.equal(pickPorts(l, { dynamic: 2 }), { ok: true, ports: [40000, 40001] });
});

LockRefusals('memory, disk and gpus shortfalls are each refused and named', () => {
  const l = fresh();
  const mem = refusal(lock(l, cmd('m', res(1, 9 * GiB))));
  assert.is(mem.code, 'insufficient');
  assert.match(mem.message, /memory: asked 9\.0 GiB, available 8\.0 GiB/);
  const disk = refusal(lock(l, cmd('d', res(1, 0, 101 * GiB))));
  assert.match(disk.message, /disk/);
  assert.not.match(disk.message, /memory/);
  const gpu = refusal(lock(l, cmd('g', res(1, 0, 0, 2))));
  assert.match(gpu.message, /gpus: asked 2, available 1/);
  assert.equal(l.locks, {});
});

LockRefusals('a static port outside the range fails and reserves nothing', () => {
  const l = fresh();
  for (const p of [RANGE.from - 1, RANGE.to + 1, 80, 40000.5]) {
    const why = refusal(lock(l, cmd('p', res(1), { ports: { static: [p] } })));
    assert.is(why.code, 'port-out-of-range', `port ${p}`);
    assert.match(why.message, /40000-40009/);
  }
  assert.equal(l.locks, {});
  // The edges of the range are inside it.
  const edges = ok(lock(l, cmd('e', res(1), { ports: { static: [RANGE.from, RANGE.to] } })));
  assert.equal(edges.locks['e']?.ports, [RANGE.from, RANGE.to]);
});

LockRefusals('an impossible number of dynamic ports fails', () => {
  const l = fresh();
  const whole = refusal(lock(l, cmd('d', res(1), { ports: { dynamic: 11 } })));
  assert.is(whole.code, 'ports-exhausted');
  assert.match(whole.message, /only 10 are free/);
  // With some ports already reserved, the free count shrinks accordingly.
  const some = ok(lock(l, cmd('a', res(1), { ports: { static: [40003], dynamic: 2 } })));
  assert.equal(some.locks['a']?.ports, [40003, 40000, 40001]);
  const tooMany = refusal(lock(some, cmd('b', res(1), { ports: { dynamic: 8 } })));
  assert.is(tooMany.code, 'ports-exhausted');
  assert.match(tooMany.message, /only 7 are free/);
  // Exactly the remaining seven is fine, and skips the taken ones.
  const all = ok(lock(some, cmd('b', res(1), { ports: { dynamic: 7 } })));
  assert.equal(all.locks['b']?.ports, [40002, 40004, 40005, 40006, 40007, 40008, 40009]);
  // Negative or fractional counts are invalid, not silently rounded.
  assert.is(refusal(lock(l, cmd('n', res(1), { ports: { dynamic: -1 } }))).code, 'invalid');
  assert.is(refusal(lock(l, cmd('f', res(1), { ports: { dynamic: 1.5 } }))).code, 'invalid');
});

LockRefusals('a port already taken by a lock or an allocation fails', () => {
  const l1 = ok(lock(fresh(), cmd('a', res(1), { ports: { static: [40005] } })));
  const byLock = refusal(lock(l1, cmd('b', res(1), { ports: { static: [40005] } })));
  assert.is(byLock.code, 'port-taken');
  assert.match(byLock.message, /40005/);
  const l2 = ok(allocate(l1, { allocationId: 'x', lockId: 'a', now: NOW }));
  const byAlloc = refusal(lock(l2, cmd('b', res(1), { ports: { static: [40005] } })));
  assert.is(byAlloc.code, 'port-taken');
  // Listing the same static port twice in one request is refused too.
  assert.is(refusal(lock(fresh(), cmd('c', res(1), { ports: { static: [40001, 40001] } }))).code, 'invalid');
});

LockRefusals('locking the same id twice fails, also when the first became an allocation', () => {
  const l1 = ok(lock(fresh(), cmd('a', res(1))));
  const twice = refusal(lock(l1, cmd('a', res(1))));
  assert.is(twice.code, 'duplicate');
  assert.equal(lockedTotal(l1), res(1));
  const l2 = ok(allocate(l1, { allocationId: 'a', lockId: 'a', now: NOW }));
  assert.is(refusal(lock(l2, cmd('a', res(1)))).code, 'duplicate');
});

LockRefusals('invalid resources and already-expired locks are refused', () => {
  const l = fresh();
  assert.is(refusal(lock(l, cmd('n', res(-1)))).code, 'invalid');
  assert.is(refusal(lock(l, cmd('n', res(Number.NaN)))).code, 'invalid');
  assert.is(refusal(lock(l, cmd('n', res(1, Number.POSITIVE_INFINITY)))).code, 'invalid');
  assert.is(refusal(lock(l, cmd('e', res(1), { expiresAt: NOW }))).code, 'expired');
  assert.is(refusal(lock(l, cmd('e', res(1), { expiresAt: NOW - 1 }))).code, 'expired');
  assert.equal(l.locks, {});
});

LockRefusals('unlocking or releasing an unknown id is harmless', () => {
  const l = ok(lock(fresh(), cmd('a', res(1))));
  assert.is(unlock(l, 'nope'), l);
  assert.is(release(l, 'nope'), l);
  const empty = fresh();
  assert.is(release(empty, 'a'), empty);
  // Releasing a lock id (not an allocation id) does not touch the lock.
  assert.equal(Object.keys(release(l, 'a').locks), ['a']);
  assert.equal(lockedTotal(unlock(l, 'nope')), res(1));
});

LockRefusals('unlock frees exactly what the lock held', () => {
  const base = fresh();
  const l = ok(lock(base, cmd('a', res(1.5, 2 * GiB, 3 * GiB, 1), { ports: { dynamic: 3 } })));
  assert.equal(availableResources(l), res(2.5, 6 * GiB, 97 * GiB, 0));
  const u = unlock(l, 'a');
  assert.equal(u.locks, {});
  assert.equal(availableResources(u), availableResources(base));
  // The ports are free again.
  const again = pickPorts(u, { dynamic: 3 });
  assert.equal(again, { ok: true, ports: [40000, 40001, 40002] });
});

LockRefusals.run();

// --- Scenario 9: allocate needs a commit ---------------------------------------------------------------------

const Allocate = suite('ledger: allocate requires a live lock (scenario 9)');

Allocate('allocate without a lock fails with not-committed and changes nothing', () => {
  const l = fresh();
  const why = refusal(allocate(l, { allocationId: 'x', lockId: 'missing', now: NOW }));
  assert.is(why.code, 'not-committed');
  assert.match(why.message, /not committed/);
  assert.equal(l.allocations, {});
});

Allocate('with a lock the allocation exists and the lock is consumed', () => {
  const l1 = ok(lock(fresh(), cmd('deal', res(2, GiB, 5 * GiB, 1), { ports: { static: [40007], dynamic: 1 }, holder: 'did:key:zReq' })));
  const availLocked = availableResources(l1);
  const l2 = ok(allocate(l1, { allocationId: 'job-1', lockId: 'deal', now: NOW + 500 }));
  assert.equal(l2.locks, {});
  assert.equal(l2.allocations['job-1'], {
    id: 'job-1',
    lockId: 'deal',
    resources: res(2, GiB, 5 * GiB, 1),
    ports: [40007, 40000],
    since: NOW + 500,
    holder: 'did:key:zReq',
  });
  // Moving from locked to allocated does not change what is available.
  assert.equal(availableResources(l2), availLocked);
  assert.equal(lockedTotal(l2), res(0));
  assert.equal(allocatedTotal(l2), res(2, GiB, 5 * GiB, 1));
  // The lock cannot be used a second time.
  assert.is(refusal(allocate(l2, { allocationId: 'job-2', lockId: 'deal', now: NOW + 600 })).code, 'not-committed');
});

Allocate('an expired lock cannot be allocated, even before expire() swept it', () => {
  const l = ok(lock(fresh(), cmd('deal', res(1), { expiresAt: NOW + 1000 })));
  assert.is(refusal(allocate(l, { allocationId: 'x', lockId: 'deal', now: NOW + 1000 })).code, 'not-committed');
  assert.is(refusal(allocate(l, { allocationId: 'x', lockId: 'deal', now: NOW + 5000 })).code, 'not-committed');
  assert.ok(allocate(l, { allocationId: 'x', lockId: 'deal', now: NOW + 999 }).ok);
});

Allocate('an allocation id that already exists is refused and keeps the lock', () => {
  const l1 = ok(lock(ok(lock(fresh(), cmd('a', res(1)))), cmd('b', res(1))));
  const l2 = ok(allocate(l1, { allocationId: 'x', lockId: 'a', now: NOW }));
  const why = refusal(allocate(l2, { allocationId: 'x', lockId: 'b', now: NOW }));
  assert.is(why.code, 'duplicate');
  assert.ok(l2.locks['b']);
});

Allocate('allocating the same lock to the same id again is ok and changes nothing (an answer lost with a restart)', () => {
  const l1 = ok(lock(fresh(), cmd('a', res(1))));
  const l2 = ok(allocate(l1, { allocationId: 'x', lockId: 'a', now: NOW }));
  const again = allocate(l2, { allocationId: 'x', lockId: 'a', now: NOW + 60_000 });
  assert.ok(again.ok);
  assert.is(ok(again), l2);
  assert.is(Object.keys(l2.allocations).length, 1);
});

Allocate('release frees an allocation back to exactly the original availability', () => {
  const base = fresh();
  const l = ok(allocate(ok(lock(base, cmd('a', res(0.7, 3 * GiB, GiB, 1), { ports: { dynamic: 2 } }))), { allocationId: 'x', lockId: 'a', now: NOW }));
  const r = release(l, 'x');
  assert.equal(r.allocations, {});
  assert.equal(availableResources(r), availableResources(base));
  assert.equal(pickPorts(r, { dynamic: 2 }), { ok: true, ports: [40000, 40001] });
});

Allocate.run();

// --- Expiry ---------------------------------------------------------------------------------------------------

const Expiry = suite('ledger: expiry');

Expiry('expire(now) drops exactly the locks with expiresAt <= now', () => {
  let l = fresh();
  l = ok(lock(l, cmd('early', res(0.5), { expiresAt: NOW + 100 })));
  l = ok(lock(l, cmd('edge', res(0.5), { expiresAt: NOW + 200 })));
  l = ok(lock(l, cmd('late', res(0.5), { expiresAt: NOW + 201 })));
  const r = expire(l, NOW + 200);
  assert.equal(r.expired.sort(), ['early', 'edge']);
  assert.equal(Object.keys(r.ledger.locks), ['late']);
  assert.equal(lockedTotal(r.ledger), res(0.5));
  assert.is(nextExpiry(r.ledger), NOW + 201);
});

Expiry('expire before any expiry changes nothing and returns the same ledger', () => {
  const l = ok(lock(fresh(), cmd('a', res(1), { expiresAt: NOW + 100 })));
  const r = expire(l, NOW + 99);
  assert.equal(r.expired, []);
  assert.is(r.ledger, l);
});

Expiry('expire leaves allocations alone', () => {
  const l = ok(allocate(ok(lock(fresh(), cmd('a', res(1), { expiresAt: NOW + 100 }))), { allocationId: 'x', lockId: 'a', now: NOW }));
  const r = expire(l, NOW + 1_000_000);
  assert.equal(r.expired, []);
  assert.ok(r.ledger.allocations['x']);
});

Expiry('nextExpiry is the earliest lock expiry, or null', () => {
  let l = fresh();
  assert.is(nextExpiry(l), null);
  l = ok(lock(l, cmd('b', res(1), { expiresAt: NOW + 300 })));
  l = ok(lock(l, cmd('a', res(1), { expiresAt: NOW + 100 })));
  assert.is(nextExpiry(l), NOW + 100);
  assert.is(nextExpiry(unlock(l, 'a')), NOW + 300);
  assert.is(nextExpiry(unlock(unlock(l, 'a'), 'b')), null);
});

Expiry.run();

// --- Available ------------------------------------------------------------------------------------------------

const Available = suite('ledger: available = registered - locked - allocated, bounded by ceiling');

Available('available subtracts both locked and allocated', () => {
  let l = fresh();
  l = ok(lock(l, cmd('a', res(1, GiB, 10 * GiB))));
  l = ok(lock(l, cmd('b', res(0.5, 2 * GiB, 0, 1))));
  l = ok(allocate(l, { allocationId: 'x', lockId: 'b', now: NOW }));
  assert.equal(availableResources(l), res(2.5, 5 * GiB, 90 * GiB, 0));
});

Available('the monitoring ceiling bounds memory and disk but never raises them', () => {
  const l = ok(lock(fresh(), cmd('a', res(1, 2 * GiB, 10 * GiB))));
  const low = { ...l, ceiling: { memory: 3 * GiB, disk: 50 * GiB } };
  assert.equal(availableResources(low), res(3, 3 * GiB, 50 * GiB, 1));
  const high = { ...l, ceiling: { memory: 100 * GiB, disk: 1000 * GiB } };
  assert.equal(availableResources(high), res(3, 6 * GiB, 90 * GiB, 1));
  // A lock that fits the registered capability but not the ceiling is refused.
  const why = refusal(lock(low, cmd('b', res(1, 4 * GiB))));
  assert.is(why.code, 'insufficient');
  assert.match(why.message, /memory: asked 4\.0 GiB, available 3\.0 GiB/);
  assert.ok(lock(low, cmd('b', res(1, 3 * GiB))).ok);
});

Available('an offboarded (NOTHING) ledger has nothing available and refuses any positive lock', () => {
  const l = emptyLedger(NOTHING);
  assert.equal(availableResources(l), res(0));
  assert.is(refusal(lock(l, cmd('a', res(0.1)))).code, 'insufficient');
});

Available('fractional cpu locks add up without float dust', () => {
  let l = emptyLedger({ ...machine, cpu: 0.3 }, RANGE);
  l = ok(lock(l, cmd('a', res(0.1))));
  assert.is(availableResources(l).cpu, 0.2);
  l = ok(lock(l, cmd('b', res(0.2))));
  assert.is(lockedTotal(l).cpu, 0.3);
  assert.is(availableResources(l).cpu, 0);
  assert.is(refusal(lock(l, cmd('c', res(0.000001)))).code, 'insufficient');
  // Ten tenths fill one core exactly.
  let t = emptyLedger({ ...machine, cpu: 1 }, RANGE);
  for (let i = 0; i < 10; i += 1) t = ok(lock(t, cmd(`t${i}`, res(0.1))));
  assert.is(lockedTotal(t).cpu, 1);
  assert.is(availableResources(t).cpu, 0);
  // Releasing them one by one comes back to exactly 1, not 0.9999999999999999.
  for (let i = 0; i < 10; i += 1) t = unlock(t, `t${i}`);
  assert.is(availableResources(t).cpu, 1);
});

Available('a request of 0.1 + 0.2 cpu fits in 0.3 free cpu', () => {
  const l = emptyLedger({ ...machine, cpu: 0.3 }, RANGE);
  const l2 = ok(lock(l, cmd('a', res(0.1 + 0.2))));
  assert.is(availableResources(l2).cpu, 0);
});

Available.run();

// --- ledgerView -----------------------------------------------------------------------------------------------

const View = suite('ledger: ledgerView');

View('ledgerView shows registered, locked, allocated and available as capabilities', () => {
  let l = fresh();
  l = ok(lock(l, cmd('a', res(1, GiB, 2 * GiB, 1))));
  l = ok(lock(l, cmd('b', res(0.5, GiB))));
  l = ok(allocate(l, { allocationId: 'x', lockId: 'a', now: NOW }));
  const v = ledgerView(l);
  assert.equal(v.registered, machine);
  assert.equal(v.locked, { cpu: 0.5, memory: GiB, disk: 0, gpus: [], executors: machine.executors });
  assert.equal(v.allocated, { cpu: 1, memory: GiB, disk: 2 * GiB, gpus: machine.gpus, executors: machine.executors });
  assert.equal(v.available, { cpu: 2.5, memory: 6 * GiB, disk: 98 * GiB, gpus: [], executors: machine.executors });
});

View('ledgerView of an empty ledger has everything available and nothing locked', () => {
  const v = ledgerView(fresh());
  assert.equal(v.available, machine);
  assert.equal(v.locked, { cpu: 0, memory: 0, disk: 0, gpus: [], executors: machine.executors });
  assert.equal(v.allocated, v.locked);
});

View.run();
