/**
 * `node runtime/main.js [command]`: the CLI. `run` (the default) starts a node; the other commands are
 * clients of a running node's local API. See INTERFACE.md.
 */
import './polyfills.ts';
import { promises as fs } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { formatBytes } from '../machines/capability.ts';
import { type ApiClient, connect } from './api/client.ts';
import { DEFAULT_INSPECT, type RawOptions, parseClientConfig, parseOffer, parseRunConfig } from './config.ts';
import { UsageError, exitCodeOf } from './errors.ts';
import { addDealCommands } from './cli/deal-commands.ts';
import { createLogger } from './logger.ts';
import { formatNetInfo, formatPeers, formatPing, formatTopology } from './net/net-format.ts';
import { describeIssues, preferencesSchema } from './api/input-schemas.ts';

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
    ...formatNetInfo(info),
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
    doc = (await import('yaml')).parse(text);
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
  // loaded here, not at the top: it pulls in the actor runtime, which client commands do not need (~0.5 s)
  const { startNode } = await import('./node/node-service.ts');
  // a daemon outlives a bug in one of its effects: say it loudly instead of dying with every deal it holds
  process.on('unhandledRejection', (e) => log.error({ err: e instanceof Error ? { message: e.message, stack: e.stack } : String(e) }, 'unhandled rejection (a bug: please report it)'));
  const node = await startNode(config, log);
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
    // only now: whoever reads the ready line may signal at once (and a busy machine runs it first)
    const rec = node.ready.recovered;
    const recovered = rec ? `  recovered: snapshot at seq ${rec.snapshotSeq} + ${rec.replayed} events replayed in ${rec.ms} ms` : '';
    print(config.json, node.ready, () => `DMS node ready  peerId=${node.ready.peerId}  api=${node.ready.api ?? 'off'}  state=${node.ready.state}  data=${node.ready.dataDir}  (${node.ready.startMs} ms)${recovered}`);
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
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s),
      // one line per usage error (commander may add a second, e.g. "(Did you mean --json?)"), like every other error
      outputError: (s, write) => write(`${s.trim().replace(/\s*\n\s*/g, ' ')} (add --help for usage)\n`),
    });

  offerOptions(
    program
      .command('run', { isDefault: true })
      .description('run a node: onboard this machine, then serve until SIGINT/SIGTERM')
      .option('--data-dir <dir>', 'state, keys, logs (default $DMS_HOME, else ~/.dms)')
      .option('--listen <multiaddr>', 'libp2p listen address, repeatable (default /ip4/0.0.0.0/tcp/9000/ws)', collect, [])
      .option('--bootstrap <multiaddr>', 'peer to join through (full multiaddr with /p2p/<peerId>), repeatable', collect, [])
      .option('--tls-cert <file>', 'PEM certificate for /wss listen addresses (with --tls-key)')
      .option('--tls-key <file>', 'PEM private key of --tls-cert')
      .option('--api <host:port>', 'local HTTP API address, or "off"', '127.0.0.1:9999'),
  )
    .option('--rebenchmark', 'measure the machine again even if a benchmark is stored')
    .addOption(new Option('--inspect [url]', 'stream all actors to the Stately inspector (default ws://localhost:8080)'))
    .option('--monitor-interval <ms>', 'milliseconds between monitoring samples', '5000')
    .option('--bid-window <duration>', 'longest a deploy waits for bids, e.g. 500ms or 2s (it ends early when every peer answered; default 2s)')
    .option('--max-peers <n>', 'peers this node dials itself through peer exchange (default 50); farther nodes are reached through the gossip mesh')
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
    const peers = (await api.request('GET', '/v1/peers')) as Parameters<typeof formatPeers>[0];
    print(json, peers, () => formatPeers(peers));
  });

  clientOptions(program.command('topology').description('this node and its neighbours as a graph: edges are connections with their round-trip time'))
    .option('--dot', 'print Graphviz DOT instead')
    .action(async (opts: RawOptions & { dot?: boolean }) => {
      const { api, json } = await client(opts);
      const t = (await api.request('GET', '/v1/topology')) as Parameters<typeof formatTopology>[0] & { dot: string };
      if (opts.dot) process.stdout.write(t.dot);
      else print(json, t, () => formatTopology(t));
    });

  clientOptions(program.command('ping').description('signed request/reply round trips to a peer through the message router').argument('<peer>', 'peer id'))
    .option('--count <n>', 'how many round trips (1-1000)', '5')
    .action(async (peer: string, opts: RawOptions & { count: string }) => {
      const count = Number(opts.count);
      if (!Number.isInteger(count) || count < 1 || count > 1000) throw new UsageError(`--count "${opts.count}" must be a whole number from 1 to 1000`);
      const { api, json } = await client(opts);
      const r = (await api.request('POST', '/v1/ping', { peer, count })) as Parameters<typeof formatPing>[0];
      print(json, r, () => formatPing(r));
    });

  clientOptions(program.command('preferences').description('show the node\'s preferences, or replace them from a JSON or YAML file'))
    .option('--set <file>', 'replace the preferences with this file\'s')
    .action(async (opts: RawOptions & { set?: string }) => {
      const prefs = opts.set === undefined ? undefined : await readPreferencesFile(opts.set);
      const { api, json } = await client(opts);
      const result = prefs === undefined ? await api.request('GET', '/v1/preferences') : await api.request('PUT', '/v1/preferences', prefs);
      const { stringify } = await import('yaml'); // only this command needs YAML: keep it off the start-up path
      print(json, result, () => stringify(result).trimEnd());
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

  clientOptions(program.command('allocations').description('allocations that run or ran on this node (from the indexes of its event log)')).action(async (opts: RawOptions) => {
    const { api, json } = await client(opts);
    const list = (await api.request('GET', '/v1/allocations')) as { id: string; lockId: string; resources: { cpu: number; memory: number; disk: number }; createdAt: number; endedAt: number | null }[];
    print(json, list, () =>
      list.length === 0
        ? 'no allocations yet'
        : list.map((a) => `${a.id.padEnd(24)} cpu ${a.resources.cpu}  memory ${formatBytes(a.resources.memory)}  disk ${formatBytes(a.resources.disk)}  ${new Date(a.createdAt).toISOString()}  ${a.endedAt === null ? 'running' : `ended ${new Date(a.endedAt).toISOString()}`}`).join('\n'),
    );
  });

  addDealCommands(program, { clientOptions, client, print });

  program
    .command('demo')
    .description('start three nodes on loopback, deploy a sample WASM job, narrate each step, clean up')
    .option('--keep', 'keep the nodes\' data dirs (to replay them afterwards)')
    .action(async (opts: { keep?: boolean }) => {
      const { runDemo } = await import('./cli/demo.ts');
      process.exitCode = await runDemo({ say: (line) => process.stdout.write(`${line}\n`), keep: opts.keep === true });
    });

  program
    .command('replay')
    .description("rebuild an actor's state from the data dir's event log (no running node needed): timeline and final state")
    .option('--data-dir <dir>', 'the node\'s data dir (default $DMS_HOME, else ~/.dms)')
    .option('--actor <id>', 'which actor', 'node')
    .option('--to <seq>', 'stop after this event sequence number')
    .option('--summary', 'print only the final state, not the timeline')
    .addOption(new Option('--inspect [url]', 'stream the history to the Stately inspector (default: a relay on ws://127.0.0.1:8080)'))
    .option('--json', 'JSON lines: one per event, then the final state')
    .option('--log-level <level>', 'silent, error, warn, info or debug', 'warn')
    .action(async (opts: RawOptions & { actor: string; to?: string; summary?: boolean }) => {
      debug = opts.logLevel === 'debug';
      const to = opts.to === undefined ? null : Number(opts.to);
      if (to !== null && (!Number.isInteger(to) || to < 0)) throw new UsageError(`--to "${opts.to}" must be a whole number >= 0 (an event sequence number)`);
      const { dataDir } = parseClientConfig(opts, process.env);
      const { replay } = await import('./cli/replay.ts');
      const inspectUrl = opts.inspect === undefined || opts.inspect === false ? null : opts.inspect === true ? DEFAULT_INSPECT : opts.inspect;
      const inspector = inspectUrl ? await (await import('./inspector/inspector.ts')).createInspectorBridge(inspectUrl, createLogger('warn')) : null;
      const json = opts.json === true;
      const r = await replay({
        dataDir, actor: opts.actor, to, json, timeline: opts.summary !== true, inspector,
        out: (line) => process.stdout.write(`${line}\n`),
        progress: (line) => process.stderr.write(`${line}\n`),
      });
      // listen for Ctrl-C before the final state is out: whoever reads it may press Ctrl-C at once
      const interrupted = inspector ? new Promise<void>((resolve) => process.once('SIGINT', () => resolve())) : null;
      print(json, { event: 'final', actor: opts.actor, ...r }, () =>
        [
          `replayed ${r.events} events of ${opts.actor} up to seq ${r.lastSeq} in ${r.ms} ms`,
          ...(r.failed ? [`the actor failed at seq ${r.failed.seq}: ${r.failed.message} (the live node dropped that event)`] : []),
          `state    ${typeof r.state === 'string' ? r.state : JSON.stringify(r.state)}`,
          `context  ${JSON.stringify(r.context, null, 2).replace(/\n/g, '\n         ')}`,
        ].join('\n'),
      );
      if (inspector) {
        if (inspector.page) process.stderr.write(`inspector: open ${inspector.page}; press Ctrl-C when done\n`);
        await interrupted;
        inspector.stop();
      }
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
