// Ensembles as data: the defaults, a one-part job as an ensemble of one task, each part as the job a provider
// runs (with the ensemble's constraints merged in), and the env names a part gets for its ports and dependencies.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  addrEnvName,
  constraintsOf,
  defaultRestart,
  ENSEMBLE_DEFAULTS,
  ensembleOf,
  envFor,
  partJob,
  partNameFor,
  portEnvName,
} from '../../machines/ensemble.ts';
import { validateEnsemble } from '../../machines/ensemble.rules.ts';
import type { JobSpec, ProcessJobSpec, WasmJobSpec } from '../../machines/job.ts';
import { ensemble, kvDemo, MiB, PEER_A, PEER_B, service, task } from '../fixtures/ensemble-fixtures.ts';

const WASM_JOB: WasmJobSpec = {
  name: 'hello',
  executor: 'wasm',
  wasm: { module: { sha256: 'ab'.repeat(32), size: 1234 }, args: ['a'], env: { K: 'V' } },
  resources: { cpu: 1, memory: 128 * MiB, disk: 10 * MiB, gpus: 0 },
  timeoutMs: 60_000,
  constraints: { peers: [PEER_A], excludePeers: [] },
};
const PROCESS_JOB: ProcessJobSpec = {
  name: 'hi',
  executor: 'process',
  process: { command: 'sh', args: ['-c', 'echo hi'], env: {} },
  resources: { cpu: 0.5, memory: 64 * MiB, disk: 0, gpus: 0 },
  timeoutMs: 120_000,
  constraints: { peers: [], excludePeers: [PEER_B] },
};

const Defaults = suite('ensembles: defaults');

Defaults('one_for_one, 5 restarts within 60 s, parts are tasks, health checked every 5 s', () => {
  assert.equal({ ...ENSEMBLE_DEFAULTS }, {
    recovery: 'one_for_one',
    maxRestarts: { count: 5, withinMs: 60_000 },
    type: 'task',
    healthcheckIntervalMs: 5_000,
  });
});

Defaults('a service restarts always, a task never', () => {
  assert.is(defaultRestart('service'), 'always');
  assert.is(defaultRestart('task'), 'never');
});

Defaults.run();

const OnePart = suite('ensembles: a one-part job is an ensemble of one task part named after the job');

OnePart('a wasm job and a process job each become one task part, and the part runs as the same job', () => {
  for (const job of [WASM_JOB, PROCESS_JOB] as JobSpec[]) {
    const spec = ensembleOf(job);
    assert.is(spec.name, job.name);
    assert.is(spec.timeoutMs, job.timeoutMs);
    assert.equal(spec.constraints, job.constraints);
    assert.is(spec.recovery, 'one_for_one');
    assert.equal(spec.maxRestarts, { count: 5, withinMs: 60_000 });
    assert.is(spec.parts.length, 1);
    const [part] = spec.parts;
    assert.is(part!.name, job.name);
    assert.is(part!.type, 'task');
    assert.is(part!.restart, 'never');
    assert.equal([part!.ports, part!.dependsOn, part!.healthcheck], [[], [], undefined]);
    assert.equal(partJob(spec, part!), job, 'round trip');
    assert.equal(validateEnsemble(spec), [], job.name);
  }
});

OnePart('a job whose name is not a part name gets a part name made from it', () => {
  assert.is(partNameFor('hello world.v2'), 'hello-world-v2');
  assert.is(partNameFor('2048'), 'job-2048');
  assert.is(partNameFor('  ...  '), 'job');
  assert.is(partNameFor('x'.repeat(200)).length, 64);
  const spec = ensembleOf({ ...PROCESS_JOB, name: 'my job (v2)' });
  assert.is(spec.name, 'my job (v2)');
  assert.is(spec.parts[0]!.name, 'my-job-v2');
  assert.equal(validateEnsemble(spec), []);
});

OnePart.run();

const Parts = suite('ensembles: a part as the job its provider runs');

Parts("a task without a timeout takes the ensemble's; with one, its own", () => {
  const spec = ensemble([task('a'), task('b', { timeoutMs: 30_000 })], { timeoutMs: 90_000 });
  assert.is(partJob(spec, spec.parts[0]!).timeoutMs, 90_000);
  assert.is(partJob(spec, spec.parts[1]!).timeoutMs, 30_000);
  assert.is(partJob(spec, spec.parts[1]!).name, 'b');
});

Parts("constraints: required peers in both where both name some, excluded by either", () => {
  const merged = (outer: object, inner: object) => {
    const spec = ensemble([task('p', { constraints: { peers: [], excludePeers: [], ...inner } })], { constraints: { peers: [], excludePeers: [], ...outer } });
    return constraintsOf(spec, spec.parts[0]!);
  };
  assert.equal(merged({}, {}), { peers: [], excludePeers: [] });
  assert.equal(merged({ peers: [PEER_A, PEER_B] }, {}), { peers: [PEER_A, PEER_B], excludePeers: [] });
  assert.equal(merged({}, { peers: [PEER_B] }), { peers: [PEER_B], excludePeers: [] });
  assert.equal(merged({ peers: [PEER_A, PEER_B] }, { peers: [PEER_B] }), { peers: [PEER_B], excludePeers: [] });
  assert.equal(merged({ excludePeers: [PEER_A] }, { excludePeers: [PEER_A, PEER_B] }), { peers: [], excludePeers: [PEER_A, PEER_B] });
  const spec = ensemble([task('p', { constraints: { peers: [], excludePeers: [PEER_B] } })], { constraints: { peers: [PEER_A], excludePeers: [] } });
  assert.equal(partJob(spec, spec.parts[0]!).constraints, { peers: [PEER_A], excludePeers: [PEER_B] });
});

Parts.run();

const Env = suite('ensembles: env names for ports and dependencies');

Env('names are upper case with - as _', () => {
  assert.is(portEnvName('http'), 'DMS_PORT_HTTP');
  assert.is(portEnvName('admin-api'), 'DMS_PORT_ADMIN_API');
  assert.is(addrEnvName('kv', 'http'), 'DMS_ADDR_KV_HTTP');
  assert.is(addrEnvName('my-db', 'main_port'), 'DMS_ADDR_MY_DB_MAIN_PORT');
});

Env("a part gets its own ports and each port of each part it depends on, and nothing else", () => {
  const web = service('web', { ports: ['http', 'admin-api'], dependsOn: ['kv', 'my-db'] });
  const env = envFor(web, {
    ports: { http: 41000, 'admin-api': 41001 },
    dependencies: { kv: { http: '127.0.0.1:42000' }, 'my-db': { main: '127.0.0.1:42001', 'repl-port': '127.0.0.1:42002' }, other: { http: '127.0.0.1:1' } },
  });
  assert.equal(env, {
    DMS_PORT_HTTP: '41000',
    DMS_PORT_ADMIN_API: '41001',
    DMS_ADDR_KV_HTTP: '127.0.0.1:42000',
    DMS_ADDR_MY_DB_MAIN: '127.0.0.1:42001',
    DMS_ADDR_MY_DB_REPL_PORT: '127.0.0.1:42002',
  });
});

Env('the kv-demo: kv gets DMS_PORT_HTTP, the client DMS_ADDR_KV_HTTP', () => {
  const [kv, client] = kvDemo().parts;
  assert.equal(envFor(kv!, { ports: { http: 40123 }, dependencies: {} }), { DMS_PORT_HTTP: '40123' });
  assert.equal(envFor(client!, { ports: {}, dependencies: { kv: { http: '127.0.0.1:50000' } } }), { DMS_ADDR_KV_HTTP: '127.0.0.1:50000' });
});

Env('a port without an assigned port number, or a dependency without addresses, is an error, not a missing variable', () => {
  const web = service('web', { ports: ['http'], dependsOn: ['kv'] });
  const name = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      return `${(err as Error).name}: ${(err as Error).message}`;
    }
    return 'no error';
  };
  assert.match(name(() => envFor(web, { ports: {}, dependencies: { kv: {} } })), /^MissingAddressError: .*"http"/);
  assert.match(name(() => envFor(web, { ports: { http: 0 }, dependencies: { kv: {} } })), /^MissingAddressError: /);
  assert.match(name(() => envFor(web, { ports: { http: 8080 }, dependencies: {} })), /^MissingAddressError: part web depends on kv/);
});

Env.run();
