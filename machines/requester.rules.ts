/**
 * The steps of the requester negotiation, as pure functions over a Draft (requester.context.ts): which bids count,
 * when a window is complete, which bid comes next, and what each step records and emits. The machine
 * (requester.machine.ts) decides which step runs in which state.
 */
import { PERMANENT_DECLINES } from './deal.constants.ts';
import type { Bid } from './deal.wire.ts';
import type { JobSpec } from './job.ts';
import { type Draft, type RequesterContext, count, duration, requesterTimers } from './requester.context.ts';
import { DEFAULT_PREFERENCES, createComparator } from './preferences.ts';
import type { AllocationStatusEvent, BidDeclinedEvent, BidReceivedEvent, JobState, RankedBid, RequesterEvent } from './requester.messages.ts';

/** Where a provider can fail an attempt: the commit, the allocate, the start, or while the job runs. */
export type Phase = 'commit' | 'allocate' | 'start' | 'run' | 'hold';

// --- predicates ------------------------------------------------------------------------------------------------

function allowedPeer(job: JobSpec, peer: string): boolean {
  const { peers, excludePeers } = job.constraints;
  return !excludePeers.includes(peer) && (peers.length === 0 || peers.includes(peer));
}

function hasBid(c: RequesterContext, provider: string): boolean {
  return c.bids.some((b) => b.bid.provider === provider);
}

/** A bid the open window takes: this round, signed by its provider, from a peer the job allows, the first from it. */
export function usableBid(c: RequesterContext, e: BidReceivedEvent): boolean {
  const { bid } = e;
  return bid.dealId === c.input.dealId && bid.nonce === c.nonce && e.from === bid.provider && allowedPeer(c.input.job, e.from) && !hasBid(c, e.from);
}

/** Why a provider's own bid cannot be taken; null for a bid to ignore (forged, unknown round, or a repeat). */
export function refusal(c: RequesterContext, e: BidReceivedEvent): string | null {
  const { bid } = e;
  if (bid.dealId !== c.input.dealId || e.from !== bid.provider || bid.nonce < 1 || bid.nonce > c.nonce) return null;
  // a repeat of a bid we hold: a revert would drop the lock of the bid itself
  if (bid.nonce === c.nonce && hasBid(c, e.from)) return null;
  if (c.input.job.constraints.excludePeers.includes(e.from)) return 'not taken: the job excludes this peer';
  if (!allowedPeer(c.input.job, e.from)) return 'not taken: the job asks for other peers';
  return 'not taken: the bid window had closed';
}

export function countsAsDecline(c: RequesterContext, e: BidDeclinedEvent): boolean {
  return e.dealId === c.input.dealId && e.nonce === c.nonce && !c.record.declines.some((d) => d.provider === e.from);
}

/**
 * Enough bids arrived, or every peer that could bid has answered. In an open round (the request went beyond
 * the candidates) that takes a bid too: with none in, farther peers may still bid before the window ends.
 */
export function windowComplete(c: RequesterContext): boolean {
  if (c.bids.length >= c.input.timing.enoughBids) return true;
  if (c.candidates === null) return false;
  if (c.open === true && c.bids.length === 0) return false;
  const answered = new Set([...c.bids.map((b) => b.bid.provider), ...c.record.declines.map((d) => d.provider)]);
  // this node does not answer its own request, and a peer the job refuses cannot bid
  const expected = c.candidates.filter((p) => p !== c.input.self && allowedPeer(c.input.job, p));
  return expected.every((p) => answered.has(p));
}

/** The best bid not tried yet whose provider still holds it. */
export function nextCandidate(c: RequesterContext, now: number): { ranked: RankedBid; bid: Bid } | null {
  for (const ranked of c.record.bids) {
    if (ranked.outcome !== 'candidate') continue;
    const bid = c.bids.find((b) => b.bid.provider === ranked.provider)?.bid;
    if (bid && bid.expiresAt > now) return { ranked, bid };
  }
  return null;
}

/** A message about the current deal from the chosen provider. */
export function fromChosen(c: RequesterContext, e: { from: string; dealId: string; nonce: number }): boolean {
  return c.chosen !== null && e.from === c.chosen.provider && e.dealId === c.input.dealId && e.nonce === c.nonce;
}

/** A status of the current allocation. */
export function ownStatus(c: RequesterContext, e: AllocationStatusEvent): boolean {
  return fromChosen(c, e) && e.allocationId === c.record.allocationId;
}

/** Bids whose providers still hold resources for us. */
function heldBids(c: RequesterContext): Bid[] {
  const done = new Set(c.record.bids.filter((b) => b.outcome === 'failed' || b.outcome === 'not-taken').map((b) => b.provider));
  return c.bids.map((b) => b.bid).filter((b) => !done.has(b.provider));
}

// --- bidding ---------------------------------------------------------------------------------------------------

export function openRound(d: Draft): Draft {
  const { dealId, job, timing } = d.ctx.input;
  const nonce = d.ctx.nonce + 1;
  const expiresAt = d.now + timing.bidWindowMs;
  d.set({ nonce, candidates: null, open: false, reach: null, bids: [], chosen: null }).record({ rounds: nonce, bids: [], declines: [], ...(d.ctx.record.declinesNotListed ? { declinesNotListed: 0 } : {}), provider: null, allocationId: null });
  d.emit({ type: 'bid.request.send', dealId, nonce, job, expiresAt }).schedule('window', expiresAt);
  return d.progress('requesting', nonce === 1 ? 'asking for bids' : `asking for bids again (round ${nonce})`);
}

export function takeBid(d: Draft, e: BidReceivedEvent): Draft {
  return d.set({ bids: [...d.ctx.bids, { bid: e.bid, rttMs: e.rttMs }] }).record({});
}

/** Declines a job's record lists per round: every candidate's, and others while fewer than this are listed. */
export const LISTED_DECLINES = 32;

export function takeDecline(d: Draft, e: BidDeclinedEvent): Draft {
  const listed = d.ctx.record.declines;
  const candidate = d.ctx.candidates?.includes(e.from) ?? true;
  if (!candidate && listed.length >= LISTED_DECLINES) return d.record({ declinesNotListed: (d.ctx.record.declinesNotListed ?? 0) + 1 });
  return d.record({ declines: [...listed, { provider: e.from, code: e.code, reason: e.reason }] });
}

/** Declines heard in the latest round, listed or not. */
export function declineCount(c: RequesterContext): number {
  return c.record.declines.length + (c.record.declinesNotListed ?? 0);
}

export function closeWindow(d: Draft): Draft {
  const { weights } = d.ctx.input;
  const comparator = createComparator({ provider: DEFAULT_PREFERENCES.provider, requester: { weights } });
  const ranked = comparator.rank(d.ctx.bids.map(({ bid, rttMs }) => ({ id: bid.provider, nonce: bid.nonce, price: bid.price, score: bid.score, rttMs })));
  const bids = spreadOver(ranked.map(({ candidate: b, rank, utility }): RankedBid => ({ provider: b.id, nonce: b.nonce, price: b.price, score: b.score, rttMs: b.rttMs, rank, utility, outcome: 'candidate' })), d.ctx.input.spread);
  d.cancel('window').record({ bids });
  const answers = `${count(bids.length, 'bid')}, ${count(declineCount(d.ctx), 'decline')}`;
  const best = bids[0];
  const silence = silentRound(d.ctx);
  const summary = best
    ? `${answers}; best: ${best.provider} (rank 1, price ${best.price}, score ${best.score}, rtt ${best.rttMs} ms)`
    : noOneToAsk(d.ctx)
      ? `${answers}: no peer to ask (no DMS peer is connected, or the job's peers are not reachable; see \`peers\`)`
      : silence
        ? `${answers}: ${silence}`
        : answers;
  const message = `bid window of round ${d.ctx.nonce} closed: ${summary}`;
  if (silence) {
    // at warn once for each reach the job sees (more peers, fewer): every round of an unchanged one at info
    const reach = d.ctx.reach ?? null;
    const key = JSON.stringify(reach);
    d.emit({ type: 'log.write', level: key === d.ctx.silenceWarned ? 'info' : 'warn', message: `job ${d.ctx.input.dealId}: ${message}`, data: { job: d.ctx.input.dealId, round: d.ctx.nonce, ...(reach ?? {}) } });
    d.set({ silenceWarned: key });
  }
  return d.progress('requesting', message);
}

/** How close to the best a bid's utility must be (relative) for a part to prefer it to spread its ensemble. */
export const SPREAD_TOLERANCE = 0.1;

/** For a part (`spread` set): the bids near the best rotated by its place, ranks renumbered; else as ranked. */
export function spreadOver(bids: readonly RankedBid[], spread: number | undefined): readonly RankedBid[] {
  const best = bids[0];
  if (spread === undefined || !best || bids.length < 2) return bids;
  const floor = best.utility - Math.abs(best.utility) * SPREAD_TOLERANCE;
  const near = bids.filter((b) => b.utility >= floor).length;
  if (near < 2) return bids;
  const k = spread % near;
  const order = [...bids.slice(k, near), ...bids.slice(0, k), ...bids.slice(near)];
  return order.map((b, i) => ({ ...b, rank: i + 1 }));
}

/** The round's request went to no one: no candidate, and no broadcast beyond them. */
function noOneToAsk(c: RequesterContext): boolean {
  return c.candidates !== null && c.candidates.length === 0 && c.open !== true;
}

/**
 * Why the round reached peers (or no one says otherwise) yet got no bid and no decline, with how far its request
 * went; null for a round that was answered, or had no one to ask.
 */
export function silentRound(c: RequesterContext): string | null {
  if (noOneToAsk(c) || c.bids.length > 0 || c.record.declines.length > 0) return null;
  const reach = c.reach;
  if (!reach) return `the request reached no one (${count(c.candidates?.length ?? 0, 'peer')} asked)`;
  const went = `${reach.connected} DMS ${reach.connected === 1 ? 'peer' : 'peers'} connected, ${reach.subscribed} subscribed to the bid topic`;
  if (reach.subscribed === 0) return `the request reached no one: ${went}; peers subscribe within seconds of connecting, so ask again shortly, or check \`peers\``;
  return `the request reached no one: ${went}, and none answered; are they onboarded (\`info\` on a provider; its messages.broadcastIn counts bid requests that arrived)?`;
}

/** Bids whose hold ran out before their turn: their providers already let go. */
export function pruneExpired(d: Draft): Draft {
  const expired = d.ctx.record.bids.filter((r) => r.outcome === 'candidate' && !d.ctx.bids.some((b) => b.bid.provider === r.provider && b.bid.expiresAt > d.now));
  for (const r of expired) d.mark(r.provider, 'not-taken', 'its hold expired before it could be tried');
  return d;
}

export function scheduleRetry(d: Draft): Draft {
  const { retryMs, retryMaxMs } = d.ctx.input.timing;
  const rounds = d.ctx.record.rounds;
  const delay = Math.min(retryMs * 2 ** Math.max(0, rounds - 1), retryMaxMs);
  const silence = silentRound(d.ctx);
  d.set({ chosen: null }).schedule('retry', d.now + delay);
  // no room now: the job waits in the queue (until its queue timeout) instead of failing
  return d.progress('queued', `no usable bid in round ${rounds}${silence ? ` (${silence})` : ''}; queued, asking again in ${duration(delay)}`);
}

/** Every candidate of the round declined for a reason asking again will not change (and no bid is left). */
export function hopeless(c: RequesterContext): boolean {
  const { candidates } = c;
  const declines = c.record.declines;
  if (!candidates || candidates.length === 0 || c.record.bids.some((b) => b.outcome === 'candidate')) return false;
  const permanent = new Set(declines.filter((d) => PERMANENT_DECLINES.includes(d.code)).map((d) => d.provider));
  return candidates.every((p) => permanent.has(p));
}

/** No candidate can ever take the job: say why each declined. */
export function nobodyCan(d: Draft): Draft {
  const reasons = d.ctx.record.declines.map((x) => `${x.provider}: ${x.reason}`).join('; ');
  return d.record({ message: `no provider can take this job: ${reasons}` });
}

/** The deadline passed with no bid left: name every reason the round heard. */
export function noProvider(d: Draft): Draft {
  const { declines, bids, rounds } = d.ctx.record;
  const reasons = [...bids.filter((b) => b.outcome === 'failed').map((b) => `${b.provider}: ${b.note ?? 'failed'}`), ...declines.map((x) => `${x.provider}: ${x.reason}`)];
  const silence = silentRound(d.ctx);
  const why = reasons.length > 0 ? `: ${reasons.join('; ')}` : ` (no provider answered in ${count(rounds, 'round')}${silence ? `; in the last, ${silence}` : ''})`;
  return d.record({ message: `no provider took the job before its deadline${why}` });
}

// --- placing ---------------------------------------------------------------------------------------------------

export function commitBest(d: Draft): Draft {
  const next = nextCandidate(d.ctx, d.now);
  if (!next) return d;
  const { provider, rank, price } = next.ranked;
  d.mark(provider, 'chosen').set({ chosen: next.bid }).record({ provider, allocationId: null, startedAt: null });
  d.emit({ type: 'deal.commit.send', to: provider, dealId: d.ctx.input.dealId, nonce: d.ctx.nonce });
  // a part is allocated only once every part of its ensemble is placed (holdPlaced, then part.allocate)
  if (!isPart(d.ctx)) {
    d.emit({ type: 'deal.allocate.send', to: provider, dealId: d.ctx.input.dealId, nonce: d.ctx.nonce });
    d.set({ allocateSent: `${provider}#${d.ctx.nonce}` });
  }
  d.schedule('step', d.now + d.ctx.input.timing.commitTimeoutMs);
  return d.progress('committing', `committing to ${provider} (rank ${rank}, price ${price})`);
}

/** A part of an ensemble: held after its commit until the ensemble says every part is placed. */
export function isPart(c: RequesterContext): boolean {
  return c.input.parent !== undefined && c.input.job.part !== undefined;
}

/** A part committed: held until `part.allocate`, at most until its provider lets the commit go (the bid's expiry). */
export function holdPlaced(d: Draft): Draft {
  const chosen = d.ctx.chosen;
  d.schedule('step', chosen?.expiresAt ?? d.now);
  // the other bids are let go now, not at allocation: while the ensemble waits for its other parts, their locks
  // would count against this requester's per-provider limit and keep the other parts from being placed
  for (const b of d.ctx.record.bids.filter((r) => r.outcome === 'candidate')) d.revert(b.provider, b.nonce, 'another provider holds this part').mark(b.provider, 'not-taken', 'not chosen');
  return d.progress('placed', `${chosen?.provider} committed; held until every part of the ensemble is placed`);
}

export function askAllocate(d: Draft): Draft {
  const to = d.ctx.chosen?.provider ?? '';
  const members = d.ctx.members && isPart(d.ctx) ? { members: d.ctx.members } : {};
  // normally sent behind the commit already
  if (d.ctx.allocateSent !== `${to}#${d.ctx.nonce}`) d.emit({ type: 'deal.allocate.send', to, dealId: d.ctx.input.dealId, nonce: d.ctx.nonce, ...members });
  d.schedule('step', d.now + d.ctx.input.timing.allocateTimeoutMs);
  return d.progress('provisioning', `${to} committed; asking it to allocate and start the job`);
}

/** The chosen provider allocated: the other bids are let go. */
export function takeAllocation(d: Draft, allocationId: string): Draft {
  const { allocations } = d.ctx.record;
  d.record({ allocationId, allocations: allocations.includes(allocationId) ? allocations : [...allocations, allocationId] });
  // a part that waits for the parts it depends on is started by the ensemble, whenever they are ready
  if ((d.ctx.input.job.part?.dependsOn.length ?? 0) === 0) d.schedule('step', d.now + d.ctx.input.timing.startTimeoutMs);
  else d.cancel('step');
  for (const b of d.ctx.record.bids.filter((r) => r.outcome === 'candidate')) d.revert(b.provider, b.nonce, 'not chosen').mark(b.provider, 'not-taken', 'not chosen');
  return d.progress('provisioning', `${d.ctx.chosen?.provider} allocated ${allocationId}; waiting for the job to start`);
}

export function startRunning(d: Draft): Draft {
  d.cancel('step').schedule('watch', d.now + d.ctx.input.timing.lostAfterMs).record({ startedAt: d.now });
  return d.progress('running', `running on ${d.ctx.chosen?.provider} (${d.ctx.record.allocationId})`);
}

/** A live status: the provider is still there. */
export function alive(d: Draft): Draft {
  return d.schedule('watch', d.now + d.ctx.input.timing.lostAfterMs).record({});
}

/** The allocation ended by itself; entering the final state records it. */
export function takeEnd(d: Draft, e: AllocationStatusEvent): Draft {
  const why = e.message || 'no reason given';
  const message =
    e.state === 'completed'
      ? `completed on ${e.from}${e.exitCode === null ? '' : ` with exit code ${e.exitCode}`}`
      : e.state === 'terminated'
        ? `the provider stopped the job: ${why}`
        : `failed on ${e.from}: ${why}`;
  return d.record({ exitCode: e.exitCode, message });
}

/** What went wrong with the chosen provider, in words that follow its peer id. */
export function whyFailed(c: RequesterContext, e: RequesterEvent, phase: Phase): string {
  const t = c.input.timing;
  if (e.type === 'deal.refused') return `refused the ${e.step}: ${e.reason}`;
  if (e.type === 'send.failed') return `could not be reached for the ${e.step}: ${e.reason}`;
  switch (phase) {
    case 'commit':
      return `did not answer the commit within ${duration(t.commitTimeoutMs)}`;
    case 'allocate':
      return `did not answer the allocate within ${duration(t.allocateTimeoutMs)}`;
    case 'start':
      return `did not start the job within ${duration(t.startTimeoutMs)}`;
    case 'run':
      return `sent no status for ${duration(t.lostAfterMs)}: taken as lost`;
    case 'hold':
      return 'let its commit go before every part of the ensemble was placed';
    default:
      return assertNever(phase);
  }
}

/** The chosen bid failed: let its provider go; the machine tries the next bid or asks again. */
export function failAttempt(d: Draft, why: string): Draft {
  const chosen = d.ctx.chosen;
  if (!chosen) return d;
  const state: JobState = d.ctx.record.state;
  d.cancel('step').cancel('watch').mark(chosen.provider, 'failed', why).revert(chosen.provider, chosen.nonce, why);
  d.set({ chosen: null }).record({ provider: null, allocationId: null, startedAt: null });
  const next = nextCandidate(d.ctx, d.now);
  const then = next ? `trying ${next.ranked.provider}` : d.now >= d.ctx.input.deadline ? 'the deadline has passed' : 'no other bid is left';
  return d.progress(state, `${chosen.provider} ${why}; ${then}`);
}

// --- cancelling and ending -------------------------------------------------------------------------------------

/** Cancelled before anything runs: every provider holding a bid lets go. */
export function cancelHeld(d: Draft, replyTo: string | undefined): Draft {
  const c = d.ctx;
  for (const b of heldBids(c)) d.revert(b.provider, b.nonce, 'the job was cancelled').mark(b.provider, 'not-taken', 'the job was cancelled');
  const message =
    c.nonce === 0 ? 'cancelled before it started' : c.chosen === null ? 'cancelled while asking for bids' : `cancelled before ${c.chosen.provider} started it`;
  return d.set({ pendingReply: replyTo ?? null }).record({ message });
}

export function askCancel(d: Draft): Draft {
  const to = d.ctx.chosen?.provider ?? '';
  d.cancel('step').cancel('watch');
  d.emit({ type: 'deal.cancel.send', to, dealId: d.ctx.input.dealId, nonce: d.ctx.nonce });
  d.schedule('cancel', d.now + d.ctx.input.timing.cancelTimeoutMs);
  return d.progress('cancelling', `asked ${to} to stop the job`).reply();
}

export function cancelEnded(d: Draft, e: RequesterEvent): Draft {
  const p = d.ctx.chosen?.provider;
  if (e.type === 'allocation.status') return d.record({ exitCode: e.exitCode, message: `cancelled: ${p} stopped the job` });
  if (e.type === 'send.failed') return d.record({ message: `cancelled, but ${p} could not be reached to stop the job: ${e.reason}` });
  return d.record({ message: `cancelled, but ${p} did not confirm within ${duration(d.ctx.input.timing.cancelTimeoutMs)} that it stopped the job` });
}

/** Entering a final state: nothing stays scheduled, the runtime gets the record, a pending cancel its answer. */
export function end(d: Draft, state: JobState): Draft {
  d.timers(requesterTimers.cancelAll(d.ctx.timers)).record({ endedAt: d.now }).progress(state, d.ctx.record.message);
  return d.emit({ type: 'job.ended', record: d.ctx.record }).reply();
}

/** After a restart the runtime has no timers: ask for every pending one again (one already due fires at once). */
export function rearm(d: Draft): Draft {
  return d.emit(...requesterTimers.rearm(d.ctx.timers));
}

/** After a restart, the step in flight is sent again: its answer may have been lost, and providers answer a repeat. */
export function resend(d: Draft, step: 'commit' | 'allocate' | 'cancel'): Draft {
  const to = d.ctx.chosen?.provider ?? '';
  const msg = { to, dealId: d.ctx.input.dealId, nonce: d.ctx.nonce };
  if (step === 'commit') return isPart(d.ctx) ? d.emit({ type: 'deal.commit.send', ...msg }) : d.emit({ type: 'deal.commit.send', ...msg }).emit({ type: 'deal.allocate.send', ...msg });
  const members = d.ctx.members && isPart(d.ctx) ? { members: d.ctx.members } : {};
  return d.emit(step === 'allocate' ? { type: 'deal.allocate.send', ...msg, ...members } : { type: 'deal.cancel.send', ...msg });
}

function assertNever(x: never): never {
  throw new Error(`unexpected phase ${JSON.stringify(x)}`);
}

/**
 * A part's change for its ensemble, when anything it reports changed (state, provider, allocation, its status):
 * appended to every step of a part's negotiation by the machine.
 */
export function notifyParent(before: RequesterContext, d: Draft): Draft {
  const parent = d.ctx.input.parent;
  const part = d.ctx.input.job.part;
  if (parent === undefined || part === undefined) return d;
  const a = d.ctx;
  const r = a.record;
  const b = before.record;
  const same = r.state === b.state && r.provider === b.provider && r.allocationId === b.allocationId && r.exitCode === b.exitCode && a.nonce === before.nonce && sameStatus(a.allocation, before.allocation);
  if (same) return d;
  const update = { part: part.name, dealId: a.input.dealId, state: r.state, provider: r.provider, nonce: a.nonce, allocationId: r.allocationId, exitCode: r.exitCode, message: r.message, ...(a.allocation ? { allocation: a.allocation } : {}) };
  return d.emit({ type: 'parent.notify', to: parent, update });
}

function sameStatus(x: RequesterContext['allocation'], y: RequesterContext['allocation']): boolean {
  return x?.state === y?.state && x?.healthy === y?.healthy && x?.restarts === y?.restarts;
}

/** A status of the part's allocation: kept for the ensemble (state, health, restarts). */
export function noteStatus(d: Draft, e: AllocationStatusEvent): Draft {
  if (!isPart(d.ctx)) return d;
  return d.set({ allocation: { state: e.state, ...(e.healthy === undefined ? {} : { healthy: e.healthy }), ...(e.restarts === undefined ? {} : { restarts: e.restarts }) } });
}
