/**
 * ed25519 did:key identities for capability tokens: signing with the node's libp2p key and verifying against the
 * key a did:key names, both through node:crypto with key objects made once (as runtime/net/wire/envelope-signer.ts).
 */
import { type KeyObject, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { base58btc } from 'multiformats/bases/base58';
import { didKeyOf } from '../node/identity.ts';

/** An ed25519 key as libp2p holds it (`Ed25519PrivateKey`): `raw` is the 32-byte seed + 32-byte public key. */
export interface SigningKey {
  readonly raw: Uint8Array;
  readonly publicKey: { readonly raw: Uint8Array };
}

/** An ed25519 did:key: `did:key:z6Mk` + base58btc (44 or so characters). Checked by shape only; `publicKeyOf` decodes. */
export const DID_KEY_PATTERN = /^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{40,50}$/;

const b64 = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');

/** The 32-byte ed25519 public key a did:key names, or null when it is not an ed25519 did:key. */
export function publicKeyOf(did: string): Uint8Array | null {
  if (!DID_KEY_PATTERN.test(did)) return null;
  try {
    const bytes = base58btc.decode(did.slice('did:key:'.length));
    return bytes.length === 34 && bytes[0] === 0xed && bytes[1] === 0x01 ? bytes.subarray(2) : null;
  } catch {
    return null;
  }
}

interface Signer {
  readonly did: string;
  readonly key: KeyObject;
}
const signers = new WeakMap<SigningKey, Signer>();

/** The did:key and node:crypto key object of `key`, made once per key; refuses a key whose halves do not match. */
function signerOf(key: SigningKey): Signer {
  let s = signers.get(key);
  if (s) return s;
  const pub = key.publicKey.raw;
  if (key.raw.length !== 64 || pub.length !== 32) throw new TypeError(`an ed25519 key has a 64-byte raw form and a 32-byte public key; got ${key.raw.length} and ${pub.length} bytes`);
  const privateKey = createPrivateKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', d: b64(key.raw.subarray(0, 32)), x: b64(pub) } });
  if (createPublicKey(privateKey).export({ format: 'jwk' }).x !== b64(pub)) throw new TypeError('the ed25519 key\'s public half does not belong to its seed');
  s = { did: didKeyOf(pub), key: privateKey };
  signers.set(key, s);
  return s;
}

/** The did:key of a signing key (the node's DID when it is the node's key). */
export const didOfKey = (key: SigningKey): string => signerOf(key).did;

/** An ed25519 signature of `bytes` by `key`. */
export const signWith = (key: SigningKey, bytes: Uint8Array): Uint8Array => new Uint8Array(sign(null, bytes, signerOf(key).key));

/** Public key objects by DID, for verifying: bounded, oldest first out. */
const PUBLIC_KEYS_KEPT = 4096;
const publicKeys = new Map<string, KeyObject | null>();

function publicKeyObjectOf(did: string): KeyObject | null {
  let k = publicKeys.get(did);
  if (k !== undefined) return k;
  const raw = publicKeyOf(did);
  k = raw ? createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: b64(raw) } }) : null;
  if (publicKeys.size >= PUBLIC_KEYS_KEPT) publicKeys.delete(publicKeys.keys().next().value!);
  publicKeys.set(did, k);
  return k;
}

/** True when `sig` is `did`'s ed25519 signature of `bytes`. */
export function verifyBy(did: string, bytes: Uint8Array, sig: Uint8Array): boolean {
  const k = publicKeyObjectOf(did);
  return k !== null && sig.length === 64 && verify(null, bytes, k, sig);
}
