// Builds the dashboard page (src/) into dist/: one bundled, minified script (Preact + htm + the app), its CSS and
// index.html. Run by `npm run build` (and so by `npm install`); the node serves dist/ as it is, nothing else.
import { copyFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, 'dist');
await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await build({
  entryPoints: [path.join(here, 'src', 'app.ts')],
  outfile: path.join(dist, 'app.js'),
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  legalComments: 'none',
  logLevel: 'warning',
});
await copyFile(path.join(here, 'src', 'index.html'), path.join(dist, 'index.html'));
await copyFile(path.join(here, 'src', 'app.css'), path.join(dist, 'app.css'));
