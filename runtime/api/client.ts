/**
 * The client side of the local API: finds a running node through its data dir (api.json and api.token)
 * or an explicit --api address, and makes authenticated requests.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ClientConfig } from '../config.ts';
import { NodeUnreachableError, RequestFailedError } from '../errors.ts';
import { readJson } from '../files.ts';

export const API_FILE = 'api.json';
export const TOKEN_FILE = 'api.token';

export class ApiClient {
  constructor(readonly url: string, readonly token: string) {}

  async request(method: 'GET' | 'PUT' | 'POST', route: string, body?: unknown): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(`${this.url}${route}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(120_000),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
      throw new NodeUnreachableError(`no node answers at ${this.url} (${cause}); start one with \`node runtime/main.js\`, or pass the node's --data-dir or --api`);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      throw new RequestFailedError(`the node answered ${res.status} with a body that is not JSON`, res.status);
    }
    if (!res.ok) throw new RequestFailedError((parsed as { error?: string })?.error ?? `HTTP ${res.status}`, res.status);
    return parsed;
  }
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
