/**
 * The web dashboard, served by the API: the page (built from dashboard/ at install time into dashboard/dist, no CDN,
 * nothing fetched at run time), its login, and its live stream.
 *
 * - `GET /dashboard/login?code=C` spends a one-time code (DashboardAuth) for a session cookie and redirects to the page.
 * - `GET /dashboard/` and its assets, and `GET /dashboard/events` (Server-Sent Events: what the actors just did, in
 *   batches, and the peers when they change), need the cookie: 401 without it.
 * - The page reads and acts through the same `/v1` routes as the CLI: its session stands for the API token there
 *   (`authorize`), except for minting login codes. A session is the cookie and the page's secret (dashboard-auth.ts)
 *   in `x-dms-dashboard` on every request (in `?s=` for the stream): a page of another site cannot send that header
 *   without a CORS preflight this API never grants, and a program on another local port, which receives our cookie,
 *   never learns the secret.
 */
import { readFile } from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Clock, Timer } from '../clock.ts';
import type { ActivityFeed } from './activity-feed.ts';
import { DashboardAuth } from './dashboard-auth.ts';
import type { OpenRoute } from './http-server.ts';

export const DASHBOARD_DIST = fileURLToPath(new URL('../../dashboard/dist/', import.meta.url));

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};
/** Pages the browser must not keep (they hold nothing secret, but a stale app against a newer node misleads). */
const NO_STORE = 'no-store';
const HEARTBEAT_MS = 15_000;
const PEERS_MS = 5_000;
const MAX_STREAMS = 8;
/** Headers every dashboard answer carries: no framing by other sites, no sniffing, only our own scripts. */
const SAFE_HEADERS = {
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
};

export interface DashboardDeps {
  readonly auth: DashboardAuth;
  readonly feed: ActivityFeed;
  readonly clock: Clock;
  /** The connected peers' ids and RTTs, for the live peers push. */
  readonly peers: () => Promise<readonly { readonly peer: string; readonly rttMs: number | null }[]>;
  /** Where the built page is (default DASHBOARD_DIST). */
  readonly dist?: string;
}

interface Asset {
  readonly type: string;
  readonly raw: Buffer;
  readonly gz: Buffer;
}

export interface Dashboard {
  readonly route: OpenRoute;
  /** Whether a /v1 request may go ahead on the dashboard's session instead of the API token. */
  authorize(req: http.IncomingMessage): boolean;
  /** Live streams open now. */
  streams(): number;
  stop(): void;
}

export function createDashboard(deps: DashboardDeps): Dashboard {
  const dist = deps.dist ?? DASHBOARD_DIST;
  const assets = new Map<string, Promise<Asset | null>>();
  const open = new Set<() => void>();

  const asset = (name: string): Promise<Asset | null> => {
    let a = assets.get(name);
    if (!a) {
      a = readFile(path.join(dist, name)).then(
        (raw) => ({ type: TYPES[path.extname(name)] ?? 'application/octet-stream', raw, gz: gzipSync(raw) }),
        () => null,
      );
      assets.set(name, a);
    }
    return a;
  };

  const refuse = (res: http.ServerResponse, status: number, message: string) => {
    const body = `<!doctype html><meta charset="utf-8"><title>DMS dashboard</title><p>${message}</p>`;
    res.writeHead(status, { ...SAFE_HEADERS, 'content-type': 'text/html; charset=utf-8', 'cache-control': NO_STORE, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  const login = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => {
    const s = deps.auth.exchange(url.searchParams.get('code') ?? '');
    if (!s) return refuse(res, 401, 'This login link was used already or has expired. Run <code>node runtime/main.js dashboard</code> for a new one.');
    // the page's secret rides in the fragment: the browser keeps it, no server (nor log, nor Referer) ever sees it
    res.writeHead(303, { ...SAFE_HEADERS, location: `/dashboard/#s=${s.secret}`, 'set-cookie': DashboardAuth.cookie(s.session), 'cache-control': NO_STORE });
    res.end();
  };

  const serveAsset = async (req: http.IncomingMessage, res: http.ServerResponse, name: string) => {
    const a = /^[a-z0-9-]+\.(html|js|css|svg)$/.test(name) ? await asset(name) : null;
    if (!a) return refuse(res, 404, `no such dashboard file ${name}${name === 'index.html' ? ' (the page was not built: run npm run build)' : ''}`);
    const gz = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const body = gz ? a.gz : a.raw;
    res.writeHead(200, { ...SAFE_HEADERS, 'content-type': a.type, 'cache-control': NO_STORE, 'content-length': body.length, ...(gz ? { 'content-encoding': 'gzip' } : {}), vary: 'accept-encoding' });
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  const events = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (open.size >= MAX_STREAMS) return refuse(res, 503, `${MAX_STREAMS} dashboard streams are open already; close a dashboard tab`);
    res.writeHead(200, { ...SAFE_HEADERS, 'content-type': 'text/event-stream', 'cache-control': NO_STORE, connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    const write = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    write('hello', { at: deps.clock.now() });
    const unsubscribe = deps.feed.subscribe((batch, dropped) => write('activity', { events: batch, dropped }));
    let lastPeers = '';
    const timers: Timer[] = [
      deps.clock.every(HEARTBEAT_MS, () => res.write(': heartbeat\n\n')),
      // peers change without any actor event: their list (and RTTs, rounded) is pushed when it changed
      deps.clock.every(PEERS_MS, () => {
        void deps.peers().then((ps) => {
          const key = JSON.stringify(ps.map((p) => [p.peer, p.rttMs === null ? null : Math.round(p.rttMs)]));
          if (key !== lastPeers) write('peers', { count: ps.length });
          lastPeers = key;
        }, () => {});
      }),
    ];
    const close = () => {
      unsubscribe();
      for (const t of timers) t.clear();
      open.delete(close);
      if (!res.writableEnded) res.end();
    };
    open.add(close);
    req.on('close', close);
  };

  const route: OpenRoute = async (req, res, url) => {
    const p = url.pathname;
    if (p === '/' && req.method === 'GET') {
      res.writeHead(302, { location: '/dashboard/' });
      res.end();
      return true;
    }
    if (p !== '/dashboard' && !p.startsWith('/dashboard/')) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      refuse(res, 405, `${req.method} is not allowed on ${p}`);
      return true;
    }
    if (p === '/dashboard/login') {
      login(req, res, url);
      return true;
    }
    // the live stream carries what actors do: the page's secret too (EventSource sends no headers: in the query)
    if (!deps.auth.valid(req.headers.cookie, p === '/dashboard/events' ? url.searchParams.get('s') : undefined)) {
      refuse(res, 401, 'Not logged in. Run <code>node runtime/main.js dashboard</code> and open the link it prints.');
      return true;
    }
    if (p === '/dashboard/events') events(req, res);
    else await serveAsset(req, res, p === '/dashboard' || p === '/dashboard/' ? 'index.html' : p.slice('/dashboard/'.length));
    return true;
  };

  return {
    route,
    authorize(req) {
      const p = new URL(req.url ?? '/', 'http://localhost').pathname;
      if (p === '/v1/dashboard/login') return false; // only the API token mints login codes
      // the cookie and the page's secret: a request from another site (or another local port) lacks the secret
      const secret = req.headers['x-dms-dashboard'];
      return deps.auth.valid(req.headers.cookie, typeof secret === 'string' ? secret : null);
    },
    streams: () => open.size,
    stop() {
      for (const close of [...open]) close();
    },
  };
}
