// The /live websocket bus and the OsmAnd port, with real clients against the
// real daemon: subscribe, filters, changing filters, resume under load with no
// gap and no duplicate, resync, a stalled client, bad messages, Traccar
// Client's requests, alerts, kill -9 during ingest.
'use strict';
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const net = require('net');
const WebSocket = require('ws');
const { Daemon, Live, newDb, gridcc, run, sleep, sql, LAYERS } = require('./harness');

/* Points inside grids of the sample district: [{grid, lon, lat}], checked
 * with the daemon's own geotag. */
async function gridPoints(d, token, n) {
  const fc = JSON.parse(fs.readFileSync(path.join(LAYERS, 'grids.geojson'), 'utf8'));
  const out = [];
  for (const f of fc.features) {
    let ring = f.geometry.coordinates[0];
    if (Array.isArray(ring[0][0])) ring = ring[0];
    const lon = ring.reduce((s, p) => s + p[0], 0) / ring.length;
    const lat = ring.reduce((s, p) => s + p[1], 0) / ring.length;
    const r = await d.api('GET', `/api/geotag?lon=${lon}&lat=${lat}`, { token });
    const g = r.json && r.json.chain && r.json.chain.grid;
    if (g && !out.some((o) => o.grid === g.id)) out.push({ grid: g.id, lon, lat });
    if (out.length === n) return out;
  }
  throw new Error('not enough grid points');
}

let seqT = Math.floor(Date.now() / 1000) - 3600;
function nextTs() { return ++seqT; }

function fixQuery(dev, p, extra = '') {
  return `/?id=${dev}&lat=${p.lat}&lon=${p.lon}&timestamp=${nextTs()}${extra}`;
}

async function incident(d, token, p, i) {
  const r = await d.api('POST', '/api/incidents', {
    token, body: { category: 'E05.02', description: 'test ' + i, lon: p.lon, lat: p.lat },
  });
  assert.strictEqual(r.status, 201, r.body);
  return r.json;
}

/* Subscribes; what arrived before the answer (under the old filter) is
 * forgotten: after it, everything follows the new one. */
async function subscribed(c, msg) {
  c.send(Object.assign({ type: 'subscribe' }, msg));
  const r = await c.next((m) => m.type === 'subscribed' || m.type === 'error', 10000, 'subscribed');
  c.seen = c.seen.slice(c.seen.indexOf(r) + 1);
  c.msgs = c.msgs.filter((m) => c.seen.includes(m));
  return r;
}

let ctx;

async function setup() {
  const env = newDb('live', 3);
  const d = await Daemon.start(env.db, '--live-max-lag', '300', '--live-stall', '3');
  const pts = await gridPoints(d, env.op, 3);
  ctx = { env, d, pts };
}

async function test_auth_and_bad_messages() {
  const { d, env } = ctx;
  // no token yet: messages other than auth are refused, the connection stays
  const c = await Live.open(d.port);
  const hello = await c.next((m) => m.type === 'hello');
  assert.ok(hello.seq > 0);
  c.send({ type: 'subscribe', topics: ['incidents'] });
  let e = await c.next((m) => m.type === 'error');
  assert.strictEqual(e.code, 'unauthorized');
  c.send({ type: 'auth', token: env.op });
  await c.next((m) => m.type === 'authenticated');
  // bad subscribe messages: each a clear error naming the field
  const bad = [
    ['{"type": "subscribe", ', 'message'],
    ['[1,2]', 'type'],
    [{ type: 'subscribe', topics: 'incidents' }, 'topics'],
    [{ type: 'subscribe', topics: ['incidents', 'weather'] }, 'topics'],
    [{ type: 'subscribe', topics: ['incidents'], bbox: [116, 40, 115] }, 'bbox'],
    [{ type: 'subscribe', topics: ['incidents'], bbox: [117, 40, 116, 41] }, 'bbox'],
    [{ type: 'subscribe', topics: ['incidents'], grid: [] }, 'grid'],
    [{ type: 'subscribe', topics: ['incidents'], since: -3 }, 'since'],
    [{ type: 'subscribe', topics: ['incidents'], since: 'yesterday' }, 'since'],
    [{ type: 'dance' }, 'type'],
  ];
  for (const [m, field] of bad) {
    c.send(m);
    e = await c.next((x) => x.type === 'error', 5000, 'error for ' + JSON.stringify(m));
    assert.strictEqual(e.field, field, JSON.stringify(e));
    assert.ok(e.message.length > 10);
  }
  // still usable
  const s = await subscribed(c, { topics: ['incidents'] });
  assert.strictEqual(s.type, 'subscribed');
  c.send({ type: 'ping' });
  await c.next((m) => m.type === 'pong');
  c.close();

  // a bad token: told why, then closed with 4401
  const b = await Live.open(d.port, '?access_token=nope');
  e = await b.next((m) => m.type === 'error');
  assert.strictEqual(e.code, 'unauthorized');
  assert.strictEqual((await b.waitClosed()).code, 4401);
  // a resident may not watch the live map
  const r = await Live.open(d.port, '', { headers: { Authorization: 'Bearer ' + env.res } });
  e = await r.next((m) => m.type === 'error');
  assert.match(e.message, /resident/);
  assert.strictEqual((await r.waitClosed()).code, 4401);
  // a message over the size cap closes with 1009
  const big = await Live.open(d.port, '?access_token=' + env.op);
  big.send('{"type":"ping","pad":"' + 'x'.repeat(40000) + '"}');
  assert.strictEqual((await big.waitClosed()).code, 1009);
  // unknown websocket paths are refused at the upgrade
  await assert.rejects(new Promise((resolve, reject) => {
    const x = new WebSocket(`ws://127.0.0.1:${d.port}/elsewhere`);
    x.on('open', () => { x.close(); resolve(); });
    x.on('error', reject);
    x.on('unexpected-response', (q, res) => reject(new Error('status ' + res.statusCode)));
  }));
}

async function test_filters_and_changing_them() {
  const { d, env, pts } = ctx;
  const [A, B] = pts;
  const w = env.workers;
  const c = await Live.open(d.port, '?access_token=' + env.op);
  await c.next((m) => m.type === 'authenticated');
  // positions and incidents in grid A only
  let s = await subscribed(c, { topics: ['positions', 'incidents'], grid: A.grid });
  assert.strictEqual(s.type, 'subscribed', JSON.stringify(s));
  let r = await d.osmandReq('GET', fixQuery(w[0].device, A));
  assert.strictEqual(r.status, 200, r.body);
  r = await d.osmandReq('GET', fixQuery(w[1].device, B));
  assert.strictEqual(r.status, 200, r.body);
  const incB = await incident(d, env.op, B, 'B');
  const incA = await incident(d, env.op, A, 'A');
  let items = await c.waitItems((it) => it.some((x) => x.topic === 'incidents' && x.data.properties.case_no === incA.properties.case_no) &&
    it.some((x) => x.topic === 'positions'), 10000, 'incident A and position A');
  await sleep(200);
  items = c.items();
  assert.ok(items.some((x) => x.topic === 'positions' && x.data.properties.worker === w[0].name));
  assert.ok(!items.some((x) => x.topic === 'positions' && x.data.properties.worker === w[1].name), 'B position filtered out');
  assert.ok(!items.some((x) => x.topic === 'incidents' && x.data.properties.case_no === incB.properties.case_no), 'B incident filtered out');
  for (const x of items) assert.ok(x.seq > 0 && x.topic && x.id !== undefined && x.data.type === 'Feature');

  // change the filter without reconnecting: a bbox around B, positions only
  const box = [B.lon - 0.0005, B.lat - 0.0005, B.lon + 0.0005, B.lat + 0.0005];
  s = await subscribed(c, { topics: ['positions'], bbox: box });
  assert.deepStrictEqual(s.topics, ['positions']);
  // the newest position of each worker in the box comes first
  const snap = await c.next((m) => m.type === 'changes', 10000, 'snapshot');
  assert.ok(snap.changes.every((x) => x.topic === 'positions'));
  assert.ok(snap.changes.some((x) => x.data.properties.worker === w[1].name));
  c.msgs = [];
  c.seen = [];
  await incident(d, env.op, B, 'B2');
  r = await d.osmandReq('GET', fixQuery(w[0].device, A));
  r = await d.osmandReq('GET', fixQuery(w[2].device, B));
  await c.waitItems((it) => it.length > 0, 10000, 'position in box');
  await sleep(300);
  assert.ok(c.items().every((x) => x.topic === 'positions' && x.data.properties.worker === w[2].name), JSON.stringify(c.items()));
  assert.ok(!c.items().some((x) => x.topic !== 'positions' || x.data.properties.worker === w[0].name));
  c.close();
}

async function test_positions_coalesce() {
  const { d, env, pts } = ctx;
  const c = await Live.open(d.port, '?access_token=' + env.op);
  await subscribed(c, { topics: ['positions'], grid: pts[2].grid });
  // a burst of 50 fixes of one worker, in one batch
  const items = [];
  const base = Math.floor(Date.now() / 1000) - 10;
  for (let i = 0; i < 50; i++)
    items.push({ id: env.workers[2].device, lat: pts[2].lat + i * 1e-6, lon: pts[2].lon, timestamp: base + i - 1000 });
  // a newer one last
  const r = await d.osmandReq('POST', '/batch', { body: items });
  assert.strictEqual(r.status, 200, r.body);
  assert.strictEqual(r.json.stored, 50);
  await sleep(500);
  const mine = c.items().filter((x) => x.topic === 'positions' && x.data.properties.worker === env.workers[2].name);
  assert.ok(mine.length >= 1 && mine.length < 50, `coalesced: got ${mine.length}`);
  // the newest of them is what the client ends with, never an older one after it
  const last = mine[mine.length - 1];
  assert.strictEqual(last.t, (base + 49 - 1000) * 1000, 'the newest fix is the last one sent');
  c.close();
}

/* Resume after a disconnect with since=, while changes keep arriving: every
 * incident change exactly once. */
async function test_resume_no_gap_no_duplicate() {
  const { d, env, pts } = ctx;
  const start = (await d.health()).store.last_seq;
  let c = await Live.open(d.port, '?access_token=' + env.op);
  await subscribed(c, { topics: ['incidents'], since: start });
  let stop = false;
  let made = 0;
  const writer = (async () => {
    while (!stop) {
      await incident(d, env.op, pts[made % 3], 'load ' + made);
      made++;
      // positions too, so the log and the bus are busy
      await d.osmandReq('GET', fixQuery(env.workers[made % 3].device, pts[made % 3]));
    }
  })();
  const seen = [];
  for (let round = 0; round < 4; round++) {
    await c.next((m) => m.type === 'changes', 10000, 'changes');
    await sleep(150);
    seen.push(...c.items().map((x) => x.seq));
    const last = Math.max(...seen);
    c.close();
    await c.waitClosed();
    await sleep(100);   // changes arrive while nobody listens
    c = await Live.open(d.port, '?access_token=' + env.op);
    const s = await subscribed(c, { topics: ['incidents'], since: last });
    assert.strictEqual(s.type, 'subscribed');
  }
  stop = true;
  await writer;
  await c.next((m) => m.type === 'caught_up', 10000, 'caught_up');
  // let the last changes arrive
  const head = (await d.health()).store.last_seq;
  for (let i = 0; i < 50 && !c.items().some((x) => x.seq >= head); i++) await sleep(100);
  seen.push(...c.items().map((x) => x.seq));
  c.close();
  const expected = sql(d.db, `SELECT seq FROM change_log WHERE topic = 'incidents' AND seq > ${start} AND seq <= ${Math.max(...seen)} ORDER BY seq`).split('\n').map(Number);
  assert.ok(made >= 4, 'the writer made changes');
  const dup = seen.filter((s, i) => seen.indexOf(s) !== i);
  assert.deepStrictEqual(dup, [], 'no duplicates');
  assert.deepStrictEqual(seen.slice().sort((a, b) => a - b), expected, 'no gap');
}

async function test_resync() {
  const { d, env } = ctx;
  const c = await Live.open(d.port, '?access_token=' + env.op);
  const head = (await d.health()).store.last_seq;
  let s = await subscribed(c, { topics: ['incidents'], since: head + 1000 });
  let rs = await c.next((m) => m.type === 'resync');
  assert.strictEqual(rs.seq, head);
  // the log no longer holds what came before seq 10 (retention): resync
  sql(d.db, 'DELETE FROM change_log WHERE seq < 10');
  s = await subscribed(c, { topics: ['incidents'], since: 3 });
  rs = await c.next((m) => m.type === 'resync');
  assert.strictEqual(rs.first, 10);
  // from the oldest kept: fine
  s = await subscribed(c, { topics: ['layers', 'incidents'], since: 9 });
  await c.next((m) => m.type === 'caught_up', 10000, 'caught_up');
  assert.ok(!c.msgs.some((m) => m.type === 'resync'));
  assert.strictEqual(c.items()[0].seq, 10);
  c.close();
}

/* A client that never reads: the others get everything regardless, and the
 * stalled one is told to resume and closed. The load is a 12345-hotline
 * import of 4,000 orders by another process (4,000 incident changes, ~4 MB). */
async function test_stalled_client() {
  const { d, env } = ctx;
  // raw socket: upgrade, subscribe, then never read again
  const sock = net.connect(d.port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  sock.write(`GET /live?access_token=${env.op} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  await new Promise((r) => sock.once('data', r));
  const payload = Buffer.from(JSON.stringify({ type: 'subscribe', topics: ['incidents', 'positions'] }));
  const mask = Buffer.from([1, 2, 3, 4]);
  const hdr = Buffer.from([0x81, 0x80 | payload.length]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
  sock.write(Buffer.concat([hdr, mask, masked]));
  sock.pause();
  const before = (await d.health()).live.kicked;

  const fast = await Live.open(d.port, '?access_token=' + env.op);
  await subscribed(fast, { topics: ['incidents'] });
  const start = (await d.health()).store.last_seq;
  const csv = path.join(path.dirname(env.db), 'orders.csv');
  const rows = ['工单编号,受理时间,诉求内容,地址,经度,纬度,诉求类别'];
  for (let i = 0; i < 4000; i++)
    rows.push(`GD${i},2026-11-20 08:${String(i % 60).padStart(2, '0')}:00,市民反映 第${i}号 ${'很长的描述'.repeat(20)},,${(116.31 + (i % 50) * 0.001).toFixed(6)},${(39.99 + (i % 40) * 0.001).toFixed(6)},噪音扰民`);
  fs.writeFileSync(csv, rows.join('\n') + '\n');
  gridcc('hotline', 'import', csv, '--db', env.db);
  const end = Number(sql(env.db, 'SELECT max(seq) FROM change_log'));
  const want = sql(env.db, `SELECT count(*) FROM change_log WHERE topic = 'incidents' AND seq > ${start}`);
  assert.ok(Number(want) >= 4000);
  for (let i = 0; i < 300 && !fast.items().some((x) => x.seq >= end); i++) await sleep(50);
  const got = fast.items().filter((x) => x.seq > start).map((x) => x.seq);
  assert.strictEqual(got.length, Number(want), 'the reading client got every change');
  assert.strictEqual(new Set(got).size, got.length);
  // the stalled one is closed (max lag 300 changes here)
  let kicked = before;
  for (let i = 0; i < 100 && kicked === before; i++) {
    await sleep(100);
    kicked = (await d.health()).live.kicked;
  }
  assert.ok(kicked > before, 'stalled client closed');
  assert.match(d.logs(), /closing client .*status=4000 reason=resume since=\d+/);
  sock.destroy();
  fast.close();
}

/* A client that stops reading while ~12 MB of changes pour in is cut loose;
 * the last seq it saw is a good place to resume: reconnecting with it gives
 * the rest, nothing twice, nothing missing. */
async function test_cut_loose_client_resumes() {
  const { d, env } = ctx;
  const h0 = await d.health();
  const start = h0.store.last_seq;
  const c = await Live.open(d.port, '?access_token=' + env.op);
  await subscribed(c, { topics: ['incidents'] });
  c.ws._socket.pause();
  const csv = path.join(path.dirname(env.db), 'orders-big.csv');
  const rows = ['工单编号,受理时间,诉求内容,地址,经度,纬度,诉求类别'];
  for (let i = 0; i < 4000; i++)
    rows.push(`GB${i},2026-11-21 09:${String(i % 60).padStart(2, '0')}:00,市民反映 第${i}号 ${'很长的描述'.repeat(100)},,${(116.31 + (i % 50) * 0.001).toFixed(6)},${(39.99 + (i % 40) * 0.001).toFixed(6)},噪音扰民`);
  fs.writeFileSync(csv, rows.join('\n') + '\n');
  gridcc('hotline', 'import', csv, '--db', env.db);
  fs.writeFileSync(csv, rows.join('\n').replace(/GB/g, 'GC') + '\n');
  gridcc('hotline', 'import', csv, '--db', env.db);
  const end = Number(sql(env.db, 'SELECT max(seq) FROM change_log'));
  let kicked = h0.live.kicked;
  for (let i = 0; i < 150 && kicked === h0.live.kicked; i++) {
    await sleep(100);
    kicked = (await d.health()).live.kicked;
  }
  assert.ok(kicked > h0.live.kicked, 'cut loose');
  c.ws._socket.resume();
  await c.waitClosed(15000);
  const first = c.items().map((x) => x.seq);
  assert.ok(first.length < end - start, 'it was cut off before the end');
  const last = first.length ? Math.max(...first) : start;
  const again = await Live.open(d.port, '?access_token=' + env.op);
  await subscribed(again, { topics: ['incidents'], since: last });
  await again.next((m) => m.type === 'caught_up', 30000, 'caught_up');
  const all = first.concat(again.items().filter((x) => x.seq <= end).map((x) => x.seq));
  const want = sql(env.db, `SELECT seq FROM change_log WHERE topic = 'incidents' AND seq > ${start} AND seq <= ${end} ORDER BY seq`).split('\n').map(Number);
  assert.strictEqual(new Set(all).size, all.length, 'nothing twice');
  assert.deepStrictEqual(all.sort((a, b) => a - b), want, 'nothing missing');
  again.close();
}

/* Traccar Client's three ways of sending, as it sends them. */
async function test_traccar_client_requests() {
  const { d, env, pts } = ctx;
  const dev = env.workers[0].device;
  const p = pts[0];
  const t1 = nextTs();
  // the classic OsmAnd request: POST with the fields in the query string, no body
  let r = await d.osmandReq('POST', `/?id=${dev}&timestamp=${t1}&lat=${p.lat}&lon=${p.lon}&speed=1.9&bearing=270.0&altitude=50.0&accuracy=12.0&batt=76.0`, { body: '' });
  assert.strictEqual(r.status, 200);
  // durable when acknowledged: the row is there now
  const row = sql(d.db, `SELECT speed, bearing, altitude, accuracy, batt, grid_id FROM positions WHERE t = ${t1 * 1000}`);
  const [sp, br, alt, acc, batt, grid] = row.split('|');
  assert.ok(Math.abs(Number(sp) - 1.9 * 0.514444) < 1e-6, 'knots to m/s');
  assert.strictEqual(Number(br), 270);
  assert.strictEqual(Number(batt), 76);
  assert.strictEqual(grid, p.grid);
  // GET, timestamp in milliseconds
  const t2 = nextTs();
  r = await d.osmandReq('GET', `/?id=${dev}&timestamp=${t2}000&lat=${p.lat}&lon=${p.lon}`);
  assert.strictEqual(r.status, 200);
  assert.strictEqual(sql(d.db, `SELECT count(*) FROM positions WHERE t = ${t2 * 1000}`), '1');
  // the JSON body of newer Traccar Client versions, ISO time
  const t3 = nextTs();
  const iso = new Date(t3 * 1000).toISOString();
  r = await d.osmandReq('POST', '/', {
    headers: { 'Content-Type': 'application/json' },
    body: { location: { timestamp: iso, coords: { latitude: p.lat, longitude: p.lon, accuracy: 5, speed: 1.5, heading: 90, altitude: 40 }, is_moving: true, odometer: 0, event: 'motionchange', battery: { level: 0.42, is_charging: false }, activity: { type: 'walking' }, extras: {} }, device_id: dev },
  });
  assert.strictEqual(r.status, 200, r.body);
  assert.strictEqual(sql(d.db, `SELECT speed || ',' || batt || ',' || source FROM positions WHERE t = ${t3 * 1000}`), '1.5,42.0,traccar-json');
  // a form body
  const t4 = nextTs();
  r = await d.osmandReq('POST', '/', { headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `id=${dev}&timestamp=${t4}&lat=${p.lat}&lon=${p.lon}` });
  assert.strictEqual(r.status, 200, r.body);
  // the same fix again (a retry): acknowledged, stored once
  r = await d.osmandReq('GET', `/?id=${dev}&timestamp=${t4}&lat=${p.lat}&lon=${p.lon}`);
  assert.strictEqual(r.status, 200);
  assert.strictEqual(sql(d.db, `SELECT count(*) FROM positions WHERE t = ${t4 * 1000}`), '1');
  // GCJ-02 coordinates, as Chinese phone maps give them
  const t5 = nextTs();
  r = await d.osmandReq('GET', `/?id=${dev}&timestamp=${t5}&lat=${p.lat}&lon=${p.lon}&crs=gcj02`);
  assert.strictEqual(r.status, 200);
  const [lon5, lat5] = sql(d.db, `SELECT lon || '|' || lat FROM positions WHERE t = ${t5 * 1000}`).split('|').map(Number);
  assert.ok(Math.abs(lon5 - p.lon) > 0.003 && Math.abs(lon5 - p.lon) < 0.01, 'GCJ-02 shifted back');
  assert.ok(Math.abs(lat5 - p.lat) > 0.0005 && Math.abs(lat5 - p.lat) < 0.01);
  // bad inputs: each a 4xx naming the field, nothing stored
  const n0 = sql(d.db, 'SELECT count(*) FROM positions');
  const bad = [
    [`/?id=unknown&lat=${p.lat}&lon=${p.lon}`, 403, 'id'],
    [`/?lat=${p.lat}&lon=${p.lon}`, 400, 'id'],
    [`/?id=${dev}&lat=91&lon=${p.lon}`, 400, 'lat'],
    [`/?id=${dev}&lat=abc&lon=${p.lon}`, 400, 'lat'],
    [`/?id=${dev}&lon=${p.lon}`, 400, 'lat'],
    [`/?id=${dev}&lat=0&lon=0`, 400, 'lat'],
    [`/?id=${dev}&lat=${p.lat}&lon=${p.lon}&timestamp=yesterday`, 400, 'timestamp'],
    [`/?id=${dev}&lat=${p.lat}&lon=${p.lon}&timestamp=${Math.floor(Date.now() / 1000) + 86400}`, 400, 'timestamp'],
    [`/?id=${dev}&lat=${p.lat}&lon=${p.lon}&speed=fast`, 400, 'speed'],
    [`/?id=${dev}&lat=${p.lat}&lon=${p.lon}&crs=EPSG:3857`, 400, 'crs'],
  ];
  for (const [q, st, field] of bad) {
    r = await d.osmandReq('GET', q);
    assert.strictEqual(r.status, st, q + ' ' + r.body);
    assert.strictEqual(r.json.error.field, field, q);
  }
  r = await d.osmandReq('POST', '/', { headers: { 'Content-Type': 'application/json' }, body: '{"device_id": "dev1", "location": ' });
  assert.strictEqual(r.status, 400);
  r = await d.osmandReq('POST', '/', { headers: { 'Content-Type': 'application/json' }, body: { device_id: dev, location: { coords: { latitude: 'x', longitude: 1 } } } });
  assert.strictEqual(r.json.error.field, 'location.coords.latitude');
  assert.strictEqual(sql(d.db, 'SELECT count(*) FROM positions'), n0);
  assert.match(d.logs(), /refused fix: device unknown is not registered to a worker/);
}

async function test_batch_upload() {
  const { d, env, pts } = ctx;
  const dev = env.workers[1].device;
  const base = nextTs() - 5000;
  const items = [];
  for (let i = 0; i < 20; i++) items.push({ id: dev, lat: pts[1].lat, lon: pts[1].lon + i * 1e-5, timestamp: base + i });
  items.splice(5, 0, { id: dev, lat: 'north', lon: 1 });
  items.push(items[0]);   // a duplicate
  let r = await d.osmandReq('POST', '/batch', { body: items });
  assert.strictEqual(r.status, 200, r.body);
  assert.deepStrictEqual([r.json.received, r.json.stored, r.json.duplicates], [22, 20, 1]);
  assert.strictEqual(r.json.rejected[0].index, 5);
  assert.strictEqual(r.json.rejected[0].field, 'lat');
  // through the API, with the worker's own token; another's device is refused
  r = await d.api('POST', '/api/positions', { token: env.workers[1].token, body: [
    { id: dev, lat: pts[1].lat, lon: pts[1].lon, timestamp: base + 100 },
    { id: env.workers[0].device, lat: pts[1].lat, lon: pts[1].lon, timestamp: base + 101 }] });
  assert.strictEqual(r.status, 200, r.body);
  assert.strictEqual(r.json.stored, 1);
  assert.strictEqual(r.json.rejected[0].field, 'id');
  r = await d.osmandReq('POST', '/batch', { body: '{"not": "an array"}' });
  assert.strictEqual(r.status, 400);
}

async function test_alerts() {
  const env = newDb('alerts', 2);
  const d = await Daemon.start(env.db, '--outside-minutes', '1', '--silent-minutes', '0.05');
  try {
    const pts = await gridPoints(d, env.op, 2);
    const [A, B] = pts;
    const w = env.workers[0];
    let r = await d.api('PUT', `/api/workers/${w.name}/grids`, { token: env.op, body: { grids: [A.grid] } });
    assert.strictEqual(r.status, 200, r.body);
    r = await d.api('PUT', `/api/workers/${w.name}/grids`, { token: env.op, body: { grids: ['no-such-grid'] } });
    assert.strictEqual(r.status, 400);
    assert.strictEqual(r.json.error.field, 'grids');
    const c = await Live.open(d.port, '?access_token=' + env.op);
    await subscribed(c, { topics: ['alerts'] });
    const t0 = Math.floor(Date.now() / 1000) - 120;
    // inside, then outside for 30 s: nothing; outside for 70 s: an alert
    for (const [p, dt] of [[A, 0], [B, 10], [B, 40]])
      assert.strictEqual((await d.osmandReq('GET', `/?id=${w.device}&lat=${p.lat}&lon=${p.lon}&timestamp=${t0 + dt}`)).status, 200);
    await sleep(300);
    assert.ok(!c.items().some((x) => x.data.properties.kind === 'outside_grid'));
    await d.osmandReq('GET', `/?id=${w.device}&lat=${B.lat}&lon=${B.lon}&timestamp=${t0 + 75}`);
    const out = await c.next((m) => m.type === 'changes' && m.changes.some((x) => x.data.properties.kind === 'outside_grid'), 10000, 'outside alert');
    const a = out.changes.find((x) => x.data.properties.kind === 'outside_grid');
    assert.strictEqual(a.data.properties.state, 'open');
    assert.strictEqual(a.data.properties.worker, w.name);
    assert.deepStrictEqual(a.data.geometry.coordinates.map((v) => v.toFixed(6)), [B.lon.toFixed(6), B.lat.toFixed(6)]);
    // back inside: it closes
    await d.osmandReq('GET', `/?id=${w.device}&lat=${A.lat}&lon=${A.lon}&timestamp=${t0 + 80}`);
    await c.next((m) => m.type === 'changes' && m.changes.some((x) => x.data.properties.kind === 'outside_grid' && x.data.properties.state === 'closed'), 10000, 'closed');
    // SOS from the device
    await d.osmandReq('GET', `/?id=${w.device}&lat=${A.lat}&lon=${A.lon}&timestamp=${t0 + 85}&alarm=sos`);
    await c.next((m) => m.type === 'changes' && m.changes.some((x) => x.data.properties.kind === 'sos'), 10000, 'sos');
    // silence: 0.05 minutes without a fix
    await c.next((m) => m.type === 'changes' && m.changes.some((x) => x.data.properties.kind === 'silent' && x.data.properties.state === 'open'), 15000, 'silent');
    r = await d.api('GET', '/api/alerts', { token: env.op });
    assert.deepStrictEqual(r.json.alerts.map((x) => x.kind).sort(), ['silent', 'sos']);
    // a fix ends the silence
    await d.osmandReq('GET', `/?id=${w.device}&lat=${A.lat}&lon=${A.lon}&timestamp=${t0 + 90}`);
    await c.next((m) => m.type === 'changes' && m.changes.some((x) => x.data.properties.kind === 'silent' && x.data.properties.state === 'closed'), 10000, 'silent closed');
    c.close();
  } finally {
    await d.stop();
  }
}

/* kill -9 while fixes pour in over keep-alive connections: every fix that
 * was answered 200 is in the store afterwards. */
async function test_kill9_loses_no_acknowledged_fix() {
  const env = newDb('kill9', 4);
  const d = await Daemon.start(env.db);
  const pts = await gridPoints(d, env.op, 1);
  const acked = [];
  let stop = false;
  const base = Math.floor(Date.now() / 1000) - 86400;
  const senders = env.workers.map((w, k) => (async () => {
    for (let i = 0; !stop; i++) {
      const ts = base * 1000 + i * 10 + k;   // ms: unique per worker
      try {
        const r = await d.osmandReq('GET', `/?id=${w.device}&lat=${pts[0].lat}&lon=${pts[0].lon}&timestamp=${ts}`);
        if (r.status === 200) acked.push([w.name, ts]);
      } catch (e) { return; }
    }
  })());
  for (let i = 0; acked.length < 300; i++) {
    assert.ok(i < 1500, 'fixes were acknowledged');
    await sleep(20);
  }
  await d.kill9();
  stop = true;
  await Promise.all(senders);
  const rows = new Set(sql(env.db, "SELECT u.name || ':' || p.t FROM positions p JOIN users u ON u.id = p.user_id").split('\n'));
  const lost = acked.filter(([n, t]) => !rows.has(`${n}:${t}`));
  assert.deepStrictEqual(lost, [], `${lost.length} of ${acked.length} acknowledged fixes lost`);
  // and the daemon starts again on the same file
  const d2 = await Daemon.start(env.db);
  assert.strictEqual((await d2.health()).status, 'ok');
  await d2.stop();
}

/* Inputs and timings that once went wrong: one test each. */

/* a byte that is not UTF-8 in a device id: 403 naming the id, and the daemon lives */
async function test_regression_device_id_not_utf8() {
  const { d, pts } = ctx;
  const r = await d.osmandReq('GET', `/?id=%FF&lat=${pts[0].lat}&lon=${pts[0].lon}`);
  assert.strictEqual(r.status, 403, r.body);
  assert.strictEqual(r.json.error.field, 'id');
  assert.strictEqual((await d.health()).status, 'ok');
}

/* a number that is not UTF-8 in a batch: the fix is rejected naming lat, the batch answered */
async function test_regression_batch_number_not_utf8() {
  const { d, env } = ctx;
  const r = await d.osmandReq('POST', '/batch', { body: [{ id: env.workers[0].device, lat: 'a' + 'é'.repeat(30), lon: 121.4 }] });
  assert.strictEqual(r.status, 200, r.body);
  assert.strictEqual(r.json.rejected.length, 1, r.body);
  assert.strictEqual(r.json.rejected[0].field, 'lat');
  assert.strictEqual((await d.health()).status, 'ok');
}

/* a track asked for far outside a track's life: 400 naming from */
async function test_regression_track_time_far_out() {
  const { d, env } = ctx;
  const r = await d.api('GET', '/api/workers/w1/track?from=300000000000&to=300000000001', { token: env.op });
  assert.strictEqual(r.status, 400, r.body);
  assert.strictEqual(r.json.error.field, 'from');
  assert.strictEqual((await d.health()).status, 'ok');
}

/* coverage on a date far outside a track's life: 400 naming date */
async function test_regression_coverage_date_far_out() {
  const { d, env } = ctx;
  const r = await d.api('GET', '/api/workers/w1/coverage?date=300000000000', { token: env.op });
  assert.strictEqual(r.status, 400, r.body);
  assert.strictEqual(r.json.error.field, 'date');
  assert.strictEqual((await d.health()).status, 'ok');
}

/* catching up from the store while another process writes: nothing twice */
async function test_regression_catch_up_while_another_process_writes() {
  const { d, env } = ctx;
  const c = await Live.open(d.port, '?access_token=' + env.op);
  try {
    const head = (await d.health()).store.last_seq;
    sql(d.db, `INSERT INTO change_log(ts, topic, id, data) VALUES (strftime('%Y-%m-%dT%H:%M:%fZ','now'), 'layers', 'x', '{"layer":"x"}')`);
    await subscribed(c, { topics: ['layers', 'incidents'], since: head - 5 });
    await c.next((m) => m.type === 'caught_up', 10000, 'caught_up');
    await sleep(800);   // the daemon notices the other process's commit
    const seqs = c.items().map((x) => x.seq);
    assert.strictEqual(new Set(seqs).size, seqs.length, 'nothing twice: ' + seqs);
    assert.ok(seqs.includes(head + 1), 'the other process\'s change arrived');
  } finally {
    c.close();
  }
}

/* a client idle longer than the stall time still gets the next change */
async function test_regression_idle_client_not_cut_loose() {
  const { d, env, pts } = ctx;
  const c = await Live.open(d.port, '?access_token=' + env.op);
  try {
    await subscribed(c, { topics: ['positions'], grid: pts[1].grid });
    await sleep(4000);   // --live-stall 3
    c.seen = [];
    const r = await d.osmandReq('GET', fixQuery(env.workers[1].device, pts[1]));
    assert.strictEqual(r.status, 200, r.body);
    await c.waitItems((it) => it.length > 0, 5000, 'a position after idling');
    await sleep(1500);
    assert.strictEqual(c.closed, null, 'not cut loose');
  } finally {
    c.close();
  }
}

/* A department's user was sent every case on /live, though the API shows
 * them only what was dispatched to their department. */
async function test_department_sees_its_cases_only() {
  const { d, env, pts } = ctx;
  const tok = gridcc('user', 'add', 'cg-live', '--role', 'department', '--department', '城管', '--db', env.db).trim();
  const c = await Live.open(d.port, '?access_token=' + tok);
  await c.next((m) => m.type === 'authenticated');
  const s = await subscribed(c, { topics: ['incidents'] });
  assert.strictEqual(s.type, 'subscribed', JSON.stringify(s));
  // a case of 环卫's category: never 城管's
  const r0 = await d.api('POST', '/api/incidents', {
    token: env.op, body: { category: 'E01.08', description: 'not theirs', lon: pts[0].lon, lat: pts[0].lat },
  });
  assert.strictEqual(r0.status, 201, r0.body);
  const other = r0.json;
  assert.strictEqual(other.properties.department, '环卫', JSON.stringify(other.properties));
  const mine = await incident(d, env.op, pts[1], 'theirs');
  const no = mine.properties.case_no;
  for (const [action, extra] of [['register', {}], ['dispatch', { department: '城管' }]]) {
    const r = await d.api('POST', `/api/incidents/${no}/actions`, { token: env.op, body: Object.assign({ action }, extra) });
    assert.strictEqual(r.status, 200, r.body);
  }
  // changes come in order: once the dispatch is here, the other case's would have been
  await c.waitItems((it) => it.some((x) => x.data.properties.case_no === no && x.data.properties.status === 'dispatched'), 10000, 'the dispatch');
  const items = c.items();
  assert.ok(!items.some((x) => x.data.properties.case_no === other.properties.case_no), 'a case not dispatched to them');
  assert.ok(items.every((x) => x.data.properties.department === '城管'), JSON.stringify(items.map((x) => x.data.properties.status)));
  c.close();
}

async function teardown() {
  await ctx.d.stop();
}

run([setup, test_auth_and_bad_messages, test_filters_and_changing_them, test_positions_coalesce,
  test_resume_no_gap_no_duplicate, test_resync, test_stalled_client, test_cut_loose_client_resumes, test_traccar_client_requests,
  test_batch_upload, test_regression_device_id_not_utf8, test_regression_batch_number_not_utf8,
  test_regression_track_time_far_out, test_regression_coverage_date_far_out,
  test_regression_catch_up_while_another_process_writes, test_regression_idle_client_not_cut_loose,
  test_alerts, test_department_sees_its_cases_only, test_kill9_loses_no_acknowledged_fix, teardown]);
