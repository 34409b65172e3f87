// The HTTP API's deal routes (runtime/api/http-server.ts): a real server on a loopback port, driven with fetch, in front of a
// fake NodeApi that records what reached it and answers as each test says. What a client cares about: bad input is
// refused with 400 naming the field before the node sees it, the node's own refusals map to the right status, ids
// reach the node as given, and nothing gets in without the token.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { JobSpec } from '../../../machines/job.ts';
import { type ApiServer, type NodeApi, startApiServer } from '../../../runtime/api/http-server.ts';
import { PROCESS_JOB } from '../../fixtures/deal-fixtures.ts';

const TOKEN = 'test-token-0123456789abcdef';
const GiB = 1024 ** 3;
const SHA = 'a'.repeat(64);


const MODULE = Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
const WASM_JOB: JobSpec = {
  executor: 'wasm',
  name: 'hello-wasm',
  resources: { cpu: 1, memory: GiB, disk: 0, gpus: 0 },
  timeoutMs: 60_000,
  constraints: { peers: [], excludePeers: [] },
  wasm: { module: { sha256: SHA, size: MODULE.byteLength }, args: [], env: {} },
};

type Call = [method: string, ...args: unknown[]];

interface Ctx {
  server: ApiServer;
  calls: Call[];
  /** What the fake's deal methods do; each test may replace it. */
  answer: (method: string, args: unknown[]) => Promise<unknown>;
  warnings: unknown[];
}

const named = (name: string, message: string) => Object.assign(new Error(message), { name });

/** A NodeApi whose every method records its call and answers through ctx.answer. */
function fakeApi(ctx: Ctx): NodeApi {
  return new Proxy({} as NodeApi, {
    get: (_t, method: string) => (...args: unknown[]) => {
      ctx.calls.push([method, ...args]);
      return ctx.answer(method, args);
    },
  });
}

const Api = suite<Ctx>('api: deal routes', {} as Ctx);

Api.before.each(async (ctx) => {
  ctx.calls = [];
  ctx.warnings = [];
  ctx.answer = async (method, args) => ({ method, args });
  ctx.server = await startApiServer({ host: '127.0.0.1', port: 0, token: TOKEN }, fakeApi(ctx), {
    warn: (obj) => ctx.warnings.push(obj),
    debug: () => {},
  });
});
Api.after.each(async (ctx) => {
  await ctx.server.stop();
});

interface Res {
  status: number;
  body: { error?: string; code?: string } & Record<string, unknown>;
}

async function request(ctx: Ctx, method: string, route: string, body?: unknown, opts: { token?: string | null; raw?: string } = {}): Promise<Res> {
  const token = opts.token === undefined ? TOKEN : opts.token;
  const res = await fetch(`${ctx.server.url}${route}`, {
    method,
    headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined && opts.raw === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(opts.raw !== undefined ? { body: opts.raw } : body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Res['body']) : {} };
}

/** A 400 whose message names `field`, and the node never asked. */
function refused(ctx: Ctx, r: Res, field: string | RegExp): void {
  assert.is(r.status, 400, JSON.stringify(r.body));
  assert.match(r.body.error ?? '', field);
  assert.equal(ctx.calls, [], 'the bad request reached the node');
}

const deployWith = (job: unknown, extra: Record<string, unknown> = {}) => ({ job, ...extra });
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

// ---------------------------------------------------------------------------------------------------------------

Api('POST /v1/deploy with a good process job reaches api.deploy with the job and no module', async (ctx) => {
  const r = await request(ctx, 'POST', '/v1/deploy', deployWith(PROCESS_JOB));
  assert.is(r.status, 200, JSON.stringify(r.body));
  assert.equal(ctx.calls, [['deploy', PROCESS_JOB, undefined]]);
});

Api('POST /v1/deploy with a WASM job hands api.deploy the module as bytes', async (ctx) => {
  const r = await request(ctx, 'POST', '/v1/deploy', deployWith(WASM_JOB, { module: b64(MODULE) }));
  assert.is(r.status, 200, JSON.stringify(r.body));
  assert.is(ctx.calls.length, 1);
  const [method, job, module] = ctx.calls[0]!;
  assert.is(method, 'deploy');
  assert.equal(job, WASM_JOB);
  assert.instance(module, Uint8Array);
  assert.equal([...(module as Uint8Array)], [...MODULE]);
});

Api('POST /v1/deploy: a negative cpu is refused, naming job.resources.cpu', async (ctx) => {
  refused(ctx, await request(ctx, 'POST', '/v1/deploy', deployWith({ ...PROCESS_JOB, resources: { ...PROCESS_JOB.resources, cpu: -1 } })), /job\.resources\.cpu/);
});

Api('POST /v1/deploy: an unknown executor is refused, naming job.executor', async (ctx) => {
  refused(ctx, await request(ctx, 'POST', '/v1/deploy', deployWith({ ...PROCESS_JOB, executor: 'docker' })), /job\.executor/);
});

Api('POST /v1/deploy: a module that is not base64 is refused, naming module', async (ctx) => {
  refused(ctx, await request(ctx, 'POST', '/v1/deploy', deployWith(WASM_JOB, { module: 'this is not base64!' })), /\bmodule\b/);
});

Api('POST /v1/deploy: other bad bodies are refused naming what is wrong', async (ctx) => {
  const cases: [string, unknown, RegExp][] = [
    ['no job', {}, /\bjob\b/],
    ['a field the API does not know', deployWith(PROCESS_JOB, { priority: 1 }), /priority/],
    ['a job field the API does not know', deployWith({ ...PROCESS_JOB, image: 'x' }), /image/],
    ['no name', deployWith({ ...PROCESS_JOB, name: '' }), /job\.name/],
    ['a sha256 that is not hex', deployWith({ ...WASM_JOB, wasm: { ...WASM_JOB.wasm, module: { sha256: 'xyz', size: 8 } } }, { module: b64(MODULE) }), /job\.wasm\.module\.sha256/],
    ['a negative timeout', deployWith({ ...PROCESS_JOB, timeoutMs: -5 }), /job\.timeoutMs/],
    ['cpu as a string', deployWith({ ...PROCESS_JOB, resources: { ...PROCESS_JOB.resources, cpu: '1' } }), /job\.resources\.cpu/],
  ];
  for (const [what, body, field] of cases) {
    const r = await request(ctx, 'POST', '/v1/deploy', body);
    assert.is(r.status, 400, `${what}: ${JSON.stringify(r.body)}`);
    assert.match(r.body.error ?? '', field, `${what}: ${r.body.error}`);
  }
  assert.equal(ctx.calls, []);
});

Api('POST /v1/deploy: a body that is not JSON is refused with 400', async (ctx) => {
  const r = await request(ctx, 'POST', '/v1/deploy', undefined, { raw: '{"job": ' });
  assert.is(r.status, 400);
  assert.is(r.body.code, 'invalid-json');
  assert.equal(ctx.calls, []);
});

Api('a DeployError from the node is a 400 with its message; matched by name, not class', async (ctx) => {
  ctx.answer = async () => {
    throw named('DeployError', 'wasm.module: the module is 9 bytes, the job says 8');
  };
  const r = await request(ctx, 'POST', '/v1/deploy', deployWith(WASM_JOB, { module: b64(MODULE) }));
  assert.is(r.status, 400);
  assert.is(r.body.error, 'wasm.module: the module is 9 bytes, the job says 8');
  assert.is(r.body.code, 'DeployError');
  assert.equal(ctx.warnings, [], 'a client mistake was logged as a failure');
});

Api('an UnknownDealError is a 404, on status, cancel and logs', async (ctx) => {
  ctx.answer = async (_m, args) => {
    throw named('UnknownDealError', `no job ${String(args[0])} on this node; \`jobs\` lists them`);
  };
  for (const [method, route] of [['GET', '/v1/jobs/nope'], ['POST', '/v1/jobs/nope/cancel'], ['GET', '/v1/logs/nope']] as const) {
    const r = await request(ctx, method, route);
    assert.is(r.status, 404, `${method} ${route}`);
    assert.is(r.body.error, 'no job nope on this node; `jobs` lists them');
  }
});

Api('any other error from the node is a 500, logged', async (ctx) => {
  ctx.answer = async () => {
    throw new Error('disk on fire');
  };
  const r = await request(ctx, 'GET', '/v1/jobs');
  assert.is(r.status, 500);
  assert.is(r.body.error, 'disk on fire');
  assert.is(ctx.warnings.length, 1);
});

Api('GET /v1/jobs and POST /v1/jobs/:id/cancel reach jobs() and cancel(id)', async (ctx) => {
  assert.is((await request(ctx, 'GET', '/v1/jobs')).status, 200);
  assert.is((await request(ctx, 'POST', '/v1/jobs/0123abcd/cancel')).status, 200);
  assert.equal(ctx.calls, [['jobs'], ['cancel', '0123abcd']]);
});

Api('GET /v1/jobs/:id hands the id to job(); a URL-encoded id arrives decoded', async (ctx) => {
  const ids = ['0123456789abcdef0123456789abcdef', 'a b', 'a/b', 'ünï', '100%', 'x?y#z'];
  for (const id of ids) {
    const r = await request(ctx, 'GET', `/v1/jobs/${encodeURIComponent(id)}`);
    assert.is(r.status, 200, `${id}: ${JSON.stringify(r.body)}`);
  }
  assert.equal(ctx.calls, ids.map((id) => ['job', id]));
});

Api('GET /v1/jobs/:id with a broken %-escape is a 400, not a server error', async (ctx) => {
  const r = await request(ctx, 'GET', '/v1/jobs/%E0%A4%A');
  assert.is(r.status, 400, `${r.status}: ${JSON.stringify(r.body)}`);
  assert.equal(ctx.calls, []);
  assert.equal(ctx.warnings, [], 'a client mistake was logged as a server failure');
});

Api('GET /v1/logs/:id takes a byte offset: 0 by default, a whole number otherwise', async (ctx) => {
  assert.is((await request(ctx, 'GET', '/v1/logs/job-1')).status, 200);
  assert.is((await request(ctx, 'GET', '/v1/logs/job-1?offset=4096')).status, 200);
  assert.is((await request(ctx, 'GET', `/v1/logs/${encodeURIComponent('deal 1.1')}?offset=7`)).status, 200);
  assert.is((await request(ctx, 'GET', '/v1/logs/ens-1?part=kv')).status, 200);
  assert.is((await request(ctx, 'GET', '/v1/logs/arr-1?index=37')).status, 200);
  assert.equal(ctx.calls, [['logs', 'job-1', 0, undefined, undefined], ['logs', 'job-1', 4096, undefined, undefined], ['logs', 'deal 1.1', 7, undefined, undefined], ['logs', 'ens-1', 0, 'kv', undefined], ['logs', 'arr-1', 0, undefined, 37]]);
  assert.is((await request(ctx, 'GET', '/v1/logs/arr-1?index=x')).status, 400);
});

Api('GET /v1/logs/:id?part= that is not a part name is a 400 naming the part', async (ctx) => {
  const r = await request(ctx, 'GET', `/v1/logs/ens-1?part=${encodeURIComponent('../x')}`);
  assert.is(r.status, 400);
  assert.match((r.body as { error: string }).error, /part "\.\.\/x" is not a part name/);
  assert.equal(ctx.calls, []);
});

Api('GET /v1/logs/:id?offset=abc (or negative, or fractional) is a 400 naming the offset', async (ctx) => {
  for (const bad of ['abc', '-1', '1.5', 'NaN', '1e400']) {
    const r = await request(ctx, 'GET', `/v1/logs/job-1?offset=${encodeURIComponent(bad)}`);
    assert.is(r.status, 400, `offset=${bad}: ${JSON.stringify(r.body)}`);
    assert.match(r.body.error ?? '', 'offset', `offset=${bad}`);
    assert.match(r.body.error ?? '', bad, `offset=${bad}`);
  }
  assert.equal(ctx.calls, []);
});

Api('a wrong method on a known path is a 405; an unknown path a 404', async (ctx) => {
  const cases: [string, string, number][] = [
    ['GET', '/v1/deploy', 405],
    ['PUT', '/v1/deploy', 405],
    ['DELETE', '/v1/jobs/abc', 405],
    ['POST', '/v1/jobs/abc', 405],
    ['GET', '/v1/jobs/abc/cancel', 405],
    ['POST', '/v1/logs/abc', 405],
    ['POST', '/v1/jobs', 405],
    ['GET', '/v1/nothing', 404],
    ['GET', '/v1/jobs/abc/more', 404],
    ['GET', '/v1/logs', 404],
  ];
  for (const [method, route, status] of cases) {
    const r = await request(ctx, method, route);
    assert.is(r.status, status, `${method} ${route}: ${JSON.stringify(r.body)}`);
    if (status === 405) assert.match(r.body.error ?? '', method);
  }
  assert.equal(ctx.calls, []);
});

Api('without the token, or with a wrong one, every deal route is a 401 and the node is never asked', async (ctx) => {
  const routes: [string, string, unknown][] = [
    ['POST', '/v1/deploy', deployWith(PROCESS_JOB)],
    ['GET', '/v1/jobs', undefined],
    ['GET', '/v1/jobs/abc', undefined],
    ['POST', '/v1/jobs/abc/cancel', undefined],
    ['GET', '/v1/logs/abc?offset=0', undefined],
    ['GET', '/v1/nothing', undefined],
  ];
  for (const token of [null, 'wrong', `${TOKEN}x`, '']) {
    for (const [method, route, body] of routes) {
      const r = await request(ctx, method, route, body, { token });
      assert.is(r.status, 401, `${method} ${route} with token ${JSON.stringify(token)}`);
      assert.is(r.body.code, 'unauthorized');
    }
  }
  assert.equal(ctx.calls, []);
});

Api.run();
