// Debugging by replay, as a new user tries it after `demo --keep` with the nodes stopped: which actors each log
// holds (--list), the WASM deal as one timeline across the requester's and both providers' data dirs with its
// hops (--deal), what each event changed (--diff), the filters, an actor that is not there, and a log whose last
// bytes are torn or damaged.
import { cp, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { apiOf, cli, jsonLines, killAll, makeTempDir, removeTempDirs, startNode } from './harness.ts';

interface Actor {
  id: string;
  kind: string;
  name?: string;
  events: number;
  first: number | null;
  last: number | null;
  state: unknown;
}
interface ListDoc {
  node: string | null;
  actors: Actor[];
  stopped?: string;
}
interface DealLine {
  at: number;
  node: string;
  actor: string;
  seq: number;
  type: string;
  state: unknown;
  origin: string;
  hop?: { from: string; latencyMs: number; actor: string; seq: number };
}
interface TimelineLine {
  seq: number;
  ts: number;
  type: string;
  state: unknown;
  changes?: { path: string; op: string; from?: unknown; to?: unknown }[];
}

interface Ctx {
  root: string;
  job: string;
  /** Peer ids by node name. */
  peer: Record<'A' | 'B' | 'C', string>;
  /** The provider that ran the job, and the one that lost the bidding. */
  winner: 'B' | 'C';
  loser: 'B' | 'C';
  scratch: string;
}

const Debug = suite<Ctx>('e2e: replay --list, --deal, --diff and filters on the data dirs `demo --keep` leaves', { root: '', job: '', peer: { A: '', B: '', C: '' }, winner: 'B', loser: 'C', scratch: '' });

const dir = (ctx: Ctx, n: string) => path.join(ctx.root, n);
const dirsOf = (ctx: Ctx) => ['A', 'B', 'C'].flatMap((n) => ['--data-dir', dir(ctx, n)]);

async function ok(args: string[], timeoutMs = 30_000) {
  const r = await cli(args, { timeoutMs });
  assert.is(r.code, 0, `\`replay ${args.slice(1).join(' ')}\` exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

async function list(d: string, extra: string[] = []): Promise<ListDoc> {
  return JSON.parse((await ok(['replay', '--list', '--json', '--data-dir', d, ...extra])).stdout) as ListDoc;
}

Debug.before(async (ctx) => {
  const r = await cli(['demo', '--keep'], { timeoutMs: 150_000 });
  ctx.root = /The data dirs stay in (\S+)\.$/m.exec(r.stdout)?.[1] ?? '';
  assert.is(r.code, 0, `demo --keep exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  assert.ok(ctx.root, `demo --keep says where it kept the data dirs:\n${r.stdout}`);
  const done = /The job completed with exit code 0 on ([BC])\. Its status, as `status ([0-9a-f]+)`/.exec(r.stdout);
  assert.ok(done, r.stdout);
  ctx.winner = done[1] as 'B' | 'C';
  ctx.loser = ctx.winner === 'B' ? 'C' : 'B';
  ctx.job = done[2]!;
  for (const n of ['A', 'B', 'C'] as const) ctx.peer[n] = new RegExp(`${n} is ready: (\\S+)`).exec(r.stdout)?.[1] ?? '';
  ctx.scratch = await mkdtemp(path.join(os.tmpdir(), 'dms-replay-debug-'));
});

Debug.after(async (ctx) => {
  await killAll();
  await removeTempDirs();
  for (const d of [ctx.root, ctx.scratch]) if (d) await rm(d, { recursive: true, force: true });
});

Debug('--list on each stopped node: every actor with kind, id, job name, events, first and last time, final state; newest first', async (ctx) => {
  const a = await list(dir(ctx, 'A'));
  assert.is(a.node, ctx.peer.A, 'the node is named by its peer id');
  const ids = a.actors.map((x) => x.id);
  for (const id of ['node', 'trust', `job/${ctx.job}`]) assert.ok(ids.includes(id), `${id} in ${ids.join(' ')}`);
  assert.ok(a.actors.some((x) => x.kind === 'ensemble' && x.name === 'kv-demo'), 'the ensemble of the second act, with its name');
  const job = a.actors.find((x) => x.id === `job/${ctx.job}`)!;
  assert.equal({ kind: job.kind, name: job.name, state: job.state }, { kind: 'job', name: 'hello', state: { ended: 'completed' } });
  assert.ok(job.events >= 5 && job.first! <= job.last!, JSON.stringify(job));
  const lasts = a.actors.map((x) => x.last ?? -1);
  assert.equal(lasts, [...lasts].sort((x, y) => y - x), 'newest first');

  const key = `${ctx.job}.1@${ctx.peer.A}`;
  const w = await list(dir(ctx, ctx.winner));
  assert.equal(w.actors.find((x) => x.id === `allocation/${key}`)?.state, 'completed', `the winner ran it: ${JSON.stringify(w.actors)}`);
  assert.equal(w.actors.find((x) => x.id === `provider/${key}`)?.state, 'done');
  const l = await list(dir(ctx, ctx.loser));
  assert.equal(l.actors.find((x) => x.id === `provider/${key}`)?.state, 'released', 'the other provider was told its bid was not taken');
  assert.not.ok(l.actors.some((x) => x.id === `allocation/${key}`));

  const only = await list(dir(ctx, ctx.winner), ['--kind', 'provider']);
  assert.ok(only.actors.length >= 2 && only.actors.every((x) => x.kind === 'provider'), JSON.stringify(only.actors));
  const text = await ok(['replay', '--list', '--data-dir', dir(ctx, 'A')]);
  assert.match(text.stdout, new RegExp(`^job\\s+job/${ctx.job}\\s+hello\\s+\\d+\\s+\\S+Z\\s+\\S+Z`, 'm'));
});

Debug('--deal across the three data dirs: one time-ordered timeline, requester and provider events interleaved, hops matched', async (ctx) => {
  const r = await ok(['replay', '--deal', ctx.job, ...dirsOf(ctx), '--json']);
  const lines = jsonLines<DealLine>(r.stdout);
  for (const l of lines) for (const k of ['at', 'node', 'actor', 'seq', 'type', 'state'] as const) assert.ok(k in l, `${k} in ${JSON.stringify(l)}`);
  const ats = lines.map((l) => l.at);
  assert.equal(ats, [...ats].sort((x, y) => x - y), 'in time order');
  assert.equal(new Set(lines.map((l) => l.node)), new Set([ctx.peer.A, ctx.peer.B, ctx.peer.C]), 'events of all three nodes');
  const onA = lines.map((l) => l.node === ctx.peer.A);
  assert.ok(onA.some((x, i) => !x && onA.slice(0, i).includes(true) && onA.slice(i).includes(true)), 'a provider event between two of the requester\'s');

  const start = lines.find((l) => l.node === ctx.peer.A && l.type === 'deal.start')!;
  for (const n of ['B', 'C'] as const) {
    const asked = lines.find((l) => l.node === ctx.peer[n] && l.actor === 'node' && l.type === 'bid.request');
    assert.ok(asked?.hop, `${n}'s Node got the bid request, matched to its send: ${JSON.stringify(asked)}`);
    assert.equal({ from: asked.hop.from, actor: asked.hop.actor, seq: asked.hop.seq }, { from: ctx.peer.A, actor: `job/${ctx.job}`, seq: start.seq });
    assert.ok(asked.hop.latencyMs >= 0 && asked.hop.latencyMs < 10_000 && asked.hop.latencyMs === asked.at - start.at, JSON.stringify(asked.hop));
  }
  const commit = lines.find((l) => l.node === ctx.peer[ctx.winner] && l.type === 'deal.commit');
  assert.equal(commit?.hop?.from, ctx.peer.A);
  assert.is(commit?.actor, `provider/${ctx.job}.1@${ctx.peer.A}`);
  const committed = lines.find((l) => l.node === ctx.peer.A && l.type === 'deal.committed');
  assert.equal({ from: committed?.hop?.from, actor: committed?.hop?.actor }, { from: ctx.peer[ctx.winner], actor: `provider/${ctx.job}.1@${ctx.peer.A}` });
  const statuses = lines.filter((l) => l.node === ctx.peer.A && l.type === 'allocation.status');
  assert.ok(statuses.some((l) => l.hop?.actor === `allocation/${ctx.job}.1@${ctx.peer.A}`), 'a status matched to the allocation that sent it');
  assert.equal(lines.at(-1)?.state, { ended: 'completed' }, JSON.stringify(lines.at(-1)));
  assert.match(r.stderr, /hops? matched/);

  const text = await ok(['replay', '--deal', ctx.job, ...dirsOf(ctx)]);
  assert.match(text.stdout, new RegExp(`^deal ${ctx.job} \\(hello\\): \\d+ events on 3 nodes$`, 'm'));
  assert.match(text.stdout, /^\S+Z {2}[BC] {2}node +#\d+ {2}bid\.request +<- A job #\d+ \+\d+ ms {2}-> registered$/m);
  assert.match(text.stdout, /^\S+Z {2}A {2}job +#\d+ {2}deal\.committed +<- [BC] provider\.1 #\d+ \+\d+ ms/m);
});

Debug('--diff under each event of the job: the paths it changed, old -> new, not the whole context', async (ctx) => {
  const r = await ok(['replay', '--data-dir', dir(ctx, 'A'), '--actor', `job/${ctx.job}`, '--diff']);
  const lines = r.stdout.split('\n');
  const at = lines.findIndex((l) => /^\s+1\s+\S+Z\s+deal\.start/.test(l));
  assert.ok(at >= 0, r.stdout);
  const under = lines.slice(at + 1, lines.findIndex((l, i) => i > at && /^\s+2\s/.test(l)));
  assert.ok(under.length > 0 && under.every((l) => /^ {10}[~+-] /.test(l)), under.join('\n'));
  assert.ok(under.some((l) => l.includes('~ state: "idle" -> {"requesting":"collecting"}')), under.join('\n'));
  assert.not.ok(r.stdout.includes('"input":'), 'no whole context under the events');

  const json = jsonLines<TimelineLine>((await ok(['replay', '--data-dir', dir(ctx, 'A'), '--actor', `job/${ctx.job}`, '--diff', '--json'])).stdout);
  const committed = json.find((l) => l.type === 'deal.committed');
  assert.ok(committed?.changes?.length, JSON.stringify(committed));
  const final = json.find((l) => (l.changes ?? []).some((c) => c.path === 'state' && JSON.stringify(c.to) === '{"ended":"completed"}'));
  assert.ok(final, 'the event that ended the job shows its state change');
});

Debug('--type, --from and --to choose what is shown (times as ISO or epoch ms); --to still takes a seq', async (ctx) => {
  const actor = ['--data-dir', dir(ctx, 'A'), '--actor', `job/${ctx.job}`, '--json'];
  const all = jsonLines<TimelineLine>((await ok(['replay', ...actor])).stdout).slice(0, -1);
  const statuses = jsonLines<TimelineLine>((await ok(['replay', ...actor, '--type', 'allocation.status'])).stdout).slice(0, -1);
  assert.equal(statuses.map((l) => l.seq), all.filter((l) => l.type === 'allocation.status').map((l) => l.seq));
  assert.ok(statuses.length >= 2);
  const [from, to] = [all[2]!.ts, all.at(-2)!.ts];
  const window = jsonLines<TimelineLine & { event?: string; lastSeq?: number }>((await ok(['replay', ...actor, '--from', new Date(from).toISOString(), '--to', String(to)])).stdout);
  assert.equal(window.slice(0, -1).map((l) => l.seq), all.filter((l) => l.ts >= from && l.ts <= to).map((l) => l.seq));
  assert.is(window.at(-1)!.lastSeq, all.filter((l) => l.ts <= to).at(-1)!.seq, 'the replay stops at --to');
  const bySeq = jsonLines<{ lastSeq?: number }>((await ok(['replay', ...actor, '--to', '3'])).stdout);
  assert.is(bySeq.at(-1)!.lastSeq, 3);

  const deal = jsonLines<DealLine>((await ok(['replay', '--deal', ctx.job, ...dirsOf(ctx), '--json', '--type', 'bid.request,deal.commit'])).stdout);
  assert.equal(new Set(deal.map((l) => l.type)), new Set(['bid.request', 'deal.commit']));
  const seqTo = await cli(['replay', '--deal', ctx.job, ...dirsOf(ctx), '--to', '3']);
  assert.is(seqTo.code, 2, seqTo.stderr);
  assert.match(seqTo.stderr, /seqs are per actor/);
});

Debug('an actor that is not there: the closest ids it does hold, and how to list them all (one line, exit 2)', async (ctx) => {
  const typo = `job/${ctx.job.slice(0, -3)}`;
  const r = await cli(['replay', '--data-dir', dir(ctx, 'A'), '--actor', typo]);
  assert.is(r.code, 2, r.stderr);
  assert.is(r.stdout, '');
  assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`no actor "${typo}" in the log of .*; closest: job/${ctx.job}\\b`));
  assert.match(r.stderr, /replay --list --data-dir \S+` lists all \d+/);
  const none = await cli(['replay', '--deal', 'no-such-job', ...dirsOf(ctx)]);
  assert.is(none.code, 2, none.stderr);
  assert.match(none.stderr, /no event of deal no-such-job/);
});

/** The offset of the frame holding the job's last event page in a segment (frames: u32 length, u32 crc, body). */
function lastPageOf(buf: Buffer, actor: string): number {
  let found = -1;
  for (let off = 0; off + 8 <= buf.length; off += 8 + buf.readUInt32LE(off)) {
    const body = buf.subarray(off + 8, off + 8 + buf.readUInt32LE(off)).toString();
    if (body.startsWith('{"tx":[{"t":"events"') && body.includes(`"actor":${JSON.stringify(actor)}`)) found = off;
  }
  return found;
}

Debug('a torn or damaged tail: replay says where the history stops and still shows everything before it', async (ctx) => {
  const torn = path.join(ctx.scratch, 'A-torn');
  await cp(dir(ctx, 'A'), torn, { recursive: true });
  const seg = path.join(torn, 'journal', '0000000001.log');
  const actor = `job/${ctx.job}`;
  const at = lastPageOf(await readFile(seg), actor);
  assert.ok(at > 0, 'the job\'s last event is in the first segment');
  await truncate(seg, at + 11);
  const intact = (await list(dir(ctx, 'A'))).actors.find((x) => x.id === actor)!;

  const l = await cli(['replay', '--list', '--json', '--data-dir', torn]);
  assert.is(l.code, 0, l.stderr);
  const doc = JSON.parse(l.stdout) as ListDoc;
  assert.match(String(doc.stopped), new RegExp(`^the history ends at journal/0000000001\\.log at byte ${at}: the last record there does not check \\(truncated record\\)`));
  assert.match(l.stderr, new RegExp(`byte ${at}`));
  const job = doc.actors.find((x) => x.id === actor)!;
  assert.is(job.events, intact.events - 1, 'everything but the torn last event');

  const r = await cli(['replay', '--data-dir', torn, '--actor', actor, '--json']);
  assert.is(r.code, 0, r.stderr);
  const out = jsonLines<TimelineLine & { event?: string; stopped?: { offset: number; tail: boolean } }>(r.stdout);
  assert.is(out.length - 1, intact.events - 1, 'the timeline up to the torn record');
  assert.equal({ offset: out.at(-1)!.stopped?.offset, tail: out.at(-1)!.stopped?.tail }, { offset: at, tail: true });
  assert.match(r.stderr, new RegExp(`replay: the history ends at journal/0000000001\\.log at byte ${at}.*; ${actor.replace(/[/]/g, '\\/')} is shown as of its last event before it \\(seq ${intact.events - 1}\\)`));

  // the last bytes overwritten (a bad sector, say): the same, for a checksum that fails
  const bad = path.join(ctx.scratch, 'B-bad');
  await cp(dir(ctx, ctx.winner), bad, { recursive: true });
  const bseg = path.join(bad, 'journal', '0000000001.log');
  const buf = await readFile(bseg);
  buf.fill(0x5a, buf.length - 4);
  await writeFile(bseg, buf);
  const b = await cli(['replay', '--list', '--data-dir', bad]);
  assert.is(b.code, 0, b.stderr);
  assert.match(b.stdout, /the history ends at journal\/0000000001\.log at byte \d+: the last record there does not check \(checksum mismatch\)/);
  assert.match(b.stdout, new RegExp(`^allocation\\s+allocation/${ctx.job}`, 'm'), 'the actors before it are listed');
});

Debug('--list on a running node\'s data dir reads it alone: the node goes on, its newest events listed', async () => {
  const d = await makeTempDir('replay-running');
  const node = await startNode(d, ['--monitor-interval', '100']);
  const seen: number[] = [];
  for (let i = 0; i < 3; i += 1) {
    const doc = await list(d);
    const n = doc.actors.find((x) => x.id === 'node');
    assert.is(n?.state, 'registered', JSON.stringify(doc));
    assert.is(doc.node, node.ready.peerId);
    seen.push(n!.events);
    await new Promise((r) => setTimeout(r, 300));
  }
  assert.ok(seen[2]! > seen[0]!, `the node kept logging (monitor samples) while it was read: ${seen.join(', ')}`);
  const info = await (await apiOf(node)).get<{ state: string }>('/v1/info');
  assert.is(info.state, 'registered', 'the node still serves');
  assert.is((await node.stop('SIGTERM')).code, 0, 'and it stops cleanly afterwards');
});

Debug.run();
