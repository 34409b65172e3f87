/**
 * `replay --list`: every actor in a data dir's log (kind, id, job name, events, first and last time, final state),
 * newest first. Reads the log only, so it works on a stopped node's data dir and, read-only, on a running one's.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.ts';
import { JOURNAL_DIR } from '../store/constants.ts';
import { describeRemoved, describeStop } from '../store/history-reader.ts';
import { catalogActors } from '../replay/actor-catalog.ts';
import { formatList } from './replay-format.ts';

export interface ListOptions {
  readonly dataDir: string;
  /** Only this kind (`job`, `provider`, ...; null: all). */
  readonly kind: string | null;
  readonly json: boolean;
  readonly out: (line: string) => void;
  readonly progress: (line: string) => void;
}

/** Refuses a data dir without a log, naming it. */
export function needLog(dataDir: string): void {
  if (!existsSync(path.join(dataDir, JOURNAL_DIR))) throw new UsageError(`no event log in ${dataDir} (no ${JOURNAL_DIR}/); pass the --data-dir of a node that has run`);
}

export async function listActors(opts: ListOptions): Promise<void> {
  needLog(opts.dataDir);
  const found = await catalogActors(opts.dataDir, { kind: opts.kind, states: true, progress: opts.progress });
  // a log written without the node's identity row (a store used alone): its key file says who it is
  const c = found.peerId ? found : { ...found, peerId: await (await import('../replay/node-identity.ts')).peerIdFromKeyFile(opts.dataDir) };
  const stopped = describeStop(c.stop);
  if (stopped) opts.progress(`replay: ${stopped}`);
  if (!opts.json) return opts.out(formatList(c, opts.dataDir));
  const removed = describeRemoved(c.start);
  opts.out(
    JSON.stringify({
      node: c.peerId,
      actors: c.actors.map((a) => ({ id: a.id, kind: a.kind, ...(a.name ? { name: a.name } : {}), events: a.events, first: a.first, last: a.last, state: a.state, ended: a.ended, ...(a.problem ? { problem: a.problem } : {}) })),
      ...(removed ? { history: removed } : {}),
      ...(stopped ? { stopped } : {}),
    }),
  );
}
