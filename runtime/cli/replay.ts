/**
 * `replay --actor ID`: rebuilds an actor's state from the data dir's on-disk history without a running node. It
 * streams the journal segments (read-only), feeds the actor's events through a fresh actor of its kind with effects
 * off, and prints the timeline (optionally what each event changed, and only the events of a window) and the final
 * state; optionally streams it all to the Stately inspector, at the recorded pace with `--speed`. When retention
 * removed the oldest segments it says so and starts from the actor's snapshot in the checkpoint where the kept
 * history begins; when the log is damaged or ends in a torn write it says where the history stops.
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
import { JOURNAL_DIR } from '../store/constants.ts';
import { actorAtBase, describeRemoved, describeStop, historyOf, historyStart, scanHistory } from '../store/history-reader.ts';
import type { ScanStop } from '../store/journal-scan.ts';
import { INDEXES_KEY } from '../store/projections.ts';
import { catalogActors } from '../replay/actor-catalog.ts';
import { closestIds } from '../replay/closest-ids.ts';
import { diffValues } from '../replay/context-diff.ts';
import { OPEN_WINDOW, type ReplayWindow, pastEnd, shown } from '../replay/replay-window.ts';
import { Pacer } from './replay-inspect.ts';
import { diffJson, diffLines, timelineLine } from './replay-format.ts';

export interface ReplayOptions {
  readonly dataDir: string;
  readonly actor: string;
  /** Which events are shown, and where the replay stops (`toSeq`, `toTime`). */
  readonly window: ReplayWindow;
  readonly json: boolean;
  /** Print one line per event (off: only progress and the final state). */
  readonly timeline: boolean;
  /** Under each event, what it changed. */
  readonly diff?: boolean;
  /** Replay at this many times the recorded pace (null: at once). */
  readonly speed?: number | null;
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
  /** Set when the history read stopped early (damage, a torn last write): where, and why. */
  readonly stopped: (ScanStop & { readonly note: string }) | null;
  readonly ms: number;
}

/** The actor's registry record: from the base the history starts at, else from the first record of the log that has it. */
export async function actorRecordOf(dataDir: string, actor: string, base?: Checkpoint): Promise<ActorRecord | undefined> {
  const atBase = base && actorAtBase(base, actor).record;
  if (atBase) return atBase;
  let found: ActorRecord | undefined;
  await scanHistory(dataDir, {
    page: () => {},
    other: (m) => {
      if (!found && m.t === 'actors' && (m.op === 'put' || m.op === 'add')) found = (m.values as ActorRecord[]).find((v) => v.id === actor);
    },
    done: () => found !== undefined,
  });
  return found;
}

/** The one-line refusal for an actor the log does not hold, naming the closest ids it does hold. */
async function unknownActor(dataDir: string, actor: string, note: string | null): Promise<UsageError> {
  const { actors } = await catalogActors(dataDir, { states: false });
  const near = closestIds(actor, actors.map((a) => a.id));
  const all = `\`replay --list --data-dir ${dataDir}\` lists all ${actors.length}`;
  return new UsageError(`no actor "${actor}" in the log of ${dataDir}${note ? ` (${note})` : ''}; ${near.length ? `closest: ${near.join(', ')}; ` : ''}${all}`);
}

export async function replay(opts: ReplayOptions): Promise<ReplayResult> {
  const t0 = performance.now();
  const w = opts.window ?? OPEN_WINDOW;
  if (!existsSync(path.join(opts.dataDir, JOURNAL_DIR))) throw new UsageError(`no event log in ${opts.dataDir} (no ${JOURNAL_DIR}/); pass the --data-dir of a node that has run`);
  const start = await historyStart(opts.dataDir);
  const note = describeRemoved(start);
  // the oldest history is gone: without the checkpoint where the kept history begins, nothing can be rebuilt
  if (start.removed && !start.removed.base) throw new Error(`${note}; replay cannot rebuild ${opts.actor} without it`);
  const base = start.removed?.base;
  const record = await actorRecordOf(opts.dataDir, opts.actor, base);
  if (!record) throw await unknownActor(opts.dataDir, opts.actor, note);
  const at = base ? actorAtBase(base, opts.actor) : undefined;
  const fromSeq = at?.snapshot?.seq ?? 0;
  if (w.toSeq !== null && w.toSeq < fromSeq) throw new UsageError(`--to ${w.toSeq} is before what is kept of ${opts.actor}'s history: ${note}, from its snapshot at seq ${fromSeq}`);
  if (note) opts.progress(`replay: ${note}`);
  const hosted = new HostedActor(record.id, actorKind(record.kind), { input: record.input, ...(at?.snapshot ? { snapshot: at.snapshot } : {}), inspect: opts.inspector !== null });
  opts.inspector?.forward(hosted.takeInspections());
  const pacer = new Pacer(opts.speed ?? null);
  let events = 0;
  let lastSeq = fromSeq;
  let failed: ReplayResult['failed'] = null;
  let stop: ScanStop | null = null;
  // the Node's indexes are saved with its snapshot: from there on they are rebuilt from the events replayed
  let indexes: Indexes = (opts.actor === 'node' && at?.snapshot && (at.meta.get(INDEXES_KEY) as Indexes | undefined)) || EMPTY_INDEXES;
  const history = start.removed && note ? { note, removedThrough: start.removed.through, before: start.removed.before, fromSegment: start.removed.through + 1, fromSeq } : null;
  const view = () => {
    const s = hosted.persisted(0).snapshot as { value?: unknown; context?: unknown };
    return { state: s.value, context: s.context };
  };
  let before = opts.diff ? view() : undefined;
  let lastProgress = performance.now();
  for await (const { event, bytesRead, bytesTotal } of historyOf(opts.dataDir, opts.actor, base, (s) => (stop = s))) {
    if (pastEnd(w, event)) break;
    const show = opts.timeline && shown(w, event);
    // the inspector is sent every event; the timeline only the ones shown
    if (show || opts.inspector) await pacer.wait(event.ts);
    const r = hosted.deliver([event.payload]);
    for (const f of r.facts ?? []) indexes = evolveIndexes(indexes, { actor: opts.actor, seq: event.seq, ts: event.ts, fact: f.fact as Fact });
    if (r.inspections) opts.inspector?.forward(r.inspections);
    events += 1;
    lastSeq = event.seq;
    if (r.failure) {
      failed = { seq: event.seq, message: r.failure.message };
      break;
    }
    const after = opts.diff ? view() : undefined;
    if (show) {
      const state = hosted.value;
      const diff = after ? diffValues(before, after) : undefined;
      if (opts.json) opts.out(JSON.stringify({ seq: event.seq, ts: event.ts, type: event.type, origin: event.origin, state, ...diffJson(diff) }));
      else for (const line of [timelineLine(event, state), ...diffLines(diff)]) opts.out(line);
    }
    before = after;
    if ((events & 1023) === 0 && performance.now() - lastProgress > 1000) {
      lastProgress = performance.now();
      opts.progress(`replay: ${Math.round((bytesRead / Math.max(1, bytesTotal)) * 100)}% of ${(bytesTotal / 1e6).toFixed(1)} MB read, ${events.toLocaleString('en')} events`);
    }
  }
  const stopped = stop ? { ...(stop as ScanStop), note: describeStop(stop)! } : null;
  if (stopped) opts.progress(`replay: ${stopped.note}; ${opts.actor} is shown as of its last event before it (seq ${lastSeq})`);
  const final = hosted.view();
  hosted.stop();
  return { events, lastSeq, state: final.value, context: final.context, failed, indexes, history, stopped, ms: Math.round(performance.now() - t0) };
}
