/**
 * Errors of issuing and delegating capability tokens, each with `name` set (match by name). All are bad input:
 * exit code 2 when one ends a command. Verifying never throws; it answers with a reason (capability.ts).
 */

/** What a delegation would widen beyond its proof. */
export type WideningField = 'actions' | 'expiry' | 'depth' | 'holder';

/** A delegation asks for more than its proof grants, or is made by someone the proof was not granted to. */
export class CapabilityWideningError extends Error {
  override name = 'CapabilityWideningError';
  readonly exitCode = 2;
  constructor(readonly field: WideningField, message: string) {
    super(message);
  }
}

/** A grant's parameters are wrong: no or unknown actions, an expiry not in the future, a depth out of range, a bad DID. */
export class CapabilityGrantError extends Error {
  override name = 'CapabilityGrantError';
  readonly exitCode = 2;
}

/** A token cannot be read: not base64url, over the size or link limits, or not the shape of a token. */
export class CapabilityTokenError extends Error {
  override name = 'CapabilityTokenError';
  readonly exitCode = 2;
}
