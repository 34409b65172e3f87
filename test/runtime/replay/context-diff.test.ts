// What one event changed (replay --diff): paths added, removed and changed in the state and context, values
// shortened for a terminal, unchanged subtrees skipped.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Change, diffValues, formatChange, formatDiff, sameValue, shorten } from '../../../runtime/replay/context-diff.ts';

const paths = (changes: readonly Change[]) => changes.map((c) => `${c.op} ${c.path}`);

const Diff = suite('diffValues: the paths an event changed');

Diff('nothing changed: no changes, even when the objects are copies', () => {
  const v = { state: 'a', context: { n: 1, list: [1, { x: 2 }], nested: { deep: { k: 'v' } } } };
  assert.equal(diffValues(v, structuredClone(v)).changes, []);
  assert.equal(diffValues(v, v).changes, []);
});

Diff('a changed leaf, an added key and a removed key, each by its path from the root', () => {
  const before = { state: 'requesting', context: { nonce: 1, timers: { window: 10 }, record: { state: 'requesting' } } };
  const after = { state: 'committing', context: { nonce: 1, timers: { step: 20 }, record: { state: 'committing' } } };
  const d = diffValues(before, after);
  assert.equal(paths(d.changes), ['changed state', 'removed context.timers.window', 'added context.timers.step', 'changed context.record.state']);
  assert.equal(d.changes[0], { path: 'state', op: 'changed', from: 'requesting', to: 'committing' });
  assert.equal(d.changes[1], { path: 'context.timers.window', op: 'removed', from: 10 });
  assert.equal(d.changes[2], { path: 'context.timers.step', op: 'added', to: 20 });
  assert.is(d.truncated, 0);
});

Diff('arrays by index: an appended element is one addition, a shortened array lists what went', () => {
  const grown = diffValues({ h: [{ a: 1 }, { a: 2 }] }, { h: [{ a: 1 }, { a: 2 }, { a: 3 }] });
  assert.equal(grown.changes, [{ path: 'h[2]', op: 'added', to: { a: 3 } }]);
  const shrunk = diffValues({ h: [1, 2, 3] }, { h: [1] });
  assert.equal(paths(shrunk.changes), ['removed h[1]', 'removed h[2]']);
  const edited = diffValues({ bids: [{ score: 1 }, { score: 2 }] }, { bids: [{ score: 1 }, { score: 5 }] });
  assert.equal(edited.changes, [{ path: 'bids[1].score', op: 'changed', from: 2, to: 5 }]);
});

Diff('keys that are not identifiers are quoted, as a lock id with dots and an @ is', () => {
  const key = 'fa4a.1@12D3KooW';
  const d = diffValues({ locks: {} }, { locks: { [key]: { cpu: 1 } } });
  assert.equal(paths(d.changes), [`added locks["${key}"]`]);
});

Diff('a value that changes type (object to string, null to object) is one change, not a walk', () => {
  const d = diffValues({ state: { requesting: 'collecting' }, chosen: null }, { state: 'committing', chosen: { p: 'x' } });
  assert.equal(d.changes, [
    { path: 'state', op: 'changed', from: { requesting: 'collecting' }, to: 'committing' },
    { path: 'chosen', op: 'changed', from: null, to: { p: 'x' } },
  ]);
});

Diff('undefined members count as absent (xstate contexts leave them behind)', () => {
  assert.equal(diffValues({ a: 1, b: undefined }, { a: 1 }).changes, []);
  assert.equal(paths(diffValues({ a: 1 }, { a: 1, b: undefined, c: 2 }).changes), ['added c']);
});

Diff('a same subtree is not walked: a getter in it would throw if it were', () => {
  const shared = {};
  Object.defineProperty(shared, 'boom', { enumerable: true, get: () => { throw new Error('walked'); } });
  assert.equal(paths(diffValues({ s: shared, n: 1 }, { s: shared, n: 2 }).changes), ['changed n']);
});

Diff('at most `limit` changes; the rest are counted', () => {
  const before = Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`k${i}`, i]));
  const after = Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`k${i}`, i + 1]));
  const d = diffValues(before, after, { limit: 50 });
  assert.is(d.changes.length, 50);
  assert.is(d.truncated, 30);
  assert.is(formatDiff(d).at(-1), '… and 30 more changes');
});

Diff('sameValue: by content, key order ignored', () => {
  assert.ok(sameValue({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 }));
  assert.not.ok(sameValue([1, 2], [2, 1]));
  assert.not.ok(sameValue({ a: 1 }, [1]));
  assert.not.ok(sameValue(0, null));
});

Diff.run();

const Format = suite('formatChange and shorten: one short line per change');

Format('added, removed and changed lines', () => {
  assert.is(formatChange({ path: 'context.n', op: 'changed', from: 1, to: 2 }), '~ context.n: 1 -> 2');
  assert.is(formatChange({ path: 'context.x', op: 'added', to: { a: 1 } }), '+ context.x = {"a":1}');
  assert.is(formatChange({ path: 'context.y', op: 'removed', from: 'gone' }), '- context.y (was "gone")');
});

Format('a long string keeps both ends (ids differ at either end); a long object is cut at its end', () => {
  const peer = '12D3KooWAU3CumazU5mj9EFcv7XziUKcWVDEzMqJ3HX86JiWdFW9-and-then-some-more-text';
  const s = shorten(peer, 40);
  assert.ok(s.length <= 40, s);
  assert.ok(s.startsWith('"12D3KooW') && s.endsWith('some-more-text"'), s);
  assert.ok(s.includes('…'));
  const o = shorten({ list: Array.from({ length: 50 }, (_, i) => i) }, 40);
  assert.is(o.length, 40);
  assert.ok(o.endsWith('…'));
  assert.is(shorten(undefined), 'undefined');
  assert.is(shorten(42), '42');
});

Format.run();
