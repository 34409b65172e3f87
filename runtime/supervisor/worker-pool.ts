/**
 * Where supervised actors run: a dedicated worker thread per actor (the Node), or one shared worker that hosts many
 * small actors (the deal actors: a negotiation lives for milliseconds to minutes, and a worker costs ~80 ms and
 * ~10 MB to start, too much per deal). One comlink proxy per worker: a proxy per actor would add a message
 * listener per actor, and every reply would wake all of them.
 */
import { Worker } from 'node:worker_threads';
import { type Remote, releaseProxy, wrap } from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import type { ActorHostApi } from '../../actors/actor.protocol.ts';

export type Placement = 'dedicated' | 'shared';

/** A worker thread and its comlink proxy. */
export interface WorkerHost {
  readonly worker: Worker;
  readonly remote: Remote<ActorHostApi>;
  readonly shared: boolean;
}

export const DEFAULT_WORKER_URL = new URL('./actor.worker.js', import.meta.url);

function host(url: URL, shared: boolean): WorkerHost {
  const worker = new Worker(url);
  // every actor on a shared worker listens for its exit
  if (shared) worker.setMaxListeners(0);
  return { worker, remote: wrap<ActorHostApi>(nodeEndpoint(worker)), shared };
}

export class WorkerPool {
  #shared: WorkerHost | undefined;

  constructor(readonly url: URL = DEFAULT_WORKER_URL) {}

  /** A worker for one actor: a new dedicated one, or the shared one (started again if it died). */
  acquire(placement: Placement): WorkerHost {
    if (placement === 'dedicated') return host(this.url, false);
    if (!this.#shared) {
      const h = host(this.url, true);
      // registered before any actor's listener, so actors restarting on 'exit' get a fresh worker
      h.worker.once('exit', () => {
        if (this.#shared === h) this.#shared = undefined;
        h.remote[releaseProxy]();
      });
      this.#shared = h;
    }
    return this.#shared;
  }

  /** Lets go of a worker an actor used: a dedicated one ends, the shared one stays for the others. */
  async release(h: WorkerHost): Promise<void> {
    if (h.shared) return;
    h.remote[releaseProxy]();
    await h.worker.terminate();
  }

  /** Ends the shared worker (after every actor on it stopped). */
  async stop(): Promise<void> {
    const h = this.#shared;
    this.#shared = undefined;
    if (h) await h.worker.terminate();
  }
}

/** Longest a stop waits for the worker's answer to a call (a worker that died never answers). */
export const STOP_CALL_MS = 1000;

/**
 * The call's result, or undefined when it throws (a released proxy throws at once), rejects, or takes longer than
 * `ms` (a call to a worker that died never settles).
 */
export async function bounded<T>(call: () => Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([call(), new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms).unref()))]);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}
