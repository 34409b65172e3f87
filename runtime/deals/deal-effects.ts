/**
 * The effects of the deal actors' intents (and of the Node's two deal intents): messages to peers, timers,
 * the ledger, spawning the provider and allocation actors, and running jobs through the executors. The supervisor
 * hands over intents of live events only, never of replayed ones.
 */
import { requirementsOf } from '../../machines/job.ts';
import type { AllocationIntent, AllocationRecordView } from '../../machines/allocation.messages.ts';
import type { NodeDealIntent } from '../../machines/bidding.messages.ts';
import { ALLOCATION_TERMINAL } from '../../machines/deal.constants.ts';
import { allocationActorId, providerActorId } from '../../machines/deal.ids.ts';
import type { ProviderIntent } from '../../machines/provider.messages.ts';
import type { RequesterIntent } from '../../machines/requester.messages.ts';
import type { EnsembleIntent } from '../../machines/ensemble.messages.ts';
import type { ArrayIntent } from '../../machines/array.rules.ts';
import type { BatchIntent } from '../../machines/batch.machine.ts';
import type { DealService } from './deal-service.ts';
import { handleEnsembleIntent, notifyEnsemble } from './ensembles.ts';
import { MAX_REPLY_ADDRS } from './deal-schemas.ts';
import { partsOf } from './part-registry.ts';
import type { Reach } from '../net/network-service.ts';

type DealIntent = RequesterIntent | ProviderIntent | AllocationIntent | NodeDealIntent | ArrayIntent | BatchIntent;

/** Carries out intents of the deal actor `actorId`. */
export function handleDealIntents(svc: DealService, actorId: string, intents: readonly unknown[]): void {
  for (const i of intents) {
    try {
      const intent = i as DealIntent | EnsembleIntent;
      if (handleShared(svc, actorId, intent)) continue;
      if (actorId.startsWith('ensemble/')) handleEnsembleIntent(svc, actorId, intent as Exclude<EnsembleIntent, SharedIntent>);
      else handle(svc, actorId, intent as Exclude<DealIntent, SharedIntent>);
    } catch (e) {
      svc.deps.log.error({ actor: actorId, intent: (i as { type?: string }).type, err: (e as Error).message }, 'a deal intent failed');
    }
  }
}

/** The intents every deal actor kind emits alike. */
type SharedIntent = Extract<DealIntent | EnsembleIntent, { type: 'timer.schedule' | 'timer.cancel' | 'log.write' | 'reply.send' }>;

/** Timers, logs and replies, for any deal actor kind; false for an intent of the kind's own. */
function handleShared(svc: DealService, actorId: string, intent: DealIntent | EnsembleIntent): boolean {
  switch (intent.type) {
    case 'timer.schedule':
      svc.timers.schedule(actorId, intent.key, intent.at);
      return true;
    case 'timer.cancel':
      svc.timers.cancel(actorId, intent.key);
      return true;
    case 'log.write':
      svc.deps.log[intent.level]({ actor: actorId, ...(intent.data ?? {}) }, intent.message);
      return true;
    case 'reply.send':
      return true; // answered by the supervisor's ask()
    default:
      return false;
  }
}

function handle(svc: DealService, actorId: string, intent: Exclude<DealIntent, SharedIntent>): void {
  const { log } = svc.deps;
  switch (intent.type) {
    // ---- requester ----
    case 'bid.request.send':
      return void requestBids(svc, actorId, intent);
    case 'deal.commit.send':
      return void sendOrFail(svc, actorId, intent.to, 'deal.commit', { dealId: intent.dealId, nonce: intent.nonce }, 'commit', intent.nonce);
    case 'deal.allocate.send':
      return void sendAllocate(svc, actorId, intent);
    case 'deal.revert.send':
      return void svc.sendTo(intent.to, 'provider', 'deal.revert', { dealId: intent.dealId, nonce: intent.nonce, reason: intent.reason });
    case 'deal.cancel.send':
      return void sendOrFail(svc, actorId, intent.to, 'deal.cancel', { dealId: intent.dealId, nonce: intent.nonce }, 'cancel', intent.nonce);
    // ---- array jobs: requester ----
    case 'batch.assign.send':
      return void svc.sendTo(intent.to, 'provider', 'batch.assign', { dealId: intent.dealId, nonce: intent.nonce, indexes: intent.indexes });
    case 'batch.release.send':
      return void svc.sendTo(intent.to, 'provider', 'batch.release', { dealId: intent.dealId, nonce: intent.nonce });
    // ---- array jobs: provider ----
    case 'instance.run':
      return void svc.batchRuns.run(intent.allocationId, intent.requester, intent.index, intent.job, intent.slots, (e) => svc.deliver(actorId, e));
    case 'instance.cancel':
      return svc.batchRuns.cancel(intent.allocationId, intent.index);
    case 'batch.progress.send':
      return void svc.sendTo(intent.to, 'requester', 'batch.progress', { dealId: intent.dealId, nonce: intent.nonce, allocationId: intent.allocationId, results: intent.results, running: intent.running });
    case 'parent.notify':
      return notifyEnsemble(svc, intent.to, intent.update);
    case 'job.ended':
      log.info({ job: intent.record.id, state: intent.record.state, exitCode: intent.record.exitCode }, `job ${intent.record.id} ${intent.record.state}`);
      svc.requests.close(intent.record.id);
      return void svc.retire(actorId, intent.record).catch((e: Error) => failed(svc, actorId, 'save the job\'s record', e));
    // ---- node ----
    case 'bid.open':
      // the bid leaves at once (the lock is taken); the provider negotiation takes over as soon as it runs
      svc.gate.noteBid();
      svc.provisions.open(intent.input);
      // WASM jobs (not ensemble parts) run in warm runners: the pool starts its spare now, not when the job runs
      if (intent.input.job.executor === 'wasm' && !intent.input.job.part) svc.batchRuns.warm();
      void svc.spawn(providerActorId(intent.input.key), 'provider', intent.input, { type: 'provider.start', now: svc.now(), bidSent: true });
      return void svc.sendTo(intent.input.requester, 'requester', 'bid.submit', { bid: intent.input.bid });
    case 'bid.decline.send':
      svc.gate.noteDecline(intent.to, intent.code, intent.reason, svc.now());
      // a refusal of a request relayed from a requester this node is not connected to: it is no candidate
      if (intent.quiet) return;
      return void svc.sendTo(intent.to, 'requester', 'bid.decline', { dealId: intent.dealId, nonce: intent.nonce, code: intent.code, reason: intent.reason });
    // ---- provider ----
    case 'bid.submit.send':
      return void svc.sendTo(intent.to, 'requester', 'bid.submit', { bid: intent.bid });
    case 'deal.committed.send':
      return void svc.sendTo(intent.to, 'requester', 'deal.committed', { dealId: intent.dealId, nonce: intent.nonce });
    case 'deal.allocated.send':
      return void svc.sendTo(intent.to, 'requester', 'deal.allocated', { dealId: intent.dealId, nonce: intent.nonce, allocationId: intent.allocationId });
    case 'deal.refused.send':
      return void svc.sendTo(intent.to, 'requester', 'deal.refused', { dealId: intent.dealId, nonce: intent.nonce, step: intent.step, reason: intent.reason });
    case 'ledger.allocate.request':
      return void askLedger(svc, actorId, intent.allocationId, intent.lockId);
    case 'ledger.unlock':
      return svc.deps.ledger.unlock(intent.lockId);
    case 'allocation.spawn':
      // an array job's allocation runs its instances (each with an output of its own)
      if (intent.input.slots !== undefined) return void svc.spawn(allocationActorId(intent.input.allocationId), 'batch', intent.input, { type: 'allocation.start', now: svc.now() });
      void svc.output.create(intent.input.allocationId).catch((e: Error) => log.error({ actor: actorId, err: e.message }, 'could not create the job\'s output file'));
      return void svc.spawn(allocationActorId(intent.input.allocationId), 'allocation', intent.input, { type: 'allocation.start', now: svc.now() });
    case 'allocation.cancel':
      return void svc.deliver(allocationActorId(intent.allocationId), { type: 'allocation.cancel', now: svc.now() });
    case 'provider.ended':
      svc.provisions.close(intent.record.key);
      return void svc.retire(actorId, intent.record).catch((e: Error) => failed(svc, actorId, 'save the deal\'s record', e));
    // ---- allocation ----
    case 'execution.start':
      // a part is live from its start: its ports may be tunnelled to (a restart stops the previous execution first)
      partsOf(svc).started(intent.allocationId, intent.job, intent.env);
      return void svc.executions.run(intent.allocationId, intent.job, (e) => svc.deliver(actorId, e), intent.env).catch((e: Error) => failed(svc, actorId, 'start the job', e));
    case 'execution.cancel':
      // asked before the job has started: it is cancelled the moment it has
      return svc.executions.cancel(intent.allocationId);
    case 'health.check':
      // never rejects: a probe that fails to run is a failed check
      return void svc.executions.check(intent.target, intent.timeoutMs, intent.env, (e) => svc.deliver(actorId, e)).catch((e: Error) => failed(svc, actorId, 'run the health check', e));
    case 'status.push':
      svc.heartbeat.note(intent.to, intent.status, ALLOCATION_TERMINAL.includes(intent.status.state));
      return void svc.sendTo(intent.to, 'requester', 'allocation.status', intent.status);
    case 'ledger.release':
      return svc.deps.ledger.release(intent.allocationId);
    case 'allocation.ended':
      // a part's tunnel listeners close with it, and it takes no more tunnels
      void partsOf(svc).end(intent.record.allocationId);
      return void allocationEnded(svc, actorId, intent.record).catch((e: Error) => failed(svc, actorId, 'save the allocation\'s record', e));
    default: {
      const never: never = intent;
      log.warn({ actor: actorId, intent: never }, 'unknown deal intent');
    }
  }
}

/** An effect that failed: said loudly (the actor's state stays as its log has it; a restart retries the ending). */
function failed(svc: DealService, actorId: string, what: string, e: Error): void {
  svc.deps.log.error({ actor: actorId, err: e.message }, `could not ${what} for ${actorId}: ${e.message}`);
}


async function requestBids(svc: DealService, actorId: string, intent: Extract<RequesterIntent | ArrayIntent, { type: 'bid.request.send' }>): Promise<void> {
  const net = svc.deps.net();
  const { job, dealId, nonce, expiresAt } = intent;
  // what providers decide on; the args and env go to the chosen one with the allocate; the tokens this node holds
  // for deploy, for providers that serve only requesters with a grant
  const count = 'count' in intent && intent.count !== undefined ? { count: intent.count } : {};
  const payload = { dealId, nonce, job: requirementsOf(job), expiresAt, ...count, ...svc.grants.tokens() };
  const excluded = new Set(job.constraints.excludePeers);
  let candidates: string[] = [];
  // how far a broadcast went; a request sent straight to the job's peers reached exactly the candidates
  let reach: Reach | undefined;
  let open = false;
  if (net && job.constraints.peers.length > 0) {
    // this node never bids on its own request (scenario 1): it is no candidate
    const peers = job.constraints.peers.filter((p) => p !== svc.deps.self && !excluded.has(p));
    const sent = await Promise.all(peers.map(async (p) => ((await svc.sendTo(p, 'node', 'bid.request', payload)) ? p : null)));
    candidates = sent.filter((p): p is string => p !== null);
  } else if (net) {
    reach = net.reach();
    // excluded neighbours still relay it: the request goes out even when none of them may bid
    if (reach.connected > 0) {
      // the peers the broadcast reaches directly: a connected peer not subscribed to the topic cannot answer it
      candidates = net.hearers().filter((p) => p !== svc.deps.self && !excluded.has(p));
      try {
        // the addresses let a provider that is not our neighbour (reached through the mesh) answer directly
        const replyAddrs = net.listen().slice(0, MAX_REPLY_ADDRS);
        await net.router.broadcast('node', 'bid.request', { ...payload, replyAddrs }, { from: 'requester', ttlMs: Math.max(1000, expiresAt - svc.now()) });
        open = reach.beyond > 0;
      } catch (e) {
        svc.deps.log.warn({ job: dealId, err: (e as Error).message }, 'could not broadcast the bid request');
        candidates = [];
      }
    }
  }
  svc.requests.asked(dealId, candidates, open);
  const sentReach = reach ? { reach: { connected: reach.connected, subscribed: reach.subscribed } } : {};
  svc.deliver(actorId, { type: 'bid.request.sent', nonce, candidates, open, ...sentReach, now: svc.now() });
}

async function sendOrFail(svc: DealService, actorId: string, to: string, type: string, payload: unknown, step: 'commit' | 'allocate' | 'cancel', nonce: number): Promise<void> {
  if (await svc.sendTo(to, 'provider', type, payload)) return;
  svc.deliver(actorId, { type: 'send.failed', to, nonce, step, reason: `could not reach ${to}`, now: svc.now() });
}

async function sendAllocate(svc: DealService, actorId: string, intent: Extract<RequesterIntent | ArrayIntent, { type: 'deal.allocate.send' }>): Promise<void> {
  const job = svc.requests.spec(intent.dealId);
  let module: Uint8Array | undefined;
  if (job?.executor === 'wasm') {
    try {
      module = await svc.modules.get(job.wasm.module.sha256);
    } catch (e) {
      svc.deps.log.error({ job: intent.dealId, err: (e as Error).message }, 'the job\'s module is gone from the module store');
    }
  }
  // the bid request carried the job without its args and env: the chosen provider gets them now
  const whole = job && requirementsOf(job) !== job ? { job } : {};
  const members = 'members' in intent && intent.members ? { members: intent.members } : {};
  const assign = 'assign' in intent ? { assign: intent.assign } : {};
  await sendOrFail(svc, actorId, intent.to, 'deal.allocate', { dealId: intent.dealId, nonce: intent.nonce, ...whole, ...members, ...assign, ...(module ? { module } : {}) }, 'allocate', intent.nonce);
}

async function askLedger(svc: DealService, actorId: string, allocationId: string, lockId: string): Promise<void> {
  let r: { ok: boolean; code?: string; message?: string };
  try {
    r = await svc.deps.ledger.allocate(allocationId, lockId);
  } catch (e) {
    r = { ok: false, message: (e as Error).message };
    // no answer (a timeout): the Node may still make the allocation; a release queued behind it undoes that
    svc.deps.ledger.release(allocationId);
  }
  // asked again after a restart: the first answer already made the allocation
  const ok = r.ok || r.code === 'duplicate';
  svc.deliver(actorId, { type: 'ledger.allocated', ok, ...(ok ? {} : { reason: r.message ?? 'the ledger refused' }), now: svc.now() });
}

async function allocationEnded(svc: DealService, actorId: string, record: AllocationRecordView): Promise<void> {
  svc.heartbeat.forget(record.allocationId);
  svc.batchRuns.ended(record.allocationId);
  svc.deps.log.info({ allocation: record.allocationId, state: record.state, exitCode: record.exitCode }, `allocation ${record.allocationId} ${record.state}`);
  const provider = providerActorId(record.allocationId);
  svc.deliver(provider, { type: 'allocation.ended', allocationId: record.allocationId, state: record.state, now: svc.now() });
  await svc.retire(actorId, record);
}

