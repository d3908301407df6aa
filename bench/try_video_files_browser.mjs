// Real video files in the browser (issue 15: "try the H.264 and H.265 files
// in ../shared/realdata/video through camsim and report what happened"):
// bench/try_video_files.py reads each file's live view with ffprobe; this
// plays it where operators see it, the page's own player on the video wall
// in headless chromium.
//
// For each .264/.h264/.h265/.265/.mp4/.mkv under DIR, camsim serves the file
// (/file1), one daemon on a fresh sample database takes it as a camera, and
// the wall plays it for SECS seconds. Recorded: the camera's state, codec and
// size; whether the playhead advanced and by how much; the frames the video
// element presented and dropped (getVideoPlaybackQuality); the player's
// errors, recoveries (starts again after a decode error), catch-up jumps and
// server skips; and the picture's size.
//   node bench/try_video_files_browser.mjs DIR [SECS=12] [--only REGEX]
// GRIDCC_TRY_LOG=1 prints the daemon's video lines for each file.
// GRIDCC_TRY_FULL=1 keeps the errors whole (the sample chromium refused).
// Run from the repository root after scripts/setup.sh.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { BIN, browser, Daemon, login, newPage, ready, until } from '../web/tests/harness.mjs';

const args = process.argv.slice(2);
const only = args.includes('--only') ? args.splice(args.indexOf('--only'), 2)[1] : '';
const [DIR, SECS = '12'] = args;
if (!DIR) {
  console.error('usage: node bench/try_video_files_browser.mjs DIR [SECS] [--only REGEX]');
  process.exit(2);
}
const CAMSIM = process.env.CAMSIM_BIN || path.join(path.dirname(BIN), 'tools', 'camsim');
const EXT = /\.(264|h264|h265|265|mp4|mkv)$/i;

function files(dir) {
  return readdirSync(dir).sort().flatMap((n) => {
    const p = path.join(dir, n);
    if (statSync(p).isDirectory()) return files(p);
    return EXT.test(n) && new RegExp(only).test(p) ? [p] : [];
  });
}

function startCamsim(file) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gridcc-try-'));
  const p = spawn(CAMSIM, ['--port', '0', '--control', '0', '--cache', dir, '--streams', '0', '--file', file],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  p.stderr.on('data', (b) => { log = (log + b).slice(-4096); });
  return new Promise((resolve) => {
    const rl = readline.createInterface({ input: p.stdout });
    rl.once('line', (line) => {
      const m = /camsim: ready port=(\d+)/.exec(line);
      resolve(m ? { p, dir, port: Number(m[1]) } : { p, dir, error: line });
    });
    p.once('exit', (code) => resolve({ p, dir, error: `camsim exited ${code}: ${log.trim().split('\n').pop()}` }));
  });
}

/** The wall's tile of camera id, as the page sees it. */
function tile(id) {
  const t = window.gridcc.wall.tiles.find((x) => x.camera?.id === id);
  const p = t?.player;
  if (!p) return null;
  const q = p.video.getVideoPlaybackQuality();
  return {
    state: p.stats.state, errors: p.stats.errors, recoveries: p.stats.recoveries, jumps: p.stats.jumps,
    skips: p.stats.skips, codec: p.stats.codec, transcoded: p.stats.transcoded, t: p.video.currentTime,
    w: p.video.videoWidth, h: p.video.videoHeight, shown: q.totalVideoFrames - q.droppedVideoFrames,
    dropped: q.droppedVideoFrames, error: p.video.error ? p.video.error.message || String(p.video.error.code) : null,
  };
}

const d = await Daemon.start([['op1', 'operator'], ['ad', 'admin']]);
// however this script ends (a crash included), its daemon and camsim end
// with it: left behind, they streamed on and took the cores from later work
let current = null;
process.on('exit', () => { current?.p.kill('SIGKILL'); d.proc.kill('SIGKILL'); });
const b = await browser();
const page = await newPage(b, { width: 1920, height: 1080 });
await login(page, d.url, 'op1', 'op1-password');
await ready(page);
const rows = [];
let k = 0;
for (const file of files(DIR)) {
  const name = path.relative(DIR, file);
  const cs = current = await startCamsim(file);
  const row = { file: name };
  rows.push(row);
  try {
    if (cs.error) { row.result = `camsim refused: ${cs.error.slice(0, 100)}`; continue; }
    const id = `rf${++k}`;
    const r = await d.api('POST', '/api/cameras', {
      token: d.tokens.ad,
      body: { id, name: name.slice(0, 60), url: `rtsp://127.0.0.1:${cs.port}/file1`, lon: 116.33, lat: 40.0, heading: 0, fov: 60, range_m: 100 },
    });
    if (r.status !== 201) { row.result = `POST ${r.status}`; continue; }
    let cam;
    const deadline = Date.now() + 30000;
    do {
      await new Promise((res) => setTimeout(res, 200));
      cam = (await d.api('GET', `/api/cameras/${id}`, { token: d.tokens.ad })).json;
    } while (cam.state !== 'playing' && cam.state !== 'failed' && Date.now() < deadline);
    row.camera = `${cam.state}${cam.reason ? ` (${cam.reason})` : ''} ${cam.codec || ''} ${cam.width || '?'}x${cam.height || '?'}`;
    await until(page, (i) => window.gridcc.state.cameras.has(i), id, { timeout: 10000, what: `${id} listed` });
    await page.evaluate((i) => {
      if (!document.getElementById('wall-toggle').classList.contains('on')) document.getElementById('wall-toggle').click();
      window.gridcc.wall.put(window.gridcc.state.cameras.get(i));
    }, id);
    let first = null;
    const until0 = Date.now() + 20000;
    while (Date.now() < until0 && !(first = await page.evaluate(tile, id))?.t) await new Promise((res) => setTimeout(res, 100));
    const t0 = Date.now();
    await new Promise((res) => setTimeout(res, Number(SECS) * 1000));
    const s = await page.evaluate(tile, id);
    const wall = (Date.now() - t0) / 1000;
    Object.assign(row, {
      played: first?.t ? `${(s.t - first.t).toFixed(1)} s of ${wall.toFixed(1)}` : 'never started',
      frames: `${s.shown - (first?.shown || 0)} shown, ${s.dropped} dropped`,
      picture: `${s.w}x${s.h}${s.transcoded ? ' (transcoded)' : ''}`,
      player: `${s.recoveries} restarts, ${s.jumps} jumps, ${s.skips} skips`,
      errors: [...new Set(s.errors.map((e) => (process.env.GRIDCC_TRY_FULL ? e : e.replace(/\{.*\}/, '{…}').slice(0, 90))))].join('; ') || (s.error ? s.error.slice(0, 90) : '—'),
    });
    if (process.env.GRIDCC_TRY_LOG)
      console.error(d.log.split('\n').filter((l) => l.includes(`id=${id} `) || /qtmux|x264|libav/.test(l)).slice(-25).join('\n'));
    await d.api('DELETE', `/api/cameras/${id}`, { token: d.tokens.ad });
  } catch (e) {
    row.result = `${e.message}`.slice(0, 160);
  } finally {
    // camsim now and then does not stop on SIGTERM (seen with a 9-frame
    // file looping): killed after 10 s, or it streams on beside what follows
    const gone = new Promise((resolve) => { if (cs.p.exitCode !== null || cs.p.signalCode) resolve(); else cs.p.once('exit', resolve); });
    cs.p.kill('SIGTERM');
    const timer = setTimeout(() => { console.error(`camsim for ${name} did not stop in 10 s: killed`); cs.p.kill('SIGKILL'); }, 10000);
    await gone;
    clearTimeout(timer);
    current = null;
    rmSync(cs.dir, { recursive: true, force: true });
  }
  console.error(JSON.stringify(row));
}
await b.close();
await d.stop();

console.log('| file | camera | played | frames | picture | player | errors |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows)
  console.log(r.result ? `| ${r.file} | ${r.result} | | | | | |`
    : `| ${r.file} | ${r.camera} | ${r.played} | ${r.frames} | ${r.picture} | ${r.player} | ${r.errors} |`);
