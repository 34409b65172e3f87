// An ensemble part's `wasm.outputs` reaches the part's job (it was dropped before): the part gets a /out like a job
// of its own, and a process part with outputs is refused as a job's would be.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { partJob } from '../../../machines/ensemble.ts';
import { loadEnsembleFile } from '../../../runtime/cli/ensemble-file.ts';
import { exampleModule } from '../../../runtime/executors/examples/examples.ts';

async function withFile(ensemble: object, run: (file: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dms-ensemble-outputs-'));
  try {
    await writeFile(path.join(dir, 'hello.wasm'), await exampleModule('hello'));
    const file = path.join(dir, 'ensemble.json');
    await writeFile(file, JSON.stringify(ensemble));
    await run(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const part = (wasm: object) => ({ executor: 'wasm', wasm: { module: './hello.wasm', ...wasm }, resources: { cpu: 0.1, memory: '16MiB', disk: '1MiB' } });

test('wasm.outputs on a part is kept in its spec and its job; a part without it has none', async () => {
  await withFile({ name: 'outs', allocations: { writer: part({ outputs: true }), plain: part({}), off: part({ outputs: false }) } }, async (file) => {
    const { ensemble } = await loadEnsembleFile(file);
    const byName = new Map(ensemble.parts.map((p) => [p.name, p]));
    const wasmOf = (name: string) => {
      const job = partJob(ensemble, byName.get(name)!);
      assert.is(job.executor, 'wasm');
      return (job as Extract<typeof job, { executor: 'wasm' }>).wasm;
    };
    assert.is(wasmOf('writer').outputs, true);
    assert.not.ok('outputs' in wasmOf('plain'));
    assert.not.ok('outputs' in wasmOf('off'));
  });
});

test('outputs on a process part is refused, naming the field', async () => {
  const proc = { executor: 'process', process: { command: 'true', outputs: true }, resources: { cpu: 0.1, memory: '16MiB' } };
  await withFile({ name: 'outs', allocations: { p: proc } }, async (file) => {
    const err = await loadEnsembleFile(file).catch((e: Error) => e);
    assert.is((err as Error).name, 'JobFileError');
    assert.match((err as Error).message, /process\.outputs: result files \(\/out\) are for WASM jobs only/);
  });
});

test.run();
