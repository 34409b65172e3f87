import '../../../runtime/polyfills.ts';
import * as assert from 'uvu/assert';
import { z } from 'zod';
import { NET_INBOX } from '../../../machines/net.messages.ts';
import { craft, nextTurn, routerLib, routerSuite } from '../../fixtures/router-pair.ts';
import { waitFor, within } from '../../fixtures/waiting.ts';

const Delivery = routerSuite('the router delivers signed events to inboxes');

Delivery('an event reaches the addressed inbox with its sender, and both sides count it', async ({ a, b }) => {
  await a.router.send({ peer: b.peer, inbox: 'notes' }, 'test.note', { text: 'hello' }, { from: 'me' });
  await waitFor('the event at b', () => b.got.length >= 1);
  await nextTurn();
  assert.is(b.got.length, 1);
  assert.equal(b.got[0]!.envelope.payload, { text: 'hello' });
  assert.is(b.got[0]!.envelope.from.peer, a.peer);
  assert.is(b.got[0]!.envelope.from.inbox, 'me');
  assert.is(a.counters.view().out, 1);
  assert.is(b.counters.view().in, 1);
  assert.is(b.counters.view().rejectedTotal, 0);
});

Delivery('request/reply: net.ping is answered by net.pong within the deadline', async ({ a, b, clock }) => {
  const r = await within('the pong', a.router.request<{ seq: number }>({ peer: b.peer, inbox: NET_INBOX }, 'net.ping', { seq: 7 }, { timeoutMs: 1000 }));
  assert.is(r.envelope.type, 'net.pong');
  assert.is(r.envelope.payload.seq, 7);
  assert.ok(r.envelope.exp <= clock.now() + 1000, 'the reply carries the request\'s deadline');
});

Delivery('a request nobody answers fails with RequestTimeoutError at its deadline, not before', async ({ a, b, clock }) => {
  let outcome: Error | 'answered' | undefined;
  const asked = a.router.request({ peer: b.peer, inbox: 'notes' }, 'test.note', { text: 'x' }, { timeoutMs: 80 }).then(
    () => (outcome = 'answered'),
    (e: Error) => (outcome = e),
  );
  await waitFor('the request at b', () => b.got.length === 1);
  clock.advance(79);
  await nextTurn();
  assert.is(outcome, undefined, 'settled before its deadline');
  clock.advance(1);
  await within('the timeout', asked);
  assert.is((outcome as Error).name, 'RequestTimeoutError');
});

Delivery('a request to a missing inbox is answered with net.error and counted as no-inbox', async ({ a, b }) => {
  const err = (await a.router.request({ peer: b.peer, inbox: 'nobody' }, 'test.note', { text: 'x' }, { timeoutMs: 1000 }).catch((e: Error) => e)) as Error & { code?: string };
  assert.is(err.name, 'RemoteError');
  assert.is(err.code, 'no-inbox');
  assert.is(b.counters.view().rejected['no-inbox'], 1);
});

Delivery('the node inbox passes only the remote event types it lists', async ({ a, b }) => {
  const events: { type: string }[] = [];
  b.router.register(routerLib().actorInbox('node', { send: (e) => events.push(e) }, ['test.note']));
  await a.router.send({ peer: b.peer, inbox: 'node' }, 'test.note', { text: 'ok' });
  const err = (await a.router.request({ peer: b.peer, inbox: 'node' }, 'net.ping', { seq: 1 }, { timeoutMs: 1000 }).catch((e: Error) => e)) as Error & { code?: string };
  assert.is(err.code, 'not-accepted');
  assert.is(events.length, 1);
  assert.is(events[0]!.type, 'test.note');
  assert.is((events[0] as unknown as { origin: { from: { peer: string } } }).origin.from.peer, a.peer);
});

Delivery('an event to this node itself is delivered locally, without the transport', async ({ b }) => {
  await b.router.send({ peer: b.peer, inbox: 'notes' }, 'test.note', { text: 'self' });
  await waitFor('the event at b', () => b.got.length >= 1);
  await nextTurn();
  assert.is(b.got.length, 1);
  assert.is(b.sent.length, 0);
});

Delivery('events sent in one turn travel under one batch signature, each verifiable on its own, in order', async ({ a, b }) => {
  await Promise.all(Array.from({ length: 40 }, (_, i) => a.router.send({ peer: b.peer, inbox: 'notes' }, 'test.note', { text: `n${i}` })));
  await waitFor('40 events at b', () => b.got.length >= 40);
  await nextTurn();
  assert.is(b.got.length, 40);
  assert.equal(b.got.map((m) => (m.envelope.payload as { text: string }).text), Array.from({ length: 40 }, (_, i) => `n${i}`));
  // the first leaves at once, signed alone; the other 39 are a full batch of 32 and one of 7
  assert.equal(a.sent.map((f) => f.kind), [0x01, ...Array<number>(39).fill(0x05)]);
  const sigs = new Set(a.sent.slice(1).map((f) => Buffer.from(f.body.subarray(0, 64)).toString('hex')));
  assert.is(sigs.size, 2);
  assert.is(b.counters.view().in, 40);
});

Delivery('a batched envelope changed after signing, or moved to another place in its batch, is refused', async ({ a, b }) => {
  await Promise.all([0, 1, 2, 3].map((i) => a.router.send({ peer: b.peer, inbox: 'notes' }, 'test.note', { text: `abc${i}` })));
  await waitFor('4 frames sent', () => a.sent.length >= 4);
  // the first left alone; f0, f1 and the next are a batch of 3
  const [, f0, f1] = a.sent;
  const fresh = new (routerLib().MessageRouter)({ ...b.router.deps, counters: new (routerLib().NetCounters)() });
  fresh.addSchemas(new Map([['test.note', z.object({ text: z.string() }).strict()]]));
  fresh.register({ name: 'notes', accepts: ['test.note'], handle: () => {} });
  const tampered = Uint8Array.from(f0!.body);
  tampered[Buffer.from(tampered).indexOf('abc1')] = 'x'.charCodeAt(0);
  assert.is(fresh.receive(a.peer, 0x05, tampered, false), 'bad-signature');
  // f1's body under f0's signature, index and path (in a batch of 3 both have a 2-hash path: 64 + 2 + 64 bytes)
  const PREFIX = 64 + 2 + 2 * 32;
  const moved = Uint8Array.from([...f0!.body.subarray(0, PREFIX), ...f1!.body.subarray(PREFIX)]);
  assert.is(fresh.receive(a.peer, 0x05, moved, false), 'bad-signature');
  assert.is(fresh.deps.counters.view().rejected['bad-signature'], 2);
  assert.is(fresh.receive(a.peer, 0x05, f0!.body, false), null);
  fresh.stop();
});

Delivery('a broadcast reaches the inbox on other peers, counted as broadcast in and out', async ({ a, b }) => {
  await a.router.broadcast('notes', 'test.note', { text: 'all' });
  await waitFor('the broadcast at b', () => b.got.length >= 1);
  await nextTurn();
  assert.is(b.got.length, 1);
  assert.ok(b.got[0]!.broadcast);
  assert.is(b.got[0]!.envelope.to.peer, '*');
  assert.is(a.counters.view().broadcastOut, 1);
  assert.is(b.counters.view().broadcastIn, 1);
});

Delivery('an envelope addressed to one peer cannot be passed off as a broadcast', (ctx) => {
  assert.is(ctx.b.router.receive(ctx.a.peer, 1, craft(ctx.a, {}, ctx), true), 'misaddressed');
  assert.is(ctx.b.counters.view().rejected.misaddressed, 1);
});

Delivery.run();

const Refusals = routerSuite('the router refuses bad envelopes, counting each by reason');

Refusals('the same frame twice: the second is replayed', async ({ a, b }) => {
  await a.router.send({ peer: b.peer, inbox: 'notes' }, 'test.note', { text: 'once' });
  await waitFor('the event at b', () => b.got.length === 1);
  assert.is(b.router.receive(a.peer, 1, a.sent[0]!.body, false), 'replayed');
  assert.is(b.got.length, 1);
  assert.is(b.counters.view().rejected.replayed, 1);
});

Refusals('a body changed after signing fails the signature, and the untouched one still passes after it', (ctx) => {
  const good = craft(ctx.a, { payload: { text: 'abc' } }, ctx);
  const bad = Uint8Array.from(good);
  bad[Buffer.from(bad).indexOf('abc')] = 'x'.charCodeAt(0);
  assert.is(ctx.b.router.receive(ctx.a.peer, 1, bad, false), 'bad-signature');
  assert.is(ctx.b.counters.view().rejected['bad-signature'], 1);
  assert.is(ctx.b.router.receive(ctx.a.peer, 1, good, false), null);
});

Refusals('a frame whose `from` is not the peer it came from', (ctx) => {
  assert.is(ctx.b.router.receive('12D3KooWSomeoneElse', 1, craft(ctx.a, {}, ctx), false), 'from-mismatch');
  assert.is(ctx.b.counters.view().rejected['from-mismatch'], 1);
});

Refusals('a did that is not the sender\'s key', (ctx) => {
  const f = craft(ctx.a, { from: { peer: ctx.a.peer, did: 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', inbox: 'net' } }, ctx);
  assert.is(ctx.b.router.receive(ctx.a.peer, 1, f, false), 'did-mismatch');
  assert.is(ctx.b.counters.view().rejected['did-mismatch'], 1);
});

Refusals('an expired envelope', (ctx) => {
  const f = craft(ctx.a, { ts: ctx.clock.now() - 2000, exp: ctx.clock.now() - 1 }, ctx);
  assert.is(ctx.b.router.receive(ctx.a.peer, 1, f, false), 'expired');
  assert.is(ctx.b.counters.view().rejected.expired, 1);
});

Refusals('an unknown event type, and a known type with a wrong payload', (ctx) => {
  assert.is(ctx.b.router.receive(ctx.a.peer, 1, craft(ctx.a, { type: 'test.unknown' }, ctx), false), 'unknown-type');
  assert.is(ctx.b.router.receive(ctx.a.peer, 1, craft(ctx.a, { payload: { text: 'far too long a note' } }, ctx), false), 'invalid-payload');
  assert.is(ctx.b.router.receive(ctx.a.peer, 1, craft(ctx.a, { payload: { text: 1 } }, ctx), false), 'invalid-payload');
  const r = ctx.b.counters.view().rejected;
  assert.is(r['unknown-type'], 1);
  assert.is(r['invalid-payload'], 2);
  assert.is(ctx.b.got.length, 0);
});

Refusals('bytes that are not an envelope: too short, not CBOR, wrong shape', (ctx) => {
  assert.is(ctx.b.router.receive(ctx.a.peer, 1, new Uint8Array(10), false), 'malformed');
  assert.is(ctx.b.router.receive(ctx.a.peer, 1, new Uint8Array(200).fill(0xff), false), 'malformed');
  assert.is(ctx.b.router.receive(ctx.a.peer, 1, craft(ctx.a, { extra: 1 }, ctx), false), 'malformed');
  assert.is(ctx.b.counters.view().rejected.malformed, 3);
});

Refusals('after all that, a good envelope still gets through', async (ctx) => {
  ctx.b.router.receive(ctx.a.peer, 1, new Uint8Array(200).fill(0xff), false);
  assert.is(ctx.b.router.receive(ctx.a.peer, 1, craft(ctx.a, {}, ctx), false), null);
  assert.is(ctx.b.got.length, 1);
});

Refusals.run();
