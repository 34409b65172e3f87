// What a Prometheus scrape of GET /metrics costs a node (runtime/api/metrics.ts).
//   metrics-scrape       register.metrics() p50 of the node's registry, in this process, over indexes holding
//                        JOBS jobs (9,000 live, 1,000 ended: the most ended ones the indexes keep), vs a bare
//                        prom-client registry of as many series with fixed values. Target: p50 under 5 ms.
//   metrics-scrape-cpu   CPU per scrape (process.cpuUsage), the same two sides.
//   metrics-get-node     GET /metrics p50 on a real idle node (`node runtime/main.js`, its Node actor's ledger read
//                        across its worker thread), vs a bare node:http server in a process of its own answering
//                        text of the same size; and each server's CPU per request (from /proc).
// 10,000 jobs cannot be put into a real node's indexes through deals in a bench's time (and the fold copies the
// job table on every fact: 10,000 JobChanged facts take ~45 s), so the first two rows build the indexes' job table
// directly, in the shape the fold keeps, and fold real facts on top.
//
// Standalone: `npm run build && node test/bench/metrics.mjs [--json FILE]`; from run.mjs: `metricsBenches`.
import http from 'node:http';
import { Gauge, Registry } from 'prom-client';
import { EMPTY_INDEXES, evolveIndexes } from '../../machines/indexes.js';
import { emptyLedger, ledgerView } from '../../machines/ledger.js';
import { createNodeMetrics, createTimings } from '../../runtime/api/metrics.js';
import { StatusHeartbeat } from '../../runtime/deals/status-heartbeat.js';
import { NetCounters } from '../../runtime/net/net-counters.js';
import { realClock } from '../../runtime/clock.js';
import { alternate, cpuSecondsOf, exited, isMain, kill, median, round, runStandalone, spawnTracked, startNode, tempDir, withTimeout } from './common.mjs';

const JOBS = 10_000;
const ENDED = 1_000;
const SCRAPES = 1_000;
const RUNS = 3;
const GETS = 300;
const T0 = 1_700_000_000_000;

/** Indexes with JOBS jobs (the newest ENDED of them ended), bid counts and a few ends folded on top by the real fold. */
function bigIndexes() {
  const jobs = {};
  for (let i = 0; i < JOBS; i += 1) {
    const state = i < ENDED ? 'completed' : i % 3 ? 'running' : 'requesting';
    jobs[`job-${i}`] = { id: `job-${i}`, name: `job ${i}`, state, provider: i % 3 ? `12D3KooWProvider${i % 50}` : null, exitCode: i < ENDED ? 0 : null, createdAt: T0 + i, startedAt: i % 3 ? T0 + i + 900 : null, updatedAt: T0 + i + 1000 };
  }
  const facts = [];
  for (let n = 1; n <= 20; n += 1) {
    facts.push({ type: 'BidRequestSent', dealId: `job-${JOBS - n}`, nonce: 1 }, { type: 'BidReceived', dealId: `job-${JOBS - n}`, nonce: 1, provider: 'P' }, { type: 'BidRequestReceived', dealId: `other-${n}`, nonce: 1 }, { type: 'BidSent', dealId: `other-${n}`, nonce: 1, requester: 'R' });
  }
  // one more job ends: the fold counts it, and lets the oldest ended one go (it keeps ENDED), so JOBS stay
  facts.push({ type: 'JobChanged', job: { id: `job-${JOBS}`, name: 'one more', state: 'failed', provider: 'P', exitCode: 1, createdAt: T0, startedAt: T0 + 900 } });
  return facts.reduce((ix, fact, i) => evolveIndexes(ix, { actor: 'job/x', seq: i + 1, ts: T0 + i, fact }), { ...EMPTY_INDEXES, jobs, jobsEnded: { completed: ENDED, failed: 0, cancelled: 0 } });
}

/** The facts of a busy node: 10,000 jobs indexed, 64 allocations running, a network with counters, a few restarts. */
function facts() {
  const indexes = bigIndexes();
  const cpu = 16;
  const registered = { cpu, memory: 64 * 2 ** 30, disk: 2 ** 40, gpus: [], executors: ['wasm'], arch: 'x64' };
  const ledger = emptyLedger(registered);
  const heartbeat = new StatusHeartbeat({ clock: realClock, intervalMs: 60_000, send: () => {} });
  for (let i = 0; i < 64; i += 1) heartbeat.note('R', { dealId: `d${i}`, nonce: 1, allocationId: `a${i}`, state: i % 8 ? 'running' : 'starting', exitCode: null, message: '' }, false);
  const counters = new NetCounters();
  counters.in = 123_456;
  counters.out = 98_765;
  counters.broadcastIn = 4_321;
  for (const r of ['bad-signature', 'rate-limited', 'replayed']) counters.reject(r);
  const restarts = new Map([['requester', 3]]);
  return {
    capability: async () => ledgerView(ledger),
    peers: () => 42,
    envelopes: () => counters.view(),
    indexes: () => indexes,
    allocations: () => heartbeat.countByState(),
    restarts: () => restarts,
  };
}

/** The node's registry with its histograms holding some observations. */
function ourRegistry() {
  const timings = createTimings();
  for (let i = 0; i < 1000; i += 1) {
    timings.appendSeconds.observe(0.0001 * (1 + (i % 50)));
    timings.dealSeconds.observe(0.05 * (1 + (i % 40)));
  }
  return createNodeMetrics(facts(), timings).register;
}

/** A bare registry with `series` gauge series of fixed values, spread over families of 10. */
function rawRegistry(series) {
  const register = new Registry();
  for (let f = 0; f * 10 < series; f += 1) {
    const g = new Gauge({ name: `raw_family_${f}`, help: 'a fixed gauge', labelNames: ['i'], registers: [register] });
    for (let i = 0; i < 10 && f * 10 + i < series; i += 1) g.set({ i: String(i) }, f * 10 + i);
  }
  return register;
}

const seriesOf = (text) => text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;

/** SCRAPES scrapes: { p50 (µs), cpuUs (per scrape) }. */
async function scrapes(register) {
  const times = [];
  const c0 = process.cpuUsage();
  for (let i = 0; i < SCRAPES; i += 1) {
    const t0 = performance.now();
    await register.metrics();
    times.push((performance.now() - t0) * 1000);
  }
  const c = process.cpuUsage(c0);
  return { p50: median(times), cpuUs: (c.user + c.system) / SCRAPES };
}

async function benchScrape() {
  const ours = ourRegistry();
  const text = await ours.metrics();
  const series = seriesOf(text);
  const raw = rawRegistry(series);
  if (seriesOf(await raw.metrics()) !== series) throw new Error('the raw registry does not have as many series as ours');
  await scrapes(ours);
  await scrapes(raw);
  const o = [];
  const b = [];
  for (let k = 0; k < RUNS; k += 1) {
    const [x, y] = await alternate(k, () => scrapes(ours), () => scrapes(raw));
    o.push(x);
    b.push(y);
  }
  // what counting the jobs by state on every scrape would cost instead of the fold's count (see metrics.ts)
  const ix = facts().indexes();
  const t0 = performance.now();
  for (let i = 0; i < 100; i += 1) {
    const counts = {};
    for (const id in ix.jobs) counts[ix.jobs[id].state] = (counts[ix.jobs[id].state] ?? 0) + 1;
  }
  const scanUs = ((performance.now() - t0) * 1000) / 100;
  const p50 = median(o.map((x) => x.p50));
  const rawP50 = median(b.map((x) => x.p50));
  const cpu = median(o.map((x) => x.cpuUs));
  const rawCpu = median(b.map((x) => x.cpuUs));
  const notes = [
    `${series} series (process metrics included), ${Buffer.byteLength(text)} bytes; ${Object.keys(ix.jobs).length} jobs in the indexes; ${SCRAPES} scrapes a run, ${RUNS} runs a side (medians)`,
    `jobs by terminal state come from the fold's count (O(1)); counting the ${Object.keys(ix.jobs).length} indexed jobs by state instead would add ${round(scanUs)} µs a scrape (and stop at the 1,000 ended ones kept)`,
  ];
  return [
    {
      id: 'metrics-scrape', name: `register.metrics() p50 (µs, lower is better): the node's registry over ${JOBS} indexed jobs vs a bare prom-client registry of as many series; target p50 < 5 ms`,
      unit: 'µs', lowerIsBetter: true, ours: round(p50), raw: round(rawP50), ratio: round(p50 / rawP50, 2), targets: [{ kind: 'ours', max: 5000 }],
      detail: { oursRuns: o.map((x) => round(x.p50)), rawRuns: b.map((x) => round(x.p50)), series, bytes: Buffer.byteLength(text), jobs: JOBS, scanJobsUs: round(scanUs) }, notes,
    },
    {
      id: 'metrics-scrape-cpu', name: 'CPU per scrape (µs, lower is better): the node\'s registry vs the bare registry, this process (process.cpuUsage)',
      unit: 'µs', lowerIsBetter: true, ours: round(cpu), raw: round(rawCpu), ratio: round(cpu / rawCpu, 2), targets: [],
      detail: { oursRuns: o.map((x) => round(x.cpuUs)), rawRuns: b.map((x) => round(x.cpuUs)) },
    },
  ];
}

/** GETS requests to `url` one after another over one keep-alive connection: p50 (µs). */
async function gets(url, agent) {
  const times = [];
  for (let i = 0; i < GETS; i += 1) {
    const t0 = performance.now();
    await new Promise((resolve, reject) => {
      http.get(url, { agent }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`GET ${url} answered ${res.statusCode}`));
        res.resume().once('end', resolve).once('error', reject);
      }).once('error', reject);
    });
    times.push((performance.now() - t0) * 1000);
  }
  return median(times);
}

/** One side: GETS requests and the server process's CPU per request (µs). */
async function getSide(url, pid, agent) {
  const c0 = await cpuSecondsOf(pid);
  const p50 = await gets(url, agent);
  const c1 = await cpuSecondsOf(pid);
  return { p50, cpuUs: c0 === null || c1 === null ? NaN : ((c1 - c0) * 1e6) / GETS };
}

async function benchNodeGet() {
  const dir = await tempDir('metrics-node');
  const { ready, child } = await startNode(dir, 60_000);
  const url = `${ready.api}/metrics`;
  const size = await new Promise((resolve, reject) => http.get(url, (res) => {
    let n = 0;
    res.on('data', (d) => (n += d.length)).once('end', () => resolve(n)).once('error', reject);
  }).once('error', reject));
  // the raw side: a bare HTTP server in a process of its own, answering as many bytes
  const code = `const b=Buffer.alloc(${size},'x');require('http').createServer((q,s)=>{s.writeHead(200,{'content-type':'text/plain','content-length':b.length});s.end(b)}).listen(0,'127.0.0.1',function(){console.log(JSON.stringify({port:this.address().port}))})`;
  const bare = spawnTracked(['-e', code]);
  const port = await withTimeout(new Promise((resolve) => bare.stdout.once('data', (d) => resolve(JSON.parse(String(d)).port))), 10_000, 'the bare server');
  const rawUrl = `http://127.0.0.1:${port}/metrics`;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await gets(url, agent);
    await gets(rawUrl, agent);
    const o = [];
    const b = [];
    for (let k = 0; k < RUNS; k += 1) {
      const [x, y] = await alternate(k, () => getSide(url, child.pid, agent), () => getSide(rawUrl, bare.pid, agent));
      o.push(x);
      b.push(y);
    }
    const p50 = median(o.map((x) => x.p50));
    const rawP50 = median(b.map((x) => x.p50));
    return {
      id: 'metrics-get-node', name: `GET /metrics p50 (µs, lower is better) on a real idle node vs a bare node:http server answering ${size} bytes, each in a process of its own; target p50 < 5 ms`,
      unit: 'µs', lowerIsBetter: true, ours: round(p50), raw: round(rawP50), ratio: round(p50 / rawP50, 2), targets: [{ kind: 'ours', max: 5000 }],
      detail: { oursRuns: o.map((x) => round(x.p50)), rawRuns: b.map((x) => round(x.p50)), serverCpuUsPerGet: { ours: round(median(o.map((x) => x.cpuUs))), raw: round(median(b.map((x) => x.cpuUs))) }, bytes: size },
      notes: [`server CPU per GET (from /proc, 10 ms ticks over ${GETS} GETs): node ${round(median(o.map((x) => x.cpuUs)))} µs, bare server ${round(median(b.map((x) => x.cpuUs)))} µs; ${GETS} GETs a run over one keep-alive connection, ${RUNS} runs a side`],
    };
  } finally {
    agent.destroy();
    await kill(bare);
    child.kill('SIGTERM');
    await withTimeout(exited(child), 10_000, 'the node to stop').catch(() => kill(child));
  }
}

/** [id, fn] pairs for run.mjs; each fn resolves to a row or an array of rows. */
export const metricsBenches = [
  ['metrics-scrape', benchScrape],
  ['metrics-get-node', benchNodeGet],
];


// ---------------------------------------------------------------------------------------------- standalone

if (isMain(import.meta.url)) await runStandalone('metrics', metricsBenches, { watchdogMs: 180_000 });
