// The ensemble actor (machines/ensemble.machine.ts): all-or-nothing placement, start in dependency order once
// dependencies are running and healthy, restarts and moves counted against maxRestarts, and how it ends.
import * as assert from 'uvu/assert';
import type { EnsembleContext, EnsembleMachine } from '../../machines/ensemble.machine.ts';
import { ensembleMachine } from '../../machines/ensemble.machine.ts';
import type { EnsembleEvent, EnsembleInput, EnsembleIntent } from '../../machines/ensemble.messages.ts';
import { parsePartDealId, partDealId } from '../../machines/ensemble.messages.ts';
import type { EnsembleSpec } from '../../machines/ensemble.ts';
import type { JobState, PartUpdate } from '../../machines/requester.messages.ts';
import { ensemble, kvDemo, PEER_A, PEER_B, service, task } from '../fixtures/ensemble-fixtures.ts';
import { type Harness as H, machineHarness } from '../fixtures/machine-harness.ts';

const T0 = 1_700_000_000_000;
const ID = 'ens1';
const input = (spec: EnsembleSpec): EnsembleInput => ({ ensembleId: ID, spec, self: 'me', createdAt: T0, deadline: T0 + 60_000 });

type Harness = H<EnsembleMachine, EnsembleIntent>;
const kv = machineHarness<EnsembleMachine, EnsembleEvent, EnsembleIntent>(ensembleMachine, input(kvDemo()));
const ctx = (h: Harness): EnsembleContext => h.actor.getSnapshot().context;
const rec = (h: Harness) => ctx(h).record;
const part = (h: Harness, name: string) => rec(h).parts.find((p) => p.name === name)!;

let clock = T0;
const at = () => (clock += 10);
const update = (name: string, state: JobState, over: Partial<PartUpdate> = {}): EnsembleEvent => ({
  type: 'part.update',
  now: at(),
  update: { part: name, dealId: partDealId(ID, name), state, provider: PEER_A, nonce: 1, allocationId: null, exitCode: null, message: state, ...over },
});
const running = (name: string, provider: string, healthy?: boolean, restarts = 0): EnsembleEvent =>
  update(name, 'running', { provider, allocationId: `${name}.1@me`, allocation: { state: 'running', ...(healthy === undefined ? {} : { healthy }), restarts } });

function start(h: Harness): EnsembleIntent[] {
  clock = T0;
  return kv.send(h, { type: 'deal.start', now: T0 });
}

/** kv placed on A, client on B, both allocated. */
function placeKv(h: Harness): void {
  start(h);
  kv.send(h, update('kv', 'placed', { provider: PEER_A }));
  kv.send(h, update('client', 'placed', { provider: PEER_B }));
  kv.send(h, update('kv', 'provisioning', { provider: PEER_A, allocationId: 'kv.1@me', allocation: { state: 'starting' } }));
  kv.send(h, update('client', 'provisioning', { provider: PEER_B, allocationId: 'client.1@me', allocation: { state: 'pending' } }));
}

const Placing = kv.behaviour('ensemble: every part placed before any is allocated');

Placing('start spawns one negotiation per part, each a job with its role; the life and placement timers are set', (h) => {
  const out = start(h);
  const spawn = kv.ofType(out, 'parts.spawn')[0]!;
  assert.equal(spawn.parts.map((p) => p.dealId), [partDealId(ID, 'kv'), partDealId(ID, 'client')]);
  const kvJob = spawn.parts[0]!.job;
  assert.equal(kvJob.part, { ensemble: ID, name: 'kv', type: 'service', ports: ['http'], restart: 'on-failure', healthcheck: { http: { port: 'http', path: '/health' }, intervalMs: 1000, retries: 3 }, dependsOn: [], maxRestarts: { count: 5, withinMs: 60_000 } });
  assert.equal(spawn.parts[1]!.job.part?.dependsOn, ['kv']);
  assert.equal(kv.ofType(out, 'timer.schedule').map((t) => [t.key, t.at]), [['placement', T0 + 60_000], ['life', T0 + 600_000]]);
  assert.is(rec(h).state, 'requesting');
});

Placing('one part placed is not enough; once both are, both are told to allocate with who runs what', (h) => {
  start(h);
  assert.equal(kv.types(kv.send(h, update('kv', 'placed', { provider: PEER_A }))).filter((t) => t === 'part.allocate'), []);
  const out = kv.send(h, update('client', 'placed', { provider: PEER_B }));
  const go = kv.ofType(out, 'part.allocate');
  assert.equal(go.map((g) => g.dealId), [partDealId(ID, 'kv'), partDealId(ID, 'client')]);
  assert.equal(go[0]!.members, [{ part: 'kv', provider: PEER_A }, { part: 'client', provider: PEER_B }]);
  assert.equal(kv.ofType(out, 'timer.cancel').map((t) => t.key), ['placement']);
  // a repeat of the same placement is not told again
  assert.equal(kv.ofType(kv.send(h, update('kv', 'placed', { provider: PEER_A, message: 'again' })), 'part.allocate'), []);
});

Placing('a part that can never be placed fails the ensemble and stops every other part', (h) => {
  start(h);
  kv.send(h, update('kv', 'placed', { provider: PEER_A }));
  const out = kv.send(h, update('client', 'failed', { provider: null, message: 'no provider can take this job: too-large' }));
  assert.equal(kv.ofType(out, 'part.cancel').map((c) => c.dealId), [partDealId(ID, 'kv')], 'the placed part lets its provider go');
  assert.is(rec(h).state, 'stopping');
  assert.match(rec(h).message, /part client failed: no provider can take this job/);
  const end = kv.send(h, update('kv', 'cancelled'));
  assert.equal(kv.types(end).filter((t) => t === 'ensemble.ended'), ['ensemble.ended']);
  assert.is(rec(h).state, 'failed');
  assert.equal(h.actor.getSnapshot().value, { ended: 'done' });
});

Placing('the placement deadline with a part unplaced fails the ensemble', (h) => {
  start(h);
  kv.send(h, update('kv', 'placed'));
  const out = kv.send(h, { type: 'timer.fired', key: 'placement', now: T0 + 60_000 });
  assert.equal(kv.ofType(out, 'part.cancel').length, 2);
  assert.match(ctx(h).failure ?? '', /not every part was placed/);
});

const Starting = kv.behaviour('ensemble: a part starts once what it depends on runs and is healthy');

Starting('the client is started only when kv runs AND passes its health check, with the address of its port', (h) => {
  placeKv(h);
  assert.equal(kv.ofType(kv.send(h, running('kv', PEER_A)), 'part.start.send'), [], 'running, health not known yet');
  assert.equal(kv.ofType(kv.send(h, running('kv', PEER_A, false)), 'part.start.send'), [], 'running, unhealthy');
  const out = kv.send(h, running('kv', PEER_A, true));
  const [go] = kv.ofType(out, 'part.start.send');
  assert.ok(go);
  assert.equal(go, { type: 'part.start.send', to: PEER_B, dealId: partDealId(ID, 'client'), nonce: 1, addrs: [{ part: 'kv', port: 'http', provider: PEER_A }], members: [{ part: 'kv', provider: PEER_A }, { part: 'client', provider: PEER_B }] });
  assert.equal(kv.ofType(kv.send(h, running('kv', PEER_A, true)), 'part.start.send'), [], 'sent once');
  assert.is(part(h, 'kv').state, 'running');
  assert.is(part(h, 'kv').healthy, true);
  assert.is(part(h, 'client').state, 'starting');
  assert.is(rec(h).state, 'starting');
});

Starting('up: every task ended or every part running healthy; the task completing leaves the service running', (h) => {
  placeKv(h);
  kv.send(h, running('kv', PEER_A, true));
  kv.send(h, running('client', PEER_B));
  assert.is(rec(h).state, 'running');
  assert.ok(rec(h).startedAt !== null);
  kv.send(h, update('client', 'completed', { provider: PEER_B, exitCode: 0, allocationId: 'client.1@me' }));
  assert.is(part(h, 'client').state, 'completed');
  assert.is(rec(h).state, 'running', 'a service still runs');
  // its timeout stops the service; the ensemble completes
  const out = kv.send(h, { type: 'timer.fired', key: 'life', now: T0 + 600_000 });
  assert.equal(kv.ofType(out, 'part.cancel').map((c) => c.dealId), [partDealId(ID, 'kv')]);
  kv.send(h, update('kv', 'cancelled', { provider: PEER_A }));
  assert.is(rec(h).state, 'completed');
  assert.is(part(h, 'kv').state, 'terminated');
});

Starting('a task whose allocation completed shows completed at once (its negotiation ends just after)', (h) => {
  placeKv(h);
  kv.send(h, running('kv', PEER_A, true));
  kv.send(h, running('client', PEER_B));
  const before = rec(h).history.length;
  kv.send(h, update('client', 'running', { provider: PEER_B, allocationId: 'client.1@me', allocation: { state: 'completed' } }));
  assert.is(part(h, 'client').state, 'completed');
  assert.is(rec(h).state, 'running', 'no flicker back to starting');
  assert.equal(rec(h).history.slice(before).map((x) => x.state), ['running'], 'no starting entry in between');
});

Starting('a dependency that moves to another provider has its dependents told its new address', (h) => {
  placeKv(h);
  kv.send(h, running('kv', PEER_A, true));
  kv.send(h, update('kv', 'requesting', { provider: null, allocationId: null, message: 'lost; asking again' }));
  assert.is(part(h, 'kv').state, 'restarting');
  kv.send(h, update('kv', 'provisioning', { provider: 'PEER_C', nonce: 2, allocationId: 'kv.2@me', allocation: { state: 'starting' } }));
  const out = kv.send(h, update('kv', 'running', { provider: 'PEER_C', nonce: 2, allocationId: 'kv.2@me', allocation: { state: 'running', healthy: true } }));
  const [go] = kv.ofType(out, 'part.start.send');
  assert.equal(go?.addrs, [{ part: 'kv', port: 'http', provider: 'PEER_C' }]);
  assert.is(rec(h).restarts, 1, 'the move counts as a restart');
  assert.is(part(h, 'kv').restarts, 1);
});

const Ending = kv.behaviour('ensemble: restarts, cancel and the end');

Ending('restarts the providers report count against maxRestarts; past it the ensemble fails', (h) => {
  placeKv(h);
  kv.send(h, running('kv', PEER_A, true, 0));
  kv.send(h, running('kv', PEER_A, true, 5));
  assert.is(rec(h).restarts, 5);
  assert.is(ctx(h).failure, null, '5 within 60 s is the limit, not past it');
  kv.send(h, running('kv', PEER_A, true, 6));
  assert.match(ctx(h).failure ?? '', /more than 5 restarts within 60 s/);
  assert.is(rec(h).state, 'stopping');
});

Ending('cancel stops every part, answers once they ended, and the ensemble is cancelled', (h) => {
  placeKv(h);
  const out = kv.send(h, { type: 'job.cancel', replyTo: 'r1', now: at() });
  assert.equal(kv.ofType(out, 'part.cancel').length, 2);
  kv.send(h, update('kv', 'cancelled'));
  const end = kv.send(h, update('client', 'cancelled', { provider: PEER_B }));
  assert.equal(kv.types(end).filter((t) => t === 'reply.send' || t === 'ensemble.ended'), ['ensemble.ended', 'reply.send']);
  assert.is(rec(h).state, 'cancelled');
  assert.ok(rec(h).endedAt !== null);
});

Ending('recovered while stopping: the parts not yet ended are told to stop again (the first cancels died with the node)', (h) => {
  placeKv(h);
  kv.send(h, { type: 'job.cancel', now: at() });
  kv.send(h, update('kv', 'cancelled'));
  const out = kv.send(h, { type: 'deal.recovered', now: at() });
  assert.equal(kv.ofType(out, 'part.cancel').map((c) => c.dealId), [partDealId(ID, 'client')]);
  assert.equal(kv.ofType(out, 'timer.schedule').map((t) => t.key), ['stop']);
  assert.is(rec(h).state, 'stopping');
});

Ending('a part that never reports does not hold a stopping ensemble forever', (h) => {
  start(h);
  kv.send(h, update('kv', 'placed'));
  kv.send(h, { type: 'job.cancel', now: at() });
  kv.send(h, { type: 'timer.fired', key: 'stop', now: clock + 30_000 });
  assert.is(rec(h).state, 'cancelled');
});

Ending('one_for_one: a part that ran and failed for good is started again as a new negotiation; the others run on', (h) => {
  placeKv(h);
  kv.send(h, running('kv', PEER_A, true));
  kv.send(h, running('client', PEER_B));
  const out = kv.send(h, update('kv', 'failed', { provider: PEER_A, allocationId: 'kv.1@me', exitCode: 1, message: 'exited with code 1' }));
  const [spawn] = kv.ofType(out, 'parts.spawn');
  assert.equal(spawn?.parts.map((p) => p.dealId), [partDealId(ID, 'kv', 1)]);
  assert.equal(kv.ofType(out, 'part.cancel'), [], 'the client is not touched');
  assert.is(ctx(h).failure, null);
  assert.is(part(h, 'kv').state, 'restarting');
  assert.is(part(h, 'kv').restarts, 1);
  assert.is(part(h, 'kv').dealId, partDealId(ID, 'kv', 1));
  assert.match(JSON.stringify(rec(h).history), /part kv failed \(exited with code 1\); starting kv again \(recovery one_for_one\)/);
  // the old negotiation's updates are stale
  kv.send(h, update('kv', 'running', { provider: PEER_A, allocationId: 'kv.1@me', allocation: { state: 'running', healthy: true } }));
  assert.is(part(h, 'kv').state, 'restarting');
  // the new one is placed, allocated with the others' providers, and the client told where kv runs now
  const placed = kv.send(h, update('kv', 'placed', { dealId: partDealId(ID, 'kv', 1), provider: 'PEER_C', nonce: 1 }));
  assert.equal(kv.ofType(placed, 'part.allocate').map((a) => a.dealId), [partDealId(ID, 'kv', 1)]);
  const up = kv.send(h, update('kv', 'running', { dealId: partDealId(ID, 'kv', 1), provider: 'PEER_C', allocationId: 'kv.1b@me', allocation: { state: 'running', healthy: true } }));
  assert.equal(kv.ofType(up, 'part.start.send')[0]?.addrs, [{ part: 'kv', port: 'http', provider: 'PEER_C' }]);
  assert.is(part(h, 'kv').state, 'running');
});

const rest = machineHarness<EnsembleMachine, EnsembleEvent, EnsembleIntent>(ensembleMachine, input({ ...kvDemo(), recovery: 'rest_for_one', maxRestarts: { count: 2, withinMs: 60_000 } }));
const Rest = rest.behaviour('ensemble: rest_for_one, and maxRestarts');
Rest('kv failing restarts kv and the client started after it (the client is stopped first); past maxRestarts the ensemble fails', (h) => {
  clock = T0;
  rest.send(h, { type: 'deal.start', now: T0 });
  rest.send(h, update('kv', 'placed', { provider: PEER_A }));
  rest.send(h, update('client', 'placed', { provider: PEER_B }));
  rest.send(h, running('kv', PEER_A, true));
  rest.send(h, update('client', 'provisioning', { provider: PEER_B, allocationId: 'client.1@me', allocation: { state: 'pending' } }));
  const out = rest.send(h, update('kv', 'failed', { allocationId: 'kv.1@me', message: 'unhealthy' }));
  assert.equal(rest.ofType(out, 'part.cancel').map((c) => c.dealId), [partDealId(ID, 'client')]);
  assert.equal(rest.ofType(out, 'parts.spawn')[0]?.parts.map((p) => p.dealId), [partDealId(ID, 'kv', 1), partDealId(ID, 'client', 1)]);
  assert.is(rec(h).restarts, 2);
  // the next failure would pass 2 restarts within 60 s
  rest.send(h, update('kv', 'running', { dealId: partDealId(ID, 'kv', 1), allocationId: 'kv.2@me', allocation: { state: 'running', healthy: true } }));
  rest.send(h, update('kv', 'failed', { dealId: partDealId(ID, 'kv', 1), allocationId: 'kv.2@me', message: 'unhealthy again' }));
  assert.match(ctx(h).failure ?? '', /part kv failed \(unhealthy again\) and starting it again would pass maxRestarts \(2 within 60 s\)/);
  assert.ok(rest.ofType(h.out, 'part.cancel').some((c) => c.dealId === partDealId(ID, 'client', 1)), 'the new client negotiation is stopped too');
  assert.is(rec(h).state, 'failed', 'nothing left running: it ended');
});
Rest.run();

const twice = machineHarness<EnsembleMachine, EnsembleEvent, EnsembleIntent>(ensembleMachine, input({ ...kvDemo(), recovery: 'rest_for_one', maxRestarts: { count: 5, withinMs: 60_000 } }));
const Twice = twice.behaviour('ensemble: a part started again twice, the second time before its new negotiation said anything');
Twice('the negotiation the first restart started is stopped by the second (found by the simulator: it went on placing the part)', (h) => {
  clock = T0;
  twice.send(h, { type: 'deal.start', now: T0 });
  twice.send(h, update('kv', 'placed', { provider: PEER_A }));
  twice.send(h, update('client', 'placed', { provider: PEER_B }));
  twice.send(h, running('kv', PEER_A, true));
  twice.send(h, running('client', PEER_B));
  // the client's provider is lost: the client starts again as a new negotiation, which has not reported yet
  const first = twice.send(h, update('client', 'failed', { provider: PEER_B, allocationId: 'client.1@me', message: 'its provider restarted' }));
  assert.equal(twice.ofType(first, 'parts.spawn')[0]?.parts.map((p) => p.dealId), [partDealId(ID, 'client', 1)]);
  // then kv fails: rest_for_one starts kv and the client again, and the client's last negotiation is stopped first
  const second = twice.send(h, update('kv', 'failed', { allocationId: 'kv.1@me', message: 'unhealthy' }));
  assert.equal(twice.ofType(second, 'part.cancel').map((c) => c.dealId), [partDealId(ID, 'client', 1)]);
  assert.equal(twice.ofType(second, 'parts.spawn')[0]?.parts.map((p) => p.dealId), [partDealId(ID, 'kv', 1), partDealId(ID, 'client', 2)]);
});
Twice.run();

Ending.run();
Placing.run();
Starting.run();

// only tasks: the ensemble completes once every one did
const tasks = machineHarness<EnsembleMachine, EnsembleEvent, EnsembleIntent>(ensembleMachine, input(ensemble([task('a'), task('b', { dependsOn: ['a'] })])));
const Tasks = tasks.behaviour('ensemble: tasks only');
Tasks('every task completed: the ensemble completed without waiting for its timeout', (h) => {
  clock = T0;
  tasks.send(h, { type: 'deal.start', now: T0 });
  tasks.send(h, update('a', 'completed', { exitCode: 0 }));
  assert.is(rec(h).state, 'requesting');
  const out = tasks.send(h, update('b', 'completed', { exitCode: 0, provider: PEER_B }));
  assert.equal(tasks.types(out).includes('ensemble.ended'), true);
  assert.is(rec(h).state, 'completed');
  assert.is(rec(h).message, 'every part completed');
});
Tasks.run();

const Ids = tasks.behaviour('ensemble: part deal ids');
Ids('a part deal id names its ensemble and part; a plain job id does not', () => {
  assert.equal(parsePartDealId(partDealId('abc', 'kv')), { ensembleId: 'abc', part: 'kv' });
  assert.is(parsePartDealId('abc'), null);
  void service;
});
Ids.run();
