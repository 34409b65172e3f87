import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Actor, createActor } from 'xstate';
import { type AllocationContext, type AllocationMachine, allocationMachine } from '../../machines/allocation.machine.ts';
import type { AllocationEvent, AllocationInput, AllocationIntent, ExecutionOutcome } from '../../machines/allocation.messages.ts';
import type { AllocationState } from '../../machines/deal.wire.ts';
import type { JobSpec, PartRole } from '../../machines/job.ts';
import { GiB, T0, res } from '../fixtures/node-fixtures.ts';
import { type Harness as H, machineHarness } from '../fixtures/machine-harness.ts';

const REQUESTER = 'peer-requester';
const ID = 'deal-1.2';
const TIMEOUT = 30_000;

const JOB: JobSpec = {
  executor: 'process',
  name: 'hello',
  resources: res(1, GiB, GiB),
  timeoutMs: TIMEOUT,
  constraints: { peers: [], excludePeers: [] },
  process: { command: 'echo', args: ['hi'], env: {} },
};
const INPUT: AllocationInput = { allocationId: ID, dealId: 'deal-1', nonce: 2, requester: REQUESTER, job: JOB };

type Harness = H<AllocationMachine, AllocationIntent>;
const { behaviour, send, ofType, types } = machineHarness<AllocationMachine, AllocationEvent, AllocationIntent>(allocationMachine, INPUT);
const state = (h: Harness) => h.actor.getSnapshot().value;
const ctx = (h: Harness): AllocationContext => h.actor.getSnapshot().context;

function push(state: AllocationState, exitCode: number | null, message: string): AllocationIntent {
  return { type: 'status.push', to: REQUESTER, status: { dealId: 'deal-1', nonce: 2, allocationId: ID, state, exitCode, message } };
}
function outcome(reason: ExecutionOutcome['reason'], exitCode: number | null, message: string): ExecutionOutcome {
  return { reason, exitCode, message, durationMs: 1_000, outputBytes: 10, outputTruncated: false };
}
const startEv = (now = T0): AllocationEvent => ({ type: 'allocation.start', now });
const started = (now = T0 + 100, pid = 4242): AllocationEvent => ({ type: 'execution.started', pid, now });
const endedEv = (o: ExecutionOutcome, now = T0 + 5_000): AllocationEvent => ({ type: 'execution.ended', outcome: o, now });
const cancelEv = (now = T0 + 1_000): AllocationEvent => ({ type: 'allocation.cancel', now });
const fired = (key: string, now: number): AllocationEvent => ({ type: 'timer.fired', key, now });
const RELEASE: AllocationIntent = { type: 'ledger.release', allocationId: ID };
const RUN_TIMEOUT_AT = T0 + 100 + TIMEOUT + 5_000;

function toRunning(h: Harness): void {
  send(h, startEv());
  send(h, started());
  assert.is(state(h), 'running');
}
/** The one allocation.ended so far; fails unless there is exactly one, and exactly one release. */
function theEnd(h: Harness) {
  assert.equal(ofType(h.out, 'ledger.release'), [RELEASE]);
  const e = ofType(h.out, 'allocation.ended');
  assert.is(e.length, 1, `expected one allocation.ended, got ${e.length}`);
  return e[0]!.record;
}
/** The intents of entering a final state, in order: release, the final status, the end. */
function assertEnding(out: readonly AllocationIntent[], final: AllocationState, exitCode: number | null, message: string): void {
  const tail = out.filter((i) => i.type !== 'timer.cancel' && i.type !== 'execution.cancel');
  assert.equal(types(tail), ['ledger.release', 'status.push', 'allocation.ended']);
  assert.equal(tail[1], push(final, exitCode, message));
  const record = (tail[2] as Extract<AllocationIntent, { type: 'allocation.ended' }>).record;
  assert.is(record.state, final);
  assert.is(record.exitCode, exitCode);
  assert.is(record.message, message);
}

// ---------------------------------------------------------------------------------------------------------------

const Happy = behaviour('allocation: start, run, complete');

Happy('start asks the executor, reports starting and arms the start timer', (h) => {
  assert.is(state(h), 'pending');
  const out = send(h, startEv());
  assert.equal(out, [
    { type: 'execution.start', allocationId: ID, job: JOB },
    push('starting', null, 'starting the job'),
    { type: 'timer.schedule', key: 'start', at: T0 + 60_000 },
  ]);
  assert.is(ctx(h).record.createdAt, T0);
});

Happy('started: running with pid, start timer cancelled, backstop armed', (h) => {
  send(h, startEv());
  const out = send(h, started());
  assert.equal(out, [{ type: 'timer.cancel', key: 'start' }, push('running', null, 'the job runs'), { type: 'timer.schedule', key: 'timeout', at: RUN_TIMEOUT_AT }]);
  assert.is(ctx(h).record.pid, 4242);
  assert.is(ctx(h).record.startedAt, T0 + 100);
  assert.equal(ctx(h).timers, { timeout: RUN_TIMEOUT_AT });
});

Happy('exit 0: cancel the backstop, then release, final status, end, in that order', (h) => {
  toRunning(h);
  const out = send(h, endedEv(outcome('completed', 0, 'exited with code 0')));
  assert.equal(out, [
    { type: 'timer.cancel', key: 'timeout' },
    RELEASE,
    push('completed', 0, 'exited with code 0'),
    { type: 'allocation.ended', record: ctx(h).record },
  ]);
  assert.is(state(h), 'completed');
  assert.is(h.actor.getSnapshot().status, 'done');
  const r = theEnd(h);
  assert.is(r.endedAt, T0 + 5_000);
  assert.equal(ctx(h).timers, {});
});

Happy.run();

// ---------------------------------------------------------------------------------------------------------------

const Failures = behaviour('allocation: the job fails');

Failures('a non-zero exit code fails with the code and message', (h) => {
  toRunning(h);
  assertEnding(send(h, endedEv(outcome('failed', 3, 'exited with code 3'))), 'failed', 3, 'exited with code 3');
  assert.is(state(h), 'failed');
});

Failures('the executor killing the job at its timeout fails it', (h) => {
  toRunning(h);
  assertEnding(send(h, endedEv(outcome('timeout', null, 'killed after 30 s'))), 'failed', null, 'killed after 30 s');
});

Failures('running out of memory fails it', (h) => {
  toRunning(h);
  assertEnding(send(h, endedEv(outcome('memory', null, 'out of memory'))), 'failed', null, 'out of memory');
});

Failures('an execution the executor cancelled by itself ends as terminated, not failed', (h) => {
  toRunning(h);
  assertEnding(send(h, endedEv(outcome('cancelled', null, 'the executor shut down'))), 'terminated', null, 'the executor shut down');
});

Failures('the executor refusing the job fails it with the reason', (h) => {
  send(h, startEv());
  const out = send(h, { type: 'execution.refused', reason: 'unknown command', now: T0 + 50 });
  assertEnding(out, 'failed', null, 'the executor refused the job: unknown command');
  assert.equal(out[0], { type: 'timer.cancel', key: 'start' });
});

Failures('a job that never reports its start fails at the start timer, and is cancelled', (h) => {
  send(h, startEv());
  const out = send(h, fired('start', T0 + 60_000));
  assert.equal(out[0], { type: 'execution.cancel', allocationId: ID });
  assertEnding(out, 'failed', null, 'the job did not start within 60 s');
});

Failures('a job may end before its start is reported', (h) => {
  send(h, startEv());
  assertEnding(send(h, endedEv(outcome('completed', 0, 'done'))), 'completed', 0, 'done');
});

Failures.run();

// ---------------------------------------------------------------------------------------------------------------

const Cancel = behaviour('allocation: cancelled');

Cancel('in pending: terminated at once, nothing to stop', (h) => {
  const out = send(h, cancelEv(T0));
  assert.equal(ofType(out, 'execution.cancel'), []);
  assertEnding(out, 'terminated', null, 'cancelled before the job started');
  assert.is(state(h), 'terminated');
});

Cancel('in starting: stop the execution, then terminated when it ends', (h) => {
  send(h, startEv());
  const out = send(h, cancelEv());
  assert.equal(out, [{ type: 'execution.cancel', allocationId: ID }, push('stopping', null, 'cancelling the job'), { type: 'timer.schedule', key: 'stop', at: T0 + 11_000 }]);
  assert.is(state(h), 'stopping');
  assertEnding(send(h, endedEv(outcome('cancelled', null, 'killed'))), 'terminated', null, 'the job was cancelled');
});

Cancel('in running: stop, then terminated with the exit code it had', (h) => {
  toRunning(h);
  assert.equal(types(send(h, cancelEv())), ['execution.cancel', 'status.push', 'timer.schedule']);
  const out = send(h, endedEv(outcome('cancelled', 143, 'killed by SIGTERM')));
  assert.equal(types(out), ['timer.cancel', 'timer.cancel', 'ledger.release', 'status.push', 'allocation.ended']);
  assertEnding(out, 'terminated', 143, 'the job was cancelled');
});

Cancel('a stop the executor never confirms ends as terminated at the stop timer', (h) => {
  toRunning(h);
  send(h, cancelEv());
  assertEnding(send(h, fired('stop', T0 + 11_000)), 'terminated', null, 'the job was cancelled');
});

Cancel('a second cancel while stopping sends nothing more', (h) => {
  toRunning(h);
  send(h, cancelEv());
  assert.equal(send(h, cancelEv(T0 + 2_000)), []);
});

Cancel.run();

// ---------------------------------------------------------------------------------------------------------------

const Backstop = behaviour('allocation: the backstop timeout');

Backstop('the timeout timer stops the job and it ends as failed', (h) => {
  toRunning(h);
  const out = send(h, fired('timeout', RUN_TIMEOUT_AT));
  assert.equal(out[0], { type: 'execution.cancel', allocationId: ID });
  assert.is(state(h), 'stopping');
  const message = 'the job ran past its timeout of 30 s and was stopped';
  assert.equal(out[1], push('stopping', null, message));
  assertEnding(send(h, endedEv(outcome('cancelled', null, 'killed'), RUN_TIMEOUT_AT + 100)), 'failed', null, message);
});

Backstop('a stale timer fired after it was cancelled changes nothing', (h) => {
  send(h, startEv());
  send(h, started());
  assert.equal(send(h, fired('start', T0 + 60_000)), []);
  assert.is(state(h), 'running');
});

Backstop.run();

// ---------------------------------------------------------------------------------------------------------------

const Recovery = behaviour('allocation: the provider restarted');

const recovered = (now: number): AllocationEvent => ({ type: 'allocation.recovered', now });

Recovery('in pending: it starts', (h) => {
  assert.equal(types(send(h, recovered(T0))), ['execution.start', 'status.push', 'timer.schedule']);
  assert.is(state(h), 'starting');
});

Recovery('in running: failed, released once', (h) => {
  toRunning(h);
  assertEnding(send(h, recovered(T0 + 3_000)), 'failed', null, 'the provider restarted while the job ran');
  send(h, recovered(T0 + 4_000));
  theEnd(h);
});

Recovery('while stopping for a cancel: terminated', (h) => {
  toRunning(h);
  send(h, cancelEv());
  assertEnding(send(h, recovered(T0 + 3_000)), 'terminated', null, 'the job was cancelled');
});

Recovery.run();

// ---------------------------------------------------------------------------------------------------------------

const Once = behaviour('allocation: resources are released exactly once');

Once('events after the end produce nothing', (h) => {
  toRunning(h);
  send(h, endedEv(outcome('completed', 0, 'ok')));
  const after = [
    ...send(h, endedEv(outcome('failed', 1, 'again'), T0 + 6_000)),
    ...send(h, cancelEv(T0 + 6_100)),
    ...send(h, recovered(T0 + 6_200)),
    ...send(h, fired('timeout', RUN_TIMEOUT_AT)),
    ...send(h, startEv(T0 + 6_300)),
  ];
  assert.equal(after, []);
  assert.is(theEnd(h).state, 'completed');
});

Once('a cancel racing the end: one release', (h) => {
  toRunning(h);
  send(h, cancelEv());
  send(h, endedEv(outcome('completed', 0, 'ok')));
  send(h, fired('stop', T0 + 11_000));
  theEnd(h);
});

Once.run();

// ---------------------------------------------------------------------------------------------------------------

const Snapshot = behaviour('allocation: a persisted snapshot continues identically');

/** Runs `events` on a fresh actor and returns its intents and final context. */
function runFresh(events: readonly AllocationEvent[]) {
  const out: AllocationIntent[] = [];
  const actor = createActor(allocationMachine, { input: INPUT });
  actor.on('*', (e) => out.push(e));
  actor.start();
  for (const e of events) actor.send(e);
  return { actor, out };
}

Snapshot('stop in running, restore from JSON, and finish like the original', () => {
  const head = [startEv(), started()];
  const tail = [cancelEv(T0 + 2_000), endedEv(outcome('cancelled', 143, 'killed'), T0 + 2_500)];
  const original = runFresh([...head, ...tail]);

  const first = runFresh(head);
  const snapshot = JSON.parse(JSON.stringify(first.actor.getPersistedSnapshot()));
  first.actor.stop();
  const restored = createActor(allocationMachine, { snapshot, input: INPUT });
  const out: AllocationIntent[] = [];
  restored.on('*', (e) => out.push(e));
  restored.start();
  assert.is(restored.getSnapshot().value, 'running');
  assert.equal(restored.getSnapshot().context.timers, { timeout: RUN_TIMEOUT_AT });
  for (const e of tail) restored.send(e);

  assert.equal(out, original.out.slice(first.out.length));
  assert.equal(restored.getSnapshot().context, original.actor.getSnapshot().context);
  assert.is(restored.getSnapshot().status, 'done');
  assert.equal(types(out).filter((t) => t === 'ledger.release'), ['ledger.release']);
  original.actor.stop();
  restored.stop();
});

Snapshot.run();

// ---------------------------------------------------------------------------------------------------------------
// Parts of an ensemble (job.part): held for dependencies, DMS_PORT_* / DMS_ADDR_* env, restarts, health checks.

const PART: PartRole = {
  ensemble: 'ens-1',
  name: 'web',
  type: 'service',
  ports: ['http'],
  restart: 'on-failure',
  dependsOn: [],
  maxRestarts: { count: 2, withinMs: 60_000 },
};
const PORTS = { http: 41_000 };
const HTTP_CHECK = { http: { port: 'http', path: '/health' }, intervalMs: 1_000, retries: 2 } as const;

interface PartHarness {
  actor: Actor<AllocationMachine>;
  out: AllocationIntent[];
  send(e: AllocationEvent): AllocationIntent[];
}

/** A started allocation of a part (PART patched), with its ledger ports. */
function partActor(patch: Partial<PartRole> = {}, ports: Record<string, number> = PORTS): PartHarness {
  const input: AllocationInput = { ...INPUT, job: { ...JOB, part: { ...PART, ...patch } }, ports };
  const out: AllocationIntent[] = [];
  const actor = createActor(allocationMachine, { input });
  actor.on('*', (e) => out.push(e));
  actor.start();
  return {
    actor,
    out,
    send(e) {
      const from = out.length;
      actor.send(e);
      return out.slice(from);
    },
  };
}
const pstate = (p: PartHarness) => p.actor.getSnapshot().value;
const pctx = (p: PartHarness): AllocationContext => p.actor.getSnapshot().context;
const pushes = (out: readonly AllocationIntent[]) => ofType(out, 'status.push').map((i) => i.status);
const startsOf = (out: readonly AllocationIntent[]) => ofType(out, 'execution.start');
const partStart = (addrsEnv: Record<string, string>, now = T0 + 500): AllocationEvent => ({ type: 'part.start', addrsEnv, now });
const healthResult = (ok: boolean, output: string, now: number, ms = 10): AllocationEvent => ({ type: 'health.result', ok, output, ms, now });
const failedOutcome = (code = 1) => outcome('failed', code, `exited with code ${code}`);

/** Runs a part to running: started at T0, running at T0 + 100. */
function partRunning(p: PartHarness, at = T0): void {
  p.send(startEv(at));
  p.send(started(at + 100));
  assert.is(pstate(p), 'running');
}

const Parts = suite<{ p?: PartHarness }>('allocation of a part: held, env, start');
Parts.after.each((ctx) => {
  ctx.p?.actor.stop();
  ctx.p = undefined;
});

Parts('a part without dependencies starts at once, with DMS_PORT_<NAME>; its status says restarts 0', (ctx) => {
  const p = (ctx.p = partActor());
  const out = p.send(startEv());
  assert.equal(startsOf(out), [{ type: 'execution.start', allocationId: ID, job: { ...JOB, part: PART }, env: { DMS_PORT_HTTP: '41000' } }]);
  assert.equal(pushes(out), [{ dealId: 'deal-1', nonce: 2, allocationId: ID, state: 'starting', exitCode: null, message: 'starting the job', restarts: 0 }]);
  assert.is(pstate(p), 'starting');
});

Parts('a part with dependencies is held (pending, status pushed) until part.start, then starts with their addresses', (ctx) => {
  const p = (ctx.p = partActor({ dependsOn: ['kv', 'cache'], ports: ['http', 'admin-ui'] }, { http: 41_000, 'admin-ui': 41_001 }));
  const out = p.send(startEv());
  assert.equal(startsOf(out), []);
  assert.is(pstate(p), 'held');
  assert.is(pctx(p).record.state, 'pending');
  assert.equal(pushes(out), [{ dealId: 'deal-1', nonce: 2, allocationId: ID, state: 'pending', exitCode: null, message: 'waiting for the parts it depends on to run: kv, cache', restarts: 0 }]);
  // a timer or a health result while held changes nothing
  assert.equal(p.send(healthResult(true, 'ok', T0 + 200)), []);
  const go = p.send(partStart({ DMS_ADDR_KV_HTTP: '127.0.0.1:5001', DMS_ADDR_CACHE_TCP: '127.0.0.1:5002' }));
  const [start] = startsOf(go);
  assert.equal(start?.env, { DMS_PORT_HTTP: '41000', DMS_PORT_ADMIN_UI: '41001', DMS_ADDR_KV_HTTP: '127.0.0.1:5001', DMS_ADDR_CACHE_TCP: '127.0.0.1:5002' });
  assert.is(pstate(p), 'starting');
  assert.equal(pushes(go).map((s) => s.state), ['starting']);
});

Parts('cancelled while held: terminated at once, nothing to stop, released once', (ctx) => {
  const p = (ctx.p = partActor({ dependsOn: ['kv'] }));
  p.send(startEv());
  const out = p.send(cancelEv(T0 + 300));
  assert.equal(ofType(out, 'execution.cancel'), []);
  assert.equal(types(out), ['ledger.release', 'status.push', 'allocation.ended']);
  assert.is(pstate(p), 'terminated');
  assert.equal(p.send(partStart({ DMS_ADDR_KV_HTTP: '127.0.0.1:5001' })), []);
});

Parts('a provider restart while held fails it, released once (no part.start or cancel would come for it)', (ctx) => {
  const p = (ctx.p = partActor({ dependsOn: ['kv'] }));
  p.send(startEv());
  const out = p.send({ type: 'allocation.recovered', now: T0 + 400 });
  assert.equal(types(out), ['ledger.release', 'status.push', 'allocation.ended']);
  assert.equal(startsOf(out), []);
  assert.is(pstate(p), 'failed');
  assert.is((out[2] as Extract<AllocationIntent, { type: 'allocation.ended' }>).record.message, 'the provider restarted while the part waited for the parts it depends on');
  assert.equal(p.send(partStart({ DMS_ADDR_KV_HTTP: '127.0.0.1:5001' })), []);
});

Parts('a spawned part never started whose provider restarted fails too, not started', (ctx) => {
  const p = (ctx.p = partActor({ dependsOn: ['kv'] }));
  const out = p.send({ type: 'allocation.recovered', now: T0 });
  assert.equal(startsOf(out), []);
  assert.is(pstate(p), 'failed');
});

Parts('an allocation that is no part: no env, no restarts or healthy in its status, part events ignored', () => {
  const actor = createActor(allocationMachine, { input: INPUT });
  const out: AllocationIntent[] = [];
  actor.on('*', (e) => out.push(e));
  actor.start();
  actor.send(startEv());
  assert.equal(startsOf(out), [{ type: 'execution.start', allocationId: ID, job: JOB }]);
  actor.send(started());
  const before = out.length;
  actor.send(partStart({ DMS_ADDR_X_Y: '127.0.0.1:1' }));
  actor.send(healthResult(false, 'x', T0 + 300));
  assert.is(out.length, before);
  actor.send(endedEv(failedOutcome(1)));
  assert.is(actor.getSnapshot().value, 'failed');
  assert.is(startsOf(out).length, 1);
  for (const s of pushes(out)) assert.ok(!('restarts' in s) && !('healthy' in s), JSON.stringify(s));
  assert.ok(!('restarts' in actor.getSnapshot().context.record));
  actor.stop();
});

Parts.run();

// ---------------------------------------------------------------------------------------------------------------

const Restarts = suite<{ p?: PartHarness }>('allocation of a part: restarts by its policy, within maxRestarts');
Restarts.after.each((ctx) => {
  ctx.p?.actor.stop();
  ctx.p = undefined;
});

Restarts('on-failure: exit 1 starts it again (same env), counted; then exit 0 completes', (ctx) => {
  const p = (ctx.p = partActor());
  partRunning(p);
  const out = p.send(endedEv(failedOutcome(1), T0 + 5_000));
  assert.equal(types(out), ['timer.cancel', 'execution.start', 'status.push', 'timer.schedule']);
  assert.equal(out[0], { type: 'timer.cancel', key: 'timeout' });
  assert.equal(startsOf(out)[0]?.env, { DMS_PORT_HTTP: '41000' });
  assert.equal(pushes(out), [{ dealId: 'deal-1', nonce: 2, allocationId: ID, state: 'starting', exitCode: 1, message: 'restarting the job (restart 1) after: exited with code 1', restarts: 1 }]);
  assert.equal(pctx(p).timers, { start: T0 + 5_000 + 60_000 });
  assert.is(pstate(p), 'starting');
  p.send(started(T0 + 5_100, 777));
  assert.is(pstate(p), 'running');
  assert.equal(pctx(p).timers, { timeout: T0 + 5_100 + TIMEOUT + 5_000 });
  const end = p.send(endedEv(outcome('completed', 0, 'exited with code 0'), T0 + 6_000));
  assert.is(pstate(p), 'completed');
  assert.equal(pushes(end).at(-1), { dealId: 'deal-1', nonce: 2, allocationId: ID, state: 'completed', exitCode: 0, message: 'exited with code 0', restarts: 1 });
  assert.is(ofType(p.out, 'ledger.release').length, 1);
  assert.is(ofType(p.out, 'allocation.ended')[0]?.record.restarts, 1);
});

Restarts('on-failure: a service that exits 0 ends completed, not restarted', (ctx) => {
  const p = (ctx.p = partActor({ restart: 'on-failure' }));
  partRunning(p);
  p.send(endedEv(outcome('completed', 0, 'exited with code 0')));
  assert.is(pstate(p), 'completed');
  assert.is(startsOf(p.out).length, 1);
});

Restarts('always: a service that exits 0 is started again', (ctx) => {
  const p = (ctx.p = partActor({ restart: 'always' }));
  partRunning(p);
  p.send(endedEv(outcome('completed', 0, 'exited with code 0')));
  assert.is(pstate(p), 'starting');
  assert.is(startsOf(p.out).length, 2);
  assert.is(pctx(p).record.restarts, 1);
});

Restarts('never: exit 1 fails it as an allocation that is no part would', (ctx) => {
  const p = (ctx.p = partActor({ restart: 'never' }));
  partRunning(p);
  const out = p.send(endedEv(failedOutcome(3)));
  assert.is(pstate(p), 'failed');
  assert.equal(pushes(out), [{ dealId: 'deal-1', nonce: 2, allocationId: ID, state: 'failed', exitCode: 3, message: 'exited with code 3', restarts: 0 }]);
  assert.is(startsOf(p.out).length, 1);
});

Restarts('a crash or running out of memory restarts too (on-failure)', (ctx) => {
  const p = (ctx.p = partActor());
  partRunning(p);
  p.send(endedEv(outcome('memory', null, 'out of memory')));
  assert.is(pstate(p), 'starting');
  assert.match(pctx(p).record.message, 'after: out of memory');
});

Restarts('an end before the start was reported also restarts', (ctx) => {
  const p = (ctx.p = partActor());
  p.send(startEv());
  const out = p.send(endedEv(failedOutcome(2), T0 + 50));
  assert.is(pstate(p), 'starting');
  assert.equal(types(out), ['timer.cancel', 'execution.start', 'status.push', 'timer.schedule']);
  assert.equal(pctx(p).timers, { start: T0 + 50 + 60_000 });
});

Restarts('maxRestarts {2 in 60 s}: the third failure within the window fails it, saying why', (ctx) => {
  const p = (ctx.p = partActor());
  partRunning(p);
  p.send(endedEv(failedOutcome(1), T0 + 1_000));
  p.send(started(T0 + 1_100));
  p.send(endedEv(failedOutcome(1), T0 + 2_000));
  p.send(started(T0 + 2_100));
  assert.is(pctx(p).record.restarts, 2);
  const out = p.send(endedEv(failedOutcome(4), T0 + 3_000));
  assert.is(pstate(p), 'failed');
  const last = pushes(out).at(-1);
  assert.equal(last, { dealId: 'deal-1', nonce: 2, allocationId: ID, state: 'failed', exitCode: 4, message: 'exited with code 4; not restarted: it already had 2 restarts within 60 s (maxRestarts)', restarts: 2 });
  assert.is(startsOf(p.out).length, 3);
});

Restarts('maxRestarts is a sliding window: restarts older than it no longer count', (ctx) => {
  const p = (ctx.p = partActor());
  partRunning(p);
  p.send(endedEv(failedOutcome(1), T0 + 1_000));
  p.send(started(T0 + 1_100));
  p.send(endedEv(failedOutcome(1), T0 + 2_000));
  p.send(started(T0 + 2_100));
  // 61 s after the first restart: it has left the window, one is left in it
  p.send(endedEv(failedOutcome(1), T0 + 61_001));
  assert.is(pstate(p), 'starting');
  assert.is(pctx(p).record.restarts, 3);
  assert.equal(pctx(p).restartWindow, [T0 + 2_000, T0 + 61_001]);
});

Restarts('maxRestarts count 0: the first failure fails it', (ctx) => {
  const p = (ctx.p = partActor({ maxRestarts: { count: 0, withinMs: 60_000 } }));
  partRunning(p);
  p.send(endedEv(failedOutcome(1)));
  assert.is(pstate(p), 'failed');
  assert.is(pctx(p).record.restarts, 0);
});

Restarts('a cancel never restarts: running, cancelled, ended -> terminated', (ctx) => {
  const p = (ctx.p = partActor({ restart: 'always' }));
  partRunning(p);
  p.send(cancelEv(T0 + 1_000));
  p.send(endedEv(outcome('cancelled', 143, 'killed by SIGTERM'), T0 + 1_200));
  assert.is(pstate(p), 'terminated');
  assert.is(startsOf(p.out).length, 1);
  assert.is(pctx(p).record.restarts, 0);
});

Restarts('a cancel during a restart: terminated, not started again', (ctx) => {
  const p = (ctx.p = partActor({ restart: 'always' }));
  partRunning(p);
  p.send(endedEv(failedOutcome(1), T0 + 1_000));
  assert.is(pstate(p), 'starting');
  p.send(cancelEv(T0 + 1_050));
  p.send(endedEv(outcome('cancelled', null, 'killed'), T0 + 1_100));
  assert.is(pstate(p), 'terminated');
  assert.is(startsOf(p.out).length, 2);
});

Restarts('the executor ending it by itself (cancelled, not asked) ends it terminated', (ctx) => {
  const p = (ctx.p = partActor({ restart: 'always' }));
  partRunning(p);
  p.send(endedEv(outcome('cancelled', null, 'the executor shut down')));
  assert.is(pstate(p), 'terminated');
});

Restarts('a part killed at its time limit is not restarted: its timeout is all the life it was given', (ctx) => {
  const p = (ctx.p = partActor({ restart: 'always' }));
  partRunning(p);
  p.send(endedEv(outcome('timeout', null, 'killed after 30 s')));
  assert.is(pstate(p), 'failed');
  assert.is(startsOf(p.out).length, 1);
});

Restarts.run();

// ---------------------------------------------------------------------------------------------------------------

const Health = suite<{ p?: PartHarness }>('allocation of a part: health checks');
Health.after.each((ctx) => {
  ctx.p?.actor.stop();
  ctx.p = undefined;
});

/** Fires the health timer at `at` and answers the check 10 ms later; returns the intents of both. */
function check(p: PartHarness, ok: boolean, at: number, output = ok ? 'HTTP 200' : 'HTTP 500\nboom'): AllocationIntent[] {
  return [...p.send(fired('health', at)), ...p.send(healthResult(ok, output, at + 10))];
}

Health('running schedules the first check one interval on; the timer asks the runtime for it', (ctx) => {
  const p = (ctx.p = partActor({ healthcheck: HTTP_CHECK }));
  p.send(startEv());
  const out = p.send(started(T0 + 100));
  assert.equal(ofType(out, 'timer.schedule'), [{ type: 'timer.schedule', key: 'timeout', at: RUN_TIMEOUT_AT }, { type: 'timer.schedule', key: 'health', at: T0 + 1_100 }]);
  assert.equal(p.send(fired('health', T0 + 1_100)), [{ type: 'health.check', allocationId: ID, target: { type: 'http', port: 41_000, path: '/health' }, timeoutMs: 1_000 }]);
  assert.equal(pctx(p).timers, { timeout: RUN_TIMEOUT_AT });
});

Health('a pass makes it healthy: status pushed with healthy true, the next check set; another pass pushes nothing', (ctx) => {
  const p = (ctx.p = partActor({ healthcheck: HTTP_CHECK }));
  partRunning(p);
  const out = check(p, true, T0 + 1_100);
  assert.equal(pushes(out), [{ dealId: 'deal-1', nonce: 2, allocationId: ID, state: 'running', exitCode: null, message: 'the job runs and is healthy', healthy: true, restarts: 0 }]);
  assert.equal(ofType(out, 'timer.schedule'), [{ type: 'timer.schedule', key: 'health', at: T0 + 2_110 }]);
  assert.equal(pushes(check(p, true, T0 + 2_110)), []);
  assert.is(pctx(p).record.healthy, true);
});

Health('failures within the start period do not count; retries failures in a row make it unhealthy, stopped', (ctx) => {
  const p = (ctx.p = partActor({ healthcheck: HTTP_CHECK }));
  partRunning(p);
  assert.equal(pushes(check(p, false, T0 + 1_100)), []); // due within the start period
  assert.equal(pushes(check(p, false, T0 + 2_110)), []); // 1 of 2
  const out = check(p, false, T0 + 3_120); // 2 of 2
  assert.is(pstate(p), 'recycling');
  assert.ok(ofType(out, 'execution.cancel').length === 1, JSON.stringify(out));
  const reason = 'the health check failed 2 times in a row; last output: HTTP 500\nboom';
  assert.equal(pushes(out), [{ dealId: 'deal-1', nonce: 2, allocationId: ID, state: 'running', exitCode: null, message: `${reason}; stopping it`, healthy: false, restarts: 0 }]);
  // no more checks of this run; the stop is timed
  assert.equal(Object.keys(pctx(p).timers).sort(), ['stop', 'timeout']);
});

Health('unhealthy -> stopped -> restarted (health unknown again) -> unhealthy again past maxRestarts -> failed with the check output', (ctx) => {
  const p = (ctx.p = partActor({ healthcheck: HTTP_CHECK, maxRestarts: { count: 1, withinMs: 60_000 } }));
  partRunning(p);
  check(p, true, T0 + 1_100);
  check(p, false, T0 + 2_110);
  check(p, false, T0 + 3_120);
  assert.is(pstate(p), 'recycling');
  // the stopped execution reports a cancel: still a failure for the policy
  const again = p.send(endedEv(outcome('cancelled', 143, 'killed by SIGTERM'), T0 + 3_300));
  assert.is(pstate(p), 'starting');
  assert.equal(startsOf(again)[0]?.env, { DMS_PORT_HTTP: '41000' });
  const pushed = pushes(again)[0]!;
  assert.is(pushed.restarts, 1);
  assert.ok(!('healthy' in pushed), 'health is unknown after a restart');
  assert.match(pushed.message, 'after: the health check failed 2 times in a row');
  assert.is(pctx(p).unhealthy, null);
  p.send(started(T0 + 3_400));
  // a result of a check begun before this start is ignored
  assert.equal(p.send(healthResult(false, 'stale', T0 + 3_450, 100)), []);
  check(p, false, T0 + 4_400); // start period
  check(p, false, T0 + 5_410);
  check(p, false, T0 + 6_420, 'HTTP 503\nstill down');
  assert.is(pstate(p), 'recycling');
  const end = p.send(endedEv(outcome('cancelled', 143, 'killed by SIGTERM'), T0 + 6_600));
  assert.is(pstate(p), 'failed');
  const msg = pushes(end).at(-1)!.message;
  assert.match(msg, /^the health check failed 2 times in a row; last output: HTTP 503\nstill down/);
  assert.match(msg, 'not restarted: it already had 1 restarts within 60 s');
  assert.is(ofType(p.out, 'ledger.release').length, 1);
});

Health('restart never: unhealthy fails it with the check output as the message', (ctx) => {
  const p = (ctx.p = partActor({ healthcheck: { ...HTTP_CHECK, retries: 1 }, restart: 'never' }));
  partRunning(p);
  check(p, true, T0 + 1_100);
  check(p, false, T0 + 2_110, 'GET 127.0.0.1:41000/health failed: connect ECONNREFUSED');
  const end = p.send(endedEv(outcome('cancelled', 143, 'killed'), T0 + 2_300));
  assert.is(pstate(p), 'failed');
  assert.equal(pushes(end).at(-1), {
    dealId: 'deal-1', nonce: 2, allocationId: ID, state: 'failed', exitCode: 143,
    message: 'the health check failed once; last output: GET 127.0.0.1:41000/health failed: connect ECONNREFUSED', healthy: false, restarts: 0,
  });
});

Health('an unhealthy part that does not stop in time fails (it is not started a second time)', (ctx) => {
  const p = (ctx.p = partActor({ healthcheck: { ...HTTP_CHECK, retries: 1 } }));
  partRunning(p);
  check(p, true, T0 + 1_100);
  check(p, false, T0 + 2_110);
  const stopAt = pctx(p).timers['stop']!;
  p.send(fired('stop', stopAt));
  assert.is(pstate(p), 'failed');
  assert.match(pctx(p).record.message, 'did not stop within 10 s');
  assert.is(startsOf(p.out).length, 1);
});

Health('a cancel while an unhealthy part is being stopped ends it terminated, never restarted', (ctx) => {
  const p = (ctx.p = partActor({ healthcheck: { ...HTTP_CHECK, retries: 1 }, restart: 'always' }));
  partRunning(p);
  check(p, true, T0 + 1_100);
  check(p, false, T0 + 2_110);
  p.send(cancelEv(T0 + 2_200));
  assert.is(pstate(p), 'stopping');
  p.send(endedEv(outcome('cancelled', 143, 'killed'), T0 + 2_300));
  assert.is(pstate(p), 'terminated');
  assert.is(startsOf(p.out).length, 1);
});

Health('a command check carries the part env; a check naming a port the part lacks fails without the runtime', (ctx) => {
  const p = (ctx.p = partActor({ healthcheck: { command: ['sh', '-c', 'test -n "$DMS_PORT_HTTP"'], intervalMs: 500, retries: 1 } }));
  partRunning(p);
  assert.equal(p.send(fired('health', T0 + 600)), [{ type: 'health.check', allocationId: ID, target: { type: 'command', command: ['sh', '-c', 'test -n "$DMS_PORT_HTTP"'] }, timeoutMs: 500, env: { DMS_PORT_HTTP: '41000' } }]);
  p.actor.stop();
  const q = (ctx.p = partActor({ healthcheck: { ...HTTP_CHECK, retries: 1 } }, {}));
  partRunning(q);
  // the first failure is within the start period; the second makes it unhealthy
  const out = [...q.send(fired('health', T0 + 1_100)), ...q.send(fired('health', T0 + 2_100))];
  assert.equal(ofType(out, 'health.check'), []);
  assert.equal(ofType(out, 'timer.schedule'), [{ type: 'timer.schedule', key: 'health', at: T0 + 2_100 }, { type: 'timer.schedule', key: 'stop', at: T0 + 2_100 + 10_000 }]);
  assert.is(pstate(q), 'recycling');
  assert.match(pctx(q).unhealthy ?? '', `the health check's port "http" has no port assigned on this provider`);
});

Health('a part restored from a snapshot mid-checks continues identically', () => {
  const input: AllocationInput = { ...INPUT, job: { ...JOB, part: { ...PART, healthcheck: HTTP_CHECK } }, ports: PORTS };
  const head: AllocationEvent[] = [startEv(), started(), fired('health', T0 + 1_100), healthResult(true, 'ok', T0 + 1_110)];
  const tail: AllocationEvent[] = [fired('health', T0 + 2_110), healthResult(false, 'x', T0 + 2_120), fired('health', T0 + 3_120), healthResult(false, 'y', T0 + 3_130), endedEv(outcome('cancelled', 143, 'k'), T0 + 3_200)];
  const run = (events: readonly AllocationEvent[], snapshot?: unknown) => {
    const out: AllocationIntent[] = [];
    const actor = createActor(allocationMachine, snapshot ? { input, snapshot: snapshot as never } : { input });
    actor.on('*', (e) => out.push(e));
    actor.start();
    for (const e of events) actor.send(e);
    return { actor, out };
  };
  const original = run([...head, ...tail]);
  const first = run(head);
  const restored = run(tail, JSON.parse(JSON.stringify(first.actor.getPersistedSnapshot())));
  assert.equal(restored.out, original.out.slice(first.out.length));
  assert.equal(restored.actor.getSnapshot().context, original.actor.getSnapshot().context);
  assert.is(restored.actor.getSnapshot().value, 'starting');
  for (const a of [original, first, restored]) a.actor.stop();
});

Health.run();
