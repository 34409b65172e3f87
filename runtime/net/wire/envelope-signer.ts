/**
 * Ed25519 signing with the node's key and verification against the key inside a sender's peer id.
 * Node's crypto (OpenSSL) with key objects made once: several times faster than making them per message.
 * A verified batch root is remembered per peer, so the other envelopes of that batch cost only hashing.
 */
import { type KeyObject, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import type { Ed25519PrivateKey } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { didKeyOf } from '../../node/identity.ts';
import { type SignedBody, batchSigningBytes, signingBytes } from './envelope-codec.ts';
import { leafHash, rootOf } from './merkle-batch.ts';

const b64 = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');

export interface EnvelopeSigner {
  readonly peer: string;
  readonly did: string;
  /** Signs bytes that already carry their domain prefix (envelope or batch). */
  sign(bytes: Uint8Array): Uint8Array;
}

export function createEnvelopeSigner(key: Ed25519PrivateKey, peer: string): EnvelopeSigner {
  const pub = key.publicKey.raw;
  const keyObject = createPrivateKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', d: b64(key.raw.subarray(0, 32)), x: b64(pub) } });
  return {
    peer,
    did: didKeyOf(pub),
    sign: (bytes) => new Uint8Array(sign(null, bytes, keyObject)),
  };
}

interface PeerKey {
  readonly key: KeyObject;
  readonly did: string;
  /** Batch roots (hex) whose signature verified. */
  readonly roots: Set<string>;
}

export interface EnvelopeVerifier {
  /** The did:key of a peer id, or null when the peer id does not hold an ed25519 key. */
  didOf(peer: string): string | null;
  /** True when the frame's signature (alone, or over its batch root) is `peer`'s. */
  verify(peer: string, signed: SignedBody): boolean;
}

const ROOTS_PER_PEER = 64;

/** A verifier that keeps the key objects of up to `cacheSize` peers. */
export function createEnvelopeVerifier(cacheSize = 4096): EnvelopeVerifier {
  const cache = new Map<string, PeerKey | null>();
  const keyOf = (peer: string): PeerKey | null => {
    let k = cache.get(peer);
    if (k !== undefined) return k;
    try {
      const pid = peerIdFromString(peer);
      const raw = pid.type === 'Ed25519' ? pid.publicKey.raw : null;
      k = raw ? { key: createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: b64(raw) } }), did: didKeyOf(raw), roots: new Set() } : null;
    } catch {
      k = null;
    }
    if (cache.size >= cacheSize) cache.delete(cache.keys().next().value!);
    cache.set(peer, k);
    return k;
  };
  return {
    didOf: (peer) => keyOf(peer)?.did ?? null,
    verify(peer, signed) {
      const k = keyOf(peer);
      if (!k || signed.sig.length !== 64) return false;
      if (!signed.batch) return verify(null, signingBytes(signed.body), k.key, signed.sig);
      const root = rootOf(leafHash(signed.body), signed.batch.index, signed.batch.count, signed.batch.path);
      if (!root) return false;
      const id = `${Buffer.from(root).toString('hex')}${Buffer.from(signed.sig).toString('hex')}`;
      if (k.roots.has(id)) return true;
      if (!verify(null, batchSigningBytes(root), k.key, signed.sig)) return false;
      if (k.roots.size >= ROOTS_PER_PEER) k.roots.delete(k.roots.values().next().value!);
      k.roots.add(id);
      return true;
    },
  };
}
