/**
 * End to end: the `cap` commands on two real nodes (B grants, A holds): grant, add, delegate (never wider), anchor,
 * list and revoke, each bad input refused with exit 2 and a message; a revocation of a link B issued reaches A over
 * the network; what the trust actor kept survives a restart (it is in the log: `replay --actor trust` shows it).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type NodeProcess, cli, cliJson, killAll, makeTempDir, removeTempDirs, startNode, waitFor, type PeerRow, apiOf } from './harness.ts';

interface Ctx {
  A: NodeProcess;
  B: NodeProcess;
}

interface TokenRow {
  id: string;
  token: string;
  kind: string;
  root: string;
  audience: string;
  actions: string[];
  expiresAt: number;
  revoked?: boolean;
}
interface Listing {
  did: string;
  requireGrants: boolean;
  anchors: string[];
  tokens: TokenRow[];
  revoked: { id: string; by: string }[];
}

const test = suite<Ctx>('e2e: cap commands', {} as Ctx);

test.before(async (ctx) => {
  ctx.A = await startNode(await makeTempDir('cap-a'), [], { timeoutMs: 40_000 });
  ctx.B = await startNode(await makeTempDir('cap-b'), ['--require-grants', '--bootstrap', ctx.A.ready.listen[0]!], { timeoutMs: 40_000 });
  const api = await apiOf(ctx.A);
  await waitFor('A to see B', async () => ((await api.get<PeerRow[]>('/v1/peers')).some((p) => p.dms && p.peer === ctx.B.ready.peerId) ? true : undefined), 30_000, 200);
});

test.after(async () => {
  await killAll();
  await removeTempDirs();
});

const on = (n: NodeProcess, ...args: string[]) => [...args, '--data-dir', n.dataDir];
const list = (n: NodeProcess) => cliJson<Listing>(on(n, 'cap', 'list'));

function refused(r: { code: number | null; stderr: string }, pattern: RegExp, what: string): void {
  assert.is(r.code, 2, `${what}: exit ${String(r.code)}: ${r.stderr}`);
  assert.match(r.stderr, pattern, what);
}

test('grant prints a token; add keeps it on the node it is for; list shows both sides', async (ctx) => {
  const g = await cli(on(ctx.B, 'cap', 'grant', ctx.A.ready.did, '--action', 'deploy', '--action', 'logs', '--duration', '1h', '--depth', '1'));
  assert.is(g.code, 0, g.stderr);
  const token = g.stdout.trim();
  assert.match(token, /^[A-Za-z0-9_-]{100,}$/, 'the token alone on stdout');
  const added = await cliJson<TokenRow>(on(ctx.A, 'cap', 'add', token));
  assert.equal(added.actions, ['deploy', 'logs']);
  assert.is(added.root, ctx.B.ready.did);
  const a = await list(ctx.A);
  assert.is(a.did, ctx.A.ready.did);
  assert.ok(a.tokens.some((t) => t.id === added.id && t.kind === 'held' && !t.revoked));
  const b = await list(ctx.B);
  assert.ok(b.requireGrants, 'B runs with --require-grants');
  assert.ok(b.tokens.some((t) => t.id === added.id && t.kind === 'issued' && t.audience === ctx.A.ready.did));
  assert.equal(b.anchors, [ctx.B.ready.did], 'its own DID is its anchor');
  const human = await cli(on(ctx.A, 'cap', 'list'));
  assert.match(human.stdout, new RegExp(`${added.id}\\s+held\\s+deploy,logs`));
});

test('bad input is refused with exit 2, naming what is wrong', async (ctx) => {
  refused(await cli(on(ctx.B, 'cap', 'grant', 'did:key:nope', '--action', 'deploy')), /not an ed25519 did:key/, 'a bad DID');
  refused(await cli(on(ctx.B, 'cap', 'grant', ctx.A.ready.did, '--action', 'fly')), /unknown action fly/, 'an unknown action');
  refused(await cli(on(ctx.B, 'cap', 'grant', ctx.A.ready.did)), /at least one --action/, 'no action');
  refused(await cli(on(ctx.B, 'cap', 'grant', ctx.A.ready.did, '--action', 'deploy', '--duration', 'soon')), /--duration "soon"/, 'a bad duration');
  const forA = (await cli(on(ctx.B, 'cap', 'grant', ctx.A.ready.did, '--action', 'deploy'))).stdout.trim();
  refused(await cli(on(ctx.B, 'cap', 'add', forA)), /not to this node/, 'a token for another node');
  refused(await cli(on(ctx.A, 'cap', 'add', 'garbage!')), /token/i, 'garbage');
  refused(await cli(on(ctx.A, 'cap', 'revoke', 'x')), /not a token id/, 'a bad id');
  refused(await cli(on(ctx.B, 'cap', 'anchor', '--trust', ctx.B.ready.did)), /always an anchor/, 'its own DID');
});

test('delegate narrows and never widens', async (ctx) => {
  const root = (await cli(on(ctx.B, 'cap', 'grant', ctx.A.ready.did, '--action', 'deploy,logs', '--duration', '1h', '--depth', '1'))).stdout.trim();
  // A holds it and passes on part of it (to B's DID here: any did:key will do)
  const d = await cliJson<TokenRow>(on(ctx.A, 'cap', 'delegate', root, ctx.B.ready.did, '--action', 'logs', '--duration', '30m'));
  assert.equal(d.actions, ['logs']);
  assert.is(d.root, ctx.B.ready.did);
  refused(await cli(on(ctx.A, 'cap', 'delegate', root, ctx.B.ready.did, '--action', 'cancel')), /cancel/, 'an action it was not granted');
  refused(await cli(on(ctx.A, 'cap', 'delegate', root, ctx.B.ready.did, '--action', 'logs', '--duration', '2h')), /expir/i, 'past its expiry');
  refused(await cli(on(ctx.A, 'cap', 'delegate', root, ctx.B.ready.did, '--action', 'logs', '--depth', '1')), /depth/i, 'deeper than it may');
  const leaf = d.token;
  refused(await cli(on(ctx.A, 'cap', 'delegate', leaf, ctx.B.ready.did, '--action', 'logs')), /holder|audience|not/i, 'a token A does not hold');
});

test('anchors are added and removed', async (ctx) => {
  const added = await cliJson<{ anchors: string[] }>(on(ctx.B, 'cap', 'anchor', '--trust', ctx.A.ready.did));
  assert.ok(added.anchors.includes(ctx.A.ready.did));
  const removed = await cliJson<{ anchors: string[] }>(on(ctx.B, 'cap', 'anchor', '--trust', ctx.A.ready.did, '--remove'));
  assert.not.ok(removed.anchors.includes(ctx.A.ready.did));
});

test('a revocation of a link B issued reaches A; what was kept survives a restart', async (ctx) => {
  const token = (await cli(on(ctx.B, 'cap', 'grant', ctx.A.ready.did, '--action', 'deploy', '--duration', '1h'))).stdout.trim();
  const { id } = await cliJson<TokenRow>(on(ctx.A, 'cap', 'add', token));
  const r = await cliJson<{ id: string; told: boolean }>(on(ctx.B, 'cap', 'revoke', id));
  assert.ok(r.told, 'B told the network');
  await waitFor('A to hear the revocation', async () => ((await list(ctx.A)).tokens.find((t) => t.id === id)?.revoked ? true : undefined), 10_000, 200);
  const seen = (await list(ctx.A)).revoked.find((v) => v.id === id);
  assert.is(seen?.by, ctx.B.ready.did);
  // a revocation of a link B did not issue is not passed on (A revokes what it holds, locally only)
  const other = (await cli(on(ctx.B, 'cap', 'grant', ctx.A.ready.did, '--action', 'logs', '--duration', '1h'))).stdout.trim();
  const kept = await cliJson<TokenRow>(on(ctx.A, 'cap', 'add', other));
  const local = await cliJson<{ told: boolean }>(on(ctx.A, 'cap', 'revoke', kept.id));
  assert.not.ok(local.told);

  await ctx.A.stop('SIGTERM');
  ctx.A = await startNode(ctx.A.dataDir, [], { timeoutMs: 40_000 });
  const after = await list(ctx.A);
  assert.ok(after.tokens.find((t) => t.id === id)?.revoked, 'the revocation survived the restart');
  assert.ok(after.tokens.find((t) => t.id === kept.id)?.revoked);
  const replay = await cli(on(ctx.A, 'replay', '--actor', 'trust'));
  assert.is(replay.code, 0, replay.stderr);
  assert.match(replay.stdout, /trust\.token/);
  assert.match(replay.stdout, /trust\.revoke/);
});

test.run();
