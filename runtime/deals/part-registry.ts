/**
 * The ensemble parts on this provider, by allocation: which ensemble and part each is, its requester, the ports
 * its ledger assigned, the providers of its ensemble (`members`, from `deal.allocate` and `part.start`) and the
 * tunnel listeners opened for the parts it depends on. It answers the tunnel acceptor (`authorize`): a stream may
 * reach a named port of a part that runs here, from a peer that runs a part of the same ensemble (or from its
 * requester). A part is known from its allocate (members only) and live from its first `execution.start` until its
 * allocation ends, when its listeners close.
 */
import type { PartMember, PartAddress } from '../../machines/deal.wire.ts';
import { parseDealKey } from '../../machines/deal.ids.ts';
import { addrEnvName, portEnvName } from '../../machines/ensemble.ts';
import type { JobSpec, PartRole } from '../../machines/job.ts';
import type { Libp2pHost } from '../net/libp2p-host.ts';
import { type TunnelAcceptor, type TunnelGrant, handleTunnels } from '../net/tunnel/tunnel-acceptor.ts';
import type { TunnelLog } from '../net/tunnel/tunnel-counters.ts';
import { type TunnelListener, openTunnelListener } from '../net/tunnel/tunnel-listener.ts';
import type { TunnelHeader } from '../net/tunnel/tunnel.protocol.ts';

/** Parts known here at once (live or noted at their allocate); past it the oldest not yet live is forgotten. */
export const MAX_KNOWN_PARTS = 4096;

/** One part on this provider. */
export interface PartEntry {
  readonly allocationId: string;
  /** The ensemble's job id (`job.part.ensemble`): what a tunnel header names as its `deal`. */
  readonly ensemble: string;
  readonly part: string;
  readonly requester: string;
  /** Its named ports and the port the ledger gave each; empty until it starts. */
  readonly ports: Readonly<Record<string, number>>;
  /** Which provider runs each part of its ensemble. */
  readonly members: readonly PartMember[];
  /** The local ends of the tunnels to the parts it depends on. */
  readonly listeners: readonly TunnelListener[];
  /** Its execution was started (and its allocation has not ended). */
  readonly live: boolean;
}

export class PartRegistry {
  /** By allocation id, in the order they became known. */
  readonly #parts = new Map<string, PartEntry>();
  /**
   * Why a part's deal may no longer be reached (refused `unauthorized`): the grant it was accepted under lapsed (set
   * by the deal service, deal-grants.ts); null when it may.
   */
  lapsed: (allocationId: string) => string | null = () => null;

  /** The members of a part's ensemble, as the requester sent them (with its allocate, or a `part.start`). */
  noteMembers(allocationId: string, role: Pick<PartRole, 'ensemble' | 'name'>, requester: string, members: readonly PartMember[]): void {
    const e = this.#parts.get(allocationId);
    if (e) return void this.#parts.set(allocationId, { ...e, members });
    this.#parts.set(allocationId, { allocationId, ensemble: role.ensemble, part: role.name, requester, ports: {}, members, listeners: [], live: false });
    this.#bound();
  }

  /**
   * A part's execution is being started (again): it is live, on the ports its env names (`DMS_PORT_<NAME>`, what
   * the ledger gave it). Nothing for a job that is no part.
   */
  started(allocationId: string, job: JobSpec, env: Readonly<Record<string, string>> | undefined): void {
    const role = job.part;
    const requester = parseDealKey(allocationId)?.requester;
    if (!role || !requester) return;
    const ports: Record<string, number> = {};
    for (const name of role.ports) {
      const n = Number(env?.[portEnvName(name)]);
      if (Number.isInteger(n) && n > 0 && n < 65536) ports[name] = n;
    }
    const e = this.#parts.get(allocationId);
    this.#parts.set(allocationId, { allocationId, ensemble: role.ensemble, part: role.name, requester, ports, members: e?.members ?? [], listeners: e?.listeners ?? [], live: true });
    this.#bound();
  }

  /** Keeps the listeners opened for a part's dependencies; those it had are closed (a new `part.start`). */
  async keepListeners(allocationId: string, listeners: readonly TunnelListener[]): Promise<void> {
    const e = this.#parts.get(allocationId);
    if (!e) return closeAll(listeners);
    this.#parts.set(allocationId, { ...e, listeners });
    await closeAll(e.listeners.filter((l) => !listeners.includes(l)));
  }

  get(allocationId: string): PartEntry | undefined {
    return this.#parts.get(allocationId);
  }

  /** The live part `part` of the requester's ensemble here, if one runs. */
  find(ensemble: string, requester: string, part: string): PartEntry | undefined {
    for (const e of this.#parts.values()) if (e.live && e.ensemble === ensemble && e.requester === requester && e.part === part) return e;
    return undefined;
  }

  /** The part's allocation ended: its listeners close and it is forgotten. */
  async end(allocationId: string): Promise<void> {
    const e = this.#parts.get(allocationId);
    this.#parts.delete(allocationId);
    if (e) await closeAll(e.listeners);
  }

  /**
   * The tunnel acceptor's question: may `fromPeer` reach `header` (ensemble, part, named port)? Yes when a live
   * part here has that port and the peer runs a part of its ensemble, or is its requester: the ledger's port.
   */
  authorize(fromPeer: string, header: TunnelHeader): TunnelGrant {
    const inEnsemble = [...this.#parts.values()].filter((e) => e.live && e.ensemble === header.deal);
    if (inEnsemble.length === 0) return { refused: 'unknown-deal' };
    const named = inEnsemble.filter((e) => e.part === header.part);
    if (named.length === 0) return { refused: 'unknown-part' };
    const withPort = named.filter((e) => Object.hasOwn(e.ports, header.port));
    if (withPort.length === 0) return { refused: 'unknown-port', detail: `${header.deal}/${header.part} has no port named ${header.port}` };
    for (const e of withPort) {
      // the members of every part of the same ensemble here (a part.start after a move updates its receiver's)
      const members = inEnsemble.filter((o) => o.requester === e.requester).flatMap((o) => o.members);
      if (fromPeer !== e.requester && !members.some((m) => m.provider === fromPeer)) continue;
      const lapsed = this.lapsed(e.allocationId);
      return lapsed ? { refused: 'unauthorized', detail: lapsed } : { port: e.ports[header.port]! };
    }
    return { refused: 'not-allowed', detail: `${fromPeer} runs no part of ${header.deal}` };
  }

  get size(): number {
    return this.#parts.size;
  }

  /** Over the bound, the oldest parts not yet live go first (a live part stays until its allocation ends). */
  #bound(): void {
    for (const [id, e] of this.#parts) {
      if (this.#parts.size <= MAX_KNOWN_PARTS) return;
      if (!e.live) this.#parts.delete(id);
    }
  }
}

async function closeAll(listeners: readonly TunnelListener[]): Promise<void> {
  await Promise.all(listeners.map((l) => l.close().catch(() => {})));
}

/** What `openPartAddrs` needs. */
export interface PartAddrsDeps {
  readonly parts: PartRegistry;
  /** This node's peer id. */
  readonly self: string;
  /** The libp2p host tunnels are dialled from; undefined while the network is down (no tunnel can open). */
  readonly host: Pick<Libp2pHost, 'dialProtocol'> | undefined;
  readonly log: TunnelLog & { error(obj: object, msg?: string): void };
}

/**
 * The addresses a held part starts with: for each port of a part it depends on, `DMS_ADDR_<PART>_<PORT>` ->
 * `127.0.0.1:PORT`: that part's own port when it runs on this node, else the local end of a tunnel to its
 * provider. An address no tunnel could be opened for is left out (and logged): the part starts without it.
 */
export async function openPartAddrs(deps: PartAddrsDeps, ensemble: string, requester: string, addrs: readonly PartAddress[], have: readonly TunnelListener[] = []): Promise<{ addrsEnv: Record<string, string>; listeners: TunnelListener[] }> {
  const addrsEnv: Record<string, string> = {};
  const listeners: TunnelListener[] = [];
  for (const a of addrs) {
    const name = addrEnvName(a.part, a.port);
    const local = a.provider === deps.self ? deps.parts.find(ensemble, requester, a.part)?.ports[a.port] : undefined;
    if (local !== undefined) {
      addrsEnv[name] = `127.0.0.1:${local}`;
      continue;
    }
    try {
      const { peerIdFromString } = await import('@libp2p/peer-id');
      // a part that runs already keeps its addresses: its listener is pointed at the part's new provider
      const kept = have.find((l) => l.target.part === a.part && l.target.port === a.port);
      if (kept) {
        kept.retarget(peerIdFromString(a.provider));
        listeners.push(kept);
        addrsEnv[name] = kept.address;
        continue;
      }
      if (!deps.host) throw new Error('the network is not running');
      const l = await openTunnelListener(deps.host, { peer: peerIdFromString(a.provider), target: { deal: ensemble, part: a.part, port: a.port }, log: deps.log });
      listeners.push(l);
      addrsEnv[name] = l.address;
    } catch (e) {
      deps.log.error({ ensemble, part: a.part, port: a.port, provider: a.provider, err: (e as Error).message }, `could not open a tunnel to ${a.part}/${a.port} on ${a.provider}; the part starts without ${name}`);
    }
  }
  return { addrsEnv, listeners };
}

/** Takes tunnel streams for the parts running here, as the registry allows (the network's protocol handler). */
export function servePartTunnels(host: Pick<Libp2pHost, 'handle' | 'unhandle'>, parts: PartRegistry, log: TunnelLog): Promise<TunnelAcceptor> {
  return handleTunnels(host, { authorize: (fromPeer, header) => parts.authorize(fromPeer, header), log });
}

/** The part registry of a deal service (one per node), made on first use. */
const registries = new WeakMap<object, PartRegistry>();
export function partsOf(owner: object): PartRegistry {
  let r = registries.get(owner);
  if (!r) registries.set(owner, (r = new PartRegistry()));
  return r;
}
