/**
 * `GET /v1/jobs/:id/events`: a job's record pushed to the client as Server-Sent Events, instead of polled. The
 * record goes out at once (`event: job`, `data: <the record as GET /v1/jobs/:id answers it>`) and again whenever
 * it changed; the stream ends after the terminal record (a job completed, failed or cancelled; an ensemble that
 * ended). A comment line every `heartbeatMs` keeps idle connections alive and lets the client notice a dead one.
 *
 * Changes come from the deal registry (`watchJob`), which tells when a record may have changed; the stream reads
 * the record then and sends it if it differs from the last one sent. Reads are coalesced (one at a time, one more
 * if something changed meanwhile) and nothing is queued behind a slow client: while its socket is full, the
 * stream only notes that there is news and sends the record current when it drains.
 */
import type http from 'node:http';
import { JOB_TERMINAL } from '../../machines/deal.constants.ts';

/** What the streams read of the node. */
export interface JobSource {
  /** A job's record as GET /v1/jobs/:id answers it; rejects (UnknownDealError) for an unknown job. */
  job(id: string): Promise<unknown>;
  /** Calls `onChange` whenever the job's record may have changed; returns the function that stops the calls. */
  watchJob(id: string, onChange: () => void): () => void;
}

export interface JobEventsInit {
  /** Streams open at once, over all jobs; one more is refused with 429. */
  readonly maxStreams: number;
  /** Milliseconds between heartbeat comments. */
  readonly heartbeatMs: number;
}

export const JOB_EVENTS_DEFAULTS: JobEventsInit = Object.freeze({ maxStreams: 64, heartbeatMs: 15_000 });

/** Too many event streams are open on this node. */
export class TooManyStreamsError extends Error {
  override name = 'TooManyStreamsError';
}

export interface JobEventsLog {
  debug(obj: object, msg?: string): void;
}

const ENSEMBLE_ENDED: readonly string[] = ['completed', 'failed', 'cancelled'];

/** Whether a record is the last one its stream sends: a job in a terminal state, an ensemble that ended. */
export function recordEnded(record: unknown): boolean {
  const r = record as { kind?: string; state?: string; endedAt?: number | null };
  if (r.kind === 'ensemble') return (r.endedAt ?? null) !== null || ENSEMBLE_ENDED.includes(r.state ?? '');
  return (JOB_TERMINAL as readonly string[]).includes(r.state ?? '');
}

export class JobEventStreams {
  /** The open streams. */
  readonly #open = new Set<JobStream>();

  constructor(
    private readonly init: JobEventsInit,
    private readonly source: JobSource,
    private readonly log: JobEventsLog,
  ) {}

  /** Streams open now. */
  get open(): number {
    return this.#open.size;
  }

  /**
   * Serves one stream. Rejects before anything is written when the limit is reached (TooManyStreamsError) or the
   * job is unknown; otherwise resolves once the response has started (it then runs until it ends or the client goes).
   */
  async serve(id: string, res: http.ServerResponse): Promise<void> {
    if (this.#open.size >= this.init.maxStreams) {
      throw new TooManyStreamsError(`${this.init.maxStreams} event streams are open on this node, the most it serves; end one (or poll GET /v1/jobs/${id}) and try again`);
    }
    // the slot is taken at once, so a burst of requests cannot get past the limit while the first ones read
    const stream = new JobStream(id, res, this.source, () => this.#open.delete(stream));
    this.#open.add(stream);
    await stream.start(this.init.heartbeatMs);
    this.log.debug({ job: id, open: this.#open.size }, 'job event stream opened');
  }

  /** Ends every open stream (the API is stopping). */
  closeAll(): void {
    for (const stream of [...this.#open]) stream.end();
  }
}

/** One client's stream of one job's records. */
class JobStream {
  #started = false;
  #closed = false;
  /** A read of the record is under way. */
  #reading = false;
  /** The record may have changed since the last read began. */
  #dirty = false;
  /** The last record sent, as sent. */
  #last = '';
  #heartbeat: NodeJS.Timeout | undefined;
  #unwatch: () => void = () => {};

  constructor(
    readonly id: string,
    private readonly res: http.ServerResponse,
    private readonly source: JobSource,
    private readonly onEnd: () => void,
  ) {}

  /** Watches the job, reads its record and starts the response with it; rejects (having ended) when the read fails. */
  async start(heartbeatMs: number): Promise<void> {
    const { res } = this;
    // the watch starts before the first read, so a change between the two is not lost
    this.#unwatch = this.source.watchJob(this.id, this.refresh);
    res.on('close', this.end);
    let first: unknown;
    try {
      first = await this.source.job(this.id);
    } catch (e) {
      this.end();
      throw e;
    }
    if (this.#closed) return; // the client went while we read
    res.on('drain', this.refresh);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
    this.#started = true;
    this.#send(first);
    if (this.#closed) return;
    if (this.#dirty) this.refresh();
    this.#heartbeat = setInterval(() => {
      if (!res.writableNeedDrain) res.write(': heartbeat\n\n');
    }, heartbeatMs);
    this.#heartbeat.unref();
  }

  /** The record may have changed: read it and send it if it did; one read at a time, one more if a change came meanwhile. */
  readonly refresh = (): void => {
    this.#dirty = true;
    // before the start the first read covers it; with a full socket 'drain' calls again
    if (!this.#started || this.#reading || this.#closed || this.res.writableNeedDrain) return;
    this.#reading = true;
    void this.#readWhileDirty().finally(() => (this.#reading = false));
  };

  async #readWhileDirty(): Promise<void> {
    try {
      while (this.#dirty && !this.#closed && !this.res.writableNeedDrain) {
        this.#dirty = false;
        this.#send(await this.source.job(this.id));
      }
    } catch (e) {
      // the record went away (its retention ended) or the node is stopping: say so and end
      if (!this.#closed) this.res.write(`event: error\ndata: ${JSON.stringify({ error: (e as Error).message, code: (e as Error).name })}\n\n`);
      this.end();
    }
  }

  #send(record: unknown): void {
    if (this.#closed) return; // the client went while the record was read
    const text = JSON.stringify(record);
    if (text !== this.#last) {
      this.#last = text;
      this.res.write(`event: job\ndata: ${text}\n\n`);
    }
    if (recordEnded(record)) this.end();
  }

  /** Ends the stream (after the terminal record, when the client went, or when the API stops); leaves nothing behind. */
  readonly end = (): void => {
    if (this.#closed) return;
    this.#closed = true;
    this.onEnd();
    this.#unwatch();
    clearInterval(this.#heartbeat);
    this.res.off('close', this.end);
    this.res.off('drain', this.refresh);
    if (this.#started && !this.res.writableEnded) this.res.end();
  };
}
