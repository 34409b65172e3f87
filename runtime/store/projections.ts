/**
 * The indexes (machines/indexes.ts) kept live in an @xstate/store: fed the facts of every logged event, saved
 * with each Node snapshot so a restart resumes them from there, and rebuildable from the whole history.
 */
import { createStore } from '@xstate/store';
import { EMPTY_INDEXES, type Fact, type Indexes, type LoggedFact, evolveIndexes } from '../../machines/indexes.ts';
import type { FactRecord } from '../supervisor/supervisor.ts';

export const INDEXES_KEY = 'indexes';

export function createIndexStore(initial: Indexes = EMPTY_INDEXES) {
  return createStore({
    context: initial,
    on: {
      facts: (ctx: Indexes, e: { facts: readonly LoggedFact[] }) => e.facts.reduce(evolveIndexes, ctx),
    },
  });
}

export type IndexStore = ReturnType<typeof createIndexStore>;

/** Feeds supervisor fact records into the store. */
export function recordFacts(store: IndexStore, records: readonly FactRecord[]): void {
  store.send({ type: 'facts', facts: records.map((r) => ({ ...r, fact: r.fact as Fact })) });
}
