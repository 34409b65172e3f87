/**
 * The steps of an array job's negotiation (machines/array.machine.ts): one bid request for the instances still
 * queued, every provider bidding for as many as it takes at once (`slots`), commits and allocates to the best bids
 * until the queue is covered, then each allocation is kept fed from the queue as its instances end. A failed
 * instance goes back to the queue (to another provider where there is one) until its retries are spent; an
 * instance whose provider was lost goes back without counting. Each index is counted completed once, whatever
 * reports come twice. Pure: time comes with every event.
 */
import { DEFAULT_PREFERENCES, createComparator } from './preferences.ts';
import { ARRAY_DEFAULTS, PERMANENT_DECLINES } from './deal.constants.ts';
import type { InstanceResult } from './deal.wire.ts';
import { count as counted, duration } from './requester.context.ts';
import type { BidDeclinedEvent, BidReceivedEvent, RankedBid } from './requester.messages.ts';
import {
  type ArrayContext,
  type ArrayDeal,
  type ArrayDealView,
  type ArrayDraft,
  type InstanceFailure,
  TICK_MS,
  arrayTimers,
  dealKeyOf,
  liveDeals,
  queueDeadline,
  queuedCount,
  retriesOf,
} from './array.context.ts';

import { StateEdits, dropDeal, feed, feedAll, giveBack, handedHere, putDeal, releaseIfIdle, takeQueued, viewPatch } from './array.instances.ts';

export * from './array.context.ts';

// --- rounds ------------------------------------------------------------------------------------------------------

export function openRound(d: ArrayDraft): ArrayDraft {
  const { dealId, job, timing } = d.ctx.input;
  const nonce = d.ctx.nonce + 1;
  const expiresAt = d.now + timing.bidWindowMs;
  const want = Math.max(1, queuedCount(d.ctx));
  d.set({ nonce, candidates: null, open: false, bids: [], declined: [], lastRoundAt: d.now }).record({ rounds: nonce, bids: [], declines: [] });
  d.emit({ type: 'bid.request.send', dealId, nonce, job, expiresAt, count: want }).schedule('window', expiresAt);
  return d.progress('requesting', `asking for bids for ${counted(want, 'instance')} (round ${nonce})`);
}

export function takeBid(d: ArrayDraft, e: BidReceivedEvent): ArrayDraft {
  return d.set({ bids: [...d.ctx.bids.filter((b) => b.bid.provider !== e.from), { bid: e.bid, rttMs: e.rttMs }] });
}

export function takeDecline(d: ArrayDraft, e: BidDeclinedEvent): ArrayDraft {
  d.set({ declined: [...new Set([...d.ctx.declined, e.from])] });
  return d.record({ declines: [...d.ctx.record.declines.filter((x) => x.provider !== e.from), { provider: e.from, code: e.code, reason: e.reason }].slice(-64) });
}

export function usableBid(c: ArrayContext, e: BidReceivedEvent): boolean {
  const { bid } = e;
  const { constraints } = c.input.job;
  return (
    bid.nonce === c.nonce &&
    bid.dealId === c.input.dealId &&
    bid.provider === e.from &&
    (bid.slots ?? 0) >= 1 &&
    bid.expiresAt > e.now &&
    !constraints.excludePeers.includes(e.from) &&
    (constraints.peers.length === 0 || constraints.peers.includes(e.from)) &&
    !c.deals[dealKeyOf(e.from, bid.nonce)]
  );
}

/** Every candidate answered (and no one beyond them may): the window need not wait longer. */
export function windowComplete(c: ArrayContext): boolean {
  if (!c.candidates || c.open) return false;
  const answered = new Set([...c.bids.map((b) => b.bid.provider), ...c.declined]);
  return c.candidates.every((p) => answered.has(p)) && (c.candidates.length > 0 || c.bids.length > 0);
}

/** Ranks the round's bids and takes the best until the queue is covered; the rest are let go at once. */
export function closeWindow(d: ArrayDraft): ArrayDraft {
  const edits = new StateEdits();
  const { weights, dealId } = d.ctx.input;
  const comparator = createComparator({ provider: DEFAULT_PREFERENCES.provider, requester: { weights } });
  const byProvider = new Map(d.ctx.bids.map((b) => [b.bid.provider, b]));
  const ranked = comparator.rank(d.ctx.bids.map(({ bid, rttMs }) => ({ id: bid.provider, nonce: bid.nonce, price: bid.price, score: bid.score, rttMs })));
  let need = queuedCount(d.ctx);
  // the work is spread: each bid taken covers at most an equal share of the queue, so a small job does not hold
  // every provider's lock and a large one runs on all of them at once
  const usable = ranked.filter(({ candidate: b }) => byProvider.get(b.id)!.bid.expiresAt > d.now).length;
  const share = Math.max(1, Math.ceil(need / Math.max(1, usable)));
  const views: RankedBid[] = [];
  let placed = 0;
  for (const { candidate: b, rank, utility } of ranked) {
    const bid = byProvider.get(b.id)!.bid;
    const view: RankedBid = { provider: b.id, nonce: b.nonce, price: b.price, score: b.score, rttMs: b.rttMs, rank, utility, outcome: 'candidate' };
    if (need <= 0 || queuedCount(d.ctx) === 0 || bid.expiresAt <= d.now) {
      d.emit({ type: 'deal.revert.send', to: b.id, dealId, nonce: b.nonce, reason: bid.expiresAt <= d.now ? 'the bid expired' : 'enough bids were taken for the instances queued' });
      views.push({ ...view, outcome: 'not-taken' });
      continue;
    }
    const slots = Math.max(1, bid.slots ?? 1);
    const n = d.ctx.record.deals.length;
    d.record({ deals: [...d.ctx.record.deals, { provider: b.id, nonce: b.nonce, slots, allocationId: null, state: 'committing', completed: 0, message: `committing (rank ${rank}, ${counted(slots, 'slot')})` }] });
    const deal: ArrayDeal = { provider: b.id, nonce: b.nonce, slots, phase: 'committing', allocationId: null, inflight: [], since: d.now, n };
    // the allocate goes right behind the commit with the first instances (the provider takes them in order)
    const assign = takeQueued(d, edits, b.id, Math.min(slots * (1 + ARRAY_DEFAULTS.prefetchPerSlot), share), n);
    putDeal(d, { ...deal, inflight: assign });
    d.emit({ type: 'deal.commit.send', to: b.id, dealId, nonce: b.nonce }, { type: 'deal.allocate.send', to: b.id, dealId, nonce: b.nonce, assign });
    need -= Math.min(slots, share);
    placed += 1;
    views.push({ ...view, outcome: 'chosen' });
  }
  edits.apply(d);
  d.cancel('window').record({ bids: views });
  d.set({ bids: [], idleRounds: placed > 0 ? 0 : d.ctx.idleRounds + 1 });
  const answers = `${counted(ranked.length, 'bid')}, ${counted(d.ctx.record.declines.length, 'decline')}`;
  if (placed > 0) {
    const slots = liveDeals(d.ctx).reduce((s, x) => s + x.slots, 0);
    return d.progress('running', `round ${d.ctx.nonce}: ${answers}; ${counted(placed, 'provider')} taken, ${counted(slots, 'slot')} in all`);
  }
  return waitForRoom(d, `round ${d.ctx.nonce}: ${answers}; no provider has room now`);
}

/** No room anywhere now: the queue waits (backing off) until its queueTimeout. */
function waitForRoom(d: ArrayDraft, why: string): ArrayDraft {
  const { retryMs, retryMaxMs } = d.ctx.input.timing;
  const delay = Math.min(retryMs * 2 ** Math.max(0, d.ctx.idleRounds - 1), retryMaxMs);
  d.set({ retryAt: d.now + delay }).schedule('retry', d.now + delay);
  if (liveDeals(d.ctx).length > 0) return d.progress('running', why);
  return d.progress('queued', `${why}: ${counted(queuedCount(d.ctx), 'instance')} queued, asking again in ${duration(delay)} (until the queue timeout at ${new Date(queueDeadline(d.ctx)).toISOString()})`);
}

/** Every candidate of the round declined for good, and nothing runs: the job can never be placed. */
export function hopeless(c: ArrayContext): boolean {
  if (!c.candidates || c.candidates.length === 0 || liveDeals(c).length > 0 || c.record.bids.some((b) => b.outcome === 'chosen')) return false;
  const permanent = new Set(c.record.declines.filter((x) => PERMANENT_DECLINES.includes(x.code)).map((x) => x.provider));
  return c.candidates.every((p) => permanent.has(p));
}

/**
 * A round for more room is asked at most this often while deals run: providers that were full when the job was
 * placed may have room now, and more of the queue then runs at once.
 */
export const MORE_ROOM_MS = 5_000;

/**
 * A new round is due: instances wait and the backoff has passed, and either no deal is under way to take them, or
 * the deals under way cannot hold them all (then at most every MORE_ROOM_MS).
 */
export function roundDue(c: ArrayContext, now: number): boolean {
  const queued = queuedCount(c);
  if (queued === 0 || now < c.retryAt) return false;
  const deals = liveDeals(c);
  if (deals.length === 0) return true;
  if (deals.some((x) => x.phase !== 'running')) return false;
  const room = deals.reduce((n, x) => n + x.slots * (1 + ARRAY_DEFAULTS.prefetchPerSlot) - x.inflight.length, 0);
  return queued > room && now >= (c.lastRoundAt ?? 0) + MORE_ROOM_MS;
}

export function queueExpired(c: ArrayContext, now: number): boolean {
  return queuedCount(c) > 0 && liveDeals(c).length === 0 && now >= queueDeadline(c);
}

// --- deals -------------------------------------------------------------------------------------------------------

export function dealOf(c: ArrayContext, e: { readonly from: string; readonly nonce: number; readonly dealId: string }): ArrayDeal | undefined {
  return e.dealId === c.input.dealId ? c.deals[dealKeyOf(e.from, e.nonce)] : undefined;
}

export function committed(d: ArrayDraft, deal: ArrayDeal): ArrayDraft {
  if (deal.phase === 'committing') putDeal(d, { ...deal, phase: 'allocating', since: d.now });
  viewPatch(d, deal.n, { state: 'allocating', message: 'committed; allocating' });
  return d;
}

export function allocated(d: ArrayDraft, deal: ArrayDeal, allocationId: string): ArrayDraft {
  putDeal(d, { ...deal, phase: 'running', allocationId, since: d.now });
  viewPatch(d, deal.n, { state: 'running', allocationId, message: 'running' });
  const allocations = d.ctx.record.allocations.includes(allocationId) ? d.ctx.record.allocations : [...d.ctx.record.allocations, allocationId].slice(-256);
  d.record({ allocations, startedAt: d.ctx.record.startedAt ?? d.now });
  return d;
}

/** The provider refused the commit or allocate, or could not be reached: its instances go back to the queue. */
export function refused(d: ArrayDraft, deal: ArrayDeal, why: string): ArrayDraft {
  const edits = new StateEdits();
  dropDeal(d, edits, deal, 'refused', why);
  feedAll(d, edits);
  edits.apply(d);
  return d.emit({ type: 'log.write', level: 'info', message: `array job ${d.ctx.input.dealId}: ${deal.provider} dropped: ${why}` });
}

/** Instances that ended on a provider: each counted once; failures retried until their retries are spent. */
export function takeResults(d: ArrayDraft, deal: ArrayDeal, results: readonly InstanceResult[], allocationId: string): ArrayDraft {
  const edits = new StateEdits();
  let current: ArrayDeal = deal.phase === 'running' ? { ...deal, since: d.now } : { ...deal, phase: 'running', allocationId, since: d.now };
  if (deal.phase !== 'running') allocated(d, deal, allocationId);
  const inflight = new Set(current.inflight);
  let ranOn: number[] | null = null;
  let duplicates = 0;
  let done = 0;
  const failures: Record<string, InstanceFailure> = {};
  const attempts: Record<string, number> = {};
  const avoid: Record<string, string> = {};
  const back: number[] = [];
  let foreign = 0;
  for (const r of results) {
    const mine = inflight.delete(r.index);
    const state = edits.get(d.ctx, r.index);
    if (!handedHere(d.ctx, r.index, deal.n)) {
      foreign += 1;
      continue;
    }
    if (r.state === 'completed') {
      if (state === 'c' || state === 'f') {
        duplicates += 1;
        continue;
      }
      // a result from a provider it was taken from (lost, then heard from) still counts: it ran to its end
      if (state === 'q') d.set({ requeued: d.ctx.requeued.filter((i) => i !== r.index) });
      edits.set(r.index, 'c');
      ranOn ??= [...d.ctx.record.ranOn];
      ranOn[r.index] = deal.n;
      done += 1;
      continue;
    }
    if (!mine || state !== 'r') continue; // handed to another provider meanwhile: that one's result counts
    if (r.state === 'lost') {
      back.push(r.index);
      continue;
    }
    const tries = (d.ctx.attempts[r.index] ?? 0) + 1;
    attempts[r.index] = tries;
    failures[r.index] = { attempts: tries, exitCode: r.exitCode, message: r.message, deal: deal.n };
    if (tries > retriesOf(d.ctx)) edits.set(r.index, 'f');
    else {
      back.push(r.index);
      avoid[r.index] = deal.provider;
    }
  }
  current = { ...current, inflight: current.inflight.filter((i) => inflight.has(i)) };
  putDeal(d, current);
  if (back.length > 0) giveBack(d, edits, back);
  d.set({ attempts: { ...d.ctx.attempts, ...attempts }, avoid: { ...d.ctx.avoid, ...avoid } });
  const view = d.ctx.record.deals[deal.n]!;
  viewPatch(d, deal.n, { completed: view.completed + done });
  d.record({
    ...(ranOn ? { ranOn } : {}),
    ...(Object.keys(failures).length > 0 ? { failures: { ...d.ctx.record.failures, ...failures } } : {}),
    duplicates: d.ctx.record.duplicates + duplicates,
  });
  if (foreign > 0) d.emit({ type: 'log.write', level: 'warn', message: `array job ${d.ctx.input.dealId}: ${deal.provider} reported ${counted(foreign, 'instance')} it was not given; ignored` });
  feed(d, edits, current);
  feedAll(d, edits);
  for (const deal of liveDeals(d.ctx)) releaseIfIdle(d, edits, deal);
  edits.apply(d);
  return d;
}

/**
 * A report of a deal already dropped (its provider taken as lost, then heard from): what it completed still counts,
 * once; an index it completed that waits in the queue is not run again. Its failures are not counted: its
 * instances were queued again when it was dropped.
 */
export function takeLateResults(d: ArrayDraft, n: number, results: readonly InstanceResult[]): ArrayDraft {
  const edits = new StateEdits();
  let ranOn: number[] | null = null;
  let done = 0;
  let duplicates = 0;
  for (const r of results) {
    if (r.state !== 'completed' || !handedHere(d.ctx, r.index, n)) continue;
    const state = edits.get(d.ctx, r.index);
    if (state === 'c' || state === 'f') {
      duplicates += 1;
      continue;
    }
    if (state === 'q') d.set({ requeued: d.ctx.requeued.filter((i) => i !== r.index) });
    edits.set(r.index, 'c');
    ranOn ??= [...d.ctx.record.ranOn];
    ranOn[r.index] = n;
    done += 1;
  }
  const view = d.ctx.record.deals[n]!;
  viewPatch(d, n, { completed: view.completed + done });
  d.record({ ...(ranOn ? { ranOn } : {}), duplicates: d.ctx.record.duplicates + duplicates });
  edits.apply(d);
  for (const deal of liveDeals(d.ctx)) releaseIfIdle(d, edits, deal);
  edits.apply(d);
  return d;
}

/** The `record.deals` entry of a dropped deal a report comes from; -1 when there is none. */
export function droppedDeal(c: ArrayContext, e: { readonly from: string; readonly nonce: number; readonly dealId: string }): number {
  if (e.dealId !== c.input.dealId || c.deals[dealKeyOf(e.from, e.nonce)]) return -1;
  return c.record.deals.findIndex((v) => v.provider === e.from && v.nonce === e.nonce && v.state !== 'committing');
}

/** An allocation status of a deal: a live one is a heartbeat; an end (it ended or was lost) drops the deal. */
export function dealStatus(d: ArrayDraft, deal: ArrayDeal, state: string, allocationId: string, message: string): ArrayDraft {
  if (state === 'completed' || state === 'failed' || state === 'terminated') {
    const edits = new StateEdits();
    dropDeal(d, edits, deal, state === 'completed' ? 'released' : 'lost', `its allocation ended ${state}: ${message}`);
    feedAll(d, edits);
    edits.apply(d);
    return d;
  }
  if (deal.phase !== 'running') return allocated(d, deal, allocationId);
  putDeal(d, { ...deal, since: d.now });
  return d;
}

/** Deals whose step took too long, or whose provider went silent: dropped, their instances queued again. */
export function checkDeals(d: ArrayDraft): ArrayDraft {
  const { commitTimeoutMs, allocateTimeoutMs, lostAfterMs } = d.ctx.input.timing;
  const edits = new StateEdits();
  for (const deal of liveDeals(d.ctx)) {
    const limit = deal.phase === 'running' ? lostAfterMs : commitTimeoutMs + allocateTimeoutMs;
    if (d.now - deal.since < limit) continue;
    const why = deal.phase === 'running' ? `no word from it for ${duration(d.now - deal.since)}` : `no answer to the ${deal.phase === 'committing' ? 'commit' : 'allocate'} in ${duration(d.now - deal.since)}`;
    d.emit({ type: 'deal.cancel.send', to: deal.provider, dealId: d.ctx.input.dealId, nonce: deal.nonce });
    dropDeal(d, edits, deal, 'lost', why);
    d.emit({ type: 'log.write', level: 'warn', message: `array job ${d.ctx.input.dealId}: provider ${deal.provider} lost (${why}); its ${counted(deal.inflight.length, 'instance')} queued again` });
  }
  feedAll(d, edits);
  edits.apply(d);
  return d;
}

/** Keeps the tick going while any deal is under way. */
export function tick(d: ArrayDraft): ArrayDraft {
  if (liveDeals(d.ctx).length > 0 && !Object.hasOwn(d.ctx.timers, 'tick')) d.schedule('tick', d.now + TICK_MS);
  return d;
}

/** A recovered requester: deals still negotiating are let go; running ones get their instances again. */
export function recover(d: ArrayDraft): ArrayDraft {
  const edits = new StateEdits();
  for (const i of arrayTimers.rearm(d.ctx.timers)) d.emit(i);
  for (const deal of liveDeals(d.ctx)) {
    if (deal.phase !== 'running') {
      d.emit({ type: 'deal.revert.send', to: deal.provider, dealId: d.ctx.input.dealId, nonce: deal.nonce, reason: 'the requester restarted before the allocation' });
      dropDeal(d, edits, deal, 'refused', 'the requester restarted before it was allocated');
      continue;
    }
    // the provider runs what it has again only if it lost it; its silence while we were down is not its fault
    putDeal(d, { ...deal, since: d.now });
    if (deal.inflight.length > 0) d.emit({ type: 'batch.assign.send', to: deal.provider, dealId: d.ctx.input.dealId, nonce: deal.nonce, indexes: deal.inflight });
  }
  edits.apply(d);
  return d.set({ retryAt: 0 });
}

// --- the end -------------------------------------------------------------------------------------------------------


/** Stops every deal still under way (the job ended): cancelled on its provider, its resources freed. */
function stopDeals(d: ArrayDraft, state: ArrayDealView['state'], why: string): void {
  const edits = new StateEdits();
  for (const deal of liveDeals(d.ctx)) {
    if (deal.phase === 'committing') d.emit({ type: 'deal.revert.send', to: deal.provider, dealId: d.ctx.input.dealId, nonce: deal.nonce, reason: why });
    else d.emit({ type: 'deal.cancel.send', to: deal.provider, dealId: d.ctx.input.dealId, nonce: deal.nonce });
    dropDeal(d, edits, deal, state, why);
  }
  edits.apply(d);
}

export function end(d: ArrayDraft, state: 'completed' | 'failed' | 'cancelled', message: string): ArrayDraft {
  stopDeals(d, 'cancelled', `the job ${state}`);
  d.timers(arrayTimers.cancelAll(d.ctx.timers));
  const firstFailed = state === 'failed' ? Object.entries(d.ctx.record.failures).find(([i]) => d.ctx.record.instanceStates[Number(i)] === 'f') : undefined;
  d.progress(state, message).record({ endedAt: d.now, exitCode: state === 'completed' ? 0 : (firstFailed?.[1].exitCode ?? null) });
  d.emit({ type: 'job.ended', record: d.ctx.record });
  return d.reply();
}

export function failedMessage(c: ArrayContext): string {
  const failed = Object.entries(c.record.failures).filter(([i]) => c.record.instanceStates[Number(i)] === 'f');
  const [i, f] = failed[0] ?? ['?', { attempts: 0, message: 'unknown' }];
  return `instance ${i} failed ${counted(f.attempts, 'time')} (its retries are spent): ${f.message}; ${c.record.instances.completed} of ${c.record.count} instances completed`;
}

export function queueTimeoutMessage(c: ArrayContext): string {
  const reasons = c.record.declines.map((x) => `${x.provider}: ${x.reason}`).slice(0, 5);
  return `${counted(queuedCount(c), 'instance')} found no room before the queue timeout (${c.record.instances.completed} of ${c.record.count} completed)${reasons.length > 0 ? `; last declines: ${reasons.join('; ')}` : ''}`;
}

export function hopelessMessage(c: ArrayContext): string {
  return `no provider can take this job: ${c.record.declines.map((x) => `${x.provider}: ${x.reason}`).join('; ')}`;
}
