import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FrameDecoder, FrameKind, encodeCredit, encodeFrame, readVarint, varintLength, writeVarint } from '../../../../runtime/net/wire/frame-codec.ts';

const Varint = suite('varint length prefixes');

Varint('round-trips values across byte boundaries', () => {
  for (const n of [0, 1, 127, 128, 300, 16_383, 16_384, 1 << 20, 2 ** 40]) {
    const buf = new Uint8Array(varintLength(n));
    assert.is(writeVarint(n, buf, 0), buf.length);
    assert.equal(readVarint(buf, 0), [n, buf.length]);
  }
});

Varint('an unfinished varint reads as "need more bytes"; one longer than 8 bytes is malformed', () => {
  assert.is(readVarint(new Uint8Array([0x80, 0x80]), 0), null);
  assert.throws(() => readVarint(new Uint8Array(9).fill(0x80), 0), /longer than 8 bytes/);
});

Varint.run();

const Decoder = suite('FrameDecoder splits a byte stream into frames');

Decoder('frames split across chunks and several frames in one chunk', () => {
  const a = encodeFrame(FrameKind.ENVELOPE, new Uint8Array([1, 2, 3]));
  const b = encodeCredit(300);
  const all = new Uint8Array([...a, ...b, ...a]);
  const d = new FrameDecoder();
  const got = [...d.push(all.subarray(0, 2)), ...d.push(all.subarray(2, 7)), ...d.push(all.subarray(7))];
  assert.equal(got.map((f) => f.kind), [FrameKind.ENVELOPE, FrameKind.CREDIT, FrameKind.ENVELOPE]);
  assert.equal([...got[0]!.body], [1, 2, 3]);
  assert.equal(readVarint(got[1]!.body, 0)?.[0], 300);
  assert.is(d.buffered, 0);
});

Decoder('a length over the limit is oversized before its bytes arrive', () => {
  const d = new FrameDecoder(1024);
  const head = new Uint8Array(varintLength(1025));
  writeVarint(1025, head, 0);
  try {
    d.push(head);
    assert.unreachable('should throw');
  } catch (e) {
    assert.is((e as Error).name, 'FrameError');
    assert.is((e as { reason: string }).reason, 'oversized');
  }
});

Decoder('a stream that ends inside a frame is truncated', () => {
  const d = new FrameDecoder();
  const f = encodeFrame(FrameKind.ENVELOPE, new Uint8Array(100));
  assert.equal(d.push(f.subarray(0, 50)), []);
  assert.throws(() => d.end(), (e: Error & { reason?: string }) => e.reason === 'truncated');
  assert.not.throws(() => new FrameDecoder().end());
});

Decoder.run();
