/**
 * The requester negotiation as a hosted actor kind (`job/<dealId>`). What clients see of it is the job's record;
 * its effects are intents (machines/requester.messages.ts) that the runtime carries out.
 */
import { REQUESTER_MACHINE_VERSION, type RequesterContext, requesterMachine } from '../machines/requester.machine.ts';
import { requesterFacts } from '../machines/deal-facts.ts';
import type { ActorKind } from './hosted-actor.ts';

export const requesterActorKind: ActorKind = {
  kind: 'requester',
  version: REQUESTER_MACHINE_VERSION,
  logic: requesterMachine,
  present: (context) => (context as RequesterContext).record,
  facts: (before, after) => requesterFacts(before as RequesterContext, after as RequesterContext),
};
