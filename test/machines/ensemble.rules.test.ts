// validateEnsemble: every rule of an ensemble that needs no I/O, each problem named by the job file's field
// (allocations.<part>.…): dependencies (unknown, itself, cycles named in order), ports and health checks, restart
// policies, part names as env var fragments, and each part held to a job's rules for its executor and resources.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { EnsemblePart, EnsembleSpec } from '../../machines/ensemble.ts';
import { validateEnsemble } from '../../machines/ensemble.rules.ts';
import { ensemble, kvDemo, MiB, PEER_A, PEER_B, service, task } from '../fixtures/ensemble-fixtures.ts';

/** The problems as `field: message` lines, for messages that show what else was reported. */
const lines = (spec: EnsembleSpec) => validateEnsemble(spec).map((p) => `${p.field}: ${p.message}`);

/** Exactly one problem, at `field`, whose message matches `detail`. */
function onlyProblem(spec: EnsembleSpec, field: string, detail: RegExp): void {
  const problems = validateEnsemble(spec);
  assert.is(problems.length, 1, lines(spec).join('\n') || 'no problems');
  assert.is(problems[0]!.field, field, problems[0]!.message);
  assert.match(problems[0]!.message, detail);
}

const kv = (over: Record<string, unknown> = {}) => service('kv', { ports: ['http'], ...over });
const withParts = (...parts: EnsemblePart[]) => ensemble(parts);

const Good = suite('validateEnsemble: good ensembles have no problems');

Good('the kv-demo, a single task, a wasm part, a diamond of dependencies', () => {
  assert.equal(lines(kvDemo()), []);
  assert.equal(lines(withParts(task('only'))), []);
  const wasm = task('w', { executor: 'wasm', wasm: { module: { sha256: 'ab'.repeat(32), size: 10 }, args: [], env: {} }, process: undefined });
  assert.equal(lines(withParts(wasm)), []);
  const diamond = withParts(task('top', { dependsOn: ['left', 'right'] }), service('left', { dependsOn: ['base'] }), service('right', { dependsOn: ['base'] }), service('base'));
  assert.equal(lines(diamond), []);
});

Good('a command health check, on-failure tasks, never-restarted services, a task with its own shorter timeout', () => {
  const spec = withParts(
    kv({ healthcheck: { command: ['sh', '-c', 'true'], intervalMs: 100, retries: 1 }, restart: 'never' }),
    task('t', { restart: 'on-failure', timeoutMs: 1000 }),
  );
  assert.equal(lines(spec), []);
});

Good.run();

const Deps = suite('validateEnsemble: dependencies');

Deps('a cycle of two is named in order from the first declared part: a -> b -> a', () => {
  onlyProblem(withParts(task('a', { dependsOn: ['b'] }), task('b', { dependsOn: ['a'] })), 'allocations.a.dependsOn', /^a -> b -> a is a dependency cycle/);
});

Deps('a cycle of three, declared out of order, and a cycle that does not include the first part', () => {
  const three = withParts(task('c', { dependsOn: ['a'] }), task('a', { dependsOn: ['b'] }), task('b', { dependsOn: ['c'] }));
  onlyProblem(three, 'allocations.c.dependsOn', /^c -> a -> b -> c is a dependency cycle/);
  const inner = withParts(task('x', { dependsOn: ['b'] }), task('a', { dependsOn: ['b'] }), task('b', { dependsOn: ['a'] }));
  onlyProblem(inner, 'allocations.a.dependsOn', /^a -> b -> a /);
});

Deps('two separate cycles are both named', () => {
  const spec = withParts(task('a', { dependsOn: ['b'] }), task('b', { dependsOn: ['a'] }), task('c', { dependsOn: ['d'] }), task('d', { dependsOn: ['c'] }));
  assert.equal(
    validateEnsemble(spec).map((p) => [p.field, p.message.split(' is ')[0]]),
    [
      ['allocations.a.dependsOn', 'a -> b -> a'],
      ['allocations.c.dependsOn', 'c -> d -> c'],
    ],
  );
});

Deps('dependsOn an unknown part names it and the parts there are', () => {
  onlyProblem(withParts(kv(), task('client', { dependsOn: ['kvv'] })), 'allocations.client.dependsOn', /^"kvv" is not a part of this ensemble \(its parts: kv, client\)/);
});

Deps('dependsOn the part itself, or another part twice', () => {
  onlyProblem(withParts(task('a', { dependsOn: ['a'] })), 'allocations.a.dependsOn', /names the part itself/);
  onlyProblem(withParts(kv(), task('b', { dependsOn: ['kv', 'kv'] })), 'allocations.b.dependsOn', /names kv twice/);
});

Deps('two dependencies whose ports would have the same DMS_ADDR_ name', () => {
  const spec = withParts(service('a_b', { ports: ['c'] }), service('a', { ports: ['b_c'] }), task('client', { dependsOn: ['a_b', 'a'] }));
  onlyProblem(spec, 'allocations.client.dependsOn', /DMS_ADDR_A_B_C would name both a_b's port c and a's port b_c/);
});

Deps.run();

const Ports = suite('validateEnsemble: ports and health checks');

Ports('a healthcheck port that is not in ports', () => {
  const hc = { http: { port: 'web', path: '/health' }, intervalMs: 1000, retries: 3 };
  onlyProblem(withParts(kv({ healthcheck: hc })), 'allocations.kv.healthcheck.http.port', /^"web" is not one of the part's ports \(http\)/);
  onlyProblem(withParts(service('bare', { healthcheck: hc })), 'allocations.bare.healthcheck.http.port', /the part has no `ports`/);
});

Ports('a healthcheck path, interval, retries or command out of bounds', () => {
  const hc = (over: object) => withParts(kv({ healthcheck: { http: { port: 'http', path: '/health' }, intervalMs: 1000, retries: 3, ...over } }));
  onlyProblem(hc({ http: { port: 'http', path: 'health' } }), 'allocations.kv.healthcheck.http.path', /is not a URL path/);
  onlyProblem(hc({ http: { port: 'http', path: '/a b' } }), 'allocations.kv.healthcheck.http.path', /is not a URL path/);
  onlyProblem(hc({ intervalMs: 10 }), 'allocations.kv.healthcheck.interval', /10 is not a duration from 100 ms to 1 h/);
  onlyProblem(hc({ intervalMs: 2 * 3600_000 }), 'allocations.kv.healthcheck.interval', /from 100 ms to 1 h/);
  onlyProblem(hc({ retries: 0 }), 'allocations.kv.healthcheck.retries', /0 is not a whole number from 1 to 100/);
  onlyProblem(hc({ retries: 1.5 }), 'allocations.kv.healthcheck.retries', /whole number/);
  const cmd = (command: string[]) => withParts(kv({ healthcheck: { command, intervalMs: 1000, retries: 3 } }));
  onlyProblem(cmd([]), 'allocations.kv.healthcheck.command', /is empty/);
  onlyProblem(cmd(['sh', 'a\0b']), 'allocations.kv.healthcheck.command.1', /NUL/);
});

Ports('port names: env-var safe, not repeated, not the same once upper-cased', () => {
  onlyProblem(withParts(kv({ ports: ['http', 'ht tp'] })), 'allocations.kv.ports.1', /"ht tp" is not a port name/);
  onlyProblem(withParts(kv({ ports: ['http', 'a.b'] })), 'allocations.kv.ports.1', /not a port name/);
  onlyProblem(withParts(kv({ ports: ['http', 'http'] })), 'allocations.kv.ports.1', /http is named twice/);
  onlyProblem(withParts(kv({ ports: ['admin-api', 'ADMIN_API'] })), 'allocations.kv.ports.1', /admin-api and ADMIN_API would both be DMS_PORT_ADMIN_API/);
  assert.equal(lines(withParts(kv({ ports: ['http', '8080', 'a-b_C'] }))), []);
  onlyProblem(withParts(kv({ ports: Array.from({ length: 33 }, (_, i) => `p${i}`) })), 'allocations.kv.ports', /has 33 ports; a part has at most 32/);
});

Ports("a part's env may not set the names the provider sets", () => {
  onlyProblem(withParts(kv({ process: { command: 'sh', args: [], env: { DMS_PORT_HTTP: '1' } } })), 'allocations.kv.process.env', /sets DMS_PORT_HTTP/);
  const client = task('client', { dependsOn: ['kv'], process: { command: 'sh', args: [], env: { DMS_ADDR_KV_HTTP: 'x' } } });
  onlyProblem(withParts(kv(), client), 'allocations.client.process.env', /sets DMS_ADDR_KV_HTTP, which the provider sets to the address of kv's port http/);
});

Ports.run();

const Kinds = suite('validateEnsemble: services, tasks and restart policies');

Kinds('a task with restart: always', () => {
  onlyProblem(withParts(task('t', { restart: 'always' })), 'allocations.t.restart', /"always" is not allowed for a task: it would run again even after it completed/);
});

Kinds('a service with a timeout of its own; a task whose timeout outlives the ensemble', () => {
  onlyProblem(withParts(kv({ timeoutMs: 5000 })), 'allocations.kv.timeout', /a service runs until the ensemble ends/);
  onlyProblem(ensemble([task('t', { timeoutMs: 120_000 })], { timeoutMs: 60_000 }), 'allocations.t.timeout', /120000 ms is longer than the ensemble's timeout \(60000 ms\)/);
});

Kinds.run();

const Names = suite('validateEnsemble: part names become env var fragments');

Names('a letter, then letters, digits, - and _', () => {
  for (const name of ['1st', 'kv.x', 'k v', '', '-kv', '_kv', 'x'.repeat(65)]) {
    onlyProblem(withParts(task(name)), `allocations.${name}`, /is not a part name; use a letter, then letters, digits, - and _/);
  }
  assert.equal(lines(withParts(task('a'), task('Kv-2_x'), task('x'.repeat(64)))), []);
});

Names('names are unique, also once upper-cased with - as _', () => {
  onlyProblem(withParts(task('kv'), task('kv')), 'allocations.kv', /is declared twice/);
  onlyProblem(withParts(task('kv-a'), task('KV_A')), 'allocations.KV_A', /kv-a and KV_A would both be KV_A in env names/);
});

Names.run();

const AsJobs = suite("validateEnsemble: each part is held to a job's rules, named under its part");

AsJobs('resources, the process command, the wasm module, args and env, constraints', () => {
  onlyProblem(withParts(kv({ resources: { cpu: -1, memory: 64 * MiB, disk: 0, gpus: 0 } })), 'allocations.kv.resources.cpu', /-1 is not a number of cores above 0/);
  onlyProblem(withParts(kv({ resources: { cpu: 1, memory: 0, disk: 0, gpus: 0 } })), 'allocations.kv.resources.memory', /above 0/);
  onlyProblem(withParts(kv({ process: { command: ' ', args: [], env: {} } })), 'allocations.kv.process.command', /is empty/);
  onlyProblem(withParts(kv({ process: { command: 'sh', args: ['a\0'], env: {} } })), 'allocations.kv.process.args.0', /NUL/);
  const wasm = task('w', { executor: 'wasm', wasm: { module: { sha256: 'nope', size: 10 }, args: [], env: {} } });
  onlyProblem(withParts(wasm), 'allocations.w.wasm.module', /sha256 "nope" is not 64 lowercase hex digits/);
  onlyProblem(withParts(task('t', { constraints: { peers: ['nobody'], excludePeers: [] } })), 'allocations.t.constraints.peers', /"nobody" is not a peer id/);
});

AsJobs("a task's own timeout is held to 1 s..7 days; without one the ensemble's is checked once, at the top", () => {
  onlyProblem(withParts(task('t', { timeoutMs: 500 })), 'allocations.t.timeout', /500 ms is outside 1 s\.\.7 days/);
  onlyProblem(ensemble([task('a'), task('b')], { timeoutMs: 500 }), 'timeout', /500 ms is outside 1 s\.\.7 days/);
});

AsJobs("the part's constraints and the ensemble's must leave a provider", () => {
  const spec = (outer: object, inner: object) =>
    ensemble([task('p', { constraints: { peers: [], excludePeers: [], ...inner } })], { constraints: { peers: [], excludePeers: [], ...outer } });
  onlyProblem(spec({ peers: [PEER_A] }, { peers: [PEER_B] }), 'allocations.p.constraints.peers', /names none of the ensemble's constraints\.peers/);
  onlyProblem(spec({ excludePeers: [PEER_A] }, { peers: [PEER_A] }), 'allocations.p.constraints', new RegExp(`every peer the part may run on \\(${PEER_A}\\) is excluded`));
  onlyProblem(spec({ peers: [PEER_A, PEER_B] }, { excludePeers: [PEER_B, PEER_A] }), 'allocations.p.constraints', /every peer the part may run on/);
  // A peer excluded at one level is fine while another peer the part may run on is left.
  assert.equal(lines(spec({ peers: [PEER_A, PEER_B] }, { peers: [PEER_B], excludePeers: [PEER_A] })), []);
  assert.equal(lines(spec({ peers: [PEER_A, PEER_B] }, { excludePeers: [PEER_A] })), []);
});

AsJobs.run();

const Whole = suite('validateEnsemble: the ensemble itself');

Whole('name, timeout and constraints as a job has them', () => {
  onlyProblem(ensemble([task('a')], { name: ' ' }), 'name', /is not a job name/);
  onlyProblem(ensemble([task('a')], { timeoutMs: 8 * 24 * 3600_000 }), 'timeout', /outside 1 s\.\.7 days/);
  onlyProblem(ensemble([task('a')], { constraints: { peers: [PEER_A], excludePeers: [PEER_A] } }), 'constraints', /both required \(peers\) and excluded/);
});

Whole('maxRestarts: a whole count from 0 to 1000 within a window above 0 and at most 24 h', () => {
  onlyProblem(ensemble([task('a')], { maxRestarts: { count: -1, withinMs: 60_000 } }), 'maxRestarts.count', /-1 is not a whole number from 0 to 1000/);
  onlyProblem(ensemble([task('a')], { maxRestarts: { count: 2.5, withinMs: 60_000 } }), 'maxRestarts.count', /2\.5/);
  onlyProblem(ensemble([task('a')], { maxRestarts: { count: 5, withinMs: 0 } }), 'maxRestarts.within', /0 ms is not a duration above 0 and at most 24 h/);
  onlyProblem(ensemble([task('a')], { maxRestarts: { count: 5, withinMs: 25 * 3600_000 } }), 'maxRestarts.within', /at most 24 h/);
  assert.equal(lines(ensemble([task('a')], { maxRestarts: { count: 0, withinMs: 1000 } })), []);
});

Whole('no parts, or more than 64', () => {
  onlyProblem(ensemble([]), 'allocations', /has no parts/);
  onlyProblem(ensemble(Array.from({ length: 65 }, (_, i) => task(`p${i}`))), 'allocations', /has 65 parts; an ensemble has at most 64/);
  assert.equal(lines(ensemble(Array.from({ length: 64 }, (_, i) => task(`p${i}`)))), []);
});

Whole('with a deployment window, a deadline too close is refused', () => {
  const spec = kvDemo();
  const [problem, ...more] = validateEnsemble(spec, { now: 0, deadline: 30_000 });
  assert.equal([problem?.field, more], ['deadline', []]);
  assert.match(problem!.message, /needs at least 1 minute/);
  assert.equal(validateEnsemble(spec, { now: 0, deadline: 120_000 }), []);
});

Whole.run();
