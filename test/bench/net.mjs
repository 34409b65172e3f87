// Network benchmarks (issue 4). Each runs our path and the raw libp2p baseline in the same run, in the same
// processes and over the same connection, and reports both with their ratio:
//   net-throughput  signed one-way messages between two processes (router -> actor channel with credit flow
//                   control -> router, envelope verified and delivered to an inbox) vs raw length-prefixed
//                   frames of the same size on one stream (lpStream from @libp2p/utils, each write awaited)
//   net-rtt         signed net.ping -> net.pong request/reply vs an 8-byte raw lp echo, p50
//   net-flood       100k signed messages as fast as the sender can go: all must arrive with no connection
//                   dropped (flow control slows the sender instead); raw: 100k raw lp frames
//   gossip-p50/p99  broadcast to 5 nodes: publish-to-receive latency of signed envelopes on our topic vs raw
//                   gossipsub messages of the same size on another topic of the same pubsub
// Standalone: `npm run build && node test/bench/net.mjs [--json FILE]`; from test/bench/run.mjs:
// `const { netBenches, killNetPeers } = await import('./net.mjs')` gives [id, fn] pairs; each fn resolves to an
// ARRAY of results in run.mjs's shape ({id, name, unit, ours, raw, ratio, targets, detail, error?}).
// Env: NET_BENCH_GOSSIP_COUNT (400 per half), NET_BENCH_GOSSIP_GAP_MS (5), NET_BENCH_PROF (cpu-prof dir).
import { fork } from 'node:child_process';
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { round } from './common.mjs';

const PEER = fileURLToPath(new URL('./net-peer.mjs', import.meta.url));
const children = new Set();

/** A raw benchmark peer (net-peer.mjs) driven over IPC: { child, peerId, addr, call(cmd, args, timeoutMs) }. */
export function spawnPeer() {
  return new Promise((resolve, reject) => {
    const child = fork(PEER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: process.env.NET_BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.NET_BENCH_PROF}`] : [] });
    children.add(child);
    let seq = 0;
    const pending = new Map();
    const timer = setTimeout(() => reject(new Error('a benchmark peer did not start within 30 s')), 30_000);
    child.once('exit', (code) => {
      children.delete(child);
      clearTimeout(timer);
      reject(new Error(`a benchmark peer exited with code ${code} before it was ready`));
      for (const p of pending.values()) p.reject(new Error(`benchmark peer exited with code ${code}`));
    });
    child.on('message', (m) => {
      if (m.ready) {
        clearTimeout(timer);
        const call = (cmd, args = {}, timeoutMs = 300_000) =>
          new Promise((res, rej) => {
            const id = ++seq;
            const t = setTimeout(() => rej(new Error(`${cmd} took longer than ${timeoutMs} ms`)), timeoutMs);
            pending.set(id, { resolve: (v) => (clearTimeout(t), res(v)), reject: (e) => (clearTimeout(t), rej(e)) });
            child.send({ id, cmd, ...args });
          });
        resolve({ child, peerId: m.peerId, addr: m.addr, call });
        return;
      }
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(new Error(m.error));
    });
  });
}

async function stopAll(peers) {
  await Promise.all(peers.map((p) => p.call('stop', {}, 5_000).catch(() => {})));
  for (const c of children) c.kill('SIGKILL');
  children.clear();
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
const median = (xs) => pct(xs, 0.5); // the upper middle of an even count, unlike common.mjs's median
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** What one ed25519 sign and one verify cost here now (node:crypto with key objects, as our path uses). */
function cryptoCost() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const msg = new Uint8Array(400).fill(1);
  const sig = sign(null, msg, privateKey);
  const N = 1000;
  let t0 = performance.now();
  for (let i = 0; i < N; i += 1) sign(null, msg, privateKey);
  const signUs = ((performance.now() - t0) * 1000) / N;
  t0 = performance.now();
  for (let i = 0; i < N; i += 1) verify(null, msg, publicKey, sig);
  const verifyUs = ((performance.now() - t0) * 1000) / N;
  return { signUs: round(signUs, 1), verifyUs: round(verifyUs, 1) };
}

async function pair() {
  const [a, b] = await Promise.all([spawnPeer(), spawnPeer()]);
  await a.call('connect', { addr: b.addr });
  // let identify finish and the actor channel open before measuring
  for (let i = 0; i < 100 && (await a.call('counts')).counters.out === 0; i += 1) await sleep(20);
  return [a, b];
}

/** Throughput and round trip between two processes, ours and raw alternating so drift hits both alike. */
async function benchPair() {
  const [a, b] = await pair();
  try {
    const bytes = await a.call('ourFrameBytes', { peer: b.peerId });
    const rttBytes = await a.call('ourSingleFrameBytes', { peer: b.peerId });
    // warm up both paths
    await a.call('ourFlood', { peer: b.peerId, n: 3000 });
    await a.call('rawFlood', { addr: b.addr, n: 3000, bytes });
    await a.call('ourRtt', { peer: b.peerId, n: 300 });
    await a.call('rawRtt', { addr: b.addr, n: 300, bytes: rttBytes });
    const N = 20_000;
    const RUNS = 3;
    const tput = { ours: [], raw: [] };
    const rawErrors = [];
    const rtt = { ours: [], raw: [], oursP99: [], rawP99: [] };
    for (let k = 0; k < RUNS; k += 1) {
      const o = await a.call('ourFlood', { peer: b.peerId, n: N });
      if (o.counted < N) throw new Error(`only ${o.counted} of ${N} signed messages arrived`);
      await b.call('resetCounts');
      const r = await a.call('rawFlood', { addr: b.addr, n: N, bytes });
      if (r.error) rawErrors.push(`after ${r.sent} of ${N}: ${r.error}`);
      tput.ours.push((N / o.ms) * 1000);
      tput.raw.push((N / r.ms) * 1000);
      const ro = await a.call('ourRtt', { peer: b.peerId, n: 1000 });
      const rr = await a.call('rawRtt', { addr: b.addr, n: 1000, bytes: rttBytes });
      rtt.ours.push(median(ro) * 1000);
      rtt.raw.push(median(rr) * 1000);
      rtt.oursP99.push(pct(ro, 0.99) * 1000);
      rtt.rawP99.push(pct(rr, 0.99) * 1000);
    }
    // the flood: 100k as fast as the sender can go
    const FLOOD = 100_000;
    await b.call('resetCounts');
    const fo = await a.call('ourFlood', { peer: b.peerId, n: FLOOD });
    const [ca, cb] = await Promise.all([a.call('counts'), b.call('counts')]);
    const fr = await a.call('rawFlood', { addr: b.addr, n: FLOOD, bytes });
    const dropped = ca.connections !== 1 || cb.connections !== 1;
    const rejected = cb.counters.rejectedTotal;
    const oT = median(tput.ours);
    const rT = median(tput.raw);
    const oR = median(rtt.ours);
    const rR = median(rtt.raw);
    // a signed request and a signed reply: two signatures and two verifications on the critical path
    const crypto = cryptoCost();
    const floorUs = round(2 * crypto.signUs + 2 * crypto.verifyUs);
    const floodError = fo.counted !== FLOOD ? `only ${fo.counted} of ${FLOOD} arrived` : dropped ? `a connection dropped (connections: ${ca.connections}, ${cb.connections})` : rejected ? `${rejected} messages rejected` : undefined;
    return [
      {
        id: 'net-throughput',
        name: `signed one-way messages/s between two processes (${bytes}-byte envelope frames, ${N} per run) vs raw lpStream frames of the same size on one stream`,
        unit: 'msgs/s',
        ours: round(oT),
        raw: round(rT),
        ratio: round(oT / rT, 3),
        targets: [{ kind: 'ratio', min: 0.8 }],
        detail: { oursRuns: tput.ours.map((x) => round(x)), rawRuns: tput.raw.map((x) => round(x)), frameBytes: bytes, rawErrors },
      },
      {
        id: 'net-rtt-p50',
        name: `request/reply round trip p50 (µs): signed net.ping -> net.pong through both routers (${rttBytes}-byte frames) vs a raw lp echo of frames of the same size on one stream`,
        unit: 'µs',
        ours: round(oR),
        raw: round(rR),
        ratio: round(oR / rR, 3),
        targets: [{ kind: 'ratio', max: 1.3 }],
        detail: { frameBytes: rttBytes, crypto, cryptoFloorUs: floorUs, rawPlusCryptoUs: round(rR + floorUs), oursRuns: rtt.ours.map((x) => round(x)), rawRuns: rtt.raw.map((x) => round(x)), oursP99: rtt.oursP99.map((x) => round(x)), rawP99: rtt.rawP99.map((x) => round(x)) },
      },
      {
        id: 'net-flood',
        name: `${FLOOD / 1000}k signed messages as fast as the sender goes: all arrive, no connection dropped, none rejected (msgs/s) vs ${FLOOD / 1000}k raw lp frames`,
        unit: 'msgs/s',
        ours: round((FLOOD / fo.ms) * 1000),
        raw: round((fr.sent / fr.ms) * 1000),
        ratio: round(FLOOD / fo.ms / (fr.sent / fr.ms), 3),
        targets: [],
        ...(floodError ? { error: floodError } : {}),
        detail: { oursRuns: [round((FLOOD / fo.ms) * 1000)], rawRuns: [round((fr.sent / fr.ms) * 1000)], delivered: fo.counted, connectionsAfter: [ca.connections, cb.connections], rejected, raw: fr.error ? `stream reset after ${fr.sent} of ${FLOOD} frames: ${fr.error}` : `all ${FLOOD} frames sent` },
      },
    ];
  } finally {
    await stopAll([a, b]);
  }
}

/** Gossipsub: one publisher and 5 receivers in 6 processes; publish-to-receive latency. */
async function benchGossip() {
  const peers = await Promise.all(Array.from({ length: 6 }, () => spawnPeer()));
  const [pub, ...subs] = peers;
  try {
    // a ring plus a link from each receiver to the publisher
    for (let i = 0; i < subs.length; i += 1) {
      await subs[i].call('connect', { addr: pub.addr });
      await subs[i].call('connect', { addr: subs[(i + 1) % subs.length].addr });
    }
    const deadline = Date.now() + 20_000;
    while ((await pub.call('subscribers')) < 5 || (await pub.call('rawSubscribers')) < 5 || (await pub.call('meshPeers')) < 4) {
      if (Date.now() > deadline) throw new Error('gossipsub mesh did not form within 20 s');
      await sleep(200);
    }
    await sleep(1500); // a heartbeat or so, so every receiver has its mesh
    const bytes = await pub.call('tickBytes');
    const COUNT = Number(process.env.NET_BENCH_GOSSIP_COUNT ?? 400);
    const GAP_MS = Number(process.env.NET_BENCH_GOSSIP_GAP_MS ?? 5);
    const send = async (ours) => {
      for (let i = 0; i < COUNT; i += 1) {
        await pub.call(ours ? 'tick' : 'rawTick', ours ? { seq: i } : { bytes });
        await sleep(GAP_MS);
      }
    };
    // warm-up, then alternate halves so drift hits both alike
    await send(true);
    await send(false);
    await sleep(500);
    await Promise.all(subs.map((s) => s.call('resetCounts')));
    await send(true);
    await send(false);
    await send(true);
    await send(false);
    await sleep(1000);
    const got = await Promise.all(subs.map((s) => s.call('gossip')));
    const ours = got.flatMap((g) => g.ours).map((x) => x * 1000);
    const raw = got.flatMap((g) => g.raw).map((x) => x * 1000);
    const expected = COUNT * 2 * subs.length;
    const error = ours.length < expected ? `only ${ours.length} of ${expected} broadcasts arrived` : undefined;
    const row = (p, id) => ({
      id,
      name: `gossipsub broadcast to 5 nodes, publish-to-receive ${id.endsWith('p50') ? 'p50' : 'p99'} (µs): signed envelopes checked and delivered to an inbox vs raw gossipsub messages of the same size (${bytes} bytes), ${COUNT * 2} each, 6 processes`,
      unit: 'µs',
      ours: round(pct(ours, p)),
      raw: round(pct(raw, p)),
      ratio: round(pct(ours, p) / pct(raw, p), 3),
      targets: [],
      ...(error ? { error } : {}),
      detail: { oursRuns: [round(pct(ours, p))], rawRuns: [round(pct(raw, p))], received: { ours: ours.length, raw: raw.length, expected } },
    });
    return [row(0.5, 'gossip-p50'), row(0.99, 'gossip-p99')];
  } finally {
    await stopAll(peers);
  }
}

/** Kills any benchmark peer still running (for run.mjs's cleanup and watchdog). */
export function killNetPeers() {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
}

/** [id, fn] pairs for run.mjs; each fn resolves to an array of results. */
export const netBenches = [
  ['net-pair', benchPair],
  ['net-gossip', benchGossip],
];

function table(results) {
  const fmt = (v, unit) => `${v.toLocaleString('en', { maximumFractionDigits: 0 })} ${unit}`;
  const rows = results.map((r) => [
    r.id,
    r.error && r.ours === undefined ? 'error' : fmt(r.ours, r.unit),
    r.error && r.raw === undefined ? '' : fmt(r.raw, r.unit),
    r.ratio === undefined ? '' : `${r.ratio}x`,
    r.targets.length ? r.targets.map((t) => `ratio ${t.min !== undefined ? '>=' : '<='} ${t.min ?? t.max}x`).join(', ') : '(info)',
    r.error ? `ERROR: ${r.error}` : r.targets.length === 0 ? '-' : r.targets.every((t) => (t.min === undefined || r.ratio >= t.min) && (t.max === undefined || r.ratio <= t.max)) ? 'pass' : 'MISS',
  ]);
  const head = ['benchmark', 'ours', 'raw baseline', 'ratio', 'target', 'result'];
  const w = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells) => cells.map((x, c) => (c >= 1 && c <= 3 ? x.padStart(w[c]) : x.padEnd(w[c]))).join('  ').trimEnd();
  const notes = (r) => {
    const d = r.detail ?? {};
    const out = [`${r.id}: ${r.name}`, `   ours runs ${d.oursRuns?.join(', ')}; raw runs ${d.rawRuns?.join(', ')}`];
    if (d.cryptoFloorUs) out.push(`   ed25519 here: sign ${d.crypto.signUs} µs, verify ${d.crypto.verifyUs} µs; 2 signs + 2 verifies = ${d.cryptoFloorUs} µs per round trip; raw + that = ${d.rawPlusCryptoUs} µs`);
    if (d.raw) out.push(`   raw flood: ${d.raw}; ours: ${d.delivered} delivered, connections after ${d.connectionsAfter?.join('/')}, rejected ${d.rejected}`);
    if (d.rawErrors?.length) out.push(`   raw errors: ${d.rawErrors.join('; ')}`);
    return out.join('\n');
  };
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line), '', ...results.map(notes)].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const jsonFile = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
  const watchdog = setTimeout(() => {
    process.stderr.write('bench: net benchmarks still running after 300 s; giving up\n');
    for (const c of children) c.kill('SIGKILL');
    process.exit(1);
  }, 300_000);
  const results = [];
  for (const [id, fn] of netBenches) {
    process.stderr.write(`bench: ${id} ...\n`);
    const t0 = performance.now();
    try {
      results.push(...(await fn()));
    } catch (e) {
      results.push({ id, name: id, unit: '', targets: [], error: e.message });
    }
    process.stderr.write(`  ${id} took ${round((performance.now() - t0) / 1000, 1)} s\n`);
  }
  clearTimeout(watchdog);
  process.stdout.write(`\n${table(results)}\n\n${os.availableParallelism()} cores, Node ${process.version}\n`);
  const report = { suite: 'dms-runtime net bench', at: new Date().toISOString(), results };
  if (jsonFile) await writeFile(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exit(results.some((r) => r.error) ? 1 : 0);
}
