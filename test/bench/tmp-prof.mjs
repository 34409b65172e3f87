import { fork } from 'node:child_process';
const PEER = new URL('./net-peer.mjs', import.meta.url).pathname;
const spawnPeer = (prof) => new Promise((resolve) => {
  const child = fork(PEER, [], { execArgv: prof ? ['--cpu-prof', '--cpu-prof-dir=/tmp/exp/prof2'] : [] });
  let seq = 0; const pending = new Map();
  child.on('message', (m) => {
    if (m.ready) return resolve({ child, peerId: m.peerId, addr: m.addr, call: (cmd, args = {}) => new Promise((res, rej) => { const id = ++seq; pending.set(id, { res, rej }); child.send({ id, cmd, ...args }); }) });
    const p = pending.get(m.id); pending.delete(m.id); m.ok ? p.res(m.value) : p.rej(new Error(m.error));
  });
});
const [a, b] = await Promise.all([spawnPeer(true), spawnPeer(true)]);
await a.call('connect', { addr: b.addr });
await new Promise(r => setTimeout(r, 500));
const mode = process.argv[2];
if (mode === 'rtt') { const r = await a.call('ourRtt', { peer: b.peerId, n: 5000 }); r.sort((x,y)=>x-y); console.log('p50', r[2500]); }
else { const N = 30000; const o = await a.call('ourFlood', { peer: b.peerId, n: N }); console.log('msgs/s', N / o.ms * 1000); }
await a.call('stop'); await b.call('stop');
