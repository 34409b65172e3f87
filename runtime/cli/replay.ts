/**
 * `replay`: rebuilds an actor's state from the data dir's on-disk history without a running node. It reads the
 * journal segments (read-only), feeds the actor's events through a fresh actor of its kind with effects off,
 * and prints the timeline and the final state; optionally streams it all to the Stately inspector. When retention
 * removed the oldest segments it says so and starts from the actor's snapshot in the checkpoint where the kept
 * history begins.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { ActorRecord } from '../../actors/event-log.ts';
import { HostedActor } from '../../actors/hosted-actor.ts';
import { actorKind } from '../../actors/kinds.ts';
import { EMPTY_INDEXES, type Fact, type Indexes, evolveIndexes } from '../../machines/indexes.ts';
import { UsageError } from '../errors.ts';
import type { InspectorBridge } from '../inspector/inspector.ts';
import type { Checkpoint } from '../store/checkpoint.ts';
import { listSegments, readSegments } from '../store/journal.ts';
import { JOURNAL_DIR } from '../store/constants.ts';
import { actorAtBase, describeRemoved, historyOf, historyStart } from '../store/history-reader.ts';
import { INDEXES_KEY } from '../store/projections.ts';

export interface ReplayOptions {
  readonly dataDir: string;
  readonly actor: string;
  /** Stop after this seq. */
  readonly to: number | null;
  readonly json: boolean;
  /** Print one line per event (off: only progress and the final state). */
  readonly timeline: boolean;
  readonly inspector: InspectorBridge | null;
  readonly out: (line: string) => void;
  readonly progress: (line: string) => void;
}

export interface ReplayResult {
  readonly events: number;
  readonly lastSeq: number;
  readonly state: unknown;
  readonly context: unknown;
  readonly failed: { seq: number; message: string } | null;
  /** The indexes rebuilt from the facts of the replayed events. */
  readonly indexes: Indexes;
  /**
   * Set when retention removed the oldest history: replay began at the checkpoint where segment `fromSegment`
   * begins, from the actor's snapshot there (after seq `fromSeq`; for the node, with the indexes saved with it).
   */
  readonly history: { readonly note: string; readonly removedThrough: number; readonly before: number | null; readonly fromSegment: number; readonly fromSeq: number } | null;
  readonly ms: number;
}

/** The actor's registry record: from the base the history starts at, else from the first segment that has it. */
export async function actorRecordOf(dataDir: string, actor: string, base?: Checkpoint): Promise<ActorRecord | undefined> {
  const atBase = base && actorAtBase(base, actor).record;
  if (atBase) return atBase;
  const dir = path.join(dataDir, JOURNAL_DIR);
  for await (const seg of readSegments(dir, await listSegments(dir))) {
    for (const r of seg.records) {
      for (const m of (r as { tx: { t: string; op: string; values?: ActorRecord[] }[] }).tx) {
        if (m.t === 'actors' && (m.op === 'put' || m.op === 'add')) {
          const found = m.values?.find((v) => v.id === actor);
          if (found) return found;
        }
      }
    }
  }
  return undefined;
}

export async function replay(opts: ReplayOptions): Promise<ReplayResult> {
  const t0 = performance.now();
  if (!existsSync(path.join(opts.dataDir, JOURNAL_DIR))) throw new UsageError(`no event log in ${opts.dataDir} (no ${JOURNAL_DIR}/); pass the --data-dir of a node that has run`);
  const start = await historyStart(opts.dataDir);
  const note = describeRemoved(start);
  // the oldest history is gone: without the checkpoint where the kept history begins, nothing can be rebuilt
  if (start.removed && !start.removed.base) throw new Error(`${note}; replay cannot rebuild ${opts.actor} without it`);
  const base = start.removed?.base;
  const record = await actorRecordOf(opts.dataDir, opts.actor, base);
  if (!record) throw new UsageError(`no actor "${opts.actor}" in the log of ${opts.dataDir}${note ? ` (${note})` : ''}; the node's own actor is "node"`);
  const at = base ? actorAtBase(base, opts.actor) : undefined;
  const fromSeq = at?.snapshot?.seq ?? 0;
  if (opts.to !== null && opts.to < fromSeq) throw new UsageError(`--to ${opts.to} is before what is kept of ${opts.actor}'s history: ${note}, from its snapshot at seq ${fromSeq}`);
  if (note) opts.progress(`replay: ${note}`);
  const hosted = new HostedActor(record.id, actorKind(record.kind), { input: record.input, ...(at?.snapshot ? { snapshot: at.snapshot } : {}), inspect: opts.inspector !== null });
  opts.inspector?.forward(hosted.takeInspections());
  let events = 0;
  let lastSeq = fromSeq;
  let failed: ReplayResult['failed'] = null;
  // the Node's indexes are saved with its snapshot: from there on they are rebuilt from the events replayed
  let indexes: Indexes = (opts.actor === 'node' && at?.snapshot && (at.meta.get(INDEXES_KEY) as Indexes | undefined)) || EMPTY_INDEXES;
  const history = start.removed && note ? { note, removedThrough: start.removed.through, before: start.removed.before, fromSegment: start.removed.through + 1, fromSeq } : null;
  let lastProgress = performance.now();
  for await (const { event, bytesRead, bytesTotal } of historyOf(opts.dataDir, opts.actor, base)) {
    if (opts.to !== null && event.seq > opts.to) break;
    const r = hosted.deliver([event.payload]);
    for (const f of r.facts ?? []) indexes = evolveIndexes(indexes, { actor: opts.actor, seq: event.seq, ts: event.ts, fact: f.fact as Fact });
    if (r.inspections) opts.inspector?.forward(r.inspections);
    events += 1;
    lastSeq = event.seq;
    if (r.failure) {
      failed = { seq: event.seq, message: r.failure.message };
      break;
    }
    if (opts.timeline) {
      const state = hosted.value;
      opts.out(
        opts.json
          ? JSON.stringify({ seq: event.seq, ts: event.ts, type: event.type, origin: event.origin, state })
          : `${String(event.seq).padStart(8)}  ${new Date(event.ts).toISOString()}  ${event.type.padEnd(18)} ${event.origin.padEnd(9)} -> ${typeof state === 'string' ? state : JSON.stringify(state)}`,
      );
    }
    if ((events & 1023) === 0 && performance.now() - lastProgress > 1000) {
      lastProgress = performance.now();
      opts.progress(`replay: ${Math.round((bytesRead / Math.max(1, bytesTotal)) * 100)}% of ${(bytesTotal / 1e6).toFixed(1)} MB read, ${events.toLocaleString('en')} events`);
    }
  }
  const view = hosted.view();
  hosted.stop();
  return { events, lastSeq, state: view.value, context: view.context, failed, indexes, history, ms: Math.round(performance.now() - t0) };
}
