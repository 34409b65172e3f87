import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildBatch, leafHash, rootOf } from '../../../../runtime/net/wire/merkle-batch.ts';

const Merkle = suite('batch signatures: Merkle roots and paths');

const hex = (b: Uint8Array | null) => (b ? Buffer.from(b).toString('hex') : 'null');

Merkle('every leaf of batches of 1 to 33 leads to the root, and only from its own index', () => {
  for (let n = 1; n <= 33; n += 1) {
    const leaves = Array.from({ length: n }, (_, i) => leafHash(new Uint8Array([i, n])));
    const { root, paths } = buildBatch(leaves);
    for (let i = 0; i < n; i += 1) {
      assert.is(hex(rootOf(leaves[i]!, i, n, paths[i]!)), hex(root), `n=${n} i=${i}`);
      if (n > 1) assert.is.not(hex(rootOf(leaves[(i + 1) % n]!, i, n, paths[i]!)), hex(root));
      assert.ok(paths[i]!.length <= Math.ceil(Math.log2(n)));
    }
  }
});

Merkle('a path that does not fit (wrong length, index out of range) gives no root', () => {
  const leaves = Array.from({ length: 5 }, (_, i) => leafHash(new Uint8Array([i])));
  const { paths } = buildBatch(leaves);
  assert.is(rootOf(leaves[0]!, 0, 5, paths[0]!.slice(1)), null);
  assert.is(rootOf(leaves[0]!, 0, 5, [...paths[0]!, paths[0]![0]!]), null);
  assert.is(rootOf(leaves[0]!, 5, 5, paths[0]!), null);
  assert.is(rootOf(leaves[0]!, -1, 5, paths[0]!), null);
});

Merkle('a leaf is not an inner node: a two-leaf root differs from the hash of the pair as one leaf', () => {
  const a = leafHash(new Uint8Array([1]));
  const b = leafHash(new Uint8Array([2]));
  const { root } = buildBatch([a, b]);
  assert.is.not(hex(root), hex(leafHash(Uint8Array.from([...a, ...b]))));
});

Merkle.run();
