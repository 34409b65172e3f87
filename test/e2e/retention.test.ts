// Retention on a real node: what ended deals left in the data dir (unused modules, ended allocations' output)
// older than --retain goes at start (and hourly); younger files and anything else stay.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { killAll, makeTempDir, removeTempDirs, startNode, waitFor } from './harness.ts';

const Retention = suite('e2e: --retain sweeps what ended deals left behind');

Retention.after(async () => {
  await killAll();
  await removeTempDirs();
});

async function aged(file: string, hours: number): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await fs.writeFile(file, 'x', { mode: 0o600 });
  const t = new Date(Date.now() - hours * 3_600_000);
  await fs.utimes(file, t, t);
}

const exists = (f: string) => fs.access(f).then(() => true, () => false);

Retention('a node started with --retain 2h removes a 3-hour-old module and output file, keeps a 1-hour-old one', async () => {
  const dir = await makeTempDir('retain');
  const oldModule = path.join(dir, 'modules', `${'a'.repeat(64)}.wasm`);
  const youngModule = path.join(dir, 'modules', `${'b'.repeat(64)}.wasm`);
  const oldOutput = path.join(dir, 'allocations', 'ended-1.log');
  const youngOutput = path.join(dir, 'allocations', 'ended-2.log');
  await aged(oldModule, 3);
  await aged(youngModule, 1);
  await aged(oldOutput, 3);
  await aged(youngOutput, 1);
  const node = await startNode(dir, ['--retain', '2h', '--log-level', 'info']);
  try {
    await waitFor('the sweep to remove the old files', async () => ((await exists(oldModule)) || (await exists(oldOutput)) ? undefined : true), 10_000);
    assert.ok(await exists(youngModule), 'a young module was removed');
    assert.ok(await exists(youngOutput), 'a young output file was removed');
    await waitFor('the sweep\'s log line', () => (/retention: removed/.test(node.stderr()) ? true : undefined), 5000);
  } finally {
    await node.stop();
  }
});

Retention('--retain 0 keeps everything', async () => {
  const dir = await makeTempDir('retain0');
  const oldModule = path.join(dir, 'modules', `${'c'.repeat(64)}.wasm`);
  await aged(oldModule, 24 * 365);
  const node = await startNode(dir, ['--retain', '0']);
  try {
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(await exists(oldModule));
  } finally {
    await node.stop();
  }
});

Retention.run();
