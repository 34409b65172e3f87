// Where `run`'s settings come from: a flag, else DMS_<FLAG> in the environment, else the config file, else the
// default. parseRunConfig gets the three sources (the file as its parsed document); loadConfigFile finds and reads
// the file. Every bad value is bad usage (exit 2) whose message names its source, even where a higher source wins.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type ConfigFile, type ResolvedSetting, SETTINGS } from '../../runtime/config-sources.ts';
import { type RawOptions, type RunConfig, parseRunConfig, resolveRunConfig } from '../../runtime/config.ts';
import { loadConfigFile } from '../../runtime/cli/config-file.ts';
import { buildCli } from '../../runtime/cli/program.ts';

const DIR = '/tmp/dms-config-sources-test';
const FILE = path.join(DIR, 'config.yaml');
/** A data dir given, so the home directory plays no part. */
const FLAGS: RawOptions = { dataDir: DIR };
const file = (doc: unknown, explicit = false): ConfigFile => ({ path: FILE, explicit, doc });

const settingOf = (flags: RawOptions, env: NodeJS.ProcessEnv, f: ConfigFile | null, name: string): ResolvedSetting =>
  resolveRunConfig(flags, env, f).layered.settings.find((s) => s.name === name)!;

/** The error `fn` throws; fails the test when it throws none. */
function refusal(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  assert.unreachable('accepted');
  throw new Error('unreachable');
}

async function refusalOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  assert.unreachable('accepted');
  throw new Error('unreachable');
}

function usage(e: Error, message: string | RegExp): void {
  assert.is(e.name, 'UsageError', e.message);
  if (typeof message === 'string') assert.is(e.message, message);
  else assert.match(e.message, message);
}

// ---------------------------------------------------------------------------------------------------------------

const Precedence = suite('config sources: flag, then environment, then file, then default');

Precedence('a scalar (api): each source wins over the ones below it, and says where it came from', () => {
  const env = { DMS_API: '127.0.0.1:2000' };
  const f = file({ api: '127.0.0.1:3000' });
  const at = (flags: RawOptions, e: NodeJS.ProcessEnv, fl: ConfigFile | null) => {
    const s = settingOf({ ...FLAGS, ...flags }, e, fl, 'api');
    return { value: s.value, source: s.source, from: s.from, port: parseRunConfig({ ...FLAGS, ...flags }, e, fl).api?.port };
  };
  assert.equal(at({ api: '127.0.0.1:1000' }, env, f), { value: '127.0.0.1:1000', source: 'flag', from: null, port: 1000 });
  assert.equal(at({}, env, f), { value: '127.0.0.1:2000', source: 'env', from: 'DMS_API', port: 2000 });
  assert.equal(at({}, {}, f), { value: '127.0.0.1:3000', source: 'file', from: FILE, port: 3000 });
  assert.equal(at({}, {}, null), { value: '127.0.0.1:9999', source: 'default', from: null, port: 9999 });
});

Precedence('a list (listen): a comma list in the environment, a YAML list or one string in the file', () => {
  const flag = ['/ip4/127.0.0.1/tcp/1/ws', '/ip4/127.0.0.1/tcp/2/ws'];
  const env = { DMS_LISTEN: '/ip4/127.0.0.1/tcp/3/ws, /ip4/127.0.0.1/tcp/4/ws' };
  const f = file({ listen: ['/ip4/127.0.0.1/tcp/5/ws', '/ip4/127.0.0.1/tcp/6/ws'] });
  const listen = (flags: RawOptions, e: NodeJS.ProcessEnv, fl: ConfigFile | null) => parseRunConfig({ ...FLAGS, ...flags }, e, fl).listen;
  assert.equal(listen({ listen: flag }, env, f), flag);
  assert.equal(listen({}, env, f), ['/ip4/127.0.0.1/tcp/3/ws', '/ip4/127.0.0.1/tcp/4/ws']);
  assert.equal(listen({}, {}, f), ['/ip4/127.0.0.1/tcp/5/ws', '/ip4/127.0.0.1/tcp/6/ws']);
  assert.equal(listen({}, {}, file({ listen: '/ip4/127.0.0.1/tcp/7/ws' })), ['/ip4/127.0.0.1/tcp/7/ws']);
  assert.equal(listen({}, {}, null), ['/ip4/0.0.0.0/tcp/9000/ws']);
  const s = settingOf(FLAGS, env, f, 'listen');
  assert.equal([s.source, s.from], ['env', 'DMS_LISTEN']);
  assert.is(settingOf(FLAGS, {}, null, 'listen').source, 'default');
});

Precedence('settings from different sources combine; a file may give numbers and booleans', () => {
  const c = parseRunConfig({ ...FLAGS, cpu: '2' }, { DMS_BID_WINDOW: '500ms', DMS_REBENCHMARK: '1' }, file({ 'monitor-interval': 250, memory: '1GiB', json: true, executors: ['wasm', 'process'], 'max-peers': 8 }));
  assert.is(c.offer.cpu, 2);
  assert.is(c.offer.memory, 1024 ** 3);
  assert.equal(c.offer.executors, ['wasm', 'process']);
  assert.is(c.deals.timing.bidWindowMs, 500);
  assert.is(c.monitorIntervalMs, 250);
  assert.is(c.rebenchmark, true);
  assert.is(c.json, true);
  assert.is(c.maxPeers, 8);
});

Precedence('a false from the environment overrides a true from the file; DMS_INSPECT takes true or a URL', () => {
  assert.is(parseRunConfig(FLAGS, { DMS_JSON: 'false' }, file({ json: true })).json, false);
  assert.is(parseRunConfig(FLAGS, { DMS_REBENCHMARK: 'TRUE' }, null).rebenchmark, true);
  assert.is(parseRunConfig(FLAGS, { DMS_INSPECT: 'true' }, null).inspect, 'ws://localhost:8080');
  assert.is(parseRunConfig(FLAGS, { DMS_INSPECT: 'ws://127.0.0.1:9/x' }, null).inspect, 'ws://127.0.0.1:9/x');
  assert.is(parseRunConfig(FLAGS, { DMS_INSPECT: '0' }, file({ inspect: true })).inspect, null);
});

Precedence('DMS_HOME sets the data dir below DMS_DATA_DIR and the flag, above a --config file', () => {
  const dataDir = (flags: RawOptions, env: NodeJS.ProcessEnv, f: ConfigFile | null = null) => {
    const s = settingOf(flags, env, f, 'data-dir');
    return [parseRunConfig(flags, env, f).dataDir, s.source, s.from];
  };
  const named = file({ 'data-dir': 'from-file' }, true);
  assert.equal(dataDir({}, { DMS_HOME: '/h' }), ['/h', 'env', 'DMS_HOME']);
  assert.equal(dataDir({}, { DMS_HOME: '/h', DMS_DATA_DIR: '/d' }), ['/d', 'env', 'DMS_DATA_DIR']);
  assert.equal(dataDir({ dataDir: '/f' }, { DMS_HOME: '/h', DMS_DATA_DIR: '/d' }), ['/f', 'flag', null]);
  assert.equal(dataDir({}, { DMS_HOME: '/h' }, named), ['/h', 'env', 'DMS_HOME']);
  assert.equal(dataDir({}, {}, named), [path.join(DIR, 'from-file'), 'file', FILE], 'relative to the file');
  assert.equal(dataDir({}, {}), [path.join(os.homedir(), '.dms'), 'default', null]);
});

Precedence.run();

// ---------------------------------------------------------------------------------------------------------------

const Bad = suite('config sources: a bad value in any source is bad usage naming the source');

Bad('a bad environment value, even one a flag overrides', () => {
  const e = refusal(() => parseRunConfig({ ...FLAGS, cpu: '2' }, { DMS_CPU: 'abc' }, null));
  usage(e, 'DMS_CPU="abc" (environment): --cpu "abc" is not a number of cores; use e.g. --cpu 2 or --cpu 1.5');
  usage(refusal(() => parseRunConfig(FLAGS, { DMS_HOME: ' ' }, null)), 'DMS_HOME=" " (environment): --data-dir is empty; pass a directory path');
  usage(refusal(() => parseRunConfig(FLAGS, { DMS_LISTEN: '/ip4/127.0.0.1/tcp/1/ws,nope' }, null)), /^DMS_LISTEN="[^"]+" \(environment\): --listen "nope" is not a multiaddr/);
});

Bad('an environment switch that is not true, false, 1 or 0', () => {
  usage(refusal(() => parseRunConfig(FLAGS, { DMS_REBENCHMARK: 'yes please' }, null)), 'DMS_REBENCHMARK="yes please" (environment): --rebenchmark takes true or false (or 1, 0)');
  usage(refusal(() => parseRunConfig(FLAGS, { DMS_INSPECT: ' ' }, null)), /^DMS_INSPECT=" " \(environment\): --inspect takes true or false/);
});

Bad('an empty environment variable counts as unset', () => {
  const c = parseRunConfig({}, { DMS_HOME: '', DMS_DATA_DIR: '', DMS_CPU: '', DMS_LISTEN: '' }, null);
  assert.is(c.dataDir, path.join(os.homedir(), '.dms'));
  assert.is(c.offer.cpu, undefined);
  assert.equal(c.listen, ['/ip4/0.0.0.0/tcp/9000/ws']);
  assert.is(settingOf({}, { DMS_DATA_DIR: '', DMS_HOME: '/h' }, null, 'data-dir').from, 'DMS_HOME');
});

Bad('a bad file value, even one the environment and a flag override', () => {
  const e = refusal(() => parseRunConfig({ ...FLAGS, bidWindow: '1s' }, { DMS_BID_WINDOW: '1s' }, file({ 'bid-window': '2 fortnights' })));
  usage(e, `${FILE}: bid-window: --bid-window "2 fortnights" must be a duration from 10ms to 60s, e.g. 500ms or 2s`);
});

Bad('a file value of the wrong type', () => {
  usage(refusal(() => parseRunConfig(FLAGS, {}, file({ api: ['127.0.0.1:1'] }))), `${FILE}: api: ["127.0.0.1:1"] is not a string or a number`);
  usage(refusal(() => parseRunConfig(FLAGS, {}, file({ listen: [1, 2] }))), `${FILE}: listen: [1,2] is not a list of strings (or one string)`);
  usage(refusal(() => parseRunConfig(FLAGS, {}, file({ json: 'maybe' }))), `${FILE}: json: --json takes true or false (or 1, 0)`);
  usage(refusal(() => parseRunConfig(FLAGS, {}, file({ cpu: null }))), `${FILE}: cpu: null is not a string or a number`);
});

Bad('an unknown file key, with the closest known one', () => {
  usage(refusal(() => parseRunConfig(FLAGS, {}, file({ 'bid-windw': '1s' }))), `${FILE}: unknown setting "bid-windw" (did you mean "bid-window"?); the keys are the flags of \`run\` without "--"`);
  usage(refusal(() => parseRunConfig(FLAGS, {}, file({ monitorInterval: 200 }))), /unknown setting "monitorInterval" \(did you mean "monitor-interval"\?\)/);
  usage(refusal(() => parseRunConfig(FLAGS, {}, file({ colour: 'blue' }))), `${FILE}: unknown setting "colour"; the keys are the flags of \`run\` without "--"`);
});

Bad('a file that is not a mapping', () => {
  for (const doc of [['api', '127.0.0.1:1'], 'api', 42]) {
    usage(refusal(() => parseRunConfig(FLAGS, {}, file(doc))), `${FILE}: not a mapping of settings; write one "flag-name: value" per line, e.g. "api: 127.0.0.1:9999"`);
  }
  assert.is(parseRunConfig(FLAGS, {}, file(null)).api?.port, 9999, 'an empty file sets nothing');
});

Bad('data-dir only in a --config file, not in the data dir\'s own', () => {
  usage(refusal(() => parseRunConfig({}, {}, file({ 'data-dir': '/elsewhere' }, false))), `${FILE}: data-dir: data-dir cannot be set in the data dir's own config file; pass --data-dir, set DMS_DATA_DIR, or name a config file with --config`);
  assert.is(parseRunConfig({}, {}, file({ 'data-dir': '/elsewhere' }, true)).dataDir, '/elsewhere');
});

Bad('a flag\'s message stays as it was', () => {
  usage(refusal(() => parseRunConfig({ ...FLAGS, cpu: 'abc' }, {}, null)), '--cpu "abc" is not a number of cores; use e.g. --cpu 2 or --cpu 1.5');
});

Bad.run();

// ---------------------------------------------------------------------------------------------------------------

const Tls = suite('config sources: TLS rules on the layered settings');

Tls('cert and key from different sources go together (a file path is relative to the file)', () => {
  const c = parseRunConfig({ ...FLAGS, listen: ['/ip4/127.0.0.1/tcp/0/wss'] }, { DMS_TLS_CERT: '/etc/dms/cert.pem' }, file({ 'tls-key': 'key.pem' }));
  assert.equal(c.tls, { certFile: '/etc/dms/cert.pem', keyFile: path.join(DIR, 'key.pem') });
});

Tls('a cert without a key names where the cert came from', () => {
  usage(refusal(() => parseRunConfig(FLAGS, {}, file({ 'tls-cert': '/c.pem' }))), `--tls-cert and --tls-key go together: --tls-cert is set (file ${FILE}) but --tls-key is not; pass both PEM files, or neither`);
  usage(refusal(() => parseRunConfig(FLAGS, { DMS_TLS_KEY: '/k.pem' }, null)), '--tls-cert and --tls-key go together: --tls-key is set (env DMS_TLS_KEY) but --tls-cert is not; pass both PEM files, or neither');
});

Tls('a /wss listen address without a cert names where the address came from', () => {
  usage(refusal(() => parseRunConfig(FLAGS, { DMS_LISTEN: '/ip4/127.0.0.1/tcp/0/wss' }, null)), '--listen /ip4/127.0.0.1/tcp/0/wss (env DMS_LISTEN) needs a certificate: pass --tls-cert FILE and --tls-key FILE (PEM), or listen on /ws');
});

Tls.run();

// ---------------------------------------------------------------------------------------------------------------

interface FileCtx {
  dir: string;
}

const Files = suite<FileCtx>('config sources: finding and reading the config file', { dir: '' });

Files.before.each(async (ctx) => {
  ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dms-config-file-'));
});

Files.after.each(async (ctx) => {
  await fs.rm(ctx.dir, { recursive: true, force: true });
});

Files('<data dir>/config.yaml is read when present; a missing one is fine', async ({ dir }) => {
  assert.is(await loadConfigFile({ dataDir: dir }, {}), null);
  await fs.writeFile(path.join(dir, 'config.yaml'), 'api: 127.0.0.1:4321\nlisten:\n  - /ip4/127.0.0.1/tcp/0/ws\n');
  const f = await loadConfigFile({}, { DMS_DATA_DIR: dir });
  assert.equal(f, { path: path.join(dir, 'config.yaml'), explicit: false, doc: { api: '127.0.0.1:4321', listen: ['/ip4/127.0.0.1/tcp/0/ws'] } });
  assert.is(parseRunConfig({}, { DMS_DATA_DIR: dir }, f).api?.port, 4321);
});

Files('--config (or DMS_CONFIG) names the file instead, which may move the data dir', async ({ dir }) => {
  const named = path.join(dir, 'node.yaml');
  await fs.writeFile(named, 'data-dir: ./state\n');
  await fs.writeFile(path.join(dir, 'config.yaml'), 'api: 127.0.0.1:1\n');
  for (const [flags, env] of [[{ config: named }, {}], [{}, { DMS_CONFIG: named }]] as const) {
    const f = await loadConfigFile(flags, env);
    assert.equal(f, { path: named, explicit: true, doc: { 'data-dir': './state' } });
    assert.is(parseRunConfig(flags, env, f).dataDir, path.join(dir, 'state'));
  }
});

Files('a missing --config file is bad usage naming it', async ({ dir }) => {
  const missing = path.join(dir, 'nope.yaml');
  usage(await refusalOf(loadConfigFile({ config: missing }, {})), `--config ${missing}: no such file; pass the path of a YAML config file`);
  usage(await refusalOf(loadConfigFile({}, { DMS_CONFIG: missing })), `DMS_CONFIG=${JSON.stringify(missing)} (environment): ${missing}: no such file; pass the path of a YAML config file`);
});

Files('a file that is not YAML is bad usage naming it', async ({ dir }) => {
  const f = path.join(dir, 'config.yaml');
  await fs.writeFile(f, 'api: [127.0.0.1:1\nlisten: {\n');
  const e = await refusalOf(loadConfigFile({ dataDir: dir }, {}));
  usage(e, new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: not YAML \\(.+\\); write one "flag-name: value" per line`));
  assert.not.match(e.message, /\n/, 'one line');
});

Files('data-dir in the data dir\'s own file is bad usage once parsed', async ({ dir }) => {
  await fs.writeFile(path.join(dir, 'config.yaml'), 'data-dir: /elsewhere\n');
  const f = await loadConfigFile({ dataDir: dir }, {});
  usage(refusal(() => parseRunConfig({ dataDir: dir }, {}, f)), /config\.yaml: data-dir: data-dir cannot be set in the data dir's own config file/);
});

Files.run();

// ---------------------------------------------------------------------------------------------------------------

const Table = suite('config sources: the SETTINGS table');

const upperSnake = (name: string) => `DMS_${name.toUpperCase().replace(/-/g, '_')}`;

Table('one row per run flag (and --config), each with DMS_<FLAG> and the flag\'s name as its file key', () => {
  const run = buildCli().commands.find((c) => c.name() === 'run')!;
  const flags = run.options.map((o) => o.long!).filter((f) => f !== '--config').sort();
  assert.equal(SETTINGS.map((s) => s.flag).sort(), flags);
  for (const s of SETTINGS) {
    assert.is(s.flag, `--${s.name}`);
    assert.is(s.env, upperSnake(s.name));
    assert.ok(!run.options.find((o) => o.long === s.flag)!.defaultValue, `${s.flag} has no commander default (so a flag not given is absent)`);
  }
  const config = buildCli().commands.find((c) => c.name() === 'config')!;
  assert.equal(config.options.map((o) => o.long), run.options.map((o) => o.long), '`config` takes every run flag');
});

Table('each default the table shows is what config.ts applies when nothing is set', () => {
  const absent: RunConfig = parseRunConfig(FLAGS, {}, null);
  for (const s of SETTINGS) {
    if (s.default === null || s.key === 'dataDir') continue;
    const given = parseRunConfig({ ...FLAGS, [s.key]: s.default }, {}, null);
    assert.equal(given, absent, `${s.name}: ${JSON.stringify(s.default)}`);
  }
  assert.is(parseRunConfig({}, {}, null).dataDir, SETTINGS.find((s) => s.key === 'dataDir')!.default);
});

Table.run();
