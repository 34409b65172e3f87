// `npm run soak` (outside `npm test`): real nodes under mixed hostile traffic and normal deals, bounded in time
// and count, loopback only. Checks that memory and disk stay flat after a warm-up and that every normal deal
// completes.
//
//   npm run soak -- [--minutes 10] [--nodes 4] [--deal-every 2] [--round-seconds 10] [--warmup 0.2]
//                   [--sample-seconds 10] [--max-deals N] [--json] [--json-file FILE]
//
// - Nodes: `node runtime/main.js` (the built JS) on fresh data dirs, `--bid-window 500ms --retain-history 64MiB`: A, the requester, and
//   the providers B, C (and D) joined through it (test/bench/deals.mjs startCluster).
// - Normal deals: A deploys hello.wasm (0.1 cpu, 32 MiB) through its API every --deal-every seconds, without
//   waiting for the previous one, and polls each to its end (GET /v1/jobs/:id).
// - Hostile traffic: one raw libp2p peer process (test/bench/hostile-peer.mjs, mode `soak`) built from the libp2p
//   packages, not the project's code, sends to every node, each --round-seconds: junk frames (an unknown kind, an
//   envelope frame that is not one, a forged signature, an expired envelope, an unknown type, a wrong payload, a
//   frame cut short), replayed envelopes, an oversized frame (length over 1 MiB), 8 bid requests with maximal job
//   specs (16 KiB DAG-CBOR, small resources so a node locks and bids) and 1 just over the limit, 4 maximal bid
//   requests broadcast on the gossip topic (each reaches every node), and a flood of up to 600 bid requests as
//   fast as the credit allows from a fresh identity (over the bid.request budget: dropped, then refused).
// - Every --sample-seconds: each node's RSS (/proc/<pid>/status VmRSS) and data dir size (all files, each inode
//   once; journal/ apart, and the journal's history apart: the segments before the newest checkpoint base, which
//   `--retain` (default 7 days, swept hourly) removes once old enough and `--retain-history` once past its size),
//   and GET /v1/info (refusals by reason, bid
//   declines by code, and how long it took to answer); and what each node logs at warn and above.
//
// Verdict (exit 1 when it fails):
// - RSS flat after the warm-up (the first --warmup of the run, default a fifth): for every node the END value
//   (median of the samples in the run's last 30 s) is at most the WARM value (median of the samples in the
//   warm-up's last 30 s) plus the larger of 15% of it and 30 MiB;
// - the data dir bounded: without the journal's history flat by the same rule plus 32 MiB (the live journal
//   segment grows to that before a checkpoint starts the next), and the history never over --retain-history at
//   any sample. The whole data dir is shown beside it by the same rule, outside the verdict: until the history
//   reaches its cap (which takes longer than a 10-minute run at a flood's rate) it grows with it;
// - every normal deal deployed during the run completed (none failed, none unfinished 120 s after the run);
// - every node still running at the end and answering `info` within 10 s at every sample.
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { children, cleanup, cpuSecondsOf, dirBytes, guard, MAIN_JS, round, rssOf, spawnTracked, withTimeout } from '../bench/common.mjs';
import { helloJob, startCluster, stepsOf, stopNodes } from '../bench/deals.mjs';
import { spawnHostile } from '../bench/hostile-peer.mjs';

/** Each node's `--retain-history`. */
const RETAIN_HISTORY = '64MiB';
const RETAIN_HISTORY_BYTES = 64 * 1024 ** 2;

const { values: o } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    nodes: { type: 'string', default: '4' },
    'deal-every': { type: 'string', default: '2' },
    'round-seconds': { type: 'string', default: '10' },
    warmup: { type: 'string', default: '0.2' },
    'sample-seconds': { type: 'string', default: '10' },
    'max-deals': { type: 'string' },
    json: { type: 'boolean', default: false },
    'json-file': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (o.help) {
  process.stdout.write('usage: node test/soak/soak.mjs [--minutes 10] [--nodes 4] [--deal-every 2] [--round-seconds 10] [--warmup 0.2] [--sample-seconds 10] [--max-deals N] [--json] [--json-file FILE]\n');
  process.exit(0);
}
const num = (name, min, max) => {
  const v = Number(o[name]);
  if (!Number.isFinite(v) || v < min || v > max) {
    process.stderr.write(`soak: --${name} ${o[name]}: a number from ${min} to ${max}\n`);
    process.exit(2);
  }
  return v;
};
const MINUTES = num('minutes', 0.5, 120);
const NODES = num('nodes', 3, 4);
const DEAL_EVERY_MS = num('deal-every', 0.2, 60) * 1000;
const ROUND_MS = num('round-seconds', 1, 600) * 1000;
const WARMUP = num('warmup', 0.05, 0.9);
const SAMPLE_MS = num('sample-seconds', 1, 60) * 1000;
const RUN_MS = MINUTES * 60_000;
const WARMUP_MS = Math.round(RUN_MS * WARMUP);
const MAX_DEALS = o['max-deals'] === undefined ? Math.ceil(RUN_MS / DEAL_EVERY_MS) + 1 : num('max-deals', 1, 100_000);
/** How long deals still in flight at the end may take to finish before they count as unfinished. */
const DRAIN_MS = 120_000;
/** The window at the end of the warm-up and of the run whose samples' median is the value compared. */
const WINDOW_MS = 30_000;
/** The rule: END <= WARM + max(REL x WARM, ABS). */
const REL = 0.15;
const ABS = 30 * 2 ** 20;
const INFO_TIMEOUT_MS = 10_000;
/**
 * The journal segment a node writes to grows to 32 MiB (runtime/store: STORE_DEFAULTS.compactBytes) before a
 * checkpoint starts the next one: the data dir without the journal's history swings by that much by design.
 */
const SEGMENT_BYTES = 32 * 2 ** 20;
const MiB = 2 ** 20;

const say = (s) => process.stderr.write(`${s}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(p * s.length) - 1)];
};
const median = (xs) => pct(xs, 0.5);
const mib = (b) => (b == null ? null : round(b / MiB, 1));

// the whole run is bounded: setup, the run, the drain, the stop
const watchdog = guard(RUN_MS + DRAIN_MS + 300_000, 'soak');

// ---------------------------------------------------------------------------------------------- measuring

async function sampleNode(n) {
  const t0 = performance.now();
  let info = null;
  let infoError = null;
  try {
    info = await withTimeout(n.api('GET', '/v1/info'), INFO_TIMEOUT_MS, 'GET /v1/info');
  } catch (e) {
    infoError = e.message;
  }
  const infoMs = round(performance.now() - t0);
  const [mem, disk, cpu] = await Promise.all([rssOf(n.child.pid), dirBytes(n.dir), cpuSecondsOf(n.child.pid)]);
  const alive = n.child.exitCode === null && n.child.signalCode === null;
  return {
    alive,
    rss: mem?.rss ?? null,
    hwm: mem?.hwm ?? null,
    dataDir: disk.total,
    journal: disk.journal,
    /** The data dir without the journal's history (what recovery needs, and the modules, outputs and files). */
    live: disk.total - disk.history,
    history: disk.history,
    cpuSeconds: cpu,
    infoMs: info ? infoMs : null,
    infoError,
    restarts: info?.restarts ?? null,
    peers: info?.peers ?? null,
    messagesIn: info?.messages?.in ?? null,
    rejectedTotal: info?.messages?.rejectedTotal ?? null,
    refusedPeers: info?.messages?.refusedPeers?.length ?? null,
    locks: info?.locks?.length ?? null,
  };
}

// ---------------------------------------------------------------------------------------------- the run

const started = Date.now();
const loadBefore = os.loadavg();
const report = {
  suite: 'dms-runtime soak',
  node: process.version,
  cpus: os.availableParallelism(),
  at: new Date(started).toISOString(),
  commit: (() => {
    try {
      const git = (...a) => execFileSync('git', a, { cwd: path.dirname(MAIN_JS), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      return `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--', '.').length ? ' (uncommitted changes in the tree)' : ''}`;
    } catch {
      return process.env.SOAK_COMMIT ?? null; // a tree outside git (an export of a commit) can name it
    }
  })(),
  settings: { minutes: MINUTES, nodes: NODES, dealEverySeconds: DEAL_EVERY_MS / 1000, hostileRoundSeconds: ROUND_MS / 1000, warmupSeconds: WARMUP_MS / 1000, sampleSeconds: SAMPLE_MS / 1000, maxDeals: MAX_DEALS },
  rule: `flat: END <= WARM + max(${REL * 100}% of WARM, ${ABS / MiB} MiB), WARM the median of the samples in the warm-up's last ${WINDOW_MS / 1000} s, END the median of the samples in the run's last ${WINDOW_MS / 1000} s`,
};
let cl;
let hostile;
let exitCode = 1;
/** Each node's log lines at warn and above, by level and message. */
const logs = {};
try {
  say(`soak: ${NODES} nodes, ${MINUTES} min (warm-up ${WARMUP_MS / 1000} s), a deal every ${DEAL_EVERY_MS / 1000} s (at most ${MAX_DEALS}), a hostile round every ${ROUND_MS / 1000} s; load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')}`);
  const t0 = performance.now();
  // the history cap at its least (two journal segments), so that a bounded data dir shows within the run
  cl = await startCluster('soak', NODES - 1, [], ['--retain-history', RETAIN_HISTORY]);
  const nodes = cl.all;
  // wait until every node has every other connected and subscribed to the bid topic (gossip reaches all)
  const meshDeadline = Date.now() + 60_000;
  for (;;) {
    const reach = await Promise.all(nodes.map(async (n) => (await n.api('GET', '/v1/info')).reach));
    if (reach.every((r) => r && r.connected >= NODES - 1 && r.subscribed >= NODES - 1)) break;
    if (Date.now() > meshDeadline) throw new Error(`the nodes did not mesh within 60 s: ${JSON.stringify(reach)}`);
    await sleep(250);
  }
  // what each node logs (warn and up, JSON lines on stderr): counted by level and message
  for (const n of nodes) {
    const l = (logs[n.name] = { warn: 0, error: 0, fatal: 0, messages: {} });
    let buf = '';
    n.child.stderr.on('data', (d) => {
      buf += d;
      const lines = buf.split('\n');
      buf = lines.pop();
      for (const line of lines) {
        let m;
        try {
          m = JSON.parse(line);
        } catch {
          m = { level: 50, msg: line.slice(0, 120) };
        }
        const level = m.level >= 60 ? 'fatal' : m.level >= 50 ? 'error' : m.level >= 40 ? 'warn' : null;
        if (!level) continue;
        l[level] += 1;
        const k = `${level}: ${String(m.msg ?? '').replace(/12D3KooW\w+/g, '<peer>').replace(/[0-9a-f]{32,}/g, '<id>').slice(0, 100)}`;
        if (l.messages[k] !== undefined || Object.keys(l.messages).length < 30) l.messages[k] = (l.messages[k] ?? 0) + 1;
      }
    });
  }
  say(`soak: ${nodes.map((n) => n.name).join(', ')} up and meshed in ${round((performance.now() - t0) / 1000, 1)} s`);
  const { body } = await helloJob(0.1);

  // one deal first, so a deploy that cannot work at all fails here and not 10 minutes later
  {
    const rec = await nodes[0].api('POST', '/v1/deploy', body);
    const end = Date.now() + 30_000;
    for (;;) {
      const r = await nodes[0].api('GET', `/v1/jobs/${rec.id}`);
      if (r.state === 'completed') break;
      if (['failed', 'cancelled'].includes(r.state) || Date.now() > end) throw new Error(`the first deal ended ${r.state}: ${r.message}`);
      await sleep(100);
    }
  }

  hostile = await spawnHostile((c) => children.add(c));
  const targets = nodes.map((n) => ({ peerId: n.peerId, addr: n.ready.listen[0] }));

  const samples = [];
  const deals = [];
  const inFlight = new Set();
  const runStart = Date.now();
  const runEnd = runStart + RUN_MS;
  let stopDeploying = false;

  await hostile.call('start', { targets, mode: 'soak', opts: { roundMs: ROUND_MS } });

  const takeSample = async () => {
    const at = Date.now();
    const per = {};
    for (const n of nodes) per[n.name] = await sampleNode(n);
    const hs = await hostile.call('stats', {}, 10_000).catch(() => null);
    const s = { at, t: round((at - runStart) / 1000), load1: round(os.loadavg()[0], 2), nodes: per, hostileRounds: hs?.rounds ?? null, dealsDeployed: deals.length, dealsInFlight: inFlight.size };
    samples.push(s);
    say(
      `  t=${String(s.t).padStart(4)} s  load ${s.load1.toFixed(2)}  deals ${deals.length} (${inFlight.size} in flight)  hostile rounds ${s.hostileRounds}  ` +
        nodes.map((n) => `${n.name} ${mib(per[n.name].rss)}M/${mib(per[n.name].dataDir)}M${per[n.name].infoMs === null ? ' INFO-FAILED' : per[n.name].infoMs > 1000 ? ` info ${per[n.name].infoMs}ms` : ''}${per[n.name].alive ? '' : ' DEAD'}`).join('  '),
    );
  };

  // the sampler
  const sampler = (async () => {
    while (Date.now() < runEnd) {
      const next = Date.now() + SAMPLE_MS;
      await takeSample();
      await sleep(Math.max(0, Math.min(next, runEnd) - Date.now()));
    }
  })();

  // the deployer: a deal every DEAL_EVERY_MS, not waiting for the previous one
  const deployer = (async () => {
    let next = Date.now();
    while (!stopDeploying && Date.now() < runEnd && deals.length < MAX_DEALS) {
      const d = { i: deals.length, sentAt: Date.now(), phase: Date.now() - runStart < WARMUP_MS ? 'warm-up' : 'measured', id: null, state: 'deploying' };
      deals.push(d);
      try {
        const rec = await nodes[0].api('POST', '/v1/deploy', body);
        d.id = rec.id;
        d.state = rec.state;
        inFlight.add(d);
      } catch (e) {
        d.state = 'deploy-failed';
        d.message = e.message;
      }
      next += DEAL_EVERY_MS;
      await sleep(Math.max(0, next - Date.now()));
    }
  })();

  // the poller: every in-flight deal, every 500 ms, to its end
  let polling = true;
  const poller = (async () => {
    while (polling) {
      await Promise.all(
        [...inFlight].map(async (d) => {
          try {
            const r = await nodes[0].api('GET', `/v1/jobs/${d.id}`);
            d.state = r.state;
            if (['completed', 'failed', 'cancelled'].includes(r.state)) {
              inFlight.delete(d);
              const st = stepsOf(r, d.sentAt);
              d.toRunningMs = st.running === undefined ? null : st.running - d.sentAt;
              d.toEndMs = r.endedAt ? r.endedAt - d.sentAt : null;
              d.rounds = r.rounds;
              d.provider = nodes.find((n) => n.peerId === r.provider)?.name ?? r.provider;
              d.exitCode = r.exitCode;
              if (r.state !== 'completed') d.message = r.message;
            }
          } catch (e) {
            d.pollError = e.message;
          }
        }),
      );
      await sleep(500);
    }
  })();

  await Promise.all([sampler, deployer]);
  stopDeploying = true;
  await takeSample(); // the run's last sample
  const hostileStats = await hostile.call('stop', {}, 15_000).catch((e) => ({ error: e.message }));
  say(`soak: the run is over; waiting (at most ${DRAIN_MS / 1000} s) for ${inFlight.size} deals in flight`);
  const drainEnd = Date.now() + DRAIN_MS;
  while (inFlight.size > 0 && Date.now() < drainEnd) await sleep(250);
  polling = false;
  await poller;

  // refusals by reason and bid declines by code, from `info --json` of each node
  const infos = {};
  for (const n of nodes) {
    const child = spawnTracked([MAIN_JS, 'info', '--json', '--data-dir', n.dir]);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.resume();
    const code = await withTimeout(new Promise((r) => child.once('exit', r)), 20_000, `info --json on ${n.name}`).catch(() => null);
    try {
      infos[n.name] = JSON.parse(out);
    } catch {
      infos[n.name] = { error: `info --json exited ${code}: ${out.slice(0, 200)}` };
    }
  }
  const stops = await stopNodes(nodes);
  const loadAfter = os.loadavg();

  // ------------------------------------------------------------------------------------------ the verdict

  const windowOf = (from, to) => samples.filter((s) => s.at >= from && s.at <= to);
  const warmWindow = windowOf(runStart + WARMUP_MS - WINDOW_MS, runStart + WARMUP_MS);
  const endWindow = windowOf(runEnd - WINDOW_MS, runEnd + SAMPLE_MS);
  const after = samples.filter((s) => s.at >= runStart + WARMUP_MS);
  /** Least-squares slope of `key` over the samples after the warm-up, in MiB per minute. */
  const slope = (name, key) => {
    const pts = after.map((s) => [s.at / 60_000, s.nodes[name][key]]).filter(([, v]) => v != null);
    if (pts.length < 3) return null;
    const mx = pts.reduce((a, [x]) => a + x, 0) / pts.length;
    const my = pts.reduce((a, [, y]) => a + y, 0) / pts.length;
    const sxy = pts.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
    const sxx = pts.reduce((a, [x]) => a + (x - mx) ** 2, 0);
    return round(sxy / sxx / MiB, 2);
  };
  const flat = (name, key, slack = 0) => {
    const warm = median(warmWindow.map((s) => s.nodes[name][key]).filter((v) => v != null));
    const end = median(endWindow.map((s) => s.nodes[name][key]).filter((v) => v != null));
    const max = Math.max(...after.map((s) => s.nodes[name][key] ?? 0));
    if (warm == null || end == null) return { warmMiB: mib(warm), endMiB: mib(end), ok: false, why: 'no samples' };
    const allowed = warm + Math.max(REL * warm, ABS) + slack;
    return { warmMiB: mib(warm), endMiB: mib(end), maxAfterWarmupMiB: mib(max), growthMiB: mib(end - warm), growthPct: round(((end - warm) / warm) * 100, 1), allowedMiB: mib(allowed), slopeMiBPerMin: slope(name, key), ok: end <= allowed };
  };
  const perNode = {};
  for (const n of nodes) {
    const last = samples.at(-1).nodes[n.name];
    perNode[n.name] = {
      role: n === nodes[0] ? 'requester' : 'provider',
      rss: flat(n.name, 'rss'),
      dataDir: flat(n.name, 'dataDir'),
      journal: flat(n.name, 'journal'),
      live: flat(n.name, 'live', SEGMENT_BYTES),
      historyMaxMiB: mib(Math.max(...samples.map((s) => s.nodes[n.name].history ?? 0))),
      historyCapped: samples.every((s) => (s.nodes[n.name].history ?? 0) <= RETAIN_HISTORY_BYTES),
      peakRssMiB: mib(last.hwm),
      cpuSeconds: last.cpuSeconds,
      infoMs: { p50: median(samples.map((s) => s.nodes[n.name].infoMs).filter((v) => v != null)), max: Math.max(...samples.map((s) => s.nodes[n.name].infoMs ?? 0)) },
      infoFailures: samples.filter((s) => s.nodes[n.name].infoMs === null).map((s) => `t=${s.t}: ${s.nodes[n.name].infoError}`),
      aliveAtEnd: last.alive,
      restarts: infos[n.name]?.restarts ?? last.restarts,
      rejected: infos[n.name]?.messages?.rejected ?? null,
      rejectedTotal: infos[n.name]?.messages?.rejectedTotal ?? null,
      bidDeclines: infos[n.name]?.bidDeclines ?? null,
      messagesIn: infos[n.name]?.messages?.in ?? null,
      refusedPeersAtEnd: infos[n.name]?.messages?.refusedPeers?.length ?? null,
      stop: stops.find((s) => s.name === n.name),
      log: logs[n.name],
    };
  }
  const byState = {};
  for (const d of deals) byState[d.state] = (byState[d.state] ?? 0) + 1;
  const completed = deals.filter((d) => d.state === 'completed');
  const notCompleted = deals.filter((d) => d.state !== 'completed');
  const lat = (list, key) => {
    const xs = list.map((d) => d[key]).filter((v) => v != null);
    return { p50: pct(xs, 0.5), p99: pct(xs, 0.99), max: xs.length ? Math.max(...xs) : null, n: xs.length };
  };
  const rounds = {};
  for (const d of completed) rounds[d.rounds] = (rounds[d.rounds] ?? 0) + 1;
  const byProvider = {};
  for (const d of completed) byProvider[d.provider] = (byProvider[d.provider] ?? 0) + 1;
  const checks = {
    rssFlat: Object.values(perNode).every((p) => p.rss.ok),
    dataDirBounded: Object.values(perNode).every((p) => p.live.ok && p.historyCapped),
    everyDealCompleted: deals.length > 0 && notCompleted.length === 0,
    nodesUpAndAnswering: Object.values(perNode).every((p) => p.aliveAtEnd && p.infoFailures.length === 0),
  };
  Object.assign(report, {
    seconds: round((Date.now() - started) / 1000),
    loadAverage: { before: loadBefore.map((x) => round(x, 2)), after: loadAfter.map((x) => round(x, 2)), duringRun: { min: Math.min(...samples.map((s) => s.load1)), median: median(samples.map((s) => s.load1)), max: Math.max(...samples.map((s) => s.load1)) } },
    deals: {
      deployed: deals.length,
      completed: completed.length,
      failed: deals.filter((d) => ['failed', 'cancelled', 'deploy-failed'].includes(d.state)).length,
      unfinished: deals.filter((d) => !['completed', 'failed', 'cancelled', 'deploy-failed'].includes(d.state)).length,
      byState,
      rounds,
      byProvider,
      deployToRunningMs: { warmUp: lat(completed.filter((d) => d.phase === 'warm-up'), 'toRunningMs'), afterWarmUp: lat(completed.filter((d) => d.phase === 'measured'), 'toRunningMs') },
      deployToCompletedMs: lat(completed, 'toEndMs'),
      notCompleted: notCompleted.slice(0, 20).map((d) => ({ i: d.i, id: d.id, state: d.state, message: d.message, pollError: d.pollError })),
    },
    hostile: hostileStats,
    nodes: perNode,
    checks,
    ok: Object.values(checks).every(Boolean),
    dataDirFlat: Object.values(perNode).every((p) => p.dataDir.ok),
    samples: samples.map((s) => ({ t: s.t, load1: s.load1, deals: s.dealsDeployed, hostileRounds: s.hostileRounds, nodes: Object.fromEntries(Object.entries(s.nodes).map(([k, v]) => [k, { rssMiB: mib(v.rss), dataDirMiB: mib(v.dataDir), journalMiB: mib(v.journal), liveMiB: mib(v.live), historyMiB: mib(v.history), infoMs: v.infoMs, cpuSeconds: v.cpuSeconds, refusedPeers: v.refusedPeers, locks: v.locks }])) })),
  });
  exitCode = report.ok ? 0 : 1;
} catch (e) {
  report.error = e.stack ?? String(e);
  report.ok = false;
  for (const n of cl?.all ?? []) report.error += `\n${n.name} stderr tail: ${n.stderr().slice(-1500)}`;
  exitCode = 1;
} finally {
  if (hostile) await hostile.call('stop', {}, 5_000).catch(() => {});
  if (cl) await stopNodes(cl.all).catch(() => {});
  await cleanup();
  clearTimeout(watchdog);
}

// ---------------------------------------------------------------------------------------------- the summary

function summary(r) {
  if (r.error) return `soak: ERROR\n${r.error}\n`;
  const yes = (b) => (b ? 'yes' : 'NO');
  const lines = [];
  lines.push(`soak: ${r.settings.minutes} min, ${r.settings.nodes} nodes (A requester; ${Object.keys(r.nodes).slice(1).join(', ')} providers), Node ${r.node}, ${r.cpus} cores, ${r.at}, commit ${r.commit}`);
  lines.push(`load average (1/5/15 min): before ${r.loadAverage.before.join(' ')}, after ${r.loadAverage.after.join(' ')}; 1-min during the run min ${r.loadAverage.duringRun.min}, median ${r.loadAverage.duringRun.median}, max ${r.loadAverage.duringRun.max}`);
  lines.push(`warm-up: the first ${r.settings.warmupSeconds} s; ${r.rule}`);
  lines.push('');
  lines.push('node  RSS warm -> end (max after warm-up)      flat   data dir warm -> end (journal/ end)     flat   info p50/max   restarts');
  for (const [name, p] of Object.entries(r.nodes)) {
    lines.push(
      `${name.padEnd(4)}  ${`${p.rss.warmMiB} -> ${p.rss.endMiB} MiB (${p.rss.maxAfterWarmupMiB}; ${p.rss.growthMiB >= 0 ? '+' : ''}${p.rss.growthMiB})`.padEnd(40)} ${yes(p.rss.ok).padEnd(6)} ${`${p.dataDir.warmMiB} -> ${p.dataDir.endMiB} MiB (${p.journal.endMiB}; ${p.dataDir.growthMiB >= 0 ? '+' : ''}${p.dataDir.growthMiB})`.padEnd(38)} ${yes(p.dataDir.ok).padEnd(6)} ${`${p.infoMs.p50}/${p.infoMs.max} ms`.padEnd(14)} ${p.restarts}`,
    );
  }
  lines.push(`  growth after warm-up, MiB/min (least squares): ${Object.entries(r.nodes).map(([k, p]) => `${k} RSS ${p.rss.slopeMiBPerMin}, data dir ${p.dataDir.slopeMiBPerMin} (journal ${p.journal.slopeMiBPerMin})`).join('; ')}`);
  lines.push(`  data dir without the journal's history (what recovery needs; the rule + 32 MiB for the live segment): ${Object.entries(r.nodes).map(([k, p]) => `${k} ${p.live.warmMiB} -> ${p.live.endMiB} MiB (${yes(p.live.ok) === 'yes' ? 'flat' : 'NOT flat'})`).join(', ')}`);
  lines.push(`  the journal's history (for replay; capped by --retain-history ${RETAIN_HISTORY}), most at any sample: ${Object.entries(r.nodes).map(([k, p]) => `${k} ${p.historyMaxMiB} MiB${p.historyCapped ? '' : ' OVER THE CAP'}`).join(', ')}`);
  lines.push('');
  const d = r.deals;
  lines.push(`normal deals: ${d.deployed} deployed, ${d.completed} completed, ${d.failed} failed, ${d.unfinished} unfinished; rounds ${Object.entries(d.rounds).map(([k, v]) => `${v} in ${k}`).join(', ')}; providers ${Object.entries(d.byProvider).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  lines.push(`  deploy -> running ms: warm-up p50 ${d.deployToRunningMs.warmUp.p50}, p99 ${d.deployToRunningMs.warmUp.p99}; after warm-up p50 ${d.deployToRunningMs.afterWarmUp.p50}, p99 ${d.deployToRunningMs.afterWarmUp.p99}, max ${d.deployToRunningMs.afterWarmUp.max}; deploy -> completed p50 ${d.deployToCompletedMs.p50}, p99 ${d.deployToCompletedMs.p99}`);
  for (const x of d.notCompleted) lines.push(`  NOT COMPLETED #${x.i} ${x.id ?? ''} ${x.state}: ${x.message ?? ''}${x.pollError ? ` (poll: ${x.pollError})` : ''}`);
  lines.push('');
  const h = r.hostile ?? {};
  lines.push(`hostile peer: ${h.rounds} rounds, ${h.identities} identities, cut off ${h.cutOff} times, ${h.dialFailures} failed dials; sent ${Object.entries(h.sent ?? {}).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  lines.push(`  the nodes answered it with ${Object.entries(h.replies ?? {}).map(([k, v]) => `${k} ${v}`).join(', ')}${h.errors?.length ? `; its errors: ${h.errors.slice(0, 3).join(' | ')}` : ''}`);
  lines.push('refusals by reason (info --json messages.rejected), bid declines by code (bidDeclines):');
  for (const [name, p] of Object.entries(r.nodes)) {
    lines.push(`  ${name}: ${Object.entries(p.rejected ?? {}).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')}; declines ${Object.entries(p.bidDeclines ?? {}).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}; envelopes in ${p.messagesIn}`);
  }
  lines.push('what the nodes logged at warn and above (by message):');
  for (const [name, p] of Object.entries(r.nodes)) {
    lines.push(`  ${name}: ${p.log.warn} warn, ${p.log.error} error, ${p.log.fatal} fatal${Object.keys(p.log.messages).length ? `: ${Object.entries(p.log.messages).sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => `${v}x ${k}`).join('; ')}` : ''}`);
  }
  const unclean = Object.entries(r.nodes).filter(([, p]) => p.stop && p.stop.code !== 0);
  if (unclean.length) lines.push(`WARNING: SIGTERM did not end every node with exit 0: ${unclean.map(([k, p]) => `${k} ${p.stop.code ?? p.stop.signal}`).join(', ')}`);
  for (const [name, p] of Object.entries(r.nodes)) if (p.infoFailures.length) lines.push(`WARNING: ${name} did not answer info: ${p.infoFailures.slice(0, 3).join('; ')}`);
  lines.push('');
  lines.push(`verdict: RSS flat ${yes(r.checks.rssFlat)}; data dir bounded (flat without the history, history under its cap) ${yes(r.checks.dataDirBounded)}; every normal deal completed ${yes(r.checks.everyDealCompleted)}; nodes up and answering ${yes(r.checks.nodesUpAndAnswering)} => ${r.ok ? 'PASS' : 'FAIL'} (outside the verdict: whole data dir flat ${yes(r.dataDirFlat)})`);
  return `${lines.join('\n')}\n`;
}

if (o['json-file']) await writeFile(o['json-file'], `${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(o.json ? `${JSON.stringify(report)}\n` : summary(report));
process.exit(exitCode);
