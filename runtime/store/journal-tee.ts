/**
 * The journal tee: a Dexie DBCore middleware that writes every committed read-write transaction into the
 * journal as one record. Writers wait for the journal's `durable()` before they acknowledge.
 */
import type { DBCore, DBCoreMutateRequest, DBCoreMutateResponse, Middleware } from 'dexie';
import type { Journal } from './journal.ts';
import { type Mutation, encodeTx } from './journal-record.ts';

function serialize(table: string, req: DBCoreMutateRequest, res: DBCoreMutateResponse): Mutation | null {
  const ok = <T>(list: readonly T[]) => (res.numFailures === 0 ? [...list] : list.filter((_, i) => !res.failures[i]));
  switch (req.type) {
    case 'add':
    case 'put': {
      const values = ok(req.values);
      return values.length ? { t: table, op: req.type, values } : null;
    }
    case 'delete':
      return req.keys.length ? { t: table, op: 'delete', keys: [...req.keys] } : null;
    case 'deleteRange':
      return { t: table, op: 'deleteRange', range: { type: req.range.type, lower: req.range.lower, upper: req.range.upper, lowerOpen: req.range.lowerOpen ?? false, upperOpen: req.range.upperOpen ?? false } };
  }
}

/**
 * Tees the read-write transactions begun while `teeing()` holds into `journal`, each on its commit
 * (recovery writes with it off, so what it replays is not journaled again).
 */
export function journalTee(journal: Journal, teeing: () => boolean): Middleware<DBCore> {
  const txRecords = new WeakMap<object, Mutation[]>();
  return {
    stack: 'dbcore',
    name: 'journal',
    create: (down) => ({
      ...down,
      transaction: (stores, mode, options) => {
        const tx = down.transaction(stores, mode, options);
        if (mode === 'readwrite' && teeing()) {
          const list: Mutation[] = [];
          txRecords.set(tx, list);
          (tx as unknown as EventTarget).addEventListener('complete', () => {
            // a journal that stopped (a failed write) or closed refuses the record; its writer hears that from
            // durable(), which it awaits before acknowledging. Thrown from here it would crash the process.
            if (list.length > 0 && !journal.failure) {
              try {
                journal.enqueueText(encodeTx(list));
              } catch {
                // reported by durable()
              }
            }
          });
        }
        return tx;
      },
      table: (name) => {
        const table = down.table(name);
        return {
          ...table,
          mutate: async (req) => {
            const res = await table.mutate(req);
            const m = txRecords.get(req.trans) && serialize(name, req, res);
            if (m) txRecords.get(req.trans)!.push(m);
            return res;
          },
        };
      },
    }),
  };
}
