// Flood benchmark: a well-behaved requester's deal latency (POST /v1/deploy sent -> the job's history entry
// `running`, as deals.mjs's deal-latency) while one raw peer floods bid requests, beside the same without the
// flood, in the same run on the same nodes. Target: p99 under a flood within 2x of p99 without.
//
// 3 nodes on loopback (`--bid-window 500ms`): A deploys tiny hello.wasm jobs one at a time, B and C bid. The
// flooder is one raw libp2p process (hostile-peer.mjs, built from the libp2p packages, not the project's code)
// sending valid signed bid requests (small WASM jobs, 0.01 cpu: a node with room locks and bids, up to its
// per-requester limit) to every node (A, B and C), one stream each. Sides:
//   none    no flood
//   silent  no flood, but the raw peer connected to every node on the actor protocol, sending and answering
//           nothing (a control: what its presence alone costs a deal)
//   max     one identity, as fast as the credit allows; once a node hangs up on it and refuses it (its
//           bid.request budget, EDGE_BUDGETS), it redials every 100 ms and floods again when it gets in
//   budget  one identity paced at 95 bid requests/s per node, just under its budget (100/s): the heaviest flood
//           one identity can keep up without being refused
//   sybil   as `max`, but every refused identity is replaced at once by a fresh one (a new key costs nothing)
// The sides take turns in blocks of FLOOD_BENCH_BLOCK deals (none, silent, max, budget, sybil, none, ...) until each
// has FLOOD_BENCH_N; before each block the nodes' locks are let go (at most 20 s) so no side inherits another's. A
// deal not running within 30 s counts as failed; a block stops after 60 s.
//
// Standalone: `npm run build && node test/bench/flood.mjs [--json FILE] [--sides max,budget,sybil]`; from
// run.mjs: `const { floodBenches } = await import('./flood.mjs')` gives [id, fn] pairs, each fn resolving to an
// array of rows in run.mjs's shape. Env: FLOOD_BENCH_N (30 deals per side), FLOOD_BENCH_BLOCK (10),
// FLOOD_BENCH_SIDES (silent,max,budget,sybil).
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { children, cleanup, cpuSecondsOf, guard, loadAverage, msRow, note, reportHead, round, step, table } from './common.mjs';
import { helloJob, startCluster, stepsOf, stopNodes, warmUp } from './deals.mjs';
import { spawnHostile } from './hostile-peer.mjs';

const env = (name, dflt) => (process.env[name] === undefined ? dflt : Number(process.env[name]));
const N = env('FLOOD_BENCH_N', 30);
const BLOCK = env('FLOOD_BENCH_BLOCK', 10);
const argSides = process.argv.includes('--sides') ? process.argv[process.argv.indexOf('--sides') + 1] : undefined;
const FLOOD_SIDES = (argSides ?? process.env.FLOOD_BENCH_SIDES ?? 'silent,max,budget,sybil').split(',').filter(Boolean);
/** No block may take longer than this (a deal that cannot be placed under a flood waits up to its deadline). */
const BLOCK_BUDGET_MS = 60_000;
/** A deal not running by then counts as failed (its deadline is longer: 60 s plus the job's timeout). */
const DEAL_TIMEOUT_MS = 30_000;
/** After the flood is switched on, before the first deal of its block. */
const SETTLE_MS = 1_000;
const SIDE_TEXT = {
  none: 'no flood',
  silent: 'connected on the actor protocol and silent, no flood (a control)',
  max: 'one identity flooding bid requests as fast as the credit allows (redialling every 100 ms while refused)',
  budget: 'one identity flooding 95 bid requests/s per node, just under its budget',
  sybil: 'flooding bid requests as fast as the credit allows, a fresh identity each time one is refused',
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Nearest rank: the smallest value with at least p of the values at or below it (p99 of 30 is the max). */
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(p * s.length) - 1)];
};
const stats = (xs) => (xs.length ? { p50: round(pct(xs, 0.5), 1), p99: round(pct(xs, 0.99), 1), max: round(Math.max(...xs), 1), n: xs.length } : { n: 0 });

/** Each node's refusal and decline counters (GET /v1/info). */
async function counters(nodes) {
  const out = {};
  for (const n of nodes) {
    const i = await n.api('GET', '/v1/info');
    out[n.name] = { rejected: { ...i.messages.rejected }, declines: { ...i.bidDeclines }, in: i.messages.in };
  }
  return out;
}

const addDelta = (acc, before, after) => {
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d) acc[k] = (acc[k] ?? 0) + d;
  }
};

/**
 * Polls a job until it ended (GET /v1/jobs/:id every 50 ms); rejects when it is not running within
 * DEAL_TIMEOUT_MS (then cancels it), so a deal that a flood keeps from being placed does not hold up the run.
 */
async function untilDone(a, id) {
  const t0 = performance.now();
  for (;;) {
    await sleep(50);
    const r = await a.api('GET', `/v1/jobs/${id}`);
    if (['completed', 'failed', 'cancelled'].includes(r.state)) return r;
    if (performance.now() - t0 > DEAL_TIMEOUT_MS && !r.history.some((e) => e.state === 'running')) {
      await a.api('POST', `/v1/jobs/${id}/cancel`).catch(() => {});
      throw new Error(`job ${id} not running after ${DEAL_TIMEOUT_MS / 1000} s (${r.rounds} rounds): ${r.message}`);
    }
  }
}

/** What the first round's bid window closed with ("2 bids, 0 declines"), and after how long (rounded to 100 ms). */
function windowMessage(rec) {
  const e = rec.history.find((x) => x.state === 'requesting' && x.message.startsWith('bid window of round'));
  if (!e) return '(none)';
  const what = /closed: ([^;:]+)/.exec(e.message)?.[1] ?? e.message.slice(0, 60);
  return `${what} after ~${Math.round((e.at - rec.createdAt) / 100) * 100} ms`;
}

/** Waits (at most `ms`) until no node holds a lock: a block starts with every node's capacity free. */
async function untilNoLocks(nodes, ms = 20_000) {
  const end = Date.now() + ms;
  for (;;) {
    const held = await Promise.all(nodes.map(async (n) => (await n.api('GET', '/v1/info')).locks.length));
    if (held.every((x) => x === 0)) return 0;
    if (Date.now() > end) return held.reduce((a, b) => a + b, 0);
    await sleep(250);
  }
}

async function benchFlood() {
  const sides = ['none', ...FLOOD_SIDES];
  for (const s of sides) if (!SIDE_TEXT[s]) throw new Error(`unknown side ${s} (sides: ${Object.keys(SIDE_TEXT).join(', ')})`);
  const { body } = await helloJob();
  let cl;
  let hostile;
  try {
    const t0 = performance.now();
    [cl, hostile] = await Promise.all([startCluster('flood', 2), spawnHostile((c) => children.add(c))]);
    const { a } = cl;
    note(`flood: 3 nodes and the raw peer up in ${round((performance.now() - t0) / 1000, 1)} s`);
    const warm = (await warmUp(a, body)).deals;
    const targets = cl.all.map((n) => ({ peerId: n.peerId, addr: n.ready.listen[0] }));
    await hostile.call('start', { targets, mode: 'off' });

    const per = Object.fromEntries(sides.map((s) => [s, { ms: [], toCompleted: [], rounds: {}, windows: {}, failed: [], rejected: {}, declines: {}, flooderSent: 0, seconds: 0, nodeCpuSeconds: 0, flooderCpuSeconds: 0, locksLeft: [], identities: 0, cutOff: 0 }]));
    const pids = cl.all.map((n) => n.child.pid);
    for (let cycle = 0; sides.some((s) => per[s].ms.length + per[s].failed.length < N); cycle += 1) {
      for (const side of sides) {
        const r = per[side];
        const want = Math.min(BLOCK, N - r.ms.length - r.failed.length);
        if (want <= 0) continue;
        await hostile.call('mode', { mode: 'off' });
        const left = await untilNoLocks(cl.all);
        if (left) r.locksLeft.push(left);
        const hs = await hostile.call('stats');
        if (side !== 'none') {
          await hostile.call('mode', { mode: side, opts: { perSec: 95, redialMs: 100 } });
          await sleep(SETTLE_MS);
        }
        const h0 = await hostile.call('stats');
        const c0 = await counters(cl.all);
        const cpu0 = await Promise.all(pids.map(cpuSecondsOf));
        const f0 = await cpuSecondsOf(hostile.child.pid);
        const b0 = performance.now();
        for (let i = 0; i < want && performance.now() - b0 < BLOCK_BUDGET_MS; i += 1) {
          const sent = Date.now();
          let end;
          try {
            const rec = await a.api('POST', '/v1/deploy', body);
            end = await untilDone(a, rec.id);
          } catch (e) {
            r.failed.push(e.message);
            continue;
          }
          r.windows[windowMessage(end)] = (r.windows[windowMessage(end)] ?? 0) + 1;
          if (end.state !== 'completed') {
            r.failed.push(`${end.id} ${end.state}: ${end.message}`);
            continue;
          }
          const s = stepsOf(end, sent);
          if (s.running !== undefined) r.ms.push(s.running - sent);
          if (s.ended !== undefined) r.toCompleted.push(s.ended - sent);
          r.rounds[s.rounds] = (r.rounds[s.rounds] ?? 0) + 1;
        }
        const secs = (performance.now() - b0) / 1000;
        const cpu1 = await Promise.all(pids.map(cpuSecondsOf));
        const f1 = await cpuSecondsOf(hostile.child.pid);
        const c1 = await counters(cl.all);
        const h1 = await hostile.call('stats');
        r.seconds += secs;
        r.nodeCpuSeconds += cpu1.reduce((x, v, k) => x + (v - cpu0[k]), 0);
        r.flooderCpuSeconds += f1 - f0;
        for (const n of cl.all) {
          addDelta(r.rejected, c0[n.name].rejected, c1[n.name].rejected);
          addDelta(r.declines, c0[n.name].declines, c1[n.name].declines);
        }
        r.flooderSent += Object.values(h1.sent).reduce((x, v) => x + v, 0) - Object.values(h0.sent).reduce((x, v) => x + v, 0);
        r.identities += h1.identities - hs.identities;
        r.cutOff += h1.cutOff - h0.cutOff;
        note(`flood: cycle ${cycle + 1}, ${side}: ${r.ms.length} deals so far, p50 ${stats(r.ms).p50} ms${r.failed.length ? `, ${r.failed.length} failed` : ''}`);
      }
    }
    await hostile.call('mode', { mode: 'off' });
    const base = per.none;
    const bs = stats(base.ms);
    if (!bs.n) throw new Error(`no deal without the flood reached running: ${base.failed.slice(0, 3).join('; ')}`);
    const describe = (side) => {
      const r = per[side];
      const s = stats(r.ms);
      const rate = (x) => round(x / r.seconds);
      return {
        side,
        deployToRunningMs: s,
        deployToCompletedMs: stats(r.toCompleted),
        rounds: r.rounds,
        bidWindows: r.windows,
        failed: r.failed,
        seconds: round(r.seconds, 1),
        flooderSentPerSec: rate(r.flooderSent),
        identities: r.identities,
        cutOff: r.cutOff,
        rejectedPerSec: Object.fromEntries(Object.entries(r.rejected).map(([k, v]) => [k, rate(v)])),
        bidDeclines: r.declines,
        nodesCores: round(r.nodeCpuSeconds / r.seconds, 2),
        flooderCores: round(r.flooderCpuSeconds / r.seconds, 2),
        locksLeftBeforeBlocks: r.locksLeft,
      };
    };
    const detailNone = describe('none');
    const sideLine = (d) =>
      `${d.side} (${SIDE_TEXT[d.side]}): ${d.deployToRunningMs.n} deals, deploy -> running p50 ${d.deployToRunningMs.p50} ms, p99 ${d.deployToRunningMs.p99} ms (max ${d.deployToRunningMs.max}); rounds ${Object.entries(d.rounds).map(([k, v]) => `${v} in ${k}`).join(', ')}; the first bid window closed: ${Object.entries(d.bidWindows).map(([k, v]) => `${v}x "${k}"`).join(', ')}${d.failed.length ? `; FAILED ${d.failed.length}: ${d.failed[0]}` : ''}; nodes ${d.nodesCores} cores${d.side === 'none' ? '' : `, flooder ${d.flooderCores} cores, ${d.flooderSentPerSec} bid requests/s sent (${d.identities} identities, cut off ${d.cutOff} times); at the nodes per s: ${Object.entries(d.rejectedPerSec).map(([k, v]) => `${k} ${v}`).join(', ') || 'nothing refused'}; declines ${Object.entries(d.bidDeclines).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`}${d.locksLeftBeforeBlocks.length ? `; locks still held before a block after 20 s: ${d.locksLeftBeforeBlocks.join(', ')}` : ''}`;
    return FLOOD_SIDES.map((side) => {
      const d = describe(side);
      const s = d.deployToRunningMs;
      if (!s.n) return { id: `deal-flood-${side}`, name: `deal latency with one raw peer at every node: ${SIDE_TEXT[side]}`, unit: '', targets: [], error: `no deal reached running under the flood: ${d.failed.slice(0, 3).join('; ')}`, pass: false, notes: [sideLine(d)] };
      const row = msRow(
        `deal-flood-${side}-p99`,
        `deal latency p99 (deploy -> running), 3 nodes, A asking, with one raw peer at every node: ${SIDE_TEXT[side]}; vs no raw peer, same nodes, same run (blocks of ${BLOCK} deals taking turns)`,
        s.p99,
        bs.p99,
        [{ kind: 'ratio', max: 2 }],
        { warmUpDeals: warm, flood: d, none: detailNone },
      );
      return {
        ...row,
        notes: [
          `p50 ${s.p50} ms with the raw peer (${side}) vs ${bs.p50} ms without (${round(s.p50 / bs.p50, 2)}x); p99 ${s.p99} vs ${bs.p99} ms (${round(s.p99 / bs.p99, 2)}x)${d.failed.length ? `; ${d.failed.length} deals FAILED` : ''}`,
          sideLine(d),
          sideLine(detailNone),
        ],
      };
    });
  } finally {
    if (hostile) await hostile.call('stop', {}, 10_000).catch(() => hostile.child.kill('SIGKILL'));
    if (cl) await stopNodes(cl.all);
  }
}

/** [id, fn] pairs for run.mjs; each fn resolves to an array of results. */
export const floodBenches = [['deal-flood', benchFlood]];

// ---------------------------------------------------------------------------------------------- standalone

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const jsonFile = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
  const watchdog = guard(600_000, 'flood bench');
  const started = performance.now();
  const loadBefore = os.loadavg()[0];
  const results = [];
  try {
    for (const [id, fn] of floodBenches) await step(results, 'bench', id, fn, cleanup);
  } finally {
    await cleanup();
  }
  const report = { ...reportHead('dms-runtime flood bench', started), loadAverage1m: loadAverage(loadBefore), loadAverage15m: round(os.loadavg()[2], 2), ok: results.every((r) => !r.error && r.pass !== false), results };
  process.stdout.write(`\n${table(results, (r) => r.notes ?? [])}\n\ntotal ${report.totalSeconds} s on ${report.cpus} cores, Node ${report.node}; 1-minute load average ${report.loadAverage1m.before} before, ${report.loadAverage1m.after} after (15-minute ${report.loadAverage15m})\n`);
  if (jsonFile) await writeFile(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  clearTimeout(watchdog);
  process.exit(results.some((r) => r.error) ? 1 : 0);
}
