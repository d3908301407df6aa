// What the browser tests share: the real daemon on a seeded SpatiaLite file,
// users with passwords, Debian's chromium through playwright-core, and
// screenshots of every step at the wall's two sizes.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const BIN = process.env.GRIDCC_BIN || 'build/gridcc';
export const LAYERS = process.env.GRIDCC_LAYERS || 'layers';
export const SHOTS = process.env.GRIDCC_SHOTS || path.join(os.tmpdir(), 'gridcc-shots');
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
export const SIZES = { hd: { width: 1920, height: 1080 }, uhd: { width: 3840, height: 2160 } };

export function gridcc(args, input) {
  return execFileSync(BIN, args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

export class Daemon {
  static async start(users, serveArgs = []) {
    const d = new Daemon();
    d.dir = mkdtempSync(path.join(os.tmpdir(), 'gridcc-web-'));
    d.db = path.join(d.dir, 't.db');
    gridcc(['seed', '--db', d.db, '--layers', LAYERS]);
    d.tokens = {};
    for (const [name, role, extra = []] of users)
      d.tokens[name] = gridcc(['user', 'add', name, '--role', role, ...extra, '--db', d.db, '--password-stdin'],
        `${name}-password\n`).trim();
    d.port = await freePort();
    d.proc = spawn(BIN, ['serve', '--db', d.db, '--port', String(d.port), '--osmand-port', '0', ...serveArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
    d.log = '';
    d.proc.stdout.on('data', (b) => { d.log += b; });
    d.proc.stderr.on('data', (b) => { d.log += b; });
    const deadline = Date.now() + 60000;
    for (;;) {
      try { if ((await fetch(`${d.url}/api/health`)).ok) break; } catch { /* not up yet */ }
      if (d.proc.exitCode !== null || Date.now() > deadline) throw new Error(`daemon did not start:\n${d.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    d.osmandPort = (await (await fetch(`${d.url}/api/health`)).json()).osmand_port;
    return d;
  }

  get url() { return `http://127.0.0.1:${this.port}`; }

  async api(method, p, { token, body } = {}) {
    const headers = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(this.url + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    return { status: r.status, json, text, headers: r.headers };
  }

  /** Stops the daemon; throws when it did not exit cleanly or a sanitizer
   * spoke (under ASan+LSan a leak shows at exit). */
  async stop() {
    if (this.proc.exitCode === null) {
      this.proc.kill('SIGTERM');
      await new Promise((r) => this.proc.once('exit', r));
    }
    rmSync(this.dir, { recursive: true, force: true });
    const bad = /(AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:)[^\n]*/.exec(this.log);
    if (bad) throw new Error(`the daemon's sanitizer: ${bad[0]}`);
    if (this.proc.exitCode !== 0) throw new Error(`the daemon exited ${this.proc.exitCode} (signal ${this.proc.signalCode}):\n${this.log.slice(-2000)}`);
  }
}

export async function browser() {
  return chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_FLAGS });
}

/** A page that records what went wrong in it: errors, dialogs, CSP refusals. */
export async function newPage(b, size = SIZES.hd) {
  const page = await b.newPage({ viewport: size });
  page.problems = [];
  page.dialogs = [];
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('dialog', (dlg) => { page.dialogs.push(dlg.message()); void dlg.dismiss(); });
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) page.problems.push(`csp: ${m.text()}`);
  });
  return page;
}

export async function login(page, url, user, password) {
  await page.goto(url);
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
}

/** Polls fn in the page until it returns something truthy, and returns it.
 * (Playwright's waitForFunction compiles its predicate with eval, which the
 * page's Content-Security-Policy rightly refuses.) */
export async function until(page, fn, arg, { timeout = 10000, what = 'the condition' } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await page.evaluate(fn, arg);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 15));
  }
}

// Deadlines, not measurements: generous, since the daemon may run under ASan
// and Chromium draws 4K in software on a machine shared with other work.
export async function ready(page) {
  await page.waitForSelector('body[data-ready="1"]', { timeout: 180000 });
  // the map has drawn what its sources hold
  await until(page, () => window.gridcc?.map?.loaded() && window.gridcc.map.areTilesLoaded(), null,
    { timeout: 180000, what: 'the map to load' });
}

export async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  const size = page.viewportSize();
  const file = path.join(SHOTS, `${name}-${size.width}x${size.height}.png`);
  await page.screenshot({ path: file });
  return file;
}

/** Runs the tests in order; prints 'N passed, N failed'; exit status 1 on a failure. */
export async function run(tests, teardown) {
  let passed = 0, failed = 0;
  for (const t of tests) {
    const t0 = Date.now();
    try {
      await t();
      passed++;
      console.log(`ok   ${t.name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${t.name}\n${e.stack || e}`);
    }
  }
  try { await teardown(); } catch (e) { failed++; console.log(`FAIL teardown: ${e.stack || e}`); }
  console.log(`${passed} passed, ${failed} failed; screenshots in ${SHOTS}`);
  process.exit(failed ? 1 : 0);
}
