/**
 * The libp2p host: websockets (plain /ws, or /wss with a certificate), noise, yamux, identify, ping,
 * gossipsub and bootstrap. Its peer key is the node's identity key, so the peer id is the identity's.
 */
import { bootstrap } from '@libp2p/bootstrap';
import { type GossipSub, gossipsub } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import type { Ed25519PrivateKey, Libp2p } from '@libp2p/interface';
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
}

export type HostServices = { identify: unknown; ping: unknown; pubsub: GossipSub };
export type Libp2pHost = Libp2p<HostServices>;

/**
 * Gossipsub as the bid topic needs it. Two choices differ from the library's defaults, on purpose:
 * - No IP colocation penalty (peer score P6). By default every peer beyond 10 that shares one IP address scores
 *   -5 x surplus², so from the 14th peer on one address all of them fall below the graylist threshold: nothing
 *   they publish is taken and nothing is published to them. Every node of a network on one host, or behind one NAT
 *   (a lab, a cluster's egress address), shares an address, so at 15 nodes no bid request arrived anywhere. A DMS
 *   peer is a signed identity that must pass every check of the edge; addresses say nothing about who it is.
 * - Flood publish stays on (the default, stated): a node's own bid request goes straight to every connected
 *   subscriber, one hop, and the mesh relays it to nodes further away.
 */
export const GOSSIP_OPTIONS = Object.freeze({
  allowPublishToZeroTopicPeers: true,
  emitSelf: false,
  floodPublish: true,
  globalSignaturePolicy: 'StrictSign' as const,
  scoreParams: { IPColocationFactorWeight: 0 },
});

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
      connectionManager: { maxConnections: init.maxConnections },
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
