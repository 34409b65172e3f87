/**
 * Worker-thread entry: hosts actors of the registered kinds and exposes them to the supervisor via comlink.
 * A small composition root: it binds the pure actors to nothing but the thread's message port.
 */
import '../polyfills.ts';
import { parentPort } from 'node:worker_threads';
import { expose } from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import type { ActorHostApi, InitOptions } from '../../actors/actor.protocol.ts';
import { HostedActor } from '../../actors/hosted-actor.ts';
import { actorKind as kindOf } from '../../actors/kinds.ts';

const actors = new Map<string, HostedActor>();

function actor(id: string): HostedActor {
  const a = actors.get(id);
  if (!a) throw Object.assign(new Error(`no actor ${id} in this worker`), { name: 'UnknownActorError' });
  return a;
}

const api: ActorHostApi = {
  async init(id: string, kind: string, opts: InitOptions) {
    actors.get(id)?.stop();
    const hosted = new HostedActor(id, kindOf(kind), opts);
    actors.set(id, hosted);
    const inspections = hosted.takeInspections();
    const facts = hosted.takeFacts();
    return { ...hosted.view(), ...(inspections.length ? { inspections } : {}), ...(facts.length ? { facts } : {}) };
  },
  deliver: (id, batch) => actor(id).deliver(batch),
  persisted: (id, seq) => actor(id).persisted(seq),
  view: (id) => actor(id).view(),
  stop(id) {
    actors.get(id)?.stop();
    actors.delete(id);
  },
  measure(kind, input, events, count) {
    const hosted = new HostedActor('measure', kindOf(kind), { input });
    const t0 = performance.now();
    for (let r = 0; r < count; r += 1) hosted.deliver(events);
    const ms = performance.now() - t0;
    hosted.stop();
    return { events: events.length * count, ms };
  },
  crash(code) {
    setImmediate(() => process.exit(code));
  },
};

if (!parentPort) throw new Error('actor.worker must run in a worker thread');
expose(api, nodeEndpoint(parentPort));
