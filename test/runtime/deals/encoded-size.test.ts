// encodedSize (runtime/deals/encoded-size.ts) counts a value's DAG-CBOR encoding without building it; the wire
// budgets (log pages, a bid request's job) rest on it, so it must agree with the encoder byte for byte: at every
// length where a CBOR head grows, for every kind of value, for a job and a page, and for random values.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { encodedSize } from '../../../runtime/deals/encoded-size.ts';
import { PROCESS_JOB } from '../../fixtures/deal-fixtures.ts';

// the encoder is ESM only and suites run through a require hook: load it dynamically
const cbor = import('@ipld/dag-cbor');

async function same(value: unknown, what = JSON.stringify(value)?.slice(0, 80)): Promise<void> {
  const { encode } = await cbor;
  assert.is(encodedSize(value), encode(value).byteLength, `the size of ${what}`);
}

const test = suite('encodedSize: the length of the DAG-CBOR encoding, exactly');

const EDGES = [0, 1, 23, 24, 255, 256, 65_535, 65_536];

test('strings at every head boundary, in ASCII, multi-byte characters and lone surrogates', async () => {
  for (const n of EDGES) await same('a'.repeat(n), `${n} ASCII characters`);
  for (const s of ['é', '€', '日本語', '🎉', '\uD800', 'a\uDC00b', '\u0000\u001b"\\', '\uFFFD'.repeat(30)]) await same(s);
});

test('integers at every head boundary, both signs; floats; the numbers that are not safe integers', async () => {
  const ints = [...EDGES, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER];
  for (const n of ints) {
    await same(n);
    await same(-n);
    await same(-n - 1);
  }
  for (const x of [0.5, -0.5, 1e-300, 1e300, 0.1 + 0.2, 2 ** 53, -(2 ** 60), -0]) await same(x, String(x));
});

test('booleans, null, bytes, arrays and maps at their head boundaries, nested', async () => {
  for (const v of [true, false, null]) await same(v);
  for (const n of EDGES.slice(0, 7)) {
    await same(new Uint8Array(n), `${n} bytes`);
    await same(Array.from({ length: n }, (_, i) => i), `an array of ${n}`);
  }
  for (const n of [0, 1, 23, 24, 300]) await same(Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, { v: [i, `x${i}`, null] }])), `a map of ${n}`);
});

test('a job and a log page, as they travel', async () => {
  await same(PROCESS_JOB, 'a process job');
  await same({ ...PROCESS_JOB, process: { command: 'sh', args: ['-c', 'x'.repeat(70_000)], env: { K: 'é'.repeat(300) } }, resources: { ...PROCESS_JOB.resources, cpu: 0.25 } }, 'a job with big args');
  await same({ chunks: [{ stream: 'stdout', text: 'hi\n' }, { stream: 'stderr', text: '\uFFFD\u0000' }], next: 123_456, eof: false }, 'a page');
});

test('undefined properties are left out, as a job built from optional fields has none', async () => {
  const { encode } = await cbor;
  assert.is(encodedSize({ a: 1, b: undefined }), encode({ a: 1 }).byteLength);
});

test('500 random values agree with the encoder', async () => {
  let seed = 42;
  const rand = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
  const value = (depth: number): unknown => {
    const k = Math.floor(rand() * (depth > 3 ? 5 : 8));
    switch (k) {
      case 0: return Math.floor((rand() - 0.5) * 2 ** (rand() * 60));
      case 1: return rand() * 1000;
      case 2: return String.fromCodePoint(...Array.from({ length: Math.floor(rand() * 40) }, () => Math.floor(rand() * 0x10ffff) % 0xd800));
      case 3: return rand() < 0.5;
      case 4: return null;
      case 5: return Array.from({ length: Math.floor(rand() * 30) }, () => value(depth + 1));
      case 6: return Object.fromEntries(Array.from({ length: Math.floor(rand() * 30) }, (_, i) => [`f${i}${'z'.repeat(Math.floor(rand() * 30))}`, value(depth + 1)]));
      default: return new Uint8Array(Math.floor(rand() * 300));
    }
  };
  for (let i = 0; i < 500; i += 1) await same(value(0), `random value ${i}`);
});

test.run();
