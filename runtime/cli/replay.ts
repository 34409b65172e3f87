/**
 * `replay`: rebuilds an actor's state from the data dir's on-disk history without a running node. It reads the
 * journal segments (read-only), feeds the actor's events through a fresh actor of its kind with effects off,
 * and prints the timeline and the final state; optionally streams it all to the Stately inspector.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { ActorRecord } from '../../actors/event-log.ts';
import { HostedActor } from '../../actors/hosted-actor.ts';
import { actorKind } from '../../actors/kinds.ts';
import { EMPTY_INDEXES, type Fact, type Indexes, evolveIndexes } from '../../machines/indexes.ts';
import { UsageError } from '../errors.ts';
import type { InspectorBridge } from '../inspector/inspector.ts';
import { listSegments, readSegments } from '../store/journal.ts';
import { JOURNAL_DIR } from '../store/constants.ts';
import { historyOf } from '../store/history-reader.ts';

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
  readonly ms: number;
}

/** The actor's registry record, from the first segment that has it. */
export async function actorRecordOf(dataDir: string, actor: string): Promise<ActorRecord | undefined> {
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
  const record = await actorRecordOf(opts.dataDir, opts.actor);
  if (!record) throw new UsageError(`no actor "${opts.actor}" in the log of ${opts.dataDir}; the node's own actor is "node"`);
  const hosted = new HostedActor(record.id, actorKind(record.kind), { input: record.input, inspect: opts.inspector !== null });
  opts.inspector?.forward(hosted.takeInspections());
  let events = 0;
  let lastSeq = 0;
  let failed: ReplayResult['failed'] = null;
  let indexes: Indexes = EMPTY_INDEXES;
  let lastProgress = performance.now();
  for await (const { event, bytesRead, bytesTotal } of historyOf(opts.dataDir, opts.actor)) {
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
  return { events, lastSeq, state: view.value, context: view.context, failed, indexes, ms: Math.round(performance.now() - t0) };
}
