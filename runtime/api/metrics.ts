/**
 * The node's Prometheus metrics (GET /metrics on the API address, no token, loopback only): process metrics and the
 * `dms_*` metrics of INTERFACE.md, in a registry of the node's own (several nodes may share a process in tests).
 * Every value but the two histograms is read at scrape time from what the node keeps anyway (the Node's ledger as
 * `info` shows it, the indexes, the network's counters, the supervisor, the heartbeat of the allocations running
 * here), so a metric cannot drift from what `info` and `status` say. The histograms are fed where the thing they
 * time happens: the journal's group commit, and a job's fact that it runs (see `Timings`).
 */
import type http from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DealKind } from '../deals/deal-registry.ts';
import type { AllocationState } from '../../machines/deal.wire.ts';
import { REJECT_REASONS } from '../../machines/envelope.ts';
import type { Fact, Indexes, JobEndState } from '../../machines/indexes.ts';
import { EDGE_REASONS } from '../net/edge-reasons.ts';
import type { NetCountersView } from '../net/net-counters.ts';
import type { FactRecord } from '../supervisor/supervision.ts';
import type { OpenRoute } from './http-server.ts';

export const METRICS_PATH = '/metrics';

/** A deal's time from deploy to running: 10 ms (two nodes on one host) to 30 s (a slow bid window, a busy provider). */
export const DEAL_SECONDS_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** One journal group commit (write + fdatasync): 10 µs (tmpfs) to 100 ms (a slow disk). */
export const APPEND_SECONDS_BUCKETS = [1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1];

const CAPABILITY_KINDS = ['registered', 'locked', 'allocated', 'available'] as const;
const RESOURCES = ['cpu', 'memory', 'disk'] as const;
const JOB_END_STATES: readonly JobEndState[] = ['completed', 'failed', 'cancelled'];
/** The states of an allocation that has not ended (the heartbeat forgets it at its end). */
const LIVE_ALLOCATION_STATES = ['pending', 'starting', 'running', 'stopping'] as const satisfies readonly AllocationState[];
const REJECT_LABELS: readonly string[] = [...REJECT_REASONS, ...EDGE_REASONS];
/** Every actor kind, so each has its series from the start (a Record: the compiler names a kind left out). */
const ACTOR_KINDS = Object.keys({ node: 0, requester: 0, provider: 0, allocation: 0, ensemble: 0, array: 0, batch: 0 } satisfies Record<DealKind | 'node', 0>);

type Resources = { readonly cpu: number; readonly memory: number; readonly disk: number };

/** What the metrics read at scrape time, each from the part of the node that keeps it. */
export interface MetricFacts {
  /** The Node's ledger as `info` shows it: what it registered, holds locked, has allocated, has available. */
  capability(): Promise<Readonly<Record<(typeof CAPABILITY_KINDS)[number], Resources>>>;
  /** Connected peers, as `info` counts them. */
  peers(): number;
  /** The network's envelope counters (`info`'s messages), or null while there is no network. */
  envelopes(): NetCountersView | null;
  /** The indexes: bid requests and bids sent and received, jobs ended by state. */
  indexes(): Indexes;
  /** Allocations running here that have not ended, by their latest state. */
  allocations(): ReadonlyMap<string, number>;
  /** Actor restarts the supervisor ordered, by actor kind. */
  restarts(): ReadonlyMap<string, number>;
}

/**
 * The two histograms, made before the node's parts that feed them (the store, the actors) and registered with the
 * node's registry when the API starts.
 */
export interface Timings {
  readonly dealSeconds: Histogram;
  readonly appendSeconds: Histogram;
  /** Observes the deal time of each job that starts running in these facts (call before they are folded into `before`). */
  facts(records: readonly FactRecord[], before: Indexes): void;
}

export function createTimings(): Timings {
  const dealSeconds = new Histogram({ name: 'dms_deal_seconds', help: 'Jobs this node asked for: seconds from deploy to running, once each time a job starts running', buckets: DEAL_SECONDS_BUCKETS, registers: [] });
  const appendSeconds = new Histogram({ name: 'dms_event_log_append_seconds', help: 'Seconds of each durable journal group commit (one write and one fdatasync for every record appended meanwhile)', buckets: APPEND_SECONDS_BUCKETS, registers: [] });
  return { dealSeconds, appendSeconds, facts: (records, before) => observeDeals(dealSeconds, records, before) };
}

/**
 * A job that enters `running`: its record's startedAt - createdAt. Compared with its previous state (in the indexes,
 * or earlier in the same batch), so a fact replayed at a restart for a job the indexes already have running, or a
 * change of a running job, is no second observation.
 */
function observeDeals(h: Histogram, records: readonly FactRecord[], before: Indexes): void {
  let seen: Map<string, string> | undefined;
  for (const r of records) {
    const f = r.fact as Fact;
    if (f.type !== 'JobChanged') continue;
    const { id, state, createdAt, startedAt } = f.job;
    const prev = seen?.get(id) ?? before.jobs[id]?.state;
    (seen ??= new Map()).set(id, state);
    if (state === 'running' && prev !== 'running' && typeof startedAt === 'number' && createdAt !== undefined) h.observe(Math.max(0, startedAt - createdAt) / 1000);
  }
}

export interface NodeMetrics {
  readonly register: Registry;
}

/** The node's registry: process metrics, the `dms_*` metrics read from `facts` at scrape time, and `timings`. */
export function createNodeMetrics(facts: MetricFacts, timings: Timings): NodeMetrics {
  const register = new Registry();
  collectDefaultMetrics({ register });
  nodeGauges(register, facts);
  networkCounters(register, facts);
  dealCounters(register, facts);
  register.registerMetric(timings.dealSeconds);
  register.registerMetric(timings.appendSeconds);
  new Counter({
    name: 'dms_actor_restarts_total', help: 'Actor restarts the supervisor ordered, by actor kind', labelNames: ['kind'], registers: [register],
    collect() {
      const restarts = facts.restarts();
      this.reset();
      for (const kind of ACTOR_KINDS) this.inc({ kind }, restarts.get(kind) ?? 0);
      for (const [kind, n] of restarts) if (!ACTOR_KINDS.includes(kind)) this.inc({ kind }, n);
    },
  });
  return { register };
}

/** What the node has and holds now: its ledger, its peers, the allocations running here. */
function nodeGauges(register: Registry, facts: MetricFacts): void {
  const registers = [register];
  new Gauge({
    name: 'dms_capability', help: 'The Node\'s ledger as `info` shows it: cpu in cores, memory and disk in bytes', labelNames: ['kind', 'resource'], registers,
    async collect() {
      const c = await facts.capability();
      for (const kind of CAPABILITY_KINDS) for (const resource of RESOURCES) this.set({ kind, resource }, c[kind][resource]);
    },
  });
  new Gauge({ name: 'dms_peers', help: 'Peers connected now', registers, collect() { this.set(facts.peers()); } });
  new Gauge({
    name: 'dms_allocations', help: 'Allocations running on this node that have not ended, by state', labelNames: ['state'], registers,
    collect() {
      const counts = facts.allocations();
      this.reset();
      for (const state of LIVE_ALLOCATION_STATES) this.set({ state }, counts.get(state) ?? 0);
    },
  });
}

/** The envelopes the network took and sent, and those it refused (every reason from the start, at 0). */
function networkCounters(register: Registry, facts: MetricFacts): void {
  const registers = [register];
  new Counter({
    name: 'dms_envelopes_total', help: 'Signed envelopes taken in and sent out, direct and broadcast', labelNames: ['direction'], registers,
    collect() {
      const c = facts.envelopes();
      this.reset();
      this.inc({ direction: 'in' }, c ? c.in + c.broadcastIn : 0);
      this.inc({ direction: 'out' }, c ? c.out + c.broadcastOut : 0);
    },
  });
  new Counter({
    name: 'dms_envelopes_rejected_total', help: 'Frames and envelopes from the network refused at the edge, by reason', labelNames: ['reason'], registers,
    collect() {
      const rejected: Readonly<Record<string, number | undefined>> = facts.envelopes()?.rejected ?? {};
      this.reset();
      for (const reason of REJECT_LABELS) this.inc({ reason }, rejected[reason] ?? 0);
      for (const reason in rejected) if (!REJECT_LABELS.includes(reason)) this.inc({ reason }, rejected[reason] ?? 0);
    },
  });
}

/** Bid requests and bids both ways, and the jobs this node asked for that ended: counted by the indexes' fold. */
function dealCounters(register: Registry, facts: MetricFacts): void {
  const registers = [register];
  const roles = (name: string, help: string, read: (ix: Indexes) => readonly [number, number]) =>
    new Counter({
      name, help, labelNames: ['role'], registers,
      collect() {
        const [sent, received] = read(facts.indexes());
        this.reset();
        this.inc({ role: 'sent' }, sent);
        this.inc({ role: 'received' }, received);
      },
    });
  roles('dms_bid_requests_total', 'Bid requests this node sent (one per round of a job) and received (those its Node answered, bid or decline)', (ix) => [ix.bidRequestsSent.count, ix.bidRequestsReceived.count]);
  roles('dms_bids_total', 'Bids this node sent (as a provider) and received (as a requester)', (ix) => [ix.bidsSent.count, ix.bidsReceived.count]);
  new Counter({
    name: 'dms_jobs_total', help: 'Jobs this node asked for that ended, by terminal state', labelNames: ['state'], registers,
    collect() {
      const ended = facts.indexes().jobsEnded;
      this.reset();
      for (const state of JOB_END_STATES) this.inc({ state }, ended?.[state] ?? 0);
    },
  });
}

/** The route of GET /metrics (HEAD too): the registry in the Prometheus text format; 405 for other methods. */
export function metricsRoute(register: Registry): OpenRoute {
  return async (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => {
    if (url.pathname !== METRICS_PATH) return false;
    req.resume(); // a scrape has no body
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const text = `${req.method} is not allowed on ${METRICS_PATH}; use GET\n`;
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return true;
    }
    const text = await register.metrics();
    res.writeHead(200, { 'content-type': register.contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : text);
    return true;
  };
}
