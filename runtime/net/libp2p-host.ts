/**
 * The libp2p host: websockets (plain /ws, or /wss with a certificate), noise, yamux, identify, ping,
 * gossipsub and bootstrap. Its peer key is the node's identity key, so the peer id is the identity's.
 */
import { bootstrap } from '@libp2p/bootstrap';
import { type GossipSub, gossipsub } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import type { ConnectionGater, Ed25519PrivateKey, Libp2p, PeerId } from '@libp2p/interface';
import { noise } from '@libp2p/noise';
import { ping } from '@libp2p/ping';
import { webSockets } from '@libp2p/websockets';
import { yamux } from '@libp2p/yamux';
import { createLibp2p } from 'libp2p';

export interface HostInit {
  readonly privateKey: Ed25519PrivateKey;
  readonly listen: readonly string[];
  readonly bootstrap: readonly string[];
  /** PEM certificate and key for /wss listeners. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Most connections kept open. */
  readonly maxConnections: number;
  /** Peers refused for now: no connection to or from them is set up (see `refusingGater`). */
  readonly refused?: (peer: string) => boolean;
}

export type HostServices = { identify: unknown; ping: unknown; pubsub: GossipSub };
export type Libp2pHost = Libp2p<HostServices>;

/**
 * Inbound connections, per remote host: libp2p's defaults (5 new connections a second from one IP address, 10
 * handshakes in progress at once) refuse most of a network that shares one address (one machine, one NAT) while
 * its nodes find each other, and a refused dial is only retried at the next peer-exchange round: at 50 nodes on
 * one host, five never connected to anyone. Peer exchange paces its own dials (peer-exchange.ts), so these allow
 * a joining crowd without lifting the bound on any one host.
 */
export const INBOUND_LIMITS = Object.freeze({ inboundConnectionThreshold: 25, maxIncomingPendingConnections: 32 });

/**
 * Gossipsub as the bid topic needs it. Two choices differ from the library's defaults, on purpose:
 * - No IP colocation penalty (peer score P6). By default every peer beyond 10 that shares one IP address scores
 *   -5 x surplus²: with 14 such peers each scores -80, below the publish threshold (-50), so a node's own
 *   broadcast goes to none of them; with 15, -125, below the graylist threshold (-80), so nothing they send is
 *   taken either. Every node of a network on one host, or behind one NAT
 *   (a lab, a cluster's egress address), shares an address, so at 15 nodes no bid request arrived anywhere. A DMS
 *   peer is a signed identity that must pass every check of the edge; addresses say nothing about who it is.
 * - Flood publish stays on (the default, stated): a node's own bid request goes straight to every connected
 *   subscriber, one hop, and the mesh relays it to nodes further away.
 * - A fast message id (author + sequence number): a broadcast arrives once from its author and again from each
 *   mesh peer that relays it; without one, gossipsub verifies the signature of every copy before it finds the
 *   copy is a duplicate. Only copies of a message whose signature was verified are recognised by it.
 */
export const GOSSIP_OPTIONS = Object.freeze({
  allowPublishToZeroTopicPeers: true,
  emitSelf: false,
  floodPublish: true,
  globalSignaturePolicy: 'StrictSign' as const,
  scoreParams: { IPColocationFactorWeight: 0 },
  fastMsgIdFn: (msg: { from?: Uint8Array; seqno?: Uint8Array }) => (msg.from && msg.seqno ? `${Buffer.from(msg.from).toString('base64')}/${Buffer.from(msg.seqno).toString('base64')}` : '-'),
});

/**
 * A connection gater that refuses peers the edge refused for a while (peer-budgets.ts): they are not dialled,
 * and their connections are dropped as soon as the handshake names them, before any stream is opened.
 */
export function refusingGater(refused: (peer: string) => boolean): ConnectionGater {
  const deny = (peerId: PeerId): boolean => refused(peerId.toString());
  return { denyDialPeer: deny, denyInboundEncryptedConnection: deny, denyOutboundEncryptedConnection: deny };
}

export class ListenError extends Error {
  override name = 'ListenError';
  readonly exitCode = 2;
}

export async function createLibp2pHost(init: HostInit): Promise<Libp2pHost> {
  const peerDiscovery = init.bootstrap.length > 0 ? [bootstrap({ list: [...init.bootstrap], timeout: 10 })] : [];
  try {
    return (await createLibp2p({
      privateKey: init.privateKey,
      addresses: { listen: [...init.listen] },
      transports: [webSockets(init.tls ? { https: { cert: init.tls.cert, key: init.tls.key } } : {})],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      peerDiscovery,
      connectionManager: { maxConnections: init.maxConnections, ...INBOUND_LIMITS },
      ...(init.refused ? { connectionGater: refusingGater(init.refused) } : {}),
      // a liveness ping on a new stream per connection: every 10 s by default, a stream negotiation per peer that
      // our own RTT probes on the actor channel make redundant for measuring; kept, less often, for dead links
      connectionMonitor: { pingInterval: 60_000 },
      services: {
        identify: identify(),
        ping: ping(),
        pubsub: gossipsub(GOSSIP_OPTIONS),
      },
    })) as unknown as Libp2pHost;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EADDRINUSE' || /EADDRINUSE|address already in use/i.test(err.message)) {
      const what = /address already in use \S+/.exec(err.message)?.[0] ?? 'address already in use';
      throw new ListenError(`a --listen address is in use (${what}); pass another port, or port 0 for any free one`);
    }
    if (err.name === 'UnsupportedListenAddressesError' || err.name === 'NoValidAddressesError' || /listen/i.test(err.message)) {
      throw new ListenError(`cannot listen on ${init.listen.join(', ')}: ${err.message}; use e.g. /ip4/127.0.0.1/tcp/0/ws`);
    }
    throw e;
  }
}
