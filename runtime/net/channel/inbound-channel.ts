/**
 * The receiving end of the actor protocol from one peer. It grants the sender credit up front and again as
 * envelopes are processed, paced by a token bucket so a fast peer is slowed; a peer that sends beyond its
 * credit, or a frame that cannot be delimited, is cut off. Every bad frame is reported by reason.
 */
import type { Stream } from '@libp2p/interface';
import type { RejectReason } from '../../../machines/envelope.ts';
import { type Clock, type Timer, realClock } from '../../clock.ts';
import { type FlowInit, TokenBucket } from './flow-control.ts';
import { FrameDecoder, FrameError, FrameKind, encodeCredit, encodeFrame } from '../wire/frame-codec.ts';

export interface InboundHooks {
  /** One envelope frame (its kind, and its body after the kind byte), processed before the next frame. */
  onEnvelope(peer: string, kind: number, body: Uint8Array): void;
  onReject(peer: string, reason: RejectReason, detail: string): void;
  onClose(channel: InboundChannel): void;
}

/** RTT probes a peer may send per second (ours sends one every few seconds). */
const PROBES_PER_SEC = 20;

export class InboundChannel {
  readonly #decoder = new FrameDecoder();
  readonly #bucket: TokenBucket;
  readonly #probes: TokenBucket;
  /** Credit the sender still holds. */
  #granted = 0;
  /** Frames processed and not yet granted back. */
  #consumed = 0;
  #timer: Timer | undefined;
  #closed = false;
  received = 0;

  constructor(
    readonly peer: string,
    readonly stream: Stream,
    readonly init: FlowInit,
    readonly hooks: InboundHooks,
    readonly clock: Clock = realClock,
  ) {
    this.#probes = new TokenBucket(PROBES_PER_SEC, PROBES_PER_SEC, clock.now());
    this.#bucket = new TokenBucket(init.ratePerSec, Math.max(init.burst, init.initialCredit), clock.now());
    stream.addEventListener('message', (e) => this.#onData(e.data.subarray()));
    stream.addEventListener('remoteCloseWrite', () => this.#onEnd());
    stream.addEventListener('close', () => {
      if (!this.#closed) this.#checkTruncated();
      this.#onClosed();
    });
    this.#grant(init.initialCredit);
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.stream.close().catch(() => {});
    this.#onClosed();
  }

  #cut(reason: RejectReason, detail: string): void {
    this.hooks.onReject(this.peer, reason, detail);
    this.stream.abort(new Error(`${reason}: ${detail}`));
    this.#onClosed();
  }

  #onData(chunk: Uint8Array): void {
    if (this.#closed) return;
    let frames;
    try {
      frames = this.#decoder.push(chunk);
    } catch (e) {
      const err = e as FrameError;
      this.#cut(err.name === 'FrameError' ? err.reason : 'malformed', err.message);
      return;
    }
    for (const f of frames) {
      if (this.#closed) return;
      if (f.kind === FrameKind.PROBE) {
        // probes need no credit, but a peer may not make us answer more than a few per second
        if (this.#probes.take(1, this.clock.now()) === 0) return this.#cut('flow-violation', 'too many RTT probes');
        this.#send(encodeFrame(FrameKind.PROBE_ACK, f.body.slice(0, 8)));
        continue;
      }
      // every other frame, good or bad, uses up credit: a flood of anything is slowed or cut off
      if (this.#granted <= 0) return this.#cut('flow-violation', 'sent frames beyond the credit granted');
      this.#granted -= 1;
      this.#consumed += 1;
      if (f.kind === FrameKind.ENVELOPE || f.kind === FrameKind.ENVELOPE_BATCHED) {
        this.received += 1;
        this.hooks.onEnvelope(this.peer, f.kind, f.body);
      } else {
        this.hooks.onReject(this.peer, 'unknown-frame', `frame kind ${f.kind}`);
      }
    }
    this.#maybeGrant();
  }

  #maybeGrant(): void {
    if (this.#closed || this.#timer || this.#consumed < this.init.creditBatch) return;
    const n = this.#bucket.take(this.#consumed, this.clock.now());
    if (n > 0) {
      this.#consumed -= n;
      this.#grant(n);
    }
    if (this.#consumed >= this.init.creditBatch) {
      this.#timer = this.clock.after(
        Math.max(1, this.#bucket.waitMs()),
        () => {
          this.#timer = undefined;
          this.#maybeGrant();
        },
        { keepAlive: true },
      );
    }
  }

  #grant(n: number): void {
    this.#granted += n;
    this.#send(encodeCredit(n));
  }

  #send(bytes: Uint8Array): void {
    try {
      this.stream.send(bytes);
    } catch {
      this.#onClosed();
    }
  }

  #onEnd(): void {
    this.#checkTruncated();
    this.close();
  }

  #checkTruncated(): void {
    try {
      this.#decoder.end();
    } catch (e) {
      this.hooks.onReject(this.peer, 'truncated', (e as Error).message);
    }
  }

  #onClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#timer?.clear();
    this.hooks.onClose(this);
  }
}
