/**
 * Recovery of the store at open: the checkpoint's tables, then every journal record after its cut, applied to
 * Dexie with the journal tee off.
 */
import type { DBCoreKeyRange } from 'dexie';
import type { Checkpoint } from './checkpoint.ts';
import { type Journal, readSegments } from './journal.ts';
import { type JournaledPage, type Mutation, decodeMutation } from './journal-record.ts';
import type { StoreDb } from './store-db.ts';

/** Event pages held back from Dexie, by pageKey. */
type HeldPages = Map<string, JournaledPage>;

/** Event pages are keyed [actor, seq]; held pages are looked up by this text of the key. */
const pageKey = (k: readonly [string, number]) => `${k[1]}\u0000${k[0]}`;
const isPageKey = (k: unknown): k is [string, number] => Array.isArray(k) && k.length === 2 && typeof k[0] === 'string' && typeof k[1] === 'number' && Number.isFinite(k[1]);
/** A range over one actor's pages ([actor, a] .. [actor, b], as saveSnapshot deletes), which recovery can apply to held pages. */
const isPageRange = (r: DBCoreKeyRange): boolean => r.type === 2 && isPageKey(r.lower) && isPageKey(r.upper) && r.lower[0] === r.upper[0];
function inPageRange(p: JournaledPage, r: DBCoreKeyRange): boolean {
  const [actor, lo] = r.lower as [string, number];
  const hi = (r.upper as [string, number])[1];
  return p.actor === actor && (r.lowerOpen ? p.seq > lo : p.seq >= lo) && (r.upperOpen ? p.seq < hi : p.seq <= hi);
}

/**
 * Replays the checkpoint and the journal segments from its cut on into `db`. `segments` are those the opened
 * journal found; the newest was parsed by journal.open() already (to find a torn tail), so its records are used.
 */
export async function recoverStore(db: StoreDb, journal: Journal, segments: readonly number[], cp: Checkpoint | undefined): Promise<{ segments: number; records: number }> {
  const held: HeldPages = new Map();
  if (cp) await recoverTx(db, cp.tx, held);
  const todo = segments.filter((s) => s >= (cp?.segment ?? 0));
  const newest = journal.takeOpened(todo.at(-1) ?? -1);
  let records = 0;
  for await (const seg of readSegments(journal.init.dir, newest ? todo.slice(0, -1) : todo)) {
    for (const r of seg.records) await recoverTx(db, (r as { tx: Mutation[] }).tx, held);
    records += seg.records.length;
  }
  for (const r of newest ?? []) await recoverTx(db, (r as { tx: Mutation[] }).tx, held);
  records += newest?.length ?? 0;
  await flushHeld(db, held);
  return { segments: todo.length, records };
}

/**
 * Applies one journaled transaction at recovery, holding event pages back instead of inserting them: most are
 * deleted again by a later snapshot's deleteRange in the same journal, and inserting a page costs re-encoding its
 * events and a structured clone of the text. The result is that of applying every transaction as it comes:
 * deletes on the events table apply to the held pages (and to the table); anything else on that table first
 * inserts the held pages. Pages still held at the end are inserted by flushHeld.
 */
async function recoverTx(db: StoreDb, tx: readonly Mutation[], held: HeldPages): Promise<void> {
  const rest: Mutation[] = [];
  for (const m of tx) {
    if (m.t !== 'events') rest.push(m);
    else if (m.op === 'add' || m.op === 'put') for (const p of m.values as JournaledPage[]) held.set(pageKey([p.actor, p.seq]), p);
    else if (m.op === 'delete' && m.keys.every(isPageKey)) {
      for (const k of m.keys) held.delete(pageKey(k as [string, number]));
      rest.push(m);
    } else if (m.op === 'deleteRange' && isPageRange(m.range)) {
      for (const [k, p] of held) if (inPageRange(p, m.range)) held.delete(k);
      rest.push(m);
    } else {
      if (rest.length > 0) await apply(db, rest.splice(0).map(decodeMutation));
      await flushHeld(db, held);
      rest.push(m);
    }
  }
  if (rest.length > 0) await apply(db, rest.map(decodeMutation));
}

async function flushHeld(db: StoreDb, held: HeldPages): Promise<void> {
  if (held.size === 0) return;
  const values = [...held.values()];
  held.clear();
  await apply(db, [decodeMutation({ t: 'events', op: 'put', values })]);
}

async function apply(db: StoreDb, tx: readonly Mutation[]): Promise<void> {
  const tables = [...new Set(tx.map((m) => m.t))].map((t) => db.table(t));
  await db.transaction('rw', tables, async () => {
    for (const m of tx) {
      const table = db.table(m.t);
      if (m.op === 'add' || m.op === 'put') await table.bulkPut(m.values);
      else if (m.op === 'delete') await table.bulkDelete(m.keys as never[]);
      else if (m.op === 'deleteRange') await table.where(':id').between(m.range.lower, m.range.upper, !m.range.lowerOpen, !m.range.upperOpen).delete();
    }
  });
}
