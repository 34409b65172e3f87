/** Errors of fetching result files, one per HTTP answer the API gives them (matched by name). */

/** No such results: the job has none, or no such file (404). */
export class ResultsNotFoundError extends Error {
  override name = 'ResultsNotFoundError';
}

/** Not now: the job has not ended, or the provider's copy changed after it ended (409). */
export class ResultsConflictError extends Error {
  override name = 'ResultsConflictError';
}

/** Too many transfers at once, here or at the provider (503). */
export class ResultsBusyError extends Error {
  override name = 'ResultsBusyError';
}

/** A results request that names no valid path, offset or index (400). */
export class ResultsQueryError extends Error {
  override name = 'ResultsQueryError';
}
