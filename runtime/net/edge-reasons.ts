/**
 * Refusals of the network edge beyond the envelope rules of `machines/envelope.ts`: budgets and bounds that
 * depend on this node's own state (how much a sender already used, how full a cache is), never on whether the
 * envelope itself is well formed. Every one is counted by this name, as the envelope rules' are.
 */
import { type RejectReason, gossipVerdict } from '../../machines/envelope.ts';

export const EDGE_REASONS = [
  /** The sender is over one of its per-peer budgets (EDGE_BUDGETS): dropped before it costs anything more. */
  'rate-limited',
  /** The sender is refused for a while (it stayed far over budget): everything from it is dropped. */
  'peer-refused',
  /** The replay cache holds as many live ids as it may (per sender, or in total): the envelope cannot be
   * remembered, so it is refused rather than taken without replay protection. */
  'replay-cache-full',
  /** The actor the message is for has more events waiting than it may queue from outside (MAX_NODE_BACKLOG): the
   * message is dropped before it is logged, so a flood stalls neither the node's log nor its other work. */
  'node-busy',
] as const;
export type EdgeReason = (typeof EDGE_REASONS)[number];

/** Every reason a frame or envelope from the network can be refused for. */
export type EdgeRejectReason = RejectReason | EdgeReason;

const EDGE = new Set<string>(EDGE_REASONS);

export const isEdgeReason = (r: string): r is EdgeReason => EDGE.has(r);

/**
 * The gossip verdict for a refusal: the edge's own refusals depend on this node (its budgets, its cache) and
 * say nothing against the relay that passed the message on, so they ignore rather than reject.
 */
export function edgeGossipVerdict(refusal: EdgeRejectReason | null): 'accept' | 'ignore' | 'reject' {
  if (refusal !== null && isEdgeReason(refusal)) return 'ignore';
  return gossipVerdict(refusal);
}
