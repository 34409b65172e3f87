/**
 * The node's identity: an ed25519 key created once and stored with mode 0600, and the NodeID derived from it
 * (libp2p peer id, did:key, a UUID made at first start, and the CID of the signed public descriptor).
 */
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as dagCbor from '@ipld/dag-cbor';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { Ed25519PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { CID } from 'multiformats/cid';
import { base58btc } from 'multiformats/bases/base58';
import { sha256 } from 'multiformats/hashes/sha2';
import type { Capability } from '../../machines/capability.ts';
import { KeyFileError } from '../errors.ts';
import { readJson, writeFileDurable, writeJson } from '../files.ts';

export const KEY_FILE = 'identity.key';
export const NODE_FILE = 'node.json';

/** NodeID as the seed proposes it. */
export interface NodeId {
  readonly uuid: string;
  readonly cid: string;
  readonly peerId: string;
  readonly did: string;
}

export interface Identity {
  readonly key: Ed25519PrivateKey;
  readonly uuid: string;
  readonly peerId: string;
  readonly did: string;
}

/** did:key of an ed25519 public key: multibase base58btc of multicodec 0xed01 + the 32 raw bytes. */
export function didKeyOf(publicKeyRaw: Uint8Array): string {
  const bytes = new Uint8Array(2 + publicKeyRaw.length);
  bytes.set([0xed, 0x01]);
  bytes.set(publicKeyRaw, 2);
  return `did:key:${base58btc.encode(bytes)}`;
}

async function loadKey(file: string): Promise<Ed25519PrivateKey | undefined> {
  let buf: Buffer;
  try {
    buf = await fs.readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KeyFileError(`cannot read key file ${file}: ${(e as Error).message}; check its permissions`);
  }
  try {
    const key = privateKeyFromProtobuf(buf);
    if (key.type !== 'Ed25519') throw new Error(`key type ${key.type}`);
    return key;
  } catch (e) {
    throw new KeyFileError(`key file ${file} is corrupt (${(e as Error).message}); restore it from a backup, or move it away to create a new identity`);
  }
}

/** Loads the identity from the data dir, creating the key and UUID on first start. */
export async function loadOrCreateIdentity(dataDir: string): Promise<{ identity: Identity; created: boolean }> {
  const keyFile = path.join(dataDir, KEY_FILE);
  let key = await loadKey(keyFile);
  const created = key === undefined;
  if (!key) {
    key = await generateKeyPair('Ed25519');
    await writeFileDurable(keyFile, privateKeyToProtobuf(key), 0o600);
  }
  const nodeFile = path.join(dataDir, NODE_FILE);
  const stored = (await readJson(nodeFile).catch(() => undefined)) as { uuid?: unknown } | undefined;
  let uuid = typeof stored?.uuid === 'string' ? stored.uuid : undefined;
  if (!uuid) {
    uuid = randomUUID();
    await writeJson(nodeFile, { uuid });
  }
  const peerId = peerIdFromPrivateKey(key).toString();
  return { identity: { key, uuid, peerId, did: didKeyOf(key.publicKey.raw) }, created };
}

/** The signed public descriptor (identity + registered capability) and its CID. */
export async function describe(identity: Identity, capability: Capability | null): Promise<{ nodeId: NodeId; descriptor: Uint8Array }> {
  const body = { uuid: identity.uuid, peerId: identity.peerId, did: identity.did, capability };
  const unsigned = dagCbor.encode(body);
  const sig = await identity.key.sign(unsigned);
  const descriptor = dagCbor.encode({ ...body, sig });
  const cid = CID.createV1(dagCbor.code, await sha256.digest(descriptor));
  return { nodeId: { uuid: identity.uuid, cid: cid.toString(), peerId: identity.peerId, did: identity.did }, descriptor };
}
