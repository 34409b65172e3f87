// TCP tunnels over the nodes' own libp2p connections (runtime/net/tunnel/): two real hosts on loopback, real TCP
// servers behind the accepting host, real clients in front of the dialling one.
import '../../../runtime/polyfills.ts';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Libp2pHost } from '../../../runtime/net/libp2p-host.ts';
import type { TunnelAcceptor, TunnelAcceptorOptions } from '../../../runtime/net/tunnel/tunnel-acceptor.ts';
import type { TunnelListener } from '../../../runtime/net/tunnel/tunnel-listener.ts';
import type { TunnelInit } from '../../../runtime/net/tunnel/tunnel-defaults.ts';
import { closedPort } from '../../fixtures/ports.ts';
import { type TargetServer, client, closedWithin, collect, hostPair, quiet, sha256, targetServer, tunnelLib, writeAll } from '../../fixtures/tunnel-fixtures.ts';
import { sleep, waitFor, within } from '../../fixtures/waiting.ts';

const TARGET = { deal: 'deal-1', part: 'kv', port: 'http' };

interface Ctx {
  a: Libp2pHost;
  b: Libp2pHost;
  server: TargetServer;
  acceptor: TunnelAcceptor;
  listener: TunnelListener;
  /** Headers the acceptor's authorize saw, with the peer they came from. */
  asked: { from: string; deal: string; part: string; port: string }[];
}

/** The target server, an acceptor on b granting TARGET to it (or `authorize`), and a listener on a towards it. */
async function tunnel(ctx: Ctx, opts: { server?: (s: Socket) => void; authorize?: TunnelAcceptorOptions['authorize']; init?: Partial<TunnelInit> } = {}) {
  const L = await tunnelLib;
  ctx.server = await targetServer(opts.server);
  ctx.asked = [];
  const grant: TunnelAcceptorOptions['authorize'] = (from, h) => {
    ctx.asked.push({ from, ...h });
    if (h.deal !== TARGET.deal) return { refused: 'unknown-deal' };
    if (h.part !== TARGET.part) return { refused: 'unknown-part' };
    return h.port === TARGET.port ? { port: ctx.server.port } : { refused: 'unknown-port' };
  };
  ctx.acceptor = await L.handleTunnels(ctx.b, { authorize: opts.authorize ?? grant, log: quiet, init: opts.init ?? {} });
  ctx.listener = await L.openTunnelListener(ctx.a, { peer: ctx.b.peerId, target: TARGET, log: quiet, init: opts.init ?? {} });
}

function tunnelSuite(title: string) {
  const s = suite<Ctx>(title);
  s.before(async (ctx) => {
    Object.assign(ctx, await hostPair());
  });
  s.after(async (ctx) => {
    await Promise.all([ctx.a.stop(), ctx.b.stop()]);
  });
  s.after.each(async (ctx) => {
    await ctx.listener?.close();
    await ctx.acceptor?.stop();
    await ctx.server?.close();
    Object.assign(ctx, { listener: undefined, acceptor: undefined, server: undefined });
  });
  return s;
}

// ---------------------------------------------------------------------------------------------- bytes

const Bytes = tunnelSuite('tunnel: bytes cross exactly, with back-pressure');

Bytes('a few bytes round-trip through the echo server, and the acceptor is told who asks for what', async (ctx) => {
  await tunnel(ctx);
  assert.match(ctx.listener.address, /^127\.0\.0\.1:\d+$/);
  const c = await client(ctx.listener.address);
  const got = collect(c);
  c.end('hello, tunnel');
  const r = await within('the echo', got);
  assert.is(r.data.toString(), 'hello, tunnel');
  assert.ok(r.ended, 'the client did not see a clean end');
  assert.equal(ctx.asked, [{ from: ctx.a.peerId.toString(), ...TARGET }]);
  await waitFor('the tunnel to finish on both sides', () => ctx.listener.counters.active === 0 && ctx.acceptor.counters.active === 0);
  const l = ctx.listener.counters.view();
  assert.equal([l.opened, l.bytesToPeer, l.bytesFromPeer, l.aborted, l.refusedTotal], [1, 13, 13, 0, 0]);
  assert.equal([ctx.acceptor.counters.opened, ctx.acceptor.counters.bytesFromPeer], [1, 13]);
});

Bytes('a target that speaks first: its greeting reaches the client (bytes right behind the status)', async (ctx) => {
  await tunnel(ctx, { server: (s) => s.end('220 ready\r\n') });
  const c = await client(ctx.listener.address);
  c.once('end', () => c.end()); // the server ended its side; the client ends its own once it has read all
  const r = await within('the greeting', collect(c));
  assert.is(r.data.toString(), '220 ready\r\n');
  assert.ok(r.ended);
  assert.is(r.error, null);
});

Bytes('bytes in the same chunk as the status are not lost', async (ctx) => {
  const L = await tunnelLib;
  await ctx.b.handle(L.TUNNEL_PROTOCOL, (stream) => {
    stream.send(Uint8Array.from([L.STATUS.ok, ...Buffer.from('right behind')]));
    void stream.close();
  });
  try {
    ctx.listener = await L.openTunnelListener(ctx.a, { peer: ctx.b.peerId, target: TARGET, log: quiet });
    const c = await client(ctx.listener.address);
    c.once('end', () => c.end());
    assert.is((await within('the bytes behind the status', collect(c))).data.toString(), 'right behind');
  } finally {
    await ctx.b.unhandle(L.TUNNEL_PROTOCOL);
  }
});

Bytes('20 MiB each way at once arrive exactly (by hash)', async (ctx) => {
  await tunnel(ctx);
  const data = randomBytes(20 * 1024 * 1024);
  const c = await client(ctx.listener.address);
  const got = collect(c);
  await within('writing 20 MiB', writeAll(c, data), 60_000);
  const r = await within('20 MiB back', got, 60_000);
  assert.is(r.data.length, data.length);
  assert.is(sha256(r.data), sha256(data));
  assert.is(r.error, null);
});

Bytes('50 connections at once each get their own bytes back', async (ctx) => {
  await tunnel(ctx);
  const datas = Array.from({ length: 50 }, () => randomBytes(64 * 1024 + Math.floor(Math.random() * 1024)));
  const results = await within(
    '50 echoes',
    Promise.all(
      datas.map(async (d) => {
        const c = await client(ctx.listener.address);
        const got = collect(c);
        await writeAll(c, d);
        return got;
      }),
    ),
    30_000,
  );
  results.forEach((r, i) => assert.is(sha256(r.data), sha256(datas[i]!), `connection ${i}`));
  await waitFor('every tunnel to finish', () => ctx.listener.counters.active === 0 && ctx.acceptor.counters.active === 0);
  assert.is(ctx.listener.counters.opened, 50);
  assert.is(ctx.acceptor.counters.view().refusedTotal, 0);
});

Bytes('a target that does not read holds the client back: the tunnel buffers a bounded amount', async (ctx) => {
  const held: Socket[] = [];
  let received = 0;
  await tunnel(ctx, {
    server: (s) => {
      s.pause();
      held.push(s);
      s.on('data', (c: Buffer) => (received += c.length));
    },
  });
  const c = await client(ctx.listener.address);
  const chunk = Buffer.alloc(256 * 1024, 7);
  let pushed = 0;
  // push until write() has said "wait" and no drain came for 500 ms, at most 200 MiB
  while (pushed < 200 * 1024 * 1024) {
    pushed += chunk.length;
    if (c.write(chunk)) continue;
    const drained = await Promise.race([new Promise((r) => c.once('drain', () => r(true))), sleep(500).then(() => false)]);
    if (!drained) break;
  }
  const inTunnel = ctx.listener.counters.bytesToPeer;
  assert.ok(pushed < 200 * 1024 * 1024, 'the client could push 200 MiB into a target that reads nothing');
  assert.ok(inTunnel < 48 * 1024 * 1024, `the tunnel took ${inTunnel} bytes for a target that reads nothing`);
  held[0]!.resume();
  c.end();
  await waitFor('every byte at the target', () => received === pushed, 20_000);
});

Bytes.run();

// ---------------------------------------------------------------------------------------------- refusals

const Refused = tunnelSuite('tunnel: a refused tunnel closes the client at once');

/** Connects, writes, and waits (2 s at most) for the connection to be closed; a reset during connect counts too. */
async function refusedClient(ctx: Ctx, target = ctx.listener.address) {
  const t0 = Date.now();
  let c: Socket;
  try {
    c = await client(target);
  } catch (e) {
    assert.is((e as NodeJS.ErrnoException).code, 'ECONNRESET');
    return { ms: Date.now() - t0, data: Buffer.alloc(0), ended: false, error: 'ECONNRESET' };
  }
  const got = collect(c);
  c.write('anyone there?');
  await closedWithin(c, 2000, 'a refused client connection');
  return { ms: Date.now() - t0, ...(await got) };
}

Refused('an unknown part: reset within 2 s, no data, refusal counted on both sides', async (ctx) => {
  await tunnel(ctx, { authorize: () => ({ refused: 'unknown-part' }) });
  const r = await refusedClient(ctx);
  assert.is(r.data.length, 0);
  assert.ok(r.ms < 2000, `closed after ${r.ms} ms`);
  assert.equal(ctx.listener.counters.view().refused, { 'unknown-part': 1 });
  assert.equal(ctx.acceptor.counters.view().refused, { 'unknown-part': 1 });
  assert.is(ctx.server.sockets.length, 0, 'the target was connected for a refused tunnel');
});

Refused('a target port with nothing listening: reset within 2 s, counted unreachable', async (ctx) => {
  const port = await closedPort();
  await tunnel(ctx, { authorize: () => ({ port }) });
  const r = await refusedClient(ctx);
  assert.is(r.data.length, 0);
  assert.equal(ctx.listener.counters.view().refused, { unreachable: 1 });
  assert.equal(ctx.acceptor.counters.view().refused, { unreachable: 1 });
});

Refused('authorize throwing or answering a non-port: refused as error, and the host keeps serving', async (ctx) => {
  let mode = 'throw';
  await tunnel(ctx, {
    authorize: () => {
      if (mode === 'throw') throw new Error('the ledger is gone');
      return mode === 'bad-port' ? { port: 70_000 } : { port: ctx.server.port };
    },
  });
  await refusedClient(ctx);
  mode = 'bad-port';
  await refusedClient(ctx);
  assert.equal(ctx.acceptor.counters.view().refused, { error: 1, unreachable: 1 });
  mode = 'ok';
  const c = await client(ctx.listener.address);
  const got = collect(c);
  c.end('still here');
  assert.is((await within('the echo', got)).data.toString(), 'still here');
});

Refused('more streams than the per-peer cap: the extra ones are refused busy while the first stay up', async (ctx) => {
  await tunnel(ctx, { init: { maxStreamsPerPeer: 3 } });
  const open = await Promise.all([0, 1, 2].map(() => client(ctx.listener.address)));
  await waitFor('3 tunnels carrying', () => ctx.acceptor.counters.active === 3);
  const r = await refusedClient(ctx);
  assert.is(r.data.length, 0);
  assert.equal(ctx.acceptor.counters.view().refused, { busy: 1 });
  assert.is(ctx.acceptor.streamsOf(ctx.a.peerId.toString()), 3);
  const got = collect(open[0]!);
  open[0]!.end('first');
  assert.is((await within('the first echo', got)).data.toString(), 'first');
  for (const c of open) c.destroy();
});

Refused('more connections than the listener carries: the extra one is reset at once', async (ctx) => {
  await tunnel(ctx, { init: { maxConnections: 2 } });
  const open = await Promise.all([0, 1].map(() => client(ctx.listener.address)));
  await waitFor('2 tunnels carrying', () => ctx.listener.counters.active === 2);
  const r = await refusedClient(ctx);
  assert.is(r.data.length, 0);
  assert.equal(ctx.listener.counters.view().refused, { 'too-many-connections': 1 });
  for (const c of open) c.destroy();
});

Refused('a far end that never answers the header: reset after openTimeoutMs, counted no-status', async (ctx) => {
  const L = await tunnelLib;
  const silent: { abort(e: Error): void }[] = [];
  await ctx.b.handle(L.TUNNEL_PROTOCOL, (stream) => void silent.push(stream));
  try {
    ctx.listener = await L.openTunnelListener(ctx.a, { peer: ctx.b.peerId, target: TARGET, log: quiet, init: { openTimeoutMs: 400 } });
    const r = await refusedClient(ctx);
    assert.is(r.data.length, 0);
    assert.ok(r.ms >= 350, `reset after ${r.ms} ms, before the status could have been late`);
    assert.equal(ctx.listener.counters.view().refused, { 'no-status': 1 });
  } finally {
    for (const s of silent) s.abort(new Error('test over'));
    await ctx.b.unhandle(L.TUNNEL_PROTOCOL);
  }
});

Refused('a peer that does not speak the protocol: reset within 2 s, counted dial-failed', async (ctx) => {
  const L = await tunnelLib;
  ctx.listener = await L.openTunnelListener(ctx.a, { peer: ctx.b.peerId, target: TARGET, log: quiet });
  const r = await refusedClient(ctx);
  assert.is(r.data.length, 0);
  assert.equal(ctx.listener.counters.view().refused, { 'dial-failed': 1 });
});

Refused.run();

// ---------------------------------------------------------------------------------------------- closing

const Closing = tunnelSuite('tunnel: closing either side closes the other');

/** A tunnel to a server that keeps its sockets (no echo), with one client connected through it. */
async function connected(ctx: Ctx): Promise<{ c: Socket; far: Socket }> {
  await tunnel(ctx, { server: () => {} });
  const c = await client(ctx.listener.address);
  await waitFor('the target connection', () => ctx.server.sockets.length === 1);
  return { c, far: ctx.server.sockets[0]! };
}

Closing('the client resets: the target connection closes', async (ctx) => {
  const { c, far } = await connected(ctx);
  c.resetAndDestroy();
  await closedWithin(far, 2000, 'the target connection');
  await waitFor('both ends counted done', () => ctx.listener.counters.active === 0 && ctx.acceptor.counters.active === 0);
});

Closing('the target resets: the client connection closes', async (ctx) => {
  const { c, far } = await connected(ctx);
  const got = collect(c);
  far.resetAndDestroy();
  await closedWithin(c, 2000, 'the client connection');
  assert.is((await got).data.length, 0);
});

Closing('half-closes cross: the target still answers after the client ended its side, then ends', async (ctx) => {
  const { c, far } = await connected(ctx);
  const got = collect(c);
  const farGot: Buffer[] = [];
  far.on('data', (b: Buffer) => farGot.push(b));
  far.once('end', () => {
    far.write(`you said ${Buffer.concat(farGot).toString()}`);
    far.end();
  });
  c.end('bye');
  const r = await within('the answer after the client ended', got);
  assert.is(r.data.toString(), 'you said bye');
  assert.ok(r.ended);
  assert.is(r.error, null);
  await closedWithin(far, 2000, 'the target connection');
});

Closing('closing the listener resets what it carries; stopping the acceptor does too', async (ctx) => {
  const { c, far } = await connected(ctx);
  await ctx.listener.close();
  await closedWithin(c, 2000, 'the client connection');
  await closedWithin(far, 2000, 'the target connection');
  const L = await tunnelLib;
  ctx.listener = await L.openTunnelListener(ctx.a, { peer: ctx.b.peerId, target: TARGET, log: quiet });
  const c2 = await client(ctx.listener.address);
  await waitFor('the second target connection', () => ctx.server.sockets.length === 2);
  await ctx.acceptor.stop();
  await closedWithin(c2, 5000, 'the client connection after the acceptor stopped');
  await closedWithin(ctx.server.sockets[1]!, 5000, 'the target connection after the acceptor stopped');
});

Closing.run();

// ---------------------------------------------------------------------------------------------- bad input

const BadInput = tunnelSuite('tunnel: bad input from a raw stream is refused, and the host stays up');
BadInput.before.each((ctx) => tunnel(ctx, { init: { headerTimeoutMs: 300, refuseGraceMs: 500 } }));

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const framed = (body: Uint8Array) => Uint8Array.from([...(body.length < 128 ? [body.length] : [(body.length & 0x7f) | 0x80, body.length >> 7]), ...body]);

/**
 * Opens a raw tunnel stream from a (not through our listener), sends `bytes`, closes its writing end when
 * `closeWrite`, and returns everything the acceptor answered before it closed its end.
 */
async function rawAnswer(ctx: Ctx, bytes: Uint8Array | null, closeWrite = false): Promise<number[]> {
  const L = await tunnelLib;
  const s = await ctx.a.dialProtocol(ctx.b.peerId, L.TUNNEL_PROTOCOL);
  if (bytes) s.send(bytes);
  if (closeWrite) await s.close();
  const got: number[] = [];
  for await (const c of s) got.push(...c.subarray());
  await s.close();
  return got;
}

BadInput('garbage, an oversized header, one cut short, one never sent, a wrong shape: each answered bad-header', async (ctx) => {
  const { STATUS } = await tunnelLib;
  const bad = [STATUS['bad-header']];
  assert.equal(await rawAnswer(ctx, framed(new TextEncoder().encode('hello'))), bad, 'not JSON');
  assert.equal(await rawAnswer(ctx, Uint8Array.from([0xff, 0xff, 0xff, 0x01])), bad, 'a runaway length prefix');
  assert.equal(await rawAnswer(ctx, framed(new Uint8Array(2000).fill(0x20))), bad, 'a 2000-byte header');
  assert.equal(await rawAnswer(ctx, Uint8Array.from([0x88, 0x40])), bad, 'an 8 KiB length, no body');
  assert.equal(await rawAnswer(ctx, framed(json(TARGET)).subarray(0, 12), true), bad, 'cut short by the stream end');
  assert.equal(await rawAnswer(ctx, null), bad, 'nothing within headerTimeoutMs');
  assert.equal(await rawAnswer(ctx, framed(json({ ...TARGET, part: 1 }))), bad, 'a number for a string');
  assert.equal(await rawAnswer(ctx, framed(json({ ...TARGET, extra: 'x' }))), bad, 'an extra field');
  assert.equal(await rawAnswer(ctx, framed(new Uint8Array([0xc3, 0x28]))), bad, 'invalid UTF-8');
  assert.equal(ctx.acceptor.counters.view().refused, { 'bad-header': 9 });
  assert.is(ctx.acceptor.streamsOf(ctx.a.peerId.toString()), 0, 'a refused stream still holds a slot');
  assert.is(ctx.server.sockets.length, 0);
  const c = await client(ctx.listener.address);
  const got = collect(c);
  c.end('after the garbage');
  assert.is((await within('the echo after the garbage', got)).data.toString(), 'after the garbage');
});

BadInput('an unknown part in a well-formed header: answered with its own code, and the bytes behind it are dropped', async (ctx) => {
  const { STATUS } = await tunnelLib;
  const header = framed(json({ ...TARGET, part: 'db' }));
  const tail = randomBytes(1024 * 1024);
  assert.equal(await rawAnswer(ctx, Uint8Array.from([...header, ...tail])), [STATUS['unknown-part']]);
  assert.equal(ctx.asked.map((h) => h.part), ['db']);
  assert.is(ctx.server.sockets.length, 0);
});

BadInput('a raw dialler that stays after its refusal is reset after refuseGraceMs', async (ctx) => {
  const L = await tunnelLib;
  const s = await ctx.a.dialProtocol(ctx.b.peerId, L.TUNNEL_PROTOCOL);
  s.send(framed(json({ ...TARGET, deal: 'other' })));
  const closed = new Promise<string>((resolve) => s.addEventListener('close', () => resolve(s.status), { once: true }));
  const status = await within('the stream to be reset', closed, 3000);
  assert.is(status, 'reset');
  assert.equal(ctx.acceptor.counters.view().refused, { 'unknown-deal': 1 });
});

BadInput.run();
