/**
 * Tunables of TCP tunnels, with their defaults. Every bound a remote peer or a local client could otherwise push
 * without limit is here.
 */

export interface TunnelInit {
  /** Tunnel streams one peer may hold open to this node at once; more are refused `busy` (and counted). */
  readonly maxStreamsPerPeer: number;
  /** TCP connections one listener carries at once; more are reset as they arrive (and counted). */
  readonly maxConnections: number;
  /** The acceptor waits this long for a stream's header before refusing it `bad-header`. */
  readonly headerTimeoutMs: number;
  /** The acceptor's connect to its local target port gives up after this long (`unreachable`). */
  readonly connectTimeoutMs: number;
  /** The dialler gives up opening a stream, or waiting for its status, after this long. */
  readonly openTimeoutMs: number;
  /** After refusing, the acceptor resets the stream if the dialler has not closed its end within this long. */
  readonly refuseGraceMs: number;
  /**
   * Bytes a tunnel stream may hold unread while the TCP socket it writes to is full. The stream stops granting
   * its muxer window then, so what arrives is bounded by that window (yamux: 16 MiB at most); libp2p's default
   * read buffer (4 MiB) is smaller and would reset a fast tunnel behind a slow reader.
   */
  readonly maxReadBufferBytes: number;
}

export const TUNNEL_DEFAULTS: TunnelInit = Object.freeze({
  maxStreamsPerPeer: 64,
  maxConnections: 64,
  headerTimeoutMs: 10_000,
  connectTimeoutMs: 5_000,
  openTimeoutMs: 10_000,
  refuseGraceMs: 2_000,
  maxReadBufferBytes: 16 * 1024 * 1024 + 256 * 1024,
});
