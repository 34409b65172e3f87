/**
 * The ensemble as a hosted actor kind (`ensemble/<id>`, on the requester). What clients see of it is its record (the
 * parts and their states); its effects are intents (machines/ensemble.messages.ts) that the runtime carries out.
 */
import { ENSEMBLE_MACHINE_VERSION, type EnsembleContext, ensembleMachine } from '../machines/ensemble.machine.ts';
import type { ActorKind } from './hosted-actor.ts';

export const ensembleActorKind: ActorKind = {
  kind: 'ensemble',
  version: ENSEMBLE_MACHINE_VERSION,
  logic: ensembleMachine,
  present: (context) => (context as EnsembleContext).record,
};
