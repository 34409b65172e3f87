/**
 * The workloads and faults of the simulator's scenarios. A scenario says what each node offers, what the
 * requesters deploy and when, and what goes wrong; `--faults` overrides its fault settings.
 */
import type { Random } from './random.ts';
import { type ArrayMix, startArrays } from './sim-arrays.ts';
import { type EnsembleMix, startEnsembles, startPartCrashes } from './sim-ensembles.ts';
import type { SimWorld } from './world.ts';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

/** What can go wrong, and how often. */
export interface Faults {
  readonly loss: number;
  readonly duplicate: number;
  readonly reorder: number;
  /** Provider crashes per simulated minute, across the network. */
  readonly crashesPerMin: number;
  /** Mean time a crashed node stays down before it restarts from its log. */
  readonly downMs: number;
  /** Share of crashes that come between an event's log write and its effects (those effects are lost). */
  readonly midEffect: number;
  /** A partition in two: from `partitionAt` for `partitionMs` (0: none). */
  readonly partitionAt: number;
  readonly partitionMs: number;
  /** Share of tasks that exit non-zero, that hang until their timeout, and that their requester cancels. */
  readonly fail: number;
  readonly hang: number;
  readonly cancel: number;
}

export const NO_FAULTS: Faults = Object.freeze({ loss: 0, duplicate: 0, reorder: 0, crashesPerMin: 0, downMs: 30_000, midEffect: 0, partitionAt: 0, partitionMs: 0, fail: 0, hang: 0, cancel: 0 });

export interface Workload {
  /** Requesters as a share of the nodes (at least 2, at most `maxRequesters`). */
  readonly requesterShare: number;
  readonly maxRequesters: number;
  /** Providers as a share of the nodes (at least 2); the others offer nothing (not onboarded) but relay and answer. */
  readonly providerShare: number;
  /** Work offered over capacity: jobs arrive at `load` times the rate the providers can finish them. */
  readonly load: number;
  /** At most this many jobs per simulated second, whatever the load asks. */
  readonly maxJobsPerSec: number;
  readonly cpu: number;
  readonly memory: number;
  /** Mean task duration (exponential, at least 1 s). */
  readonly meanDurationMs: number;
  readonly timeoutMs: number;
  /** What each provider offers. */
  readonly offerCpu: number;
  readonly offerMemory: number;
}

/** Jobs per simulated second of a workload on `nodes` nodes. */
export function jobsPerSec(w: Workload, nodes: number): number {
  const slots = providersOf(nodes, w) * Math.floor(w.offerCpu / w.cpu);
  return Math.min(w.maxJobsPerSec, (w.load * slots) / (w.meanDurationMs / 1000));
}

export function providersOf(nodes: number, w: Workload): number {
  // a small network still has a few providers to choose among
  return Math.min(nodes, Math.max(Math.min(nodes - 1, 4), Math.round(nodes * w.providerShare)));
}

export interface Scenario {
  readonly name: string;
  readonly summary: string;
  readonly workload: Workload;
  readonly faults: Faults;
  /** What node `index` offers, or null for a node that offers nothing (it is not onboarded). */
  offer(rng: Random, index: number): { cpu: number; memory: number; disk: number } | null;
  start(world: SimWorld, work: Random, faults: Random): void;
}

/** Each task takes a whole provider; a tenth of the nodes provide. */
const BASE: Workload = { requesterShare: 0.05, maxRequesters: 50, providerShare: 0.1, load: 0.7, maxJobsPerSec: 20, cpu: 2, memory: GiB, meanDurationMs: 60_000, timeoutMs: 300_000, offerCpu: 2, offerMemory: 8 * GiB };

/**
 * Busy providers of 4 cpu (single tasks of 1 cpu hold half of them), and array jobs of 20-200 instances of a tenth
 * to half a cpu, 1.5 s each on average: a few of their indexes fail once or twice (retried, on another provider
 * where there is one), a few hang until their time limit, and one job in ten has an index that always fails.
 */
const ARRAY_WORKLOAD: Workload = { ...BASE, load: 0.5, cpu: 1, meanDurationMs: 30_000, timeoutMs: 300_000, offerCpu: 4, offerMemory: 16 * GiB };
const ARRAYS: ArrayMix = { load: 0.35, minCount: 20, maxCount: 200, cpus: [0.1, 0.25, 0.5], memory: 128 * MiB, meanInstanceMs: 1_500, timeoutMs: 60_000, failOnce: 0.06, failTwice: 0.015, hang: 0.002, poison: 0.1, cancel: 0.05 };

/**
 * Ensembles of 2-4 parts (a service first, then services and tasks, some depending on a service, with restart
 * policies and health checks) living 30-120 s, beside single tasks, on providers of 4 cpu; a fifth of the nodes
 * provide. Some tasks fail once, some services crash once or stop answering their health checks.
 */
const ENSEMBLE_WORKLOAD: Workload = { ...BASE, providerShare: 0.2, load: 0.25, cpu: 1, meanDurationMs: 30_000, timeoutMs: 300_000, offerCpu: 4, offerMemory: 16 * GiB };
const ENSEMBLES: EnsembleMix = { load: 0.4, minParts: 2, maxParts: 4, cpus: [0.25, 0.5, 1], memory: 256 * MiB, minLifeMs: 30_000, maxLifeMs: 120_000, meanTaskMs: 15_000, taskFail: 0.15, serviceCrash: 0.15, serviceSick: 0.3, cancel: 0.15 };

function scenario(name: string, summary: string, workload: Workload, faults: Partial<Faults>, nodes: number, extra: Pick<ScenarioDef, 'arrays' | 'ensembles'> = {}): Scenario {
  const f: Faults = { ...NO_FAULTS, ...faults };
  const providers = providersOf(nodes, workload);
  // provider k of n sits at index floor(k * nodes / n) + 1 (node 0 is always a requester)
  const providerAt = new Set(Array.from({ length: providers }, (_, k) => Math.min(nodes - 1, Math.floor((k * nodes) / providers) + (nodes > providers ? 1 : 0))));
  const isProvider = (index: number) => providers >= nodes || providerAt.has(index);
  return {
    name,
    summary,
    workload,
    faults: f,
    // providers are spread over the index range; the rest offer nothing
    offer: (_rng, index) => (isProvider(index) ? { cpu: workload.offerCpu, memory: workload.offerMemory, disk: 100 * GiB } : null),
    start: (world, work, chance) => {
      // an ensemble scenario's crashes hit providers that run parts (below), not any provider
      startWorkload(world, workload, extra.ensembles ? { ...f, crashesPerMin: 0 } : f, work, chance);
      const requesters = requestersOf(nodes, workload);
      const capacityCpu = providers * workload.offerCpu;
      if (extra.arrays) startArrays(world, extra.arrays, requesters, capacityCpu, work.fork('arrays'));
      if (extra.ensembles) {
        startEnsembles(world, extra.ensembles, requesters, capacityCpu, work.fork('ensembles'));
        startPartCrashes(world, f.crashesPerMin, f.midEffect, f.downMs, new Set(requesters), chance.fork('part-crashes'));
      }
    },
  };
}

interface ScenarioDef {
  readonly name: string;
  readonly summary: string;
  readonly workload: Workload;
  readonly faults: Partial<Faults>;
  /** Array jobs deployed beside the tasks. */
  readonly arrays?: ArrayMix;
  /** Ensembles deployed beside the tasks; the crashes then hit providers that run their parts. */
  readonly ensembles?: EnsembleMix;
}

export const SCENARIO_DEFS: readonly ScenarioDef[] = [
  { name: 'storm', summary: 'a deal storm: many requesters (5% of the nodes, at most 50), a fifth more work than the providers (a tenth of the nodes) can take; each task takes a whole provider, so jobs queue', workload: { ...BASE, load: 1.2 }, faults: { fail: 0.02, hang: 0.005, cancel: 0.03 } },
  { name: 'churn', summary: 'providers crash and come back from their logs (a fifth of the crashes lose the effects of the event they were taking)', workload: BASE, faults: { downMs: 20_000, midEffect: 0.2, fail: 0.02, cancel: 0.03 } },
  { name: 'partition', summary: 'the network splits in two for a third of the run, then heals; messages are lost, duplicated and reordered throughout', workload: BASE, faults: { loss: 0.005, duplicate: 0.005, reorder: 0.02, partitionAt: -1, partitionMs: -1, cancel: 0.03 } },
  { name: 'crash', summary: 'providers crash mid-deal, half of them between an event and its effects, and restart from their logs', workload: { ...BASE, meanDurationMs: 30_000, timeoutMs: 120_000 }, faults: { downMs: 5_000, midEffect: 0.5, loss: 0.001, cancel: 0.05 } },
  { name: 'array', summary: 'array jobs of 20-200 tiny instances over providers kept busy by single tasks; failing instances are retried, a few providers crash', workload: ARRAY_WORKLOAD, faults: { downMs: 10_000, fail: 0.02, cancel: 0.03 }, arrays: ARRAYS },
  { name: 'ensemble', summary: 'ensembles of 2-4 parts (services and tasks, dependencies, restart policies) across providers; providers running parts crash, a third between an event and its effects, and restart from their logs', workload: ENSEMBLE_WORKLOAD, faults: { downMs: 10_000, midEffect: 0.3, fail: 0.02, cancel: 0.03 }, ensembles: ENSEMBLES },
];

export const SCENARIO_NAMES = SCENARIO_DEFS.map((s) => s.name);

/** The scenario `name` for `nodes` nodes (crash rates scale with the network), with `faults` over its own. */
export function scenarioNamed(name: string, nodes: number, faults: Partial<Faults> = {}, workload: Partial<Workload> = {}): Scenario | undefined {
  const s = SCENARIO_DEFS.find((x) => x.name === name);
  if (!s) return undefined;
  return scenario(s.name, s.summary, { ...s.workload, ...workload }, { ...s.faults, crashesPerMin: defaultCrashesPerMin(name, nodes), ...faults }, nodes, s);
}

/** Requester nodes: spread over the index range (so over the regions). */
export function requestersOf(nodes: number, w: Workload): number[] {
  const n = Math.max(2, Math.min(w.maxRequesters, Math.round(nodes * w.requesterShare)));
  const step = nodes / n;
  return Array.from({ length: Math.min(n, nodes) }, (_, k) => Math.floor(k * step));
}

function startWorkload(world: SimWorld, w: Workload, f: Faults, work: Random, chance: Random): void {
  const nodes = world.nodes.length;
  const duration = world.opts.durationMs;
  const requesters = requestersOf(nodes, w);
  const isRequester = new Set(requesters);
  const t0 = world.now();
  // let every node onboard first (a second), then the jobs come as a Poisson process
  const meanGap = 1000 / jobsPerSec(w, nodes);
  const next = (at: number) => {
    world.queue.at(at, () => {
      const requester = work.pick(requesters);
      const durationMs = Math.max(1000, Math.round(work.exp(w.meanDurationMs)));
      const fails = work.chance(f.fail);
      const hangs = !fails && work.chance(f.hang);
      const cancelAfter = work.chance(f.cancel) ? Math.round(work.exp(20_000)) : null;
      world.deploy(requester, { name: 'task', resources: { cpu: w.cpu, memory: w.memory, disk: 0, gpus: 0 }, timeoutMs: w.timeoutMs }, { durationMs, fails, hangs }, cancelAfter);
      const gap = work.exp(meanGap);
      if (world.now() + gap < t0 + duration) next(world.now() + gap);
    });
  };
  next(t0 + 1000);
  // crashes: a provider (never a requester: they stand for the users) dies, and comes back from its log
  if (f.crashesPerMin > 0) {
    const meanCrashGap = 60_000 / f.crashesPerMin;
    const crash = (at: number) => {
      world.queue.at(at, () => {
        let victim = chance.int(0, nodes - 1);
        for (let tries = 0; (isRequester.has(victim) || !world.nodes[victim]!.alive || !world.isProvider(victim)) && tries < 32; tries += 1) victim = chance.int(0, nodes - 1);
        if (!isRequester.has(victim) && world.nodes[victim]!.alive && world.isProvider(victim)) {
          world.crash(victim, chance.chance(f.midEffect));
          world.queue.at(world.now() + Math.max(500, chance.exp(f.downMs)), () => world.restart(victim));
        }
        crash(world.now() + chance.exp(meanCrashGap));
      });
    };
    crash(t0 + 2000 + chance.exp(meanCrashGap));
  }
  if (f.partitionMs !== 0) {
    // -1: a fifth of the way in, for a third of the run
    const at = f.partitionAt >= 0 ? f.partitionAt : Math.round(duration / 5);
    const ms = f.partitionMs > 0 ? f.partitionMs : Math.round(duration / 3);
    const regions = world.net.model.regions;
    world.queue.at(t0 + at, () => world.partition((i) => (world.net.region(i) < Math.max(1, Math.floor(regions / 2)) ? 0 : 1)));
    world.queue.at(t0 + at + ms, () => world.heal());
  }
}

/** The default crash rate of the scenarios that crash providers: a share of the network per minute. */
export function defaultCrashesPerMin(name: string, nodes: number): number {
  if (name === 'churn') return Math.max(1, nodes * 0.02);
  if (name === 'crash') return Math.max(2, nodes * 0.01);
  if (name === 'array') return Math.max(0.5, nodes * 0.005);
  if (name === 'ensemble') return Math.max(2, nodes * 0.02);
  return 0;
}

