// The start order of an ensemble's parts (dependencies first, otherwise declaration order), the parts that
// depend on a part or start after it, and which parts each recovery strategy restarts when one fails for good.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { RecoveryStrategy } from '../../machines/ensemble.ts';
import { dependencyCycles, dependentsClosure, partsToRestart, startedAfter, startOrder } from '../../machines/ensemble.order.ts';
import { ensemble, kvDemo, service, task } from '../fixtures/ensemble-fixtures.ts';

/** The error `f` throws, as `name: message`. */
function thrown(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    return `${(err as Error).name}: ${(err as Error).message}`;
  }
  assert.unreachable('expected an error');
  return '';
}

// web -> api -> db, worker -> cache and api, declared so that declaration order alone would be wrong.
const app = (recovery: RecoveryStrategy = 'one_for_one') =>
  ensemble(
    [
      service('web', { dependsOn: ['api'] }),
      task('worker', { dependsOn: ['cache', 'api'] }),
      service('api', { dependsOn: ['db'] }),
      service('cache'),
      service('db'),
      task('report'),
    ],
    { recovery },
  );

const Order = suite('startOrder: dependencies first, otherwise declaration order');

Order('without dependencies, the declaration order', () => {
  assert.equal(startOrder(ensemble([task('c'), task('a'), task('b')])), ['c', 'a', 'b']);
});

Order('the kv-demo: kv, then the client', () => {
  assert.equal(startOrder(kvDemo()), ['kv', 'client']);
  assert.equal(startOrder(ensemble([task('client', { dependsOn: ['kv'] }), service('kv')])), ['kv', 'client']);
});

Order('of the parts ready to start, the first declared goes first', () => {
  // d waits for b; a, b and c are ready from the start.
  assert.equal(startOrder(ensemble([task('d', { dependsOn: ['b'] }), task('a'), task('b'), task('c')])), ['a', 'b', 'd', 'c']);
  assert.equal(startOrder(app()), ['cache', 'db', 'api', 'web', 'worker', 'report']);
});

Order('a cycle has no start order: a DependencyCycleError names it', () => {
  const cyclic = ensemble([task('x'), task('a', { dependsOn: ['b'] }), task('b', { dependsOn: ['a'] })]);
  assert.is(thrown(() => startOrder(cyclic)), 'DependencyCycleError: a -> b -> a is a dependency cycle, so none of these parts could ever start; remove one of the dependsOn entries');
});

Order.run();

const Cycles = suite('dependencyCycles');

Cycles('none in an acyclic ensemble; each cycle from its first declared part; a self-dependency is a cycle of one', () => {
  assert.equal(dependencyCycles(app()), []);
  const spec = ensemble([task('c', { dependsOn: ['a'] }), task('a', { dependsOn: ['b'] }), task('b', { dependsOn: ['c'] }), task('s', { dependsOn: ['s'] })]);
  assert.equal(dependencyCycles(spec), [['c', 'a', 'b', 'c'], ['s', 's']]);
});

Cycles.run();

const Closure = suite('dependentsClosure and startedAfter: what rest_for_one takes down');

Closure('the parts that depend on a part, directly or not, in start order', () => {
  const spec = app();
  assert.equal(dependentsClosure(spec, 'db'), ['api', 'web', 'worker']);
  assert.equal(dependentsClosure(spec, 'cache'), ['worker']);
  assert.equal(dependentsClosure(spec, 'api'), ['web', 'worker']);
  assert.equal(dependentsClosure(spec, 'web'), []);
  assert.equal(dependentsClosure(spec, 'report'), []);
});

Closure('the parts started after a part, in start order', () => {
  const spec = app();
  assert.equal(startedAfter(spec, 'cache'), ['db', 'api', 'web', 'worker', 'report']);
  assert.equal(startedAfter(spec, 'api'), ['web', 'worker', 'report']);
  assert.equal(startedAfter(spec, 'report'), []);
});

Closure('an unknown part is an UnknownPartError', () => {
  assert.match(thrown(() => dependentsClosure(app(), 'nope')), /^UnknownPartError: the ensemble has no part named "nope"/);
  assert.match(thrown(() => startedAfter(app(), 'nope')), /^UnknownPartError: /);
});

Closure.run();

const Restart = suite('partsToRestart: by recovery strategy, in start order');

Restart('one_for_one: only the part', () => {
  assert.equal(partsToRestart(app('one_for_one'), 'api'), ['api']);
});

Restart('one_for_all: every part', () => {
  assert.equal(partsToRestart(app('one_for_all'), 'api'), ['cache', 'db', 'api', 'web', 'worker', 'report']);
});

Restart('rest_for_one: the part and every part started after it', () => {
  assert.equal(partsToRestart(app('rest_for_one'), 'api'), ['api', 'web', 'worker', 'report']);
  assert.equal(partsToRestart(app('rest_for_one'), 'report'), ['report']);
  assert.equal(partsToRestart(app('rest_for_one'), 'cache'), ['cache', 'db', 'api', 'web', 'worker', 'report']);
});

Restart.run();
