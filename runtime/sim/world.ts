/**
 * A simulated network of nodes: the clock, the network, the workload of a scenario, the faults, the invariants
 * checked after every event, and the figures of the run. Everything that varies comes from one seed, so the same
 * options give the same run and the same digest, byte for byte.
 */
import { createHash } from 'node:crypto';
import { DEAL_DEFAULTS } from '../../machines/deal.constants.ts';
import { createJobId, type JobSpec } from '../../machines/job.ts';
import type { Ledger } from '../../machines/ledger.ts';
import type { NodeContext } from '../../machines/node.machine.ts';
import { DEFAULT_PREFERENCES } from '../../machines/preferences.ts';
import type { JobRecord, RequesterInput } from '../../machines/requester.messages.ts';
import type { ProviderRecord } from '../../machines/provider.messages.ts';
import type { AllocationRecordView } from '../../machines/allocation.messages.ts';
import { EventQueue } from './event-queue.ts';
import { LAN_MODEL, type NetworkModel, SimNetwork } from './network.ts';
import { Random } from './random.ts';
import { type Intent, NODE_ACTOR, type SimHost, SimNode } from './sim-node.ts';
import type { Scenario } from './scenarios.ts';

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

/** Bugs planted on purpose, to show the invariants catch them. */
export const PLANTS = ['forget-unlock-on-revert', 'ignore-cancel'] as const;
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
  readonly state: string;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly endedAt: number | null;
  readonly rounds: number;
}

interface OpenJob {
  readonly requester: number;
  readonly deadline: number;
  cancelledAt: number | null;
  placedAt: number | null;
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
  #step = 0;
  readonly #history: [number, number, string, { type: string }][] = new Array(HISTORY);
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
    const bytes = new Uint8Array(16);
    for (let i = 0; i < 16; i += 4) new DataView(bytes.buffer).setUint32(i, this.#work.uint32());
    const dealId = createJobId(bytes);
    const spec = { ...job, executor: 'wasm', constraints: job.constraints ?? { peers: [], excludePeers: [] }, wasm: { module: { sha256: 'ab'.repeat(32), size: 2_000 }, args: [], env: {} } } as JobSpec;
    const now = this.now();
    const input: RequesterInput = { dealId, job: spec, self: node.id, createdAt: now, deadline: now + DEAL_DEFAULTS.placementMs + spec.timeoutMs, weights: DEFAULT_PREFERENCES.requester.weights, timing: DEAL_DEFAULTS.requester };
    this.#plans.set(dealId, plan);
    this.#open.set(dealId, { requester, deadline: input.deadline, cancelledAt: null, placedAt: null });
    this.#submitted += 1;
    node.deploy(input);
    if (cancelAfterMs !== null) this.queue.at(now + cancelAfterMs, () => this.cancel(dealId));
    return dealId;
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
    for (const [id, live] of node.actors) if (live.kind === 'allocation') this.spawned(node, id, 'allocation', live.log.input);
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

  broadcast(from: SimNode, deliver: (node: SimNode) => void): { candidates: string[]; open: boolean; connected: number } {
    const reached = this.net.broadcast(from.index, (b) => deliver(this.nodes[b]!));
    const near = this.net.neighbours(from.index).filter((b) => this.net.isUp(b) && this.net.sameSide(from.index, b));
    return { candidates: near.map((b) => this.nodes[b]!.id), open: reached > near.length, connected: near.length };
  }

  plan(dealId: string): { durationMs: number; fails: boolean; hangs: boolean } {
    return this.#plans.get(dealId) ?? { durationMs: 1000, fails: false, hangs: false };
  }

  rtt(a: SimNode, b: string): number {
    const target = this.#byId.get(b);
    return target ? Math.round(2 * this.net.latency(a.index, target.index)) : 0;
  }

  spawned(node: SimNode, actorId: string, kind: string, input: unknown): void {
    if (kind !== 'allocation') return;
    const dealId = (input as { dealId: string }).dealId;
    let byNode = this.#allocations.get(dealId);
    if (!byNode) this.#allocations.set(dealId, (byNode = new Map()));
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
    const plant = this.opts.plant;
    if (!plant || intents.length === 0) return intents;
    if (plant === 'forget-unlock-on-revert' && event.type === 'deal.revert' && actorId.startsWith('provider/')) return intents.filter((i) => i.type !== 'ledger.unlock');
    if (plant === 'ignore-cancel' && event.type === 'allocation.cancel') return intents.filter((i) => i.type !== 'execution.cancel');
    void node;
    return intents;
  }

  observe(node: SimNode, actorId: string, kind: string, context: unknown, event: { type: string }): void {
    this.#step += 1;
    this.#history[this.#step % HISTORY] = [this.now(), node.index, actorId, event];
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
    }
  }

  retired(node: SimNode, actorId: string, kind: string, record: unknown): void {
    if (kind === 'requester') return this.#jobEnded(node, record as JobRecord);
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
    if (kind === 'allocation') {
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
    this.#outcomes.push({ state: rec.state, createdAt: rec.createdAt, startedAt: rec.startedAt, endedAt: rec.endedAt, rounds: rec.rounds });
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

  /** Every few simulated seconds: jobs past their deadline, locks past their expiry, allocations without an owner. */
  sweep(): void {
    const now = this.now();
    for (const [id, job] of this.#open) {
      if (now > job.deadline + END_BOUND_MS && this.nodes[job.requester]!.alive) this.#fail('jobs-end', `job ${id} has not ended ${Math.round((now - job.deadline) / 1000)} s after its deadline`, job.requester);
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
      const [at, node, actorId, event] = this.#history[k % HISTORY]!;
      out.push(`${at - SIM_EPOCH}ms n${node} ${actorId} <- ${event.type}${describe(event)}`);
    }
    return out;
  }

  // ---- the report ---------------------------------------------------------------------------------------------

  #report(violation: SimReport['violation'], wallMs: number, nodes: number): SimReport {
    const outcomes = this.#outcomes;
    const placed = outcomes.filter((o) => o.startedAt !== null);
    const openPlaced = [...this.#open.values()].filter((o) => o.placedAt !== null);
    const latencies = [...placed.map((o) => o.startedAt! - o.createdAt)].sort((a, b) => a - b);
    const simulatedMs = this.now() - SIM_EPOCH;
    const events = this.nodes.reduce((s, n) => s + n.events, 0);
    const c = this.net.counters;
    const deals = placed.length + openPlaced.length;
    const messages = c.direct + c.broadcastHops;
    const rounds = placed.reduce((s, o) => s + o.rounds, 0);
    const count = (state: string) => outcomes.filter((o) => o.state === state).length;
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
      jobs: { submitted: this.#submitted, placed: deals, completed: count('completed'), failed: count('failed'), cancelled: count('cancelled'), open: this.#open.size },
      placementMs: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), max: latencies.length > 0 ? latencies[latencies.length - 1]! : null },
      dealsPerSimSec: simulatedMs > 0 ? round3(deals / (simulatedMs / 1000)) : 0,
      messagesPerDeal: deals > 0 ? round3(messages / deals) : null,
      roundsPerDeal: placed.length > 0 ? round3(rounds / placed.length) : null,
      capacityUsed: this.#capacityCpu > 0 && simulatedMs > 0 ? round3(this.#capacityArea / (this.#capacityCpu * simulatedMs)) : 0,
      reruns: this.#reruns,
      network: { ...c },
      faults: { crashes: this.#crashes, restarts: this.#restarts, partitions: this.#partitions },
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
    for (const o of this.#outcomes) h.update(`${o.state},${o.createdAt},${o.startedAt},${o.endedAt},${o.rounds};`);
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
