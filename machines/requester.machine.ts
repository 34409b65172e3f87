/**
 * The requester negotiation (actor `job/<dealId>`; the Go DMS's orchestrator): ask for bids, rank them, commit to
 * the best, have it allocated and started, watch it run, and fall back to the next bid or a new round when a
 * provider fails. Pure: time comes in on every event, effects leave as emitted intents (requester.messages.ts).
 *
 * The final states sit inside `ended` rather than at the root, so an ended job still answers `job.cancel`.
 */
import { and, assertEvent, enqueueActions, setup } from 'xstate';
import { ALLOCATION_TERMINAL } from './deal.constants.ts';
import type { AllocationState } from './deal.wire.ts';
import { type Draft, type RequesterContext, begin, initialContext, timerDue } from './requester.context.ts';
import type { JobState, RequesterEvent, RequesterInput, RequesterIntent } from './requester.messages.ts';
import * as R from './requester.rules.ts';

export type { RequesterContext } from './requester.context.ts';

/** Bumped whenever the context shape changes, so an old snapshot is refused instead of misread. */
export const REQUESTER_MACHINE_VERSION = 2;

interface Enqueue {
  assign(context: RequesterContext): void;
  emit(intent: RequesterIntent): void;
}

/** Commits a step: the new context, then its intents in order (and, for a part, what its ensemble hears). */
function commit(enqueue: Enqueue, d: Draft): void {
  R.notifyParent(d.before, d);
  enqueue.assign(d.ctx);
  for (const i of d.out) enqueue.emit(i);
}

/** A draft at the event's time; a part keeps its allocation's status as it comes (for its ensemble). */
function step(context: RequesterContext, event: RequesterEvent): Draft {
  const d = begin(context, event);
  return event.type === 'allocation.status' && R.ownStatus(context, event) ? R.noteStatus(d, event) : d;
}

/** Any status short of the end shows the provider is still there. */
const LIVE: readonly AllocationState[] = ['pending', 'starting', 'running', 'stopping'];

export const requesterMachine = setup({
  types: {} as { context: RequesterContext; events: RequesterEvent; emitted: RequesterIntent; input: RequesterInput },
  guards: {
    due: ({ context, event }, p: { key: string }) => timerDue(context, event, p.key),
    currentRound: ({ context, event }) => event.type === 'bid.request.sent' && event.nonce === context.nonce,
    usableBid: ({ context, event }) => event.type === 'bid.submit' && R.usableBid(context, event),
    refusedBid: ({ context, event }) => event.type === 'bid.submit' && R.refusal(context, event) !== null,
    countsAsDecline: ({ context, event }) => event.type === 'bid.decline' && R.countsAsDecline(context, event),
    windowComplete: ({ context }) => R.windowComplete(context),
    isPart: ({ context }) => R.isPart(context),
    hasUsableBid: ({ context, event }) => R.nextCandidate(context, event.now) !== null,
    pastDeadline: ({ context, event }) => event.now >= (context.input.queueDeadline ?? context.input.deadline),
    hopeless: ({ context }) => R.hopeless(context),
    fromChosen: ({ context, event }) => 'from' in event && 'dealId' in event && R.fromChosen(context, event),
    sendFailed: ({ context, event }, p: { steps: readonly string[] }) =>
      event.type === 'send.failed' && p.steps.includes(event.step) && event.to === context.chosen?.provider && event.nonce === context.nonce,
    /** A status of the current allocation in one of `states`. */
    status: ({ context, event }, p: { states: readonly AllocationState[] }) => event.type === 'allocation.status' && R.ownStatus(context, event) && p.states.includes(event.state),
  },
  actions: {
    openRound: enqueueActions(({ context, event, enqueue }) => commit(enqueue, R.openRound(step(context, event)))),
    takeCandidates: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'bid.request.sent');
      commit(enqueue, step(context, event).set({ candidates: event.candidates, open: event.open === true, reach: event.reach ?? null }).record({}));
    }),
    takeBid: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'bid.submit');
      commit(enqueue, R.takeBid(step(context, event), event));
    }),
    // Only a message: the provider frees its lock at once instead of when the bid expires.
    refuseBid: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'bid.submit');
      enqueue.emit({ type: 'deal.revert.send', to: event.from, dealId: event.bid.dealId, nonce: event.bid.nonce, reason: R.refusal(context, event) ?? '' });
    }),
    takeDecline: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'bid.decline');
      commit(enqueue, R.takeDecline(step(context, event), event));
    }),
    closeWindow: enqueueActions(({ context, event, enqueue }) => commit(enqueue, R.closeWindow(step(context, event)))),
    pruneExpired: enqueueActions(({ context, event, enqueue }) => commit(enqueue, R.pruneExpired(step(context, event)))),
    scheduleRetry: enqueueActions(({ context, event, enqueue }) => commit(enqueue, R.scheduleRetry(step(context, event)))),
    forgetTimer: enqueueActions(({ context, event, enqueue }) => commit(enqueue, step(context, event).record({}))),
    noProvider: enqueueActions(({ context, event, enqueue }) => commit(enqueue, R.noProvider(step(context, event)))),
    nobodyCan: enqueueActions(({ context, event, enqueue }) => commit(enqueue, R.nobodyCan(step(context, event)))),
    commitBest: enqueueActions(({ context, event, enqueue }) => commit(enqueue, R.commitBest(step(context, event)))),
    askAllocate: enqueueActions(({ context, event, enqueue }) => commit(enqueue, R.askAllocate(step(context, event)))),
    holdPlaced: enqueueActions(({ context, event, enqueue }) => commit(enqueue, R.holdPlaced(step(context, event)))),
    takeMembers: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'part.allocate');
      commit(enqueue, step(context, event).set({ members: event.members }));
    }),
    takeAllocation: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, ['deal.allocated', 'allocation.status']);
      commit(enqueue, R.takeAllocation(step(context, event), event.allocationId));
    }),
    // A status that stands in for `deal.allocated` is then handled as the starting state handles it.
    raiseAgain: enqueueActions(({ event, enqueue }) => enqueue.raise(event)),
    startRunning: enqueueActions(({ context, event, enqueue }) => commit(enqueue, R.startRunning(step(context, event)))),
    alive: enqueueActions(({ context, event, enqueue }) => commit(enqueue, R.alive(step(context, event)))),
    touch: enqueueActions(({ context, event, enqueue }) => commit(enqueue, step(context, event).record({}))),
    takeEnd: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'allocation.status');
      commit(enqueue, R.takeEnd(step(context, event), event));
    }),
    failAttempt: enqueueActions(({ context, event, enqueue }, p: { phase: R.Phase }) =>
      commit(enqueue, R.failAttempt(step(context, event), R.whyFailed(context, event, p.phase))),
    ),
    cancelHeld: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'job.cancel');
      commit(enqueue, R.cancelHeld(step(context, event), event.replyTo));
    }),
    keepReply: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'job.cancel');
      commit(enqueue, step(context, event).set({ pendingReply: event.replyTo ?? null }));
    }),
    askCancel: enqueueActions(({ context, event, enqueue }) => commit(enqueue, R.askCancel(step(context, event)))),
    cancelEnded: enqueueActions(({ context, event, enqueue }) => commit(enqueue, R.cancelEnded(step(context, event), event))),
    end: enqueueActions(({ context, event, enqueue }, p: { state: JobState }) => commit(enqueue, R.end(step(context, event), p.state))),
    // Answers at once, changing nothing: the job is ended or already being cancelled.
    replyNow: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'job.cancel');
      if (event.replyTo) enqueue.emit({ type: 'reply.send', replyTo: event.replyTo, ok: true, value: context.record });
    }),
    // Only intents: the timers are pending already, and a repeat keeps its original time.
    rearm: enqueueActions(({ context, event, enqueue }) => {
      for (const i of R.rearm(step(context, event)).out) enqueue.emit(i);
    }),
    resend: enqueueActions(({ context, event, enqueue }, p: { step: 'commit' | 'allocate' | 'cancel' }) => {
      for (const i of R.resend(step(context, event), p.step).out) enqueue.emit(i);
    }),
    ignore: enqueueActions(({ event, enqueue }) => {
      const from = 'from' in event ? ` from ${event.from}` : '';
      enqueue.emit({ type: 'log.write', level: 'debug', message: `ignored ${event.type}${from}: not expected now`, data: { event: event as unknown as Record<string, unknown> } });
    }),
  },
}).createMachine({
  id: 'requester',
  context: ({ input }) => initialContext(input),
  initial: 'idle',
  on: {
    'bid.request.sent': [{ guard: 'currentRound', actions: 'takeCandidates' }, { actions: 'ignore' }],
    'bid.decline': [{ guard: 'countsAsDecline', actions: 'takeDecline' }, { actions: 'ignore' }],
    'bid.submit': [{ guard: 'refusedBid', actions: 'refuseBid' }, { actions: 'ignore' }],
    'deal.recovered': { actions: 'rearm' },
    'deal.committed': { actions: 'ignore' },
    'deal.allocated': { actions: 'ignore' },
    'deal.refused': { actions: 'ignore' },
    'allocation.status': { actions: 'ignore' },
    'send.failed': { actions: 'ignore' },
    'timer.fired': { actions: 'ignore' },
    'part.allocate': { actions: 'ignore' },
  },
  states: {
    idle: {
      on: {
        'deal.start': 'requesting',
        'job.cancel': { target: 'ended.cancelled', actions: 'cancelHeld' },
      },
    },
    requesting: {
      initial: 'collecting',
      on: { 'job.cancel': { target: 'ended.cancelled', actions: 'cancelHeld' } },
      states: {
        collecting: {
          entry: 'openRound',
          always: { guard: 'windowComplete', target: '#requester.choosing', actions: 'closeWindow' },
          on: {
            'bid.submit': { guard: 'usableBid', actions: 'takeBid' },
            'timer.fired': { guard: { type: 'due', params: { key: 'window' } }, target: '#requester.choosing', actions: 'closeWindow' },
          },
        },
        waiting: {
          entry: 'scheduleRetry',
          on: { 'timer.fired': { guard: { type: 'due', params: { key: 'retry' } }, target: 'collecting', actions: 'forgetTimer' } },
        },
      },
    },
    // Transient: commit to the next bid, or give up at the deadline, or wait and ask again.
    choosing: {
      entry: 'pruneExpired',
      always: [
        { guard: 'hasUsableBid', target: 'committing' },
        { guard: 'pastDeadline', target: 'ended.failed', actions: 'noProvider' },
        { guard: 'hopeless', target: 'ended.failed', actions: 'nobodyCan' },
        { target: 'requesting.waiting' },
      ],
    },
    committing: {
      entry: 'commitBest',
      on: {
        'deal.committed': [
          { guard: and(['fromChosen', 'isPart']), target: 'placed' },
          { guard: 'fromChosen', target: 'provisioning' },
        ],
        'deal.refused': { guard: 'fromChosen', target: 'choosing', actions: { type: 'failAttempt', params: { phase: 'commit' } } },
        'send.failed': { guard: { type: 'sendFailed', params: { steps: ['commit'] } }, target: 'choosing', actions: { type: 'failAttempt', params: { phase: 'commit' } } },
        'timer.fired': { guard: { type: 'due', params: { key: 'step' } }, target: 'choosing', actions: { type: 'failAttempt', params: { phase: 'commit' } } },
        'job.cancel': { target: 'ended.cancelled', actions: 'cancelHeld' },
        'deal.recovered': { actions: ['rearm', { type: 'resend', params: { step: 'commit' } }] },
      },
    },
    // a part of an ensemble, committed: held until every part is placed (part.allocate from the ensemble)
    placed: {
      entry: 'holdPlaced',
      on: {
        'part.allocate': { target: 'provisioning', actions: 'takeMembers' },
        'deal.refused': { guard: 'fromChosen', target: 'choosing', actions: { type: 'failAttempt', params: { phase: 'hold' } } },
        'timer.fired': { guard: { type: 'due', params: { key: 'step' } }, target: 'choosing', actions: { type: 'failAttempt', params: { phase: 'hold' } } },
        'job.cancel': { target: 'ended.cancelled', actions: 'cancelHeld' },
        'deal.recovered': { actions: 'rearm' },
      },
    },
    provisioning: {
      initial: 'allocating',
      on: {
        'deal.refused': { guard: 'fromChosen', target: 'choosing', actions: { type: 'failAttempt', params: { phase: 'allocate' } } },
        'send.failed': { guard: { type: 'sendFailed', params: { steps: ['allocate'] } }, target: 'choosing', actions: { type: 'failAttempt', params: { phase: 'allocate' } } },
      },
      states: {
        allocating: {
          entry: 'askAllocate',
          on: {
            'deal.allocated': { guard: 'fromChosen', target: 'starting', actions: 'takeAllocation' },
            'allocation.status': { guard: 'fromChosen', target: 'starting', actions: ['takeAllocation', 'raiseAgain'] },
            'timer.fired': { guard: { type: 'due', params: { key: 'step' } }, target: '#requester.choosing', actions: { type: 'failAttempt', params: { phase: 'allocate' } } },
            'job.cancel': { target: '#requester.ended.cancelled', actions: 'cancelHeld' },
            'deal.recovered': { actions: ['rearm', { type: 'resend', params: { step: 'allocate' } }] },
          },
        },
        starting: {
          on: {
            'allocation.status': [
              { guard: { type: 'status', params: { states: ['running'] } }, target: '#requester.running' },
              ...endOnStatus(),
              { guard: { type: 'status', params: { states: LIVE } }, actions: 'touch' },
            ],
            'timer.fired': { guard: { type: 'due', params: { key: 'step' } }, target: '#requester.choosing', actions: { type: 'failAttempt', params: { phase: 'start' } } },
            'job.cancel': { target: '#requester.cancelling', actions: 'keepReply' },
          },
        },
      },
    },
    running: {
      entry: 'startRunning',
      on: {
        // the silence while this node was down is not the provider's: it gets a full lostAfterMs from now (the
        // watch is the only timer a running job has)
        'deal.recovered': { actions: 'alive' },
        'allocation.status': [...endOnStatus(), { guard: { type: 'status', params: { states: LIVE } }, actions: 'alive' }],
        'timer.fired': { guard: { type: 'due', params: { key: 'watch' } }, target: 'choosing', actions: { type: 'failAttempt', params: { phase: 'run' } } },
        'job.cancel': { target: 'cancelling', actions: 'keepReply' },
      },
    },
    cancelling: {
      entry: 'askCancel',
      on: {
        'allocation.status': { guard: { type: 'status', params: { states: ALLOCATION_TERMINAL } }, target: 'ended.cancelled', actions: 'cancelEnded' },
        'timer.fired': { guard: { type: 'due', params: { key: 'cancel' } }, target: 'ended.cancelled', actions: 'cancelEnded' },
        'send.failed': { guard: { type: 'sendFailed', params: { steps: ['cancel'] } }, target: 'ended.cancelled', actions: 'cancelEnded' },
        'job.cancel': { actions: 'replyNow' },
        'deal.recovered': { actions: ['rearm', { type: 'resend', params: { step: 'cancel' } }] },
      },
    },
    ended: {
      // always entered by an explicit target; xstate wants an initial state anyway
      initial: 'completed',
      on: {
        'job.cancel': { actions: 'replyNow' },
        'bid.request.sent': { actions: 'ignore' },
        'bid.decline': { actions: 'ignore' },
      },
      states: {
        completed: { type: 'final', entry: { type: 'end', params: { state: 'completed' } } },
        failed: { type: 'final', entry: { type: 'end', params: { state: 'failed' } } },
        cancelled: { type: 'final', entry: { type: 'end', params: { state: 'cancelled' } } },
      },
    },
  },
});

/** A terminal status of the current allocation ends the job (also while it was still starting). */
function endOnStatus() {
  return [
    { guard: { type: 'status', params: { states: ['completed'] } }, target: '#requester.ended.completed', actions: 'takeEnd' },
    { guard: { type: 'status', params: { states: ['failed', 'terminated'] } }, target: '#requester.ended.failed', actions: 'takeEnd' },
  ] as const;
}

export type RequesterMachine = typeof requesterMachine;
