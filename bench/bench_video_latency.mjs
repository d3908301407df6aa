// Camera-to-screen latency in headless Chromium, and how far the playhead
// stays from live over time.
//
// How it is measured: camsim's clip carries each frame's index within the
// clip as 16 black/white blocks along its top, and camsim's `stats` gives
// the wall-clock time at which frame 0 of each loop left it; frame k of a
// loop left at loop start + k / fps. The page plays the camera on the video
// wall (the dashboard's own player: /video/{id}, MSE); for every frame
// Chromium presents, requestVideoFrameCallback reads the blocks back from a
// canvas and notes the presentation time (performance.timeOrigin +
// expectedDisplayTime, the same wall clock on the same machine). Latency =
// presented − sent. Everything between is counted: RTSP, gridcc's ingest and
// fragmenting, the websocket, MSE's buffer, decoding and compositing.
// The baseline, in the same run: ffmpeg reading the same camera straight
// from camsim (ffmpeg -c copy, frames timed as they come out), i.e. what the
// network and RTSP alone cost before gridcc and the browser.
//   node bench/bench_video_latency.mjs [SECONDS=60] [WIDTH=1280] [HEIGHT=720]
// Run from the repository root after scripts/setup.sh.
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { browser, Daemon, newPage, login, ready } from '../web/tests/harness.mjs';

const [SECONDS = 60, WIDTH = 1280, HEIGHT = 720] = process.argv.slice(2).map(Number);
const CAMSIM = process.env.CAMSIM_BIN || 'build/tools/camsim';
const FPS = 25;
const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]; };

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

async function startCamsim() {
  const port = await freePort(), control = await freePort();
  const p = spawn(CAMSIM, ['--port', String(port), '--control', String(control), '--streams', '1', '--codec', 'h264',
    '--width', String(WIDTH), '--height', String(HEIGHT), '--fps', String(FPS), '--bitrate', '2000', '--seconds', '10',
    '--gop', String(FPS), '--cache', path.resolve('build/camsim-cache')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise((resolve, reject) => {
    p.stdout.on('data', (b) => { out += b; if (out.includes('camsim: ready')) resolve(); });
    p.once('exit', (c) => reject(new Error(`camsim exited ${c}`)));
  });
  return { p, port, control };
}

function control(port, cmd) {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(port, '127.0.0.1');
    let buf = '';
    s.on('data', (b) => { buf += b; if (buf.includes('\n')) { s.end(); resolve(JSON.parse(buf.split('\n')[0])); } });
    s.on('error', reject);
    s.write(cmd + '\n');
  });
}

/** When frame k left camsim: the latest loop start that puts it before `at`. */
function sentAt(loops, k, at) {
  let best = NaN;
  for (const l of loops) {
    const t = l + (k * 1000) / FPS;
    if (t <= at + 5 && !(t <= best)) best = t;
  }
  return best;
}

/** The baseline: ffmpeg decoding the camera straight from camsim, the
 * blocks' strip cropped out as grey bytes, each frame timed as it arrives. */
async function baseline(port, seconds) {
  const bs = Math.max(2, Math.floor(WIDTH / 32)), size = 16 * bs * bs;
  const ff = spawn('ffmpeg', ['-nostdin', '-loglevel', 'error', '-fflags', 'nobuffer', '-flags', 'low_delay',
    '-rtsp_transport', 'tcp', '-i', `rtsp://127.0.0.1:${port}/cam1`,
    '-vf', `crop=${16 * bs}:${bs}:0:0,format=gray`, '-f', 'rawvideo', '-'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const frames = [];
  let buf = Buffer.alloc(0);
  ff.stdout.on('data', (b) => {
    const at = Date.now();
    buf = Buffer.concat([buf, b]);
    while (buf.length >= size) {
      let k = 0;
      for (let bit = 0; bit < 16; bit++) k = (k << 1) | (buf[(bs >> 1) * 16 * bs + bit * bs + (bs >> 1)] > 128 ? 1 : 0);
      frames.push([k, at]);
      buf = buf.subarray(size);
    }
  });
  await new Promise((res) => setTimeout(res, seconds * 1000));
  ff.kill('SIGTERM');
  return frames;
}

const cam = await startCamsim();
const d = await Daemon.start([['bench', 'operator'], ['root', 'admin']]);
const r = await d.api('POST', '/api/cameras', {
  token: d.tokens.root,
  body: { id: 'lat1', name: 'latency', url: `rtsp://127.0.0.1:${cam.port}/cam1`, lon: 116.33, lat: 40.0, heading: 0, fov: 60, range_m: 80 },
});
if (r.status !== 201) throw new Error(`camera: ${r.status} ${r.text}`);
const b = await browser();
const page = await newPage(b);
await login(page, d.url, 'bench', 'bench-password');
await ready(page);
await page.evaluate(() => {
  const w = window.gridcc.wall;
  w.layout(1);
  w.put(window.gridcc.state.cameras.get('lat1') || { id: 'lat1', name: 'latency' });
});
// the reader of the blocks, on every presented frame
await page.evaluate(() => {
  const tile = window.gridcc.wall.tiles[0];
  const v = tile.player.video;
  const c = document.createElement('canvas');
  const g = c.getContext('2d', { willReadFrequently: true });
  window.latency = { frames: [], lags: [] };
  const onFrame = (_now, meta) => {
    const w = v.videoWidth, bs = Math.max(2, Math.floor(w / 32));
    if (w) {
      c.width = 16 * bs; c.height = bs;
      g.drawImage(v, 0, 0, 16 * bs, bs, 0, 0, 16 * bs, bs);
      const px = g.getImageData(0, 0, 16 * bs, bs).data;
      let k = 0;
      for (let bit = 0; bit < 16; bit++) {
        const i = ((bs >> 1) * 16 * bs + bit * bs + (bs >> 1)) * 4;
        k = (k << 1) | (px[i] + px[i + 1] + px[i + 2] > 3 * 128 ? 1 : 0);
      }
      window.latency.frames.push([k, performance.timeOrigin + meta.expectedDisplayTime]);
    }
    v.requestVideoFrameCallback(onFrame);
  };
  v.requestVideoFrameCallback(onFrame);
  setInterval(() => window.latency.lags.push([Date.now(), tile.player.lag()]), 1000);
});
process.stderr.write(`bench: playing for ${SECONDS} s\n`);
// a long run says how it goes every 5 minutes (the last minute's latency and
// the playhead's lag), so that it reads as it goes and survives a crash
const t0run = Date.now();
// camsim's stats keep the start of its last few loops only: gather them
// every 30 s, so that frames of any age in a long run can be timed
const loopStarts = new Set();
const gatherLoops = async () => {
  const st = await control(cam.control, 'stats');
  for (const l of st.mounts?.[0]?.loops ?? st[0]?.loops ?? []) loopStarts.add(l);
  return [...loopStarts];
};
const gathering = setInterval(() => gatherLoops().catch(() => {}), 30000);
const progress = setInterval(async () => {
  try {
    const loopsNow = await gatherLoops();
    const r = await page.evaluate(() => {
      const f = window.latency.frames, cut = Date.now() - 60000;
      return { recent: f.filter(([, at]) => at >= cut), lag: window.latency.lags.slice(-10) };
    });
    const l = r.recent.map(([k, at]) => at - sentAt(loopsNow, k, at)).filter((x) => Number.isFinite(x));
    const lag = r.lag.map(([, x]) => x).filter((x) => Number.isFinite(x));
    process.stderr.write(`bench: ${((Date.now() - t0run) / 60000).toFixed(0)} min: last minute p50 ${pct(l, 50)?.toFixed(0)} ms, ` +
      `p95 ${pct(l, 95)?.toFixed(0)} ms over ${l.length} frames; playhead lag ${(lag.reduce((a, x) => a + x, 0) / Math.max(1, lag.length)).toFixed(2)} s\n`);
  } catch (e) { process.stderr.write(`bench: progress: ${e.message}\n`); }
}, 300000);
await new Promise((res) => setTimeout(res, SECONDS * 1000));
clearInterval(progress);
clearInterval(gathering);
const got = await page.evaluate(() => ({ frames: window.latency.frames, lags: window.latency.lags, stats: window.gridcc.wall.tiles[0].player.stats }));
const base = await baseline(cam.port, Math.min(20, SECONDS));
const loops = await gatherLoops();
const baseLat = base.slice(FPS).map(([k, at]) => at - sentAt(loops, k, at)).filter((x) => Number.isFinite(x));
const timed = got.frames.map(([k, at]) => [at, at - sentAt(loops, k, at)]).filter(([, x]) => Number.isFinite(x));
const lat = timed.map(([, x]) => x);
// the first and the last minute apart: drift over a long run shows here
const t0 = timed.length ? timed[0][0] : 0, t1 = timed.length ? timed[timed.length - 1][0] : 0;
const firstMin = timed.filter(([at]) => at - t0 < 60000).map(([, x]) => x);
const lastMin = timed.filter(([at]) => t1 - at < 60000).map(([, x]) => x);
const lags = got.lags.map(([, l]) => l).filter((x) => Number.isFinite(x));
const tail = lags.slice(-10);
console.log(`camera-to-screen latency over ${SECONDS} s, ${lat.length} frames of ${got.frames.length} presented ` +
  `(${WIDTH}x${HEIGHT} ${FPS} fps H.264): p50 ${pct(lat, 50).toFixed(0)} ms, p95 ${pct(lat, 95).toFixed(0)} ms, ` +
  `max ${Math.max(...lat).toFixed(0)} ms; target p95 < 1000 ms`);
if (SECONDS >= 180)
  console.log(`first minute: p50 ${pct(firstMin, 50).toFixed(0)} ms, p95 ${pct(firstMin, 95).toFixed(0)} ms; ` +
    `last minute: p50 ${pct(lastMin, 50).toFixed(0)} ms, p95 ${pct(lastMin, 95).toFixed(0)} ms`);
console.log(`baseline, ffmpeg decoding straight from camsim (RTSP and decoding alone): p50 ${pct(baseLat, 50).toFixed(0)} ms, ` +
  `p95 ${pct(baseLat, 95).toFixed(0)} ms over ${baseLat.length} frames; gridcc + browser add ${(pct(lat, 95) - pct(baseLat, 95)).toFixed(0)} ms at p95`);
console.log(`playhead behind the newest buffered frame: first 10 s mean ${(lags.slice(0, 10).reduce((a, x) => a + x, 0) / Math.max(1, Math.min(10, lags.length))).toFixed(2)} s, ` +
  `last 10 s mean ${(tail.reduce((a, x) => a + x, 0) / Math.max(1, tail.length)).toFixed(2)} s; ` +
  `jumps ${got.stats.jumps}, skips ${got.stats.skips}, errors ${got.stats.errors.length}`);
await b.close();
await d.stop();
cam.p.kill('SIGTERM');
