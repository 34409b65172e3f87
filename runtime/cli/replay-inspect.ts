/**
 * Replaying at the recorded pace (`--speed X`: X times as fast as it happened), and streaming the actors of several
 * nodes to one Stately inspector: each hosted actor names its sessions by its actor id, which two nodes share (a
 * deal's provider actor has the same id on every provider asked), so a deal's records are renamed per node.
 */
import type { InspectionRecord } from '../../actors/actor.protocol.ts';
import { UsageError } from '../errors.ts';

/** The longest wait between two events, whatever the recorded gap (a deal may idle for hours). */
export const MAX_GAP_MS = 10_000;

/** `--speed`'s value. */
export function parseSpeed(v: string | undefined): number | null {
  if (v === undefined) return null;
  const x = Number(v);
  if (!Number.isFinite(x) || x <= 0) throw new UsageError(`--speed "${v}" must be a number > 0 (2: twice the recorded pace, 0.5: half)`);
  return x;
}

/** Waits between events as long as they were apart when recorded, divided by the speed. */
export class Pacer {
  #last: number | null = null;
  /** Gaps longer than MAX_GAP_MS at this speed (shortened to it). */
  capped = 0;

  constructor(readonly speed: number | null) {}

  async wait(at: number): Promise<void> {
    const last = this.#last;
    this.#last = at;
    if (this.speed === null || last === null || at <= last) return;
    let ms = (at - last) / this.speed;
    if (ms > MAX_GAP_MS) {
      this.capped += 1;
      ms = MAX_GAP_MS;
    }
    await new Promise((resolve) => setTimeout(resolve, ms));
  }
}

/** The records with every session id (and the actor's name) prefixed by `node`, e.g. `B:provider/...`. */
export function onNode(node: string, records: readonly InspectionRecord[]): InspectionRecord[] {
  const q = (id: string) => `${node}:${id}`;
  return records.map((r) => {
    const base = { ...r, sessionId: q(r.sessionId), ...(r.rootId ? { rootId: q(r.rootId) } : {}) };
    switch (r.type) {
      case '@xstate.actor':
        return { ...base, type: r.type, name: q(r.name), ...(r.parentId ? { parentId: q(r.parentId) } : {}) } as InspectionRecord;
      case '@xstate.event':
        return { ...base, type: r.type, ...(r.sourceId ? { sourceId: q(r.sourceId) } : {}) } as InspectionRecord;
      default:
        return base as InspectionRecord;
    }
  });
}
