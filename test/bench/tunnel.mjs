// Tunnel benchmark (issue 11): a TCP connection carried over the nodes' own libp2p connection
// (runtime/net/tunnel/, `/dms/tunnel/1.0.0`) vs a direct loopback TCP connection to the same servers, in the same
// run, sides taking turns:
//   tunnel-throughput  64 MiB one way to a sink (it answers once it has read all): bytes/s, target >= 0.5x direct
//   tunnel-rtt-p50     2,000 1-byte ping-pongs on one connection to an echo server: p50, target <= 3x direct
// and, to tell the tunnel's own cost from the libp2p connection's, the same two over a raw libp2p stream on the
// same connection (a sink and an echo protocol, no TCP at either end): tunnel-vs-stream-* (info rows, no target).
// Two processes, as two nodes would be: this one runs the client and the dialling host (the tunnel listener); a
// child (this file with --target) runs the accepting host and both servers. Hosts are the node's own
// (createLibp2pHost: websockets, noise, yamux) on loopback. Each side runs TUNNEL_BENCH_RUNS times (3); the rows
// are medians.
//
// Standalone: `npm run build && node test/bench/tunnel.mjs [--json FILE]`; from run.mjs:
// `const { tunnelBenches } = await import('./tunnel.mjs')` gives [id, fn] pairs, each fn resolving to an array of
// rows in run.mjs's shape. Env: TUNNEL_BENCH_MIB (64), TUNNEL_BENCH_PINGS (2000), TUNNEL_BENCH_RUNS (3),
// TUNNEL_BENCH_PROF (a directory: the target process writes a CPU profile there).
import '../../runtime/polyfills.js';
import { writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2pHost } from '../../runtime/net/libp2p-host.js';
import { handleTunnels } from '../../runtime/net/tunnel/tunnel-acceptor.js';
import { openTunnelListener } from '../../runtime/net/tunnel/tunnel-listener.js';
import { cleanup, guard, jsonLine, kill, loadAverage, median, note, reportHead, round, spawnTracked, step, table } from './common.mjs';

const env = (name, dflt) => (process.env[name] === undefined ? dflt : Number(process.env[name]));
const MIB = env('TUNNEL_BENCH_MIB', 64);
const PINGS = env('TUNNEL_BENCH_PINGS', 2000);
const RUNS = env('TUNNEL_BENCH_RUNS', 3);
const SELF = fileURLToPath(import.meta.url);
const quiet = { debug() {}, warn() {} };
const DEAL = 'bench-deal';
const RAW_SINK = '/dms-bench/sink/1.0.0';
const RAW_ECHO = '/dms-bench/echo/1.0.0';

const newHost = async () => createLibp2pHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0/ws'], bootstrap: [], maxConnections: 16 });

const listen = (server) => new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));

// ---------------------------------------------------------------------------------------------- target side (child)

/** The accepting node: a host granting the `echo` and `sink` ports of part `svc` to anyone; prints its addresses. */
async function serveTarget() {
  const echo = await listen(createServer({ noDelay: true }, (s) => s.on('error', () => {}).pipe(s)));
  // reads everything, then answers the byte count (8 bytes) and ends
  const sink = await listen(
    createServer({ allowHalfOpen: true }, (s) => {
      let n = 0;
      s.on('error', () => {});
      s.on('data', (c) => (n += c.length));
      s.on('end', () => {
        const b = Buffer.alloc(8);
        b.writeBigUInt64BE(BigInt(n));
        s.end(b);
      });
    }),
  );
  const host = await newHost();
  await serveRawStreams(host);
  const ports = { echo, sink };
  await handleTunnels(host, { authorize: (_from, h) => (h.deal === DEAL && h.part === 'svc' && ports[h.port] ? { port: ports[h.port] } : { refused: 'unknown-part' }), log: quiet });
  process.once('SIGTERM', () => process.exit(0));
  process.stdout.write(`${JSON.stringify({ ready: { addrs: host.getMultiaddrs().map(String), echo, sink } })}\n`);
}

/** The raw baseline under the tunnel: a sink and an echo as libp2p protocols on the same host, no TCP behind them. */
async function serveRawStreams(host) {
  await host.handle(RAW_SINK, (stream) => {
    let n = 0;
    stream.addEventListener('message', (e) => (n += e.data.byteLength));
    stream.addEventListener('remoteCloseWrite', () => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(BigInt(n));
      stream.send(b);
      void stream.close();
    });
  });
  await host.handle(RAW_ECHO, (stream) => {
    stream.addEventListener('message', (e) => stream.send(e.data));
    stream.addEventListener('remoteCloseWrite', () => void stream.close());
  });
}

// ---------------------------------------------------------------------------------------------- measurements

const dial = (port) =>
  new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, noDelay: true, allowHalfOpen: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });

/** Sends `bytes` to the sink on `port` and waits for its count: { bytes, ms }. */
async function throughput(port, bytes) {
  const s = await dial(port);
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  const answer = new Promise((resolve, reject) => {
    const got = [];
    s.on('data', (c) => got.push(c));
    s.once('end', () => resolve(Buffer.concat(got)));
    s.once('error', reject);
  });
  const t0 = performance.now();
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    if (!s.write(chunk)) await new Promise((resolve) => s.once('drain', resolve));
  }
  s.end();
  const counted = await answer;
  const ms = performance.now() - t0;
  s.destroy();
  if (counted.length !== 8 || Number(counted.readBigUInt64BE()) !== bytes) throw new Error(`the sink counted ${counted.length === 8 ? counted.readBigUInt64BE() : '?'} of ${bytes} bytes`);
  return { bytes, ms };
}

/** `n` 1-byte ping-pongs with the echo server on `port`, one at a time: each round trip in µs. */
async function pingPong(port, n) {
  const s = await dial(port);
  const rtts = [];
  let wake = null;
  s.on('data', (c) => {
    for (let i = 0; i < c.length; i += 1) wake?.();
  });
  for (let i = 0; i < n; i += 1) {
    const back = new Promise((resolve) => (wake = resolve));
    const t0 = performance.now();
    s.write(Buffer.of(i & 0xff));
    await back;
    rtts.push((performance.now() - t0) * 1000);
  }
  s.destroy();
  return rtts;
}

/** As `throughput`, over a raw libp2p stream to the sink protocol (send() and onDrain(), no TCP at either end). */
async function streamThroughput(host, addrs, bytes) {
  const stream = await host.dialProtocol(addrs, RAW_SINK);
  const chunk = new Uint8Array(64 * 1024).fill(0x5a);
  const answer = new Promise((resolve, reject) => {
    const got = [];
    stream.addEventListener('message', (e) => got.push(Buffer.from(e.data.subarray())));
    stream.addEventListener('remoteCloseWrite', () => resolve(Buffer.concat(got)));
    stream.addEventListener('close', (e) => (e.error ? reject(e.error) : resolve(Buffer.concat(got))));
  });
  const t0 = performance.now();
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    if (!stream.send(chunk)) await stream.onDrain();
  }
  await stream.close();
  const counted = await answer;
  const ms = performance.now() - t0;
  if (counted.length !== 8 || Number(counted.readBigUInt64BE()) !== bytes) throw new Error(`the raw sink counted ${counted.length === 8 ? counted.readBigUInt64BE() : '?'} of ${bytes} bytes`);
  return { bytes, ms };
}

/** As `pingPong`, over a raw libp2p stream to the echo protocol. */
async function streamPingPong(host, addrs, n) {
  const stream = await host.dialProtocol(addrs, RAW_ECHO);
  const rtts = [];
  let wake = null;
  stream.addEventListener('message', (e) => {
    for (let i = 0; i < e.data.byteLength; i += 1) wake?.();
  });
  for (let i = 0; i < n; i += 1) {
    const back = new Promise((resolve) => (wake = resolve));
    const t0 = performance.now();
    stream.send(Uint8Array.of(i & 0xff));
    await back;
    rtts.push((performance.now() - t0) * 1000);
  }
  await stream.close();
  return rtts;
}

const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];

// ---------------------------------------------------------------------------------------------- the benchmark

/** Runs `fns` once each, starting at a different one each run `k`, so drift hits every side alike; results in `fns` order. */
async function rotate(k, fns) {
  const out = new Array(fns.length);
  for (let i = 0; i < fns.length; i += 1) {
    const j = (k + i) % fns.length;
    out[j] = await fns[j]();
  }
  return out;
}

const SIDES = ['tunnel', 'direct', 'stream'];

async function benchTunnel() {
  const child = spawnTracked([...(process.env.TUNNEL_BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.TUNNEL_BENCH_PROF}`] : []), SELF, '--target']);
  const host = await newHost();
  const listeners = [];
  try {
    const { value: t } = await jsonLine(child, (m) => m?.ready, 30_000, 'the tunnel target process');
    const addrs = t.addrs.map((a) => multiaddr(a));
    await host.dial(addrs);
    for (const port of ['echo', 'sink']) listeners.push(await openTunnelListener(host, { peer: addrs, target: { deal: DEAL, part: 'svc', port }, log: quiet }));
    const [echoL, sinkL] = listeners;
    const bytes = MIB * 1024 * 1024;
    const send = { tunnel: (n) => throughput(sinkL.port, n), direct: (n) => throughput(t.sink, n), stream: (n) => streamThroughput(host, addrs, n) };
    const ping = { tunnel: (n) => pingPong(echoL.port, n), direct: (n) => pingPong(t.echo, n), stream: (n) => streamPingPong(host, addrs, n) };
    for (const side of SIDES) {
      await send[side](4 * 1024 * 1024); // warm-up: stream negotiation, JIT, yamux windows
      await ping[side](200);
    }
    const rate = Object.fromEntries(SIDES.map((x) => [x, []]));
    const p50 = Object.fromEntries(SIDES.map((x) => [x, []]));
    const all = Object.fromEntries(SIDES.map((x) => [x, []]));
    for (let k = 0; k < RUNS; k += 1) {
      const sent = await rotate(k, SIDES.map((x) => () => send[x](bytes)));
      const pinged = await rotate(k, SIDES.map((x) => () => ping[x](PINGS)));
      SIDES.forEach((x, i) => {
        rate[x].push(sent[i].bytes / (sent[i].ms / 1000) / 1e6);
        p50[x].push(pct(pinged[i], 0.5));
        all[x].push(...pinged[i]);
      });
      note(`run ${k + 1}/${RUNS}: ${SIDES.map((x) => `${x} ${round(rate[x].at(-1), 1)} MB/s, rtt p50 ${round(p50[x].at(-1))} µs`).join('; ')}`);
    }
    const counters = listeners.map((l) => l.counters.view());
    const m = (xs) => median(xs);
    const runs = (xs, d = 0) => xs.map((x) => round(x, d));
    const p99 = (x) => round(pct(all[x], 0.99));
    const tpRow = (id, raw, name, targets) => ({
      id,
      name,
      unit: 'MB/s',
      ours: round(m(rate.tunnel), 1),
      raw: round(m(rate[raw]), 1),
      ratio: round(m(rate.tunnel) / m(rate[raw]), 2),
      targets,
      detail: { bytes, runs: RUNS, oursRuns: runs(rate.tunnel, 1), rawRuns: runs(rate[raw], 1) },
    });
    const rttRow = (id, raw, name, targets) => ({
      id,
      name,
      unit: 'µs',
      lowerIsBetter: true,
      ours: round(m(p50.tunnel)),
      raw: round(m(p50[raw])),
      ratio: round(m(p50.tunnel) / m(p50[raw]), 2),
      targets,
      detail: { pings: PINGS, runs: RUNS, oursRuns: runs(p50.tunnel), rawRuns: runs(p50[raw]), p99: { ours: p99('tunnel'), raw: p99(raw) } },
    });
    const how = '2 processes, the node\'s host: websockets + noise + yamux on loopback';
    return [
      {
        ...tpRow('tunnel-throughput', 'direct', `tunnel throughput: ${MIB} MiB one way to a sink through a /dms/tunnel/1.0.0 tunnel (${how}) vs a direct loopback TCP connection to the same sink`, [{ kind: 'ratio', min: 0.5 }]),
        notes: [`MB/s = 10^6 bytes/s; the tunnel listeners counted ${counters.map((c) => `${c.opened} tunnels, ${c.refusedTotal} refused, ${c.aborted} aborted`).join('; ')}`],
      },
      {
        ...rttRow('tunnel-rtt-p50', 'direct', `tunnel round trip p50: ${PINGS} 1-byte ping-pongs on one connection to an echo server, through the tunnel vs direct`, [{ kind: 'ratio', max: 3 }]),
        notes: [`p99 over all runs: ${p99('tunnel')} µs through the tunnel, ${p99('direct')} µs direct`],
      },
      tpRow('tunnel-vs-stream-throughput', 'stream', `the tunnel's own cost in throughput: the tunnel vs a raw libp2p stream on the same connection (send()/onDrain() to a sink protocol, no TCP at either end)`, []),
      {
        ...rttRow('tunnel-vs-stream-rtt-p50', 'stream', `the tunnel's own cost in round trip p50: the tunnel vs 1-byte ping-pongs on a raw libp2p stream on the same connection`, []),
        notes: [`p99 over all runs: ${p99('tunnel')} µs through the tunnel, ${p99('stream')} µs on the raw stream`],
      },
    ];
  } finally {
    for (const l of listeners) await l.close();
    await host.stop();
    await kill(child, 'SIGTERM'); // it exits on SIGTERM (writing its profile, with TUNNEL_BENCH_PROF)
  }
}

/** [id, fn] pairs for run.mjs; each fn resolves to an array of results. */
export const tunnelBenches = [['tunnel', benchTunnel]];

// ---------------------------------------------------------------------------------------------- standalone

if (process.argv[1] === SELF && process.argv.includes('--target')) {
  await serveTarget();
} else if (process.argv[1] === SELF) {
  const args = process.argv.slice(2);
  const jsonFile = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
  const watchdog = guard(300_000, 'tunnel bench');
  const started = performance.now();
  const loadBefore = os.loadavg()[0];
  const results = [];
  try {
    for (const [id, fn] of tunnelBenches) await step(results, 'bench', id, fn, cleanup);
  } finally {
    await cleanup();
  }
  const report = { ...reportHead('dms-runtime tunnel bench', started), loadAverage1m: loadAverage(loadBefore), ok: results.every((r) => !r.error && r.pass !== false), results };
  const base = (r) => (r.id.startsWith('tunnel-vs-stream') ? 'raw stream' : 'direct');
  const lines = (r) => (r.error ? [] : [`tunnel runs ${r.detail.oursRuns.join(', ')} ${r.unit}; ${base(r)} runs ${r.detail.rawRuns.join(', ')} ${r.unit}`, ...(r.notes ?? [])]);
  process.stdout.write(`\n${table(results, lines)}\n\ntotal ${report.totalSeconds} s on ${report.cpus} cores, Node ${report.node}; 1-minute load average ${report.loadAverage1m.before} before, ${report.loadAverage1m.after} after\n`);
  if (jsonFile) await writeFile(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  clearTimeout(watchdog);
  process.exit(results.some((r) => r.error) ? 1 : 0);
}
