// A job's output on its way to disk, as a provider runs it (runtime/deals/executions.ts with the real WasiExecutor
// and OutputLog): a module that writes 150,000 bytes a byte at a time reaches the node as thousands of tiny chunks,
// and must cost a write per batch and a line per record, not per chunk. The flush delay is on a manual clock that
// never moves, so only full batches and the job's end write: the counts are exact, whatever the machine's speed.
// Needs the compiled runner (npx tsc -p tsconfig.json), as the node does.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { JobSpec } from '../../../machines/job.ts';
import { ManualClock } from '../../../runtime/clock.ts';
import { type ExecutionEvent, Executions } from '../../../runtime/deals/executions.ts';
import { ModuleStore } from '../../../runtime/deals/module-store.ts';
import { OUTPUT_FLUSH_BYTES, OUTPUT_RECORD_BYTES, OutputLog } from '../../../runtime/deals/output-log.ts';
import { compileWat } from '../../../runtime/executors/examples/examples.ts';
import { WasiExecutor } from '../../../runtime/executors/wasm-executor.ts';
import { sha256Hex } from '../../../runtime/executors/wasm-module.ts';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'wasm');
const DRIP_BYTES = 150_000;
const ALLOCATION = 'drip.1@peer';

const test = suite('job output: a job that writes a byte at a time costs writes and lines by its output, not its chunks');

test('drip.wat (150,000 one-byte writes) through the WASI executor: a handful of appends and lines, a file ~4/3 of the output, all of it in order', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dms-job-output-'));
  try {
    const bytes = await compileWat(await fs.readFile(path.join(fixtures, 'drip.wat'), 'utf8'), 'drip.wat');
    const sha256 = sha256Hex(bytes);
    const modules = new ModuleStore(dir);
    await modules.put(sha256, bytes);
    const appends: string[] = [];
    const output = new OutputLog(dir, (id, e) => assert.unreachable(`writing ${id}: ${e.message}`), {
      clock: new ManualClock(0),
      appendFile: async (file, text) => {
        appends.push(text);
        await fs.appendFile(file, text);
      },
    });
    await output.create(ALLOCATION);
    const wasi = new WasiExecutor();
    let chunks = 0;
    // count the chunks the executor hands over, on the way to the output log
    const executor = { kind: 'wasm' as const, start: (spec: Parameters<WasiExecutor['start']>[0], listen?: Parameters<WasiExecutor['start']>[1]) => wasi.start(spec, (c) => (chunks++, listen?.(c))) };
    const executions = new Executions({ executor: async () => executor, output, modules, clock: new ManualClock(0) });
    const job: JobSpec = {
      executor: 'wasm', name: 'drip', resources: { cpu: 1, memory: 64 << 20, disk: 0, gpus: 0 }, timeoutMs: 60_000,
      constraints: { peers: [], excludePeers: [] }, wasm: { module: { sha256, size: bytes.byteLength }, args: [], env: {} },
    };
    const events: ExecutionEvent[] = [];
    await executions.run(ALLOCATION, job, (e) => events.push(e));

    const end = events.at(-1);
    assert.ok(end?.type === 'execution.ended' && end.outcome.reason === 'completed', JSON.stringify(end));
    assert.ok(chunks > 100, `the module's output reached the node in ${chunks} chunks; the test needs many`);
    const file = await fs.readFile(output.file(ALLOCATION), 'latin1');
    const lines = file.split('\n').length - 1;
    assert.ok(appends.length <= Math.ceil(DRIP_BYTES / OUTPUT_FLUSH_BYTES) + 1, `${appends.length} appends for ${chunks} chunks of ${DRIP_BYTES} bytes`);
    assert.ok(lines <= Math.ceil(DRIP_BYTES / OUTPUT_RECORD_BYTES) + appends.length, `${lines} lines for ${chunks} chunks`);
    assert.ok(file.length <= Math.ceil((DRIP_BYTES * 4) / 3) + lines * 6, `a ${file.length}-byte file for ${DRIP_BYTES} bytes of output`);
    let text = '';
    for (let offset = 0, eof = false; !eof; ) {
      const page = await output.read(ALLOCATION, offset);
      text += page.chunks.map((c) => c.text).join('');
      ({ next: offset, eof } = page);
    }
    assert.is(text, '0123456789'.repeat(DRIP_BYTES / 10));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test.run();
