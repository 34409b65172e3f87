/** Every actor kind this build can host, by name: the worker and the replay tool look kinds up here. */
import { allocationActorKind } from './allocation.actor.ts';
import { ensembleActorKind } from './ensemble.actor.ts';
import { arrayActorKind } from './array.actor.ts';
import { batchActorKind } from './batch.actor.ts';
import { type ActorKind, UnknownActorKindError } from './hosted-actor.ts';
import { nodeActorKind } from './node.actor.ts';
import { providerActorKind } from './provider.actor.ts';
import { requesterActorKind } from './requester.actor.ts';
import { trustActorKind } from './trust.actor.ts';

export const ACTOR_KINDS: ReadonlyMap<string, ActorKind> = new Map(
  [nodeActorKind, requesterActorKind, providerActorKind, allocationActorKind, ensembleActorKind, arrayActorKind, batchActorKind, trustActorKind].map((k) => [k.kind, k]),
);

export function actorKind(name: string): ActorKind {
  const k = ACTOR_KINDS.get(name);
  if (!k) throw new UnknownActorKindError(name);
  return k;
}
