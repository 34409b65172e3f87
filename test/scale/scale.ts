/**
 * `npm run test:scale`: a network of real `node runtime/main.js` processes on loopback, larger than `npm test`
 * can afford. Starts N nodes (the first alone, the rest joining through it), waits until every node has all the
 * others connected and subscribed to the bid topic, then deploys hello.wasm jobs from several nodes, one after
 * another and then all at once, and reports: start and mesh time, RSS per node, how many nodes each bid request
 * reached, and deal latency (deploy to running, deploy to completed, from the requester's job record).
 *
 *   npx tsx test/scale/scale.ts [--nodes 50] [--deploys 10] [--max-peers N] [--json]
 *
 * Exits 1 when a job does not complete or a bid request misses a node.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { JobRecord } from '../../machines/requester.messages.ts';
import { exampleModule } from '../../runtime/executors/examples/examples.ts';
import { type NetInfo, type NodeApiClient, type NodeProcess, apiOf, cli, jobUntil, killAll, makeTempDir, removeTempDirs, startMany, untilMeshed } from '../e2e/harness.ts';

const { values: opts } = parseArgs({
  options: {
    nodes: { type: 'string', default: '50' },
    deploys: { type: 'string', default: '10' },
    'max-peers': { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const N = Number(opts.nodes);
const DEPLOYS = Number(opts.deploys);
if (!Number.isInteger(N) || N < 2 || N > 200) throw new Error(`--nodes ${opts.nodes}: a whole number from 2 to 200`);
if (!Number.isInteger(DEPLOYS) || DEPLOYS < 1 || DEPLOYS >= N) throw new Error(`--deploys ${opts.deploys}: from 1 to nodes - 1`);
/** How long the idle CPU of the meshed network is measured. */
const IDLE_WINDOW_MS = 20_000;
/** No single step of the run may take longer than this. */
const STEP_TIMEOUT_MS = 180_000;

const say = (s: string) => {
  if (!opts.json) console.log(s);
};

function quantiles(xs: readonly number[]): { p50: number; p90: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return { p50: q(0.5), p90: q(0.9), max: s.at(-1) ?? NaN };
}

async function rssMiB(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (100 Hz on Linux)
}

/** Share of one core each node uses while nothing happens but keeping the network up, over `ms`. */
async function idleCpu(nodes: readonly NodeProcess[], ms: number): Promise<number[]> {
  const before = await Promise.all(nodes.map((n) => cpuSeconds(n.child.pid!)));
  await new Promise((r) => setTimeout(r, ms));
  const after = await Promise.all(nodes.map((n) => cpuSeconds(n.child.pid!)));
  return after.map((a, i) => Math.round(((a - before[i]!) / (ms / 1000)) * 1000) / 10);
}

async function broadcastIn(apis: readonly NodeApiClient[]): Promise<number[]> {
  return Promise.all(apis.map(async (a) => (await a.get<NetInfo>('/v1/info')).messages?.broadcastIn ?? 0));
}

interface DealResult {
  readonly from: number;
  readonly state: string;
  readonly rounds: number;
  /** Deploy to the close of the first bid window. */
  readonly bidsMs: number;
  readonly toRunningMs: number;
  readonly toEndMs: number;
}

async function deploy(nodes: readonly NodeProcess[], apis: readonly NodeApiClient[], from: number, file: string): Promise<DealResult> {
  const r = await cli(['deploy', file, '--data-dir', nodes[from]!.dataDir, '--json'], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`deploy from node #${from} exited ${String(r.code)}: ${r.stderr}`);
  const { id } = JSON.parse(r.stdout) as { id: string };
  const job: JobRecord = await jobUntil(apis[from]!, id, `job ${id} from node #${from} to end`, (j) => ['completed', 'failed', 'cancelled'].includes(j.state), 60_000);
  const closed = job.history.find((h) => h.message.startsWith('bid window'))?.at ?? NaN;
  return { from, state: job.state, rounds: job.rounds, bidsMs: closed - job.createdAt, toRunningMs: (job.startedAt ?? NaN) - job.createdAt, toEndMs: (job.endedAt ?? NaN) - job.createdAt };
}

async function main(): Promise<number> {
  const t0 = performance.now();
  say(`starting ${N} nodes on loopback (4 at a time; each benchmarks the machine once)...`);
  const flags = ['--cpu', '1', ...(opts['max-peers'] ? ['--max-peers', opts['max-peers']] : [])];
  const nodes = await startMany(N, flags, { label: 'scale', timeoutMs: STEP_TIMEOUT_MS });
  const startS = (performance.now() - t0) / 1000;
  const apis = await Promise.all(nodes.map(apiOf));
  const t1 = performance.now();
  let meshS: number | null = null;
  if (opts['max-peers']) {
    say('--max-peers given: not waiting for a full mesh');
  } else {
    try {
      await untilMeshed(apis, STEP_TIMEOUT_MS);
      meshS = (performance.now() - t1) / 1000;
    } catch (e) {
      say(`no full mesh: ${(e as Error).message.slice(0, 2000)}`);
    }
  }
  const rss = await Promise.all(nodes.map((n) => rssMiB(n.child.pid!)));
  const idle = await idleCpu(nodes, IDLE_WINDOW_MS);
  const reach = await Promise.all(apis.map(async (a) => (await a.get<NetInfo>('/v1/info')).reach));
  say(`started in ${startS.toFixed(1)} s; ${meshS === null ? 'no full mesh' : `every node saw all ${N - 1} others subscribed ${meshS.toFixed(1)} s after the last was ready`}`);

  const dir = await makeTempDir('scale-job');
  await fs.writeFile(path.join(dir, 'hello.wasm'), await exampleModule('hello'));
  const file = path.join(dir, 'job.json');
  await fs.writeFile(file, JSON.stringify({ name: 'hello', executor: 'wasm', wasm: { module: './hello.wasm' }, resources: { cpu: 0.25, memory: '32MiB' }, timeout: '30s' }));
  // requesters spread over the network, never the bootstrap node
  const from = Array.from({ length: DEPLOYS }, (_, i) => 1 + Math.floor((i * (N - 1)) / DEPLOYS));

  const sequential: DealResult[] = [];
  const missed: string[] = [];
  for (const f of from) {
    const before = await broadcastIn(apis);
    sequential.push(await deploy(nodes, apis, f, file));
    const after = await broadcastIn(apis);
    const deaf = after.flatMap((x, i) => (i !== f && x <= before[i]! ? [i] : []));
    if (deaf.length > 0) missed.push(`deploy from #${f} did not reach nodes ${deaf.join(', ')}`);
  }
  const t2 = performance.now();
  const burst = await Promise.all(from.map((f) => deploy(nodes, apis, f, file)));
  const burstS = (performance.now() - t2) / 1000;
  const rssAfter = await Promise.all(nodes.map((n) => rssMiB(n.child.pid!)));

  const all = [...sequential, ...burst];
  const failed = all.filter((d) => d.state !== 'completed');
  const report = {
    nodes: N,
    maxPeers: opts['max-peers'] ? Number(opts['max-peers']) : null,
    startS: Number(startS.toFixed(1)),
    meshS: meshS === null ? null : Number(meshS.toFixed(1)),
    reach: { connected: quantiles(reach.map((r) => r?.connected ?? 0)), beyond: quantiles(reach.map((r) => r?.beyond ?? 0)) },
    idleCpuPercent: { ...quantiles(idle), total: Math.round(idle.reduce((a, b) => a + b, 0)) },
    rssMiB: { meshed: quantiles(rss.map(Math.round)), afterDeals: quantiles(rssAfter.map(Math.round)), totalMeshed: Math.round(rss.reduce((a, b) => a + b, 0)) },
    sequential: { deals: sequential.length, bidsMs: quantiles(sequential.map((d) => d.bidsMs)), toRunningMs: quantiles(sequential.map((d) => d.toRunningMs)), toEndMs: quantiles(sequential.map((d) => d.toEndMs)) },
    burst: { deals: burst.length, wallS: Number(burstS.toFixed(2)), toRunningMs: quantiles(burst.map((d) => d.toRunningMs)), toEndMs: quantiles(burst.map((d) => d.toEndMs)), rounds: quantiles(burst.map((d) => d.rounds)) },
    failed: failed.map((d) => `from #${d.from}: ${d.state}`),
    missed,
  };
  if (opts.json) console.log(JSON.stringify(report));
  else {
    say(`idle CPU per node (% of one core, over ${IDLE_WINDOW_MS / 1000} s): p50 ${report.idleCpuPercent.p50}, max ${report.idleCpuPercent.max}; all nodes together ${report.idleCpuPercent.total}% (this machine has 200%)`);
    say(`RSS per node (MiB): meshed p50 ${report.rssMiB.meshed.p50}, max ${report.rssMiB.meshed.max} (all ${report.rssMiB.totalMeshed}); after the deals p50 ${report.rssMiB.afterDeals.p50}, max ${report.rssMiB.afterDeals.max}`);
    say(`${sequential.length} deals one after another: bids in (window closed) p50 ${report.sequential.bidsMs.p50} ms, deploy to running p50 ${report.sequential.toRunningMs.p50} ms, p90 ${report.sequential.toRunningMs.p90} ms; to completed p50 ${report.sequential.toEndMs.p50} ms`);
    say(`${burst.length} deals at once: all done in ${report.burst.wallS} s; deploy to running p50 ${report.burst.toRunningMs.p50} ms, max ${report.burst.toRunningMs.max} ms; rounds max ${report.burst.rounds.max}`);
    say(missed.length === 0 ? `every bid request reached all ${N - 1} other nodes` : missed.join('\n'));
    if (failed.length > 0) say(`not completed: ${report.failed.join(', ')}`);
  }
  return failed.length === 0 && missed.length === 0 ? 0 : 1;
}

let code = 1;
try {
  code = await main();
} catch (e) {
  console.error((e as Error).stack ?? String(e));
} finally {
  await killAll();
  await removeTempDirs();
}
process.exit(code);
