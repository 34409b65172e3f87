/**
 * The direct-message transport: the `/dms/actor/1.0.0` protocol, one long-lived outbound stream per peer
 * (opened on first use and kept), and the inbound streams peers opened to us. A peer that breaks the framing
 * or the flow control is cut off (its connection closed); the others are unaffected.
 */
import type { Libp2p, Stream, Connection } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import type { RejectReason } from '../../../machines/envelope.ts';
import { type Clock, realClock } from '../../clock.ts';
import type { FlowInit } from './flow-control.ts';
import { InboundChannel } from './inbound-channel.ts';
import { ChannelClosedError, OutboundChannel } from './outbound-channel.ts';

export const ACTOR_PROTOCOL = '/dms/actor/1.0.0';

/** Rejections after which the peer is disconnected: the stream cannot be trusted to carry anything more. */
const CUT_OFF: readonly RejectReason[] = ['flow-violation', 'oversized'];

export interface ActorTransportDeps {
  readonly libp2p: Libp2p;
  readonly flow: FlowInit;
  onEnvelope(peer: string, kind: number, body: Uint8Array): void;
  onReject(peer: string, reason: RejectReason, detail: string): void;
  readonly log: { debug(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
  /** Time for deadlines, the first probes and the channels' pacing (default: the real clock). */
  readonly clock?: Clock;
}

export class OpenChannelError extends Error {
  override name = 'OpenChannelError';
}

export class Libp2pActorTransport {
  readonly #out = new Map<string, OutboundChannel>();
  readonly #opening = new Map<string, Promise<OutboundChannel>>();
  readonly #in = new Set<InboundChannel>();
  #stopped = false;
  readonly #clock: Clock;

  constructor(readonly deps: ActorTransportDeps) {
    this.#clock = deps.clock ?? realClock;
  }

  async start(): Promise<void> {
    await this.deps.libp2p.handle(ACTOR_PROTOCOL, (stream: Stream, connection: Connection) => this.#accept(stream, connection), {
      maxInboundStreams: 4,
      maxOutboundStreams: 4,
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.deps.libp2p.unhandle(ACTOR_PROTOCOL).catch(() => {});
    for (const ch of this.#out.values()) ch.close();
    for (const ch of this.#in) ch.close();
    this.#out.clear();
    this.#in.clear();
  }

  /** Queues frames on the peer's channel, opening it first when needed. */
  async sendFrames(peer: string, frames: readonly Uint8Array[], deadline: number): Promise<void> {
    const ch = this.#out.get(peer);
    if (ch && !ch.closed) return ch.send(frames, deadline);
    return (await this.channel(peer, deadline)).send(frames, deadline);
  }

  /** True when the channel to `peer` is open and `n` more frames fit in its queue now. */
  ready(peer: string, n: number): boolean {
    return this.#out.get(peer)?.hasRoom(n) ?? false;
  }

  /** The open channel to a peer, opening a stream (and dialling) when there is none. */
  channel(peer: string, deadline = this.#clock.now() + 10_000): Promise<OutboundChannel> {
    const ch = this.#out.get(peer);
    if (ch && !ch.closed) return Promise.resolve(ch);
    let p = this.#opening.get(peer);
    if (!p) {
      p = this.#open(peer, deadline).finally(() => this.#opening.delete(peer));
      this.#opening.set(peer, p);
    }
    return p;
  }

  /** The open outbound channel to a peer, if any. */
  outbound(peer: string): OutboundChannel | undefined {
    const ch = this.#out.get(peer);
    return ch && !ch.closed ? ch : undefined;
  }

  /** Sends an RTT probe on every open channel. */
  probeAll(): void {
    for (const ch of this.#out.values()) ch.probe();
  }

  async #open(peer: string, deadline: number): Promise<OutboundChannel> {
    if (this.#stopped) throw new ChannelClosedError('the network is stopped');
    let stream: Stream;
    try {
      stream = await this.deps.libp2p.dialProtocol(peerIdFromString(peer), ACTOR_PROTOCOL, { signal: AbortSignal.timeout(Math.max(1, deadline - this.#clock.now())) });
    } catch (e) {
      throw new OpenChannelError(`cannot open a channel to ${peer}: ${(e as Error).message}`);
    }
    const ch = new OutboundChannel(peer, stream, this.deps.flow, {
      onError: (p, detail) => this.deps.log.warn({ peer: p, detail }, `the channel to ${p} failed: ${detail}`),
      onClose: (c) => {
        if (this.#out.get(c.peer) === c) this.#out.delete(c.peer);
      },
    }, this.#clock);
    this.#out.set(peer, ch);
    // a few probes soon after opening, so the RTT settles before the periodic probes take over
    for (const ms of [0, 250, 500, 1000]) this.#clock.after(ms, () => ch.probe());
    return ch;
  }

  #accept(stream: Stream, connection: Connection): void {
    const peer = connection.remotePeer.toString();
    const ch = new InboundChannel(peer, stream, this.deps.flow, {
      onEnvelope: this.deps.onEnvelope,
      onReject: (p, reason, detail) => {
        this.deps.onReject(p, reason, detail);
        if (CUT_OFF.includes(reason)) {
          this.deps.log.warn({ peer: p, reason }, `cutting off peer ${p}: ${reason}`);
          void connection.close().catch(() => connection.abort(new Error(reason)));
        }
      },
      onClose: (c) => this.#in.delete(c),
    }, this.#clock);
    this.#in.add(ch);
  }
}
