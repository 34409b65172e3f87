/**
 * Discovery: bootstrap peers are dialled at start and again while lost; every DMS peer is asked which peers
 * it is connected to (a signed `peers.request`) when its channel opens and periodically, and those peers are
 * dialled, up to a limit. This is how a node that joined through one peer learns of the others.
 */
import type { PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { NET_INBOX, type PayloadOf, type PeerEdge, type PeersReply } from '../../machines/net.messages.ts';
import type { Libp2pHost } from './libp2p-host.ts';
import type { MessageRouter } from './message-router.ts';

export interface PeerExchangeDeps {
  readonly libp2p: Libp2pHost;
  readonly router: MessageRouter;
  /** Opens (or finds) the actor channel to a peer. */
  readonly openChannel: (peer: string) => Promise<unknown>;
  readonly rttOf: (peer: string) => number | null;
  readonly log: { debug(obj: object, msg?: string): void; info(obj: object, msg?: string): void };
}

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

  constructor(
    readonly init: PeerExchangeInit,
    readonly deps: PeerExchangeDeps,
  ) {}

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
      () => this.exchange(peer),
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
   * the gossip mesh. Zero means this node sees the whole network it belongs to (as of the last exchange): a
   * node beyond our neighbours would have a neighbour of ours, or of theirs, that some neighbour reports.
   */
  beyond(): number {
    const far = new Set<string>();
    for (const peers of this.#reported.values()) for (const p of peers) if (p !== this.init.self && !this.connected(p)) far.add(p);
    return far.size;
  }

  /** Asks a peer for its peers and dials the ones we are not connected to. */
  async exchange(peer: string): Promise<void> {
    try {
      const r = await this.deps.router.request<PayloadOf<PeersReply>>({ peer, inbox: NET_INBOX }, 'peers.request', {}, { timeoutMs: this.init.timeoutMs });
      if (this.dmsPeers.has(peer)) this.#reported.set(peer, new Set(r.envelope.payload.peers.map((p) => p.peer)));
      await Promise.all(r.envelope.payload.peers.map((p) => this.#dial(p.peer, p.addrs)));
    } catch (e) {
      this.deps.log.debug({ peer, err: (e as Error).message }, 'peer exchange failed');
    }
  }

  /** One round: bootstrap peers we lost, and an exchange with every connected DMS peer. */
  round(): void {
    this.dialBootstrap();
    for (const p of this.dmsPeers) if (this.connected(p)) void this.exchange(p);
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

  async #dial(peer: string, addrs: readonly string[]): Promise<void> {
    if (peer === this.init.self || this.connected(peer) || this.deps.libp2p.getPeers().length >= this.init.maxPeers) return;
    const full = addrs.map((a) => (a.includes('/p2p/') ? a : `${a}/p2p/${peer}`)).filter((a) => /\/(ws|wss)\//.test(`${a}/`));
    if (full.length === 0) return;
    try {
      await this.deps.libp2p.dial(full.map((a) => multiaddr(a)), { signal: AbortSignal.timeout(this.init.timeoutMs) });
      this.deps.log.info({ peer }, 'connected to a peer learned through peer exchange');
    } catch (e) {
      this.deps.log.debug({ peer, err: (e as Error).message }, 'could not dial a peer learned through peer exchange');
    }
  }
}
