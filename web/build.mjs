// Builds the dashboard into dist/: the page's bundle (esbuild, no
// network) and the chunk it loads later (charts), MapLibre's worker beside it (CSP allows workers from 'self'
// only), the page and its styles. Run by scripts/setup.sh (npm run build).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync, statSync } from 'node:fs';

const out = 'dist';
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const t0 = Date.now();
await build({
  entryPoints: { app: 'src/main.ts' },
  bundle: true,
  format: 'esm',
  // ECharts in a chunk of its own, loaded after the map (figures.ts)
  splitting: true,
  chunkNames: 'chunk-[hash]',
  target: ['chrome110', 'firefox115', 'safari16'],
  minify: true,
  sourcemap: true,
  outdir: out,
  legalComments: 'linked',
  logLevel: 'warning',
  loader: { '.css': 'css' },
});
copyFileSync('node_modules/maplibre-gl/dist/maplibre-gl-worker.mjs', `${out}/maplibre-gl-worker.mjs`);
copyFileSync('index.html', `${out}/index.html`);
copyFileSync('favicon.svg', `${out}/favicon.svg`);
const kb = (f) => Math.round(statSync(`${out}/${f}`).size / 1024);
console.log(`web: built ${out}/ in ${Date.now() - t0} ms (app.js ${kb('app.js')} KiB, app.css ${kb('app.css')} KiB, worker ${kb('maplibre-gl-worker.mjs')} KiB)`);
