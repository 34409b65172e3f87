// Real mesh: as many real `node runtime/main.js run` processes as one machine allows, on loopback, meshed through
// bootstrap + peer exchange + gossipsub, then deals and an ensemble; prints figures and writes them as JSON.
//
//   npm run sim:real -- [--nodes 50] [--timeout-s 600] [--mem-limit 12GiB] [--jobs 40] [--json FILE] [...]
//   node scripts/real-mesh.mjs --help
//
// What it does, in order:
//  1. Starts N nodes (own temp data dir under os.tmpdir(), API and libp2p on 127.0.0.1 only, port 0), BATCH at a
//     time. Node 0 has no bootstrap; every later node bootstraps to one or two nodes of earlier batches: a recent
//     one (among the last WINDOW started) and, from node 2 on, one at random (seeded, --seed), so nodes must find
//     most of the network through peer exchange and gossip. The bootstrap graph is written to the JSON.
//  2. Mesh time: from the last ready line until every node has K DMS peers connected and subscribed to the bid
//     topic (GET /v1/info `reach`; K = min(6, N-1), gossipsub's mesh degree D). Then, bounded, until every node
//     has settled (connected to min(N-1, max-peers) DMS peers, or no change for a while).
//  3. RSS of each node (VmRSS of /proc/<pid>/status) once meshed, and each node's CPU over an idle window.
//  4. Deals: M tiny WASM task jobs (runtime/executors/examples hello.wat, 0.1 cpu, 32 MiB) deployed through the
//     API (POST /v1/deploy, what `deploy FILE` sends) from R requesters, C in flight; per job deploy sent ->
//     `running` (the requester's history entry; same machine clock) and deploy sent -> completed (`endedAt`).
//     Then one 3-part ensemble like the e2e test's (kv service + client task reading it through a tunnel, both
//     process executor, plus a WASM hello task), its placement time (deploy -> every part placed) and whether it
//     ran (client completed exit 0, kv running healthy, hello completed); then it is cancelled.
//  5. Fan-out: each node's connected peers / DMS peers / peers subscribed to the bid topic (GET /v1/info reach,
//     GET /v1/peers), and how far each bid request went: bids + declines per job (latest round, GET /v1/jobs/:id;
//     capped by the requester's enoughBids = 3), across the network bid requests received / sent (GET /metrics
//     dms_bid_requests_total) during the deals, and, for P probe jobs deployed alone, the nodes whose received
//     counter grew (exactly the nodes that one bid request reached) and those that bid.
//  6. A human summary on stdout and every figure as JSON (--json, default test/artifacts/real-mesh.json).
//
// Bounds: a wall-clock limit (--timeout-s) after which everything is killed and the script exits 1; every 2 s the
// RSS of the node processes (this script's children) summed against --mem-limit (--mem-scope all: with their
// descendants too, WASM runners and process jobs), and the machine's MemAvailable against --min-available; past
// either: stop, report, exit 1. Every node runs in its own process group; on exit, error, SIGINT/SIGTERM/SIGHUP
// every group (and every descendant's group: WASM runners, process jobs) is killed and the temp dirs removed, and
// a detached reaper process does both should this script itself be SIGKILLed.
//
// The nodes run from a copy of the compiled code taken at the start (runtime, machines, actors, dashboard/dist;
// node_modules linked), so a `tsc` run in the work tree meanwhile cannot hand a starting node half-written modules
// (--no-snapshot runs the work tree itself). No new dependencies: node builtins, plus the repo's own example-module
// compiler (runtime/executors/examples/examples.js).
//
// Note on `running`: a provider reports a WASM job running once its runner process is there; on a loaded machine a
// requester's first job on a provider then waits for that runner to boot, so deploy -> completed is the end-to-end
// figure, and deploy -> running mostly the negotiation.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Where the nodes' code is run from: the work tree, or (default) a snapshot of its compiled files (see snapshotCode). */
let CODE = ROOT;
const mainJs = () => path.join(CODE, 'runtime', 'main.js');
const examplesJs = () => path.join(CODE, 'runtime', 'executors', 'examples', 'examples.js');
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

// ---------------------------------------------------------------------------------------------- arguments

const HELP = `usage: node scripts/real-mesh.mjs [options]   (npm run sim:real -- [options])
  --nodes N              nodes to start (default 50)
  --batch N              nodes started at once (default 4)
  --timeout-s S          whole-run wall-clock limit; past it everything is killed, exit 1 (default 600)
  --mem-limit SIZE       most summed RSS of the node processes, e.g. 12GiB or 12884901888 (default 12GiB)
  --mem-scope nodes|all  what --mem-limit sums: the node processes (default) or all of ours (with WASM runners, jobs)
  --min-available SIZE   stop when the machine's MemAvailable falls under this (default 2GiB)
  --jobs M               tiny WASM task jobs to deploy (default 40); 0 skips the deals
  --requesters R         nodes that deploy them (default 3)
  --concurrency C        jobs in flight at once, over all requesters (default 4)
  --probes P             jobs deployed alone to count the nodes each bid request reaches (default 3)
  --no-ensemble          skip the ensemble
  --seed S               seed of the bootstrap choice (default 1)
  --bootstrap-window W   a node's first bootstrap is among the last W nodes started before its batch (default 4)
  --mesh-timeout-s S     most to wait for every node to reach K peers (default 180)
  --settle-s S           most to wait after that for the peer counts to settle (default 60)
  --idle-s S             idle window for the per-node CPU figure (default 10)
  --bid-window D         passed to every node (default: the node's own, 2s)
  --max-peers N          passed to every node (default: the node's own, 50)
  --executors LIST       passed to every node (default wasm,process: the ensemble's kv and client are processes)
  --json FILE            where the figures go (default test/artifacts/real-mesh.json)
  --keep-dirs            keep the nodes' data dirs (printed) instead of removing them
  --no-snapshot          run the nodes from the work tree itself, not from a copy of its compiled files taken at
                         the start (the copy keeps a \`tsc\` run meanwhile from changing the code under nodes mid-run)
`;

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      nodes: { type: 'string', default: '50' },
      batch: { type: 'string', default: '4' },
      'timeout-s': { type: 'string', default: '600' },
      'mem-limit': { type: 'string', default: '12GiB' },
      'mem-scope': { type: 'string', default: 'nodes' },
      'min-available': { type: 'string', default: '2GiB' },
      jobs: { type: 'string', default: '40' },
      requesters: { type: 'string', default: '3' },
      concurrency: { type: 'string', default: '4' },
      probes: { type: 'string', default: '3' },
      'no-ensemble': { type: 'boolean', default: false },
      seed: { type: 'string', default: '1' },
      'bootstrap-window': { type: 'string', default: '4' },
      'mesh-timeout-s': { type: 'string', default: '180' },
      'settle-s': { type: 'string', default: '60' },
      'idle-s': { type: 'string', default: '10' },
      'bid-window': { type: 'string' },
      'max-peers': { type: 'string' },
      executors: { type: 'string', default: 'wasm,process' },
      json: { type: 'string', default: path.join('test', 'artifacts', 'real-mesh.json') },
      'keep-dirs': { type: 'boolean', default: false },
      'no-snapshot': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  }));
} catch (e) {
  process.stderr.write(`real-mesh: ${e.message}\n${HELP}`);
  process.exit(2);
}
if (args.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

function intArg(name, min, max = Number.MAX_SAFE_INTEGER) {
  const v = Number(args[name]);
  if (!Number.isInteger(v) || v < min || v > max) {
    process.stderr.write(`real-mesh: --${name} ${args[name]}: give a whole number from ${min} to ${max}\n`);
    process.exit(2);
  }
  return v;
}
function sizeArg(name) {
  const m = /^(\d+(?:\.\d+)?)\s*(b|kib|mib|gib|tib|kb|mb|gb|tb)?$/i.exec(String(args[name]).trim());
  const mult = { b: 1, kib: 1024, mib: MiB, gib: GiB, tib: 1024 * GiB, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12 };
  if (!m) {
    process.stderr.write(`real-mesh: --${name} ${args[name]}: give a size such as 12GiB or a number of bytes\n`);
    process.exit(2);
  }
  return Math.round(Number(m[1]) * mult[(m[2] ?? 'b').toLowerCase()]);
}

const N = intArg('nodes', 2, 500);
const BATCH = intArg('batch', 1, 64);
const TIMEOUT_MS = intArg('timeout-s', 10) * 1000;
const MEM_LIMIT = sizeArg('mem-limit');
const MIN_AVAILABLE = sizeArg('min-available');
const MEM_SCOPE = args['mem-scope'];
if (!['nodes', 'all'].includes(MEM_SCOPE)) {
  process.stderr.write(`real-mesh: --mem-scope ${MEM_SCOPE}: give nodes or all\n`);
  process.exit(2);
}
const M = intArg('jobs', 0, 100_000);
const R = Math.min(intArg('requesters', 1), N);
const CONCURRENCY = intArg('concurrency', 1, 256);
const PROBES = intArg('probes', 0, 100);
const SEED = intArg('seed', 0);
const BOOT_WINDOW = intArg('bootstrap-window', 1);
const MESH_TIMEOUT_MS = intArg('mesh-timeout-s', 1) * 1000;
const SETTLE_MS = intArg('settle-s', 0) * 1000;
const IDLE_MS = intArg('idle-s', 0) * 1000;
const MAX_PEERS = args['max-peers'] === undefined ? 50 : intArg('max-peers', 1, 150);
const K = Math.min(6, N - 1);
/** How often ready nodes are asked for their peer counts while the others start. */
const JOIN_POLL_MS = 1000;
const JSON_FILE = path.resolve(ROOT, args.json);
const NODE_FLAGS = [
  '--executors', args.executors,
  ...(args['bid-window'] ? ['--bid-window', args['bid-window']] : []),
  ...(args['max-peers'] ? ['--max-peers', args['max-peers']] : []),
];

// ---------------------------------------------------------------------------------------------- small helpers

const T0 = performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (x, d = 0) => (x === null || x === undefined || Number.isNaN(x) ? null : Math.round(x * 10 ** d) / 10 ** d);
const since = (t) => performance.now() - t;
const log = (msg) => process.stderr.write(`[${(since(T0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
/** Nearest rank: the smallest value with at least p of the values at or below it. */
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(p * s.length) - 1)];
};
function dist(xs, d = 0) {
  if (!xs.length) return { n: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const med = s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { n: s.length, min: round(s[0], d), p50: round(med, d), p99: round(pct(s, 0.99), d), max: round(s.at(-1), d), mean: round(s.reduce((a, b) => a + b, 0) / s.length, d), sum: round(s.reduce((a, b) => a + b, 0), d) };
}
const fmtMiB = (b) => `${(b / MiB).toFixed(0)} MiB`;
/** A small seeded PRNG (mulberry32), so the same --seed gives the same bootstrap graph. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
/** Runs fn over items, at most `limit` at once. */
async function pool(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }));
  return out;
}

// ---------------------------------------------------------------------------------------------- processes

/** Every node started: { i, child, pid, dir, ready, api, stderrTail, ... }. */
const nodes = [];
const tempDirs = new Set();
/** Process groups seen under our nodes (WASM runners, process jobs run detached in groups of their own). */
const descendantGroups = new Set();
let reaper;
/** This script's own process group: never signalled. */
const OWN_PGRP = (() => {
  try {
    const s = readFileSync('/proc/self/stat', 'utf8');
    return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[2]);
  } catch {
    return process.pid;
  }
})();

/** The pid, ppid, process group and RSS (bytes) of every process, from /proc/<pid>/stat (sync: usable at exit). */
function scanProcs() {
  const out = [];
  let names = [];
  try {
    names = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const p of names) {
    if (p.charCodeAt(0) < 48 || p.charCodeAt(0) > 57) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${p}/stat`, 'utf8');
    } catch {
      continue;
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.push({ pid: Number(p), ppid: Number(f[1]), pgrp: Number(f[2]), rss: Number(f[21]) * 4096, utime: Number(f[11]), stime: Number(f[12]) });
  }
  return out;
}

/** Our nodes and everything under them: { procs (pid -> proc), groups (pgids) }. */
function ourTree(procs = scanProcs()) {
  const byParent = new Map();
  for (const p of procs) {
    if (!byParent.has(p.ppid)) byParent.set(p.ppid, []);
    byParent.get(p.ppid).push(p);
  }
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const mine = new Map();
  const stack = nodes.filter((n) => n?.alive).map((n) => n.pid);
  while (stack.length) {
    const pid = stack.pop();
    const p = byPid.get(pid);
    if (!p || mine.has(pid)) continue;
    mine.set(pid, p);
    for (const c of byParent.get(pid) ?? []) stack.push(c.pid);
  }
  // a detached descendant whose node died is found through its group
  for (const p of procs) if (descendantGroups.has(p.pgrp) && !mine.has(p.pid)) mine.set(p.pid, p);
  const groups = new Set([...mine.values()].map((p) => p.pgrp));
  return { procs: mine, groups };
}

function rememberGroups(groups) {
  for (const g of groups) {
    if (g === process.pid || g === OWN_PGRP || nodes.some((n) => n?.pid === g)) continue;
    if (!descendantGroups.has(g)) {
      descendantGroups.add(g);
      reaperSend(`+ ${g}`);
    }
  }
}

/** Kills every process group of ours with `signal` (sync). */
function killGroups(signal) {
  let tree;
  try {
    tree = ourTree();
  } catch {
    tree = { groups: new Set() };
  }
  const groups = new Set(tree.groups);
  for (const n of nodes) if (n?.alive) groups.add(n.pid);
  groups.delete(process.pid);
  groups.delete(OWN_PGRP);
  for (const g of groups) {
    try {
      process.kill(-g, signal);
    } catch {
      // gone already
    }
  }
  return groups.size;
}

function startReaper() {
  // Holds our stdin pipe; when it closes (this script ended in any way, even SIGKILL) it kills every group named.
  const src = `const g=new Set(),dirs=new Set();let b='';for(const s of ['SIGINT','SIGTERM','SIGHUP'])process.on(s,()=>{});
process.stdin.setEncoding('utf8');process.stdin.on('data',d=>{b+=d;const l=b.split('\\n');b=l.pop();for(const x of l){const o=x[0],v=x.slice(2);if(o==='+')g.add(+v);else if(o==='-')g.delete(+v);else if(o==='d')dirs.add(v);else if(o==='r')dirs.delete(v)}});
let ended=false;const end=()=>{if(ended)return;ended=true;for(const p of g){try{process.kill(-p,'SIGKILL')}catch{}}
setTimeout(()=>{for(const d of dirs){try{require('fs').rmSync(d,{recursive:true,force:true})}catch{}}process.exit(0)},1000)};process.stdin.on('end',end);process.stdin.on('error',end);`;
  reaper = spawn(process.execPath, ['-e', src], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
  reaper.stdin.on('error', () => {});
  reaper.unref();
  reaper.stdin.unref?.();
}
function reaperSend(line) {
  try {
    reaper?.stdin.write(`${line}\n`);
  } catch {
    // the reaper is gone: our own cleanup still runs
  }
}

/** The environment without DMS_* settings, so a developer's own node configuration never reaches these nodes. */
function cleanEnv() {
  const env = { ...process.env, NO_COLOR: '1' };
  for (const k of Object.keys(env)) if (k.startsWith('DMS_')) delete env[k];
  return env;
}

/** A tiny API client for one node: (method, route, body?) -> parsed JSON (or text for /metrics). */
function apiClient(url, token) {
  return async (method, route, body, timeoutMs = 30_000) => {
    const res = await fetch(`${url}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${route}: HTTP ${res.status}: ${text.slice(0, 300)}`);
    if (route === '/metrics') return text;
    return text ? JSON.parse(text) : undefined;
  };
}

/** Starts node i bootstrapped to `boot` (indices of ready nodes); resolves at its ready line. */
async function startNode(i, boot) {
  const dir = await mkdtemp(path.join(os.tmpdir(), `dms-real-mesh-${i}-`));
  tempDirs.add(dir);
  if (!args['keep-dirs']) reaperSend(`d ${dir}`);
  const bootstrap = boot.map((j) => nodes[j].ready.listen.find((a) => a.startsWith('/ip4/127.0.0.1/')) ?? nodes[j].ready.listen[0]);
  const argv = [mainJs(), 'run', '--data-dir', dir, '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0/ws', '--json', ...NODE_FLAGS, ...bootstrap.flatMap((b) => ['--bootstrap', b])];
  const t = performance.now();
  const child = spawn(process.execPath, argv, { cwd: CODE, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const node = { i, dir, child, pid: child.pid, boot, bootstrap, alive: true, spawnedAt: t, stderrTail: '', warnLines: 0, errorLines: 0 };
  nodes[i] = node;
  reaperSend(`+ ${child.pid}`);
  child.once('exit', (code, signal) => {
    node.alive = false;
    node.exit = { code, signal };
    if (!stopping) failures.push(`node ${i} (pid ${child.pid}) exited (${code ?? signal}) during the run; stderr: ${node.stderrTail.slice(-600)}`);
  });
  child.stderr.setEncoding('utf8').on('data', (d) => {
    node.stderrTail = (node.stderrTail + d).slice(-4000);
    node.warnLines += (d.match(/"level":(40|"warn")/g) ?? []).length;
    node.errorLines += (d.match(/"level":(50|60|"error"|"fatal")/g) ?? []).length;
  });
  const ready = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => done(new Error(`node ${i}: no ready line within 120 s; stderr: ${node.stderrTail.slice(-800)}`)), 120_000);
    const onExit = (code, signal) => done(new Error(`node ${i}: exited (${code ?? signal}) before it was ready; stderr: ${node.stderrTail.slice(-800)}`));
    const done = (err, v) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(v);
    };
    child.once('exit', onExit);
    child.stdout.setEncoding('utf8').on('data', (d) => {
      out += d;
      const lines = out.split('\n');
      out = lines.pop();
      for (const line of lines) {
        try {
          const m = JSON.parse(line);
          if (m?.event === 'ready') return done(null, m);
        } catch {
          // not the ready line
        }
      }
    });
  });
  child.stdout.resume();
  node.readyAt = performance.now();
  node.readyMs = node.readyAt - t;
  node.ready = ready;
  node.peerId = ready.peerId;
  for (const a of ready.listen) if (!/^\/ip4\/127\.0\.0\.1\//.test(a)) failures.push(`node ${i} listens on a non-loopback address ${a}`);
  if (!/^http:\/\/127\.0\.0\.1:/.test(ready.api)) throw new Error(`node ${i}: API not on loopback: ${ready.api}`);
  const token = (await readFile(path.join(dir, 'api.token'), 'utf8')).trim();
  node.api = apiClient(ready.api, token);
  return node;
}

// ---------------------------------------------------------------------------------------------- cleanup and bounds

let stopping = false;
const failures = [];
let report = null;

async function stopAll(graceMs) {
  stopping = true;
  const live = nodes.filter((n) => n?.alive);
  if (live.length) log(`stopping ${live.length} nodes (SIGTERM, SIGKILL after ${graceMs / 1000} s)`);
  rememberGroups(ourTree().groups);
  killGroups('SIGTERM');
  const deadline = performance.now() + graceMs;
  while (nodes.some((n) => n?.alive) && performance.now() < deadline) await sleep(100);
  const stubborn = nodes.filter((n) => n?.alive).length;
  killGroups('SIGKILL');
  // anything left in a group of ours (a runner whose node is gone)
  for (let k = 0; k < 20 && ourTree().procs.size > 0; k += 1) {
    killGroups('SIGKILL');
    await sleep(100);
  }
  if (!args['keep-dirs']) for (const d of tempDirs) await rm(d, { recursive: true, force: true }).then(() => reaperSend(`r ${d}`)).catch(() => {});
  else if (tempDirs.size) log(`kept ${tempDirs.size} data dirs: ${[...tempDirs].slice(0, 3).join(', ')} ...`);
  return { sigkilled: stubborn, exits: nodes.filter(Boolean).map((n) => n.exit?.code ?? n.exit?.signal ?? null) };
}

let finishing = false;
/** Ends the run: stop everything, write what there is, exit. */
async function finish(code, why) {
  if (finishing) return;
  finishing = true;
  if (why) {
    failures.push(why);
    log(`ABORT: ${why}`);
  }
  let stops = null;
  try {
    stops = await stopAll(why ? 3_000 : 15_000);
  } catch (e) {
    failures.push(`cleanup: ${e.message}`);
    killGroups('SIGKILL');
  }
  try {
    report ??= {};
    report.topology ??= { partial: true, n: nodes.filter(Boolean).length, batch: BATCH, seed: SEED, nodes: nodes.filter(Boolean).map((n) => ({ i: n.i, peerId: n.peerId ?? null, bootstrap: n.boot, ready: n.ready !== undefined })) };
    report.memory = memReport();
    report.nodeLogs ??= { warnLines: dist(nodes.filter(Boolean).map((n) => n.warnLines)), errorLines: dist(nodes.filter(Boolean).map((n) => n.errorLines)) };
    report.failures = failures;
    report.aborted = why ?? null;
    report.stop = stops ? { sigkilledAfterGrace: stops.sigkilled, exitCodes: countBy(stops.exits.map(String)) } : null;
    report.wallSeconds = round(since(T0) / 1000, 1);
    report.ok = code === 0 && failures.length === 0;
    await mkdir(path.dirname(JSON_FILE), { recursive: true });
    await writeFile(JSON_FILE, `${JSON.stringify(report, null, 2)}\n`);
    log(`figures written to ${path.relative(process.cwd(), JSON_FILE) || JSON_FILE}`);
  } catch (e) {
    process.stderr.write(`real-mesh: could not write ${JSON_FILE}: ${e.message}\n`);
  }
  log(`done in ${(since(T0) / 1000).toFixed(1)} s, exit ${code}`);
  process.exit(code);
}

const countBy = (xs) => xs.reduce((m, x) => ((m[x] = (m[x] ?? 0) + 1), m), {});

process.on('exit', () => {
  // last resort, synchronous: nothing of ours outlives this process
  try {
    killGroups('SIGKILL');
  } catch {
    // nothing more to do
  }
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => void finish(130, `got ${sig}`));
process.on('uncaughtException', (e) => void finish(1, `uncaught: ${e.stack ?? e.message}`));
process.on('unhandledRejection', (e) => void finish(1, `unhandled rejection: ${e?.stack ?? e}`));

const watchdog = setTimeout(() => void finish(1, `wall-clock limit of ${TIMEOUT_MS / 1000} s reached (--timeout-s)`), TIMEOUT_MS);
watchdog.unref();

const memWatch = { nodesPeak: 0, nodesPeakAt: 0, treePeak: 0, treePeakAt: 0, treeProcsPeak: 0, descendantsPeak: 0, minAvailable: Infinity, minAvailableAt: 0 };
const memAvailable = () => {
  try {
    return Number(/MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]) * 1024;
  } catch {
    return null;
  }
};
const memReport = () => ({
  scope: MEM_SCOPE,
  limitMiB: round(MEM_LIMIT / MiB, 0),
  minAvailableMiB: round(MIN_AVAILABLE / MiB, 0),
  nodesRssPeakMiB: round(memWatch.nodesPeak / MiB, 0),
  nodesRssPeakAtS: memWatch.nodesPeakAt,
  allRssPeakMiB: round(memWatch.treePeak / MiB, 0),
  allRssPeakAtS: memWatch.treePeakAt,
  allProcsPeak: memWatch.treeProcsPeak,
  descendantsPeak: memWatch.descendantsPeak,
  machineMemAvailableMinMiB: Number.isFinite(memWatch.minAvailable) ? round(memWatch.minAvailable / MiB, 0) : null,
  machineMemAvailableMinAtS: memWatch.minAvailableAt,
  note: 'RSS counts shared pages (the node binary, libraries) in every process, so sums overstate what the processes take together; see rss.perNodePssMiB',
});
const memTimer = setInterval(() => {
  if (finishing) return;
  const procs = scanProcs();
  const tree = ourTree(procs);
  rememberGroups(tree.groups);
  // groups with no process left are forgotten (the reaper must never signal a pid reused by someone else)
  const live = new Set(procs.map((p) => p.pgrp));
  for (const g of descendantGroups) if (!live.has(g)) (descendantGroups.delete(g), reaperSend(`- ${g}`));
  for (const n of nodes) if (n && !n.alive && !n.forgotten && !live.has(n.pid)) (n.forgotten = true, reaperSend(`- ${n.pid}`));
  const nodePids = new Set(nodes.filter((n) => n?.alive).map((n) => n.pid));
  let all = 0;
  let ofNodes = 0;
  for (const p of tree.procs.values()) {
    all += p.rss;
    if (nodePids.has(p.pid)) ofNodes += p.rss;
  }
  const t = round(since(T0) / 1000, 1);
  if (ofNodes > memWatch.nodesPeak) Object.assign(memWatch, { nodesPeak: ofNodes, nodesPeakAt: t });
  if (all > memWatch.treePeak) Object.assign(memWatch, { treePeak: all, treePeakAt: t, treeProcsPeak: tree.procs.size });
  memWatch.descendantsPeak = Math.max(memWatch.descendantsPeak, tree.procs.size - nodePids.size);
  const avail = memAvailable();
  if (avail !== null && avail < memWatch.minAvailable) Object.assign(memWatch, { minAvailable: avail, minAvailableAt: t });
  const sum = MEM_SCOPE === 'all' ? all : ofNodes;
  if (sum > MEM_LIMIT) void finish(1, `summed RSS of ${MEM_SCOPE === 'all' ? 'all our processes' : 'the node processes'} ${fmtMiB(sum)} is over --mem-limit ${fmtMiB(MEM_LIMIT)} (all ours: ${fmtMiB(all)} in ${tree.procs.size} processes)`);
  else if (avail !== null && avail < MIN_AVAILABLE) void finish(1, `the machine's MemAvailable ${fmtMiB(avail)} is under --min-available ${fmtMiB(MIN_AVAILABLE)} (our processes: ${fmtMiB(all)} RSS in ${tree.procs.size})`);
}, 2_000);
memTimer.unref();

// ---------------------------------------------------------------------------------------------- readers

const vmRss = async (pid) => {
  try {
    const s = await readFile(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(s)?.[1]) * 1024;
  } catch {
    return null;
  }
};
/** Proportional set size (shared pages split between their users), from /proc/<pid>/smaps_rollup. */
const pssOf = async (pid) => {
  try {
    const s = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
    return Number(/^Pss:\s+(\d+)/m.exec(s)?.[1]) * 1024;
  } catch {
    return null;
  }
};
const cpuTicks = async (pid) => {
  try {
    const s = await readFile(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return null;
  }
};

/** Sums of Prometheus samples by `name{labels}` (only the metrics we read). */
function parseMetrics(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    if (!/^dms_(bid_requests_total|bids_total|envelopes_total|peers|jobs_total|envelopes_rejected_total)\b/.test(line)) continue;
    const sp = line.lastIndexOf(' ');
    out[line.slice(0, sp)] = Number(line.slice(sp + 1));
  }
  return out;
}
const metricsOf = (n) => n.api('GET', '/metrics').then(parseMetrics).catch(() => ({}));
const sumMetric = (all, key) => all.reduce((a, m) => a + (m[key] ?? 0), 0);

const byPeer = () => new Map(nodes.map((n) => [n.peerId, n.i]));

// ---------------------------------------------------------------------------------------------- code snapshot

function gitHead() {
  try {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n').filter(Boolean).length;
    return { head, modifiedTrackedFiles: dirty };
  } catch {
    return null;
  }
}

/** Newest mtime (ms) and count of the files under the code dirs of the work tree. */
async function codeStamp() {
  let newest = 0;
  let files = 0;
  const walk = async (d) => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else {
        const st = await stat(p).catch(() => null);
        if (st) {
          newest = Math.max(newest, st.mtimeMs);
          files += 1;
        }
      }
    }
  };
  for (const d of CODE_DIRS) await walk(path.join(ROOT, d));
  return { newest, files };
}
const CODE_DIRS = ['runtime', 'machines', 'actors', path.join('dashboard', 'dist')];

/**
 * Copies the compiled tree (runtime, machines, actors, dashboard/dist, package.json; node_modules linked) to a
 * temp dir, so every node runs the same code even if someone rebuilds the work tree meanwhile (a node started
 * during a \`tsc\` run can load half-written modules). Retried while files change under the copy.
 */
async function snapshotCode() {
  for (let attempt = 1; attempt <= 10; attempt += 1) {
    const before = await codeStamp();
    if (Date.now() - before.newest < 3_000) {
      log(`code snapshot: files changed ${Math.round(Date.now() - before.newest)} ms ago (a build running?); waiting`);
      await sleep(3_000);
      continue;
    }
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dms-real-mesh-code-'));
    tempDirs.add(dir);
    reaperSend(`d ${dir}`);
    for (const d of CODE_DIRS) await cp(path.join(ROOT, d), path.join(dir, d), { recursive: true, filter: (src) => !src.endsWith('.ts') });
    await cp(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
    await symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    const after = await codeStamp();
    if (after.newest === before.newest && after.files === before.files) return dir;
    log(`code snapshot: files changed during the copy (attempt ${attempt}); again`);
    await rm(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
    await sleep(3_000);
  }
  throw new Error('could not take a stable copy of the compiled code: it kept changing (a build in a loop?); try again, or --no-snapshot');
}

// ---------------------------------------------------------------------------------------------- the run

async function main() {
  startReaper();
  if (!args['no-snapshot']) {
    CODE = await snapshotCode();
    log(`nodes run from a copy of the compiled code: ${CODE}`);
  }
  report = {
    what: 'real-mesh: N real `node runtime/main.js run` processes on loopback, meshed, then deals and an ensemble',
    command: `node scripts/real-mesh.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    at: new Date().toISOString(),
    machine: { cpus: os.availableParallelism(), memoryGiB: round(os.totalmem() / GiB, 1), node: process.version, platform: `${os.platform()} ${os.release()}`, loadavg1mBefore: round(os.loadavg()[0], 2) },
    code: { snapshot: CODE !== ROOT, from: ROOT, ranFrom: CODE, gitHead: gitHead() },
    params: { nodes: N, batch: BATCH, seed: SEED, bootstrapWindow: BOOT_WINDOW, k: K, jobs: M, requesters: R, concurrency: CONCURRENCY, memLimitBytes: MEM_LIMIT, memScope: MEM_SCOPE, minAvailableBytes: MIN_AVAILABLE, timeoutS: TIMEOUT_MS / 1000, nodeFlags: NODE_FLAGS, maxPeers: MAX_PEERS },
  };

  // every node is polled from its ready line until it has K DMS peers subscribed (kAt) and min(N-1, max-peers) (fullAt)
  const fullWant = Math.min(N - 1, MAX_PEERS);
  const pollJoin = (list) =>
    pool(list, 10, async (n) => {
      try {
        const x = await n.api('GET', '/v1/info', undefined, 10_000);
        const at = performance.now();
        const r = x.reach;
        if (r && r.connected >= K && r.subscribed >= K && n.kAt === undefined) n.kAt = at;
        if (r && r.connected >= fullWant && r.subscribed >= fullWant && n.fullAt === undefined) n.fullAt = at;
        return { reach: r, peers: x.peers };
      } catch (e) {
        return { error: e.message };
      }
    });
  const joinPoller = { stop: false };
  joinPoller.done = (async () => {
    while (!joinPoller.stop && !finishing) {
      const t = performance.now();
      await pollJoin(nodes.filter((n) => n?.api && (n.kAt === undefined || n.fullAt === undefined)));
      await sleep(Math.max(100, JOIN_POLL_MS - since(t)));
    }
  })();

  // ---- 1. start the nodes in batches, each bootstrapped to one or two nodes of earlier batches
  const rand = prng(SEED);
  const plan = [];
  log(`starting ${N} nodes, ${BATCH} at a time (K = ${K})`);
  const tStart = performance.now();
  for (let b = 0; b < N; b += BATCH) {
    const batch = [];
    for (let i = b; i < Math.min(N, b + BATCH); i += 1) {
      const boot = [];
      if (i > 0) {
        const ready = b === 0 ? 0 : b; // nodes 0..ready-1 are up (node 0 starts alone)
        const avail = Math.max(1, ready);
        boot.push(avail - 1 - Math.floor(rand() * Math.min(BOOT_WINDOW, avail))); // a recent one
        const other = Math.floor(rand() * avail); // and one anywhere
        if (i >= 2 && !boot.includes(other)) boot.push(other);
      }
      plan[i] = boot;
      batch.push(i);
    }
    // node 0 starts alone: the first batch's others need its address
    if (b === 0 && batch.length > 1) {
      await startNode(0, []);
      await Promise.all(batch.slice(1).map((i) => startNode(i, plan[i])));
    } else await Promise.all(batch.map((i) => startNode(i, plan[i])));
    if (finishing) return;
    log(`  ${Math.min(N, b + BATCH)}/${N} ready (last batch ${batch.map((i) => Math.round(nodes[i].readyMs)).join(', ')} ms to ready)`);
  }
  const tReady = performance.now();
  report.topology = {
    n: N,
    k: K,
    description: 'node i (i >= 1) started with --bootstrap to the nodes in `bootstrap` (indices); node 0 with none; nodes started in batches of `batch`, a batch only bootstrapping to nodes of earlier batches',
    batch: BATCH,
    seed: SEED,
    nodes: nodes.map((n) => ({ i: n.i, peerId: n.peerId, bootstrap: n.boot, batch: Math.floor(n.i / BATCH) })),
    bootstrapEdges: nodes.flatMap((n) => n.boot.map((j) => [n.i, j])),
  };
  report.ready = {
    allReadyS: round((tReady - tStart) / 1000, 2),
    perNodeSpawnToReadyMs: dist(nodes.map((n) => n.readyMs)),
  };
  log(`all ${N} ready in ${report.ready.allReadyS} s (spawn -> ready line per node: p50 ${report.ready.perNodeSpawnToReadyMs.p50} ms, max ${report.ready.perNodeSpawnToReadyMs.max} ms)`);

  // ---- 2. mesh time: every node has K DMS peers subscribed to the bid topic
  joinPoller.stop = true;
  await joinPoller.done;
  let meshedAt = null;
  let last = [];
  const tMesh0 = performance.now();
  for (;;) {
    last = await pollJoin(nodes);
    if (nodes.every((n) => n.kAt !== undefined)) {
      meshedAt = Math.max(...nodes.map((n) => n.kAt));
      break;
    }
    if (since(tMesh0) > MESH_TIMEOUT_MS || finishing) break;
    await sleep(500);
  }
  if (finishing) return;
  const short = last.flatMap((r, i) => (nodes[i].kAt === undefined ? [`#${i} ${JSON.stringify(r.reach ?? r.error)}`] : []));
  if (meshedAt === null) failures.push(`not meshed within ${MESH_TIMEOUT_MS / 1000} s: ${short.length} nodes short of ${K}: ${short.slice(0, 8).join('; ')}`);
  const meshedS = meshedAt === null ? null : Math.max(0, meshedAt - tReady) / 1000;
  log(meshedAt === null ? `NOT meshed after ${MESH_TIMEOUT_MS / 1000} s (${short.length} short)` : `every node has >= ${K} DMS peers subscribed to the bid topic ${round(meshedS, 2)} s after the last ready line (${round((meshedAt - tStart) / 1000, 2)} s after the first spawn)`);

  // settle: every node connected to min(N-1, max-peers) DMS peers, or the counts stop changing for 10 s
  let settledAt = null;
  let settleHow = 'timeout';
  let prevKey = '';
  let sameSince = performance.now();
  const tSettle0 = performance.now();
  while (SETTLE_MS > 0 && !finishing) {
    if (nodes.every((n) => n.fullAt !== undefined)) {
      settleHow = `every node connected to ${fullWant} DMS peers`;
      settledAt = Math.max(...nodes.map((n) => n.fullAt));
      break;
    }
    const key = last.map((r) => `${r.reach?.connected}/${r.reach?.subscribed}`).join(',');
    if (key !== prevKey) {
      prevKey = key;
      sameSince = performance.now();
    } else if (since(sameSince) > 10_000) {
      settleHow = 'peer counts unchanged for 10 s';
      settledAt = sameSince;
      break;
    }
    if (since(tSettle0) > SETTLE_MS) break;
    await sleep(1000);
    last = await pollJoin(nodes);
  }
  if (finishing) return;
  const rel = (xs, d = 2) => dist(xs.filter((x) => x !== null && x !== undefined && !Number.isNaN(x)).map((x) => x / 1000), d);
  report.mesh = {
    definition: `mesh: every node's GET /v1/info reach has connected >= K and subscribed >= K (DMS peers connected, and of them subscribed to the bid topic; K = min(6, N-1) = ${K}, gossipsub's mesh degree D); each node polled from its ready line (every ${JOIN_POLL_MS} ms while nodes start, then every 500 ms); times have that resolution`,
    meshedAfterLastReadyS: round(meshedS, 2),
    meshedAfterFirstSpawnS: meshedAt === null ? null : round((meshedAt - tStart) / 1000, 2),
    perNodeReadyToKS: rel(nodes.map((n) => (n.kAt === undefined ? null : n.kAt - n.readyAt))),
    settle: {
      definition: `every node connected to min(N-1, max-peers) = ${fullWant} DMS peers (all subscribed), else the per-node counts unchanged for 10 s; bounded by --settle-s`,
      how: settleHow,
      afterLastReadyS: settledAt === null ? null : round(Math.max(0, settledAt - tReady) / 1000, 2),
      fullWant,
      nodesFull: nodes.filter((n) => n.fullAt !== undefined).length,
      perNodeReadyToFullS: rel(nodes.map((n) => (n.fullAt === undefined ? null : n.fullAt - n.readyAt))),
    },
    perNode: nodes.map((n) => ({ i: n.i, readyToKMs: n.kAt === undefined ? null : round(n.kAt - n.readyAt), readyToFullMs: n.fullAt === undefined ? null : round(n.fullAt - n.readyAt) })),
    shortOfK: short,
  };
  log(`settled: ${settleHow}${settledAt !== null ? ` (${report.mesh.settle.afterLastReadyS} s after last ready)` : ''}; ${report.mesh.settle.nodesFull}/${N} nodes connected to ${fullWant}; ready -> K peers per node p50 ${report.mesh.perNodeReadyToKS.p50} s, max ${report.mesh.perNodeReadyToKS.max} s`);

  // ---- 3 + 5a. RSS, fan-out and idle CPU once meshed
  const rss = await Promise.all(nodes.map((n) => vmRss(n.pid)));
  const rssOk = rss.filter((x) => x !== null);
  const pss = (await Promise.all(nodes.map((n) => pssOf(n.pid)))).filter((x) => x !== null);
  const tree = ourTree();
  let treeSum = 0;
  for (const p of tree.procs.values()) treeSum += p.rss;
  report.rss = {
    when: 'once meshed and settled, before any deal',
    perNodeMiB: dist(rssOk.map((b) => b / MiB), 1),
    perNodePssMiB: dist(pss.map((b) => b / MiB), 1),
    sumMiB: round(rssOk.reduce((a, b) => a + b, 0) / MiB, 0),
    treeSumMiB: round(treeSum / MiB, 0),
    treeProcs: tree.procs.size,
    perNode: rss.map((b) => round(b / MiB, 1)),
  };
  log(`RSS per node: min ${report.rss.perNodeMiB.min}, median ${report.rss.perNodeMiB.p50}, max ${report.rss.perNodeMiB.max} MiB; sum ${report.rss.sumMiB} MiB`);

  const [infos, peerLists] = await Promise.all([
    pool(nodes, 10, (n) => n.api('GET', '/v1/info').catch((e) => ({ error: e.message }))),
    pool(nodes, 10, (n) => n.api('GET', '/v1/peers').catch(() => [])),
  ]);
  const idx = byPeer();
  const edges = new Set();
  for (const [i, list] of peerLists.entries()) for (const p of list) if (idx.has(p.peer)) edges.add([i, idx.get(p.peer)].sort((a, b) => a - b).join('-'));
  const asym = [];
  for (const [i, list] of peerLists.entries()) for (const p of list) {
    const j = idx.get(p.peer);
    if (j !== undefined && !peerLists[j].some((q) => q.peer === nodes[i].peerId)) asym.push(`${i}->${j}`);
  }
  report.fanout = {
    definition: 'per node, once meshed: connections (GET /v1/info peers), DMS peers connected (reach.connected), of them subscribed to the bid topic (reach.subscribed: a broadcast reaches them in one hop), nodes beyond (reach.beyond: known through neighbours, reached only through the gossip mesh); gossipsub mesh membership itself is not exposed by the API (its target degree D is 6)',
    connections: dist(infos.map((x) => x.peers ?? 0)),
    dmsConnected: dist(infos.map((x) => x.reach?.connected ?? 0)),
    subscribed: dist(infos.map((x) => x.reach?.subscribed ?? 0)),
    beyond: dist(infos.map((x) => x.reach?.beyond ?? 0)),
    peersRows: dist(peerLists.map((l) => l.length)),
    inbound: dist(peerLists.map((l) => l.filter((p) => p.direction === 'inbound').length)),
    outbound: dist(peerLists.map((l) => l.filter((p) => p.direction === 'outbound').length)),
    rttMs: dist(peerLists.flatMap((l) => l.map((p) => p.rttMs ?? p.rtt).filter((x) => typeof x === 'number')), 2),
    graph: { undirectedEdges: edges.size, completeGraphEdges: (N * (N - 1)) / 2, oneSided: asym.length, edges: [...edges].map((e) => e.split('-').map(Number)) },
  };
  log(`fan-out: DMS peers per node min ${report.fanout.dmsConnected.min}, median ${report.fanout.dmsConnected.p50}, max ${report.fanout.dmsConnected.max}; subscribed median ${report.fanout.subscribed.p50}; beyond max ${report.fanout.beyond.max}; ${edges.size} of ${report.fanout.graph.completeGraphEdges} possible links`);

  if (IDLE_MS > 0) {
    const m0 = await pool(nodes, 10, metricsOf);
    const c0 = await Promise.all(nodes.map((n) => cpuTicks(n.pid)));
    const l0 = performance.now();
    await sleep(IDLE_MS);
    const c1 = await Promise.all(nodes.map((n) => cpuTicks(n.pid)));
    const secs = since(l0) / 1000;
    const m1 = await pool(nodes, 10, metricsOf);
    const pctCpu = c1.map((x, i) => (x !== null && c0[i] !== null ? ((x - c0[i]) / 100 / secs) * 100 : null)).filter((x) => x !== null);
    const envIn = m1.map((m, i) => ((m['dms_envelopes_total{direction="in"}'] ?? 0) - (m0[i]['dms_envelopes_total{direction="in"}'] ?? 0)) / secs);
    report.idle = {
      windowS: round(secs, 1),
      cpuPercentPerNode: dist(pctCpu, 2),
      cpuPercentSum: round(pctCpu.reduce((a, b) => a + b, 0), 1),
      envelopesInPerSecondPerNode: dist(envIn, 2),
      loadavg1m: round(os.loadavg()[0], 2),
    };
    log(`idle ${round(secs, 1)} s: CPU per node median ${report.idle.cpuPercentPerNode.p50}%, max ${report.idle.cpuPercentPerNode.max}%, all nodes ${report.idle.cpuPercentSum}% of one core; envelopes in per node ${report.idle.envelopesInPerSecondPerNode.p50}/s`);
  }

  // ---- 4. deals
  const { exampleModule } = await import(examplesJs());
  const bytes = await exampleModule('hello');
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const moduleB64 = Buffer.from(bytes).toString('base64');
  const noConstraints = () => ({ peers: [], excludePeers: [] });
  const helloJob = (k) => ({
    name: `hello-${k}`,
    executor: 'wasm',
    wasm: { module: { sha256, size: bytes.byteLength }, args: [`job-${k}`], env: {} },
    resources: { cpu: 0.1, memory: 32 * MiB, disk: 0, gpus: 0 },
    timeoutMs: 60_000,
    constraints: noConstraints(),
  });
  // requesters spread over the start order: the last node, then others evenly (never only node 0)
  const requesters = Array.from({ length: R }, (_, r) => N - 1 - Math.floor((r * N) / R)).filter((v, i, a) => a.indexOf(v) === i);
  const TERMINAL = ['completed', 'failed', 'cancelled'];
  if (M > 0 && !finishing) {
    log(`deals: ${M} hello.wasm jobs from requesters ${requesters.join(', ')}, ${CONCURRENCY} in flight`);
    const mBefore = await pool(nodes, 10, metricsOf);
    const jobs = [];
    let next = 0;
    const tDeals = performance.now();
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, M) }, async () => {
      while (next < M && !finishing) {
        const k = next++;
        const rq = nodes[requesters[k % requesters.length]];
        const j = { k, requester: rq.i, state: 'error' };
        jobs.push(j);
        try {
          const sentAt = Date.now();
          const t = performance.now();
          const { id } = await rq.api('POST', '/v1/deploy', { job: helloJob(k), module: moduleB64 });
          j.id = id;
          j.apiMs = round(since(t), 1);
          let rec;
          for (;;) {
            await sleep(100);
            try {
              rec = await rq.api('GET', `/v1/jobs/${id}`);
            } catch (e) {
              // a node starved of CPU may answer late: ask again, until the job's own deadline is long past
              j.pollErrors = (j.pollErrors ?? 0) + 1;
              j.lastPollError = e.message.slice(0, 120);
              if (finishing) throw e;
            }
            if (rec && TERMINAL.includes(rec.state)) break;
            if (since(t) > 120_000) {
              await rq.api('POST', `/v1/jobs/${id}/cancel`).catch(() => {});
              throw new Error(`still ${rec?.state} after 120 s: ${rec?.message}`);
            }
          }
          const running = rec.history.find((e) => e.state === 'running')?.at;
          Object.assign(j, {
            state: rec.state,
            exitCode: rec.exitCode,
            message: rec.state === 'completed' ? undefined : rec.message,
            provider: idx.get(rec.provider) ?? rec.provider,
            rounds: rec.rounds,
            bids: rec.bids?.length ?? 0,
            declines: rec.declines?.length ?? 0,
            declineCodes: countBy((rec.declines ?? []).map((d) => d.code)),
            toRunningMs: running !== undefined ? running - sentAt : null,
            toCompletedMs: rec.state === 'completed' && rec.endedAt ? rec.endedAt - sentAt : null,
            createdToRunningMs: running !== undefined ? running - rec.createdAt : null,
            commitTimeouts: rec.history.filter((h) => /did not answer the commit/.test(h.message)).length,
            history: rec.history.map((h) => [h.at - sentAt, h.state, String(h.message).slice(0, 140)]),
          });
          const slow = rec.state !== 'completed' || (j.toCompletedMs ?? 0) > 20_000;
          const prov = nodes.find((n) => n.peerId === rec.provider);
          if (slow && prov) {
            // what the provider and the job's own output say about a slow or failed run
            if (prov.stderrTail) j.providerStderrTail = prov.stderrTail.slice(-1500);
            const out = await rq.api('GET', `/v1/logs/${id}`).catch((e) => ({ error: e.message }));
            j.output = JSON.stringify(out?.chunks ?? out).slice(0, 400);
            const allocs = await prov.api('GET', '/v1/allocations').catch(() => []);
            const a = (Array.isArray(allocs) ? allocs : allocs?.allocations ?? []).find((x) => x.id === rec.allocationId || String(x.id).startsWith(id));
            if (a) j.providerAllocation = { state: a.state, exitCode: a.exitCode, message: a.message, createdAt: a.createdAt - sentAt, endedAt: a.endedAt ? a.endedAt - sentAt : null, runEndedAt: a.runEndedAt ? a.runEndedAt - sentAt : null };
          }
        } catch (e) {
          j.message = e.message.slice(0, 300);
        }
      }
    }));
    const dealsS = since(tDeals) / 1000;
    const mAfter = await pool(nodes, 10, metricsOf);
    const d = (key) => sumMetric(mAfter, key) - sumMetric(mBefore, key);
    const sent = d('dms_bid_requests_total{role="sent"}');
    const received = d('dms_bid_requests_total{role="received"}');
    const done = jobs.filter((j) => j.state === 'completed');
    const perJobReach = jobs.filter((j) => j.bids !== undefined).map((j) => j.bids + j.declines);
    report.deals = {
      definition: 'hello.wasm (0.1 cpu, 32 MiB) deployed with POST /v1/deploy { job, module } (what `deploy FILE` sends); latency from just before the POST to the requester\'s history entry `running` (toRunning, same machine clock) and to the record\'s endedAt (toCompleted)',
      requesters,
      concurrency: CONCURRENCY,
      deployed: jobs.length,
      outcomes: countBy(jobs.map((j) => j.state)),
      completed: done.length,
      wallS: round(dealsS, 1),
      completedPerS: round(done.length / dealsS, 2),
      toRunningMs: dist(jobs.map((j) => j.toRunningMs).filter((x) => typeof x === 'number')),
      toCompletedMs: dist(jobs.map((j) => j.toCompletedMs).filter((x) => typeof x === 'number')),
      createdToRunningMs: dist(jobs.map((j) => j.createdToRunningMs).filter((x) => typeof x === 'number')),
      rounds: countBy(jobs.map((j) => String(j.rounds))),
      commitTimeouts: { definition: 'history entries "did not answer the commit within 3 s" (a provider that bid but was too slow to confirm)', total: jobs.reduce((a, j) => a + (j.commitTimeouts ?? 0), 0), jobsWithOne: jobs.filter((j) => j.commitTimeouts > 0).length },
      providers: { distinct: new Set(done.map((j) => j.provider)).size, jobsPerProvider: countBy(done.map((j) => String(j.provider))) },
      reachPerJob: { definition: 'bids + declines in the job record\'s latest round: the requester closes the window at enoughBids (3) bids, so this is capped at 3 + declines; see bidRequests and bidReach for how far the request went', ...dist(perJobReach) },
      bidRequests: { sent, receivedNetworkWide: received, receivedPerSent: sent ? round(received / sent, 2) : null, bidsSent: d('dms_bids_total{role="sent"}'), bidsReceived: d('dms_bids_total{role="received"}') },
      declineCodes: countBy(jobs.flatMap((j) => Object.entries(j.declineCodes ?? {}).flatMap(([c, n]) => Array(n).fill(c)))),
      jobs,
    };
    const dl = report.deals;
    log(`deals: ${dl.completed}/${M} completed in ${dl.wallS} s; deploy -> running p50 ${dl.toRunningMs.p50} ms, p99 ${dl.toRunningMs.p99} ms; -> completed p50 ${dl.toCompletedMs.p50} ms, p99 ${dl.toCompletedMs.p99} ms`);
    log(`deals: each bid request answered by ${dl.reachPerJob.p50} nodes (median; min ${dl.reachPerJob.min}); received/sent network-wide ${dl.bidRequests.receivedPerSent}; ${dl.providers.distinct} distinct providers`);
    if (dl.completed < M) failures.push(`deals: ${dl.completed} of ${M} completed: ${JSON.stringify(dl.outcomes)}; first: ${jobs.find((j) => j.state !== 'completed')?.message}`);
  }

  // ---- 5b. how far one bid request goes: jobs deployed alone, each node's dms_bid_requests_total{role="received"} diffed
  if (PROBES > 0 && !finishing) {
    const probes = [];
    for (let p = 0; p < PROBES && !finishing; p += 1) {
      const rq = nodes[requesters[p % requesters.length]];
      const pr = { requester: rq.i };
      try {
        const before = await pool(nodes, 10, metricsOf);
        const sentAt = Date.now();
        const t = performance.now();
        const { id } = await rq.api('POST', '/v1/deploy', { job: helloJob(`probe-${p}`), module: moduleB64 });
        let rec;
        for (;;) {
          await sleep(100);
          rec = await rq.api('GET', `/v1/jobs/${id}`);
          if (TERMINAL.includes(rec.state)) break;
          if (since(t) > 60_000) throw new Error(`still ${rec.state} after 60 s`);
        }
        await sleep(1000); // late answers and relays
        const after = await pool(nodes, 10, metricsOf);
        const delta = (i, key) => (after[i][key] ?? 0) - (before[i][key] ?? 0);
        const reached = nodes.filter((n) => n.i !== rq.i && delta(n.i, 'dms_bid_requests_total{role="received"}') > 0).map((n) => n.i);
        const bidders = nodes.filter((n) => n.i !== rq.i && delta(n.i, 'dms_bids_total{role="sent"}') > 0).length;
        const running = rec.history.find((e) => e.state === 'running')?.at;
        Object.assign(pr, { state: rec.state, rounds: rec.rounds, requestsSent: delta(rq.i, 'dms_bid_requests_total{role="sent"}'), nodesReached: reached.length, of: N - 1, notReached: nodes.filter((n) => n.i !== rq.i && !reached.includes(n.i)).map((n) => n.i), nodesThatBid: bidders, bidsTaken: rec.bids?.length ?? 0, declines: rec.declines?.length ?? 0, toRunningMs: running !== undefined ? running - sentAt : null });
      } catch (e) {
        pr.error = e.message.slice(0, 300);
      }
      probes.push(pr);
    }
    report.bidReach = {
      definition: 'one job deployed alone at a time; nodes reached = nodes (other than the requester) whose dms_bid_requests_total{role="received"} grew; nodesThatBid = those whose dms_bids_total{role="sent"} grew; the requester takes the first enoughBids (3) bids and closes the window, so a job record lists at most 3 bids',
      probes,
      nodesReached: dist(probes.filter((p) => p.nodesReached !== undefined).map((p) => p.nodesReached)),
    };
    log(`bid reach: ${probes.map((p) => (p.error ? `error ${p.error.slice(0, 80)}` : `${p.nodesReached}/${p.of} reached, ${p.nodesThatBid} bid (round ${p.rounds})`)).join('; ')}`);
    for (const p of probes) if (p.error || p.nodesReached < N - 1) failures.push(`bid reach probe from node ${p.requester}: ${p.error ?? `reached ${p.nodesReached} of ${N - 1} (missed ${p.notReached.join(', ')})`}`);
  }

  // ---- 4b. the ensemble: kv service + client task reading it through a tunnel (process), + a WASM hello task
  if (!args['no-ensemble'] && !finishing) {
    const rq = nodes[requesters[0]];
    const KV_JS = "const http=require('http');const t0=Date.now();http.createServer((q,s)=>{if(q.url==='/health'){s.statusCode=Date.now()-t0>300?200:503;return s.end('ok')}s.end('value-42')}).listen(+process.env.DMS_PORT_HTTP,'127.0.0.1')";
    const CLIENT_JS = "const [h,p]=process.env.DMS_ADDR_KV_HTTP.split(':');require('http').get({host:h,port:+p,path:'/get'},r=>{let t='';r.on('data',d=>t+=d);r.on('end',()=>console.log('client got '+t))}).on('error',e=>{console.error(String(e));process.exit(3)})";
    const part = (name, o) => ({ name, type: 'task', ports: [], restart: 'never', dependsOn: [], constraints: noConstraints(), ...o });
    const ensemble = {
      name: 'real-mesh-kv',
      timeoutMs: 120_000,
      recovery: 'one_for_one',
      maxRestarts: { count: 5, withinMs: 60_000 },
      constraints: noConstraints(),
      parts: [
        part('kv', { type: 'service', executor: 'process', process: { command: process.execPath, args: ['-e', KV_JS], env: {} }, resources: { cpu: 0.2, memory: 64 * MiB, disk: 0, gpus: 0 }, ports: ['http'], healthcheck: { http: { port: 'http', path: '/health' }, intervalMs: 200, retries: 3 }, restart: 'on-failure' }),
        part('client', { executor: 'process', process: { command: process.execPath, args: ['-e', CLIENT_JS], env: {} }, resources: { cpu: 0.2, memory: 64 * MiB, disk: 0, gpus: 0 }, dependsOn: ['kv'] }),
        part('hello', { executor: 'wasm', wasm: { module: { sha256, size: bytes.byteLength }, args: ['ensemble'], env: {} }, resources: { cpu: 0.1, memory: 32 * MiB, disk: 0, gpus: 0 } }),
      ],
    };
    log(`ensemble: kv (service) + client (task, dependsOn kv) + hello (wasm task) from node ${rq.i}`);
    const e = { requester: rq.i, parts: ['kv', 'client', 'hello'] };
    try {
      const sentAt = Date.now();
      const t = performance.now();
      const { id } = await rq.api('POST', '/v1/deploy', { ensemble, modules: { [sha256]: moduleB64 } });
      e.id = id;
      let rec;
      const up = (r) => {
        const p = Object.fromEntries(r.parts.map((x) => [x.name, x]));
        return p.kv?.state === 'running' && p.kv?.healthy === true && ['completed', 'failed'].includes(p.client?.state) && ['completed', 'failed'].includes(p.hello?.state);
      };
      for (;;) {
        await sleep(100);
        rec = await rq.api('GET', `/v1/jobs/${id}`);
        if (TERMINAL.includes(rec.state) || up(rec)) break;
        if (since(t) > 90_000) throw new Error(`not up after 90 s: ${rec.state}: ${rec.message}`);
      }
      const placed = rec.history.find((h) => h.state && h.state !== 'requesting')?.at;
      const logs = await rq.api('GET', `/v1/logs/${id}?part=client`).catch(() => null);
      Object.assign(e, {
        state: rec.state,
        message: rec.message,
        ran: rec.parts.every((p) => (p.type === 'service' ? p.state === 'running' && p.healthy : p.state === 'completed' && p.exitCode === 0)),
        toPlacedMs: placed !== undefined ? placed - sentAt : null,
        toStartedMs: rec.startedAt ? rec.startedAt - sentAt : null,
        toTasksEndedMs: since(t) < 90_000 ? round(since(t)) : null,
        parts: rec.parts.map((p) => ({ name: p.name, type: p.type, state: p.state, provider: idx.get(p.provider) ?? p.provider, exitCode: p.exitCode, healthy: p.healthy, restarts: p.restarts })),
        distinctProviders: new Set(rec.parts.map((p) => p.provider)).size,
        clientOutput: typeof logs === 'object' && logs ? JSON.stringify(logs).slice(0, 200) : null,
        history: rec.history.map((h) => ({ at: h.at - sentAt, state: h.state, message: String(h.message).slice(0, 160) })),
      });
      await rq.api('POST', `/v1/jobs/${id}/cancel`).catch((err) => (e.cancelError = err.message));
      const tc = performance.now();
      for (;;) {
        await sleep(200);
        const r = await rq.api('GET', `/v1/jobs/${id}`);
        if (TERMINAL.includes(r.state)) {
          e.afterCancel = r.state;
          e.cancelToEndedMs = round(since(tc));
          break;
        }
        if (since(tc) > 30_000) {
          e.afterCancel = `still ${r.state} 30 s after cancel`;
          break;
        }
      }
    } catch (err) {
      e.state = 'error';
      e.message = err.message.slice(0, 400);
      e.ran = false;
    }
    report.ensemble = e;
    log(`ensemble: ${e.ran ? 'ran' : 'DID NOT RUN'} (${e.state}: ${String(e.message).slice(0, 120)}); placed ${e.toPlacedMs} ms, every part up ${e.toStartedMs} ms after deploy; parts on ${(e.parts ?? []).map((p) => `${p.name}@${p.provider}`).join(', ')}; after cancel: ${e.afterCancel}`);
    if (!e.ran) failures.push(`ensemble did not run: ${e.state}: ${e.message}`);
  }

  // ---- end state
  const rssEnd = await Promise.all(nodes.map((n) => vmRss(n.pid)));
  report.rssAfterDealsMiB = dist(rssEnd.filter((x) => x !== null).map((b) => b / MiB), 1);
  report.memory = memReport();
  report.nodeLogs = { warnLines: dist(nodes.map((n) => n.warnLines)), errorLines: dist(nodes.map((n) => n.errorLines)) };
  report.machine.loadavg1mAfter = round(os.loadavg()[0], 2);
  summary();
  await finish(failures.length ? 1 : 0);
}

function summary() {
  const r = report;
  const L = [];
  L.push('');
  L.push(`real mesh: ${N} nodes on loopback (${r.machine.cpus} cores, ${r.machine.memoryGiB} GiB, Node ${r.machine.node}); bootstrap: each node to ${N > 2 ? '1-2' : '1'} earlier nodes (seed ${SEED}), batches of ${BATCH}`);
  L.push(`  ready      all ${N} in ${r.ready.allReadyS} s; spawn -> ready line per node p50 ${r.ready.perNodeSpawnToReadyMs.p50} ms, max ${r.ready.perNodeSpawnToReadyMs.max} ms`);
  if (r.mesh) {
    L.push(`  mesh       every node >= ${K} DMS peers subscribed: ${r.mesh.meshedAfterLastReadyS ?? 'NOT REACHED'} s after the last ready line (${r.mesh.meshedAfterFirstSpawnS ?? '-'} s after the first spawn); per node ready -> K peers p50 ${r.mesh.perNodeReadyToKS.p50} s, max ${r.mesh.perNodeReadyToKS.max} s`);
    L.push(`             settled (${r.mesh.settle.how}) ${r.mesh.settle.afterLastReadyS ?? '-'} s after the last ready line; ${r.mesh.settle.nodesFull}/${N} nodes reached ${r.mesh.settle.fullWant} DMS peers (per node ready -> that p50 ${r.mesh.settle.perNodeReadyToFullS.p50 ?? '-'} s, max ${r.mesh.settle.perNodeReadyToFullS.max ?? '-'} s)`);
  }
  if (r.rss) L.push(`  RSS/node   min ${r.rss.perNodeMiB.min}  median ${r.rss.perNodeMiB.p50}  max ${r.rss.perNodeMiB.max} MiB (PSS median ${r.rss.perNodePssMiB?.p50} MiB); sum ${r.rss.sumMiB} MiB; after the deals median ${r.rssAfterDealsMiB?.p50 ?? '-'} MiB`);
  if (r.memory) L.push(`  memory     peaks: node processes ${r.memory.nodesRssPeakMiB} MiB RSS; with WASM runners and jobs ${r.memory.allRssPeakMiB} MiB in ${r.memory.allProcsPeak} processes; machine MemAvailable low ${r.memory.machineMemAvailableMinMiB} MiB`);
  if (r.idle) L.push(`  idle CPU   per node median ${r.idle.cpuPercentPerNode.p50}%, max ${r.idle.cpuPercentPerNode.max}%; all nodes ${r.idle.cpuPercentSum}% of a core; envelopes in ${r.idle.envelopesInPerSecondPerNode.p50}/s per node`);
  if (r.fanout) L.push(`  fan-out    DMS peers per node min ${r.fanout.dmsConnected.min}  median ${r.fanout.dmsConnected.p50}  max ${r.fanout.dmsConnected.max}; subscribed median ${r.fanout.subscribed.p50}; beyond max ${r.fanout.beyond.max}; links ${r.fanout.graph.undirectedEdges}/${r.fanout.graph.completeGraphEdges}`);
  if (r.deals) {
    const d = r.deals;
    L.push(`  deals      ${d.completed}/${d.deployed} completed (${JSON.stringify(d.outcomes)}) in ${d.wallS} s, ${d.concurrency} in flight from ${d.requesters.length} requesters, ${d.providers.distinct} providers`);
    L.push(`             deploy -> running   p50 ${d.toRunningMs.p50} ms  p99 ${d.toRunningMs.p99} ms  (max ${d.toRunningMs.max})`);
    L.push(`             deploy -> completed p50 ${d.toCompletedMs.p50} ms  p99 ${d.toCompletedMs.p99} ms  (max ${d.toCompletedMs.max}); rounds ${JSON.stringify(d.rounds)}`);
    L.push(`             commit timeouts (a bidder too slow to confirm): ${d.commitTimeouts.total} in ${d.commitTimeouts.jobsWithOne} jobs`);
    L.push(`             bid request reach: bids+declines per job p50 ${d.reachPerJob.p50} (min ${d.reachPerJob.min}, max ${d.reachPerJob.max}); received/sent network-wide ${d.bidRequests.receivedPerSent}`);
  }
  if (r.bidReach) L.push(`  bid reach  a job deployed alone: its bid request reached ${r.bidReach.probes.map((p) => (p.error ? 'error' : `${p.nodesReached}/${p.of}`)).join(', ')} nodes (${r.bidReach.probes.map((p) => p.nodesThatBid ?? '-').join(', ')} bid)`);
  if (r.ensemble) {
    const e = r.ensemble;
    L.push(`  ensemble   ${e.ran ? 'ran' : 'DID NOT RUN'}: ${e.state}; placed ${e.toPlacedMs} ms, every part up ${e.toStartedMs} ms after deploy; ${(e.parts ?? []).map((p) => `${p.name}@node${p.provider} ${p.state}`).join(', ')}; cancel -> ${e.afterCancel}`);
  }
  if (failures.length) L.push(`  FAILURES   ${failures.length}: ${failures.map((f) => f.slice(0, 200)).join(' | ')}`);
  L.push(`  total      ${(since(T0) / 1000).toFixed(1)} s`);
  process.stdout.write(`${L.join('\n')}\n`);
}

main().catch((e) => void finish(1, `error: ${e.stack ?? e.message}`));
