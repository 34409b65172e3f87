// Child for inspector.test.ts: starts a relay and a bridge, stops both, and must then exit on its own (nothing
// left holding the event loop). Modes: `connected` (stop after records went through), `immediate` (stop before
// the bridge's socket opened), `unreachable` (the bridge points at a port nobody listens on).
import { closedPort } from '../../fixtures/ports.ts';
import type { InspectionRecord } from '../../../actors/actor.protocol.ts';
import { createInspectorBridge } from '../../../runtime/inspector/inspector.ts';
import { startInspectorRelay } from '../../../runtime/inspector/inspector-relay.ts';
import WebSocket from 'ws';


const mode = process.argv[2];
const relay = await startInspectorRelay({ host: '127.0.0.1', port: 0 });
const url = mode === 'unreachable' ? `ws://127.0.0.1:${await closedPort()}` : relay.url;
const bridge = await createInspectorBridge(url, { warn: () => {} });

if (mode === 'connected') {
  const watcher = new WebSocket(relay.watchUrl);
  await new Promise((resolve, reject) => watcher.once('open', resolve).once('error', reject));
  const got = new Promise((resolve) => watcher.once('message', resolve));
  const record: InspectionRecord = { type: '@xstate.event', sessionId: 'x:0', event: { type: 'ping' } };
  bridge.forward([record]);
  await got;
  watcher.close();
} else if (mode === 'unreachable') {
  // let the first connection attempt fail
  await new Promise((resolve) => setTimeout(resolve, 200));
}
bridge.stop();
relay.stop();
process.stdout.write(`stopped ${mode}\n`);
