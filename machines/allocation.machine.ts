/**
 * One running job on the provider (actor `allocation/<allocationId>`): it asks the executor to start the job,
 * follows it to its end, tells the requester every change and gives the resources back to the Node exactly once.
 * Pure: effects leave as emitted intents (allocation.messages.ts); time arrives as `now`.
 */
import { and, enqueueActions, setup } from 'xstate';
import type { AllocationEvent, AllocationInput, AllocationIntent, AllocationRecordView, ExecutionOutcome } from './allocation.messages.ts';
import type { AllocationState } from './deal.wire.ts';
import { type PendingTimers, type TimerStep, timerBook } from './deal.timers.ts';

/** Bumped whenever the context shape changes, so an old snapshot is refused instead of misread. */
export const ALLOCATION_MACHINE_VERSION = 1;

export const ALLOCATION_TIMING = Object.freeze({
  /** From asking the executor until it reports the job started. */
  startMs: 60_000,
  /** After the job's own timeout: the executor kills it then, this is only a backstop. */
  timeoutGraceMs: 5_000,
  /** From asking the executor to stop the job until we stop waiting for it. */
  stopMs: 10_000,
});

type TimerKey = 'start' | 'timeout' | 'stop';
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

function timerAt(key: TimerKey, c: AllocationContext, now: number): number {
  if (key === 'start') return now + ALLOCATION_TIMING.startMs;
  if (key === 'stop') return now + ALLOCATION_TIMING.stopMs;
  return now + c.input.job.timeoutMs + ALLOCATION_TIMING.timeoutGraceMs;
}

/**
 * The allocation's timer bookkeeping. Each of its timers is scheduled once, on entering its state, and never
 * again, so no fire can be stale: every fire of a pending timer counts, however early (slack unbounded); a fire
 * after it was cancelled finds it no longer pending.
 */
const timers = timerBook({ slackMs: Infinity });

/** Takes a step of the timer bookkeeping: the pending timers it leaves, then its intents. */
function applyTimers(enqueue: Enqueue, step: TimerStep): void {
  enqueue.assign({ timers: step.timers });
  for (const i of step.intents) enqueue.emit(i);
}

function statusPush(c: AllocationContext, record: AllocationRecordView): AllocationIntent {
  const { allocationId, dealId, nonce, requester } = c.input;
  const { state, exitCode, message } = record;
  return { type: 'status.push', to: requester, status: { dealId, nonce, allocationId, state, exitCode, message } };
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
  },
  actions: {
    startExecution: enqueueActions((a) => {
      a.enqueue.emit({ type: 'execution.start', allocationId: a.context.input.allocationId, job: a.context.input.job });
      note(a, { message: 'starting the job' });
    }),
    cancelExecution: enqueueActions(({ context, enqueue }) => {
      enqueue.emit({ type: 'execution.cancel', allocationId: context.input.allocationId });
    }),
    arm: enqueueActions(({ context, event, enqueue }, params: { key: TimerKey }) => {
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
      enqueue.assign({ stopReason: params.reason, record: { ...context.record, message } });
    }),
    noStart: enqueueActions((a) => note(a, { message: `the job did not start within ${ALLOCATION_TIMING.startMs / 1000} s` })),
    cancelledEarly: enqueueActions((a) => note(a, { message: 'cancelled before the job started' })),
    providerRestarted: enqueueActions((a) => note(a, { message: 'the provider restarted while the job ran' })),
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
    },
    timers: {},
    stopReason: null,
  }),
  initial: 'pending',
  on: {
    'timer.fired': { actions: 'forgetTimer' },
  },
  states: {
    pending: {
      on: {
        'allocation.start': { target: 'starting', actions: 'startExecution' },
        // spawned but never started: the start was lost with the old process
        'allocation.recovered': { target: 'starting', actions: 'startExecution' },
        'allocation.cancel': { target: 'terminated', actions: 'cancelledEarly' },
      },
    },
    starting: {
      entry: [{ type: 'enter', params: { state: 'starting' } }, { type: 'arm', params: { key: 'start' } }],
      on: {
        'execution.started': { target: 'running', actions: ['markStarted', { type: 'disarm', params: { key: 'start' } }] },
        'execution.refused': { target: 'failed', actions: 'refused' },
        // a job can end before its start was reported (the two race in from the executor)
        'execution.ended': [
          { guard: { type: 'ended', params: { as: 'completed' } }, target: 'completed', actions: 'takeOutcome' },
          { guard: { type: 'ended', params: { as: 'terminated' } }, target: 'terminated', actions: 'takeOutcome' },
          { target: 'failed', actions: 'takeOutcome' },
        ],
        'timer.fired': { guard: { type: 'due', params: { key: 'start' } }, target: 'failed', actions: ['forgetTimer', 'cancelExecution', 'noStart'] },
        'allocation.cancel': { target: 'stopping', actions: ['cancelExecution', { type: 'stopFor', params: { reason: 'cancel' } }] },
        // the job's process died with the old provider process
        'allocation.recovered': { target: 'failed', actions: 'providerRestarted' },
      },
    },
    running: {
      entry: [{ type: 'enter', params: { state: 'running' } }, { type: 'arm', params: { key: 'timeout' } }],
      on: {
        'execution.ended': [
          { guard: { type: 'ended', params: { as: 'completed' } }, target: 'completed', actions: 'takeOutcome' },
          { guard: { type: 'ended', params: { as: 'terminated' } }, target: 'terminated', actions: 'takeOutcome' },
          { target: 'failed', actions: 'takeOutcome' },
        ],
        'timer.fired': {
          guard: { type: 'due', params: { key: 'timeout' } },
          target: 'stopping',
          actions: ['forgetTimer', 'cancelExecution', { type: 'stopFor', params: { reason: 'timeout' } }],
        },
        'allocation.cancel': { target: 'stopping', actions: ['cancelExecution', { type: 'stopFor', params: { reason: 'cancel' } }] },
        'allocation.recovered': { target: 'failed', actions: 'providerRestarted' },
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
