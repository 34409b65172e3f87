// The raw baseline for event delivery: a minimal worker that exposes, through comlink, one function taking an
// array of events and feeding them to a raw XState actor of the Node machine. No supervisor, no hosted actor,
// no intents collected or returned.
import { parentPort } from 'node:worker_threads';
import { expose } from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { createActor } from 'xstate';
import { nodeMachine } from '../../machines/node.machine.js';

let actor;

expose(
  {
    init(input, events) {
      actor?.stop();
      actor = createActor(nodeMachine, { input });
      actor.start();
      for (const e of events) actor.send(e);
      const snap = actor.getSnapshot();
      return { status: snap.status, value: snap.value };
    },
    deliver(events) {
      for (let i = 0; i < events.length; i += 1) actor.send(events[i]);
      return events.length;
    },
    stop() {
      actor?.stop();
      actor = undefined;
    },
  },
  nodeEndpoint(parentPort),
);
