/**
 * What the events and intents of the three deal machines (requester negotiation, provider negotiation, allocation)
 * share. Every event carries `now` (ms since the epoch), stamped by the runtime when it accepts it: the machines
 * never read a clock. Events from peers also carry `from`, the authenticated sender's peer id.
 */

/** Stamped by the receiving runtime on everything from a peer. */
export interface FromPeer {
  readonly from: string;
  readonly now: number;
}
/** Stamped by the runtime on local events. */
export interface At {
  readonly now: number;
}

/**
 * The capability grant a provider accepted a deal under (its chain's link ids, root first, and its earliest expiry):
 * the provider's runtime refuses the deal's later messages once it no longer holds (expired, or a link revoked).
 */
export interface DealGrant {
  readonly ids: readonly string[];
  readonly expiresAt: number;
}

/**
 * Runtime timers of a deal machine: an intent asks for one at an absolute time; `timer.fired` comes back. The
 * machines keep their pending timers, and make these intents, with the helper in deal.timers.ts.
 */
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
/** Sent once after the actor was rebuilt from its log: re-arm timers; an unanswered step is retried. */
export interface DealRecoveredEvent extends At {
  readonly type: 'deal.recovered';
}
