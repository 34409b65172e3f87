/**
 * Capability grants on the deal path (INTERFACE.md "Trust: who may use a node"), both sides:
 *
 * - a requester's bid requests carry the tokens it holds that grant `deploy` (`tokens()`);
 * - a provider checks a request's tokens against its anchors for the envelope's signer as the request arrives
 *   (`check()`), and hands the Node the result, never the tokens: the Node decides (machines/bidding.ts), and its log
 *   says why it declined;
 * - a deal the Node bid on under a grant keeps it (the provider actor's input, the allocation's input and record), and
 *   every later message of that deal that asks the provider for work or data (commit, allocate, part.start,
 *   batch.assign, allocation.query, logs, result files, tunnels) is refused `unauthorized` once the grant no longer
 *   holds (`lapsed()`). Messages that only let go of what the provider holds (revert, cancel, batch.release) always
 *   pass: refusing them would keep an untrusted requester's job running here until its timeout.
 *
 * A deal accepted without a grant (the provider did not require one) is never refused here.
 */
import type { GrantCheck } from '../../machines/bidding.messages.ts';
import type { DealGrant } from '../../machines/deal.events.ts';
import type { Action } from '../trust/capability.ts';
import type { Authorization } from '../trust/trust-service.ts';

/** What deals ask of the node's trust service (runtime/trust/trust-service.ts). */
export interface DealTrust {
  /** The tokens this node holds that grant `action` now (at most MAX_GRANTS_PER_REQUEST, newest first). */
  grantsFor(action: Action): string[];
  /** Whether one of `tokens` grants `action` to `requesterDid` from one of this node's anchors, now. */
  authorize(tokens: readonly string[] | undefined, requesterDid: string, action: Action): Authorization;
  /** Whether a grant found before still holds (not expired, no link revoked since). */
  stillHolds(grant: DealGrant): boolean;
}

/** Longest refusal detail handed to the Node: it is logged, and sent back in the decline (MAX_TEXT in all). */
export const MAX_GRANT_DETAIL = 400;

export class DealGrants {
  /** Later deal messages refused because their deal's grant lapsed, by what they asked for. */
  readonly refused: Partial<Record<string, number>> = {};

  constructor(
    private readonly trust: DealTrust | undefined,
    private readonly now: () => number,
  ) {}

  /** What this node's bid requests carry: the tokens it holds for `deploy`; nothing when it holds none. */
  tokens(): { grants?: string[] } {
    const held = this.trust?.grantsFor('deploy') ?? [];
    return held.length > 0 ? { grants: held } : {};
  }

  /**
   * A bid request's tokens checked for `requesterDid` (the envelope's verified signer), as the Node gets it; absent
   * when the request carried none (the Node then knows it showed no grant).
   */
  check(tokens: readonly string[] | undefined, requesterDid: string): GrantCheck | undefined {
    if (!tokens || tokens.length === 0) return undefined;
    if (!this.trust) return { ok: false, reason: 'no-anchor', detail: 'this node checks no capability tokens' };
    const a = this.trust.authorize(tokens, requesterDid, 'deploy');
    return a.ok ? { ok: true, ids: [...a.ids], expiresAt: a.expiresAt } : { ok: false, reason: a.reason, detail: a.detail.slice(0, MAX_GRANT_DETAIL) };
  }

  /**
   * Why a later message of a deal accepted under `grant` is refused now, with the code `unauthorized` (where the answer
   * has no code, its reason starts `unauthorized: `), counted under `what`; null when it may go on: the grant holds,
   * or the deal needed none.
   */
  lapsed(grant: DealGrant | undefined, what: string): string | null {
    if (!grant || !this.trust || this.trust.stillHolds(grant)) return null;
    this.refused[what] = (this.refused[what] ?? 0) + 1;
    const why = grant.expiresAt <= this.now() ? `expired at ${new Date(grant.expiresAt).toISOString()}` : 'was revoked';
    return `the capability grant this deal was accepted under ${why}`;
  }
}
