/**
 * Errors of TCP tunnels, one per condition; they travel as the reason of an aborted stream or a reset socket,
 * and in logs.
 */
import type { TunnelRefusal } from './tunnel.protocol.ts';

/** The far end refused the tunnel, or this end refused a stream; `reason` is the status it carried. */
export class TunnelRefusedError extends Error {
  override name = 'TunnelRefusedError';
  constructor(readonly reason: TunnelRefusal | 'dial-failed' | 'no-status' | 'too-many-connections', message: string) {
    super(message);
  }
}

/** A stream's header (or status) was malformed, oversized, cut short, or did not arrive in time. */
export class TunnelHeaderError extends Error {
  override name = 'TunnelHeaderError';
}

/** One side of a tunnel went away before the other was done with it: the other side is aborted with this. */
export class TunnelClosedError extends Error {
  override name = 'TunnelClosedError';
}
