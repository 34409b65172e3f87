/**
 * Who may open the dashboard: whoever holds the API token (the data dir's owner) asks the node for a one-time login
 * code (`dashboard`), and the page that opens the link exchanges the code for a session cookie (HttpOnly,
 * SameSite=Strict, host-only, so bound to the API's loopback address). Codes and sessions live in memory: a restart
 * logs everyone out.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'dms_dashboard';
/** A login link works once, within this long. */
export const CODE_TTL_MS = 120_000;
/** A session lasts this long from login. */
export const SESSION_TTL_MS = 12 * 3_600_000;
/** At most this many codes outstanding and sessions open; the oldest go first. */
const MAX_CODES = 16;
const MAX_SESSIONS = 64;

const token = () => randomBytes(32).toString('base64url');

export class DashboardAuth {
  readonly #codes = new Map<string, number>();
  readonly #sessions = new Map<string, number>();

  constructor(private readonly now: () => number) {}

  /** A fresh one-time login code, and when it expires. */
  issueCode(): { code: string; expiresAt: number } {
    const code = token();
    const expiresAt = this.now() + CODE_TTL_MS;
    bounded(this.#codes, MAX_CODES).set(code, expiresAt);
    return { code, expiresAt };
  }

  /** Spends a login code: a new session id, or null when the code is unknown, used or expired. */
  exchange(code: string): string | null {
    const expiresAt = this.#codes.get(code);
    if (expiresAt === undefined) return null;
    this.#codes.delete(code);
    if (expiresAt <= this.now()) return null;
    const session = token();
    bounded(this.#sessions, MAX_SESSIONS).set(session, this.now() + SESSION_TTL_MS);
    return session;
  }

  /** Whether a Cookie header carries a live session. */
  valid(cookieHeader: string | undefined): boolean {
    const given = sessionOf(cookieHeader);
    if (!given) return false;
    const now = this.now();
    for (const [id, expiresAt] of this.#sessions) {
      if (expiresAt <= now) {
        this.#sessions.delete(id);
        continue;
      }
      if (id.length === given.length && timingSafeEqual(Buffer.from(id), Buffer.from(given))) return true;
    }
    return false;
  }

  /** The Set-Cookie header value for a session. */
  static cookie(session: string): string {
    return `${SESSION_COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_TTL_MS / 1000}`;
  }
}

function bounded<V>(m: Map<string, V>, max: number): Map<string, V> {
  while (m.size >= max) m.delete(m.keys().next().value!);
  return m;
}

function sessionOf(header: string | undefined): string | null {
  for (const part of (header ?? '').split(';')) {
    const [k, v] = part.trim().split('=', 2) as [string, string | undefined];
    if (k === SESSION_COOKIE && v) return v;
  }
  return null;
}
