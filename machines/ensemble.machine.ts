/**
 * The ensemble (actor `ensemble/<id>`, on the requester): the supervisor of its parts' negotiations. It starts one
 * negotiation per part, lets them allocate only once every part is placed (all or nothing: a part that can never
 * be placed fails the ensemble and every other part lets its provider go), starts a part held for its
 * dependencies once each of them runs and passes its health check (telling its provider where their ports are),
 * counts restarts and moves against `maxRestarts`, and ends: completed when every task completed and its services
 * were stopped at the ensemble's timeout, failed when a part failed for good, cancelled on `cancel`. Pure: time
 * comes in on events, effects leave as intents (ensemble.messages.ts).
 */
import { assertEvent, enqueueActions, setup } from 'xstate';
import { type EnsembleContext, type EnsembleDraft, beginEnsemble, ensembleTimers, initialEnsemble } from './ensemble.context.ts';
import type { EnsembleEvent, EnsembleInput, EnsembleIntent, EnsembleState } from './ensemble.messages.ts';
import * as E from './ensemble.steps.ts';

export type { EnsembleContext } from './ensemble.context.ts';

/** Bumped whenever the context shape changes, so an old snapshot is refused instead of misread. */
export const ENSEMBLE_MACHINE_VERSION = 1;

const timers = ensembleTimers;

interface Enqueue {
  assign(context: EnsembleContext): void;
  emit(intent: EnsembleIntent): void;
}

function commit(enqueue: Enqueue, d: EnsembleDraft): void {
  enqueue.assign(d.ctx);
  for (const i of d.out) enqueue.emit(i);
}

export const ensembleMachine = setup({
  types: {} as { context: EnsembleContext; events: EnsembleEvent; emitted: EnsembleIntent; input: EnsembleInput },
  guards: {
    due: ({ context, event }, p: { key: string }) => timers.due(context.timers, event, p.key),
    failedForGood: ({ context }) => context.failure !== null,
    allEnded: ({ context }) => E.allEnded(context),
    allTasksDoneNoService: ({ context }) => E.allTasksDoneNoService(context),
  },
  actions: {
    spawnParts: enqueueActions(({ context, event, enqueue }) => commit(enqueue, E.spawnParts(beginEnsemble(context, event)))),
    takeUpdate: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'part.update');
      commit(enqueue, E.takeUpdate(beginEnsemble(context, event), event.update));
    }),
    stopAll: enqueueActions(({ context, event, enqueue }, p: { state: EnsembleState; why?: string }) => {
      const replyTo = event.type === 'job.cancel' ? event.replyTo : undefined;
      commit(enqueue, E.stopAll(beginEnsemble(context, event), p.state, p.why ?? null, replyTo));
    }),
    replyNow: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'job.cancel');
      if (event.replyTo) enqueue.emit({ type: 'reply.send', replyTo: event.replyTo, ok: true, value: context.record });
    }),
    rearm: enqueueActions(({ context, enqueue }) => {
      for (const i of timers.rearm(context.timers)) enqueue.emit(i);
    }),
    recoverStopping: enqueueActions(({ context, event, enqueue }) => commit(enqueue, E.recoverStopping(beginEnsemble(context, event)))),
  },
}).createMachine({
  id: 'ensemble',
  context: ({ input }) => initialEnsemble(input),
  initial: 'idle',
  on: {
    'deal.recovered': { actions: 'rearm' },
  },
  states: {
    idle: {
      on: {
        'deal.start': { target: 'live', actions: 'spawnParts' },
        'job.cancel': { target: 'ended', actions: { type: 'stopAll', params: { state: 'cancelled' } } },
      },
    },
    // placing, starting and running: what the parts report decides (ensemble.steps.ts)
    live: {
      always: [
        { guard: 'failedForGood', target: 'stopping' },
        { guard: 'allTasksDoneNoService', target: 'stopping' },
      ],
      on: {
        'part.update': { actions: 'takeUpdate' },
        'job.cancel': { target: 'stopping', actions: { type: 'stopAll', params: { state: 'cancelled' } } },
        'timer.fired': [
          { guard: { type: 'due', params: { key: 'life' } }, target: 'stopping', actions: { type: 'stopAll', params: { state: 'completed', why: 'its timeout was reached: its services were stopped' } } },
          { guard: { type: 'due', params: { key: 'placement' } }, target: 'stopping', actions: { type: 'stopAll', params: { state: 'failed', why: 'not every part was placed before the deadline' } } },
        ],
      },
    },
    stopping: {
      entry: enqueueActions(({ context, event, enqueue }) => commit(enqueue, E.enterStopping(beginEnsemble(context, event)))),
      always: [
        { guard: 'allEnded', target: 'ended' },
      ],
      on: {
        'part.update': { actions: 'takeUpdate' },
        // a cancel while stopping for another reason is answered when the ensemble ends
        'job.cancel': { actions: 'replyNow' },
        'deal.recovered': { actions: 'recoverStopping' },
        'timer.fired': { guard: { type: 'due', params: { key: 'stop' } }, target: 'ended' },
      },
    },
    // the final state sits inside `ended`, so an ended ensemble still answers `job.cancel`
    ended: {
      entry: enqueueActions(({ context, event, enqueue }) => commit(enqueue, E.end(beginEnsemble(context, event), context.outcome ?? 'completed'))),
      initial: 'done',
      on: {
        'job.cancel': { actions: 'replyNow' },
      },
      states: { done: { type: 'final' } },
    },
  },
});

export type EnsembleMachine = typeof ensembleMachine;
