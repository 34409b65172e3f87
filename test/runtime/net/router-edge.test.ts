/**
 * The router's edge beyond the envelope rules: ids remembered only for envelopes that passed every check, a
 * full replay cache refusing rather than forgetting, and every envelope's size checked before it is sent.
 */
import '../../../runtime/polyfills.ts';
import * as assert from 'uvu/assert';
import { z } from 'zod';
import { edgeGossipVerdict } from '../../../runtime/net/edge-reasons.ts';
import { ReplayCache } from '../../../runtime/net/replay-cache.ts';
import { craft, nextTurn, routerSuite } from '../../fixtures/router-pair.ts';
import { waitFor, within } from '../../fixtures/waiting.ts';

let cache: ReplayCache;
const Replay = routerSuite('the replay cache at the router: ids of checked envelopes only, refused rather than forgotten', {
  bDeps: () => ({ replay: (cache = new ReplayCache({ perPeer: 3, maxEntries: 1000, maxBytes: 1 << 20 })) }),
});

Replay('an envelope refused for its payload leaves no id behind: the same bytes are refused for the payload again', (ctx) => {
  const bad = craft(ctx.a, { payload: { text: 'far too long a note' } }, ctx);
  assert.is(ctx.b.router.receive(ctx.a.peer, 1, bad, false), 'invalid-payload');
  assert.is(cache.size, 0);
  assert.is(ctx.b.router.receive(ctx.a.peer, 1, bad, false), 'invalid-payload');
});

Replay('an envelope with a bad signature leaves no id behind, and the genuine one is still taken', (ctx) => {
  const id = 'same.id.for.both';
  assert.is(ctx.b.router.receive(ctx.a.peer, 1, craft(ctx.a, { id }, ctx, true), false), 'bad-signature');
  assert.is(cache.size, 0);
  assert.is(ctx.b.router.receive(ctx.a.peer, 1, craft(ctx.a, { id }, ctx), false), null);
  assert.is(cache.size, 1);
});

Replay('a sender whose share is full is refused as replay-cache-full (ignored in gossip); what it sent stays replayed', (ctx) => {
  const first = craft(ctx.a, {}, ctx);
  assert.is(ctx.b.router.receive(ctx.a.peer, 1, first, false), null);
  assert.is(ctx.b.router.receive(ctx.a.peer, 1, craft(ctx.a, {}, ctx), false), null);
  assert.is(ctx.b.router.receive(ctx.a.peer, 1, craft(ctx.a, {}, ctx), false), null);
  assert.is(ctx.b.router.receive(ctx.a.peer, 1, craft(ctx.a, {}, ctx), false), 'replay-cache-full');
  assert.is(ctx.b.router.receive(ctx.a.peer, 1, craft(ctx.a, { to: { peer: '*', inbox: 'notes' } }, ctx), true), 'replay-cache-full');
  assert.is(edgeGossipVerdict('replay-cache-full'), 'ignore');
  assert.is(ctx.b.router.receive(ctx.a.peer, 1, first, false), 'replayed');
  assert.is(ctx.b.got.length, 3);
  assert.equal(ctx.b.counters.view().rejected, { 'replay-cache-full': 2, replayed: 1 });
  // once they expire (1 s), there is room again
  ctx.clock.advance(1001);
  assert.is(ctx.b.router.receive(ctx.a.peer, 1, craft(ctx.a, {}, ctx), false), null);
});

Replay.run();

const big = (bytes: number) => ({ text: 'x'.repeat(bytes) });
const Sizes = routerSuite('every envelope\'s size is checked before it is sent');

Sizes.before.each((ctx) => {
  for (const side of [ctx.a, ctx.b]) side.router.addSchemas(new Map([['test.big', z.object({ text: z.string() }).strict()]]));
});

Sizes('an oversized send or broadcast fails at the sender with EnvelopeTooLargeError, and nothing goes out', async ({ a, b }) => {
  const sent = (await a.router.send({ peer: b.peer, inbox: 'notes' }, 'test.note', big(1 << 20)).catch((e: Error) => e)) as Error;
  assert.is(sent.name, 'EnvelopeTooLargeError');
  assert.match(sent.message, /a test\.note message of 1024\.\d KiB is over the 1023\.\d KiB one envelope may carry, so it was not sent/);
  const cast = (await a.router.broadcast('notes', 'test.note', big(1 << 20)).catch((e: Error) => e)) as Error;
  assert.is(cast.name, 'EnvelopeTooLargeError');
  await nextTurn();
  assert.is(a.sent.length, 0);
  assert.is(b.got.length, 0);
  assert.is(a.counters.view().tooLargeOut, 2);
  assert.is(a.counters.view().broadcastOut, 0);
});

Sizes('an oversized request fails at once, leaving no timer behind', async ({ a, b, clock }) => {
  const timers = clock.pending;
  const err = (await within('the refusal', a.router.request({ peer: b.peer, inbox: 'notes' }, 'test.note', big(2 << 20), { timeoutMs: 60_000 }).catch((e: Error) => e))) as Error;
  assert.is(err.name, 'EnvelopeTooLargeError');
  assert.is(clock.pending, timers);
});

Sizes('an oversized reply becomes a net.error saying it was too large; the connection carries on', async ({ a, b }) => {
  b.router.register({ name: 'big', accepts: ['test.note'], handle: (m) => void b.router.reply(m, 'test.big', big(1100 * 1024)) });
  const err = (await within('the answer', a.router.request({ peer: b.peer, inbox: 'big' }, 'test.note', { text: 'logs?' }, { timeoutMs: 1000 }).catch((e: Error) => e))) as Error & { code?: string };
  assert.is(err.name, 'RemoteError');
  assert.is(err.code, 'too-large');
  assert.match(err.message, /test\.big reply was too large to send/);
  assert.is(b.counters.view().tooLargeOut, 1);
  assert.is(a.counters.view().rejectedTotal, 0);
  await a.router.send({ peer: b.peer, inbox: 'notes' }, 'test.note', { text: 'after' });
  await waitFor('the next note', () => b.got.length === 1);
});

Sizes('the largest envelope allowed arrives whole, alone and in a full batch', async ({ a, b }) => {
  b.router.register({ name: 'bigs', accepts: ['test.big'], handle: (m) => b.got.push(m) });
  // a little under the limit: the body's other fields (id, stamps) vary by a few bytes
  const text = 'x'.repeat((1 << 20) - 227 - 400);
  await Promise.all(Array.from({ length: 33 }, () => a.router.send({ peer: b.peer, inbox: 'bigs' }, 'test.big', { text })));
  await waitFor('33 big envelopes', () => b.got.length === 33, 10_000);
  assert.is(b.counters.view().rejectedTotal, 0);
  assert.is(new Set(a.sent.map((f) => f.kind)).size, 2, 'one alone, then a batch');
});

Sizes.run();
