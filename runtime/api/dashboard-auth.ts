/**
 * Who may open the dashboard: whoever holds the API token (the data dir's owner) asks the node for a one-time login
 * code (`dashboard`), and the page that opens the link exchanges the code for a session: a cookie (HttpOnly,
 * SameSite=Strict, host-only) and a secret the page keeps in its origin's localStorage (handed over in the redirect's
 * URL fragment, which never reaches a server). A browser sends a cookie to every port of 127.0.0.1, so a program
 * listening on another local port would receive ours: the cookie alone opens the page's static files, never the API
 * or the live stream, which also need the secret (an origin includes its port, so no other port can read it).
 * Codes and sessions live in memory: a restart logs everyone out.
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

interface Session {
  readonly expiresAt: number;
  readonly secret: string;
}

const same = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

export class DashboardAuth {
  readonly #codes = new Map<string, number>();
  readonly #sessions = new Map<string, Session>();

  constructor(private readonly now: () => number) {}

  /** A fresh one-time login code, and when it expires. */
  issueCode(): { code: string; expiresAt: number } {
    const code = token();
    const expiresAt = this.now() + CODE_TTL_MS;
    bounded(this.#codes, MAX_CODES).set(code, expiresAt);
    return { code, expiresAt };
  }

  /** Spends a login code: a new session (its cookie id and the page's secret), or null when the code is unknown, used or expired. */
  exchange(code: string): { session: string; secret: string } | null {
    const expiresAt = this.#codes.get(code);
    if (expiresAt === undefined) return null;
    this.#codes.delete(code);
    if (expiresAt <= this.now()) return null;
    const session = token();
    const secret = token();
    bounded(this.#sessions, MAX_SESSIONS).set(session, { expiresAt: this.now() + SESSION_TTL_MS, secret });
    return { session, secret };
  }

  /**
   * Whether a Cookie header carries a live session and, when `secret` is asked for (`undefined` skips it: the static
   * page), whether the page's secret is that session's.
   */
  valid(cookieHeader: string | undefined, secret?: string | null): boolean {
    const given = sessionOf(cookieHeader);
    if (!given) return false;
    const now = this.now();
    for (const [id, s] of this.#sessions) {
      if (s.expiresAt <= now) {
        this.#sessions.delete(id);
        continue;
      }
      if (same(id, given)) return secret === undefined || (typeof secret === 'string' && same(s.secret, secret));
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
