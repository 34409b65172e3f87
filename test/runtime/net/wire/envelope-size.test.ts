import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { MAX_FRAME_BYTES } from '../../../../machines/envelope.ts';
import { FrameDecoder } from '../../../../runtime/net/wire/frame-codec.ts';

// envelope-codec loads @ipld/dag-cbor, which is ESM only: load it dynamically
const codec = import('../../../../runtime/net/wire/envelope-codec.ts');

const Size = suite('MAX_BODY_BYTES: the largest body that every sealing fits in a frame the receiver takes');

const sign = () => new Uint8Array(64).fill(1);
const decodes = (frames: Uint8Array[]) => frames.every((f) => new FrameDecoder().push(f).length === 1);

Size('a body of MAX_BODY_BYTES fits alone and at every place of a full batch; one byte more does not', async () => {
  const { MAX_BATCH, MAX_BODY_BYTES, sealBatch, sealOne } = await codec;
  assert.ok(MAX_BODY_BYTES > MAX_FRAME_BYTES - 256 && MAX_BODY_BYTES < MAX_FRAME_BYTES);
  const body = new Uint8Array(MAX_BODY_BYTES);
  assert.ok(decodes([sealOne(body, sign).frame]));
  assert.ok(decodes(sealBatch(Array<Uint8Array>(MAX_BATCH).fill(body), sign)));
  const over = new Uint8Array(MAX_BODY_BYTES + 1);
  assert.throws(() => decodes(sealBatch(Array<Uint8Array>(MAX_BATCH).fill(over), sign)), /over the 1048576-byte limit/);
});

Size.run();
