/**
 * The node as a graph vertex: its edges are live connections with their measured RTT. The topology joins our
 * edges with those our neighbours report, and is exported as JSON or as Graphviz DOT.
 */

export interface PeerView {
  readonly peer: string;
  /** The connection's remote address, and the addresses the peer announced. */
  readonly remoteAddr: string;
  readonly addrs: readonly string[];
  readonly direction: 'inbound' | 'outbound';
  /** Smoothed round-trip time in ms, null until measured. */
  readonly rttMs: number | null;
  /** Whether the peer speaks the DMS actor protocol (a DMS node) or is some other libp2p peer. */
  readonly dms: boolean;
  readonly connectedAt: string;
}

export interface Edge {
  readonly from: string;
  readonly to: string;
  readonly rttMs: number | null;
}

export interface Topology {
  readonly vertex: { readonly peer: string; readonly did: string; readonly addrs: readonly string[] };
  readonly vertices: readonly string[];
  readonly edges: readonly Edge[];
}

/** Undirected edges, each once; where both ends measured, the smaller RTT wins. */
export function buildTopology(vertex: Topology['vertex'], edges: readonly Edge[]): Topology {
  const byPair = new Map<string, Edge>();
  for (const e of edges) {
    if (e.from === e.to) continue;
    const [a, b] = e.from < e.to ? [e.from, e.to] : [e.to, e.from];
    const key = `${a} ${b}`;
    const prev = byPair.get(key);
    const rtt = prev?.rttMs == null ? e.rttMs : e.rttMs == null ? prev.rttMs : Math.min(prev.rttMs, e.rttMs);
    byPair.set(key, { from: a, to: b, rttMs: rtt });
  }
  const vertices = new Set<string>([vertex.peer]);
  for (const e of byPair.values()) vertices.add(e.from).add(e.to);
  return { vertex, vertices: [...vertices].sort(), edges: [...byPair.values()].sort((x, y) => (x.from + x.to).localeCompare(y.from + y.to)) };
}

const short = (peer: string) => (peer.length > 16 ? `${peer.slice(0, 8)}…${peer.slice(-6)}` : peer);

/** Graphviz DOT of the topology: this node drawn bold, edges labelled with their RTT. */
export function topologyToDot(t: Topology): string {
  const lines = ['graph dms {', '  node [shape=box, fontname="monospace"];'];
  for (const v of t.vertices) lines.push(`  "${v}" [label="${short(v)}"${v === t.vertex.peer ? ', style=bold' : ''}];`);
  for (const e of t.edges) lines.push(`  "${e.from}" -- "${e.to}" [label="${e.rttMs == null ? '?' : `${e.rttMs.toFixed(2)} ms`}"];`);
  lines.push('}');
  return `${lines.join('\n')}\n`;
}
