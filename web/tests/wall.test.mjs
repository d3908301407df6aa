// The video wall filled by grid, in Debian's chromium against the real
// daemon: a grid's panel offers its cameras to the wall with their count (none:
// the button is off), the wall shows exactly those, and the tour (轮巡) goes
// through the cameras of the street the shown one stands in, not every camera.
// The grid and street of each camera come from the server (GET /api/cameras).
import assert from 'node:assert/strict';
import { browser, Daemon, login, newPage, ready, run, shot, until } from './harness.mjs';

const ctx = {};
// seeded units (layers/): 中关村街道 › 怡新园社区 › its 1st grid, 学院路街道's
// 福光村社区 8th grid (no camera), and a spot of 海淀街道
const GRID = { id: '110108011001001', name: '怡新园社区第1网格', at: [116.3287, 39.9906] };
const EMPTY = { id: '110108010002008', at: [116.3498, 39.9996] };
const CAMS = [
  { id: 'wall-a', name: '怡新园东', lon: 116.3295, lat: 39.9910 },
  { id: 'wall-b', name: '怡新园西', lon: 116.3280, lat: 39.9900 },
  { id: 'wall-c', name: '塔景园', lon: 116.30, lat: 39.98 },
];

async function setup() {
  ctx.d = await Daemon.start([['op1', 'operator'], ['adm', 'admin']]);
  for (const c of CAMS) {
    const r = await ctx.d.api('POST', '/api/cameras', {
      token: ctx.d.tokens.adm,
      body: { ...c, url: 'rtsp://127.0.0.1:9/none', heading: 0, fov: 60, range_m: 50 },
    });
    assert.equal(r.status, 201, r.text);
    ctx[c.id] = r.json.grid_id;
  }
  ctx.b = await browser();
  ctx.page = await newPage(ctx.b, { width: 1280, height: 720 });
  await login(ctx.page, ctx.d.url, 'op1', 'op1-password');
  await ready(ctx.page);
}

/** Clicks the map at lon/lat (zoomed in there) and waits for the grid's panel. */
async function openGrid(page, at, id) {
  await page.evaluate((c) => window.gridcc.map.jumpTo({ center: c, zoom: 14 }), at);
  // the grid drawn under the spot (not every tile: buildings draw slowly here)
  await until(page, ({ c, gid }) => window.gridcc.map.queryRenderedFeatures(window.gridcc.map.project(c),
    { layers: ['grid-fill'] }).some((f) => String(f.properties.id ?? f.id) === gid), { c: at, gid: id },
  { timeout: 180000, what: `grid ${id} drawn` });
  const box = await page.evaluate((c) => {
    const p = window.gridcc.map.project(c);
    const r = window.gridcc.map.getCanvas().getBoundingClientRect();
    return { x: r.left + p.x, y: r.top + p.y };
  }, at);
  await page.mouse.click(box.x, box.y);
  await until(page, (gid) => document.querySelector('#detail')?.textContent.includes(gid), id,
    { what: `the panel of grid ${id}` });
  return page.waitForSelector('#grid-to-wall');
}

async function test_grid_to_wall() {
  const page = ctx.page;
  // the server's word on where each stands
  assert.deepEqual(CAMS.map((c) => ctx[c.id] === GRID.id), [true, true, false]);
  await until(page, (n) => window.gridcc.state.cameras.size === n, CAMS.length, { what: 'the cameras' });
  const btn = await openGrid(page, GRID.at, GRID.id);
  assert.equal(await btn.getAttribute('data-cameras'), '2');
  assert.equal(await btn.isDisabled(), false);
  assert.match(await btn.textContent(), /该网格视频上墙 \(2 路\)|Grid's cameras to the wall \(2 cameras\)/);
  await shot(page, '20-grid-panel-cameras');
  await btn.click();
  await page.waitForSelector('#video-wall:not([hidden])');
  const shown = await page.evaluate(() => window.gridcc.wall.tiles.map((tl) => tl.camera?.id ?? null));
  assert.deepEqual(shown.filter(Boolean).sort(), ['wall-a', 'wall-b'], JSON.stringify(shown));
  assert.match(await page.textContent('#wall-status'), new RegExp(`${GRID.name} · 2 `));
  await shot(page, '21-wall-by-grid');
}

async function test_tour_goes_through_the_street() {
  const page = ctx.page;
  // the wall opened afresh shows every camera, wall-a first
  if (await page.isVisible('#video-wall')) await page.click('#wall-close');
  await page.click('#wall-toggle');
  await page.waitForSelector('#video-wall:not([hidden])');
  assert.equal(await page.evaluate(() => window.gridcc.wall.tiles[0].camera?.id), 'wall-a');
  // its grid's two cameras fit the 4 tiles: the tour takes its street's, not all 3
  await page.click('#wall-tour');
  const status = await page.textContent('#wall-status');
  assert.match(status, /中关村街道 · 1–2\/2$/, status);
  await page.click('#wall-tour');   // off again
  await page.click('#wall-close');
}

async function test_grid_without_cameras() {
  if (await ctx.page.isVisible('#video-wall')) await ctx.page.click('#wall-close');
  const btn = await openGrid(ctx.page, EMPTY.at, EMPTY.id);
  assert.equal(await btn.getAttribute('data-cameras'), '0');
  assert.equal(await btn.isDisabled(), true);
  assert.deepEqual(ctx.page.problems, []);
}

try {
  await setup();
} catch (e) {   // the daemon and the browser go, whatever failed
  console.log(`FAIL setup\n${e.stack || e}`);
  await ctx.b?.close();
  await ctx.d?.stop().catch(() => {});
  process.exit(1);
}
await run([test_grid_to_wall, test_tour_goes_through_the_street, test_grid_without_cameras], async () => {
  await ctx.b?.close();
  await ctx.d?.stop();
});
