/**
 * A relay for the Stately inspector, bound to loopback: it passes every websocket message from one client to
 * the others, keeps the last few for late joiners, and serves a page that embeds the hosted inspector and feeds
 * it the messages. (@statelyai/inspect's own server does the same but listens on every interface.)
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';

export const INSPECTOR_UI = 'https://stately.ai/inspect';
const KEEP = 500;

export interface InspectorRelay {
  readonly url: string;
  readonly page: string;
  stop(): void;
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
  const server = http.createServer();
  const wss = new WebSocketServer({ server });
  const kept: string[] = [];
  wss.on('connection', (ws) => {
    for (const m of kept) ws.send(m);
    ws.on('message', (data) => {
      const msg = data.toString();
      kept.push(msg);
      if (kept.length > KEEP) kept.shift();
      for (const c of wss.clients) if (c !== ws && c.readyState === WebSocket.OPEN) c.send(msg);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(init.port, init.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `ws://${init.host}:${port}`;
  server.on('request', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(bridgePage(url));
  });
  return {
    url,
    page: `http://${init.host}:${port}`,
    stop() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.close();
    },
  };
}
