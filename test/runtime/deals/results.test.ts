// Result files: the provider's manifest and ranges (results-store.ts), and `results`' fetch into a directory
// (results-fetch.ts) against a fake API that breaks off transfers, so the resume from an offset is seen.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ApiClient } from '../../../runtime/api/client.ts';
import { fetchResults } from '../../../runtime/cli/results-fetch.ts';
import { isResultPath, resultsLayout } from '../../../runtime/deals/results-manifest.ts';
import { openRange, prepareResults, sealResults } from '../../../runtime/deals/results-store.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
/** Rejects, with an error `check` accepts (a RegExp is matched against the message). */
async function rejects(p: Promise<unknown>, check: RegExp | ((e: Error) => boolean)): Promise<void> {
  try {
    await p;
  } catch (e) {
    const ok = check instanceof RegExp ? check.test((e as Error).message) : check(e as Error);
    assert.ok(ok, `rejected with ${(e as Error).name}: ${(e as Error).message}`);
    return;
  }
  assert.unreachable('it resolved');
}
const tmp = () => fs.mkdtemp(path.join(os.tmpdir(), 'dms-results-'));

const store = suite('results store: the manifest and ranges on the provider');

store('paths of a manifest stay inside: no absolute, empty, . or .. components', () => {
  for (const p of ['a', 'a/b.txt', 'x..y']) assert.ok(isResultPath(p), p);
  for (const p of ['', '/a', 'a/../b', '..', './a', 'a//b', 'a/', 'a\0b']) assert.not.ok(isResultPath(p), p);
  assert.throws(() => resultsLayout('/d', '..'), /cannot name/);
  assert.is(resultsLayout('/d', 'x', 7).files, '/d/outputs/x/7/files');
});

store('sealed: every file hashed, sorted; a range is served in bounded chunks; a file changed in size is refused', async () => {
  const root = await tmp();
  try {
    const layout = resultsLayout(root, 'alloc-1');
    await prepareResults(layout);
    const big = Buffer.alloc(200_000, 3);
    await fs.mkdir(path.join(layout.files, 'd'));
    await fs.writeFile(path.join(layout.files, 'd', 'big'), big);
    await fs.writeFile(path.join(layout.files, 'a'), 'hi');
    const m = await sealResults(layout);
    assert.equal(m, [{ path: 'a', size: 2, sha256: sha(Buffer.from('hi')) }, { path: 'd/big', size: 200_000, sha256: sha(big) }]);
    const r = await openRange(layout, m, 'd/big', 150_000, 30_000);
    const chunks: Uint8Array[] = [];
    for await (const c of r.chunks) chunks.push(c);
    assert.is(r.length, 30_000);
    assert.ok(chunks.every((c) => c.byteLength <= 64 * 1024));
    assert.is(Buffer.concat(chunks).length, 30_000);
    await rejects(openRange(layout, m, 'nope', 0, 10), /no result file/);
    await fs.appendFile(path.join(layout.files, 'a'), '!');
    await rejects(openRange(layout, m, 'a', 0, 10), (e: Error) => e.name === 'ResultsRefusedError' && /changed after the job ended/.test(e.message));
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});

interface FakeApi {
  client: ApiClient;
  requests: string[];
  close(): Promise<void>;
}

/** An API serving one file, whose first `breakAfter` bytes of each transfer come before the connection drops. */
async function fakeApi(content: Buffer, breakAfter: number): Promise<FakeApi> {
  const requests: string[] = [];
  let breaks = 2;
  const entry = { path: 'data/f.bin', size: content.length, sha256: sha(content) };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    requests.push(`${url.pathname}${url.search}`);
    if (url.pathname.endsWith('/results')) return void res.end(JSON.stringify({ files: [entry] }));
    const offset = Number(url.searchParams.get('offset'));
    res.writeHead(200, { 'content-length': content.length - offset, 'x-dms-sha256': entry.sha256, 'x-dms-size': content.length });
    if (breaks-- > 0) {
      res.write(content.subarray(offset, offset + breakAfter), () => setTimeout(() => res.socket?.destroy(), 20));
    } else res.end(content.subarray(offset));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { client: new ApiClient(`http://127.0.0.1:${port}`, 't'), requests, close: () => new Promise((r) => server.close(() => r())) };
}

const fetch = suite('results: fetching into a directory');

fetch('a transfer that breaks off twice resumes from the bytes it has, and the file is checked and kept', async () => {
  const content = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 253));
  const api = await fakeApi(content, 100_000);
  const out = await tmp();
  try {
    const r = await fetchResults(api.client, 'job1', { out });
    assert.equal(r.failed, []);
    assert.ok((await fs.readFile(path.join(out, 'data', 'f.bin'))).equals(content));
    const offsets = api.requests.filter((q) => q.includes('/file')).map((q) => Number(new URL(q, 'http://x').searchParams.get('offset')));
    assert.equal(offsets, [0, 100_000, 200_000], 'each request from where the last one broke off');
    assert.equal(await fs.readdir(out), ['data'], 'no partial directory left');
  } finally {
    await api.close();
    await fs.rm(out, { recursive: true, force: true });
  }
});

fetch('a manifest naming a path outside the directory is refused before anything is written', async () => {
  const server = http.createServer((_req, res) => res.end(JSON.stringify({ files: [{ path: '../evil', size: 1, sha256: 'a'.repeat(64) }] })));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const out = await tmp();
  try {
    await rejects(fetchResults(new ApiClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 't'), 'job1', { out: path.join(out, 'x') }), /not one/);
    assert.equal(await fs.readdir(out), []);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
    await fs.rm(out, { recursive: true, force: true });
  }
});

store.run();
fetch.run();
