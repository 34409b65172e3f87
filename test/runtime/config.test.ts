// parseRunConfig without starting a node: what each flag becomes in the frozen RunConfig, and which values are
// refused as bad usage (a UsageError naming the flag; the CLI turns it into exit code 2).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_MIN_FREE_DISK, MAX_PEERS_RANGE, type RawOptions, type RunConfig, parseRunConfig, resolveMinFreeDisk } from '../../runtime/config.ts';

/** A data dir given, so the environment and home directory play no part. */
const BASE: RawOptions = { dataDir: '/tmp/dms-config-test' };
const parse = (raw: RawOptions): RunConfig => parseRunConfig({ ...BASE, ...raw }, {});

/** The error parse throws for `raw`; fails the test when it throws none. */
function refusal(raw: RawOptions): Error {
  try {
    parse(raw);
  } catch (e) {
    return e as Error;
  }
  assert.unreachable(`${JSON.stringify(raw)} was accepted`);
  throw new Error('unreachable');
}

const MaxPeers = suite('config: --max-peers');

MaxPeers('absent: null, so the network keeps its default', () => {
  assert.is(parse({}).maxPeers, null);
});

MaxPeers('a whole number in range is taken, bounds included', () => {
  assert.is(parse({ maxPeers: '8' }).maxPeers, 8);
  assert.is(parse({ maxPeers: String(MAX_PEERS_RANGE.min) }).maxPeers, 1);
  assert.is(parse({ maxPeers: String(MAX_PEERS_RANGE.max) }).maxPeers, 150);
});

for (const bad of ['0', '151', '2.5', 'x', '', ' ', '-3']) {
  MaxPeers(`"${bad}" is bad usage, naming --max-peers and the range`, () => {
    const e = refusal({ maxPeers: bad });
    assert.is(e.name, 'UsageError');
    assert.is(e.message, `--max-peers "${bad}" must be a whole number from 1 to 150, e.g. --max-peers 50`);
  });
}

MaxPeers.run();

const MinFreeDisk = suite('config: --min-free-disk');
const GiB = 1024 ** 3;

MinFreeDisk('absent: 1 GiB or 5% of the disk, whichever is smaller', () => {
  const rule = parse({}).minFreeDisk;
  assert.equal(rule, DEFAULT_MIN_FREE_DISK);
  assert.is(resolveMinFreeDisk(rule, 100 * GiB), GiB, 'a 100 GiB disk keeps 1 GiB');
  assert.is(resolveMinFreeDisk(rule, 10 * GiB), Math.floor(0.5 * GiB), 'a 10 GiB disk keeps 5%');
});

MinFreeDisk('a size or a share of the disk (up to 50%); 0 never declines for disk', () => {
  assert.is(resolveMinFreeDisk(parse({ minFreeDisk: '2GiB' }).minFreeDisk, 100 * GiB), 2 * GiB);
  assert.is(resolveMinFreeDisk(parse({ minFreeDisk: '10%' }).minFreeDisk, 100 * GiB), 10 * GiB);
  assert.is(resolveMinFreeDisk(parse({ minFreeDisk: '0.5%' }).minFreeDisk, 100 * GiB), Math.floor(0.5 * GiB));
  assert.is(resolveMinFreeDisk(parse({ minFreeDisk: '0' }).minFreeDisk, 100 * GiB), 0);
  assert.is(resolveMinFreeDisk(parse({ minFreeDisk: '1048576' }).minFreeDisk, 100 * GiB), 1024 ** 2);
});

for (const bad of ['x', '', '-1GiB', '60%', '%', '1.5.5%']) {
  MinFreeDisk(`"${bad}" is bad usage, naming --min-free-disk`, () => {
    const e = refusal({ minFreeDisk: bad });
    assert.is(e.name, 'UsageError');
    assert.match(e.message, `--min-free-disk "${bad}" is not a size or a share of the disk up to 50%`);
  });
}

MinFreeDisk.run();

const Retain = suite('config: --retain');

Retain('absent: 7 days; a duration of at least an hour; 0 keeps everything', () => {
  assert.is(parse({}).retainMs, 7 * 24 * 3_600_000);
  assert.is(parse({ retain: '36h' }).retainMs, 36 * 3_600_000);
  assert.is(parse({ retain: '1h' }).retainMs, 3_600_000);
  assert.is(parse({ retain: '0' }).retainMs, 0);
});

for (const bad of ['x', '', '-1d', '10m', '59m']) {
  Retain(`"${bad}" is bad usage, naming --retain`, () => {
    const e = refusal({ retain: bad });
    assert.is(e.name, 'UsageError');
    assert.match(e.message, `--retain "${bad}" is not a duration of at least 1h`);
  });
}

Retain('--retain-history: absent 1 GiB; a size of at least 64 MiB; 0 for no cap', () => {
  assert.is(parse({}).retainHistoryBytes, 1024 ** 3);
  assert.is(parse({ retainHistory: '256MiB' }).retainHistoryBytes, 256 * 1024 ** 2);
  assert.is(parse({ retainHistory: '0' }).retainHistoryBytes, 0);
});

for (const bad of ['x', '', '-1GiB', '1MiB', '10%']) {
  Retain(`"${bad}" is bad usage, naming --retain-history`, () => {
    const e = refusal({ retainHistory: bad });
    assert.is(e.name, 'UsageError');
    assert.match(e.message, `--retain-history "${bad}" is not a size of at least 64MiB`);
  });
}

Retain.run();
