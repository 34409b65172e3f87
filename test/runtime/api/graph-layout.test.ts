/**
 * The dashboard's graphs: an actor kind's statechart read from its machine (every state, nested ones inside their
 * parents, transitions labelled with their events) and the topology, laid out by elkjs into absolute coordinates.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { setup } from 'xstate';
import { ACTOR_KINDS } from '../../../actors/kinds.ts';
import { place, statechartGraph, statechartOf, topologyGraph } from '../../../runtime/api/graph-layout.ts';

const test = suite('dashboard: graph layout');

type Root = Parameters<typeof statechartGraph>[0];
const rootOf = (m: unknown) => (m as { root: Root }).root;

test('a machine\'s states and transitions, nested states inside their parents', async () => {
  const m = setup({}).createMachine({
    id: 'm',
    initial: 'idle',
    states: {
      idle: { on: { go: 'busy', 'go.fast': 'busy' } },
      busy: { initial: 'a', states: { a: { after: { 500: 'b' } }, b: { always: '#m.done' } } },
      done: { type: 'final' },
    },
  });
  const g = await place(statechartGraph(rootOf(m)));
  const byPath = new Map(g.nodes.map((n) => [n.path, n]));
  assert.equal([...byPath.keys()].sort(), ['busy', 'busy.a', 'busy.b', 'done', 'idle']);
  assert.ok(byPath.get('idle')!.initial && byPath.get('busy.a')!.initial, 'initial states marked');
  assert.is(byPath.get('done')!.type, 'final');
  const busy = byPath.get('busy')!;
  const a = byPath.get('busy.a')!;
  assert.ok(a.x >= busy.x && a.y >= busy.y && a.x + a.w <= busy.x + busy.w && a.y + a.h <= busy.y + busy.h, 'busy.a is drawn inside busy');
  const idleToBusy = g.edges.find((e) => e.from === 'm.idle' && e.to === 'm.busy')!;
  assert.equal([...idleToBusy.events].sort(), ['go', 'go.fast'], 'one edge per pair, every event on it');
  assert.is(idleToBusy.label, 'go +1');
  assert.ok(idleToBusy.points.length >= 2);
  assert.ok(g.edges.some((e) => e.from === 'm.busy.a' && e.to === 'm.busy.b' && e.label === 'after 500ms'));
  assert.ok(g.edges.some((e) => e.from === 'm.busy.b' && e.to === 'm.done' && e.label === 'always'));
  assert.ok(g.width > 0 && g.height > 0);
});

test('every actor kind of this build lays out, each state once', async () => {
  for (const [kind, k] of ACTOR_KINDS) {
    const g = await statechartOf(kind, rootOf(k.logic));
    assert.is(new Set(g.nodes.map((n) => n.path)).size, g.nodes.length, `${kind}: paths unique`);
    if (kind === 'trust') continue; // a record keeper: one state, no transitions between states
    assert.ok(g.nodes.length >= 3, `${kind}: ${g.nodes.length} states`);
    assert.ok(g.edges.length >= 2, `${kind}: transitions`);
  }
  const req = await statechartOf('requester', rootOf(ACTOR_KINDS.get('requester')!.logic));
  for (const p of ['idle', 'requesting.waiting', 'running', 'ended.completed']) assert.ok(req.nodes.some((n) => n.path === p), p);
});

test('the topology: this node, its peers, RTT on the edges', async () => {
  const g = await place(topologyGraph({ vertex: { peer: 'A', did: 'd', addrs: [] }, vertices: ['A', 'B', 'C'], edges: [{ from: 'A', to: 'B', rttMs: 1.234 }, { from: 'A', to: 'C', rttMs: null }] }));
  assert.equal(g.nodes.map((n) => `${n.path}:${n.type}`).sort(), ['A:self', 'B:peer', 'C:peer']);
  assert.equal(g.edges.map((e) => e.label).sort(), ['', '1.2 ms']);
});

test.run();
