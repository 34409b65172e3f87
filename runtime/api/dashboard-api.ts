/**
 * The dashboard's reads and its deploy: the actors running now, one actor with its recent events, an actor kind's
 * statechart and the topology laid out (graph-layout.ts, loaded on first use), and a job file deployed from the page
 * with the same parsing and checks as `deploy FILE`.
 */
import path from 'node:path';
import { z } from 'zod';
import { describeIssues } from './input-schemas.ts';
import type { ActivityFeed } from './activity-feed.ts';
import type { DashboardAuth } from './dashboard-auth.ts';
import type { DashboardApi, NodeApi } from './http-server.ts';
import type { NetworkService } from '../net/network-service.ts';
import type { Supervisor } from '../supervisor/supervisor.ts';
import type { Topology } from '../net/topology.ts';

export class UnknownActorError extends Error {
  override name = 'UnknownActorError';
}

/** At most this many actors are listed (the oldest first; the node's own first of all). */
const MAX_LISTED = 300;

/** A job file from the page: its name and text, and the files it names (a WASM module), base64, by file name. */
const deployFileSchema = z.strictObject({
  name: z.string().min(1).max(200).regex(/^[^/\\]+$/, 'is a file name, not a path'),
  text: z.string().max(1 << 20),
  files: z.record(z.string().min(1).max(200).regex(/^[^/\\]+$/, 'is a file name, not a path'), z.base64()).optional(),
});

/** Where a page's files appear to be, so that a job file's relative module path finds them by name. */
const UPLOAD_DIR = '/dashboard-upload';

class BadDeployFileError extends Error {
  override name = 'JobFileError';
}

export function createDashboardApi(deps: {
  supervisor: Supervisor;
  feed: ActivityFeed;
  auth: DashboardAuth;
  apiUrl: () => string | null;
  net: () => NetworkService | undefined;
  /** The CLI's deploy route, for what the page's job file turns into. */
  deploy: NodeApi['deploy'];
  deployEnsemble: NodeApi['deployEnsemble'];
}): DashboardApi {
  const { supervisor } = deps;
  return {
    async login() {
      const url = deps.apiUrl();
      if (!url) throw new Error('the API has no address yet');
      const { code, expiresAt } = deps.auth.issueCode();
      return { url: `${url}/dashboard/login?code=${code}`, expiresAt };
    },
    async actors() {
      const refs = supervisor.actors().slice(0, MAX_LISTED);
      return Promise.all(
        refs.map(async (ref) => {
          const last = deps.feed.recent(ref.id).at(-1);
          const base = { id: ref.id, kind: ref.kind, restarts: ref.restarts, lastEvent: last ? { type: last.type, ts: last.ts, seq: last.seq } : null };
          try {
            const v = await ref.view();
            return { ...base, status: v.status, value: v.value };
          } catch (e) {
            return { ...base, status: 'unavailable', value: null, error: (e as Error).message };
          }
        }),
      );
    },
    async actor(id) {
      const ref = supervisor.get(id);
      if (!ref) throw new UnknownActorError(`no actor ${id} runs on this node (it may have ended: see replay --actor ${id})`);
      const v = await ref.view();
      return { id, kind: ref.kind, restarts: ref.restarts, status: v.status, value: v.value, context: v.context, events: deps.feed.recent(id) };
    },
    async machine(kind) {
      const [{ ACTOR_KINDS }, { statechartOf }] = await Promise.all([import('../../actors/kinds.ts'), import('./graph-layout.ts')]);
      const k = ACTOR_KINDS.get(kind);
      if (!k) throw new UnknownActorError(`no actor kind ${kind}; kinds: ${[...ACTOR_KINDS.keys()].join(', ')}`);
      return { kind, ...(await statechartOf(kind, (k.logic as unknown as { root: Parameters<typeof statechartOf>[1] }).root)) };
    },
    async topologyLayout() {
      const net = deps.net();
      if (!net) return { width: 0, height: 0, nodes: [], edges: [] };
      const [t, { place, topologyGraph }] = await Promise.all([net.topology() as Promise<Topology>, import('./graph-layout.ts')]);
      return place(topologyGraph(t));
    },
    async deployFile(body) {
      const r = deployFileSchema.safeParse(body);
      if (!r.success) throw new BadDeployFileError(`invalid job file upload: ${describeIssues(r.error)}`);
      const { name, text, files = {} } = r.data;
      const [{ loadJobFile, readJobDocument, FileTooLargeError }, { MAX_DEAL_MODULE_BYTES }] = await Promise.all([import('../cli/job-file.ts'), import('../deals/deal-schemas.ts')]);
      const jobPath = path.posix.join(UPLOAD_DIR, name);
      const readFile = async (file: string, maxBytes: number): Promise<Uint8Array> => {
        const bytes = file === jobPath ? Buffer.from(text, 'utf8') : path.posix.dirname(file) === UPLOAD_DIR && files[path.posix.basename(file)] !== undefined ? Buffer.from(files[path.posix.basename(file)]!, 'base64') : null;
        if (!bytes) throw new Error(`${path.posix.basename(file)} was not uploaded with the job file (choose it too: the job file names it)`);
        if (bytes.byteLength > maxBytes) throw new FileTooLargeError(bytes.byteLength);
        return new Uint8Array(bytes);
      };
      const doc = await readJobDocument(jobPath, readFile);
      if ('allocations' in doc) {
        const { loadEnsembleFile } = await import('../cli/ensemble-file.ts');
        const loaded = await loadEnsembleFile(jobPath, { maxModuleBytes: MAX_DEAL_MODULE_BYTES, readFile });
        return deps.deployEnsemble(loaded.ensemble, loaded.modules);
      }
      const loaded = await loadJobFile(jobPath, { maxModuleBytes: MAX_DEAL_MODULE_BYTES, readFile });
      return deps.deploy(loaded.job, loaded.module);
    },
  };
}
