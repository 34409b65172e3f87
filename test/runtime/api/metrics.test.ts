// The node's Prometheus metrics (runtime/api/metrics.ts): a registry over fake facts renders every dms_* metric with
// its labels and the values the facts hold at the moment of the scrape; the histograms count what they are fed; and
// GET /metrics answers through the real API server without a token, 405 for other methods, other paths untouched.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { EMPTY_INDEXES, type Fact, type Indexes, type JobSummary, type LoggedFact, evolveIndexes } from '../../../machines/indexes.ts';
import { type ApiServer, type NodeApi, startApiServer } from '../../../runtime/api/http-server.ts';
import { type MetricFacts, type Timings, createNodeMetrics, createTimings, metricsRoute } from '../../../runtime/api/metrics.ts';
import type { NetCountersView } from '../../../runtime/net/net-counters.ts';
import { parseExposition } from '../../fixtures/prometheus.ts';

const TOKEN = 'test-token-0123456789abcdef';
const GiB = 1024 ** 3;
const T0 = 1_700_000_000_000;


const job = (id: string, state: string, extra: Partial<JobSummary> = {}): Fact => ({ type: 'JobChanged', job: { id, name: id, state, provider: 'B', exitCode: null, ...extra } });
const records = (facts: readonly Fact[]): LoggedFact[] => facts.map((fact, i) => ({ actor: 'job/x', seq: i + 1, ts: T0 + i, fact }));
const fold = (facts: readonly Fact[], from: Indexes = EMPTY_INDEXES): Indexes => records(facts).reduce(evolveIndexes, from);

/** Facts a test changes between scrapes. */
class FakeNode {
  peers = 3;
  envelopes: NetCountersView | null = { in: 10, out: 7, broadcastIn: 2, broadcastOut: 1, rejected: { 'bad-signature': 4, 'rate-limited': 1 }, rejectedTotal: 5, tooLargeOut: 0 };
  indexes: Indexes = fold([
    { type: 'BidRequestSent', dealId: 'j1', nonce: 1 },
    { type: 'BidRequestSent', dealId: 'j2', nonce: 1 },
    { type: 'BidRequestReceived', dealId: 'k', nonce: 1 },
    { type: 'BidSent', dealId: 'k', nonce: 1, requester: 'R' },
    { type: 'BidReceived', dealId: 'j1', nonce: 1, provider: 'B' },
    { type: 'BidReceived', dealId: 'j1', nonce: 1, provider: 'C' },
    { type: 'BidReceived', dealId: 'j2', nonce: 1, provider: 'B' },
    job('j1', 'running'),
    job('j1', 'completed', { exitCode: 0 }),
    job('j1', 'completed', { exitCode: 0, provider: 'C' }), // a change of an ended job: no second end
    job('j2', 'failed'),
    job('j3', 'running'),
  ]);
  allocations = new Map([['running', 2], ['starting', 1]]);
  restarts = new Map([['requester', 2], ['node', 1]]);
  capabilityReads = 0;

  facts(): MetricFacts {
    const r = (cpu: number, memory: number, disk: number) => ({ cpu, memory, disk });
    return {
      capability: async () => {
        this.capabilityReads += 1;
        return { registered: r(4, 8 * GiB, 100 * GiB), locked: r(0.5, GiB, 0), allocated: r(1, 2 * GiB, GiB), available: r(2.5, 5 * GiB, 99 * GiB) };
      },
      peers: () => this.peers,
      envelopes: () => this.envelopes,
      indexes: () => this.indexes,
      allocations: () => this.allocations,
      restarts: () => this.restarts,
    };
  }
}

interface Ctx {
  node: FakeNode;
  timings: Timings;
  scrape(): Promise<Map<string, number>>;
}

const Render = suite<Ctx>('metrics: every dms_* metric, read from the node\'s facts at scrape time', {} as Ctx);
Render.before.each((ctx) => {
  ctx.node = new FakeNode();
  ctx.timings = createTimings();
  const { register } = createNodeMetrics(ctx.node.facts(), ctx.timings);
  ctx.scrape = async () => parseExposition(await register.metrics());
});

Render('capability, peers, envelopes, bids, jobs, allocations and restarts with their labels and values', async (ctx) => {
  const m = await ctx.scrape();
  const want: Record<string, number> = {
    'dms_capability{kind="registered",resource="cpu"}': 4,
    'dms_capability{kind="registered",resource="memory"}': 8 * GiB,
    'dms_capability{kind="registered",resource="disk"}': 100 * GiB,
    'dms_capability{kind="locked",resource="cpu"}': 0.5,
    'dms_capability{kind="allocated",resource="memory"}': 2 * GiB,
    'dms_capability{kind="available",resource="cpu"}': 2.5,
    'dms_capability{kind="available",resource="disk"}': 99 * GiB,
    dms_peers: 3,
    'dms_envelopes_total{direction="in"}': 12,
    'dms_envelopes_total{direction="out"}': 8,
    'dms_envelopes_rejected_total{reason="bad-signature"}': 4,
    'dms_envelopes_rejected_total{reason="rate-limited"}': 1,
    'dms_envelopes_rejected_total{reason="replayed"}': 0,
    'dms_bid_requests_total{role="sent"}': 2,
    'dms_bid_requests_total{role="received"}': 1,
    'dms_bids_total{role="sent"}': 1,
    'dms_bids_total{role="received"}': 3,
    'dms_jobs_total{state="completed"}': 1,
    'dms_jobs_total{state="failed"}': 1,
    'dms_jobs_total{state="cancelled"}': 0,
    'dms_allocations{state="running"}': 2,
    'dms_allocations{state="starting"}': 1,
    'dms_allocations{state="pending"}': 0,
    'dms_allocations{state="stopping"}': 0,
    'dms_actor_restarts_total{kind="requester"}': 2,
    'dms_actor_restarts_total{kind="node"}': 1,
    'dms_actor_restarts_total{kind="allocation"}': 0,
    dms_deal_seconds_count: 0,
    dms_event_log_append_seconds_count: 0,
  };
  for (const [k, v] of Object.entries(want)) assert.is(m.get(k), v, k);
  assert.ok([...m.keys()].some((k) => k.startsWith('process_cpu_user_seconds_total')), 'process metrics too');
  assert.ok([...m.keys()].some((k) => k.startsWith('nodejs_heap_size_used_bytes')), 'and Node.js heap metrics');
});

Render('values are read at each scrape: a later scrape shows what changed, counters set, not added up', async (ctx) => {
  await ctx.scrape();
  ctx.node.peers = 5;
  ctx.node.envelopes = { ...ctx.node.envelopes!, in: 20 };
  ctx.node.indexes = fold([job('j3', 'cancelled')], ctx.node.indexes);
  ctx.node.allocations = new Map();
  const m = await ctx.scrape();
  assert.is(m.get('dms_peers'), 5);
  assert.is(m.get('dms_envelopes_total{direction="in"}'), 22);
  assert.is(m.get('dms_envelopes_total{direction="out"}'), 8, 'not doubled by a second scrape');
  assert.is(m.get('dms_jobs_total{state="cancelled"}'), 1);
  assert.is(m.get('dms_jobs_total{state="completed"}'), 1);
  assert.is(m.get('dms_allocations{state="running"}'), 0);
  assert.is(ctx.node.capabilityReads, 2, 'the ledger is read once per scrape');
});

Render('no network yet: envelope counters at zero', async (ctx) => {
  ctx.node.envelopes = null;
  const m = await ctx.scrape();
  assert.is(m.get('dms_envelopes_total{direction="in"}'), 0);
  assert.is(m.get('dms_envelopes_rejected_total{reason="bad-signature"}'), 0);
});

Render('deal seconds: observed once as a job starts running (deploy to running), in the right bucket', async (ctx) => {
  const createdAt = T0;
  const batch = [job('j9', 'provisioning', { createdAt, startedAt: null }), job('j9', 'running', { createdAt, startedAt: T0 + 1_500 }), job('j9', 'running', { createdAt, startedAt: T0 + 1_500, exitCode: null, provider: 'C' })];
  ctx.timings.facts(records(batch), ctx.node.indexes);
  ctx.node.indexes = fold(batch, ctx.node.indexes);
  // the same facts again (a replay at a restart): the indexes have the job running already
  ctx.timings.facts(records([job('j9', 'running', { createdAt, startedAt: T0 + 1_500 })]), ctx.node.indexes);
  const m = await ctx.scrape();
  assert.is(m.get('dms_deal_seconds_count'), 1);
  assert.is(m.get('dms_deal_seconds_sum'), 1.5);
  assert.is(m.get('dms_deal_seconds_bucket{le="1"}'), 0);
  assert.is(m.get('dms_deal_seconds_bucket{le="2.5"}'), 1);
  assert.is(m.get('dms_deal_seconds_bucket{le="+Inf"}'), 1);
});

Render('event log append seconds: each commit observed in its bucket', async (ctx) => {
  ctx.timings.appendSeconds.observe(0.00003);
  ctx.timings.appendSeconds.observe(0.004);
  const m = await ctx.scrape();
  assert.is(m.get('dms_event_log_append_seconds_count'), 2);
  assert.is(m.get('dms_event_log_append_seconds_bucket{le="0.00001"}'), 0);
  assert.is(m.get('dms_event_log_append_seconds_bucket{le="0.00005"}'), 1);
  assert.is(m.get('dms_event_log_append_seconds_bucket{le="0.005"}'), 2);
});

Render('two nodes in one process keep registries of their own', async (ctx) => {
  const other = new FakeNode();
  other.peers = 9;
  const { register } = createNodeMetrics(other.facts(), createTimings());
  assert.is(parseExposition(await register.metrics()).get('dms_peers'), 9);
  assert.is((await ctx.scrape()).get('dms_peers'), 3);
});

Render.run();

// ---------------------------------------------------------------------------------------------------------------

interface RouteCtx {
  server: ApiServer;
}

const Route = suite<RouteCtx>('metrics: GET /metrics on the API server', {} as RouteCtx);
Route.before.each(async (ctx) => {
  const { register } = createNodeMetrics(new FakeNode().facts(), createTimings());
  const api = { info: async () => ({ ok: true }) } as unknown as NodeApi;
  ctx.server = await startApiServer({ host: '127.0.0.1', port: 0, token: TOKEN, open: [metricsRoute(register)] }, api, { warn: () => {}, debug: () => {} });
});
Route.after.each(async (ctx) => ctx.server.stop());

Route('GET answers 200 in the Prometheus text format, without a token', async (ctx) => {
  const res = await fetch(`${ctx.server.url}/metrics`);
  assert.is(res.status, 200);
  assert.match(String(res.headers.get('content-type')), /^text\/plain; version=0\.0\.4/);
  const m = parseExposition(await res.text());
  assert.is(m.get('dms_peers'), 3);
});

Route('POST on /metrics is 405; other paths pass on to the token check', async (ctx) => {
  const post = await fetch(`${ctx.server.url}/metrics`, { method: 'POST', body: 'x' });
  assert.is(post.status, 405);
  assert.is(post.headers.get('allow'), 'GET, HEAD');
  await post.text();
  const other = await fetch(`${ctx.server.url}/v1/info`);
  assert.is(other.status, 401, 'not served by the metrics route: the API wants its token');
  await other.text();
  const withToken = await fetch(`${ctx.server.url}/v1/info`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.is(withToken.status, 200);
  assert.equal(await withToken.json(), { ok: true });
  const near = await fetch(`${ctx.server.url}/metrics/x`);
  assert.is(near.status, 401, '/metrics/x is not /metrics');
  await near.text();
});

Route.run();
