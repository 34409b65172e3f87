/**
 * The deal side of the Node: the bid request it decides on (scenarios 1-7 of dms-behaviour.md, bidding.ts) and the
 * intents that decision emits. The rest of the Node's events and intents are in node.messages.ts.
 */
import type { DealGrant, FromPeer } from './deal.events.ts';
import type { DeclineCode } from './deal.wire.ts';
import type { JobSpec } from './job.ts';
import type { ProviderInput } from './provider.messages.ts';

/** A bid request as the Node sees it. `self` is this node's peer id (to recognise its own broadcasts). */
export interface BidRequestEvent extends FromPeer {
  readonly type: 'bid.request';
  readonly dealId: string;
  readonly nonce: number;
  readonly job: JobSpec;
  readonly expiresAt: number;
  readonly self: string;
  /** An array job: how many of its instances this round asks for (absent: all of them, `job.count`). */
  readonly count?: number;
  /**
   * What the runtime found of the capability tokens the request carried (checked against this node's anchors for
   * `deploy`, for the envelope's signer); absent when it carried none. Read only when the Node requires grants.
   */
  readonly grant?: GrantCheck;
  /**
   * The request reached this node through the mesh from a requester it is not connected to: it is none of the
   * round's candidates (the requester waits only for its neighbours), so a refusal is noted but not sent. In a big
   * network a broadcast would otherwise bring the requester a decline from nearly every node.
   */
  readonly relayed?: boolean;
}

/** A bid request's tokens as checked: the grant that holds, or why none does (runtime/trust's reason and detail). */
export type GrantCheck =
  | ({ readonly ok: true } & DealGrant)
  | { readonly ok: false; readonly reason: string; readonly detail: string };

/** Node intents for deals. */
export type NodeDealIntent =
  /** The Node locked resources for a bid: the runtime spawns the provider negotiation with this input. */
  | { readonly type: 'bid.open'; readonly input: ProviderInput }
  /** `quiet`: a refusal of a relayed request (`BidRequestEvent.relayed`): noted by the runtime's gate, not sent. */
  | { readonly type: 'bid.decline.send'; readonly to: string; readonly dealId: string; readonly nonce: number; readonly code: DeclineCode; readonly reason: string; readonly quiet?: true };
