/**
 * Polling a node's local API directly (token from its data dir): much cheaper than a CLI process per poll.
 * The user-facing checks still go through the CLI.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { NodeProcess } from './harness.ts';

export async function apiGet<T>(node: Pick<NodeProcess, 'dataDir' | 'ready'>, route: string): Promise<T> {
  const token = (await fs.readFile(path.join(node.dataDir, 'api.token'), 'utf8')).trim();
  const res = await fetch(`${node.ready.api}${route}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET ${route} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as T;
}
