/** One running job on the provider as a hosted actor kind; clients see its record (AllocationRecordView). */
import { ALLOCATION_MACHINE_VERSION, type AllocationContext, allocationMachine } from '../machines/allocation.machine.ts';
import type { ActorKind } from './hosted-actor.ts';

export const allocationActorKind: ActorKind = {
  kind: 'allocation',
  version: ALLOCATION_MACHINE_VERSION,
  logic: allocationMachine,
  present: (c) => (c as AllocationContext).record,
};
