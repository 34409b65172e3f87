/**
 * The network service: the libp2p host, the signed-envelope router with its direct channels and gossipsub
 * topic, discovery (bootstrap, then peer exchange so a node that joined through one peer learns the others),
 * RTT probes and the topology. Built by `createNetworkService`, with start() / stop().
 */
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { TopicValidatorResult } from '@libp2p/gossipsub';
import { NET_INBOX, type NetPong, type PayloadOf, type PeersReply } from '../../machines/net.messages.ts';
import { type Clock, type Timer, realClock } from '../clock.ts';
import { ACTOR_PROTOCOL, Libp2pActorTransport } from './channel/actor-transport.ts';
import { edgeGossipVerdict } from './edge-reasons.ts';
import { createEnvelopeSigner, createEnvelopeVerifier } from './wire/envelope-signer.ts';
import { FLOW_DEFAULTS, type FlowInit } from './channel/flow-control.ts';
import { FrameKind } from './wire/frame-codec.ts';
import { type Libp2pHost, createLibp2pHost } from './libp2p-host.ts';
import { MessageRouter } from './message-router.ts';
import { NetCounters, type NetCountersView } from './net-counters.ts';
import { netInbox } from './net-inbox.ts';
import { netPayloadSchemas } from './net-schemas.ts';
import { EDGE_BUDGETS, PeerBudgets, type PeerBudgetInit, type RefusedPeer } from './peer-budgets.ts';
import { PeerExchange } from './peer-exchange.ts';
import { REPLAY_CACHE_DEFAULTS, ReplayCache, type ReplayCacheInit } from './replay-cache.ts';
import { type PeerView, type Topology, buildTopology } from './topology.ts';

export interface NetworkInit {
  readonly listen: readonly string[];
  readonly bootstrap: readonly string[];
  readonly tls?: { readonly cert: string; readonly key: string };
  readonly flow: FlowInit;
  /** Gossipsub topic for broadcasts. */
  readonly topic: string;
  readonly probeIntervalMs: number;
  /** How often to ask neighbours for their peers, and to dial bootstrap peers we lost. */
  readonly exchangeIntervalMs: number;
  /** Peer exchange stops dialling new peers at this many connections. */
  readonly maxPeers: number;
  readonly maxConnections: number;
  /** Per-peer budgets at the edge, and how a peer far over them is refused. */
  readonly budgets: PeerBudgetInit;
  /** Bounds of the replay cache. */
  readonly replay: ReplayCacheInit;
}

export const NETWORK_DEFAULTS: Omit<NetworkInit, 'listen' | 'bootstrap'> = Object.freeze({
  flow: FLOW_DEFAULTS,
  budgets: EDGE_BUDGETS,
  replay: REPLAY_CACHE_DEFAULTS,
  topic: '/dms/broadcast/1.0.0',
  probeIntervalMs: 15_000,
  exchangeIntervalMs: 10_000,
  maxPeers: 50,
  maxConnections: 200,
});

export interface NetworkLog {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface NetworkDeps {
  readonly key: Ed25519PrivateKey;
  readonly peerId: string;
  readonly log: NetworkLog;
  /** Time for the router, the channels, discovery and the periodic probes and exchanges (default: the real clock). */
  readonly clock?: Clock;
}

export interface NetworkService {
  readonly router: MessageRouter;
  readonly libp2p: Libp2pHost;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Full listen multiaddrs, each ending in /p2p/<peerId>. */
  listen(): string[];
  peers(): PeerView[];
  counters(): NetCountersView;
  /** Peers refused now (they stayed far over a budget), the refusal that ends first first. */
  refusedPeers(): RefusedPeer[];
  /** Our edges joined with those our neighbours report (asked with a short deadline). */
  topology(timeoutMs?: number): Promise<Topology>;
  /** Connected peers that speak the DMS protocol (those a broadcast bid request can reach). */
  dmsPeers(): string[];
  /**
   * Connected DMS peers subscribed to the broadcast topic: those a broadcast reaches directly, so the ones a bid
   * window waits for (a peer that speaks the protocol but never subscribed hears nothing and would only hold it open).
   */
  hearers(): string[];
  /** How far a broadcast goes now: the connected DMS peers, those subscribed to the topic, and nodes beyond them. */
  reach(): Reach;
  /** The latest measured round-trip time to a peer in ms, or null. */
  rtt(peer: string): number | null;
  /** Round trips of signed net.ping / net.pong with a peer, in ms. */
  ping(peer: string, count: number, timeoutMs?: number): Promise<number[]>;
}

const VERDICTS = { accept: TopicValidatorResult.Accept, ignore: TopicValidatorResult.Ignore, reject: TopicValidatorResult.Reject } as const;

/** How far a broadcast reaches, as this node sees it. */
export interface Reach {
  /** DMS peers connected now. */
  readonly connected: number;
  /** Connected peers subscribed to the broadcast topic (they receive a broadcast directly). */
  readonly subscribed: number;
  /** Peers our neighbours are connected to and we are not: a broadcast reaches them only through the mesh. */
  readonly beyond: number;
}

export class PeerIdMismatchError extends Error {
  override name = 'PeerIdMismatchError';
}

export async function createNetworkService(init: NetworkInit, deps: NetworkDeps): Promise<NetworkService> {
  const { log } = deps;
  const clock = deps.clock ?? realClock;
  const budgets = new PeerBudgets(init.budgets, clock, {
    onRefuse: ({ peer, until, budget }) => {
      log.warn({ peer, until: new Date(until).toISOString(), budget }, `refusing peer ${peer} for ${Math.round((until - clock.now()) / 1000)} s: it stayed far over its ${budget} budget; hanging up`);
      void libp2p.hangUp(peerIdFromString(peer)).catch((e: Error) => log.debug({ peer, err: e.message }, `could not hang up on ${peer}`));
    },
  });
  const refused = (peer: string) => budgets.refusal(peer) !== null;
  const libp2p = await createLibp2pHost({ privateKey: deps.key, listen: init.listen, bootstrap: init.bootstrap, maxConnections: init.maxConnections, refused, ...(init.tls ? { tls: init.tls } : {}) });
  if (libp2p.peerId.toString() !== deps.peerId) {
    await libp2p.stop();
    throw new PeerIdMismatchError(`libp2p peer id ${libp2p.peerId.toString()} is not the identity's ${deps.peerId}`);
  }
  const self = deps.peerId;
  const counters = new NetCounters();
  const connectedAt = new Map<string, string>();
  const timers: Timer[] = [];
  let stopped = false;
  // created before the router needs it; `receive` closes over the router defined just below
  const transport = new Libp2pActorTransport({
    libp2p,
    flow: init.flow,
    onEnvelope: (peer, kind, body) => router.receive(peer, kind, body, false),
    onReject: (peer, reason, detail) => router.reject(peer, reason, detail),
    log,
    clock,
  });
  const router = new MessageRouter({
    signer: createEnvelopeSigner(deps.key, self),
    verifier: createEnvelopeVerifier(),
    counters,
    log,
    clock,
    budgets,
    replay: new ReplayCache(init.replay),
    transport: {
      sendFrames: (peer, frames, deadline) => transport.sendFrames(peer, frames, deadline),
      ready: (peer, n) => transport.ready(peer, n),
      publish: async (data) => {
        await libp2p.services.pubsub.publish(init.topic, data);
      },
    },
  });
  router.addSchemas(netPayloadSchemas);

  const rttOf = (peer: string): number | null => {
    const r = transport.outbound(peer)?.rttMs ?? libp2p.getConnections(peerIdFromString(peer))[0]?.rtt ?? null;
    return r == null ? null : Math.round(r * 1000) / 1000;
  };
  const discovery = new PeerExchange(
    { self, bootstrap: init.bootstrap, maxPeers: init.maxPeers, timeoutMs: 5_000 },
    { libp2p, router, openChannel: (peer) => transport.channel(peer), rttOf, log, clock },
  );
  const onIdentify = (evt: CustomEvent<{ peerId: PeerId; protocols: string[] }>) => {
    if (!stopped) discovery.identified(evt.detail.peerId, evt.detail.protocols, ACTOR_PROTOCOL);
  };
  const onConnect = (evt: CustomEvent<PeerId>) => {
    const peer = evt.detail.toString();
    if (!connectedAt.has(peer)) connectedAt.set(peer, new Date(clock.now()).toISOString());
    log.info({ peer }, 'peer connected');
  };
  const onDisconnect = (evt: CustomEvent<PeerId>) => {
    const peer = evt.detail.toString();
    connectedAt.delete(peer);
    discovery.forget(peer);
    log.info({ peer }, 'peer disconnected');
  };

  const service: NetworkService = {
    router,
    libp2p,
    async start() {
      libp2p.addEventListener('peer:identify', onIdentify as never);
      libp2p.addEventListener('peer:connect', onConnect);
      libp2p.addEventListener('peer:disconnect', onDisconnect);
      router.register(netInbox(router, () => discovery.edges()));
      await transport.start();
      const pubsub = libp2p.services.pubsub;
      pubsub.topicValidators.set(init.topic, (_from, msg) => {
        if (msg.type !== 'signed' || msg.data.length < 2 || msg.data[0] !== FrameKind.ENVELOPE) {
          router.reject(msg.type === 'signed' ? msg.from.toString() : 'unknown', 'malformed', 'broadcast is not a signed envelope');
          return TopicValidatorResult.Reject;
        }
        return VERDICTS[edgeGossipVerdict(router.receive(msg.from.toString(), FrameKind.ENVELOPE, msg.data.subarray(1), true))];
      });
      pubsub.subscribe(init.topic);
      discovery.dialBootstrap();
      timers.push(clock.every(init.probeIntervalMs, () => transport.probeAll()));
      timers.push(clock.every(init.exchangeIntervalMs, () => discovery.round()));
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const t of timers) t.clear();
      router.stop();
      await transport.stop();
      await libp2p.stop();
    },
    listen: () => libp2p.getMultiaddrs().map((a) => a.toString()),
    peers: () =>
      libp2p.getConnections().flatMap((c, i, all) => {
        const peer = c.remotePeer.toString();
        if (all.findIndex((d) => d.remotePeer.equals(c.remotePeer)) !== i) return [];
        return [{ peer, remoteAddr: c.remoteAddr.toString(), addrs: discovery.announced(peer) ?? [c.remoteAddr.toString()], direction: c.direction, rttMs: rttOf(peer), dms: discovery.dmsPeers.has(peer), connectedAt: connectedAt.get(peer) ?? new Date(c.timeline.open).toISOString() }];
      }),
    counters: () => counters.view(),
    refusedPeers: () => budgets.refusedPeers(),
    dmsPeers: () => [...discovery.dmsPeers].filter((p) => discovery.connected(p)),
    hearers: () => {
      const subscribed = new Set(libp2p.services.pubsub.getSubscribers(init.topic).map((p) => p.toString()));
      return service.dmsPeers().filter((p) => subscribed.has(p));
    },
    reach: () => ({
      connected: service.dmsPeers().length,
      subscribed: libp2p.services.pubsub.getSubscribers(init.topic).length,
      beyond: discovery.beyond(),
    }),
    rtt: (peer) => rttOf(peer),
    async topology(timeoutMs = 2_000) {
      const mine = discovery.edges().map((e) => ({ from: self, to: e.peer, rttMs: e.rttMs }));
      const theirs = await Promise.all(
        [...discovery.dmsPeers].filter((p) => discovery.connected(p)).map(async (p) => {
          try {
            const r = await router.request<PayloadOf<PeersReply>>({ peer: p, inbox: NET_INBOX }, 'peers.request', {}, { timeoutMs });
            return r.envelope.payload.peers.map((e) => ({ from: p, to: e.peer, rttMs: e.rttMs }));
          } catch {
            return [];
          }
        }),
      );
      return buildTopology({ peer: self, did: router.deps.signer.did, addrs: service.listen() }, [...mine, ...theirs.flat()]);
    },
    async ping(peer, count, timeoutMs = 5_000) {
      const rtts: number[] = [];
      for (let seq = 0; seq < count; seq += 1) {
        const t0 = performance.now();
        const r = await router.request<PayloadOf<NetPong>>({ peer, inbox: NET_INBOX }, 'net.ping', { seq }, { timeoutMs });
        if (r.envelope.payload.seq !== seq) throw new Error(`pong ${r.envelope.payload.seq} answers ping ${seq}`);
        rtts.push(performance.now() - t0);
      }
      return rtts;
    },
  };
  return service;
}
