/**
 * A relay for the Stately inspector, bound to loopback: it passes every websocket message from one client to
 * the watching others, keeps the last few for late joiners, and serves a page that embeds the hosted inspector and
 * feeds it the messages. (@statelyai/inspect's own server does the same but listens on every interface.)
 *
 * What it carries is private (every actor's events: job args and env), and any web page the user has open can
 * try a websocket to 127.0.0.1. So:
 * - watching (receiving messages) and the page itself need the relay's random token, which only the page URL
 *   printed in the node's log carries;
 * - a connection from a web page (it has an Origin header) needs the token as well, and an Origin of the relay's
 *   own page; anything else is refused at the upgrade with 403;
 * - a local process (no Origin: a node or `replay --inspect` joining a relay another process started) may
 *   publish without the token, but receives nothing;
 * - a message over MAX_MESSAGE_BYTES closes its connection and is not kept; kept messages are capped in count
 *   and in bytes.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';

export const INSPECTOR_UI = 'https://stately.ai/inspect';
const KEEP = 500;
export const MAX_MESSAGE_BYTES = 1024 * 1024;
export const MAX_KEPT_BYTES = 8 * 1024 * 1024;

export interface InspectorRelay {
  /** Where to publish (no token: a publisher receives nothing). */
  readonly url: string;
  /** Where to watch: `url` with the token. */
  readonly watchUrl: string;
  /** The page to open in a browser (carries the token). */
  readonly page: string;
  stop(): void;
}

function sameToken(given: string | null, token: string): boolean {
  if (given === null || given.length !== token.length) return false;
  return timingSafeEqual(Buffer.from(given), Buffer.from(token));
}

function bridgePage(wsUrl: string): string {
  return `<!DOCTYPE html>
<html><head><title>DMS actors: Stately inspector</title>
<style>*{margin:0;padding:0}html,body{height:100%}iframe{width:100%;height:100%;border:none}</style></head>
<body><iframe id="inspector" src="${INSPECTOR_UI}"></iframe>
<script>
  const iframe = document.getElementById('inspector');
  const buffer = [];
  let connected = false;
  window.addEventListener('message', (e) => {
    if (e.data && e.data.type === '@statelyai.connected') {
      connected = true;
      buffer.splice(0).forEach((ev) => iframe.contentWindow.postMessage(ev, '*'));
    }
  });
  const ws = new WebSocket(${JSON.stringify(wsUrl)});
  ws.onmessage = (m) => {
    const data = JSON.parse(m.data);
    if (connected) iframe.contentWindow.postMessage(data, '*');
    else buffer.push(data);
  };
</script></body></html>`;
}

export async function startInspectorRelay(init: { host: string; port: number }): Promise<InspectorRelay> {
  const token = randomBytes(16).toString('hex');
  const server = http.createServer();
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  const watchers = new Set<WebSocket>();
  const kept: string[] = [];
  let keptBytes = 0;
  let origin = '';
  server.on('upgrade', (req, socket, head) => {
    const u = new URL(req.url ?? '/', 'http://relay');
    const watching = sameToken(u.searchParams.get('token'), token);
    const from = req.headers.origin;
    if (from !== undefined && (!watching || from !== origin)) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (watching) {
        watchers.add(ws);
        for (const m of kept) ws.send(m);
      }
      ws.on('close', () => watchers.delete(ws));
      ws.on('error', () => ws.terminate()); // e.g. a message over maxPayload: the connection closes with 1009
      ws.on('message', (data, binary) => {
        if (binary) return;
        const msg = data.toString();
        kept.push(msg);
        keptBytes += msg.length;
        while (kept.length > KEEP || keptBytes > MAX_KEPT_BYTES) keptBytes -= kept.shift()!.length;
        for (const c of watchers) if (c !== ws && c.readyState === WebSocket.OPEN) c.send(msg);
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(init.port, init.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  origin = `http://${init.host}:${port}`;
  const url = `ws://${init.host}:${port}`;
  const watchUrl = `${url}/?token=${token}`;
  server.on('request', (req, res) => {
    const u = new URL(req.url ?? '/', 'http://relay');
    if (!sameToken(u.searchParams.get('token'), token)) {
      res.writeHead(403, { 'content-type': 'text/plain' });
      res.end('this page needs the token printed in the node\'s log\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
    res.end(bridgePage(watchUrl));
  });
  return {
    url,
    watchUrl,
    page: `${origin}/?token=${token}`,
    stop() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.close();
    },
  };
}
