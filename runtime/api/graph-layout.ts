/**
 * Graphs the dashboard draws, laid out here on the node with elkjs (no browser library, nothing fetched): each
 * actor kind's statechart, read from its machine definition (states, nested states, transitions with their event
 * names), and the peer topology with RTT on its edges. The page gets absolute coordinates and only draws SVG.
 *
 * A statechart's layout does not change while the node runs (the machine is this build's), so it is laid out once
 * per kind and kept. Loaded on the first dashboard request only: elkjs costs ~1.6 MB of code.
 */
import type { ElkExtendedEdge, ElkNode } from 'elkjs/lib/elk-api.js';
import type { Topology } from '../net/topology.ts';

/** A state or a peer, placed: x/y are absolute (top-left), in px. */
export interface PlacedNode {
  readonly id: string;
  readonly label: string;
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
  /** 'atomic' | 'compound' | 'parallel' | 'final' | 'history' for states; 'self' | 'peer' for peers. */
  readonly type: string;
  /** The state's path in the machine, as in a snapshot's value (`provisioning.starting`); the peer id for peers. */
  readonly path: string;
  readonly initial?: boolean;
}

export interface PlacedEdge {
  readonly id: string;
  readonly from: string;
  readonly to: string;
  readonly label: string;
  /** Every event that takes this transition (the label names the first). */
  readonly events: readonly string[];
  readonly points: readonly { readonly x: number; readonly y: number }[];
  readonly labelAt?: { readonly x: number; readonly y: number };
}

export interface PlacedGraph {
  readonly width: number;
  readonly height: number;
  readonly nodes: readonly PlacedNode[];
  readonly edges: readonly PlacedEdge[];
}

/** The parts of an XState 5 StateNode this reads. */
interface StateNodeLike {
  readonly id: string;
  readonly key: string;
  readonly type: string;
  readonly path: readonly string[];
  readonly states: Readonly<Record<string, StateNodeLike>>;
  readonly initial?: { readonly target: readonly StateNodeLike[] } | undefined;
  readonly transitions: ReadonlyMap<string, readonly { readonly target?: readonly StateNodeLike[] | undefined; readonly eventType: string }[]>;
  readonly always?: readonly { readonly target?: readonly StateNodeLike[] | undefined }[] | undefined;
}

const CHAR_PX = 7;
const LABEL_H = 14;

type Elk = { layout(graph: ElkNode): Promise<ElkNode> };
let elk: Promise<Elk> | undefined;
function layoutEngine(): Promise<Elk> {
  elk ??= import('elkjs/lib/elk.bundled.js').then((m) => {
    const ELK = (m as unknown as { default: new () => Elk }).default;
    return new ELK();
  });
  return elk;
}

/** A short event name for a transition label: XState's delayed events (`xstate.after.500.x`) read as `after 500ms`. */
function eventLabel(type: string): string {
  const after = /^xstate\.after\.(\d+)\./.exec(type);
  if (after) return `after ${after[1]}ms`;
  if (type.startsWith('xstate.done.state.')) return 'done';
  return type;
}

/** The states and transitions of a machine, as an ELK graph (compound states hold their children). */
export function statechartGraph(root: StateNodeLike): ElkNode {
  const edges: ElkExtendedEdge[] = [];
  const pathOf = (n: StateNodeLike) => n.path.join('.');
  const toNode = (n: StateNodeLike, initial: boolean): ElkNode => {
    const children = Object.values(n.states);
    const init = n.initial?.target[0];
    const label = n.key + (n.type === 'final' ? ' ✓' : '');
    const targets = new Map<string, Set<string>>(); // target id -> event labels (one edge per pair, events joined)
    for (const [type, list] of n.transitions) {
      for (const t of list) for (const target of t.target ?? []) (targets.get(target.id) ?? targets.set(target.id, new Set()).get(target.id)!).add(eventLabel(type));
    }
    for (const t of n.always ?? []) for (const target of t.target ?? []) (targets.get(target.id) ?? targets.set(target.id, new Set()).get(target.id)!).add('always');
    for (const [target, events] of targets) {
      // the machine itself is the drawing, not a box in it: what its root does in any state is not an edge
      if (n.id === root.id || target === root.id) continue;
      if (target === n.id && children.length > 0) continue; // a compound state's self-loop resets it: drawn as a note, not a loop
      // the drawing names one event (and how many more); the full list is the edge's tooltip
      const all = [...events];
      const text = all[0]! + (all.length > 1 ? ` +${all.length - 1}` : '');
      const edge: ElkExtendedEdge & { dms?: object } = { id: `${n.id}->${target}`, sources: [n.id], targets: [target], labels: [{ text, width: text.length * CHAR_PX * 0.8, height: LABEL_H }] };
      edge.dms = { events: all };
      edges.push(edge);
    }
    const node: ElkNode & { dms?: object } = {
      id: n.id,
      labels: [{ text: label, width: label.length * CHAR_PX + 8, height: LABEL_H }],
      ...(children.length === 0 ? { width: Math.max(60, label.length * CHAR_PX + 24), height: 32 } : {}),
      children: children.map((c) => toNode(c, c === init)),
      layoutOptions: children.length ? { 'elk.padding': '[top=26,left=12,bottom=12,right=12]', 'elk.nodeLabels.placement': 'INSIDE V_TOP H_LEFT' } : {},
    };
    node.dms = { path: pathOf(n), type: n.type, initial };
    return node;
  };
  const top = toNode(root, true);
  return {
    id: '__root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.layered.spacing.nodeNodeBetweenLayers': '24',
      'elk.spacing.nodeNode': '22',
      'elk.spacing.edgeLabel': '2',
      'elk.edgeLabels.inline': 'true',
      'elk.layered.mergeEdges': 'false',
    },
    children: top.children ?? [],
    edges,
  };
}

/** The topology as an ELK graph: this node and its peers, edges labelled with their RTT. */
export function topologyGraph(t: Topology): ElkNode {
  const short = (p: string) => `…${p.slice(-6)}`;
  return {
    id: '__root',
    layoutOptions: { 'elk.algorithm': 'stress', 'elk.stress.desiredEdgeLength': '140' },
    children: t.vertices.map((v) => {
      const node: ElkNode & { dms?: object } = { id: v, width: 80, height: 32, labels: [{ text: short(v), width: 60, height: LABEL_H }] };
      node.dms = { path: v, type: v === t.vertex.peer ? 'self' : 'peer' };
      return node;
    }),
    edges: t.edges.map((e, i) => {
      const text = e.rttMs === null ? '' : `${e.rttMs < 10 ? e.rttMs.toFixed(1) : Math.round(e.rttMs)} ms`;
      return { id: `e${i}`, sources: [e.from], targets: [e.to], labels: [{ text, width: text.length * CHAR_PX, height: LABEL_H }] };
    }),
  };
}

/** Lays a graph out and flattens it to absolute coordinates. */
export async function place(graph: ElkNode): Promise<PlacedGraph> {
  const out = await (await layoutEngine()).layout(graph);
  const nodes: PlacedNode[] = [];
  const offsets = new Map<string, { x: number; y: number }>();
  const walk = (n: ElkNode, ox: number, oy: number) => {
    for (const c of n.children ?? []) {
      const x = ox + (c.x ?? 0);
      const y = oy + (c.y ?? 0);
      offsets.set(c.id, { x, y });
      const meta = (c as { dms?: { path: string; type: string; initial?: boolean } }).dms;
      nodes.push({ id: c.id, label: c.labels?.[0]?.text ?? c.id, x, y, w: c.width ?? 0, h: c.height ?? 0, type: meta?.type ?? 'atomic', path: meta?.path ?? c.id, ...(meta?.initial ? { initial: true } : {}) });
      walk(c, x, y);
    }
  };
  walk(out, 0, 0);
  const edges: PlacedEdge[] = [];
  const collect = (n: ElkNode) => {
    // with INCLUDE_CHILDREN, an edge's coordinates are relative to its container (ELK's `container` property)
    for (const e of (n.edges ?? []) as (ElkExtendedEdge & { container?: string })[]) {
      const o = e.container && e.container !== '__root' ? offsets.get(e.container) ?? { x: 0, y: 0 } : { x: 0, y: 0 };
      const s = e.sections?.[0];
      const points = s ? [s.startPoint, ...(s.bendPoints ?? []), s.endPoint].map((p) => ({ x: p.x + o.x, y: p.y + o.y })) : [];
      const l = e.labels?.[0];
      edges.push({
        id: e.id,
        from: e.sources[0]!,
        to: e.targets[0]!,
        label: l?.text ?? '',
        events: (e as { dms?: { events: string[] } }).dms?.events ?? [],
        points,
        ...(l && l.x !== undefined && l.y !== undefined ? { labelAt: { x: l.x + o.x, y: l.y + o.y } } : {}),
      });
    }
    for (const c of n.children ?? []) collect(c);
  };
  collect(out);
  return { width: Math.ceil(out.width ?? 0), height: Math.ceil(out.height ?? 0), nodes, edges };
}

const charts = new Map<string, Promise<PlacedGraph>>();

/** The laid-out statechart of an actor kind's machine (laid out once per kind). */
export function statechartOf(kind: string, root: StateNodeLike): Promise<PlacedGraph> {
  let p = charts.get(kind);
  if (!p) {
    p = place(statechartGraph(root));
    p.catch(() => charts.delete(kind));
    charts.set(kind, p);
  }
  return p;
}
