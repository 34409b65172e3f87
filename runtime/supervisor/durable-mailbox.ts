/**
 * One actor's durable mailbox: every event gets the actor's next sequence number, events are appended to the event
 * log in batches, and a batch is handed to the actor only once it is durable, in order ("log first, then act").
 * The mailbox knows nothing of workers: its sink posts the batches. Closing it (the actor went down) drops the
 * batches still on their way; they are in the log, so the restart redelivers them from there.
 */
import type { EventLog, LoggedEvent } from '../../actors/event-log.ts';

/** A logged event whose payload is an actor event (with the reply address of an ask, if any). */
export type Entry = LoggedEvent & { readonly payload: { readonly type: string; readonly replyTo?: string } };

export interface MailboxSink {
  /** A durable batch, in order, with the bytes it takes in the log (0 when unknown). */
  post(batch: readonly Entry[], bytes: number): void;
  /** The log refused a batch: nothing after it can be delivered. */
  logFailed(err: Error): void;
  /** A scheduled flush ran (the actor may have become idle). */
  flushed(): void;
}

export interface MailboxOptions {
  readonly log: EventLog;
  /** Largest number of events per append and per post. */
  readonly batchSize: number;
  readonly now: () => number;
}

export class DurableMailbox {
  /** Last seq given to an event. */
  #seq = 0;
  /** Events not yet handed to the log. */
  #queue: Entry[] = [];
  /** Appends in order; each link posts its batch once it is durable. */
  #chain: Promise<void> = Promise.resolve();
  /** Batches handed to the log and not yet reported delivered. */
  #inFlight = 0;
  #open = false;
  #epoch = 0;
  #scheduled = false;

  constructor(
    readonly actorId: string,
    readonly opts: MailboxOptions,
    readonly sink: MailboxSink,
  ) {}

  /** Last seq given to an event. */
  get seq(): number {
    return this.#seq;
  }

  /** Numbering continues after `lastSeq` (the log's last, at start). */
  resume(lastSeq: number): void {
    this.#seq = lastSeq;
  }

  /** Events waiting for the log, or batches not yet delivered. */
  get busy(): boolean {
    return this.#inFlight > 0 || this.#queue.length > 0;
  }

  /** Queues an event; it is logged, then posted, in a batch on the next turn of the event loop. */
  push(payload: Entry['payload'], origin: string): void {
    this.#seq += 1;
    this.#queue.push({ seq: this.#seq, ts: this.opts.now(), type: payload.type, origin, payload });
    if (this.#queue.length >= this.opts.batchSize) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        this.flush();
        this.sink.flushed();
      });
    }
  }

  /** Starts posting (the actor runs): what queued while closed goes out now. */
  open(): void {
    this.#open = true;
    this.flush();
  }

  /**
   * Stops posting (the actor went down): batches on their way to the log still become durable but are not posted;
   * the restart finds them in the log.
   */
  close(): void {
    this.#open = false;
    this.#epoch += 1;
    this.#inFlight = 0;
  }

  /** Hands every queued event to the log, in batches; each batch is posted once durable. */
  flush(): void {
    if (!this.#open) return;
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.opts.batchSize);
      this.#inFlight += 1;
      const durable = this.opts.log.append(this.actorId, batch);
      const epoch = this.#epoch;
      this.#chain = this.#chain
        .then(() => durable)
        .then(
          (bytes) => void (epoch === this.#epoch && this.sink.post(batch, typeof bytes === 'number' ? bytes : 0)),
          (err: Error) => this.sink.logFailed(err),
        );
    }
  }

  /** Posts events that are already durable (a restart's tail), in batches. */
  redeliver(entries: readonly Entry[]): void {
    for (let i = 0; i < entries.length; i += this.opts.batchSize) {
      this.#inFlight += 1;
      this.sink.post(entries.slice(i, i + this.opts.batchSize), 0);
    }
  }

  /** The sink finished one posted batch. */
  delivered(): void {
    if (this.#inFlight > 0) this.#inFlight -= 1;
  }

  /** Resolves once every append handed to the log so far has settled. */
  settled(): Promise<void> {
    return this.#chain.catch(() => {});
  }
}
