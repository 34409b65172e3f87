/**
 * Discovery: bootstrap peers are dialled at start and again while lost; every DMS peer is asked which peers
 * it is connected to (a signed `peers.request`) when its channel opens and periodically, and those peers are
 * dialled, up to a limit. This is how a node that joined through one peer learns of the others.
 *
 * Which addresses may be dialled at all is dial-policy.ts's rule (no names, no ranges this node is not in, only the
 * listed peer's own /p2p id). Dials are paced: at most PARALLEL_DIALS at once and never more than the free peer
 * slots, in random order (so a crowd that learned the same list does not dial the same peers first), and a peer that could not be reached waits before it is tried again (doubling
 * from 15 s to 5 min). Unpaced, every node dialled every peer it heard of each round; at 50 nodes on two cores
 * the handshakes alone kept the machine busy and most of them timed out.
 */
import type { PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { NET_INBOX, type PayloadOf, type PeerEdge, type PeersReply } from '../../machines/net.messages.ts';
import { type Clock, realClock } from '../clock.ts';
import { dialRanges, dialable } from './dial-policy.ts';
import type { Libp2pHost } from './libp2p-host.ts';
import type { MessageRouter } from './message-router.ts';

export interface PeerExchangeDeps {
  readonly libp2p: Libp2pHost;
  readonly router: MessageRouter;
  /** Opens (or finds) the actor channel to a peer. */
  readonly openChannel: (peer: string) => Promise<unknown>;
  readonly rttOf: (peer: string) => number | null;
  readonly log: { debug(obj: object, msg?: string): void; info(obj: object, msg?: string): void };
  /** Time for the retry back-off (default: the real clock). */
  readonly clock?: Clock;
}

/** DMS peers asked for their peers each round (chosen at random), and on connect while we know few. */
export const EXCHANGE_FANOUT = 3;
/** Dials in flight at once. */
export const PARALLEL_DIALS = 4;
/** Peers waiting to be dialled (a `peers.reply` lists at most 1000). */
const MAX_QUEUED_DIALS = 1000;
const RETRY_MIN_MS = 15_000;
const RETRY_MAX_MS = 300_000;

export interface PeerExchangeInit {
  readonly self: string;
  readonly bootstrap: readonly string[];
  readonly maxPeers: number;
  readonly timeoutMs: number;
}

export class PeerExchange {
  /** Peers that speak the actor protocol. */
  readonly dmsPeers = new Set<string>();
  readonly #addrs = new Map<string, string[]>();
  /** The peers each DMS neighbour said, in its latest answer, it is connected to. */
  readonly #reported = new Map<string, ReadonlySet<string>>();
  /** Peers to dial, with the addresses they were reported at. */
  readonly #queued = new Map<string, readonly string[]>();
  readonly #dialling = new Set<string>();
  /** Peers that could not be reached: not before `at`; the next failure waits `delayMs` x 2. */
  readonly #retry = new Map<string, { at: number; delayMs: number }>();
  readonly #clock: Clock;

  constructor(
    readonly init: PeerExchangeInit,
    readonly deps: PeerExchangeDeps,
  ) {
    this.#clock = deps.clock ?? realClock;
  }

  /** Our live connections as edges, with the addresses each peer announced (what `peers.request` answers). */
  edges(): PeerEdge[] {
    return this.deps.libp2p.getPeers().map((p) => {
      const peer = p.toString();
      return { peer, addrs: this.#addrs.get(peer) ?? [], rttMs: this.deps.rttOf(peer) };
    });
  }

  /** The addresses a peer announced (identify), if known. */
  announced(peer: string): string[] | undefined {
    return this.#addrs.get(peer);
  }

  connected(peer: string): boolean {
    return this.deps.libp2p.getConnections(peerIdFromString(peer)).length > 0;
  }

  /** A peer finished identify: if it is a DMS node, open the channel and ask it for its peers. */
  identified(peerId: PeerId, protocols: readonly string[], actorProtocol: string): void {
    if (!protocols.includes(actorProtocol)) return;
    const peer = peerId.toString();
    this.dmsPeers.add(peer);
    this.deps.libp2p.peerStore.get(peerId).then(
      (p) => this.#addrs.set(peer, p.addresses.map((a) => a.multiaddr.toString()).slice(0, 8)),
      () => {},
    );
    this.deps.openChannel(peer).then(
      // a joining node learns the network from its first few peers; the rounds keep it current
      () => (this.#reported.size < EXCHANGE_FANOUT ? this.exchange(peer) : undefined),
      (e: Error) => this.deps.log.debug({ peer, err: e.message }, 'could not open the actor channel'),
    );
  }

  forget(peer: string): void {
    this.dmsPeers.delete(peer);
    this.#addrs.delete(peer);
    this.#reported.delete(peer);
  }

  /**
   * How many peers our neighbours reported that we are not connected to: nodes a broadcast reaches only through
   * the gossip mesh. Zero means this node sees the whole network it belongs to, as far as the neighbours that
   * answered know (each round asks EXCHANGE_FANOUT more; each neighbour's latest answer is kept): a node beyond
   * our neighbours is connected to one of them, which lists it.
   */
  beyond(): number {
    // one look at the connections: this runs for every bid request this node sends
    const near = new Set(this.deps.libp2p.getPeers().map((p) => p.toString()));
    near.add(this.init.self);
    const far = new Set<string>();
    for (const peers of this.#reported.values()) for (const p of peers) if (!near.has(p)) far.add(p);
    return far.size;
  }

  /** Asks a peer for its peers and dials the ones we are not connected to. */
  async exchange(peer: string): Promise<void> {
    try {
      const r = await this.deps.router.request<PayloadOf<PeersReply>>({ peer, inbox: NET_INBOX }, 'peers.request', {}, { timeoutMs: this.init.timeoutMs });
      if (this.dmsPeers.has(peer)) this.#reported.set(peer, new Set(r.envelope.payload.peers.map((p) => p.peer)));
      for (const p of r.envelope.payload.peers) this.#enqueue(p.peer, p.addrs);
      this.#pump();
    } catch (e) {
      this.deps.log.debug({ peer, err: (e as Error).message }, 'peer exchange failed');
    }
  }

  /**
   * One round: bootstrap peers we lost, and an exchange with EXCHANGE_FANOUT connected DMS peers chosen at
   * random. Asking every peer each round cost O(peers²) bytes a round: at 50 nodes most of a node's idle CPU.
   */
  round(): void {
    this.dialBootstrap();
    const connected = [...this.dmsPeers].filter((p) => this.connected(p));
    for (let i = 0; i < EXCHANGE_FANOUT && connected.length > 0; i += 1) {
      const [p] = connected.splice(Math.floor(Math.random() * connected.length), 1);
      void this.exchange(p!);
    }
  }

  dialBootstrap(): void {
    for (const a of this.init.bootstrap) {
      const peer = a.split('/p2p/').pop()!;
      if (peer === this.init.self || this.connected(peer)) continue;
      this.deps.libp2p
        .dial(multiaddr(a), { signal: AbortSignal.timeout(this.init.timeoutMs) })
        .catch((e: Error) => this.deps.log.debug({ addr: a, err: e.message }, 'bootstrap peer not reachable yet'));
    }
  }

  #full(): boolean {
    return this.deps.libp2p.getPeers().length + this.#dialling.size >= this.init.maxPeers;
  }

  #enqueue(peer: string, addrs: readonly string[]): void {
    if (peer === this.init.self || this.#dialling.has(peer) || this.connected(peer) || this.#queued.size >= MAX_QUEUED_DIALS) return;
    if ((this.#retry.get(peer)?.at ?? 0) > this.#clock.now()) return;
    const ok = dialable(peer, addrs, dialRanges(this.deps.libp2p.getMultiaddrs().map((a) => a.toString())));
    if (ok.length > 0) this.#queued.set(peer, ok);
  }

  /** Starts queued dials, a random one at a time, while fewer than PARALLEL_DIALS run and there is room. */
  #pump(): void {
    while (this.#dialling.size < PARALLEL_DIALS && this.#queued.size > 0 && !this.#full()) {
      const peers = [...this.#queued.keys()];
      const peer = peers[Math.floor(Math.random() * peers.length)]!;
      const addrs = this.#queued.get(peer)!;
      this.#queued.delete(peer);
      if (this.connected(peer)) continue;
      this.#dialling.add(peer);
      void this.#dial(peer, addrs).finally(() => {
        this.#dialling.delete(peer);
        this.#pump();
      });
    }
    if (this.#full()) this.#queued.clear();
  }

  async #dial(peer: string, addrs: readonly string[]): Promise<void> {
    try {
      await this.deps.libp2p.dial(addrs.map((a) => multiaddr(a)), { signal: AbortSignal.timeout(this.init.timeoutMs) });
      this.#retry.delete(peer);
      this.deps.log.info({ peer }, 'connected to a peer learned through peer exchange');
    } catch (e) {
      const delayMs = Math.min(RETRY_MAX_MS, (this.#retry.get(peer)?.delayMs ?? RETRY_MIN_MS / 2) * 2);
      this.#retry.set(peer, { at: this.#clock.now() + delayMs, delayMs });
      if (this.#retry.size > MAX_QUEUED_DIALS) this.#retry.delete(this.#retry.keys().next().value!);
      this.deps.log.debug({ peer, err: (e as Error).message, retryInMs: delayMs }, 'could not dial a peer learned through peer exchange');
    }
  }
}
