/**
 * `cap grant / delegate / anchor / add / list / revoke` (INTERFACE.md "Trust"): capability tokens, kept by the
 * running node (runtime/trust/trust-service.ts, through its `trust` actor). `grant` and `delegate` print the token
 * alone on stdout, so it can be handed on (`cap add` on the node it is for).
 */
import type { Command } from 'commander';
import type { RawOptions } from '../config.ts';
import { UsageError } from '../errors.ts';
import { parseDuration } from '../units.ts';
import { collect } from './cli-kit.ts';
import type { CliKit } from './cli-kit.ts';

interface TokenRecord {
  id: string;
  token: string;
  kind: string;
  root: string;
  audience: string;
  actions: string[];
  expiresAt: number;
  revoked?: boolean;
}

type GrantOpts = RawOptions & { action?: string[]; duration?: string; depth?: string };

function terms(opts: GrantOpts, what: string): { actions: string[]; durationMs?: number; depth?: number } {
  const actions = (opts.action ?? []).flatMap((a) => a.split(',')).map((a) => a.trim()).filter(Boolean);
  if (actions.length === 0) throw new UsageError(`${what} needs at least one --action (deploy, logs, results, cancel)`);
  const out: { actions: string[]; durationMs?: number; depth?: number } = { actions };
  if (opts.duration !== undefined) {
    const ms = parseDuration(opts.duration);
    if (ms === undefined || ms < 1000) throw new UsageError(`--duration "${opts.duration}" is not a duration of at least 1s; use e.g. 24h, 30m or 7d`);
    out.durationMs = ms;
  }
  if (opts.depth !== undefined) {
    if (!/^[0-7]$/.test(opts.depth)) throw new UsageError(`--depth "${opts.depth}" must be a whole number from 0 to 7 (how many more times the grant may be delegated)`);
    out.depth = Number(opts.depth);
  }
  return out;
}

const when = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

function formatList(r: { did: string; requireGrants: boolean; anchors: string[]; tokens: TokenRecord[]; revoked: { id: string; at: number; by: string }[] }): string {
  const lines = [`this node    ${r.did}`, `grants       ${r.requireGrants ? 'required of requesters (--require-grants or provider.requireGrants)' : 'not required'}`, 'anchors'];
  for (const a of r.anchors) lines.push(`  ${a}${a === r.did ? '  (this node)' : ''}`);
  lines.push(r.tokens.length ? 'tokens' : 'tokens       none');
  for (const t of r.tokens) {
    const state = t.revoked ? 'REVOKED' : t.expiresAt <= Date.now() ? 'expired' : `until ${when(t.expiresAt)}`;
    lines.push(`  ${t.id}  ${t.kind.padEnd(6)}  ${t.actions.join(',').padEnd(14)}  to ${t.audience}  from ${t.root}  ${state}`);
  }
  lines.push(r.revoked.length ? 'revoked' : 'revoked      none');
  for (const v of r.revoked) lines.push(`  ${v.id}  at ${when(v.at)} by ${v.by}`);
  return lines.join('\n');
}

export function addCapCommands(program: Command, kit: CliKit): void {
  const cap = program.command('cap').description('capability tokens: who may use this node, and grants this node holds (see README "Trust")');

  kit
    .clientOptions(cap.command('grant').description('grant actions to a DID, signed by this node; prints the token').argument('<did>', "the grantee's did:key (its `info` shows it)"))
    .option('--action <action>', 'deploy, logs, results or cancel; repeatable', collect, [])
    .option('--duration <duration>', 'how long the grant holds (default 24h)')
    .option('--depth <n>', 'how many more times it may be delegated (default 0)')
    .action(async (did: string, opts: GrantOpts) => {
      const body = { audience: did, ...terms(opts, 'cap grant') };
      const { api, json } = await kit.client(opts);
      const r = (await api.request('POST', '/v1/cap/grant', body)) as TokenRecord;
      kit.print(json, r, () => r.token);
    });

  kit
    .clientOptions(cap.command('delegate').description('re-grant a token this node holds to another DID, never wider; prints the new token').argument('<token>', 'the token').argument('<did>', "the grantee's did:key"))
    .option('--action <action>', 'deploy, logs, results or cancel (of those the token grants); repeatable', collect, [])
    .option('--duration <duration>', "how long it holds (default: as long as the token's own grant)")
    .option('--depth <n>', 'how many more times it may be delegated (default 0; below the token\'s own)')
    .action(async (token: string, did: string, opts: GrantOpts) => {
      const body = { token, audience: did, ...terms(opts, 'cap delegate') };
      const { api, json } = await kit.client(opts);
      const r = (await api.request('POST', '/v1/cap/delegate', body)) as TokenRecord;
      kit.print(json, r, () => r.token);
    });

  kit
    .clientOptions(cap.command('anchor').description('accept root grants from a DID (this node\'s own DID is always an anchor)'))
    .requiredOption('--trust <did>', 'the DID whose grants this node accepts')
    .option('--remove', 'stop accepting its grants')
    .action(async (opts: RawOptions & { trust: string; remove?: boolean }) => {
      const { api, json } = await kit.client(opts);
      const r = (await api.request('POST', '/v1/cap/anchor', { did: opts.trust, ...(opts.remove ? { remove: true } : {}) })) as { anchors: string[] };
      kit.print(json, r, () => `anchors:\n${r.anchors.map((a) => `  ${a}`).join('\n')}`);
    });

  kit
    .clientOptions(cap.command('add').description("keep a token given to this node: its deals carry it to providers").argument('<token>', 'the token'))
    .action(async (token: string, opts: RawOptions) => {
      const { api, json } = await kit.client(opts);
      const r = (await api.request('POST', '/v1/cap/add', { token })) as TokenRecord;
      kit.print(json, r, () => `added ${r.id}: ${r.actions.join(', ')} from ${r.root}, until ${when(r.expiresAt)}`);
    });

  kit
    .clientOptions(cap.command('list').description('anchors, tokens issued and held, revocations'))
    .action(async (opts: RawOptions) => {
      const { api, json } = await kit.client(opts);
      const r = (await api.request('GET', '/v1/cap')) as Parameters<typeof formatList>[0];
      kit.print(json, r, () => formatList(r));
    });

  kit
    .clientOptions(cap.command('revoke').description('revoke a token (or any link of one) by id; a link this node issued is revoked on the nodes it tells too').argument('<id>', 'token id, as `cap list` shows'))
    .action(async (id: string, opts: RawOptions) => {
      const { api, json } = await kit.client(opts);
      const r = (await api.request('POST', '/v1/cap/revoke', { id })) as { id: string; told: boolean };
      kit.print(json, r, () => `revoked ${r.id}${r.told ? ' (and told the network)' : ''}`);
    });
}
