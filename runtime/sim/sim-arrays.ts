/**
 * Array jobs in the simulator: what the real runtime does for the `array` actor on the requester (an array job's
 * bulk negotiation, array.machine.ts) and the `batch` actor on the provider (its allocation, batch.machine.ts),
 * played against the simulated clock and network. The effects mirror runtime/deals/deal-effects.ts (batch.assign,
 * batch.release, batch.progress, instance.run, instance.cancel), the provider inbox's batch messages mirror
 * deal-inboxes.ts `toBatch`, the instances run as runtime/deals/batch-runs.ts runs them (ends of one turn reported
 * together as one `instances.ended`), and a restart settles an array actor as deal-recovery.ts does. Also the
 * array workload of the `array` scenario: jobs of many tiny instances whose runs the world plans per index.
 */
import type { ExecutionOutcome } from '../../machines/allocation.messages.ts';
import type { InstancesEndedEvent } from '../../machines/batch.machine.ts';
import { JOB_TERMINAL } from '../../machines/deal.constants.ts';
import { allocationActorId, dealKey } from '../../machines/deal.ids.ts';
import type { JobSpec } from '../../machines/job.ts';
import type { JobRecord } from '../../machines/requester.messages.ts';
import type { Random } from './random.ts';
import type { Intent, SimNode } from './sim-node.ts';
import type { SimWorld } from './world.ts';

/** How long a warm runner takes to start an instance, and to stop one it is told to. */
const START_MS = 3;
const STOP_MS = 5;

type Ended = InstancesEndedEvent['ended'][number];

/**
 * The instances of array jobs running on one node, by `<allocationId>:<index>` (BatchRuns): each runs for the time
 * its plan says, then its end goes to its allocation actor together with the others of that allocation that
 * ended at the same simulated moment. A crash kills them all (`clear`; the generation voids their timers).
 */
export class InstanceRuns {
  readonly #runs = new Map<string, number>();
  readonly #ends = new Map<string, Ended[]>();
  #token = 0;

  constructor(private readonly node: SimNode) {}

  get running(): number {
    return this.#runs.size;
  }

  clear(): void {
    this.#runs.clear();
    this.#ends.clear();
  }

  /** `instance.run`: instance `index` of the allocation's job, run in the requester's warm runner. */
  run(actorId: string, allocationId: string, dealId: string, index: number, job: JobSpec): void {
    const { node } = this;
    const sim = node.sim;
    const key = `${allocationId}:${index}`;
    // the batch machine never runs an index twice at once; were it asked to, the new run replaces the old (BatchRuns)
    if (this.#runs.has(key)) sim.running(node, dealId, -1);
    const plan = sim.instancePlan(dealId, index);
    const token = ++this.#token;
    this.#runs.set(key, token);
    sim.running(node, dealId, 1);
    const gen = node.generation;
    const started = sim.now();
    // a hung instance is killed by its time limit (the executor's `timeout`)
    const endAt = plan.hangs ? started + job.timeoutMs : started + START_MS + plan.durationMs;
    sim.at(endAt, () => {
      if (gen !== node.generation || this.#runs.get(key) !== token) return;
      this.#runs.delete(key);
      sim.running(node, dealId, -1);
      const reason: ExecutionOutcome['reason'] = plan.hangs ? 'timeout' : plan.fails ? 'failed' : 'completed';
      sim.instanceEnded(node, dealId, index, reason);
      const exitCode = reason === 'completed' ? 0 : reason === 'failed' ? 1 : null;
      const message = reason === 'completed' ? '' : reason === 'failed' ? 'exit code 1' : `the job ran past its timeout of ${job.timeoutMs / 1000} s and was stopped`;
      this.#ended(actorId, allocationId, { index, outcome: { exitCode, reason, message, durationMs: sim.now() - started, outputBytes: 0, outputTruncated: false } });
    });
  }

  /** `instance.cancel`: the instance is stopped; its end (cancelled) is reported a moment later, as the executor's is. */
  cancel(actorId: string, allocationId: string, dealId: string, index: number): void {
    const { node } = this;
    const sim = node.sim;
    const key = `${allocationId}:${index}`;
    if (!this.#runs.has(key)) return;
    this.#runs.delete(key);
    const gen = node.generation;
    sim.at(sim.now() + STOP_MS, () => {
      if (gen !== node.generation) return;
      sim.running(node, dealId, -1);
      sim.instanceEnded(node, dealId, index, 'cancelled');
      this.#ended(actorId, allocationId, { index, outcome: { exitCode: null, reason: 'cancelled', message: 'stopped', durationMs: 0, outputBytes: 0, outputTruncated: false } });
    });
  }

  /** Ends of one simulated moment, by allocation: delivered together once the moment's other jobs ran (BatchRuns #ended). */
  #ended(actorId: string, allocationId: string, one: Ended): void {
    const pending = this.#ends.get(allocationId);
    if (pending) return void pending.push(one);
    this.#ends.set(allocationId, [one]);
    const { node } = this;
    const gen = node.generation;
    node.sim.at(node.sim.now(), () => {
      if (gen !== node.generation) return;
      const ended = this.#ends.get(allocationId);
      this.#ends.delete(allocationId);
      if (ended) node.deliver(actorId, { type: 'instances.ended', ended, now: node.sim.now() });
    });
  }
}

/** The effect of an array or batch actor's intent (deal-effects.ts); false for an intent that is not one of theirs. */
export function arrayEffect(node: SimNode, actorId: string, i: Intent): boolean {
  switch (i.type) {
    // ---- the requester's array actor ----
    case 'batch.assign.send': {
      const indexes = i.indexes as readonly number[];
      node.sendTo(i.to as string, 'provider', 'batch.assign', { dealId: i.dealId, nonce: i.nonce, indexes }, 200 + 8 * indexes.length);
      return true;
    }
    case 'batch.release.send':
      node.sendTo(i.to as string, 'provider', 'batch.release', { dealId: i.dealId, nonce: i.nonce });
      return true;
    // ---- the provider's batch actor ----
    case 'instance.run':
      node.instances.run(actorId, i.allocationId as string, dealOf(node, actorId), i.index as number, i.job as JobSpec);
      return true;
    case 'instance.cancel':
      node.instances.cancel(actorId, i.allocationId as string, dealOf(node, actorId), i.index as number);
      return true;
    case 'batch.progress.send': {
      const results = i.results as readonly unknown[];
      node.sendTo(i.to as string, 'requester', 'batch.progress', { dealId: i.dealId, nonce: i.nonce, allocationId: i.allocationId, results, running: i.running }, 200 + 80 * results.length);
      return true;
    }
    default:
      return false;
  }
}

function dealOf(node: SimNode, actorId: string): string {
  return (node.actors.get(actorId)?.log.input as { dealId?: string } | undefined)?.dealId ?? '';
}

/**
 * The provider inbox's `batch.assign` and `batch.release` (deal-inboxes.ts `toBatch`): keyed by the sender, so only
 * the deal's requester can name its allocation; dropped when no such allocation runs here. False for other types.
 */
export function routeBatchMessage(node: SimNode, from: string, type: string, payload: Record<string, unknown>): boolean {
  if (type !== 'batch.assign' && type !== 'batch.release') return false;
  const id = allocationActorId(dealKey(payload.dealId as string, payload.nonce as number, from));
  node.takeLater(id, () => {
    const now = node.sim.now();
    return type === 'batch.assign' ? { type, indexes: payload.indexes, from, now } : { type, from, now };
  });
  return true;
}

/** A restarted node's array actor (deal-recovery.ts `#settle`): ended ones retire, never started ones start, the rest hear they were recovered. */
export function recoverArray(node: SimNode, id: string, rec: JobRecord, now: number): void {
  if (JOB_TERMINAL.includes(rec.state)) node.retire(id, rec);
  else if (rec.rounds === 0) node.deliver(id, { type: 'deal.start', now });
  else node.deliver(id, { type: 'deal.recovered', now });
}

// ---- the workload -------------------------------------------------------------------------------------------------

/** How one index of an array job runs: its duration, how many of its first runs fail, whether its first run hangs. */
export interface InstancePlan {
  readonly durationMs: number;
  readonly failures: number;
  readonly hangFirst: boolean;
}

/** Array jobs of a scenario: how much of the providers' cpu they ask for over time, and what their instances do. */
export interface ArrayMix {
  /** Share of the providers' cpu the array jobs' instances ask for, over time. */
  readonly load: number;
  readonly minCount: number;
  readonly maxCount: number;
  /** Cores per instance (one of these, per job). */
  readonly cpus: readonly number[];
  readonly memory: number;
  /** Mean instance run time (exponential, at least 200 ms). */
  readonly meanInstanceMs: number;
  /** Each instance's time limit (a hung one is stopped then, and fails). */
  readonly timeoutMs: number;
  /** Per index: the chance its first run fails, its first two fail, and its first run hangs until its time limit. */
  readonly failOnce: number;
  readonly failTwice: number;
  readonly hang: number;
  /** Per job: the chance one index fails every time it runs (the job fails once that index's retries are spent). */
  readonly poison: number;
  /** Per job: the chance its requester cancels it (after an exponential wait of mean 15 s). */
  readonly cancel: number;
}

/** Deploys array jobs from `requesters` as a Poisson process, their instance plans drawn from `work`, until the run's end. */
export function startArrays(world: SimWorld, mix: ArrayMix, requesters: readonly number[], capacityCpu: number, work: Random): void {
  const meanCpu = mix.cpus.reduce((s, c) => s + c, 0) / mix.cpus.length;
  const cpuSecondsPerJob = ((mix.minCount + mix.maxCount) / 2) * meanCpu * (mix.meanInstanceMs / 1000);
  // at least one job every 20 s, so a small network sees some
  const perSec = Math.max(1 / 20, (mix.load * capacityCpu) / cpuSecondsPerJob);
  const t0 = world.now();
  const end = t0 + world.opts.durationMs;
  const next = (at: number) => {
    world.queue.at(at, () => {
      const requester = work.pick(requesters);
      const count = work.int(mix.minCount, mix.maxCount);
      const cpu = work.pick(mix.cpus);
      const retries = work.int(2, 3);
      const plans: InstancePlan[] = [];
      for (let i = 0; i < count; i += 1) {
        const durationMs = Math.max(200, Math.round(work.exp(mix.meanInstanceMs)));
        const r = work.float();
        const failures = r < mix.failOnce ? 1 : r < mix.failOnce + mix.failTwice ? 2 : 0;
        plans.push({ durationMs, failures, hangFirst: work.chance(mix.hang) });
      }
      if (work.chance(mix.poison)) {
        const i = work.int(0, count - 1);
        plans[i] = { ...plans[i]!, failures: Number.MAX_SAFE_INTEGER };
      }
      const cancelAfter = work.chance(mix.cancel) ? Math.round(work.exp(15_000)) : null;
      world.deployArray(requester, { name: 'array-task', resources: { cpu, memory: mix.memory, disk: 0, gpus: 0 }, timeoutMs: mix.timeoutMs, count, retries }, plans, cancelAfter);
      const gap = work.exp(1000 / perSec);
      if (world.now() + gap < end) next(world.now() + gap);
    });
  };
  next(t0 + 1500);
}
