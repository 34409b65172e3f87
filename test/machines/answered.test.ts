// The Node's table of answered bid requests (machines/answered.ts): lookups, pruning, the cap and what it evicts,
// cheap at any size, and exact across a snapshot (JSON) and a replay although it is changed in place.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { HostedActor } from '../../actors/hosted-actor.ts';
import { nodeActorKind } from '../../actors/node.actor.ts';
import { type Answered, answeredUntil, emptyAnswered, pruneAnswered, rememberAnswered } from '../../machines/answered.ts';
import type { BidRequestEvent } from '../../machines/bidding.messages.ts';
import type { NodeContext } from '../../machines/node.machine.ts';
import type { NodeEvent } from '../../machines/node.messages.ts';
import { BENCH, HOST, OFFER, T0, res } from '../fixtures/node-fixtures.ts';

const SELF = '12D3KooWProviderAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const peer = (i: number) => `12D3KooWRequester${String(i).padStart(28, '0')}`;
const MiB = 1024 ** 2;

function request(i: number, now: number, expiresAt: number, excluded = true): BidRequestEvent {
  return {
    type: 'bid.request',
    dealId: `d${i}`,
    nonce: 1,
    from: peer(i),
    now,
    self: SELF,
    expiresAt,
    job: {
      executor: 'wasm',
      name: 'x',
      resources: res(0.01, MiB),
      timeoutMs: 10_000,
      constraints: { peers: [], excludePeers: excluded ? [SELF] : [] },
      wasm: { module: { sha256: 'a'.repeat(64), size: 1 }, args: [], env: {} },
    },
  };
}

const keys = (a: Answered) => Object.keys(a.until).sort();

// ---------------------------------------------------------------------------------------------------------------

const Table = suite('answered table: remember, look up, forget');

Table('a remembered key is found until its time, then pruned; pruning nothing keeps the same version', () => {
  let a = emptyAnswered();
  a = rememberAnswered(a, 'r/x:1', T0 + 100, T0);
  a = rememberAnswered(a, 'r/y:1', T0 + 50, T0);
  assert.is(answeredUntil(a, 'r/x:1'), T0 + 100);
  assert.is(answeredUntil(a, 'r/nope:1'), undefined);
  assert.is(a.size, 2);
  assert.is(pruneAnswered(a, T0 + 49), a, 'nothing due: the same version');
  const b = pruneAnswered(a, T0 + 50);
  assert.equal(keys(b), ['r/x:1']);
  assert.is(b.size, 1);
  assert.is(pruneAnswered(b, T0 + 100).size, 0);
});

Table('recording counts every request and names the latest (what the indexes read), even one evicted at once', () => {
  let a = emptyAnswered(2);
  a = rememberAnswered(a, 'r/a:1', T0 + 10, T0);
  a = rememberAnswered(a, 'r/b:1', T0 + 20, T0);
  a = rememberAnswered(a, 'r/c:1', T0 + 5, T0);
  assert.is(a.recorded, 3);
  assert.is(a.last, 'r/c:1');
  assert.equal(keys(a), ['r/a:1', 'r/b:1'], 'the new entry was due soonest of all: it went');
});

Table('past the cap the entries due soonest go, ties by key, whatever order they came in', () => {
  let a = emptyAnswered(3);
  for (const [k, t] of [['r/e:1', 50], ['r/b:1', 10], ['r/d:1', 40], ['r/a:1', 10], ['r/c:1', 30]] as const) a = rememberAnswered(a, k, T0 + t, T0);
  assert.equal(keys(a), ['r/c:1', 'r/d:1', 'r/e:1']);
  assert.is(a.size, 3);
  a = rememberAnswered(a, 'r/f:1', T0 + 35, T0);
  assert.equal(keys(a), ['r/d:1', 'r/e:1', 'r/f:1']);
});

Table('a key remembered again keeps its newest time; its old time neither evicts nor prunes it', () => {
  let a = emptyAnswered(2);
  a = rememberAnswered(a, 'r/a:1', T0 + 10, T0);
  a = rememberAnswered(a, 'r/a:1', T0 + 90, T0);
  assert.is(a.size, 1);
  a = pruneAnswered(a, T0 + 20);
  assert.is(answeredUntil(a, 'r/a:1'), T0 + 90);
  a = rememberAnswered(a, 'r/b:1', T0 + 50, T0 + 20);
  a = rememberAnswered(a, 'r/c:1', T0 + 60, T0 + 20);
  assert.equal(keys(a), ['r/a:1', 'r/c:1'], 'b (due at 50) went, not a (its stale 10 is gone)');
});

Table('a table from JSON (a restored snapshot) is adopted: it works, and does not change the object it came from', () => {
  let live = emptyAnswered(3);
  for (let i = 0; i < 3; i += 1) live = rememberAnswered(live, `r/${i}:1`, T0 + 10 * (i + 1), T0);
  const json = JSON.parse(JSON.stringify(live)) as Answered;
  const frozen = JSON.stringify(json);
  const a = rememberAnswered(json, 'r/new:1', T0 + 25, T0);
  const b = rememberAnswered(live, 'r/new:1', T0 + 25, T0);
  assert.equal(JSON.parse(JSON.stringify(a)), JSON.parse(JSON.stringify(b)), 'the restored table evicts exactly as the live one');
  assert.equal(keys(a), ['r/1:1', 'r/2:1', 'r/new:1']);
  assert.is(JSON.stringify(json), frozen, 'the snapshot object it was restored from is untouched');
});

Table('a cap is a whole number >= 1', () => {
  for (const cap of [0, -1, 1.5, Number.NaN]) assert.throws(() => emptyAnswered(cap), /cap/);
});

Table.run();

// ---------------------------------------------------------------------------------------------------------------

const Cost = suite('answered table: a decision costs about the same with 0 or 10k requests remembered');

/** ms per bid.request for `n` more requests to a Node that remembers `prefill` requests. */
function msPerRequest(prefill: number, n: number): number {
  const a = new HostedActor('node', nodeActorKind, { input: { maxAnswered: prefill + n + 10 } });
  try {
    a.deliver([{ type: 'node.onboard', offer: OFFER, host: HOST, benchmark: BENCH } satisfies NodeEvent]);
    const fill: BidRequestEvent[] = [];
    for (let i = 0; i < prefill; i += 1) fill.push(request(i, T0, T0 + 200_000));
    for (let i = 0; i < fill.length; i += 1000) a.deliver(fill.slice(i, i + 1000));
    const batch: BidRequestEvent[] = [];
    for (let i = 0; i < n; i += 1) batch.push(request(prefill + i, T0 + 1 + i, T0 + 100_000));
    const t0 = performance.now();
    const r = a.deliver(batch);
    const ms = performance.now() - t0;
    assert.is(r.processed, n);
    assert.is((a.view().context as { state: string }).state, 'registered');
    return ms / n;
  } finally {
    a.stop();
  }
}

Cost('2,000 decisions after 10k remembered take at most 3x as long as after none (copying the table made it ~50x)', () => {
  msPerRequest(0, 500); // warm-up
  const empty = Math.min(msPerRequest(0, 2000), msPerRequest(0, 2000));
  const full = Math.min(msPerRequest(10_000, 2000), msPerRequest(10_000, 2000));
  assert.ok(full < 3 * empty + 0.02, `with 10k remembered ${full.toFixed(4)} ms a request, with none ${empty.toFixed(4)} ms`);
});

Cost.run();

// ---------------------------------------------------------------------------------------------------------------

const Exact = suite('answered table: snapshots and replay stay exact although it is changed in place');

const onboard: NodeEvent = { type: 'node.onboard', offer: OFFER, host: HOST, benchmark: BENCH };

/** Requests that overflow a cap of 50 and expire in a mixed order, some repeated, some bid on. */
function traffic(from: number, count: number): NodeEvent[] {
  const out: NodeEvent[] = [];
  for (let i = from; i < from + count; i += 1) {
    const now = T0 + i * 10;
    out.push(request(i, now, now + 1000 + ((i * 37) % 3000), i % 5 !== 0));
    if (i % 7 === 0) out.push(request(i - 3, now, now + 300));
    if (i % 5 === 0) out.push({ type: 'ledger.unlock', id: `d${i}.1@${peer(i)}` });
  }
  return out;
}

/** The actor's persisted snapshot, serialised as the runtime does. */
const contextOf = (a: HostedActor) => JSON.parse(JSON.stringify(a.persisted(0).snapshot)) as { context: NodeContext };

Exact('a snapshot taken mid-way plus the events after it rebuilds exactly the live state (evictions included)', () => {
  const live = new HostedActor('node', nodeActorKind, { input: { maxAnswered: 50 } });
  const first = [onboard, ...traffic(0, 120)];
  const rest = traffic(120, 200);
  try {
    live.deliver(first);
    // the snapshot is serialised at once, as the runtime does (postMessage in the actor's worker)
    const snapshot = JSON.parse(JSON.stringify(live.persisted(first.length)));
    live.deliver(rest);
    const replayed = new HostedActor('node', nodeActorKind, { snapshot, replay: rest });
    try {
      const a = contextOf(live).context;
      const b = contextOf(replayed).context;
      assert.is(a.answered.size, 50, 'the cap bound the live table');
      assert.equal(b.answered, a.answered);
      assert.equal(b.ledger, a.ledger);
      assert.equal(b, a);
    } finally {
      replayed.stop();
    }
    // and from the start, with no snapshot at all
    const fromScratch = new HostedActor('node', nodeActorKind, { input: { maxAnswered: 50 }, replay: [...first, ...rest] });
    try {
      assert.equal(contextOf(fromScratch).context, contextOf(live).context);
    } finally {
      fromScratch.stop();
    }
  } finally {
    live.stop();
  }
});

Exact('two actors restored from one snapshot object do not share their tables', () => {
  const live = new HostedActor('node', nodeActorKind, { input: { maxAnswered: 50 } });
  try {
    live.deliver([onboard, ...traffic(0, 30)]);
    const snapshot = JSON.parse(JSON.stringify(live.persisted(1)));
    const a = new HostedActor('node', nodeActorKind, { snapshot });
    const b = new HostedActor('node', nodeActorKind, { snapshot });
    try {
      a.deliver(traffic(30, 40));
      const before = contextOf(live).context.answered;
      assert.equal(contextOf(b).context.answered, before, 'b did not see what a took');
      b.deliver(traffic(30, 40));
      assert.equal(contextOf(b).context, contextOf(a).context);
    } finally {
      a.stop();
      b.stop();
    }
  } finally {
    live.stop();
  }
});

Exact('each answered request gives one BidRequestReceived fact, a repeat none', () => {
  const a = new HostedActor('node', nodeActorKind, { input: {} });
  try {
    a.deliver([onboard]);
    const r = a.deliver([request(1, T0, T0 + 1000), request(1, T0 + 1, T0 + 1000), request(2, T0 + 2, T0 + 1000, false)]);
    const got = (r.facts ?? []).filter((f) => f.fact.type === 'BidRequestReceived');
    assert.equal(got, [
      { index: 0, fact: { type: 'BidRequestReceived', dealId: 'd1', nonce: 1 } },
      { index: 2, fact: { type: 'BidRequestReceived', dealId: 'd2', nonce: 1 } },
    ]);
  } finally {
    a.stop();
  }
});

Exact.run();

