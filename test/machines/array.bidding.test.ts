// A provider bidding for an array job (machines/bidding.ts `answer`/`slotsFor`): as many instances as fit at once,
// locked together; and the array fields of a job (machines/job.ts `arrayProblems`).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { BidRequestEvent } from '../../machines/bidding.messages.ts';
import { type BidDecision, type BidState, decideBid, emptyAnswered } from '../../machines/bidding.ts';
import type { Resources } from '../../machines/capability.ts';
import { ARRAY_DEFAULTS } from '../../machines/deal.constants.ts';
import { dealKey } from '../../machines/deal.ids.ts';
import { type JobSpec, validateJob } from '../../machines/job.ts';
import { emptyLedger } from '../../machines/ledger.ts';
import { type Offer, resolveOffer } from '../../machines/onboarding.ts';
import { DEFAULT_PREFERENCES, type Preferences } from '../../machines/preferences.ts';
import type { ProviderInput } from '../../machines/provider.messages.ts';
import { PROCESS_JOB } from '../fixtures/deal-fixtures.ts';
import { BENCH, GiB, T0, res } from '../fixtures/node-fixtures.ts';

const SELF = '12D3KooWProviderAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const REQ = '12D3KooWRequesterBBBBBBBBBBBBBBBBBBBBBBBBBBBB';
const MiB = 2 ** 20;

/** 1 cpu free, 4 GiB, 50 GiB: the node of most cases. */
const ONE_CPU: Offer = { cpu: 1, memory: 4 * GiB, disk: 50 * GiB, executors: ['wasm'] };

function stateOf(offer: Offer = ONE_CPU, preferences: Preferences = DEFAULT_PREFERENCES): BidState {
  const bench = { ...BENCH, cores: Math.max(BENCH.cores, offer.cpu ?? 1) };
  const capability = resolveOffer(offer, bench);
  return { registered: true, registration: { capability, benchmark: bench, offer }, ledger: emptyLedger(capability), preferences, answered: emptyAnswered() };
}
function wasmJob(resources: Resources, extra: Partial<JobSpec> = {}): JobSpec {
  return {
    executor: 'wasm',
    name: 'many',
    resources,
    timeoutMs: 60_000,
    constraints: { peers: [], excludePeers: [] },
    wasm: { module: { sha256: 'a'.repeat(64), size: 1000 }, args: [], env: {} },
    ...extra,
  } as JobSpec;
}
/** 0.01 cpu and 1 MiB an instance: 100 of them fill 1 cpu. */
const TINY = res(0.01, MiB);
function request(job: JobSpec, extra: Partial<BidRequestEvent> = {}): BidRequestEvent {
  return { type: 'bid.request', dealId: 'arr-1', nonce: 1, job, expiresAt: T0 + 5000, from: REQ, now: T0, self: SELF, ...extra };
}
function theBid(d: BidDecision): ProviderInput {
  const open = d.intents.filter((i) => i.type === 'bid.open');
  assert.is(open.length, 1, `expected a bid, got ${JSON.stringify(d.intents)}`);
  return (open[0] as Extract<(typeof d.intents)[number], { type: 'bid.open' }>).input;
}
const test = suite('array bid: a provider bids for as many instances as fit');
const slotsOf = (s: BidState, job: JobSpec, extra: Partial<BidRequestEvent> = {}) => theBid(decideBid(s, request(job, extra))).bid.slots;

test('array bid: 1 cpu free and 0.01-cpu instances, count 1000: slots = 100', () => {
  assert.is(slotsOf(stateOf(), wasmJob(TINY, { count: 1000 })), 100);
});

test('array bid: count 100 exactly: slots = 100', () => {
  assert.is(slotsOf(stateOf(), wasmJob(TINY, { count: 100 })), 100);
});

test('array bid: capped by the job count', () => {
  assert.is(slotsOf(stateOf(), wasmJob(TINY, { count: 30 })), 30);
});

test('array bid: capped by ARRAY_DEFAULTS.maxSlotsPerBid on a node with room for more', () => {
  const big = stateOf({ cpu: 8, memory: 4 * GiB, disk: 50 * GiB, executors: ['wasm'] });
  assert.is(slotsOf(big, wasmJob(TINY, { count: 100_000 })), ARRAY_DEFAULTS.maxSlotsPerBid);
  assert.is(ARRAY_DEFAULTS.maxSlotsPerBid, 256);
});

test("array bid: capped by the request's count (the instances this round wants)", () => {
  assert.is(slotsOf(stateOf(), wasmJob(TINY, { count: 1000 }), { count: 7 }), 7);
  // a request asking for more than the job has is capped by the job
  assert.is(slotsOf(stateOf(), wasmJob(TINY, { count: 20 }), { count: 500 }), 20);
});

test('array bid: capped by maxShare of the node for one requester', () => {
  const shared = stateOf(ONE_CPU, { ...DEFAULT_PREFERENCES, provider: { ...DEFAULT_PREFERENCES.provider, maxShare: 0.5 } });
  assert.is(slotsOf(shared, wasmJob(TINY, { count: 1000 })), 50);
});

test('array bid: capped by memory when memory is the tighter resource', () => {
  // 64 MiB an instance, 4 GiB: 64 fit; 0.01 cpu: 100 would
  assert.is(slotsOf(stateOf(), wasmJob(res(0.01, 64 * MiB), { count: 1000 })), 64);
});

test('array bid: the lock and the bid hold slots x the stepped per-instance resources', () => {
  const s = stateOf();
  // 0.004 cpu steps up to 0.01; 1000 bytes to 1 MiB; disk 1.5 MiB to 2 MiB
  const d = decideBid(s, request(wasmJob({ cpu: 0.004, memory: 1000, disk: 1.5 * MiB, gpus: 0 }, { count: 40 })));
  const input = theBid(d);
  const want: Resources = { cpu: 0.4, memory: 40 * MiB, disk: 80 * MiB, gpus: 0 };
  assert.is(input.bid.slots, 40);
  assert.equal(input.bid.resources, want);
  const lock = d.ledger!.locks[dealKey('arr-1', 1, REQ)]!;
  assert.equal(lock.resources, want);
});

test('array bid: 100 tiny instances lock exactly the 1 cpu free', () => {
  const d = decideBid(stateOf(), request(wasmJob(TINY, { count: 1000 })));
  assert.equal(d.ledger!.locks[dealKey('arr-1', 1, REQ)]!.resources, { cpu: 1, memory: 100 * MiB, disk: 0, gpus: 0 });
});

test('array bid: a job without count gets no slots and locks one instance', () => {
  const d = decideBid(stateOf(), request(wasmJob(TINY)));
  const input = theBid(d);
  assert.not.ok('slots' in input.bid);
  assert.equal(input.bid.resources, { cpu: 0.01, memory: MiB, disk: 0, gpus: 0 });
  assert.equal(d.ledger!.locks[dealKey('arr-1', 1, REQ)]!.resources, { cpu: 0.01, memory: MiB, disk: 0, gpus: 0 });
});

test('array bid: a count of 1 bids one slot', () => {
  assert.is(slotsOf(stateOf(), wasmJob(TINY, { count: 1 })), 1);
});

test.run();

// ---------------------------------------------------------------------------------------------------------------

const fields = (job: JobSpec) => validateJob(job).map((p) => p.field);
const PART = { ensemble: 'ens', name: 'kv', type: 'service', ports: [], restart: 'always', dependsOn: [], maxRestarts: { count: 5, withinMs: 60_000 } } as const;

const V = suite('array job validation: count, retries, queueTimeout');

V('count 1 and 100000 are fine', () => {
  assert.equal(validateJob({ ...PROCESS_JOB, count: 1 }), []);
  assert.equal(validateJob({ ...PROCESS_JOB, count: 100_000, retries: 10, queueTimeoutMs: 0 }), []);
});

for (const count of [0, 100_001, 1.5, -3, Number.NaN]) {
  V(`count ${count} is a problem naming count`, () => {
    const problems = validateJob({ ...PROCESS_JOB, count });
    assert.equal(problems.map((p) => p.field), ['count']);
    assert.match(problems[0]!.message, 'is not a whole number of instances from 1 to 100000');
  });
}

V('retries without count is a problem naming retries', () => {
  const problems = validateJob({ ...PROCESS_JOB, retries: 2 });
  assert.equal(problems.map((p) => p.field), ['retries']);
  assert.match(problems[0]!.message, 'add count');
});

V('retries outside 0..10 is a problem', () => {
  assert.equal(fields({ ...PROCESS_JOB, count: 5, retries: 11 }), ['retries']);
  assert.equal(fields({ ...PROCESS_JOB, count: 5, retries: 1.5 }), ['retries']);
  assert.equal(fields({ ...PROCESS_JOB, count: 5, retries: 0 }), []);
});

V('count on an ensemble part is a problem naming count', () => {
  const problems = validateJob({ ...PROCESS_JOB, count: 3, part: PART });
  assert.equal(problems.map((p) => p.field), ['count']);
  assert.match(problems[0]!.message, 'ensemble part');
  assert.equal(validateJob({ ...PROCESS_JOB, part: PART }), []);
});

V('queueTimeout outside 0..7 days is a problem', () => {
  assert.equal(fields({ ...PROCESS_JOB, count: 2, queueTimeoutMs: -1 }), ['queueTimeout']);
  assert.equal(fields({ ...PROCESS_JOB, count: 2, queueTimeoutMs: 8 * 24 * 3600 * 1000 }), ['queueTimeout']);
});

V.run();
