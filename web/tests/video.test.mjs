// The live view in Debian's chromium: camsim's H.264 and H.265 cameras
// behind the real daemon, played by the page's own player (Media Source
// Extensions) on the video wall. The playhead must advance with no MSE error
// for both; the H.265 camera reaches a browser that cannot decode HEVC
// (Chromium on Linux) through the daemon's one shared transcode to H.264,
// which stops when the wall closes.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { BIN, browser, Daemon, login, newPage, ready, run, shot, SIZES, until } from './harness.mjs';

const CAMSIM = process.env.CAMSIM_BIN || path.join(path.dirname(BIN), 'tools', 'camsim');
const ctx = {};

/** An H.264 file whose pictures change size halfway: 2 s at 320x240, then
 * 2 s at 640x360 (each part its own x264 stream with its own SPS), as a
 * camera does when its resolution is changed on the fly. */
function sizesFile(dir) {
  const parts = [[320, 240], [640, 360]].map(([w, h]) => {
    const out = path.join(dir, `part${w}.264`);
    const r = spawnSync('gst-launch-1.0', ['-q', 'videotestsrc', 'num-buffers=50', 'pattern=ball', '!',
      `video/x-raw,width=${w},height=${h},framerate=25/1`, '!', 'x264enc', 'key-int-max=25', 'bframes=0', '!',
      'video/x-h264,stream-format=byte-stream', '!', 'filesink', `location=${out}`]);
    assert.equal(r.status, 0, String(r.stderr));
    return readFileSync(out);
  });
  const file = path.join(dir, 'sizes.264');
  writeFileSync(file, Buffer.concat(parts));
  return file;
}

async function startCamsim() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gridcc-camsim-'));
  const p = spawn(CAMSIM, ['--port', '0', '--control', '0', '--cache', dir, '--width', '640', '--height', '360',
    '--fps', '25', '--seconds', '4', '--gop', '25', '--streams', '2', '--codec', 'mix', '--file', sizesFile(dir)],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  p.stderr.on('data', (b) => { log += b; });
  const line = await new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: p.stdout });
    rl.once('line', resolve);
    p.once('exit', (code) => reject(new Error(`camsim exited ${code}:\n${log}`)));
  });
  const m = /camsim: ready port=(\d+) control=(\d+)/.exec(line);
  assert.ok(m, `no ready line from camsim: ${line}`);
  return { p, dir, port: Number(m[1]), log: () => log };
}

async function camera(id) {
  const r = await ctx.d.api('GET', `/api/cameras/${id}`, { token: ctx.d.tokens.ad });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

/** Polls the daemon (not the page) until pred holds for the camera. */
async function waitCamera(id, pred, what) {
  const deadline = Date.now() + 60000;
  for (;;) {
    const c = await camera(id);
    if (pred(c)) return c;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${id} ${what}: ${JSON.stringify(c)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What the wall's tile for a camera plays: the player's stats and the
 * video element's clock. */
function tileState(id) {
  const tile = window.gridcc.wall.tiles.find((t) => t.camera?.id === id);
  const p = tile?.player;
  if (!p) return null;
  return {
    ...p.stats, currentTime: p.video.currentTime, lag: p.lag(), paused: p.video.paused,
    videoError: p.video.error ? p.video.error.message || String(p.video.error.code) : null,
    width: p.video.videoWidth, height: p.video.videoHeight,
  };
}

/** Polls the page until pred holds for a camera's tile; returns its state. */
async function untilTile(id, pred, what, timeout = 60000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const s = await ctx.page.evaluate(tileState, id);
    if (s && pred(s)) return s;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${id} ${what}: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function setup() {
  ctx.cs = await startCamsim();
  ctx.d = await Daemon.start([['op1', 'operator'], ['ad', 'admin']]);
  for (const [id, mount] of [['c1', 'cam1'], ['c2', 'cam2']]) {
    const r = await ctx.d.api('POST', '/api/cameras', {
      token: ctx.d.tokens.ad,
      body: { id, name: `测试摄像机 ${id}`, url: `rtsp://127.0.0.1:${ctx.cs.port}/${mount}`, lon: 116.33, lat: 40.0, heading: 90, fov: 60, range_m: 100 },
    });
    assert.equal(r.status, 201, r.text);
  }
  await waitCamera('c1', (c) => c.state === 'playing' && c.codec === 'h264', 'playing H.264');
  await waitCamera('c2', (c) => c.state === 'playing' && c.codec === 'h265', 'playing H.265');
  ctx.b = await browser();
  ctx.page = await newPage(ctx.b, SIZES.hd);
  await login(ctx.page, ctx.d.url, 'op1', 'op1-password');
  await ready(ctx.page);
}

async function test_wall_plays_h264_and_h265() {
  const page = ctx.page;
  await until(page, () => window.gridcc.state.cameras.size >= 2, null, { what: 'the cameras listed' });
  await page.click('#wall-toggle');
  for (const id of ['c1', 'c2']) {
    // the first frame shown, then the clock moving on by two seconds
    const first = await untilTile(id, (s) => s.currentTime > 0, 'to start playing');
    const later = await untilTile(id, (s) => s.currentTime > first.currentTime + 2, 'its playhead to advance');
    assert.deepEqual(later.errors, [], `${id}: ${later.errors}`);
    assert.equal(later.videoError, null, id);
    assert.equal(later.width, 640, `${id} decoded no picture of camsim's size`);
    assert.ok(later.lag < 3, `${id} plays ${later.lag} s behind the newest frame`);
  }
  const s1 = await page.evaluate(tileState, 'c1');
  assert.equal(s1.codec, 'h264');
  assert.equal(s1.transcoded, false);
  const hevc = await page.evaluate(() => MediaSource.isTypeSupported('video/mp4; codecs="hvc1.1.6.L93.B0"'));
  const s2 = await page.evaluate(tileState, 'c2');
  // whichever path this browser needs: HEVC as it is, or the transcode
  assert.equal(s2.transcoded, !hevc, JSON.stringify(s2));
  assert.equal(s2.codec, hevc ? 'h265' : 'h264');
  const c2 = await camera('c2');
  assert.equal(c2.transcoding, !hevc, JSON.stringify(c2));
  assert.equal(c2.transcode_viewers, hevc ? 0 : 1);
  await shot(page, '20-video-wall');
  assert.deepEqual(page.problems, []);
}

async function test_a_decode_error_starts_the_view_again() {
  // bytes no MP4 parser takes, given to c1's tile as if from the wire: the
  // element fails as it does on a camera's corrupt frames, and the player
  // must start again from a new connection rather than stay black
  const page = ctx.page;
  const before = await untilTile('c1', (s) => s.currentTime > 0 && s.state === 'playing', 'playing');
  const conns = (await camera('c1')).viewers;
  await page.evaluate(() => {
    const p = window.gridcc.wall.tiles.find((t) => t.camera?.id === 'c1').player;
    p.media(new Uint8Array([0, 0, 0, 16, 0x6d, 0x6f, 0x6f, 0x66, 0, 0, 0, 4, 0x62, 0x61, 0x64, 0x21]).buffer);
  });
  const failed = await untilTile('c1', (s) => s.errors.length > 0, 'the error noticed');
  assert.equal(failed.recoveries, 1, JSON.stringify(failed));
  const again = await untilTile('c1', (s) => s.state === 'playing' && s.videoError === null && s.currentTime > 1,
    'playing again after the error');
  const later = await untilTile('c1', (s) => s.currentTime > again.currentTime + 1, 'its playhead to advance again');
  assert.equal(later.recoveries, 1, JSON.stringify(later));
  assert.equal(later.width, 640);
  assert.ok(later.fragments > before.fragments);
  // the old connection closed, one new in its place
  const c = await waitCamera('c1', (x) => x.viewers === conns, `${conns} viewer(s)`);
  assert.equal(c.viewers, conns);
  assert.deepEqual(page.problems, []);
}

async function test_closing_the_wall_stops_the_transcode() {
  await ctx.page.click('#wall-close');
  await waitCamera('c2', (c) => c.viewers === 0 && !c.transcoding, 'no viewer and no transcode');
  await waitCamera('c1', (c) => c.viewers === 0, 'no viewer');
}

async function test_a_failing_camera_says_why_in_chinese() {
  // nothing listens on port 1: the engine's reason is "refused"
  const r = await ctx.d.api('POST', '/api/cameras', {
    token: ctx.d.tokens.ad,
    body: { id: 'c3', name: '断线摄像机', url: 'rtsp://127.0.0.1:1/x', lon: 116.33, lat: 40.0, heading: 0, fov: 60, range_m: 100 },
  });
  assert.equal(r.status, 201, r.text);
  await waitCamera('c3', (c) => c.reason === 'refused', 'refused');
  const page = ctx.page;
  await until(page, () => window.gridcc.state.cameras.get('c3')?.reason === 'refused', null, { what: 'the reason on the page' });
  // on the map, a camera's mark in its state's colour (drawn by the page: not
  // a round mark like a case's), and the legend names it
  const mark = await until(page, () => {
    const m = window.gridcc.map;
    const f = m.queryRenderedFeatures({ layers: ['cameras'] }).find((x) => x.properties.id === 'c3');
    return f && m.hasImage(`camera-${f.properties.state}`) ? f.properties.state : null;
  }, null, { what: "c3's mark on the map" });
  assert.notEqual(mark, 'playing');
  assert.match(await page.textContent('#legend'), /摄像头/);
  await page.evaluate(() => window.gridcc.openCamera('c3'));
  const text = await until(page, () => document.querySelector('#detail .cam-status')?.textContent, null, { what: 'the camera panel' });
  assert.match(text, /无法连接/, text);
  assert.doesNotMatch(text, /refused/, text);
}

async function test_a_camera_that_changes_size_plays_on() {
  const r = await ctx.d.api('POST', '/api/cameras', {
    token: ctx.d.tokens.ad,
    body: { id: 'c4', name: '变分辨率', url: `rtsp://127.0.0.1:${ctx.cs.port}/file1`, lon: 116.33, lat: 40.0, heading: 0, fov: 60, range_m: 100 },
  });
  assert.equal(r.status, 201, r.text);
  await waitCamera('c4', (c) => c.state === 'playing', 'playing');
  const page = ctx.page;
  await until(page, () => window.gridcc.state.cameras.has('c4'), null, { what: 'c4 listed' });
  await page.click('#wall-toggle');
  await page.evaluate(() => window.gridcc.wall.put(window.gridcc.state.cameras.get('c4')));
  // put twice (the opened wall may hold it already): one tile, not two
  await page.evaluate(() => window.gridcc.wall.put(window.gridcc.state.cameras.get('c4')));
  assert.equal(await page.evaluate(() => window.gridcc.wall.tiles.filter((tl) => tl.camera?.id === 'c4').length), 1);
  // both sizes shown, one after the other, and the clock still moving
  const small = await untilTile('c4', (s) => s.width === 320 && s.currentTime > 0, 'a 320x240 picture');
  const big = await untilTile('c4', (s) => s.width === 640 && s.currentTime > small.currentTime, 'a 640x360 picture');
  const again = await untilTile('c4', (s) => s.width === 320 && s.currentTime > big.currentTime, '320x240 again');
  assert.deepEqual(again.errors, [], JSON.stringify(again));
  assert.equal(again.videoError, null);
  await shot(page, '21-size-change');
  await page.click('#wall-close');
}

async function test_camera_panel_and_wall_at_4k() {
  // a camera's panel (live view, state, snapshot) and a wall of four on a
  // 3840x2160 screen: playing, drawn at the wall's scale
  const page = await newPage(ctx.b, SIZES.uhd);
  await login(page, ctx.d.url, 'op1', 'op1-password');
  await ready(page);
  await until(page, () => window.gridcc.state.cameras.has('c1'), null, { what: 'c1 listed' });
  await page.evaluate(() => window.gridcc.openCamera('c1'));
  const playing = () => {
    const v = document.querySelector('#detail .camera-panel video');
    return v && v.currentTime > 1 && !v.error ? { w: v.getBoundingClientRect().width, vw: v.videoWidth } : null;
  };
  const v = await until(page, playing, null, { timeout: 60000, what: "the panel's live view playing" });
  assert.equal(v.vw, 640);
  // the panel's view grows with the screen: at least as wide as at 1920 x2
  assert.ok(v.w >= 2 * 300, `the live view is ${v.w} px wide on a 3840 px screen`);
  await page.click('#cam-snapshot');
  await until(page, () => document.querySelector('#detail .cam-snapshot img')?.naturalWidth === 640, null,
    { timeout: 30000, what: 'the snapshot shown' });
  // whole, not cropped to a thumbnail's shape
  const box = await page.$eval('#detail .cam-snapshot img', (i) => { const r = i.getBoundingClientRect(); return r.height / r.width; });
  assert.ok(Math.abs(box - 360 / 640) < 0.02, `the snapshot is drawn at ${box} height/width`);
  await shot(page, '22-camera-panel');
  await page.click('#wall-toggle');
  await until(page, () => window.gridcc.wall.tiles.filter((tl) => tl.player?.video.currentTime > 1).length >= 2, null,
    { timeout: 60000, what: 'two tiles playing on the 4K wall' });
  await shot(page, '22-video-wall');
  assert.deepEqual(page.problems, []);
  await page.click('#wall-close');
  await page.close();
}

async function teardown() {
  await ctx.b?.close();
  ctx.cs?.p.kill('SIGTERM');
  if (ctx.cs) rmSync(ctx.cs.dir, { recursive: true, force: true });
  await ctx.d?.stop();
}

await run([setup, test_wall_plays_h264_and_h265, test_a_decode_error_starts_the_view_again,
  test_closing_the_wall_stops_the_transcode,
  test_a_failing_camera_says_why_in_chinese, test_a_camera_that_changes_size_plays_on, test_camera_panel_and_wall_at_4k], teardown);
