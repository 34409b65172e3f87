/**
 * The CLI's node commands: info, peers, topology, ping, preferences, onboard, offboard, allocations. Clients
 * of a running node's local API.
 */
import { promises as fs } from 'node:fs';
import type { Command } from 'commander';
import { type RawOptions, parseOffer } from '../config.ts';
import { UsageError } from '../errors.ts';
import { client, clientOptions, offerOptions, print } from './cli-kit.ts';
import { type AllocationRow, type CapRow, formatAllocations, formatInfo, formatOnboarded, formatPeers, formatPing, formatTopology } from './format.ts';

export function addNodeCommands(program: Command): void {
  addNetworkCommands(program);
  addOfferCommands(program);
}

/** What the node is and whom it is connected to: info, peers, topology, ping. */
function addNetworkCommands(program: Command): void {
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

  clientOptions(program.command('dashboard').description("print the URL of the node's web dashboard: a one-time login link, valid for 2 minutes"))
    .option('--open', 'also open it in the desktop browser (xdg-open / open)')
    .action(async (opts: RawOptions & { open?: boolean }) => {
      const { api, json } = await client(opts);
      const r = (await api.request('POST', '/v1/dashboard/login')) as { url: string; expiresAt: number };
      print(json, r, () => `${r.url}\n(one-time login link: it works once, within 2 minutes; run this again for a new one)`);
      if (opts.open) {
        const { spawn } = await import('node:child_process');
        const opener = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
        const child = spawn(opener, [r.url], { detached: true, stdio: 'ignore' });
        child.on('error', (e) => process.stderr.write(`could not open a browser (${opener}: ${e.message}); open the link above by hand\n`));
        child.unref();
      }
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
}

/** What the node offers and what runs on it: preferences, onboard, offboard, allocations. */
function addOfferCommands(program: Command): void {
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
    print(json, cap, () => formatOnboarded(cap));
  });

  clientOptions(program.command('offboard').description('stop offering anything (running allocations finish; no new bids)')).action(async (opts: RawOptions) => {
    const { api, json } = await client(opts);
    const r = await api.request('POST', '/v1/offboard');
    print(json, r, () => 'offboarded: this node offers nothing until `onboard`');
  });

  clientOptions(program.command('allocations').description('allocations that run or ran on this node (from the indexes of its event log)')).action(async (opts: RawOptions) => {
    const { api, json } = await client(opts);
    const list = (await api.request('GET', '/v1/allocations')) as AllocationRow[];
    print(json, list, () => formatAllocations(list));
  });
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
  // zod is loaded here only: it would double the start-up time of every client command
  const { describeIssues, preferencesSchema } = await import('../api/input-schemas.ts');
  const r = preferencesSchema.safeParse(doc);
  if (!r.success) throw new UsageError(`preferences file ${file} is not valid: ${describeIssues(r.error)}`);
  return r.data;
}
