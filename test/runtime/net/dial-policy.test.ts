// Which addresses a stranger's peer list can make this node dial (runtime/net/dial-policy.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MAX_DIAL_ADDRS, dialRanges, dialable, rangeOf } from '../../../runtime/net/dial-policy.ts';

const PEER = '12D3KooWPeer';
const OTHER = '12D3KooWOther';

test('rangeOf: loopback, private (RFC 1918, link-local, CGNAT, ULA), reserved and public', () => {
  const cases: [string, string][] = [
    ['127.0.0.1', 'loopback'], ['127.9.9.9', 'loopback'], ['::1', 'loopback'],
    ['10.1.2.3', 'private'], ['172.16.0.1', 'private'], ['172.31.255.255', 'private'], ['192.168.1.1', 'private'],
    ['169.254.1.1', 'private'], ['100.64.0.1', 'private'], ['fd00::1', 'private'], ['fe80::1', 'private'], ['::ffff:10.0.0.1', 'private'],
    ['0.0.0.0', 'reserved'], ['::', 'reserved'], ['224.0.0.1', 'reserved'], ['255.255.255.255', 'reserved'], ['ff02::1', 'reserved'], ['example.com', 'reserved'],
    ['172.32.0.1', 'public'], ['8.8.8.8', 'public'], ['2001:db8::1', 'public'], ['100.128.0.1', 'public'],
  ];
  for (const [ip, range] of cases) assert.is(rangeOf(ip), range, ip);
});

test('dialRanges: public always; loopback or private only when the node listens there', () => {
  assert.equal([...dialRanges([])], ['public']);
  assert.equal([...dialRanges(['/ip4/127.0.0.1/tcp/1/ws'])].sort(), ['loopback', 'public']);
  assert.equal([...dialRanges(['/ip4/192.168.1.5/tcp/1/ws', '/ip4/127.0.0.1/tcp/1/ws'])].sort(), ['loopback', 'private', 'public']);
  assert.equal([...dialRanges(['/dns4/example.com/tcp/1/ws'])], ['public']);
});

test('a node on the internet dials only public addresses, never a name, and appends the peer id', () => {
  const ranges = dialRanges(['/ip4/203.0.113.7/tcp/9000/ws']);
  const got = dialable(PEER, ['/ip4/127.0.0.1/tcp/1/ws', '/ip4/10.0.0.2/tcp/1/ws', '/dns4/intranet.local/tcp/80/ws', '/ip4/198.51.100.1/tcp/9000/ws'], ranges);
  assert.equal(got, [`/ip4/198.51.100.1/tcp/9000/ws/p2p/${PEER}`]);
});

test('a node listening on loopback dials loopback (the tests), but not a private range it is not in', () => {
  const ranges = dialRanges(['/ip4/127.0.0.1/tcp/4001/ws']);
  assert.equal(dialable(PEER, ['/ip4/127.0.0.1/tcp/4002/ws', '/ip4/192.168.0.9/tcp/4002/ws'], ranges), [`/ip4/127.0.0.1/tcp/4002/ws/p2p/${PEER}`]);
});

test('an address naming another peer id, a non-websocket transport, a bad port or an unspecified host is refused', () => {
  const ranges = dialRanges(['/ip4/127.0.0.1/tcp/4001/ws']);
  const addrs = [
    `/ip4/127.0.0.1/tcp/4002/ws/p2p/${OTHER}`,
    '/ip4/127.0.0.1/tcp/4002',
    '/ip4/127.0.0.1/udp/4002/quic',
    '/ip4/127.0.0.1/tcp/0/ws',
    '/ip4/127.0.0.1/tcp/70000/ws',
    '/ip4/0.0.0.0/tcp/4002/ws',
    '/ip4/127.0.0.1/tcp/4002/ws/p2p-circuit',
  ];
  assert.equal(dialable(PEER, addrs, ranges), []);
  assert.equal(dialable(PEER, [`/ip4/127.0.0.1/tcp/4002/ws/p2p/${PEER}`], ranges), [`/ip4/127.0.0.1/tcp/4002/ws/p2p/${PEER}`]);
});

test(`at most ${MAX_DIAL_ADDRS} addresses per peer`, () => {
  const ranges = dialRanges(['/ip4/127.0.0.1/tcp/4001/ws']);
  const many = Array.from({ length: 32 }, (_, i) => `/ip4/127.0.0.${i + 1}/tcp/4002/ws`);
  assert.is(dialable(PEER, many, ranges).length, MAX_DIAL_ADDRS);
});

test.run();
