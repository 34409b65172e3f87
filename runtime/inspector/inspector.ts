/**
 * The bridge to the Stately inspector: inspection records from actors in every worker are replayed into
 * @statelyai/inspect's inspector, which sends them over a websocket to a relay (ours, on loopback, unless a URL
 * is given).
 */
import { createInspector } from '@statelyai/inspect';
import WebSocket from 'ws';
import type { InspectionRecord } from '../../actors/actor.protocol.ts';
import { type Clock, type Timer, realClock } from '../clock.ts';
import { DEFAULT_INSPECT } from '../config.ts';
import { type InspectorRelay, startInspectorRelay } from './inspector-relay.ts';

export interface InspectorBridge {
  /** The relay the records go to. */
  readonly url: string;
  /** The page to open in a browser, when this process runs the relay. */
  readonly page: string | null;
  forward(records: readonly InspectionRecord[]): void;
  stop(): void;
}

export interface InspectorLog {
  warn(obj: object, msg?: string): void;
}

const RETRY_MS = 5000;
const MAX_PENDING = 1000;

/**
 * Sends inspection messages to the relay over a websocket: holds them until the socket opens and retries after a
 * failed connection, until stopped. (@statelyai/inspect's own WebSocketAdapter keeps retrying after stop(), so a
 * process whose relay was unreachable, or that stopped before the socket opened, never exits.)
 */
class WsRelayAdapter {
  #ws: WebSocket | null = null;
  #retry: Timer | null = null;
  #pending: string[] = [];
  #stopped = false;

  constructor(
    readonly url: string,
    readonly clock: Clock,
  ) {}

  start(): void {
    if (this.#stopped) return;
    const ws = new WebSocket(this.url);
    this.#ws = ws;
    ws.on('open', () => {
      for (const m of this.#pending.splice(0)) ws.send(m);
    });
    ws.on('error', () => {}); // always followed by 'close'
    ws.on('close', () => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      // kept alive: a replay waiting for Ctrl-C has nothing else holding the process between attempts
      if (!this.#stopped) this.#retry = this.clock.after(RETRY_MS, () => this.start(), { keepAlive: true });
    });
  }

  stop(): void {
    this.#stopped = true;
    this.#retry?.clear();
    this.#ws?.close();
  }

  send(event: unknown): void {
    const m = JSON.stringify(event);
    if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(m);
    else if (!this.#stopped && this.#pending.push(m) > MAX_PENDING) this.#pending.shift();
  }
}

export interface InspectorOptions {
  /** Times the reconnection after a failed connection (default: the real clock). */
  readonly clock?: Clock;
}

/**
 * Connects to the relay at `url`. For the default URL, starts a relay on 127.0.0.1 first (or joins one that
 * already listens there).
 */
export async function createInspectorBridge(url: string, log: InspectorLog, opts: InspectorOptions = {}): Promise<InspectorBridge> {
  let relay: InspectorRelay | null = null;
  let target = url;
  if (url === DEFAULT_INSPECT) {
    const port = Number(new URL(url).port);
    relay = await startInspectorRelay({ host: '127.0.0.1', port }).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EADDRINUSE') throw e;
      return null; // another process's relay: use it
    });
    target = `ws://127.0.0.1:${port}`;
    if (relay) log.warn({ page: relay.page }, `Stately inspector relay: open ${relay.page} in a browser to watch the actors`);
  }
  const inspector = createInspector(new WsRelayAdapter(target, opts.clock ?? realClock), { serializationDepthLimit: 20 });
  inspector.start();
  const forward = (records: readonly InspectionRecord[]) => {
    for (const r of records) {
      switch (r.type) {
        case '@xstate.actor': {
          // inspector.actor() ignores info.definition/parentId (@statelyai/inspect 0.7): it reads the definition
          // from actorRef.logic.config and the parent from actorRef._parent, so hand it an actor-like object
          const actorLike = { sessionId: r.sessionId, ...(r.definition ? { logic: { config: JSON.parse(r.definition) as unknown } } : {}), ...(r.parentId ? { _parent: { sessionId: r.parentId } } : {}) };
          inspector.actor(actorLike as never, r.snapshot as never);
          break;
        }
        case '@xstate.event':
          inspector.event(r.sessionId, r.event as { type: string }, r.sourceId ? { source: r.sourceId } : {});
          break;
        case '@xstate.snapshot':
          inspector.snapshot(r.sessionId, r.snapshot as never, { event: r.event as { type: string } });
          break;
      }
    }
  };
  return {
    url: target,
    page: relay?.page ?? null,
    forward,
    stop() {
      inspector.stop();
      relay?.stop();
    },
  };
}
