/** Tunables of the deal service (run flags set some), with their defaults. */
import { DEAL_DEFAULTS } from '../../machines/deal.constants.ts';
import type { RequesterTiming } from '../../machines/requester.messages.ts';

export interface DealServiceInit {
  readonly timing: RequesterTiming;
  readonly heartbeatMs: number;
  readonly placementMs: number;
}

export const DEAL_SERVICE_DEFAULTS: DealServiceInit = Object.freeze({
  timing: DEAL_DEFAULTS.requester,
  heartbeatMs: DEAL_DEFAULTS.heartbeatMs,
  placementMs: DEAL_DEFAULTS.placementMs,
});
