// Runs every uvu suite (files named *.test.ts under test/) through tsx, after building the compiled JS
// that worker threads and `node runtime/main.js` load, and the dashboard page. Ends with the line "N passed, N failed".
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
// the TypeScript sources, then the dashboard page the API serves (dashboard/dist)
const tsc = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
const build = tsc.status === 0 ? spawnSync(process.execPath, ['dashboard/build.mjs'], { cwd: root, stdio: 'inherit' }) : tsc;
if (build.status !== 0) {
  console.log('0 passed, 1 failed (build failed)');
  process.exit(1);
}
const pattern = process.argv[2] ?? '\\.test\\.ts$';
const uvu = path.join(root, 'node_modules', 'uvu', 'bin.js');
const child = spawn(process.execPath, [uvu, '-r', 'tsx', 'test', pattern], {
  cwd: root,
  env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
let out = '';
child.stdout.on('data', (d) => {
  out += d;
  process.stdout.write(d);
});
child.on('close', (code) => {
  const num = (label) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(out)?.[1] ?? 0);
  const total = num('Total');
  const passed = num('Passed');
  const skipped = num('Skipped');
  let failed = total - passed - skipped;
  if (code !== 0 && failed === 0) failed = 1; // a suite crashed before uvu could count it
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(code === 0 && failed === 0 ? 0 : 1);
});
