import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildTopology, topologyToDot } from '../../../runtime/net/topology.ts';

const Topo = suite('topology: the node as a vertex, connections as edges');
const vertex = { peer: 'A', did: 'did:key:zA', addrs: ['/ip4/127.0.0.1/tcp/1/ws/p2p/A'] };

Topo('an edge reported from both ends appears once, with the smaller RTT; self-loops are dropped', () => {
  const t = buildTopology(vertex, [
    { from: 'A', to: 'B', rttMs: 2 },
    { from: 'B', to: 'A', rttMs: 1.5 },
    { from: 'B', to: 'C', rttMs: null },
    { from: 'C', to: 'B', rttMs: 3 },
    { from: 'C', to: 'C', rttMs: 0 },
  ]);
  assert.equal(t.vertices, ['A', 'B', 'C']);
  assert.equal(t.edges, [
    { from: 'A', to: 'B', rttMs: 1.5 },
    { from: 'B', to: 'C', rttMs: 3 },
  ]);
});

Topo('a lone node is a graph of one vertex', () => {
  const t = buildTopology(vertex, []);
  assert.equal(t.vertices, ['A']);
  assert.equal(t.edges, []);
});

Topo('DOT: an undirected graph, this node bold, edges labelled with RTT or "?"', () => {
  const dot = topologyToDot(buildTopology(vertex, [{ from: 'A', to: 'B', rttMs: 0.4567 }, { from: 'B', to: 'C', rttMs: null }]));
  assert.match(dot, /^graph dms \{/);
  assert.match(dot, /"A" \[label="A", style=bold\];/);
  assert.match(dot, /"A" -- "B" \[label="0\.46 ms"\];/);
  assert.match(dot, /"B" -- "C" \[label="\?"\];/);
  assert.ok(dot.trimEnd().endsWith('}'));
});

Topo.run();
