import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Actor, createActor } from 'xstate';
import type { Resources } from '../../machines/capability.ts';
import { NOTHING, availableResources } from '../../machines/ledger.ts';
import { type NodeContext, type NodeMachine, nodeMachine } from '../../machines/node.machine.ts';
import type { NodeEvent, NodeIntent, Sample } from '../../machines/node.messages.ts';
import { type Offer, resolveOffer } from '../../machines/onboarding.ts';
import { DEFAULT_PREFERENCES } from '../../machines/preferences.ts';
// bench: a 2-core machine with 10 GiB of RAM and 200 GiB free disk. Default offer: 1 cpu, 5 GiB, 100 GiB.
import { BENCH as bench, GiB, HOST as host, OFFER as WASM_OFFER, T0 } from '../fixtures/node-fixtures.ts';

/** The shared offer (2 cpu, 4 GiB, 50 GiB) with the process executor as well as wasm. */
const OFFER: Offer = { ...WASM_OFFER, executors: ['wasm', 'process'] };
const CAPABILITY = resolveOffer(OFFER, bench);

interface Harness {
  actor: Actor<NodeMachine>;
  /** Every intent the actor emitted, in order. */
  out: NodeIntent[];
}

/** One suite per behaviour: a fresh, started actor before each test, stopped after it. */
function behaviour(name: string) {
  const s = suite<Harness>(name, {} as Harness);
  s.before.each((h) => {
    h.out = [];
    h.actor = createActor(nodeMachine, { input: {} });
    h.actor.on('*', (e) => h.out.push(e));
    h.actor.start();
  });
  s.after.each((h) => {
    h.actor.stop();
  });
  return s;
}

function ctx(h: Harness): NodeContext {
  return h.actor.getSnapshot().context;
}
function state(h: Harness): unknown {
  return h.actor.getSnapshot().value;
}
function available(h: Harness): Resources {
  return availableResources(ctx(h).ledger);
}
/** Sends an event and returns only the intents it caused. */
function send(h: Harness, e: NodeEvent): NodeIntent[] {
  const from = h.out.length;
  h.actor.send(e);
  return h.out.slice(from);
}
function ofType<K extends NodeIntent['type']>(intents: readonly NodeIntent[], type: K): Extract<NodeIntent, { type: K }>[] {
  return intents.filter((i): i is Extract<NodeIntent, { type: K }> => i.type === type);
}
function replies(intents: readonly NodeIntent[]) {
  return ofType(intents, 'reply.send');
}
/** The single reply among `intents`; fails the test if there is not exactly one. */
function theReply(intents: readonly NodeIntent[]) {
  const r = replies(intents);
  assert.is(r.length, 1, `expected one reply, got ${JSON.stringify(r)}`);
  return r[0]!;
}

function onboard(offer: Offer = OFFER, extra: Partial<Extract<NodeEvent, { type: 'node.onboard' }>> = {}): NodeEvent {
  return { type: 'node.onboard', offer, host, benchmark: bench, replyTo: 'onboard-1', ...extra };
}
function lockEv(id: string, resources: Resources, expiresAt = T0 + 10_000, extra: Partial<Extract<NodeEvent, { type: 'ledger.lock' }>> = {}): NodeEvent {
  return { type: 'ledger.lock', id, resources, expiresAt, now: T0, replyTo: `lock-${id}`, ...extra };
}
function allocEv(allocationId: string, lockId: string, now = T0 + 100): NodeEvent {
  return { type: 'ledger.allocate', allocationId, lockId, now, replyTo: `alloc-${allocationId}` };
}
function res(cpu: number, memory = 0, disk = 0, gpus = 0): Resources {
  return { cpu, memory, disk, gpus };
}
function sample(memoryAvailable: number, diskFree = 1000 * GiB, at = T0): NodeEvent {
  const s: Sample = { at, load1: 0.5, memoryTotal: 10 * GiB, memoryAvailable, diskFree };
  return { type: 'monitor.sample', sample: s };
}
/** Brings the actor to 'registered' with OFFER via a cached benchmark. */
function registered(h: Harness): void {
  send(h, onboard());
  assert.is(state(h), 'registered');
}

// ---------------------------------------------------------------------------------------------------------------

const Benchmarking = behaviour('node: onboarding without a benchmark runs one first');

Benchmarking('onboard without a benchmark emits benchmark.run and waits in benchmarking', (h) => {
  const out = send(h, onboard(OFFER, { benchmark: undefined }));
  assert.is(state(h), 'benchmarking');
  assert.is(ofType(out, 'benchmark.run').length, 1);
  assert.equal(replies(out), []);
  assert.equal(ofType(out, 'registration.save'), []);
  assert.is(ctx(h).pendingReply, 'onboard-1');
  assert.equal(ctx(h).ledger.registered, NOTHING);
});

Benchmarking('benchmark.done registers, saves and answers the pending request', (h) => {
  send(h, onboard(OFFER, { benchmark: undefined }));
  const out = send(h, { type: 'benchmark.done', benchmark: bench });
  assert.is(state(h), 'registered');
  assert.equal(ofType(out, 'registration.save'), [{ type: 'registration.save', registration: { capability: CAPABILITY, benchmark: bench, offer: OFFER } }]);
  assert.equal(theReply(out), { type: 'reply.send', replyTo: 'onboard-1', ok: true, value: CAPABILITY });
  assert.equal(ctx(h).ledger.registered, CAPABILITY);
  assert.equal(available(h), res(2, 4 * GiB, 50 * GiB, 0));
  assert.is(ctx(h).pendingReply, null);
  assert.equal(ctx(h).benchmark, bench);
});

Benchmarking('while benchmarking, locks and a second onboard are refused as busy', (h) => {
  send(h, onboard(OFFER, { benchmark: undefined }));
  const lockReply = theReply(send(h, lockEv('a', res(1))));
  assert.is(lockReply.ok, false);
  assert.is(!lockReply.ok && lockReply.code, 'onboarding');
  const again = send(h, onboard(OFFER, { benchmark: undefined, replyTo: 'onboard-2' }));
  assert.equal(ofType(again, 'benchmark.run'), []);
  const r = theReply(again);
  assert.is(r.replyTo, 'onboard-2');
  assert.is(!r.ok && r.code, 'onboarding');
  assert.is(state(h), 'benchmarking');
  // The first request is still the one that gets the answer.
  const done = send(h, { type: 'benchmark.done', benchmark: bench });
  assert.is(theReply(done).replyTo, 'onboard-1');
});

Benchmarking('benchmark.fail leads to failed with one onboarding.failed and one negative reply', (h) => {
  send(h, onboard(OFFER, { benchmark: undefined }));
  const out = send(h, { type: 'benchmark.fail', reason: 'disk full' });
  assert.is(state(h), 'failed');
  const failed = ofType(out, 'onboarding.failed');
  assert.is(failed.length, 1, JSON.stringify(failed));
  assert.match(failed[0]!.problems[0]!.message, /benchmark failed: disk full/);
  const r = theReply(out);
  assert.is(r.replyTo, 'onboard-1');
  assert.is(!r.ok && r.code, 'onboarding');
  assert.match(!r.ok ? r.message : '', /disk full/);
});

Benchmarking.run();

// ---------------------------------------------------------------------------------------------------------------

const Cached = behaviour('node: onboarding with a cached benchmark');

Cached('onboard with a benchmark skips benchmarking and registers at once', (h) => {
  const out = send(h, onboard());
  assert.is(state(h), 'registered');
  assert.equal(ofType(out, 'benchmark.run'), []);
  assert.is(ofType(out, 'registration.save').length, 1);
  assert.equal(theReply(out), { type: 'reply.send', replyTo: 'onboard-1', ok: true, value: CAPABILITY });
  assert.equal(ctx(h).registration, { capability: CAPABILITY, benchmark: bench, offer: OFFER });
});

Cached('an onboard without replyTo still registers, with no reply intent', (h) => {
  const out = send(h, onboard(OFFER, { replyTo: undefined }));
  assert.is(state(h), 'registered');
  assert.equal(replies(out), []);
});

Cached('a later onboard without a benchmark reuses the known one; rebenchmark measures again', (h) => {
  registered(h);
  send(h, { type: 'node.offboard' });
  const reuse = send(h, onboard(OFFER, { benchmark: undefined, replyTo: 'again' }));
  assert.is(state(h), 'registered');
  assert.equal(ofType(reuse, 'benchmark.run'), []);
  assert.equal(theReply(reuse), { type: 'reply.send', replyTo: 'again', ok: true, value: CAPABILITY });
  send(h, { type: 'node.offboard' });
  const fresh = send(h, onboard(OFFER, { benchmark: undefined, rebenchmark: true, replyTo: 'fresh' }));
  assert.is(state(h), 'benchmarking');
  assert.is(ofType(fresh, 'benchmark.run').length, 1);
});

Cached.run();

// ---------------------------------------------------------------------------------------------------------------

const Invalid = behaviour('node: an invalid offer fails onboarding');

Invalid('an invalid offer leads to failed with onboarding.failed problems and a negative reply', (h) => {
  const out = send(h, onboard({ cpu: 5, memory: 100 }, { host: { dataDir: '/gone', dataDirWritable: false } }));
  assert.is(state(h), 'failed');
  const failed = ofType(out, 'onboarding.failed');
  assert.is(failed.length, 1);
  assert.equal(
    failed[0]!.problems.map((p) => p.field),
    ['cpu', 'memory', 'dataDir'],
  );
  const r = theReply(out);
  assert.is(!r.ok && r.code, 'onboarding');
  assert.match(!r.ok ? r.message : '', /--cpu between 1 and 2/);
  assert.match(!r.ok ? r.message : '', /--data-dir/);
  assert.equal(ofType(out, 'registration.save'), []);
  assert.is(ctx(h).registration, null);
  assert.equal(ctx(h).ledger.registered, NOTHING);
});

Invalid('locks are refused in failed, and a corrected onboard then registers', (h) => {
  send(h, onboard({ cpu: 5 }));
  const refused = theReply(send(h, lockEv('a', res(1))));
  assert.is(!refused.ok && refused.code, 'offboarded');
  const out = send(h, onboard(OFFER, { replyTo: 'onboard-2' }));
  assert.is(state(h), 'registered');
  assert.equal(theReply(out), { type: 'reply.send', replyTo: 'onboard-2', ok: true, value: CAPABILITY });
  assert.equal(ctx(h).problems, []);
});

Invalid.run();

// ---------------------------------------------------------------------------------------------------------------

const Reonboard = behaviour('node: re-onboarding while registered');

Reonboard('an invalid offer while registered changes nothing and replies ok:false', (h) => {
  registered(h);
  send(h, lockEv('a', res(1, GiB)));
  const before = h.actor.getPersistedSnapshot();
  const out = send(h, onboard({ cpu: 3 }, { replyTo: 'onboard-2' }));
  assert.is(state(h), 'registered');
  assert.equal(h.actor.getPersistedSnapshot(), before);
  assert.equal(ofType(out, 'registration.save'), []);
  assert.equal(ofType(out, 'onboarding.failed'), []);
  const r = theReply(out);
  assert.is(r.replyTo, 'onboard-2');
  assert.is(!r.ok && r.code, 'onboarding');
  assert.match(!r.ok ? r.message : '', /--cpu/);
});

Reonboard('a valid new offer while registered changes the registered capability and keeps locks', (h) => {
  registered(h);
  send(h, lockEv('a', res(1, GiB)));
  const out = send(h, onboard({ cpu: 1.5, memory: 2 * GiB, disk: 10 * GiB }, { replyTo: 'onboard-2' }));
  const cap = resolveOffer({ cpu: 1.5, memory: 2 * GiB, disk: 10 * GiB }, bench);
  assert.is(state(h), 'registered');
  assert.equal(ctx(h).ledger.registered, cap);
  assert.equal(ofType(out, 'registration.save'), [{ type: 'registration.save', registration: { capability: cap, benchmark: bench, offer: { cpu: 1.5, memory: 2 * GiB, disk: 10 * GiB } } }]);
  assert.equal(theReply(out), { type: 'reply.send', replyTo: 'onboard-2', ok: true, value: cap });
  assert.ok(ctx(h).ledger.locks['a']);
  assert.equal(available(h), res(0.5, GiB, 10 * GiB, 0));
});

Reonboard.run();

// ---------------------------------------------------------------------------------------------------------------

const RoundTrip = behaviour('node: lock, allocate, release');

RoundTrip('a lock/allocate/release round trip returns available exactly to what it was', (h) => {
  registered(h);
  const before = available(h);
  assert.equal(before, res(2, 4 * GiB, 50 * GiB, 0));

  const locked = theReply(send(h, lockEv('deal', res(0.7, 1.5 * GiB, 3 * GiB), T0 + 5000, { ports: { dynamic: 2 }, holder: 'did:key:zReq' })));
  assert.equal(locked, {
    type: 'reply.send',
    replyTo: 'lock-deal',
    ok: true,
    value: { id: 'deal', resources: res(0.7, 1.5 * GiB, 3 * GiB), ports: [32768, 32769], expiresAt: T0 + 5000, holder: 'did:key:zReq' },
  });
  assert.equal(available(h), res(1.3, 2.5 * GiB, 47 * GiB, 0));

  const alloc = theReply(send(h, allocEv('job', 'deal')));
  assert.is(alloc.ok, true);
  assert.equal(ctx(h).ledger.locks, {});
  assert.equal(Object.keys(ctx(h).ledger.allocations), ['job']);
  assert.equal(available(h), res(1.3, 2.5 * GiB, 47 * GiB, 0));

  const rel = send(h, { type: 'ledger.release', allocationId: 'job', replyTo: 'rel' });
  assert.equal(theReply(rel), { type: 'reply.send', replyTo: 'rel', ok: true, value: undefined });
  assert.equal(available(h), before);
  assert.equal(ctx(h).ledger.allocations, {});
});

RoundTrip('allocate without a lock is refused as not-committed; a lock beyond free is refused as insufficient', (h) => {
  registered(h);
  const a = theReply(send(h, allocEv('job', 'nothing')));
  assert.is(!a.ok && a.code, 'not-committed');
  const l = theReply(send(h, lockEv('big', res(3))));
  assert.is(!l.ok && l.code, 'insufficient');
  assert.equal(ctx(h).ledger.locks, {});
  assert.equal(ctx(h).ledger.allocations, {});
});

RoundTrip('unlock frees a lock; unlocking or releasing unknown ids replies ok', (h) => {
  registered(h);
  const before = available(h);
  send(h, lockEv('a', res(1)));
  assert.equal(theReply(send(h, { type: 'ledger.unlock', id: 'a', replyTo: 'u' })), { type: 'reply.send', replyTo: 'u', ok: true, value: undefined });
  assert.equal(available(h), before);
  assert.is(theReply(send(h, { type: 'ledger.unlock', id: 'zzz', replyTo: 'u2' })).ok, true);
  assert.is(theReply(send(h, { type: 'ledger.release', allocationId: 'zzz', replyTo: 'r2' })).ok, true);
  assert.equal(available(h), before);
});

RoundTrip.run();

// ---------------------------------------------------------------------------------------------------------------

const Offboarded = behaviour('node: offboarded nodes refuse locks');

Offboarded('a node that never onboarded refuses locks and allocations, naming onboard', (h) => {
  assert.is(state(h), 'offboarded');
  const l = theReply(send(h, lockEv('a', res(0.1))));
  assert.is(!l.ok && l.code, 'offboarded');
  assert.match(!l.ok ? l.message : '', /onboard/);
  const a = theReply(send(h, allocEv('x', 'a')));
  assert.is(!a.ok && a.code, 'offboarded');
  assert.equal(ctx(h).ledger.locks, {});
});

Offboarded('after offboarding, locks are refused', (h) => {
  registered(h);
  const off = send(h, { type: 'node.offboard', replyTo: 'off' });
  assert.is(state(h), 'offboarded');
  assert.equal(theReply(off), { type: 'reply.send', replyTo: 'off', ok: true, value: undefined });
  const l = theReply(send(h, lockEv('a', res(0.1))));
  assert.is(!l.ok && l.code, 'offboarded');
  assert.equal(ctx(h).ledger.locks, {});
});

Offboarded.run();

// ---------------------------------------------------------------------------------------------------------------

const Offboard = behaviour('node: offboarding zeroes what is offered but keeps allocations');

Offboard('offboard zeroes registered, drops locks, keeps running allocations', (h) => {
  registered(h);
  send(h, lockEv('a', res(1, GiB), T0 + 1000));
  send(h, lockEv('b', res(0.5, GiB), T0 + 2000));
  send(h, allocEv('job', 'a'));
  const allocation = ctx(h).ledger.allocations['job'];
  assert.ok(allocation);

  const out = send(h, { type: 'node.offboard' });
  assert.equal(ctx(h).ledger.registered, NOTHING);
  assert.is(ctx(h).registration, null);
  assert.equal(ctx(h).ledger.locks, {});
  assert.equal(ctx(h).ledger.allocations, { job: allocation });
  assert.equal(available(h), res(0));
  assert.equal(ofType(out, 'registration.save'), [{ type: 'registration.save', registration: null }]);
  assert.equal(ofType(out, 'timer.schedule'), [{ type: 'timer.schedule', at: null }]);
  assert.equal(ofType(out, 'allocation.stop'), []);

  // The running allocation can still be released afterwards.
  send(h, { type: 'ledger.release', allocationId: 'job' });
  assert.equal(ctx(h).ledger.allocations, {});
});

Offboard('onboarding again after offboarding offers the full capability minus what still runs', (h) => {
  registered(h);
  send(h, lockEv('a', res(1, GiB)));
  send(h, allocEv('job', 'a'));
  send(h, { type: 'node.offboard' });
  send(h, onboard(OFFER, { replyTo: 'again' }));
  assert.is(state(h), 'registered');
  assert.equal(available(h), res(1, 3 * GiB, 50 * GiB, 0));
});

Offboard.run();

// ---------------------------------------------------------------------------------------------------------------

const Stop = behaviour('node: stopping the node stops allocations and clears pending commits (scenario 9)');

Stop('node.stop emits allocation.stop for each allocation and clears locks', (h) => {
  registered(h);
  send(h, lockEv('a', res(0.5)));
  send(h, lockEv('b', res(0.5)));
  send(h, lockEv('c', res(0.5), T0 + 3000));
  send(h, allocEv('x', 'a'));
  send(h, allocEv('y', 'b'));
  const out = send(h, { type: 'node.stop' });
  assert.is(state(h), 'stopped');
  assert.equal(
    ofType(out, 'allocation.stop').map((i) => i.allocationId).sort(),
    ['x', 'y'],
  );
  assert.equal(ctx(h).ledger.locks, {});
  assert.equal(ctx(h).ledger.allocations, {});
  assert.equal(ofType(out, 'timer.schedule'), [{ type: 'timer.schedule', at: null }]);
});

Stop('a stopped node refuses locks, allocations and onboarding with code stopped', (h) => {
  registered(h);
  send(h, lockEv('a', res(0.5)));
  send(h, { type: 'node.stop' });
  for (const e of [lockEv('b', res(0.1)), allocEv('x', 'a'), onboard()]) {
    const r = theReply(send(h, e));
    assert.is(!r.ok && r.code, 'stopped', e.type);
  }
  assert.equal(ctx(h).ledger.locks, {});
  assert.equal(ctx(h).ledger.allocations, {});
});

Stop('stopping with nothing allocated emits no allocation.stop and no timer', (h) => {
  registered(h);
  const out = send(h, { type: 'node.stop' });
  assert.equal(ofType(out, 'allocation.stop'), []);
  assert.equal(ofType(out, 'timer.schedule'), []);
});

Stop.run();

// ---------------------------------------------------------------------------------------------------------------

const Monitor = behaviour('node: monitoring bounds what is offered');

Monitor('memory below the offer warns once, bounds available memory, and recovers with an info', (h) => {
  registered(h);
  send(h, lockEv('a', res(1, GiB)));
  assert.equal(available(h).memory, 3 * GiB);

  const low = send(h, sample(2 * GiB));
  const warn = ofType(low, 'log.write');
  assert.is(warn.length, 1);
  assert.is(warn[0]!.level, 'warn');
  assert.equal(warn[0]!.data, { resource: 'memory', observed: 2 * GiB, offered: 3 * GiB });
  assert.match(warn[0]!.message, /offering 2\.0 GiB instead of 3\.0 GiB/);
  assert.equal(available(h).memory, 2 * GiB);
  assert.equal(ctx(h).constrained, { memory: true, disk: false });
  // A lock that fits the registered offer but not the machine's free memory is refused.
  const refused = theReply(send(h, lockEv('b', res(0.5, 2.5 * GiB))));
  assert.is(!refused.ok && refused.code, 'insufficient');

  // Still constrained (and lower): no second warning.
  const lower = send(h, sample(1.5 * GiB, 1000 * GiB, T0 + 1000));
  assert.equal(ofType(lower, 'log.write'), []);
  assert.equal(available(h).memory, 1.5 * GiB);

  const ok = send(h, sample(8 * GiB, 1000 * GiB, T0 + 2000));
  const info = ofType(ok, 'log.write');
  assert.is(info.length, 1);
  assert.is(info[0]!.level, 'info');
  assert.equal(info[0]!.data, { resource: 'memory', observed: 8 * GiB });
  assert.match(info[0]!.message, /memory is free again/);
  // Plenty free on the machine: available is bounded by the offer, not raised to the machine's.
  assert.equal(available(h).memory, 3 * GiB);
  assert.equal(ctx(h).constrained, { memory: false, disk: false });
  // And a later good sample says nothing.
  assert.equal(ofType(send(h, sample(9 * GiB, 1000 * GiB, T0 + 3000)), 'log.write'), []);
});

Monitor('disk is tracked separately from memory', (h) => {
  registered(h);
  const out = send(h, sample(8 * GiB, 10 * GiB));
  const logs = ofType(out, 'log.write');
  assert.equal(
    logs.map((l) => [l.level, l.data?.['resource']]),
    [['warn', 'disk']],
  );
  assert.equal(available(h), res(2, 4 * GiB, 10 * GiB, 0));
});

Monitor('samples are kept in context', (h) => {
  registered(h);
  send(h, sample(7 * GiB, 900 * GiB, T0 + 42));
  assert.is(ctx(h).sample?.at, T0 + 42);
  assert.equal(ctx(h).ledger.ceiling, { memory: 7 * GiB, disk: 900 * GiB });
});

Monitor.run();

// ---------------------------------------------------------------------------------------------------------------

const Timers = behaviour('node: timer.schedule tracks the earliest lock expiry');

Timers('timer intents follow the earliest expiry through lock, unlock, expire and allocate', (h) => {
  registered(h);
  const timers = (out: NodeIntent[]) => ofType(out, 'timer.schedule').map((t) => t.at);
  assert.equal(timers(send(h, lockEv('a', res(0.1), T0 + 1000))), [T0 + 1000]);
  assert.equal(timers(send(h, lockEv('b', res(0.1), T0 + 500))), [T0 + 500]);
  assert.equal(timers(send(h, lockEv('c', res(0.1), T0 + 2000))), []);
  assert.equal(timers(send(h, { type: 'ledger.unlock', id: 'b' })), [T0 + 1000]);

  // Expiry before anything is due does nothing.
  assert.equal(send(h, { type: 'ledger.expire', now: T0 + 999 }), []);
  const expired = send(h, { type: 'ledger.expire', now: T0 + 1000 });
  assert.equal(timers(expired), [T0 + 2000]);
  assert.equal(
    ofType(expired, 'log.write').map((l) => l.data),
    [{ expired: ['a'] }],
  );
  assert.equal(Object.keys(ctx(h).ledger.locks), ['c']);

  assert.equal(timers(send(h, allocEv('job', 'c', T0 + 1500))), [null]);
});

Timers('a refused lock schedules nothing', (h) => {
  registered(h);
  assert.equal(ofType(send(h, lockEv('big', res(9))), 'timer.schedule'), []);
});

Timers.run();

// ---------------------------------------------------------------------------------------------------------------

const Persist = behaviour('node: persisted snapshots');

function restore(h: Harness): Harness {
  const snapshot = JSON.parse(JSON.stringify(h.actor.getPersistedSnapshot()));
  const r: Harness = { actor: createActor(nodeMachine, { snapshot, input: {} }), out: [] };
  r.actor.on('*', (e) => r.out.push(e));
  r.actor.start();
  return r;
}

Persist('a JSON round trip of the persisted snapshot restores the same state and ledger', (h) => {
  registered(h);
  send(h, lockEv('a', res(0.5, GiB), T0 + 1000, { ports: { static: [40000] } }));
  send(h, lockEv('b', res(0.25, GiB), T0 + 9000));
  send(h, allocEv('job', 'a'));
  send(h, sample(3.5 * GiB));
  const r = restore(h);
  try {
    assert.is(r.actor.getSnapshot().value, 'registered');
    assert.equal(r.actor.getSnapshot().context, ctx(h));
    assert.equal(availableResources(r.actor.getSnapshot().context.ledger), available(h));
    // Restoring replays no effects.
    assert.equal(r.out, []);
    // And the restored node carries on: the remaining lock can be allocated, the old one cannot be reused.
    const ok = theReply(send(r, allocEv('job2', 'b', T0 + 2000)));
    assert.is(ok.ok, true);
    const dup = theReply(send(r, lockEv('job', res(0.1))));
    assert.is(!dup.ok && dup.code, 'duplicate');
    const port = theReply(send(r, lockEv('p', res(0.1), T0 + 10_000, { ports: { static: [40000] } })));
    assert.is(!port.ok && port.code, 'port-taken');
  } finally {
    r.actor.stop();
  }
});

Persist('a node restored while benchmarking still answers the pending onboard', (h) => {
  send(h, onboard(OFFER, { benchmark: undefined }));
  const r = restore(h);
  try {
    assert.is(r.actor.getSnapshot().value, 'benchmarking');
    const out = send(r, { type: 'benchmark.done', benchmark: bench });
    assert.is(r.actor.getSnapshot().value, 'registered');
    assert.equal(theReply(out), { type: 'reply.send', replyTo: 'onboard-1', ok: true, value: CAPABILITY });
  } finally {
    r.actor.stop();
  }
});

Persist.run();

// ---------------------------------------------------------------------------------------------------------------

const Determinism = behaviour('node: determinism');

const script: NodeEvent[] = [
  { type: 'ledger.lock', id: 'early', resources: res(1), expiresAt: T0 + 10, now: T0, replyTo: 'x' },
  { type: 'node.onboard', offer: OFFER, host, replyTo: 'on' },
  { type: 'benchmark.done', benchmark: bench },
  { type: 'preferences.set', preferences: { provider: { minPrice: 3, acceptRequesters: [], refuseRequesters: ['bad'], keepFree: 0.1 }, requester: { weights: { price: 2, score: 1, rtt: 0 } } } },
  { type: 'ledger.lock', id: 'a', resources: res(0.3, GiB), ports: { dynamic: 3 }, expiresAt: T0 + 1000, now: T0, replyTo: 'la' },
  { type: 'ledger.lock', id: 'b', resources: res(0.6, GiB, GiB), ports: { static: [33000] }, expiresAt: T0 + 500, now: T0 },
  { type: 'monitor.sample', sample: { at: T0 + 50, load1: 1.2, memoryTotal: 10 * GiB, memoryAvailable: GiB, diskFree: 300 * GiB } },
  { type: 'ledger.allocate', allocationId: 'job-a', lockId: 'a', now: T0 + 100, replyTo: 'aa' },
  { type: 'ledger.expire', now: T0 + 600 },
  { type: 'ledger.lock', id: 'c', resources: res(0.1), expiresAt: T0 + 5000, now: T0 + 700 },
  { type: 'monitor.sample', sample: { at: T0 + 800, load1: 0.2, memoryTotal: 10 * GiB, memoryAvailable: 9 * GiB, diskFree: 300 * GiB } },
  { type: 'node.offboard', replyTo: 'off' },
  { type: 'ledger.release', allocationId: 'job-a' },
  { type: 'node.onboard', offer: { cpu: 1 }, host, benchmark: bench },
];

Determinism('the same events fed to two fresh actors give equal persisted snapshots and intents', (h) => {
  const other: Harness = { actor: createActor(nodeMachine, { input: {} }), out: [] };
  other.actor.on('*', (e) => other.out.push(e));
  other.actor.start();
  try {
    for (const e of script) {
      h.actor.send(e);
      other.actor.send(e);
      assert.equal(other.actor.getPersistedSnapshot(), h.actor.getPersistedSnapshot(), `after ${e.type}`);
    }
    assert.equal(other.out, h.out);
    // The script did something: it ended registered with the new offer and the preferences it was given.
    assert.is(state(h), 'registered');
    assert.equal(ctx(h).ledger.registered, resolveOffer({ cpu: 1 }, bench));
    assert.equal(ctx(h).preferences.provider.refuseRequesters, ['bad']);
    assert.ok(h.out.length > 10);
    // The context survives JSON unchanged (no undefined, Infinity or class instances to lose).
    assert.equal(JSON.parse(JSON.stringify(ctx(h))), ctx(h));
  } finally {
    other.actor.stop();
  }
});

Determinism.run();

// ---------------------------------------------------------------------------------------------------------------

const Answers = behaviour('node: every command that carries replyTo is answered exactly once, in every state');

const commands: NodeEvent[] = [
  { type: 'node.onboard', offer: OFFER, host, benchmark: bench, replyTo: 'c-onboard' },
  { type: 'node.offboard', replyTo: 'c-offboard' },
  { type: 'ledger.lock', id: 'q', resources: res(0.1), expiresAt: T0 + 1000, now: T0, replyTo: 'c-lock' },
  { type: 'ledger.unlock', id: 'q', replyTo: 'c-unlock' },
  { type: 'ledger.allocate', allocationId: 'q', lockId: 'q', now: T0, replyTo: 'c-allocate' },
  { type: 'ledger.release', allocationId: 'q', replyTo: 'c-release' },
  { type: 'preferences.set', preferences: DEFAULT_PREFERENCES, replyTo: 'c-preferences' },
];

const reachers: Record<string, (h: Harness) => void> = {
  offboarded: () => {},
  benchmarking: (h) => void send(h, onboard(OFFER, { benchmark: undefined, replyTo: 'pending' })),
  registered: (h) => registered(h),
  failed: (h) => void send(h, onboard({ cpu: 99 })),
  stopped: (h) => void send(h, { type: 'node.stop' }),
};

for (const [name, reach] of Object.entries(reachers)) {
  for (const c of commands) {
    Answers(`${c.type} in ${name}`, (h) => {
      reach(h);
      assert.is(state(h), name);
      const r = replies(send(h, c));
      assert.equal(
        r.map((x) => x.replyTo),
        [(c as { replyTo: string }).replyTo],
      );
    });
  }
}

Answers('stopping while benchmarking answers the pending onboard', (h) => {
  send(h, onboard(OFFER, { benchmark: undefined, replyTo: 'pending' }));
  const r = theReply(send(h, { type: 'node.stop' }));
  assert.is(r.replyTo, 'pending');
  assert.is(!r.ok && r.code, 'stopped');
  assert.is(ctx(h).pendingReply, null);
});

Answers.run();

// ---------------------------------------------------------------------------------------------------------------

const Recovered = behaviour('node: node.recovered re-arms what the old process was doing');

Recovered('locks that expired while the node was down are dropped and logged; live ones stay and re-arm the timer', (h) => {
  registered(h);
  send(h, lockEv('a', res(0.25), T0 + 1000));
  send(h, lockEv('b', res(0.25), T0 + 5000));
  send(h, lockEv('c', res(0.25), T0 + 3000));
  send(h, lockEv('d', res(0.25), T0 + 2000)); // expires exactly at `now`: gone too
  const out = send(h, { type: 'node.recovered', now: T0 + 2000 });
  assert.equal(Object.keys(ctx(h).ledger.locks).sort(), ['b', 'c']);
  const logs = ofType(out, 'log.write');
  assert.is(logs.length, 1);
  assert.equal(logs[0]!.data, { expired: ['a', 'd'] });
  assert.match(logs[0]!.message, /while the node was down: a, d/);
  assert.equal(ofType(out, 'timer.schedule'), [{ type: 'timer.schedule', at: T0 + 3000 }]);
  assert.equal(ofType(out, 'benchmark.run'), []);
  assert.is(state(h), 'registered');
  // the freed resources are available again: 2 cpu offered, 0.5 still locked
  assert.is(available(h).cpu, 1.5);
});

Recovered('when every lock expired, they are all dropped and no timer is armed', (h) => {
  registered(h);
  send(h, lockEv('a', res(0.5), T0 + 1000));
  const out = send(h, { type: 'node.recovered', now: T0 + 1000 });
  assert.equal(ctx(h).ledger.locks, {});
  assert.equal(ofType(out, 'log.write').map((l) => l.data), [{ expired: ['a'] }]);
  assert.equal(ofType(out, 'timer.schedule'), []);
});

Recovered('with no expired locks nothing is logged and the ledger is untouched; the timer is still re-armed', (h) => {
  registered(h);
  send(h, lockEv('a', res(0.25), T0 + 4000));
  send(h, lockEv('b', res(0.25), T0 + 3000));
  const ledger = ctx(h).ledger;
  const out = send(h, { type: 'node.recovered', now: T0 + 2999 });
  assert.equal(out, [{ type: 'timer.schedule', at: T0 + 3000 }]);
  assert.is(ctx(h).ledger, ledger);
});

Recovered('a node with nothing locked emits nothing on recovery', (h) => {
  registered(h);
  assert.equal(send(h, { type: 'node.recovered', now: T0 }), []);
  assert.equal(send(h, { type: 'node.recovered', now: T0 }), []);
});

Recovered('in benchmarking the benchmark that died with the old process is asked for again', (h) => {
  send(h, onboard(OFFER, { benchmark: undefined }));
  assert.is(state(h), 'benchmarking');
  const out = send(h, { type: 'node.recovered', now: T0 });
  assert.is(state(h), 'benchmarking');
  assert.equal(ofType(out, 'benchmark.run'), [{ type: 'benchmark.run' }]);
  assert.equal(ofType(out, 'timer.schedule'), []);
  assert.is(ctx(h).pendingReply, 'onboard-1');
  // and the benchmark that answers it still completes the onboarding
  const done = send(h, { type: 'benchmark.done', benchmark: bench });
  assert.is(state(h), 'registered');
  assert.is(theReply(done).replyTo, 'onboard-1');
});

Recovered('rebenchmarking with locks held: expired locks go, the timer is re-armed and benchmark.run is sent again', (h) => {
  registered(h);
  send(h, lockEv('a', res(0.25), T0 + 1000));
  send(h, lockEv('b', res(0.25), T0 + 5000));
  send(h, onboard(OFFER, { benchmark: undefined, rebenchmark: true, replyTo: 'rebench' }));
  assert.is(state(h), 'benchmarking');
  const out = send(h, { type: 'node.recovered', now: T0 + 2000 });
  assert.equal(Object.keys(ctx(h).ledger.locks), ['b']);
  assert.equal(ofType(out, 'benchmark.run'), [{ type: 'benchmark.run' }]);
  assert.equal(ofType(out, 'timer.schedule'), [{ type: 'timer.schedule', at: T0 + 5000 }]);
  assert.equal(
    ofType(out, 'log.write').filter((l) => l.data?.['expired']).map((l) => l.data),
    [{ expired: ['a'] }],
  );
});

Recovered.run();
