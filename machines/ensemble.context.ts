/**
 * The ensemble actor's context, and the draft its steps (ensemble.steps.ts) write into: a step changes a draft of
 * the context and lists the intents to emit, and the machine commits both at once.
 */
import { type PendingTimers, timerBook } from './deal.timers.ts';
import { RecordDraft } from './draft.ts';
import { type EnsembleEvent, type EnsembleInput, type EnsembleIntent, type EnsembleRecord, type EnsembleState, type PartView, partDealId } from './ensemble.messages.ts';
import type { PartUpdate } from './requester.messages.ts';

/** What the ensemble keeps of each part's negotiation: its latest update, and what it was told. */
export interface PartTrack {
  /** Its current negotiation (`<id>@<part>`, then `<id>@<part>.<gen>` once recovery started it again). */
  readonly dealId: string;
  /** How often recovery started it again. */
  readonly gen: number;
  /** Restarts of its earlier negotiations (recovery's, and what their providers reported). */
  readonly restartsBefore: number;
  /** The latest update of its negotiation (null before the first). */
  readonly update: PartUpdate | null;
  /** `${provider}#${nonce}` the part was told to allocate for, and started for (a part.start went out). */
  readonly allocateSent: string | null;
  readonly startSent: string | null;
  /** Restarts its provider reported, as last seen (a rise is a restart). */
  readonly restartsSeen: number;
  /** Its allocation ids so far: a new one after the first is a move. */
  readonly allocations: readonly string[];
}

export interface EnsembleContext {
  readonly input: EnsembleInput;
  readonly parts: Readonly<Record<string, PartTrack>>;
  /** Times of the restarts and moves counted against `maxRestarts`, the oldest first (within the window). */
  readonly restartTimes: readonly number[];
  /** Why the ensemble fails, once a part failed for good (or the restarts ran out). */
  readonly failure: string | null;
  /** How it ends, once it is stopping. */
  readonly outcome: Extract<EnsembleState, 'completed' | 'failed' | 'cancelled'> | null;
  readonly timers: PendingTimers;
  readonly pendingReply: string | null;
  readonly record: EnsembleRecord;
}

export { HISTORY_LIMIT } from './draft.ts';
export const ensembleTimers = timerBook({ slackMs: 1_000 });

/** A part's track before its negotiation reported anything. */
export function freshTrack(dealId: string, gen: number, restartsBefore: number): PartTrack {
  return { dealId, gen, restartsBefore, update: null, allocateSent: null, startSent: null, restartsSeen: 0, allocations: [] };
}

export function initialEnsemble(input: EnsembleInput): EnsembleContext {
  const parts: Record<string, PartTrack> = {};
  for (const p of input.spec.parts) parts[p.name] = freshTrack(partDealId(input.ensembleId, p.name), 0, 0);
  return {
    input,
    parts,
    restartTimes: [],
    failure: null,
    outcome: null,
    timers: {},
    pendingReply: null,
    record: {
      id: input.ensembleId,
      name: input.spec.name,
      kind: 'ensemble',
      state: 'requesting',
      message: 'waiting to place its parts',
      recovery: input.spec.recovery,
      parts: input.spec.parts.map((p): PartView => ({ name: p.name, type: p.type, state: 'pending', provider: null, allocationId: null, restarts: 0, exitCode: null, healthy: null, message: 'not placed yet', dealId: partDealId(input.ensembleId, p.name) })),
      restarts: 0,
      createdAt: input.createdAt,
      updatedAt: input.createdAt,
      startedAt: null,
      endedAt: null,
      deadline: input.deadline,
      history: [],
    },
  };
}

export class EnsembleDraft extends RecordDraft<EnsembleState, EnsembleRecord, EnsembleContext, EnsembleIntent> {
  constructor(ctx: EnsembleContext, now: number) {
    super(ctx, now, ensembleTimers);
  }

  track(part: string, patch: Partial<PartTrack>): this {
    return this.set({ parts: { ...this.ctx.parts, [part]: { ...this.ctx.parts[part]!, ...patch } } });
  }

  /** A step people should see: the state and message, and a history entry (only when either changed). */
  progress(state: EnsembleState, message: string): this {
    const r = this.ctx.record;
    if (r.state === state && r.message === message) return this;
    return this.entry(state, message);
  }
}

export function beginEnsemble(c: EnsembleContext, e: EnsembleEvent): EnsembleDraft {
  return new EnsembleDraft(c, e.now).timers({ timers: ensembleTimers.afterFire(c.timers, e), intents: [] });
}
