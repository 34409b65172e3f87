/**
 * Per-peer budgets at the edge of the router, on a ManualClock: bid requests per author on either path,
 * broadcasts per author in envelopes and bytes, and the refusal of a sender that stays far over budget.
 */
import '../../../runtime/polyfills.ts';
import * as assert from 'uvu/assert';
import { z } from 'zod';
import { edgeGossipVerdict } from '../../../runtime/net/edge-reasons.ts';
import { EDGE_BUDGETS, PeerBudgets, type RefusedPeer } from '../../../runtime/net/peer-budgets.ts';
import { type Ctx, craft, routerLib, routerSuite, stranger } from '../../fixtures/router-pair.ts';

let refusals: RefusedPeer[] = [];
let verifications = 0;

const Budgets = routerSuite('per-peer budgets: over budget is dropped before it costs anything', {
  bDeps: (clock) => {
    refusals = [];
    verifications = 0;
    const real = routerLib().createEnvelopeVerifier();
    return {
      budgets: new PeerBudgets(EDGE_BUDGETS, clock, { onRefuse: (r) => refusals.push(r) }),
      verifier: { ...real, verify: (peer, signed) => (verifications += 1, real.verify(peer, signed)) },
    };
  },
});

const bids: unknown[] = [];
Budgets.before.each((ctx) => {
  bids.length = 0;
  ctx.b.router.addSchemas(new Map<string, z.ZodType>([['bid.request', z.object({ n: z.number() }).strict()], ['test.blob', z.object({ data: z.string().max(1 << 20) }).strict()]]));
  ctx.b.router.register({ name: 'node', accepts: ['bid.request'], handle: (m) => bids.push(m) });
  ctx.b.router.register({ name: 'blobs', accepts: ['test.blob'], handle: () => {} });
});

type From = Parameters<typeof craft>[0];
const bid = (ctx: Ctx, from: From, n: number, broadcast = false, forge = false) =>
  ctx.b.router.receive(from.peer, 1, craft(from, { type: 'bid.request', to: { peer: broadcast ? '*' : ctx.b.peer, inbox: 'node' }, payload: { n } }, ctx, forge), broadcast);
const note = (ctx: Ctx, from: From, broadcast = false) => ctx.b.router.receive(from.peer, 1, craft(from, { to: { peer: broadcast ? '*' : ctx.b.peer, inbox: 'notes' } }, ctx), broadcast);
const outcomes = (rs: (string | null)[]) => rs.reduce<Record<string, number>>((m, r) => ((m[r ?? 'taken'] = (m[r ?? 'taken'] ?? 0) + 1), m), {});

Budgets('bid requests: 200 at once are taken, the next is rate-limited; a second later 100 more are taken', (ctx) => {
  assert.equal(outcomes(Array.from({ length: 201 }, (_, i) => bid(ctx, ctx.a, i))), { taken: 200, 'rate-limited': 1 });
  assert.is(bids.length, 200);
  ctx.clock.advance(1000);
  assert.equal(outcomes(Array.from({ length: 101 }, (_, i) => bid(ctx, ctx.a, i))), { taken: 100, 'rate-limited': 1 });
  assert.is(ctx.b.counters.view().rejected['rate-limited'], 2);
  assert.is(bids.length, 300);
});

Budgets('the bid budget is checked before the signature: requests over it cost no verification, forged or not', (ctx) => {
  for (let i = 0; i < 200; i += 1) bid(ctx, ctx.a, i);
  assert.is(verifications, 200);
  assert.equal(outcomes(Array.from({ length: 50 }, (_, i) => bid(ctx, ctx.a, i, false, i % 2 === 0))), { 'rate-limited': 50 });
  assert.is(verifications, 200);
  assert.is(ctx.b.counters.view().rejected['bad-signature'], undefined);
});

Budgets('one budget per author on either path: broadcast and direct bid requests add up; other authors have their own', async (ctx) => {
  const c = await stranger();
  const got = [...Array.from({ length: 150 }, (_, i) => bid(ctx, ctx.a, i)), ...Array.from({ length: 51 }, (_, i) => bid(ctx, ctx.a, i, true))];
  assert.equal(outcomes(got), { taken: 200, 'rate-limited': 1 });
  assert.is(got.at(-1), 'rate-limited');
  assert.is(edgeGossipVerdict('rate-limited'), 'ignore', 'a rate-limited broadcast does not blame its relay');
  assert.equal(outcomes(Array.from({ length: 200 }, (_, i) => bid(ctx, c, i, true))), { taken: 200 });
});

Budgets('the direct channel is not limited here (its credit paces it): 2000 notes at one instant are all taken (5x the broadcast burst)', (ctx) => {
  assert.equal(outcomes(Array.from({ length: 2000 }, () => note(ctx, ctx.a))), { taken: 2000 });
});

Budgets('broadcasts: 400 at once from one author are taken, the next is rate-limited; another author is unaffected', async (ctx) => {
  const c = await stranger();
  assert.equal(outcomes(Array.from({ length: 401 }, () => note(ctx, ctx.a, true))), { taken: 400, 'rate-limited': 1 });
  assert.is(note(ctx, c, true), null);
  ctx.clock.advance(500);
  assert.equal(outcomes(Array.from({ length: 101 }, () => note(ctx, ctx.a, true))), { taken: 100, 'rate-limited': 1 });
});

Budgets('broadcast bytes: bursts of 4 MiB per author, then 2 MiB/s', (ctx) => {
  const blob = () => ctx.b.router.receive(ctx.a.peer, 1, craft(ctx.a, { type: 'test.blob', to: { peer: '*', inbox: 'blobs' }, payload: { data: 'x'.repeat(900 * 1024) } }, ctx), true);
  assert.equal(outcomes(Array.from({ length: 5 }, blob)), { taken: 4, 'rate-limited': 1 });
  ctx.clock.advance(1000);
  assert.equal(outcomes(Array.from({ length: 3 }, blob)), { taken: 2, 'rate-limited': 1 });
});

Budgets('a sender far over budget is refused for 60 s: everything from it is dropped, others are served, then it is taken again', async (ctx) => {
  const c = await stranger();
  // 200 taken, then 200 drops use up its strikes; the next drop refuses it
  assert.equal(outcomes(Array.from({ length: 400 }, (_, i) => bid(ctx, ctx.a, i))), { taken: 200, 'rate-limited': 200 });
  assert.is(refusals.length, 0);
  assert.is(bid(ctx, ctx.a, 400), 'rate-limited');
  assert.equal(refusals, [{ peer: ctx.a.peer, until: ctx.clock.now() + 60_000, budget: 'type:bid.request' }]);
  assert.is(note(ctx, ctx.a), 'peer-refused');
  assert.is(note(ctx, ctx.a, true), 'peer-refused');
  assert.is(edgeGossipVerdict('peer-refused'), 'ignore');
  assert.is(bid(ctx, c, 1), null);
  assert.is(ctx.b.counters.view().rejected['peer-refused'], 2);
  ctx.clock.advance(59_999);
  assert.is(note(ctx, ctx.a), 'peer-refused');
  ctx.clock.advance(1);
  assert.is(note(ctx, ctx.a), null);
  assert.is(bid(ctx, ctx.a, 1), null, 'its budget starts afresh');
  assert.is(refusals.length, 1);
});

Budgets('a sender a little over budget (110 bid requests/s for 20 s) is dropped, never refused', (ctx) => {
  const got: (string | null)[] = [];
  for (let step = 0; step < 200; step += 1) {
    for (let i = 0; i < 11; i += 1) got.push(bid(ctx, ctx.a, i));
    ctx.clock.advance(100);
  }
  const o = outcomes(got);
  assert.ok((o['rate-limited'] ?? 0) > 0, JSON.stringify(o));
  assert.is(o['peer-refused'], undefined);
  assert.is(refusals.length, 0);
});

Budgets.run();
