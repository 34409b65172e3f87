// Dashboard benchmarks: a real node (`node runtime/main.js`) and the system's Chromium driven by playwright-core.
//   dashboard-load  opening the login URL -> the first full view (the node view with the peer id and the
//                   capability bars drawn, and the live stream open), median of RUNS fresh browser contexts; raw:
//                   the same browser loading a one-line page from a bare node:http server (the browser's floor).
//                   The page's bytes on the wire (gzip) are noted; target < 1 s and < 300 KB.
//   dashboard-idle  the node's CPU (all its threads, /proc) over IDLE_S seconds with the dashboard open and idle, vs
//                   the same node over the same time with no dashboard open; target < 1% of a core.
// Standalone: `npm run build && node test/bench/dashboard.mjs [--json FILE]`; run.mjs imports `dashboardBenches`.
// Skipped (an error row saying why) where no Chromium is installed.
import { existsSync } from 'node:fs';
import http from 'node:http';
import { MAIN_JS, cleanups, cpuSecondsOf, isMain, median, round, runStandalone, spawnTracked, startNode, tempDir, withTimeout } from './common.mjs';

const BROWSERS = ['/usr/lib/chromium/chromium', '/usr/bin/chromium', '/usr/bin/chromium-browser'];
const RUNS = 7;
const IDLE_S = 20;
const cpuSeconds = async (pid) => {
  const c = await cpuSecondsOf(pid);
  if (c === null || c === undefined) throw new Error(`no CPU figures for pid ${pid}`);
  return typeof c === 'number' ? c : c.self ?? c.total;
};

async function loginUrl(dataDir) {
  const child = spawnTracked([MAIN_JS, 'dashboard', '--data-dir', dataDir, '--json']);
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  await withTimeout(new Promise((r) => child.once('exit', r)), 10_000, 'dashboard command');
  return JSON.parse(out).url;
}

async function benchDashboard() {
  const exe = BROWSERS.find((p) => existsSync(p));
  if (!exe) throw new Error(`no Chromium installed (${BROWSERS.join(', ')}); apt-get install -y chromium`);
  const { chromium } = await import('playwright-core');
  const dir = await tempDir('dash-bench');
  const node = await startNode(dir);
  const browser = await chromium.launch({ executablePath: exe, args: ['--no-sandbox', '--disable-gpu'] });
  const close = () => browser.close().catch(() => {});
  cleanups.add(close);
  const raw = http.createServer((req, res) => res.end('<!doctype html><title>raw</title><p id="x">raw</p>'));
  await new Promise((r) => raw.listen(0, '127.0.0.1', r));
  const rawUrl = `http://127.0.0.1:${raw.address().port}/`;
  try {
    const ours = [];
    const base = [];
    let bytes = 0;
    for (let k = 0; k < RUNS; k += 1) {
      const url = await loginUrl(dir);
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      let wire = 0;
      page.on('response', async (r) => {
        const len = Number((await r.allHeaders())['content-length'] ?? 0);
        wire += len;
      });
      const t0 = performance.now();
      await page.goto(url);
      await page.waitForSelector('[data-testid="capability"] .bar');
      await page.waitForSelector(`[data-testid="peer-id"]:has-text("${node.ready.peerId}")`);
      await page.waitForSelector('[data-testid="live"]:has-text("live")');
      ours.push(performance.now() - t0);
      if (k === 0) bytes = wire;
      await ctx.close();
      const c2 = await browser.newContext();
      const p2 = await c2.newPage();
      const t1 = performance.now();
      await p2.goto(rawUrl);
      await p2.waitForSelector('#x');
      base.push(performance.now() - t1);
      await c2.close();
    }
    // idle: the node alone, then with a dashboard open on the node view (its live stream open)
    const pid = node.child.pid;
    const c0 = await cpuSeconds(pid);
    await new Promise((r) => setTimeout(r, IDLE_S * 1000));
    const alone = (await cpuSeconds(pid)) - c0;
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(await loginUrl(dir));
    await page.waitForSelector('[data-testid="live"]:has-text("live")');
    await new Promise((r) => setTimeout(r, 1000));
    const c1 = await cpuSeconds(pid);
    await new Promise((r) => setTimeout(r, IDLE_S * 1000));
    const open = (await cpuSeconds(pid)) - c1;
    await ctx.close();
    const pct = (s) => (100 * s) / IDLE_S;
    const o = median(ours);
    const b = median(base);
    return [
      {
        id: 'dashboard-load',
        name: 'dashboard: login URL -> first full view (node view drawn, live stream open), ms; raw: a one-line page from a bare node:http server in the same browser',
        unit: 'ms',
        lowerIsBetter: true,
        ours: round(o),
        raw: round(b),
        ratio: round(o / b, 2),
        targets: [{ kind: 'ours', max: 1000 }],
        detail: { runs: ours.map((x) => round(x)), rawRuns: base.map((x) => round(x)), wireBytes: bytes },
        notes: [`${RUNS} fresh browser contexts; ${bytes} bytes on the wire for the first view (gzip; target < 300 KB); Chromium ${browser.version()}`],
      },
      {
        id: 'dashboard-idle',
        name: `dashboard: the node's CPU over ${IDLE_S} s with the dashboard open and idle (% of a core); raw: the same node with none open`,
        unit: '% core',
        lowerIsBetter: true,
        ours: round(pct(open), 2),
        raw: round(pct(alone), 2),
        ratio: alone > 0 ? round(open / alone, 2) : null,
        targets: [{ kind: 'ours', max: 1 }],
        detail: { openCpuS: round(open, 3), aloneCpuS: round(alone, 3) },
        notes: [
          `what the open dashboard added: ${round(pct(open - alone), 2)}% of a core (the node's own idle work, timers and libp2p upkeep, runs in both and varies by ~1% from one ${IDLE_S} s window to the next)`,
          `/proc ticks are 10 ms, so ${IDLE_S} s resolve 0.05% of a core`,
        ],
      },
    ];
  } finally {
    raw.close();
    await close();
    cleanups.delete(close);
    node.child.kill('SIGTERM');
  }
}

/** [id, fn] pairs for run.mjs; each fn resolves to an array of rows. */
export const dashboardBenches = [['dashboard', benchDashboard]];


// ---------------------------------------------------------------------------------------------- standalone

if (isMain(import.meta.url)) await runStandalone('dashboard', dashboardBenches, { watchdogMs: 180_000 });
