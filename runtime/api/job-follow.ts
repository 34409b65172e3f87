/**
 * Following a job from a client: its record now and on every change, until the caller has seen enough. The node
 * pushes the records on its event stream (GET /v1/jobs/:id/events, see job-events.ts); an older node without the
 * stream (it answers 404 `not-found` for the route) is polled on GET /v1/jobs/:id instead. A stream that breaks
 * before the end (or stays silent past its heartbeats) is opened again: it starts with the current record.
 */
import { RequestFailedError } from '../errors.ts';
import { type ApiClient, isOk, readText } from './client.ts';

export interface FollowOptions<R> {
  /** Whether `record` is the last one the caller wants. */
  readonly until: (record: R) => boolean;
  /** Called with each record, in order, before the next is read. */
  readonly onRecord: (record: R) => void | Promise<void>;
  /** Milliseconds between polls of an older node, and before a broken stream is opened again (default 100). */
  readonly pollMs?: number;
  /** A stream silent this long (no record, no heartbeat) is given up and opened again (default 45 s: 3 heartbeats). */
  readonly idleMs?: number;
  /** Stops following: the promise rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** One Server-Sent Event: its `event` field (default `message`) and its data lines joined. */
export interface ServerSentEvent {
  readonly event: string;
  readonly data: string;
}

type Outcome<R> = { readonly kind: 'done'; readonly record: R } | { readonly kind: 'dropped' } | { readonly kind: 'no-stream' };

/** Follows job `id` on the node until `opts.until` holds for a record; resolves with that record. */
export async function followJob<R>(api: ApiClient, id: string, opts: FollowOptions<R>): Promise<R> {
  const route = `/v1/jobs/${encodeURIComponent(id)}`;
  const pollMs = opts.pollMs ?? 100;
  for (;;) {
    const o = await streamOnce<R>(api, route, opts);
    if (o.kind === 'done') return o.record;
    if (o.kind === 'no-stream') return poll(api, route, opts, pollMs);
    await sleep(pollMs, opts.signal);
  }
}

/** Reads one event stream to the record the caller wants, or to its end. */
async function streamOnce<R>(api: ApiClient, route: string, opts: FollowOptions<R>): Promise<Outcome<R>> {
  const ac = new AbortController();
  const stop = () => ac.abort();
  opts.signal?.throwIfAborted();
  opts.signal?.addEventListener('abort', stop);
  let idle: NodeJS.Timeout | undefined;
  const awake = () => {
    clearTimeout(idle);
    idle = setTimeout(stop, opts.idleMs ?? 45_000);
  };
  try {
    awake();
    const res = await api.open('GET', `${route}/events`, { signal: ac.signal, accept: 'text/event-stream' });
    if (!isOk(res)) {
      const status = res.statusCode ?? 0;
      let body: { error?: string; code?: string } = {};
      try {
        body = JSON.parse(await readText(res)) as typeof body;
      } catch {
        // not JSON: the status says it
      }
      if (status === 404 && body.code === 'not-found') return { kind: 'no-stream' };
      throw new RequestFailedError(body.error ?? `HTTP ${status}`, status);
    }
    for await (const ev of serverSentEvents(res, awake)) {
      if (ev.event === 'job') {
        const record = JSON.parse(ev.data) as R;
        await opts.onRecord(record);
        if (opts.until(record)) return { kind: 'done', record };
      } else if (ev.event === 'error') {
        const e = JSON.parse(ev.data) as { error?: string; code?: string };
        throw new RequestFailedError(e.error ?? 'the node ended the event stream with an error', e.code === 'UnknownDealError' ? 404 : 500);
      }
    }
    return { kind: 'dropped' };
  } catch (e) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (ac.signal.aborted) return { kind: 'dropped' }; // silent too long: open it again
    // the node's answers stand; a connection that broke mid-stream is opened again (if the node is gone, that says so)
    if ((e as Error).name === 'RequestFailedError' || (e as Error).name === 'NodeUnreachableError') throw e;
    return { kind: 'dropped' };
  } finally {
    clearTimeout(idle);
    opts.signal?.removeEventListener('abort', stop);
    ac.abort(); // closes the connection when we stopped reading before the node ended the stream
  }
}

/** The older node's way: GET the record every `pollMs` until the caller has seen enough. */
async function poll<R>(api: ApiClient, route: string, opts: FollowOptions<R>, pollMs: number): Promise<R> {
  for (;;) {
    opts.signal?.throwIfAborted();
    const record = (await api.request('GET', route)) as R;
    await opts.onRecord(record);
    if (opts.until(record)) return record;
    await sleep(pollMs, opts.signal);
  }
}

/** The events of a `text/event-stream` body, as they arrive; `onChunk` is called for every chunk read (comments too). */
export async function* serverSentEvents(body: AsyncIterable<Uint8Array | string>, onChunk: () => void = () => {}): AsyncGenerator<ServerSentEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    onChunk();
    buffer += (typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true })).replace(/\r\n?/g, '\n');
    for (let at = buffer.indexOf('\n\n'); at >= 0; at = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      const ev = parseEvent(block);
      if (ev) yield ev;
    }
  }
}

/** One event block; undefined for a block of comments only (a heartbeat). */
function parseEvent(block: string): ServerSentEvent | undefined {
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return data.length === 0 ? undefined : { event, data: data.join('\n') };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', aborted);
      resolve();
    }
    function aborted() {
      clearTimeout(t);
      reject(signal!.reason);
    }
    signal?.addEventListener('abort', aborted, { once: true });
  });
}
