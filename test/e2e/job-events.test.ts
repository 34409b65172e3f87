/**
 * End to end: a job's record pushed on GET /v1/jobs/:id/events between two real `node runtime/main.js` processes on
 * loopback (A deploys, B runs process jobs), and `deploy --wait`, which follows it. The stream gives the record at
 * once and each change of a real deal, ends after the terminal record and closes; it needs the API token; a node
 * serves at most 64 streams at once (429 past that) and gets its slots back when clients go.
 */
import type http from 'node:http';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { JobRecord } from '../../machines/requester.messages.ts';
import { ApiClient } from '../../runtime/api/client.ts';
import { type ServerSentEvent, serverSentEvents } from '../../runtime/api/job-follow.ts';
import { type CliResult, type NodeProcess, cli, cliJson, jsonLines, killAll, makeTempDir, removeTempDirs, startNode, waitFor, type PeerRow, apiOf } from './harness.ts';

interface Ctx {
  A: NodeProcess;
  B: NodeProcess;
  /** A's API, as the CLI reaches it. */
  api: ApiClient;
  jobs: string;
}

const TERMINAL = ['completed', 'failed', 'cancelled'];
const test = suite<Ctx>('e2e: job records pushed on GET /v1/jobs/:id/events', {} as Ctx);

test.before(async (ctx) => {
  try {
    const a = await startNode(await makeTempDir('events-a'), ['--bid-window', '500ms'], { timeoutMs: 40_000 });
    const b = await startNode(await makeTempDir('events-b'), ['--bid-window', '500ms', '--executors', 'wasm,process', '--bootstrap', a.ready.listen[0]!], { timeoutMs: 40_000 });
    ctx.A = a;
    ctx.B = b;
    ctx.api = new ApiClient(a.ready.api, (await fs.readFile(path.join(a.dataDir, 'api.token'), 'utf8')).trim());
    const api = await apiOf(a);
    await waitFor('A to see B as a DMS peer', async () => ((await api.get<PeerRow[]>('/v1/peers')).some((p) => p.dms && p.peer === b.ready.peerId) ? true : undefined), 30_000, 200);
    ctx.jobs = await makeTempDir('events-jobs');
  } catch (e) {
    process.stderr.write(`e2e job events: the nodes did not come up: ${(e as Error).stack ?? String(e)}\n`);
    throw e;
  }
});

test.after(async () => {
  await killAll();
  await removeTempDirs();
});

function assertExit(r: CliResult, code: number, what: string): void {
  assert.is(r.code, code, `${what}: exit ${String(r.code)} (expected ${code})\nstdout: ${r.stdout.slice(0, 1000)}\nstderr: ${r.stderr.slice(0, 2000)}`);
}

/** A job file for a shell script run on B. */
async function shJob(ctx: Ctx, name: string, script: string): Promise<string> {
  const file = path.join(ctx.jobs, `${name}.json`);
  const job = { name, executor: 'process', process: { command: 'sh', args: ['-c', script] }, resources: { cpu: 0.2, memory: '32MiB' }, timeout: '60s', constraints: { peers: [ctx.B.ready.peerId] } };
  await fs.writeFile(file, JSON.stringify(job));
  return file;
}

const deploy = async (ctx: Ctx, file: string) => (await cliJson<JobRecord>(['deploy', file, '--data-dir', ctx.A.dataDir])).id;

/** The next event of a stream, or 'end'; rejects after `ms`. */
function next(events: AsyncIterator<ServerSentEvent>, ms = 20_000): Promise<ServerSentEvent | 'end'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no event within ${ms} ms`)), ms)));
  return Promise.race([events.next().then((r) => (r.done ? 'end' : r.value)), timeout]).finally(() => clearTimeout(timer));
}

async function body(res: http.IncomingMessage): Promise<{ error?: string; code?: string }> {
  let text = '';
  for await (const c of res) text += String(c);
  return JSON.parse(text) as { error?: string; code?: string };
}

/** Reads a stream to its end: every record it sent. */
async function readAll(events: AsyncIterator<ServerSentEvent>): Promise<JobRecord[]> {
  const out: JobRecord[] = [];
  for (;;) {
    const e = await next(events);
    if (e === 'end') return out;
    assert.is(e.event, 'job', `an event other than job: ${e.event} ${e.data}`);
    out.push(JSON.parse(e.data) as JobRecord);
  }
}

test('a real deal: its record at once, every change in order, the terminal record last, then the stream closes', async (ctx) => {
  const id = await deploy(ctx, await shJob(ctx, 'short', 'sleep 1; echo done'));
  const res = await ctx.api.open('GET', `/v1/jobs/${id}/events`);
  assert.is(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/event-stream/);
  const records = await readAll(serverSentEvents(res)[Symbol.asyncIterator]());
  assert.ok(records.length >= 2, `${records.length} records`);
  const first = records[0]!;
  assert.is(first.id, id);
  assert.not.ok(TERMINAL.includes(first.state), `the first record is the job under way, not its end: ${first.state}`);
  const last = records.at(-1)!;
  assert.is(last.state, 'completed', JSON.stringify(last));
  assert.is(last.exitCode, 0);
  assert.equal(last, await ctx.api.request('GET', `/v1/jobs/${id}`), 'the last record is the one GET /v1/jobs/:id answers');
  assert.ok(records.slice(0, -1).every((r) => !TERMINAL.includes(r.state)), 'nothing after the terminal record');
  const states = records.map((r) => r.state);
  assert.ok(states.includes('running'), `the job was seen running: ${states.join(', ')}`);
  for (let i = 1; i < records.length; i += 1) assert.not.equal(records[i], records[i - 1], 'the same record sent twice');
  const history = last.history.map((h) => `${h.at} ${h.message}`);
  for (const r of records) assert.equal(r.history.map((h) => `${h.at} ${h.message}`), history.slice(0, r.history.length), 'each record is a step of the same history');
});

test('without the token (or with a wrong one) the stream is refused with 401; an unknown job is a 404', async (ctx) => {
  for (const token of ['', 'x'.repeat(ctx.api.token.length)]) {
    const res = await new ApiClient(ctx.A.ready.api, token).open('GET', '/v1/jobs/0123456789abcdef0123456789abcdef/events');
    assert.is(res.statusCode, 401);
    assert.is((await body(res)).code, 'unauthorized');
  }
  const res = await ctx.api.open('GET', '/v1/jobs/0123456789abcdef0123456789abcdef/events');
  assert.is(res.statusCode, 404);
  assert.match((await body(res)).error ?? '', /no job 0123456789abcdef0123456789abcdef/);
});

test('64 streams at once, the 65th is refused with 429; clients that go give their slots back; a cancel ends the stream', async (ctx) => {
  const id = await deploy(ctx, await shJob(ctx, 'long', 'sleep 60'));
  const open: { res: http.IncomingMessage; events: AsyncIterator<ServerSentEvent> }[] = [];
  try {
    const fill = async () => {
      for (let i = 0; i < 64; i += 1) {
        const res = await ctx.api.open('GET', `/v1/jobs/${id}/events`);
        assert.is(res.statusCode, 200, `stream ${i + 1}`);
        const events = serverSentEvents(res)[Symbol.asyncIterator]();
        open.push({ res, events });
        const first = await next(events);
        assert.ok(first !== 'end' && first.event === 'job');
      }
    };
    await fill();
    const over = await ctx.api.open('GET', `/v1/jobs/${id}/events`);
    assert.is(over.statusCode, 429);
    const b = await body(over);
    assert.is(b.code, 'TooManyStreamsError');
    assert.match(b.error ?? '', /64 event streams are open/);
    // every client goes (as Ctrl-C would): the node gets all 64 slots back
    for (const { res } of open.splice(0)) res.destroy();
    await waitFor('the node to take streams again', async () => {
      const res = await ctx.api.open('GET', `/v1/jobs/${id}/events`);
      res.destroy();
      return res.statusCode === 200 ? true : undefined;
    });
    await waitFor('all 64 slots to be free', async () => {
      for (const { res } of open.splice(0)) res.destroy();
      try {
        await fill();
        return true;
      } catch {
        return undefined;
      }
    });
    const watcher = open[0]!.events;
    for (const { res } of open.splice(1)) res.destroy();
    await waitFor('the job to run', async () => ((await ctx.api.request('GET', `/v1/jobs/${id}`)) as JobRecord).state === 'running' || undefined, 20_000);
    assertExit(await cli(['cancel', id, '--data-dir', ctx.A.dataDir]), 0, 'cancel');
    const rest = await readAll(watcher);
    assert.is(rest.at(-1)?.state, 'cancelled', `the stream ended with the cancelled record: ${rest.map((r) => r.state).join(', ')}`);
  } finally {
    for (const { res } of open) res.destroy();
    await cli(['cancel', id, '--data-dir', ctx.A.dataDir]).catch(() => undefined);
  }
});

test('deploy --wait follows the stream: the same lines as before, and the job\'s exit code', async (ctx) => {
  const ok = await cli(['deploy', await shJob(ctx, 'ok', 'echo hi'), '--wait', '--data-dir', ctx.A.dataDir], { timeoutMs: 30_000 });
  assertExit(ok, 0, 'deploy --wait of a job that exits 0');
  const lines = ok.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^job [0-9a-f]{32} \(ok\)$/);
  assert.match(lines.at(-1)!, /^job [0-9a-f]{32} completed with exit code 0$/);
  for (const l of lines.slice(1, -1)) assert.match(l, /^\d\d:\d\d:\d\d\.\d{3} {2}\S+ +\S/, `a progress line: ${l}`);
  assert.ok(lines.some((l) => / running +running on /.test(l)), ok.stdout);
  assert.is(new Set(lines).size, lines.length, 'a progress line printed twice');

  const bad = await cli(['deploy', await shJob(ctx, 'bad', 'exit 3'), '--wait', '--json', '--data-dir', ctx.A.dataDir], { timeoutMs: 30_000 });
  assertExit(bad, 1, 'deploy --wait of a job that exits 3');
  const json = jsonLines<{ event: string; state?: string; exitCode?: number | null; job?: string; id?: string }>(bad.stdout);
  const end = json.at(-1)!;
  assert.is(end.event, 'ended');
  assert.is(end.exitCode, 3);
  assert.ok(json.slice(0, -1).every((l) => l.event === 'progress' && l.job === end.id), bad.stdout);
  assert.is(json.at(-2)?.state, end.state, 'the last progress line is the end');
});

test.run();
