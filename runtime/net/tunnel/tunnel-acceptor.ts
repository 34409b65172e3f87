/**
 * The accepting end of `/dms/tunnel/1.0.0`: reads each stream's header, asks `authorize` which local port (if
 * any) the dialling peer may reach for it, connects to that port on 127.0.0.1, answers the status, and pipes.
 * Everything else (a garbage, oversized, late or cut-short header, an unknown target, a peer over its stream
 * cap, a port nothing listens on, an authorize that throws) is answered with a refusal, counted, and logged.
 */
import { type Socket, connect } from 'node:net';
import type { Connection, Libp2p, Stream } from '@libp2p/interface';
import { readFrame } from './frame-reader.ts';
import { RefusalLog, TunnelCounters, type TunnelLog } from './tunnel-counters.ts';
import { TUNNEL_DEFAULTS, type TunnelInit } from './tunnel-defaults.ts';
import { TunnelClosedError, TunnelHeaderError, TunnelRefusedError } from './tunnel-errors.ts';
import { TunnelPipe } from './tunnel-pipe.ts';
import { type AuthRefusal, STATUS, TUNNEL_PROTOCOL, type TunnelHeader, type TunnelRefusal, decodeHeader, readHeaderFrame } from './tunnel.protocol.ts';

/** What `authorize` answers: the local port to connect to, or why not. */
export type TunnelGrant = { readonly port: number } | { readonly refused: AuthRefusal; readonly detail?: string };

export interface TunnelAcceptorOptions {
  /** Decides a header from `fromPeer` (a peer id string): the local port its part's named port is on, or a refusal. */
  readonly authorize: (fromPeer: string, header: TunnelHeader) => TunnelGrant | Promise<TunnelGrant>;
  readonly log: TunnelLog;
  readonly init?: Partial<TunnelInit>;
}

export interface TunnelAcceptor {
  readonly counters: TunnelCounters;
  /** Tunnel streams `peer` holds open here now (in handshake or carrying bytes). */
  streamsOf(peer: string): number;
  /** Stops taking tunnel streams and aborts every one open (their TCP connections are reset). */
  stop(): Promise<void>;
}

type TunnelHost = Pick<Libp2p, 'handle' | 'unhandle'>;

/** Registers the tunnel protocol's handler on `host`. */
export async function handleTunnels(host: TunnelHost, opts: TunnelAcceptorOptions): Promise<TunnelAcceptor> {
  const acceptor = new Libp2pTunnelAcceptor(host, opts);
  await acceptor.start();
  return acceptor;
}

class Libp2pTunnelAcceptor implements TunnelAcceptor {
  readonly counters = new TunnelCounters();
  readonly #init: TunnelInit;
  readonly #refusals: RefusalLog;
  readonly #perPeer = new Map<string, number>();
  readonly #streams = new Set<Stream>();
  readonly #pipes = new Set<TunnelPipe>();
  #stopped = false;

  constructor(
    readonly host: TunnelHost,
    readonly opts: TunnelAcceptorOptions,
  ) {
    this.#init = { ...TUNNEL_DEFAULTS, ...opts.init };
    this.#refusals = new RefusalLog(opts.log);
  }

  async start(): Promise<void> {
    const cap = this.#init.maxStreamsPerPeer;
    // libp2p's own per-connection cap sits a little above ours, so a peer just over ours is answered `busy`
    await this.host.handle(TUNNEL_PROTOCOL, (stream: Stream, connection: Connection) => void this.#accept(stream, connection.remotePeer.toString()), {
      maxInboundStreams: cap + 16,
      maxOutboundStreams: cap,
    });
  }

  streamsOf(peer: string): number {
    return this.#perPeer.get(peer) ?? 0;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.host.unhandle(TUNNEL_PROTOCOL);
    const why = new TunnelClosedError('the tunnel acceptor stopped');
    for (const p of this.#pipes) p.abort(why);
    for (const s of this.#streams) s.abort(why);
  }

  async #accept(stream: Stream, peer: string): Promise<void> {
    const held = this.streamsOf(peer);
    if (this.#stopped) return stream.abort(new TunnelClosedError('the tunnel acceptor stopped'));
    if (held >= this.#init.maxStreamsPerPeer) return this.#refuse(stream, peer, 'busy', `${held} tunnel streams open already`, true);
    this.#perPeer.set(peer, held + 1);
    this.#streams.add(stream);
    try {
      await this.#serve(stream, peer);
    } catch (e) {
      this.opts.log.warn({ peer, err: (e as Error).message }, 'a tunnel failed unexpectedly');
      stream.abort(e as Error);
    } finally {
      this.#streams.delete(stream);
      const n = this.streamsOf(peer) - 1;
      if (n > 0) this.#perPeer.set(peer, n);
      else this.#perPeer.delete(peer);
    }
  }

  async #serve(stream: Stream, peer: string): Promise<void> {
    let header: TunnelHeader | null;
    try {
      header = decodeHeader(await readFrame(stream, readHeaderFrame, this.#init.headerTimeoutMs, 'header'));
      if (!header) throw new TunnelHeaderError('bad header: not a JSON object of three strings {deal, part, port}');
    } catch (e) {
      return this.#refuse(stream, peer, 'bad-header', (e as Error).message, true);
    }
    const what = `${header.deal}/${header.part}/${header.port}`;
    let grant: TunnelGrant;
    try {
      grant = await this.opts.authorize(peer, header);
    } catch (e) {
      return this.#refuse(stream, peer, 'error', `authorize threw on ${what}: ${(e as Error).message}`, true);
    }
    if ('refused' in grant) return this.#refuse(stream, peer, grant.refused, grant.detail ?? what, false);
    let socket: Socket;
    try {
      socket = await connectLocal(grant.port, this.#init.connectTimeoutMs);
    } catch (e) {
      return this.#refuse(stream, peer, 'unreachable', `${what} on 127.0.0.1:${grant.port}: ${(e as Error).message}`, false);
    }
    if (this.#stopped || stream.status !== 'open' || stream.writeStatus !== 'writable') {
      socket.resetAndDestroy();
      return stream.abort(new TunnelClosedError('the stream closed while connecting to its target'));
    }
    stream.send(Uint8Array.of(STATUS.ok));
    const pipe = new TunnelPipe(socket, stream, this.counters, this.#init);
    this.#pipes.add(pipe);
    this.opts.log.debug({ peer, target: what, port: grant.port }, 'tunnel opened');
    const end = await pipe.done;
    this.#pipes.delete(pipe);
    this.opts.log.debug({ peer, target: what, end }, 'tunnel closed');
  }

  /**
   * Answers a refusal and closes this end; what the dialler still sends is dropped, and the stream is reset if
   * the dialler has not closed its end within refuseGraceMs.
   */
  async #refuse(stream: Stream, peer: string, reason: TunnelRefusal, detail: string, loud: boolean): Promise<void> {
    this.counters.refuse(reason);
    this.#refusals.note(peer, reason, detail, loud);
    const grace = setTimeout(() => stream.abort(new TunnelRefusedError(reason, `refused (${reason}); the dialler did not close`)), this.#init.refuseGraceMs);
    grace.unref();
    stream.addEventListener('close', () => clearTimeout(grace), { once: true });
    try {
      if (stream.writeStatus === 'writable') stream.send(Uint8Array.of(STATUS[reason]));
      if (stream.readStatus === 'readable' || stream.readStatus === 'paused') await stream.closeRead();
      await stream.close();
    } catch {
      stream.abort(new TunnelRefusedError(reason, `refused (${reason})`));
    }
    if (stream.status !== 'open') clearTimeout(grace);
  }
}

/** A TCP connection to 127.0.0.1:`port`, paused, with Nagle off (a tunnel's small writes go out at once). */
function connectLocal(port: number, timeoutMs: number): Promise<Socket> {
  if (!Number.isInteger(port) || port < 1 || port > 65535) return Promise.reject(new RangeError(`authorize answered port ${port}, not a TCP port`));
  return new Promise<Socket>((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true, noDelay: true });
    socket.pause();
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no connection within ${timeoutMs} ms`));
    }, timeoutMs);
    const onError = (e: Error): void => {
      clearTimeout(timer);
      reject(e);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
  });
}
