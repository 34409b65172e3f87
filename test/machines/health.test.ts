// The health-check rules of ensemble parts (machines/health.ts): how results make a part starting, healthy or
// unhealthy, when the next check is due, what output is kept, and which healthchecks are refused.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  boundOutput,
  evolveHealth,
  HEALTH_LIMITS,
  healthCheckProblems,
  healthRules,
  type HealthEvent,
  type HealthRules,
  type HealthState,
  type HealthStep,
  probeTarget,
  startHealth,
  unhealthyReason,
} from '../../machines/health.ts';

const T = 1_700_000_000_000;
const I = 1000; // interval
const rules = healthRules({ intervalMs: I, retries: 3 }); // start period defaults to one interval
const utf8 = (s: string) => new TextEncoder().encode(s).byteLength;

const pass = (now: number, output = 'ok', ms = 5): HealthEvent => ({ type: 'check.passed', now, ms, output });
const fail = (now: number, output = 'down', ms = 5): HealthEvent => ({ type: 'check.failed', now, ms, output });

/** Runs events in order from a part started at T; every step, for the transitions. */
function run(r: HealthRules, events: readonly HealthEvent[], from: HealthState = startHealth(r, T)): HealthStep[] {
  const steps: HealthStep[] = [];
  let state = from;
  for (const e of events) {
    const s = evolveHealth(r, state, e);
    steps.push(s);
    state = s.state;
  }
  return steps;
}
const last = (steps: HealthStep[]): HealthStep => steps[steps.length - 1]!;
const transitions = (steps: HealthStep[]) => steps.map((s) => s.transition);
/** Results at the times checks fall due (one interval apart, from the first due time). */
const atDue = (results: readonly ('P' | 'F')[], first = T + I): HealthEvent[] => results.map((x, i) => (x === 'P' ? pass(first + i * I) : fail(first + i * I)));

const Defaults = suite('health: rules and defaults');

Defaults('defaults: 3 retries, start period and timeout of one interval', () => {
  assert.equal(healthRules({ intervalMs: 2000 }), { intervalMs: 2000, retries: 3, startPeriodMs: 2000, timeoutMs: 2000 });
  assert.equal(healthRules({ intervalMs: 2000, retries: 1, startPeriodMs: 0, timeoutMs: 500 }), { intervalMs: 2000, retries: 1, startPeriodMs: 0, timeoutMs: 500 });
});

Defaults('a started part is starting, with no failures and its first check one interval later', () => {
  assert.equal(startHealth(rules, T), { status: 'starting', startedAt: T, failures: 0, nextCheckAt: T + I, lastCheck: null });
});

Defaults.run();

const Becoming = suite('health: becoming healthy');

Becoming('the first pass makes a starting part healthy, reported on that step only', () => {
  const steps = run(rules, atDue(['P', 'P', 'P']));
  assert.equal(transitions(steps), ['healthy', null, null]);
  assert.is(last(steps).state.status, 'healthy');
});

Becoming('a pass within the start period counts at once', () => {
  const slow = healthRules({ intervalMs: I, startPeriodMs: 60_000 });
  const steps = run(slow, [pass(T + I)]);
  assert.is(steps[0]!.transition, 'healthy');
});

Becoming('the next check is due one interval after each result arrives', () => {
  const steps = run(rules, [pass(T + I + 40), fail(T + 2 * I + 90)]);
  assert.is(steps[0]!.nextCheckAt, T + 2 * I + 40);
  assert.is(steps[0]!.state.nextCheckAt, T + 2 * I + 40);
  assert.is(steps[1]!.nextCheckAt, T + 3 * I + 90);
});

Becoming.run();

const Retries = suite('health: retries are consecutive counted failures');

Retries('a healthy part becomes unhealthy on the retries-th failure in a row, reported once', () => {
  const steps = run(rules, atDue(['P', 'F', 'F', 'F', 'F', 'F']));
  assert.equal(transitions(steps), ['healthy', null, null, 'unhealthy', null, null]);
  assert.equal(steps.map((s) => s.state.status), ['healthy', 'healthy', 'healthy', 'unhealthy', 'unhealthy', 'unhealthy']);
});

Retries('a pass between failures starts the count over', () => {
  const steps = run(rules, atDue(['P', 'F', 'F', 'P', 'F', 'F', 'P', 'F', 'F']));
  assert.ok(steps.every((s) => s.state.status === 'healthy'), 'never unhealthy: never 3 failures in a row');
  assert.equal(steps.map((s) => s.state.failures), [0, 1, 2, 0, 1, 2, 0, 1, 2]);
  assert.equal(transitions(steps), ['healthy', null, null, null, null, null, null, null, null]);
});

Retries('retries 1: the first counted failure makes the part unhealthy', () => {
  const one = healthRules({ intervalMs: I, retries: 1 });
  const steps = run(one, atDue(['P', 'F']));
  assert.equal(transitions(steps), ['healthy', 'unhealthy']);
});

Retries('an unhealthy part that passes again is healthy again, reported once', () => {
  const steps = run(rules, atDue(['P', 'F', 'F', 'F', 'P', 'P']));
  assert.equal(transitions(steps), ['healthy', null, null, 'unhealthy', 'healthy', null]);
  assert.is(last(steps).state.failures, 0);
});

Retries.run();

const Grace = suite('health: the start period');

Grace('failures of checks due within the start period do not count', () => {
  const r = healthRules({ intervalMs: I, retries: 2, startPeriodMs: 3 * I });
  // checks due at +1, +2, +3 intervals are in the grace (due at or before +3); +4 and +5 count
  const steps = run(r, atDue(['F', 'F', 'F', 'F', 'F']));
  assert.equal(steps.map((s) => s.state.failures), [0, 0, 0, 1, 2]);
  assert.equal(transitions(steps), [null, null, null, null, 'unhealthy']);
});

Grace('by default the first check is forgiven and the next ones count', () => {
  const steps = run(rules, atDue(['F', 'F', 'F', 'F']));
  assert.equal(steps.map((s) => s.state.failures), [0, 1, 2, 3]);
  assert.equal(transitions(steps), [null, null, null, 'unhealthy']);
});

Grace('the grace goes by when the check was due, not when its result arrived', () => {
  const r = healthRules({ intervalMs: I, retries: 1, startPeriodMs: I });
  // the check due at T + I (in the grace) answered late
  const late = run(r, [fail(T + I + 900)]);
  assert.is(late[0]!.state.failures, 0);
  assert.is(late[0]!.state.status, 'starting');
});

Grace('a start period of 0: the very first failure counts', () => {
  const r = healthRules({ intervalMs: I, retries: 1, startPeriodMs: 0 });
  assert.equal(transitions(run(r, atDue(['F']))), ['unhealthy']);
});

Grace('once healthy, failures count even within the start period', () => {
  const r = healthRules({ intervalMs: I, retries: 2, startPeriodMs: 10 * I });
  const steps = run(r, atDue(['P', 'F', 'F']));
  assert.equal(transitions(steps), ['healthy', null, 'unhealthy']);
});

Grace('a part that never passes becomes unhealthy once past the grace, with the last output as the reason', () => {
  const events = atDue(['F', 'F', 'F', 'F']).map((e, i) => ({ ...e, output: `connection refused #${i}` }));
  const end = last(run(rules, events));
  assert.is(end.state.status, 'unhealthy');
  assert.is(end.transition, 'unhealthy');
  assert.is(unhealthyReason(rules, end.state), 'the health check failed 3 times in a row; last output: connection refused #3');
  assert.is(unhealthyReason(healthRules({ intervalMs: I, retries: 1 }), { ...end.state, lastCheck: null }), 'the health check failed once');
});

Grace.run();

const Restart = suite('health: restarts and stale results');

Restart('part.started starts over: starting, no failures, a fresh grace, the next check an interval later', () => {
  const unhealthy = last(run(rules, atDue(['P', 'F', 'F', 'F']))).state;
  const restartAt = T + 10 * I;
  const s = evolveHealth(rules, unhealthy, { type: 'part.started', now: restartAt });
  assert.equal(s, { state: startHealth(rules, restartAt), transition: null, nextCheckAt: restartAt + I });
  // the first check after the restart is in the grace again, and passing is reported as a new transition
  const after = run(rules, [fail(restartAt + I), pass(restartAt + 2 * I)], s.state);
  assert.equal(transitions(after), [null, 'healthy']);
  assert.is(after[0]!.state.failures, 0);
});

Restart('a result of a check begun before the restart is ignored', () => {
  const restartAt = T + 10 * I;
  const fresh = startHealth(rules, restartAt);
  // arrived after the restart, but took 300 ms: begun 100 ms before it
  const stale = evolveHealth(rules, fresh, pass(restartAt + 200, 'old run', 300));
  assert.is(stale.state, fresh);
  assert.is(stale.transition, null);
  assert.is(stale.nextCheckAt, restartAt + I);
  // begun exactly at the restart: counts
  assert.is(evolveHealth(rules, fresh, pass(restartAt + 300, 'new run', 300)).transition, 'healthy');
});

Restart('steps never change the state they are given', () => {
  const s = Object.freeze(startHealth(rules, T));
  evolveHealth(rules, s, fail(T + I));
  evolveHealth(rules, s, pass(T + I));
  assert.equal(s, startHealth(rules, T));
});

Restart.run();

const Output = suite('health: the last check output, bounded');

Output('the last check is kept: ok, time and output', () => {
  const steps = run(rules, [pass(T + I, 'HTTP 200\nfine'), fail(T + 2 * I, 'HTTP 500\nbroken')]);
  assert.equal(steps[0]!.state.lastCheck, { ok: true, at: T + I, output: 'HTTP 200\nfine' });
  assert.equal(steps[1]!.state.lastCheck, { ok: false, at: T + 2 * I, output: 'HTTP 500\nbroken' });
});

Output('output over 1 KiB is cut to 1 KiB of UTF-8, marked with an ellipsis', () => {
  const big = 'x'.repeat(5000);
  const kept = run(rules, [fail(T + I, big)])[0]!.state.lastCheck!.output;
  assert.is(utf8(kept), HEALTH_LIMITS.outputBytes);
  assert.ok(kept.endsWith('…'));
  assert.is(kept, 'x'.repeat(HEALTH_LIMITS.outputBytes - 3) + '…');
});

Output('a cut never splits a character', () => {
  const euros = '€'.repeat(1000); // 3 bytes each
  const cut = boundOutput(euros, 100);
  assert.ok(utf8(cut) <= 100);
  assert.is(cut, '€'.repeat(32) + '…'); // 97 bytes of euros would split the 33rd: 96 + 3
  assert.not.ok(cut.includes('\uFFFD'));
  const emoji = boundOutput('a' + '😀'.repeat(100), 10); // 1 + 4 + 4 ... then the mark
  assert.is(emoji, 'a😀…');
});

Output('short output is kept as it is; a bound too small for the mark cuts without it', () => {
  assert.is(boundOutput('fine'), 'fine');
  assert.is(boundOutput('x'.repeat(1024)), 'x'.repeat(1024));
  assert.is(boundOutput('abcdef', 2), 'ab');
  assert.is(boundOutput('', 0), '');
});

Output.run();

const Targets = suite('health: probe targets and validation');

Targets('an http check gets the port the provider assigned to its named port', () => {
  assert.equal(probeTarget({ http: { port: 'http', path: '/health' } }, { http: 41234, admin: 41235 }), { type: 'http', port: 41234, path: '/health' });
  assert.is(probeTarget({ http: { port: 'grpc', path: '/' } }, { http: 41234 }), undefined);
  assert.is(probeTarget({ http: { port: 'constructor', path: '/' } }, {}), undefined);
  assert.equal(probeTarget({ command: ['sh', '-c', 'true'] }, {}), { type: 'command', command: ['sh', '-c', 'true'] });
});

Targets('a good healthcheck has no problems', () => {
  assert.equal(healthCheckProblems({ http: { port: 'http', path: '/health' }, intervalMs: 1000, retries: 3 }, ['http']), []);
  assert.equal(healthCheckProblems({ command: ['sh', '-c', 'test -f /tmp/ready'], intervalMs: 500, startPeriodMs: 0, timeoutMs: 200 }, []), []);
});

Targets('a healthcheck port that is not in ports is refused, naming the field and the ports', () => {
  const problems = healthCheckProblems({ http: { port: 'web', path: '/health' }, intervalMs: 1000 }, ['http', 'admin'], 'allocations.kv.healthcheck');
  assert.is(problems.length, 1);
  assert.is(problems[0]!.field, 'allocations.kv.healthcheck.http.port');
  assert.match(problems[0]!.message, /"web" is not one of the part's ports \(http, admin\)/);
  const none = healthCheckProblems({ http: { port: 'web', path: '/' }, intervalMs: 1000 }, []);
  assert.match(none[0]!.message, /the part has no `ports`/);
});

Targets('bad paths, commands and timings are refused, each naming its field', () => {
  const fields = (p: ReturnType<typeof healthCheckProblems>) => p.map((x) => x.field);
  assert.equal(fields(healthCheckProblems({ http: { port: 'h', path: 'health' }, intervalMs: 1000 }, ['h'])), ['healthcheck.http.path']);
  assert.equal(fields(healthCheckProblems({ http: { port: 'h', path: '/a b' }, intervalMs: 1000 }, ['h'])), ['healthcheck.http.path']);
  assert.equal(fields(healthCheckProblems({ command: [], intervalMs: 1000 }, [])), ['healthcheck.command']);
  assert.equal(fields(healthCheckProblems({ command: [' '], intervalMs: 1000 }, [])), ['healthcheck.command']);
  assert.equal(fields(healthCheckProblems({ command: ['sh', 'a\0b'], intervalMs: 1000 }, [])), ['healthcheck.command.1']);
  const timing = healthCheckProblems({ command: ['true'], intervalMs: 10, retries: 0, startPeriodMs: -1, timeoutMs: 0 }, []);
  assert.equal(fields(timing), ['healthcheck.interval', 'healthcheck.retries', 'healthcheck.startPeriod', 'healthcheck.timeout']);
  assert.equal(fields(healthCheckProblems({ command: ['true'], intervalMs: 1000, retries: 1.5 }, [])), ['healthcheck.retries']);
});

Targets.run();
