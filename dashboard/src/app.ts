/**
 * The node's dashboard page: Preact + htm, bundled by build.mjs. It reads the node's `/v1` routes (the session
 * cookie stands for the API token) and refetches a view only when the node pushes that something it shows changed
 * (`/dashboard/events`, Server-Sent Events): no polling. Statecharts and the topology arrive laid out (the node
 * runs elkjs); this page only draws them as SVG.
 */
import { h, render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';

const html = htm.bind(h);
type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any -- the API's answers, shown as they come

// ---------------------------------------------------------------------------------------------- the session

/**
 * The session's secret: handed over once in the login redirect's fragment (#s=...), then kept in this origin's
 * localStorage (no other port or site can read it). Every API request and the live stream carry it.
 */
const SECRET_KEY = 'dms-dashboard-secret';
const secret = (() => {
  const m = /^#s=([\w-]+)$/.exec(location.hash);
  if (m) {
    localStorage.setItem(SECRET_KEY, m[1]!);
    history.replaceState(null, '', location.pathname);
  }
  return localStorage.getItem(SECRET_KEY) ?? '';
})();

// ---------------------------------------------------------------------------------------------- live topics

/** Versions of what the node said changed: `info`, `jobs`, `job:<id>`, `allocations`, `actors`, `actor:<id>`, `peers`. */
const versions = new Map<string, number>();
const listeners = new Set<() => void>();
function bump(topics: Iterable<string>): void {
  for (const t of topics) versions.set(t, (versions.get(t) ?? 0) + 1);
  for (const l of listeners) l();
}
function useTopics(topics: readonly string[]): number {
  const sum = () => topics.reduce((n, t) => n + (versions.get(t) ?? 0), versions.get('all') ?? 0);
  const [v, setV] = useState(sum);
  useEffect(() => {
    const l = () => setV(sum());
    listeners.add(l);
    return () => void listeners.delete(l);
  }, [topics.join('|')]);
  return v;
}

/** Which views an actor's event may change. */
function topicsOf(actor: string): string[] {
  const t = ['actors', `actor:${actor}`];
  const [kind, id] = [actor.slice(0, actor.indexOf('/')), actor.slice(actor.indexOf('/') + 1)];
  if (actor === 'node') t.push('info', 'allocations');
  else if (kind === 'job' || kind === 'ensemble') t.push('jobs', `job:${id.split('.')[0]}`);
  else if (kind === 'provider' || kind === 'allocation') t.push('allocations', 'info');
  return t;
}

function useLive(): boolean {
  const [live, setLive] = useState(false);
  useEffect(() => {
    const es = new EventSource(`/dashboard/events?s=${encodeURIComponent(secret)}`);
    es.addEventListener('open', () => {
      setLive(true);
      bump(['all']); // (re)connected: whatever changed meanwhile
    });
    es.addEventListener('error', () => setLive(false));
    es.addEventListener('activity', (e) => {
      const { events, dropped } = JSON.parse((e as MessageEvent).data) as { events: { actor: string }[]; dropped: number };
      const topics = new Set<string>();
      for (const ev of events) for (const t of topicsOf(ev.actor)) topics.add(t);
      bump(dropped > 0 ? ['all'] : topics);
    });
    es.addEventListener('peers', () => bump(['peers']));
    return () => es.close();
  }, []);
  return live;
}

// ---------------------------------------------------------------------------------------------- the API

async function api(path: string, body?: unknown): Promise<Json> {
  const init: RequestInit = body === undefined ? { headers: { 'x-dms-dashboard': secret } } : { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', 'x-dms-dashboard': secret } };
  const r = await fetch(path, { credentials: 'same-origin', ...init });
  const data = await r.json().catch(() => null);
  if (!r.ok) throw new Error(data?.error ?? `${r.status} ${r.statusText}`);
  return data;
}

function useResource(path: string | null, topics: readonly string[]): { data: Json; error: string | null } {
  const v = useTopics(topics);
  const [state, setState] = useState<{ data: Json; error: string | null; path: string | null }>({ data: null, error: null, path: null });
  useEffect(() => {
    if (!path) return;
    let current = true;
    api(path).then(
      (data) => current && setState({ data, error: null, path }),
      (e: Error) => current && setState((s) => ({ data: s.path === path ? s.data : null, error: e.message, path })),
    );
    return () => void (current = false);
  }, [path, v]);
  return state.path === path ? state : { data: null, error: null };
}

// ---------------------------------------------------------------------------------------------- helpers

const short = (s: string | null | undefined, n = 8) => (s ? (s.length > n + 2 ? `…${s.slice(-n)}` : s) : '—');
const time = (ms: number | null | undefined) => (ms ? new Date(ms).toLocaleTimeString() : '—');
const GiB = 2 ** 30;
const amount = (resource: string, v: number) => (resource === 'cpu' ? `${+v.toFixed(2)}` : v >= GiB ? `${(v / GiB).toFixed(1)} GiB` : `${Math.round(v / 2 ** 20)} MiB`);
const stateName = (value: Json): string => (typeof value === 'string' ? value : value && typeof value === 'object' ? Object.entries(value).map(([k, v]) => `${k}.${stateName(v)}`).join(', ') : String(value));
const State = ({ s }: { s: string }) => html`<span class=${`state ${s}`}>${s}</span>`;

/** The paths of the active states in a snapshot value: `{a: 'b'}` is `a` and `a.b`. */
function activePaths(value: Json, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix + value];
  if (!value || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => [prefix + k, ...activePaths(v, `${prefix}${k}.`)]);
}

// ---------------------------------------------------------------------------------------------- views

function NodeView() {
  const { data: info, error } = useResource('/v1/info', ['info', 'peers']);
  if (error) return html`<section class="error">${error}</section>`;
  if (!info) return html`<p class="loading">Loading…</p>`;
  const cap = info.capability ?? {};
  const bars = ['cpu', 'memory', 'disk'].map((r) => {
    const reg = cap.registered?.[r] ?? 0;
    const alloc = cap.allocated?.[r] ?? 0;
    const locked = cap.locked?.[r] ?? 0;
    const pct = (x: number) => (reg > 0 ? `${(100 * x) / reg}%` : '0%');
    return html`<div class="bar" data-resource=${r}>
      <strong>${r}</strong>
      <div class="track" title=${`allocated ${amount(r, alloc)}, locked ${amount(r, locked)} of ${amount(r, reg)}`}>
        <div class="allocated" style=${{ width: pct(alloc) }}></div><div class="locked" style=${{ width: pct(locked) }}></div>
      </div>
      <span class="muted">${amount(r, cap.available?.[r] ?? 0)} free of ${amount(r, reg)}</span>
    </div>`;
  });
  const id = info.identity ?? {};
  return html`<div class="grid2">
    <section><h2>Identity</h2><dl class="kv">
      <dt>peer id</dt><dd class="mono" data-testid="peer-id">${id.peerId}</dd>
      <dt>did</dt><dd class="mono">${id.did}</dd>
      <dt>uuid</dt><dd class="mono">${id.uuid}</dd>
      <dt>state</dt><dd><${State} s=${info.state} /></dd>
      <dt>peers</dt><dd>${info.peerCount ?? info.peers ?? '—'}</dd>
      <dt>listen</dt><dd class="mono">${(info.listen ?? []).map((a: string) => html`<div>${a}</div>`)}</dd>
      <dt>data dir</dt><dd class="mono">${info.dataDir}</dd>
    </dl></section>
    <section><h2>Capability</h2>
      <div class="bars" data-testid="capability">${bars}</div>
      <p class="legend"><span><i style="background:var(--accent)"></i>allocated</span><span><i style="background:var(--warn)"></i>locked</span><span><i style="background:#eef0f4"></i>available</span></p>
      <h2>Benchmark</h2>
      ${info.benchmark ? html`<dl class="kv">${Object.entries(info.benchmark).filter(([, v]) => typeof v !== 'object').map(([k, v]) => html`<dt>${k}</dt><dd>${String(v)}</dd>`)}</dl>` : html`<p class="muted">not measured yet</p>`}
      ${info.monitoring?.diskFull ? html`<p class="error">The data dir's disk is under its free-space floor: new work is declined.</p>` : null}
    </section>
  </div>`;
}

/** A laid-out graph as SVG: as wide as its container at most (scaled down to fit), never scaled up. */
function Graph({ g, active, cls }: { g: Json; active?: Set<string>; cls: (n: Json) => string }) {
  if (!g || !g.nodes) return null;
  const pad = 10;
  const w = g.width + 2 * pad;
  return html`<svg style=${{ width: '100%', maxWidth: `${w}px`, height: 'auto' }} viewBox=${`${-pad} ${-pad} ${w} ${g.height + 2 * pad}`}>
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#7d879a" /></marker></defs>
    ${g.nodes.map((n: Json) => {
      const on = active?.has(n.path);
      return html`<g class=${`${cls(n)}${on ? ' active' : ''}`} data-path=${n.path} data-active=${on ? 'true' : 'false'}>
        <rect x=${n.x} y=${n.y} width=${n.w} height=${n.h} rx="8" />
        <text x=${n.type === 'compound' || n.type === 'parallel' ? n.x + 10 : n.x + n.w / 2} y=${n.type === 'compound' || n.type === 'parallel' ? n.y + 17 : n.y + n.h / 2 + 4} text-anchor=${n.type === 'compound' || n.type === 'parallel' ? 'start' : 'middle'}>${n.initial ? '→ ' : ''}${n.label}</text>
      </g>`;
    })}
    ${g.edges.map((e: Json) => html`<g class="edge"><title>${(e.events ?? [e.label]).join(', ')}</title>
      <path d=${e.points.map((p: Json, i: number) => `${i ? 'L' : 'M'}${p.x},${p.y}`).join(' ')} marker-end=${cls({ type: 'x' }) === 'peer' ? '' : 'url(#arrow)'} />
      ${e.labelAt && e.label ? html`<text x=${e.labelAt.x} y=${e.labelAt.y + 10}>${e.label}</text>` : null}
    </g>`)}
  </svg>`;
}

function PeersView() {
  const { data: peers, error } = useResource('/v1/peers', ['peers']);
  const { data: layout } = useResource('/v1/topology/layout', ['peers']);
  return html`<div class="grid2">
    <section><h2>Peers</h2>
      ${error ? html`<p class="error">${error}</p>` : null}
      <table data-testid="peers"><thead><tr><th>peer</th><th>address</th><th>RTT</th><th>dir</th></tr></thead><tbody>
      ${(peers ?? []).map((p: Json) => html`<tr><td class="mono" title=${p.peer}>${short(p.peer, 12)}</td><td class="mono">${p.remoteAddr}</td><td>${p.rttMs === null ? '—' : `${p.rttMs.toFixed(1)} ms`}</td><td>${p.direction}</td></tr>`)}
      </tbody></table>
      ${peers && peers.length === 0 ? html`<p class="muted">No peers connected.</p>` : null}
    </section>
    <section><h2>Topology</h2><${Graph} g=${layout} cls=${(n: Json) => `peer ${n.type}`} /></section>
  </div>`;
}

function Logs({ id }: { id: string }) {
  const v = useTopics([`job:${id}`]);
  const [text, setText] = useState<{ stream: string; text: string }[]>([]);
  const next = useRef(0);
  useEffect(() => {
    next.current = 0;
    setText([]);
  }, [id]);
  useEffect(() => {
    let current = true;
    void (async () => {
      for (let i = 0; i < 20 && current; i += 1) {
        const page = await api(`/v1/logs/${encodeURIComponent(id)}?offset=${next.current}`).catch(() => null);
        if (!page || !current) return;
        next.current = page.next;
        if (page.chunks.length) setText((t) => [...t, ...page.chunks].slice(-500));
        if (page.eof || page.chunks.length === 0) return;
      }
    })();
    return () => void (current = false);
  }, [id, v]);
  return html`<pre class="logs" data-testid="logs">${text.length ? text.map((c) => html`<span class=${c.stream}>${c.text}</span>`) : html`<span class="muted">no output yet</span>`}</pre>`;
}

function JobDetail({ id }: { id: string }) {
  const { data: job, error } = useResource(`/v1/jobs/${encodeURIComponent(id)}`, [`job:${id}`]);
  const [busy, setBusy] = useState<string | null>(null);
  if (error) return html`<section class="error">${error}</section>`;
  if (!job) return html`<section class="loading">Loading…</section>`;
  const ended = job.endedAt !== null && job.endedAt !== undefined;
  const cancel = () => {
    setBusy('cancelling…');
    api(`/v1/jobs/${encodeURIComponent(id)}/cancel`, {}).then(() => setBusy(null), (e: Error) => setBusy(e.message));
  };
  return html`<section data-testid="job-detail"><h2>Job ${job.name}</h2>
    <div class="row"><${State} s=${job.state} /><span class="mono">${job.id}</span>
      ${ended ? null : html`<button class="act danger" data-testid="cancel" onClick=${cancel}>Cancel</button>`}${busy ? html`<span class="muted">${busy}</span>` : null}</div>
    <p>${job.message}</p>
    <dl class="kv"><dt>provider</dt><dd class="mono">${job.provider ?? '—'}</dd><dt>rounds</dt><dd>${job.rounds ?? '—'}</dd>
      <dt>exit code</dt><dd>${job.exitCode ?? '—'}</dd><dt>created</dt><dd>${time(job.createdAt)}</dd><dt>ended</dt><dd>${time(job.endedAt)}</dd>
      ${job.instances ? html`<dt>instances</dt><dd>${Object.entries(job.instances.byState ?? job.instances).filter(([, n]) => typeof n === 'number').map(([s, n]) => `${s} ${n}`).join(', ')}</dd>` : null}</dl>
    ${job.parts && job.parts.length > 1 ? html`<h2>Parts</h2><table><thead><tr><th>part</th><th>state</th><th>provider</th><th>restarts</th></tr></thead><tbody>
      ${job.parts.map((p: Json) => html`<tr><td>${p.name}</td><td><${State} s=${p.state} /></td><td class="mono">${short(p.provider, 12)}</td><td>${p.restarts}</td></tr>`)}</tbody></table>` : null}
    <h2>Bids (latest round, best first)</h2>
    <table><thead><tr><th>rank</th><th>provider</th><th>price</th><th>score</th><th>RTT</th><th>outcome</th></tr></thead><tbody>
    ${(job.bids ?? []).map((b: Json) => html`<tr><td>${b.rank}</td><td class="mono" title=${b.provider}>${short(b.provider, 12)}</td><td>${b.price}</td><td>${b.score}</td><td>${b.rttMs} ms</td><td>${b.outcome}${b.note ? ` (${b.note})` : ''}</td></tr>`)}
    </tbody></table>
    <h2>History</h2>
    <table><tbody>${(job.history ?? []).map((e: Json) => html`<tr><td>${time(e.at)}</td><td><${State} s=${e.state} /></td><td>${e.message}</td></tr>`)}</tbody></table>
    <h2>Logs</h2><${Logs} id=${id} />
  </section>`;
}

function Deploy({ onDeployed }: { onDeployed: (id: string) => void }) {
  const [msg, setMsg] = useState<{ error?: string; ok?: string } | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const input = (e.target as HTMLFormElement).querySelector('input[type=file]') as HTMLInputElement;
    const files = [...(input.files ?? [])];
    const jobFile = files.find((f) => /\.(ya?ml|json)$/i.test(f.name));
    if (!jobFile) return setMsg({ error: 'choose a job file (.yaml, .yml or .json), with the module it names' });
    const others: Record<string, string> = {};
    for (const f of files) {
      if (f === jobFile) continue;
      const bytes = new Uint8Array(await f.arrayBuffer());
      let bin = '';
      for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      others[f.name] = btoa(bin);
    }
    setMsg({ ok: 'deploying…' });
    try {
      const rec = await api('/v1/deploy/file', { name: jobFile.name, text: await jobFile.text(), files: others });
      setMsg({ ok: `deployed ${rec.id}` });
      onDeployed(rec.id);
    } catch (err) {
      setMsg({ error: (err as Error).message });
    }
  };
  return html`<form class="row" onSubmit=${submit} data-testid="deploy">
    <input type="file" multiple accept=".yaml,.yml,.json,.wasm,.wat" /><button class="act" type="submit">Deploy</button>
    ${msg?.error ? html`<span class="error">${msg.error}</span>` : msg?.ok ? html`<span class="muted">${msg.ok}</span>` : null}
  </form>`;
}

function JobsView() {
  const { data: jobs, error } = useResource('/v1/jobs', ['jobs']);
  const [sel, setSel] = useState<string | null>(null);
  const list: Json[] = Array.isArray(jobs) ? [...jobs].reverse() : [];
  return html`<div class="grid2">
    <section><h2>Deploy a job file</h2><${Deploy} onDeployed=${setSel} />
      <h2 style="margin-top:16px">Jobs this node asked for</h2>
      ${error ? html`<p class="error">${error}</p>` : null}
      <table data-testid="jobs"><thead><tr><th>job</th><th>name</th><th>state</th><th>provider</th></tr></thead><tbody>
      ${list.map((j) => html`<tr class=${`click${sel === j.id ? ' sel' : ''}`} data-job=${j.id} onClick=${() => setSel(j.id)}>
        <td class="mono">${short(j.id)}</td><td>${j.name}</td><td><${State} s=${j.state} /></td><td class="mono">${short(j.provider, 10)}</td></tr>`)}
      </tbody></table>
      ${list.length === 0 ? html`<p class="muted">No jobs yet.</p>` : null}
    </section>
    ${sel ? html`<${JobDetail} id=${sel} />` : html`<section class="muted">Choose a job to see its bids, history and logs.</section>`}
  </div>`;
}

function AllocationsView() {
  const { data, error } = useResource('/v1/allocations', ['allocations']);
  const rows: Json[] = Array.isArray(data) ? [...data].reverse() : [];
  return html`<section><h2>Allocations on this node</h2>
    ${error ? html`<p class="error">${error}</p>` : null}
    <table data-testid="allocations"><thead><tr><th>allocation</th><th>job</th><th>requester</th><th>state</th><th>cpu</th><th>memory</th><th>created</th><th>ended</th></tr></thead><tbody>
    ${rows.map((a) => html`<tr><td class="mono">${short(a.id, 14)}</td><td>${a.name ?? '—'}</td><td class="mono">${short(a.requester ?? a.holder, 10)}</td><td>${a.state ? html`<${State} s=${a.state} />` : a.endedAt ? 'ended' : 'held'}</td>
      <td>${a.resources?.cpu ?? '—'}</td><td>${a.resources?.memory ? amount('memory', a.resources.memory) : '—'}</td><td>${time(a.createdAt)}</td><td>${time(a.runEndedAt ?? a.endedAt)}</td></tr>`)}
    </tbody></table>
    ${rows.length === 0 ? html`<p class="muted">Nothing has run here yet.</p>` : null}
  </section>`;
}

function ActorDetail({ id }: { id: string }) {
  const { data: actor, error } = useResource(`/v1/actors/${encodeURIComponent(id)}`, [`actor:${id}`]);
  const kind = actor?.kind ?? null;
  const { data: chart, error: chartError } = useResource(kind ? `/v1/machines/${kind}` : null, []);
  if (error) return html`<section class="error">${error}</section>`;
  if (!actor) return html`<section class="loading">Loading…</section>`;
  const active = new Set(activePaths(actor.value));
  return html`<section data-testid="actor-detail"><h2>${actor.kind} actor</h2>
    <div class="row"><span class="mono">${actor.id}</span><${State} s=${stateName(actor.value)} /><span class="muted">${actor.status}${actor.restarts ? `, ${actor.restarts} restarts` : ''}</span></div>
    <div data-testid="statechart" data-state=${stateName(actor.value)} style="overflow:auto;margin-top:10px">
      ${chartError ? html`<p class="error">${chartError}</p>` : html`<${Graph} g=${chart} active=${active} cls=${(n: Json) => `st ${n.type}`} />`}
    </div>
    <h2>Recent events</h2>
    <ol class="events" data-testid="events">${[...(actor.events ?? [])].reverse().map((e: Json) => html`<li><span class="mono">#${e.seq}</span> ${time(e.ts)} <strong>${e.type}</strong> <span class="muted">from ${short(e.origin, 10)}</span></li>`)}</ol>
    <details><summary>Context</summary><pre class="logs">${JSON.stringify(actor.context, null, 2)}</pre></details>
  </section>`;
}

function ActorsView() {
  const { data: actors, error } = useResource('/v1/actors', ['actors']);
  const [sel, setSel] = useState<string>('node');
  return html`<div>
    <section style="max-height:280px;margin-bottom:16px"><h2>Actors</h2>
      ${error ? html`<p class="error">${error}</p>` : null}
      <table data-testid="actors"><thead><tr><th>actor</th><th>kind</th><th>state</th><th>last event</th></tr></thead><tbody>
      ${(actors ?? []).map((a: Json) => html`<tr class=${`click${sel === a.id ? ' sel' : ''}`} data-actor=${a.id} onClick=${() => setSel(a.id)}>
        <td class="mono">${a.id}</td><td>${a.kind}</td><td><${State} s=${stateName(a.value)} /></td><td>${a.lastEvent?.type ?? '—'}</td></tr>`)}
      </tbody></table>
    </section>
    <${ActorDetail} id=${sel} />
  </div>`;
}

const VIEWS = { node: NodeView, peers: PeersView, jobs: JobsView, allocations: AllocationsView, actors: ActorsView } as const;
type ViewName = keyof typeof VIEWS;

function App() {
  const live = useLive();
  const { data: info } = useResource('/v1/info', ['info']);
  const initial = (location.hash.slice(1) in VIEWS ? location.hash.slice(1) : 'node') as ViewName;
  const [view, setView] = useState<ViewName>(initial);
  const go = (v: ViewName) => {
    history.replaceState(null, '', `#${v}`);
    setView(v);
  };
  const View = VIEWS[view];
  return html`<header><h1>DMS node</h1><span class="id mono">${info?.identity?.peerId ?? ''}</span>
      <span class=${`live ${live ? 'on' : 'off'}`} data-testid="live">${live ? 'live' : 'reconnecting…'}</span></header>
    <nav>${(Object.keys(VIEWS) as ViewName[]).map((v) => html`<button class=${view === v ? 'sel' : ''} data-view=${v} onClick=${() => go(v)}>${v}</button>`)}</nav>
    <main><${View} /></main>`;
}

const root = document.getElementById('app')!;
root.replaceChildren(); // the "Loading…" placeholder
render(html`<${App} />`, root);
