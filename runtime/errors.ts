/**
 * Error classes for conditions a user can meet, each with `name` set and a message that says what was wrong
 * and what to do. Bad usage or bad input exits with 2, a runtime failure with 1.
 */

abstract class DmsError extends Error {
  /** Process exit code when this error ends a command. */
  abstract readonly exitCode: 1 | 2;
}

/** A flag, argument or file the user gave is wrong. */
export class UsageError extends DmsError {
  override name = 'UsageError';
  readonly exitCode = 2;
}

export class DataDirError extends DmsError {
  override name = 'DataDirError';
  readonly exitCode = 2;
}

export class KeyFileError extends DmsError {
  override name = 'KeyFileError';
  readonly exitCode = 2;
}

export class AddressInUseError extends DmsError {
  override name = 'AddressInUseError';
  readonly exitCode = 2;
}

/** The offer cannot be registered on this machine. */
export class OnboardingError extends DmsError {
  override name = 'OnboardingError';
  readonly exitCode = 2;
}

/** A client command could not reach the node or the node refused it. */
export class NodeUnreachableError extends DmsError {
  override name = 'NodeUnreachableError';
  readonly exitCode = 1;
}

export class RequestFailedError extends DmsError {
  override name = 'RequestFailedError';
  readonly exitCode: 1 | 2;
  constructor(message: string, readonly status: number) {
    super(message);
    this.exitCode = status >= 400 && status < 500 && status !== 404 ? 2 : 1;
  }
}

/** Exit code for any error: 2 for bad input, 1 otherwise. */
export function exitCodeOf(err: unknown): 1 | 2 {
  const e = err as { exitCode?: unknown; name?: string; code?: string };
  if (e?.exitCode === 1 || e?.exitCode === 2) return e.exitCode;
  if (e?.name === 'CommanderError') return 2;
  return 1;
}
