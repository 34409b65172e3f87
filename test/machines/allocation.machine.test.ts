import * as assert from 'uvu/assert';
import { createActor } from 'xstate';
import { type AllocationContext, type AllocationMachine, allocationMachine } from '../../machines/allocation.machine.ts';
import type { AllocationEvent, AllocationInput, AllocationIntent, ExecutionOutcome } from '../../machines/allocation.messages.ts';
import type { AllocationState } from '../../machines/deal.wire.ts';
import type { JobSpec } from '../../machines/job.ts';
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
