// One benchmark peer process: a libp2p host running our network path (signed envelopes, router, actor
// channels with flow control, gossipsub) and, on the same host and connection, a raw length-prefixed
// protocol as the baseline. The parent drives it over IPC: {id, cmd, ...args} -> {id, ok, value | error}.
import '../../runtime/polyfills.js';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { lpStream } from '@libp2p/utils';
import { z } from 'zod';
import { createNetworkService, NETWORK_DEFAULTS } from '../../runtime/net/network-service.js';

export const RAW_PROTOCOL = '/bench/raw/1.0.0';
export const RAW_ECHO_PROTOCOL = '/bench/raw-echo/1.0.0';
const key = await generateKeyPair('Ed25519');
const peerId = peerIdFromPrivateKey(key).toString();
const quiet = { debug() {}, info() {}, warn() {} };
const net = await createNetworkService({ ...NETWORK_DEFAULTS, listen: ['/ip4/127.0.0.1/tcp/0/ws'], bootstrap: [], probeIntervalMs: 60_000, exchangeIntervalMs: 600_000 }, { key, peerId, log: quiet });
const { router, libp2p } = net;

// our path: a bench inbox that counts one-way messages and answers "bench.count" requests
let received = 0;
const gossipLatencies = [];
router.addSchemas(new Map([
  ['bench.msg', z.object({ i: z.number().int(), data: z.string() }).strict()],
  ['bench.count', z.object({}).strict()],
  ['bench.counted', z.object({ n: z.number().int() }).strict()],
  ['bench.tick', z.object({ seq: z.number().int(), at: z.number() }).strict()],
]));
router.register({
  name: 'bench',
  accepts: ['bench.msg', 'bench.count', 'bench.tick'],
  handle(msg) {
    const e = msg.envelope;
    if (e.type === 'bench.msg') received += 1;
    else if (e.type === 'bench.count') void router.reply(msg, 'bench.counted', { n: received });
    else if (e.type === 'bench.tick') gossipLatencies.push(performance.timeOrigin + performance.now() - e.payload.at);
  },
});
await net.start();

// raw gossipsub baseline: the same pubsub, a topic of its own, data = [8-byte send time][padding]
const RAW_TOPIC = '/bench/raw-gossip/1.0.0';
const rawGossipLatencies = [];
libp2p.services.pubsub.subscribe(RAW_TOPIC);
libp2p.services.pubsub.addEventListener('message', (e) => {
  if (e.detail.topic !== RAW_TOPIC) return;
  const at = new DataView(e.detail.data.buffer, e.detail.data.byteOffset, 8).getFloat64(0);
  rawGossipLatencies.push(performance.timeOrigin + performance.now() - at);
});

// raw path: count frames; an 8-byte frame is echoed (round trips and the end-of-flood marker)
let rawReceived = 0;
await libp2p.handle(RAW_PROTOCOL, async (stream) => {
  const lp = lpStream(stream, { maxDataLength: 1 << 20 });
  try {
    for (;;) {
      const m = await lp.read();
      if (m.byteLength === 8) await lp.write(m);
      else rawReceived += 1;
    }
  } catch {
    // stream closed
  }
});

// raw round trips: every frame is echoed
await libp2p.handle(RAW_ECHO_PROTOCOL, async (stream) => {
  const lp = lpStream(stream, { maxDataLength: 1 << 20 });
  try {
    for (;;) await lp.write(await lp.read());
  } catch {
    // stream closed
  }
});

const payload = (i) => ({ i, data: 'x'.repeat(64) });
const rawStreams = new Map();
async function raw(addr, protocol = RAW_PROTOCOL) {
  const key = `${addr} ${protocol}`;
  let lp = rawStreams.get(key);
  if (!lp) {
    lp = lpStream(await libp2p.dialProtocol(multiaddr(addr), protocol), { maxDataLength: 1 << 20 });
    rawStreams.set(key, lp);
  }
  return lp;
}

const commands = {
  info: () => ({ peerId, addr: net.listen()[0] }),
  async connect({ addr }) {
    await libp2p.dial(multiaddr(addr));
    return true;
  },
  async ourRtt({ peer, n }) {
    const out = [];
    for (let i = 0; i < n; i += 1) {
      const t0 = performance.now();
      await router.request({ peer, inbox: 'net' }, 'net.ping', { seq: i }, { timeoutMs: 10_000 });
      out.push(performance.now() - t0);
    }
    return out;
  },
  /** Raw round trips with frames as long as ours (`bytes`), echoed. */
  async rawRtt({ addr, n, bytes }) {
    const lp = await raw(addr, RAW_ECHO_PROTOCOL);
    const ping = new Uint8Array(bytes).fill(7);
    const out = [];
    for (let i = 0; i < n; i += 1) {
      const t0 = performance.now();
      await lp.write(ping);
      await lp.read();
      out.push(performance.now() - t0);
    }
    return out;
  },
  /**
   * Raw request/response exchanges in sequence on one echo stream (deals.mjs's latency baseline): per round, one
   * frame of each of `sizes` bytes written and its echo read before the next; returns each round's ms.
   */
  async rawExchanges({ addr, sizes, n }) {
    const lp = await raw(addr, RAW_ECHO_PROTOCOL);
    const frames = sizes.map((b) => new Uint8Array(b).fill(7));
    const out = [];
    for (let i = 0; i < n; i += 1) {
      const t0 = performance.now();
      for (const f of frames) {
        await lp.write(f);
        await lp.read();
      }
      out.push(performance.now() - t0);
    }
    return out;
  },
  /**
   * `n` raw request/response exchanges of `bytes`-byte frames on one echo stream with up to `window` requests
   * outstanding (deals.mjs's throughput baseline): { ms, done }.
   */
  async rawPipelined({ addr, n, bytes, window }) {
    const lp = await raw(addr, RAW_ECHO_PROTOCOL);
    const frame = new Uint8Array(bytes).fill(7);
    const t0 = performance.now();
    let outstanding = 0;
    let wake;
    const reader = (async () => {
      for (let i = 0; i < n; i += 1) {
        await lp.read();
        outstanding -= 1;
        wake?.();
      }
    })();
    for (let i = 0; i < n; i += 1) {
      while (outstanding >= window) await new Promise((r) => (wake = r));
      outstanding += 1;
      await lp.write(frame);
    }
    await reader;
    return { ms: performance.now() - t0, done: n };
  },
  /** The length of one envelope frame signed alone carrying `payload` (plus `bytesField`: a byte string of that length). */
  async frameBytes({ to, inbox, type, payload, bytesField }) {
    const { encodeBody, sealOne } = await import('../../runtime/net/wire/envelope-codec.js');
    const p = bytesField ? { ...payload, [bytesField.name]: new Uint8Array(bytesField.length) } : payload;
    const body = encodeBody({ v: 1, id: 'AAAAAAAAAAAA.zzzz', from: { peer: peerId, did: router.deps.signer.did, inbox: 'requester' }, to: { peer: to, inbox }, type, payload: p, ts: Date.now(), exp: Date.now() + 30_000 });
    return sealOne(body, router.deps.signer.sign).frame.length;
  },
  /** One-way signed messages; ends with a request whose answer, on the same ordered stream, counts them. */
  async ourFlood({ peer, n }) {
    const t0 = performance.now();
    for (let i = 0; i < n; i += 1) await router.send({ peer, inbox: 'bench' }, 'bench.msg', payload(i), { from: 'bench', ttlMs: 120_000 });
    const r = await router.request({ peer, inbox: 'bench' }, 'bench.count', {}, { from: 'bench', timeoutMs: 120_000 });
    return { ms: performance.now() - t0, counted: r.envelope.payload.n };
  },
  /** The same number of raw frames of the same size as our frames, then an echoed marker. */
  async rawFlood({ addr, n, bytes }) {
    const lp = await raw(addr);
    const msg = new Uint8Array(bytes).fill(120);
    const t0 = performance.now();
    let i = 0;
    try {
      for (; i < n; i += 1) await lp.write(msg);
      await lp.write(new Uint8Array(8));
      await lp.read();
      return { ms: performance.now() - t0, sent: n };
    } catch (e) {
      // the raw path has no flow control of its own: a flood can get the stream reset
      rawStreams.delete(`${addr} ${RAW_PROTOCOL}`);
      return { ms: performance.now() - t0, sent: i, error: `${e?.message ?? e?.error?.message ?? e?.type ?? String(e)}` };
    }
  },
  counts: () => ({ received, rawReceived, counters: net.counters(), connections: libp2p.getConnections().length }),
  resetCounts() {
    received = 0;
    rawReceived = 0;
    gossipLatencies.length = 0;
    rawGossipLatencies.length = 0;
    return true;
  },
  /** The length of one envelope frame signed alone, as a request or reply travels. */
  async ourSingleFrameBytes({ peer }) {
    const { encodeBody, sealOne } = await import('../../runtime/net/wire/envelope-codec.js');
    const body = encodeBody({ v: 1, id: 'AAAAAAAAAAAA.zzzz', from: { peer: peerId, did: router.deps.signer.did, inbox: 'net' }, to: { peer, inbox: 'net' }, type: 'net.ping', payload: { seq: 999 }, ts: Date.now(), exp: Date.now() + 30_000, replyTo: 'reply/AAAAAAAAAAAA.zzzz' });
    return sealOne(body, router.deps.signer.sign).frame.length;
  },
  async ourFrameBytes({ peer }) {
    // the mean length of our envelope frames in a flood: batches of MAX_BATCH with their paths (same payload,
    // ids and addresses of equal length); raw frames are made this long
    const { encodeBody, sealBatch, MAX_BATCH } = await import('../../runtime/net/wire/envelope-codec.js');
    const body = encodeBody({ v: 1, id: 'AAAAAAAAAAAA.zzzz', from: { peer: peerId, did: router.deps.signer.did, inbox: 'bench' }, to: { peer, inbox: 'bench' }, type: 'bench.msg', payload: payload(99999), ts: Date.now(), exp: Date.now() + 120_000 });
    const frames = sealBatch(Array.from({ length: MAX_BATCH }, () => body), router.deps.signer.sign);
    return Math.round(frames.reduce((n, f) => n + f.length, 0) / frames.length);
  },
  meshPeers: () => libp2p.services.pubsub.getMeshPeers(NETWORK_DEFAULTS.topic).length,
  subscribers: () => libp2p.services.pubsub.getSubscribers(NETWORK_DEFAULTS.topic).length,
  async tick({ seq }) {
    await router.broadcast('bench', 'bench.tick', { seq, at: performance.timeOrigin + performance.now() }, { from: 'bench' });
    return true;
  },
  gossip: () => ({ ours: [...gossipLatencies], raw: [...rawGossipLatencies] }),
  async rawTick({ bytes }) {
    const data = new Uint8Array(bytes);
    new DataView(data.buffer).setFloat64(0, performance.timeOrigin + performance.now());
    await libp2p.services.pubsub.publish(RAW_TOPIC, data);
    return true;
  },
  async tickBytes() {
    const { encodeBody } = await import('../../runtime/net/wire/envelope-codec.js');
    const body = encodeBody({ v: 1, id: 'AAAAAAAAAAAA.zzzz', from: { peer: peerId, did: router.deps.signer.did, inbox: 'bench' }, to: { peer: '*', inbox: 'bench' }, type: 'bench.tick', payload: { seq: 999, at: performance.timeOrigin + performance.now() }, ts: Date.now(), exp: Date.now() + 30_000 });
    return body.length + 65;
  },
  rawSubscribers: () => libp2p.services.pubsub.getSubscribers(RAW_TOPIC).length,
  async stop() {
    await net.stop();
    setImmediate(() => process.exit(0));
    return true;
  },
};

process.on('message', async (m) => {
  try {
    const value = await commands[m.cmd](m);
    process.send({ id: m.id, ok: true, value });
  } catch (e) {
    process.send({ id: m.id, ok: false, error: `${m.cmd}: ${e?.name ?? e?.type}: ${e?.message ?? e?.error?.message ?? ""}` });
  }
});
process.send({ ready: true, peerId, addr: net.listen()[0] });
