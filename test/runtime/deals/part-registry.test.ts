// The ensemble parts on a provider (runtime/deals/part-registry.ts): who may open a tunnel to which part's port
// (the tunnel acceptor's authorize), the addresses a held part starts with, and, over two real libp2p hosts on
// loopback, a tunnel a dependent's provider opens to the part it depends on.
import '../../../runtime/polyfills.ts';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { dealKey } from '../../../machines/deal.ids.ts';
import type { JobSpec, PartRole } from '../../../machines/job.ts';
import { MAX_KNOWN_PARTS, PartRegistry, openPartAddrs, partsOf, servePartTunnels } from '../../../runtime/deals/part-registry.ts';
import type { TunnelListener } from '../../../runtime/net/tunnel/tunnel-listener.ts';
import { PROCESS_JOB } from '../../fixtures/deal-fixtures.ts';
import { client, collect, hostPair, quiet, targetServer } from '../../fixtures/tunnel-fixtures.ts';
import { waitFor, within } from '../../fixtures/waiting.ts';

const REQUESTER = '12D3KooWRequesterRequesterRequesterRequester1';
const P_WEB = '12D3KooWProviderOfWebProviderOfWebProviderOf1';
const P_KV = '12D3KooWProviderOfKvProviderOfKvProviderOfKv1';
const STRANGER = '12D3KooWStrangerStrangerStrangerStrangerStra1';

const role = (name: string, ports: string[], ensemble = 'ens-1'): PartRole => ({
  ensemble, name, type: 'service', ports, restart: 'always', dependsOn: [], maxRestarts: { count: 5, withinMs: 60_000 },
});
const jobOf = (r: PartRole): JobSpec => ({ ...PROCESS_JOB, part: r });
const MEMBERS = [{ part: 'kv', provider: P_KV }, { part: 'web', provider: P_WEB }];
const KV = dealKey('ens-1-kv', 1, REQUESTER);

/** A registry where part kv of ens-1 runs on ports http 41000 and admin 41001, its members noted at its allocate. */
function withKv(): PartRegistry {
  const parts = new PartRegistry();
  const kv = role('kv', ['http', 'admin']);
  parts.noteMembers(KV, kv, REQUESTER, MEMBERS);
  parts.started(KV, jobOf(kv), { DMS_PORT_HTTP: '41000', DMS_PORT_ADMIN: '41001', OTHER: 'x' });
  return parts;
}

/** A listener that only counts its closes. */
function fakeListener(port: number, target = { deal: 'ens', part: 'kv', port: 'http' }): TunnelListener & { closed: number; peers: string[] } {
  const l = { address: `127.0.0.1:${port}`, port, target, counters: {} as TunnelListener['counters'], closed: 0, peers: [] as string[], close: async () => void (l.closed += 1), retarget: (p: unknown) => void l.peers.push(String(p)) };
  return l;
}

const Authorize = suite('part registry: who may tunnel to a part here');

Authorize('a member of the ensemble, and its requester, get the ledger port of the named port', () => {
  const parts = withKv();
  assert.equal(parts.authorize(P_WEB, { deal: 'ens-1', part: 'kv', port: 'http' }), { port: 41_000 });
  assert.equal(parts.authorize(P_WEB, { deal: 'ens-1', part: 'kv', port: 'admin' }), { port: 41_001 });
  assert.equal(parts.authorize(REQUESTER, { deal: 'ens-1', part: 'kv', port: 'http' }), { port: 41_000 });
});

Authorize('a peer that runs no part of the ensemble is not allowed', () => {
  const r = withKv().authorize(STRANGER, { deal: 'ens-1', part: 'kv', port: 'http' });
  assert.is('refused' in r && r.refused, 'not-allowed');
});

Authorize('an unknown ensemble, part or port is refused as such', () => {
  const parts = withKv();
  const refusal = (h: { deal: string; part: string; port: string }) => {
    const r = parts.authorize(P_WEB, h);
    return 'refused' in r ? r.refused : `granted ${r.port}`;
  };
  assert.is(refusal({ deal: 'ens-2', part: 'kv', port: 'http' }), 'unknown-deal');
  assert.is(refusal({ deal: 'ens-1', part: 'web', port: 'http' }), 'unknown-part');
  assert.is(refusal({ deal: 'ens-1', part: 'kv', port: 'OTHER' }), 'unknown-port');
  assert.is(refusal({ deal: 'ens-1', part: 'kv', port: 'grpc' }), 'unknown-port');
});

Authorize('a part only noted at its allocate (not started) takes no tunnels', () => {
  const parts = new PartRegistry();
  parts.noteMembers(KV, role('kv', ['http']), REQUESTER, MEMBERS);
  const r = parts.authorize(P_WEB, { deal: 'ens-1', part: 'kv', port: 'http' });
  assert.is('refused' in r && r.refused, 'unknown-deal');
});

Authorize('members sent before the start stay through a restart; new members (a part.start after a move) replace them', () => {
  const parts = withKv();
  parts.started(KV, jobOf(role('kv', ['http', 'admin'])), { DMS_PORT_HTTP: '41000', DMS_PORT_ADMIN: '41001' });
  assert.equal(parts.authorize(P_WEB, { deal: 'ens-1', part: 'kv', port: 'http' }), { port: 41_000 });
  parts.noteMembers(KV, role('kv', ['http', 'admin']), REQUESTER, [{ part: 'web', provider: STRANGER }]);
  assert.equal(parts.authorize(STRANGER, { deal: 'ens-1', part: 'kv', port: 'http' }), { port: 41_000 });
  const r = parts.authorize(P_WEB, { deal: 'ens-1', part: 'kv', port: 'http' });
  assert.is('refused' in r && r.refused, 'not-allowed');
});

Authorize('the same ensemble id from another requester does not open this one to its members', () => {
  const parts = withKv();
  const other = dealKey('ens-1-web', 1, STRANGER);
  const web = role('web', ['http']);
  parts.noteMembers(other, web, STRANGER, [{ part: 'web', provider: '12D3KooWEvilEvilEvilEvilEvilEvilEvilEvilEvilE1' }]);
  parts.started(other, jobOf(web), { DMS_PORT_HTTP: '42000' });
  const r = parts.authorize('12D3KooWEvilEvilEvilEvilEvilEvilEvilEvilEvilE1', { deal: 'ens-1', part: 'kv', port: 'http' });
  assert.is('refused' in r && r.refused, 'not-allowed');
});

Authorize('an ended part is forgotten: its listeners close, it takes no more tunnels', async () => {
  const parts = withKv();
  const l = fakeListener(5000);
  await parts.keepListeners(KV, [l]);
  await parts.end(KV);
  assert.is(l.closed, 1);
  const r = parts.authorize(P_WEB, { deal: 'ens-1', part: 'kv', port: 'http' });
  assert.is('refused' in r && r.refused, 'unknown-deal');
  assert.is(parts.size, 0);
});

Authorize('listeners kept again replace the old ones, which close; listeners for a part not here close at once', async () => {
  const parts = withKv();
  const [a, b, c] = [fakeListener(5001), fakeListener(5002), fakeListener(5003)];
  await parts.keepListeners(KV, [a, b]);
  await parts.keepListeners(KV, [b, c]);
  assert.equal([a.closed, b.closed, c.closed], [1, 0, 0]);
  const stray = fakeListener(5004);
  await parts.keepListeners('nothing.1@here', [stray]);
  assert.is(stray.closed, 1);
});

Authorize('bounded: past MAX_KNOWN_PARTS the oldest parts not started are forgotten, live ones kept', () => {
  const parts = withKv();
  for (let i = 0; i < MAX_KNOWN_PARTS + 10; i++) parts.noteMembers(dealKey(`d${i}`, 1, REQUESTER), role('x', []), REQUESTER, []);
  assert.is(parts.size, MAX_KNOWN_PARTS);
  assert.ok(parts.get(KV)?.live, 'the live part was dropped');
  assert.is(parts.get(dealKey('d0', 1, REQUESTER)), undefined);
  assert.ok(parts.get(dealKey(`d${MAX_KNOWN_PARTS + 9}`, 1, REQUESTER)));
});

Authorize('one registry per owner (the deal service)', () => {
  const a = {};
  assert.is(partsOf(a), partsOf(a));
  assert.is.not(partsOf(a), partsOf({}));
});

Authorize.run();

// ---------------------------------------------------------------------------------------------------------------

const Addrs = suite('part registry: the addresses a held part starts with');

Addrs('a dependency on this node is reached on its own port, no tunnel; one elsewhere without a network is left out, loudly', async () => {
  const parts = withKv();
  const errors: string[] = [];
  const log = { ...quiet, error: (_o: object, msg?: string) => void errors.push(msg ?? '') };
  const r = await openPartAddrs({ parts, self: P_KV, host: undefined, log }, 'ens-1', REQUESTER, [
    { part: 'kv', port: 'http', provider: P_KV },
    { part: 'db', port: 'pg', provider: P_WEB },
  ]);
  assert.equal(r.addrsEnv, { DMS_ADDR_KV_HTTP: '127.0.0.1:41000' });
  assert.equal(r.listeners, []);
  assert.is(errors.length, 1);
  assert.match(errors[0]!, 'the part starts without DMS_ADDR_DB_PG');
});

Addrs.run();

// ---------------------------------------------------------------------------------------------------------------

const Tunnel = suite('part registry: a tunnel between two providers, as the registry allows');

Tunnel('the dependent provider opens a listener; bytes reach the part on the other provider; a non-member is refused', async () => {
  const { a, b } = await hostPair();
  const server = await targetServer();
  const onA = new PartRegistry();
  const onB = new PartRegistry();
  const kv = role('kv', ['http']);
  const members = [{ part: 'kv', provider: b.peerId.toString() }, { part: 'web', provider: a.peerId.toString() }];
  onB.noteMembers(KV, kv, REQUESTER, members);
  onB.started(KV, jobOf(kv), { DMS_PORT_HTTP: String(server.port) });
  const acceptor = await servePartTunnels(b, onB, quiet);
  let listeners: TunnelListener[] = [];
  try {
    const log = { ...quiet, error: (_o: object, msg?: string) => assert.unreachable(msg) };
    const r = await openPartAddrs({ parts: onA, self: a.peerId.toString(), host: a, log }, 'ens-1', REQUESTER, [{ part: 'kv', port: 'http', provider: b.peerId.toString() }]);
    listeners = r.listeners;
    assert.is(r.listeners.length, 1);
    assert.is(r.addrsEnv['DMS_ADDR_KV_HTTP'], r.listeners[0]!.address);
    const c = await client(r.addrsEnv['DMS_ADDR_KV_HTTP']!);
    const got = collect(c);
    c.end('through the tunnel');
    assert.is((await within('the echo', got)).data.toString(), 'through the tunnel');

    // the requester moves web elsewhere: a is no member any more
    onB.noteMembers(KV, kv, REQUESTER, [{ part: 'kv', provider: b.peerId.toString() }]);
    const refused = await client(r.addrsEnv['DMS_ADDR_KV_HTTP']!);
    const end = await within('the refused connection to close', collect(refused));
    assert.is(end.data.length, 0);
    await waitFor('the refusal to be counted', () => acceptor.counters.view().refused['not-allowed'] === 1);
  } finally {
    await Promise.all(listeners.map((l) => l.close()));
    await acceptor.stop();
    await server.close();
    await Promise.all([a.stop(), b.stop()]);
  }
});

Tunnel('a dependency that moved: the listener keeps its address and carries new connections to the new provider', async () => {
  const { a, b } = await hostPair();
  const server = await targetServer();
  const onA = new PartRegistry();
  const onB = new PartRegistry();
  const kv = role('kv', ['http']);
  onB.noteMembers(KV, kv, REQUESTER, [{ part: 'kv', provider: b.peerId.toString() }, { part: 'web', provider: a.peerId.toString() }]);
  onB.started(KV, jobOf(kv), { DMS_PORT_HTTP: String(server.port) });
  const acceptor = await servePartTunnels(b, onB, quiet);
  let listeners: TunnelListener[] = [];
  try {
    const deps = { parts: onA, self: a.peerId.toString(), host: a, log: { ...quiet, error: () => {} } };
    const first = await openPartAddrs(deps, 'ens-1', REQUESTER, [{ part: 'kv', port: 'http', provider: b.peerId.toString() }]);
    listeners = first.listeners;
    const open = await client(first.addrsEnv['DMS_ADDR_KV_HTTP']!);
    const openEnd = collect(open);
    open.write('before the move');
    // the tunnel opens its stream to B asynchronously: the move comes after it reached B
    for (const until = Date.now() + 5000; acceptor.counters.view().opened < 1 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20));
    // kv moved to a node that is not there (a fresh key): same address, the old connection reset, new ones go there
    const { generateKeyPair } = await import('@libp2p/crypto/keys');
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id');
    const elsewhere = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString();
    const again = await openPartAddrs(deps, 'ens-1', REQUESTER, [{ part: 'kv', port: 'http', provider: elsewhere }], listeners);
    assert.is(again.addrsEnv['DMS_ADDR_KV_HTTP'], first.addrsEnv['DMS_ADDR_KV_HTTP'], 'the part keeps the address it runs with');
    assert.is(again.listeners[0], listeners[0], 'the same listener');
    await within('the connection to the old place to be reset', openEnd);
    // refused at once (no stream to the missing node): reset while connecting, or closed with no data
    const got = await client(again.addrsEnv['DMS_ADDR_KV_HTTP']!).then(
      async (next) => {
        const nextEnd = collect(next);
        next.end('after the move');
        return (await within('the connection to the missing node to close', nextEnd)).data.length;
      },
      (e: Error) => (/ECONNRESET/.test(e.message) ? 0 : Promise.reject(e)),
    );
    assert.is(got, 0, 'nothing reached the old provider');
    assert.is(acceptor.counters.view().opened, 1, 'only the first connection reached B');
  } finally {
    await Promise.all(listeners.map((l) => l.close()));
    await acceptor.stop();
    await server.close();
    await Promise.all([a.stop(), b.stop()]);
  }
});

Tunnel.run();
