/**
 * End to end: real `node runtime/main.js` processes on loopback, driven only through the CLI and the HTTP API,
 * as a user or a script would (INTERFACE.md).
 */
import type { Capability as Cap } from '../../machines/capability.ts';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type CliResult,
  type NodeProcess,
  type ReadyLine,
  cli,
  cliJson,
  eventually,
  exists,
  killAll,
  makeTempDir,
  modeOf,
  removeTempDirs,
  snapshotDir,
  startNode,
} from './harness.ts';


interface Info {
  identity: { uuid: string; cid: string; peerId: string; did: string };
  state: string;
  capability: { registered: Cap; locked: Cap; allocated: Cap; available: Cap };
  benchmark: { measuredAt: string; cpuOpsPerSecPerCore: number } | null;
  monitoring: { sample: { at: number } | null };
  api: string;
}

interface Prefs {
  provider: { minPrice: number; acceptRequesters: string[]; refuseRequesters: string[]; keepFree: number; maxLocksPerRequester?: number };
  requester: { weights: { price: number; score: number; rtt: number } };
}

const CORES = os.availableParallelism();
const TOTALMEM = os.totalmem();
const MiB = 1024 ** 2;
const BASE58 = '[1-9A-HJ-NP-Za-km-z]+';

const info = (dataDir: string) => cliJson<Info>(['info', '--data-dir', dataDir]);
const prefsOf = (dataDir: string) => cliJson<Prefs>(['preferences', '--data-dir', dataDir]);
const zero = (c: Cap) => c.cpu === 0 && c.memory === 0 && c.disk === 0 && c.gpus.length === 0;

/** Bad usage: exit 2, nothing on stdout, one line on stderr that matches `names`, no stack trace. */
function assertUsageError(r: CliResult, names: RegExp): void {
  const what = `stdout: ${r.stdout}\nstderr: ${r.stderr}`;
  assert.is(r.code, 2, `exit code 2 expected\n${what}`);
  assert.is(r.stdout, '', `nothing on stdout expected\n${what}`);
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  assert.is(lines.length, 1, `a single-line message expected\n${what}`);
  assert.not.match(r.stderr, /^\s{4}at /m, `no stack trace expected\n${what}`);
  assert.match(lines[0] ?? '', names);
}

/** A port on 127.0.0.1 that a server of ours holds open until `close`. */
async function occupyPort(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return { port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

// ---------------------------------------------------------------------------------------------------------------

const Fresh = suite<{ dir: string; node?: NodeProcess; info?: Info }>('e2e: a freshly started node', { dir: '' });

/** One node for the suite; `info` is what `info --json` showed right after the start. */
Fresh.before(async (ctx) => {
  ctx.dir = await makeTempDir('fresh');
  ctx.node = await startNode(ctx.dir, ['--monitor-interval', '200']);
  ctx.info = await info(ctx.dir);
});
Fresh.after(async (ctx) => {
  await ctx.node?.kill();
  await killAll();
  await removeTempDirs();
});

Fresh('the JSON ready line carries the peer id, the did:key and the API URL', ({ node }) => {
  const ready = node!.ready;
  assert.is(ready.event, 'ready');
  assert.match(ready.peerId, new RegExp(`^12D3KooW${BASE58}$`));
  assert.match(ready.did, new RegExp(`^did:key:z6Mk${BASE58}$`));
  assert.match(ready.api, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.is.not(new URL(ready.api).port, '0', 'the API reports the port it actually bound');
  assert.is(ready.benchmarked, true, 'a first start benchmarks the machine');
  assert.is(ready.state, 'registered');
  for (const a of ready.listen) assert.ok(a.endsWith(`/p2p/${ready.peerId}`), `listen address ${a} is a full multiaddr`);
});

Fresh('info shows the registered node with the identity of the ready line', ({ node, info: i }) => {
  const ready = node!.ready;
  assert.ok(i);
  assert.is(i.state, 'registered');
  assert.equal(Object.keys(i.identity).sort(), ['cid', 'did', 'peerId', 'uuid']);
  assert.is(i.identity.peerId, ready.peerId);
  assert.is(i.identity.did, ready.did);
  assert.is(i.identity.uuid, ready.uuid);
  assert.match(i.identity.cid, /^bafy/);
  assert.is(i.api, ready.api);
});

Fresh('info shows a capability that fits this machine, all of it available', ({ info: i }) => {
  const { registered, locked, allocated, available } = i!.capability;
  assert.ok(registered.cpu >= 1 && registered.cpu <= CORES, `registered.cpu ${registered.cpu} within 1..${CORES}`);
  assert.ok(
    registered.memory >= 0.1 * TOTALMEM && registered.memory <= 0.9 * TOTALMEM,
    `registered.memory ${registered.memory} within 10-90% of ${TOTALMEM}`,
  );
  assert.ok(registered.disk > 0, 'some disk is offered');
  assert.ok(zero(locked), `nothing locked: ${JSON.stringify(locked)}`);
  assert.ok(zero(allocated), `nothing allocated: ${JSON.stringify(allocated)}`);
  assert.equal(available, registered);
});

Fresh('info shows the benchmark taken at this start', ({ info: i }) => {
  const { benchmark } = i!;
  assert.ok(benchmark, 'a benchmark is stored');
  assert.ok(benchmark.cpuOpsPerSecPerCore > 0, `cpuOpsPerSecPerCore ${benchmark.cpuOpsPerSecPerCore} > 0`);
  const age = Date.now() - Date.parse(benchmark.measuredAt);
  assert.ok(age >= 0 && age < 120_000, `measuredAt ${benchmark.measuredAt} is from this start`);
});

Fresh('monitoring samples keep arriving at the configured interval', async ({ dir, info: i }) => {
  const first = i!.monitoring.sample;
  assert.ok(first, 'a monitoring sample is shown');
  let later = first.at;
  const advanced = await eventually(async () => {
    later = (await info(dir)).monitoring.sample?.at ?? 0;
    return later > first.at;
  }, 5000);
  assert.ok(advanced, `a newer sample than ${first.at} within 5 s (last ${later})`);
});

Fresh('human info output names the node', async ({ dir, node }) => {
  const r = await cli(['info', '--data-dir', dir]);
  assert.is(r.code, 0, r.stderr);
  assert.ok(r.stdout.includes(node!.ready.peerId), r.stdout);
  assert.match(r.stdout, /registered/);
  assert.not.ok(r.stdout.trimStart().startsWith('{'), 'not JSON without --json');
});

Fresh('the key and the API token are readable by the owner only', async ({ dir }) => {
  assert.is((await modeOf(path.join(dir, 'identity.key'))).toString(8), '600');
  assert.is((await modeOf(path.join(dir, 'api.token'))).toString(8), '600');
  assert.ok(await exists(path.join(dir, 'api.json')), 'api.json tells clients where the running node is');
});

Fresh('the data dir is 0700 and what the node wrote in it 0600', async ({ dir }) => {
  assert.is((await modeOf(dir)).toString(8), '700');
  for (const f of await fs.readdir(dir, { withFileTypes: true })) {
    const mode = (await modeOf(path.join(dir, f.name))).toString(8);
    assert.is(mode, f.isDirectory() ? '700' : '600', `${f.name} is ${mode}`);
  }
});

Fresh('a second node on the same data dir exits 2 naming the first one\'s pid, and leaves its files alone', async ({ dir, node }) => {
  const before = await fs.readFile(path.join(dir, 'api.json'), 'utf8');
  const r = await cli(['--data-dir', dir, '--api', '127.0.0.1:0'], { timeoutMs: 20_000 });
  assertUsageError(r, new RegExp(`in use by another node \\(pid ${node!.child.pid}\\)`));
  assert.is(await fs.readFile(path.join(dir, 'api.json'), 'utf8'), before, 'api.json was rewritten');
  assert.is((await cli(['info', '--json', '--data-dir', dir])).code, 0, 'the first node no longer answers');
});

Fresh('the API refuses a request without the token', async ({ node }) => {
  const res = await fetch(`${node!.ready.api}/v1/info`, { signal: AbortSignal.timeout(5000) });
  assert.is(res.status, 401);
  const body = (await res.json()) as { error: string };
  assert.match(body.error, /token/);
});

Fresh('the API refuses a wrong token, and accepts the right one', async ({ dir, node }) => {
  const token = (await fs.readFile(path.join(dir, 'api.token'), 'utf8')).trim();
  const get = (t: string) => fetch(`${node!.ready.api}/v1/info`, { headers: { authorization: `Bearer ${t}` }, signal: AbortSignal.timeout(5000) });
  const wrong = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
  assert.is((await get(wrong)).status, 401, 'a token differing in one character');
  assert.is((await get('nonsense')).status, 401, 'a token of another length');
  assert.is((await get(token)).status, 200, 'the token from the data dir');
});

Fresh('the API answers a malformed JSON body with 400 saying so', async ({ dir, node }) => {
  const token = (await fs.readFile(path.join(dir, 'api.token'), 'utf8')).trim();
  const url = `${node!.ready.api}/v1/preferences`;
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const prefs = async () => (await fetch(url, { headers, signal: AbortSignal.timeout(5000) })).json();
  const before = await prefs();
  const res = await fetch(url, { method: 'PUT', headers, body: '{"provider": {"minPrice": 1,', signal: AbortSignal.timeout(5000) });
  assert.is(res.status, 400);
  assert.match(((await res.json()) as { error: string }).error, /not JSON/);
  assert.equal(await prefs(), before, 'preferences unchanged');
});

Fresh('the API answers a body with a wrong field with 400 naming the field', async ({ dir, node }) => {
  const token = (await fs.readFile(path.join(dir, 'api.token'), 'utf8')).trim();
  const res = await fetch(`${node!.ready.api}/v1/onboard`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ cpu: 'two' }),
    signal: AbortSignal.timeout(5000),
  });
  assert.is(res.status, 400);
  assert.match(((await res.json()) as { error: string }).error, /cpu/);
});

Fresh('the API answers an unknown route with 404', async ({ dir, node }) => {
  const token = (await fs.readFile(path.join(dir, 'api.token'), 'utf8')).trim();
  const res = await fetch(`${node!.ready.api}/v1/nothing-here`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });
  assert.is(res.status, 404);
  assert.match(((await res.json()) as { error: string }).error, /\/v1\/nothing-here/);
});

Fresh.run();

// ---------------------------------------------------------------------------------------------------------------

const Shutdown = suite<{ dir: string }>('e2e: shutdown', { dir: '' });

Shutdown.before(async (ctx) => {
  ctx.dir = await makeTempDir('shutdown');
});
Shutdown.after(async () => {
  await killAll();
  await removeTempDirs();
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  Shutdown(`${signal} stops the node cleanly: exit 0, api.json removed`, async ({ dir }) => {
    const node = await startNode(dir);
    try {
      assert.ok(await exists(path.join(dir, 'api.json')), 'api.json while running');
      const t0 = Date.now();
      const { code, signal: killedBy } = await node.stop(signal, 5000);
      assert.is(code, 0, `exit code after ${signal} (signal ${String(killedBy)})\nstderr: ${node.stderr()}`);
      assert.ok(Date.now() - t0 < 5000);
      assert.not.ok(await exists(path.join(dir, 'api.json')), 'api.json removed');
      assert.not.match(node.stderr(), /"level":[56]0|^error:/m, 'no errors logged while stopping');
    } finally {
      await node.kill();
    }
  });
}

Shutdown('after a clean stop, info says no node runs (exit 1)', async ({ dir }) => {
  const r = await cli(['info', '--data-dir', dir]);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /no running node/);
  assert.not.match(r.stderr, /^\s{4}at /m);
});

Shutdown('after a crash (SIGKILL), info says the node does not answer and how to start one (exit 1)', async ({ dir }) => {
  const node = await startNode(dir);
  await node.stop('SIGKILL');
  assert.ok(await exists(path.join(dir, 'api.json')), 'a killed node leaves its api.json behind');
  const r = await cli(['info', '--data-dir', dir]);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /no node answers/);
  assert.match(r.stderr, /node runtime\/main\.js/);
});

Shutdown.run();

// ---------------------------------------------------------------------------------------------------------------

// --cpu 1 is also the default on a 2-core machine (3/4 of the cores), so 1.5 is what shows the flag was used
const OFFER_CPU = CORES >= 2 ? 1.5 : 1;
const OFFER_MEMORY = Math.floor(0.2 * TOTALMEM);

const Restart = suite<{ dir: string; first?: ReadyLine; firstInfo?: Info }>('e2e: the offer given at start, and restarting on the same data dir', {
  dir: '',
});

/** The first start, with an offer on the command line; the tests restart on its data dir. */
Restart.before(async (ctx) => {
  ctx.dir = await makeTempDir('restart');
  const node = await startNode(ctx.dir, ['--cpu', String(OFFER_CPU), '--memory', String(OFFER_MEMORY)]);
  try {
    ctx.first = node.ready;
    ctx.firstInfo = await info(ctx.dir);
    await node.stop();
  } finally {
    await node.kill();
  }
});
Restart.after(async () => {
  await killAll();
  await removeTempDirs();
});

Restart('--cpu and --memory are registered as given', ({ first, firstInfo }) => {
  assert.is(first!.benchmarked, true);
  const { registered, available } = firstInfo!.capability;
  assert.is(registered.cpu, OFFER_CPU);
  assert.is(registered.memory, OFFER_MEMORY);
  assert.equal(available, registered);
});

Restart('a restart without flags keeps the identity, the offer and the stored benchmark', async ({ dir, first, firstInfo }) => {
  const node = await startNode(dir);
  try {
    assert.is(node.ready.peerId, first!.peerId);
    assert.is(node.ready.uuid, first!.uuid);
    assert.is(node.ready.benchmarked, false, 'the stored benchmark is reused');
    const i = await info(dir);
    assert.equal(i.identity, firstInfo!.identity);
    assert.equal(i.capability.registered, firstInfo!.capability.registered);
    assert.is(i.capability.registered.cpu, OFFER_CPU);
    assert.is(i.capability.registered.memory, OFFER_MEMORY);
    assert.is(i.benchmark?.measuredAt, firstInfo!.benchmark?.measuredAt);
    await node.stop();
  } finally {
    await node.kill();
  }
});

Restart('--rebenchmark measures the machine again', async ({ dir, first, firstInfo }) => {
  const node = await startNode(dir, ['--rebenchmark']);
  try {
    assert.is(node.ready.peerId, first!.peerId);
    assert.is(node.ready.benchmarked, true);
    const i = await info(dir);
    const before = Date.parse(firstInfo!.benchmark!.measuredAt);
    const after = Date.parse(i.benchmark?.measuredAt ?? '');
    assert.ok(after > before, `measuredAt ${i.benchmark?.measuredAt} is newer than ${firstInfo!.benchmark!.measuredAt}`);
    await node.stop();
  } finally {
    await node.kill();
  }
});

Restart.run();

// ---------------------------------------------------------------------------------------------------------------

const DEFAULT_PREFS: Prefs = {
  provider: { minPrice: 0, acceptRequesters: [], refuseRequesters: [], keepFree: 0, maxLocksPerRequester: 8 },
  requester: { weights: { price: 1, score: 1, rtt: 0.5 } },
};
const MY_PREFS: Prefs = {
  provider: { minPrice: 2.5, acceptRequesters: [], refuseRequesters: ['12D3KooWRefusedPeer'], keepFree: 0.25, maxLocksPerRequester: 3 },
  requester: { weights: { price: 2, score: 1, rtt: 0 } },
};
const MY_PREFS_YAML = `# what this node accepts, and how it ranks bids
provider:
  minPrice: 2.5
  acceptRequesters: []
  refuseRequesters:
    - 12D3KooWRefusedPeer
  keepFree: 0.25
  maxLocksPerRequester: 3
requester:
  weights: { price: 2, score: 1, rtt: 0 }
`;

const Preferences = suite<{ dir: string; node?: NodeProcess }>('e2e: preferences', { dir: '' });

Preferences.before(async (ctx) => {
  ctx.dir = await makeTempDir('prefs');
  ctx.node = await startNode(ctx.dir);
});
Preferences.after(async (ctx) => {
  await ctx.node?.kill();
  await killAll();
  await removeTempDirs();
});

Preferences('a new node shows the default preferences', async ({ dir }) => {
  assert.equal(await prefsOf(dir), DEFAULT_PREFS);
});

Preferences('--set with a YAML file replaces them', async ({ dir }) => {
  const file = path.join(dir, '..', `${path.basename(dir)}-prefs.yaml`);
  await fs.writeFile(file, MY_PREFS_YAML);
  try {
    const r = await cli(['preferences', '--set', file, '--data-dir', dir]);
    assert.is(r.code, 0, r.stderr);
    assert.equal(await prefsOf(dir), MY_PREFS);
  } finally {
    await fs.rm(file, { force: true });
  }
});

Preferences('they survive a restart', async (ctx) => {
  await ctx.node!.stop();
  ctx.node = await startNode(ctx.dir);
  assert.equal(await prefsOf(ctx.dir), MY_PREFS);
});

Preferences('a file with a bad field is refused with exit 2 naming the field, and changes nothing', async ({ dir }) => {
  const before = await prefsOf(dir);
  const file = path.join(dir, '..', `${path.basename(dir)}-bad.yaml`);
  await fs.writeFile(file, MY_PREFS_YAML.replace('keepFree: 0.25', 'keepFree: 1.5'));
  try {
    assertUsageError(await cli(['preferences', '--set', file, '--data-dir', dir]), /provider\.keepFree/);
    assert.equal(await prefsOf(dir), before);
  } finally {
    await fs.rm(file, { force: true });
  }
});

Preferences.run();

// ---------------------------------------------------------------------------------------------------------------

const Onboarding = suite<{ dir: string; node?: NodeProcess }>('e2e: onboard and offboard a running node', { dir: '' });

Onboarding.before(async (ctx) => {
  ctx.dir = await makeTempDir('onboard');
  ctx.node = await startNode(ctx.dir);
});
Onboarding.after(async (ctx) => {
  await ctx.node?.kill();
  await killAll();
  await removeTempDirs();
});

// a whole number of MiB near a quarter of the machine: inside 10-90%, and not the default half
const ONBOARD_MIB = Math.round((0.25 * TOTALMEM) / MiB);

Onboarding('onboard changes what the node offers', async ({ dir }) => {
  const before = (await info(dir)).capability.registered;
  const r = await cli(['onboard', '--cpu', String(CORES), '--memory', `${ONBOARD_MIB}MiB`, '--data-dir', dir]);
  assert.is(r.code, 0, r.stderr);
  const { registered, available } = (await info(dir)).capability;
  assert.is(registered.cpu, CORES);
  assert.is(registered.memory, ONBOARD_MIB * MiB);
  assert.is(registered.disk, before.disk, 'an unset field keeps its value');
  assert.equal(available, registered);
});

Onboarding('onboard --cpu 999 is refused with exit 2 naming cpu, and changes nothing', async ({ dir }) => {
  const before = await info(dir);
  assertUsageError(await cli(['onboard', '--cpu', '999', '--data-dir', dir]), /cpu/);
  const after = await info(dir);
  assert.equal(after.capability, before.capability);
  assert.is(after.state, 'registered');
});

Onboarding('offboard withdraws everything', async ({ dir }) => {
  const r = await cli(['offboard', '--data-dir', dir]);
  assert.is(r.code, 0, r.stderr);
  const i = await info(dir);
  assert.is(i.state, 'offboarded');
  assert.ok(zero(i.capability.registered), JSON.stringify(i.capability.registered));
  assert.ok(zero(i.capability.available), JSON.stringify(i.capability.available));
});

Onboarding('onboard after offboard registers the node again', async ({ dir }) => {
  const r = await cli(['onboard', '--data-dir', dir]);
  assert.is(r.code, 0, r.stderr);
  const i = await info(dir);
  assert.is(i.state, 'registered');
  const { registered } = i.capability;
  assert.ok(registered.cpu >= 1 && registered.memory >= 0.1 * TOTALMEM && registered.disk > 0, JSON.stringify(registered));
});

Onboarding.run();

// ---------------------------------------------------------------------------------------------------------------

const BadInput = suite<{ dir: string; snapshot: Record<string, string> | null }>('e2e: bad input exits 2 with one line saying what is wrong', {
  dir: '',
  snapshot: null,
});

/** A registered, stopped node's data dir: bad input must leave it exactly as it is. */
BadInput.before(async (ctx) => {
  ctx.dir = await makeTempDir('bad');
  const node = await startNode(ctx.dir);
  try {
    await node.stop();
  } finally {
    await node.kill();
  }
  ctx.snapshot = await snapshotDir(ctx.dir);
});
BadInput.after(async () => {
  await killAll();
  await removeTempDirs();
});

/** The top-level files only: the key, node.json, the token (not the event log under its subdirectory). */
const topFiles = (snap: Record<string, string> | null) => Object.fromEntries(Object.entries(snap ?? {}).filter(([k]) => !k.includes('/')));

const badFlags: [string, string[], RegExp][] = [
  ['an unknown flag', ['--bogus'], /--bogus/],
  ['a size that is not one', ['--memory', '12x'], /--memory "12x" is not a size/],
  ['more cores than the machine has', ['--cpu', String(CORES * 32)], new RegExp(`cpu ${CORES * 32} is outside 1\\.\\.${CORES}`)],
  ['cores that are not a number', ['--cpu', 'abc'], /--cpu "abc" is not a number/],
  ['an API address that is not loopback', ['--api', '10.0.0.1:9999'], /10\.0\.0\.1 is not a loopback address/],
];

for (const [what, flags, names] of badFlags) {
  BadInput(`${what} (${flags.join(' ')})`, async ({ dir, snapshot }) => {
    assertUsageError(await cli(['--data-dir', dir, '--api', '127.0.0.1:0', ...flags]), names);
    assert.equal(await snapshotDir(dir), snapshot, 'the data dir is unchanged');
  });
}

BadInput('an API port already in use', async ({ dir, snapshot }) => {
  const held = await occupyPort();
  try {
    assertUsageError(await cli(['--data-dir', dir, '--api', `127.0.0.1:${held.port}`]), new RegExp(`127\\.0\\.0\\.1:${held.port} is in use`));
    // the node got as far as recovering its actors from the event log, which records that attempt
    assert.equal(topFiles(await snapshotDir(dir)), topFiles(snapshot), 'identity and token unchanged');
    assert.not.ok(await exists(path.join(dir, 'api.json')), 'no api.json left pointing at a node that is not there');
  } finally {
    await held.close();
  }
});

BadInput('a refused offer on a fresh data dir creates no identity', async () => {
  const dir = path.join(await makeTempDir('bad-fresh'), 'node');
  assertUsageError(await cli(['--data-dir', dir, '--api', '127.0.0.1:0', '--cpu', String(CORES + 1)]), /cpu/);
  const left = await snapshotDir(dir);
  assert.ok(left === null || Object.keys(left).length === 0, `nothing written: ${JSON.stringify(Object.keys(left ?? {}))}`);
});

BadInput('a data dir that cannot be created', async () => {
  const file = path.join(await makeTempDir('bad-file'), 'a-file');
  await fs.writeFile(file, 'not a directory');
  const dir = path.join(file, 'sub');
  assertUsageError(await cli(['--data-dir', dir, '--api', '127.0.0.1:0']), new RegExp(`data dir ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} cannot be created`));
  assert.is(await fs.readFile(file, 'utf8'), 'not a directory');
});

BadInput('a corrupt identity.key is named and left alone', async () => {
  const dir = await makeTempDir('bad-key');
  const keyFile = path.join(dir, 'identity.key');
  const garbage = Buffer.from('this is not a protobuf private key \x00\xff\xfe', 'latin1');
  await fs.writeFile(keyFile, garbage, { mode: 0o600 });
  assertUsageError(await cli(['--data-dir', dir, '--api', '127.0.0.1:0']), /identity\.key/);
  assert.equal(await fs.readFile(keyFile), garbage, 'the key file is not replaced');
});

BadInput.run();

// ---------------------------------------------------------------------------------------------------------------

const NoNode = suite('e2e: client commands with no node running');

NoNode.after(async () => {
  await killAll();
  await removeTempDirs();
});

NoNode('info on an empty data dir exits 1 and says how to start a node', async () => {
  const dir = await makeTempDir('empty');
  const r = await cli(['info', '--data-dir', dir]);
  assert.is(r.code, 1, r.stderr);
  assert.is(r.stdout, '');
  assert.ok(r.stderr.includes(`node runtime/main.js --data-dir ${dir}`), r.stderr);
  assert.not.match(r.stderr, /^\s{4}at /m);
  assert.equal(await snapshotDir(dir), {}, 'a client command writes nothing');
});

NoNode.run();

// ---------------------------------------------------------------------------------------------------------------

const Help = suite('e2e: --help');

Help.after(killAll);

Help('every command prints its usage on stdout and exits 0', async () => {
  const commands = ['run', 'info', 'peers', 'preferences', 'onboard', 'offboard'];
  const results = await Promise.all(commands.map((c) => cli([c, '--help'])));
  results.forEach((r, i) => {
    const c = commands[i]!;
    assert.is(r.code, 0, `${c} --help: ${r.stderr}`);
    assert.is(r.stderr, '', `${c} --help writes nothing on stderr`);
    assert.match(r.stdout, new RegExp(`^Usage: dms ${c} \\[options\\]`), `${c} --help`);
    assert.match(r.stdout, /--data-dir/, `${c} --help lists --data-dir`);
  });
});

Help('the top-level --help lists the commands', async () => {
  const r = await cli(['--help']);
  assert.is(r.code, 0, r.stderr);
  for (const c of ['run', 'info', 'peers', 'preferences', 'onboard', 'offboard']) assert.match(r.stdout, new RegExp(`^\\s+${c}\\b`, 'm'), c);
});

Help.run();
