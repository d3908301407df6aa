// The camera registry on the /live bus: an operator's client gets the topic
// `cameras` for a create, an update and a delete, without the credentials; a
// grid worker's phone gets no camera at all (the registry is for the desks).
'use strict';
const assert = require('assert');
const { Daemon, Live, newDb, gridcc, run } = require('./harness');

const SECRET = 'Sekr1t-Live';
let ctx;

async function client(port, token, topics) {
  const c = await Live.open(port);
  c.send({ type: 'auth', token });
  await c.next((m) => m.type === 'authenticated');
  c.send({ type: 'subscribe', topics });
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
  assert.deepStrictEqual(op.topics, ['incidents', 'cameras']);
  assert.deepStrictEqual(wk.topics, ['incidents']);
  const cam = {
    id: 'live-1', name: '路口', url: `rtsp://admin:${SECRET}@10.9.9.9:554/s`,
    lon: 116.33, lat: 39.99, heading: 45, fov: 60, range_m: 120,
  };
  let r = await d.api('POST', '/api/cameras', { token: admin, body: cam });
  assert.strictEqual(r.status, 201, r.body);
  r = await d.api('PUT', '/api/cameras/live-1', { token: admin, body: { ...cam, heading: 90 } });
  assert.strictEqual(r.status, 200, r.body);
  r = await d.api('DELETE', '/api/cameras/live-1', { token: admin });
  assert.strictEqual(r.status, 204, r.body);
  const items = await op.c.waitItems((it) => it.filter((x) => x.topic === 'cameras').length === 3,
    10000, 'three camera changes');
  const cams = items.filter((x) => x.topic === 'cameras');
  assert.ok(cams.every((x) => x.id === 'live-1'));
  assert.strictEqual(cams[0].data.geometry.type, 'Point');
  assert.strictEqual(cams[0].data.properties.url, 'rtsp://10.9.9.9:554/s');
  assert.strictEqual(cams[1].data.properties.heading, 90);
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
  await d.stop();
}

run([test_cameras_topic_by_role]);
