/**
 * Where requesters that are not our neighbours listen, from the `replyAddrs` of their broadcast bid requests.
 * Kept in a small table (the newest MAX_REPLY_PEERS requesters) and written into libp2p's peer store only when
 * this node answers one of them: a broadcast from a stranger costs no lasting record until the node decides to
 * reply. Only addresses that end in the signer's own /p2p/ id are kept: a requester can point only to itself.
 */
import type { PeerStore } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';

/** Requesters whose addresses are held at once; the oldest go first. */
export const MAX_REPLY_PEERS = 256;

export class ReplyAddrs {
  readonly #addrs = new Map<string, readonly string[]>();

  /** Notes the addresses `peer` (the authenticated author) says it listens on. */
  note(peer: string, addrs: readonly string[]): void {
    const own = addrs.filter((a) => a.endsWith(`/p2p/${peer}`));
    if (own.length === 0) return;
    this.#addrs.delete(peer); // re-inserted as the newest
    this.#addrs.set(peer, own);
    if (this.#addrs.size > MAX_REPLY_PEERS) this.#addrs.delete(this.#addrs.keys().next().value!);
  }

  /** Before a message to `peer`: hands its noted addresses to the peer store, so the dial can find it. */
  async use(peer: string, peerStore: PeerStore): Promise<void> {
    const addrs = this.#addrs.get(peer);
    if (!addrs) return;
    this.#addrs.delete(peer);
    await peerStore.merge(peerIdFromString(peer), { multiaddrs: addrs.map((a) => multiaddr(a)) });
  }
}
