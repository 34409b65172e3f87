/**
 * Deals: the messages peers exchange to place a job, the events the three deal machines take (requester
 * negotiation, provider negotiation, allocation) and the intents they emit. Payloads only; remote ones travel in
 * signed envelopes. Every event carries `now` (ms since the epoch), stamped by the runtime when it accepts it: the
 * machines never read a clock. Events from peers also carry `from`, the authenticated sender's peer id.
 *
 * A deal is named by its `dealId` (the job id, chosen by the requester). One ask for bids is one `nonce`; a
 * provider's part of a deal is keyed `${dealId}.${nonce}` (its lock, its provider actor and its allocation share it).
 */
import type { Resources } from './capability.ts';
import type { JobSpec } from './job.ts';
import type { RankingWeights } from './preferences.ts';

/** Inboxes deal messages are sent to on a peer. */
export const NODE_INBOX = 'node';
export const REQUESTER_INBOX = 'requester';
export const PROVIDER_INBOX = 'provider';

/**
 * The key of one provider's part in one deal: lock id, allocation id, and the suffix of its actor ids. It names
 * the requester too: deal ids are public (bid requests are broadcast), so without it another peer could reuse a
 * deal's id and nonce to take over its key (its lock, its provider negotiation, its output).
 */
export function dealKey(dealId: string, nonce: number, requester: string): string {
  return `${dealId}.${nonce}@${requester}`;
}

/** Actor ids by kind. */
export const requesterActorId = (dealId: string) => `job/${dealId}`;
export const providerActorId = (key: string) => `provider/${key}`;
export const allocationActorId = (allocationId: string) => `allocation/${allocationId}`;

// ---------------------------------------------------------------------------------------------------------------
// On the wire (payloads, without `type`, travel in envelopes; the receiving runtime adds `from` and `now`)
// ---------------------------------------------------------------------------------------------------------------

/** Requester -> every provider (gossipsub) or the job's `constraints.peers` (direct), inbox `node`. */
export interface BidRequestMsg {
  readonly type: 'bid.request';
  readonly dealId: string;
  readonly nonce: number;
  /** The job, without its module's bytes (the module is named by sha256 and size). */
  readonly job: JobSpec;
  /** Bids must reach the requester by then. */
  readonly expiresAt: number;
}

/** What a provider offers for a deal; held for the requester until `expiresAt`. */
export interface Bid {
  readonly dealId: string;
  readonly nonce: number;
  readonly provider: string;
  /** The provider's asking price (its preferences' minimum price). */
  readonly price: number;
  /** The provider's benchmark score: CPU work units per second per core. */
  readonly score: number;
  readonly resources: Resources;
  /** The provider's lock on the resources expires then, unless the deal is allocated first. */
  readonly expiresAt: number;
}

/** Provider -> requester, inbox `requester`. */
export interface BidSubmitMsg {
  readonly type: 'bid.submit';
  readonly bid: Bid;
}

/** Provider -> requester: it will not bid, and why (not sent for the requester's own or a repeated request). */
export interface BidDeclineMsg {
  readonly type: 'bid.decline';
  readonly dealId: string;
  readonly nonce: number;
  readonly code: DeclineCode;
  readonly reason: string;
}

/** Declines that will not change by asking again: a round in which every candidate gave one ends the job at once. */
export const PERMANENT_DECLINES: readonly DeclineCode[] = ['excluded', 'not-chosen', 'executor', 'privileged', 'too-large'];

export type DeclineCode =
  | 'not-onboarded'
  | 'excluded'
  | 'not-chosen'
  | 'executor'
  | 'privileged'
  | 'insufficient'
  /** The job asks for more than this node registers at all: it could never take it. */
  | 'too-large'
  | 'preferences'
  | 'duplicate'
  | 'expired'
  | 'invalid';

/** Requester -> provider, inbox `provider`: the requester takes the bid. */
export interface DealCommitMsg {
  readonly type: 'deal.commit';
  readonly dealId: string;
  readonly nonce: number;
}
/** Provider -> requester: committed; the lock is held for the allocate step. */
export interface DealCommittedMsg {
  readonly type: 'deal.committed';
  readonly dealId: string;
  readonly nonce: number;
}
/**
 * Requester -> provider: create the allocation and start the job. For a WASM job the runtime attaches the module's
 * bytes (`module`), which the provider's runtime checks against the job's sha256 and stores before the provider
 * machine sees the event; the machine sees only `moduleReady`.
 */
export interface DealAllocateMsg {
  readonly type: 'deal.allocate';
  readonly dealId: string;
  readonly nonce: number;
}
/** Provider -> requester: the allocation exists (pending) and will start. */
export interface DealAllocatedMsg {
  readonly type: 'deal.allocated';
  readonly dealId: string;
  readonly nonce: number;
  readonly allocationId: string;
}
/** Provider -> requester: a commit or allocate was refused; the provider released what it held. */
export interface DealRefusedMsg {
  readonly type: 'deal.refused';
  readonly dealId: string;
  readonly nonce: number;
  readonly step: 'commit' | 'allocate';
  readonly reason: string;
}
/** Requester -> provider: drop the deal and release everything held for it (a revert, or a bid not taken). */
export interface DealRevertMsg {
  readonly type: 'deal.revert';
  readonly dealId: string;
  readonly nonce: number;
  readonly reason: string;
}
/** Requester -> provider: stop the job and release its resources. */
export interface DealCancelMsg {
  readonly type: 'deal.cancel';
  readonly dealId: string;
  readonly nonce: number;
}

export type AllocationState = 'pending' | 'starting' | 'running' | 'stopping' | 'completed' | 'failed' | 'terminated';
export const ALLOCATION_TERMINAL: readonly AllocationState[] = ['completed', 'failed', 'terminated'];

/** Provider -> requester: the allocation's state, on every change and as a heartbeat while it runs. */
export interface AllocationStatusMsg {
  readonly type: 'allocation.status';
  readonly dealId: string;
  readonly nonce: number;
  readonly allocationId: string;
  readonly state: AllocationState;
  /** Set when the job ended by itself. */
  readonly exitCode: number | null;
  /** Why it ended, in one line (empty while it runs). */
  readonly message: string;
}

export type DealWireMessage =
  | BidRequestMsg
  | BidSubmitMsg
  | BidDeclineMsg
  | DealCommitMsg
  | DealCommittedMsg
  | DealAllocateMsg
  | DealAllocatedMsg
  | DealRefusedMsg
  | DealRevertMsg
  | DealCancelMsg
  | AllocationStatusMsg;

/** Stamped by the receiving runtime on everything from a peer. */
export interface FromPeer {
  readonly from: string;
  readonly now: number;
}
/** Stamped by the runtime on local events. */
export interface At {
  readonly now: number;
}

/** Runtime timers of a deal machine: an intent asks for one at an absolute time; `timer.fired` comes back. */
export interface TimerFiredEvent extends At {
  readonly type: 'timer.fired';
  readonly key: string;
}
export interface TimerScheduleIntent {
  readonly type: 'timer.schedule';
  readonly key: string;
  readonly at: number;
}
export interface TimerCancelIntent {
  readonly type: 'timer.cancel';
  readonly key: string;
}
export interface LogIntent {
  readonly type: 'log.write';
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
  readonly data?: Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------------------------
// Requester negotiation (actor `job/<dealId>`)
// ---------------------------------------------------------------------------------------------------------------

export type JobState = 'requesting' | 'committing' | 'provisioning' | 'running' | 'cancelling' | 'completed' | 'failed' | 'cancelled';
export const JOB_TERMINAL: readonly JobState[] = ['completed', 'failed', 'cancelled'];

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
  readonly weights: RankingWeights;
  readonly timing: RequesterTiming;
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
/** Sent once after the actor was rebuilt from its log: re-arm timers; an unanswered step is retried. */
export interface DealRecoveredEvent extends At {
  readonly type: 'deal.recovered';
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
  | DealRecoveredEvent
  | TimerFiredEvent;

/** Intents of the requester. `send.*` intents name the peer; the runtime addresses the provider inbox. */
export type RequesterIntent =
  /** Ask for bids: broadcast, or direct to `job.constraints.peers` when it is not empty. */
  | { readonly type: 'bid.request.send'; readonly dealId: string; readonly nonce: number; readonly job: JobSpec; readonly expiresAt: number }
  | { readonly type: 'deal.commit.send'; readonly to: string; readonly dealId: string; readonly nonce: number }
  /** The runtime attaches the module's bytes for a WASM job. */
  | { readonly type: 'deal.allocate.send'; readonly to: string; readonly dealId: string; readonly nonce: number }
  | { readonly type: 'deal.revert.send'; readonly to: string; readonly dealId: string; readonly nonce: number; readonly reason: string }
  | { readonly type: 'deal.cancel.send'; readonly to: string; readonly dealId: string; readonly nonce: number }
  /** The job reached a terminal state: the runtime saves the record and stops the actor. */
  | { readonly type: 'job.ended'; readonly record: JobRecord }
  | { readonly type: 'reply.send'; readonly replyTo: string; readonly ok: true; readonly value: JobRecord }
  | TimerScheduleIntent
  | TimerCancelIntent
  | LogIntent;

// ---------------------------------------------------------------------------------------------------------------
// Provider negotiation (actor `provider/<key>`), opened by the Node when it bids
// ---------------------------------------------------------------------------------------------------------------

export type ProviderDealState = 'bidding' | 'committed' | 'allocating' | 'allocated' | 'done' | 'released' | 'expired';
export const PROVIDER_TERMINAL: readonly ProviderDealState[] = ['done', 'released', 'expired'];

export interface ProviderInput {
  readonly key: string;
  readonly bid: Bid;
  readonly requester: string;
  readonly job: JobSpec;
  /** The Node's lock for this bid (id = key), expiring at `bid.expiresAt`. */
  readonly lockId: string;
}

export interface ProviderRecord {
  readonly key: string;
  readonly dealId: string;
  readonly nonce: number;
  readonly requester: string;
  readonly name: string;
  readonly state: ProviderDealState;
  readonly allocationId: string | null;
  readonly message: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** Sent once by the runtime right after spawning: the provider sends its bid (unless the runtime already did). */
export interface ProviderStartEvent extends At {
  readonly type: 'provider.start';
  /** The runtime sent the bid as the Node opened it, to spare the deal the actor's start-up. */
  readonly bidSent?: boolean;
}
export type DealCommitEvent = DealCommitMsg & FromPeer;
export interface DealAllocateEvent extends FromPeer {
  readonly type: 'deal.allocate';
  readonly dealId: string;
  readonly nonce: number;
  /** The module arrived, matched the job's sha256 and is stored (always true for process jobs). */
  readonly moduleReady: boolean;
  /** Why not, when it is not ready. */
  readonly moduleProblem?: string;
}
export type DealRevertEvent = DealRevertMsg & FromPeer;
export type DealCancelEvent = DealCancelMsg & FromPeer;
/** The Node's answer to `ledger.allocate.request`. */
export interface LedgerAllocatedEvent extends At {
  readonly type: 'ledger.allocated';
  readonly ok: boolean;
  readonly reason?: string;
}
/** The allocation this deal started has ended. */
export interface AllocationEndedEvent extends At {
  readonly type: 'allocation.ended';
  readonly allocationId: string;
  readonly state: AllocationState;
}

export type ProviderEvent =
  | ProviderStartEvent
  | DealCommitEvent
  | DealAllocateEvent
  | DealRevertEvent
  | DealCancelEvent
  | LedgerAllocatedEvent
  | AllocationEndedEvent
  | DealRecoveredEvent
  | TimerFiredEvent;

export type ProviderIntent =
  | { readonly type: 'bid.submit.send'; readonly to: string; readonly bid: Bid }
  | { readonly type: 'deal.committed.send'; readonly to: string; readonly dealId: string; readonly nonce: number }
  | { readonly type: 'deal.allocated.send'; readonly to: string; readonly dealId: string; readonly nonce: number; readonly allocationId: string }
  | { readonly type: 'deal.refused.send'; readonly to: string; readonly dealId: string; readonly nonce: number; readonly step: 'commit' | 'allocate'; readonly reason: string }
  /** Ask the Node to turn the lock into an allocation; the answer comes back as `ledger.allocated`. */
  | { readonly type: 'ledger.allocate.request'; readonly allocationId: string; readonly lockId: string }
  /** Release the lock (idempotent: an expired or unknown lock is fine). */
  | { readonly type: 'ledger.unlock'; readonly lockId: string }
  /** Spawn the allocation actor and start it. */
  | { readonly type: 'allocation.spawn'; readonly input: AllocationInput }
  | { readonly type: 'allocation.cancel'; readonly allocationId: string }
  | { readonly type: 'provider.ended'; readonly record: ProviderRecord }
  | TimerScheduleIntent
  | TimerCancelIntent
  | LogIntent;

// ---------------------------------------------------------------------------------------------------------------
// Allocation (actor `allocation/<allocationId>`), one per running job on the provider
// ---------------------------------------------------------------------------------------------------------------

export interface AllocationInput {
  readonly allocationId: string;
  readonly dealId: string;
  readonly nonce: number;
  readonly requester: string;
  readonly job: JobSpec;
}

/** How an execution ended (the executor's ExecutionResult, as the machine needs it). */
export interface ExecutionOutcome {
  readonly exitCode: number | null;
  readonly reason: 'completed' | 'failed' | 'timeout' | 'cancelled' | 'memory' | 'crashed';
  readonly message: string;
  readonly durationMs: number;
  readonly outputBytes: number;
  readonly outputTruncated: boolean;
}

export interface AllocationRecordView {
  readonly allocationId: string;
  readonly dealId: string;
  readonly requester: string;
  readonly name: string;
  readonly executor: JobSpec['executor'];
  readonly resources: Resources;
  readonly state: AllocationState;
  readonly exitCode: number | null;
  readonly message: string;
  readonly pid: number | null;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly endedAt: number | null;
}

/** Sent once by the runtime right after spawning. */
export interface AllocationStartEvent extends At {
  readonly type: 'allocation.start';
}
export interface ExecutionStartedEvent extends At {
  readonly type: 'execution.started';
  readonly pid: number;
}
/** The executor refused the job before it ran (bad module, unknown command, ...). */
export interface ExecutionRefusedEvent extends At {
  readonly type: 'execution.refused';
  readonly reason: string;
}
export interface ExecutionEndedEvent extends At {
  readonly type: 'execution.ended';
  readonly outcome: ExecutionOutcome;
}
export interface AllocationCancelEvent extends At {
  readonly type: 'allocation.cancel';
}
export interface AllocationRecoveredEvent extends At {
  readonly type: 'allocation.recovered';
}

export type AllocationEvent =
  | AllocationStartEvent
  | ExecutionStartedEvent
  | ExecutionRefusedEvent
  | ExecutionEndedEvent
  | AllocationCancelEvent
  | AllocationRecoveredEvent
  | TimerFiredEvent;

export type AllocationIntent =
  | { readonly type: 'execution.start'; readonly allocationId: string; readonly job: JobSpec }
  | { readonly type: 'execution.cancel'; readonly allocationId: string }
  /** Tell the requester (the runtime also repeats the latest status as a heartbeat while the job runs). */
  | { readonly type: 'status.push'; readonly to: string; readonly status: Omit<AllocationStatusMsg, 'type'> }
  /** Give the allocation's resources back to the Node's ledger; emitted exactly once, on entering a final state. */
  | { readonly type: 'ledger.release'; readonly allocationId: string }
  | { readonly type: 'allocation.ended'; readonly record: AllocationRecordView }
  | TimerScheduleIntent
  | TimerCancelIntent
  | LogIntent;

// ---------------------------------------------------------------------------------------------------------------
// Node additions: the Node decides whether to bid (scenarios 1-7 of dms-behaviour.md) and locks atomically
// ---------------------------------------------------------------------------------------------------------------

/** A bid request as the Node sees it. `self` is this node's peer id (to recognise its own broadcasts). */
export interface BidRequestEvent extends FromPeer {
  readonly type: 'bid.request';
  readonly dealId: string;
  readonly nonce: number;
  readonly job: JobSpec;
  readonly expiresAt: number;
  readonly self: string;
}

/** Node intents for deals. */
export type NodeDealIntent =
  /** The Node locked resources for a bid: the runtime spawns the provider negotiation with this input. */
  | { readonly type: 'bid.open'; readonly input: ProviderInput }
  | { readonly type: 'bid.decline.send'; readonly to: string; readonly dealId: string; readonly nonce: number; readonly code: DeclineCode; readonly reason: string };

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
  /** How long a provider holds resources for a bid (covers the window, the commit and the allocate). */
  bidHoldMs: 15_000,
  /** How long a provider remembers a (dealId, nonce) it answered (the Go DMS: 5 minutes). */
  answeredTtlMs: 5 * 60_000,
  /** A running allocation repeats its status this often. */
  heartbeatMs: 2_000,
  /** Deadline of a deploy that names none: time to place the job, plus its timeout. */
  placementMs: 60_000,
});
