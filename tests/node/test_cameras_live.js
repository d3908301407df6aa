// The camera registry on the /live bus: an operator's client gets the topic
// `cameras` for a create, an update and a delete, without the credentials; a
// grid worker's phone gets no camera at all (the registry is for the desks).
// Each change carries the grid, community and street the camera stands in
// (worked out as the bus reads it, not stored), so a desk watching one grid
// gets the cameras in it.
'use strict';
const assert = require('assert');
const { Daemon, Live, newDb, gridcc, run } = require('./harness');

const SECRET = 'Sekr1t-Live';
let ctx;

async function client(port, token, topics, grid) {
  const c = await Live.open(port);
  c.send({ type: 'auth', token });
  await c.next((m) => m.type === 'authenticated');
  c.send({ type: 'subscribe', topics, ...(grid ? { grid } : {}) });
  const r = await c.next((m) => m.type === 'subscribed' || m.type === 'error', 10000, 'subscribed');
  assert.strictEqual(r.type, 'subscribed', JSON.stringify(r));
  return { c, topics: r.topics };
}

async function test_cameras_topic_by_role() {
  const env = newDb('cameras', 1);
  const admin = gridcc('user', 'add', 'adm', '--role', 'admin', '--db', env.db).trim();
  const d = await Daemon.start(env.db);
  ctx = { d };
  const op = await client(d.port, env.op, ['cameras', 'incidents']);
  const wk = await client(d.port, env.workers[0].token, ['cameras', 'incidents']);
  // the seeded grid holding 116.33, 39.99 (中关村街道 › 怡新园社区)
  const GRID = '110108011001001';
  const inGrid = await client(d.port, env.op, ['cameras'], [GRID]);
  assert.deepStrictEqual(op.topics, ['incidents', 'cameras']);
  assert.deepStrictEqual(wk.topics, ['incidents']);
  const cam = {
    id: 'live-1', name: '路口', url: `rtsp://admin:${SECRET}@10.9.9.9:554/s`,
    lon: 116.33, lat: 39.99, heading: 45, fov: 60, range_m: 120,
  };
  let r = await d.api('POST', '/api/cameras', { token: admin, body: cam });
  assert.strictEqual(r.status, 201, r.body);
  // moved into 学院路街道's 福光村社区
  r = await d.api('PUT', '/api/cameras/live-1', {
    token: admin, body: { ...cam, heading: 90, lon: 116.35, lat: 40.0 },
  });
  assert.strictEqual(r.status, 200, r.body);
  r = await d.api('DELETE', '/api/cameras/live-1', { token: admin });
  assert.strictEqual(r.status, 204, r.body);
  // the create, the move and the delete; the engine's state changes (the
  // camera at 10.9.9.9 may fail to connect at once) may come between them
  const items = await op.c.waitItems((it) => it.some((x) => x.topic === 'cameras' && x.data.deleted),
    30000, 'the camera changes up to its deletion');
  const all = items.filter((x) => x.topic === 'cameras');
  assert.ok(all.every((x) => x.id === 'live-1'));
  const moved = all.findIndex((x) => x.data.properties && x.data.properties.heading === 90);
  const gone = all.findIndex((x) => x.data.deleted);
  assert.ok(moved > 0 && gone > moved, JSON.stringify(all.map((x) => x.seq)));
  const cams = [all[0], all[moved], all[gone]];
  assert.strictEqual(cams[0].data.geometry.type, 'Point');
  assert.strictEqual(cams[0].data.properties.url, 'rtsp://10.9.9.9:554/s');
  assert.strictEqual(cams[1].data.properties.heading, 90);
  const place = (p) => [p.grid_id, p.grid_name, p.community_id, p.street_id, p.street_name];
  assert.deepStrictEqual(place(cams[0].data.properties),
    [GRID, '怡新园社区第1网格', '110108011001', '110108011000', '中关村街道']);
  assert.deepStrictEqual(place(cams[1].data.properties),
    ['110108010002008', '福光村社区第8网格', '110108010002', '110108010000', '学院路街道']);
  // the desk on GRID had the camera while it stood there
  const mine = await inGrid.c.waitItems((it) => it.some((x) => x.topic === 'cameras'), 10000,
    'the camera in the grid');
  assert.strictEqual(mine.find((x) => x.topic === 'cameras').data.properties.grid_id, GRID);
  assert.deepStrictEqual(cams[2].data, { id: 'live-1', deleted: true });
  assert.ok(!JSON.stringify(op.c.seen).includes(SECRET));
  // a case after the deletion: once the worker has it, nothing before it is still coming
  r = await d.api('POST', '/api/incidents', {
    token: env.op, body: { category: 'E05.02', description: 'barrier', lon: 116.33, lat: 39.99 },
  });
  assert.strictEqual(r.status, 201, r.body);
  const wit = await wk.c.waitItems((it) => it.some((x) => x.topic === 'incidents'), 10000,
    'the case');
  assert.ok(!wit.some((x) => x.topic === 'cameras'), JSON.stringify(wit).slice(0, 300));
  op.c.close();
  wk.c.close();
  inGrid.c.close();
  await d.stop();
}

run([test_cameras_topic_by_role]);
