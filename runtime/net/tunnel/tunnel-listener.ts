/**
 * The dialling end of `/dms/tunnel/1.0.0`: a TCP listener on 127.0.0.1 (a free port) whose every connection is
 * carried over a new libp2p stream to `peer`, to the named port of the target part. A connection the far end
 * refuses (or that cannot be carried: no stream, no status in time, too many at once) is reset at once, so a
 * client sees it closed and never hangs.
 */
import { type Server, type Socket, createServer } from 'node:net';
import type { Libp2p, Stream } from '@libp2p/interface';
import { readFrame } from './frame-reader.ts';
import { RefusalLog, TunnelCounters, type TunnelLog } from './tunnel-counters.ts';
import { TUNNEL_DEFAULTS, type TunnelInit } from './tunnel-defaults.ts';
import { TunnelClosedError, TunnelRefusedError } from './tunnel-errors.ts';
import { TunnelPipe } from './tunnel-pipe.ts';
import { STATUS, TUNNEL_PROTOCOL, type TunnelHeader, encodeHeader, readStatusFrame, refusalOf } from './tunnel.protocol.ts';

type TunnelHost = Pick<Libp2p, 'dialProtocol'>;
type DialTarget = Parameters<Libp2p['dialProtocol']>[0];

export interface TunnelListenerOptions {
  /** The peer whose node runs the target part (a peer id it can find, or its address). */
  readonly peer: DialTarget;
  /** The part and named port to reach, and the deal they belong to. */
  readonly target: TunnelHeader;
  readonly log: TunnelLog;
  readonly init?: Partial<TunnelInit>;
}

export interface TunnelListener {
  /** `127.0.0.1:PORT`: where local clients connect. */
  readonly address: string;
  readonly port: number;
  /** The part and named port it reaches. */
  readonly target: TunnelHeader;
  readonly counters: TunnelCounters;
  /** Stops listening and resets every connection it carries. */
  close(): Promise<void>;
  /**
   * Carries new connections to `peer` from now on (the target part moved to another node); connections under way
   * are reset, so their clients reconnect to the new place. The local address stays what the part was given.
   */
  retarget(peer: DialTarget): void;
}

/** Opens a local listener whose connections are tunnelled to `opts.target` on `opts.peer`. */
export async function openTunnelListener(host: TunnelHost, opts: TunnelListenerOptions): Promise<TunnelListener> {
  encodeHeader(opts.target); // a target too large for a header fails here, not on the first connection
  const listener = new Libp2pTunnelListener(host, opts);
  await listener.listen();
  return listener;
}

class Libp2pTunnelListener implements TunnelListener {
  readonly counters = new TunnelCounters();
  readonly #init: TunnelInit;
  readonly #refusals: RefusalLog;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #pipes = new Set<TunnelPipe>();
  #peerName: string;
  #peer: DialTarget;
  #port = 0;
  #closed = false;

  constructor(
    readonly host: TunnelHost,
    readonly opts: TunnelListenerOptions,
  ) {
    this.#peer = opts.peer;
    this.#init = { ...TUNNEL_DEFAULTS, ...opts.init };
    this.#refusals = new RefusalLog(opts.log);
    this.#peerName = String(opts.peer);
    this.#server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (socket) => void this.#carry(socket));
  }

  get port(): number {
    return this.#port;
  }

  get target(): TunnelHeader {
    return this.opts.target;
  }

  get address(): string {
    return `127.0.0.1:${this.#port}`;
  }

  listen(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host: '127.0.0.1', port: 0 }, () => {
        this.#server.off('error', reject);
        this.#port = (this.#server.address() as { port: number }).port;
        resolve();
      });
    });
  }

  retarget(peer: DialTarget): void {
    if (String(peer) === this.#peerName) return;
    this.#peer = peer;
    this.#peerName = String(peer);
    const why = new TunnelClosedError(`the target moved to ${this.#peerName}`);
    for (const p of this.#pipes) p.abort(why);
    for (const s of this.#sockets) if (!s.destroyed) s.resetAndDestroy();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const closing = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    const why = new TunnelClosedError('the tunnel listener closed');
    for (const p of this.#pipes) p.abort(why);
    for (const s of this.#sockets) if (!s.destroyed) s.resetAndDestroy();
    await closing;
  }

  async #carry(socket: Socket): Promise<void> {
    const onEarlyError = (): void => {}; // a client reset before the pipe starts: its 'close' is what counts
    socket.on('error', onEarlyError);
    if (this.#closed || this.#sockets.size >= this.#init.maxConnections) {
      return this.#refuse(socket, null, new TunnelRefusedError('too-many-connections', `${this.#sockets.size} connections carried already`));
    }
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    let stream: Stream;
    try {
      stream = await this.host.dialProtocol(this.#peer, TUNNEL_PROTOCOL, {
        signal: AbortSignal.timeout(this.#init.openTimeoutMs),
        maxOutboundStreams: this.#init.maxStreamsPerPeer,
      });
    } catch (e) {
      return this.#refuse(socket, null, new TunnelRefusedError('dial-failed', `no stream to ${this.#peerName}: ${(e as Error).message}`));
    }
    const refused = await this.#handshake(stream);
    if (refused) return this.#refuse(socket, stream, refused);
    if (socket.destroyed || this.#closed) return stream.abort(new TunnelClosedError('the client left before the tunnel opened'));
    socket.off('error', onEarlyError);
    const pipe = new TunnelPipe(socket, stream, this.counters, this.#init);
    this.#pipes.add(pipe);
    const end = await pipe.done;
    this.#pipes.delete(pipe);
    this.opts.log.debug({ peer: this.#peerName, target: this.opts.target, end }, 'tunnel closed');
  }

  /** Sends the header and reads the status: null when the far end said ok, else why not. */
  async #handshake(stream: Stream): Promise<TunnelRefusedError | null> {
    let status: number;
    try {
      stream.send(encodeHeader(this.opts.target));
      status = (await readFrame(stream, readStatusFrame, this.#init.openTimeoutMs, 'status'))[0]!;
    } catch (e) {
      return new TunnelRefusedError('no-status', (e as Error).message);
    }
    if (status === STATUS.ok) return null;
    const reason = refusalOf(status);
    return new TunnelRefusedError(reason, `${this.#peerName} refused ${this.opts.target.part}/${this.opts.target.port}: ${reason}`);
  }

  /** Resets the client's connection at once, ends the stream (if any), counts and logs why. */
  #refuse(socket: Socket, stream: Stream | null, why: TunnelRefusedError): void {
    if (!socket.destroyed) socket.resetAndDestroy();
    // a refusal ends with the far end closing its side, so ours closes too; with no status, nothing is closing
    if (stream && why.reason !== 'no-status') stream.close().catch(() => stream.abort(why));
    else if (stream) stream.abort(why);
    this.counters.refuse(why.reason);
    this.#refusals.note(this.#peerName, why.reason, why.message, why.reason !== 'too-many-connections');
  }
}
