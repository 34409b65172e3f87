/**
 * One data dir's part of a deal, in one streaming read of its history (deal-match.ts says what belongs): the deal
 * actors' records and every event of theirs, and the Node actor's events that name the deal, each with a mark of
 * the Node's tail there (its latest snapshot and the pages since) so it can be rebuilt at that event without
 * replaying the Node's whole history. Pages of other actors are skipped by their header, and the Node's pages that
 * do not contain the job id at all are skipped unparsed.
 */
import type { ActorRecord, LoggedEvent } from '../../actors/event-log.ts';
import type { Mutation } from '../store/journal-record.ts';
import type { HistoryPage } from '../store/history-records.ts';
import { type HistoryScanReport, type RecordAt, scanHistory } from '../store/history-reader.ts';
import type { DroppedRow, SnapshotRow } from '../store/store-db.ts';
import { ActorTail, type TailMark } from './actor-tail.ts';
import { dealIdOfActor, inDeal, nodeEventInDeal } from './deal-match.ts';

export const NODE_ACTOR = 'node';

/** A deal actor's history in this dir. */
export interface DealActorHistory {
  readonly id: string;
  record: ActorRecord | undefined;
  /** Its snapshot in the checkpoint the kept history starts at, when its early history is gone. */
  baseSnapshot: SnapshotRow | undefined;
  readonly events: LoggedEvent[];
  readonly dropped: Set<number>;
}

/** A Node event of the deal, and the Node's tail at it. */
export interface NodeHit {
  readonly event: LoggedEvent;
  readonly mark: TailMark;
}

export interface DirDeal {
  readonly actors: Map<string, DealActorHistory>;
  readonly node: ActorTail;
  readonly hits: NodeHit[];
  readonly peerId: string | null;
  readonly report: HistoryScanReport;
}

class DealScan {
  readonly actors = new Map<string, DealActorHistory>();
  readonly node = new ActorTail(NODE_ACTOR);
  readonly hits: NodeHit[] = [];
  peerId: string | null = null;
  readonly #needle: Buffer;

  constructor(readonly job: string) {
    // the job id as it appears in JSON text (deal ids need no escaping, but say so rather than assume it)
    this.#needle = Buffer.from(JSON.stringify(job).slice(1, -1));
  }

  #actor(id: string): DealActorHistory | undefined {
    if (!inDeal(dealIdOfActor(id), this.job)) return undefined;
    let a = this.actors.get(id);
    if (!a) this.actors.set(id, (a = { id, record: undefined, baseSnapshot: undefined, events: [], dropped: new Set() }));
    return a;
  }

  page(p: HistoryPage, at: RecordAt | null): void {
    if (p.actor === NODE_ACTOR) {
      this.node.onPage(p, at);
      if (!p.mayMention(this.#needle)) return;
      for (const event of p.events()) if (nodeEventInDeal(event.payload, this.job)) this.hits.push({ event, mark: this.node.mark() });
      return;
    }
    this.#actor(p.actor)?.events.push(...p.events());
  }

  other(m: Mutation, at: RecordAt | null): void {
    if (m.op !== 'put' && m.op !== 'add') return;
    if (m.t === 'actors') {
      for (const r of m.values as ActorRecord[]) {
        if (r.id === NODE_ACTOR) this.node.onRecord(r);
        else {
          const a = this.#actor(r.id);
          if (a) a.record ??= r;
        }
      }
    } else if (m.t === 'snapshots') {
      for (const row of m.values as SnapshotRow[]) {
        if (row.actor === NODE_ACTOR) this.node.onSnapshot(row);
        else if (at === null) {
          const a = this.#actor(row.actor);
          if (a) a.baseSnapshot = row;
        }
      }
    } else if (m.t === 'dropped') {
      for (const d of m.values as DroppedRow[]) (d.actor === NODE_ACTOR ? this.node.dropped : this.#actor(d.actor)?.dropped)?.add(d.seq);
    } else if (m.t === 'meta') {
      const id = (m.values as { key: string; value: { peerId?: unknown } }[]).find((v) => v.key === 'identity');
      if (typeof id?.value?.peerId === 'string') this.peerId = id.value.peerId;
    }
  }
}

/** What one data dir's history holds of the deal `job`. */
export async function scanDirForDeal(dataDir: string, job: string, progress?: (read: number, total: number) => void): Promise<DirDeal> {
  const s = new DealScan(job);
  const report = await scanHistory(dataDir, { page: (p, at) => s.page(p, at), other: (m, at) => s.other(m, at) }, progress ? { progress } : {});
  // a page is written once; sorted, in case a checkpoint's pages and the segments' interleave
  for (const a of s.actors.values()) a.events.sort((x, y) => x.seq - y.seq);
  return { actors: s.actors, node: s.node, hits: s.hits, peerId: s.peerId, report };
}
