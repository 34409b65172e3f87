/**
 * Events of the node's network inbox (`net`): liveness and round-trip probes, and peer exchange, which is how
 * a node that joined through one peer learns of the others. Payloads only; they travel in envelopes.
 */

/** The inbox every node serves for these events. */
export const NET_INBOX = 'net';

/** Ask for an answer (`net.pong`) when the envelope has `replyTo`; without it, the ping is only counted. */
export interface NetPing {
  readonly type: 'net.ping';
  readonly seq: number;
  /** Opaque data echoed back in the pong (at most 64 KiB). */
  readonly data?: string;
}
export interface NetPong {
  readonly type: 'net.pong';
  readonly seq: number;
  readonly data?: string;
}
/** Ask a peer which peers it is connected to. */
export interface PeersRequest {
  readonly type: 'peers.request';
}
/** A peer a node is connected to: its addresses and the measured round-trip time in ms (null: not yet measured). */
export interface PeerEdge {
  readonly peer: string;
  readonly addrs: readonly string[];
  readonly rttMs: number | null;
}
export interface PeersReply {
  readonly type: 'peers.reply';
  readonly peers: readonly PeerEdge[];
}
/** The answer to a request that could not be served. */
export interface NetError {
  readonly type: 'net.error';
  readonly code: string;
  readonly message: string;
}

export type NetMessage = NetPing | NetPong | PeersRequest | PeersReply | NetError;
export type NetMessageType = NetMessage['type'];

/** Payload of a message: the event without its `type`. */
export type PayloadOf<M extends { readonly type: string }> = Omit<M, 'type'>;
