/**
 * Which addresses a peer may make this node dial. Peer exchange takes addresses from strangers: unchecked, a peer
 * could list a thousand "peers" at addresses in this node's own network (or names that resolve there) and have the
 * node scan it. The rule, stated once:
 * - only /ip4 or /ip6 addresses over TCP with /ws or /wss (names are not dialled: what they resolve to is unknown),
 * - whose /p2p id, if any, is the listed peer's,
 * - in a public range, or in a range this node itself listens in (loopback only when it listens on loopback,
 *   private only when it listens on a private address): a node on a LAN or on 127.0.0.1 finds its neighbours
 *   there, and a node on the internet never dials into anyone's LAN,
 * - never an unspecified address (0.0.0.0, ::), multicast or broadcast,
 * - at most MAX_DIAL_ADDRS per peer.
 */
import { isIPv4, isIPv6 } from 'node:net';

export type Range = 'loopback' | 'private' | 'public' | 'reserved';

export const MAX_DIAL_ADDRS = 4;

function v4(ip: string): Range {
  const [a = 0, b = 0, c = 0, d = 0] = ip.split('.').map(Number);
  if (a === 127) return 'loopback';
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127)) return 'private';
  if (a === 0 || a >= 224 || (a === 255 && b === 255 && c === 255 && d === 255)) return 'reserved';
  return 'public';
}

function v6(ip: string): Range {
  const s = ip.toLowerCase();
  if (s === '::1') return 'loopback';
  if (s === '::' || s.startsWith('ff')) return 'reserved';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (mapped) return v4(mapped[1]!);
  if (/^f[cd]/.test(s) || /^fe[89ab]/.test(s)) return 'private';
  return 'public';
}

/** The range of an IP address; 'reserved' for what is never dialled, and for anything that is not an IP. */
export function rangeOf(ip: string): Range {
  if (isIPv4(ip)) return v4(ip);
  if (isIPv6(ip)) return v6(ip);
  return 'reserved';
}

const ADDR = /^\/(ip4|ip6)\/([^/]+)\/tcp\/(\d{1,5})\/(ws|wss|tls\/ws)(?:\/p2p\/(\w+))?$/;

/** The ranges a node may dial, given the addresses it listens on: public always, plus those it is in itself. */
export function dialRanges(listening: readonly string[]): Set<Range> {
  const ranges = new Set<Range>(['public']);
  for (const a of listening) {
    const m = /^\/(ip4|ip6)\/([^/]+)\//.exec(a);
    if (!m) continue;
    const r = rangeOf(m[2]!);
    if (r === 'loopback' || r === 'private') ranges.add(r);
  }
  return ranges;
}

/** The addresses of `peer` this node may dial (with /p2p/ appended), in the order given, at most MAX_DIAL_ADDRS. */
export function dialable(peer: string, addrs: readonly string[], ranges: ReadonlySet<Range>): string[] {
  const out: string[] = [];
  for (const a of addrs) {
    const m = ADDR.exec(a);
    if (!m) continue;
    const [, , ip, port, , id] = m;
    if (id !== undefined && id !== peer) continue;
    if (Number(port) < 1 || Number(port) > 65535) continue;
    if (!ranges.has(rangeOf(ip!))) continue;
    out.push(id ? a : `${a}/p2p/${peer}`);
    if (out.length >= MAX_DIAL_ADDRS) break;
  }
  return out;
}
