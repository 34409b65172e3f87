/**
 * A journal record of the store: one committed read-write transaction, `{"tx": Mutation[]}`. Event pages are
 * journaled with their events embedded as JSON values, so the record is plain JSON that history readers can use.
 */
import type { DBCoreKeyRange } from 'dexie';
import type { LoggedEvent } from '../../actors/event-log.ts';
import type { EventPage } from './store-db.ts';

/** A page as the journal holds it: the same JSON text, embedded as a value rather than as a string. */
export interface JournaledPage {
  readonly actor: string;
  readonly seq: number;
  readonly first: number;
  readonly events: LoggedEvent[];
}

/** One journaled mutation of a table. */
export type Mutation =
  | { t: string; op: 'add' | 'put'; values: unknown[] }
  | { t: string; op: 'delete'; keys: unknown[] }
  | { t: string; op: 'deleteRange'; range: DBCoreKeyRange };

/** JSON text of a transaction's mutations; event pages embed their JSON text as is (no re-encoding). */
export function encodeTx(list: readonly Mutation[]): string {
  const parts = list.map((m) =>
    m.t === 'events' && (m.op === 'add' || m.op === 'put')
      ? `{"t":"events","op":"${m.op}","values":[${(m.values as EventPage[]).map((p) => `{"actor":${JSON.stringify(p.actor)},"seq":${p.seq},"first":${p.first},"events":${p.json}}`).join(',')}]}`
      : JSON.stringify(m),
  );
  return `{"tx":[${parts.join(',')}]}`;
}

/** Turns journaled pages back into Dexie rows. */
export function decodeMutation(m: Mutation): Mutation {
  if (m.t !== 'events' || (m.op !== 'add' && m.op !== 'put')) return m;
  return { ...m, values: (m.values as JournaledPage[]).map((p) => ({ actor: p.actor, seq: p.seq, first: p.first, json: JSON.stringify(p.events) })) };
}
