// Benchmarks of the durable event log (issue 3): each runs our path and the raw baseline it is built on in the same
// run and prints both, their ratio and the target.
//   durable-append      DexieEventLog.append (batches of 1000 events, 4 in flight, acknowledged after fdatasync) vs
//                       raw fs.writeSync of the same events as JSON lines, no fsync
//   replay-rate         HostedActor.deliver in batches (effects off) vs a raw XState actor of the Node machine
//   supervisor-durable  ActorRef.send + drain through a Supervisor whose event log is a DexieEventLog (measured while
//                       the 1M-event data dir is built, in a child process) vs the same raw append, same process
//   restart-1m          `node runtime/main.js` on the 1M-event data dir after a clean stop, spawn to ready line,
//                       median of 3, vs the same command on a data dir with only its onboarding (benchmark stored)
//   restart-1m-crash    the same, once, right after the builder was SIGKILLed at the end of a burst
//   rss-1m              VmRSS of those node processes at their ready line, 1M dir vs the onboarding-only dir
//   replay-cli          `node runtime/main.js replay --summary` on the 1M dir, end to end (events/s), bounded
// Usage: node test/bench/store.mjs [--json FILE] [--events N] [--only id,id] [--strict] [--real-build] [--replay-budget S]
//   --events N: events in the big data dir (default 1,000,000)
//   --real-build: build it entirely through the supervisor (slow: see the builder's comment)
//   --replay-budget S: stop `replay --summary` after S seconds (default 12) and take its rate from its progress;
//     the whole 1M-event replay takes ~30-60 s here
//   --only: a comma list of row ids (durable-append, replay-rate, supervisor-durable, restart-1m, rss-1m, replay-cli)
// Loads the compiled JS next to the .ts sources (run `npx tsc -p tsconfig.json` first; workers need it anyway).
// Bounded: a watchdog ends the run (and everything it started) after WATCHDOG_MS; temp dirs are removed.
import { closeSync, openSync, writeSync } from 'node:fs';
import { readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { MAIN_JS, alternate, cleanup, cleanups, exited, fmtValue, guard, jsonLine, judge, kill, loadAverage, median, msRow, nodeE0, note, reportHead, round, runLines, spawnTracked, startNode as spawnNode, step, table, tempDir, withTimeout } from './common.mjs';
import { BENCHMARK, OFFER, mixedEvents, onboardEvent } from './fixtures.mjs';

const SELF = fileURLToPath(import.meta.url);
const WATCHDOG_BASE_MS = 160_000; // plus --replay-budget
const CLK_TCK = 100; // USER_HZ of /proc/<pid>/stat on Linux
const BATCH = 1000;

const args = process.argv.slice(2);
const opt = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
function usage(msg) {
  process.stderr.write(`bench/store: ${msg}\nusage: node test/bench/store.mjs [--json FILE] [--events N] [--only id,id] [--strict] [--real-build] [--replay-budget S]\n`);
  process.exit(2);
}

const cpuMs = (c) => (c.user + c.system) / 1000;
/** A full GC before a timed run (set in the main process), so one run's garbage is not charged to the next. */
let collect = () => {};

/** LoggedEvent rows as the supervisor makes them (seq, ts, type, origin, payload). */
function logged(payloads, firstSeq) {
  const ts = Date.now();
  return payloads.map((payload, i) => ({ seq: firstSeq + i, ts: ts + i, type: payload.type, origin: payload.type === 'monitor.sample' ? 'monitor' : 'api', payload }));
}

/** The raw baseline of every append row: each event JSON.stringify'd and written as a line with fs.writeSync, no fsync. */
function rawAppend(file, events) {
  const fd = openSync(file, 'a');
  try {
    collect();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < events.length; i += 1) writeSync(fd, `${JSON.stringify(events[i])}\n`);
    return { events: events.length, ms: performance.now() - t0, cpuMs: cpuMs(process.cpuUsage(c0)) };
  } finally {
    closeSync(fd);
  }
}

// ================================================================================================ builder (child)
// `--build DIR --events N --raw-file F [--real-build]`: a Supervisor with a DexieEventLog in DIR and the real Node
// actor (in its worker), wired as runtime/node/node-service.ts wires it (registration saved, indexes fed with facts and
// saved with each snapshot), onboarded once with a stored benchmark, then N mixed events (ledger.lock /
// ledger.unlock with unique ids, monitor.sample) sent in bulk in chunks, each chunk drained; snapshots and
// compaction happen as in production. Each chunk sent through the supervisor also goes through the raw append.
//
// The Node machine runs ~10-50k events/s on this 2-core machine, so 1M events through it would take most of the
// time budget. Unless --real-build, only the first 2 chunks (10k each) and a final burst of 2 chunks (10-15k) go
// through the supervisor; the chunks in between are written with the store calls the supervisor makes
// (DexieEventLog.append of 1000-event batches, 4 in flight; saveSnapshot with the indexes, once per chunk) without
// delivering them. That is exact because every chunk leaves the actor in the same state (all its locks released):
// the builder checks that the snapshots after chunks 0 and 1 are equal and that the indexes grow by the same
// amount per chunk, and reuses them (else it builds everything through the supervisor). The actor is then
// respawned, recovered from that snapshot, for the final burst, so the last snapshot and the events after it were
// written by the supervisor; `replay` feeds the whole history through the machine. The builder compacts once,
// shortly before the end (see worstTail). Reports JSON lines on stdout,
// then waits: the parent SIGKILLs it, a crash right after the burst's last acknowledged event.

/** Journal bytes per event of these chunks (events ~207, snapshot records and the rest ~3). */
const BYTES_PER_EVENT = 210;
/** Chunks of the store-only middle part (and of the first two); the last two, a burst just before the crash, are bigger. */
const CHUNK = 10_000;
const BURST = 10_000;

class NotPeriodic extends Error {}

/** c + (b - a) on every number in the tree; everything else must be equal in a, b and c. */
function shift(a, b, c) {
  if (typeof a === 'number' && typeof b === 'number' && typeof c === 'number') return c + (b - a);
  if (a && b && c && typeof a === 'object' && typeof b === 'object' && typeof c === 'object' && Array.isArray(a) === Array.isArray(b) && Array.isArray(b) === Array.isArray(c)) {
    const out = Array.isArray(a) ? [] : {};
    for (const k of new Set([...Object.keys(a), ...Object.keys(b), ...Object.keys(c)])) {
      if (!(k in a && k in b && k in c)) throw new NotPeriodic(`key ${k} comes and goes`);
      out[k] = shift(a[k], b[k], c[k]);
    }
    return out;
  }
  if (JSON.stringify(a) === JSON.stringify(b) && JSON.stringify(b) === JSON.stringify(c)) return c;
  throw new NotPeriodic(`${JSON.stringify(a)} / ${JSON.stringify(b)} / ${JSON.stringify(c)}`);
}

async function build(dir, total, rawFile, real) {
  const { DexieEventLog } = await import('../../runtime/store/dexie-event-log.js');
  const { STORE_DEFAULTS } = await import('../../runtime/store/constants.js');
  const { SUPERVISOR_DEFAULTS, Supervisor } = await import('../../runtime/supervisor/supervisor.js');
  const { loadOrCreateIdentity } = await import('../../runtime/node/identity.js');
  const { REGISTRATION_KEY } = await import('../../runtime/node/node-effects.js');
  const proj = await import('../../runtime/store/projections.js').catch(() => null);
  const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
  const t0 = performance.now();
  const { store } = await DexieEventLog.open({ dataDir: dir, ...STORE_DEFAULTS });
  await loadOrCreateIdentity(dir);
  const problems = [];
  let metaWrites = Promise.resolve();
  let indexes = proj?.createIndexStore();
  const indexNow = () => structuredClone(indexes?.getSnapshot().context ?? null);
  const supervisor = () =>
    new Supervisor(SUPERVISOR_DEFAULTS, {
      log: { info() {}, warn: (o, m) => problems.push(m ?? JSON.stringify(o)), error: (o, m) => problems.push(m ?? JSON.stringify(o)) },
      eventLog: store,
      // as the node's effects do for the one intent a restart depends on; the rest (logs, timers) are not carried out
      onIntents: (_id, intents) => {
        for (const i of intents) if (i.type === 'registration.save') metaWrites = metaWrites.then(() => store.putMeta(REGISTRATION_KEY, i.registration));
      },
      onEscalate: (e) => problems.push(e.message),
      ...(proj ? { onFacts: (facts) => proj.recordFacts(indexes, facts), snapshotMeta: (id) => (id === 'node' ? [{ key: proj.INDEXES_KEY, value: indexes.getSnapshot().context }] : []) } : {}),
    });
  let sup = supervisor();
  let ref = await sup.spawn({ id: 'node', kind: 'node', input: {} });
  const reply = await ref.ask({ type: 'node.onboard', offer: OFFER, host: { dataDir: dir, dataDirWritable: true }, benchmark: BENCHMARK }, 30_000, 'api');
  if (!reply.ok) throw new Error(`onboarding failed: ${reply.message}`);
  await metaWrites;

  const sizes = [];
  if (real || total < 2 * CHUNK + 2 * BURST + CHUNK) {
    for (let left = total; left > 0; left -= BURST) sizes.push(Math.min(BURST, left));
  } else {
    const middle = Math.floor((total - 2 * CHUNK - 2 * BURST) / CHUNK);
    const rest = total - (2 + middle) * CHUNK;
    sizes.push(...Array(2 + middle).fill(CHUNK), Math.ceil(rest / 2), Math.floor(rest / 2));
  }
  const head = sizes.length > 4 && !real ? 2 : sizes.length;
  const tail = head === 2 ? 2 : 0;
  let fast = sizes.length - head - tail;
  const chunks = [];
  let sent = 0;
  const progress = () => out({ progress: sent, of: total, eventsPerSecond: round(chunks.at(-1).events / (chunks.at(-1).ms / 1000)) });
  // The builder compacts once, this many events before the end, so that a restart reads the longest journal tail
  // the compaction threshold allows (just under it): the worst case for the time and memory of recovery.
  const worstTail = Math.floor((STORE_DEFAULTS.compactBytes * 0.9) / BYTES_PER_EVENT);
  let compacted = false;
  const worstCaseCompaction = async () => {
    if (compacted || total < 2 * worstTail || total - sent > worstTail) return;
    compacted = true;
    await store.compact();
  };
  const realChunk = async (k) => {
    await worstCaseCompaction();
    const payloads = mixedEvents(sizes[k], `c${k}`);
    const c0 = process.cpuUsage();
    const t1 = performance.now();
    for (let i = 0; i < payloads.length; i += 1) ref.send(payloads[i], payloads[i].type === 'monitor.sample' ? 'monitor' : 'api');
    await ref.drain();
    const chunk = { k, events: payloads.length, ms: performance.now() - t1, cpuMs: cpuMs(process.cpuUsage(c0)), raw: rawAppend(rawFile, logged(payloads, 2 + sent)) };
    sent += payloads.length;
    chunks.push(chunk);
    progress();
  };

  const idx = [indexNow()];
  const snaps = [];
  for (let k = 0; k < head; k += 1) {
    await realChunk(k);
    if (fast > 0) {
      snaps.push(await ref.persisted());
      idx.push(indexNow());
    }
  }
  let periodic = null;
  if (fast > 0) {
    try {
      if (sizes[0] !== sizes[1] || sizes[1] !== sizes[head]) throw new NotPeriodic('chunk sizes differ');
      if (JSON.stringify(snaps[0].snapshot) !== JSON.stringify(snaps[1].snapshot)) throw new NotPeriodic('the snapshots after chunks 0 and 1 differ');
      if (JSON.stringify(shift(idx[0], idx[1], idx[1])) !== JSON.stringify(idx[2])) throw new NotPeriodic('the indexes do not grow by the same amount per chunk');
      periodic = { snapshot: snaps[1], index: idx[2] };
    } catch (e) {
      if (!(e instanceof NotPeriodic)) throw e;
      out({ note: `not periodic (${e.message}): building every chunk through the supervisor` });
      fast = 0;
    }
  }
  const fastStats = { chunks: 0, events: 0, ms: 0 };
  if (periodic) {
    await sup.stop(); // a clean stop: its final snapshot covers chunk 1
    let seq = await store.lastSeq('node');
    let index = periodic.index;
    const t1 = performance.now();
    for (let k = head; k < head + fast; k += 1) {
      await worstCaseCompaction();
      const events = logged(mixedEvents(sizes[k], `c${k}`), seq + 1);
      const inflight = new Set();
      for (let i = 0; i < events.length; i += BATCH) {
        const p = store.append('node', events.slice(i, i + BATCH)).finally(() => inflight.delete(p));
        inflight.add(p);
        if (inflight.size >= 4) await Promise.race(inflight);
      }
      await Promise.all(inflight);
      seq += events.length;
      sent += events.length;
      index = shift(idx[1], idx[2], index);
      await store.saveSnapshot('node', { ...periodic.snapshot, seq }, proj ? [{ key: proj.INDEXES_KEY, value: index }] : []);
      if ((k - head) % 20 === 19) out({ progress: sent, of: total, eventsPerSecond: round(((k - head + 1) * CHUNK) / ((performance.now() - t1) / 1000)) });
    }
    Object.assign(fastStats, { chunks: fast, events: fast * CHUNK, ms: round(performance.now() - t1) });
    // the node comes back as it does at start: indexes from the store, the actor from its snapshot
    indexes = proj?.createIndexStore((await store.getMeta(proj.INDEXES_KEY)) ?? undefined);
    sup = supervisor();
    ref = await sup.spawn({ id: 'node', kind: 'node', input: {} });
  }
  for (let k = head + fast; k < sizes.length; k += 1) await realChunk(k);
  const view = await ref.view();
  await metaWrites;
  out({
    done: true,
    events: sent + 1,
    lastSeq: await store.lastSeq('node'),
    snapshotSeq: (await store.latestSnapshot('node'))?.seq ?? 0,
    state: view.value,
    locks: Object.keys(view.context.locks).length,
    indexes: proj ? indexes.getSnapshot().context.locks : null,
    restarts: ref.restarts,
    problems,
    chunks,
    fast: fastStats,
    journal: store.journal.stats,
    compactions: store.stats.compactions,
    rssMb: round(process.memoryUsage().rss / 2 ** 20),
    ms: round(performance.now() - t0),
  });
  setInterval(() => {}, 60_000);
  await new Promise(() => {}); // until SIGKILL
}

if (args.includes('--build')) {
  const dir = opt('--build');
  const total = Number(opt('--events'));
  const rawFile = opt('--raw-file');
  if (!dir || !Number.isInteger(total) || total < 0 || !rawFile) usage('--build DIR --events N --raw-file F [--real-build]');
  await build(dir, total, rawFile, args.includes('--real-build')).catch((e) => {
    process.stdout.write(`${JSON.stringify({ error: e.stack ?? e.message })}\n`);
    process.exit(1);
  });
}

// ================================================================================================ main

const jsonFile = opt('--json');
if (args.includes('--json') && !jsonFile) usage('--json needs a file name');
const TOTAL = Number(opt('--events') ?? 1_000_000);
if (!Number.isInteger(TOTAL) || TOTAL < 1000) usage('--events must be a whole number >= 1000');
const only = opt('--only')?.split(',');
const strict = args.includes('--strict');
const realBuild = args.includes('--real-build');
const replayBudgetS = Number(opt('--replay-budget') ?? 12);
if (!(replayBudgetS > 0)) usage('--replay-budget must be a number of seconds > 0');
const WATCHDOG_MS = WATCHDOG_BASE_MS + replayBudgetS * 1000;

const { DexieEventLog } = await import('../../runtime/store/dexie-event-log.js');
const { STORE_DEFAULTS } = await import('../../runtime/store/constants.js');
v8.setFlagsFromString('--expose-gc');
collect = vm.runInNewContext('gc');
const { HostedActor } = await import('../../actors/hosted-actor.js');
const { actorKind } = await import('../../actors/kinds.js');
const { nodeMachine } = await import('../../machines/node.machine.js');
const { createActor } = await import('xstate');

// ------------------------------------------------------------------------------------------------ watchdog

const results = [];
const watchdog = guard(WATCHDOG_MS, 'bench/store', () => report(true));

async function dirBytes(dir) {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    n += e.isDirectory() ? await dirBytes(p) : (await stat(p)).size;
  }
  return n;
}

/** Memory (MB) and CPU time (ms, all threads) of a process so far, from /proc. */
async function procStatus(pid) {
  const [status, statLine] = await Promise.all([readFile(`/proc/${pid}/status`, 'utf8'), readFile(`/proc/${pid}/stat`, 'utf8')]);
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  const f = statLine.slice(statLine.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
  return { rssMb: round(kb('VmRSS') / 1024, 1), hwmMb: round(kb('VmHWM') / 1024, 1), cpuMs: ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK };
}

/** Starts a node on `dir`; resolves at its ready line with spawn-to-ready ms, the ready line and its memory then. */
async function startNode(dir, timeoutMs = 30_000) {
  const s = await spawnNode(dir, timeoutMs);
  return { ...s, mem: await procStatus(s.child.pid) };
}

/**
 * Medians of both sides' rates, and the median of the ratios of runs made back to back (drift from other
 * processes on the machine hits both runs of a pair alike); the same per CPU-second of this process.
 */
function paired(o, b) {
  const rate = (r) => r.events / (r.ms / 1000);
  const perCpu = (r) => r.events / (r.cpuMs / 1000);
  return {
    ours: round(median(o.map(rate))),
    raw: round(median(b.map(rate))),
    ratio: round(median(o.map((x, k) => rate(x) / rate(b[k]))), 3),
    oursRuns: o.map((r) => round(rate(r))),
    rawRuns: b.map((r) => round(rate(r))),
    perCpuSecond: { ours: round(median(o.map(perCpu))), raw: round(median(b.map(perCpu))), ratio: round(median(o.map((x, k) => perCpu(x) / perCpu(b[k]))), 3) },
  };
}

// ------------------------------------------------------------------------------------------------ 1. durable append

/** One fresh store per run (N events stay under the compaction threshold); the raw side appends to a plain file. */
async function benchAppend() {
  const N = 60_000;
  const INFLIGHT = 4;
  const RUNS = 3;
  const dir = await tempDir('store-append');
  const ours = async (events, k) => {
    const dataDir = path.join(dir, `store-${k}`);
    const { store } = await DexieEventLog.open({ dataDir, ...STORE_DEFAULTS });
    const close = () => store.close();
    cleanups.add(close);
    collect();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const inflight = new Set();
    for (let i = 0; i < events.length; i += BATCH) {
      const p = store.append('node', events.slice(i, i + BATCH)).finally(() => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= INFLIGHT) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    const r = { events: events.length, ms: performance.now() - t0, cpuMs: cpuMs(process.cpuUsage(c0)), syncs: store.journal.stats.syncs, bytes: store.journal.stats.bytes, compactions: store.stats.compactions };
    const back = await store.eventsAfter('node', 0);
    if (back.length !== events.length || back.at(-1).seq !== events.at(-1).seq) throw new Error(`the store holds ${back.length} of ${events.length} events`);
    await close();
    cleanups.delete(close);
    await rm(dataDir, { recursive: true, force: true });
    return r;
  };
  const raw = async (events, k) => {
    const file = path.join(dir, `raw-${k}.log`);
    const r = rawAppend(file, events);
    await rm(file, { force: true });
    return r;
  };
  // warm-up, then runs in alternating order so drift (GC, other processes) hits both alike
  const warm = logged(mixedEvents(10_000, 'aw'), 1);
  await ours(warm, 'w');
  await raw(warm, 'w');
  const o = [];
  const b = [];
  for (let k = 0; k < RUNS; k += 1) {
    const events = logged(mixedEvents(N, `a${k}`), 1);
    const [x, y] = await alternate(k, () => ours(events, k), () => raw(events, k));
    o.push(x);
    b.push(y);
  }
  const p = paired(o, b);
  return {
    id: 'durable-append',
    name: `DexieEventLog.append, batches of ${BATCH} Node events, ${INFLIGHT} in flight, acknowledged after fdatasync, ${N / 1000}k events per run, vs raw fs.writeSync of each event as a JSON line (no fsync); ratio: median of ${RUNS} back-to-back pairs`,
    unit: 'events/s',
    ours: p.ours,
    raw: p.raw,
    ratio: p.ratio,
    targets: [
      { kind: 'ours', min: 50_000 },
      { kind: 'ratio', min: 0.3 },
    ],
    detail: {
      runs: RUNS,
      oursRuns: p.oursRuns,
      rawRuns: p.rawRuns,
      perCpuSecond: p.perCpuSecond,
      fdatasyncsPerRun: o.map((r) => r.syncs),
      journalBytesPerEvent: round(o[0].bytes / N),
      compactions: o.map((r) => r.compactions),
    },
  };
}

// ------------------------------------------------------------------------------------------------ 4. replay rate

/** Events through the Node machine with effects off: HostedActor.deliver in batches vs raw createActor().send. */
async function benchReplayRate() {
  const N = 15_000;
  const RUNS = 7;
  const kind = actorKind('node');
  const list = (k) => {
    const events = [onboardEvent(), ...mixedEvents(N - 1, `r${k}`)];
    // each side gets its own freshly deserialized copy, as events come out of the log
    return { ours: JSON.parse(JSON.stringify(events)), raw: JSON.parse(JSON.stringify(events)) };
  };
  const ours = (events) => {
    const hosted = new HostedActor('node', kind, { input: {} });
    collect();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < events.length; i += BATCH) {
      const r = hosted.deliver(events.slice(i, i + BATCH));
      if (r.failure) throw new Error(`HostedActor failed at ${i + r.failure.index}: ${r.failure.message}`);
    }
    const ms = performance.now() - t0;
    const c = cpuMs(process.cpuUsage(c0));
    const v = hosted.view();
    hosted.stop();
    if (v.value !== 'registered' || Object.keys(v.context.locks).length !== 0) throw new Error(`the hosted actor ended ${String(v.value)}`);
    return { events: events.length, ms, cpuMs: c };
  };
  const raw = (events) => {
    const actor = createActor(nodeMachine, { input: {} });
    actor.start();
    collect();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < events.length; i += 1) actor.send(events[i]);
    const ms = performance.now() - t0;
    const c = cpuMs(process.cpuUsage(c0));
    const s = actor.getSnapshot();
    actor.stop();
    if (s.status !== 'active' || s.value !== 'registered' || Object.keys(s.context.ledger.locks).length !== 0) throw new Error(`the raw actor ended ${s.status}/${String(s.value)}`);
    return { events: events.length, ms, cpuMs: c };
  };
  const w = list('w');
  ours(w.ours);
  raw(w.raw);
  const o = [];
  const b = [];
  for (let k = 0; k < RUNS; k += 1) {
    const l = list(k);
    if (k % 2) {
      b.push(raw(l.raw));
      o.push(ours(l.ours));
    } else {
      o.push(ours(l.ours));
      b.push(raw(l.raw));
    }
  }
  const p = paired(o, b);
  return {
    id: 'replay-rate',
    name: `replay, effects off: HostedActor.deliver in batches of ${BATCH} vs raw createActor(nodeMachine).send, the same ${N / 1000}k events (onboard, then lock/unlock with all-new ids and samples) per run; ratio: median of ${RUNS} back-to-back pairs`,
    unit: 'events/s',
    ours: p.ours,
    raw: p.raw,
    ratio: p.ratio,
    targets: [{ kind: 'ratio', min: 0.8 }],
    detail: { runs: RUNS, oursRuns: p.oursRuns, rawRuns: p.rawRuns, perCpuSecond: p.perCpuSecond },
  };
}

// ------------------------------------------------------------------------------------------------ 2, 3, 5, 6: the 1M dir

async function buildDir(tag, events, timeoutMs) {
  const parent = await tempDir(`store-${tag}`);
  const dir = path.join(parent, 'data');
  const child = spawnTracked([SELF, '--build', dir, '--events', String(events), '--raw-file', path.join(parent, 'raw.log'), ...(realBuild ? ['--real-build'] : [])]);
  let last = 0;
  const { value } = await jsonLine(child, (m) => (m?.done ? m : undefined), timeoutMs, `building the ${tag} data dir`, (m) => {
    if (m.note) note(`${tag}: ${m.note}`);
    if (m.progress && (m.progress - last >= 200_000 || m.progress === m.of)) {
      last = m.progress;
      note(`${tag}: ${m.progress.toLocaleString('en')} of ${m.of.toLocaleString('en')} events logged (${m.eventsPerSecond.toLocaleString('en')} events/s)`);
    }
  });
  await kill(child); // a crash right after the last acknowledged event
  await rm(path.join(parent, 'raw.log'), { force: true });
  if (value.problems.length || value.restarts || value.state !== 'registered' || value.locks !== 0) {
    throw new Error(`building ${tag}: the Node actor ended ${value.state} with ${value.locks} locks, ${value.restarts} restarts; ${value.problems.join('; ')}`);
  }
  return { dir, ...value };
}

function supervisorRow(big) {
  const chunks = big.chunks;
  const rate = (r) => r.events / (r.ms / 1000);
  const perCpu = (r) => r.events / (r.cpuMs / 1000);
  const o = median(chunks.map(rate));
  const b = median(chunks.map((c) => rate(c.raw)));
  const events = chunks.reduce((n, c) => n + c.events, 0);
  return {
    id: 'supervisor-durable',
    name: `end to end: ActorRef.send of ${chunks[0].events / 1000}k-event chunks + drain() through a Supervisor on a DexieEventLog (append, then deliver to the Node worker; snapshots, compaction), ${events.toLocaleString('en')} events in ${chunks.length} chunks, vs raw fs.writeSync JSON lines of each chunk`,
    unit: 'events/s',
    ours: round(o),
    raw: round(b),
    ratio: round(o / b, 3),
    targets: [],
    detail: {
      runs: chunks.length,
      oursRuns: chunks.map((c) => round(rate(c))),
      rawRuns: chunks.map((c) => round(rate(c.raw))),
      // process CPU: the main thread (supervisor, store, journal) and the Node worker (the machine)
      cpuPerEvent: { ours: `${round(median(chunks.map((c) => c.cpuMs / c.events)) * 1000, 1)} µs`, raw: `${round(median(chunks.map((c) => c.raw.cpuMs / c.raw.events)) * 1000, 1)} µs` },
      perCpuSecond: { ours: round(median(chunks.map(perCpu))), raw: round(median(chunks.map((c) => perCpu(c.raw)))), ratio: round(median(chunks.map(perCpu)) / median(chunks.map((c) => perCpu(c.raw))), 3) },
      buildSeconds: round(big.ms / 1000, 1),
      storeOnly: big.fast,
      fdatasyncs: big.journal.syncs,
      journalRecords: big.journal.records,
      compactions: big.compactions,
    },
  };
}

async function benchRestart(big, small) {
  const STARTS = 3;
  const sample = (s, cpu) => ({ ms: s.ms, startMs: s.ready.startMs, recovered: s.ready.recovered, state: s.ready.state, ...s.mem, ...(cpu ? { stopCode: cpu.code ?? cpu.signal } : {}) });
  await nodeE0();
  // 1. the first start after the builder's crash: it recovers from the snapshot before the final burst
  const first = await startNode(big.dir, 60_000);
  const crash = sample(first);
  const firstStop = await kill(first.child, 'SIGTERM'); // a clean stop: the node snapshots
  // 2. restarts from a clean stop, alternating with the baseline; each stopped with SIGTERM
  const o = [];
  const b = [];
  const e0 = [];
  let settled;
  for (let k = 0; k < STARTS; k += 1) {
    for (const [dir, into] of k % 2 ? [[small, b], [big, o]] : [[big, o], [small, b]]) {
      const s = await startNode(dir.dir);
      if (dir === big && k === STARTS - 1) {
        await new Promise((r) => setTimeout(r, 1000));
        settled = await procStatus(s.child.pid);
      }
      into.push(sample(s, await kill(s.child, 'SIGTERM')));
    }
    e0.push(await nodeE0());
  }
  for (const s of [crash, ...o, ...b]) if (s.state !== 'registered' || !s.recovered) throw new Error(`a restart came up ${s.state}, recovered ${JSON.stringify(s.recovered)}`);
  const journal = path.join(big.dir, 'journal');
  const segs = (await readdir(journal)).sort();
  const history = {
    bytes: await dirBytes(journal),
    segments: segs.length,
    newestSegmentBytes: (await stat(path.join(journal, segs.at(-1)))).size,
    checkpointBytes: (await stat(path.join(big.dir, 'checkpoint.json')).catch(() => ({ size: 0 }))).size,
  };
  return { crash, firstStop: firstStop.code ?? firstStop.signal, o, b, e0, settledRssMb: settled.rssMb, history };
}

function restartRows(big, small, r) {
  const rec = (s) => s.recovered && { snapshotSeq: s.recovered.snapshotSeq, replayed: s.recovered.replayed, lastSeq: s.recovered.lastSeq, ms: s.recovered.ms, journalRecords: s.recovered.journalRecords };
  const oMs = median(r.o.map((s) => s.ms));
  const bMs = median(r.b.map((s) => s.ms));
  const mb = (n) => round(n / 2 ** 20, 1);
  const history = { events: big.lastSeq, journalMb: mb(r.history.bytes), segments: r.history.segments, newestSegmentMb: mb(r.history.newestSegmentBytes), checkpointMb: mb(r.history.checkpointBytes) };
  const baseline = {
    rawRuns: r.b.map((s) => round(s.ms)),
    readyStartMs: { raw: r.b.map((s) => s.startMs) },
    cpuMsToReady: { raw: r.b.map((s) => round(s.cpuMs)) },
  };
  const restart = msRow(
    'restart-1m',
    `restart with ${big.lastSeq.toLocaleString('en')} events logged, after a clean stop (SIGTERM): \`node runtime/main.js --json\` spawn to ready line, median of ${r.o.length}, vs the same command on a data dir with only its onboarding (benchmark stored)`,
    oMs,
    bMs,
    [{ kind: 'ours', max: 3000 }],
    {
      runs: r.o.length,
      oursRuns: r.o.map((s) => round(s.ms)),
      ...baseline,
      readyStartMs: { ours: r.o.map((s) => s.startMs), raw: baseline.readyStartMs.raw },
      // CPU time of the node process (all threads) from spawn to its ready line: less disturbed by other processes
      cpuMsToReady: { ours: r.o.map((s) => round(s.cpuMs)), raw: baseline.cpuMsToReady.raw },
      recovered: { ours: r.o.map(rec), raw: r.b.map(rec) },
      sigtermExits: r.o.map((s) => s.stopCode),
      nodeE0Ms: r.e0.map((x) => round(x)),
      history,
      small: { events: small.lastSeq },
    },
  );
  const crash = msRow(
    'restart-1m-crash',
    `restart with ${big.lastSeq.toLocaleString('en')} events logged, after a crash (SIGKILL) right after a burst of ${(big.chunks.at(-2).events + big.chunks.at(-1).events).toLocaleString('en')} events: the same command, one start (the next start is a clean one), vs the baseline of restart-1m`,
    r.crash.ms,
    bMs,
    [{ kind: 'ours', max: 3000 }],
    {
      runs: 1,
      oursRuns: [round(r.crash.ms)],
      ...baseline,
      readyStartMs: { ours: [r.crash.startMs], raw: baseline.readyStartMs.raw },
      cpuMsToReady: { ours: [round(r.crash.cpuMs)], raw: baseline.cpuMsToReady.raw },
      recovered: { ours: [rec(r.crash)], raw: r.b.map(rec) },
      memory: { rssMb: r.crash.rssMb, hwmMb: r.crash.hwmMb },
      sigtermExit: r.firstStop,
      history,
    },
  );
  const oRss = median(r.o.map((s) => s.rssMb));
  const bRss = median(r.b.map((s) => s.rssMb));
  const rss = {
    id: 'rss-1m',
    name: `resident memory (VmRSS) of the node process at its ready line after recovering the ${big.lastSeq.toLocaleString('en')}-event dir (restart-1m's starts) vs the onboarding-only dir, median of ${r.o.length}${r.history.bytes >= 4 * STORE_DEFAULTS.compactBytes ? `; target: less above the baseline than the ${history.journalMb} MB the history takes on disk (holding it, even as JSON text, would exceed that)` : ''}`,
    unit: 'MB',
    lowerIsBetter: true,
    ours: oRss,
    raw: bRss,
    ratio: round(oRss / bRss, 2),
    // meaningful only when the history is much longer than the journal tail a restart reads (at most compactBytes)
    targets: r.history.bytes >= 4 * STORE_DEFAULTS.compactBytes ? [{ kind: 'ours', max: round(bRss + history.journalMb) }] : [],
    detail: {
      runs: r.o.length,
      oursRuns: r.o.map((s) => s.rssMb),
      rawRuns: r.b.map((s) => s.rssMb),
      peakVmHWM: { ours: r.o.map((s) => s.hwmMb), raw: r.b.map((s) => s.hwmMb) },
      rssAfter1sMb: r.settledRssMb,
      crashRestart: { rssMb: r.crash.rssMb, hwmMb: r.crash.hwmMb, replayed: r.crash.recovered?.replayed },
      historyOnDiskMb: history.journalMb,
    },
  };
  return [restart, crash, rss];
}

/**
 * The replay tool end to end, bounded: it runs until it prints its final state or for `budgetMs`, whichever comes
 * first; then the rate is taken from its last progress line (events so far, from spawn).
 */
async function benchReplayCli(big, replayRate, budgetMs) {
  const rawRate = replayRate?.raw ?? 0;
  const t0 = performance.now();
  const child = spawnTracked([MAIN_JS, 'replay', '--summary', '--json', '--data-dir', big.dir]);
  let progress = null;
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
    const lines = err.split('\n');
    err = lines.pop();
    for (const line of lines) {
      const m = /replay: (\d+)% of ([\d.]+) MB read, ([\d,]+) events/.exec(line);
      if (m) progress = { events: Number(m[3].replace(/,/g, '')), percentRead: Number(m[1]), at: performance.now() };
    }
  });
  const done = jsonLine(child, (m) => (m?.event === 'final' ? m : undefined), budgetMs + 60_000, 'replay --summary').then(
    (v) => ({ final: v.value, at: v.at }),
    (error) => ({ error }),
  );
  let timer;
  const r = await Promise.race([done, new Promise((resolve) => (timer = setTimeout(() => resolve({ timeout: true }), budgetMs)))]);
  clearTimeout(timer);
  let events;
  let ms;
  let detail;
  if (r.timeout) {
    await kill(child);
    await done;
    if (!progress) throw new Error(`replay printed no progress within ${budgetMs} ms`);
    ({ events } = progress);
    ms = progress.at - t0;
    detail = { complete: false, percentRead: progress.percentRead };
  } else if (r.error) throw r.error;
  else {
    const value = r.final;
    await withTimeout(exited(child), 10_000, 'replay exit');
    if (value.failed) throw new Error(`replay failed at seq ${value.failed.seq}: ${value.failed.message}`);
    if (value.lastSeq < big.lastSeq || value.state !== 'registered' || Object.keys(value.context?.locks ?? {}).length !== 0) {
      throw new Error(`replay ended at seq ${value.lastSeq} in ${JSON.stringify(value.state)}; the live node ended at ${big.lastSeq}, registered, no locks`);
    }
    events = value.events;
    ms = r.at - t0;
    detail = { complete: true, replayMs: value.ms, lastSeq: value.lastSeq, state: value.state };
  }
  const ours = events / (ms / 1000);
  return {
    id: 'replay-cli',
    name: `\`node runtime/main.js replay --summary\` on the ${big.lastSeq.toLocaleString('en')}-event dir, spawn to final line, or to its last progress line when stopped after ${budgetMs / 1000} s, vs the raw XState rate of replay-rate`,
    unit: 'events/s',
    ours: round(ours),
    raw: round(rawRate),
    ratio: round(ours / rawRate, 3),
    targets: [],
    detail: { runs: 1, oursRuns: [round(ours)], rawRuns: [round(rawRate)], events, wallMs: round(ms), ...detail },
  };
}

// ------------------------------------------------------------------------------------------------ report

/** Values as printed here: as in test/bench/run.mjs, but MB to 0.1. */
function fmt(v, unit) {
  return fmtValue(v, unit, true);
}

/** The runs of both sides (test/bench/run.mjs prints these itself), then the other detail lines. */
function rowLines(r) {
  return r.error ? [] : [...runLines(r, fmt), ...detailLines(r)];
}

/** The other detail lines printed under a row (also in the JSON as `notes`, for test/bench/run.mjs to print). */
function detailLines(r) {
  const lines = [];
  const d = r.detail;
  if (r.id === 'durable-append') lines.push(`fdatasyncs per run ${d.fdatasyncsPerRun.join(', ')} (group commit); ${d.journalBytesPerEvent} journal bytes per event; compactions ${d.compactions.join(', ')}`);
  if (r.id === 'supervisor-durable') {
    lines.push(`process CPU per event (main thread + Node worker): ours ${d.cpuPerEvent.ours}, raw ${d.cpuPerEvent.raw}; the build: ${d.fdatasyncs} fdatasyncs for ${d.journalRecords} journal records, ${d.compactions} compactions, ${d.buildSeconds} s`);
    if (d.storeOnly.chunks) lines.push(`the other ${d.storeOnly.events.toLocaleString('en')} events (${d.storeOnly.chunks} chunks, identical in effect) were written with the supervisor's store calls only (append + saveSnapshot, no delivery): ${fmt(d.storeOnly.events / (d.storeOnly.ms / 1000), 'events/s')}`);
  }
  if (r.id === 'restart-1m' || r.id === 'restart-1m-crash') {
    const rec = (x) => (x ? `snapshot seq ${x.snapshotSeq}, ${x.replayed} events replayed, actor ${x.ms} ms, ${x.journalRecords} journal records` : 'none');
    lines.push(`ready.startMs (inside startNode) ours ${d.readyStartMs.ours.join(', ')}; raw ${d.readyStartMs.raw.join(', ')}`);
    lines.push(`CPU ms of the node process, spawn to ready: ours ${d.cpuMsToReady.ours.join(', ')}; raw ${d.cpuMsToReady.raw.join(', ')}`);
    lines.push(`recovered (ours): ${d.recovered.ours.map(rec).join(' | ')}`);
    if (r.id === 'restart-1m') {
      lines.push(`recovered (raw):  ${rec(d.recovered.raw[0])}`);
      lines.push(`history: ${d.history.events.toLocaleString('en')} events, ${d.history.journalMb} MB in ${d.history.segments} journal segments (newest ${d.history.newestSegmentMb} MB), checkpoint ${d.history.checkpointMb} MB; \`node -e 0\` ${d.nodeE0Ms.join(', ')} ms`);
    } else lines.push(`memory at ready ${d.memory.rssMb} MB (peak VmHWM ${d.memory.hwmMb} MB)`);
  }
  if (r.id === 'rss-1m') lines.push(`VmHWM (peak) ours ${d.peakVmHWM.ours.join(', ')} MB, raw ${d.peakVmHWM.raw.join(', ')} MB; ${d.rssAfter1sMb} MB a second after the last ready line; after the crash (${d.crashRestart.replayed} events replayed) ${d.crashRestart.rssMb} MB, peak ${d.crashRestart.hwmMb} MB`);
  if (r.id === 'replay-cli') lines.push(d.complete ? `all ${d.events.toLocaleString('en')} events to seq ${d.lastSeq} in ${d.wallMs} ms from spawn (${d.replayMs} ms inside replay()), final state ${JSON.stringify(d.state)}` : `stopped after ${d.wallMs} ms: ${d.events.toLocaleString('en')} events replayed, ${d.percentRead}% of the history read`);
  return lines;
}

let reported = false;
const started = performance.now();
const loadBefore = os.loadavg()[0];
function report(partial = false) {
  if (reported) return;
  reported = true;
  const doc = {
    ...reportHead('dms-runtime bench: durable event log', started),
    loadAverage1m: loadAverage(loadBefore),
    partial,
    ok: !partial && results.every((r) => !r.error && r.pass !== false),
    results: results.map((r) => (r.error ? r : { ...r, notes: detailLines(r) })),
  };
  process.stdout.write(`\n${table(results, rowLines, fmt)}\n\ntotal ${doc.totalSeconds} s on ${doc.cpus} cores, Node ${doc.node}; 1-minute load average ${doc.loadAverage1m.before} before, ${doc.loadAverage1m.after} after (above ${doc.cpus}, other processes were competing for the cores)\n`);
  if (jsonFile) return writeFile(jsonFile, `${JSON.stringify(doc, null, 2)}\n`);
}

const want = (id) => !only || only.includes(id);
try {
  if (want('durable-append')) await step(results, 'bench/store', 'durable-append', benchAppend);
  let replayRate;
  if (want('replay-rate') || want('replay-cli')) {
    await step(results, 'bench/store', 'replay-rate', benchReplayRate);
    replayRate = results.at(-1);
  }
  const needDir = ['supervisor-durable', 'restart-1m', 'rss-1m', 'replay-cli'].some(want);
  let big;
  let small;
  if (needDir) {
    await step(results, 'bench/store', 'build', async () => {
      big = await buildDir('1m', TOTAL - 1, 150_000);
      small = await buildDir('small', 0, 30_000);
      return [];
    });
  }
  if (big && want('supervisor-durable')) results.push(judge(supervisorRow(big)));
  if (big && small && (want('restart-1m') || want('rss-1m'))) await step(results, 'bench/store', 'restart-1m', async () => restartRows(big, small, await benchRestart(big, small)));
  if (big && want('replay-cli')) await step(results, 'bench/store', 'replay-cli', () => benchReplayCli(big, replayRate, replayBudgetS * 1000));
} finally {
  await cleanup();
}
clearTimeout(watchdog);
await report();
const failed = results.some((r) => r.error) || (strict && results.some((r) => r.pass === false));
process.exit(failed ? 1 : 0);
