/**
 * End to end: who may use a node (issue 14). Provider B runs with `--require-grants`; requester A deploys process
 * jobs pinned to B, through its API, as a user would; grants are made on B (`POST /v1/cap/grant`: B's own DID is the
 * anchor), added on A (`POST /v1/cap/add`) and revoked on B. Without a grant A's job is declined `unauthorized` and
 * fails at once, saying so in `status`; with one it runs; a revoked or expired grant is declined again and the deal's
 * output is no longer served; a delegated chain (B -> C -> A) is accepted, a widening one cannot be made. A raw
 * libp2p peer presenting a forged, widened or expired chain in a signed bid request is declined and counted.
 * Two nodes and one raw peer, shared by every test.
 */
import '../../runtime/polyfills.ts';
import type { Ed25519PrivateKey, Libp2p } from '@libp2p/interface';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { JobSpec } from '../../machines/job.ts';
import type { JobRecord } from '../../machines/requester.messages.ts';
import { forgeUnder, fromPairs, loadTrust, party, rawPairs, type Party, type TrustLib } from '../runtime/trust/trust-fixtures.ts';
import { type NodeApiClient, type NodeProcess, type PeerRow, apiOf, cli, eventually, jobUntil, killAll, makeTempDir, removeTempDirs, startNode, waitFor } from './harness.ts';
import { frame, rawPeerLib, readVarint, serveChannel } from '../fixtures/raw-peer-lib.ts';

const PROTOCOL = '/dms/actor/1.0.0';
const DOMAIN = new TextEncoder().encode('dms/envelope/v1\n');
const MiB = 1024 ** 2;
const TERMINAL = ['completed', 'failed', 'cancelled'];

const net = rawPeerLib;

interface Granted {
  id: string;
  token: string;
  links: string[];
  expiresAt: number;
}
interface Info {
  bidDeclines: Record<string, number>;
}

interface Ctx {
  T: TrustLib;
  A: NodeProcess;
  B: NodeProcess;
  a: NodeApiClient;
  b: NodeApiClient;
  /** The grant B made A, and the job that ran under it. */
  granted?: Granted;
  ran?: string;
}

const test = suite<Ctx>('e2e: a provider with --require-grants serves only requesters it granted deploy', {} as Ctx);

test.before(async (ctx) => {
  try {
    ctx.T = await loadTrust();
    ctx.B = await startNode(await makeTempDir('grants-b'), ['--bid-window', '500ms', '--executors', 'wasm,process', '--require-grants'], { timeoutMs: 40_000 });
    ctx.A = await startNode(await makeTempDir('grants-a'), ['--bid-window', '500ms', '--bootstrap', ctx.B.ready.listen[0]!], { timeoutMs: 40_000 });
    ctx.a = await apiOf(ctx.A);
    ctx.b = await apiOf(ctx.B);
    await waitFor('A to see B as a DMS peer', async () => ((await ctx.a.get<PeerRow[]>('/v1/peers')).some((p) => p.dms && p.peer === ctx.B.ready.peerId) ? true : undefined), 30_000, 200);
  } catch (e) {
    process.stderr.write(`e2e grants: the nodes did not come up: ${(e as Error).stack ?? String(e)}\n`);
    throw e;
  }
});

test.after(async () => {
  await killAll();
  await removeTempDirs();
});

/** A process job for B that prints `text`. */
const job = (ctx: Ctx, name: string, text = name): JobSpec => ({
  name,
  executor: 'process',
  process: { command: 'sh', args: ['-c', `echo ${text}`], env: {} },
  resources: { cpu: 0.1, memory: 32 * MiB, disk: 0, gpus: 0 },
  timeoutMs: 30_000,
  constraints: { peers: [ctx.B.ready.peerId], excludePeers: [] },
});

async function post<T>(api: NodeApiClient, route: string, body: unknown): Promise<T> {
  const r = await api.call('POST', route, body);
  if (r.status !== 200) throw new Error(`POST ${route} answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body as T;
}

/** Deploys on A and waits for the job's end. */
async function run(ctx: Ctx, name: string): Promise<JobRecord> {
  const { id } = await post<JobRecord>(ctx.a, '/v1/deploy', { job: job(ctx, name) });
  return jobUntil(ctx.a, id, `${name} to end`, (r) => TERMINAL.includes(r.state), 20_000);
}

/** The job failed at once because B declined it `unauthorized`, for a reason matching `why`. */
function assertUnauthorized(ctx: Ctx, r: JobRecord, why: RegExp): void {
  assert.is(r.state, 'failed', JSON.stringify(r));
  const d = r.declines.find((x) => x.provider === ctx.B.ready.peerId);
  assert.ok(d, `no decline from B: ${JSON.stringify(r.declines)}`);
  assert.is(d!.code, 'unauthorized');
  assert.match(d!.reason, why);
  assert.match(r.message, /no provider can take this job/);
  assert.is(r.allocationId, null);
}

const grant = (ctx: Ctx, audience: string, extra: { durationMs?: number; depth?: number } = {}) => post<Granted>(ctx.b, '/v1/cap/grant', { audience, actions: ['deploy'], ...extra });
const logsOf = (ctx: Ctx, id: string) => ctx.a.call('GET', `/v1/logs/${id}?offset=0`);
const declinedUnauthorized = async (ctx: Ctx) => (await ctx.b.get<Info>('/v1/info')).bidDeclines.unauthorized ?? 0;

test('without a token: declined unauthorized, the job fails at once and `status` says why; counted on B', async (ctx) => {
  const before = await declinedUnauthorized(ctx);
  const r = await run(ctx, 'no-token');
  assertUnauthorized(ctx, r, /^unauthorized: no-grant/);
  const status = await cli(['status', r.id, '--data-dir', ctx.A.dataDir]);
  assert.match(status.stdout, /declined\s+\S+: unauthorized: no-grant/, status.stdout + status.stderr);
  assert.is(await declinedUnauthorized(ctx), before + 1);
  assert.equal((await ctx.b.get<{ locks: unknown[] }>('/v1/info')).locks, [], 'B locked nothing for it');
});

test('B grants A deploy, A adds the token: a job runs on B, and its output is served while the grant holds', async (ctx) => {
  const g = await grant(ctx, ctx.A.ready.did);
  await post(ctx.a, '/v1/cap/add', { token: g.token });
  const r = await run(ctx, 'granted');
  assert.is(r.state, 'completed', JSON.stringify(r));
  assert.is(r.provider, ctx.B.ready.peerId);
  const logs = await logsOf(ctx, r.id);
  assert.is(logs.status, 200, JSON.stringify(logs.body));
  assert.match(JSON.stringify(logs.body), /granted/);
  ctx.ran = r.id;
  ctx.granted = g;
});

test('B revokes it: A\'s next job is declined unauthorized, and the output of the job it ran is no longer served', async (ctx) => {
  const g = ctx.granted!;
  await post(ctx.b, '/v1/cap/revoke', { id: g.id });
  const r = await run(ctx, 'revoked');
  // A either still sends the token (B: revoked) or heard B's revocation and sends none (B: no-grant)
  assertUnauthorized(ctx, r, /^unauthorized: (revoked|no-grant)/);
  const logs = await logsOf(ctx, ctx.ran!);
  assert.is.not(logs.status, 200, 'the output of a deal whose grant was revoked was served');
  assert.match(JSON.stringify(logs.body), /unauthorized/);
});

test('a grant that expires: taken while it holds; once it ended, the deal\'s output is refused and the next job declined', async (ctx) => {
  const g = await grant(ctx, ctx.A.ready.did, { durationMs: 4_000 });
  await post(ctx.a, '/v1/cap/add', { token: g.token });
  const r = await run(ctx, 'short-lived');
  assert.is(r.state, 'completed', JSON.stringify(r));
  assert.is((await logsOf(ctx, r.id)).status, 200);
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, g.expiresAt - Date.now() + 100)));
  const logs = await logsOf(ctx, r.id);
  assert.is.not(logs.status, 200);
  assert.match(JSON.stringify(logs.body), /refused the request: unauthorized: the capability grant this deal was accepted under expired/);
  // A no longer sends an expired token, so B sees none
  assertUnauthorized(ctx, await run(ctx, 'expired'), /^unauthorized: (expired|no-grant)/);
});

test('a delegated chain B -> C -> A is accepted; C cannot make a wider one', async (ctx) => {
  const c: Party = await party();
  const toC = await grant(ctx, c.did, { depth: 1 });
  const now = Date.now();
  const { T } = ctx;
  // C's own re-grants, never wider: more actions, a later end or as deep as its own proof are refused when made
  for (const wider of [{ actions: ['deploy', 'logs'] as const, expiresAt: toC.expiresAt - 1000, depth: 0 }, { actions: ['deploy'] as const, expiresAt: toC.expiresAt + 1000, depth: 0 }, { actions: ['deploy'] as const, expiresAt: toC.expiresAt - 1000, depth: 1 }]) {
    assert.throws(() => T.delegate({ token: toC.token, holderKey: c.key, audienceDid: ctx.A.ready.did, actions: [...wider.actions], expiresAt: wider.expiresAt, depth: wider.depth, now }), (e: Error) => e.name === 'CapabilityWideningError');
  }
  const toA = T.delegate({ token: toC.token, holderKey: c.key, audienceDid: ctx.A.ready.did, actions: ['deploy'], expiresAt: toC.expiresAt - 1000, now });
  await post(ctx.a, '/v1/cap/add', { token: toA });
  // A holds it, with depth 0: it cannot pass it on
  const refused = await ctx.a.call('POST', '/v1/cap/delegate', { token: toA, audience: c.did, actions: ['deploy'] });
  assert.is(refused.status, 400, JSON.stringify(refused.body));
  const r = await run(ctx, 'delegated');
  assert.is(r.state, 'completed', JSON.stringify(r));
  assert.is(r.provider, ctx.B.ready.peerId);
});

test('the preference provider.requireGrants round-trips through the API', async (ctx) => {
  const prefs = await ctx.b.get<{ provider: Record<string, unknown> }>('/v1/preferences');
  const on = { ...prefs, provider: { ...prefs.provider, requireGrants: true } };
  const r = await ctx.b.call('PUT', '/v1/preferences', on);
  assert.is(r.status, 200, JSON.stringify(r.body));
  assert.is((await ctx.b.get<{ provider: { requireGrants?: boolean } }>('/v1/preferences')).provider.requireGrants, true);
  const bad = await ctx.b.call('PUT', '/v1/preferences', { ...prefs, provider: { ...prefs.provider, requireGrants: 'yes' } });
  assert.is(bad.status, 400);
});

// ---------------------------------------------------------------------------------------------------------------


/** The envelope in a frame from B (0x01 alone, 0x05 in a batch: skip its count, index and sibling hashes). */
function envelopeOf(L: Awaited<typeof net>, f: Uint8Array): Record<string, unknown> {
  if (f[0] === 0x01) return L.dagCbor.decode(f.subarray(65)) as Record<string, unknown>;
  const [count, o1] = readVarint(f, 65);
  let [index, o] = readVarint(f, o1);
  for (let n = count; n > 1; index = Math.floor(index / 2), n = Math.ceil(n / 2)) if ((index ^ 1) < n) o += 32;
  return L.dagCbor.decode(f.subarray(o)) as Record<string, unknown>;
}

/** A raw libp2p peer that speaks the actor protocol to B: it signs bid requests and collects B's answers. */
async function rawPeer(ctx: Ctx) {
  const L = await net;
  const key = (await L.generateKeyPair('Ed25519')) as Ed25519PrivateKey;
  const node: Libp2p = await L.createLibp2p({ privateKey: key, transports: [L.webSockets()], connectionEncrypters: [L.noise()], streamMuxers: [L.yamux()], services: { identify: L.identify() } });
  const me = L.peerIdFromPrivateKey(key).toString();
  const did = ctx.T.didKeyOf(key.publicKey.raw);
  const answers: Record<string, unknown>[] = [];
  await node.handle(PROTOCOL, (stream) => serveChannel(stream, 100, (body) => answers.push(envelopeOf(L, body))));
  const stream = await node.dialProtocol(L.multiaddr(ctx.B.ready.listen[0]!), PROTOCOL, { signal: AbortSignal.timeout(10_000) });
  /** A signed bid request to B for more cpu than it has (so one it may serve is declined too-large, locking nothing). */
  const ask = async (dealId: string, grants: string[]) => {
    const now = Date.now();
    const job = { name: 'raw', executor: 'wasm', resources: { cpu: 1000, memory: MiB, disk: 0, gpus: 0 }, timeoutMs: 10_000, constraints: { peers: [], excludePeers: [] }, wasm: { module: { sha256: 'ab'.repeat(32), size: 100 }, args: [], env: {} } };
    const env = { v: 1, id: `raw.${dealId}`, from: { peer: me, did, inbox: 'requester' }, to: { peer: ctx.B.ready.peerId, inbox: 'node' }, type: 'bid.request', payload: { dealId, nonce: 1, job, expiresAt: now + 20_000, grants }, ts: now, exp: now + 30_000 };
    const body = L.dagCbor.encode(env);
    stream.send(frame(0x01, Uint8Array.from([...(await key.sign(Uint8Array.from([...DOMAIN, ...body]))), ...body])));
  };
  const answer = async (dealId: string) => {
    let got: { type: string; code?: string; reason?: string } | undefined;
    const ok = await eventually(() => {
      const e = answers.find((x) => (x.payload as { dealId?: string }).dealId === dealId);
      got = e ? { type: String(e.type), ...(e.payload as { code?: string; reason?: string }) } : undefined;
      return got !== undefined;
    }, 10_000);
    assert.ok(ok, `B did not answer ${dealId}: ${answers.map((x) => x.type).join(', ')}`);
    return got!;
  };
  return { node, did, ask, answer };
}

test('a raw peer presenting a forged, a widened or an expired chain is declined unauthorized and counted; a good one is not', async (ctx) => {
  const raw = await rawPeer(ctx);
  try {
    const helper = await party();
    // B's own grants: to the raw peer (to tamper with, and a short one to let expire), and to a helper with depth 1
    const good = await grant(ctx, raw.did);
    const short = await grant(ctx, raw.did, { durationMs: 1_000 });
    const toHelper = await grant(ctx, helper.did, { depth: 1 });
    // forged: B's grant with its signature's last byte changed
    const pairs = rawPairs(good.token);
    const sig = Uint8Array.from(pairs[0]![1]);
    sig[63] = sig[63]! ^ 0xff;
    const forged = fromPairs([[pairs[0]![0], sig]]);
    // widened: the helper re-grants past its proof's end (delegate() would refuse to make it)
    const widened = forgeUnder(toHelper.token, helper, { aud: raw.did, exp: toHelper.expiresAt + 3_600_000, iat: Date.now(), dep: 0 });
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, short.expiresAt - Date.now() + 50)));
    const before = await declinedUnauthorized(ctx);
    const cases: [string, string, RegExp][] = [
      ['raw-forged', forged, /^unauthorized: bad-signature/],
      ['raw-widened', widened, /^unauthorized: widening/],
      ['raw-expired', short.token, /^unauthorized: expired/],
    ];
    for (const [dealId, token, why] of cases) {
      await raw.ask(dealId, [token]);
      const a = await raw.answer(dealId);
      assert.is(a.type, 'bid.decline', dealId);
      assert.is(a.code, 'unauthorized', `${dealId}: ${a.reason}`);
      assert.match(a.reason!, why);
    }
    assert.is(await declinedUnauthorized(ctx), before + 3, 'each decline counted once');
    // the good grant passes the check: B then looks at the job, which is too large for it
    await raw.ask('raw-good', [forged, good.token]);
    const a = await raw.answer('raw-good');
    assert.is(a.code, 'too-large', a.reason);
  } finally {
    await raw.node.stop();
  }
});

test.run();
