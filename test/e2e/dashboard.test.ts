/**
 * End to end: the web dashboard in a real browser (playwright-core driving the system's Chromium; .ci/run installs
 * it when missing) against two real `node runtime/main.js` processes on loopback (A asks, B runs process jobs and
 * offers 1 cpu). Logs in with the one-time code, sees A's peer id and capability, B among the peers, a job deployed
 * from the page and one from the CLI appear and end, a queued job's statechart go from `queued` to `running` live
 * when room frees, and cancels a running job from the page. Requests without the cookie (or with a spent code, or
 * from another Host) are refused. Screenshots of each view go to test/artifacts/dashboard/.
 */
import { existsSync, promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type NodeProcess, ROOT, cli, cliJson, killAll, makeTempDir, removeTempDirs, startNode, waitFor, type PeerRow, apiOf } from './harness.ts';

const SHOTS = path.join(ROOT, 'test', 'artifacts', 'dashboard');
const BROWSERS = ['/usr/lib/chromium/chromium', '/usr/bin/chromium', '/usr/bin/chromium-browser'];

interface Ctx {
  A: NodeProcess;
  B: NodeProcess;
  jobs: string;
  browser: Browser;
  page: Page;
  loginUrl: string;
}

const test = suite<Ctx>('e2e: the dashboard in a real browser', {} as Ctx);

test.before(async (ctx) => {
  const exe = BROWSERS.find((p) => existsSync(p));
  if (!exe) throw new Error(`no Chromium at ${BROWSERS.join(', ')}: install it (apt-get install -y chromium; .ci/run does)`);
  const a = await startNode(await makeTempDir('dash-a'), ['--bid-window', '500ms'], { timeoutMs: 40_000 });
  const b = await startNode(await makeTempDir('dash-b'), ['--bid-window', '500ms', '--executors', 'wasm,process', '--cpu', '1', '--bootstrap', a.ready.listen[0]!], { timeoutMs: 40_000 });
  Object.assign(ctx, { A: a, B: b, jobs: await makeTempDir('dash-jobs') });
  const api = await apiOf(a);
  await waitFor('A to see B as a DMS peer', async () => ((await api.get<PeerRow[]>('/v1/peers')).some((p) => p.dms && p.peer === b.ready.peerId) ? true : undefined), 30_000, 200);
  ctx.browser = await chromium.launch({ executablePath: exe, args: ['--no-sandbox', '--disable-gpu'] });
  ctx.page = await ctx.browser.newPage({ viewport: { width: 1400, height: 900 } });
  await fs.mkdir(SHOTS, { recursive: true });
});

test.after(async (ctx) => {
  await ctx.browser?.close().catch(() => {});
  await killAll();
  await removeTempDirs();
});

/** A raw GET to A's API: status and body (no token, no cookie unless given). */
function rawGet(ctx: Ctx, p: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(`${ctx.A.ready.api}${p}`, { headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

async function shot(ctx: Ctx, name: string): Promise<void> {
  await ctx.page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

async function view(ctx: Ctx, name: string): Promise<void> {
  await ctx.page.click(`nav button[data-view="${name}"]`);
}

/** A process job file for B: `cpu` of B's 1, running `script`. */
async function jobFile(ctx: Ctx, name: string, script: string, cpu: number, extra: object = {}): Promise<string> {
  const file = path.join(ctx.jobs, `${name}.json`);
  await fs.writeFile(file, JSON.stringify({ name, executor: 'process', process: { command: 'sh', args: ['-c', script] }, resources: { cpu, memory: '32MiB' }, timeout: '120s', constraints: { peers: [ctx.B.ready.peerId] }, ...extra }));
  return file;
}

const jobState = (ctx: Ctx, id: string) => ctx.page.locator(`[data-testid="jobs"] tr[data-job="${id}"] .state`);

test('without the login cookie every dashboard route is refused; a login code works once', async (ctx) => {
  for (const p of ['/dashboard/', '/dashboard/app.js', '/dashboard/events']) assert.is((await rawGet(ctx, p)).status, 401, p);
  assert.is((await rawGet(ctx, '/v1/info')).status, 401, '/v1 without token or cookie');
  assert.is((await rawGet(ctx, '/v1/info', { host: 'dms.example.com' })).status, 421, 'another Host (DNS rebinding)');
  assert.is((await rawGet(ctx, '/dashboard/', { cookie: 'dms_dashboard=forged' })).status, 401, 'a forged cookie');
  const preflight = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.request(`${ctx.A.ready.api}/v1/deploy`, { method: 'OPTIONS', headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' } }, resolve);
    req.on('error', reject);
    req.end();
  });
  preflight.resume();
  assert.is(preflight.headers['access-control-allow-origin'], undefined, 'no CORS grant to another origin');
  const { url } = await cliJson<{ url: string }>(['dashboard', '--data-dir', ctx.A.dataDir, '--json']);
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/dashboard\/login\?code=[\w-]{43}$/);
  ctx.loginUrl = url;
  const human = await cli(['dashboard', '--data-dir', ctx.A.dataDir]);
  assert.is(human.code, 0, human.stderr);
  assert.match(human.stdout, /\/dashboard\/login\?code=/);
  const used = new URL(human.stdout.split('\n')[0]!);
  assert.is((await rawGet(ctx, `${used.pathname}${used.search}`)).status, 303, 'the first use logs in');
  assert.is((await rawGet(ctx, `${used.pathname}${used.search}`)).status, 401, 'a spent code');
});

test('logging in shows the node: its peer id and capability', async (ctx) => {
  const res = await ctx.page.goto(ctx.loginUrl);
  assert.is(res?.status(), 200);
  assert.match(ctx.page.url(), /\/dashboard\/(#\w+)?$/);
  const cookies = await ctx.page.context().cookies();
  const c = cookies.find((k) => k.name === 'dms_dashboard');
  assert.ok(c, 'the session cookie is set');
  assert.ok(c!.httpOnly && c!.sameSite === 'Strict', `HttpOnly + SameSite=Strict: ${JSON.stringify(c)}`);
  await ctx.page.waitForSelector('[data-testid="peer-id"]');
  assert.is((await ctx.page.textContent('[data-testid="peer-id"]'))?.trim(), ctx.A.ready.peerId);
  assert.is(await ctx.page.locator('[data-testid="capability"] .bar').count(), 3, 'cpu, memory and disk bars');
  await ctx.page.waitForSelector('[data-testid="live"]:has-text("live")');
  assert.not.match(ctx.page.url(), /#s=/, 'the secret left the address bar');
  // the cookie alone (what a program on another local port would receive) opens no API route nor the stream
  const cookie = `dms_dashboard=${c!.value}`;
  const secret = await ctx.page.evaluate("localStorage.getItem('dms-dashboard-secret')") as string | null;
  assert.match(secret ?? '', /^[\w-]{43}$/);
  assert.is((await rawGet(ctx, '/v1/info', { cookie })).status, 401, 'cookie without the secret');
  assert.is((await rawGet(ctx, '/dashboard/events', { cookie })).status, 401, 'the stream without the secret');
  assert.is((await rawGet(ctx, '/v1/info', { cookie, 'x-dms-dashboard': '1' })).status, 401, 'a made-up secret');
  assert.is((await rawGet(ctx, '/v1/info', { cookie, 'x-dms-dashboard': secret! })).status, 200, 'cookie and secret');
  await shot(ctx, '1-node');
});

test('peers: B is listed and drawn in the topology', async (ctx) => {
  await view(ctx, 'peers');
  await ctx.page.waitForSelector(`[data-testid="peers"] td[title="${ctx.B.ready.peerId}"]`);
  await waitFor('the topology graph', async () => ((await ctx.page.locator('svg g.peer').count()) >= 2 ? true : undefined), 10_000, 200);
  await shot(ctx, '2-peers');
});

test('a job deployed from the page appears, completes and shows its logs', async (ctx) => {
  await view(ctx, 'jobs');
  const file = await jobFile(ctx, 'from-page', 'echo hello-from-the-page', 0.2);
  await ctx.page.setInputFiles('[data-testid="deploy"] input[type=file]', file);
  await ctx.page.click('[data-testid="deploy"] button[type=submit]');
  await ctx.page.waitForSelector('[data-testid="deploy"] :text("deployed ")');
  await ctx.page.waitForSelector('[data-testid="job-detail"] .state.completed', { timeout: 30_000 });
  await ctx.page.waitForSelector('[data-testid="logs"]:has-text("hello-from-the-page")', { timeout: 10_000 });
  // a bad job file: the node's own error, naming the field, and nothing deployed
  const bad = path.join(ctx.jobs, 'bad.json');
  await fs.writeFile(bad, JSON.stringify({ name: 'bad', executor: 'process', process: { command: 'true' }, resources: { cpu: -1, memory: '32MiB' } }));
  const before = await ctx.page.locator('[data-testid="jobs"] tr[data-job]').count();
  await ctx.page.setInputFiles('[data-testid="deploy"] input[type=file]', bad);
  await ctx.page.click('[data-testid="deploy"] button[type=submit]');
  const err = await ctx.page.waitForSelector('[data-testid="deploy"] .error');
  assert.match((await err.textContent()) ?? '', /cpu/);
  assert.is(await ctx.page.locator('[data-testid="jobs"] tr[data-job]').count(), before, 'nothing deployed');
  await shot(ctx, '3-jobs');
});

test('a queued job\'s statechart goes live from queued to running when room frees; a running job is cancelled from the page', async (ctx) => {
  // job 1 holds 0.6 of B's 1 cpu; job 2 (0.6) finds no room and is queued
  const first = await cliJson<{ id: string }>(['deploy', await jobFile(ctx, 'holder', 'sleep 120', 0.6), '--data-dir', ctx.A.dataDir, '--json']);
  await ctx.page.waitForSelector(`[data-testid="jobs"] tr[data-job="${first.id}"] .state.running`, { timeout: 30_000 });
  const second = await cliJson<{ id: string }>(['deploy', await jobFile(ctx, 'waiter', 'sleep 120', 0.6, { queueTimeout: '90s' }), '--data-dir', ctx.A.dataDir, '--json']);
  await ctx.page.waitForSelector(`[data-testid="jobs"] tr[data-job="${second.id}"] .state.queued`, { timeout: 30_000 });

  await view(ctx, 'actors');
  const row = `[data-testid="actors"] tr[data-actor="job/${second.id}"]`;
  await ctx.page.waitForSelector(row);
  await ctx.page.click(row);
  const chart = '[data-testid="statechart"]';
  // a queued job's negotiation waits between rounds: requesting.waiting in its machine
  await ctx.page.waitForSelector(`${chart}[data-state="requesting.waiting"]`);
  await ctx.page.waitForSelector(`${chart} g.st.active[data-path="requesting.waiting"]`);
  assert.ok((await ctx.page.locator(`${chart} g.st`).count()) >= 8, 'the requester machine\'s states are drawn');
  await shot(ctx, '4-actor-queued');

  // room frees on B (job 1 cancelled through the CLI); the page is pushed the change and redraws
  const cancelled = await cli(['cancel', first.id, '--data-dir', ctx.A.dataDir]);
  assert.is(cancelled.code, 0, cancelled.stderr);
  await ctx.page.waitForSelector(`${chart}[data-state="running"]`, { timeout: 30_000 });
  await ctx.page.waitForSelector(`${chart} g.st.active[data-path="running"]`);
  assert.is(await ctx.page.locator(`${chart} g.st.active[data-path^="requesting"]`).count(), 0, 'requesting is no longer highlighted');
  await shot(ctx, '5-actor-running');

  await view(ctx, 'jobs');
  await ctx.page.click(`[data-testid="jobs"] tr[data-job="${second.id}"]`);
  await ctx.page.click('[data-testid="job-detail"] [data-testid="cancel"]');
  await ctx.page.waitForSelector(`[data-testid="jobs"] tr[data-job="${second.id}"] .state.cancelled`, { timeout: 30_000 });
  const status = await cliJson<{ state: string }>(['status', second.id, '--data-dir', ctx.A.dataDir, '--json']);
  assert.is(status.state, 'cancelled');
  await shot(ctx, '6-jobs-cancelled');

  await view(ctx, 'allocations');
  await ctx.page.waitForSelector('[data-testid="allocations"]');
  await shot(ctx, '7-allocations');
});

test.run();
