/**
 * Batch signatures: the sender signs the Merkle root of a batch of envelope bodies once, and each envelope
 * carries that signature plus its path to the root, so every envelope stays verifiable on its own while a
 * receiver verifies one ed25519 signature per batch (and hashes per envelope). Leaves and inner nodes are
 * domain-separated (0x00 / 0x01 prefixes); at an odd level end the last node moves up unchanged.
 */
import { createHash } from 'node:crypto';

export const HASH_BYTES = 32;

export function leafHash(body: Uint8Array): Uint8Array {
  return createHash('sha256').update(LEAF).update(body).digest();
}

function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return createHash('sha256').update(NODE).update(left).update(right).digest();
}

const LEAF = new Uint8Array([0]);
const NODE = new Uint8Array([1]);

/** The root of a batch and each leaf's path (sibling hashes, bottom up). */
export function buildBatch(leaves: readonly Uint8Array[]): { root: Uint8Array; paths: Uint8Array[][] } {
  if (leaves.length === 0) throw new RangeError('a batch needs at least one envelope');
  const paths: Uint8Array[][] = leaves.map(() => []);
  let level = [...leaves];
  // which leaves sit under each node of the current level
  let under: number[][] = leaves.map((_, i) => [i]);
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    const nextUnder: number[][] = [];
    for (let i = 0; i < level.length; i += 2) {
      if (i + 1 === level.length) {
        next.push(level[i]!);
        nextUnder.push(under[i]!);
        continue;
      }
      for (const leaf of under[i]!) paths[leaf]!.push(level[i + 1]!);
      for (const leaf of under[i + 1]!) paths[leaf]!.push(level[i]!);
      next.push(nodeHash(level[i]!, level[i + 1]!));
      nextUnder.push([...under[i]!, ...under[i + 1]!]);
    }
    level = next;
    under = nextUnder;
  }
  return { root: level[0]!, paths };
}

/** The root that a leaf, its index, the batch size and its path lead to; null when the path does not fit. */
export function rootOf(leaf: Uint8Array, index: number, count: number, path: readonly Uint8Array[]): Uint8Array | null {
  if (!Number.isInteger(index) || !Number.isInteger(count) || index < 0 || index >= count) return null;
  let hash = leaf;
  let i = index;
  let n = count;
  let used = 0;
  while (n > 1) {
    const sibling = i ^ 1;
    if (sibling < n) {
      const s = path[used++];
      if (!s || s.length !== HASH_BYTES) return null;
      hash = i % 2 === 0 ? nodeHash(hash, s) : nodeHash(s, hash);
    }
    i = Math.floor(i / 2);
    n = Math.ceil(n / 2);
  }
  return used === path.length ? hash : null;
}
