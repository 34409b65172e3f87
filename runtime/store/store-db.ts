/**
 * The Dexie database the store keeps in memory (over fake-indexeddb), and the rows of its tables.
 *
 * Events are stored one row per delivered batch (a page): fake-indexeddb adds ~46k rows/s here and costs
 * ~1 KB a row, so a row per event would cap durable appends below 50k/s. Pages of events already covered by
 * a snapshot are deleted from Dexie, so memory stays bounded however long the history grows.
 */
import { Dexie, type Table } from 'dexie';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import type { VersionedSnapshot } from '../../actors/actor.protocol.ts';
import type { ActorRecord } from '../../actors/event-log.ts';

/** A page of one actor's events as Dexie keeps it: the events as JSON text, which clones cheaply. */
export interface EventPage {
  readonly actor: string;
  /** Seq of the last event in the page (the key). */
  readonly seq: number;
  readonly first: number;
  readonly json: string;
}
export interface SnapshotRow extends VersionedSnapshot {
  readonly actor: string;
  readonly ts: number;
}
export interface DroppedRow {
  readonly actor: string;
  readonly seq: number;
  readonly reason: string;
}
export interface MetaRow {
  readonly key: string;
  readonly value: unknown;
}

export const TABLES = ['events', 'snapshots', 'dropped', 'actors', 'meta'] as const;

export class StoreDb extends Dexie {
  events!: Table<EventPage, [string, number]>;
  snapshots!: Table<SnapshotRow, string>;
  dropped!: Table<DroppedRow, [string, number]>;
  actors!: Table<ActorRecord, string>;
  meta!: Table<MetaRow, string>;

  constructor() {
    super('dms', { indexedDB: new IDBFactory(), IDBKeyRange });
    this.version(1).stores({ events: '[actor+seq]', snapshots: 'actor', dropped: '[actor+seq]', actors: 'id', meta: 'key' });
  }
}
