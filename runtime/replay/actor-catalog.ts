/**
 * Every actor a data dir's history holds (for `replay --list` and for suggestions when an `--actor` is not there):
 * kind, id, job name, event count, first and last time, and final state, in one streaming read of the log.
 *
 * The final state is replayed, as cheaply as the log allows: a small actor (a deal's, a few dozen events) is
 * replayed while the log is read, and an actor that grows past LIVE_LIMIT events (the Node) is rebuilt at the end
 * from its latest snapshot and the pages after it (actor-tail.ts).
 */
import type { ActorRecord } from '../../actors/event-log.ts';
import type { HostedActor } from '../../actors/hosted-actor.ts';
import type { Mutation } from '../store/journal-record.ts';
import type { ScanStop } from '../store/journal-scan.ts';
import type { HistoryPage } from '../store/history-records.ts';
import { type HistoryStart, type RecordAt, scanHistory } from '../store/history-reader.ts';
import type { DroppedRow, SnapshotRow } from '../store/store-db.ts';
import { ActorTail, hostActor, tailEvents } from './actor-tail.ts';
import { kindLabel } from './actor-kinds.ts';

/** Actors replayed while the log is read, up to this many events; past it, rebuilt from their tail at the end. */
export const LIVE_LIMIT = 2000;

export interface ActorSummary {
  readonly id: string;
  readonly kind: string;
  /** The job's (or ensemble's) name, for the actors of a deal. */
  readonly name?: string;
  readonly events: number;
  readonly first: number | null;
  readonly last: number | null;
  /** Its state after its last event (null when it could not be rebuilt: `problem` says why). */
  readonly state: unknown;
  /** The node let go of it (it ended); only its history is left. */
  readonly ended: boolean;
  readonly problem?: string;
}

export interface Catalog {
  /** Newest first (by last event). */
  readonly actors: readonly ActorSummary[];
  readonly start: HistoryStart;
  readonly stop: ScanStop | null;
  /** The node's peer id, as its log records it. */
  readonly peerId: string | null;
}

export interface CatalogOptions {
  /** Only actors of this kind (as `kindLabel` names it). */
  readonly kind?: string | null;
  /** Replay each actor to its final state (off: ids and counts only). */
  readonly states: boolean;
  readonly progress?: (line: string) => void;
}

function nameOf(record: ActorRecord | undefined): string | undefined {
  const input = record?.input as { job?: { name?: unknown }; spec?: { name?: unknown } } | undefined;
  const name = input?.job?.name ?? input?.spec?.name;
  return typeof name === 'string' ? name : undefined;
}

/** One actor as the scan follows it. */
class Tracked extends ActorTail {
  events = 0;
  first: number | null = null;
  last: number | null = null;
  lastSeq = 0;
  ended = false;
  /** Replayed as the log is read, while it is small and nothing went wrong. */
  live: HostedActor | null = null;
  liveSeq = 0;
  liveOff = false;
  /** Its state when it ended, while replayed live (and the seq it was at). */
  final: { value: unknown; seq: number } | null = null;

  stopLive(): void {
    this.live?.stop();
    this.live = null;
    this.liveOff = true;
  }
}

class CatalogScan {
  readonly actors = new Map<string, Tracked>();
  peerId: string | null = null;

  constructor(readonly opts: CatalogOptions) {}

  get(id: string): Tracked {
    let t = this.actors.get(id);
    if (!t) this.actors.set(id, (t = new Tracked(id)));
    return t;
  }

  wanted(t: Tracked): boolean {
    return !this.opts.kind || (t.record !== undefined && kindLabel(t.record.kind) === this.opts.kind);
  }

  page(p: HistoryPage, at: RecordAt | null): void {
    const t = this.get(p.actor);
    t.events += p.seq - p.first + 1;
    t.first ??= p.firstTs;
    t.last = p.lastTs;
    t.lastSeq = p.seq;
    t.onPage(p, at);
    if (this.opts.states && !t.liveOff && this.wanted(t)) this.#replayLive(t, p);
  }

  #replayLive(t: Tracked, p: HistoryPage): void {
    if (t.events > LIVE_LIMIT || !t.record) return t.stopLive();
    try {
      if (!t.live) {
        // only from its start (or its checkpoint snapshot): a page that does not follow on means history is missing
        t.liveSeq = t.snapshot?.seq ?? 0;
        if (p.first > t.liveSeq + 1) return t.stopLive();
        t.live = hostActor(t.id, t.record, t.snapshot);
      }
      const batch = p.events().filter((e) => e.seq > t.liveSeq && !t.dropped.has(e.seq));
      const r = t.live.deliver(batch.map((e) => e.payload));
      if (r.failure) return t.stopLive(); // its event was dropped later, or the build disagrees: rebuilt at the end
      t.liveSeq = p.seq;
    } catch {
      t.stopLive();
    }
  }

  other(m: Mutation): void {
    if (m.op === 'delete' && m.t === 'actors') {
      for (const id of m.keys as string[]) this.#ended(this.get(id));
      return;
    }
    if (m.op !== 'put' && m.op !== 'add') return;
    if (m.t === 'actors') for (const r of m.values as ActorRecord[]) this.get(r.id).onRecord(r);
    else if (m.t === 'snapshots') for (const row of m.values as SnapshotRow[]) this.get(row.actor).onSnapshot(row);
    else if (m.t === 'dropped') {
      for (const d of m.values as DroppedRow[]) {
        const t = this.get(d.actor);
        t.dropped.add(d.seq);
        if (t.live && t.liveSeq >= d.seq) t.stopLive();
      }
    } else if (m.t === 'meta') {
      const id = (m.values as { key: string; value: { peerId?: unknown } }[]).find((v) => v.key === 'identity');
      if (typeof id?.value?.peerId === 'string') this.peerId = id.value.peerId;
    }
  }

  #ended(t: Tracked): void {
    t.ended = true;
    if (t.live && t.liveSeq === t.lastSeq) t.final = { value: t.live.value, seq: t.liveSeq };
    if (t.live) t.stopLive();
  }

  /** The final state of an actor: its live replay's, or rebuilt from its tail. */
  async finalState(dataDir: string, t: Tracked): Promise<{ state: unknown; problem?: string }> {
    if (t.live && t.liveSeq === t.lastSeq) return { state: t.live.value };
    if (t.final && t.final.seq === t.lastSeq) return { state: t.final.value };
    if (!t.record) return { state: null, problem: 'its registry record is not in the history kept' };
    const mark = t.mark();
    if (!mark.snapshot && (mark.pages[0]?.first ?? 1) > 1) return { state: null, problem: 'its early history is gone and no snapshot covers it' };
    const pending = mark.pages.reduce((n, p) => n + p.seq - p.first + 1, 0);
    if (pending > 50_000) this.opts.progress?.(`replay: rebuilding ${t.id}${mark.snapshot ? ` from its snapshot at seq ${mark.snapshot.seq}` : ''}: ${pending.toLocaleString('en')} events`);
    try {
      const hosted = hostActor(t.id, t.record, mark.snapshot);
      try {
        for await (const e of tailEvents(dataDir, t.id, mark, t.dropped)) {
          const r = hosted.deliver([e.payload]);
          if (r.failure) return { state: hosted.value, problem: `it failed at seq ${e.seq}: ${r.failure.message}` };
        }
        return { state: hosted.value };
      } finally {
        hosted.stop();
      }
    } catch (e) {
      return { state: null, problem: (e as Error).message };
    }
  }
}

/** The actors of a data dir's history, newest first. */
export async function catalogActors(dataDir: string, opts: CatalogOptions): Promise<Catalog> {
  const c = new CatalogScan(opts);
  let lastProgress = performance.now();
  const report = await scanHistory(dataDir, { page: (p, at) => c.page(p, at), other: (m) => c.other(m) }, {
    progress: (read, total) => {
      if (performance.now() - lastProgress < 1000) return;
      lastProgress = performance.now();
      opts.progress?.(`replay: ${Math.round((read / Math.max(1, total)) * 100)}% of ${(total / 1e6).toFixed(1)} MB read, ${c.actors.size} actors`);
    },
  });
  const actors: ActorSummary[] = [];
  for (const t of c.actors.values()) {
    // an id that only appears in a snapshot or a delete, never with an event nor a record, is not an actor to list
    if (!c.wanted(t) || (t.events === 0 && !t.record)) continue;
    const { state, problem } = opts.states ? await c.finalState(dataDir, t) : { state: null, problem: undefined };
    const name = nameOf(t.record);
    actors.push({ id: t.id, kind: kindLabel(t.record?.kind ?? '?'), ...(name ? { name } : {}), events: t.events, first: t.first, last: t.last, state, ended: t.ended, ...(problem ? { problem } : {}) });
  }
  for (const t of c.actors.values()) t.live?.stop();
  actors.sort((a, b) => (b.last ?? -1) - (a.last ?? -1) || a.id.localeCompare(b.id));
  return { actors, start: report.start, stop: report.stop, peerId: c.peerId };
}
