/**
 * The sending end of the actor protocol towards one peer: one long-lived stream, a bounded queue of envelope
 * frames, and the credit the receiver granted. Frames leave only against credit, coalesced into few writes;
 * a full queue makes `send` wait (back-pressure on local senders) until room appears or the deadline passes.
 * The same stream carries RTT probes.
 */
import { randomBytes } from 'node:crypto';
import type { Stream } from '@libp2p/interface';
import { type Clock, type Timer, realClock } from '../../clock.ts';
import type { FlowInit } from './flow-control.ts';
import { FrameDecoder, FrameKind, encodeFrame, readVarint } from '../wire/frame-codec.ts';

export class ChannelClosedError extends Error {
  override name = 'ChannelClosedError';
}

export class SendTimeoutError extends Error {
  override name = 'SendTimeoutError';
}

interface Waiter {
  readonly frames: readonly Uint8Array[];
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
  readonly timer: Timer;
}

export interface OutboundHooks {
  /** The receiver sent something that is not credit or a probe answer, or the stream failed. */
  onError(peer: string, detail: string): void;
  onClose(channel: OutboundChannel): void;
}

/** RTT is the median of this many most recent probe answers. */
const RTT_SAMPLES = 5;

export class OutboundChannel {
  #credit = 0;
  #queue: Uint8Array[] = [];
  #head = 0;
  #waiters: Waiter[] = [];
  #pumping = false;
  #closed = false;
  readonly #decoder = new FrameDecoder(64);
  readonly #probes = new Map<string, number>();
  readonly #rtts: number[] = [];
  /** Median round-trip time of the recent probes in ms, null until the first answer. */
  rttMs: number | null = null;
  sent = 0;
  dropped = 0;

  constructor(
    readonly peer: string,
    readonly stream: Stream,
    readonly init: FlowInit,
    readonly hooks: OutboundHooks,
    readonly clock: Clock = realClock,
  ) {
    stream.addEventListener('message', (e) => this.#onData(e.data.subarray()));
    stream.addEventListener('close', () => this.#onClosed());
  }

  get closed(): boolean {
    return this.#closed;
  }

  get credit(): number {
    return this.#credit;
  }

  get queued(): number {
    return this.#queue.length - this.#head + this.#waiters.reduce((n, w) => n + w.frames.length, 0);
  }

  /** True when `n` more frames fit in the queue now. */
  hasRoom(n: number): boolean {
    return !this.#closed && this.#waiters.length === 0 && this.#queue.length - this.#head + n <= this.init.maxQueue;
  }

  /**
   * Queues envelope frames (in order) and writes what the credit allows at once. Resolves when they are
   * queued; while the queue is full it waits for room, until `deadline`.
   */
  send(frames: readonly Uint8Array[], deadline: number): Promise<void> {
    if (this.#closed) return Promise.reject(new ChannelClosedError(`the channel to ${this.peer} is closed`));
    if (this.#waiters.length === 0 && this.#queue.length - this.#head < this.init.maxQueue) {
      for (const f of frames) this.#queue.push(f);
      void this.#pump();
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const timer = this.clock.after(
        deadline - this.clock.now(),
        () => {
          const i = this.#waiters.findIndex((w) => w.timer === timer);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(new SendTimeoutError(`the queue to ${this.peer} stayed full until the message's deadline; the peer reads too slowly`));
        },
        { keepAlive: true },
      );
      this.#waiters.push({ frames, resolve, reject, timer });
    });
  }

  /** Sends an RTT probe; the answer updates `rttMs`. */
  probe(): void {
    if (this.#closed) return;
    const nonce = randomBytes(8);
    if (this.#probes.size > 16) this.#probes.clear();
    this.#probes.set(nonce.toString('hex'), performance.now());
    this.#write(encodeFrame(FrameKind.PROBE, nonce));
  }

  close(): void {
    if (this.#closed) return;
    this.stream.close().catch(() => this.stream.abort(new ChannelClosedError('close failed')));
    this.#onClosed();
  }

  abort(reason: string): void {
    this.stream.abort(new ChannelClosedError(reason));
    this.#onClosed();
  }

  #onData(chunk: Uint8Array): void {
    let frames;
    try {
      frames = this.#decoder.push(chunk);
    } catch (e) {
      this.hooks.onError(this.peer, (e as Error).message);
      this.abort('protocol error');
      return;
    }
    for (const f of frames) {
      if (f.kind === FrameKind.CREDIT) {
        const v = readVarint(f.body, 0);
        if (v) this.#credit += v[0];
        void this.#pump();
      } else if (f.kind === FrameKind.PROBE_ACK) {
        const t0 = this.#probes.get(Buffer.from(f.body).toString('hex'));
        if (t0 === undefined) continue;
        this.#probes.delete(Buffer.from(f.body).toString('hex'));
        this.#rtts.push(performance.now() - t0);
        if (this.#rtts.length > RTT_SAMPLES) this.#rtts.shift();
        const sorted = [...this.#rtts].sort((a, b) => a - b);
        this.rttMs = sorted[Math.floor(sorted.length / 2)]!;
      } else {
        this.hooks.onError(this.peer, `unexpected frame kind ${f.kind} from the receiver`);
      }
    }
  }

  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (!this.#closed && this.#credit > 0 && this.#head < this.#queue.length) {
        const parts: Uint8Array[] = [];
        let bytes = 0;
        while (this.#credit > 0 && this.#head < this.#queue.length && bytes < this.init.maxWriteBytes) {
          const f = this.#queue[this.#head++]!;
          parts.push(f);
          bytes += f.length;
          this.#credit -= 1;
        }
        this.sent += parts.length;
        if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
          this.#queue = this.#queue.slice(this.#head);
          this.#head = 0;
        }
        this.#admitWaiters();
        if (!this.#write(parts.length === 1 ? parts[0]! : concat(parts, bytes))) await this.stream.onDrain();
      }
    } catch (e) {
      this.hooks.onError(this.peer, `writing to the stream failed: ${(e as Error).message ?? String(e)}`);
      this.#onClosed();
    } finally {
      this.#pumping = false;
    }
    if (!this.#closed && this.#credit > 0 && this.#head < this.#queue.length) void this.#pump();
  }

  #write(bytes: Uint8Array): boolean {
    try {
      return this.stream.send(bytes);
    } catch {
      this.#onClosed();
      return true;
    }
  }

  #admitWaiters(): void {
    while (this.#waiters.length > 0 && this.#queue.length - this.#head < this.init.maxQueue) {
      const w = this.#waiters.shift()!;
      w.timer.clear();
      for (const f of w.frames) this.#queue.push(f);
      w.resolve();
    }
  }

  #onClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.dropped += this.#queue.length - this.#head;
    this.#queue = [];
    this.#head = 0;
    for (const w of this.#waiters) {
      w.timer.clear();
      w.reject(new ChannelClosedError(`the channel to ${this.peer} closed before the message left`));
    }
    this.#waiters = [];
    this.hooks.onClose(this);
  }
}

function concat(parts: readonly Uint8Array[], bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
