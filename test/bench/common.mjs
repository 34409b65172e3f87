// Helpers shared by the benchmark scripts (run.mjs, store.mjs, net.mjs): paths, statistics and timeouts; child
// processes and temp dirs tracked for cleanup, with a watchdog and signal handlers that run it; nodes started to
// their ready line; and the results table with its target checks. Loads nothing of the runtime itself.
import { spawn } from 'node:child_process';
import { lstat, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MAIN_JS = path.join(root, 'runtime', 'main.js');

// ---------------------------------------------------------------------------------------------- numbers

export const round = (x, d = 0) => Math.round(x * 10 ** d) / 10 ** d;
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
export const note = (msg) => process.stderr.write(`  ${msg}\n`);

export function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise.finally(() => clearTimeout(t)),
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
    }),
  ]);
}

// ---------------------------------------------------------------------------------------------- cleanup

/** Child processes, close functions (async) and temp dirs of this run, for cleanup(). */
export const children = new Set();
export const cleanups = new Set();
const tmpDirs = new Set();
/** Synchronous functions cleanup() calls first (run.mjs: killing the network benchmark peers). */
const firsts = [];
export const cleanupFirst = (f) => firsts.push(f);

export async function cleanup() {
  for (const f of firsts) f();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
  for (const f of [...cleanups].reverse()) await f().catch(() => {}); // last opened, first closed
  cleanups.clear();
  for (const d of tmpDirs) await rm(d, { recursive: true, force: true }).catch(() => {});
  tmpDirs.clear();
}

/**
 * Bounds the run: after `ms` it says so on stderr as `name`, cleans up, awaits `beforeExit` and exits 1; SIGINT and
 * SIGTERM clean up and exit 130. Returns the watchdog timer (unref'd), to clear at the end.
 */
export function guard(ms, name, beforeExit = () => {}) {
  const watchdog = setTimeout(() => {
    process.stderr.write(`${name}: still running after ${ms / 1000} s; giving up\n`);
    void cleanup().finally(async () => {
      await beforeExit();
      process.exit(1);
    });
  }, ms);
  watchdog.unref();
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => void cleanup().finally(() => process.exit(130)));
  return watchdog;
}

/** A fresh directory `dms-bench-<tag>-*` under the OS temp dir, removed by cleanup(). */
export async function tempDir(tag) {
  const d = await mkdtemp(path.join(os.tmpdir(), `dms-bench-${tag}-`));
  tmpDirs.add(d);
  return d;
}

// ---------------------------------------------------------------------------------------------- child processes

/** `node ...argv` in the project root with stdout and stderr piped, killed by cleanup() while it runs. */
export function spawnTracked(argv, opts = {}) {
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], cwd: root, ...opts });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Sends `signal`, then SIGKILL after 10 s; resolves with how the process ended: { code, signal }. */
export async function kill(child, signal = 'SIGKILL') {
  const done = exited(child);
  child.kill(signal);
  const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const r = await done;
  clearTimeout(t);
  return r;
}

/** Resolves with the first stdout JSON line for which `pick` returns a value; rejects on exit or timeout. */
export function jsonLine(child, pick, timeoutMs, what, onLine = () => {}) {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => fail(`${what}: nothing within ${timeoutMs} ms`), timeoutMs);
    const fail = (why) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${why}; stderr: ${err.trim().slice(-800) || '(empty)'}`));
    };
    const onExit = (code, signal) => fail(`${what}: exited (${code ?? signal}) first`);
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.stdout.on('data', (d) => {
      const at = performance.now();
      out += d;
      const lines = out.split('\n');
      out = lines.pop();
      for (const line of lines) {
        let msg;
        try {
          msg = JSON.parse(line);
        } catch {
          continue;
        }
        onLine(msg);
        if (msg?.error) return fail(`${what}: ${msg.error}`);
        const v = pick(msg);
        if (v !== undefined) {
          clearTimeout(timer);
          child.off('exit', onExit);
          child.stdout.removeAllListeners('data');
          child.stdout.resume();
          child.stderr.resume();
          resolve({ value: v, at });
          return;
        }
      }
    });
    child.once('exit', onExit);
  });
}

/** Starts `node runtime/main.js --json` on `dir`; resolves at its ready line: { ms (spawn to ready line), ready, child }. */
export async function startNode(dir, timeoutMs = 30_000) {
  const t0 = performance.now();
  const child = spawnTracked([MAIN_JS, '--data-dir', dir, '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0/ws', '--json']);
  const { value: ready, at } = await jsonLine(child, (m) => (m?.event === 'ready' ? m : undefined), timeoutMs, `node on ${path.basename(dir)}`);
  return { ms: at - t0, ready, child };
}

/** Spawn to exit of `node -e 0` (ms): the baseline of a node start. */
export async function nodeE0() {
  const t0 = performance.now();
  const child = spawnTracked(['-e', '0']);
  child.stdout.resume();
  child.stderr.resume();
  const r = await withTimeout(exited(child), 10_000, '`node -e 0`');
  if (r.code !== 0) throw new Error(`\`node -e 0\` exited ${r.code ?? r.signal}`);
  return performance.now() - t0;
}

// ---------------------------------------------------------------------------------------------- report

/** Runs both sides once, raw first when `k` is odd, so drift (GC, other processes on the machine) hits both alike: [ours, raw]. */
export async function alternate(k, ours, raw) {
  if (k % 2) {
    const b = await raw();
    return [await ours(), b];
  }
  const o = await ours();
  return [o, await raw()];
}

/** A result row in ms, lower is better: `ours` and `raw` rounded to whole ms, their ratio to 0.01. */
export function msRow(id, name, ours, raw, targets, detail) {
  return { id, name, unit: 'ms', lowerIsBetter: true, ours: round(ours), raw: round(raw), ratio: round(ours / raw, 2), targets, detail };
}

/** Checks a result's targets (on `ours` or on the ratio, by their kind): { ...r, checks, pass }. */
export function judge(r) {
  const checks = r.targets.map((t) => {
    const v = t.kind === 'ours' ? r.ours : r.ratio; // a target without a kind is on the ratio
    const ok = (t.min === undefined || v >= t.min) && (t.max === undefined || v <= t.max);
    return { ...t, value: v, ok };
  });
  return { ...r, checks, pass: checks.every((c) => c.ok) };
}

/** Runs one benchmark step: its rows (judged) go to `results`, or an error row; `onError` runs after a failure. */
export async function step(results, name, id, fn, onError = async () => {}) {
  const t0 = performance.now();
  process.stderr.write(`${name}: ${id} ...\n`);
  try {
    results.push(...[await fn()].flat().map(judge)); // a benchmark may give several rows
  } catch (e) {
    results.push({ id, name: id, unit: '', targets: [], error: e.message, pass: false });
    await onError();
  }
  note(`${id} took ${round((performance.now() - t0) / 1000, 1)} s`);
}

/** A value with its unit; `MB` to 0.1 only when `fineMB` (store.mjs), else whole. */
export function fmtValue(v, unit, fineMB = false) {
  if (unit === 'ms') return `${v.toLocaleString('en', { maximumFractionDigits: 0 })} ms`;
  if (fineMB && unit === 'MB') return `${v.toLocaleString('en', { maximumFractionDigits: 1 })} MB`;
  if (v >= 10_000) return `${(v / 1000).toLocaleString('en', { maximumFractionDigits: 1 })}k ${unit}`;
  return `${v.toLocaleString('en', { maximumFractionDigits: 0 })} ${unit}`;
}

function fmtTarget(t, unit, fmt) {
  const op = t.min !== undefined ? '>=' : '<=';
  const lim = t.min ?? t.max;
  return t.kind === 'ratio' ? `ratio ${op} ${lim}x` : `ours ${op} ${fmt(lim, unit)}`;
}

/** The runs of both sides and their rates per CPU-second, as printed under a row. */
export function runLines(r, fmt = fmtValue) {
  const d = r.detail;
  return [
    `ours runs ${d.oursRuns.map((x) => fmt(x, r.unit)).join(', ')}`,
    `raw runs  ${d.rawRuns.map((x) => fmt(x, r.unit)).join(', ')}`,
    ...(d.perCpuSecond ? [`per CPU-second of the process: ours ${fmt(d.perCpuSecond.ours, 'events')}, raw ${fmt(d.perCpuSecond.raw, 'events')}, ratio ${d.perCpuSecond.ratio}x`] : []),
  ];
}

/**
 * The results table, then each row's name with its error or `lines(r)` (indented) under it. `fmt` formats the
 * values (default fmtValue).
 */
export function table(results, lines, fmt = fmtValue) {
  const head = ['#', 'benchmark', 'ours', 'raw baseline', 'ratio', 'target', 'result'];
  const rows = results.map((r, i) => [
    String(i + 1),
    r.id,
    r.error ? 'error' : fmt(r.ours, r.unit),
    r.error ? '' : fmt(r.raw, r.unit),
    r.error ? '' : `${r.ratio}x`,
    r.targets.length ? r.targets.map((t) => fmtTarget(t, r.unit, fmt)).join(', ') : '(info)',
    r.error ? 'ERROR' : r.targets.length === 0 ? '-' : r.pass ? 'pass' : `MISS (${r.checks.filter((c) => !c.ok).map((c) => fmtTarget(c, r.unit, fmt)).join(', ')})`,
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c].length)));
  const line = (cells) => cells.map((x, c) => (c >= 2 && c <= 4 ? x.padStart(widths[c]) : x.padEnd(widths[c]))).join('  ').trimEnd();
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const row of rows) out.push(line(row));
  out.push('');
  results.forEach((r, i) => {
    out.push(`${i + 1}. ${r.name}`);
    if (r.error) out.push(`   error: ${r.error}`);
    out.push(...lines(r).map((l) => `   ${l}`));
  });
  return out.join('\n');
}

/** The machine and time fields that open a report: { suite, node, cpus, at, totalSeconds }. */
export function reportHead(suite, started) {
  return { suite, node: process.version, cpus: os.availableParallelism(), at: new Date().toISOString(), totalSeconds: round((performance.now() - started) / 1000, 1) };
}

/** The 1-minute load average before the run (`before`, from os.loadavg()) and now. */
export const loadAverage = (before) => ({ before: round(before, 2), after: round(os.loadavg()[0], 2) });

/** CPU seconds of a process, all its threads (user + system), from /proc (Linux only; else null). */
export async function cpuSecondsOf(pid) {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}

/** A process's resident set now and at its peak, in bytes (null when it is gone). */
export async function rssOf(pid) {
  try {
    const s = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return null;
  }
}

/**
 * Bytes of every file under `dir` (apparent sizes, each inode once, as `du -sb`), of those under its journal/,
 * and of the journal's history: the segments (and checkpoint bases) before the newest base, or before the newest
 * segment when there is no base, which recovery does not need and `--retain` removes once old enough.
 */
export async function dirBytes(dir) {
  let total = 0;
  let journal = 0;
  const seen = new Set();
  const segments = new Map();
  const bases = new Map();
  const walk = async (d, inJournal) => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return; // gone meanwhile
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p, inJournal || (d === dir && e.name === 'journal'));
      else {
        const st = await lstat(p).catch(() => null);
        if (!st) continue;
        // a base is a hard link to a checkpoint: named here whatever was counted first, its bytes counted once
        const once = !seen.has(`${st.dev}:${st.ino}`);
        seen.add(`${st.dev}:${st.ino}`);
        if (once) total += st.size;
        if (!inJournal) continue;
        if (once) journal += st.size;
        const seg = /^(\d{10})\.log$/.exec(e.name)?.[1];
        const base = /^(\d{10})\.base\.json$/.exec(e.name)?.[1];
        if (seg) segments.set(Number(seg), st.size);
        if (base) bases.set(Number(base), st.size);
      }
    }
  };
  await walk(dir, false);
  const cut = bases.size ? Math.max(...bases.keys()) : segments.size ? Math.max(...segments.keys()) : 0;
  let history = 0;
  for (const [k, v] of segments) if (k < cut) history += v;
  for (const [k, v] of bases) if (k < cut) history += v;
  return { total, journal, history };
}

/**
 * CPU seconds of every live process under `pid` (its own and what they reaped): a warm runner that has not
 * exited is in no one's cutime yet. With the parent's cutime/cstime, the whole tree's CPU.
 */
export async function descendantsCpu(pid) {
  const all = await readdir('/proc').catch(() => []);
  const parent = new Map();
  const cpu = new Map();
  for (const p of all) {
    if (!/^\d+$/.test(p)) continue;
    const stat = await readFile(`/proc/${p}/stat`, 'utf8').catch(() => '');
    if (!stat) continue;
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    parent.set(Number(p), Number(f[1]));
    cpu.set(Number(p), (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100);
  }
  const under = new Set([pid]);
  let total = 0;
  for (let grew = true; grew; ) {
    grew = false;
    for (const [p, pp] of parent) {
      if (under.has(pp) && !under.has(p)) {
        under.add(p);
        total += cpu.get(p) ?? 0;
        grew = true;
      }
    }
  }
  return total;
}

// ---------------------------------------------------------------------------------------------- standalone runs

/** Whether the module at `url` is the script node was started with (`node test/bench/X.mjs`). */
export const isMain = (url) => process.argv[1] === fileURLToPath(url);

/**
 * A bench file run on its own (`node test/bench/X.mjs [--json FILE]`): runs its [id, fn] pairs under a watchdog,
 * prints the table (`lines(row)` under each row), the totals and the report as one JSON line (and to FILE with
 * `--json`), and exits 1 when a row failed to run.
 */
export async function runStandalone(name, benches, { watchdogMs = 180_000, lines = (r) => (r.error ? [] : [...(r.detail?.oursRuns ? runLines(r) : []), ...(r.notes ?? [])]) } = {}) {
  const args = process.argv.slice(2);
  const jsonFile = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
  const watchdog = guard(watchdogMs, `${name} bench`);
  const started = performance.now();
  const loadBefore = os.loadavg()[0];
  const results = [];
  try {
    for (const [id, fn] of benches) await step(results, 'bench', id, fn, cleanup);
  } finally {
    await cleanup();
  }
  const report = { ...reportHead(`dms-runtime ${name} bench`, started), loadAverage1m: loadAverage(loadBefore), ok: results.every((r) => !r.error && r.pass !== false), results };
  process.stdout.write(`\n${table(results, lines)}\n\ntotal ${report.totalSeconds} s on ${report.cpus} cores, Node ${report.node}; 1-minute load average ${report.loadAverage1m.before} before, ${report.loadAverage1m.after} after\n`);
  if (jsonFile) await writeFile(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  clearTimeout(watchdog);
  process.exit(results.some((r) => r.error) ? 1 : 0);
}
