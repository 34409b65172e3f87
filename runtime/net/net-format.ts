/**
 * Human-readable output of the network commands (`peers`, `topology`, `ping`) and of the network lines
 * of `info`. The JSON forms are the API's answers as they are.
 */

interface PeerRow {
  peer: string;
  remoteAddr: string;
  direction: string;
  rttMs: number | null;
  dms: boolean;
}

const ms = (v: number | null | undefined) => (v == null ? '-' : `${v.toFixed(2)} ms`);

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
