// Where farther requesters listen (runtime/deals/reply-addrs.ts): a bounded table, handed to the peer store only
// when the node answers. The peer store here is a recording fake with the one method the table calls.
import type { PeerStore } from '@libp2p/interface';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

// libp2p's packages are ESM only and uvu runs suites through tsx's require hook: load them dynamically
const lib = (async () => ({
  ...(await import('@libp2p/crypto/keys')),
  ...(await import('@libp2p/peer-id')),
  ...(await import('../../../runtime/deals/reply-addrs.ts')),
}))();

const test = suite('reply addresses: kept bounded, written to the peer store only on an answer');

async function peer(): Promise<string> {
  const { peerIdFromPrivateKey, generateKeyPair } = await lib;
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString();
}

async function newTable() {
  return new (await lib).ReplyAddrs();
}

function recordingStore(): { store: PeerStore; merged: { peer: string; addrs: string[] }[] } {
  const merged: { peer: string; addrs: string[] }[] = [];
  const store = {
    merge: async (id: { toString(): string }, data: { multiaddrs: { toString(): string }[] }) => {
      merged.push({ peer: id.toString(), addrs: data.multiaddrs.map((m) => m.toString()) });
    },
  } as unknown as PeerStore;
  return { store, merged };
}

test('noting writes nothing; the first answer writes the requester\'s own addresses, once', async () => {
  const [a, other] = [await peer(), await peer()];
  const table = await newTable();
  const { store, merged } = recordingStore();
  table.note(a, [`/ip4/127.0.0.1/tcp/4001/ws/p2p/${a}`, `/ip4/127.0.0.1/tcp/4002/ws/p2p/${other}`]);
  assert.equal(merged, []);
  await table.use(a, store);
  assert.equal(merged, [{ peer: a, addrs: [`/ip4/127.0.0.1/tcp/4001/ws/p2p/${a}`] }]);
  await table.use(a, store);
  assert.is(merged.length, 1);
});

test('addresses that name another peer are not kept at all', async () => {
  const [a, other] = [await peer(), await peer()];
  const table = await newTable();
  const { store, merged } = recordingStore();
  table.note(a, [`/ip4/127.0.0.1/tcp/4002/ws/p2p/${other}`]);
  await table.use(a, store);
  assert.equal(merged, []);
});

test('only the newest MAX_REPLY_PEERS requesters are held', async () => {
  const { MAX_REPLY_PEERS } = await lib;
  const table = await newTable();
  const { store, merged } = recordingStore();
  const peers = await Promise.all(Array.from({ length: MAX_REPLY_PEERS + 1 }, peer));
  for (const p of peers) table.note(p, [`/ip4/127.0.0.1/tcp/4001/ws/p2p/${p}`]);
  await table.use(peers[0]!, store);
  assert.equal(merged, [], 'the oldest was let go');
  await table.use(peers[1]!, store);
  await table.use(peers.at(-1)!, store);
  assert.equal(merged.map((m) => m.peer), [peers[1], peers.at(-1)]);
});

test.run();
