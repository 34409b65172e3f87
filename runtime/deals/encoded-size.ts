/**
 * The exact length of a value's DAG-CBOR encoding, the encoding every envelope uses (what @ipld/dag-cbor's
 * `encode` returns for it), counted without building it. The deals' wire budgets measure with it: a log page
 * (output-page.ts) and a bid request's job (deal-schemas.ts). It is synchronous, so a zod refinement can call
 * it, and needs no ESM-only package (the encoder is one, and suites load the deals modules through a require
 * hook); test/runtime/deals/encoded-size.test.ts holds it to the encoder byte for byte.
 *
 * The IPLD data model: strings, numbers, booleans, null, bytes (Uint8Array), arrays and plain objects. Integers
 * take their shortest head; other numbers are 64-bit floats, as DAG-CBOR requires. Properties whose value is
 * `undefined` are left out (the encoder refuses them).
 */

/** Bytes of a CBOR head (major type and argument) for the argument `n`. */
function head(n: number): number {
  if (n < 24) return 1;
  if (n < 0x100) return 2;
  if (n < 0x10000) return 3;
  if (n < 0x100000000) return 5;
  return 9;
}

export function encodedSize(value: unknown): number {
  switch (typeof value) {
    case 'string': {
      const n = Buffer.byteLength(value, 'utf8');
      return head(n) + n;
    }
    case 'number':
      return Number.isSafeInteger(value) ? head(value >= 0 ? value : -1 - value) : 9;
    case 'boolean':
      return 1;
    case 'object': {
      if (value === null) return 1;
      if (value instanceof Uint8Array) return head(value.byteLength) + value.byteLength;
      if (Array.isArray(value)) {
        let n = head(value.length);
        for (const v of value) n += encodedSize(v);
        return n;
      }
      let n = 0;
      let entries = 0;
      for (const [k, v] of Object.entries(value)) {
        if (v === undefined) continue;
        entries += 1;
        n += encodedSize(k) + encodedSize(v);
      }
      return head(entries) + n;
    }
    default:
      throw new TypeError(`a ${typeof value} has no DAG-CBOR encoding`);
  }
}
