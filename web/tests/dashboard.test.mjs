// The dashboard in Debian's chromium against the real daemon on the sample
// district: sign-in, the map's 234 grids, a case reported through the API
// reaching the map and the feed, an operator dispatching it from the page
// while a second page watches, a cut websocket, zh/en, what a worker may do,
// a hostile description, and screenshots at 1920×1080 and 3840×2160.
import assert from 'node:assert/strict';
import { browser, Daemon, login, newPage, ready, run, shot, SIZES, until } from './harness.mjs';

const ctx = {};
const HOSTILE = '<img src=x onerror=alert(1)>';
// a point inside the sample district (清华园街道)
const AT = { lon: 116.33, lat: 40.0 };

async function report(description, extra = {}) {
  const r = await ctx.d.api('POST', '/api/incidents', {
    token: ctx.d.tokens.op1, body: { category: 'E01.01', description, ...AT, ...extra },
  });
  assert.equal(r.status, 201, r.text);
  return r.json.properties;
}

async function signedIn(user, size = SIZES.hd) {
  const page = await newPage(ctx.b, size);
  await login(page, ctx.d.url, user, `${user}-password`);
  await ready(page);
  return page;
}

/** The grids drawn on the map, once the tiles of its final view are in
 * (the view is fitted to the district after the first load). */
// every street of the sample district is named on the district's view
// (two of six lost their places to community names while those were drawn
// above them)
const SAMPLE_STREETS = ['中关村街道', '学院路街道', '海淀街道', '清华园街道', '燕园街道', '花园路街道'];
async function streetsNamed(page) {
  const named = () => [...new Set(window.gridcc.map
    .queryRenderedFeatures({ layers: ['street-labels'] }).map((f) => f.properties.name))].sort();
  // labels are placed a frame after their tiles: given that frame, then read
  await until(page, (n) => (window.gridcc.map.queryRenderedFeatures({ layers: ['street-labels'] }).length >= n),
    SAMPLE_STREETS.length, { what: 'the streets named' }).catch(() => {});
  return page.evaluate(named);
}

async function renderedGrids(page) {
  const count = () => (window.gridcc.map.areTilesLoaded()
    ? new Set(window.gridcc.map.queryRenderedFeatures({ layers: ['grid-fill'] }).map((f) => f.properties.id)).size : 0);
  const deadline = Date.now() + 30000;
  let n = 0;
  while ((n = await page.evaluate(count)) !== 234 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return n;
}

async function setup() {
  ctx.d = await Daemon.start([
    ['op1', 'operator'], ['op2', 'operator'], ['walker', 'worker'], ['runner', 'worker'], ['cg', 'department', ['--department', '城管']],
  ]);
  ctx.b = await browser();
}

async function test_bad_login_then_login() {
  const page = await newPage(ctx.b);
  await login(page, ctx.d.url, 'op1', 'not-the-password');
  await until(page, () => document.querySelector('.login-error')?.textContent.length > 0);
  assert.match(await page.textContent('.login-error'), /错误|Wrong/);
  assert.equal(await page.$('#map'), null, 'the wall shows behind a failed sign-in');
  await shot(page, '01-bad-login');
  await page.fill('input[name=password]', 'op1-password');
  await page.click('button[type=submit]');
  await ready(page);
  assert.equal(await page.$('#login'), null);
  ctx.op = page;
  await shot(page, '02-wall');
  assert.deepEqual(page.problems, []);
}

async function test_map_shows_all_grids() {
  const page = ctx.op;
  assert.equal(await renderedGrids(page), 234);
  assert.deepEqual(await streetsNamed(page), SAMPLE_STREETS);
}

async function test_reported_case_reaches_map_and_feed() {
  const page = ctx.op;
  const t0 = Date.now();
  const c = await report('路灯不亮 test-live');
  await until(page, (no) => window.gridcc.state.incidents.has(no) &&
    [...document.querySelectorAll('#feed li')].some((li) => li.textContent.includes(no)), c.case_no, { timeout: 10000 });
  console.log(`     case ${c.case_no} on the page ${Date.now() - t0} ms after the POST`);
  // and drawn: zoom in where it is and find it among the rendered points
  await page.evaluate(({ lon, lat }) => window.gridcc.map.jumpTo({ center: [lon, lat], zoom: 17 }), AT);
  await until(page, (no) => window.gridcc.map.queryRenderedFeatures({ layers: ['incidents'] })
    .some((f) => f.properties.case_no === no), c.case_no, { timeout: 10000 });
  await shot(page, '03-case-on-map');
  ctx.case = c;
}

async function test_operator_dispatches_from_the_page() {
  const watcher = await signedIn('op2');
  const page = ctx.op;
  const no = ctx.case.case_no;
  await page.evaluate((n) => window.gridcc.openCase(n), no);
  await page.click('button.act-register');
  await page.waitForSelector('button.act-dispatch');
  await page.click('button.act-dispatch');
  await page.selectOption('#action-form select[name=department]', '城管');
  await shot(page, '04-dispatch-form');
  await page.click('#action-form button[type=submit]');
  await page.waitForSelector('#detail span.status.st-dispatched');
  // the second page learns it through /live
  await until(watcher, (n) => window.gridcc.state.incidents.get(n)?.properties.status === 'dispatched', no, { timeout: 10000 });
  const r = await ctx.d.api('GET', `/api/incidents/${no}`, { token: ctx.d.tokens.op1 });
  assert.equal(r.json.properties.status, 'dispatched');
  assert.equal(r.json.properties.department, '城管');
  await shot(page, '05-dispatched');
  await watcher.close();
}

async function test_cut_connection_loses_and_doubles_nothing() {
  const page = ctx.op;
  await page.evaluate(() => window.gridcc.live.cut());
  await page.waitForSelector('#offline:not([hidden])');
  await shot(page, '06-offline-banner');
  const made = [];
  for (let i = 0; i < 5; i++) made.push((await report(`断线期间 ${i}`)).case_no);
  await page.waitForSelector('#offline', { state: 'hidden', timeout: 30000 });
  await until(page, (nos) => nos.every((n) => window.gridcc.state.incidents.has(n)), made, { timeout: 10000 });
  const log = await page.evaluate(() => window.gridcc.live.log);
  assert.equal(new Set(log).size, log.length, `a change applied twice: ${log}`);
  const sorted = [...log].sort((a, b) => a - b);
  assert.deepEqual(log, sorted, 'changes applied out of order');
  // every change the store made since the page started is there, once
  const feed = await page.$$eval('#feed li', (lis) => lis.map((li) => li.textContent));
  for (const n of made) assert.equal(feed.filter((t) => t.includes(n)).length, 1, `${n} in the feed ${feed.filter((t) => t.includes(n)).length} times`);
}

async function test_language_switch() {
  const page = ctx.op;
  assert.equal(await page.textContent('#title'), '网格化管理指挥中心');
  await page.click('#lang');
  assert.equal(await page.textContent('#title'), 'Grid Governance Command Center');
  assert.match(await page.textContent('#kpis'), /New today/);
  await shot(page, '07-english');
  await page.click('#lang');
  assert.equal(await page.textContent('#title'), '网格化管理指挥中心');
}

async function test_worker_sees_no_dispatch() {
  const c = await report('worker view test');
  await ctx.d.api('POST', `/api/incidents/${c.id}/actions`, { token: ctx.d.tokens.op1, body: { action: 'register' } });
  const page = await signedIn('walker');
  await page.evaluate((n) => window.gridcc.openCase(n), c.case_no);
  await page.waitForSelector('#detail span.status.st-registered');
  assert.equal(await page.$('button.act-dispatch'), null, 'a worker is offered dispatch');
  assert.equal(await page.$$eval('#detail button.act', (b) => b.length), 0);
  await shot(page, '08-worker-case');
  await page.close();
}

async function test_hostile_description_is_text() {
  const page = ctx.op;
  const c = await report(HOSTILE);
  await until(page, (no) => window.gridcc.state.incidents.has(no), c.case_no, { timeout: 10000 });
  await page.evaluate((n) => window.gridcc.openCase(n), c.case_no);
  await page.waitForSelector('#detail .description');
  assert.equal(await page.textContent('#detail .description'), HOSTILE);
  assert.equal(await page.$('#detail img[src="x"], #feed img'), null, 'the description became an element');
  assert.ok((await page.textContent('#feed')).includes(HOSTILE));
  assert.deepEqual(page.dialogs, [], 'a script from the description ran');
  await shot(page, '09-hostile-text');
}

/** The figures count every case of the day: one reported outside the
 * district too (the first of the stats' units alone was once taken for the
 * whole, and on a day with a case outside it the wall said 1). */
async function test_figures_count_every_case() {
  const page = ctx.op;
  await report('井盖缺失 outside', { lon: 116.2, lat: 39.9 });
  const midnight = new Date(); midnight.setHours(0, 0, 0, 0);
  const st = await ctx.d.api('GET', `/api/incidents/stats?level=district&from=${midnight.getTime() / 1000}`, { token: ctx.d.tokens.op1 });
  const units = st.json.units;
  assert.ok(units.length >= 2 && units.some((u) => !u.id), JSON.stringify(units));   // the district's and the outside's
  const want = units.reduce((a, u) => a + u.total, 0);
  const shown = await until(page, (n) => {
    const v = Number(document.querySelector('[data-kpi="today_new"] b')?.textContent);
    return v === n ? v : null;
  }, want, { timeout: 20000, what: `today's new cases to read ${want}` }).catch(() => null);
  assert.equal(shown ?? Number(await page.textContent('[data-kpi="today_new"] b')), want);
}

async function test_served_with_csp() {
  const r = await fetch(ctx.d.url + '/');
  const csp = r.headers.get('content-security-policy');
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.deepEqual(ctx.op.problems, []);
}

async function test_wall_at_4k() {
  const page = await signedIn('op2', SIZES.uhd);
  assert.equal(await renderedGrids(page), 234);
  // the whole district opens one zoom level further in than at 1080p: the
  // streets are named here too (their labels stopped at zoom 13.5 before)
  assert.deepEqual(await streetsNamed(page), SAMPLE_STREETS,
    `the streets named on the 4K wall at zoom ${await page.evaluate(() => window.gridcc.map.getZoom())}`);
  await shot(page, '10-wall');
  assert.deepEqual(page.problems, []);
  await page.close();
}

async function test_replay_shows_the_window() {
  // a worker walked east along a street two hours ago, a fix a minute
  const d = ctx.d;
  const r = await d.api('POST', '/api/devices', { token: d.tokens.op1, body: { device_id: 'dev-walker', worker: 'walker' } });
  assert.equal(r.status, 201, r.text);
  const t0 = Math.floor(Date.now() / 1000) - 2 * 3600;
  const at = (i) => ({ lon: 116.320 + i * 0.0005, lat: 40.001, t: t0 + i * 60 });
  for (let i = 0; i <= 20; i++) {
    const p = at(i);
    const f = await fetch(`http://127.0.0.1:${d.osmandPort}/?id=dev-walker&lat=${p.lat}&lon=${p.lon}&timestamp=${p.t}`);
    assert.equal(f.status, 200, await f.text());
  }
  const page = ctx.op;
  const feedTexts = () => page.$$eval('#feed li', (lis) => lis.map((li) => li.textContent));
  const liveFeed = await feedTexts();
  assert.ok(liveFeed.length > 0, 'the live feed is empty before the replay');
  await page.click('#replay-toggle');
  await page.waitForSelector('#replay-bar:not([hidden])');
  const from = (t0 - 600) * 1000, to = (t0 + 30 * 60) * 1000;
  await page.evaluate(({ from, to }) => window.gridcc.replay.load(from, to), { from, to });
  // halfway between the 10th and 11th fix: the point halfway along
  const mid = (t0 + 10 * 60 + 30) * 1000;
  const seen = await page.evaluate((m) => { window.gridcc.replay.clock.seek(m); return window.gridcc.replay.lastPositions; }, mid);
  const w = seen.find((s) => s.name === 'walker');
  assert.ok(w, `walker not in the replay at that time: ${JSON.stringify(seen)}`);
  assert.ok(Math.abs(w.at[0] - (116.320 + 10.5 * 0.0005)) < 1e-6 && Math.abs(w.at[1] - 40.001) < 1e-6, JSON.stringify(w));
  // before the first fix nobody is drawn; the live layer is not drawn meanwhile
  const before = await page.evaluate((m) => { window.gridcc.replay.clock.seek(m); return window.gridcc.replay.lastPositions; }, from);
  assert.equal(before.filter((s) => s.name === 'walker').length, 0);
  await page.evaluate((m) => window.gridcc.replay.clock.seek(m), mid);
  await shot(page, '11-replay');
  // who was in a box around the walk in that window
  const who = await page.evaluate(({ from, to }) => window.gridcc.replay.who([116.3195, 40.0005, 116.3305, 40.0015], from, to), { from, to });
  assert.deepEqual(who.map((x) => x.name), ['walker']);
  await shot(page, '12-replay-area');
  // a case reported while the replay runs stays out of the replay's feed ...
  const c = await report('replay-meanwhile');
  await until(page, (no) => window.gridcc.state.incidents.has(no), c.case_no, { timeout: 10000 });
  assert.ok(!(await feedTexts()).some((x) => x.includes(c.case_no)), 'a live line in the replay feed');
  // ... and back at now the live feed is there again, with it on top
  await page.click('#replay-toggle');
  await page.waitForSelector('#replay-bar', { state: 'hidden' });
  const after = await feedTexts();
  assert.ok(after[0].includes(c.case_no), `newest line: ${after[0]}`);
  // (other live lines may have come meanwhile: the old ones follow, in order)
  const where = liveFeed.slice(0, 10).map((x) => after.indexOf(x));
  assert.ok(where.every((i, k) => i > 0 && (k === 0 || i > where[k - 1])), `the live feed was not given back: ${JSON.stringify(where)}`);
}

async function test_workers_move_over_the_map() {
  // a worker's fix moves his marker to the spot, with the map left undrawn
  // (positions never stop: a repaint of the WebGL map per batch is what
  // froze software GL walls); his trail follows; his name shows from zoom 14
  const d = ctx.d;
  const page = ctx.op;
  await page.evaluate(() => window.gridcc.map.jumpTo({ center: [116.331, 40.0015], zoom: 16 }));
  await until(page, () => window.gridcc.map.loaded() && window.gridcc.map.areTilesLoaded() && !window.gridcc.map.isMoving(),
    null, { timeout: 30000, what: 'the map settled' });
  // every GeoJSON source of the map watched: no fix may go into one (the
  // map may still draw for other reasons meanwhile: the figures' grid colours)
  const before = await page.evaluate(() => {
    window.__fed = [];
    const m = window.gridcc.map;
    for (const id of Object.keys(m.getStyle().sources)) {
      const src = m.getSource(id);
      if (src?.type !== 'geojson' || src.__watched) continue;
      src.__watched = true;
      for (const fn of ['setData', 'updateData']) {
        const orig = src[fn].bind(src);
        src[fn] = (data, ...rest) => { window.__fed.push([id, JSON.stringify(data)]); return orig(data, ...rest); };
      }
    }
    return window.gridcc.workers.trailDraws;
  });
  const now = Math.floor(Date.now() / 1000);
  // one fix at a time: /live hands a screen only the newest fix of each
  // worker it has not sent yet, and the trail is made of those it got
  for (const [i, lon] of [116.3300, 116.3305, 116.3310].entries()) {
    const f = await fetch(`http://127.0.0.1:${d.osmandPort}/?id=dev-walker&lat=40.0015&lon=${lon}&timestamp=${now - 40 + i * 10}`);
    assert.equal(f.status, 200, await f.text());
    await until(page, (x) => window.gridcc.workers.placed().some((w) => w.name === 'walker' && w.at[0] === x && w.at[1] === 40.0015),
      lon, { timeout: 10000, what: `the walker at ${lon}` });
  }
  const seen = await page.evaluate(() => {
    const w = window.gridcc.workers.placed().find((x) => x.name === 'walker');
    const el = document.querySelector(`.worker-dot[data-wid="${w.wid}"]`);
    const box = el.getBoundingClientRect(), map = window.gridcc.map.getCanvas().getBoundingClientRect();
    const p = window.gridcc.map.project(w.at);
    const name = el.querySelector('.name');
    return { w, dx: box.left + box.width / 2 - map.left - p.x, dy: box.top + box.height / 2 - map.top - p.y,
      nameShown: getComputedStyle(name).display !== 'none', name: name.textContent,
      fed: window.__fed.filter(([, d]) => /116\.33(0|05|1)\b/.test(d) && /40\.0015/.test(d)).map(([id]) => id) };
  });
  assert.equal(seen.w.at[1], 40.0015);
  assert.ok(Math.abs(seen.dx) <= 1 && Math.abs(seen.dy) <= 1, `the marker is off its fix by ${seen.dx}, ${seen.dy} px`);
  assert.ok(seen.nameShown && seen.name === 'walker', JSON.stringify(seen));
  assert.deepEqual(seen.fed, [], 'a fix went into a source of the WebGL map');
  // the trail follows within half a second, on its canvas: its pixels
  // along the walk are lit
  await until(page, (n) => {
    if (window.gridcc.workers.trailDraws <= n) return false;
    const m = window.gridcc.map, cv = document.querySelector('.workers-trails');
    const a = m.project([116.3302, 40.0015]), r = window.devicePixelRatio || 1;
    const px = cv.getContext('2d').getImageData(Math.round(a.x * r) - 3, Math.round(a.y * r) - 3, 7, 7).data;
    for (let i = 3; i < px.length; i += 4) if (px[i] > 0) return true;
    return false;
  }, before, { timeout: 5000, what: 'the trail drawn along the walk' });
  // a second worker on the same spot: his name would cover walker's, so
  // one of the two is shown
  const r2 = await d.api('POST', '/api/devices', { token: d.tokens.op1, body: { device_id: 'dev-runner', worker: 'runner' } });
  assert.equal(r2.status, 201, r2.text);
  const f2 = await fetch(`http://127.0.0.1:${d.osmandPort}/?id=dev-runner&lat=40.0015&lon=116.331&timestamp=${now - 15}`);
  assert.equal(f2.status, 200, await f2.text());
  await until(page, () => document.querySelectorAll('.worker-dot').length === 2, null, { timeout: 10000, what: 'two workers drawn' });
  const shown = await until(page, () => {
    const n = [...document.querySelectorAll('.worker-dot .name')]
      .filter((e) => getComputedStyle(e).display !== 'none').map((e) => e.textContent);
    return n.length === 1 ? n : null;
  }, null, { timeout: 5000, what: 'one name of the two on one spot' });
  assert.ok(['walker', 'runner'].includes(shown[0]), JSON.stringify(shown));
  await shot(page, '12b-workers');
  // the runner moves on: both names again, and walker's marker free to click
  const f3 = await fetch(`http://127.0.0.1:${d.osmandPort}/?id=dev-runner&lat=40.0015&lon=116.333&timestamp=${now - 5}`);
  assert.equal(f3.status, 200, await f3.text());
  await until(page, () => [...document.querySelectorAll('.worker-dot .name')]
    .filter((e) => getComputedStyle(e).display !== 'none').length === 2, null, { timeout: 5000, what: 'both names shown apart' });
  // far out, no names; a click on the marker opens the worker's panel
  await page.evaluate(() => window.gridcc.map.jumpTo({ zoom: 12.5 }));
  assert.equal(await page.$eval('.worker-dot .name', (e) => getComputedStyle(e).display), 'none');
  await page.evaluate(() => window.gridcc.map.jumpTo({ center: [116.331, 40.0015], zoom: 16 }));
  await page.click('.worker-dot:has(.name:text-is("walker"))');
  // (the grid's panel names him too: the worker's own says when his last fix was)
  await until(page, () => /walker/.test(document.querySelector('#detail h2, #detail h3')?.textContent || '')
    && /最后定位|Last fix/.test(document.querySelector('#detail')?.textContent || ''), null,
    { timeout: 10000, what: "the worker's panel" });
  assert.deepEqual(page.problems, []);
}

async function test_sos_pulses_where_it_happens() {
  const d = ctx.d;
  const page = ctx.op;
  const now = Math.floor(Date.now() / 1000);
  const f = await fetch(`http://127.0.0.1:${d.osmandPort}/?id=dev-walker&lat=40.002&lon=116.325&timestamp=${now}&alarm=sos`);
  assert.equal(f.status, 200, await f.text());
  await page.waitForSelector('.alert-pulse.alert-sos', { timeout: 10000 });
  // his marker turns red too
  await page.waitForSelector('.worker-dot.sos:has(.name:text-is("walker"))', { timeout: 10000 });
  const feed = await page.textContent('#feed');
  assert.match(feed, /紧急求助|SOS/);
  await page.evaluate(() => window.gridcc.map.jumpTo({ center: [116.325, 40.002], zoom: 16 }));
  await shot(page, '13-sos');
}

async function test_logout() {
  const page = ctx.op;
  const token = await page.evaluate(() => localStorage.getItem('gridcc.token'));
  await page.click('#logout');
  await page.waitForSelector('#login', { timeout: 120000 });
  assert.equal((await ctx.d.api('GET', '/api/me', { token })).status, 401, 'the token works after sign-out');
}

await setup();
await run([test_bad_login_then_login, test_map_shows_all_grids, test_reported_case_reaches_map_and_feed,
  test_operator_dispatches_from_the_page, test_cut_connection_loses_and_doubles_nothing, test_language_switch,
  test_worker_sees_no_dispatch, test_hostile_description_is_text, test_figures_count_every_case, test_served_with_csp, test_wall_at_4k,
  test_replay_shows_the_window, test_workers_move_over_the_map, test_sos_pulses_where_it_happens, test_logout],
async () => { await ctx.b?.close(); await ctx.d?.stop(); });
