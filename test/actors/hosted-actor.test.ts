// HostedActor in-process (no worker): the intents, facts and inspection records a delivered batch produces, replay
// at construction, versioned snapshots, and how a failing event is reported. One suite per behaviour.
import { parseIntents } from '../../actors/actor.protocol.ts';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { assign, enqueueActions, setup } from 'xstate';
import type { IndexedFact, InspectionRecord } from '../../actors/actor.protocol.ts';
import { type ActorKind, HostedActor } from '../../actors/hosted-actor.ts';
import { type NodeView, nodeActorKind } from '../../actors/node.actor.ts';
import type { Fact } from '../../machines/indexes.ts';
import { NODE_MACHINE_VERSION } from '../../machines/node.machine.ts';
import type { NodeEvent } from '../../machines/node.messages.ts';
import { BENCH, GiB, HOST, OFFER, T0, res } from '../fixtures/node-fixtures.ts';

const onboard: NodeEvent = { type: 'node.onboard', offer: OFFER, host: HOST, benchmark: BENCH };
const lockEv = (id: string, expiresAt = T0 + 10_000): NodeEvent => ({ type: 'ledger.lock', id, resources: res(0.5, GiB), expiresAt, now: T0, replyTo: `lock-${id}` });
const allocEv = (allocationId: string, lockId: string): NodeEvent => ({ type: 'ledger.allocate', allocationId, lockId, now: T0 + 1 });
const sampleEv: NodeEvent = { type: 'monitor.sample', sample: { at: T0, load1: 0.1, memoryTotal: 10 * GiB, memoryAvailable: 8 * GiB, diskFree: 100 * GiB } };

const factTypes = (facts: readonly IndexedFact[] | undefined) => (facts ?? []).map((f) => [f.index, f.fact.type]);

/**
 * Errors thrown outside any call by `fn`: a failing actor must not leave any. xstate rethrows an unobserved actor
 * error from a 0 ms timer (its reportUnhandledError); timers of the same delay run in the order they were set, so
 * once a 0 ms timer set after `fn` has run, any such throw has happened.
 */
async function uncaughtFrom(fn: () => void): Promise<unknown[]> {
  const seen: unknown[] = [];
  const onError = (e: unknown) => seen.push(e);
  process.on('uncaughtException', onError);
  try {
    fn();
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
  } finally {
    process.off('uncaughtException', onError);
  }
  return seen;
}

// ---- a test-only kind: a counter whose `boom` event makes an action throw ----

class KaboomError extends Error {
  override name = 'KaboomError';
}

const counterMachine = setup({
  types: {} as { context: { n: number }; events: { type: 'add' } | { type: 'boom' }; emitted: { type: 'counted'; n: number } },
  actions: {
    explode: () => {
      throw new KaboomError('the counter exploded');
    },
  },
}).createMachine({
  id: 'counter',
  context: { n: 0 },
  on: {
    add: {
      actions: [
        assign({ n: ({ context }) => context.n + 1 }),
        enqueueActions(({ context, enqueue }) => enqueue.emit({ type: 'counted', n: context.n })),
      ],
    },
    boom: { actions: 'explode' },
  },
});

const counterKind: ActorKind = {
  kind: 'counter',
  version: 1,
  logic: counterMachine,
  facts: (_before, after) => [{ type: 'Counted', n: (after as { n: number }).n } as { type: string }],
};

// ---------------------------------------------------------------------------------------------------------------

interface Ctx {
  actor: HostedActor;
}

/** A suite with a fresh Node actor (inspection on or off) before each test, stopped after it. */
function behaviour(name: string, inspect = false) {
  const s = suite<Ctx>(name, {} as Ctx);
  s.before.each((c) => {
    c.actor = new HostedActor('node', nodeActorKind, { input: {}, inspect });
  });
  s.after.each((c) => {
    c.actor.stop();
  });
  return s;
}

const Facts = behaviour('hosted actor: facts of a batch carry the index of the event that produced them');

Facts('facts are tagged with their event index; events that change no lock or allocation give none', (c) => {
  const r = c.actor.deliver([onboard, lockEv('a'), sampleEv, lockEv('b'), allocEv('job', 'a')]);
  assert.is(r.processed, 5);
  assert.is(r.failure, undefined);
  assert.equal(factTypes(r.facts), [
    [1, 'ResourcesLocked'],
    [3, 'ResourcesLocked'],
    [4, 'LockReleased'],
    [4, 'AllocationCreated'],
  ]);
  assert.equal(r.facts![2]!.fact, { type: 'LockReleased', id: 'a', reason: 'allocated' });
  assert.equal((r.facts![1]!.fact as Fact & { type: 'ResourcesLocked' }).lock.id, 'b');
  // the intents of the batch come back too (the replies to the two locks among them)
  const replies = parseIntents(r).filter((i) => (i as { type: string }).type === 'reply.send').map((i) => (i as { replyTo: string }).replyTo);
  assert.equal(replies, ['lock-a', 'lock-b']);
});

Facts('indices restart with each batch and facts are handed out once', (c) => {
  c.actor.deliver([onboard, lockEv('a')]);
  const r = c.actor.deliver([sampleEv, { type: 'ledger.unlock', id: 'a' }]);
  assert.equal(r.facts, [{ index: 1, fact: { type: 'LockReleased', id: 'a', reason: 'released' } }]);
  const quiet = c.actor.deliver([sampleEv]);
  assert.not.ok('facts' in quiet, 'no facts key when the batch produced none');
  assert.equal(c.actor.takeFacts(), []);
});

Facts('without inspect there are no inspection records', (c) => {
  assert.equal(c.actor.takeInspections(), []);
  const r = c.actor.deliver([onboard, lockEv('a')]);
  assert.not.ok('inspections' in r);
  assert.equal(c.actor.takeInspections(), []);
});

Facts.run();

// ---------------------------------------------------------------------------------------------------------------

const Replay = suite('hosted actor: replay at construction collects facts and drops intents');

Replay('takeFacts() returns the facts of the replay with their replay index, once', () => {
  const a = new HostedActor('node', nodeActorKind, { input: {}, replay: [onboard, lockEv('a', T0 + 1000), lockEv('b'), allocEv('job', 'b'), { type: 'ledger.expire', now: T0 + 1000 }] });
  try {
    assert.equal(factTypes(a.takeFacts()), [
      [1, 'ResourcesLocked'],
      [2, 'ResourcesLocked'],
      [3, 'LockReleased'],
      [3, 'AllocationCreated'],
      [4, 'LockReleased'],
    ]);
    assert.equal(a.takeFacts(), []);
    const view = a.view().context as NodeView;
    assert.is(a.value, 'registered');
    assert.equal(Object.keys(view.allocations), ['job']);
    assert.equal(view.locks, {});
    // the replay's intents were dropped: the first delivery returns only its own
    const r = a.deliver([{ type: 'ledger.release', allocationId: 'job', replyTo: 'rel' }]);
    assert.equal(parseIntents(r), [{ type: 'reply.send', replyTo: 'rel', ok: true }]);
    assert.equal(r.facts, [{ index: 0, fact: { type: 'AllocationReleased', id: 'job' } }]);
  } finally {
    a.stop();
  }
});

Replay('replay on top of a snapshot yields only the facts after it', () => {
  const first = new HostedActor('node', nodeActorKind, { input: {} });
  first.deliver([onboard, lockEv('a')]);
  const snapshot = structuredClone(first.persisted(2));
  first.stop();
  const second = new HostedActor('node', nodeActorKind, { snapshot, replay: [allocEv('job', 'a')] });
  try {
    assert.equal(second.takeFacts().map((f) => [f.index, f.fact.type]), [
      [0, 'LockReleased'],
      [0, 'AllocationCreated'],
    ]);
    assert.equal(Object.keys((second.view().context as NodeView).allocations), ['job']);
  } finally {
    second.stop();
  }
});

Replay.run();

// ---------------------------------------------------------------------------------------------------------------

const Inspect = behaviour('hosted actor: inspection records when inspect is on', true);

Inspect('construction announces the actor with its definition', (c) => {
  const records = c.actor.takeInspections();
  const actors = records.filter((r) => r.type === '@xstate.actor');
  assert.is(actors.length, 1);
  const announced = actors[0]!;
  assert.is(announced.name, 'node');
  assert.type(announced.sessionId, 'string');
  assert.type(announced.definition, 'string');
  const definition = JSON.parse(announced.definition!) as { id: string; states: Record<string, unknown> };
  assert.is(definition.id, 'node');
  assert.ok('registered' in definition.states && 'benchmarking' in definition.states, JSON.stringify(Object.keys(definition.states)));
  assert.equal(structuredClone(records), records);
  assert.equal(c.actor.takeInspections(), [], 'records are handed out once');
});

Inspect('a delivered batch returns event and snapshot records with plain snapshots that survive structuredClone', (c) => {
  const sessionId = c.actor.takeInspections()[0]!.sessionId;
  const r = c.actor.deliver([onboard, lockEv('a')]);
  const records: readonly InspectionRecord[] = r.inspections ?? [];
  const events = records.filter((x) => x.type === '@xstate.event');
  const snapshots = records.filter((x): x is Extract<InspectionRecord, { type: '@xstate.snapshot' }> => x.type === '@xstate.snapshot');
  assert.equal(events.map((e) => e.event.type), ['node.onboard', 'ledger.lock']);
  assert.equal(snapshots.map((s) => s.event.type), ['node.onboard', 'ledger.lock']);
  assert.ok(records.every((x) => x.sessionId === sessionId));
  const last = snapshots[1]!.snapshot;
  assert.is(last.value, 'registered');
  assert.is(last.status, 'active');
  assert.equal(Object.keys((last.context as { ledger: { locks: object } }).ledger.locks), ['a']);
  // plain data only: no actor refs or functions, so the records cross postMessage unchanged
  assert.equal(structuredClone(records), records);
  assert.equal(JSON.parse(JSON.stringify(snapshots)), snapshots);
  assert.equal(c.actor.takeInspections(), []);
});

Inspect.run();

// ---------------------------------------------------------------------------------------------------------------

const Versions = suite('hosted actor: snapshots are refused when their machine version differs');

Versions('a snapshot with another version throws SnapshotVersionError naming both versions', () => {
  const a = new HostedActor('node', nodeActorKind, { input: {} });
  a.deliver([onboard]);
  const good = a.persisted(1);
  a.stop();
  assert.is(good.version, NODE_MACHINE_VERSION);

  let err: Error | undefined;
  try {
    new HostedActor('node', nodeActorKind, { snapshot: { ...good, version: NODE_MACHINE_VERSION + 1 } }).stop();
  } catch (e) {
    err = e as Error;
  }
  assert.ok(err, 'a stale snapshot must be refused');
  assert.is(err.name, 'SnapshotVersionError');
  assert.match(err.message, `version ${NODE_MACHINE_VERSION + 1}`);
  assert.match(err.message, `version ${NODE_MACHINE_VERSION}`);

  assert.throws(() => new HostedActor('node', nodeActorKind, { snapshot: { ...good, kind: 'counter' } }), (e: Error) => e.name === 'SnapshotVersionError');

  // the right version restores
  const b = new HostedActor('node', nodeActorKind, { snapshot: good });
  try {
    assert.is(b.value, 'registered');
  } finally {
    b.stop();
  }
});

Versions.run();

// ---------------------------------------------------------------------------------------------------------------

const Failure = suite('hosted actor: a failing event stops the batch and is reported');

Failure('deliver stops at the failing event and reports its index, name and message', async () => {
  const a = new HostedActor('c', counterKind, { input: {} });
  try {
    let r: ReturnType<HostedActor['deliver']> | undefined;
    const uncaught = await uncaughtFrom(() => {
      r = a.deliver([{ type: 'add' }, { type: 'add' }, { type: 'boom' }, { type: 'add' }]);
    });
    assert.ok(r);
    assert.is(r.processed, 2);
    assert.equal(r.failure, { index: 2, name: 'KaboomError', message: 'the counter exploded' });
    assert.equal(parseIntents(r), [
      { type: 'counted', n: 1 },
      { type: 'counted', n: 2 },
    ]);
    assert.equal(r.facts, [
      { index: 0, fact: { type: 'Counted', n: 1 } },
      { index: 1, fact: { type: 'Counted', n: 2 } },
    ]);
    assert.is(a.view().status, 'error');
    assert.equal(a.view().context, { n: 2 }, 'the event after the failing one was not processed');
    // the failure is reported through deliver only, not thrown again later outside any call
    assert.equal(uncaught.map((e) => (e as Error).message), []);
  } finally {
    a.stop();
  }
});

Failure('a failing event in the replay makes the constructor throw the error', async () => {
  let err: Error | undefined;
  const uncaught = await uncaughtFrom(() => {
    try {
      new HostedActor('c', counterKind, { input: {}, replay: [{ type: 'add' }, { type: 'boom' }] }).stop();
    } catch (e) {
      err = e as Error;
    }
  });
  assert.ok(err);
  assert.is(err.name, 'KaboomError');
  assert.equal(uncaught.map((e) => (e as Error).message), []);
});

Failure.run();
