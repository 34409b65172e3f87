// A hostile raw libp2p peer for the soak (test/soak/soak.mjs) and the flood benchmark (test/bench/flood.mjs).
// Built from the libp2p packages alone, as test/e2e/net-bad-input.test.ts does, never from the project's own
// network code: it writes the README's wire format itself (varint-length frames of a kind byte and a body;
// envelopes {v, id, from, to, type, payload, ts, exp} as DAG-CBOR signed with ed25519 over
// "dms/envelope/v1\n" + the body; credit frames; the gossip topic /dms/broadcast/1.0.0 carrying 0x01 + sig + body).
//
// It runs as a child process driven over IPC (`fork`), so its CPU does not share the driver's event loop:
//   { cmd: 'start', targets: [{ peerId, addr }], mode, opts }   mode: see MODES below
//   { cmd: 'mode', mode, opts }                                 switch what it does (the flood benchmark's sides)
//   { cmd: 'stats' } -> { stats }                               counters so far
//   { cmd: 'stop' } -> { stats }                                stops every libp2p node, then the process exits
// and it sends { ready: true } once loaded. Every reply is { id, ok, value | error }.
//
// MODES
//   off      nothing
//   silent   one identity connected to every target on the actor protocol, sending nothing (a control)
//   soak     rounds (every opts.roundMs) of mixed hostile traffic to every target: junk frames, replays, an
//            oversized frame, bid requests with maximal job specs (direct and over gossip), and a flood of bid
//            requests from a fresh identity until the target refuses it
//   budget   one identity sends bid requests to every target at just under its bid.request budget (opts.perSec)
//   max      one identity sends bid requests to every target as fast as the credit allows; once refused it keeps
//            redialling (every opts.redialMs) and floods again as soon as it gets in
//   sybil    as `max`, but a refused identity is dropped and a fresh one (a new key costs nothing) takes over
// Promise.withResolvers and WebSocket on Node 20 (libp2p needs them), as the e2e raw peer loads them
import '../../runtime/polyfills.js';
import { createPrivateKey, randomBytes, sign as edSign } from 'node:crypto';
import { fileURLToPath } from 'node:url';

export const PROTOCOL = '/dms/actor/1.0.0';
export const TOPIC = '/dms/broadcast/1.0.0';
const DOMAIN = Buffer.from('dms/envelope/v1\n');
const KIND = { ENVELOPE: 0x01, CREDIT: 0x02, PROBE: 0x03, PROBE_ACK: 0x04, BATCHED: 0x05 };
/** The frame limit of the README (1 MiB) and a bid request's job spec limit (16 KiB, DAG-CBOR). */
export const MAX_FRAME = 1 << 20;
export const MAX_BID_JOB_BYTES = 16 * 1024;
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------- libraries

let libPromise;
export function lib() {
  libPromise ??= (async () => ({
    ...(await import('libp2p')),
    ...(await import('@libp2p/websockets')),
    ...(await import('@libp2p/noise')),
    ...(await import('@libp2p/yamux')),
    ...(await import('@libp2p/identify')),
    ...(await import('@libp2p/gossipsub')),
    ...(await import('@libp2p/crypto/keys')),
    ...(await import('@libp2p/peer-id')),
    ...(await import('@multiformats/multiaddr')),
    dagCbor: await import('@ipld/dag-cbor'),
    base58: (await import('multiformats/bases/base58')).base58btc,
  }))();
  return libPromise;
}

// ---------------------------------------------------------------------------------------------- wire

export function varint(n) {
  const out = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Uint8Array.from(out);
}

export function frame(kind, body) {
  const len = varint(body.length + 1);
  const out = new Uint8Array(len.length + 1 + body.length);
  out.set(len, 0);
  out[len.length] = kind;
  out.set(body, len.length + 1);
  return out;
}

function readVarint(b, o) {
  let v = 0;
  let scale = 1;
  for (let i = 0; i < 8; i += 1) {
    if (o + i >= b.length) return null;
    const x = b[o + i];
    v += (x & 0x7f) * scale;
    if ((x & 0x80) === 0) return [v, o + i + 1];
    scale *= 128;
  }
  throw new Error('varint too long');
}

/** Splits a byte stream into frames ({ kind, body }). */
class FrameReader {
  #buf = new Uint8Array(0);
  push(chunk) {
    const b = this.#buf.length ? concat(this.#buf, chunk) : chunk;
    const frames = [];
    let o = 0;
    for (;;) {
      const h = readVarint(b, o);
      if (!h) break;
      const [len, start] = h;
      if (b.length < start + len) break;
      frames.push({ kind: b[start], body: b.subarray(start + 1, start + len) });
      o = start + len;
    }
    this.#buf = b.slice(o);
    return frames;
  }
}

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** The DAG-CBOR body of an envelope frame from a node (kind 0x01: after the signature; 0x05: after the batch path). */
function envelopeBody(kind, f) {
  if (kind === KIND.ENVELOPE) return f.subarray(64);
  let [count, o] = readVarint(f, 64);
  let index;
  [index, o] = readVarint(f, o);
  for (let n = count, i = index; n > 1; i = Math.floor(i / 2), n = Math.ceil(n / 2)) if ((i ^ 1) < n) o += 32;
  return f.subarray(o);
}

// ---------------------------------------------------------------------------------------------- identities

/** A fresh ed25519 identity: the libp2p key, its peer id and did:key, and a node:crypto key to sign fast. */
export async function identity(L) {
  const key = await L.generateKeyPair('Ed25519');
  const seed = key.raw.subarray(0, 32);
  return {
    key,
    peer: L.peerIdFromPrivateKey(key).toString(),
    did: `did:key:${L.base58.encode(Uint8Array.from([0xed, 0x01, ...key.publicKey.raw]))}`,
    signer: createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' }),
  };
}

let idSeq = 0;
const envId = () => `h${process.pid.toString(36)}.${(idSeq++).toString(36)}.${randomBytes(4).toString('hex')}`;

/** An unsigned envelope from `who` (overrides as given). */
export function envelope(who, to, type, payload, over = {}) {
  const now = Date.now();
  return { v: 1, id: envId(), from: { peer: who.peer, did: who.did, inbox: 'requester' }, to, type, payload, ts: now, exp: now + 30_000, ...over };
}

/** The signed frame body (kind byte excluded): signature then DAG-CBOR. `forge` signs nothing. */
export function sealBody(L, who, env, forge = false) {
  const body = L.dagCbor.encode(env);
  const sig = forge ? new Uint8Array(64).fill(7) : edSign(null, Buffer.concat([DOMAIN, body]), who.signer);
  return concat(sig, body);
}

export const sealed = (L, who, env, forge = false) => frame(KIND.ENVELOPE, sealBody(L, who, env, forge));

// ---------------------------------------------------------------------------------------------- jobs

const MODULE = { sha256: 'ab'.repeat(32), size: 100 };

/** A small valid WASM job spec: a node with room locks it and bids (up to its per-requester lock limit). */
export function smallJob(name = 'hostile') {
  return { name, executor: 'wasm', resources: { cpu: 0.01, memory: 1 << 20, disk: 0, gpus: 0 }, timeoutMs: 10_000, constraints: { peers: [], excludePeers: [] }, wasm: { module: MODULE, args: [], env: {} } };
}

const maxJobCache = new Map();
/**
 * A job spec of exactly `bytes` DAG-CBOR bytes (default: a bid request's limit, 16 KiB), made of args of up to 8192 characters
 * (the per-arg limit), small resources so that a node locks it and bids. `over` > 0 gives a spec that many bytes
 * over the limit (the edge refuses it as invalid-payload).
 */
export function maxJob(L, { over = 0, cpu = 0.01 } = {}) {
  const bytes = MAX_BID_JOB_BYTES + over;
  const k = `${bytes}/${cpu}`;
  if (maxJobCache.has(k)) return structuredClone(maxJobCache.get(k));
  const job = smallJob('maximal');
  job.resources.cpu = cpu;
  const args = job.wasm.args;
  const size = () => L.dagCbor.encode(job).length;
  while (size() < bytes) {
    const room = bytes - size();
    if (room >= 8200) args.push('x'.repeat(8192));
    else {
      // one more arg, then trim it to land exactly (the length prefix may grow by a byte or two)
      args.push('');
      let n = Math.max(0, room - 4);
      args[args.length - 1] = 'x'.repeat(n);
      while (size() < bytes) args[args.length - 1] = 'x'.repeat(++n);
      while (size() > bytes && n > 0) args[args.length - 1] = 'x'.repeat(--n);
      break;
    }
  }
  maxJobCache.set(k, structuredClone(job));
  return job;
}

let dealSeq = 0;
const dealId = (tag) => `${tag}-${process.pid.toString(36)}-${(dealSeq++).toString(36)}`;

/** A bid.request envelope to a node's `node` inbox (or broadcast: to.peer '*'). */
export function bidRequest(who, toPeer, job, { tag = 'h', expiresInMs = 20_000 } = {}) {
  return envelope(who, { peer: toPeer, inbox: 'node' }, 'bid.request', { dealId: dealId(tag), nonce: 1, job, expiresAt: Date.now() + expiresInMs });
}

// ---------------------------------------------------------------------------------------------- a raw peer

/**
 * A raw libp2p peer with one identity: websockets, noise, yamux, identify, and gossipsub when asked. It takes
 * the nodes' own streams to it (they answer bid requests and ask for peers): grants them credit, answers RTT
 * probes, and counts what comes back by type (and bid declines by code).
 */
export class RawPeer {
  static async create(L, { gossip = false, replies } = {}) {
    const who = await identity(L);
    const services = { identify: L.identify() };
    if (gossip) services.pubsub = L.gossipsub({ allowPublishToZeroTopicPeers: true, emitSelf: false, floodPublish: true, globalSignaturePolicy: 'StrictSign', scoreParams: { IPColocationFactorWeight: 0 } });
    const node = await L.createLibp2p({ privateKey: who.key, transports: [L.webSockets()], connectionEncrypters: [L.noise()], streamMuxers: [L.yamux()], services, connectionMonitor: { enabled: false } });
    const p = new RawPeer(L, who, node, replies ?? {});
    await node.handle(PROTOCOL, (stream) => p.#inbound(stream), { runOnLimitedConnection: false, maxInboundStreams: 64 });
    if (gossip) node.services.pubsub.subscribe(TOPIC);
    return p;
  }

  constructor(L, who, node, replies) {
    this.L = L;
    this.who = who;
    this.node = node;
    this.replies = replies;
    this.channels = new Map();
  }

  get peer() {
    return this.who.peer;
  }

  #inbound(stream) {
    const send = (b) => {
      try {
        stream.send(b);
      } catch {}
    };
    send(frame(KIND.CREDIT, varint(100_000)));
    let got = 0;
    const reader = new FrameReader();
    stream.addEventListener('message', (e) => {
      let frames;
      try {
        frames = reader.push(e.data.subarray());
      } catch {
        return stream.abort(new Error('bad frames'));
      }
      for (const f of frames) {
        if (f.kind === KIND.PROBE) send(frame(KIND.PROBE_ACK, f.body.subarray(0, 8)));
        else if (f.kind === KIND.ENVELOPE || f.kind === KIND.BATCHED) {
          got += 1;
          if (got % 50_000 === 0) send(frame(KIND.CREDIT, varint(50_000)));
          try {
            const env = this.L.dagCbor.decode(envelopeBody(f.kind, f.body));
            const k = env.type === 'bid.decline' ? `bid.decline:${env.payload?.code}` : env.type;
            this.replies[k] = (this.replies[k] ?? 0) + 1;
          } catch {
            this.replies['undecodable'] = (this.replies['undecodable'] ?? 0) + 1;
          }
        }
      }
    });
  }

  /** The open actor-protocol channel to `target`, dialled (and its credit tracked) if there is none. */
  async channel(target, timeoutMs = 5_000) {
    const have = this.channels.get(target.peerId);
    if (have && !have.closed) return have;
    const stream = await this.node.dialProtocol(this.L.multiaddr(target.addr), PROTOCOL, { signal: AbortSignal.timeout(timeoutMs) });
    const ch = new Channel(stream);
    this.channels.set(target.peerId, ch);
    return ch;
  }

  /** A fresh stream to `target`, not kept (for frames that get a stream cut). */
  async freshChannel(target, timeoutMs = 5_000) {
    const stream = await this.node.dialProtocol(this.L.multiaddr(target.addr), PROTOCOL, { signal: AbortSignal.timeout(timeoutMs) });
    return new Channel(stream);
  }

  connected(target) {
    return this.node.getConnections(this.L.peerIdFromString(target.peerId)).length > 0;
  }

  async publish(data) {
    await this.node.services.pubsub.publish(TOPIC, data);
  }

  gossipPeers() {
    return this.node.services.pubsub?.getSubscribers(TOPIC).length ?? 0;
  }

  async stop() {
    for (const ch of this.channels.values()) ch.abort();
    await this.node.stop().catch(() => {});
  }
}

/** One stream on the actor protocol: credit from the node's CREDIT frames, frames sent only against it. */
export class Channel {
  credit = 0;
  closed = false;
  #wake = () => {};

  constructor(stream) {
    this.stream = stream;
    const reader = new FrameReader();
    stream.addEventListener('message', (e) => {
      let frames;
      try {
        frames = reader.push(e.data.subarray());
      } catch {
        return;
      }
      for (const f of frames) if (f.kind === KIND.CREDIT) this.credit += readVarint(f.body, 0)?.[0] ?? 0;
      this.#wake();
    });
    stream.addEventListener('close', () => {
      this.closed = true;
      this.#wake();
    });
  }

  get open() {
    return !this.closed && this.stream.status === 'open';
  }

  /** Sends raw bytes whatever the credit (junk, oversized, a cut-short frame). False when the stream is gone. */
  raw(bytes) {
    if (!this.open) return false;
    try {
      this.stream.send(bytes);
      return true;
    } catch {
      this.closed = true;
      return false;
    }
  }

  /** Waits up to `ms` for credit (or the stream to close). */
  waitCredit(ms) {
    if (this.credit > 0 || !this.open) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(t);
        this.#wake = () => {};
        resolve();
      };
    });
  }

  /**
   * Sends the frames `next()` gives (null: no more) against the credit, as fast as it allows, until `untilMs`
   * (performance.now()) or the stream closes; at most `max`. Resolves with how many were sent.
   */
  async pump(next, { max = Infinity, untilMs = Infinity } = {}) {
    let sent = 0;
    while (sent < max && performance.now() < untilMs && this.open) {
      if (this.credit <= 0) {
        await this.waitCredit(Math.max(1, Math.min(100, untilMs - performance.now())));
        continue;
      }
      const n = Math.min(this.credit, max - sent, 64);
      let stop = false;
      for (let i = 0; i < n; i += 1) {
        const f = next();
        if (!f) {
          stop = true;
          break;
        }
        let ok;
        try {
          ok = this.stream.send(f);
        } catch {
          this.closed = true;
          return sent;
        }
        this.credit -= 1;
        sent += 1;
        if (!ok) await this.stream.onDrain({ signal: AbortSignal.timeout(2_000) }).catch(() => {});
      }
      if (stop) break;
      await new Promise((r) => setImmediate(r));
    }
    return sent;
  }

  abort() {
    if (this.closed) return;
    this.closed = true;
    try {
      this.stream.abort(new Error('done'));
    } catch {}
  }
}

// ---------------------------------------------------------------------------------------------- the driver

const stats = {
  started: Date.now(),
  identities: 0,
  /** Frames sent, by what they were. */
  sent: {},
  /** Dials refused or failed (a refused peer's connection is refused at its handshake). */
  dialFailures: 0,
  /** Times a target hung up on a flooding identity. */
  cutOff: 0,
  rounds: 0,
  /** What the nodes sent back, by type (bid declines by code). */
  replies: {},
  errors: [],
};
const count = (what, n = 1) => {
  stats.sent[what] = (stats.sent[what] ?? 0) + n;
};
const noteError = (e) => {
  if (stats.errors.length < 20) stats.errors.push(String(e?.message ?? e).slice(0, 200));
};

let targets = [];
let mode = 'off';
let opts = {};
/** Bumped at every mode change: a loop of an older mode sees it and ends. */
let epoch = 0;
const peers = new Set();

async function newPeer(L, o = {}) {
  const p = await RawPeer.create(L, { ...o, replies: stats.replies });
  stats.identities += 1;
  peers.add(p);
  return p;
}

async function dropPeer(p) {
  peers.delete(p);
  await p.stop();
}

/** Fresh small bid requests from `who` to `target`, signed as they are needed. */
function bidStream(L, who, target, job = smallJob('flood')) {
  return () => sealed(L, who, bidRequest(who, target.peerId, job, { tag: 'flood' }));
}

/**
 * `budget`: one identity, every target, just under the bid.request budget (opts.perSec, default 95/s, against the
 * node's 100/s), paced from the start (the node's burst allowance is never drawn on), so it is never refused.
 */
async function runBudget(L, my) {
  const p = await newPeer(L);
  const perSec = opts.perSec ?? 95;
  try {
    await Promise.all(
      targets.map(async (t) => {
        const next = bidStream(L, p.who, t);
        let t0 = performance.now();
        let done = 0;
        while (my === epoch) {
          try {
            const ch = await p.channel(t);
            // what the budget allows by now, in steps of 10 ms
            const due = Math.floor(((performance.now() - t0) / 1000) * perSec) - done;
            if (due > 0) {
              const n = await ch.pump(next, { max: due, untilMs: performance.now() + 200 });
              done += n;
              count('bid.request (budget)', n);
            }
            if (!ch.open) stats.cutOff += 1;
          } catch (e) {
            stats.dialFailures += 1;
            noteError(e);
            await sleep(500);
            t0 = performance.now();
            done = 0;
          }
          await sleep(10);
        }
      }),
    );
  } finally {
    await dropPeer(p);
  }
}

/**
 * `max` and `sybil`: bid requests to every target as fast as the credit allows. A refused identity (hung up
 * on, its dials refused) redials every opts.redialMs (`max`), or is replaced by a fresh one (`sybil`).
 */
async function runMax(L, my, sybil) {
  await Promise.all(
    targets.map(async (t) => {
      let p = await newPeer(L);
      try {
        while (my === epoch) {
          let ch;
          try {
            ch = await p.channel(t);
          } catch (e) {
            stats.dialFailures += 1;
            noteError(e);
            if (sybil) {
              await dropPeer(p);
              p = await newPeer(L);
            } else await sleep(opts.redialMs ?? 100);
            continue;
          }
          const n = await ch.pump(bidStream(L, p.who, t), { untilMs: performance.now() + 250 });
          count('bid.request (flood)', n);
          if (!ch.open) {
            stats.cutOff += 1;
            if (sybil) {
              await dropPeer(p);
              p = await newPeer(L);
            }
          }
        }
      } finally {
        await dropPeer(p);
      }
    }),
  );
}

/** One round of the soak's hostile mix against every target. */
async function soakRound(L, h) {
  const o = { junk: true, replay: true, oversized: true, maxSpec: 8, overSpec: 1, gossipMaxSpec: 4, flood: 600, floodMs: 3_000, ...opts };
  await Promise.all(
    targets.map(async (t) => {
      // junk: an unknown frame kind, an envelope frame that is not an envelope, a forged signature, an expired
      // envelope, an unknown type, a known type with a wrong payload, and a frame cut short by the stream's end
      if (o.junk) {
        try {
          const ch = await h.freshChannel(t);
          await ch.waitCredit(2_000);
          const to = { peer: t.peerId, inbox: 'net' };
          const junk = [
            frame(0x09, randomBytes(32)),
            frame(KIND.ENVELOPE, randomBytes(200)),
            sealed(L, h.who, envelope(h.who, to, 'net.ping', { seq: 1 }, { from: { peer: h.peer, did: h.who.did, inbox: 'net' } }), true),
            sealed(L, h.who, envelope(h.who, to, 'net.ping', { seq: 1 }, { ts: Date.now() - 60_000, exp: Date.now() - 30_000 })),
            sealed(L, h.who, envelope(h.who, to, 'bid.steal', { dealId: 'x' })),
            sealed(L, h.who, envelope(h.who, to, 'net.ping', { seq: 'one' })),
          ];
          for (const f of junk) ch.raw(f);
          count('junk', junk.length);
          const whole = sealed(L, h.who, envelope(h.who, to, 'net.ping', { seq: 2 }));
          ch.raw(whole.subarray(0, whole.length - 20));
          count('truncated');
          await ch.stream.close().catch(() => ch.abort());
        } catch (e) {
          stats.dialFailures += 1;
          noteError(e);
        }
      }
      // replays: a ping sent three times, a small bid request twice
      if (o.replay) {
        try {
          const ch = await h.channel(t);
          await ch.waitCredit(2_000);
          const ping = sealed(L, h.who, envelope(h.who, { peer: t.peerId, inbox: 'net' }, 'net.ping', { seq: 3 }));
          const bid = sealed(L, h.who, bidRequest(h.who, t.peerId, smallJob('replayed'), { tag: 'replay' }));
          let i = 0;
          const list = [ping, ping, ping, bid, bid];
          const n = await ch.pump(() => list[i++] ?? null, { untilMs: performance.now() + 2_000 });
          count('replay (incl. the first copy)', n);
        } catch (e) {
          stats.dialFailures += 1;
          noteError(e);
        }
      }
      // maximal job specs (16 KiB encoded, small resources: the node locks and bids up to its per-requester
      // limit) and specs just over the limit (refused at the edge)
      if (o.maxSpec || o.overSpec) {
        try {
          const ch = await h.channel(t);
          let i = 0;
          const list = [
            ...Array.from({ length: o.maxSpec }, () => () => sealed(L, h.who, bidRequest(h.who, t.peerId, maxJob(L), { tag: 'max' }))),
            ...Array.from({ length: o.overSpec }, () => () => sealed(L, h.who, bidRequest(h.who, t.peerId, maxJob(L, { over: 64 }), { tag: 'over' }))),
          ];
          const n = await ch.pump(() => list[i++]?.() ?? null, { untilMs: performance.now() + 3_000 });
          count('bid.request (maximal spec, direct)', Math.min(n, o.maxSpec));
          count('bid.request (spec over the limit)', Math.max(0, n - o.maxSpec));
        } catch (e) {
          stats.dialFailures += 1;
          noteError(e);
        }
      }
      // an oversized frame (a length over 1 MiB): the node cuts that stream off
      if (o.oversized) {
        try {
          const ch = await h.freshChannel(t);
          ch.raw(concat(varint(2 * MAX_FRAME), Uint8Array.of(KIND.ENVELOPE, 1, 2, 3)));
          count('oversized');
          await sleep(200);
          ch.abort();
        } catch (e) {
          stats.dialFailures += 1;
          noteError(e);
        }
      }
      // a flood: a fresh identity sends bid requests as fast as the credit allows until it is cut off
      if (o.flood) {
        let f;
        try {
          f = await newPeer(L);
          const ch = await f.channel(t);
          const n = await ch.pump(bidStream(L, f.who, t), { max: o.flood, untilMs: performance.now() + o.floodMs });
          count('bid.request (flood)', n);
          // give the node a moment to hang up, then see whether it did
          await sleep(300);
          if (!ch.open || !f.connected(t)) stats.cutOff += 1;
        } catch (e) {
          stats.dialFailures += 1;
          noteError(e);
        } finally {
          if (f) await dropPeer(f);
        }
      }
    }),
  );
  // maximal specs over gossip: one broadcast reaches every node
  if (o.gossipMaxSpec && h.node.services.pubsub) {
    for (let i = 0; i < o.gossipMaxSpec; i += 1) {
      const env = bidRequest(h.who, '*', maxJob(L), { tag: 'gmax' });
      try {
        await h.publish(concat(Uint8Array.of(KIND.ENVELOPE), sealBody(L, h.who, env)));
        count('bid.request (maximal spec, gossip)');
      } catch (e) {
        noteError(e);
      }
    }
  }
  stats.rounds += 1;
}

/**
 * `silent`: one identity connected to every target on the actor protocol (so the nodes count it as a DMS peer),
 * sending nothing and answering nothing: the control for what a flooder costs beyond being there.
 */
async function runSilent(L, my) {
  const p = await newPeer(L);
  try {
    while (my === epoch) {
      for (const t of targets) {
        await p.channel(t).catch((e) => {
          stats.dialFailures += 1;
          noteError(e);
        });
      }
      await sleep(100);
    }
  } finally {
    await dropPeer(p);
  }
}

async function runSoak(L, my) {
  // the long-lived hostile identity (junk, replays, maximal specs, oversized frames, gossip); the floods use fresh ones
  const h = await newPeer(L, { gossip: true });
  try {
    // connect and let gossipsub learn the nodes' subscriptions
    for (const t of targets) await h.channel(t).catch(noteError);
    await sleep(2_000);
    while (my === epoch) {
      const t0 = performance.now();
      await soakRound(L, h);
      const rest = (opts.roundMs ?? 10_000) - (performance.now() - t0);
      const end = performance.now() + rest;
      while (my === epoch && performance.now() < end) await sleep(Math.min(200, end - performance.now()));
    }
  } finally {
    await dropPeer(h);
  }
}

let running = Promise.resolve();

async function setMode(L, m, o = {}) {
  epoch += 1;
  await running;
  mode = m;
  opts = o;
  const my = epoch;
  const run = { off: async () => {}, silent: () => runSilent(L, my), soak: () => runSoak(L, my), budget: () => runBudget(L, my), max: () => runMax(L, my, false), sybil: () => runMax(L, my, true) }[m];
  if (!run) throw new Error(`unknown mode ${m}`);
  running = run().catch((e) => noteError(e));
}

function snapshot() {
  return { ...stats, mode, seconds: Math.round((Date.now() - stats.started) / 1000), livePeers: peers.size, sent: { ...stats.sent }, replies: { ...stats.replies }, errors: [...stats.errors] };
}

if (process.send && process.argv[1] === fileURLToPath(import.meta.url)) {
  const L = await lib();
  process.on('message', async (m) => {
    const reply = (v) => process.send({ id: m.id, ok: true, value: v });
    try {
      if (m.cmd === 'start') {
        targets = m.targets;
        await setMode(L, m.mode ?? 'off', m.opts);
        reply(null);
      } else if (m.cmd === 'mode') {
        await setMode(L, m.mode, m.opts);
        reply(null);
      } else if (m.cmd === 'stats') reply(snapshot());
      else if (m.cmd === 'stop') {
        epoch += 1;
        await Promise.race([running, sleep(5_000)]);
        await Promise.all([...peers].map((p) => dropPeer(p)));
        reply(snapshot());
        setTimeout(() => process.exit(0), 50);
      } else throw new Error(`unknown command ${m.cmd}`);
    } catch (e) {
      process.send({ id: m.id, ok: false, error: e.message });
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ ready: true });
}

// ---------------------------------------------------------------------------------------------- the parent's side

/** Forks a hostile peer process: { child, call(cmd, args, timeoutMs) }; `track` receives the child for cleanup. */
export async function spawnHostile(track = () => {}) {
  const { fork } = await import('node:child_process');
  const child = fork(fileURLToPath(import.meta.url), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  track(child);
  let seq = 0;
  const pending = new Map();
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the hostile peer did not start within 30 s')), 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the hostile peer exited (${code}) before it was ready`));
    });
    child.on('message', (m) => {
      if (m.ready) {
        clearTimeout(timer);
        resolve();
        return;
      }
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(new Error(m.error));
    });
  });
  child.on('error', () => {}); // a send after it exited: the send callback rejects the call
  child.on('exit', (code) => {
    for (const p of pending.values()) p.reject(new Error(`the hostile peer exited (${code})`));
    pending.clear();
  });
  const call = (cmd, args = {}, timeoutMs = 30_000) =>
    new Promise((resolve, reject) => {
      const id = ++seq;
      const t = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`hostile peer: ${cmd} took longer than ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, { resolve: (v) => (clearTimeout(t), resolve(v)), reject: (e) => (clearTimeout(t), reject(e)) });
      if (!child.connected) return pending.get(id).reject(new Error(`hostile peer: ${cmd}: it has exited`)), pending.delete(id);
      child.send({ id, cmd, ...args }, (e) => {
        if (e && pending.has(id)) {
          pending.get(id).reject(e);
          pending.delete(id);
        }
      });
    });
  return { child, call };
}
