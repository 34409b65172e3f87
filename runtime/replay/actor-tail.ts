/**
 * An actor's tail, followed through a history scan: its registry record, its latest snapshot and where the pages
 * after that snapshot are, so it can be rebuilt at the end (or at a point of the scan, from a mark) by replaying only
 * those pages, read again by position, instead of its whole history. On a million-event Node that is the few
 * thousand events since its last snapshot.
 */
import type { VersionedSnapshot } from '../../actors/actor.protocol.ts';
import type { ActorRecord, LoggedEvent } from '../../actors/event-log.ts';
import { HostedActor } from '../../actors/hosted-actor.ts';
import { actorKind } from '../../actors/kinds.ts';
import type { HistoryPage } from '../store/history-records.ts';
import { type RecordAt, pagesAt } from '../store/history-reader.ts';
import type { SnapshotRow } from '../store/store-db.ts';

/** A page as a tail keeps it: where to read it again, or the page itself when it came from a checkpoint. */
export interface PageRef {
  readonly at: RecordAt | null;
  readonly first: number;
  readonly seq: number;
  readonly page?: HistoryPage;
}

/** A tail as it was at one point of the scan. */
export interface TailMark {
  readonly snapshot: SnapshotRow | undefined;
  readonly pages: readonly PageRef[];
}

export class ActorTail {
  record: ActorRecord | undefined;
  snapshot: SnapshotRow | undefined;
  pages: PageRef[] = [];
  readonly dropped = new Set<number>();

  constructor(readonly id: string) {}

  onRecord(r: ActorRecord): void {
    this.record ??= r;
  }

  /** A snapshot was saved: pages it covers are no longer needed (a page may straddle it, or precede it in the log). */
  onSnapshot(row: SnapshotRow): void {
    if (this.snapshot && row.seq < this.snapshot.seq) return;
    this.snapshot = row;
    this.pages = this.pages.filter((p) => p.seq > row.seq);
  }

  onPage(page: HistoryPage, at: RecordAt | null): void {
    if (this.snapshot && page.seq <= this.snapshot.seq) return;
    this.pages.push(at ? { at, first: page.first, seq: page.seq } : { at, first: page.first, seq: page.seq, page });
  }

  mark(): TailMark {
    return { snapshot: this.snapshot, pages: [...this.pages] };
  }
}

/** The snapshot of a row, as a hosted actor restores it. */
export const snapshotOf = (row: SnapshotRow): VersionedSnapshot => ({ kind: row.kind, version: row.version, seq: row.seq, snapshot: row.snapshot });

/** A fresh hosted actor (effects off) at `snapshot`, or at its start. Throws for an unknown kind or snapshot version. */
export function hostActor(id: string, record: ActorRecord, snapshot: SnapshotRow | undefined, inspect = false): HostedActor {
  return new HostedActor(id, actorKind(record.kind), { input: record.input, ...(snapshot ? { snapshot: snapshotOf(snapshot) } : {}), inspect });
}

/**
 * The actor's events after the mark's snapshot up to seq `upTo`, oldest first, read again from the journal (not
 * the dropped ones). Throws when a page is no longer where the scan found it.
 */
export async function* tailEvents(dataDir: string, id: string, mark: TailMark, dropped: ReadonlySet<number>, upTo = Infinity): AsyncGenerator<LoggedEvent> {
  const after = mark.snapshot?.seq ?? 0;
  for (const ref of [...mark.pages].sort((a, b) => a.first - b.first)) {
    if (ref.first > upTo) return;
    const page = ref.page ?? (ref.at ? (await pagesAt(dataDir, ref.at)).find((p) => p.actor === id && p.seq === ref.seq) : undefined);
    if (!page) throw new Error(`the page of ${id} ending at seq ${ref.seq} is no longer in the journal`);
    for (const e of page.events()) if (e.seq > after && e.seq <= upTo && !dropped.has(e.seq)) yield e;
  }
}
