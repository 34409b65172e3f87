/**
 * The deal messages peers exchange to place a job. Their payloads (without `type`) travel in signed envelopes; the
 * receiving runtime adds `from`, the authenticated sender's peer id, and `now` (see deal.events.ts).
 */
import type { Resources } from './capability.ts';
import type { JobSpec } from './job.ts';

/** Requester -> every provider (gossipsub) or the job's `constraints.peers` (direct), inbox `node`. */
export interface BidRequestMsg {
  readonly type: 'bid.request';
  readonly dealId: string;
  readonly nonce: number;
  /** What a provider decides on: the job without its args and env (`requirementsOf`) and its module's bytes (named by sha256 and size). */
  readonly job: JobSpec;
  /** Bids must reach the requester by then. */
  readonly expiresAt: number;
  /** An array job: how many of its instances this round asks for (absent: all of them, `job.count`). */
  readonly count?: number;
  /**
   * The requester's capability tokens granting `deploy` (the newest few it holds), for a provider that serves only
   * requesters with a grant; absent when it holds none. The provider's runtime checks them, the Node never sees them.
   */
  readonly grants?: readonly string[];
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
  /**
   * An array job: how many instances the provider takes at once (its lock holds `resources` for all of them);
   * absent for a job of one task.
   */
  readonly slots?: number;
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
  /** The requester holds as many unanswered locks here as one may (`provider.maxLocksPerRequester`): ask again later. */
  | 'lock-limit'
  /** The node's disk is nearly full (under its `--min-free-disk`): it takes no new work until space returns. */
  | 'disk-full'
  /**
   * The provider serves only requesters whose capability tokens grant `deploy` from its anchors (`--require-grants`
   * or `provider.requireGrants`), and the request showed none that holds: the reason says why (no token, expired,
   * revoked, ...). Asking again with the same tokens will not change it.
   */
  | 'unauthorized'
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
  /**
   * The whole job, with its args and env, when the bid request carried it without them (`requirementsOf`); the
   * provider's runtime checks that it is the job bid on before the provider machine sees it.
   */
  readonly job?: JobSpec;
  /** For a part of an ensemble: which provider runs each part (the peers that may open tunnels to this one). */
  readonly members?: readonly PartMember[];
  /** An array job: the instances (indexes) the allocation runs first; more come with `batch.assign`. */
  readonly assign?: readonly number[];
}

/** Requester -> provider, inbox `provider`: more instances of an array job for its allocation to run. */
export interface BatchAssignMsg {
  readonly type: 'batch.assign';
  readonly dealId: string;
  readonly nonce: number;
  readonly indexes: readonly number[];
}

/** Requester -> provider, inbox `provider`: no more instances will come; end the allocation once those it has ran. */
export interface BatchReleaseMsg {
  readonly type: 'batch.release';
  readonly dealId: string;
  readonly nonce: number;
}

/** How one instance of an array job ended on its provider. */
export interface InstanceResult {
  readonly index: number;
  /** completed: exit 0; failed: anything else the instance did; lost: it did not run to its end (its provider stopped it or died), not the instance's fault. */
  readonly state: 'completed' | 'failed' | 'lost';
  readonly exitCode: number | null;
  readonly message: string;
}

/** Provider -> requester, inbox `requester`: instances that ended since the last report, and how many run (also a heartbeat). */
export interface BatchProgressMsg {
  readonly type: 'batch.progress';
  readonly dealId: string;
  readonly nonce: number;
  readonly allocationId: string;
  readonly results: readonly InstanceResult[];
  readonly running: number;
}

/** Which provider runs a part of an ensemble. */
export interface PartMember {
  readonly part: string;
  readonly provider: string;
}

/** Where a named port of a part an ensemble part depends on runs: its provider opens a tunnel to it. */
export interface PartAddress {
  readonly part: string;
  readonly port: string;
  readonly provider: string;
}

/**
 * Requester -> provider, inbox `provider`: start a part that was held for the parts it depends on (they run and
 * are healthy), with where their ports are; also sent again with new `addrs` and `members` after one moved.
 */
export interface PartStartMsg {
  readonly type: 'part.start';
  readonly dealId: string;
  readonly nonce: number;
  readonly addrs: readonly PartAddress[];
  readonly members: readonly PartMember[];
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
  /** A part with a health check: whether it passes now (absent: no check, or not known yet). */
  readonly healthy?: boolean;
  /** A part: how often its provider started it again (its `restart` policy). */
  readonly restarts?: number;
}

/** Every deal message on the wire, discriminated on `type`. */
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
  | PartStartMsg
  | AllocationStatusMsg
  | BatchAssignMsg
  | BatchReleaseMsg
  | BatchProgressMsg;
