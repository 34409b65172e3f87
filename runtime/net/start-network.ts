/**
 * Starts the network as the node service uses it: built from the run config and the identity key, with the
 * node's inboxes and their payload schemas registered.
 */
import { promises as fs } from 'node:fs';
import type { Clock } from '../clock.ts';
import type { RunConfig } from '../config.ts';
import { UsageError } from '../errors.ts';
import type { Identity } from '../node/identity.ts';
import type { PayloadSchemas } from './wire/envelope-schema.ts';
import type { InboxSpec, MessageRouter } from './message-router.ts';
import type { NetworkLog, NetworkService } from './network-service.ts';

/**
 * Loads the libp2p stack (about half of the node's start-up CPU). The node service calls this first thing, so
 * the modules load while the store opens and the actor worker boots; startNetwork then finds them ready.
 */
export function loadNetworkModule(): Promise<typeof import('./network-service.ts')> {
  return import('./network-service.ts');
}

async function readTls(tls: RunConfig['tls']): Promise<{ cert: string; key: string } | undefined> {
  if (!tls) return undefined;
  const read = (file: string, what: string) =>
    fs.readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot read the TLS ${what} ${file} (${e.code ?? e.message}); pass a readable PEM file`);
    });
  return { cert: await read(tls.certFile, 'certificate'), key: await read(tls.keyFile, 'key') };
}

/** The node's inboxes beyond `net`, and the payload schemas of the events they take. */
export interface NodeInboxes {
  readonly schemas: readonly PayloadSchemas[];
  inboxes(router: MessageRouter): InboxSpec[];
}

/** `clock` is the time the network runs on (the real clock when not given). */
export async function startNetwork(config: RunConfig, identity: Identity, node: NodeInboxes, log: NetworkLog, clock?: Clock): Promise<NetworkService> {
  const tls = await readTls(config.tls);
  const { createNetworkService, NETWORK_DEFAULTS } = await loadNetworkModule();
  const init = { ...NETWORK_DEFAULTS, listen: config.listen, bootstrap: config.bootstrap, ...(config.maxPeers === null ? {} : { maxPeers: config.maxPeers }), ...(tls ? { tls } : {}) };
  const net = await createNetworkService(init, { key: identity.key, peerId: identity.peerId, log, clock });
  for (const s of node.schemas) net.router.addSchemas(s);
  for (const inbox of node.inboxes(net.router)) net.router.register(inbox);
  try {
    await net.start();
  } catch (e) {
    await net.stop().catch(() => {});
    throw e;
  }
  return net;
}
