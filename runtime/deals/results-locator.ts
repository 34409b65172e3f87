/**
 * Where a job's result files are: which provider ran it and under which allocation (and, for an instance of an
 * array job, which index: the provider and allocation that completed that instance, from the array's record). The
 * one place that maps a job to its results.
 */
import type { ArrayRecord } from '../../machines/array.rules.ts';
import type { EnsembleRecord } from '../../machines/ensemble.messages.ts';
import type { JobRecord } from '../../machines/requester.messages.ts';
import { type DealQueries, instanceOf } from './deal-queries.ts';
import { ResultsConflictError, ResultsNotFoundError, ResultsQueryError } from './results-errors.ts';

export interface ResultsLocation {
  readonly jobId: string;
  /** The provider's peer id. */
  readonly provider: string;
  readonly allocationId: string;
  /** An array job's instance; absent for a job of one task. */
  readonly index?: number;
}

/** An array job asked for without an index: the instances whose result files can be fetched, one by one. */
export interface ArrayResultsView {
  readonly jobId: string;
  readonly count: number;
  /** The instances that completed, in order. */
  readonly completed: readonly number[];
}

/** The provider and allocation holding the results of `jobId` (instance `index`); rejects saying why there are none. */
export async function locateResults(queries: Pick<DealQueries, 'job'>, jobId: string, index?: number): Promise<ResultsLocation> {
  const found = resultsOf(await queries.job(jobId), jobId, index);
  if ('count' in found) {
    throw new ResultsQueryError(`job ${jobId} is an array job of ${found.count} instances: name one with index (\`results ${jobId}\` without --index fetches every completed one)`);
  }
  return found;
}

/** Where the results of `jobId` (instance `index`) are, or, for an array job asked without an index, which it has. */
export async function findResults(queries: Pick<DealQueries, 'job'>, jobId: string, index?: number): Promise<ResultsLocation | ArrayResultsView> {
  return resultsOf(await queries.job(jobId), jobId, index);
}

function resultsOf(found: JobRecord | EnsembleRecord, jobId: string, index: number | undefined): ResultsLocation | ArrayResultsView {
  if ('kind' in found && found.kind === 'ensemble') throw new ResultsNotFoundError(`${jobId} is an ensemble; result files are fetched for jobs of one task`);
  const rec = found as JobRecord;
  if ('count' in rec) return index === undefined ? arrayView(rec as ArrayRecord) : instanceLocation(rec as ArrayRecord, index);
  if (index !== undefined) throw new ResultsNotFoundError(`job ${jobId} is not an array job: it has no instance ${index}; leave out --index`);
  if (rec.endedAt === null) throw new ResultsConflictError(`job ${jobId} is ${rec.state}: its result files can be fetched once it ends`);
  if (!rec.provider || !rec.allocationId) throw new ResultsNotFoundError(`job ${jobId} ${rec.state} without running anywhere, so it has no result files`);
  return { jobId, provider: rec.provider, allocationId: rec.allocationId };
}

function arrayView(rec: ArrayRecord): ArrayResultsView {
  const completed: number[] = [];
  for (let i = rec.instanceStates.indexOf('c'); i >= 0; i = rec.instanceStates.indexOf('c', i + 1)) completed.push(i);
  return { jobId: rec.id, count: rec.count, completed };
}

/** Instance `index`: where it completed, or where it last failed once it failed for good. */
function instanceLocation(rec: ArrayRecord, index: number): ResultsLocation {
  const inst = instanceOf(rec, index);
  const what = `instance ${index} of job ${rec.id}`;
  if (inst.state === 'queued' || inst.state === 'running') throw new ResultsConflictError(`${what} is ${inst.state}: its result files can be fetched once it completes`);
  if (!inst.provider || !inst.allocationId) throw new ResultsNotFoundError(`${what} ${inst.state} without running anywhere, so it has no result files`);
  return { jobId: rec.id, provider: inst.provider, allocationId: inst.allocationId, index };
}
