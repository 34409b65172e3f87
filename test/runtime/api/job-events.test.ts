// The job event stream (runtime/api/job-events.ts behind GET /v1/jobs/:id/events) and its client (job-follow.ts): a
// real API server on a loopback port in front of a fake node whose records the test changes, read with the CLI's own
// client. What a user cares about: the record arrives at once and after every change, the stream ends after the
// terminal record, nothing gets in without the token, the node serves a bounded number of streams, and a client
// that goes leaves nothing behind on the node (no listener, no slot).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ApiClient } from '../../../runtime/api/client.ts';
import { type ApiServer, type NodeApi, startApiServer } from '../../../runtime/api/http-server.ts';
import { type ServerSentEvent, followJob, serverSentEvents } from '../../../runtime/api/job-follow.ts';

const TOKEN = 'test-token-0123456789abcdef';

type Rec = { id: string; state: string; kind?: 'ensemble'; endedAt?: number | null; n?: number };

/** The records of a fake node, changed by the test; tells the watchers as the deal registry does. */
class FakeJobs {
  readonly records = new Map<string, Rec>();
  readonly #watchers = new Map<string, Set<() => void>>();
  /** Milliseconds each read of a record takes. */
  readMs = 0;
  reads = 0;

  set(rec: Rec): void {
    this.records.set(rec.id, rec);
    this.poke(rec.id);
  }

  /** A change notification without a change (an event that left the record as it was). */
  poke(id: string): void {
    for (const f of [...(this.#watchers.get(id) ?? [])]) f();
  }

  get watchers(): number {
    return [...this.#watchers.values()].reduce((n, s) => n + s.size, 0);
  }

  api(): NodeApi {
    const job = async (id: string) => {
      this.reads += 1;
      const rec = this.records.get(id);
      if (this.readMs > 0) await new Promise((r) => setTimeout(r, this.readMs));
      if (!rec) throw Object.assign(new Error(`no job ${id} on this node; \`jobs\` lists them`), { name: 'UnknownDealError' });
      return rec;
    };
    const watchJob = (id: string, f: () => void) => {
      let set = this.#watchers.get(id);
      if (!set) this.#watchers.set(id, (set = new Set()));
      set.add(f);
      return () => void set.delete(f);
    };
    return { job, watchJob } as unknown as NodeApi;
  }
}

interface Ctx {
  jobs: FakeJobs;
  server: ApiServer;
  client: ApiClient;
  open: http.IncomingMessage[];
}

async function start(ctx: Ctx, events: { maxStreams?: number; heartbeatMs?: number } = {}): Promise<void> {
  ctx.jobs = new FakeJobs();
  ctx.open = [];
  ctx.server = await startApiServer({ host: '127.0.0.1', port: 0, token: TOKEN, events }, ctx.jobs.api(), { warn: () => {}, debug: () => {} });
  ctx.client = new ApiClient(ctx.server.url, TOKEN);
}

/** Opens a stream; the response as it starts. */
async function stream(ctx: Ctx, id: string, token = TOKEN): Promise<http.IncomingMessage> {
  const res = await new ApiClient(ctx.server.url, token).open('GET', `/v1/jobs/${id}/events`);
  ctx.open.push(res);
  return res;
}

/** The next event of a stream, or 'end' when it ended; rejects after 3 s. */
function next(events: AsyncIterator<ServerSentEvent>): Promise<ServerSentEvent | 'end'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('no event within 3 s')), 3000)));
  return Promise.race([events.next().then((r) => (r.done ? 'end' : r.value)), timeout]).finally(() => clearTimeout(timer));
}

const record = (e: ServerSentEvent | 'end'): Rec => {
  if (e === 'end') throw new Error('the stream ended; a record was expected');
  assert.is(e.event, 'job');
  return JSON.parse(e.data) as Rec;
};

async function body(res: http.IncomingMessage): Promise<{ error?: string; code?: string }> {
  let text = '';
  for await (const c of res) text += String(c);
  return JSON.parse(text) as { error?: string; code?: string };
}

async function until(what: string, check: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const Stream = suite<Ctx>('api: GET /v1/jobs/:id/events', {} as Ctx);
Stream.before.each(async (ctx) => start(ctx));
Stream.after.each(async (ctx) => {
  for (const r of ctx.open) r.destroy();
  await ctx.server.stop();
});

Stream('sends the record at once and after each change, not twice the same, and ends after the terminal one', async (ctx) => {
  ctx.jobs.set({ id: 'j1', state: 'requesting' });
  const res = await stream(ctx, 'j1');
  assert.is(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/event-stream/);
  const events = serverSentEvents(res)[Symbol.asyncIterator]();
  assert.is(record(await next(events)).state, 'requesting', 'the record at once');
  ctx.jobs.poke('j1'); // no change: nothing is sent
  ctx.jobs.set({ id: 'j1', state: 'running' });
  assert.is(record(await next(events)).state, 'running');
  ctx.jobs.set({ id: 'j1', state: 'completed' });
  assert.is(record(await next(events)).state, 'completed');
  assert.is(await next(events), 'end', 'the stream ends after the terminal record');
  await until('the node to let go of the stream', () => ctx.jobs.watchers === 0 && ctx.server.openStreams() === 0);
});

Stream('a job that ended already: its record, then the end', async (ctx) => {
  ctx.jobs.set({ id: 'j1', state: 'failed' });
  const events = serverSentEvents(await stream(ctx, 'j1'))[Symbol.asyncIterator]();
  assert.is(record(await next(events)).state, 'failed');
  assert.is(await next(events), 'end');
  assert.is(ctx.jobs.watchers, 0);
});

Stream('an ensemble that is up goes on; its stream ends once the ensemble ended', async (ctx) => {
  ctx.jobs.set({ id: 'e1', kind: 'ensemble', state: 'running', endedAt: null });
  const events = serverSentEvents(await stream(ctx, 'e1'))[Symbol.asyncIterator]();
  assert.is(record(await next(events)).state, 'running');
  ctx.jobs.set({ id: 'e1', kind: 'ensemble', state: 'stopping', endedAt: null });
  assert.is(record(await next(events)).state, 'stopping');
  ctx.jobs.set({ id: 'e1', kind: 'ensemble', state: 'cancelled', endedAt: 1 });
  assert.is(record(await next(events)).endedAt, 1);
  assert.is(await next(events), 'end');
});

Stream('a change while the first record is read is sent after it', async (ctx) => {
  ctx.jobs.set({ id: 'j1', state: 'requesting' });
  ctx.jobs.readMs = 50;
  const opening = stream(ctx, 'j1');
  await until('the first read', () => ctx.jobs.reads === 1);
  ctx.jobs.set({ id: 'j1', state: 'committing' }); // the read under way returns the older record
  const events = serverSentEvents(await opening)[Symbol.asyncIterator]();
  assert.is(record(await next(events)).state, 'requesting');
  assert.is(record(await next(events)).state, 'committing', 'the change during the first read was lost');
});

Stream('many changes while a record is read make one more read, not one each', async (ctx) => {
  ctx.jobs.set({ id: 'j1', state: 'running', n: 0 });
  const events = serverSentEvents(await stream(ctx, 'j1'))[Symbol.asyncIterator]();
  record(await next(events));
  ctx.jobs.readMs = 30;
  const before = ctx.jobs.reads;
  for (let n = 1; n <= 50; n += 1) ctx.jobs.set({ id: 'j1', state: 'running', n });
  let last = record(await next(events));
  while (last.n !== 50) last = record(await next(events));
  assert.ok(ctx.jobs.reads - before <= 3, `${ctx.jobs.reads - before} reads for 50 changes`);
});

Stream('refused without the token (401) or with a wrong one; nothing is watched', async (ctx) => {
  ctx.jobs.set({ id: 'j1', state: 'running' });
  for (const token of ['', 'wrong-token-0123456789abcdef']) {
    const res = await stream(ctx, 'j1', token);
    assert.is(res.statusCode, 401);
    assert.is((await body(res)).code, 'unauthorized');
  }
  assert.is(ctx.jobs.watchers, 0);
  assert.is(ctx.server.openStreams(), 0);
});

Stream('an unknown job is a 404 with the node\'s message, and leaves nothing watched', async (ctx) => {
  const res = await stream(ctx, 'nope');
  assert.is(res.statusCode, 404);
  const b = await body(res);
  assert.is(b.error, 'no job nope on this node; `jobs` lists them');
  assert.is(b.code, 'UnknownDealError');
  assert.is(ctx.jobs.watchers, 0);
  assert.is(ctx.server.openStreams(), 0);
});

Stream('another method on the route is a 405', async (ctx) => {
  const res = await ctx.client.open('POST', '/v1/jobs/j1/events');
  assert.is(res.statusCode, 405);
  await body(res);
});

Stream('stop() ends the open streams', async (ctx) => {
  ctx.jobs.set({ id: 'j1', state: 'running' });
  const events = serverSentEvents(await stream(ctx, 'j1'))[Symbol.asyncIterator]();
  record(await next(events));
  await ctx.server.stop();
  const end = await next(events).catch((e: Error) => e);
  assert.ok(end === 'end' || end instanceof Error, 'the stream did not end');
  assert.is(ctx.jobs.watchers, 0);
  ctx.server = await startApiServer({ host: '127.0.0.1', port: 0, token: TOKEN }, ctx.jobs.api(), { warn: () => {}, debug: () => {} });
});

Stream.run();

const Bounded = suite<Ctx>('api: job event streams are bounded and leave nothing behind', {} as Ctx);
Bounded.before.each(async (ctx) => start(ctx, { maxStreams: 3, heartbeatMs: 40 }));
Bounded.after.each(async (ctx) => {
  for (const r of ctx.open) r.destroy();
  await ctx.server.stop();
});

Bounded('past the limit a stream is refused with 429 and a JSON error; a client that goes frees its slot and its listener', async (ctx) => {
  ctx.jobs.set({ id: 'j1', state: 'running' });
  const streams = [];
  for (let i = 0; i < 3; i += 1) {
    const res = await stream(ctx, 'j1');
    assert.is(res.statusCode, 200);
    const events = serverSentEvents(res)[Symbol.asyncIterator]();
    record(await next(events));
    streams.push(res);
  }
  assert.is(ctx.jobs.watchers, 3);
  const over = await stream(ctx, 'j1');
  assert.is(over.statusCode, 429);
  const b = await body(over);
  assert.is(b.code, 'TooManyStreamsError');
  assert.match(b.error ?? '', /3 event streams are open/);
  assert.is(ctx.jobs.watchers, 3, 'the refused stream watches nothing');

  streams[0]!.destroy(); // the client goes (Ctrl-C)
  await until('the node to notice the client went', () => ctx.jobs.watchers === 2 && ctx.server.openStreams() === 2);
  const again = await stream(ctx, 'j1');
  assert.is(again.statusCode, 200, 'the freed slot is served');
  for (const r of [...streams, again]) r.destroy();
  await until('every listener to be gone', () => ctx.jobs.watchers === 0 && ctx.server.openStreams() === 0);
});

Bounded('heartbeat comments come every heartbeatMs while nothing changes', async (ctx) => {
  ctx.jobs.set({ id: 'j1', state: 'running' });
  const res = await stream(ctx, 'j1');
  res.setEncoding('utf8');
  let text = '';
  res.on('data', (d: string) => (text += d));
  await new Promise((r) => setTimeout(r, 250));
  const beats = text.split(': heartbeat\n\n').length - 1;
  assert.ok(beats >= 3, `${beats} heartbeats in 250 ms at one per 40 ms`);
  assert.is(text.split('event: job').length - 1, 1, 'the record was sent again without a change');
});

Bounded.run();

const Follow = suite<Ctx>('client: followJob', {} as Ctx);
Follow.before.each(async (ctx) => start(ctx));
Follow.after.each(async (ctx) => {
  for (const r of ctx.open) r.destroy();
  await ctx.server.stop();
});

Follow('follows the stream until the record wanted, in order, and lets go of it', async (ctx) => {
  ctx.jobs.set({ id: 'j1', state: 'requesting' });
  const seen: string[] = [];
  const following = followJob<Rec>(ctx.client, 'j1', { until: (r) => r.state === 'completed', onRecord: (r) => void seen.push(r.state) });
  await until('the stream', () => ctx.jobs.watchers === 1);
  for (const state of ['committing', 'running', 'completed']) {
    ctx.jobs.set({ id: 'j1', state });
    await until(`${state} to arrive`, () => seen.at(-1) === state);
  }
  assert.is((await following).state, 'completed');
  assert.equal(seen, ['requesting', 'committing', 'running', 'completed']);
  await until('the node to let go', () => ctx.jobs.watchers === 0 && ctx.server.openStreams() === 0);
});

Follow('stopping before the end (an ensemble that is up) closes the stream on the node', async (ctx) => {
  ctx.jobs.set({ id: 'e1', kind: 'ensemble', state: 'running', endedAt: null });
  const r = await followJob<Rec>(ctx.client, 'e1', { until: (rec) => rec.state === 'running', onRecord: () => {} });
  assert.is(r.state, 'running');
  await until('the node to let go', () => ctx.jobs.watchers === 0 && ctx.server.openStreams() === 0);
});

Follow('an unknown job rejects with the node\'s 404, without polling', async (ctx) => {
  const err = (await followJob(ctx.client, 'nope', { until: () => true, onRecord: () => {} }).catch((e: Error) => e)) as Error & { status?: number };
  assert.is(err.name, 'RequestFailedError');
  assert.is(err.status, 404);
  assert.match(err.message, /no job nope/);
  assert.is(ctx.jobs.reads, 1);
});

Follow.run();

/** A node of another kind, served by `handle`: an older one, or one that drops connections. */
async function rawServer(handle: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

const Older = suite('client: followJob with other nodes');

Older('a node without the stream (404 not-found for the route) is polled', async () => {
  let gets = 0;
  const node = await rawServer((req, res) => {
    const json = (status: number, b: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(b));
    if (req.url === '/v1/jobs/j1/events') return json(404, { error: 'no such endpoint /v1/jobs/j1/events', code: 'not-found' });
    gets += 1;
    json(200, { id: 'j1', state: gets < 3 ? 'running' : 'completed' });
  });
  try {
    const seen: string[] = [];
    const end = await followJob<Rec>(new ApiClient(node.url, TOKEN), 'j1', { until: (r) => r.state === 'completed', onRecord: (r) => void seen.push(r.state), pollMs: 5 });
    assert.is(end.state, 'completed');
    assert.equal(seen, ['running', 'running', 'completed']);
  } finally {
    await node.close();
  }
});

Older('a stream that breaks before the end is opened again, and goes on from the current record', async () => {
  let opened = 0;
  const node = await rawServer((_req, res) => {
    opened += 1;
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    if (opened === 1) {
      res.write(`event: job\ndata: ${JSON.stringify({ id: 'j1', state: 'running' })}\n\n`);
      setTimeout(() => res.socket?.destroy(), 20);
    } else res.end(`: hello\n\nevent: job\ndata: ${JSON.stringify({ id: 'j1', state: 'completed' })}\n\n`);
  });
  try {
    const seen: string[] = [];
    const end = await followJob<Rec>(new ApiClient(node.url, TOKEN), 'j1', { until: (r) => r.state === 'completed', onRecord: (r) => void seen.push(r.state), pollMs: 5 });
    assert.is(end.state, 'completed');
    assert.equal(seen, ['running', 'completed']);
    assert.is(opened, 2);
  } finally {
    await node.close();
  }
});

Older('a stream silent past idleMs is given up and opened again', async () => {
  let opened = 0;
  const node = await rawServer((_req, res) => {
    opened += 1;
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    if (opened === 1) res.write(`event: job\ndata: ${JSON.stringify({ id: 'j1', state: 'running' })}\n\n`); // then silence
    else res.end(`event: job\ndata: ${JSON.stringify({ id: 'j1', state: 'completed' })}\n\n`);
  });
  try {
    const end = await followJob<Rec>(new ApiClient(node.url, TOKEN), 'j1', { until: (r) => r.state === 'completed', onRecord: () => {}, pollMs: 5, idleMs: 100 });
    assert.is(end.state, 'completed');
    assert.is(opened, 2);
  } finally {
    await node.close();
  }
});

Older('a node that is gone: NodeUnreachableError', async () => {
  const node = await rawServer(() => {});
  const url = node.url;
  await node.close();
  const err = (await followJob(new ApiClient(url, TOKEN), 'j1', { until: () => true, onRecord: () => {} }).catch((e: Error) => e)) as Error;
  assert.is(err.name, 'NodeUnreachableError');
  assert.match(err.message, /no node answers/);
});

Older.run();
