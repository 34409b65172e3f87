/**
 * Human-readable output of the CLI: `info` (with its network lines), `peers`, `topology`, `ping`, `onboard`,
 * `allocations`, the ready line of `run` and the final state of `replay`. The JSON forms are the API's answers
 * as they are. (The deal commands format their jobs in deal-commands.ts.)
 */
import { formatBytes } from '../../machines/capability.ts';
import type { ReadyInfo } from '../node/node-service.ts';
import type { ReplayResult } from './replay.ts';

/** One row of the capability table of `info`, and the answer of `onboard`. */
export type CapRow = { cpu: number; memory: number; disk: number; gpus: unknown[]; executors: string[] };

interface PeerRow {
  peer: string;
  remoteAddr: string;
  direction: string;
  rttMs: number | null;
  dms: boolean;
}

/** One allocation as `GET /v1/allocations` lists it. */
export interface AllocationRow {
  id: string;
  lockId: string;
  resources: { cpu: number; memory: number; disk: number };
  createdAt: number;
  endedAt: number | null;
}

const ms = (v: number | null | undefined) => (v == null ? '-' : `${v.toFixed(2)} ms`);

export function formatInfo(info: Record<string, unknown>): string {
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
    ...formatDisk(info),
    `capability     cpu      memory        disk  gpus  executors`,
    ...rows,
  ].join('\n');
}

/** The line `info` shows about the data dir's disk: its free space, the minimum, and whether new work is taken. */
function formatDisk(info: Record<string, unknown>): string[] {
  const m = info.monitoring as { sample?: { diskFree: number } | null; diskFull?: boolean; minFreeDisk?: number | null } | undefined;
  if (!m?.sample) return [];
  const min = m.minFreeDisk == null ? '' : `, keeps ${formatBytes(m.minFreeDisk)} free`;
  const state = m.diskFull ? 'FULL: declining new work (disk-full) until space returns; running jobs go on' : 'taking new work';
  return [`disk     ${formatBytes(m.sample.diskFree)} free${min}: ${state}`];
}

/** The lines `info` shows about the network: listen addresses and message counters. */
export function formatNetInfo(info: Record<string, unknown>): string[] {
  const listen = (info.listen as string[] | undefined) ?? [];
  const m = info.messages as { in: number; out: number; broadcastIn: number; broadcastOut: number; rejected: Record<string, number>; rejectedTotal: number } | null | undefined;
  const lines = listen.length === 0 ? ['listen   (none)'] : listen.map((a, i) => `${i === 0 ? 'listen ' : '       '}  ${a}`);
  const r = info.reach as { connected: number; subscribed: number; beyond: number } | null | undefined;
  if (r) lines.push(`reach    ${r.connected} DMS peers connected, ${r.subscribed} subscribed to bid requests, ${r.beyond} more beyond them (through the gossip mesh)`);
  if (m) {
    const reasons = Object.entries(m.rejected).map(([k, v]) => `${k} ${v}`).join(', ');
    lines.push(`messages in ${m.in}, out ${m.out}, broadcast in ${m.broadcastIn}, out ${m.broadcastOut}, rejected ${m.rejectedTotal}${reasons ? ` (${reasons})` : ''}`);
  }
  return lines;
}

export function formatPeers(peers: readonly PeerRow[]): string {
  if (peers.length === 0) return 'no peers connected';
  const rows = peers.map((p) => `${p.peer}  ${ms(p.rttMs).padStart(10)}  ${p.direction.padEnd(8)}  ${p.dms ? 'dms ' : 'other'}  ${p.remoteAddr}`);
  return [`${'peer'.padEnd(peers[0]!.peer.length)}  ${'rtt'.padStart(10)}  ${'dir'.padEnd(8)}  kind   address`, ...rows].join('\n');
}

export function formatTopology(t: { vertex: { peer: string } | null; vertices: string[]; edges: { from: string; to: string; rttMs: number | null }[] }): string {
  if (!t.vertex) return 'the network is not running';
  return [`${t.vertices.length} nodes, ${t.edges.length} edges (this node: ${t.vertex.peer})`, ...t.edges.map((e) => `  ${e.from} -- ${e.to}  ${ms(e.rttMs)}`)].join('\n');
}

export function formatPing(r: { peer: string; count: number; minMs: number; p50Ms: number; maxMs: number }): string {
  return `${r.count} signed round trips to ${r.peer}: min ${ms(r.minMs)}, median ${ms(r.p50Ms)}, max ${ms(r.maxMs)}`;
}

export function formatOnboarded(cap: CapRow): string {
  return `onboarded: cpu ${cap.cpu}, memory ${formatBytes(cap.memory)}, disk ${formatBytes(cap.disk)}, executors ${cap.executors.join(',')}`;
}

export function formatAllocations(list: readonly AllocationRow[]): string {
  return list.length === 0
    ? 'no allocations yet'
    : list.map((a) => `${a.id.padEnd(24)} cpu ${a.resources.cpu}  memory ${formatBytes(a.resources.memory)}  disk ${formatBytes(a.resources.disk)}  ${new Date(a.createdAt).toISOString()}  ${a.endedAt === null ? 'running' : `ended ${new Date(a.endedAt).toISOString()}`}`).join('\n');
}

/** The line `run` prints once the node serves. */
export function formatReady(ready: ReadyInfo): string {
  const rec = ready.recovered;
  const recovered = rec ? `  recovered: snapshot at seq ${rec.snapshotSeq} + ${rec.replayed} events replayed in ${rec.ms} ms` : '';
  return `DMS node ready  peerId=${ready.peerId}  api=${ready.api ?? 'off'}  state=${ready.state}  data=${ready.dataDir}  (${ready.startMs} ms)${recovered}`;
}

/** What `replay` prints after the timeline: how far it got and the actor's final state. */
export function formatReplay(actor: string, r: ReplayResult): string {
  return [
    ...(r.history ? [`${r.history.note}${r.history.fromSeq > 0 ? ` (${actor} from its snapshot at seq ${r.history.fromSeq})` : ''}`] : []),
    `replayed ${r.events} events of ${actor} up to seq ${r.lastSeq} in ${r.ms} ms`,
    ...(r.failed ? [`the actor failed at seq ${r.failed.seq}: ${r.failed.message} (the live node dropped that event)`] : []),
    `state    ${typeof r.state === 'string' ? r.state : JSON.stringify(r.state)}`,
    `context  ${JSON.stringify(r.context, null, 2).replace(/\n/g, '\n         ')}`,
  ].join('\n');
}
