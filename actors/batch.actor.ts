/** An array job's allocation on the provider as a hosted actor kind; clients see its record (AllocationRecordView). */
import { BATCH_MACHINE_VERSION, type BatchContext, batchMachine } from '../machines/batch.machine.ts';
import type { ActorKind } from './hosted-actor.ts';

export const batchActorKind: ActorKind = {
  kind: 'batch',
  version: BATCH_MACHINE_VERSION,
  logic: batchMachine,
  present: (c) => (c as BatchContext).record,
};
