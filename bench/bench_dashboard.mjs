// The dashboard's figures in headless chromium (software GL: --disable-gpu,
// so the GPU is SwiftShader on the CPU, sharing the 2 cores with the daemon
// and the senders):
//  1. cold load: a new browser profile (no cache) opens the wall with a token
//     and waits for the first complete map (every source loaded, all 234
//     grids rendered); the first run also finds the daemon's tile cache cold.
//  2. frame time: requestAnimationFrame intervals in the page over SECONDS
//     while RATE positions/s arrive from WORKERS devices through the OsmAnd
//     port, with the sample's 21,500 buildings in view (the daemon serves
//     building tiles from zoom 12 and the page shows them from there). The
//     baseline, in the same run and page: MapLibre repainting every frame
//     with nothing but its background (what software GL costs here before
//     gridcc draws anything); the ratio is printed.
//   node bench/bench_dashboard.mjs [SECONDS=10] [RATE=2000] [WORKERS=200] [RUNS=5]
// Run from the repository root after scripts/setup.sh.
import http from 'node:http';
import { browser, Daemon, gridcc, newPage, until } from '../web/tests/harness.mjs';

const [SECONDS = 10, RATE = 2000, WORKERS = 200, RUNS = 5] = process.argv.slice(2).map(Number);
const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]; };

const d = await Daemon.start([['bench', 'operator']], ['--tile-minzoom', 'building=12']);
process.stderr.write(`bench: registering ${WORKERS} simulated devices\n`);
for (let i = 0; i < WORKERS; i++) {
  gridcc(['user', 'add', `bw${i}`, '--role', 'worker', '--db', d.db]);
  gridcc(['device', 'add', `bdev${i}`, '--worker', `bw${i}`, '--db', d.db]);
}
const b = await browser();

async function openWall() {
  const ctx = await b.newContext({ viewport: { width: 1920, height: 1080 } });
  await ctx.addInitScript((t) => localStorage.setItem('gridcc.token', t), d.tokens.bench);
  const page = await ctx.newPage();
  const t0 = Date.now();
  await page.goto(d.url + '/');
  // one poll for the lot (Playwright's waitForSelector polls on animation
  // frames, which a busy software-GL page gives late: it added ~0.3 s)
  await until(page, () => {
    const m = window.gridcc?.map;
    if (document.body.dataset.ready !== '1' || !m || !m.loaded() || !m.areTilesLoaded()) return false;
    return new Set(m.queryRenderedFeatures({ layers: ['grid-fill'] }).map((f) => f.properties.id)).size === 234;
  }, null, { timeout: 60000, what: 'the complete map' });
  const ms = Date.now() - t0;
  // the page's own mark of its complete map (its first rest with the grids
  // coloured), from the navigation's start: what the harness sees comes
  // later by however long the page's next tasks (the figures) keep its
  // polling waiting
  const mark = await until(page, () => performance.getEntriesByName('gridcc:map-complete')[0]?.startTime, null,
    { timeout: 60000, what: 'the map-complete mark' });
  return { page, ctx, ms, mark: Math.round(mark) };
}

// 1. cold loads
const loads = [], marks = [];
for (let i = 0; i < RUNS; i++) {
  const { ctx, ms, mark } = await openWall();
  loads.push(ms);
  marks.push(mark);
  await ctx.close();
}
console.log(`cold load to the complete map (234 grids), the page's mark: first ${marks[0]} ms (daemon's tile cache cold), ` +
  `then median ${pct(marks.slice(1), 50)} ms, max ${Math.max(...marks.slice(1))} ms over ${RUNS - 1} new profiles; target < 2000 ms`);
console.log(`  as the harness saw it (goto to its check of the 234 grids): first ${loads[0]} ms, ` +
  `then median ${pct(loads.slice(1), 50)} ms, max ${Math.max(...loads.slice(1))} ms`);

// 2. frame times
const { page, ctx } = await openWall();
await page.evaluate(() => window.gridcc.map.setLayerZoomRange('building-fill', 12, 24));
await until(page, () => window.gridcc.map.areTilesLoaded() && window.gridcc.map.queryRenderedFeatures({ layers: ['building-fill'] }).length > 0,
  null, { timeout: 60000, what: 'buildings drawn' });
const buildings = await page.evaluate(() => new Set(window.gridcc.map.queryRenderedFeatures({ layers: ['building-fill'] }).map((f) => f.properties.id)).size);
async function frames(seconds, repaint = false) {
  await page.evaluate(({ s, repaint }) => new Promise((resolve) => {
    const out = [];
    // what made the map draw meanwhile: its repaints, counted
    window.__renders = 0;
    if (!window.__counting) { window.__counting = true; window.gridcc.map.on('render', () => { window.__renders++; }); }
    let last = performance.now();
    const end = last + s * 1000;
    const tick = (now) => {
      out.push(now - last);
      last = now;
      if (repaint) window.gridcc.map.triggerRepaint();
      if (now < end) requestAnimationFrame(tick); else { window.__frames = out; resolve(); }
    };
    requestAnimationFrame(tick);
  }), { s: seconds, repaint });
  const { f, r } = await page.evaluate(() => ({ f: window.__frames, r: window.__renders }));
  return Object.assign(f, { renders: r });
}
// the floor: a repaint every frame of MapLibre with only its background
const hidden = await page.evaluate(() => {
  const m = window.gridcc.map;
  const ids = m.getStyle().layers.map((l) => l.id).filter((id) => id !== 'bg' && m.getLayoutProperty(id, 'visibility') !== 'none');
  ids.forEach((id) => m.setLayoutProperty(id, 'visibility', 'none'));
  return ids;
});
const floor = await frames(Math.min(SECONDS, 5), true);
await page.evaluate((ids) => ids.forEach((id) => window.gridcc.map.setLayoutProperty(id, 'visibility', 'visible')), hidden);
await until(page, () => window.gridcc.map.areTilesLoaded(), null, { timeout: 60000 });
const idle = await frames(Math.min(SECONDS, 5));

// the senders: RATE fixes/s in batches every 50 ms, devices walking in the district
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
let sent = 0, failed = 0, stop = false, tick = 0;
const pos = Array.from({ length: WORKERS }, (_, i) => [116.30 + (i % 20) * 0.003, 39.98 + Math.floor(i / 20) * 0.004]);
function batch(n) {
  const t = Date.now();
  const body = [];
  for (let k = 0; k < n; k++) {
    const i = (sent + k) % WORKERS;
    pos[i][0] += (Math.random() - 0.5) * 0.0002;
    pos[i][1] += (Math.random() - 0.5) * 0.0002;
    body.push({ device_id: `bdev${i}`, location: { timestamp: new Date(t + tick).toISOString(), coords: { latitude: pos[i][1], longitude: pos[i][0] } } });
  }
  tick++;
  sent += n;
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: d.osmandPort, path: '/batch', method: 'POST', agent,
      headers: { 'Content-Type': 'application/json' } }, (r) => { r.resume(); if (r.statusCode !== 200) failed += n; r.on('end', resolve); });
    req.on('error', () => { failed += n; resolve(); });
    req.end(JSON.stringify(body));
  });
}
const perTick = Math.max(1, Math.round(RATE / 20));
const senders = (async () => {
  const t0 = Date.now();
  for (let k = 0; !stop; k++) {
    const due = t0 + k * 50;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    void batch(perTick);
  }
})();
const applied0 = await page.evaluate(() => window.gridcc.live.applied);
const t0 = Date.now();
const busy = await frames(SECONDS);
const secs = (Date.now() - t0) / 1000;
const applied = (await page.evaluate(() => window.gridcc.live.applied)) - applied0;
stop = true;
await senders;
const show = (a) => `p50 ${pct(a, 50).toFixed(1)} ms, p95 ${pct(a, 95).toFixed(1)} ms, p99 ${pct(a, 99).toFixed(1)} ms (${a.length} frames, ${a.renders} of them the map's)`;
console.log(`buildings rendered in view: ${buildings}`);
console.log(`frame time, baseline (MapLibre repainting its background only): ${show(floor)}`);
console.log(`frame time, the wall idle (nothing changing): ${show(idle)}`);
console.log(`frame time under ${Math.round(sent / secs)} positions/s sent (${failed} refused), ${Math.round(applied / secs)} position changes/s applied in the page: ${show(busy)}`);
console.log(`ratio p95 busy/baseline: ${(pct(busy, 95) / pct(floor, 95)).toFixed(2)}; target p95 < 50 ms (software GL)`);
await ctx.close();
await b.close();
await d.stop();
