// `npm run bench`: each benchmark runs our path and the raw baseline it is built on in the same run, and
// prints both, their ratio and the target. The results go to stdout's last line as JSON, and also to a file
// with `--json FILE`. `--strict` exits 1 when a target is missed (by default a miss is reported, not fatal).
// `--replies` gives lock and unlock events a replyTo, so their replies cross back as they do for API commands.
// Loads the compiled JS (`npm run bench` builds first). Bounded: the whole run is killed after WATCHDOG_MS.
import { open, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { releaseProxy, wrap } from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { createActor } from 'xstate';
import { nodeMachine } from '../../machines/node.machine.js';
import { writeJson } from '../../runtime/files.js';
import { SUPERVISOR_DEFAULTS, Supervisor } from '../../runtime/supervisor/supervisor.js';
import { alternate, cleanup, cleanupFirst, cleanups, exited, guard, kill, loadAverage, median, msRow, nodeE0, note, reportHead, root, round, runLines, spawnTracked, startNode, step, table, tempDir, withTimeout } from './common.mjs';
import { INPUT, measureBatch, mixedEvents, onboardEvent } from './fixtures.mjs';

// The supervisor writes every event to an event log before delivering it (when the build has one): the in-memory
// log isolates delivery; the node's durable log (runtime/store/dexie-event-log.ts) is measured separately in `delivery-durable`.
const eventLogModule = await import('../../actors/event-log.js').catch(() => null);
const storeModule = await import('../../runtime/store/dexie-event-log.js').catch(() => null);
const storeConstants = await import('../../runtime/store/constants.js').catch(() => null);

const RAW_WORKER = new URL('./raw-comlink.worker.mjs', import.meta.url);
const { netBenches, killNetPeers } = await import('./net.mjs');
const { dealBenches } = await import('./deals.mjs');
const { floodBenches } = await import('./flood.mjs');
const { ensembleBenches } = await import('./ensembles.mjs');
const { tunnelBenches } = await import('./tunnel.mjs');
const { arrayBenches } = await import('./arrays.mjs');
const { biddingBenches } = await import('./bidding.mjs');
const { wasmPoolBenches } = await import('./wasm-pool.mjs');
const { metricsBenches } = await import('./metrics.mjs');
const { dashboardBenches } = await import('./dashboard.mjs');
const { trustBenches } = await import('./trust.mjs');
const { grantsBenches } = await import('./grants.mjs');
const { replayBenches } = await import('./replay.mjs');
const { simBenches } = await import('./sim.mjs');
const WATCHDOG_MS = 530_000 + 360_000 + 300_000 + 120_000 + 60_000 + 60_000 + 60_000 + 120_000 + 180_000 + 300_000; // + flood.mjs (about 4 minutes; its sybil side is bounded at 60 s a block) + tunnel.mjs and ensembles.mjs (about 2.5 minutes) + wasm-pool.mjs (about 20 s) + metrics.mjs (about 15 s) + dashboard.mjs (about 35 s) + trust.mjs and grants.mjs (about 90 s) + replay.mjs (about 2 minutes, building a 1M-event log) + sim.mjs (about 3 minutes: a 1,000-node storm and 10,000 idle nodes)

const args = process.argv.slice(2);
const jsonFile = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
if (args.includes('--json') && !jsonFile) usage('--json needs a file name');
const strict = args.includes('--strict');
/** Lock and unlock events carry a replyTo, as commands asked through the API do (their replies cross back). */
const withReplies = args.includes('--replies');
const EV = { replyTo: withReplies };
function usage(msg) {
  process.stderr.write(`bench: ${msg}\nusage: node test/bench/run.mjs [--json FILE] [--strict] [--replies]\n`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------- cleanup

cleanupFirst(killNetPeers);
const watchdog = guard(WATCHDOG_MS, 'bench');

// ---------------------------------------------------------------------------------------------- helpers

/** On a busy machine a benchmark stops after two measured runs once it has used its time budget. */
function overBudget(began, budgetMs, runsDone) {
  const over = runsDone >= 2 && performance.now() - began > budgetMs;
  if (over) note(`time budget of ${budgetMs / 1000} s used: stopping after ${runsDone} runs`);
  return over;
}

/**
 * Runs one side of a benchmark: `fn` resolves to { events, ms }. Also returns events per CPU-second of this
 * process (all threads: main, workers, GC, libuv), which other processes on the machine disturb less than the
 * wall clock. Only one side runs at a time, so the process's CPU time is that side's.
 */
async function sample(fn, arg) {
  const c0 = process.cpuUsage();
  const r = await fn(arg);
  const c = process.cpuUsage(c0);
  return { rate: r.events / (r.ms / 1000), cpuRate: r.events / ((c.user + c.system) / 1e6) };
}

/** One measured run of each side into its list, in alternating order (see alternate). */
async function samplePair(k, arg, ours, raw, oursRuns, rawRuns) {
  const [o, b] = await alternate(k, () => sample(ours, arg), () => sample(raw, arg));
  oursRuns.push(o);
  rawRuns.push(b);
}

/** Medians of the runs of both sides, and their ratios. */
function summarize(oursRuns, rawRuns) {
  const o = median(oursRuns.map((x) => x.rate));
  const b = median(rawRuns.map((x) => x.rate));
  const oc = median(oursRuns.map((x) => x.cpuRate));
  const bc = median(rawRuns.map((x) => x.cpuRate));
  return {
    ours: round(o),
    raw: round(b),
    ratio: round(o / b, 3),
    perCpuSecond: { ours: round(oc), raw: round(bc), ratio: round(oc / bc, 3) },
    runs: { ours: oursRuns.map((x) => round(x.rate)), raw: rawRuns.map((x) => round(x.rate)) },
  };
}

function newSupervisor(eventLog = eventLogModule ? new eventLogModule.MemoryEventLog() : undefined) {
  const failures = [];
  const counts = { intents: 0 };
  const sup = new Supervisor(SUPERVISOR_DEFAULTS, {
    ...(eventLog ? { eventLog } : {}),
    log: { info() {}, warn: (o, m) => failures.push(m ?? JSON.stringify(o)), error: (o, m) => failures.push(m ?? JSON.stringify(o)) },
    onIntents: (_id, intents) => {
      counts.intents += intents.length;
    },
    onEscalate: (e) => failures.push(e.message),
  });
  const stop = () => sup.stop();
  cleanups.add(stop);
  return { sup, failures, counts, stop };
}

// ---------------------------------------------------------------------------------------------- 1. event rate

/**
 * Node machine event rate inside its worker actor (ActorRef.measure: a fresh hosted actor in the worker, timed
 * there) vs a raw XState actor of the same machine in this thread, for the same events.
 * - `recurring`: one batch of 1000 events (onboard, then the mix) delivered ROUNDS times, as `measure` repeats
 *   its list; the lock ids recur from round to round.
 * - `unique`: one list of ROUNDS * 1000 events whose lock ids are all new, delivered once (each side gets a
 *   freshly deserialized copy, as events arrive in the worker). Real lock ids are new each time; the ledger
 *   keeps locks in records keyed by id, and every new key costs V8 new hidden classes and garbage, so this is
 *   the slower and more realistic case.
 */
async function benchEventRate(mode) {
  const BATCH = 1000;
  const ROUNDS = mode === 'recurring' ? 20 : 10; // 20k (10k) events per run
  const RUNS = mode === 'recurring' ? 7 : 5;
  const fixed = measureBatch(BATCH, 'm', EV);
  const list = (k) => {
    if (mode === 'recurring') return { events: fixed, rawEvents: fixed, count: ROUNDS };
    const events = measureBatch(BATCH * ROUNDS, `u${k}`, EV);
    return { events, rawEvents: structuredClone(events), count: 1 };
  };

  const { sup, failures, stop } = newSupervisor();
  const ref = await withTimeout(sup.spawn({ id: `bench-measure-${mode}`, kind: 'node', input: INPUT }), 10_000, 'spawning the Node worker');

  const raw = async ({ rawEvents: events, count }) => {
    const actor = createActor(nodeMachine, { input: INPUT });
    actor.start();
    const t0 = performance.now();
    for (let r = 0; r < count; r += 1) for (let i = 0; i < events.length; i += 1) actor.send(events[i]);
    const ms = performance.now() - t0;
    const snap = actor.getSnapshot();
    actor.stop();
    if (snap.status !== 'active' || snap.value !== 'registered' || Object.keys(snap.context.ledger.locks).length !== 0) {
      throw new Error(`raw actor ended ${snap.status}/${String(snap.value)}: the benchmark events are wrong`);
    }
    return { events: count * events.length, ms };
  };
  const ours = async ({ events, count }) => {
    const r = await withTimeout(ref.measure(events, count), 30_000, 'ActorRef.measure');
    if (r.events !== events.length * count) throw new Error(`measure delivered ${r.events} of ${events.length * count} events`);
    return r;
  };

  const began = performance.now();
  for (let w = 0; w < 2; w += 1) {
    const l = list(`w${w}`);
    await raw(l);
    await ours(l);
  }
  const oursRuns = [];
  const rawRuns = [];
  for (let k = 0; k < RUNS && !overBudget(began, 6_000, k); k += 1) {
    await samplePair(k, list(k), ours, raw, oursRuns, rawRuns);
  }
  await stop();
  cleanups.delete(stop);
  if (failures.length) throw new Error(`supervisor reported: ${failures.join('; ')}`);
  const sum = summarize(oursRuns, rawRuns);
  return {
    id: `event-rate-${mode}`,
    name:
      mode === 'recurring'
        ? `Node machine events/s, a batch of ${BATCH} (onboard + lock/unlock/sample) x${ROUNDS}, ids recur per round: ActorRef.measure in the worker vs raw createActor().send in one thread`
        : `Node machine events/s, ${(BATCH * ROUNDS) / 1000}k events with all-new lock ids, delivered once: ActorRef.measure in the worker vs raw createActor().send in one thread`,
    unit: 'events/s',
    ours: sum.ours,
    raw: sum.raw,
    ratio: sum.ratio,
    targets: [{ kind: 'ratio', min: 0.8 }],
    detail: { eventsPerRun: ROUNDS * BATCH, runs: oursRuns.length, oursRuns: sum.runs.ours, rawRuns: sum.runs.raw, perCpuSecond: sum.perCpuSecond },
  };
}

// ---------------------------------------------------------------------------------------------- 2. delivery

/**
 * Main thread -> Node worker through the supervisor (ActorRef.send N events, then drain()) vs raw pipelined
 * comlink calls of 1000 events each to a minimal worker feeding a raw XState actor of the same machine.
 * - `memory`: the supervisor logs to the in-memory event log, so this measures delivery.
 * - `durable`: the supervisor logs to the node's durable event log (runtime/store/dexie-event-log.ts: Dexie + journal with
 *   fdatasync) before delivering; the raw side appends each batch as a JSON line to a file and fdatasyncs it
 *   before its comlink call.
 */
async function benchDelivery(mode) {
  const durable = mode === 'durable';
  const N_MAX = durable ? 40_000 : 100_000;
  const RUNS = 3;
  const WARM = durable ? 10_000 : 20_000; // the warm-up is also timed, to size the runs
  const BATCH = 1000;

  let store;
  let rawFh;
  let closeStore;
  let closeFh;
  if (durable) {
    if (!storeModule?.DexieEventLog || !eventLogModule) throw new Error('this build has no durable event log (runtime/store/dexie-event-log.js)');
    const dir = await tempDir('deliver-log');
    ({ store } = await storeModule.DexieEventLog.open({ dataDir: dir, ...(storeConstants?.STORE_DEFAULTS ?? storeModule.STORE_DEFAULTS ?? { compactBytes: 32 * 1024 * 1024 }) }));
    closeStore = () => store.close();
    cleanups.add(closeStore);
    rawFh = await open(path.join(dir, 'raw-journal.log'), 'a');
    closeFh = () => rawFh.close();
    cleanups.add(closeFh);
  }
  const { sup, failures, counts, stop } = newSupervisor(store);
  const ref = await withTimeout(sup.spawn({ id: `bench-deliver-${mode}`, kind: 'node', input: INPUT }), 10_000, 'spawning the Node worker');
  ref.send(onboardEvent());
  const v = await withTimeout(ref.view(), 10_000, 'onboarding the Node actor');
  if (v.value !== 'registered') throw new Error(`the Node actor is ${String(v.value)} after onboarding, not registered`);

  const worker = new Worker(RAW_WORKER);
  const remote = wrap(nodeEndpoint(worker));
  let closed = false;
  const closeRaw = async () => {
    if (closed) return;
    closed = true;
    remote[releaseProxy]();
    await worker.terminate();
  };
  cleanups.add(closeRaw);
  const rv = await withTimeout(remote.init(INPUT, [onboardEvent()]), 10_000, 'starting the raw comlink worker');
  if (rv.value !== 'registered') throw new Error(`the raw actor is ${String(rv.value)} after onboarding`);

  const ours = async (events) => {
    const t0 = performance.now();
    for (let i = 0; i < events.length; i += 1) ref.send(events[i]);
    await withTimeout(ref.drain(), 60_000, 'ActorRef.drain');
    return { events: events.length, ms: performance.now() - t0 };
  };
  const raw = async (events) => {
    const t0 = performance.now();
    const calls = [];
    let chain = Promise.resolve();
    for (let i = 0; i < events.length; i += BATCH) {
      const batch = events.slice(i, i + BATCH);
      if (rawFh) {
        chain = chain.then(async () => {
          await rawFh.write(`${JSON.stringify(batch)}\n`);
          await rawFh.datasync();
        });
        calls.push(chain.then(() => remote.deliver(batch)));
      } else calls.push(remote.deliver(batch));
    }
    const done = (await withTimeout(Promise.all(calls), 60_000, 'raw comlink delivery')).reduce((a, b) => a + b, 0);
    if (done !== events.length) throw new Error(`raw worker processed ${done} of ${events.length} events`);
    return { events: events.length, ms: performance.now() - t0 };
  };

  const began = performance.now();
  const warm = mixedEvents(WARM, 'w', EV);
  const warmRate = Math.min(...[await sample(ours, warm), await sample(raw, warm)].map((x) => x.rate));
  // N_MAX events per run, fewer (down to N_MIN) when the machine is busy, so a run takes about RUN_S seconds a side
  const RUN_S = durable ? 3 : 4;
  const N_MIN = durable ? 20_000 : 50_000;
  const N = Math.max(N_MIN, Math.min(N_MAX, Math.floor((warmRate * RUN_S) / 10_000) * 10_000));
  if (N < N_MAX) note(`${N / 1000}k events per run, not ${N_MAX / 1000}k: the warm-up ran at ${round(warmRate / 1000, 1)}k events/s`);
  const oursRuns = [];
  const rawRuns = [];
  for (let k = 0; k < RUNS && !overBudget(began, durable ? 8_000 : 14_000, k); k += 1) {
    await samplePair(k, mixedEvents(N, `d${k}`, EV), ours, raw, oursRuns, rawRuns);
  }
  const end = await ref.view();
  const locks = Object.keys(end.context.locks).length;
  if (end.value !== 'registered' || locks !== 0 || ref.restarts !== 0) {
    throw new Error(`the Node actor ended ${String(end.value)} with ${locks} locks and ${ref.restarts} restarts`);
  }
  await stop();
  cleanups.delete(stop);
  await closeRaw();
  cleanups.delete(closeRaw);
  for (const close of [closeFh, closeStore]) {
    if (!close) continue;
    await close();
    cleanups.delete(close);
  }
  if (failures.length) throw new Error(`supervisor reported: ${failures.join('; ')}`);
  const sum = summarize(oursRuns, rawRuns);
  return {
    id: durable ? 'delivery-durable' : 'delivery',
    name: durable
      ? `main thread -> Node worker with the durable event log (Dexie + journal, fdatasync): ActorRef.send x${N / 1000}k + drain() vs raw append+fdatasync of each ${BATCH}-event batch, then its comlink call`
      : `main thread -> Node worker: ActorRef.send x${N / 1000}k + drain() (in-memory event log) vs raw comlink deliver(batch of ${BATCH}), pipelined`,
    unit: 'events/s',
    ours: sum.ours,
    raw: sum.raw,
    ratio: sum.ratio,
    targets: durable ? [] : [
      { kind: 'ratio', min: 0.8 },
      { kind: 'ours', min: 50_000 },
    ],
    detail: { events: N, batch: BATCH, runs: oursRuns.length, oursRuns: sum.runs.ours, rawRuns: sum.runs.raw, perCpuSecond: sum.perCpuSecond, nonReplyIntents: counts.intents },
  };
}

// ---------------------------------------------------------------------------------------------- 3. startup

/** SIGTERM, then SIGKILL after 10 s; resolves with the ms it took and how it ended. */
async function stopDms(child) {
  const t0 = performance.now();
  child.removeAllListeners('exit');
  const r = await kill(child, 'SIGTERM');
  return { ms: performance.now() - t0, ...r };
}

async function benchStartup() {
  const STARTS = 5;
  const dir = await tempDir('start');
  // first start benchmarks the machine and stores the registration
  const first = await startNode(dir, 90_000);
  if (!first.ready.benchmarked) throw new Error('the first start did not benchmark (data dir not fresh?)');
  const unclean = [];
  const firstStop = await stopDms(first.child);
  if (firstStop.code !== 0) unclean.push(`first start: exit ${firstStop.code ?? firstStop.signal}`);
  note(`startup: first start (benchmarking) ${round(first.ms)} ms; stop ${round(firstStop.ms)} ms`);

  await nodeE0(); // warm the page cache for the baseline too
  const ours = [];
  const inside = [];
  const stops = [];
  const base = [];
  const began = performance.now();
  for (let k = 0; k < STARTS && !overBudget(began, 8_000, k); k += 1) {
    const s = await startNode(dir, 30_000);
    if (s.ready.benchmarked) throw new Error('a cached start benchmarked again');
    if (s.ready.state !== 'registered') throw new Error(`a cached start is ${s.ready.state}, not registered`);
    ours.push(s.ms);
    inside.push(s.ready.startMs);
    const st = await stopDms(s.child);
    if (st.code !== 0) unclean.push(`start ${k + 1}: exit ${st.code ?? st.signal}`);
    stops.push(st.ms);
    base.push(await nodeE0());
  }
  const o = median(ours);
  const b = median(base);
  return msRow(
    'start-to-ready',
    'start to ready, benchmark cached: spawn `node runtime/main.js --json` to its ready line vs `node -e 0` spawn to exit',
    o,
    b,
    [{ kind: 'ours', max: 1000 }],
    {
      starts: ours.length,
      oursMs: { median: round(o), min: round(Math.min(...ours)), max: round(Math.max(...ours)), runs: ours.map((x) => round(x)) },
      readyStartMs: { median: median(inside), runs: inside },
      outsideStartNodeMs: { median: round(median(ours.map((x, i) => x - inside[i]))) },
      stopMs: { median: round(median(stops)), runs: stops.map((x) => round(x)) },
      rawMs: { median: round(b), min: round(Math.min(...base)), max: round(Math.max(...base)), runs: base.map((x) => round(x)) },
      firstStartWithBenchmarkMs: round(first.ms),
      uncleanStops: unclean,
    },
  );
}

// ---------------------------------------------------------------------------------------------- 4. durable write

/** runtime/files.ts writeJson (temp, fsync, rename, fsync dir) vs a raw append + fdatasync of the same JSON. */
async function benchDurableWrite() {
  const N = 50;
  const dir = await tempDir('write');
  const value = { offboarded: false, registration: { capability: { cpu: 2, memory: 4 * 1024 ** 3, disk: 50 * 1024 ** 3, gpus: [], executors: ['wasm'] } } };
  const ours = async () => {
    const file = path.join(dir, 'registration.json');
    const t0 = performance.now();
    for (let i = 0; i < N; i += 1) await writeJson(file, { ...value, i });
    return N / ((performance.now() - t0) / 1000);
  };
  const raw = async () => {
    const fh = await open(path.join(dir, 'journal.log'), 'a');
    try {
      const t0 = performance.now();
      for (let i = 0; i < N; i += 1) {
        await fh.appendFile(`${JSON.stringify({ ...value, i }, null, 2)}\n`);
        await fh.datasync();
      }
      return N / ((performance.now() - t0) / 1000);
    } finally {
      await fh.close();
    }
  };
  await ours();
  await raw();
  const o = [];
  const b = [];
  for (let k = 0; k < 3; k += 1) {
    o.push(await ours());
    b.push(await raw());
  }
  return {
    id: 'durable-write',
    name: `durable small JSON write: writeJson (tmp+fsync+rename+dir fsync) vs raw append+fdatasync, ${os.tmpdir()}`,
    unit: 'writes/s',
    ours: round(median(o)),
    raw: round(median(b)),
    ratio: round(median(o) / median(b), 3),
    targets: [],
    detail: { writes: N, runs: 3, oursRuns: o.map((x) => round(x)), rawRuns: b.map((x) => round(x)) },
  };
}

// ---------------------------------------------------------------------------------------------- report

/** The lines printed under a row: start-to-ready's figures, or the runs of both sides; then its notes (store.mjs's rows). */
function rowLines(r) {
  const d = r.detail;
  if (r.error || !d) return r.notes ?? [];
  if (!d.oursRuns) return r.notes ?? []; // deals.mjs's rows explain themselves in their notes
  if (r.id !== 'start-to-ready') return [...runLines(r), ...(r.notes ?? [])];
  return [
    `ours median ${d.oursMs.median} ms (min ${d.oursMs.min}, max ${d.oursMs.max}) over ${d.starts} starts; of which inside startNode (ready.startMs) median ${d.readyStartMs.median} ms, before it (process start, module loading) median ${d.outsideStartNodeMs.median} ms; SIGTERM to exit median ${d.stopMs.median} ms`,
    `raw \`node -e 0\` median ${d.rawMs.median} ms (min ${d.rawMs.min}, max ${d.rawMs.max}); first start with benchmarking ${d.firstStartWithBenchmarkMs} ms`,
    ...(d.uncleanStops.length ? [`WARNING: SIGTERM did not end the node with exit code 0: ${d.uncleanStops.join('; ')}`] : []),
    ...(r.notes ?? []),
  ];
}

// ---------------------------------------------------------------------------------------------- 5. durable event log

/** test/bench/store.mjs in its own process (it builds a 1M-event data dir in a child and starts nodes on it); its rows have our shape. */
async function benchStore() {
  const file = path.join(await tempDir('store'), 'store.json');
  const child = spawnTracked([path.join(root, 'test', 'bench', 'store.mjs'), '--json', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  const r = await withTimeout(exited(child), 200_000, 'test/bench/store.mjs');
  const doc = JSON.parse(await readFile(file, 'utf8').catch(() => 'null'));
  if (!doc) throw new Error(`test/bench/store.mjs exited ${r.code ?? r.signal} without results`);
  return doc.results;
}

/** [id, fn]: fn resolves to one result (or an array of them) of the shape the table and JSON use. */
const benches = [
  ['event-rate-recurring', () => benchEventRate('recurring')],
  ['event-rate-unique', () => benchEventRate('unique')],
  ...biddingBenches,
  ['delivery', () => benchDelivery('memory')],
  ['delivery-durable', () => benchDelivery('durable')],
  ['start-to-ready', benchStartup],
  ['durable-write', benchDurableWrite],
  ['store', benchStore],
  ...netBenches,
  ...dealBenches,
  ...floodBenches,
  ...tunnelBenches,
  ...ensembleBenches,
  ...arrayBenches,
  ...wasmPoolBenches,
  ...metricsBenches,
  ...dashboardBenches,
  ...trustBenches,
  ...grantsBenches,
  ...replayBenches,
  ...simBenches,
];

const started = performance.now();
const loadBefore = os.loadavg()[0];
const results = [];
try {
  for (const [id, fn] of benches) await step(results, 'bench', id, fn, cleanup);
} finally {
  await cleanup();
}

const report = {
  ...reportHead('dms-runtime bench', started),
  // other processes on the machine slow every figure; the ratios, measured side by side, suffer less
  eventsCarryReplyTo: withReplies,
  loadAverage1m: loadAverage(loadBefore),
  ok: results.every((r) => !r.error && r.pass !== false),
  results,
};
process.stdout.write(
  `\n${table(results, rowLines)}\n\nevents: lock/unlock/sample mix ${withReplies ? 'with replyTo on every lock and unlock (--replies)' : 'without replyTo (fire-and-forget sends; --replies adds them)'}\nper CPU-second: events per second of CPU time of this process (all its threads), less disturbed by other processes than the wall clock\ntotal ${report.totalSeconds} s on ${report.cpus} cores, Node ${report.node}; 1-minute load average ${report.loadAverage1m.before} before, ${report.loadAverage1m.after} after${Math.max(loadBefore, os.loadavg()[0]) > report.cpus ? ' (above the core count: other processes competed for the cores, so wall-clock figures are low and noisy)' : ''}\n`,
);
if (jsonFile) await writeFile(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(report)}\n`);
clearTimeout(watchdog);
const failed = results.some((r) => r.error) || (strict && !report.ok);
process.exit(failed ? 1 : 0);
