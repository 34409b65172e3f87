/**
 * One running job on the provider (actor `allocation/<allocationId>`): it asks the executor to start the job,
 * follows it to its end, tells the requester every change and gives the resources back to the Node exactly once.
 * Pure: effects leave as emitted intents (allocation.messages.ts); time arrives as `now`.
 *
 * A part of an ensemble (its job has `part`; the rules are allocation.part.ts) also: waits in `held` for
 * `part.start` when it depends on other parts; runs with `DMS_PORT_*` and `DMS_ADDR_*`; is started again after an
 * end nobody asked for, as its `restart` policy and `maxRestarts` say; and runs its health check while it runs,
 * an unhealthy part being stopped (`recycling`) and then treated as a failed execution.
 */
import { and, enqueueActions, setup } from 'xstate';
import type { AllocationEvent, AllocationInput, AllocationIntent, AllocationRecordView, ExecutionOutcome } from './allocation.messages.ts';
import {
  type Env,
  type RestartStep,
  checkTarget,
  exceededMessage,
  foldCheck,
  heldFor,
  missingTargetOutput,
  partEnv,
  partExitOf,
  partHealthRules,
  restartStep,
} from './allocation.part.ts';
import type { AllocationState } from './deal.wire.ts';
import { type PendingTimers, type TimerStep, timerBook } from './deal.timers.ts';
import { type HealthState, startHealth, unhealthyReason } from './health.ts';
import type { RestartWindow } from './restart-policy.ts';

/** Bumped whenever the context shape changes, so an old snapshot is refused instead of misread. */
export const ALLOCATION_MACHINE_VERSION = 2;

export const ALLOCATION_TIMING = Object.freeze({
  /** From asking the executor until it reports the job started. */
  startMs: 60_000,
  /** After the job's own timeout: the executor kills it then, this is only a backstop. */
  timeoutGraceMs: 5_000,
  /** From asking the executor to stop the job until we stop waiting for it. */
  stopMs: 10_000,
});

type TimerKey = 'start' | 'timeout' | 'stop' | 'health';
type StopReason = 'cancel' | 'timeout';
type FinalState = Extract<AllocationState, 'completed' | 'failed' | 'terminated'>;

export interface AllocationContext {
  readonly input: AllocationInput;
  /** What `status` shows of the allocation. */
  readonly record: AllocationRecordView;
  /** Runtime timers still pending, by key (absolute times). */
  readonly timers: PendingTimers;
  /** Why the job is being stopped: a cancel ends it as terminated, the backstop timeout as failed. */
  readonly stopReason: StopReason | null;
  /** A part: the addresses of the parts it depends on (`DMS_ADDR_*`), once `part.start` gave them. */
  readonly addrsEnv: Env | null;
  /** A part: the times of its restarts still inside its `maxRestarts` window. */
  readonly restartWindow: RestartWindow;
  /** A part with a health check, while it runs: its health since its last start. */
  readonly health: HealthState | null;
  /** A part stopped for ill health (`recycling`): why, the message it fails with if it is not restarted. */
  readonly unhealthy: string | null;
}

type Enqueue = { emit(intent: AllocationIntent): void; assign(patch: Partial<AllocationContext>): void };
type Collect = { context: AllocationContext; event: AllocationEvent; enqueue: Enqueue };

/** The record after an event at `now`. The input carries no clock, so the first event dates the record. */
function touch(r: AllocationRecordView, now: number, patch: Partial<AllocationRecordView> = {}): AllocationRecordView {
  return { ...r, createdAt: r.createdAt || now, ...patch };
}

function timeoutMessage(job: AllocationInput['job']): string {
  return `the job ran past its timeout of ${job.timeoutMs / 1000} s and was stopped`;
}

function timerAt(key: Exclude<TimerKey, 'health'>, c: AllocationContext, now: number): number {
  if (key === 'start') return now + ALLOCATION_TIMING.startMs;
  if (key === 'stop') return now + ALLOCATION_TIMING.stopMs;
  return now + c.input.job.timeoutMs + ALLOCATION_TIMING.timeoutGraceMs;
}

/**
 * The allocation's timer bookkeeping. Each of its timers is scheduled on entering its state (the health check's
 * after each result) and only when it is not pending, so a fire is stale only if it was already on its way when
 * its timer was cancelled and scheduled again (a part's restart): every fire of a pending timer counts, however
 * early (slack unbounded); a fire after it was cancelled finds it no longer pending.
 */
const timers = timerBook({ slackMs: Infinity });

/** Takes a step of the timer bookkeeping: the pending timers it leaves, then its intents. */
function applyTimers(enqueue: Enqueue, step: TimerStep): void {
  enqueue.assign({ timers: step.timers });
  for (const i of step.intents) enqueue.emit(i);
}

/** Cancels each of `keys` that is pending, in one step. */
function cancelTimers(timers0: PendingTimers, keys: readonly TimerKey[]): TimerStep {
  let t = timers0;
  const intents: TimerStep['intents'][number][] = [];
  for (const key of keys) {
    const s = timers.cancel(t, key);
    t = s.timers;
    intents.push(...s.intents);
  }
  return { timers: t, intents };
}

function statusPush(c: AllocationContext, record: AllocationRecordView): AllocationIntent {
  const { allocationId, dealId, nonce, requester } = c.input;
  const { state, exitCode, message } = record;
  // a part's status also says its restarts, and its health once known
  const part = c.input.job.part ? { ...(record.healthy === undefined ? {} : { healthy: record.healthy }), restarts: record.restarts ?? 0 } : {};
  return { type: 'status.push', to: requester, status: { dealId, nonce, allocationId, state, exitCode, message, ...part } };
}

/** The record without its health: not known again until the first check after a (re)start. */
function withoutHealth(r: AllocationRecordView): AllocationRecordView {
  const { healthy: _gone, ...rest } = r;
  return rest;
}

/** What the restart rules say about the event ending a part's execution (`end` for anything else). */
function restartOf(c: AllocationContext, event: AllocationEvent): RestartStep {
  if (!c.input.job.part) return { type: 'end' };
  if (c.unhealthy !== null) {
    // stopped for ill health: a failure, whatever the stopped execution reported
    if (event.type !== 'execution.ended' && event.type !== 'execution.refused') return { type: 'end' };
    return restartStep(c.input, c.restartWindow, { type: 'killed', reason: c.unhealthy }, event.now);
  }
  if (event.type !== 'execution.ended' || c.stopReason !== null) return { type: 'end' };
  const exit = partExitOf(event.outcome);
  return exit ? restartStep(c.input, c.restartWindow, exit, event.now) : { type: 'end' };
}

/** Why the execution that just ended is done with: its outcome, or the ill health it was stopped for. */
function whyEnded(c: AllocationContext, event: AllocationEvent): string {
  if (c.unhealthy !== null) return c.unhealthy;
  if (event.type === 'execution.ended') return event.outcome.message || DEFAULT_MESSAGE[stateOf(event.outcome)];
  return c.record.message;
}

function note({ context, event, enqueue }: Collect, patch: Partial<AllocationRecordView>): void {
  enqueue.assign({ record: touch(context.record, event.now, patch) });
}

/** Where an execution's end leads, when nobody asked it to stop. */
function stateOf(o: ExecutionOutcome): FinalState {
  if (o.reason === 'completed') return 'completed';
  if (o.reason === 'cancelled') return 'terminated';
  return 'failed';
}

const DEFAULT_MESSAGE: Record<FinalState, string> = {
  completed: 'the job completed',
  failed: 'the job failed',
  terminated: 'the job was cancelled',
};

export const allocationMachine = setup({
  types: {} as { context: AllocationContext; events: AllocationEvent; emitted: AllocationIntent; input: AllocationInput },
  guards: {
    ended: ({ event }, params: { as: FinalState }) => event.type === 'execution.ended' && stateOf(event.outcome) === params.as,
    stoppedFor: ({ context }, params: { reason: StopReason }) => context.stopReason === params.reason,
    // a timer cancelled while its firing was already on the way is stale
    due: ({ context, event }, params: { key: TimerKey }) => timers.due(context.timers, event, params.key),
    /** A part that depends on others and has not got their addresses yet. */
    held: ({ context }) => heldFor(context.input, context.addrsEnv).length > 0,
    restarts: ({ context, event }) => restartOf(context, event).type === 'restart',
    restartRefused: ({ context, event }) => restartOf(context, event).type === 'exceeded',
    /** A health result that makes the running part unhealthy. */
    turnsUnhealthy: ({ context, event }) => {
      const rules = partHealthRules(context.input);
      if (event.type !== 'health.result' || !rules || !context.health) return false;
      return foldCheck(rules, context.health, event).transition === 'unhealthy';
    },
  },
  actions: {
    startExecution: enqueueActions((a) => {
      const env = partEnv(a.context.input, a.context.addrsEnv);
      a.enqueue.emit({ type: 'execution.start', allocationId: a.context.input.allocationId, job: a.context.input.job, ...(env ? { env } : {}) });
      note(a, { message: 'starting the job' });
    }),
    hold: enqueueActions((a) => note(a, { message: `waiting for the parts it depends on to run: ${heldFor(a.context.input, a.context.addrsEnv).join(', ')}` })),
    takeAddrs: enqueueActions(({ event, enqueue }) => {
      if (event.type === 'part.start') enqueue.assign({ addrsEnv: event.addrsEnv });
    }),
    /** Starts the part's execution again (the rules said so): pending timers of the last run go, a restart is counted. */
    restart: enqueueActions(({ context, event, enqueue }) => {
      const step = restartOf(context, event);
      if (step.type !== 'restart') return;
      applyTimers(enqueue, cancelTimers(context.timers, ['start', 'timeout', 'stop', 'health']));
      const restarts = (context.record.restarts ?? 0) + 1;
      const exitCode = event.type === 'execution.ended' ? event.outcome.exitCode : context.record.exitCode;
      const message = `restarting the job (restart ${restarts}) after: ${whyEnded(context, event)}`;
      const record = touch(withoutHealth(context.record), event.now, { restarts, exitCode, message });
      enqueue.assign({ record, restartWindow: step.window, health: null, unhealthy: null });
      const env = partEnv(context.input, context.addrsEnv);
      enqueue.emit({ type: 'execution.start', allocationId: context.input.allocationId, job: context.input.job, ...(env ? { env } : {}) });
    }),
    /** The policy would restart the part, but it restarted too often within its window: it fails. */
    restartExceeded: enqueueActions((a) => {
      const exitCode = a.event.type === 'execution.ended' ? a.event.outcome.exitCode : a.context.record.exitCode;
      note(a, { exitCode, message: exceededMessage(a.context.input, whyEnded(a.context, a.event)) });
    }),
    /** A part stopped for ill health that is not restarted fails with the check's last output. */
    unhealthyEnd: enqueueActions((a) => {
      const exitCode = a.event.type === 'execution.ended' ? a.event.outcome.exitCode : a.context.record.exitCode;
      const stuck = a.event.type === 'timer.fired' ? `; it did not stop within ${ALLOCATION_TIMING.stopMs / 1000} s` : '';
      note(a, { exitCode, message: `${a.context.unhealthy ?? 'unhealthy'}${stuck}` });
    }),
    /** A part with a health check that runs: health starts over, the first check one interval on. */
    startChecks: enqueueActions(({ context, event, enqueue }) => {
      const rules = partHealthRules(context.input);
      if (!rules) return;
      const health = startHealth(rules, event.now);
      enqueue.assign({ health });
      applyTimers(enqueue, timers.schedule(context.timers, 'health', health.nextCheckAt));
    }),
    /** The check is due: the runtime runs it (a check naming a port the part lacks fails here, without it). */
    checkHealth: enqueueActions(({ context, event, enqueue }) => {
      const rules = partHealthRules(context.input);
      if (!rules) return;
      const target = checkTarget(context.input);
      if (!target) {
        enqueue.raise({ type: 'health.result', ok: false, output: missingTargetOutput(context.input), ms: 0, now: event.now });
        return;
      }
      const env = target.type === 'command' ? partEnv(context.input, context.addrsEnv) : undefined;
      enqueue.emit({ type: 'health.check', allocationId: context.input.allocationId, target, timeoutMs: rules.timeoutMs, ...(env ? { env } : {}) });
    }),
    /** Folds a check's result into the part's health; a change is told to the requester; the next check is set. */
    foldHealth: enqueueActions(({ context, event, enqueue }) => {
      const rules = partHealthRules(context.input);
      if (event.type !== 'health.result' || !rules || !context.health) return;
      const step = foldCheck(rules, context.health, event);
      // a result of a check begun before the last start is ignored: the next check is set already
      if (step.state === context.health) return;
      enqueue.assign({ health: step.state });
      // an unhealthy part is being stopped: no more checks of this run
      if (step.transition !== 'unhealthy') applyTimers(enqueue, timers.schedule(context.timers, 'health', step.nextCheckAt));
      if (step.transition === null) return;
      const healthy = step.transition === 'healthy';
      const reason = unhealthyReason(rules, step.state);
      const message = healthy ? 'the job runs and is healthy' : `${reason}; stopping it`;
      const record = touch(context.record, event.now, { healthy, message });
      enqueue.assign({ record, ...(healthy ? {} : { unhealthy: reason }) });
      enqueue.emit(statusPush(context, record));
    }),
    cancelExecution: enqueueActions(({ context, enqueue }) => {
      enqueue.emit({ type: 'execution.cancel', allocationId: context.input.allocationId });
    }),
    arm: enqueueActions(({ context, event, enqueue }, params: { key: Exclude<TimerKey, 'health'> }) => {
      applyTimers(enqueue, timers.schedule(context.timers, params.key, timerAt(params.key, context, event.now)));
    }),
    disarm: enqueueActions(({ context, enqueue }, params: { key: TimerKey }) => applyTimers(enqueue, timers.cancel(context.timers, params.key))),
    markStarted: enqueueActions((a) => {
      if (a.event.type === 'execution.started') note(a, { pid: a.event.pid, startedAt: a.event.now, message: 'the job runs' });
    }),
    takeOutcome: enqueueActions((a) => {
      if (a.event.type !== 'execution.ended') return;
      const { exitCode, message } = a.event.outcome;
      note(a, { exitCode, message: message || DEFAULT_MESSAGE[stateOf(a.event.outcome)] });
    }),
    /** The end as the stop reason tells it; the executor's exit code is kept when it has one. */
    takeStopOutcome: enqueueActions((a) => {
      const exitCode = a.event.type === 'execution.ended' ? a.event.outcome.exitCode : a.context.record.exitCode;
      note(a, { exitCode, message: a.context.stopReason === 'timeout' ? timeoutMessage(a.context.input.job) : DEFAULT_MESSAGE.terminated });
    }),
    refused: enqueueActions((a) => {
      if (a.event.type === 'execution.refused') note(a, { message: `the executor refused the job: ${a.event.reason}` });
    }),
    stopFor: enqueueActions(({ context, enqueue }, params: { reason: StopReason }) => {
      const message = params.reason === 'timeout' ? timeoutMessage(context.input.job) : 'cancelling the job';
      enqueue.assign({ stopReason: params.reason, unhealthy: null, record: { ...context.record, message } });
    }),
    noStart: enqueueActions((a) => note(a, { message: `the job did not start within ${ALLOCATION_TIMING.startMs / 1000} s` })),
    cancelledEarly: enqueueActions((a) => note(a, { message: 'cancelled before the job started' })),
    providerRestarted: enqueueActions((a) => note(a, { message: 'the provider restarted while the job ran' })),
    heldRestarted: enqueueActions((a) => note(a, { message: 'the provider restarted while the part waited for the parts it depends on' })),
    forgetTimer: enqueueActions(({ context, event, enqueue }) => enqueue.assign({ timers: timers.afterFire(context.timers, event) })),
    enter: enqueueActions(({ context, event, enqueue }, params: { state: AllocationState }) => {
      const record = touch(context.record, event.now, { state: params.state });
      enqueue.assign({ record });
      enqueue.emit(statusPush(context, record));
    }),
    /** The one way out: whatever ended the job, the resources go back to the Node here and only here. */
    finish: enqueueActions(({ context, event, enqueue }, params: { state: FinalState }) => {
      applyTimers(enqueue, timers.cancelAll(context.timers));
      const record = touch(context.record, event.now, { state: params.state, endedAt: event.now });
      enqueue.assign({ record });
      enqueue.emit({ type: 'ledger.release', allocationId: context.input.allocationId });
      enqueue.emit(statusPush(context, record));
      enqueue.emit({ type: 'allocation.ended', record });
    }),
  },
}).createMachine({
  id: 'allocation',
  context: ({ input }) => ({
    input,
    record: {
      allocationId: input.allocationId,
      dealId: input.dealId,
      requester: input.requester,
      name: input.job.name,
      executor: input.job.executor,
      resources: input.job.resources,
      state: 'pending',
      exitCode: null,
      message: 'waiting to start',
      pid: null,
      createdAt: 0,
      startedAt: null,
      endedAt: null,
      ...(input.job.part ? { restarts: 0 } : {}),
      ...(input.grant ? { grant: input.grant } : {}),
    },
    timers: {},
    stopReason: null,
    addrsEnv: null,
    restartWindow: [],
    health: null,
    unhealthy: null,
  }),
  initial: 'pending',
  on: {
    'timer.fired': { actions: 'forgetTimer' },
  },
  states: {
    pending: {
      on: {
        'allocation.start': [{ guard: 'held', target: 'held', actions: 'hold' }, { target: 'starting', actions: 'startExecution' }],
        // spawned but never started: the start was lost with the old process (a held part: as below)
        'allocation.recovered': [{ guard: 'held', target: 'failed', actions: 'heldRestarted' }, { target: 'starting', actions: 'startExecution' }],
        'allocation.cancel': { target: 'terminated', actions: 'cancelledEarly' },
        'part.start': { actions: 'takeAddrs' },
      },
    },
    /** A part waiting for the parts it depends on (its record stays `pending`): the requester's `part.start` starts it. */
    held: {
      entry: { type: 'enter', params: { state: 'pending' } },
      on: {
        'part.start': { target: 'starting', actions: ['takeAddrs', 'startExecution'] },
        'allocation.cancel': { target: 'terminated', actions: 'cancelledEarly' },
        // nothing ran, but nothing would start or stop it now: the ensemble sends a part.start once (one sent while
        // this node was down is lost), and a requester that ended meanwhile sends no cancel. It fails, its resources
        // go back, and an ensemble still running places the part again (found by the simulator: it held its
        // resources for good)
        'allocation.recovered': { target: 'failed', actions: 'heldRestarted' },
      },
    },
    starting: {
      entry: [{ type: 'enter', params: { state: 'starting' } }, { type: 'arm', params: { key: 'start' } }],
      on: {
        'execution.started': { target: 'running', actions: ['markStarted', { type: 'disarm', params: { key: 'start' } }] },
        'execution.refused': { target: 'failed', actions: 'refused' },
        // a job can end before its start was reported (the two race in from the executor)
        'execution.ended': [
          { guard: 'restarts', target: 'starting', reenter: true, actions: 'restart' },
          { guard: 'restartRefused', target: 'failed', actions: 'restartExceeded' },
          { guard: { type: 'ended', params: { as: 'completed' } }, target: 'completed', actions: 'takeOutcome' },
          { guard: { type: 'ended', params: { as: 'terminated' } }, target: 'terminated', actions: 'takeOutcome' },
          { target: 'failed', actions: 'takeOutcome' },
        ],
        'timer.fired': { guard: { type: 'due', params: { key: 'start' } }, target: 'failed', actions: ['forgetTimer', 'cancelExecution', 'noStart'] },
        'allocation.cancel': { target: 'stopping', actions: ['cancelExecution', { type: 'stopFor', params: { reason: 'cancel' } }] },
        // the job's process died with the old provider process
        'allocation.recovered': { target: 'failed', actions: 'providerRestarted' },
        'part.start': { actions: 'takeAddrs' },
      },
    },
    running: {
      entry: [{ type: 'enter', params: { state: 'running' } }, { type: 'arm', params: { key: 'timeout' } }, 'startChecks'],
      exit: { type: 'disarm', params: { key: 'health' } },
      on: {
        'execution.ended': [
          { guard: 'restarts', target: 'starting', actions: 'restart' },
          { guard: 'restartRefused', target: 'failed', actions: 'restartExceeded' },
          { guard: { type: 'ended', params: { as: 'completed' } }, target: 'completed', actions: 'takeOutcome' },
          { guard: { type: 'ended', params: { as: 'terminated' } }, target: 'terminated', actions: 'takeOutcome' },
          { target: 'failed', actions: 'takeOutcome' },
        ],
        'timer.fired': [
          { guard: { type: 'due', params: { key: 'timeout' } }, target: 'stopping', actions: ['forgetTimer', 'cancelExecution', { type: 'stopFor', params: { reason: 'timeout' } }] },
          { guard: { type: 'due', params: { key: 'health' } }, actions: ['forgetTimer', 'checkHealth'] },
        ],
        'health.result': [{ guard: 'turnsUnhealthy', target: 'recycling', actions: ['foldHealth', 'cancelExecution'] }, { actions: 'foldHealth' }],
        'allocation.cancel': { target: 'stopping', actions: ['cancelExecution', { type: 'stopFor', params: { reason: 'cancel' } }] },
        'allocation.recovered': { target: 'failed', actions: 'providerRestarted' },
        'part.start': { actions: 'takeAddrs' },
      },
    },
    /** A part that became unhealthy, being stopped (its record stays `running`, unhealthy): then restarted, or failed. */
    recycling: {
      entry: { type: 'arm', params: { key: 'stop' } },
      on: {
        'execution.ended': [
          { guard: 'restarts', target: 'starting', actions: 'restart' },
          { guard: 'restartRefused', target: 'failed', actions: 'restartExceeded' },
          { target: 'failed', actions: 'unhealthyEnd' },
        ],
        'execution.refused': [
          { guard: 'restarts', target: 'starting', actions: 'restart' },
          { guard: 'restartRefused', target: 'failed', actions: 'restartExceeded' },
          { target: 'failed', actions: 'unhealthyEnd' },
        ],
        // the executor did not confirm the stop: not started again (it may still run), failed
        'timer.fired': { guard: { type: 'due', params: { key: 'stop' } }, target: 'failed', actions: ['forgetTimer', 'unhealthyEnd'] },
        // the stop is under way already: it now ends as a cancel
        'allocation.cancel': { target: 'stopping', actions: [{ type: 'disarm', params: { key: 'stop' } }, { type: 'stopFor', params: { reason: 'cancel' } }] },
        'allocation.recovered': { target: 'failed', actions: 'providerRestarted' },
        'part.start': { actions: 'takeAddrs' },
      },
    },
    stopping: {
      entry: [{ type: 'enter', params: { state: 'stopping' } }, { type: 'arm', params: { key: 'stop' } }],
      on: {
        'execution.ended': [
          { guard: { type: 'stoppedFor', params: { reason: 'timeout' } }, target: 'failed', actions: 'takeStopOutcome' },
          { target: 'terminated', actions: 'takeStopOutcome' },
        ],
        // a refusal can cross a cancel sent while the job was starting
        'execution.refused': [
          { guard: { type: 'stoppedFor', params: { reason: 'timeout' } }, target: 'failed', actions: 'takeStopOutcome' },
          { target: 'terminated', actions: 'takeStopOutcome' },
        ],
        // the executor did not confirm the stop in time: the job is taken as gone, ending as the stop reason says
        'timer.fired': [
          { guard: and([{ type: 'due', params: { key: 'stop' as const } }, { type: 'stoppedFor', params: { reason: 'timeout' as const } }]), target: 'failed', actions: ['forgetTimer', 'takeStopOutcome'] },
          { guard: { type: 'due', params: { key: 'stop' } }, target: 'terminated', actions: ['forgetTimer', 'takeStopOutcome'] },
        ],
        'allocation.recovered': [
          { guard: { type: 'stoppedFor', params: { reason: 'timeout' } }, target: 'failed', actions: 'takeStopOutcome' },
          { target: 'terminated', actions: 'takeStopOutcome' },
        ],
      },
    },
    completed: { type: 'final', entry: { type: 'finish', params: { state: 'completed' } } },
    failed: { type: 'final', entry: { type: 'finish', params: { state: 'failed' } } },
    terminated: { type: 'final', entry: { type: 'finish', params: { state: 'terminated' } } },
  },
});

export type AllocationMachine = typeof allocationMachine;
