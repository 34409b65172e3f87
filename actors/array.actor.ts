/** An array job on the requester (`job/<id>`, kind `array`) as a hosted actor kind; clients see its record. */
import { ARRAY_MACHINE_VERSION, type ArrayContext, arrayMachine } from '../machines/array.machine.ts';
import type { ActorKind } from './hosted-actor.ts';

export const arrayActorKind: ActorKind = {
  kind: 'array',
  version: ARRAY_MACHINE_VERSION,
  logic: arrayMachine,
  present: (c) => (c as ArrayContext).record,
};
