// When an ensemble part is restarted (machines/restart-policy.ts): the policy table, the defaults by part type,
// the restart intensity window, and the validation of `restart` and `maxRestarts`.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ExecutionOutcome } from '../../machines/allocation.messages.ts';
import {
  admitRestart,
  decideRestart,
  defaultRestart,
  DEFAULT_MAX_RESTARTS,
  exitOf,
  maxRestartsProblems,
  type PartExit,
  type PartType,
  restartLimitExceededAt,
  restartProblems,
  type RestartPolicy,
} from '../../machines/restart-policy.ts';

const EXIT_0: PartExit = { type: 'exited', code: 0 };
const EXIT_1: PartExit = { type: 'exited', code: 1 };
const KILLED: PartExit = { type: 'killed', reason: 'died from SIGSEGV' };
const STOPPED: PartExit = { type: 'stopped' };

const Policy = suite('restart policy: the table');

/** type, policy, exit -> what happens ('restart' or the end state). */
const TABLE: readonly [PartType, RestartPolicy, PartExit, string][] = [
  ['service', 'never', EXIT_0, 'completed'],
  ['service', 'never', EXIT_1, 'failed'],
  ['service', 'never', KILLED, 'failed'],
  ['service', 'on-failure', EXIT_0, 'completed'],
  ['service', 'on-failure', EXIT_1, 'restart'],
  ['service', 'on-failure', KILLED, 'restart'],
  ['service', 'always', EXIT_0, 'restart'],
  ['service', 'always', EXIT_1, 'restart'],
  ['service', 'always', KILLED, 'restart'],
  ['task', 'never', EXIT_0, 'completed'],
  ['task', 'never', EXIT_1, 'failed'],
  ['task', 'never', KILLED, 'failed'],
  ['task', 'on-failure', EXIT_0, 'completed'],
  ['task', 'on-failure', EXIT_1, 'restart'],
  ['task', 'on-failure', KILLED, 'restart'],
  // refused by validation; if it ever gets here, a completed task is not run again
  ['task', 'always', EXIT_0, 'completed'],
  ['task', 'always', EXIT_1, 'restart'],
  ['task', 'always', KILLED, 'restart'],
];
const outcome = (d: ReturnType<typeof decideRestart>) => (d.type === 'restart' ? 'restart' : d.state);
const name = (e: PartExit) => (e.type === 'exited' ? `exit ${e.code}` : e.type);

Policy('service and task x never, on-failure, always x exit 0, exit 1, killed', () => {
  const got = TABLE.map(([type, policy, exit]) => `${type} ${policy} ${name(exit)}: ${outcome(decideRestart(policy, type, exit))}`);
  const want = TABLE.map(([type, policy, exit, expected]) => `${type} ${policy} ${name(exit)}: ${expected}`);
  assert.equal(got, want);
});

Policy('any non-zero exit code is a failure', () => {
  for (const code of [1, 2, 3, 127, 137, 255]) {
    assert.equal(decideRestart('never', 'task', { type: 'exited', code }), { type: 'end', state: 'failed' }, `exit ${code}`);
    assert.equal(decideRestart('on-failure', 'task', { type: 'exited', code }), { type: 'restart' }, `exit ${code}`);
  }
});

Policy('a part we stopped is never restarted: it ends terminated, whatever its policy', () => {
  for (const type of ['service', 'task'] as const) {
    for (const policy of ['never', 'on-failure', 'always', undefined] as const) {
      assert.equal(decideRestart(policy, type, STOPPED), { type: 'end', state: 'terminated' }, `${type} ${policy}`);
    }
  }
});

Policy('defaults: always for a service, never for a task', () => {
  assert.is(defaultRestart('service'), 'always');
  assert.is(defaultRestart('task'), 'never');
  assert.equal(decideRestart(undefined, 'service', EXIT_0), { type: 'restart' });
  assert.equal(decideRestart(undefined, 'service', EXIT_1), { type: 'restart' });
  assert.equal(decideRestart(undefined, 'task', EXIT_0), { type: 'end', state: 'completed' });
  assert.equal(decideRestart(undefined, 'task', KILLED), { type: 'end', state: 'failed' });
});

Policy.run();

const Exits = suite('restart policy: an execution outcome as an exit');

const ended = (reason: ExecutionOutcome['reason'], exitCode: number | null, message = ''): ExecutionOutcome => ({
  exitCode,
  reason,
  message,
  durationMs: 10,
  outputBytes: 0,
  outputTruncated: false,
});

Exits('completed and failed with a code are exits; a cancel is a stop; limits and crashes are kills', () => {
  assert.equal(exitOf(ended('completed', 0)), { type: 'exited', code: 0 });
  assert.equal(exitOf(ended('failed', 3)), { type: 'exited', code: 3 });
  assert.equal(exitOf(ended('failed', null, 'wasm trap: unreachable')), { type: 'killed', reason: 'wasm trap: unreachable' });
  assert.equal(exitOf(ended('cancelled', null)), { type: 'stopped' });
  assert.equal(exitOf(ended('timeout', null, 'killed at its time limit')), { type: 'killed', reason: 'killed at its time limit' });
  assert.equal(exitOf(ended('memory', null)), { type: 'killed', reason: 'memory' });
  assert.equal(exitOf(ended('crashed', null, 'died from SIGSEGV')), { type: 'killed', reason: 'died from SIGSEGV' });
});

Exits('an on-failure service killed at its memory limit restarts; cancelled it ends terminated', () => {
  assert.equal(decideRestart('on-failure', 'service', exitOf(ended('memory', null))), { type: 'restart' });
  assert.equal(decideRestart('always', 'service', exitOf(ended('cancelled', null))), { type: 'end', state: 'terminated' });
});

Exits.run();

const Window = suite('restart policy: the intensity window');

const T = 1_700_000_000_000;
const limit = { count: 3, withinMs: 10_000 };

Window('count restarts within the window are admitted; one more is exceeded and not added', () => {
  let window: readonly number[] = [];
  for (const at of [T, T + 1, T + 2]) {
    const s = admitRestart(limit, window, at);
    assert.not.ok(s.exceeded, `restart at +${at - T}`);
    window = s.window;
  }
  assert.equal(window, [T, T + 1, T + 2]);
  const fourth = admitRestart(limit, window, T + 3);
  assert.ok(fourth.exceeded);
  assert.equal(fourth.window, [T, T + 1, T + 2]);
});

Window('a restart leaves the window exactly withinMs later, not a millisecond sooner', () => {
  const window = [T, T + 5000, T + 6000];
  assert.ok(admitRestart(limit, window, T + 9_999).exceeded, 'T is still inside at +9999');
  const s = admitRestart(limit, window, T + 10_000);
  assert.not.ok(s.exceeded, 'T has left at +10000');
  assert.equal(s.window, [T + 5000, T + 6000, T + 10_000]);
});

Window('the window never holds more than count restarts', () => {
  let window: readonly number[] = [];
  for (let i = 0; i < 100; i++) {
    const s = admitRestart(limit, window, T + i * 4000); // one every 4 s: at most 3 in any 10 s
    assert.not.ok(s.exceeded, `restart ${i}`);
    window = s.window;
    assert.ok(window.length <= limit.count);
  }
  assert.equal(window, [T + 97 * 4000, T + 98 * 4000, T + 99 * 4000]);
});

Window('count 0: the first restart is already one too many', () => {
  assert.equal(admitRestart({ count: 0, withinMs: 1000 }, [], T), { window: [], exceeded: true });
  assert.is(restartLimitExceededAt({ count: 0, withinMs: 1000 }, [T]), T);
});

Window('the fold gives the time of the first restart too many, or null', () => {
  assert.is(restartLimitExceededAt(limit, []), null);
  assert.is(restartLimitExceededAt(limit, [T, T + 1000, T + 2000]), null);
  assert.is(restartLimitExceededAt(limit, [T, T + 1000, T + 2000, T + 3000, T + 4000]), T + 3000);
  // spread out: never 4 in 10 s
  assert.is(restartLimitExceededAt(limit, [T, T + 4000, T + 8000, T + 12_000, T + 16_000]), null);
  // a burst late in a long history
  assert.is(restartLimitExceededAt(limit, [T, T + 60_000, T + 61_000, T + 62_000, T + 69_999]), T + 69_999);
  assert.is(restartLimitExceededAt(limit, [T, T + 60_000, T + 61_000, T + 62_000, T + 70_000]), null);
});

Window('the default is 5 restarts within 60 s', () => {
  assert.equal(DEFAULT_MAX_RESTARTS, { count: 5, withinMs: 60_000 });
  const six = [0, 1, 2, 3, 4, 5].map((i) => T + i * 1000);
  assert.is(restartLimitExceededAt(DEFAULT_MAX_RESTARTS, six), T + 5000);
  assert.is(restartLimitExceededAt(DEFAULT_MAX_RESTARTS, six.slice(0, 5)), null);
});

Window('admitting never changes the window it is given', () => {
  const window = Object.freeze([T]);
  admitRestart(limit, window, T + 1);
  admitRestart(limit, window, T + 20_000);
  assert.equal(window, [T]);
});

Window.run();

const Validation = suite('restart policy: validation');

Validation('a task with restart always is refused, naming the field', () => {
  const problems = restartProblems({ type: 'task', restart: 'always' }, 'allocations.client.restart');
  assert.is(problems.length, 1);
  assert.is(problems[0]!.field, 'allocations.client.restart');
  assert.match(problems[0]!.message, /"always" is not allowed for a task/);
  // a part with no type is a task
  assert.equal(restartProblems({ restart: 'always' }).map((p) => p.field), ['restart']);
});

Validation('every other combination is fine', () => {
  for (const type of ['service', 'task', undefined] as const) {
    for (const restart of ['never', 'on-failure', 'always', undefined] as const) {
      if (restart === 'always' && type !== 'service') continue;
      assert.equal(restartProblems({ ...(type ? { type } : {}), ...(restart ? { restart } : {}) }), [], `${type} ${restart}`);
    }
  }
});

Validation('an unknown policy is refused, naming the choices', () => {
  const problems = restartProblems({ type: 'service', restart: 'sometimes' as RestartPolicy });
  assert.equal(problems.map((p) => p.field), ['restart']);
  assert.match(problems[0]!.message, /"sometimes" is not a restart policy; use one of never, on-failure, always/);
});

Validation('maxRestarts: a whole count from 0 and a positive window', () => {
  assert.equal(maxRestartsProblems({ count: 5, withinMs: 60_000 }), []);
  assert.equal(maxRestartsProblems({ count: 0, withinMs: 1 }), []);
  assert.equal(maxRestartsProblems({ count: -1, withinMs: 60_000 }).map((p) => p.field), ['maxRestarts.count']);
  assert.equal(maxRestartsProblems({ count: 2.5, withinMs: 60_000 }).map((p) => p.field), ['maxRestarts.count']);
  assert.equal(maxRestartsProblems({ count: 5, withinMs: 0 }, 'ensemble.maxRestarts').map((p) => p.field), ['ensemble.maxRestarts.within']);
  assert.equal(maxRestartsProblems({ count: 5, withinMs: Number.NaN }).map((p) => p.field), ['maxRestarts.within']);
});

Validation.run();
