/**
 * The ensemble actor (`ensemble/<id>`, on the requester): its input, the events it takes, the intents it emits and
 * the record `status` shows. Each part is negotiated by a requester actor of its own (`job/<id>@<part>`, with the
 * ensemble as its parent); the ensemble places them all or none, starts them in dependency order and ends them.
 */
import type { At, DealRecoveredEvent, LogIntent, TimerCancelIntent, TimerFiredEvent, TimerScheduleIntent } from './deal.events.ts';
import type { PartAddress, PartMember } from './deal.wire.ts';
import type { EnsembleSpec, PartType } from './ensemble.ts';
import type { JobSpec } from './job.ts';
import type { PartUpdate } from './requester.messages.ts';

export interface EnsembleInput {
  readonly ensembleId: string;
  readonly spec: EnsembleSpec;
  readonly self: string;
  readonly createdAt: number;
  /** Every part must be placed by then, or the ensemble fails. */
  readonly deadline: number;
}

/** A part as `status` shows it (INTERFACE.md). */
export type PartState = 'pending' | 'starting' | 'running' | 'restarting' | 'completed' | 'failed' | 'terminated';
export type EnsembleState = 'requesting' | 'starting' | 'running' | 'stopping' | 'completed' | 'failed' | 'cancelled';

export interface PartView {
  readonly name: string;
  readonly type: PartType;
  readonly state: PartState;
  readonly provider: string | null;
  readonly allocationId: string | null;
  readonly restarts: number;
  readonly exitCode: number | null;
  /** Whether its health check passes now (false until one passed; null: it has no check). */
  readonly healthy: boolean | null;
  readonly message: string;
  /** Its current negotiation on this node (`logs --part` reads its output through it). */
  readonly dealId: string;
}

export interface EnsembleHistoryEntry {
  readonly at: number;
  readonly state: EnsembleState;
  readonly message: string;
}

/** What `status` shows of an ensemble. */
export interface EnsembleRecord {
  readonly id: string;
  readonly name: string;
  readonly kind: 'ensemble';
  readonly state: EnsembleState;
  readonly message: string;
  readonly recovery: EnsembleSpec['recovery'];
  readonly parts: readonly PartView[];
  /** Restarts and moves of its parts, in all. */
  readonly restarts: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly startedAt: number | null;
  readonly endedAt: number | null;
  readonly deadline: number;
  readonly history: readonly EnsembleHistoryEntry[];
}

export interface EnsembleStartEvent extends At {
  readonly type: 'deal.start';
}
export interface PartUpdateEvent extends At {
  readonly type: 'part.update';
  readonly update: PartUpdate;
}
export interface EnsembleCancelEvent extends At {
  readonly type: 'job.cancel';
  readonly replyTo?: string;
}

export type EnsembleEvent = EnsembleStartEvent | PartUpdateEvent | EnsembleCancelEvent | DealRecoveredEvent | TimerFiredEvent;

export type EnsembleIntent =
  /** Start a negotiation for each part (`job/<ensembleId>@<part>`, its parent this ensemble). */
  | { readonly type: 'parts.spawn'; readonly parts: readonly { readonly name: string; readonly dealId: string; readonly job: JobSpec }[] }
  /** Every part is placed: tell this part's negotiation to allocate. */
  | { readonly type: 'part.allocate'; readonly dealId: string; readonly members: readonly PartMember[] }
  /** Start a part held for its dependencies, with where their ports are. */
  | { readonly type: 'part.start.send'; readonly to: string; readonly dealId: string; readonly nonce: number; readonly addrs: readonly PartAddress[]; readonly members: readonly PartMember[] }
  /** Stop a part (a `job.cancel` to its negotiation). */
  | { readonly type: 'part.cancel'; readonly dealId: string }
  | { readonly type: 'ensemble.ended'; readonly record: EnsembleRecord }
  | { readonly type: 'reply.send'; readonly replyTo: string; readonly ok: true; readonly value: EnsembleRecord }
  | TimerScheduleIntent
  | TimerCancelIntent
  | LogIntent;

/** The deal id of a part's negotiation: `<ensembleId>@<part>`, and `.<gen>` after it once recovery started it again. */
export function partDealId(ensembleId: string, part: string, gen = 0): string {
  return gen === 0 ? `${ensembleId}@${part}` : `${ensembleId}@${part}.${gen}`;
}

/** The ensemble and part of a part's deal id, or null for a deal of its own. */
export function parsePartDealId(dealId: string): { readonly ensembleId: string; readonly part: string } | null {
  const at = dealId.lastIndexOf('@');
  if (at <= 0 || at === dealId.length - 1) return null;
  return { ensembleId: dealId.slice(0, at), part: dealId.slice(at + 1).replace(/\.\d+$/, '') };
}
