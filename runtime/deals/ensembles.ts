/**
 * Ensembles on the requester: deploying one (its ensemble actor, `ensemble/<id>`), and the effects of the ensemble
 * actor's intents: a negotiation per part (`job/<id>@<part>`, the ensemble its parent), the go to allocate once all
 * are placed, `part.start` to a held part's provider, stopping parts, and the ensemble's end.
 */
import { randomBytes } from 'node:crypto';
import { requesterActorId } from '../../machines/deal.ids.ts';
import type { EnsembleEvent, EnsembleInput, EnsembleIntent, EnsembleRecord } from '../../machines/ensemble.messages.ts';
import { validateEnsemble } from '../../machines/ensemble.rules.ts';
import type { EnsembleSpec } from '../../machines/ensemble.ts';
import { createJobId, describeJobProblems } from '../../machines/job.ts';
import type { PartUpdate, RequesterInput } from '../../machines/requester.messages.ts';
import { DeployError } from './deal-errors.ts';
import { MAX_DEAL_MODULE_BYTES } from './deal-schemas.ts';
import type { DealService } from './deal-service.ts';

export const ensembleActorId = (id: string) => `ensemble/${id}`;

/** Starts an ensemble; resolves with its first record. `modules`: the WASM parts' module bytes by sha256. */
export async function deployEnsemble(svc: DealService, spec: EnsembleSpec, modules: ReadonlyMap<string, Uint8Array>): Promise<EnsembleRecord> {
  const problems = validateEnsemble(spec);
  if (problems.length > 0) throw new DeployError(describeJobProblems(problems));
  for (const part of spec.parts) {
    if (part.executor !== 'wasm') continue;
    const { sha256, size } = part.wasm.module;
    const bytes = modules.get(sha256);
    const field = `allocations.${part.name}.wasm.module`;
    if (!bytes) throw new DeployError(`${field}: the deploy carries no module with sha256 ${sha256}`);
    if (bytes.byteLength > MAX_DEAL_MODULE_BYTES) throw new DeployError(`${field}: the module is ${bytes.byteLength} bytes; a deal carries at most ${MAX_DEAL_MODULE_BYTES} bytes`);
    if (bytes.byteLength !== size) throw new DeployError(`${field}: the module is ${bytes.byteLength} bytes, the part says ${size}`);
    try {
      await svc.modules.put(sha256, bytes);
    } catch (e) {
      throw new DeployError(`${field}: ${(e as Error).message}`);
    }
  }
  const now = svc.now();
  const ensembleId = createJobId(randomBytes(16));
  const input: EnsembleInput = { ensembleId, spec, self: svc.deps.self, createdAt: now, deadline: now + svc.init.placementMs };
  const ref = await svc.spawn(ensembleActorId(ensembleId), 'ensemble', input, { type: 'deal.start', now });
  if (!ref) throw new Error("the ensemble's actor could not be started; see the node's log");
  return (await ref.view()).context as EnsembleRecord;
}

/** Carries out one intent of the ensemble actor `actorId` (its timers, logs and replies are deal-effects.ts's). */
export function handleEnsembleIntent(svc: DealService, actorId: string, intent: Exclude<EnsembleIntent, { type: 'timer.schedule' | 'timer.cancel' | 'log.write' | 'reply.send' }>): void {
  const { log } = svc.deps;
  switch (intent.type) {
    case 'parts.spawn':
      return void spawnParts(svc, actorId, intent.parts).catch((e: Error) => log.error({ actor: actorId, err: e.message }, `could not start the parts of ${actorId}: ${e.message}`));
    case 'part.allocate':
      svc.deliver(requesterActorId(intent.dealId), { type: 'part.allocate', members: intent.members, now: svc.now() });
      return;
    case 'part.start.send':
      return void svc.sendTo(intent.to, 'provider', 'part.start', { dealId: intent.dealId, nonce: intent.nonce, addrs: intent.addrs, members: intent.members });
    case 'part.cancel':
      svc.deliver(requesterActorId(intent.dealId), { type: 'job.cancel', now: svc.now() });
      return;
    case 'ensemble.ended':
      log.info({ ensemble: intent.record.id, state: intent.record.state }, `ensemble ${intent.record.id} ${intent.record.state}: ${intent.record.message}`);
      return void svc.retire(actorId, intent.record).catch((e: Error) => log.error({ actor: actorId, err: e.message }, `could not save the record of ${actorId}: ${e.message}`));
    default: {
      const never: never = intent;
      log.warn({ actor: actorId, intent: never }, 'unknown ensemble intent');
    }
  }
}

async function spawnParts(svc: DealService, parent: string, parts: Extract<EnsembleIntent, { type: 'parts.spawn' }>['parts']): Promise<void> {
  const prefs = await svc.deps.preferences();
  const now = svc.now();
  for (const [spread, p] of parts.entries()) {
    // as for a job of its own: placement, then its whole life (the ensemble's), so a part can move while it runs;
    // the ensemble's own placement timer bounds the first placement
    const deadline = now + svc.init.placementMs + p.job.timeoutMs;
    const input: RequesterInput = { dealId: p.dealId, job: p.job, self: svc.deps.self, createdAt: now, deadline, weights: prefs.requester.weights, timing: svc.init.timing, parent, spread };
    svc.requests.open(p.dealId, p.job);
    await svc.spawn(requesterActorId(p.dealId), 'requester', input, { type: 'deal.start', now });
  }
}

/** A part's negotiation changed: its ensemble hears it. */
export function notifyEnsemble(svc: DealService, to: string, update: PartUpdate): void {
  const event: EnsembleEvent = { type: 'part.update', update, now: svc.now() };
  svc.deliver(to, event);
}
