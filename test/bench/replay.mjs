// Debugging by replay (issue 16): `replay --list` and `replay --deal` on a 1M-event log.
//   replay-list-1m      `node runtime/main.js replay --list --json` on a data dir whose journal holds 1M Node events
//                       (built as store.mjs builds the restart-1m dir) and a real deal (run by `demo --keep`, its
//                       requester's records spliced onto the end of that journal), spawn to exit, vs the raw floor: a
//                       `node` process reading the same segment files end to end with fs (4 MB reads, no parsing).
//                       Target: under 2 s.
//   replay-deal-1m      `replay --deal JOB --json` across that requester dir and the demo's two provider dirs, vs
//                       reading the three dirs' segment files end to end.
//   replay-*-1m-rss     peak resident memory (VmHWM, from process.resourceUsage().maxRSS at exit) of the same runs:
//                       the reader streams, so it should stay far below the 200 MB the journal takes on disk.
// Standalone: `npm run build && node test/bench/replay.mjs [--json FILE] [--events N] [--runs N]`; from run.mjs:
// `replayBenches` gives [id, fn] pairs, each fn resolving to an array of rows in run.mjs's shape.
// Loads the compiled JS next to the .ts sources. Bounded: a watchdog ends the run (and everything it started).
import { appendFile, copyFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { MAIN_JS, alternate, cleanups, exited, isMain, jsonLine, kill, median, msRow, note, root, round, runStandalone, spawnTracked, tempDir, withTimeout } from './common.mjs';

const STORE_BENCH = path.join(root, 'test', 'bench', 'store.mjs');
const args = process.argv.slice(2);
const opt = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const EVENTS = Number(opt('--events') ?? 1_000_000);
const RUNS = Number(opt('--runs') ?? 5);
const LIST_TARGET_MS = 2000;
/** Prints the process's peak RSS (kB) on stderr at exit, for both sides alike. */
const PRELOAD = 'data:text/javascript,process.on("exit",()=>process.stderr.write("\\nmaxrss "+process.resourceUsage().maxRSS+"\\n"))';
/** The raw floor: every file given read end to end, 4 MB at a time, nothing parsed. */
const RAW_READ = "const fs=require('fs');const b=Buffer.allocUnsafe(4<<20);let n=0;for(const f of process.argv.slice(1)){const fd=fs.openSync(f,'r');let r;while((r=fs.readSync(fd,b,0,b.length,null))>0)n+=r;fs.closeSync(fd)}console.log(n)";

/** `node --import PRELOAD ...argv` to its exit: wall ms from spawn, peak RSS in MB, and its output. */
async function timed(argv, what) {
  const t0 = performance.now();
  const child = spawnTracked(['--import', PRELOAD, ...argv]);
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  const r = await withTimeout(exited(child), 60_000, what);
  const ms = performance.now() - t0;
  if (r.code !== 0) throw new Error(`${what} exited ${r.code ?? r.signal}: ${err.trim().slice(-600)}`);
  const kb = Number(/maxrss (\d+)/.exec(err)?.[1] ?? NaN);
  return { ms, rssMb: round(kb / 1024, 1), out, err };
}

async function segmentFiles(dir) {
  const j = path.join(dir, 'journal');
  return (await readdir(j)).filter((n) => n.endsWith('.log')).sort().map((n) => path.join(j, n));
}

// ---------------------------------------------------------------------------------------------- the data dirs

/** `demo --keep`: three real nodes' data dirs and the id of the WASM job they ran. */
async function runDemo() {
  const child = spawnTracked([MAIN_JS, 'demo', '--keep']);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  child.stderr.resume();
  const r = await withTimeout(exited(child), 180_000, 'demo --keep');
  const dirs = /The data dirs stay in (\S+)\.$/m.exec(out)?.[1];
  if (dirs) cleanups.add(() => rm(dirs, { recursive: true, force: true }));
  const job = /The job completed with exit code 0 on [BC]\. Its status, as `status ([0-9a-f]+)`/.exec(out)?.[1];
  if (r.code !== 0 || !dirs || !job) throw new Error(`demo --keep exited ${r.code ?? r.signal} without a completed job and kept dirs:\n${out.slice(-1500)}`);
  return { root: dirs, job };
}

/** The 1M-event Node data dir, as test/bench/store.mjs builds it (its builder in a child, SIGKILLed when done). */
async function buildBig(events) {
  const parent = await tempDir('replay-1m');
  const dir = path.join(parent, 'data');
  const child = spawnTracked([STORE_BENCH, '--build', dir, '--events', String(events - 1), '--raw-file', path.join(parent, 'raw.log')]);
  const { value } = await jsonLine(child, (m) => (m?.done ? m : undefined), 240_000, 'building the 1M-event data dir');
  await kill(child);
  await rm(path.join(parent, 'raw.log'), { force: true });
  return { dir, lastSeq: value.lastSeq };
}

const OWN = new Set(['node', 'trust']);
/** A requester's records without those of its own Node and trust actors (the big dir has a Node of its own). */
function dealPart(tx) {
  const out = [];
  for (const m of tx) {
    if (m.op === 'put' || m.op === 'add') {
      const values = m.values.filter((v) => !OWN.has(v.actor ?? v.id) && !(m.t === 'meta' && (v.key === 'indexes' || v.key === 'registration')));
      if (values.length) out.push({ ...m, values });
    } else if (m.op === 'delete') {
      const keys = m.keys.filter((k) => !OWN.has(Array.isArray(k) ? k[0] : k));
      if (keys.length) out.push({ ...m, keys });
    } else if (!OWN.has(m.range?.lower?.[0])) out.push(m);
  }
  return out;
}

/** Appends the requester's deal records (and its identity) to the big dir's newest segment: one log, both stories. */
async function splice(requester, big) {
  const { listSegments, readSegments, frame } = await import('../../runtime/store/journal.js');
  const from = path.join(requester, 'journal');
  const frames = [];
  for await (const seg of readSegments(from, await listSegments(from))) {
    for (const r of seg.records) {
      const tx = dealPart(r.tx);
      if (tx.length) frames.push(frame(Buffer.from(JSON.stringify({ tx }))));
    }
  }
  const segs = await segmentFiles(big);
  await appendFile(segs.at(-1), Buffer.concat(frames));
  await copyFile(path.join(requester, 'identity.key'), path.join(big, 'identity.key'));
  return frames.length;
}

let prepared;
/** The dirs both benchmarks use, made once. */
function prepare() {
  prepared ??= (async () => {
    const t0 = performance.now();
    const demo = await runDemo();
    note(`replay: demo --keep in ${round((performance.now() - t0) / 1000, 1)} s; job ${demo.job}`);
    const t1 = performance.now();
    const big = await buildBig(EVENTS);
    const records = await splice(path.join(demo.root, 'A'), big.dir);
    const bytes = (await Promise.all((await segmentFiles(big.dir)).map((f) => stat(f).then((s) => s.size)))).reduce((a, b) => a + b, 0);
    note(`replay: ${big.lastSeq.toLocaleString('en')}-event dir built in ${round((performance.now() - t1) / 1000, 1)} s (${round(bytes / 1e6)} MB of journal), ${records} deal records spliced onto it`);
    return { ...demo, big: big.dir, lastSeq: big.lastSeq, journalMb: round(bytes / 1e6), providers: [path.join(demo.root, 'B'), path.join(demo.root, 'C')] };
  })();
  return prepared;
}

// ---------------------------------------------------------------------------------------------- the benchmarks

/** `runs` alternating pairs of ours and raw; checks ours' output once. */
async function pairs(ours, raw, check) {
  await ours(); // warm the page cache (and check it), then measure
  await raw();
  const o = [];
  const b = [];
  for (let k = 0; k < RUNS; k += 1) {
    const [x, y] = await alternate(k, ours, raw);
    if (k === 0) check(x.out);
    o.push(x);
    b.push(y);
  }
  return { o, b };
}

function rows(id, what, rawWhat, { o, b }, targets, extra) {
  const ms = (xs) => xs.map((x) => round(x.ms));
  const mb = (xs) => xs.map((x) => x.rssMb);
  const time = msRow(id, `${what}, spawn to exit, median of ${o.length} vs ${rawWhat}`, median(ms(o)), median(ms(b)), targets, { runs: o.length, oursRuns: ms(o), rawRuns: ms(b), ...extra });
  time.notes = [`peak RSS ours ${mb(o).join(', ')} MB; raw ${mb(b).join(', ')} MB`];
  const rss = { id: `${id}-rss`, name: `peak resident memory (maxRSS) of ${what} vs ${rawWhat}`, unit: 'MB', lowerIsBetter: true, ours: median(mb(o)), raw: median(mb(b)), ratio: round(median(mb(o)) / median(mb(b)), 2), targets: [], detail: { runs: o.length, oursRuns: mb(o), rawRuns: mb(b) } };
  return [time, rss];
}

async function benchList() {
  const p = await prepare();
  const files = await segmentFiles(p.big);
  const check = (out) => {
    const doc = JSON.parse(out);
    const node = doc.actors.find((a) => a.id === 'node');
    const job = doc.actors.find((a) => a.id === `job/${p.job}`);
    if (!node || node.events < p.lastSeq || node.state !== 'registered') throw new Error(`--list: the Node is ${JSON.stringify(node)}, not ${p.lastSeq} events ending registered`);
    if (!job || JSON.stringify(job.state) !== '{"ended":"completed"}') throw new Error(`--list: job/${p.job} is ${JSON.stringify(job)}`);
  };
  const r = await pairs(() => timed([MAIN_JS, 'replay', '--list', '--json', '--data-dir', p.big], 'replay --list'), () => timed(['-e', RAW_READ, ...files], 'the raw read'), check);
  return rows('replay-list-1m', `\`replay --list --json\` on the ${p.lastSeq.toLocaleString('en')}-event dir (${p.journalMb} MB of journal, a deal at its end)`, 'a node process reading its segment files end to end (4 MB reads)', r, [{ kind: 'ours', max: LIST_TARGET_MS }], { journalMb: p.journalMb });
}

async function benchDeal() {
  const p = await prepare();
  const dirs = [p.big, ...p.providers];
  const files = (await Promise.all(dirs.map(segmentFiles))).flat();
  const check = (out) => {
    const lines = out.trim().split('\n').map((l) => JSON.parse(l));
    const hops = lines.filter((l) => l.hop).length;
    const nodes = new Set(lines.map((l) => l.node)).size;
    if (nodes < 2 || hops < 8) throw new Error(`--deal: ${lines.length} events on ${nodes} nodes, ${hops} hops`);
  };
  const r = await pairs(() => timed([MAIN_JS, 'replay', '--deal', p.job, ...dirs.flatMap((d) => ['--data-dir', d]), '--json'], 'replay --deal'), () => timed(['-e', RAW_READ, ...files], 'the raw read'), check);
  return rows('replay-deal-1m', `\`replay --deal JOB --json\` across the 1M-event requester dir and the two provider dirs`, 'a node process reading their segment files end to end', r, [], {});
}

/** [id, fn]: fn resolves to the rows of one benchmark, in run.mjs's shape. */
export const replayBenches = [
  ['replay-list-1m', benchList],
  ['replay-deal-1m', benchDeal],
];


// ---------------------------------------------------------------------------------------------- standalone

if (isMain(import.meta.url)) await runStandalone('replay', replayBenches, { watchdogMs: 600_000 });
