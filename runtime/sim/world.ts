/**
 * A simulated network of nodes: the clock, the network, the workload of a scenario, the faults, the invariants
 * checked after every event, and the figures of the run. Everything that varies comes from one seed, so the same
 * options give the same run and the same digest, byte for byte.
 */
import { createHash } from 'node:crypto';
import { ARRAY_DEFAULTS, DEAL_DEFAULTS } from '../../machines/deal.constants.ts';
import { ALLOCATION_TIMING } from '../../machines/allocation.machine.ts';
import { createJobId, describeJobProblems, type JobSpec, validateJob } from '../../machines/job.ts';
import type { ArrayRecord } from '../../machines/array.context.ts';
import { type EnsembleInput, type EnsembleRecord, parsePartDealId } from '../../machines/ensemble.messages.ts';
import { validateEnsemble } from '../../machines/ensemble.rules.ts';
import type { EnsembleSpec } from '../../machines/ensemble.ts';
import { STOP_WAIT_MS } from '../../machines/ensemble.steps.ts';
import type { Ledger } from '../../machines/ledger.ts';
import type { NodeContext } from '../../machines/node.machine.ts';
import { DEFAULT_PREFERENCES } from '../../machines/preferences.ts';
import type { JobRecord, RequesterInput } from '../../machines/requester.messages.ts';
import type { ProviderRecord } from '../../machines/provider.messages.ts';
import type { AllocationInput, AllocationRecordView } from '../../machines/allocation.messages.ts';
import { EventQueue } from './event-queue.ts';
import { LAN_MODEL, type NetworkModel, SimNetwork } from './network.ts';
import { Random } from './random.ts';
import { type Intent, NODE_ACTOR, type SimHost, SimNode } from './sim-node.ts';
import type { Scenario } from './scenarios.ts';
import type { InstancePlan } from './sim-arrays.ts';
import type { PartPlan } from './sim-ensembles.ts';

/** Simulated time starts here (machines read absolute epoch milliseconds). */
export const SIM_EPOCH = Date.UTC(2027, 0, 1);

/** How long past its deadline a job may take to end (a cancel's timeout plus a lost provider's detection, with room). */
export const END_BOUND_MS = DEAL_DEFAULTS.requester.cancelTimeoutMs + DEAL_DEFAULTS.requester.lostAfterMs + 10_000;
/** How long after a cancel a job's allocations may still run on a provider the requester can reach. */
export const CANCEL_BOUND_MS = DEAL_DEFAULTS.requester.cancelTimeoutMs + 10_000;
/** How often the invariants that look at the whole network (deadlines, orphaned locks) run. */
const SWEEP_MS = 5_000;
/** Events kept for a violation's report. */
const HISTORY = 200;

/**
 * How long after an array job ended its batch allocations may still run on a provider it can reach: a cancel that
 * found the provider down is never repeated, so a batch that provider recovers runs what it holds (each instance
 * within its time limit, two rounds of slots) and then waits out its idle timeout (ARRAY_DEFAULTS.idleMs).
 */
export const arrayStopBoundMs = (instanceTimeoutMs: number) => CANCEL_BOUND_MS + 2 * instanceTimeoutMs + ARRAY_DEFAULTS.idleMs;
/** How long after an ensemble ended any part of it may still run on a provider it can reach (its parts' cancels, then their stops). */
export const ENSEMBLE_STOP_BOUND_MS = CANCEL_BOUND_MS;

/** Bugs planted on purpose, to show the invariants catch them. */
export const PLANTS = ['forget-unlock-on-revert', 'ignore-cancel', 'batch-keeps-resources', 'ensemble-leaves-parts'] as const;
export type Plant = (typeof PLANTS)[number];

export interface SimOptions {
  readonly nodes: number;
  readonly seed: string;
  readonly durationMs: number;
  readonly scenario: Scenario;
  readonly network: NetworkModel;
  /** Simulated CPU each machine event costs its node. */
  readonly eventCostMs: number;
  readonly plant?: Plant;
  /** Stop after this many machine events (a guard for property tests). */
  readonly maxEvents?: number;
}

export class SimViolation extends Error {
  override name = 'SimViolation';
  constructor(
    readonly invariant: string,
    message: string,
    readonly atMs: number,
    readonly node: number,
  ) {
    super(`${invariant}: ${message}`);
  }
}

export interface JobOutcome {
  /** A task, an array job, an ensemble, or an ensemble's part (parts are not jobs of their own in the report). */
  readonly kind: 'task' | 'array' | 'ensemble' | 'part';
  readonly state: string;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly endedAt: number | null;
  readonly rounds: number;
}

interface OpenJob {
  readonly kind: 'task' | 'array' | 'ensemble';
  readonly requester: number;
  /** A task or ensemble ends by then (plus END_BOUND_MS); an array job's queue waits for room until then. */
  readonly deadline: number;
  /** An array job's instance time limit (how long it may go without progress; its stop bound). */
  readonly timeoutMs: number;
  cancelledAt: number | null;
  placedAt: number | null;
  /** An array job: when an index last changed state (handed out, ended, queued again). */
  progressAt?: number;
}

export interface SimReport {
  readonly scenario: string;
  readonly seed: string;
  readonly nodes: number;
  readonly simulatedMs: number;
  readonly wallMs: number;
  readonly events: number;
  readonly eventsPerSec: number;
  readonly digest: string;
  readonly violation: null | { readonly invariant: string; readonly message: string; readonly atMs: number; readonly node: number; readonly step: number; readonly history: readonly string[] };
  readonly jobs: { readonly submitted: number; readonly placed: number; readonly completed: number; readonly failed: number; readonly cancelled: number; readonly open: number };
  readonly placementMs: { readonly p50: number | null; readonly p99: number | null; readonly max: number | null };
  readonly dealsPerSimSec: number;
  readonly messagesPerDeal: number | null;
  readonly roundsPerDeal: number | null;
  readonly capacityUsed: number;
  readonly reruns: number;
  readonly network: SimNetwork['counters'];
  readonly faults: { readonly crashes: number; readonly restarts: number; readonly partitions: number };
  /**
   * Array jobs' instances: indexes counted completed (and failed for good) by their requesters, failed runs run
   * again (`retried`), and the instance runs the providers started, by how they ended (`lost`: stopped by a cancel).
   */
  readonly instances: { readonly completed: number; readonly failed: number; readonly retried: number; readonly duplicates: number; readonly runs: number; readonly timedOut: number; readonly lost: number };
  /** Ensembles: as jobs are counted, plus restarts and moves of parts, and parts placed again after a crash of their provider. */
  readonly ensembles: { readonly submitted: number; readonly placed: number; readonly completed: number; readonly failed: number; readonly cancelled: number; readonly restarts: number; readonly recovered: number };
  readonly memory: { readonly heapUsedBytes: number; readonly perNodeBytes: number };
}

export class SimWorld implements SimHost {
  readonly queue = new EventQueue(SIM_EPOCH);
  readonly net: SimNetwork;
  readonly nodes: SimNode[] = [];
  readonly #byId = new Map<string, SimNode>();
  readonly #rng: Random;
  readonly #work: Random;
  readonly #faults: Random;
  readonly #plans = new Map<string, { durationMs: number; fails: boolean; hangs: boolean }>();
  readonly #open = new Map<string, OpenJob>();
  readonly #completed = new Set<string>();
  readonly #outcomes: JobOutcome[] = [];
  /** Live allocation actors per job, by node, and the job's processes running: "cancelled leaves nothing running" reads them. */
  readonly #allocations = new Map<string, Map<number, number>>();
  readonly #running = new Map<string, Map<number, number>>();
  readonly #allocatedCpu: Float64Array;
  readonly #providers: Uint8Array;
  readonly #ledgers: (Ledger | null)[];
  #totalAllocated = 0;
  #capacityCpu = 0;
  #capacityArea = 0;
  #areaAt = SIM_EPOCH;
  #submitted = 0;
  #reruns = 0;
  #executedCompleted = new Map<string, number>();
  #crashes = 0;
  #restarts = 0;
  #partitions = 0;
  /** Array jobs: each index's plan, its runs so far and whether one completed; each open job's record as last seen. */
  readonly #instancePlans = new Map<string, readonly InstancePlan[]>();
  readonly #instanceRuns = new Map<string, Uint32Array>();
  readonly #instanceDone = new Map<string, Uint8Array>();
  readonly #arrays = new Map<string, ArrayRecord>();
  readonly #instanceCounts = { completed: 0, failed: 0, retried: 0, duplicates: 0, runs: 0, timedOut: 0, lost: 0 };
  /** Ensembles: their parts' plans, each part's runs so far and when its run turns sick, the part negotiations each spawned. */
  readonly #partPlans = new Map<string, Readonly<Record<string, PartPlan>>>();
  readonly #partRuns = new Map<string, number>();
  readonly #sickAt = new Map<string, number>();
  readonly #ensembleParts = new Map<string, string[]>();
  /** Parts whose provider crashed while they ran there (by ensemble, part -> the allocation lost), until placed again. */
  readonly #crashedParts = new Map<string, Map<string, string>>();
  /** Each open ensemble's record as last seen (its restarts count in the report). */
  readonly #ensembleRecords = new Map<string, EnsembleRecord>();
  #ensembles = 0;
  #ensembleRestarts = 0;
  #recovered = 0;
  /** Deals beyond the tasks': array jobs' allocations, ensembles' parts' allocations. */
  #extraDeals = 0;
  /** Nodes to crash between the next event of a deal actor they take and its effects, with their downtime. */
  readonly #armed = new Map<number, { readonly downMs: number; readonly token: number }>();
  #armedSeq = 0;
  #step = 0;
  /** The last HISTORY events taken, as a ring (parallel arrays: nothing allocated per event). */
  readonly #historyAt = new Float64Array(HISTORY);
  readonly #historyNode = new Int32Array(HISTORY);
  readonly #historyActor: string[] = new Array(HISTORY).fill('');
  readonly #historyEvent: { type: string }[] = new Array(HISTORY).fill({ type: '' });
  readonly eventCostMs: number;

  constructor(readonly opts: SimOptions) {
    this.#rng = new Random(`dms-sim:${opts.seed}`);
    this.#work = this.#rng.fork('workload');
    this.#faults = this.#rng.fork('faults');
    this.eventCostMs = opts.eventCostMs;
    this.net = new SimNetwork(opts.nodes, opts.network, this.queue, this.#rng.fork('network'));
    this.#allocatedCpu = new Float64Array(opts.nodes);
    this.#providers = new Uint8Array(opts.nodes);
    this.#ledgers = new Array(opts.nodes).fill(null);
    for (let i = 0; i < opts.nodes; i += 1) {
      const node = new SimNode(i, simPeerId(i), this);
      this.nodes.push(node);
      this.#byId.set(node.id, node);
    }
  }

  now = (): number => this.queue.now;

  /** Jobs deployed that have not ended yet. */
  get openJobs(): number {
    return this.#open.size;
  }

  /** Whether node `index` offers resources (the others are not onboarded). */
  isProvider(index: number): boolean {
    return this.#providers[index] === 1;
  }
  at = (time: number, job: () => void): void => this.queue.at(time, job);

  // ---- the run ------------------------------------------------------------------------------------------------

  run(): SimReport {
    const started = performance.now();
    const { scenario, nodes } = this.opts;
    const offers = this.#rng.fork('offers');
    for (const node of this.nodes) {
      const offer = scenario.offer(offers, node.index);
      if (offer) {
        this.#capacityCpu += offer.cpu;
        this.#providers[node.index] = 1;
      }
      node.boot(offer, benchmarkFor(offers));
    }
    const end = SIM_EPOCH + this.opts.durationMs;
    scenario.start(this, this.#work, this.#faults);
    const sweep = () => {
      this.sweep();
      this.queue.after(SWEEP_MS, sweep);
    };
    this.queue.after(SWEEP_MS, sweep);
    let violation: SimReport['violation'] = null;
    const maxEvents = this.opts.maxEvents ?? Infinity;
    try {
      while (this.queue.peek() <= end && this.#step < maxEvents) this.queue.pop()!();
      this.#accrue();
      this.#finalChecks(end);
    } catch (e) {
      if (!(e instanceof SimViolation)) throw e;
      violation = { invariant: e.invariant, message: e.message, atMs: e.atMs - SIM_EPOCH, node: e.node, step: this.#step, history: this.#recent() };
    }
    const wallMs = performance.now() - started;
    return this.#report(violation, wallMs, nodes);
  }

  // ---- the workload (scenarios call these) --------------------------------------------------------------------

  /** Deploys a task from node `requester`; returns its job id. */
  deploy(requester: number, job: Omit<JobSpec, 'constraints' | 'executor'> & { constraints?: JobSpec['constraints'] }, plan: { durationMs: number; fails: boolean; hangs: boolean }, cancelAfterMs: number | null = null): string | null {
    const node = this.nodes[requester]!;
    if (!node.alive) return null;
    const dealId = this.#jobId();
    const spec = wasmJob(job);
    const now = this.now();
    const input: RequesterInput = { dealId, job: spec, self: node.id, createdAt: now, deadline: now + DEAL_DEFAULTS.placementMs + spec.timeoutMs, weights: DEFAULT_PREFERENCES.requester.weights, timing: DEAL_DEFAULTS.requester };
    this.#plans.set(dealId, plan);
    this.#open.set(dealId, { kind: 'task', requester, deadline: input.deadline, timeoutMs: spec.timeoutMs, cancelledAt: null, placedAt: null });
    this.#submitted += 1;
    node.deploy(input);
    if (cancelAfterMs !== null) this.queue.at(now + cancelAfterMs, () => this.cancel(dealId));
    return dealId;
  }

  /** Deploys an array job of `job.count` instances from node `requester`; `plans[i]` says how index i runs. Its job id. */
  deployArray(requester: number, job: Omit<JobSpec, 'constraints' | 'executor'> & { count: number }, plans: readonly InstancePlan[], cancelAfterMs: number | null = null): string | null {
    const node = this.nodes[requester]!;
    if (!node.alive) return null;
    const dealId = this.#jobId();
    const spec = wasmJob(job);
    const problems = validateJob(spec);
    if (problems.length > 0) throw new Error(`the scenario made an array job the runtime would refuse: ${describeJobProblems(problems)}`);
    const now = this.now();
    const input: RequesterInput = { dealId, job: spec, self: node.id, createdAt: now, deadline: now + DEAL_DEFAULTS.placementMs + spec.timeoutMs, weights: DEFAULT_PREFERENCES.requester.weights, timing: DEAL_DEFAULTS.requester };
    this.#instancePlans.set(dealId, plans);
    this.#instanceRuns.set(dealId, new Uint32Array(job.count));
    this.#instanceDone.set(dealId, new Uint8Array(job.count));
    this.#open.set(dealId, { kind: 'array', requester, deadline: input.queueDeadline ?? input.deadline, timeoutMs: spec.timeoutMs, cancelledAt: null, placedAt: null, progressAt: now });
    this.#submitted += 1;
    node.deploy(input, 'array');
    if (cancelAfterMs !== null) this.queue.at(now + cancelAfterMs, () => this.cancel(dealId));
    return dealId;
  }

  /** Deploys an ensemble from node `requester`; `plans` says how each part's runs go, by part name. Its id. */
  deployEnsemble(requester: number, spec: EnsembleSpec, plans: Readonly<Record<string, PartPlan>>, cancelAfterMs: number | null = null): string | null {
    const node = this.nodes[requester]!;
    if (!node.alive) return null;
    const problems = validateEnsemble(spec);
    if (problems.length > 0) throw new Error(`the scenario made an ensemble the runtime would refuse: ${describeJobProblems(problems)}`);
    const ensembleId = this.#jobId();
    const now = this.now();
    const input: EnsembleInput = { ensembleId, spec, self: node.id, createdAt: now, deadline: now + DEAL_DEFAULTS.placementMs };
    this.#partPlans.set(ensembleId, plans);
    this.#ensembleParts.set(ensembleId, []);
    // it stops at its placement deadline or at its life's end, and has ended at most the stop wait later
    const deadline = now + Math.max(DEAL_DEFAULTS.placementMs, spec.timeoutMs) + STOP_WAIT_MS;
    this.#open.set(ensembleId, { kind: 'ensemble', requester, deadline, timeoutMs: spec.timeoutMs, cancelledAt: null, placedAt: null });
    this.#submitted += 1;
    this.#ensembles += 1;
    node.deployEnsemble(input);
    if (cancelAfterMs !== null) this.queue.at(now + cancelAfterMs, () => this.cancel(ensembleId));
    return ensembleId;
  }

  #jobId(): string {
    const bytes = new Uint8Array(16);
    for (let i = 0; i < 16; i += 4) new DataView(bytes.buffer).setUint32(i, this.#work.uint32());
    return createJobId(bytes);
  }

  cancel(dealId: string): void {
    const job = this.#open.get(dealId);
    if (!job) return;
    const node = this.nodes[job.requester]!;
    if (!node.alive) return;
    node.cancel(dealId);
  }

  crash(index: number, midEffect: boolean): void {
    const node = this.nodes[index]!;
    if (!node.alive) return;
    this.#crashes += 1;
    this.#armed.delete(index);
    // parts that ran here: their ensemble recovers once it runs them again elsewhere (or here, anew)
    for (const live of node.actors.values()) {
      const input = live.log.input as AllocationInput;
      const part = live.kind === 'allocation' ? input.job.part : undefined;
      if (!part || !this.#open.has(part.ensemble)) continue;
      let lost = this.#crashedParts.get(part.ensemble);
      if (!lost) this.#crashedParts.set(part.ensemble, (lost = new Map()));
      lost.set(part.name, input.allocationId);
    }
    if (midEffect) node.crashMidEffect();
    else node.crash();
    this.net.setUp(index, false);
    this.#setAllocated(index, null);
    // its allocations and their processes died with it (a job must not outlive its node)
    for (const byNode of this.#allocations.values()) byNode.delete(index);
    for (const byNode of this.#running.values()) byNode.delete(index);
  }

  restart(index: number): void {
    const node = this.nodes[index]!;
    if (node.alive) return;
    this.#restarts += 1;
    this.net.setUp(index, true);
    node.restart();
    this.#setAllocated(index, node.nodeContext().ledger);
    for (const live of node.actors.values()) if (live.kind === 'allocation' || live.kind === 'batch') this.#countAllocation(node, live.log.input as AllocationInput);
  }

  /**
   * Crashes node `index` between the next event a deal actor of it takes and that event's effects (they are lost;
   * the event is in its log), then restarts it after `downMs`. If it takes none within a second, it crashes then.
   */
  crashMidEffect(index: number, downMs: number): void {
    if (!this.nodes[index]!.alive || this.#armed.has(index)) return;
    const token = ++this.#armedSeq;
    this.#armed.set(index, { downMs, token });
    this.queue.at(this.now() + 1000, () => {
      if (this.#armed.get(index)?.token !== token) return;
      this.#armed.delete(index);
      this.crash(index, false);
      this.queue.at(this.now() + downMs, () => this.restart(index));
    });
  }

  /** Providers up now that run a part of an ensemble, by index. */
  partHosts(): number[] {
    const out: number[] = [];
    for (const node of this.nodes) {
      if (!node.alive) continue;
      for (const live of node.actors.values()) {
        if (live.kind === 'allocation' && (live.log.input as AllocationInput).job.part) {
          out.push(node.index);
          break;
        }
      }
    }
    return out;
  }

  partition(sideOf: (node: number) => number): void {
    this.#partitions += 1;
    this.net.partition(sideOf);
  }

  heal(): void {
    this.net.heal();
  }

  // ---- SimHost ------------------------------------------------------------------------------------------------

  send(from: SimNode, to: string, bytes: number, deliver: (node: SimNode) => void, onFail?: () => void): void {
    const target = this.#byId.get(to);
    if (!target) return;
    if (onFail && (!this.net.isUp(target.index) || !this.net.sameSide(from.index, target.index))) {
      // the dial fails: said after its timeout
      this.queue.at(this.now() + 1000, onFail);
      this.net.counters.direct += 1;
      return;
    }
    this.net.send(from.index, target.index, bytes, () => deliver(target));
  }

  broadcast(from: SimNode, deliver: (node: SimNode, relayed: boolean) => void): { candidates: string[]; open: boolean; connected: number } {
    // a node not linked to the sender hears it relayed through the mesh
    const linked = new Set(this.net.neighbours(from.index));
    const reached = this.net.broadcast(from.index, (b) => deliver(this.nodes[b]!, !linked.has(b)));
    const near = this.net.neighbours(from.index).filter((b) => this.net.isUp(b) && this.net.sameSide(from.index, b));
    return { candidates: near.map((b) => this.nodes[b]!.id), open: reached > near.length, connected: near.length };
  }

  plan(dealId: string): { durationMs: number; fails: boolean; hangs: boolean } {
    const task = this.#plans.get(dealId);
    if (task) return task;
    // a part: each run of it (wherever, in whichever of its negotiations) goes as its plan says for that run
    const part = parsePartDealId(dealId);
    const p = part ? this.#partPlans.get(part.ensembleId)?.[part.part] : undefined;
    if (!part || !p) return { durationMs: 1000, fails: false, hangs: false };
    const key = `${part.ensembleId}@${part.part}`;
    const run = this.#partRuns.get(key) ?? 0;
    this.#partRuns.set(key, run + 1);
    if (run < p.sickRuns) this.#sickAt.set(key, this.now() + p.sickAfterMs);
    else this.#sickAt.delete(key);
    if (!p.service) return { durationMs: p.durationMs, fails: run < p.failures, hangs: false };
    if (run < p.crashes) return { durationMs: p.crashAfterMs, fails: true, hangs: false };
    return { durationMs: 0, fails: false, hangs: true };
  }

  instancePlan(dealId: string, index: number): { durationMs: number; fails: boolean; hangs: boolean } {
    const p = this.#instancePlans.get(dealId)?.[index];
    const runs = this.#instanceRuns.get(dealId);
    this.#instanceCounts.runs += 1;
    if (!p || !runs) return { durationMs: 1000, fails: false, hangs: false };
    const run = runs[index]!;
    runs[index] = run + 1;
    return { durationMs: p.durationMs, fails: run < p.failures, hangs: run === 0 && p.hangFirst };
  }

  instanceEnded(_node: SimNode, dealId: string, index: number, outcome: 'completed' | 'failed' | 'cancelled' | 'timeout'): void {
    if (outcome === 'completed') {
      const done = this.#instanceDone.get(dealId);
      if (done) done[index] = 1;
    } else if (outcome === 'timeout') this.#instanceCounts.timedOut += 1;
    else if (outcome === 'cancelled') this.#instanceCounts.lost += 1;
  }

  healthy(dealId: string): boolean {
    const part = parsePartDealId(dealId);
    const sickAt = part ? this.#sickAt.get(`${part.ensembleId}@${part.part}`) : undefined;
    return sickAt === undefined || this.now() < sickAt;
  }

  linked(a: SimNode, b: string): boolean {
    const target = this.#byId.get(b);
    return target !== undefined && this.net.neighbours(a.index).includes(target.index);
  }

  rtt(a: SimNode, b: string): number {
    const target = this.#byId.get(b);
    return target ? Math.round(2 * this.net.latency(a.index, target.index)) : 0;
  }

  spawned(node: SimNode, actorId: string, kind: string, input: unknown): void {
    if (kind === 'requester') {
      // a part's negotiation: its ensemble's parts are checked for when it ends
      const { parent, dealId } = input as RequesterInput;
      if (parent) this.#ensembleParts.get(parent.slice('ensemble/'.length))?.push(dealId);
      return;
    }
    if (kind !== 'allocation' && kind !== 'batch') return;
    const a = input as AllocationInput;
    if (kind === 'batch' || a.job.part) this.#extraDeals += 1;
    this.#countAllocation(node, a);
  }

  /** One more live allocation (or batch) actor of the job on the node. */
  #countAllocation(node: SimNode, input: AllocationInput): void {
    let byNode = this.#allocations.get(input.dealId);
    if (!byNode) this.#allocations.set(input.dealId, (byNode = new Map()));
    byNode.set(node.index, (byNode.get(node.index) ?? 0) + 1);
  }

  running(node: SimNode, dealId: string, delta: 1 | -1): void {
    let byNode = this.#running.get(dealId);
    if (!byNode) this.#running.set(dealId, (byNode = new Map()));
    const n = (byNode.get(node.index) ?? 0) + delta;
    if (n > 0) byNode.set(node.index, n);
    else byNode.delete(node.index);
    if (byNode.size === 0) this.#running.delete(dealId);
  }

  executed(_node: SimNode, dealId: string, outcome: string): void {
    if (outcome !== 'completed') return;
    const n = (this.#executedCompleted.get(dealId) ?? 0) + 1;
    this.#executedCompleted.set(dealId, n);
    if (n > 1) this.#reruns += 1;
  }

  filter(node: SimNode, actorId: string, event: { type: string }, intents: Intent[]): Intent[] {
    // a crash between an event it logged and that event's effects: the effects are lost
    const armed = this.#armed.get(node.index);
    if (armed && actorId !== NODE_ACTOR && intents.length > 0) {
      this.#armed.delete(node.index);
      this.crash(node.index, true);
      this.queue.at(this.now() + armed.downMs, () => this.restart(node.index));
      return intents;
    }
    const plant = this.opts.plant;
    if (!plant || intents.length === 0) return intents;
    if (plant === 'forget-unlock-on-revert' && event.type === 'deal.revert' && actorId.startsWith('provider/')) return intents.filter((i) => i.type !== 'ledger.unlock');
    if (plant === 'ignore-cancel' && event.type === 'allocation.cancel') return intents.filter((i) => i.type !== 'execution.cancel');
    // an array job's allocation that ends without giving its resources back
    if (plant === 'batch-keeps-resources' && node.actors.get(actorId)?.kind === 'batch') return intents.filter((i) => i.type !== 'ledger.release');
    // an ensemble that stops without stopping its parts
    if (plant === 'ensemble-leaves-parts' && actorId.startsWith('ensemble/')) return intents.filter((i) => i.type !== 'part.cancel');
    return intents;
  }

  observe(node: SimNode, actorId: string, kind: string, context: unknown, event: { type: string }): void {
    this.#step += 1;
    const slot = this.#step % HISTORY;
    this.#historyAt[slot] = this.now();
    this.#historyNode[slot] = node.index;
    this.#historyActor[slot] = actorId;
    this.#historyEvent[slot] = event;
    if (kind === 'node') {
      const ledger = (context as NodeContext).ledger;
      if (ledger !== this.#ledgers[node.index]) {
        this.#setAllocated(node.index, ledger);
        checkLedger(ledger, node.index, this.now());
      }
    } else if (kind === 'requester') {
      const rec = (context as { record: JobRecord }).record;
      const open = this.#open.get(rec.id);
      if (open && open.placedAt === null && rec.startedAt !== null) open.placedAt = rec.startedAt;
      if (open && event.type === 'job.cancel' && open.cancelledAt === null) open.cancelledAt = this.now();
    } else if (kind === 'array') this.#observeArray(node, (context as { record: ArrayRecord }).record, event);
    else if (kind === 'ensemble') this.#observeEnsemble((context as { record: EnsembleRecord }).record, event);
  }

  retired(node: SimNode, actorId: string, kind: string, record: unknown): void {
    if (kind === 'requester') return parsePartDealId((record as JobRecord).id) ? this.#partEnded(record as JobRecord) : this.#jobEnded(node, record as JobRecord);
    if (kind === 'array') return this.#arrayEnded(node, record as ArrayRecord);
    if (kind === 'ensemble') return this.#ensembleEnded(node, record as EnsembleRecord);
    if (kind === 'provider') {
      const rec = record as ProviderRecord;
      // once everything queued at the node is done (its unlock, its release), nothing of the deal may be held
      node.after(() => {
        if (!node.alive) return;
        const ledger = node.nodeContext().ledger;
        if (ledger.locks[rec.key]) this.#fail('lock-released', `provider deal ${rec.key} ended ${rec.state} but its lock is still held: ${JSON.stringify(ledger.locks[rec.key]!.resources)}`, node.index);
        if (rec.state !== 'done' && ledger.allocations[rec.key] && !node.has(`allocation/${rec.key}`)) this.#fail('lock-released', `provider deal ${rec.key} ended ${rec.state} with an allocation in the ledger and none running`, node.index);
      });
      return;
    }
    if (kind === 'allocation' || kind === 'batch') {
      const rec = record as AllocationRecordView;
      const byNode = this.#allocations.get(rec.dealId);
      const left = (byNode?.get(node.index) ?? 1) - 1;
      if (left > 0) byNode!.set(node.index, left);
      else byNode?.delete(node.index);
      node.after(() => {
        if (!node.alive) return;
        const held = node.nodeContext().ledger.allocations[rec.allocationId];
        if (held) this.#fail('resources-returned', `allocation ${rec.allocationId} ended ${rec.state} but the ledger still holds ${JSON.stringify(held.resources)} for it`, node.index);
      });
    }
  }

  // ---- invariants ---------------------------------------------------------------------------------------------

  #fail(invariant: string, message: string, node: number): never {
    throw new SimViolation(invariant, message, this.now(), node);
  }

  #jobEnded(node: SimNode, rec: JobRecord): void {
    const open = this.#open.get(rec.id);
    this.#open.delete(rec.id);
    this.#outcomes.push({ kind: 'task', state: rec.state, createdAt: rec.createdAt, startedAt: rec.startedAt, endedAt: rec.endedAt, rounds: rec.rounds });
    if (rec.state === 'completed') {
      if (this.#completed.has(rec.id)) this.#fail('completes-once', `job ${rec.id} completed a second time`, node.index);
      this.#completed.add(rec.id);
    }
    if (rec.state === 'cancelled' || (open?.cancelledAt ?? null) !== null) {
      // nothing of it may run, a while after, on any provider its requester can reach
      const dealId = rec.id;
      const requester = node.index;
      this.queue.at(this.now() + CANCEL_BOUND_MS, () => {
        for (const [what, table] of [['an allocation', this.#allocations], ['a process', this.#running]] as const) {
          for (const [n, count] of table.get(dealId) ?? []) {
            if (count > 0 && this.nodes[n]!.alive && this.net.sameSide(n, requester)) this.#fail('cancel-stops', `job ${dealId} was cancelled ${CANCEL_BOUND_MS / 1000} s ago and ${what} of it still runs on n${n}`, n);
          }
        }
      });
    }
  }

  /**
   * After every event of an array job: each index is counted completed at most once. An index counted completed
   * stays so; it became so only after a run of it completed on a provider, and on a deal the record names; and the
   * record's count, its per-index states and its deals' counts agree.
   */
  #observeArray(node: SimNode, rec: ArrayRecord, event: { type: string }): void {
    const open = this.#open.get(rec.id);
    if (open && open.placedAt === null && rec.startedAt !== null) open.placedAt = rec.startedAt;
    if (open && event.type === 'job.cancel' && open.cancelledAt === null) open.cancelledAt = this.now();
    const before = this.#arrays.get(rec.id);
    if (before === rec) return;
    this.#arrays.set(rec.id, rec);
    const was = before?.instanceStates;
    const states = rec.instanceStates;
    if (was === states) return;
    if (open) open.progressAt = this.now();
    const done = this.#instanceDone.get(rec.id);
    let completed = 0;
    for (let i = 0; i < states.length; i += 1) {
      if (states.charCodeAt(i) !== C) {
        if (was?.charCodeAt(i) === C) this.#fail('instance-completes-once', `array job ${rec.id} counted index ${i} completed, and now counts it ${states[i]}`, node.index);
        continue;
      }
      completed += 1;
      if (was?.charCodeAt(i) === C) continue;
      if (done && done[i] !== 1) this.#fail('instance-ran', `array job ${rec.id} counts index ${i} completed, but no run of it completed on any provider`, node.index);
      if ((rec.ranOn[i] ?? -1) < 0) this.#fail('instance-completes-once', `array job ${rec.id} counts index ${i} completed on no deal`, node.index);
    }
    const byDeals = rec.deals.reduce((s, d) => s + d.completed, 0);
    if (completed !== rec.instances.completed || byDeals !== completed) {
      this.#fail('instance-completes-once', `array job ${rec.id} has ${completed} indexes completed, counts ${rec.instances.completed} completions, and its deals ${byDeals}`, node.index);
    }
  }

  #arrayEnded(node: SimNode, rec: ArrayRecord): void {
    const open = this.#open.get(rec.id);
    this.#open.delete(rec.id);
    this.#arrays.delete(rec.id);
    this.#outcomes.push({ kind: 'array', state: rec.state, createdAt: rec.createdAt, startedAt: rec.startedAt, endedAt: rec.endedAt, rounds: rec.rounds });
    if (rec.state === 'completed') {
      if (this.#completed.has(rec.id)) this.#fail('completes-once', `array job ${rec.id} completed a second time`, node.index);
      this.#completed.add(rec.id);
      if (rec.instances.completed !== rec.count) this.#fail('instance-completes-once', `array job ${rec.id} completed with ${rec.instances.completed} of ${rec.count} instances completed`, node.index);
    }
    const n = this.#instanceCounts;
    n.completed += rec.instances.completed;
    n.failed += rec.instances.failed;
    n.duplicates += rec.duplicates;
    n.retried += retriedOf(rec);
    this.#instancePlans.delete(rec.id);
    this.#instanceRuns.delete(rec.id);
    this.#instanceDone.delete(rec.id);
    // however it ended, its deals were let go: nothing of it may run, a while after, on a provider it can reach
    this.#checkStopped('array-stops', [rec.id], node.index, arrayStopBoundMs(open?.timeoutMs ?? 0), `array job ${rec.id} ended ${rec.state}`);
  }

  #observeEnsemble(rec: EnsembleRecord, event: { type: string }): void {
    const open = this.#open.get(rec.id);
    if (open && open.placedAt === null && rec.startedAt !== null) open.placedAt = rec.startedAt;
    if (open && event.type === 'job.cancel' && open.cancelledAt === null) open.cancelledAt = this.now();
    this.#ensembleRecords.set(rec.id, rec);
    // a part lost with its provider runs again on a new allocation: the ensemble recovered from the crash
    const lost = this.#crashedParts.get(rec.id);
    if (!lost) return;
    for (const p of rec.parts) {
      const was = lost.get(p.name);
      if (was === undefined || p.allocationId === null || p.allocationId === was || (p.state !== 'running' && p.state !== 'completed')) continue;
      lost.delete(p.name);
      this.#recovered += 1;
    }
    if (lost.size === 0) this.#crashedParts.delete(rec.id);
  }

  #ensembleEnded(node: SimNode, rec: EnsembleRecord): void {
    this.#open.delete(rec.id);
    this.#crashedParts.delete(rec.id);
    this.#ensembleRecords.delete(rec.id);
    this.#outcomes.push({ kind: 'ensemble', state: rec.state, createdAt: rec.createdAt, startedAt: rec.startedAt, endedAt: rec.endedAt, rounds: 0 });
    if (rec.state === 'completed') {
      if (this.#completed.has(rec.id)) this.#fail('completes-once', `ensemble ${rec.id} completed a second time`, node.index);
      this.#completed.add(rec.id);
    }
    this.#ensembleRestarts += rec.restarts;
    const parts = this.#ensembleParts.get(rec.id) ?? [];
    this.#ensembleParts.delete(rec.id);
    // however it ended, it stopped its parts: none may run, a while after, on a provider its requester can reach,
    // and none of their negotiations may be left on the requester
    this.#checkStopped('ensemble-stops', parts, node.index, ENSEMBLE_STOP_BOUND_MS, `ensemble ${rec.id} ended ${rec.state}`);
    this.queue.at(this.now() + ENSEMBLE_STOP_BOUND_MS, () => {
      const left = node.alive ? parts.find((dealId) => node.has(`job/${dealId}`)) : undefined;
      if (left) this.#fail('ensemble-stops', `ensemble ${rec.id} ended ${rec.state} ${ENSEMBLE_STOP_BOUND_MS / 1000} s ago and the negotiation of its part ${left} is still live on its requester`, node.index);
    });
  }

  /** A part's negotiation ended: counted with the deals (its rounds), not as a job. */
  #partEnded(rec: JobRecord): void {
    this.#outcomes.push({ kind: 'part', state: rec.state, createdAt: rec.createdAt, startedAt: rec.startedAt, endedAt: rec.endedAt, rounds: rec.rounds });
  }

  /** `boundMs` from now, no allocation or process of `dealIds` may run on a live node on the requester's side. */
  #checkStopped(invariant: string, dealIds: readonly string[], requester: number, boundMs: number, what: string): void {
    this.queue.at(this.now() + boundMs, () => {
      for (const dealId of dealIds) {
        for (const [thing, table] of [['an allocation', this.#allocations], ['a process', this.#running]] as const) {
          for (const [n, count] of table.get(dealId) ?? []) {
            if (count > 0 && this.nodes[n]!.alive && this.net.sameSide(n, requester)) this.#fail(invariant, `${what} ${Math.round(boundMs / 1000)} s ago and ${thing} of ${dealId} still runs on n${n}`, n);
          }
        }
      }
    });
  }

  /** Every few simulated seconds: jobs past their deadline, locks past their expiry, allocations without an owner. */
  sweep(): void {
    const now = this.now();
    for (const [id, job] of this.#open) {
      if (now <= job.deadline + END_BOUND_MS || !this.nodes[job.requester]!.alive) continue;
      // an array job's deadline bounds its wait for room, not its run (INTERFACE.md "Many tasks"): past it, it ends
      // or goes on making progress (an instance ends at the latest at its time limit; a silent provider is dropped)
      if (job.kind === 'array') {
        const idle = now - (job.progressAt ?? 0);
        if (idle > job.timeoutMs + END_BOUND_MS) this.#fail('jobs-end', `array job ${id} is ${Math.round((now - job.deadline) / 1000)} s past its queue deadline and no instance of it changed state for ${Math.round(idle / 1000)} s`, job.requester);
        continue;
      }
      // what the job's record says it is doing, for the report
      const live = this.nodes[job.requester]!.actors.get(`job/${id}`);
      const rec = (live?.actor.getSnapshot().context as { record?: JobRecord } | undefined)?.record;
      // the deadline bounds placement (a job may be placed until it): a task placed late runs its time limit from
      // its start, and its allocation stops it then (plus the allocation's grace)
      if (job.kind === 'task' && rec?.state === 'running' && rec.startedAt !== null && now <= rec.startedAt + job.timeoutMs + ALLOCATION_TIMING.timeoutGraceMs + END_BOUND_MS) continue;
      const story = rec?.history ? `; it is ${rec.state} (round ${rec.rounds}, provider ${rec.provider ?? 'none'}): ${rec.history.slice(-6).map((h) => `${h.at - SIM_EPOCH} ms ${h.state}: ${h.message}`).join(' | ')}` : '';
      this.#fail('jobs-end', `${job.kind === 'ensemble' ? 'ensemble' : 'job'} ${id} has not ended ${Math.round((now - job.deadline) / 1000)} s after its deadline${story}`, job.requester);
    }
    for (const node of this.nodes) {
      if (!node.alive || node.backlog > 0) continue;
      const ledger = node.nodeContext().ledger;
      for (const [id, lock] of Object.entries(ledger.locks)) {
        if (lock.expiresAt + 5_000 < now) this.#fail('lock-released', `lock ${id} expired ${Math.round((now - lock.expiresAt) / 1000)} s ago and is still held`, node.index);
        if (!node.has(`provider/${id}`)) this.#fail('lock-released', `lock ${id} is held with no provider negotiation for it`, node.index);
      }
      for (const id of Object.keys(ledger.allocations)) {
        if (!node.has(`allocation/${id}`) && !node.has(`provider/${id}`)) this.#fail('resources-returned', `allocation ${id} holds resources with nothing running for it`, node.index);
        // its provider deal took the allocation and waits for it to end, but none runs that could (its spawn or its end was lost)
        const provider = node.actors.get(`provider/${id}`);
        if (provider && !node.has(`allocation/${id}`) && provider.actor.getSnapshot().value === 'allocated') this.#fail('resources-returned', `allocation ${id} holds resources; its provider deal waits for it to end, and no allocation runs for it`, node.index);
      }
    }
  }

  #finalChecks(end: number): void {
    void end;
    this.sweep();
  }

  #setAllocated(index: number, ledger: Ledger | null): void {
    this.#accrue();
    let cpu = 0;
    if (ledger) for (const a of Object.values(ledger.allocations)) cpu += a.resources.cpu;
    this.#totalAllocated += cpu - this.#allocatedCpu[index]!;
    this.#allocatedCpu[index] = cpu;
    this.#ledgers[index] = ledger;
  }

  #accrue(): void {
    const now = this.now();
    this.#capacityArea += this.#totalAllocated * (now - this.#areaAt);
    this.#areaAt = now;
  }

  #recent(): string[] {
    const out: string[] = [];
    for (let k = Math.max(1, this.#step - HISTORY + 1); k <= this.#step; k += 1) {
      const slot = k % HISTORY;
      const at = this.#historyAt[slot]!;
      const node = this.#historyNode[slot]!;
      const actorId = this.#historyActor[slot]!;
      const event = this.#historyEvent[slot]!;
      out.push(`${at - SIM_EPOCH}ms n${node} ${actorId} <- ${event.type}${describe(event)}`);
    }
    return out;
  }

  // ---- the report ---------------------------------------------------------------------------------------------

  #report(violation: SimReport['violation'], wallMs: number, nodes: number): SimReport {
    // jobs: tasks, array jobs and ensembles (an ensemble's parts are its deals, not jobs)
    const outcomes = this.#outcomes.filter((o) => o.kind !== 'part');
    const placed = outcomes.filter((o) => o.startedAt !== null);
    const openPlaced = [...this.#open.values()].filter((o) => o.placedAt !== null);
    const latencies = [...placed.map((o) => o.startedAt! - o.createdAt)].sort((a, b) => a - b);
    const simulatedMs = this.now() - SIM_EPOCH;
    const events = this.nodes.reduce((s, n) => s + n.events, 0);
    const c = this.net.counters;
    // deals: the tasks placed, and the allocations of array jobs and of ensembles' parts
    const tasksPlaced = placed.filter((o) => o.kind === 'task').length + openPlaced.filter((o) => o.kind === 'task').length;
    const deals = tasksPlaced + this.#extraDeals;
    const messages = c.direct + c.broadcastHops;
    // rounds: of every negotiation that placed something (tasks, array jobs, parts)
    const negotiated = this.#outcomes.filter((o) => o.startedAt !== null && o.kind !== 'ensemble');
    const rounds = negotiated.reduce((s, o) => s + o.rounds, 0);
    const count = (state: string, kind?: JobOutcome['kind']) => outcomes.filter((o) => o.state === state && (kind === undefined || o.kind === kind)).length;
    const n = { ...this.#instanceCounts };
    for (const rec of this.#arrays.values()) {
      n.completed += rec.instances.completed;
      n.failed += rec.instances.failed;
      n.duplicates += rec.duplicates;
      n.retried += retriedOf(rec);
    }
    const ensemblesPlaced = placed.filter((o) => o.kind === 'ensemble').length + openPlaced.filter((o) => o.kind === 'ensemble').length;
    const heap = process.memoryUsage().heapUsed;
    const report: Omit<SimReport, 'digest'> = {
      scenario: this.opts.scenario.name,
      seed: this.opts.seed,
      nodes,
      simulatedMs,
      wallMs: Math.round(wallMs),
      events,
      eventsPerSec: Math.round(events / (wallMs / 1000)),
      violation,
      jobs: { submitted: this.#submitted, placed: placed.length + openPlaced.length, completed: count('completed'), failed: count('failed'), cancelled: count('cancelled'), open: this.#open.size },
      placementMs: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), max: latencies.length > 0 ? latencies[latencies.length - 1]! : null },
      dealsPerSimSec: simulatedMs > 0 ? round3(deals / (simulatedMs / 1000)) : 0,
      messagesPerDeal: deals > 0 ? round3(messages / deals) : null,
      roundsPerDeal: negotiated.length > 0 ? round3(rounds / negotiated.length) : null,
      capacityUsed: this.#capacityCpu > 0 && simulatedMs > 0 ? round3(this.#capacityArea / (this.#capacityCpu * simulatedMs)) : 0,
      reruns: this.#reruns,
      network: { ...c },
      faults: { crashes: this.#crashes, restarts: this.#restarts, partitions: this.#partitions },
      instances: n,
      ensembles: { submitted: this.#ensembles, placed: ensemblesPlaced, completed: count('completed', 'ensemble'), failed: count('failed', 'ensemble'), cancelled: count('cancelled', 'ensemble'), restarts: [...this.#ensembleRecords.values()].reduce((s, e) => s + e.restarts, this.#ensembleRestarts), recovered: this.#recovered },
      memory: { heapUsedBytes: heap, perNodeBytes: Math.round(heap / nodes) },
    };
    return { ...report, digest: this.digest() };
  }

  /** The final state in one hash: every node's ledger, live actors and counts, and what became of every job. */
  digest(): string {
    const h = createHash('sha256');
    for (const node of this.nodes) {
      h.update(`${node.index}:${node.id}:${node.alive}:${node.events}:${node.dropped}|`);
      if (!node.alive) continue;
      const ctx = node.nodeContext();
      h.update(JSON.stringify([ctx.ledger.locks, ctx.ledger.allocations, ctx.declined]));
      for (const [id, live] of node.actors) if (id !== NODE_ACTOR) h.update(`${id}=${JSON.stringify(live.actor.getSnapshot().value)};`);
    }
    for (const o of this.#outcomes) h.update(`${o.kind === 'task' ? '' : `${o.kind}:`}${o.state},${o.createdAt},${o.startedAt},${o.endedAt},${o.rounds};`);
    if (this.#instanceCounts.runs > 0) h.update(JSON.stringify(this.#instanceCounts));
    if (this.#ensembles > 0) h.update(`ensembles:${this.#ensembleRestarts},${this.#recovered};`);
    h.update(JSON.stringify(this.net.counters));
    return h.digest('hex');
  }
}

/** The ledger never promises more than the node registered: locked + allocated <= registered, per resource. */
function checkLedger(ledger: Ledger, node: number, now: number): void {
  const reg = ledger.registered;
  let cpu = 0;
  let memory = 0;
  let disk = 0;
  for (const l of Object.values(ledger.locks)) {
    cpu += l.resources.cpu;
    memory += l.resources.memory;
    disk += l.resources.disk;
  }
  for (const a of Object.values(ledger.allocations)) {
    cpu += a.resources.cpu;
    memory += a.resources.memory;
    disk += a.resources.disk;
  }
  const over = cpu > reg.cpu + 1e-6 ? `cpu ${cpu} > ${reg.cpu}` : memory > reg.memory ? `memory ${memory} > ${reg.memory}` : disk > reg.disk ? `disk ${disk} > ${reg.disk}` : null;
  if (over) throw new SimViolation('no-overbooking', `node n${node} has locked + allocated more than it registered: ${over}`, now, node);
}

/** An index counted completed, in an array record's `instanceStates`. */
const C = 'c'.charCodeAt(0);

/** Failed runs of an array job that were run again: every failure of an index but the last of one that failed for good. */
function retriedOf(rec: ArrayRecord): number {
  let n = 0;
  for (const [i, f] of Object.entries(rec.failures)) n += rec.instanceStates[Number(i)] === 'f' ? f.attempts - 1 : f.attempts;
  return n;
}

/** A job of the simulated workload: a small WASM module, no constraints unless given. */
function wasmJob<T extends Omit<JobSpec, 'constraints' | 'executor'> & { constraints?: JobSpec['constraints'] }>(job: T): JobSpec {
  return { ...job, executor: 'wasm', constraints: job.constraints ?? { peers: [], excludePeers: [] }, wasm: { module: { sha256: 'ab'.repeat(32), size: 2_000 }, args: [], env: {} } } as JobSpec;
}

function describe(event: { type: string; [k: string]: unknown }): string {
  const parts: string[] = [];
  for (const k of ['from', 'dealId', 'nonce', 'key', 'id', 'allocationId', 'code', 'state', 'ok']) {
    const v = event[k];
    if (v !== undefined && typeof v !== 'object') parts.push(`${k}=${k === 'from' ? String(v).slice(-6) : String(v)}`);
  }
  if (event.type === 'bid.submit') parts.push(`provider=${String((event.bid as { provider: string }).provider).slice(-6)}`);
  return parts.length > 0 ? ` (${parts.join(' ')})` : '';
}

function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** A peer id shaped like a libp2p one (base58), unique per index: `12D3KooWSim...`. */
export function simPeerId(index: number): string {
  let s = '';
  let n = index;
  do {
    s = B58[n % 58]! + s;
    n = Math.floor(n / 58);
  } while (n > 0);
  return `12D3KooWSimNode${s.padStart(37, '1')}`;
}

function benchmarkFor(rng: Random): unknown {
  const perCore = 80_000_000 + rng.int(0, 40_000_000);
  return {
    cores: 8,
    cpuOpsPerSecPerCore: perCore,
    cpuOpsPerSecTotal: perCore * 8,
    memoryTotal: 64 * 2 ** 30,
    diskTotal: 2 ** 40,
    diskFree: 2 ** 39,
    diskWriteBytesPerSec: 500 * 2 ** 20,
    gpus: [],
    arch: 'x64',
    cpuModel: 'simulated',
    measuredAt: new Date(SIM_EPOCH).toISOString(),
    durationMs: 1000,
  };
}
