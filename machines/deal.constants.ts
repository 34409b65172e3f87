/**
 * Deal constants: the timing defaults of the deal machines and the runtime around them, the terminal states of
 * each deal machine, and the declines that end a job.
 */
import type { AllocationState, DeclineCode } from './deal.wire.ts';
import type { ProviderDealState } from './provider.messages.ts';
import type { JobState, RequesterTiming } from './requester.messages.ts';

/** Defaults: the Go DMS waits 5 s for bids, 3 s for a commit and 5 s for an allocate. We close windows early. */
export const DEAL_DEFAULTS = Object.freeze({
  requester: {
    bidWindowMs: 2_000,
    enoughBids: 3,
    commitTimeoutMs: 3_000,
    allocateTimeoutMs: 5_000,
    startTimeoutMs: 60_000,
    lostAfterMs: 6_000,
    retryMs: 500,
    retryMaxMs: 5_000,
    cancelTimeoutMs: 15_000,
  } satisfies RequesterTiming,
  /** The longest a provider holds resources for a bid, whatever the request's expiry (see bidGraceMs). */
  bidHoldMs: 15_000,
  /**
   * A bid's lock lasts until its request expires (when the requester closes its window at the latest) plus this,
   * capped at bidHoldMs. The requester commits and sends the allocate together as the window closes, then waits at
   * most its commit and allocate timeouts (3 s + 5 s) for the answers: past that it has moved on, so a longer hold
   * serves no one. It also covers clock skew between the two nodes and the module's transfer.
   */
  bidGraceMs: 3_000 + 5_000,
  /** How long a provider remembers a (dealId, nonce) it answered (the Go DMS: 5 minutes). */
  answeredTtlMs: 5 * 60_000,
  /** A running allocation repeats its status this often. */
  heartbeatMs: 2_000,
  /** Deadline of a deploy that names none: time to place the job, plus its timeout. */
  placementMs: 60_000,
});

/** Array jobs (INTERFACE.md "Many tasks"). */
export const ARRAY_DEFAULTS = Object.freeze({
  /** The most instances one provider bids for at once (its lock holds the resources of all of them). */
  maxSlotsPerBid: 256,
  /** Instances handed to an allocation beyond its slots, so a slot that frees finds its next instance there. */
  prefetchPerSlot: 1,
  /** A provider reports ended instances at most this long after they end (several in one message). */
  reportMs: 50,
  /** An array allocation with nothing to run for this long, its requester silent, ends and frees its resources. */
  idleMs: 60_000,
});

/**
 * Declines that will not change by asking again: a round in which every candidate gave one ends the job at once.
 * `unauthorized` among them: a grant comes from the provider's operator (`cap grant`, then `cap add` here), not from
 * waiting out the placement deadline; the job fails at once saying so.
 */
export const PERMANENT_DECLINES: readonly DeclineCode[] = ['excluded', 'not-chosen', 'executor', 'privileged', 'too-large', 'unauthorized'];

/** The final states of each deal machine. */
export const JOB_TERMINAL: readonly JobState[] = ['completed', 'failed', 'cancelled'];
export const PROVIDER_TERMINAL: readonly ProviderDealState[] = ['done', 'released', 'expired'];
export const ALLOCATION_TERMINAL: readonly AllocationState[] = ['completed', 'failed', 'terminated'];
