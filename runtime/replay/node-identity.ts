/**
 * Which node a data dir is: its peer id as its log records it (the `identity` meta row the node writes at start),
 * else as its key file gives it (read only), and a short label for timelines.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { KEY_FILE } from '../node/identity.ts';

/** The peer id of the node whose data dir this is, from its key file; null when there is none (or it is unreadable). */
export async function peerIdFromKeyFile(dataDir: string): Promise<string | null> {
  try {
    return peerIdFromPrivateKey(privateKeyFromProtobuf(await fs.readFile(path.join(dataDir, KEY_FILE)))).toString();
  } catch {
    return null;
  }
}

/** `12D3KooWPnDL…HpAEFvc`: enough of a peer id to tell nodes apart in a line. */
export function shortPeer(peer: string): string {
  return peer.length > 20 ? `${peer.slice(0, 12)}…${peer.slice(-6)}` : peer;
}

/**
 * Labels for several data dirs: their base names (`A`, `B`, `node-1`) when those are short and distinct, else
 * `n1`, `n2`, ... in the order given.
 */
export function dirLabels(dirs: readonly string[]): string[] {
  const names = dirs.map((d) => path.basename(path.resolve(d)));
  const ok = names.every((n) => n.length > 0 && n.length <= 12 && !/\s/.test(n)) && new Set(names).size === names.length;
  return ok ? names : dirs.map((_, i) => `n${i + 1}`);
}
