/**
 * The `net` inbox every node serves: answers pings (liveness and round-trip time through the whole signed
 * path) and tells a peer which peers it is connected to (peer exchange and topology).
 */
import { NET_INBOX, type NetPing, type PayloadOf, type PeerEdge } from '../../machines/net.messages.ts';
import type { InboxSpec, MessageRouter } from './message-router.ts';

export function netInbox(router: MessageRouter, edges: () => PeerEdge[]): InboxSpec {
  return {
    name: NET_INBOX,
    accepts: ['net.ping', 'peers.request'],
    handle(msg) {
      const env = msg.envelope;
      if (env.type === 'net.ping') {
        const p = env.payload as PayloadOf<NetPing>;
        void router.reply(msg, 'net.pong', p.data === undefined ? { seq: p.seq } : { seq: p.seq, data: p.data }).catch(() => {});
      } else if (env.type === 'peers.request') {
        void router.reply(msg, 'peers.reply', { peers: edges() }).catch(() => {});
      }
    },
  };
}
