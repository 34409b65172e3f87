/**
 * The provider negotiation (actor `provider/<key>`), opened by the Node when it bids: its input, the events it
 * takes, the intents it emits and the record it leaves.
 */
import type { AllocationInput } from './allocation.messages.ts';
import type { At, DealGrant, DealRecoveredEvent, FromPeer, LogIntent, TimerCancelIntent, TimerFiredEvent, TimerScheduleIntent } from './deal.events.ts';
import type { AllocationState, Bid, DealCancelMsg, DealCommitMsg, DealRevertMsg } from './deal.wire.ts';
import type { JobSpec } from './job.ts';

export type ProviderDealState = 'bidding' | 'committed' | 'allocating' | 'allocated' | 'done' | 'released' | 'expired';

export interface ProviderInput {
  readonly key: string;
  readonly bid: Bid;
  readonly requester: string;
  readonly job: JobSpec;
  /** The Node's lock for this bid (id = key), expiring at `bid.expiresAt`. */
  readonly lockId: string;
  /** The ports the lock holds for a part's named ports, in the order of `job.part.ports`. */
  readonly ports?: readonly number[];
  /** The capability grant the Node bid under, when it required one: the deal's later messages need it to hold. */
  readonly grant?: DealGrant;
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
  /** The whole job (args and env) when the bid request carried only its requirements; the runtime checked it matches. */
  readonly job?: JobSpec;
  /** An array job: the instances the allocation runs first. */
  readonly assign?: readonly number[];
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
