import '../../../../runtime/polyfills.ts';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { RejectReason } from '../../../../machines/envelope.ts';
import { FLOW_DEFAULTS, type FlowInit, TokenBucket } from '../../../../runtime/net/channel/flow-control.ts';
import { FrameKind, encodeFrame, varintLength, writeVarint } from '../../../../runtime/net/wire/frame-codec.ts';
import type { InboundChannel } from '../../../../runtime/net/channel/inbound-channel.ts';
import type { OutboundChannel } from '../../../../runtime/net/channel/outbound-channel.ts';
import { ManualClock } from '../../../../runtime/clock.ts';
import { waitFor, within } from '../../../fixtures/waiting.ts';

// ESM-only libp2p packages load dynamically (uvu runs suites through tsx's require hook)
const lib = (async () => ({
  ...(await import('@libp2p/utils')),
  ...(await import('../../../../runtime/net/channel/inbound-channel.ts')),
  ...(await import('../../../../runtime/net/channel/outbound-channel.ts')),
}))();

/** One turn of the timers the in-memory streams deliver on (they pass data along with setTimeout(0)). */
const turn = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

interface Ctx {
  /** Both channels' time: the receiver's pacing and the sender's deadlines move only when a test advances it. */
  clock: ManualClock;
  out: OutboundChannel;
  inb: InboundChannel;
  got: number[];
  rejects: RejectReason[];
  /** The sending end's raw stream, for writing bytes no well-behaved sender would. */
  raw: Awaited<ReturnType<Awaited<typeof lib>['streamPair']>>[0];
}

/** A sender and a receiver channel on an in-memory stream pair; the receiver records each envelope's first byte. */
async function connect(ctx: Ctx, flow: FlowInit, withSender = true): Promise<void> {
  const L = await lib;
  const [a, b] = await L.streamPair();
  ctx.clock = new ManualClock(1_700_000_000_000);
  ctx.got = [];
  ctx.rejects = [];
  ctx.raw = a;
  ctx.inb = new L.InboundChannel('sender', b, flow, {
    onEnvelope: (_p, _kind, body) => ctx.got.push(body[0]!),
    onReject: (_p, reason) => ctx.rejects.push(reason),
    onClose: () => {},
  }, ctx.clock);
  if (withSender) ctx.out = new L.OutboundChannel('receiver', a, flow, { onError: () => {}, onClose: () => {} }, ctx.clock);
}

/**
 * Waits until the streams carry nothing more: what arrived, what was sent and the sender's credit stay the same
 * over a few turns of the streams' timers. (Time on the clock does not move meanwhile.)
 */
async function settled(ctx: Ctx): Promise<void> {
  const state = () => `${ctx.got.length} ${ctx.out?.sent} ${ctx.out?.credit} ${ctx.rejects.length}`;
  for (let i = 0; i < 500; i += 1) {
    const before = state();
    for (let t = 0; t < 4; t += 1) await turn();
    if (state() === before) return;
  }
  throw new Error(`the streams were still busy after 500 rounds (${state()})`);
}

const envelopeFrame = (i: number) => encodeFrame(FrameKind.ENVELOPE, new Uint8Array([i % 256, 1, 2, 3]));

const Flow = suite<Ctx>('credit-based flow control between two channels');
Flow.after.each((ctx) => {
  ctx.out?.close();
  ctx.inb?.close();
});

Flow('every frame arrives in order, and the sender never holds more than the credit it was granted', async (ctx) => {
  await connect(ctx, { ...FLOW_DEFAULTS, initialCredit: 16, creditBatch: 4 });
  for (let i = 0; i < 500; i += 1) await ctx.out.send([envelopeFrame(i)], ctx.clock.now() + 5000);
  await waitFor('500 frames at the receiver', () => ctx.got.length >= 500);
  assert.is(ctx.got.length, 500);
  assert.equal(ctx.got.slice(0, 5), [0, 1, 2, 3, 4]);
  assert.is(ctx.got[499], 499 % 256);
  assert.equal(ctx.rejects, []);
  assert.ok(ctx.out.credit <= 16);
});

Flow('a receiver that grants slowly slows the sender: send() waits while the queue is full', async (ctx) => {
  // 200 frames/s granted, 8 queued at most: 60 frames cannot leave in much under 250 ms
  await connect(ctx, { ...FLOW_DEFAULTS, initialCredit: 8, creditBatch: 4, ratePerSec: 200, burst: 8, maxQueue: 8 });
  const t0 = ctx.clock.now();
  let maxQueued = 0;
  const sending = (async () => {
    for (let i = 0; i < 60; i += 1) {
      await ctx.out.send([envelopeFrame(i)], ctx.clock.now() + 5000);
      maxQueued = Math.max(maxQueued, ctx.out.queued);
    }
  })();
  // while no time passes, only the initial credit and the bucket's burst get through
  await waitFor('the first 16 frames', () => ctx.got.length >= 16);
  await settled(ctx);
  assert.is(ctx.got.length, 16, 'frames beyond the initial credit and the burst arrived while no time passed');
  for (;;) {
    await settled(ctx);
    if (ctx.got.length >= 60 || ctx.clock.now() - t0 > 5000) break;
    ctx.clock.advance(5);
  }
  await within('the sender to finish', sending);
  assert.is(ctx.got.length, 60);
  assert.ok(ctx.clock.now() - t0 >= 180, `took ${ctx.clock.now() - t0} ms`);
  assert.ok(maxQueued <= 8, `queued ${maxQueued}`);
  assert.equal(ctx.rejects, []);
});

Flow('send() gives up at the deadline when the queue stays full', async (ctx) => {
  await connect(ctx, { ...FLOW_DEFAULTS, initialCredit: 1, creditBatch: 1, ratePerSec: 1, burst: 1, maxQueue: 1 });
  const failures: Error[] = [];
  const sends = Array.from({ length: 5 }, (_, i) => ctx.out.send([envelopeFrame(i)], ctx.clock.now() + 100).catch((e: Error) => void failures.push(e)));
  await settled(ctx);
  ctx.clock.advance(99);
  await settled(ctx);
  assert.equal(failures, [], 'a send gave up before its deadline');
  ctx.clock.advance(1);
  await within('every send to settle', Promise.all(sends));
  assert.ok(failures.length >= 1);
  assert.is(failures[0]!.name, 'SendTimeoutError');
});

Flow('probes measure the round-trip time', async (ctx) => {
  await connect(ctx, FLOW_DEFAULTS);
  assert.is(ctx.out.rttMs, null);
  ctx.out.probe();
  await waitFor('the probe answer', () => ctx.out.rttMs !== null);
  assert.type(ctx.out.rttMs, 'number');
  assert.ok(ctx.out.rttMs! >= 0 && ctx.out.rttMs! < 1000);
});

Flow.run();

const Abuse = suite<Ctx>('a sender that breaks the protocol is refused or cut off');
Abuse.after.each((ctx) => {
  ctx.inb?.close();
});

Abuse('frames beyond the granted credit: flow-violation, and the stream is cut', async (ctx) => {
  await connect(ctx, { ...FLOW_DEFAULTS, initialCredit: 10 }, false);
  for (let i = 0; i < 30; i += 1) ctx.raw.send(envelopeFrame(i));
  await waitFor('the cut', () => ctx.inb.closed);
  assert.is(ctx.got.length, 10);
  assert.equal(ctx.rejects, ['flow-violation']);
  assert.ok(ctx.inb.closed);
});

Abuse('a length prefix over 1 MiB: oversized, and the stream is cut', async (ctx) => {
  await connect(ctx, FLOW_DEFAULTS, false);
  const head = new Uint8Array(varintLength(2 << 20));
  writeVarint(2 << 20, head, 0);
  ctx.raw.send(head);
  await waitFor('the cut', () => ctx.inb.closed);
  assert.equal(ctx.rejects, ['oversized']);
  assert.ok(ctx.inb.closed);
});

Abuse('an unknown frame kind is counted and the stream goes on', async (ctx) => {
  await connect(ctx, FLOW_DEFAULTS, false);
  ctx.raw.send(encodeFrame(0x7f, new Uint8Array([1])));
  ctx.raw.send(envelopeFrame(5));
  await waitFor('the envelope after the unknown frame', () => ctx.got.length >= 1);
  assert.equal(ctx.rejects, ['unknown-frame']);
  assert.equal(ctx.got, [5]);
  assert.not.ok(ctx.inb.closed);
});

Abuse('a stream that ends inside a frame: truncated', async (ctx) => {
  await connect(ctx, FLOW_DEFAULTS, false);
  ctx.raw.send(envelopeFrame(1).subarray(0, 3));
  await ctx.raw.close();
  await waitFor('the channel to close', () => ctx.inb.closed);
  assert.equal(ctx.rejects, ['truncated']);
});

Abuse('a flood of RTT probes is cut off', async (ctx) => {
  await connect(ctx, FLOW_DEFAULTS, false);
  for (let i = 0; i < 100; i += 1) ctx.raw.send(encodeFrame(FrameKind.PROBE, new Uint8Array(8)));
  await waitFor('the cut', () => ctx.inb.closed);
  assert.equal(ctx.rejects, ['flow-violation']);
  assert.ok(ctx.inb.closed);
});

Abuse('unknown frames use up credit like envelopes: a flood of them is cut off too', async (ctx) => {
  await connect(ctx, { ...FLOW_DEFAULTS, initialCredit: 5 }, false);
  for (let i = 0; i < 8; i += 1) ctx.raw.send(encodeFrame(0x7f, new Uint8Array([1])));
  await waitFor('the cut', () => ctx.inb.closed);
  assert.equal(ctx.rejects, [...Array<string>(5).fill('unknown-frame'), 'flow-violation']);
});

Abuse.run();

const Bucket = suite('TokenBucket');

Bucket('gives at most the burst at once, then refills at the rate', () => {
  const b = new TokenBucket(1000, 10, 0);
  assert.is(b.take(50, 0), 10);
  assert.is(b.take(5, 0), 0);
  assert.ok(b.waitMs() >= 1);
  assert.is(b.take(50, 5), 5);
  assert.is(b.take(50, 1000), 10);
});

Bucket.run();
