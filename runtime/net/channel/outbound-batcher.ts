/**
 * Envelopes on their way to peers. The first envelope to a peer in a turn of the event loop leaves at once,
 * signed alone (lowest latency for requests and replies); what follows in the same turn collects in that
 * peer's outbox and is signed as one batch at the end of the turn (at once when the batch is full).
 * `add` resolves at once while the peer's channel has room; otherwise, and for a peer without an open channel
 * yet, when the outbox is queued on the channel, so a full channel slows the sender.
 */
import { MAX_BATCH, type SignFn, sealBatch } from '../wire/envelope-codec.ts';
import type { FrameTransport } from '../message-router.ts';

interface Outbox {
  readonly bodies: Uint8Array[];
  deadline: number;
  readonly done: Promise<void>;
  resolve(): void;
  reject(e: Error): void;
}

export interface BatcherDeps {
  readonly transport: Pick<FrameTransport, 'sendFrames' | 'ready'>;
  readonly sign: SignFn;
  onSent(n: number): void;
  onFailed(peer: string, n: number, e: Error): void;
}

export class OutboundBatcher {
  readonly #outbox = new Map<string, Outbox>();
  /** Peers sent to at once in this turn: what follows in the same turn is batched. */
  readonly #sentThisTurn = new Set<string>();
  #turnEndScheduled = false;

  constructor(readonly deps: BatcherDeps) {}

  /** Queues an envelope body for `peer`; `deadline` bounds the wait for room on the channel. */
  add(peer: string, body: Uint8Array, deadline: number): Promise<void> {
    const box = this.#outbox.get(peer) ?? this.#open(peer, deadline);
    box.bodies.push(body);
    box.deadline = Math.min(box.deadline, deadline);
    const immediate = this.deps.transport.ready(peer, box.bodies.length);
    if (!this.#sentThisTurn.has(peer) || box.bodies.length >= MAX_BATCH) this.#flush(peer);
    this.#sentThisTurn.add(peer);
    if (!this.#turnEndScheduled) {
      this.#turnEndScheduled = true;
      setImmediate(() => {
        this.#turnEndScheduled = false;
        this.#sentThisTurn.clear();
        for (const p of [...this.#outbox.keys()]) this.#flush(p);
      });
    }
    return immediate ? Promise.resolve() : box.done;
  }

  #open(peer: string, deadline: number): Outbox {
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    done.catch(() => {}); // senders answered at once do not wait on it; failures are reported by onFailed
    const box: Outbox = { bodies: [], deadline, done, resolve, reject };
    this.#outbox.set(peer, box);
    return box;
  }

  #flush(peer: string): void {
    const box = this.#outbox.get(peer);
    if (!box) return;
    this.#outbox.delete(peer);
    const frames = sealBatch(box.bodies, this.deps.sign);
    this.deps.transport.sendFrames(peer, frames, box.deadline).then(
      () => {
        this.deps.onSent(frames.length);
        box.resolve();
      },
      (e: Error) => {
        this.deps.onFailed(peer, frames.length, e);
        box.reject(e);
      },
    );
  }
}
