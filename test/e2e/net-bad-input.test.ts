/**
 * Bad input from a raw libp2p peer, built from the libp2p packages and not from our code path: every kind
 * of bad frame or envelope is refused and counted by reason, and the node keeps serving its other peer.
 * The envelope format is written out here independently (DAG-CBOR body, ed25519 over a domain prefix).
 */
import '../../runtime/polyfills.ts';
import type { Ed25519PrivateKey, Libp2p, Stream } from '@libp2p/interface';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type NodeProcess, cli, cliJson, eventually, killAll, makeTempDir, removeTempDirs, startNode } from './harness.ts';
import { frame, rawPeerLib, readVarint, serveChannel, varint } from '../fixtures/raw-peer-lib.ts';
import { apiGet } from './net-api.ts';

const PROTOCOL = '/dms/actor/1.0.0';
const DOMAIN = new TextEncoder().encode('dms/envelope/v1\n');
const BATCH_DOMAIN = new TextEncoder().encode('dms/envelope-batch/v1\n');

const lib = rawPeerLib;
type Lib = Awaited<typeof lib>;

interface Info {
  peers: number;
  messages: { in: number; rejected: Record<string, number>; rejectedTotal: number; refusedPeers: { peer: string; until: string; budget: string }[] };
  bidDeclines: Record<string, number>;
  bidDeclinesUnlogged: Record<string, number>;
  locks: { id: string; holder?: string }[];
}

interface Ctx {
  L: Lib;
  a: NodeProcess;
  b: NodeProcess;
  raw: Libp2p;
  key: Ed25519PrivateKey;
  me: string;
  did: string;
  /** Envelopes the node sent back to the raw peer (its replies), decoded, with whether their signature verified. */
  replies: (Record<string, unknown> & { verified: boolean })[];
}


function envelope(ctx: Ctx, over: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Date.now();
  return {
    v: 1,
    id: `raw.${Math.random().toString(36).slice(2)}`,
    from: { peer: ctx.me, did: ctx.did, inbox: 'net' },
    to: { peer: ctx.a.ready.peerId, inbox: 'net' },
    type: 'net.ping',
    payload: { seq: 1 },
    ts: now,
    exp: now + 30_000,
    ...over,
  };
}

async function sealed(ctx: Ctx, env: Record<string, unknown>, forge = false, key: Ed25519PrivateKey = ctx.key): Promise<Uint8Array> {
  const body = ctx.L.dagCbor.encode(env);
  const sig = forge ? new Uint8Array(64).fill(7) : await key.sign(Uint8Array.from([...DOMAIN, ...body]));
  return frame(0x01, Uint8Array.from([...sig, ...body]));
}

/** Who signs: a raw peer's key, peer id and did:key. */
interface Signer {
  key: Ed25519PrivateKey;
  me: string;
  did: string;
}

/**
 * A valid signed `bid.request` to A's `node` inbox (the deal wire format: a WASM job by its module's hash), for
 * more CPU than any node has, so A declines it without locking anything.
 */
async function bidRequest(ctx: Ctx, who: Signer, dealId: string, cpu = 1000): Promise<Uint8Array> {
  const now = Date.now();
  const job = {
    name: 'greedy',
    executor: 'wasm',
    resources: { cpu, memory: 1 << 20, disk: 0, gpus: 0 },
    timeoutMs: 10_000,
    constraints: { peers: [], excludePeers: [] },
    wasm: { module: { sha256: 'ab'.repeat(32), size: 100 }, args: [], env: {} },
  };
  const env = envelope(ctx, { from: { peer: who.me, did: who.did, inbox: 'requester' }, to: { peer: ctx.a.ready.peerId, inbox: 'node' }, type: 'bid.request', payload: { dealId, nonce: 1, job, expiresAt: now + 20_000 } });
  return sealed(ctx, env, false, who.key);
}

/** A raw libp2p peer (websockets, noise, yamux, identify), with a fresh key unless given one. */
async function rawPeer(L: Lib, key?: Ed25519PrivateKey): Promise<Signer & { node: Libp2p }> {
  const k = key ?? ((await L.generateKeyPair('Ed25519')) as Ed25519PrivateKey);
  const node = await L.createLibp2p({ privateKey: k, transports: [L.webSockets()], connectionEncrypters: [L.noise()], streamMuxers: [L.yamux()], services: { identify: L.identify() } });
  return { node, key: k, me: L.peerIdFromPrivateKey(k).toString(), did: `did:key:${L.base58.encode(Uint8Array.from([0xed, 0x01, ...k.publicKey.raw]))}` };
}

/** Sends frames on a stream only against the credit A grants on it (A's CREDIT frames), as fast as that allows. */
async function sendWithCredit(stream: Stream, frames: Uint8Array[], ms: number): Promise<number> {
  let credit = 0;
  let wake: () => void = () => {};
  let buf = new Uint8Array(0);
  stream.addEventListener('message', (e) => {
    buf = Uint8Array.from([...buf, ...e.data.subarray()]);
    for (;;) {
      if (buf.length === 0) return;
      const [len, o] = readVarint(buf, 0);
      if (buf.length < o + len) return;
      if (buf[o] === 0x02) credit += readVarint(buf, o + 1)[0];
      buf = buf.slice(o + len);
      wake();
    }
  });
  const end = Date.now() + ms;
  let sent = 0;
  while (sent < frames.length && Date.now() < end && stream.status === 'open') {
    if (credit === 0) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 50);
      });
      continue;
    }
    const n = Math.min(credit, frames.length - sent);
    try {
      for (let i = 0; i < n; i += 1) stream.send(frames[sent + i]!);
    } catch {
      break;
    }
    credit -= n;
    sent += n;
    await new Promise((r) => setImmediate(r));
  }
  return sent;
}

const sha256 = async (...parts: Uint8Array[]) => new Uint8Array(await crypto.subtle.digest('SHA-256', Uint8Array.from(parts.flatMap((p) => [...p]))));

/**
 * Decodes and verifies an envelope frame from A: kind 0x01 is signed alone; kind 0x05 carries a batch
 * signature over a Merkle root, its batch size, index and sibling hashes (leaf = sha256(0x00 body),
 * node = sha256(0x01 left right), an odd last node moves up unchanged).
 */
async function readEnvelope(ctx: Ctx, f: Uint8Array): Promise<Record<string, unknown> & { verified: boolean }> {
  const sig = f.subarray(1, 65);
  const key = ctx.L.peerIdFromString(ctx.a.ready.peerId).publicKey!;
  if (f[0] === 0x01) {
    const body = f.subarray(65);
    const verified = await key.verify(Uint8Array.from([...DOMAIN, ...body]), sig);
    return { ...(ctx.L.dagCbor.decode(body) as object), verified };
  }
  const [count, o1] = readVarint(f, 65);
  let [index, o] = readVarint(f, o1);
  const siblings: Uint8Array[] = [];
  for (let n = count, i = index; n > 1; i = Math.floor(i / 2), n = Math.ceil(n / 2)) {
    if ((i ^ 1) < n) {
      siblings.push(f.subarray(o, o + 32));
      o += 32;
    }
  }
  const body = f.subarray(o);
  let hash = await sha256(Uint8Array.of(0), body);
  let k = 0;
  for (let n = count; n > 1; index = Math.floor(index / 2), n = Math.ceil(n / 2)) {
    if ((index ^ 1) < n) hash = index % 2 === 0 ? await sha256(Uint8Array.of(1), hash, siblings[k++]!) : await sha256(Uint8Array.of(1), siblings[k++]!, hash);
  }
  const verified = await key.verify(Uint8Array.from([...BATCH_DOMAIN, ...hash]), sig);
  return { ...(ctx.L.dagCbor.decode(body) as object), verified };
}

/** Opens a fresh actor stream from the raw peer to A (redialling when a previous case got us cut off). */
async function open(ctx: Ctx): Promise<Stream> {
  return ctx.raw.dialProtocol(ctx.L.multiaddr(ctx.a.ready.listen[0]!), PROTOCOL, { signal: AbortSignal.timeout(10_000) });
}

async function info(ctx: Ctx): Promise<Info> {
  return apiGet<Info>(ctx.a, '/v1/info');
}

/** Sends bytes on a fresh stream and waits until A has counted `reason` once more. */
async function expectRejected(ctx: Ctx, reason: string, bytes: Uint8Array[], opts: { close?: boolean } = {}): Promise<void> {
  const before = (await info(ctx)).messages.rejected[reason] ?? 0;
  const s = await open(ctx);
  for (const b of bytes) s.send(b);
  if (opts.close) await s.close().catch(() => {});
  const ok = await eventually(async () => ((await info(ctx)).messages.rejected[reason] ?? 0) > before, 10_000);
  assert.ok(ok, `A did not count ${reason}: ${JSON.stringify((await info(ctx)).messages)}`);
  if (!opts.close) s.abort(new Error('done'));
}

const Bad = suite<Ctx>('bad input from a raw libp2p peer is refused, counted, and does not stop the node');

Bad.before(async (ctx) => {
  ctx.L = await lib;
  const L = ctx.L;
  ctx.a = await startNode(await makeTempDir('bad-a'), [], { timeoutMs: 60_000 });
  ctx.b = await startNode(await makeTempDir('bad-b'), ['--bootstrap', ctx.a.ready.listen[0]!], { timeoutMs: 60_000 });
  const raw = await rawPeer(L);
  Object.assign(ctx, { raw: raw.node, key: raw.key, me: raw.me, did: raw.did, replies: [] });
  // A answers on its own stream to us: grant it credit, then read its envelope frames
  await ctx.raw.handle(PROTOCOL, (stream) => serveChannel(stream, 100, (body) => void readEnvelope(ctx, body).then((r) => ctx.replies.push(r))));
  assert.ok(await eventually(async () => (await apiGet<{ peer: string }[]>(ctx.b, '/v1/peers')).some((p) => p.peer === ctx.a.ready.peerId), 15_000), 'B never connected to A');
});

Bad.after(async (ctx) => {
  await ctx.raw?.stop();
  for (const n of [ctx.b, ctx.a]) await n?.stop().catch(() => {});
  await killAll();
  await removeTempDirs();
});

Bad('a well-formed signed ping from the raw peer is answered with a signed pong', async (ctx) => {
  const s = await open(ctx);
  s.send(await sealed(ctx, envelope(ctx, { replyTo: 'reply/raw-1' })));
  // A also asks us for our peers (we speak its protocol): look for the pong among what it sent
  assert.ok(await eventually(() => ctx.replies.some((r) => r.type === 'net.pong'), 10_000), `no pong came back: ${JSON.stringify(ctx.replies)}`);
  const r = ctx.replies.find((x) => x.type === 'net.pong')!;
  assert.equal(r.payload, { seq: 1 });
  assert.ok(ctx.replies.every((x) => x.verified), 'a reply from A does not verify');
  assert.equal(r.to, { peer: ctx.me, inbox: 'reply/raw-1' });
  assert.is((r.from as { peer: string }).peer, ctx.a.ready.peerId);
});

Bad('garbage bytes: an unknown frame kind, and an envelope frame that is not an envelope', async (ctx) => {
  await expectRejected(ctx, 'unknown-frame', [Uint8Array.from([5, ...new TextEncoder().encode('hello')])]);
  await expectRejected(ctx, 'malformed', [frame(0x01, Uint8Array.from({ length: 120 }, (_, i) => (i * 37) % 256))]);
});

Bad('a truncated frame (the stream ends inside it)', async (ctx) => {
  const whole = await sealed(ctx, envelope(ctx));
  await expectRejected(ctx, 'truncated', [whole.subarray(0, whole.length - 20)], { close: true });
});

Bad('an oversized frame (length over 1 MiB) cuts the raw peer off', async (ctx) => {
  await expectRejected(ctx, 'oversized', [Uint8Array.from([...varint(2 << 20), 0x01, 1, 2, 3])]);
});

Bad('a forged signature', async (ctx) => {
  await expectRejected(ctx, 'bad-signature', [await sealed(ctx, envelope(ctx), true)]);
});

Bad('a `from` naming another peer (B), signed by the raw peer', async (ctx) => {
  await expectRejected(ctx, 'from-mismatch', [await sealed(ctx, envelope(ctx, { from: { peer: ctx.b.ready.peerId, did: ctx.b.ready.did, inbox: 'net' } }))]);
});

Bad('an expired message', async (ctx) => {
  await expectRejected(ctx, 'expired', [await sealed(ctx, envelope(ctx, { ts: Date.now() - 60_000, exp: Date.now() - 30_000 }))]);
});

Bad('a replayed id', async (ctx) => {
  const once = await sealed(ctx, envelope(ctx));
  await expectRejected(ctx, 'replayed', [once, once]);
});

Bad('an unknown event type', async (ctx) => {
  await expectRejected(ctx, 'unknown-type', [await sealed(ctx, envelope(ctx, { type: 'bid.steal' }))]);
});

Bad('a known event type with a wrong payload', async (ctx) => {
  await expectRejected(ctx, 'invalid-payload', [await sealed(ctx, envelope(ctx, { payload: { seq: 'one' } }))]);
});

Bad('an event the Node does not take from the network', async (ctx) => {
  await expectRejected(ctx, 'not-accepted', [await sealed(ctx, envelope(ctx, { to: { peer: ctx.a.ready.peerId, inbox: 'node' } }))]);
});

Bad('a flood that ignores the credit is cut off, while B is still served', async (ctx) => {
  const one = await sealed(ctx, envelope(ctx, { type: 'net.ping', payload: { seq: 2 } }));
  const burst = new Uint8Array(one.length * 2000);
  for (let i = 0; i < 2000; i += 1) burst.set(one, i * one.length);
  await expectRejected(ctx, 'flow-violation', [burst]);
  const ping = await cliJson<{ count: number }>(['ping', ctx.a.ready.peerId, '--count', '5', '--data-dir', ctx.b.dataDir]);
  assert.is(ping.count, 5);
});

Bad('a peer sending bid requests far over budget is dropped, then hung up on and refused; a well-behaved peer is still answered', async (ctx) => {
  const L = ctx.L;
  const flooder = await rawPeer(L);
  try {
    // 600 valid bid requests within the credit A grants: 200 are taken (its burst), the rest dropped until it is refused
    const frames = await Promise.all(Array.from({ length: 600 }, (_, i) => bidRequest(ctx, flooder, `flood-${i}`)));
    const s = await flooder.node.dialProtocol(L.multiaddr(ctx.a.ready.listen[0]!), PROTOCOL, { signal: AbortSignal.timeout(10_000) });
    const sent = await sendWithCredit(s, frames, 10_000);
    assert.ok(sent > 400, `only ${sent} bid requests could be sent`);
    const aPeer = L.peerIdFromString(ctx.a.ready.peerId);
    assert.ok(await eventually(() => flooder.node.getConnections(aPeer).length === 0, 10_000), 'A did not hang up on the flooder');
    const i = await cliJson<Info>(['info', '--json', '--data-dir', ctx.a.dataDir]);
    assert.ok((i.messages.rejected['rate-limited'] ?? 0) >= 200, JSON.stringify(i.messages.rejected));
    const refused = i.messages.refusedPeers.find((r) => r.peer === flooder.me);
    assert.ok(refused, `the flooder is not listed as refused: ${JSON.stringify(i.messages.refusedPeers)}`);
    assert.is(refused!.budget, 'bid.request');
    const left = Date.parse(refused!.until) - Date.now();
    assert.ok(left > 30_000 && left <= 60_000, `refused for another ${left} ms`);
    // it cannot come back while refused
    const again = await flooder.node.dialProtocol(L.multiaddr(ctx.a.ready.listen[0]!), PROTOCOL, { signal: AbortSignal.timeout(5_000) }).then(() => 'connected', (e: Error) => e.message);
    assert.is.not(again, 'connected');
  } finally {
    await flooder.node.stop();
  }
  // the well-behaved raw peer's bid requests are each answered, and B is still served
  const s = await open(ctx);
  for (const dealId of ['polite-1', 'polite-2', 'polite-3']) s.send(await bidRequest(ctx, ctx, dealId));
  const answered = () => new Set(ctx.replies.filter((r) => (r.type === 'bid.decline' || r.type === 'bid.submit') && String((r.payload as { dealId?: string }).dealId).startsWith('polite-')).map((r) => (r.payload as { dealId: string }).dealId));
  assert.ok(await eventually(() => answered().size === 3, 15_000), `answers: ${[...answered()].join(', ')}; got ${ctx.replies.map((r) => r.type).join(', ')}`);
  const ping = await cliJson<{ count: number }>(['ping', ctx.a.ready.peerId, '--count', '3', '--data-dir', ctx.b.dataDir]);
  assert.is(ping.count, 3);
});

Bad('bid requests past the lock limit are declined lock-limit before they are logged, and a released lock reopens', async (ctx) => {
  const L = ctx.L;
  const asker = await rawPeer(L);
  const replies: Record<string, unknown>[] = [];
  await asker.node.handle(PROTOCOL, (stream) => serveChannel(stream, 200, (body) => void readEnvelope(ctx, body).then((r) => replies.push(r))));
  try {
    const before = await info(ctx);
    // 40 small requests that each fit: A bids on 8 (its default maxLocksPerRequester), declines the rest
    const frames = await Promise.all(Array.from({ length: 40 }, (_, i) => bidRequest(ctx, asker, `many-${i}`, 0.01)));
    const s = await asker.node.dialProtocol(L.multiaddr(ctx.a.ready.listen[0]!), PROTOCOL, { signal: AbortSignal.timeout(10_000) });
    const answers = () => replies.filter((r) => r.type === 'bid.submit' || r.type === 'bid.decline');
    // the gate learns from the Node's first lock-limit decline: requests arriving before it is decided are logged
    assert.is(await sendWithCredit(s, frames.slice(0, 10), 10_000), 10);
    assert.ok(await eventually(() => answers().length >= 10, 15_000), `${answers().length} of 10 answered: ${replies.map((r) => r.type).join(', ')}`);
    const s2 = await asker.node.dialProtocol(L.multiaddr(ctx.a.ready.listen[0]!), PROTOCOL, { signal: AbortSignal.timeout(10_000) });
    assert.is(await sendWithCredit(s2, frames.slice(10), 10_000), 30);
    assert.ok(await eventually(() => answers().length >= 40, 15_000), `${answers().length} of 40 answered: ${replies.map((r) => r.type).join(', ')}`);
    const bids = answers().filter((r) => r.type === 'bid.submit');
    const declines = answers().filter((r) => r.type === 'bid.decline').map((r) => r.payload as { code: string; reason: string });
    assert.is(bids.length, 8, 'one bid per lock the requester may hold');
    assert.is(declines.length, 32);
    assert.ok(declines.every((d) => d.code === 'lock-limit' && /maxLocksPerRequester/.test(d.reason)), JSON.stringify(declines.slice(0, 3)));
    const after = await info(ctx);
    const unlogged = (after.bidDeclinesUnlogged['lock-limit'] ?? 0) - (before.bidDeclinesUnlogged['lock-limit'] ?? 0);
    const total = (after.bidDeclines['lock-limit'] ?? 0) - (before.bidDeclines['lock-limit'] ?? 0);
    assert.is(total, 32, 'every decline is counted once');
    // the Node declined the first two; the gate answered the next 30 without logging them (one a second may pass)
    assert.ok(unlogged >= 27, `only ${unlogged} of 32 declines were answered before logging`);
    // a revert lets one lock go: the requester may be bid on again at once
    s.send(await sealed(ctx, envelope(ctx, { from: { peer: asker.me, did: asker.did, inbox: 'requester' }, to: { peer: ctx.a.ready.peerId, inbox: 'provider' }, type: 'deal.revert', payload: { dealId: 'many-0', nonce: 1, reason: 'test' } }), false, asker.key));
    assert.ok(await eventually(async () => (await info(ctx)).locks.filter((l) => l.holder === asker.me).length === 7, 10_000), 'the reverted lock stayed');
    s.send(await bidRequest(ctx, asker, 'many-again', 0.01));
    assert.ok(await eventually(() => replies.some((r) => r.type === 'bid.submit' && (r.payload as { bid: { dealId: string } }).bid.dealId === 'many-again'), 10_000), 'no bid after a lock was let go');
  } finally {
    await asker.node.stop();
  }
});

Bad('after all of it, A is up, still lists B, and every reason was counted', async (ctx) => {
  const i = await cliJson<Info>(['info', '--data-dir', ctx.a.dataDir]);
  for (const reason of ['unknown-frame', 'malformed', 'truncated', 'oversized', 'bad-signature', 'from-mismatch', 'expired', 'replayed', 'unknown-type', 'invalid-payload', 'not-accepted', 'flow-violation', 'rate-limited']) {
    assert.ok((i.messages.rejected[reason] ?? 0) >= 1, `${reason} not counted: ${JSON.stringify(i.messages.rejected)}`);
  }
  const peers = await cliJson<{ peer: string }[]>(['peers', '--data-dir', ctx.a.dataDir]);
  assert.ok(peers.some((p) => p.peer === ctx.b.ready.peerId));
  const r = await cli(['ping', ctx.a.ready.peerId, '--count', '3', '--data-dir', ctx.b.dataDir]);
  assert.is(r.code, 0, r.stderr);
});

Bad.run();
