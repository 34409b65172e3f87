// `demo`, as a new user runs it first: three real nodes, a WASM deal, then the ensemble act (a service on B, a
// task on C reading it through the nodes' tunnel), cancel, and clean up. Its exit code says whether all of it worked.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli, killAll } from './harness.ts';

test('demo: the deal completes, the client on C reads kv on B through the tunnel, cancel leaves nothing held', async () => {
  try {
    const r = await cli(['demo'], { timeoutMs: 150_000 });
    assert.is(r.code, 0, `demo exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /The job completed with exit code 0 on [BC]/);
    assert.match(r.stdout, /\[stdout\] the client read value-42 from kv at 127\.0\.0\.1:\d+/);
    assert.match(r.stdout, /the ensemble is cancelled; kv was stopped on B, and B and C hold nothing for it any more/);
    assert.match(r.stdout, /12\. Stopping the nodes\./);
  } finally {
    await killAll();
  }
});

test.run();
