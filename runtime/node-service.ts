/**
 * The running node: the composition root of `node runtime/main.js run`. It wires identity, the supervised
 * Node actor, the effects the Node asks for (benchmark, files, timers, logs), monitoring and the local API.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { NodeView } from '../actors/node.actor.ts';
import type { NodeEvent, NodeIntent, ReplyBody } from '../machines/node.messages.ts';
import { type Benchmark, type Offer, type Registration, resolveOffer, validateOffer } from '../machines/onboarding.ts';
import { DEFAULT_PREFERENCES, type Preferences } from '../machines/preferences.ts';
import { type ApiServer, type NodeApi, startApiServer } from './api.ts';
import { readMachineFacts, runBenchmark } from './benchmark.ts';
import { API_FILE, TOKEN_FILE } from './client.ts';
import type { RunConfig } from './config.ts';
import { DataDirError, OnboardingError } from './errors.ts';
import { probeWritable, readJson, writeFileDurable, writeJson } from './files.ts';
import { type Identity, type NodeId, describe, loadOrCreateIdentity } from './identity.ts';
import type { Logger } from './logger.ts';
import { createMonitor } from './monitor.ts';
import { preferencesSchema } from './schemas.ts';
import { type ActorRef, type OmitFrom, SUPERVISOR_DEFAULTS, Supervisor } from './supervisor.ts';

type NodeRef = ActorRef<NodeEvent>;

export const REGISTRATION_FILE = 'registration.json';
export const PREFERENCES_FILE = 'preferences.json';
const ONBOARD_TIMEOUT_MS = 120_000;

/** What the ready line reports. */
export interface ReadyInfo {
  readonly event: 'ready';
  readonly peerId: string;
  readonly did: string;
  readonly uuid: string;
  readonly listen: readonly string[];
  readonly api: string | null;
  readonly dataDir: string;
  readonly state: string;
  readonly benchmarked: boolean;
  readonly startMs: number;
}

export interface RunningNode {
  readonly ready: ReadyInfo;
  readonly node: NodeRef;
  /** Settles with the error that forces the node down (an actor failing past its restart limit). */
  readonly fatal: Promise<Error>;
  stop(): Promise<void>;
}

interface StoredRegistration {
  offboarded: boolean;
  registration: Registration | null;
}

async function loadStored(dataDir: string, log: Logger): Promise<{ stored: StoredRegistration | undefined; preferences: Preferences }> {
  const read = async (name: string) =>
    readJson(path.join(dataDir, name)).catch((e: Error) => {
      log.warn({ file: name, err: e.message }, `${name} in the data dir does not parse; ignoring it`);
      return undefined;
    });
  const stored = (await read(REGISTRATION_FILE)) as StoredRegistration | undefined;
  const rawPrefs = await read(PREFERENCES_FILE);
  const prefs = rawPrefs === undefined ? undefined : preferencesSchema.safeParse(rawPrefs);
  if (prefs && !prefs.success) log.warn({ file: PREFERENCES_FILE }, `${PREFERENCES_FILE} is not valid preferences; using the defaults`);
  const valid = stored && typeof stored === 'object' && typeof stored.offboarded === 'boolean' ? stored : undefined;
  return { stored: valid, preferences: prefs?.success ? (prefs.data as Preferences) : DEFAULT_PREFERENCES };
}

async function ensureToken(dataDir: string): Promise<string> {
  const file = path.join(dataDir, TOKEN_FILE);
  const existing = await fs.readFile(file, 'utf8').catch(() => '');
  if (existing.trim().length >= 32) return existing.trim();
  const token = randomBytes(32).toString('base64url');
  await writeFileDurable(file, token, 0o600);
  return token;
}

/** Refuses an offer that cannot fit this machine before anything slow starts (exit code 2). */
async function precheckOffer(dataDir: string, offer: Offer): Promise<void> {
  const f = await readMachineFacts(dataDir);
  const pseudo: Benchmark = {
    cores: f.cores, cpuOpsPerSecPerCore: 0, cpuOpsPerSecTotal: 0, memoryTotal: f.memoryTotal, diskTotal: f.diskTotal, diskFree: f.diskFree,
    diskWriteBytesPerSec: 0, gpus: [], arch: '', cpuModel: '', measuredAt: '', durationMs: 0,
  };
  const problems = validateOffer(resolveOffer(offer, pseudo), pseudo, { dataDirWritable: true, dataDir });
  if (problems.length > 0) throw new OnboardingError(problems.map((p) => p.message).join('; '));
}

/** Carries out the Node's intents. File writes are serialised so they land in order. */
function createEffects(deps: { dataDir: string; log: Logger; node: () => NodeRef; onRegistered: () => void }) {
  let writes = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const write = (name: string, value: unknown) => {
    writes = writes.then(() => writeJson(path.join(deps.dataDir, name), value)).catch((e: Error) => deps.log.error({ file: name, err: e.message }, `could not save ${name}`));
  };
  const handle = (intent: NodeIntent): void => {
    switch (intent.type) {
      case 'benchmark.run':
        runBenchmark({ dataDir: deps.dataDir }).then(
          (benchmark) => deps.node().send({ type: 'benchmark.done', benchmark } satisfies NodeEvent),
          (e: Error) => deps.node().send({ type: 'benchmark.fail', reason: e.message } satisfies NodeEvent),
        );
        return;
      case 'registration.save':
        write(REGISTRATION_FILE, { offboarded: intent.registration === null, registration: intent.registration });
        deps.onRegistered();
        return;
      case 'preferences.save':
        write(PREFERENCES_FILE, intent.preferences);
        return;
      case 'onboarding.failed':
        deps.log.warn({ problems: intent.problems }, 'onboarding failed');
        return;
      case 'timer.schedule':
        clearTimeout(timer);
        if (intent.at !== null) {
          timer = setTimeout(() => deps.node().send({ type: 'ledger.expire', now: Date.now() } satisfies NodeEvent), Math.max(0, intent.at - Date.now()));
          timer.unref();
        }
        return;
      case 'allocation.stop':
        deps.log.info({ allocation: intent.allocationId }, 'stopping allocation');
        return;
      case 'log.write':
        deps.log[intent.level](intent.data ?? {}, intent.message);
        return;
      case 'reply.send':
        return;
      default: {
        const never: never = intent;
        deps.log.warn({ intent: never }, 'unknown intent');
      }
    }
  };
  return {
    handle: (intents: readonly unknown[]) => intents.forEach((i) => handle(i as NodeIntent)),
    flush: () => writes,
    stop: () => clearTimeout(timer),
  };
}

export async function startNode(config: RunConfig, log: Logger): Promise<RunningNode> {
  const t0 = performance.now();
  const { dataDir } = config;
  if (!(await probeWritable(dataDir))) throw new DataDirError(`data dir ${dataDir} cannot be created or written; fix its permissions or pass another --data-dir`);
  const { identity, created } = await loadOrCreateIdentity(dataDir);
  if (created) log.info({ peerId: identity.peerId }, 'created a new node identity');
  const { stored, preferences } = await loadStored(dataDir, log);
  const offer: Offer = { ...(stored?.registration?.offer ?? {}), ...config.offer };
  const shouldOnboard = !stored?.offboarded || Object.keys(config.offer).length > 0;
  if (shouldOnboard) await precheckOffer(dataDir, offer);
  const token = await ensureToken(dataDir);

  let resolveFatal!: (e: Error) => void;
  const fatal = new Promise<Error>((r) => (resolveFatal = r));
  let nodeRef: NodeRef | undefined;
  let descriptor: { key: string; nodeId: NodeId } | undefined;
  const effects = createEffects({ dataDir, log, node: () => nodeRef!, onRegistered: () => (descriptor = undefined) });
  const supervisor = new Supervisor(SUPERVISOR_DEFAULTS, {
    log,
    onIntents: (_id, intents) => effects.handle(intents),
    onEscalate: (e) => resolveFatal(e),
  });
  const node = await supervisor.spawn<NodeEvent>({ id: 'node', kind: 'node', input: { preferences, registration: stored?.registration ?? null } });
  nodeRef = node;

  let api: ApiServer | undefined;
  let monitor: ReturnType<typeof createMonitor> | undefined;
  const stop = async () => {
    await monitor?.stop();
    await api?.stop();
    await fs.rm(path.join(dataDir, API_FILE), { force: true });
    effects.stop();
    if (node.status === 'running') {
      node.send({ type: 'node.stop' } satisfies NodeEvent);
      await node.drain();
    }
    await supervisor.stop();
    await effects.flush();
  };

  try {
    const nodeApi = createNodeApi({ node, identity, dataDir, listen: () => [], apiUrl: () => api?.url ?? null, descriptor: () => descriptor, setDescriptor: (d) => (descriptor = d) });
    if (config.api) {
      api = await startApiServer({ ...config.api, token }, nodeApi, log);
      await writeJson(path.join(dataDir, API_FILE), { url: api.url, pid: process.pid });
    }
    let benchmarked = false;
    if (shouldOnboard) {
      benchmarked = config.rebenchmark || !stored?.registration?.benchmark;
      const reply = await node.ask({ type: 'node.onboard', offer, host: { dataDir, dataDirWritable: true }, rebenchmark: config.rebenchmark } satisfies OmitFrom<NodeEvent, 'replyTo'>, ONBOARD_TIMEOUT_MS);
      if (!reply.ok) throw new OnboardingError(`onboarding failed: ${reply.message}`);
    }
    monitor = createMonitor({ dataDir, intervalMs: config.monitorIntervalMs, onError: (e: Error) => log.warn({ err: e.message }, 'monitoring sample failed') }, (sample) =>
      node.send({ type: 'monitor.sample', sample } satisfies NodeEvent),
    );
    await monitor.start();
    const view = await node.view();
    const ready: ReadyInfo = {
      event: 'ready', peerId: identity.peerId, did: identity.did, uuid: identity.uuid, listen: [], api: api?.url ?? null,
      dataDir, state: String(view.value), benchmarked, startMs: Math.round(performance.now() - t0),
    };
    return { ready, node, fatal, stop };
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
}

function createNodeApi(deps: {
  node: NodeRef;
  identity: Identity;
  dataDir: string;
  listen: () => string[];
  apiUrl: () => string | null;
  descriptor: () => { key: string; nodeId: NodeId } | undefined;
  setDescriptor: (d: { key: string; nodeId: NodeId }) => void;
}): NodeApi {
  const { node } = deps;
  const view = async () => (await node.view()).context as NodeView;
  const ask = (e: OmitFrom<NodeEvent, 'replyTo'>): Promise<ReplyBody> => node.ask(e);
  return {
    async info() {
      const v = await view();
      const key = JSON.stringify(v.registration?.capability ?? null);
      let d = deps.descriptor();
      if (!d || d.key !== key) {
        d = { key, nodeId: (await describe(deps.identity, v.registration?.capability ?? null)).nodeId };
        deps.setDescriptor(d);
      }
      return {
        identity: d.nodeId,
        state: v.state,
        capability: v.capability,
        locks: Object.values(v.locks),
        allocations: Object.values(v.allocations),
        benchmark: v.registration?.benchmark ?? null,
        monitoring: { sample: v.sample, constrained: v.constrained },
        problems: v.problems,
        listen: deps.listen(),
        peers: 0,
        api: deps.apiUrl(),
        dataDir: deps.dataDir,
        restarts: node.restarts,
      };
    },
    peers: async () => [],
    preferences: async () => (await view()).preferences,
    setPreferences: (preferences) => ask({ type: 'preferences.set', preferences }),
    onboard: async (offer) => {
      const current = (await view()).registration?.offer ?? {};
      return ask({ type: 'node.onboard', offer: { ...current, ...offer }, host: { dataDir: deps.dataDir, dataDirWritable: await probeWritable(deps.dataDir) } });
    },
    offboard: () => ask({ type: 'node.offboard' }),
  };
}
