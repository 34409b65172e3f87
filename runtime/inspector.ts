/**
 * The bridge to the Stately inspector: inspection records from actors in every worker are replayed into
 * @statelyai/inspect's websocket inspector, which sends them to a relay (ours, on loopback, unless a URL is given).
 */
import { createWebSocketInspector } from '@statelyai/inspect';
import type { InspectionRecord } from '../actors/actor.protocol.ts';
import { DEFAULT_INSPECT } from './config.ts';
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

/**
 * Connects to the relay at `url`. For the default URL, starts a relay on 127.0.0.1 first (or joins one that
 * already listens there).
 */
export async function createInspectorBridge(url: string, log: InspectorLog): Promise<InspectorBridge> {
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
  const inspector = createWebSocketInspector({ url: target, serializationDepthLimit: 20 });
  const forward = (records: readonly InspectionRecord[]) => {
    for (const r of records) {
      switch (r.type) {
        case '@xstate.actor':
          inspector.actor(r.sessionId, r.snapshot as never, { ...(r.definition ? { definition: r.definition } : {}), ...(r.parentId ? { parentId: r.parentId } : {}), ...(r.rootId ? { rootId: r.rootId } : {}) });
          break;
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
