/** The provider's side of one deal as a hosted actor kind; clients see its record. */
import { PROVIDER_MACHINE_VERSION, type ProviderContext, providerMachine } from '../machines/provider.machine.ts';
import { providerFacts } from '../machines/deal-facts.ts';
import type { ActorKind } from './hosted-actor.ts';

export const providerActorKind: ActorKind = {
  kind: 'provider',
  version: PROVIDER_MACHINE_VERSION,
  logic: providerMachine,
  present: (c) => (c as ProviderContext).record,
  facts: (before, after) => providerFacts(before as ProviderContext, after as ProviderContext),
};
