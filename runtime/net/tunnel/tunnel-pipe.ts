/**
 * Carries a TCP connection's bytes both ways over a tunnel stream, once the handshake is done.
 *
 * Back-pressure, both ways, so nothing is buffered without bound:
 * - socket -> stream: when `stream.send()` returns false the socket is paused (the kernel's TCP window then
 *   stops the client) until the stream's `onDrain()`.
 * - stream -> socket: when `socket.write()` returns false the stream is paused (yamux then stops granting its
 *   window, so the far end stops sending) until the socket's 'drain'.
 * Ends: a TCP FIN closes the stream's writable end and the stream's end (the remote's close) ends the socket's
 * writable end, so half-closes cross; a socket error or reset aborts the stream, and a stream abort or reset
 * resets the socket.
 */
import type { Socket } from 'node:net';
import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface';
import type { TunnelCounters } from './tunnel-counters.ts';
import type { TunnelInit } from './tunnel-defaults.ts';
import { TunnelClosedError } from './tunnel-errors.ts';

export type PipeEnd = 'closed' | 'aborted';

export class TunnelPipe {
  /** Resolves once the socket and the stream are both closed: `aborted` when either ended in an error. */
  readonly done: Promise<PipeEnd>;
  #socketEnded = false;
  #streamEnded = false;
  #socketClosed = false;
  #streamClosed = false;
  #aborted = false;
  #waitingDrain = false;
  #finish!: (end: PipeEnd) => void;

  constructor(
    readonly socket: Socket,
    readonly stream: Stream,
    readonly counters: TunnelCounters,
    init: Pick<TunnelInit, 'maxReadBufferBytes'>,
  ) {
    this.done = new Promise<PipeEnd>((resolve) => (this.#finish = resolve));
    counters.opened += 1;
    counters.active += 1;
    stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, init.maxReadBufferBytes);
    socket.on('data', (chunk: Buffer) => this.#fromSocket(chunk));
    socket.on('end', () => this.#onSocketEnd());
    socket.on('error', (e) => this.abort(new TunnelClosedError(`the TCP connection failed: ${e.message}`)));
    socket.on('close', () => this.#onSocketClose());
    stream.addEventListener('message', (e) => this.#fromStream(e));
    stream.addEventListener('end', () => this.#onStreamEnd());
    this.#onStreamEnd(); // the end may have come already, during protocol negotiation
    stream.addEventListener('close', (e) => this.#onStreamClose(e));
    socket.resume();
  }

  /** Ends both sides at once: the stream is aborted and the socket reset. */
  abort(why: Error): void {
    if (!this.#aborted && !(this.#socketClosed && this.#streamClosed)) {
      this.#aborted = true;
      this.counters.aborted += 1;
    }
    this.stream.abort(why);
    if (!this.socket.destroyed) this.socket.resetAndDestroy();
  }

  #fromSocket(chunk: Buffer): void {
    this.counters.bytesToPeer += chunk.length;
    let more: boolean;
    try {
      more = this.stream.send(chunk);
    } catch (e) {
      this.abort(new TunnelClosedError(`the stream cannot take more bytes: ${(e as Error).message}`));
      return;
    }
    if (more) return;
    this.socket.pause();
    this.stream.onDrain().then(
      () => this.socket.resume(),
      () => {}, // the stream closed instead: its 'close' handler ends the socket
    );
  }

  #fromStream(e: StreamMessageEvent): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    const data = e.data;
    this.counters.bytesFromPeer += data.byteLength;
    let more = true;
    if (data instanceof Uint8Array) more = this.socket.write(data);
    else for (const part of data) more = this.socket.write(part);
    this.#onStreamEnd();
    if (more || this.#waitingDrain || this.stream.readStatus !== 'readable') return;
    this.#waitingDrain = true;
    this.stream.pause();
    this.socket.once('drain', () => {
      this.#waitingDrain = false;
      if (this.stream.readStatus === 'paused') this.stream.resume();
    });
  }

  #onSocketEnd(): void {
    this.#socketEnded = true;
    this.stream.close().catch((e: Error) => this.abort(new TunnelClosedError(`closing the stream failed: ${e.message}`)));
  }

  /**
   * Ends the socket's writable end once the stream will deliver nothing more. 'end' alone does not say so: when
   * protocol negotiation read ahead past the remote's close, 'end' came before the bytes it pushed back.
   */
  #onStreamEnd(): void {
    if (this.#streamEnded || !this.stream.readableEnded || this.stream.readBufferLength > 0) return;
    this.#streamEnded = true;
    // an abort or a reset ends the stream's reading too, but that is no FIN: the close handler resets the socket
    if (this.stream.status === 'aborted' || this.stream.status === 'reset') return;
    if (!this.socket.destroyed && !this.socket.writableEnded) this.socket.end();
  }

  #onSocketClose(): void {
    if (this.#socketClosed) return;
    this.#socketClosed = true;
    // a socket gone before both directions ended can take or give nothing more: the stream goes too
    if (!this.#socketEnded || !this.#streamEnded) this.abort(new TunnelClosedError('the TCP connection closed before the tunnel was done'));
    this.#settle();
  }

  #onStreamClose(e: StreamCloseEvent): void {
    if (this.#streamClosed) return;
    this.#streamClosed = true;
    if (e.error) this.abort(e.error);
    // closed without an error but with the socket still sending: the connection under the stream went away
    else if (!this.#socketEnded) this.abort(new TunnelClosedError('the stream closed while the TCP connection was still open'));
    this.#settle();
  }

  #settle(): void {
    if (!this.#socketClosed || !this.#streamClosed) return;
    this.counters.active -= 1;
    this.#finish(this.#aborted ? 'aborted' : 'closed');
  }
}
