/**
 * End to end: GET /metrics on two real `node runtime/main.js` processes on loopback, a requester (A) and a provider
 * (B), after A deployed one tiny WASM job that B ran. Scraped without a token, as Prometheus would, and checked
 * against what `info` and `status` say: the metrics read the same facts, so they must agree. A request whose Host
 * header names another origin (DNS rebinding) is refused with 421.
 */
import http from 'node:http';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { JobRecord } from '../../machines/requester.messages.ts';
import { exampleModule } from '../../runtime/executors/examples/examples.ts';
import { type NetInfo, type NodeApiClient, type NodeInfo, type NodeProcess, type PeerRow, apiOf, cliJson, jobUntil, killAll, makeTempDir, removeTempDirs, startNode, waitFor } from './harness.ts';
import { parseExposition } from '../fixtures/prometheus.ts';

interface Member {
  readonly node: NodeProcess;
  readonly api: NodeApiClient;
}

interface Ctx {
  A: Member;
  B: Member;
  job: JobRecord;
}

type Info = NodeInfo & NetInfo;

const test = suite<Ctx>('e2e: GET /metrics agrees with info and status', {} as Ctx);


/** One scrape, with no token, as Prometheus does it. */
async function scrape(m: Member): Promise<Map<string, number>> {
  const res = await fetch(`${m.node.ready.api}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  assert.is(res.status, 200, text);
  assert.match(String(res.headers.get('content-type')), /^text\/plain/);
  return parseExposition(text);
}

/** The value of one series; fails naming it when the scrape has no such series. */
function value(m: Map<string, number>, series: string): number {
  const v = m.get(series);
  assert.ok(v !== undefined, `the scrape has ${series}`);
  return v!;
}

test.before(async (ctx) => {
  try {
    const a = await startNode(await makeTempDir('metrics-a'), ['--bid-window', '500ms'], { timeoutMs: 40_000 });
    const b = await startNode(await makeTempDir('metrics-b'), ['--bid-window', '500ms', '--bootstrap', a.ready.listen[0]!], { timeoutMs: 40_000 });
    ctx.A = { node: a, api: await apiOf(a) };
    ctx.B = { node: b, api: await apiOf(b) };
    await waitFor('A to see B as a DMS peer', async () => ((await ctx.A.api.get<PeerRow[]>('/v1/peers')).some((p) => p.dms && p.peer === b.ready.peerId) ? true : undefined), 30_000, 200);
    const jobs = await makeTempDir('metrics-jobs');
    await fs.writeFile(path.join(jobs, 'hello.wasm'), await exampleModule('hello'));
    const file = path.join(jobs, 'hello.json');
    const spec = { name: 'hello', executor: 'wasm', wasm: { module: './hello.wasm' }, resources: { cpu: 0.5, memory: '64MiB' }, timeout: '30s', constraints: { peers: [b.ready.peerId] } };
    await fs.writeFile(file, JSON.stringify(spec));
    const { id } = await cliJson<JobRecord>(['deploy', file, '--data-dir', a.dataDir]);
    ctx.job = await jobUntil(ctx.A.api, id, 'the hello job to end', (r) => ['completed', 'failed', 'cancelled'].includes(r.state), 30_000);
    assert.is(ctx.job.state, 'completed', JSON.stringify(ctx.job));
  } catch (e) {
    process.stderr.write(`e2e metrics: the nodes did not come up or the job did not run: ${(e as Error).stack ?? String(e)}\n`);
    throw e;
  }
});

test.after(async () => {
  await killAll();
  await removeTempDirs();
});

test('capability and peers: the same as `info` on both nodes', async (ctx) => {
  for (const m of [ctx.A, ctx.B]) {
    const info = await m.api.get<Info>('/v1/info');
    const s = await scrape(m);
    for (const kind of ['registered', 'locked', 'allocated', 'available'] as const) {
      assert.is(value(s, `dms_capability{kind="${kind}",resource="cpu"}`), info.capability[kind].cpu, `${kind} cpu`);
      assert.is(value(s, `dms_capability{kind="${kind}",resource="memory"}`), info.capability[kind].memory, `${kind} memory`);
    }
    assert.ok(info.capability.registered.cpu > 0, 'the node offers some cpu');
    assert.ok(value(s, 'dms_peers') >= 1, 'it has a peer');
    assert.is(value(s, 'dms_peers'), info.peers, 'as many peers as info counts');
  }
});

test('the requester: one job completed, its bid request sent, a bid received, its deal time observed', async (ctx) => {
  const s = await scrape(ctx.A);
  assert.is(value(s, 'dms_jobs_total{state="completed"}'), 1);
  assert.is(value(s, 'dms_jobs_total{state="failed"}'), 0);
  assert.ok(value(s, 'dms_bid_requests_total{role="sent"}') >= 1);
  assert.ok(value(s, 'dms_bids_total{role="received"}') >= 1);
  assert.is(value(s, 'dms_deal_seconds_count'), 1, 'one deal reached running');
  const status = await ctx.A.api.get<JobRecord>(`/v1/jobs/${ctx.job.id}`);
  assert.ok(status.startedAt !== null);
  assert.ok(Math.abs(value(s, 'dms_deal_seconds_sum') - (status.startedAt! - status.createdAt) / 1000) < 1e-6, 'deploy to running, as `status` times it');
});

test('the provider: the bid request received, its bid sent, its allocation gone again', async (ctx) => {
  const s = await scrape(ctx.B);
  assert.ok(value(s, 'dms_bid_requests_total{role="received"}') >= 1);
  assert.ok(value(s, 'dms_bids_total{role="sent"}') >= 1);
  assert.is(value(s, 'dms_jobs_total{state="completed"}'), 0, 'B asked for no job');
  const info = await ctx.B.api.get<Info & { allocations: unknown[] }>('/v1/info');
  assert.is(info.allocations.length, 0);
  for (const state of ['pending', 'starting', 'running', 'stopping']) assert.is(value(s, `dms_allocations{state="${state}"}`), 0, state);
});

test('envelopes, event log commits and restarts on both nodes', async (ctx) => {
  for (const m of [ctx.A, ctx.B]) {
    const info = await m.api.get<Info>('/v1/info');
    const s = await scrape(m);
    const { messages } = info;
    assert.ok(messages);
    // the counters only grow: the scrape, after `info`, shows at least as many
    assert.ok(value(s, 'dms_envelopes_total{direction="in"}') >= messages.in + messages.broadcastIn && messages.in + messages.broadcastIn > 0);
    assert.ok(value(s, 'dms_envelopes_total{direction="out"}') >= messages.out + messages.broadcastOut && messages.out + messages.broadcastOut > 0);
    assert.is(value(s, 'dms_envelopes_rejected_total{reason="bad-signature"}'), messages.rejected['bad-signature'] ?? 0);
    assert.ok(value(s, 'dms_event_log_append_seconds_count') > 0, 'journal commits timed');
    assert.is(value(s, 'dms_actor_restarts_total{kind="node"}'), 0);
    assert.ok(value(s, 'process_cpu_seconds_total') > 0, 'process metrics');
  }
});

test('a request whose Host header names another origin is refused with 421; POST on /metrics is 405', async (ctx) => {
  const url = new URL(ctx.A.node.ready.api);
  const status = (method: string, host: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request({ host: url.hostname, port: url.port, path: '/metrics', method, headers: { host } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.once('error', reject);
      req.end();
    });
  assert.is(await status('GET', `evil.example:${url.port}`), 421);
  assert.is(await status('GET', `127.0.0.1:${url.port}`), 200);
  assert.is(await status('POST', `127.0.0.1:${url.port}`), 405);
});

test.run();
