/**
 * Ensembles in the simulator: what the real runtime does for the `ensemble` actor on the requester and for its
 * parts (requester actors with `input.parent`, allocations whose job has `part`), played against the simulated
 * clock and network. The ensemble's intents mirror runtime/deals/ensembles.ts (parts.spawn, part.allocate,
 * part.start.send, part.cancel, ensemble.ended, and the parts' parent.notify), a part's health check is answered as
 * the executions' check is (deal-effects.ts `health.check`), the provider inbox's `part.start` mirrors
 * deal-inboxes.ts `startPart` (tunnel listeners stand in as addresses), and a restart settles an ensemble actor as
 * deal-recovery.ts does. Also the ensemble workload of the `ensemble` scenario, and its crashes of providers that
 * run parts.
 */
import { DEAL_DEFAULTS } from '../../machines/deal.constants.ts';
import { allocationActorId, dealKey, requesterActorId } from '../../machines/deal.ids.ts';
import type { PartAddress } from '../../machines/deal.wire.ts';
import type { EnsembleRecord } from '../../machines/ensemble.messages.ts';
import { type EnsemblePart, type EnsembleSpec, type RecoveryStrategy, addrEnvName } from '../../machines/ensemble.ts';
import type { JobSpec } from '../../machines/job.ts';
import { DEFAULT_PREFERENCES } from '../../machines/preferences.ts';
import type { RequesterInput } from '../../machines/requester.messages.ts';
import { DEFAULT_MAX_RESTARTS } from '../../machines/restart-policy.ts';
import { type Random, hashText } from './random.ts';
import type { Intent, SimNode } from './sim-node.ts';
import type { SimWorld } from './world.ts';

/** How long a health check's probe takes. */
const CHECK_MS = 2;

/** The effect of an ensemble actor's or a part's intent (ensembles.ts, deal-effects.ts); false for one not theirs. */
export function ensembleEffect(node: SimNode, actorId: string, i: Intent): boolean {
  const now = node.sim.now();
  switch (i.type) {
    case 'parts.spawn': {
      // as for a job of its own: placement, then its whole life; each part's place among them spreads the parts
      const parts = i.parts as readonly { name: string; dealId: string; job: JobSpec }[];
      for (const [spread, p] of parts.entries()) {
        const input: RequesterInput = { dealId: p.dealId, job: p.job, self: node.id, createdAt: now, deadline: now + DEAL_DEFAULTS.placementMs + p.job.timeoutMs, weights: DEFAULT_PREFERENCES.requester.weights, timing: DEAL_DEFAULTS.requester, parent: actorId, spread };
        const id = requesterActorId(p.dealId);
        if (node.spawn(id, 'requester', input)) node.deliver(id, { type: 'deal.start', now });
      }
      return true;
    }
    case 'part.allocate':
      node.deliver(requesterActorId(i.dealId as string), { type: 'part.allocate', members: i.members, now });
      return true;
    case 'part.start.send':
      node.sendTo(i.to as string, 'provider', 'part.start', { dealId: i.dealId, nonce: i.nonce, addrs: i.addrs, members: i.members });
      return true;
    case 'part.cancel':
      node.deliver(requesterActorId(i.dealId as string), { type: 'job.cancel', now });
      return true;
    case 'ensemble.ended':
      node.retire(actorId, i.record);
      return true;
    // ---- a part's negotiation tells its ensemble ----
    case 'parent.notify':
      node.deliver(i.to as string, { type: 'part.update', update: i.update, now });
      return true;
    // ---- a part's allocation: one health check, answered by whether its process runs and answers ----
    case 'health.check': {
      const allocationId = i.allocationId as string;
      const dealId = (node.actors.get(actorId)?.log.input as { dealId?: string } | undefined)?.dealId ?? '';
      const gen = node.generation;
      node.sim.at(now + CHECK_MS, () => {
        if (gen !== node.generation) return;
        const ok = node.executing(allocationId) && node.sim.healthy(dealId);
        node.deliver(actorId, { type: 'health.result', ok, output: ok ? 'HTTP 200' : 'connection refused', ms: CHECK_MS, now: node.sim.now() });
      });
      return true;
    }
    default:
      return false;
  }
}

/**
 * The provider inbox's `part.start` (deal-inboxes.ts `startPart`): keyed by the sender; for a part's allocation
 * here, an address for each port of each part it depends on (a tunnel listener's, stable for the same allocation,
 * part and port, as kept listeners are), then `part.start` to the allocation. False for other types.
 */
export function routePartStart(node: SimNode, from: string, type: string, payload: Record<string, unknown>): boolean {
  if (type !== 'part.start') return false;
  const key = dealKey(payload.dealId as string, payload.nonce as number, from);
  const id = allocationActorId(key);
  node.takeLater(id, () => {
    const role = (node.actors.get(id)?.log.input as { job?: JobSpec } | undefined)?.job?.part;
    if (!role) return null;
    // an address only for a port of a part this one depends on, once each
    const deps = new Set(role.dependsOn);
    const addrsEnv: Record<string, string> = {};
    for (const a of payload.addrs as readonly PartAddress[]) {
      const name = addrEnvName(a.part, a.port);
      if (!deps.has(a.part) || name in addrsEnv) continue;
      addrsEnv[name] = `127.0.0.1:${20_000 + (hashText(`${key}|${a.part}|${a.port}`) % 40_000)}`;
    }
    return { type: 'part.start', addrsEnv, now: node.sim.now() };
  });
  return true;
}

/** A restarted node's ensemble actor (deal-recovery.ts): an ended one retires; the others are told, and one never started starts. */
export function recoverEnsemble(node: SimNode, id: string, rec: EnsembleRecord, now: number): void {
  if (rec.endedAt !== null) return node.retire(id, rec);
  node.deliver(id, { type: 'deal.recovered', now });
  if (rec.history.length === 0) node.deliver(id, { type: 'deal.start', now });
}

// ---- the workload -------------------------------------------------------------------------------------------------

/** How each run of a part goes: a task runs `durationMs` (its first `failures` runs exit 1); a service runs until it is stopped, but its first `crashes` runs exit 1 after `crashAfterMs`, and its first `sickRuns` stop answering their health checks after `sickAfterMs`. */
export interface PartPlan {
  readonly service: boolean;
  readonly durationMs: number;
  readonly failures: number;
  readonly crashes: number;
  readonly crashAfterMs: number;
  readonly sickRuns: number;
  readonly sickAfterMs: number;
}

/** The ensembles of a scenario: how much of the providers' cpu they hold over time, their shape, what goes wrong. */
export interface EnsembleMix {
  /** Share of the providers' cpu the ensembles' parts hold, over time. */
  readonly load: number;
  readonly minParts: number;
  readonly maxParts: number;
  readonly cpus: readonly number[];
  readonly memory: number;
  /** The ensemble's life (its timeout), uniform in this range. */
  readonly minLifeMs: number;
  readonly maxLifeMs: number;
  /** A task part's mean run time (exponential, at least 1 s, within its own timeout). */
  readonly meanTaskMs: number;
  /** Chance a task's first run fails; a service's first run crashes; a service's first run turns unhealthy. */
  readonly taskFail: number;
  readonly serviceCrash: number;
  readonly serviceSick: number;
  /** Chance the requester cancels an ensemble (after an exponential wait of mean 20 s). */
  readonly cancel: number;
}

const PART_NAMES = ['db', 'api', 'cache', 'worker', 'web', 'queue'] as const;
const RECOVERIES: readonly RecoveryStrategy[] = ['one_for_one', 'one_for_all', 'rest_for_one'];
const MODULE = { sha256: 'cd'.repeat(32), size: 2_000 };

/** Deploys ensembles from `requesters` as a Poisson process, their parts' plans drawn from `work`, until the run's end. */
export function startEnsembles(world: SimWorld, mix: EnsembleMix, requesters: readonly number[], capacityCpu: number, work: Random): void {
  const meanCpu = mix.cpus.reduce((s, c) => s + c, 0) / mix.cpus.length;
  const cpuSecondsPer = ((mix.minParts + mix.maxParts) / 2) * meanCpu * ((mix.minLifeMs + mix.maxLifeMs) / 2000);
  // at least one every 15 s, so a small network sees some
  const perSec = Math.max(1 / 15, (mix.load * capacityCpu) / cpuSecondsPer);
  const t0 = world.now();
  const end = t0 + world.opts.durationMs;
  const next = (at: number) => {
    world.queue.at(at, () => {
      const { spec, plans } = drawEnsemble(mix, work);
      const cancelAfter = work.chance(mix.cancel) ? Math.round(work.exp(20_000)) : null;
      world.deployEnsemble(work.pick(requesters), spec, plans, cancelAfter);
      const gap = work.exp(1000 / perSec);
      if (world.now() + gap < end) next(world.now() + gap);
    });
  };
  next(t0 + 1200);
}

/** One ensemble: a service first (others may depend on it), then services and tasks; their plans by part name. */
export function drawEnsemble(mix: EnsembleMix, work: Random): { spec: EnsembleSpec; plans: Record<string, PartPlan> } {
  const n = work.int(mix.minParts, mix.maxParts);
  const life = work.int(mix.minLifeMs, mix.maxLifeMs);
  const parts: EnsemblePart[] = [];
  const plans: Record<string, PartPlan> = {};
  for (let k = 0; k < n; k += 1) {
    const name = PART_NAMES[k]!;
    const service = k === 0 || work.chance(0.5);
    const services = parts.filter((p) => p.type === 'service').map((p) => p.name);
    const dependsOn = services.length > 0 && work.chance(0.6) ? [work.pick(services)] : [];
    const ports = service ? ['http'] : [];
    const healthcheck = service && work.chance(0.5) ? { healthcheck: { http: { port: 'http', path: '/health' }, intervalMs: 2_000, retries: 2 } } : {};
    const taskTimeout = Math.min(life, 90_000);
    parts.push({
      name,
      type: service ? 'service' : 'task',
      executor: 'wasm',
      wasm: { module: MODULE, args: [], env: {} },
      resources: { cpu: work.pick(mix.cpus), memory: mix.memory, disk: 0, gpus: 0 },
      ...(service ? {} : { timeoutMs: taskTimeout }),
      ports,
      ...healthcheck,
      restart: service ? (work.chance(0.5) ? 'always' : 'on-failure') : work.chance(0.5) ? 'on-failure' : 'never',
      dependsOn,
      constraints: { peers: [], excludePeers: [] },
    });
    plans[name] = {
      service,
      durationMs: Math.min(taskTimeout - 5_000, Math.max(1_000, Math.round(work.exp(mix.meanTaskMs)))),
      failures: !service && work.chance(mix.taskFail) ? 1 : 0,
      crashes: service && work.chance(mix.serviceCrash) ? 1 : 0,
      crashAfterMs: work.int(3_000, 30_000),
      sickRuns: service && 'healthcheck' in healthcheck && work.chance(mix.serviceSick) ? 1 : 0,
      sickAfterMs: work.int(5_000, 30_000),
    };
  }
  const spec: EnsembleSpec = { name: 'ensemble', timeoutMs: life, recovery: work.pick(RECOVERIES), maxRestarts: DEFAULT_MAX_RESTARTS, constraints: { peers: [], excludePeers: [] }, parts };
  return { spec, plans };
}

/**
 * Crashes of providers that run a part of an ensemble (any provider when none does), `perMin` a simulated minute:
 * a `midEffect` share of them come between an event the node logged and its effects; each comes back from its log
 * after an exponential downtime of mean `downMs`.
 */
export function startPartCrashes(world: SimWorld, perMin: number, midEffect: number, downMs: number, spare: ReadonlySet<number>, chance: Random): void {
  if (perMin <= 0) return;
  const gap = 60_000 / perMin;
  const crash = (at: number) => {
    world.queue.at(at, () => {
      const hosts = world.partHosts().filter((i) => !spare.has(i));
      const others = world.nodes.filter((n) => n.alive && world.isProvider(n.index) && !spare.has(n.index)).map((n) => n.index);
      const pool = hosts.length > 0 ? hosts : others;
      if (pool.length > 0) {
        const victim = chance.pick(pool);
        const down = Math.max(500, chance.exp(downMs));
        if (chance.chance(midEffect)) world.crashMidEffect(victim, down);
        else {
          world.crash(victim, false);
          world.queue.at(world.now() + down, () => world.restart(victim));
        }
      }
      crash(world.now() + chance.exp(gap));
    });
  };
  crash(world.now() + 3_000 + chance.exp(gap));
}
