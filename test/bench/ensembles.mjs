// Ensemble benchmarks: real `node runtime/main.js` processes on loopback (`--bid-window 500ms`, every node with
// `--executors wasm,process`, the providers' cpu the default), deploying ensembles through the API
// (POST /v1/deploy { ensemble, modules }), beside what they are built on, in the same run:
//   ensemble-deploy-p50/p99  4 nodes (A requester; B, C and D providers). Taking turns in blocks of
//                            ENSEMBLE_BENCH_BLOCK, ENSEMBLE_BENCH_N single-part deals (the hello WASM job as deals.mjs
//                            deploys it: POST /v1/deploy { job, module }) and ENSEMBLE_BENCH_N ensembles of 4
//                            independent WASM task parts (the same module, 0.1 cpu / 32 MiB each), one at a time,
//                            each let end before the next. Deploy sent -> every part running: for the ensemble its
//                            record's `startedAt` (set when every part is up), for the deal its history entry
//                            `running` (deals.mjs's stepsOf); both `at`s on A's clock, the same machine as the send.
//                            Raw: the single-part deal's figure in the same run (target: ensemble p50 <= 2x).
//   ensemble-failover-p50/max  3 nodes (A requester; B and C providers). An ensemble of one service part `kv` (a
//                            node:http server on DMS_PORT_HTTP, health-checked every 200 ms, restart on-failure,
//                            allowed on B or C). Once it runs healthy, its provider is SIGKILLed; measured: the kill ->
//                            kv running healthy on the other provider (the ensemble's history entry `running` after the
//                            kill, A's clock; polled every FAILOVER_POLL_MS), split by the part's own negotiation's
//                            history (`<id>@kv`: taken as lost, placed again, running) into detection, re-placement,
//                            start and health. Then the ensemble is cancelled, the killed provider restarted on its
//                            data dir and awaited as A's DMS peer; FAILOVER_BENCH_RUNS times. No raw counterpart: the
//                            raw column holds the loss-detection deadline (the requester's lostAfterMs,
//                            machines/deal.constants.ts), the floor any failover here waits through.
// Standalone: `npm run build && node test/bench/ensembles.mjs [--json FILE] [--only ensemble-deploy|ensemble-failover]`;
// from run.mjs: `const { ensembleBenches } = await import('./ensembles.mjs')` gives [id, fn] pairs; each fn resolves
// to an ARRAY of rows in run.mjs's shape (with `notes`). Processes are tracked by common.mjs (spawnTracked / cleanup).
// Env: ENSEMBLE_BENCH_N (10 of each side), ENSEMBLE_BENCH_BLOCK (5), FAILOVER_BENCH_RUNS (3).
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { cleanup, guard, kill, loadAverage, msRow, note, reportHead, round, step, table, withTimeout } from './common.mjs';
import { bidTimings, helloJob, startCluster, startDms, stepsOf, stopNodes, warmUp } from './deals.mjs';
import { killNetPeers } from './net.mjs';

const env = (name, dflt) => (process.env[name] === undefined ? dflt : Number(process.env[name]));
const N = env('ENSEMBLE_BENCH_N', 10);
const BLOCK = Math.max(1, env('ENSEMBLE_BENCH_BLOCK', 5));
const FAILOVER_RUNS = env('FAILOVER_BENCH_RUNS', 3);
const MiB = 2 ** 20;
const NODE_ARGS = ['--executors', 'wasm,process'];
const PARTS = 4;
const PART_CPU = 0.1;
const PART_MEMORY = 32 * MiB;
/** The deploy loop stops starting new deploys after this (both sides keep what they measured). */
const DEPLOY_BUDGET_MS = 120_000;
/** A deal or ensemble not ended by then counts as failed (and is cancelled). */
const ONE_TIMEOUT_MS = 30_000;
const POLL_MS = 50;
const FAILOVER_POLL_MS = 150;
/** The most one failover may take before the run counts as failed (the e2e test allows 40 s). */
const FAILOVER_TIMEOUT_MS = 40_000;
/** The whole failover benchmark stops starting runs after this. */
const FAILOVER_BUDGET_MS = 150_000;
const TERMINAL = ['completed', 'failed', 'cancelled'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Nearest rank: the smallest value with at least p of the values at or below it (p99 of 10 is the max). */
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(p * s.length) - 1)];
};
const stats = (xs) => (xs.length ? { p50: round(pct(xs, 0.5), 1), p99: round(pct(xs, 0.99), 1), max: round(Math.max(...xs), 1), min: round(Math.min(...xs), 1), n: xs.length } : { n: 0 });
const count = (m, k) => {
  m[k] = (m[k] ?? 0) + 1;
};
const fmtCounts = (m) => Object.entries(m).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';

/** The requester's loss-detection deadline (ms): silent that long, a provider is taken as lost. */
async function lostAfterMs() {
  const { DEAL_DEFAULTS } = await import('../../machines/deal.constants.js');
  return { lostAfterMs: DEAL_DEFAULTS.requester.lostAfterMs, heartbeatMs: DEAL_DEFAULTS.heartbeatMs, retryMs: DEAL_DEFAULTS.requester.retryMs, placementMs: DEAL_DEFAULTS.placementMs };
}

// ---------------------------------------------------------------------------------------------- the specs

const noConstraints = () => ({ peers: [], excludePeers: [] });

/** The deploy body of an ensemble of PARTS independent WASM task parts, each the hello module. */
async function helloEnsemble() {
  const { bytes, job } = await helloJob(PART_CPU);
  const { sha256 } = job.wasm.module;
  const parts = Array.from({ length: PARTS }, (_, i) => ({
    name: `p${i}`,
    type: 'task',
    executor: 'wasm',
    wasm: { module: { sha256, size: bytes.byteLength }, args: [], env: {} },
    resources: { cpu: PART_CPU, memory: PART_MEMORY, disk: 0, gpus: 0 },
    ports: [],
    restart: 'never',
    dependsOn: [],
    constraints: noConstraints(),
  }));
  const ensemble = { name: 'hello4', timeoutMs: 30_000, recovery: 'one_for_one', maxRestarts: { count: 5, withinMs: 60_000 }, constraints: noConstraints(), parts };
  return { ensemble, modules: { [sha256]: Buffer.from(bytes).toString('base64') } };
}

/** The kv service: answers 200 on /health (and on anything else). */
const KV_JS = "require('http').createServer((q,s)=>{s.statusCode=200;s.end(q.url==='/health'?'ok':'value-42')}).listen(+process.env.DMS_PORT_HTTP,'127.0.0.1')";

/** The deploy body of an ensemble of one service part `kv` (process executor), allowed on `peers`. */
function kvEnsemble(peers) {
  const kv = {
    name: 'kv',
    type: 'service',
    executor: 'process',
    process: { command: process.execPath, args: ['-e', KV_JS], env: {} },
    resources: { cpu: 0.2, memory: 64 * MiB, disk: 0, gpus: 0 },
    ports: ['http'],
    healthcheck: { http: { port: 'http', path: '/health' }, intervalMs: 200, retries: 3 },
    restart: 'on-failure',
    dependsOn: [],
    constraints: { peers, excludePeers: [] },
  };
  return { ensemble: { name: 'kv-failover', timeoutMs: 300_000, recovery: 'one_for_one', maxRestarts: { count: 5, withinMs: 60_000 }, constraints: noConstraints(), parts: [kv] } };
}

// ---------------------------------------------------------------------------------------------- polling

/** Polls a job or ensemble every POLL_MS until `done(record)`; past `timeoutMs` cancels it and rejects. */
async function pollUntil(a, id, done, timeoutMs, what) {
  const t0 = performance.now();
  for (;;) {
    await sleep(POLL_MS);
    const r = await a.api('GET', `/v1/jobs/${id}`);
    if (done(r)) return r;
    if (performance.now() - t0 > timeoutMs) {
      await a.api('POST', `/v1/jobs/${id}/cancel`).catch(() => {});
      throw new Error(`${what} ${id} not ${TERMINAL.includes(r.state) ? 'as expected' : 'done'} after ${timeoutMs / 1000} s: ${r.state}: ${r.message}`);
    }
  }
}

const ended = (r) => TERMINAL.includes(r.state);

/** The `at` of the first history entry matching `pred` after index `from` (or undefined). */
const firstAt = (history, pred, after = -Infinity) => history.find((e) => e.at >= after && pred(e))?.at;

// ---------------------------------------------------------------------------------------------- 1. deploy latency

/** Each node's bid declines (by code) and refused envelopes (by reason), from GET /v1/info. */
async function counters(nodes) {
  const out = {};
  for (const n of nodes) {
    const i = await n.api('GET', '/v1/info').catch(() => null);
    out[n.name] = i ? { declines: { ...i.bidDeclines }, rejected: { ...i.messages.rejected } } : null;
  }
  return out;
}

function countersDelta(before, after) {
  const out = {};
  for (const [name, a] of Object.entries(after)) {
    const b = before[name];
    if (!a || !b) continue;
    const diff = (x, y) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, v - (y[k] ?? 0)]).filter(([, v]) => v > 0));
    out[name] = { declines: diff(a.declines, b.declines), rejected: diff(a.rejected, b.rejected) };
  }
  return out;
}

/** One single-part deal: deploy -> its history's `running`, and its record. */
async function oneDeal(a, body, providers) {
  const sent = Date.now();
  const rec = await a.api('POST', '/v1/deploy', body);
  const end = await pollUntil(a, rec.id, ended, ONE_TIMEOUT_MS, 'deal');
  if (end.state !== 'completed') throw new Error(`deal ${end.id} ${end.state}: ${end.message}`);
  const s = stepsOf(end, sent);
  if (s.running === undefined) throw new Error(`deal ${end.id} completed with no 'running' in its history`);
  return { ms: s.running - sent, api: s.created - sent, rounds: s.rounds, provider: providers.find((p) => p.peerId === end.provider)?.name ?? end.provider, toCompleted: s.ended - sent };
}

/**
 * One ensemble: deploy -> its record's startedAt (every part up), polled until it ended; then its parts' own
 * negotiations (`<id>@<part>`) for where each ran and when each was running.
 */
async function oneEnsemble(a, body, providers) {
  const sent = Date.now();
  const rec = await a.api('POST', '/v1/deploy', body);
  if (rec.kind !== 'ensemble') throw new Error(`POST /v1/deploy with an ensemble answered a record of kind ${rec.kind ?? '(none)'}`);
  const end = await pollUntil(a, rec.id, ended, ONE_TIMEOUT_MS, 'ensemble');
  if (end.state !== 'completed') throw new Error(`ensemble ${end.id} ${end.state}: ${end.message}; parts: ${end.parts.map((p) => `${p.name} ${p.state} ${p.message}`).join('; ')}`);
  if (end.startedAt === null) throw new Error(`ensemble ${end.id} completed with startedAt null`);
  const parts = await Promise.all(end.parts.map((p) => a.api('GET', `/v1/jobs/${end.id}@${p.name}`)));
  const running = parts.map((p) => stepsOf(p, sent).running);
  const rounds = parts.map((p) => p.rounds);
  // why a part needed another round: how its first round's bid window closed, and what followed
  const retried = parts
    .filter((p) => p.rounds > 1)
    .map((p) => `${p.id.split('@').pop()}: ${p.history.filter((e) => e.state === 'requesting' && /round 1|no usable bid|asking again/.test(e.message)).map((e) => e.message.slice(0, 140)).join(' / ')}`);
  const names = end.parts.map((p) => providers.find((x) => x.peerId === p.provider)?.name ?? p.provider);
  // every part placed: the first history entry out of 'requesting'
  const placedAt = firstAt(end.history, (e) => e.state !== 'requesting');
  return {
    ms: end.startedAt - sent,
    api: end.createdAt - sent,
    placed: placedAt === undefined ? undefined : placedAt - sent,
    lastPartRunning: running.every((x) => x !== undefined) ? Math.max(...running) - sent : undefined,
    firstPartRunning: running.every((x) => x !== undefined) ? Math.min(...running) - sent : undefined,
    maxRounds: Math.max(...rounds),
    retried,
    providers: names,
    distinct: new Set(names).size,
    toCompleted: end.endedAt - sent,
  };
}

async function benchDeploy() {
  const { body: dealBody } = await helloJob(PART_CPU);
  const ensBody = await helloEnsemble();
  let cl;
  try {
    const t0 = performance.now();
    cl = await startCluster('ens', 3, [], NODE_ARGS);
    const { a, providers } = cl;
    note(`ensembles: 4 nodes up in ${round((performance.now() - t0) / 1000, 1)} s`);
    const warm = (await warmUp(a, dealBody)).deals;
    // one ensemble unmeasured, so neither side pays a first time
    await oneEnsemble(a, ensBody, providers);

    const sides = {
      deal: { ms: [], api: [], rounds: {}, byProvider: {}, toCompleted: [], failed: [] },
      ensemble: { ms: [], api: [], placed: [], lastPartRunning: [], firstPartRunning: [], maxRounds: {}, retried: [], distinct: {}, byProvider: {}, toCompleted: [], failed: [] },
    };
    const done = (s) => s.ms.length + s.failed.length;
    const c0 = await counters(cl.all);
    const beganAt = Date.now();
    const began = performance.now();
    let blocks = 0;
    for (let cycle = 0; (done(sides.deal) < N || done(sides.ensemble) < N) && performance.now() - began < DEPLOY_BUDGET_MS; cycle += 1) {
      // the side that goes first alternates, so drift hits both alike
      const order = cycle % 2 ? ['ensemble', 'deal'] : ['deal', 'ensemble'];
      for (const side of order) {
        const s = sides[side];
        const want = Math.min(BLOCK, N - done(s));
        for (let i = 0; i < want && performance.now() - began < DEPLOY_BUDGET_MS; i += 1) {
          try {
            if (side === 'deal') {
              const r = await oneDeal(a, dealBody, providers);
              s.ms.push(r.ms);
              s.api.push(r.api);
              s.toCompleted.push(r.toCompleted);
              count(s.rounds, r.rounds);
              count(s.byProvider, r.provider);
            } else {
              const r = await oneEnsemble(a, ensBody, providers);
              s.ms.push(r.ms);
              s.api.push(r.api);
              s.toCompleted.push(r.toCompleted);
              if (r.placed !== undefined) s.placed.push(r.placed);
              if (r.lastPartRunning !== undefined) s.lastPartRunning.push(r.lastPartRunning);
              if (r.firstPartRunning !== undefined) s.firstPartRunning.push(r.firstPartRunning);
              count(s.maxRounds, r.maxRounds);
              s.retried.push(...r.retried);
              count(s.distinct, `${r.distinct} providers`);
              for (const p of r.providers) count(s.byProvider, p);
            }
          } catch (e) {
            s.failed.push(e.message);
          }
        }
        blocks += 1;
      }
      note(`ensembles: cycle ${cycle + 1}: ${sides.deal.ms.length} deals (p50 ${stats(sides.deal.ms).p50} ms), ${sides.ensemble.ms.length} ensembles (p50 ${stats(sides.ensemble.ms).p50} ms)${sides.deal.failed.length + sides.ensemble.failed.length ? `, ${sides.deal.failed.length + sides.ensemble.failed.length} failed` : ''}`);
    }
    const loopS = (performance.now() - began) / 1000;
    const nodeCounts = countersDelta(c0, await counters(cl.all));
    // when the bids came back (A's journal, read once A is stopped): deals' and parts' rounds together
    await stopNodes(cl.all);
    const stoppedCl = cl;
    cl = undefined;
    const bidsBack = await bidTimings(stoppedCl.a.dir, beganAt).catch((err) => ({ error: err.message }));
    const d = sides.deal;
    const e = sides.ensemble;
    if (!d.ms.length || !e.ms.length) throw new Error(`no ${d.ms.length ? 'ensemble' : 'deal'} reached running: ${[...d.failed, ...e.failed].slice(0, 3).join('; ')}; A's stderr: ${a.stderr().slice(-600) || '(empty)'}`);
    const ds = stats(d.ms);
    const es = stats(e.ms);
    const detail = {
      n: N,
      block: BLOCK,
      blocks,
      loopSeconds: round(loopS, 1),
      warmUpDeals: warm,
      parts: PARTS,
      partResources: { cpu: PART_CPU, memoryMiB: PART_MEMORY / MiB },
      nodeCounters: nodeCounts,
      bidsBack,
      loadAverage1m: round(os.loadavg()[0], 2),
      deal: { deployToRunningMs: ds, apiMs: stats(d.api), deployToCompletedMs: stats(d.toCompleted), rounds: d.rounds, byProvider: d.byProvider, failed: d.failed },
      ensemble: {
        deployToStartedAtMs: es,
        apiMs: stats(e.api),
        deployToAllPlacedMs: stats(e.placed),
        deployToLastPartRunningMs: stats(e.lastPartRunning),
        deployToFirstPartRunningMs: stats(e.firstPartRunning),
        deployToCompletedMs: stats(e.toCompleted),
        maxRoundsOfAPart: e.maxRounds,
        partsRetried: e.retried,
        providersPerEnsemble: e.distinct,
        partsByProvider: e.byProvider,
        failed: e.failed,
      },
    };
    const notes = [
      `${e.ms.length} ensembles of ${PARTS} WASM task parts (${PART_CPU} cpu / ${PART_MEMORY / MiB} MiB each) and ${d.ms.length} single-part deals, taking turns in blocks of ${BLOCK} (${blocks} blocks, ${round(loopS, 1)} s), one at a time, each let end before the next; ${warm} warm-up deals and 1 warm-up ensemble first${d.failed.length + e.failed.length ? `; FAILED: ${d.failed.length} deals, ${e.failed.length} ensembles (${[...d.failed, ...e.failed][0]})` : ''}`,
      `ensemble deploy -> startedAt (every part up) ms: p50 ${es.p50}, p99 ${es.p99}, min ${es.min}, max ${es.max}; single-part deal deploy -> 'running' ms: p50 ${ds.p50}, p99 ${ds.p99}, min ${ds.min}, max ${ds.max}; ratio p50 ${round(es.p50 / ds.p50, 2)}x, p99 ${round(es.p99 / ds.p99, 2)}x`,
      `ensemble, where it goes (p50 ms from the deploy sent): created ${detail.ensemble.apiMs.p50} (deal ${detail.deal.apiMs.p50}); every part placed (history leaves 'requesting') ${detail.ensemble.deployToAllPlacedMs.p50}; first part 'running' ${detail.ensemble.deployToFirstPartRunningMs.p50}, last part 'running' ${detail.ensemble.deployToLastPartRunningMs.p50} (its negotiation's history, <id>@<part>); startedAt ${es.p50}; completed ${detail.ensemble.deployToCompletedMs.p50} (deal ${detail.deal.deployToCompletedMs.p50})`,
      `placement: ensembles on ${fmtCounts(e.distinct)}; parts by provider ${fmtCounts(e.byProvider)}; the most bid rounds a part took: ${fmtCounts(e.maxRounds)}; deals by provider ${fmtCounts(d.byProvider)}, rounds ${fmtCounts(d.rounds)}`,
      `at the nodes during the loop (GET /v1/info deltas): ${Object.entries(nodeCounts).map(([k, v]) => `${k} bid declines ${fmtCounts(v.declines)}, refused envelopes ${fmtCounts(v.rejected)}`).join('; ')}; 1-minute load average at the end ${detail.loadAverage1m} on ${os.availableParallelism()} cores`,
      bidsBack.error
        ? `bids back: could not read A's journal: ${bidsBack.error}`
        : `bids back at A (its journal; the deals' and the parts' rounds together): ${bidsBack.rounds} rounds, ${bidsBack.answers} bids/declines, p50 ${bidsBack.answerMs.p50} ms, p99 ${bidsBack.answerMs.p99} ms, max ${bidsBack.answerMs.max} ms after the round's request was sent; ${bidsBack.lateAnswers} came after the 500 ms window had closed; ${bidsBack.roundsWithoutAnswer} rounds got no answer at all`,
      ...(e.retried.length ? [`parts that needed more than one bid round (${e.retried.length}), round 1: ${e.retried.slice(0, 3).join(' | ')}`] : []),
    ];
    return [
      {
        ...msRow('ensemble-deploy-p50', `ensemble deploy latency p50: POST /v1/deploy sent -> record's startedAt (every part running), ${PARTS} independent WASM task parts on 3 providers (A asks; B, C, D bid), one at a time vs raw: a single-part deal (the same hello module) deploy -> history 'running', same nodes, same run (blocks taking turns)`, es.p50, ds.p50, [{ kind: 'ratio', max: 2 }], detail),
        notes,
      },
      {
        ...msRow('ensemble-deploy-p99', `ensemble deploy latency p99 (nearest rank; of ${e.ms.length} ensembles) vs the single-part deal's p99 (of ${d.ms.length}), the same runs`, es.p99, ds.p99, [], { ensembleMs: es, dealMs: ds }),
        notes: [`max ${es.max} ms ensemble, ${ds.max} ms single-part deal`],
      },
    ];
  } finally {
    if (cl) await stopNodes(cl.all);
  }
}

// ---------------------------------------------------------------------------------------------- 2. failover

/** Resolves when A counts `peerId` as a DMS peer (at most `ms`): the ms it took. */
async function untilPeer(a, peerId, ms = 30_000) {
  const t0 = performance.now();
  for (;;) {
    const peers = await a.api('GET', '/v1/peers');
    if (peers.some((p) => p.peer === peerId && p.dms)) return performance.now() - t0;
    if (performance.now() - t0 > ms) throw new Error(`A does not see ${peerId} as a DMS peer after ${ms / 1000} s`);
    await sleep(200);
  }
}

/** Resolves when `node` holds no lock and no allocation (at most `ms`): the ms it took, or null when it still does. */
async function untilIdle(node, ms) {
  const t0 = performance.now();
  for (;;) {
    const info = await node.api('GET', '/v1/info').catch(() => null);
    if (info && info.locks.length === 0 && info.allocations.length === 0) return performance.now() - t0;
    if (performance.now() - t0 > ms) return null;
    await sleep(250);
  }
}

/** Whether something answers HTTP on 127.0.0.1:port (a quick GET /health). */
function answers(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.end('GET /health HTTP/1.0\r\n\r\n');
    });
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('close', () => resolve(/^HTTP\/1\.\d 200/.test(got)));
    s.on('error', () => resolve(false));
    s.setTimeout(1000, () => s.destroy());
  });
}

const kvOf = (rec) => rec.parts.find((p) => p.name === 'kv');

/** One failover run on the cluster: deploy kv, wait healthy, SIGKILL its provider, time the move, clean up. */
async function failoverRun(cl, run, deadline) {
  const { a } = cl;
  const [b, c] = cl.providers;
  const body = kvEnsemble([b.peerId, c.peerId]);
  const sentAt = Date.now();
  const first = await a.api('POST', '/v1/deploy', body);
  const id = first.id;
  try {
    const up = await pollUntil(a, id, (r) => ended(r) || (kvOf(r)?.state === 'running' && kvOf(r)?.healthy === true), 30_000, 'kv ensemble');
    if (ended(up)) throw new Error(`the kv ensemble ${up.state} before it ran healthy: ${up.message}`);
    const upMs = (firstAt(up.history, (e) => e.state === 'running') ?? Date.now()) - sentAt;
    const victim = cl.providers.find((p) => p.peerId === kvOf(up).provider);
    const survivor = cl.providers.find((p) => p !== victim);
    if (!victim) throw new Error(`kv runs on ${kvOf(up).provider}, neither B nor C`);
    // the port the victim gave kv (its ledger's allocation), to see whether kv outlives its provider
    const allocs = await victim.api('GET', '/v1/allocations').catch(() => []);
    const alloc = allocs.find((x) => x.id === kvOf(up).allocationId) ?? allocs[0];
    const port = Object.values(alloc?.ports ?? {}).find((x) => Number.isInteger(x)) ?? null;
    const before = await a.api('GET', `/v1/jobs/${id}@kv`);

    const killedAt = Date.now();
    const kt0 = performance.now();
    await kill(victim.child, 'SIGKILL');
    await sleep(300);
    const orphan = port === null ? null : await answers(port);

    // poll until kv runs healthy on the survivor
    let moved;
    let polls = 0;
    for (;;) {
      await sleep(FAILOVER_POLL_MS);
      polls += 1;
      const r = await a.api('GET', `/v1/jobs/${id}`);
      const kv = kvOf(r);
      if (kv.provider === survivor.peerId && kv.state === 'running' && kv.healthy === true) {
        moved = { rec: r, seenAt: Date.now(), seenMs: performance.now() - kt0 };
        break;
      }
      if (ended(r)) throw new Error(`the kv ensemble ${r.state} after its provider ${victim.name} was killed: ${r.message}; kv ${kv.state}: ${kv.message}`);
      if (performance.now() - kt0 > FAILOVER_TIMEOUT_MS) throw new Error(`kv not running healthy on ${survivor.name} ${FAILOVER_TIMEOUT_MS / 1000} s after ${victim.name} was killed: kv ${kv.state} on ${kv.provider}, healthy ${kv.healthy}: ${kv.message}`);
    }
    const rec = moved.rec;
    const partRec = await a.api('GET', `/v1/jobs/${id}@kv`);
    // A's clock: the ensemble's history entry `running` after the kill is kv back up and healthy
    const healthyAt = firstAt(rec.history, (e) => e.state === 'running', killedAt);
    const movedAt = firstAt(rec.history, (e) => /moved to/.test(e.message), killedAt);
    const ph = partRec.history;
    const lostAt = firstAt(ph, (e) => /taken as lost|could not be reached|lost/.test(e.message), killedAt);
    const after = lostAt ?? killedAt;
    const placedAt = firstAt(ph, (e) => e.state === 'placed' || e.state === 'provisioning', after);
    // (the entry saying the provider was taken as lost is still in state 'running': the first 'running on' after it)
    const runningAt = firstAt(ph, (e) => e.state === 'running' && e.message.startsWith('running on'), placedAt ?? after);
    const windowAt = firstAt(ph, (e) => e.state === 'requesting' && /bid window/.test(e.message), after);
    const total = healthyAt !== undefined ? healthyAt - killedAt : moved.seenAt - killedAt;
    const d = (x, y) => (x !== undefined && y !== undefined ? y - x : null);
    const result = {
      run,
      victim: victim.name,
      survivor: survivor.name,
      ms: total,
      seenByPollMs: round(moved.seenMs),
      polls,
      split: {
        detect: d(killedAt, lostAt),
        replace: d(lostAt, placedAt),
        start: d(placedAt, runningAt),
        health: d(runningAt, healthyAt),
        lostToBidWindowClosed: d(lostAt, windowAt),
      },
      movedInHistory: movedAt !== undefined,
      restarts: kvOf(rec).restarts,
      firstUpMs: upMs,
      killAfterDeployMs: killedAt - sentAt,
      kvOutlivedProvider: orphan,
      kvPort: port,
      partHistory: ph.filter((e) => e.at >= (before.history.at(-1)?.at ?? 0)).map((e) => ({ at: e.at - killedAt, state: e.state, message: e.message.slice(0, 160) })),
      ensembleHistory: rec.history.filter((e) => e.at >= killedAt).map((e) => ({ at: e.at - killedAt, state: e.state, message: e.message.slice(0, 160) })),
    };

    // cancel the ensemble; restart the victim on its data dir and wait until A sees it again
    await a.api('POST', `/v1/jobs/${id}/cancel`);
    await pollUntil(a, id, ended, 20_000, 'cancelling kv ensemble').catch((e) => note(`failover: ${e.message}`));
    const restarted = await startDms(victim.name, 'fo', [a.ready.listen[0]], [], victim.dir, NODE_ARGS);
    if (restarted.peerId !== victim.peerId) throw new Error(`${victim.name} came back as ${restarted.peerId}, not ${victim.peerId}`);
    cl.providers[cl.providers.indexOf(victim)] = restarted;
    cl.all[cl.all.indexOf(victim)] = restarted;
    result.rejoinMs = round(await untilPeer(a, restarted.peerId, Math.max(5_000, deadline - performance.now())));
    // what the returning provider does with the allocation that moved away; and the survivor after the cancel
    const idle = await Promise.all([untilIdle(restarted, 15_000), untilIdle(survivor, 15_000)]);
    result.victimIdleAfterRestartMs = idle[0] === null ? null : round(idle[0]);
    result.survivorIdleAfterCancelMs = idle[1] === null ? null : round(idle[1]);
    if (idle[0] === null) result.victimHolds = await restarted.api('GET', '/v1/info').then((i) => ({ locks: i.locks.length, allocations: i.allocations.length })).catch(() => null);
    result.kvAfterRestart = port === null ? null : await answers(port);
    return result;
  } catch (e) {
    await a.api('POST', `/v1/jobs/${id}/cancel`).catch(() => {});
    throw e;
  }
}

async function benchFailover() {
  const deadlines = await lostAfterMs();
  let cl;
  try {
    const t0 = performance.now();
    cl = await startCluster('failover', 2, [], NODE_ARGS);
    note(`failover: 3 nodes up in ${round((performance.now() - t0) / 1000, 1)} s`);
    const began = performance.now();
    const runs = [];
    const failed = [];
    for (let i = 0; i < FAILOVER_RUNS && performance.now() - began < FAILOVER_BUDGET_MS; i += 1) {
      try {
        const r = await withTimeout(failoverRun(cl, i + 1, began + FAILOVER_BUDGET_MS), 90_000, `failover run ${i + 1}`);
        runs.push(r);
        note(`failover: run ${i + 1}: ${r.victim} killed -> kv healthy on ${r.survivor} in ${r.ms} ms (detect ${r.split.detect}, re-place ${r.split.replace}, start ${r.split.start}, health ${r.split.health})`);
      } catch (e) {
        failed.push(e.message);
        note(`failover: run ${i + 1} FAILED: ${e.message}`);
        // a node that is not there any more (the victim not restarted) ends the benchmark
        if (cl.all.some((n) => n.child.exitCode !== null || n.child.signalCode !== null)) break;
      }
    }
    if (!runs.length) throw new Error(`no failover completed: ${failed.slice(0, 3).join('; ')}; A's stderr: ${cl.a.stderr().slice(-600) || '(empty)'}`);
    const ms = runs.map((r) => r.ms);
    const s = stats(ms);
    const split = (k) => stats(runs.map((r) => r.split[k]).filter((x) => x !== null));
    const splits = { detect: split('detect'), replace: split('replace'), start: split('start'), health: split('health'), lostToBidWindowClosed: split('lostToBidWindowClosed') };
    const detail = { runs, failed, deadlines, failoverMs: s, splitsMs: splits, pollMs: FAILOVER_POLL_MS };
    const orphans = runs.filter((r) => r.kvOutlivedProvider === true).length;
    const holds = runs.filter((r) => r.victimIdleAfterRestartMs === null);
    const notes = [
      `${runs.length} runs${failed.length ? ` (${failed.length} FAILED: ${failed[0]})` : ''}: kv (process, 0.2 cpu / 64 MiB, HTTP health check every 200 ms, 3 retries, restart on-failure) allowed on B or C; its provider SIGKILLed once kv ran healthy; kill -> the ensemble's history 'running' again (kv healthy on the other provider), A's clock; polled every ${FAILOVER_POLL_MS} ms (seen by the poll p50 ${stats(runs.map((r) => r.seenByPollMs)).p50} ms)`,
      `runs ms: ${runs.map((r) => `${r.ms} (${r.victim} -> ${r.survivor})`).join(', ')}; p50 ${s.p50}, max ${s.max}`,
      `loss detection deadline: the requester's lostAfterMs = ${deadlines.lostAfterMs} ms (machines/deal.constants.ts DEAL_DEFAULTS.requester; a running allocation sends its status every heartbeatMs = ${deadlines.heartbeatMs} ms, so a provider killed at a random moment is taken as lost ${deadlines.lostAfterMs - deadlines.heartbeatMs}-${deadlines.lostAfterMs} ms after the kill; here kv had just reported itself healthy when its provider was killed, so close to ${deadlines.lostAfterMs} ms); the raw column is that deadline, not a measured baseline`,
      `where it goes (p50 ms; from the part's negotiation <id>@kv and the ensemble's history, A's clock): detect (kill -> 'taken as lost') ${splits.detect.p50 ?? '-'}, re-place (lost -> committed again: retry wait ${deadlines.retryMs} ms, bid window, commit) ${splits.replace.p50 ?? '-'} (of which lost -> bid window closed ${splits.lostToBidWindowClosed.p50 ?? '-'}), start (-> part 'running' on the new provider) ${splits.start.p50 ?? '-'}, health (-> healthy, ensemble 'running') ${splits.health.p50 ?? '-'}`,
      `after each run: the ensemble cancelled, the killed provider restarted on its data dir; A saw it again after p50 ${stats(runs.map((r) => r.rejoinMs)).p50} ms; it held no lock or allocation after p50 ${stats(runs.map((r) => r.victimIdleAfterRestartMs).filter((x) => x !== null)).p50 ?? '-'} ms${holds.length ? `; STILL HELD something 15 s after its restart in ${holds.length} runs (${JSON.stringify(holds[0].victimHolds)})` : ''}; kv's process ${orphans ? `OUTLIVED its SIGKILLed provider in ${orphans} of ${runs.length} runs (its port still answered 300 ms after the kill)` : 'died with its provider (its port stopped answering)'}`,
      `each kill came ${runs.map((r) => round(r.killAfterDeployMs / 1000, 1)).join(', ')} s after its ensemble's deploy, inside the ensemble's placement deadline (created + placementMs = ${deadlines.placementMs / 1000} s), which a part placed again after a loss is also held to: a provider lost after it does not move its part (the part and the ensemble fail with "no provider took the job before its deadline"), so these runs measure the failover of a young ensemble only`,
      ...(runs[0] ? [`run 1, the part's history after the kill (ms from the kill): ${runs[0].partHistory.filter((e) => e.at >= -1000).map((e) => `${e.at} ${e.state}: ${e.message}`).join(' | ')}`] : []),
    ];
    return [
      {
        ...msRow('ensemble-failover-p50', `ensemble failover p50: a service part's provider SIGKILLed -> the part running and healthy on the other provider (3 nodes: A asks, B and C may run it) vs raw: no baseline; the raw column is the loss-detection deadline (lostAfterMs) it must wait through`, s.p50, deadlines.lostAfterMs, [{ kind: 'ours', max: 10_000 }], detail),
        notes,
      },
      {
        ...msRow('ensemble-failover-max', `ensemble failover max (of ${runs.length} runs), the same runs; raw: the loss-detection deadline`, s.max, deadlines.lostAfterMs, [], { failoverMs: s }),
        notes: [`runs ${ms.join(', ')} ms`],
      },
    ];
  } finally {
    if (cl) await stopNodes(cl.all.filter((n) => n.child.exitCode === null && n.child.signalCode === null));
  }
}

/** [id, fn] pairs for run.mjs; each fn resolves to an array of results. */
export const ensembleBenches = [
  ['ensemble-deploy', benchDeploy],
  ['ensemble-failover', benchFailover],
];

// ---------------------------------------------------------------------------------------------- standalone

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const jsonFile = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
  const watchdog = guard(420_000, 'ensembles bench');
  const started = performance.now();
  const loadBefore = os.loadavg()[0];
  const results = [];
  try {
    for (const [id, fn] of ensembleBenches) if (!only || id === only) await step(results, 'bench', id, fn, cleanup);
  } finally {
    killNetPeers();
    await cleanup();
  }
  const report = { ...reportHead('dms-runtime ensembles bench', started), loadAverage1m: loadAverage(loadBefore), ok: results.every((r) => !r.error && r.pass !== false), results };
  process.stdout.write(`\n${table(results, (r) => r.notes ?? [])}\n\ntotal ${report.totalSeconds} s on ${report.cpus} cores, Node ${report.node}; 1-minute load average ${report.loadAverage1m.before} before, ${report.loadAverage1m.after} after\n`);
  if (jsonFile) await writeFile(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  clearTimeout(watchdog);
  process.exit(results.some((r) => r.error) ? 1 : 0);
}
