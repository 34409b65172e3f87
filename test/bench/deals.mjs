// Deal benchmarks: real `node runtime/main.js` processes on loopback (`--bid-window 500ms`) deploying the tiny
// example WASM module (`exampleModule('hello')`) through the API, with the raw baseline the deal path is built on,
// in the same run:
//   deal-latency-p50/p99  3 nodes (A requester, B and C providers). Jobs deployed one at a time (DEALS_BENCH_N, at
//                         most 40 s); deploy (POST /v1/deploy sent) -> the requester's history entry `running` (its
//                         `at`; same machine clock), split by the history timestamps (bid window closed, committed,
//                         allocated, running, completed), and the CPU the nodes spent per deal (/proc). Raw,
//                         interleaved deal by deal: 4 request/response exchanges in sequence on one raw libp2p stream
//                         between two raw peers (net-peer.mjs; frames as long as our envelopes of the bid request,
//                         commit, allocate with the module, and status; each echoed) + the WASM runner spawned
//                         exactly as wasm-executor.ts does (prlimit --as, the same node flags, the framed stdin) up
//                         to its 'spawn' event, which is what an allocation's `running` waits for.
//   deal-throughput       4 nodes (A requester, B, C and D providers). Deploying for DEALS_BENCH_SECONDS, up to
//   deal-throughput-small DEALS_BENCH_JOBS jobs with DEALS_BENCH_WINDOW in flight; completed deals/s from the first
//                         deploy sent to the last deal's `endedAt`; a deal not ended 5 s after the deploying stopped
//                         is cancelled and not counted. First with the job as specified (0.1 cpu), then asking 0.01
//                         cpu so the providers' capability (1 cpu each here) does not bind. Afterwards every node is
//                         stopped and each provider's Node actor replayed from its journal (as `replay` does),
//                         checking locked + allocated <= registered (cpu, memory) after every event: no
//                         double-booking; the replay also says what the Node did with each bid request and how late
//                         it arrived. Raw: the same count of request/response exchanges (4 a deal; at least 1000),
//                         with as many in flight, pipelined on one raw libp2p stream: "deals/s if a deal cost only
//                         its messages".
// Standalone: `npm run build && node test/bench/deals.mjs [--json FILE] [--only deal-latency|deal-throughput]`; from
// run.mjs: `const { dealBenches } = await import('./deals.mjs')` gives [id, fn] pairs; each fn resolves to an ARRAY
// of rows in run.mjs's shape (with `notes`). Processes are tracked by common.mjs (spawnTracked / cleanup).
// Env: DEALS_BENCH_N (50), DEALS_BENCH_JOBS (400), DEALS_BENCH_WINDOW (64), DEALS_BENCH_SECONDS (15 per run),
// DEALS_BENCH_CPU (0.1), DEALS_BENCH_PROF (a dir: the throughput nodes write --cpu-prof profiles there).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  children,
  cleanup,
  descendantsCpu,
  exited,
  guard,
  jsonLine,
  kill,
  loadAverage,
  MAIN_JS,
  msRow,
  note,
  reportHead,
  root,
  round,
  spawnTracked,
  step,
  table,
  tempDir,
  withTimeout,
} from './common.mjs';
import { killNetPeers, spawnPeer } from './net.mjs';

const RUNNER = path.join(root, 'runtime', 'executors', 'wasm-runner.js');
const BID_WINDOW = '500ms';
const BID_WINDOW_MS = 500;
const MiB = 2 ** 20;
const env = (name, dflt) => (process.env[name] === undefined ? dflt : Number(process.env[name]));
const LATENCY_N = env('DEALS_BENCH_N', 50);
const LATENCY_BUDGET_MS = 40_000;
const TPUT_JOBS = env('DEALS_BENCH_JOBS', 400);
const TPUT_WINDOW = env('DEALS_BENCH_WINDOW', 64);
const TPUT_BUDGET_MS = env('DEALS_BENCH_SECONDS', 15) * 1000;
const TPUT_GRACE_MS = 5_000;
const TPUT_FIRST_POLL_MS = 300;
const TPUT_POLL_MS = 250;
const JOB_CPU = env('DEALS_BENCH_CPU', 0.1);
const JOB_MEMORY = 32 * MiB;
const TERMINAL = ['completed', 'failed', 'cancelled'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Nearest rank: the smallest value with at least p of the values at or below it (p99 of 50 is the max). */
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(p * s.length) - 1)];
};
const stats = (xs) => (xs.length ? { p50: round(pct(xs, 0.5), 1), p99: round(pct(xs, 0.99), 1), max: round(Math.max(...xs), 1), n: xs.length } : { n: 0 });

// ---------------------------------------------------------------------------------------------- the module and job

let moduleCache;
/** The example module, and the deploy body the API takes (the checked JobSpec form) for a job asking `cpu` cores. */
async function helloJob(cpu = JOB_CPU) {
  if (!moduleCache) {
    const { exampleModule } = await import('../../runtime/executors/examples/examples.js');
    const bytes = await exampleModule('hello');
    moduleCache = { bytes, sha256: createHash('sha256').update(bytes).digest('hex'), base64: Buffer.from(bytes).toString('base64') };
  }
  const { bytes, sha256, base64 } = moduleCache;
  const job = {
    name: 'hello',
    executor: 'wasm',
    wasm: { module: { sha256, size: bytes.byteLength }, args: [], env: {} },
    resources: { cpu, memory: JOB_MEMORY, disk: 0, gpus: 0 },
    timeoutMs: 30_000,
    constraints: { peers: [], excludePeers: [] },
  };
  return { bytes, job, body: { job, module: base64 } };
}

// ---------------------------------------------------------------------------------------------- nodes

/** A tiny API client (fetch keeps its connections alive): (method, route, body?) -> parsed JSON. */
function apiClient(url, token) {
  return async (method, route, body) => {
    const res = await fetch(`${url}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    const v = text ? JSON.parse(text) : undefined;
    if (!res.ok) throw new Error(`${method} ${route}: HTTP ${res.status}: ${v?.error ?? text.slice(0, 200)}`);
    return v;
  };
}

/** `node runtime/main.js` on a fresh data dir, to its ready line; keeps the tail of its stderr for errors. */
async function startDms(name, tag, bootstrap = [], execArgv = [], existingDir = undefined, nodeArgs = []) {
  const dir = existingDir ?? (await tempDir(`deals-${tag}-${name}`));
  const argv = [...execArgv, MAIN_JS, '--data-dir', dir, '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0/ws', '--json', '--bid-window', BID_WINDOW, ...bootstrap.flatMap((b) => ['--bootstrap', b]), ...nodeArgs];
  const child = spawnTracked(argv);
  let err = '';
  child.stderr.on('data', (d) => {
    err = (err + d).slice(-4000);
  });
  const { value: ready } = await jsonLine(child, (m) => (m?.event === 'ready' ? m : undefined), 90_000, `node ${name}`);
  const token = (await readFile(path.join(dir, 'api.token'), 'utf8')).trim();
  return { name, dir, child, ready, peerId: ready.peerId, api: apiClient(ready.api, token), stderr: () => err };
}

/**
 * A requester A and `n` providers joined through it; resolves once A counts them all as DMS peers. `execArgv` go
 * to node, `nodeArgs` to `run`.
 */
async function startCluster(tag, n, execArgv = [], nodeArgs = []) {
  const a = await startDms('A', tag, [], execArgv, undefined, nodeArgs);
  const names = ['B', 'C', 'D', 'E'].slice(0, n);
  const providers = await Promise.all(names.map((x) => startDms(x, tag, [a.ready.listen[0]], execArgv, undefined, nodeArgs)));
  const deadline = Date.now() + 30_000;
  for (;;) {
    const peers = await a.api('GET', '/v1/peers');
    const dms = new Set(peers.filter((p) => p.dms).map((p) => p.peer));
    if (providers.every((p) => dms.has(p.peerId))) break;
    if (Date.now() > deadline) throw new Error(`A sees ${dms.size} of ${n} providers as DMS peers after 30 s`);
    await sleep(100);
  }
  return { a, providers, all: [a, ...providers] };
}

/** SIGTERM every node (SIGKILL after 10 s); resolves with how each ended. */
async function stopNodes(nodes) {
  return Promise.all(nodes.map(async (n) => ({ name: n.name, ...(await kill(n.child, 'SIGTERM')) })));
}

/** Polls GET /v1/jobs/:id until the job ends: the first poll after `firstMs`, then every `everyMs`. */
async function untilEnded(a, id, firstMs, everyMs, timeoutMs = 60_000) {
  const deadline = performance.now() + timeoutMs;
  await sleep(firstMs);
  for (;;) {
    const r = await a.api('GET', `/v1/jobs/${id}`);
    if (TERMINAL.includes(r.state)) return r;
    if (performance.now() > deadline) throw new Error(`job ${id} is still ${r.state} after ${timeoutMs} ms: ${r.message}`);
    await sleep(everyMs);
  }
}

/** What one GET costs the node (its CPU ms, from /proc) and the client (ms), over 200 sequential requests. */
async function getCost(node, route, n = 200) {
  const c0 = await cpuOf(node.child.pid);
  const t0 = performance.now();
  for (let i = 0; i < n; i += 1) await node.api('GET', route);
  const ms = performance.now() - t0;
  const c1 = await cpuOf(node.child.pid);
  return { ms: round(ms / n, 2), nodeCpuMs: c0 && c1 ? round(((c1.self - c0.self) * 1000) / n, 2) : null };
}

/**
 * Deploys one job at a time until one is placed in its first bidding round (gossipsub meshes form a heartbeat or
 * so after the connections; a bid request sent before that reaches no one and the job asks again 500 ms later).
 */
async function warmUp(a, body) {
  for (let i = 0; i < 8; i += 1) {
    const rec = await a.api('POST', '/v1/deploy', body);
    const end = await untilEnded(a, rec.id, 50, 50, 30_000);
    if (end.state !== 'completed') throw new Error(`warm-up job ${end.id} ${end.state}: ${end.message}`);
    if (end.rounds === 1 && i >= 1) return { deals: i + 1, lastId: end.id };
  }
  note('deals: no warm-up job was placed in its first round; measuring anyway');
  return { deals: 8, lastId: null };
}

// ---------------------------------------------------------------------------------------------- history splits

/** The times of a deal's steps from its record (ms since the epoch, the requester's clock). */
function stepsOf(rec, sentAt) {
  const h = rec.history;
  // the last round's window, and the steps after it (an earlier round may have got as far as provisioning)
  const w = h.findLastIndex((e) => e.state === 'requesting' && e.message.startsWith('bid window of round'));
  const prov = h.slice(w + 1).filter((e) => e.state === 'provisioning');
  const at = (e) => e?.at;
  return {
    sent: sentAt,
    created: rec.createdAt,
    windowClosed: at(h[w]),
    committed: at(prov[0]),
    allocated: at(prov.find((e) => / allocated /.test(e.message))),
    running: at(h.find((e) => e.state === 'running')),
    ended: rec.endedAt ?? undefined,
    rounds: rec.rounds,
  };
}

const SPLITS = [
  ['api', 'sent', 'created', 'deploy sent -> deal created (HTTP, module stored, requester actor spawned)'],
  ['bids', 'created', 'windowClosed', 'created -> bid window closed (bid request broadcast, bids back)'],
  ['commit', 'windowClosed', 'committed', 'window closed -> committed (commit/committed)'],
  ['allocate', 'committed', 'allocated', 'committed -> allocated (allocate with the module/allocated)'],
  ['start', 'allocated', 'running', 'allocated -> running (allocation actor, runner spawned, status back)'],
  ['run', 'running', 'ended', 'running -> completed (the module runs, exits, status back)'],
];

function splitStats(steps) {
  const out = {};
  for (const [key, from, to] of SPLITS) {
    const xs = steps.filter((s) => s[from] !== undefined && s[to] !== undefined).map((s) => s[to] - s[from]);
    out[key] = stats(xs);
  }
  return out;
}

const splitLine = (sp) => SPLITS.map(([k]) => `${k} ${sp[k].p50 ?? '-'}`).join(', ');

// ---------------------------------------------------------------------------------------------- raw peers

async function rawPair() {
  const [p, q] = await Promise.all([spawnPeer(), spawnPeer()]);
  await p.call('connect', { addr: q.addr });
  return [p, q];
}

async function stopPeers(peers) {
  await Promise.all(peers.map((p) => p.call('stop', {}, 5_000).catch(() => {})));
  await Promise.all(peers.map((p) => withTimeout(exited(p.child), 5_000, 'raw peer exit').catch(() => p.child.kill('SIGKILL'))));
}

/** Lengths of our envelope frames for the four exchanges (bid request, commit, allocate with the module, status). */
async function dealFrameBytes(peer, to, job, moduleBytes) {
  const dealId = 'a'.repeat(32);
  const f = (inbox, type, payload, bytesField) => peer.call('frameBytes', { to, inbox, type, payload, bytesField });
  return {
    bidRequest: await f('node', 'bid.request', { dealId, nonce: 1, job, expiresAt: Date.now() + 500 }),
    commit: await f('provider', 'deal.commit', { dealId, nonce: 1 }),
    allocate: await f('provider', 'deal.allocate', { dealId, nonce: 1 }, { name: 'module', length: moduleBytes }),
    status: await f('requester', 'allocation.status', { dealId, nonce: 1, allocationId: `${dealId}.1`, state: 'running', exitCode: null, message: '' }),
  };
}

/**
 * The WASM runner started exactly as wasm-executor.ts starts it (prlimit --as, the same node flags, stdin framed
 * by wasm-runner.protocol), fed the module: ms to its 'spawn' event (what an allocation's `running` waits for)
 * and to its exit (the module ran), checking that it exited with code 0.
 */
async function rawRunner(module) {
  const { encodeRunnerInput } = await import('../../runtime/executors/wasm-runner.protocol.js');
  const osLimits = await import('../../runtime/executors/os-limits.js');
  const { findExecutable, withOsLimits } = osLimits;
  const { RUNNER_ADDRESS_SPACE_BYTES, RUNNER_HEAP_MIB } = await import('../../runtime/executors/limits.js');
  const pages = Math.floor(JOB_MEMORY / 65536);
  const node = ['--disable-wasm-trap-handler', `--wasm-max-mem-pages=${pages}`, `--max-old-space-size=${RUNNER_HEAP_MIB}`, '--no-warnings', RUNNER];
  const prlimit = findExecutable('prlimit', '/usr/bin:/bin:/usr/sbin:/sbin');
  // the CPU-time backstop where this build has one (os-limits.cpuSecondsFor), as the executor passes it
  const cpuSeconds = osLimits.cpuSecondsFor?.(30_000, JOB_CPU);
  const limited = withOsLimits(process.execPath, node, { addressSpaceBytes: pages * 65536 + RUNNER_ADDRESS_SPACE_BYTES, ...(cpuSeconds === undefined ? {} : { cpuSeconds }) }, prlimit);
  const input = encodeRunnerInput({ argv: ['hello'], env: [] }, module);
  const t0 = performance.now();
  const child = spawn(limited.command, limited.args, { cwd: os.tmpdir(), env: {}, detached: true, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const done = exited(child);
  await new Promise((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  const spawnMs = performance.now() - t0;
  child.stdin.on('error', () => {});
  child.stdin.end(input);
  let control = '';
  child.stdout.resume();
  child.stderr.resume();
  child.stdio[3].on('data', (d) => (control += d));
  const r = await withTimeout(done, 10_000, 'the raw WASM runner');
  const exitMs = performance.now() - t0;
  const result = JSON.parse(control.trim().split('\n').pop() || 'null');
  if (r.code !== 0 || result?.type !== 'exited' || result.code !== 0) throw new Error(`the raw WASM runner ended ${r.code ?? r.signal} with ${control.trim() || 'no result'}`);
  return { spawnMs, exitMs, tool: prlimit ? 'prlimit' : 'ulimit' };
}

// ---------------------------------------------------------------------------------------------- CPU accounting

/**
 * CPU seconds of a process (all its threads) and of its children: those it reaped and those still running (a warm
 * WASM runner lives on between jobs), from /proc (Linux only; else null).
 */
async function cpuOf(pid) {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const tick = 100; // USER_HZ
    const m = (await readFile(`/proc/${pid}/task/${pid}/stat`, 'utf8').catch(() => null))?.split(') ')[1]?.split(' ');
    const live = await descendantsCpu(pid);
    return { self: (Number(f[11]) + Number(f[12])) / tick, main: m ? (Number(m[11]) + Number(m[12])) / tick : null, children: (Number(f[13]) + Number(f[14])) / tick + live };
  } catch {
    return null;
  }
}

/** Busy and total CPU seconds of the machine (all cores), from /proc/stat. */
async function machineCpu() {
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0];
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.reduce((a, b) => a + b, 0) / 100;
    const idle = (v[3] + (v[4] ?? 0)) / 100;
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

async function cpuSnapshot(nodes) {
  const per = {};
  for (const n of nodes) per[n.name] = await cpuOf(n.child.pid);
  return { per, machine: await machineCpu(), bench: process.cpuUsage() };
}

function cpuDelta(before, after, seconds) {
  if (!before.machine || !after.machine) return null;
  const per = {};
  for (const [name, b] of Object.entries(before.per)) {
    const a = after.per[name];
    if (!a || !b) continue;
    per[name] = { node: round((a.self - b.self) / seconds, 2), mainThread: a.main === null ? null : round((a.main - b.main) / seconds, 2), runners: round((a.children - b.children) / seconds, 2) };
  }
  const busy = after.machine.busy - before.machine.busy;
  const total = after.machine.total - before.machine.total;
  const bench = (after.bench.user + after.bench.system - before.bench.user - before.bench.system) / 1e6 / seconds;
  return { coresBusy: round(busy / (total / os.cpus().length), 2), cores: os.cpus().length, perProcessCores: per, benchProcessCores: round(bench, 2) };
}

/** Each node's envelope counters (GET /v1/info's messages). */
async function netSnapshot(nodes) {
  const out = {};
  for (const n of nodes) out[n.name] = (await n.api('GET', '/v1/info').catch(() => null))?.messages ?? null;
  return out;
}

function netDelta(before, after) {
  const out = {};
  for (const [name, a] of Object.entries(after)) {
    const b = before[name];
    if (!a || !b) continue;
    const rejected = {};
    for (const [r, n] of Object.entries(a.rejected)) if (n - (b.rejected[r] ?? 0) > 0) rejected[r] = n - (b.rejected[r] ?? 0);
    out[name] = { in: a.in - b.in, out: a.out - b.out, broadcastIn: a.broadcastIn - b.broadcastIn, broadcastOut: a.broadcastOut - b.broadcastOut, rejected, rejectedTotal: a.rejectedTotal - b.rejectedTotal };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- bid timing

/** Every logged event of the actors whose id starts with `prefix`, from a stopped node's journal, in one pass. */
async function eventsByActor(dir, prefix) {
  const { listSegments, readSegments } = await import('../../runtime/store/journal.js');
  const { JOURNAL_DIR } = await import('../../runtime/store/constants.js');
  const jdir = path.join(dir, JOURNAL_DIR);
  const out = new Map();
  for await (const seg of readSegments(jdir, await listSegments(jdir))) {
    for (const r of seg.records) {
      for (const m of r.tx) {
        if (m.t !== 'events' || (m.op !== 'add' && m.op !== 'put')) continue;
        for (const page of m.values) {
          if (!page.actor.startsWith(prefix)) continue;
          let list = out.get(page.actor);
          if (!list) out.set(page.actor, (list = []));
          list.push(...page.events);
        }
      }
    }
  }
  return out;
}

/**
 * From the requester's journal (job actors): when each round's bids and declines came back, measured from when the
 * round's bid request was sent (its `bid.request.sent` event), and how many came after the bid window had closed.
 * Rounds started at or after `from` (ms since the epoch) only.
 */
async function bidTimings(dir, from = 0, to = Infinity) {
  const jobs = await eventsByActor(dir, 'job/');
  const back = [];
  let answers = 0;
  let late = 0;
  let rounds = 0;
  let roundsWithoutAnswer = 0;
  for (const events of jobs.values()) {
    const sent = new Map();
    const answered = new Set();
    for (const e of events) {
      const p = e.payload;
      if (e.type === 'bid.request.sent') {
        if (e.ts < from || e.ts >= to) continue;
        sent.set(p.nonce, e.ts);
        rounds += 1;
      } else if (e.type === 'bid.submit' || e.type === 'bid.decline') {
        const nonce = e.type === 'bid.submit' ? p.bid.nonce : p.nonce;
        const t0 = sent.get(nonce);
        if (t0 === undefined) continue;
        answered.add(nonce);
        answers += 1;
        back.push(e.ts - t0);
        if (e.ts - t0 > BID_WINDOW_MS) late += 1;
      }
    }
    for (const n of sent.keys()) if (!answered.has(n)) roundsWithoutAnswer += 1;
  }
  return { rounds, roundsWithoutAnswer, answers, lateAnswers: late, answerMs: stats(back) };
}

const bidTimingLine = (b) =>
  `at the requester (its job actors' logs): ${b.rounds} bid rounds, ${b.answers} bids/declines back, p50 ${b.answerMs.p50} ms, p99 ${b.answerMs.p99} ms after the round's request was sent; ${b.lateAnswers} came after the ${BID_WINDOW} window had closed; ${b.roundsWithoutAnswer} rounds got no answer in time or at all`;

// ---------------------------------------------------------------------------------------------- no double-booking

/**
 * Replays the Node actor of a stopped node from its journal, as `replay` does, and checks after every event that
 * locked + allocated <= registered for cpu and memory. Resolves with what it saw.
 */
async function checkLedger(dir, phases = [['all', 0]]) {
  const { historyOf } = await import('../../runtime/store/history-reader.js');
  const { actorRecordOf } = await import('../../runtime/cli/replay.js');
  const { HostedActor } = await import('../../actors/hosted-actor.js');
  const { actorKind } = await import('../../actors/kinds.js');
  const record = await actorRecordOf(dir, 'node');
  if (!record) throw new Error(`no Node actor in the log of ${dir}`);
  const hosted = new HostedActor(record.id, actorKind(record.kind), { input: record.input, inspect: false });
  const EPS = 1e-9;
  let events = 0;
  let violations = 0;
  let first = null;
  const peak = { cpu: 0, memory: 0 };
  const types = {};
  let registered = null;
  let maxLocks = 0;
  let allocations = 0;
  const perPhase = Object.fromEntries(phases.map(([label]) => [label, { late: [], decisions: {} }]));
  const phaseOf = (ts) => phases.filter(([, from]) => from <= ts).at(-1)?.[0];
  try {
    for await (const { event } of historyOf(dir, 'node')) {
      const r = hosted.deliver([event.payload]);
      if (r.failure) throw new Error(`replay of the Node actor failed at seq ${event.seq}: ${r.failure.message}`);
      events += 1;
      types[event.type] = (types[event.type] ?? 0) + 1;
      const ph = event.type === 'bid.request' ? perPhase[phaseOf(event.ts)] : undefined;
      if (ph) {
        // the requester set expiresAt = its clock + the bid window when it sent the request (same machine clock)
        const e = event.payload;
        const { late, decisions } = ph;
        late.push(e.now - (e.expiresAt - BID_WINDOW_MS));
        const intents = r.intents === '[]' ? [] : JSON.parse(r.intents);
        const what = intents.map((i) => (i.type === 'bid.decline.send' ? `decline:${i.code}` : i.type === 'log.write' ? (/expired/.test(i.message) ? 'expired (not answered)' : 'log') : i.type));
        const k = what.filter((x) => x !== 'log').join('+') || 'nothing (duplicate or own)';
        decisions[k] = (decisions[k] ?? 0) + 1;
      }
      const c = hosted.view().context;
      const reg = c.capability.registered;
      registered = reg;
      maxLocks = Math.max(maxLocks, Object.keys(c.locks).length);
      for (const k of ['cpu', 'memory']) {
        const used = c.capability.locked[k] + c.capability.allocated[k];
        peak[k] = Math.max(peak[k], used);
        if (used > reg[k] + EPS * Math.max(1, reg[k])) {
          violations += 1;
          first ??= { seq: event.seq, type: event.type, resource: k, locked: c.capability.locked[k], allocated: c.capability.allocated[k], registered: reg[k] };
        }
      }
      allocations = Math.max(allocations, Object.keys(c.allocations).length);
    }
  } finally {
    hosted.stop();
  }
  return { events, violations, first, peak: { cpu: round(peak.cpu, 3), memoryMiB: round(peak.memory / MiB) }, registered: registered && { cpu: registered.cpu, memoryMiB: round(registered.memory / MiB) }, maxLocksAtOnce: maxLocks, maxAllocationsAtOnce: allocations, eventTypes: types, bidRequests: Object.fromEntries(Object.entries(perPhase).map(([k, v]) => [k, { decisions: v.decisions, sentToNodeInboxMs: stats(v.late) }])) };
}

// ---------------------------------------------------------------------------------------------- 1. latency

async function benchLatency() {
  const { bytes, body, job } = await helloJob();
  let cl;
  let peers = [];
  try {
    const t0 = performance.now();
    [cl, peers] = await Promise.all([startCluster('lat', 2), rawPair()]);
    const { a, providers } = cl;
    note(`deals: 3 nodes and 2 raw peers up in ${round((performance.now() - t0) / 1000, 1)} s`);
    const warm = (await warmUp(a, body)).deals;
    const [p, q] = peers;
    const sizes = await dealFrameBytes(p, q.peerId, job, bytes.byteLength);
    const sizeList = [sizes.bidRequest, sizes.commit, sizes.allocate, sizes.status];
    // warm the raw side too
    await p.call('rawExchanges', { addr: q.addr, sizes: sizeList, n: 20 });
    await rawRunner(bytes);

    const ours = [];
    const toCompleted = [];
    const steps = [];
    const raw = [];
    const rawNet = [];
    const rawSpawn = [];
    const rawExit = [];
    const rounds = {};
    const byProvider = {};
    const failed = [];
    let rawTool = '';
    // what the nodes spend doing nothing in particular (gossipsub heartbeats, probes, monitoring), to subtract
    const idle0 = await cpuSnapshot(cl.all);
    const idleT0 = performance.now();
    await sleep(3000);
    const idle = cpuDelta(idle0, await cpuSnapshot(cl.all), (performance.now() - idleT0) / 1000);
    const cpu0 = await cpuSnapshot(cl.all);
    const beganAt = Date.now();
    const began = performance.now();
    for (let i = 0; i < LATENCY_N && performance.now() - began < LATENCY_BUDGET_MS; i += 1) {
      const sent = Date.now();
      const rec = await a.api('POST', '/v1/deploy', body);
      const end = await untilEnded(a, rec.id, 50, 50, 30_000);
      if (end.state !== 'completed') {
        failed.push(`${end.id} ${end.state}: ${end.message}`);
        continue;
      }
      const s = stepsOf(end, sent);
      steps.push(s);
      if (s.running !== undefined) ours.push(s.running - sent);
      if (s.ended !== undefined) toCompleted.push(s.ended - sent);
      rounds[s.rounds] = (rounds[s.rounds] ?? 0) + 1;
      const prov = providers.find((n) => n.peerId === end.provider)?.name ?? end.provider;
      byProvider[prov] = (byProvider[prov] ?? 0) + 1;
      // the raw deal of this round: the four exchanges, then the runner
      const [net] = await p.call('rawExchanges', { addr: q.addr, sizes: sizeList, n: 1 });
      const run = await rawRunner(bytes);
      rawNet.push(net);
      rawSpawn.push(run.spawnMs);
      rawExit.push(run.exitMs);
      rawTool = run.tool;
      raw.push(net + run.spawnMs);
    }
    const loopS = (performance.now() - began) / 1000;
    const cpu = cpuDelta(cpu0, await cpuSnapshot(cl.all), loopS);
    await stopNodes(cl.all);
    const bidsBack = await bidTimings(a.dir, beganAt);
    if (ours.length === 0) throw new Error(`no deal reached running: ${failed.slice(0, 3).join('; ')}; A's stderr: ${a.stderr().slice(-600) || '(empty)'}`);
    // CPU one deal costs the nodes when nothing else is in flight (the polls of GET /v1/jobs/:id included)
    const busy = (k, v) => Math.max(0, v.node - (idle?.perProcessCores[k]?.node ?? 0)) * loopS; // CPU-s above idle
    const perDeal = cpu && {
      nodes: round(Object.entries(cpu.perProcessCores).reduce((x, [k, v]) => x + busy(k, v), 0) / steps.length, 3),
      byNode: Object.fromEntries(Object.entries(cpu.perProcessCores).map(([k, v]) => [k, round(busy(k, v) / steps.length, 3)])),
      idleCores: idle && Object.fromEntries(Object.entries(idle.perProcessCores).map(([k, v]) => [k, v.node])),
      runners: round((Object.values(cpu.perProcessCores).reduce((x, v) => x + v.runners, 0) * loopS) / steps.length, 3),
    };
    const sp = splitStats(steps);
    const o = stats(ours);
    const r = stats(raw);
    const detail = {
      deals: ours.length,
      failed,
      warmUpDeals: warm,
      bidWindow: BID_WINDOW,
      rounds,
      byProvider,
      oursMs: o,
      rawMs: r,
      deployToCompletedMs: stats(toCompleted),
      splitsMs: sp,
      raw: {
        exchangesMs: stats(rawNet),
        runnerSpawnMs: stats(rawSpawn),
        runnerExitMs: stats(rawExit),
        frameBytes: sizes,
      },
      rawPlusRunToExitMs: stats(rawNet.map((x, i) => x + rawExit[i])),
      cpu,
      cpuSecondsPerDeal: perDeal,
      bidsBack,
    };
    const notes = [
      `${ours.length} deals one at a time (${warm} warm-up deals first), bid window ${BID_WINDOW}; rounds: ${Object.entries(rounds).map(([k, v]) => `${v} in ${k}`).join(', ')}; providers: ${Object.entries(byProvider).map(([k, v]) => `${k} ${v}`).join(', ')}${failed.length ? `; FAILED: ${failed.length} (${failed[0]})` : ''}`,
      `deploy -> running ms: p50 ${o.p50}, p99 ${o.p99}, max ${o.max}; deploy -> completed p50 ${detail.deployToCompletedMs.p50}, p99 ${detail.deployToCompletedMs.p99}`,
      `where it goes (p50 ms, from the requester's history): ${splitLine(sp)}`,
      `bids ${bidTimingLine(bidsBack)}`,
      ...SPLITS.map(([k, , , what]) => `  ${k.padEnd(8)} ${what}: p50 ${sp[k].p50 ?? '-'}, p99 ${sp[k].p99 ?? '-'}, max ${sp[k].max ?? '-'}`),
      ...(perDeal ? [`CPU one deal costs, above the nodes' idle use (${Object.entries(perDeal.idleCores ?? {}).map(([k, v]) => `${k} ${v}`).join(', ')} cores; deals one at a time, polled every 50 ms; the raw side in the same loop is not counted): nodes ${perDeal.nodes} CPU-s (${Object.entries(perDeal.byNode).map(([k, v]) => `${k} ${v}`).join(', ')}) + the WASM runner ${perDeal.runners} CPU-s; at that cost ${cpu.cores} cores give at most ${round(cpu.cores / (perDeal.nodes + perDeal.runners))} deals/s; machine ${cpu.coresBusy} of ${cpu.cores} cores busy during the loop`] : []),
      `raw: 4 exchanges on one raw libp2p stream (frames ${sizeList.join('/')} bytes, each echoed) p50 ${detail.raw.exchangesMs.p50} ms + the WASM runner spawned as the executor does (${rawTool}) to its 'spawn' event p50 ${detail.raw.runnerSpawnMs.p50} ms (to its exit, module run: p50 ${detail.raw.runnerExitMs.p50} ms)`,
    ];
    return [
      { ...msRow('deal-latency-p50', `deal latency p50: POST /v1/deploy sent -> history 'running' at, 3 nodes (A asks, B and C bid), tiny WASM job, one at a time vs raw: 4 request/response exchanges on one raw libp2p stream + the WASM runner's spawn`, o.p50, r.p50, [{ kind: 'ours', max: 100 }], detail), notes },
      { ...msRow('deal-latency-p99', `deal latency p99 (nearest rank; of ${ours.length} deals), the same deals`, o.p99, r.p99, [{ kind: 'ours', max: 300 }], { oursMs: o, rawMs: r }), notes: [`max ${o.max} ms ours, ${r.max} ms raw`] },
    ];
  } finally {
    await Promise.all([cl ? stopNodes(cl.all) : null, stopPeers(peers)]);
  }
}

// ---------------------------------------------------------------------------------------------- 2. throughput

/**
 * One throughput run on a running cluster: deals of `cpu` cores each, up to `jobs` of them with `window` in flight,
 * deploying for `budgetMs`; a deal not ended TPUT_GRACE_MS after that is cancelled and not counted. Each in-flight
 * deal is polled (GET /v1/jobs/:id) TPUT_FIRST_POLL_MS after its deploy, then every TPUT_POLL_MS.
 */
async function throughputRun(cl, cpu, jobs, window, budgetMs) {
  const { a, providers } = cl;
  const { body } = await helloJob(cpu);
  const recs = [];
  const failed = [];
  const errors = [];
  const unfinished = [];
  let next = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let polls = 0;
  const net0 = await netSnapshot(cl.all);
  const cpu0 = await cpuSnapshot(cl.all);
  const firstSent = Date.now();
  const t0 = performance.now();
  const stopDeploying = t0 + budgetMs;
  const giveUp = stopDeploying + TPUT_GRACE_MS;
  const worker = async () => {
    while (next < jobs && performance.now() < stopDeploying) {
      next += 1;
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const sent = Date.now();
      try {
        const { id } = await a.api('POST', '/v1/deploy', body);
        await sleep(TPUT_FIRST_POLL_MS);
        for (;;) {
          polls += 1;
          const r = await a.api('GET', `/v1/jobs/${id}`);
          if (TERMINAL.includes(r.state)) {
            if (r.state === 'completed') recs.push({ end: r, sent });
            else failed.push(`${r.state}: ${r.message}`);
            break;
          }
          if (performance.now() > giveUp) {
            unfinished.push(r.state);
            await a.api('POST', `/v1/jobs/${id}/cancel`).catch((e) => errors.push(`cancel: ${e.message}`));
            break;
          }
          await sleep(TPUT_POLL_MS);
        }
      } catch (e) {
        errors.push(e.message);
      } finally {
        inFlight -= 1;
      }
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  const wallS = (performance.now() - t0) / 1000;
  const cpu1 = await cpuSnapshot(cl.all);
  const net1 = await netSnapshot(cl.all);
  if (recs.length === 0) throw new Error(`no deal of ${cpu} cpu completed: ${[...failed, ...errors].slice(0, 3).join('; ') || `${unfinished.length} unfinished`}; A's stderr: ${a.stderr().slice(-600) || '(empty)'}`);
  const lastEnd = Math.max(...recs.map((r) => r.end.endedAt));
  const spanS = (lastEnd - firstSent) / 1000;
  const steps = recs.map((r) => stepsOf(r.end, r.sent));
  const rounds = {};
  const declines = {};
  const byProvider = {};
  for (const { end } of recs) {
    rounds[end.rounds] = (rounds[end.rounds] ?? 0) + 1;
    for (const d of end.declines ?? []) declines[d.code] = (declines[d.code] ?? 0) + 1;
    const n = providers.find((x) => x.peerId === end.provider)?.name ?? end.provider;
    byProvider[n] = (byProvider[n] ?? 0) + 1;
  }
  const cpu_ = cpuDelta(cpu0, cpu1, wallS);
  const nodeCpuS = cpu_ ? Object.values(cpu_.perProcessCores).reduce((s, v) => s + v.node, 0) * wallS : null;
  const runnerCpuS = cpu_ ? Object.values(cpu_.perProcessCores).reduce((s, v) => s + v.runners, 0) * wallS : null;
  return {
    rate: recs.length / spanS,
    completed: recs.length,
    detail: {
      jobCpu: cpu,
      jobs: next,
      completed: recs.length,
      failed: failed.length,
      failedExamples: failed.slice(0, 5),
      errors: errors.length,
      errorExamples: errors.slice(0, 5),
      unfinishedCancelled: unfinished.length,
      unfinishedStates: unfinished.reduce((m, s) => ({ ...m, [s]: (m[s] ?? 0) + 1 }), {}),
      window,
      maxInFlight,
      budgetSeconds: budgetMs / 1000,
      wallSeconds: round(wallS, 2),
      spanSeconds: round(spanS, 2),
      polls,
      deployToCompletedMs: stats(steps.map((s) => s.ended - s.sent)),
      deployToRunningMs: stats(steps.filter((s) => s.running !== undefined).map((s) => s.running - s.sent)),
      splitsMs: splitStats(steps),
      rounds,
      declinesInLastRound: declines,
      byProvider,
      cpu: cpu_,
      messages: netDelta(net0, net1),
      cpuSecondsPerDeal: cpu_ ? { nodes: round(nodeCpuS / recs.length, 3), runners: round(runnerCpuS / recs.length, 3) } : null,
    },
  };
}

function throughputNotes(d) {
  const c = d.cpu;
  return [
    `${round(d.completed / d.spanSeconds, 2)} deals/s: ${d.completed} deals completed of ${d.jobs} deployed in ${d.budgetSeconds} s (${d.failed} failed, ${d.errors} errors, ${d.unfinishedCancelled} unfinished ${TPUT_GRACE_MS / 1000} s later and cancelled${d.unfinishedCancelled ? `: ${Object.entries(d.unfinishedStates).map(([k, v]) => `${v} ${k}`).join(', ')}` : ''}); span to the last completion ${d.spanSeconds} s; up to ${d.window} in flight (max seen ${d.maxInFlight}), ${d.jobCpu} cpu + ${JOB_MEMORY / MiB} MiB each; providers: ${Object.entries(d.byProvider).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `rounds: ${Object.entries(d.rounds).map(([k, v]) => `${v} in ${k}`).join(', ')}; declines in the deals' last rounds: ${Object.entries(d.declinesInLastRound).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`,
    `deploy -> completed ms under load: p50 ${d.deployToCompletedMs.p50}, p99 ${d.deployToCompletedMs.p99}; where it goes (p50 ms): ${splitLine(d.splitsMs)}`,
    c
      ? `CPU during the run (cores busy, of ${c.cores}): machine ${c.coresBusy}; ${Object.entries(c.perProcessCores).map(([k, v]) => `${k} ${v.node} (main thread ${v.mainThread})${v.runners ? ` +${v.runners} runners` : ''}`).join(', ')}; this bench process ${c.benchProcessCores}; CPU-s per completed deal: nodes ${d.cpuSecondsPerDeal.nodes}, WASM runners ${d.cpuSecondsPerDeal.runners}`
      : 'CPU: /proc not readable here',
    `envelopes during the run (in/out, broadcast in/out, rejected by reason): ${Object.entries(d.messages).map(([k, m]) => `${k} ${m.in}/${m.out}, ${m.broadcastIn}/${m.broadcastOut}${m.rejectedTotal ? `, rejected ${Object.entries(m.rejected).map(([r, n]) => `${r} ${n}`).join(' ')}` : ''}`).join('; ')}`,
  ];
}

async function benchThroughput() {
  let cl;
  let peers = [];
  const prof = process.env.DEALS_BENCH_PROF;
  try {
    const t0 = performance.now();
    [cl, peers] = await Promise.all([startCluster('tput', 3, prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []), rawPair()]);
    const { providers } = cl;
    // one requester with 64 deals in flight is what this measures: each provider may hold that many of its bids
    // (its default, 8, is what a stranger gets; the flood bench and the soak keep it)
    for (const n of providers) {
      const prefs = await n.api('GET', '/v1/preferences');
      await n.api('PUT', '/v1/preferences', { ...prefs, provider: { ...prefs.provider, maxLocksPerRequester: TPUT_WINDOW } });
    }
    note(`deals: 4 nodes and 2 raw peers up in ${round((performance.now() - t0) / 1000, 1)} s`);
    const { body, job, bytes } = await helloJob(JOB_CPU);
    const { lastId } = await warmUp(cl.a, body);
    const pollCost = lastId ? await getCost(cl.a, `/v1/jobs/${lastId}`) : null;
    const [p, q] = peers;
    const sizes = await dealFrameBytes(p, q.peerId, job, bytes.byteLength);
    const meanBytes = Math.round((sizes.bidRequest + sizes.commit + sizes.allocate + sizes.status) / 4);

    // ours: the job as specified (JOB_CPU), then a job asking a tenth of that, so the providers' capability does not
    // bind (64 in flight, each bidding on all 3 providers: 6.4 of 1 cpu locked at most); then raw
    const runs = [];
    const phases = [['warm-up', 0]];
    for (const [i, cpu] of [JOB_CPU, JOB_CPU / 10].entries()) {
      note(`deals: throughput with ${cpu} cpu per job`);
      phases.push([`run${i}`, Date.now()]);
      runs.push(await throughputRun(cl, cpu, TPUT_JOBS, TPUT_WINDOW, TPUT_BUDGET_MS));
    }
    await sleep(500); // cancelled deals settle

    // raw: the same count of exchanges (4 per completed deal; at least 1000 for a stable figure), the same number
    // in flight, on one raw libp2p stream
    await p.call('rawPipelined', { addr: q.addr, n: 1000, bytes: meanBytes, window: TPUT_WINDOW });
    const raws = [];
    for (const r of runs) {
      const rr = await p.call('rawPipelined', { addr: q.addr, n: Math.max(1000, r.completed * 4), bytes: meanBytes, window: TPUT_WINDOW });
      raws.push({ exchanges: rr.done, ms: round(rr.ms), exchangesPerSecond: round(rr.done / (rr.ms / 1000)), dealsPerSecond: rr.done / (rr.ms / 1000) / 4, frameBytes: meanBytes, window: TPUT_WINDOW });
    }

    // no double-booking: stop the nodes, then replay each provider's Node actor from its journal
    const stops = await stopNodes(cl.all);
    const unclean = stops.filter((s) => s.code !== 0).map((s) => `${s.name}: ${s.code ?? s.signal}`);
    const ledgers = {};
    for (const n of providers) ledgers[n.name] = await checkLedger(n.dir, phases);
    const bidsBack = await Promise.all(runs.map((_, i) => bidTimings(cl.a.dir, phases[i + 1][1], phases[i + 2]?.[1] ?? Infinity)));
    const violations = Object.values(ledgers).reduce((s, l) => s + l.violations, 0);
    const doubleBooking = {
      method: "replay of each provider's Node actor from its journal after a clean stop (both runs); locked + allocated <= registered (cpu, memory) after every event",
      violations,
      ledgers,
    };
    const bidLine = (phase) => `bid requests at the providers (broadcast sent -> stamped at the node inbox, ms; what the Node did): ${Object.entries(ledgers).map(([k, l]) => { const b = l.bidRequests[phase]; return `${k} p50 ${b.sentToNodeInboxMs.p50}, p99 ${b.sentToNodeInboxMs.p99}, max ${b.sentToNodeInboxMs.max}: ${Object.entries(b.decisions).map(([d, n]) => `${d} ${n}`).join(', ')}`; }).join('; ')}`;
    const bookingLine = `double-booking (both runs): ${violations === 0 ? 'none' : `${violations} VIOLATIONS`}; replayed ${Object.entries(ledgers).map(([k, l]) => `${k} ${l.events} events, peak locked+allocated ${l.peak.cpu}/${l.registered?.cpu} cpu, ${l.maxLocksAtOnce} locks at most`).join('; ')}`;
    const error = violations > 0 ? `double-booking: ${violations} events left locked + allocated above registered (first: ${JSON.stringify(Object.values(ledgers).find((l) => l.first)?.first)})` : undefined;
    return runs.map((r, i) => {
      const raw = raws[i];
      const small = i > 0;
      return {
        id: small ? 'deal-throughput-small' : 'deal-throughput',
        name: `deal throughput: completed deals/s (deploy -> completed), 4 nodes (A asks, B, C and D bid), up to ${TPUT_JOBS} tiny WASM jobs of ${r.detail.jobCpu} cpu${small ? ' (so capability does not bind)' : ''}, ${TPUT_WINDOW} in flight, deploying for ${TPUT_BUDGET_MS / 1000} s vs raw: request/response exchanges (4 a deal) pipelined on one raw libp2p stream, as deals/s`,
        unit: 'deals/s',
        ours: round(r.rate, 1),
        raw: round(raw.dealsPerSecond),
        ratio: round(r.rate / raw.dealsPerSecond, 4),
        targets: [{ kind: 'ours', min: 200 }],
        ...(error ? { error } : {}),
        detail: { ...r.detail, raw, doubleBooking, bidsBack: bidsBack[i], pollCost, uncleanStops: unclean },
        notes: [
          ...throughputNotes(r.detail),
          ...(pollCost?.nodeCpuMs ? [`the client's polls: ${r.detail.polls} GET /v1/jobs/:id in ${round(r.detail.wallSeconds, 1)} s (${round(r.detail.polls / r.detail.wallSeconds)}/s); one costs A ~${pollCost.nodeCpuMs} CPU-ms (measured idle on an ended job), so ~${round((r.detail.polls * pollCost.nodeCpuMs) / 1000 / r.detail.wallSeconds, 2)} of A's cores went to answering them`] : []),
          `raw: ${raw.exchanges} request/response exchanges (${meanBytes}-byte frames, echoed, ${TPUT_WINDOW} outstanding) on one raw libp2p stream in ${raw.ms} ms: ${raw.exchangesPerSecond} exchanges/s = ${round(raw.dealsPerSecond)} deals/s at 4 exchanges a deal`,
          bidLine(`run${i}`),
          `bids ${bidTimingLine(bidsBack[i])}`,
          bookingLine,
          ...(unclean.length ? [`WARNING: SIGTERM did not end every node with exit 0: ${unclean.join(', ')}`] : []),
        ],
      };
    });
  } finally {
    await Promise.all([cl ? stopNodes(cl.all) : null, stopPeers(peers)]);
  }
}

/** For investigations (scratch scripts): the cluster and deploy helpers. */
export { bidTimings, helloJob, startCluster, startDms, stopNodes, stepsOf, untilEnded, warmUp };

/** [id, fn] pairs for run.mjs; each fn resolves to an array of results. */
export const dealBenches = [
  ['deal-latency', benchLatency],
  ['deal-throughput', benchThroughput],
];

// ---------------------------------------------------------------------------------------------- standalone

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const jsonFile = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
  const watchdog = guard(300_000, 'deals bench');
  const started = performance.now();
  const loadBefore = os.loadavg()[0];
  const results = [];
  try {
    for (const [id, fn] of dealBenches) if (!only || id === only) await step(results, 'bench', id, fn, cleanup);
  } finally {
    killNetPeers();
    await cleanup();
  }
  const report = { ...reportHead('dms-runtime deals bench', started), loadAverage1m: loadAverage(loadBefore), ok: results.every((r) => !r.error && r.pass !== false), results };
  process.stdout.write(`\n${table(results, (r) => r.notes ?? [])}\n\ntotal ${report.totalSeconds} s on ${report.cpus} cores, Node ${report.node}; 1-minute load average ${report.loadAverage1m.before} before, ${report.loadAverage1m.after} after\n`);
  if (jsonFile) await writeFile(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  clearTimeout(watchdog);
  process.exit(results.some((r) => r.error) ? 1 : 0);
}
