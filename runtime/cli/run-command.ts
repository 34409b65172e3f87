/**
 * `run` (the default command): starts a node, prints its ready line and serves until SIGINT or SIGTERM.
 * Each setting comes from a flag, else the environment, else the config file, else its default (config-sources.ts).
 */
import { type Command, Option } from 'commander';
import { type RawOptions, parseRunConfig } from '../config.ts';
import { type Logger, createLogger } from '../logger.ts';
import type { RunningNode } from '../node/node-service.ts';
import { collect, noteLogLevel, offerOptions, print } from './cli-kit.ts';
import { loadConfigFile } from './config-file.ts';
import { formatReady } from './format.ts';

const SOURCES_HELP = `
Every flag can also be set in the environment as DMS_<FLAG> (DMS_API, DMS_LISTEN=a,b, DMS_REBENCHMARK=true, ...)
and in a YAML config file as "<flag>: value" (--config FILE or DMS_CONFIG, else <data dir>/config.yaml when present).
A flag wins over the environment, the environment over the file, the file over the default.
\`config\` with the same flags prints what a run would use and where each value comes from.`;

export function addRunCommand(program: Command): void {
  runOptions(program.command('run', { isDefault: true }).description('run a node: onboard this machine, then serve until SIGINT/SIGTERM'), 'print the ready line as JSON')
    .addHelpText('after', SOURCES_HELP)
    .action(run);
}

/**
 * The settings of `run` (SETTINGS in config-sources.ts), shared with `config`. No commander defaults: a flag not
 * given is absent, so the environment, the config file or the default (in config.ts, told in the help) fills it.
 */
export function runOptions(cmd: Command, jsonHelp: string): Command {
  return offerOptions(
    cmd
      .option('--config <file>', 'YAML config file of these settings (default <data dir>/config.yaml when present)')
      .option('--data-dir <dir>', 'state, keys, logs (default ~/.dms; also $DMS_DATA_DIR, or the older $DMS_HOME)')
      .option('--listen <multiaddr>', 'libp2p listen address, repeatable (default /ip4/0.0.0.0/tcp/9000/ws)', collect)
      .option('--bootstrap <multiaddr>', 'peer to join through (full multiaddr with /p2p/<peerId>), repeatable', collect)
      .option('--tls-cert <file>', 'PEM certificate for /wss listen addresses (with --tls-key)')
      .option('--tls-key <file>', 'PEM private key of --tls-cert')
      .option('--api <host:port>', 'local HTTP API address, or "off" (default 127.0.0.1:9999)'),
  )
    .option('--rebenchmark', 'measure the machine again even if a benchmark is stored')
    .option('--require-grants', "as a provider, serve only requesters whose capability tokens grant deploy from this node's anchors (see `cap`)")
    .addOption(new Option('--inspect [url]', 'stream all actors to the Stately inspector (default ws://localhost:8080)'))
    .option('--monitor-interval <ms>', 'milliseconds between monitoring samples (default 5000)')
    .option('--bid-window <duration>', 'longest a deploy waits for bids, e.g. 500ms or 2s (it ends early when every peer answered; default 2s)')
    .option('--retain <duration>', "how long what an ended deal leaves is kept: its record, unused modules, job output (default 7d; 0 keeps everything)")
    .option('--retain-history <size>', "most journal history (what `replay` reads) kept, whatever its age: the oldest goes first past it (default 1GiB; 0: no cap)")
    .option('--min-free-disk <size>', "free space the data dir's disk keeps: under it the node declines new work (disk-full), e.g. 2GiB or 10% (default 1GiB or 5% of the disk, whichever is smaller)")
    .option('--max-peers <n>', 'peers this node dials itself through peer exchange (default 50); farther nodes are reached through the gossip mesh')
    .option('--json', jsonHelp)
    .option('--log-level <level>', 'silent, error, warn, info or debug (default warn)');
}

async function run(opts: RawOptions): Promise<void> {
  noteLogLevel(opts);
  const config = parseRunConfig(opts, process.env, await loadConfigFile(opts, process.env));
  noteLogLevel(config);
  const log = createLogger(config.logLevel);
  // loaded here, not at the top: it pulls in the actor runtime, which client commands do not need (~0.5 s); what
  // libp2p needs on Node 20 (polyfills.ts) first
  await import('../polyfills.ts');
  const { startNode } = await import('../node/node-service.ts');
  // a daemon outlives a bug in one of its effects: say it loudly instead of dying with every deal it holds
  process.on('unhandledRejection', (e) => log.error({ err: e instanceof Error ? { message: e.message, stack: e.stack } : String(e) }, 'unhandled rejection (a bug: please report it)'));
  const node = await startNode(config, log);
  await serve(node, config.json, log);
}

/** Prints the ready line, then resolves once the node stopped (on SIGINT, SIGTERM or a fatal error). */
function serve(node: RunningNode, json: boolean, log: Logger): Promise<void> {
  return new Promise<void>((resolve) => {
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
    print(json, node.ready, () => formatReady(node.ready));
    void node.fatal.then((e) => {
      process.stderr.write(`error: ${e.message}\n`);
      process.exitCode = 1;
      shutdown('fatal');
    });
  });
}
