// The deal messages' payload schemas at the network edge: every valid message passes unchanged, and malformed
// ones are refused with the field named (as MessageRouter reports them, through parsePayload).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { JobSpec } from '../../../machines/job.ts';
import { MAX_BID_JOB_BYTES, MAX_DEAL_MODULE_BYTES, MAX_JOB_BYTES, MAX_REPLY_ADDRS, MAX_TEXT, dealPayloadSchemas } from '../../../runtime/deals/deal-schemas.ts';
import { encodedSize } from '../../../runtime/deals/encoded-size.ts';
import { parsePayload } from '../../../runtime/net/wire/envelope-schema.ts';

const GiB = 1024 ** 3;
const PEER = '12D3KooWRequesterBBBBBBBBBBBBBBBBBBBBBBBBBBBB';
const OTHER = '12D3KooWSomebodyCCCCCCCCCCCCCCCCCCCCCCCCCCCCC';
const T = 1_700_000_000_000;
const resources = { cpu: 1.5, memory: 2 * GiB, disk: 0, gpus: 0 };

const WASM_JOB: JobSpec = {
  executor: 'wasm',
  name: 'hello',
  resources,
  timeoutMs: 60_000,
  constraints: { peers: [PEER], excludePeers: [OTHER] },
  wasm: { module: { sha256: 'ab'.repeat(32), size: 4096 }, args: ['--n', '3'], env: { MODE: 'fast' } },
};
const PROCESS_JOB: JobSpec = {
  executor: 'process',
  name: 'sleep',
  resources: { cpu: 0.5, memory: GiB, disk: GiB, gpus: 1 },
  timeoutMs: 3_600_000,
  constraints: { peers: [], excludePeers: [] },
  process: { command: 'sleep', args: ['1'], env: {} },
};
const deal = { dealId: 'deal-0123456789abcdef', nonce: 3 };
/** A listen address a broadcast bid request carries for the answer. */
const REPLY_ADDR = `/ip4/127.0.0.1/tcp/4001/ws/p2p/${PEER}`;

/** One valid payload per wire type (the message without `type`). */
const VALID: Record<string, Record<string, unknown>> = {
  'bid.request': { ...deal, job: WASM_JOB, expiresAt: T + 5000 },
  'bid.submit': { bid: { ...deal, provider: PEER, price: 0.25, score: 1_000_000, resources, expiresAt: T + 15_000 } },
  'bid.decline': { ...deal, code: 'insufficient', reason: 'this node offers 1 cpu free, the job asks for 2 cpu' },
  'deal.commit': { ...deal },
  'deal.committed': { ...deal },
  'deal.allocate': { ...deal, module: new Uint8Array([0xa1, 0x61, 0x61, 0x01]) },
  'deal.allocated': { ...deal, allocationId: 'deal-0123456789abcdef.3' },
  'deal.refused': { ...deal, step: 'commit', reason: 'not committed: no live lock' },
  'deal.revert': { ...deal, reason: 'another provider was chosen' },
  'deal.cancel': { ...deal },
  'part.start': { ...deal, addrs: [{ part: 'kv', port: 'http', provider: PEER }], members: [{ part: 'kv', provider: PEER }, { part: 'client', provider: OTHER }] },
  'allocation.status': { ...deal, allocationId: 'deal-0123456789abcdef.3', state: 'completed', exitCode: 0, message: 'exited 0' },
  'batch.assign': { ...deal, indexes: [0, 1, 99_999] },
  'batch.release': { ...deal },
  'batch.progress': { ...deal, allocationId: 'deal-0123456789abcdef.3', results: [{ index: 7, state: 'completed', exitCode: 0, message: 'exited with code 0' }, { index: 8, state: 'lost', exitCode: null, message: 'its provider stopped' }], running: 3 },
};

/** What to break in each type, and the field the refusal must name (a path prefix of an issue). */
type Breakage = readonly [what: string, payload: Record<string, unknown>, field: string];
const without = (o: Record<string, unknown>, k: string) => Object.fromEntries(Object.entries(o).filter(([x]) => x !== k));
const job = (patch: Partial<Record<keyof JobSpec | string, unknown>>) => ({ ...VALID['bid.request'], job: { ...WASM_JOB, ...patch } });
const bid = (patch: Record<string, unknown>) => ({ bid: { ...(VALID['bid.submit']!['bid'] as object), ...patch } });

const BROKEN: Record<string, readonly Breakage[]> = {
  'bid.request': [
    ['missing job', without(VALID['bid.request']!, 'job'), 'job'],
    ['extra field', { ...VALID['bid.request'], type: 'bid.request' }, '(payload)'],
    ['nonce not a whole number', { ...VALID['bid.request'], nonce: 1.5 }, 'nonce'],
    ['nonce past safe integers', { ...VALID['bid.request'], nonce: 2 ** 53 }, 'nonce'],
    ['negative expiresAt', { ...VALID['bid.request'], expiresAt: -1 }, 'expiresAt'],
    ['bad deal id', { ...VALID['bid.request'], dealId: 'a/b' }, 'dealId'],
    ['oversized deal id', { ...VALID['bid.request'], dealId: 'x'.repeat(201) }, 'dealId'],
    ['job with negative cpu', job({ resources: { ...resources, cpu: -1 } }), 'job.resources.cpu'],
    // validateJob trusts the JobSpec type: a job of the wrong shape must be refused before it runs, not throw.
    ['job with a null module', job({ wasm: { ...WASM_JOB.wasm, module: null } }), 'job.wasm.module'],
    ['job with peers as a string', job({ resources: { ...resources, cpu: -1 }, constraints: { peers: 'x', excludePeers: [] } }), 'job.constraints.peers'],
    ['job with zero cpu (validateJob)', job({ resources: { ...resources, cpu: 0 } }), 'job.resources.cpu'],
    ['job with zero memory (validateJob)', job({ resources: { ...resources, memory: 0 } }), 'job.resources.memory'],
    ['job timeout under 1 s (validateJob)', job({ timeoutMs: 10 }), 'job.timeoutMs'],
    ['job with an unknown executor', job({ executor: 'docker' }), 'job.executor'],
    ['wasm job with a process section', job({ process: { command: 'sh', args: [], env: {} } }), 'job'],
    ['wasm job without its section', { ...VALID['bid.request'], job: without({ ...WASM_JOB }, 'wasm') }, 'job.wasm'],
    ['bad sha256', job({ wasm: { ...WASM_JOB.wasm, module: { sha256: 'AB'.repeat(32), size: 1 } } }), 'job.wasm.module.sha256'],
    ['module too big to send', job({ wasm: { ...WASM_JOB.wasm, module: { sha256: 'ab'.repeat(32), size: MAX_DEAL_MODULE_BYTES + 1 } } }), 'job.wasm.module.size'],
    ['too many args', job({ wasm: { ...WASM_JOB.wasm, args: Array(1025).fill('a') } }), 'job.wasm.args'],
    ['NUL in an arg (validateJob)', job({ wasm: { ...WASM_JOB.wasm, args: ['a\0b'] } }), 'job.wasm.args.0'],
    ['env name with = (validateJob)', job({ wasm: { ...WASM_JOB.wasm, env: { 'A=B': '1' } } }), 'job.wasm.env'],
    ['bad peer id in constraints', job({ constraints: { peers: ['0OIl'], excludePeers: [] } }), 'job.constraints.peers.0'],
    ['a peer both required and excluded (validateJob)', job({ constraints: { peers: [PEER], excludePeers: [PEER] } }), 'job.constraints'],
    ['oversized name', job({ name: 'n'.repeat(129) }), 'job.name'],
    ['control character in the name (validateJob)', job({ name: 'a\nb' }), 'job.name'],
    // a bid request reaches every provider and is journaled by each: its job is small, the module comes later
    ['a job over MAX_BID_JOB_BYTES in its env (9 values of 8000)', job({ wasm: { ...WASM_JOB.wasm, env: Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`V${i}`, 'x'.repeat(8000)])) } }), 'job.wasm.env'],
    ['a job of ~880 KB of args (the flood of finding 1)', job({ wasm: { ...WASM_JOB.wasm, args: Array(110).fill('a'.repeat(8000)) } }), 'job.wasm.args'],
    ['a job over MAX_BID_JOB_BYTES in excludePeers', job({ constraints: { peers: [], excludePeers: Array(1500).fill(OTHER) } }), 'job.constraints.excludePeers'],
    ['module bytes in a bid request (they travel only in deal.allocate)', { ...VALID['bid.request'], module: new Uint8Array(16) }, '(payload)'],
    ['too many reply addresses', { ...VALID['bid.request'], replyAddrs: Array(MAX_REPLY_ADDRS + 1).fill(REPLY_ADDR) }, 'replyAddrs'],
    ['a reply address not over websockets', { ...VALID['bid.request'], replyAddrs: ['/ip4/1.2.3.4/tcp/1/p2p/X'] }, 'replyAddrs.0'],
    ['a reply address without its /p2p/ id', { ...VALID['bid.request'], replyAddrs: [REPLY_ADDR, '/ip4/1.2.3.4/tcp/1/ws'] }, 'replyAddrs.1'],
    ['a reply address that is not a string', { ...VALID['bid.request'], replyAddrs: [42] }, 'replyAddrs.0'],
    ['reply addresses not in a list', { ...VALID['bid.request'], replyAddrs: REPLY_ADDR }, 'replyAddrs'],
  ],
  'bid.submit': [
    ['missing bid', {}, 'bid'],
    ['bad provider peer id', bid({ provider: 'not a peer' }), 'bid.provider'],
    ['negative price', bid({ price: -1 }), 'bid.price'],
    ['infinite score', bid({ score: Infinity }), 'bid.score'],
    ['extra field in the bid', bid({ note: 'x' }), 'bid'],
    ['gpus not a whole number', bid({ resources: { ...resources, gpus: 0.5 } }), 'bid.resources.gpus'],
  ],
  'bid.decline': [
    ['unknown code', { ...VALID['bid.decline'], code: 'busy' }, 'code'],
    ['oversized reason', { ...VALID['bid.decline'], reason: 'r'.repeat(MAX_TEXT + 1) }, 'reason'],
  ],
  'deal.commit': [
    ['missing nonce', without(VALID['deal.commit']!, 'nonce'), 'nonce'],
    ['extra field', { ...deal, reason: 'x' }, '(payload)'],
  ],
  'deal.committed': [['nonce as a string', { ...deal, nonce: '3' }, 'nonce']],
  'deal.allocate': [
    ['module that is not bytes', { ...deal, module: [1, 2, 3] }, 'module'],
    ['oversized module', { ...deal, module: new Uint8Array(MAX_DEAL_MODULE_BYTES + 1) }, 'module'],
    ['empty module', { ...deal, module: new Uint8Array(0) }, 'module'],
  ],
  'deal.allocated': [['allocation id with a slash', { ...deal, allocationId: '../etc' }, 'allocationId']],
  'deal.refused': [
    ['unknown step', { ...VALID['deal.refused'], step: 'start' }, 'step'],
    ['missing reason', without(VALID['deal.refused']!, 'reason'), 'reason'],
  ],
  'deal.revert': [['reason not a string', { ...deal, reason: 42 }, 'reason']],
  'deal.cancel': [['negative nonce', { ...deal, nonce: -1 }, 'nonce']],
  'part.start': [
    ['a port name with a space', { ...deal, addrs: [{ part: 'kv', port: 'h p', provider: PEER }], members: [] }, 'addrs.0.port'],
    ['a part name starting with a digit', { ...deal, addrs: [], members: [{ part: '1kv', provider: PEER }] }, 'members.0.part'],
    ['no members', { ...deal, addrs: [] }, 'members'],
  ],
  'allocation.status': [
    ['unknown state', { ...VALID['allocation.status'], state: 'exploded' }, 'state'],
    ['fractional exit code', { ...VALID['allocation.status'], exitCode: 1.5 }, 'exitCode'],
    ['missing exitCode (null is the way to say none)', without(VALID['allocation.status']!, 'exitCode'), 'exitCode'],
    ['oversized message', { ...VALID['allocation.status'], message: 'm'.repeat(MAX_TEXT + 1) }, 'message'],
  ],
  'batch.assign': [
    ['an index past the most instances a job has', { ...deal, indexes: [100_000] }, 'indexes.0'],
    ['a negative index', { ...deal, indexes: [-1] }, 'indexes.0'],
    ['more indexes than one message carries', { ...deal, indexes: Array.from({ length: 4097 }, (_, i) => i) }, 'indexes'],
  ],
  'batch.release': [['a negative nonce', { ...deal, nonce: -1 }, 'nonce']],
  'batch.progress': [
    ['an unknown instance state', { ...VALID['batch.progress'], results: [{ index: 1, state: 'exploded', exitCode: null, message: '' }] }, 'results.0.state'],
    ['a fractional index', { ...VALID['batch.progress'], results: [{ index: 1.5, state: 'completed', exitCode: 0, message: '' }] }, 'results.0.index'],
    ['missing running', without(VALID['batch.progress']!, 'running'), 'running'],
  ],
};

// ---------------------------------------------------------------------------------------------------------------

const Coverage = suite('deal schemas: one schema per deal wire message');

Coverage('every DealWireMessage type has a schema, and nothing else does', () => {
  assert.equal([...dealPayloadSchemas.keys()].sort(), Object.keys(VALID).sort());
});

Coverage.run();

// ---------------------------------------------------------------------------------------------------------------

const Valid = suite('deal schemas: valid payloads pass unchanged');

for (const [type, payload] of Object.entries(VALID)) {
  Valid(type, () => {
    const r = parsePayload(dealPayloadSchemas, type, payload);
    assert.ok(r.ok, r.ok ? '' : r.detail);
    assert.equal(r.ok && r.payload, payload);
  });
}

Valid('a process job, a job without constraints and an allocate without module bytes', () => {
  for (const [type, payload] of [
    ['bid.request', { ...VALID['bid.request'], job: PROCESS_JOB }],
    ['deal.allocate', { ...deal }],
    ['allocation.status', { ...VALID['allocation.status'], state: 'running', exitCode: null, message: '' }],
  ] as const) {
    const r = parsePayload(dealPayloadSchemas, type, payload);
    assert.ok(r.ok, r.ok ? '' : r.detail);
    assert.equal(r.ok && r.payload, payload);
  }
});

Valid('a bid request with the requester\'s reply addresses: /ws, /wss and /tls/ws, up to MAX_REPLY_ADDRS', () => {
  for (const replyAddrs of [
    [REPLY_ADDR],
    [REPLY_ADDR, `/ip6/::1/tcp/4002/ws/p2p/${PEER}`, `/dns4/node.example.org/tcp/443/wss/p2p/${PEER}`, `/dns/node.example.org/tcp/443/tls/ws/p2p/${PEER}`],
    Array(MAX_REPLY_ADDRS).fill(REPLY_ADDR),
    [],
  ]) {
    const payload = { ...VALID['bid.request'], replyAddrs };
    const r = parsePayload(dealPayloadSchemas, 'bid.request', payload);
    assert.ok(r.ok, r.ok ? '' : r.detail);
    assert.equal(r.ok && r.payload, payload);
  }
});

Valid('a job of exactly MAX_JOB_BYTES encoded passes in an allocate; one byte more is refused, naming the args', () => {
  const sized = (n: number): JobSpec => ({ ...WASM_JOB, wasm: { ...WASM_JOB.wasm, args: [...Array(8).fill('a'.repeat(8000)), 'b'.repeat(n)] } });
  let n = 0;
  while (encodedSize(sized(n + 1)) <= MAX_JOB_BYTES) n += 1;
  assert.is(encodedSize(sized(n)), MAX_JOB_BYTES, 'the job is built to the limit exactly');
  const at = parsePayload(dealPayloadSchemas, 'deal.allocate', { dealId: 'd', nonce: 1, job: sized(n) });
  assert.ok(at.ok, at.ok ? '' : at.detail);
  const over = parsePayload(dealPayloadSchemas, 'deal.allocate', { dealId: 'd', nonce: 1, job: sized(n + 1) });
  assert.is(over.ok, false);
  if (!over.ok) assert.match(over.detail, new RegExp(`^job\\.wasm\\.args: takes \\d+ of the job's ${MAX_JOB_BYTES + 1} bytes; .* at most ${MAX_JOB_BYTES} bytes`));
});

Valid('a bid request carries at most MAX_BID_JOB_BYTES of job: at the limit it passes, one byte more is refused', () => {
  const sized = (n: number): JobSpec => ({ ...WASM_JOB, wasm: { ...WASM_JOB.wasm, args: ['a'.repeat(8000), 'b'.repeat(n)] } });
  let n = 0;
  while (encodedSize(sized(n + 1)) <= MAX_BID_JOB_BYTES) n += 1;
  assert.is(encodedSize(sized(n)), MAX_BID_JOB_BYTES);
  const at = parsePayload(dealPayloadSchemas, 'bid.request', { ...VALID['bid.request'], job: sized(n) });
  assert.ok(at.ok, at.ok ? '' : at.detail);
  const over = parsePayload(dealPayloadSchemas, 'bid.request', { ...VALID['bid.request'], job: sized(n + 1) });
  assert.is(over.ok, false);
  if (!over.ok) assert.match(over.detail, new RegExp(`^job: is over ${MAX_BID_JOB_BYTES} bytes .*without its args and env`));
});

Valid.run();

// ---------------------------------------------------------------------------------------------------------------

const Malformed = suite('deal schemas: malformed payloads are refused with the field named');

for (const [type, cases] of Object.entries(BROKEN)) {
  for (const [what, payload, field] of cases) {
    Malformed(`${type}: ${what}`, () => {
      const r = parsePayload(dealPayloadSchemas, type, payload);
      assert.is(r.ok, false, `${what} was accepted`);
      if (r.ok) return;
      assert.is(r.reason, 'invalid-payload');
      const fields = r.detail.split('; ').map((issue) => issue.slice(0, issue.indexOf(': ')));
      assert.ok(
        fields.some((f) => f === field || f.startsWith(`${field}.`)),
        `expected an issue at ${field}, got: ${r.detail}`,
      );
    });
  }
}

Malformed('every type has at least one malformed case', () => {
  for (const type of dealPayloadSchemas.keys()) assert.ok((BROKEN[type]?.length ?? 0) > 0, type);
});

Malformed('a payload that is not an object is refused', () => {
  for (const type of dealPayloadSchemas.keys()) {
    for (const bad of [null, 'x', 7, []]) assert.is(parsePayload(dealPayloadSchemas, type, bad).ok, false, `${type} ${JSON.stringify(bad)}`);
  }
});

Malformed.run();
