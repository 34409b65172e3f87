/**
 * The local HTTP API (loopback only) that client commands use. Every request needs the bearer token
 * stored in the data dir; a request without it gets 401. Bodies are checked against schemas at this edge.
 */
import { timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import type { ReplyBody } from '../../machines/node.messages.ts';
import type { Offer } from '../../machines/onboarding.ts';
import type { Preferences } from '../../machines/preferences.ts';
import { AddressInUseError } from '../errors.ts';
import type { JobSpec } from '../../machines/job.ts';
import { ensembleSpecSchema, jobSchema as jobSpecSchema } from '../deals/deal-schemas.ts';
import type { EnsembleSpec } from '../../machines/ensemble.ts';
import { capAddSchema, capAnchorSchema, capDelegateSchema, capGrantSchema, capRevokeSchema } from './cap-schemas.ts';
import { allocateSchema, describeIssues, lockSchema, offerSchema, pingSchema, preferencesSchema, releaseSchema, unlockSchema } from './input-schemas.ts';
import { JOB_EVENTS_DEFAULTS, type JobEventsInit, JobEventStreams } from './job-events.ts';

/** What the API asks of the running node. */
export interface NodeApi {
  info(): Promise<unknown>;
  peers(): Promise<unknown>;
  /** This node's edges and its neighbours', as JSON with a Graphviz DOT rendering in `dot`. */
  topology(): Promise<unknown>;
  /** Signed net.ping round trips to a peer. */
  ping(peer: string, count: number): Promise<unknown>;
  preferences(): Promise<Preferences>;
  setPreferences(p: Preferences): Promise<ReplyBody>;
  onboard(offer: Offer): Promise<ReplyBody>;
  offboard(): Promise<ReplyBody>;
  /** The seed's indexes, projected from the event log. */
  indexes(): Promise<unknown>;
  /** Every allocation that ran or runs on this node. */
  allocations(): Promise<unknown>;
  /** The capability ledger, by hand: hold resources, turn a hold into an allocation, release. */
  lock(req: z.output<typeof lockSchema>): Promise<ReplyBody>;
  unlock(id: string): Promise<ReplyBody>;
  allocate(allocationId: string, lockId: string): Promise<ReplyBody>;
  release(allocationId: string): Promise<ReplyBody>;
  /** Deals: submit a job (its module's bytes alongside), list, show, cancel, and page through output. */
  deploy(job: JobSpec, module: Uint8Array | undefined): Promise<unknown>;
  deployEnsemble(spec: EnsembleSpec, modules: ReadonlyMap<string, Uint8Array>): Promise<unknown>;
  jobs(): Promise<unknown>;
  job(id: string): Promise<unknown>;
  /** Calls `onChange` whenever job `id`'s record may have changed (GET /v1/jobs/:id/events); returns the unwatch. */
  watchJob(id: string, onChange: () => void): () => void;
  cancel(id: string): Promise<unknown>;
  logs(id: string, offset: number, part?: string, index?: number): Promise<unknown>;
  /** One instance of an array job (`status --index`). */
  instance(id: string, index: number): Promise<unknown>;
  /** A job's result files: the manifest (`?index=I`), and one file's bytes streamed into `res` (results-routes.ts). */
  results(id: string, query: URLSearchParams): Promise<unknown>;
  resultFile(id: string, query: URLSearchParams, res: http.ServerResponse): Promise<void>;
  /** The dashboard's views (dashboard-api.ts); absent where the node serves no dashboard. */
  readonly dashboard?: DashboardApi;
  /** Capability tokens (`cap ...`): runtime/trust/trust-service.ts. */
  readonly trust?: TrustApi;
}

/** What `cap` asks of the node. */
export interface TrustApi {
  list(): Promise<unknown>;
  grant(r: z.output<typeof capGrantSchema>): Promise<unknown>;
  delegate(r: z.output<typeof capDelegateSchema>): Promise<unknown>;
  anchor(r: z.output<typeof capAnchorSchema>): Promise<unknown>;
  add(r: z.output<typeof capAddSchema>): Promise<unknown>;
  revoke(id: string): Promise<unknown>;
}

/** What the dashboard page reads beyond the CLI's routes. */
export interface DashboardApi {
  /** A one-time login link for the dashboard (API token only). */
  login(): Promise<unknown>;
  /** Every actor running now: id, kind, status, state. */
  actors(): Promise<unknown>;
  /** One actor: its state, its context as clients see it, its last events. */
  actor(id: string): Promise<unknown>;
  /** An actor kind's statechart, laid out. */
  machine(kind: string): Promise<unknown>;
  /** The topology, laid out. */
  topologyLayout(): Promise<unknown>;
  /** Deploys a job file given as text, with the files it names (its module) by name. */
  deployFile(body: unknown): Promise<unknown>;
}

export interface ApiLog {
  warn(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

/** A deploy carries its module (up to 900 KiB) as base64. */
export const MAX_BODY_BYTES = 2 << 20;

const deploySchema = z.strictObject({
  job: jobSpecSchema,
  module: z.base64().max(2 << 20).optional(),
});
/** An ensemble, with its WASM parts' modules by sha256 (together within MAX_BODY_BYTES). */
const deployEnsembleSchema = z.strictObject({
  ensemble: ensembleSpecSchema,
  modules: z.record(z.string().regex(/^[0-9a-f]{64}$/, 'is not a sha256 (64 lowercase hex digits)'), z.base64()).optional(),
});
const partSchema = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/);
const offsetSchema = z.coerce.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly code = 'bad-request') {
    super(message);
  }
}

type Handler = (body: unknown, params: Readonly<Record<string, string>>, query: URLSearchParams) => Promise<unknown>;
/** A route that answers with a stream of its own instead of one JSON body. */
type StreamHandler = (params: Readonly<Record<string, string>>, res: http.ServerResponse) => Promise<void>;

function replyToResult(r: ReplyBody): unknown {
  if (r.ok) return r.value ?? { ok: true };
  const status = r.code === 'onboarding' || r.code === 'invalid' ? 400 : 409;
  throw new HttpError(status, r.message, r.code);
}

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success) throw new HttpError(400, `invalid request body: ${describeIssues(r.error)}`, 'invalid-body');
  return r.data;
}

function routes(api: NodeApi): Record<string, Handler> {
  return {
    'POST /v1/deploy': async (b) => {
      if (typeof b === 'object' && b !== null && 'ensemble' in b) {
        const e = parse(deployEnsembleSchema, b);
        const modules = new Map(Object.entries(e.modules ?? {}).map(([sha, b64]) => [sha, new Uint8Array(Buffer.from(b64, 'base64'))]));
        return api.deployEnsemble(e.ensemble as EnsembleSpec, modules);
      }
      const r = parse(deploySchema, b);
      return api.deploy(r.job as JobSpec, r.module === undefined ? undefined : new Uint8Array(Buffer.from(r.module, 'base64')));
    },
    'GET /v1/jobs': () => api.jobs(),
    'GET /v1/jobs/:id': (_b, p) => api.job(p.id!),
    'GET /v1/jobs/:id/instances/:index': (_b, p) => {
      const index = offsetSchema.safeParse(p.index);
      if (!index.success) throw new HttpError(400, `instance "${p.index}" is not an instance number`, 'invalid-query');
      return api.instance(p.id!, index.data);
    },
    'GET /v1/jobs/:id/results': (_b, p, q) => api.results(p.id!, q),
    'POST /v1/jobs/:id/cancel': (_b, p) => api.cancel(p.id!),
    'GET /v1/logs/:id': (_b, p, q) => {
      const offset = offsetSchema.safeParse(q.get('offset') ?? 0);
      if (!offset.success) throw new HttpError(400, `offset "${q.get('offset')}" is not a byte offset`, 'invalid-query');
      const part = q.get('part');
      if (part !== null && !partSchema.safeParse(part).success) throw new HttpError(400, `part "${part}" is not a part name`, 'invalid-query');
      const rawIndex = q.get('index');
      const index = rawIndex === null ? undefined : offsetSchema.safeParse(rawIndex);
      if (index && !index.success) throw new HttpError(400, `index "${rawIndex}" is not an instance number`, 'invalid-query');
      return api.logs(p.id!, offset.data, part ?? undefined, index?.data);
    },
    'GET /v1/info': () => api.info(),
    'GET /v1/cap': () => trustOf(api).list(),
    'POST /v1/cap/grant': (b) => trustOf(api).grant(parse(capGrantSchema, b)),
    'POST /v1/cap/delegate': (b) => trustOf(api).delegate(parse(capDelegateSchema, b)),
    'POST /v1/cap/anchor': (b) => trustOf(api).anchor(parse(capAnchorSchema, b)),
    'POST /v1/cap/add': (b) => trustOf(api).add(parse(capAddSchema, b)),
    'POST /v1/cap/revoke': (b) => trustOf(api).revoke(parse(capRevokeSchema, b).id),
    'POST /v1/dashboard/login': () => dash(api).login(),
    'GET /v1/actors': () => dash(api).actors(),
    'GET /v1/actors/:id': (_b, p) => dash(api).actor(p.id!),
    'GET /v1/machines/:kind': (_b, p) => dash(api).machine(p.kind!),
    'GET /v1/topology/layout': () => dash(api).topologyLayout(),
    'POST /v1/deploy/file': (b) => dash(api).deployFile(b),
    'GET /v1/peers': () => api.peers(),
    'GET /v1/indexes': () => api.indexes(),
    'GET /v1/allocations': () => api.allocations(),
    'GET /v1/topology': () => api.topology(),
    'POST /v1/ping': async (b) => {
      const { peer, count } = parse(pingSchema, b);
      return api.ping(peer, count);
    },
    'GET /v1/preferences': () => api.preferences(),
    'PUT /v1/preferences': async (b) => replyToResult(await api.setPreferences(parse(preferencesSchema, b) as Preferences)),
    'POST /v1/onboard': async (b) => replyToResult(await api.onboard(parse(offerSchema, b ?? {}) as Offer)),
    'POST /v1/offboard': async () => replyToResult(await api.offboard()),
    'POST /v1/ledger/lock': async (b) => replyToResult(await api.lock(parse(lockSchema, b))),
    'POST /v1/ledger/unlock': async (b) => replyToResult(await api.unlock(parse(unlockSchema, b).id)),
    'POST /v1/ledger/allocate': async (b) => {
      const r = parse(allocateSchema, b);
      return replyToResult(await api.allocate(r.allocationId, r.lockId));
    },
    'POST /v1/ledger/release': async (b) => replyToResult(await api.release(parse(releaseSchema, b).allocationId)),
  };
}

function trustOf(api: NodeApi): TrustApi {
  if (!api.trust) throw new HttpError(404, 'this node keeps no capability tokens', 'not-found');
  return api.trust;
}

function dash(api: NodeApi): DashboardApi {
  if (!api.dashboard) throw new HttpError(404, 'this node serves no dashboard', 'not-found');
  return api.dashboard;
}

/** Errors of the node's services that are the caller's doing or another peer's, matched by name. */
const STATUS_BY_ERROR: Readonly<Record<string, number>> = {
  DeployError: 400,
  JobFileError: 400,
  TrustUsageError: 400,
  UnknownActorError: 404,
  UnknownDealError: 404,
  RequestTimeoutError: 504,
  RemoteError: 502,
  TooManyStreamsError: 429,
  ResultsQueryError: 400,
  ResultsNotFoundError: 404,
  ResultsConflictError: 409,
  ResultsBusyError: 503,
  ResultsFetchError: 502,
};

/** The route for a method and path: exact, or with `:name` segments captured. */
function match<H>(table: Record<string, H>, method: string, path: string): { handler?: H; params: Record<string, string>; known: boolean } {
  const parts = path.split('/');
  let known = false;
  for (const [key, handler] of Object.entries(table)) {
    const [m, pattern] = key.split(' ') as [string, string];
    const want = pattern.split('/');
    if (want.length !== parts.length) continue;
    const params: Record<string, string> = {};
    const ok = want.every((w, i) => {
      if (w.startsWith(':')) {
        try {
          params[w.slice(1)] = decodeURIComponent(parts[i]!);
        } catch {
          throw new HttpError(400, `the path segment "${parts[i]}" is not valid percent-encoding`, 'invalid-path');
        }
        return parts[i] !== '';
      }
      return w === parts[i];
    });
    if (!ok) continue;
    if (m === method) return { handler, params, known: true };
    known = true;
  }
  return { params: {}, known };
}

async function readBody(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `request body over ${MAX_BODY_BYTES} bytes`, 'too-large');
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch (e) {
    throw new HttpError(400, `request body is not JSON: ${(e as Error).message}`, 'invalid-json');
  }
}

function authorized(req: http.IncomingMessage, token: Buffer): boolean {
  const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const given = Buffer.from(m[1]!);
  return given.length === token.length && timingSafeEqual(given, token);
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * A route served before the bearer-token check, that does its own (`/metrics`, loopback only and token-free; the
 * dashboard, behind its login cookie). Answers true when it handled the request.
 */
export type OpenRoute = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => boolean | Promise<boolean>;

/**
 * Whether a request's Host header names this server on loopback: a page on another origin that a DNS name was made
 * to resolve to 127.0.0.1 (DNS rebinding) sends its own name, and is refused.
 */
export function loopbackHost(host: string | undefined, port: number): boolean {
  if (!host) return false;
  const m = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\])(?::(\d{1,5}))?$/i.exec(host);
  return m !== null && Number(m[2] ?? 80) === port;
}

export interface ApiServer {
  readonly url: string;
  /** Event streams open now (GET /v1/jobs/:id/events). */
  openStreams(): number;
  stop(): Promise<void>;
}

/**
 * Starts the API on host:port (port 0 picks a free one). `events` tunes the job event streams (default
 * JOB_EVENTS_DEFAULTS: at most 64 open, a heartbeat every 15 s).
 */
export async function startApiServer(init: { host: string; port: number; token: string; events?: Partial<JobEventsInit>; open?: readonly OpenRoute[]; authorize?: (req: http.IncomingMessage) => boolean }, api: NodeApi, log: ApiLog): Promise<ApiServer> {
  const table = routes(api);
  const streams = new JobEventStreams({ ...JOB_EVENTS_DEFAULTS, ...init.events }, api, log);
  const streamTable: Record<string, StreamHandler> = {
    'GET /v1/jobs/:id/events': (p, res) => streams.serve(p.id!, res),
    'GET /v1/jobs/:id/results/file': (p, res) => api.resultFile(p.id!, new URL(res.req.url ?? '/', 'http://localhost').searchParams, res),
  };
  const token = Buffer.from(init.token);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const key = `${req.method} ${path}`;
    void (async () => {
      try {
        const port = (server.address() as AddressInfo | null)?.port ?? init.port;
        if (!loopbackHost(req.headers.host, port)) throw new HttpError(421, `the Host header "${req.headers.host ?? ''}" does not name this API (127.0.0.1:${port}); the API answers only requests addressed to it on loopback`, 'wrong-host');
        for (const route of init.open ?? []) if (await route(req, res, url)) return;
        if (!authorized(req, token) && !init.authorize?.(req)) throw new HttpError(401, 'missing or wrong API token; client commands read it from <data-dir>/api.token', 'unauthorized');
        const stream = match(streamTable, req.method ?? 'GET', path);
        if (stream.handler) {
          req.resume(); // a stream reads no body
          await stream.handler(stream.params, res);
          return;
        }
        const found = match(table, req.method ?? 'GET', path);
        if (!found.handler) {
          const known = found.known || stream.known;
          throw new HttpError(known ? 405 : 404, known ? `${req.method} is not allowed on ${path}` : `no such endpoint ${path}`, known ? 'method' : 'not-found');
        }
        send(res, 200, await found.handler(await readBody(req), found.params, url.searchParams));
      } catch (e) {
        const err = e instanceof HttpError ? e : new HttpError(STATUS_BY_ERROR[(e as Error).name] ?? 500, (e as Error).message ?? String(e), (e as Error).name ?? 'error');
        if (err.status >= 500) log.warn({ route: key, err: e }, 'API request failed');
        else log.debug({ route: key, status: err.status }, err.message);
        if (!res.headersSent) send(res, err.status, { error: err.message, code: err.code });
      }
    })();
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') reject(new AddressInUseError(`API address ${init.host}:${init.port} is in use (another node?); pass --api 127.0.0.1:<other port>, or --api 127.0.0.1:0 for any free port`));
      else if (e.code === 'EADDRNOTAVAIL' || e.code === 'EACCES') reject(new AddressInUseError(`cannot listen on ${init.host}:${init.port} (${e.code}); pass another --api address`));
      else reject(e);
    });
    server.listen(init.port, init.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    openStreams: () => streams.open,
    stop: () =>
      new Promise<void>((resolve) => {
        streams.closeAll();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
