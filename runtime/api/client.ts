/**
 * The client side of the local API: finds a running node through its data dir (api.json and api.token)
 * or an explicit --api address, and makes authenticated requests.
 */
import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { ClientConfig } from '../config.ts';
import { NodeUnreachableError, RequestFailedError } from '../errors.ts';
import { readJson } from '../files.ts';

export const API_FILE = 'api.json';
export const TOKEN_FILE = 'api.token';

/**
 * A client of one node's API. It speaks node:http rather than fetch: fetch loads undici on first use, which more
 * than doubled the start-up time of every client command (~130 ms of ~250).
 */
export class ApiClient {
  constructor(readonly url: string, readonly token: string) {}

  /** One request with a JSON answer; rejects with the node's error when it is not a 2xx, after 120 s at most. */
  async request(method: 'GET' | 'PUT' | 'POST', route: string, body?: unknown): Promise<unknown> {
    const signal = AbortSignal.timeout(120_000);
    const res = await this.open(method, route, { body, signal });
    let text: string;
    try {
      text = await readText(res);
    } catch (e) {
      throw new NodeUnreachableError(`the node at ${this.url} stopped answering (${errorCause(e)}); is it still running?`);
    }
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      throw new RequestFailedError(`the node answered ${res.statusCode} with a body that is not JSON`, res.statusCode ?? 0);
    }
    if (!isOk(res)) throw new RequestFailedError((parsed as { error?: string })?.error ?? `HTTP ${res.statusCode}`, res.statusCode ?? 0);
    return parsed;
  }

  /**
   * Sends a request and resolves with the response as it starts (its body unread, whatever its status); rejects
   * with NodeUnreachableError when no answer came (also when `signal` aborted it first). Each request has a
   * connection of its own: nothing lingers after the command.
   */
  open(method: 'GET' | 'PUT' | 'POST', route: string, opts: { body?: unknown; signal?: AbortSignal; accept?: string } = {}): Promise<http.IncomingMessage> {
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const headers: http.OutgoingHttpHeaders = { authorization: `Bearer ${this.token}` };
    if (payload) Object.assign(headers, { 'content-type': 'application/json', 'content-length': payload.byteLength });
    if (opts.accept) headers.accept = opts.accept;
    return new Promise((resolve, reject) => {
      const req = http.request(`${this.url}${route}`, { method, headers, agent: false, ...(opts.signal ? { signal: opts.signal } : {}) }, resolve);
      req.on('error', (e) => reject(new NodeUnreachableError(`no node answers at ${this.url} (${errorCause(e)}); start one with \`node runtime/main.js\`, or pass the node's --data-dir or --api`)));
      req.end(payload);
    });
  }
}

/** Whether a response is a 2xx. */
export const isOk = (res: http.IncomingMessage): boolean => (res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300;

/** A response's whole body as text. */
export async function readText(res: http.IncomingMessage): Promise<string> {
  res.setEncoding('utf8');
  let text = '';
  for await (const chunk of res) text += chunk as string;
  return text;
}

/** What went wrong with a connection, shortly: its code (ECONNREFUSED, ...) or message. */
function errorCause(e: unknown): string {
  const err = e as { code?: string; message?: string; cause?: { code?: string } };
  if (err.code === 'ABORT_ERR') return 'no answer in time';
  return err.code ?? err.cause?.code ?? err.message ?? String(e);
}

/** Builds a client for the node that owns the data dir (or listens at --api). */
export async function connect(cfg: ClientConfig): Promise<ApiClient> {
  let token: string;
  try {
    token = (await fs.readFile(path.join(cfg.dataDir, TOKEN_FILE), 'utf8')).trim();
  } catch {
    throw new NodeUnreachableError(`no API token in ${cfg.dataDir}; is a node running with --data-dir ${cfg.dataDir}? Start one with \`node runtime/main.js --data-dir ${cfg.dataDir}\``);
  }
  if (cfg.api) {
    const host = cfg.api.host.includes(':') ? `[${cfg.api.host}]` : cfg.api.host;
    return new ApiClient(`http://${host}:${cfg.api.port}`, token);
  }
  const info = (await readJson(path.join(cfg.dataDir, API_FILE)).catch(() => undefined)) as { url?: string } | undefined;
  if (!info?.url) throw new NodeUnreachableError(`no running node found in ${cfg.dataDir} (no ${API_FILE}); start one with \`node runtime/main.js --data-dir ${cfg.dataDir}\`, or pass --api HOST:PORT`);
  return new ApiClient(info.url, token);
}
