/** What the node trusts and holds (anchors, capability tokens, revocations) as a hosted actor kind. */
import { TRUST_MACHINE_VERSION, trustMachine } from '../machines/trust.machine.ts';
import type { ActorKind } from './hosted-actor.ts';

export const trustActorKind: ActorKind = {
  kind: 'trust',
  version: TRUST_MACHINE_VERSION,
  logic: trustMachine,
};
