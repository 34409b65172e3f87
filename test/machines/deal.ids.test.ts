import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { dealKey, parseDealKey } from '../../machines/deal.ids.ts';

const REQUESTER = '12D3KooWRequesterPeer';

const Parse = suite('parseDealKey: the inverse of dealKey');

Parse('gives back the deal id, nonce and requester a key was made from', () => {
  assert.equal(parseDealKey(dealKey('0123456789abcdef0123456789abcdef', 3, REQUESTER)), {
    dealId: '0123456789abcdef0123456789abcdef',
    nonce: 3,
    requester: REQUESTER,
  });
});

Parse('round-trips deal ids with dots and @, and nonce 0', () => {
  for (const [dealId, nonce] of [['job-1', 0], ['a.b.c', 12], ['x@y.z', 1], ['7', 9_007_199_254_740_991]] as const) {
    assert.equal(parseDealKey(dealKey(dealId, nonce, REQUESTER)), { dealId, nonce, requester: REQUESTER }, dealId);
  }
});

Parse('refuses what dealKey cannot have made', () => {
  for (const key of ['', 'job-1', 'job-1.1', 'job-1@peer', '.1@peer', 'job-1.@peer', 'job-1.1@', 'job-1.x@peer', 'job-1.01@peer',
    'job-1.-1@peer', 'job-1.9007199254740992@peer']) {
    assert.is(parseDealKey(key), undefined, JSON.stringify(key));
  }
});

Parse.run();
