/**
 * `node runtime/main.js [command]`: the CLI. `run` (the default) starts a node; the other commands are
 * clients of a running node's local API. See INTERFACE.md.
 */
import './polyfills.ts';
import { promises as fs } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import YAML from 'yaml';
import { formatBytes } from '../machines/capability.ts';
import { type ApiClient, connect } from './client.ts';
import { type RawOptions, parseClientConfig, parseOffer, parseRunConfig } from './config.ts';
import { UsageError, exitCodeOf } from './errors.ts';
import { createLogger } from './logger.ts';
import { startNode } from './node-service.ts';
import { describeIssues, preferencesSchema } from './schemas.ts';

const collect = (v: string, prev: string[]) => [...prev, v];
let debug = false;

function clientOptions(cmd: Command): Command {
  return cmd
    .option('--data-dir <dir>', 'the node\'s data dir (default $DMS_HOME, else ~/.dms)')
    .option('--api <host:port>', 'the node\'s API address (default: read from the data dir)')
    .option('--json', 'machine-readable output on stdout')
    .option('--log-level <level>', 'silent, error, warn, info or debug');
}

function offerOptions(cmd: Command): Command {
  return cmd
    .option('--cpu <n>', 'cores to offer (1..machine cores; default 3/4 of them)')
    .option('--memory <size>', 'memory to offer, e.g. 8GiB (10-90% of the machine; default half)')
    .option('--disk <size>', 'disk to offer, e.g. 20GB (default half of the free space)')
    .option('--executors <list>', 'comma list of executors to offer (wasm, process; default wasm)');
}

function print(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${human()}\n`);
}

type CapRow = { cpu: number; memory: number; disk: number; gpus: unknown[]; executors: string[] };

function formatInfo(info: Record<string, unknown>): string {
  const id = info.identity as Record<string, string>;
  const cap = info.capability as Record<string, CapRow>;
  const rows = ['registered', 'locked', 'allocated', 'available'].map((k) => {
    const c = cap[k]!;
    return `  ${k.padEnd(11)} ${String(c.cpu).padStart(6)}  ${formatBytes(c.memory).padStart(10)}  ${formatBytes(c.disk).padStart(10)}  ${String(c.gpus.length).padStart(4)}  ${c.executors.join(',')}`;
  });
  const bench = info.benchmark as Record<string, unknown> | null;
  return [
    `peerId   ${id.peerId}`,
    `did      ${id.did}`,
    `uuid     ${id.uuid}`,
    `cid      ${id.cid}`,
    `state    ${String(info.state)}`,
    `api      ${String(info.api)}`,
    `peers    ${String(info.peers)}`,
    bench ? `bench    ${Math.round(Number(bench.cpuOpsPerSecPerCore)).toLocaleString('en')} ops/s per core, disk write ${formatBytes(Number(bench.diskWriteBytesPerSec))}/s, taken ${String(bench.measuredAt)}` : 'bench    none',
    `capability     cpu      memory        disk  gpus  executors`,
    ...rows,
  ].join('\n');
}

async function client(opts: RawOptions): Promise<{ api: ApiClient; json: boolean }> {
  debug = opts.logLevel === 'debug';
  const cfg = parseClientConfig(opts, process.env);
  return { api: await connect(cfg), json: cfg.json };
}

async function readPreferencesFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read preferences file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (e) {
    throw new UsageError(`preferences file ${file} is neither JSON nor YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const r = preferencesSchema.safeParse(doc);
  if (!r.success) throw new UsageError(`preferences file ${file} is not valid: ${describeIssues(r.error)}`);
  return r.data;
}

async function run(opts: RawOptions): Promise<void> {
  debug = opts.logLevel === 'debug';
  const config = parseRunConfig(opts, process.env);
  const log = createLogger(config.logLevel);
  const node = await startNode(config, log);
  print(config.json, node.ready, () => `DMS node ready  peerId=${node.ready.peerId}  api=${node.ready.api ?? 'off'}  state=${node.ready.state}  data=${node.ready.dataDir}  (${node.ready.startMs} ms)`);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const shutdown = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down');
      node.stop().then(resolve, (e: Error) => {
        log.error({ err: e.message }, 'unclean shutdown');
        process.exitCode = 1;
        resolve();
      });
    };
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    void node.fatal.then((e) => {
      process.stderr.write(`error: ${e.message}\n`);
      process.exitCode = 1;
      shutdown('fatal');
    });
  });
}

export function buildCli(): Command {
  const program = new Command('dms')
    .description('DMS runtime: a Device Management Service node (see README.md)')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  offerOptions(
    program
      .command('run', { isDefault: true })
      .description('run a node: onboard this machine, then serve until SIGINT/SIGTERM')
      .option('--data-dir <dir>', 'state, keys, logs (default $DMS_HOME, else ~/.dms)')
      .option('--listen <multiaddr>', 'libp2p listen address, repeatable (default /ip4/0.0.0.0/tcp/9000/ws)', collect, [])
      .option('--bootstrap <multiaddr>', 'peer to join through (full multiaddr with /p2p/<peerId>), repeatable', collect, [])
      .option('--api <host:port>', 'local HTTP API address, or "off"', '127.0.0.1:9999'),
  )
    .option('--rebenchmark', 'measure the machine again even if a benchmark is stored')
    .addOption(new Option('--inspect [url]', 'stream all actors to the Stately inspector (default ws://localhost:8080)'))
    .option('--monitor-interval <ms>', 'milliseconds between monitoring samples', '5000')
    .option('--json', 'print the ready line as JSON')
    .option('--log-level <level>', 'silent, error, warn, info or debug', 'warn')
    .action(run);

  clientOptions(program.command('info').description('identity, capability (registered, locked, allocated, available), addresses')).action(async (opts: RawOptions) => {
    const { api, json } = await client(opts);
    const info = (await api.request('GET', '/v1/info')) as Record<string, unknown>;
    print(json, info, () => formatInfo(info));
  });

  clientOptions(program.command('peers').description('connected peers with round-trip time')).action(async (opts: RawOptions) => {
    const { api, json } = await client(opts);
    const peers = (await api.request('GET', '/v1/peers')) as unknown[];
    print(json, peers, () => (peers.length === 0 ? 'no peers connected' : peers.map((p) => JSON.stringify(p)).join('\n')));
  });

  clientOptions(program.command('preferences').description('show the node\'s preferences, or replace them from a JSON or YAML file'))
    .option('--set <file>', 'replace the preferences with this file\'s')
    .action(async (opts: RawOptions & { set?: string }) => {
      const prefs = opts.set === undefined ? undefined : await readPreferencesFile(opts.set);
      const { api, json } = await client(opts);
      const result = prefs === undefined ? await api.request('GET', '/v1/preferences') : await api.request('PUT', '/v1/preferences', prefs);
      print(json, result, () => YAML.stringify(result).trimEnd());
    });

  offerOptions(clientOptions(program.command('onboard').description('change what the running node offers'))).action(async (opts: RawOptions) => {
    const offer = parseOffer(opts);
    const { api, json } = await client(opts);
    const cap = (await api.request('POST', '/v1/onboard', offer)) as CapRow;
    print(json, cap, () => `onboarded: cpu ${cap.cpu}, memory ${formatBytes(cap.memory)}, disk ${formatBytes(cap.disk)}, executors ${cap.executors.join(',')}`);
  });

  clientOptions(program.command('offboard').description('stop offering anything (running allocations finish; no new bids)')).action(async (opts: RawOptions) => {
    const { api, json } = await client(opts);
    const r = await api.request('POST', '/v1/offboard');
    print(json, r, () => 'offboarded: this node offers nothing until `onboard`');
  });

  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  try {
    await buildCli().parseAsync(argv as string[], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander printed its message already; --help and --version end with code 0
      return e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.help' ? 0 : 2;
    }
    const err = e as Error;
    process.stderr.write(`error: ${err.message}\n`);
    if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
    return exitCodeOf(e);
  }
}

const code = await main(process.argv.slice(2));
process.exit(code);
