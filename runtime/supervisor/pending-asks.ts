/**
 * The asks waiting for an actor's reply: each gets a reply address (`actor#n`) that travels in its event, and
 * settles when the actor's `reply.send` intent for that address comes back, when it times out, or when the actor
 * ends (all reject at once).
 */
import type { ReplyBody } from '../../machines/node.messages.ts';
import { AskTimeoutError } from './supervision.ts';

interface Pending {
  resolve(r: ReplyBody): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

export class PendingAsks {
  readonly #pending = new Map<string, Pending>();
  #seq = 0;

  constructor(readonly actorId: string) {}

  /**
   * Opens an ask: `send(replyTo)` sends the event carrying the reply address (a throw rejects the ask at once); the
   * promise settles with the reply, or rejects with AskTimeoutError after `timeoutMs`.
   */
  open(type: string, timeoutMs: number, send: (replyTo: string) => void): Promise<ReplyBody> {
    this.#seq += 1;
    const replyTo = `${this.actorId}#${this.#seq}`;
    return new Promise<ReplyBody>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(replyTo);
        reject(new AskTimeoutError(this.actorId, type, timeoutMs));
      }, timeoutMs);
      this.#pending.set(replyTo, { resolve, reject, timer });
      try {
        send(replyTo);
      } catch (e) {
        this.settle(replyTo, null, e as Error);
      }
    });
  }

  /** Someone still waits on this address. */
  has(replyTo: string): boolean {
    return this.#pending.has(replyTo);
  }

  /** Settles one ask with its reply, or rejects it with `err`. */
  settle(replyTo: string, body: ReplyBody | null, err: Error | null): void {
    const p = this.#pending.get(replyTo);
    if (!p) return;
    this.#pending.delete(replyTo);
    clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve(body as ReplyBody);
  }

  /** Rejects every open ask with `err`. */
  rejectAll(err: Error): void {
    for (const replyTo of [...this.#pending.keys()]) this.settle(replyTo, null, err);
  }
}
