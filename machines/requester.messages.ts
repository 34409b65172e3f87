/**
 * The requester negotiation (actor `job/<dealId>`): its input, the events it takes, the intents it emits and the
 * record it keeps of the job.
 */
import type { At, DealRecoveredEvent, FromPeer, LogIntent, TimerCancelIntent, TimerFiredEvent, TimerScheduleIntent } from './deal.events.ts';
import type { AllocationState, AllocationStatusMsg, Bid, BidDeclineMsg, DealAllocatedMsg, DealCommittedMsg, DealRefusedMsg, DeclineCode, PartMember } from './deal.wire.ts';
import type { JobSpec } from './job.ts';
import type { RankingWeights } from './preferences.ts';

/** `placed`: a part of an ensemble committed on its provider, held until every part is placed (ensemble.machine.ts). */
export type JobState = 'requesting' | 'queued' | 'committing' | 'placed' | 'provisioning' | 'running' | 'cancelling' | 'completed' | 'failed' | 'cancelled';

/** Tunables of a requester negotiation (defaults in DEAL_DEFAULTS). */
export interface RequesterTiming {
  /** Longest a bid window stays open. It closes early when every candidate answered or `enoughBids` arrived. */
  readonly bidWindowMs: number;
  readonly enoughBids: number;
  /** Wait for the provider's answer to a commit, and to an allocate (the Go DMS: 3 s and 5 s). */
  readonly commitTimeoutMs: number;
  readonly allocateTimeoutMs: number;
  /** From allocated until the allocation reports running. */
  readonly startTimeoutMs: number;
  /** A running allocation that sends no status for this long is taken as lost. */
  readonly lostAfterMs: number;
  /** Pause before asking again when a round found no provider; doubles up to `retryMaxMs`. */
  readonly retryMs: number;
  readonly retryMaxMs: number;
  /** After `deal.cancel` is sent, end as cancelled even without the provider's answer after this long. */
  readonly cancelTimeoutMs: number;
}

export interface RequesterInput {
  readonly dealId: string;
  readonly job: JobSpec;
  /** This node's peer id. */
  readonly self: string;
  /** When the deploy was made, and by when the job must be placed (ms since the epoch). */
  readonly createdAt: number;
  readonly deadline: number;
  /** Until when the job (an array job's queued instances) may wait for room (the job's queueTimeout); absent: `deadline`. */
  readonly queueDeadline?: number;
  readonly weights: RankingWeights;
  readonly timing: RequesterTiming;
  /**
   * For a part of an ensemble (`job.part` set): the ensemble actor. The part holds after its commit until the
   * ensemble sends `part.allocate` (every part placed), and tells it every change (`part.update`).
   */
  readonly parent?: string;
  /**
   * A part's place among its ensemble's parts: among the bids within SPREAD_TOLERANCE of the best, part i prefers
   * the (i mod n)-th, so an ensemble's parts spread over near-equal providers instead of all taking the same one.
   */
  readonly spread?: number;
}

/** What a part's negotiation tells its ensemble after every change. */
export interface PartUpdate {
  readonly part: string;
  /** The negotiation that sends it: a part started again by recovery has a new one, and the old one's updates are stale. */
  readonly dealId: string;
  readonly state: JobState;
  readonly provider: string | null;
  readonly nonce: number;
  readonly allocationId: string | null;
  readonly exitCode: number | null;
  readonly message: string;
  /** The allocation's latest status on the provider (absent before it is allocated). */
  readonly allocation?: { readonly state: AllocationState; readonly healthy?: boolean; readonly restarts?: number };
}

/** From the ensemble: every part is placed; allocate this one, telling the provider who runs every part. */
export interface PartAllocateEvent extends At {
  readonly type: 'part.allocate';
  readonly members: readonly PartMember[];
}

/** A bid as the requester ranked it. */
export interface RankedBid {
  readonly provider: string;
  readonly nonce: number;
  readonly price: number;
  readonly score: number;
  readonly rttMs: number;
  readonly rank: number;
  readonly utility: number;
  /** What became of it: waiting to be tried, chosen (the current provider), or refused/failed with why. */
  readonly outcome: 'candidate' | 'chosen' | 'failed' | 'not-taken';
  readonly note?: string;
}

export interface JobHistoryEntry {
  readonly at: number;
  readonly state: JobState;
  readonly message: string;
}

/** What `status JOB` shows: the requester machine's context, as plain data. */
export interface JobRecord {
  readonly id: string;
  readonly name: string;
  readonly executor: JobSpec['executor'];
  readonly state: JobState;
  readonly provider: string | null;
  readonly allocationId: string | null;
  /** Every allocation tried for this job, oldest first. */
  readonly allocations: readonly string[];
  /** The bids of the latest round, best first, with how they ranked. */
  readonly bids: readonly RankedBid[];
  /** Providers that declined in the latest round, and why. */
  readonly declines: readonly { readonly provider: string; readonly code: DeclineCode; readonly reason: string }[];
  /**
   * Declines of the latest round counted but not listed: every candidate's decline is listed, and up to
   * LISTED_DECLINES in all; a broadcast to a big network hears one from nearly every node, and listing them all
   * made each decline cost time in proportion to the network (absent: none).
   */
  readonly declinesNotListed?: number;
  /** Rounds of bidding so far. */
  readonly rounds: number;
  readonly exitCode: number | null;
  /** Why the job ended or what it waits for, in one line. */
  readonly message: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly startedAt: number | null;
  readonly endedAt: number | null;
  readonly deadline: number;
  /** Progress, oldest first (capped; the newest kept). */
  readonly history: readonly JobHistoryEntry[];
}

/** Starts the negotiation (sent once by the runtime right after spawning the actor). */
export interface DealStartEvent extends At {
  readonly type: 'deal.start';
}
/** How far a round's request went when it was sent. */
export interface RoundReach {
  /** DMS peers connected. */
  readonly connected: number;
  /** Connected peers subscribed to the bid topic (a broadcast reaches them directly). */
  readonly subscribed: number;
}
/** The runtime sent the bid request of round `nonce` to `candidates` (the peers expected to answer). */
export interface BidRequestSentEvent extends At {
  readonly type: 'bid.request.sent';
  readonly nonce: number;
  readonly candidates: readonly string[];
  /**
   * A broadcast that goes beyond the candidates (the mesh relays it to peers this node is not connected to):
   * others may answer too, so the window does not close on the candidates' answers alone unless a bid is in.
   */
  readonly open?: boolean;
  readonly reach?: RoundReach;
}
export interface BidReceivedEvent extends FromPeer {
  readonly type: 'bid.submit';
  readonly bid: Bid;
  /** Round-trip time to the bidder as the runtime measured it (ms). */
  readonly rttMs: number;
}
export type BidDeclinedEvent = BidDeclineMsg & FromPeer;
export type DealCommittedEvent = DealCommittedMsg & FromPeer;
export type DealAllocatedEvent = DealAllocatedMsg & FromPeer;
export type DealRefusedEvent = DealRefusedMsg & FromPeer;
export type AllocationStatusEvent = AllocationStatusMsg & FromPeer;
/** A message to a provider could not be sent (no connection, closed channel). */
export interface SendFailedEvent extends At {
  readonly type: 'send.failed';
  readonly to: string;
  readonly nonce: number;
  readonly step: 'commit' | 'allocate' | 'cancel';
  readonly reason: string;
}
/** From the API; answered through `replyTo` with the record. */
export interface JobCancelEvent extends At {
  readonly type: 'job.cancel';
  readonly replyTo?: string;
}

export type RequesterEvent =
  | DealStartEvent
  | BidRequestSentEvent
  | BidReceivedEvent
  | BidDeclinedEvent
  | DealCommittedEvent
  | DealAllocatedEvent
  | DealRefusedEvent
  | AllocationStatusEvent
  | SendFailedEvent
  | JobCancelEvent
  | PartAllocateEvent
  | DealRecoveredEvent
  | TimerFiredEvent;

/** Intents of the requester. `send.*` intents name the peer; the runtime addresses the provider inbox. */
export type RequesterIntent =
  /** Ask for bids: broadcast, or direct to `job.constraints.peers` when it is not empty. */
  | { readonly type: 'bid.request.send'; readonly dealId: string; readonly nonce: number; readonly job: JobSpec; readonly expiresAt: number }
  | { readonly type: 'deal.commit.send'; readonly to: string; readonly dealId: string; readonly nonce: number }
  /** The runtime attaches the module's bytes for a WASM job. */
  | { readonly type: 'deal.allocate.send'; readonly to: string; readonly dealId: string; readonly nonce: number; readonly members?: readonly PartMember[] }
  | { readonly type: 'deal.revert.send'; readonly to: string; readonly dealId: string; readonly nonce: number; readonly reason: string }
  | { readonly type: 'deal.cancel.send'; readonly to: string; readonly dealId: string; readonly nonce: number }
  /** The job reached a terminal state: the runtime saves the record and stops the actor. */
  | { readonly type: 'job.ended'; readonly record: JobRecord }
  | { readonly type: 'reply.send'; readonly replyTo: string; readonly ok: true; readonly value: JobRecord }
  /** A part's change, for its ensemble actor (`input.parent`). */
  | { readonly type: 'parent.notify'; readonly to: string; readonly update: PartUpdate }
  | TimerScheduleIntent
  | TimerCancelIntent
  | LogIntent;
