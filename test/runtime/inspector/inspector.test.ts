// The Stately inspector relay (loopback websocket relay + page) and the bridge that feeds it inspection records.
// Real sockets on 127.0.0.1 port 0; every wait is bounded.
import { spawn } from 'node:child_process';
import { closedPort } from '../../fixtures/ports.ts';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import WebSocket from 'ws';
import { HostedActor } from '../../../actors/hosted-actor.ts';
import { nodeActorKind } from '../../../actors/node.actor.ts';
import type { NodeEvent } from '../../../machines/node.messages.ts';
import { ManualClock } from '../../../runtime/clock.ts';
import { type InspectorBridge, createInspectorBridge } from '../../../runtime/inspector/inspector.ts';
import { INSPECTOR_UI, type InspectorRelay, MAX_KEPT_BYTES, MAX_MESSAGE_BYTES, startInspectorRelay } from '../../../runtime/inspector/inspector-relay.ts';
import { BENCH, GiB, HOST, OFFER, T0 } from '../../fixtures/node-fixtures.ts';
import { waitFor, within } from '../../fixtures/waiting.ts';

const CHILD = fileURLToPath(new URL('./inspector-exit.child.ts', import.meta.url));

/** A websocket client of the relay that records every text message it receives. */
interface Client {
  readonly ws: WebSocket;
  readonly got: string[];
}

async function connect(url: string): Promise<Client> {
  const ws = new WebSocket(url);
  const got: string[] = [];
  ws.on('message', (data: Buffer) => got.push(data.toString()));
  await within(`a connection to ${url}`, new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject)));
  return { ws, got };
}

// ---------------------------------------------------------------------------------------------------------------

interface RelayCtx {
  relay: InspectorRelay;
  clients: Client[];
}

const Relay = suite<RelayCtx>('inspector relay: passes messages between clients on loopback', {} as RelayCtx);
Relay.before.each(async (c) => {
  c.relay = await startInspectorRelay({ host: '127.0.0.1', port: 0 });
  c.clients = [];
});
Relay.after.each((c) => {
  for (const k of c.clients) k.ws.terminate();
  c.relay.stop();
});

async function client(c: RelayCtx): Promise<Client> {
  const k = await connect(c.relay.watchUrl);
  c.clients.push(k);
  return k;
}

Relay('listens on the loopback port it was given (0: any free one) and names its url, watch url and page', (c) => {
  const m = /^ws:\/\/127\.0\.0\.1:(\d+)$/.exec(c.relay.url);
  assert.ok(m, c.relay.url);
  assert.ok(Number(m[1]) > 0);
  const token = /^http:\/\/127\.0\.0\.1:\d+\/\?token=([0-9a-f]{32})$/.exec(c.relay.page)?.[1];
  assert.ok(token, c.relay.page);
  assert.is(c.relay.page, `http://127.0.0.1:${m[1]}/?token=${token}`);
  assert.is(c.relay.watchUrl, `${c.relay.url}/?token=${token}`);
});

Relay('a message from one client reaches the others, not the sender', async (c) => {
  const a = await client(c);
  const b = await client(c);
  const d = await client(c);
  a.ws.send('{"from":"a"}');
  await waitFor('b and d to get the message of a', () => b.got.length === 1 && d.got.length === 1);
  b.ws.send('{"from":"b"}');
  await waitFor('d to get the message of b', () => d.got.length === 2);
  // the relay passes messages on in the order it got them: an echo to a or b would reach them before d's
  d.ws.send('{"from":"d"}');
  await waitFor('a and b to get the message of d', () => a.got.includes('{"from":"d"}') && b.got.includes('{"from":"d"}'));
  assert.equal(a.got, ['{"from":"b"}', '{"from":"d"}']);
  assert.equal(b.got, ['{"from":"a"}', '{"from":"d"}']);
  assert.equal(d.got, ['{"from":"a"}', '{"from":"b"}']);
});

Relay('a late joiner first gets the kept messages, in order', async (c) => {
  const a = await client(c);
  const b = await client(c);
  for (const n of [1, 2, 3]) a.ws.send(`m${n}`);
  await waitFor('b to get all three (so the relay has them)', () => b.got.length === 3);
  const late = await client(c);
  await waitFor('the late joiner to get the kept messages', () => late.got.length >= 3);
  a.ws.send('m4');
  await waitFor('the late joiner to get the next live message', () => late.got.length >= 4);
  assert.equal(late.got, ['m1', 'm2', 'm3', 'm4']);
});

Relay('only the last 500 messages are kept for late joiners', async (c) => {
  const a = await client(c);
  const b = await client(c);
  for (let n = 0; n < 510; n += 1) a.ws.send(`m${n}`);
  await waitFor('b to get all 510', () => b.got.length === 510);
  const late = await client(c);
  // a live message after the kept ones: once it is in, every kept message the late joiner was sent is too
  a.ws.send('live');
  await waitFor('the late joiner to get the live message', () => late.got.includes('live'));
  assert.is(late.got.length, 501);
  assert.is(late.got[0], 'm10');
  assert.is(late.got[499], 'm509');
  assert.is(late.got[500], 'live');
});

Relay('GET on the page url returns HTML that embeds the Stately inspector and feeds it from the relay', async (c) => {
  const r = await within('the page', fetch(c.relay.page));
  assert.is(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/html/);
  const html = await r.text();
  assert.match(html, /^<!DOCTYPE html>/);
  assert.ok(html.includes(`<iframe id="inspector" src="${INSPECTOR_UI}">`), 'the inspector is embedded');
  assert.is(INSPECTOR_UI, 'https://stately.ai/inspect');
  assert.ok(html.includes(`new WebSocket(${JSON.stringify(c.relay.watchUrl)})`), 'the page watches this relay');
  assert.is(r.headers.get('referrer-policy'), 'no-referrer', 'the token would leak to the embedded inspector');
});

/** The status of a websocket upgrade that was refused, or 101 when it was accepted. */
function upgrade(url: string, headers: Record<string, string> = {}): Promise<number> {
  return within(`an upgrade at ${url}`, new Promise<number>((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', () => {});
  }));
}

Relay('a web page cannot watch or publish: another Origin is refused with 403, with or without the token', async (c) => {
  const evil = { origin: 'https://evil.example' };
  assert.is(await upgrade(c.relay.url, evil), 403);
  assert.is(await upgrade(c.relay.watchUrl, evil), 403);
  assert.is(await upgrade(`${c.relay.url}/?token=${'0'.repeat(32)}`, { origin: new URL(c.relay.page).origin }), 403);
  // the relay's own page, with the token, may
  assert.is(await upgrade(c.relay.watchUrl, { origin: new URL(c.relay.page).origin }), 101);
});

Relay('the page without its token is refused with 403', async (c) => {
  const u = new URL(c.relay.page);
  for (const page of [u.origin, `${u.origin}/?token=${'f'.repeat(32)}`, `${u.origin}/?token=short`]) {
    const r = await within('the page', fetch(page));
    assert.is(r.status, 403, page);
    assert.not.match(await r.text(), /WebSocket/);
  }
});

Relay('a local process without the token may publish, but receives nothing', async (c) => {
  const watcher = await client(c);
  const publisher = await connect(c.relay.url);
  c.clients.push(publisher);
  watcher.ws.send('from-watcher');
  publisher.ws.send('from-publisher');
  await waitFor('the watcher to get the publisher\'s message', () => watcher.got.includes('from-publisher'));
  const marker = await client(c);
  marker.ws.send('marker');
  await waitFor('the watcher to get the marker', () => watcher.got.includes('marker'));
  assert.equal(publisher.got, [], 'a publisher without the token received messages');
});

Relay('a message over 1 MiB closes its connection and is not kept; kept messages stay under their byte cap', async (c) => {
  const a = await client(c);
  const closed = new Promise<number>((resolve) => a.ws.once('close', (code) => resolve(code)));
  a.ws.send('x'.repeat(MAX_MESSAGE_BYTES + 1));
  assert.is(await within('the oversized sender to be closed', closed), 1009);
  const b = await client(c);
  const seen = await client(c);
  const big = 'y'.repeat(MAX_MESSAGE_BYTES - 16);
  for (let i = 0; i < 12; i += 1) b.ws.send(`${i}${big}`);
  b.ws.send('last');
  await waitFor('the relay to pass every message on', () => seen.got.includes('last'), 10_000);
  const late = await client(c);
  await waitFor('the late joiner to get the kept messages', () => late.got.includes('last'), 10_000);
  const bytes = late.got.reduce((n, m) => n + m.length, 0);
  assert.ok(bytes <= MAX_KEPT_BYTES, `kept ${bytes} bytes`);
  assert.ok(late.got.length >= 8 && late.got.length < 13, `kept ${late.got.length} messages`);
  assert.not.ok(late.got.some((m) => m.length > MAX_MESSAGE_BYTES), 'the oversized message was kept');
});

Relay.run();

// ---------------------------------------------------------------------------------------------------------------

interface BridgeCtx {
  relay: InspectorRelay;
  watcher: Client;
  bridge: InspectorBridge;
  warnings: unknown[];
  actor: HostedActor;
}

const BATCH: NodeEvent[] = [
  { type: 'node.onboard', offer: OFFER, host: HOST, benchmark: BENCH },
  { type: 'ledger.lock', id: 'a', resources: { cpu: 1, memory: GiB, disk: 0, gpus: 0 }, expiresAt: T0 + 1000, now: T0 },
];

interface Message {
  type: string;
  sessionId: string;
  name?: string;
  definition?: string;
  event?: { type: string };
  snapshot?: { value?: unknown; context?: unknown; status?: string };
}

const Bridge = suite<BridgeCtx>('inspector bridge: records reach the relay as Stately inspection messages', {} as BridgeCtx);
Bridge.before.each(async (c) => {
  c.relay = await startInspectorRelay({ host: '127.0.0.1', port: 0 });
  c.watcher = await connect(c.relay.watchUrl);
  c.warnings = [];
  c.bridge = await createInspectorBridge(c.relay.url, { warn: (obj) => c.warnings.push(obj) });
  c.actor = new HostedActor('node', nodeActorKind, { input: {}, inspect: true });
});
Bridge.after.each((c) => {
  c.actor.stop();
  c.bridge.stop();
  c.watcher.ws.terminate();
  c.relay.stop();
});

Bridge('a bridge to a given url uses it as is and runs no relay of its own', (c) => {
  assert.is(c.bridge.url, c.relay.url);
  assert.is(c.bridge.page, null);
  assert.equal(c.warnings, []);
});

Bridge('actor, event and snapshot records arrive as @xstate.* messages with the actor session id', async (c) => {
  const announced = c.actor.takeInspections();
  const delivered = c.actor.deliver(BATCH).inspections ?? [];
  const sessionId = announced.find((r) => r.type === '@xstate.actor')?.sessionId;
  assert.type(sessionId, 'string');
  c.bridge.forward(announced);
  c.bridge.forward(delivered);
  const expected = announced.length + delivered.length;
  assert.ok(expected >= 5, `expected an actor record and two event and snapshot records, got ${expected}`);
  // a last record after them: once it is in, every message the bridge sent before it is too
  c.bridge.forward([{ type: '@xstate.event', sessionId: 'end:0', event: { type: 'end' } }]);
  await waitFor(`${expected} messages and the last record at the watcher`, () => c.watcher.got.some((m) => m.includes('end:0')));
  const msgs = c.watcher.got.slice(0, -1).map((m) => JSON.parse(m) as Message);
  assert.is(c.watcher.got.length, expected + 1);
  assert.is(msgs.length, expected);
  assert.equal(msgs.map((m) => m.type), [...announced, ...delivered].map((r) => r.type));
  assert.ok(msgs.every((m) => m.sessionId === sessionId), JSON.stringify(msgs.map((m) => m.sessionId)));

  const actor = msgs.find((m) => m.type === '@xstate.actor')!;
  assert.is(actor.name, 'node');
  assert.is((JSON.parse(actor.definition!) as { id: string }).id, 'node');

  // the actor's start (xstate.init), then the batch
  assert.equal(msgs.filter((m) => m.type === '@xstate.event').map((m) => m.event?.type), ['xstate.init', 'node.onboard', 'ledger.lock']);
  const snapshots = msgs.filter((m) => m.type === '@xstate.snapshot');
  assert.equal(snapshots.map((m) => m.event?.type), ['xstate.init', 'node.onboard', 'ledger.lock']);
  assert.equal(snapshots.map((m) => m.snapshot?.value), ['offboarded', 'registered', 'registered']);
  assert.equal(Object.keys((snapshots[2]!.snapshot?.context as { ledger: { locks: object } }).ledger.locks), ['a']);
});

Bridge('records forwarded before the socket opened are still delivered, once', async (c) => {
  const early = await createInspectorBridge(c.relay.url, { warn: () => {} });
  try {
    early.forward([{ type: '@xstate.event', sessionId: 'early:0', event: { type: 'first' } }]);
    await waitFor('the early record', () => c.watcher.got.length >= 1);
    early.forward([{ type: '@xstate.event', sessionId: 'early:0', event: { type: 'second' } }]);
    early.forward([{ type: '@xstate.event', sessionId: 'early:0', event: { type: 'last' } }]);
    await waitFor('the last record', () => c.watcher.got.some((m) => (JSON.parse(m) as Message).event?.type === 'last'));
    assert.equal(c.watcher.got.map((m) => (JSON.parse(m) as Message).event?.type), ['first', 'second', 'last']);
  } finally {
    early.stop();
  }
});


Bridge('a bridge whose relay is not up tries again 5 s later on its clock, and delivers what it held', async (c) => {
  const clock = new ManualClock();
  const port = await closedPort();
  const late = await createInspectorBridge(`ws://127.0.0.1:${port}`, { warn: () => {} }, { clock });
  let relay: InspectorRelay | undefined;
  let watcher: Client | undefined;
  try {
    late.forward([{ type: '@xstate.event', sessionId: 'late:0', event: { type: 'held' } }]);
    await waitFor('the failed connection to arm a retry', () => clock.pending === 1);
    relay = await startInspectorRelay({ host: '127.0.0.1', port });
    watcher = await connect(relay.watchUrl);
    clock.advance(4999);
    assert.is(clock.pending, 1, 'the retry ran early');
    clock.advance(1);
    assert.is(clock.pending, 0);
    await waitFor('the held record', () => watcher!.got.length >= 1);
    assert.equal(watcher.got.map((m) => (JSON.parse(m) as Message).event?.type), ['held']);
  } finally {
    late.stop();
    watcher?.ws.terminate();
    relay?.stop();
  }
});

Bridge.run();

// ---------------------------------------------------------------------------------------------------------------

const Exit = suite('inspector: stop() lets the process exit');

/** Runs the child in `mode`; resolves with its exit code and output, or kills it after `ms`. */
function runChild(mode: string, ms = 15_000): Promise<{ code: number | null; out: string; err: string; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timedOut = false;
    const guard = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, ms);
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(guard);
      resolve({ code, out, err, timedOut });
    });
  });
}

for (const mode of ['connected', 'immediate', 'unreachable']) {
  Exit(`after stop() the process exits on its own (${mode})`, async () => {
    const r = await runChild(mode);
    assert.is(r.timedOut, false, `the child was still running 15 s later (stopped: ${JSON.stringify(r.out)}; stderr: ${r.err})`);
    assert.is(r.code, 0, r.err);
    assert.is(r.out, `stopped ${mode}\n`);
  });
}

Exit.run();
