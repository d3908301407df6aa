// Test harness for Node integration tests: starts the real gridcc daemon on a
// temporary SpatiaLite file (a copy of one seeded with the sample district),
// talks to it over real HTTP and websockets. Environment (from ctest):
// GRIDCC_BIN, GRIDCC_LAYERS.
'use strict';
const { execFileSync, spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');
const WebSocket = require('ws');

const BIN = process.env.GRIDCC_BIN;
const LAYERS = process.env.GRIDCC_LAYERS;
if (!BIN || !LAYERS) {
  console.error('GRIDCC_BIN and GRIDCC_LAYERS must be set (ctest sets them)');
  process.exit(2);
}
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'gridcc-node-'));

function gridcc(...args) {
  return execFileSync(BIN, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

let seeded = null;
/* A fresh database with the sample district, an operator and workers with
 * devices: {db, op, workers: [{name, token, device}], res}. */
function newDb(name, nworkers = 3) {
  if (!seeded) {
    seeded = path.join(TMP, 'seed.db');
    gridcc('seed', '--db', seeded, '--layers', LAYERS);
  }
  const db = path.join(TMP, name + '.db');
  fs.copyFileSync(seeded, db);
  const op = gridcc('user', 'add', 'op', '--role', 'operator', '--db', db).trim();
  const res = gridcc('user', 'add', 'resident1', '--role', 'resident', '--db', db).trim();
  const workers = [];
  for (let i = 1; i <= nworkers; i++) {
    const token = gridcc('user', 'add', 'w' + i, '--role', 'worker', '--db', db).trim();
    gridcc('device', 'add', 'dev' + i, '--worker', 'w' + i, '--db', db);
    workers.push({ name: 'w' + i, token, device: 'dev' + i });
  }
  return { db, op, res, workers };
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/* One HTTP request: {status, headers, body (string), json}. */
function request(port, method, p, { body, token, headers } = {}) {
  return new Promise((resolve, reject) => {
    const h = Object.assign({}, headers);
    if (token) h.Authorization = 'Bearer ' + token;
    let data = body;
    if (body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body)) {
      data = JSON.stringify(body);
      h['Content-Type'] = h['Content-Type'] || 'application/json';
    }
    if (data !== undefined) h['Content-Length'] = Buffer.byteLength(data);
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers: h, agent }, (r) => {
      const chunks = [];
      r.on('data', (c) => chunks.push(c));
      r.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch (e) { /* not JSON */ }
        resolve({ status: r.statusCode, headers: r.headers, body: text, json });
      });
    });
    req.on('error', reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

class Daemon {
  static async start(db, ...extra) {
    const d = new Daemon();
    d.db = db;
    d.port = await freePort();
    d.logPath = db + '.' + d.port + '.log';
    const log = fs.openSync(d.logPath, 'a');
    d.proc = spawn(BIN, ['serve', '--db', db, '--port', String(d.port), '--osmand-port', '0', ...extra],
      { stdio: ['ignore', log, log] });
    d.exited = new Promise((resolve) => d.proc.on('exit', (code, sig) => resolve({ code, sig })));
    const deadline = Date.now() + 60000;
    for (;;) {
      if (d.proc.exitCode !== null) throw new Error('daemon exited early:\n' + d.logs());
      try {
        const r = await request(d.port, 'GET', '/api/health');
        if (r.status === 200) { d.osmand = r.json.osmand_port; break; }
      } catch (e) { /* not yet */ }
      if (Date.now() > deadline) throw new Error('daemon did not answer:\n' + d.logs());
      await sleep(50);
    }
    return d;
  }
  logs() { try { return fs.readFileSync(this.logPath, 'utf8'); } catch (e) { return ''; } }
  api(method, p, opts) { return request(this.port, method, p, opts); }
  osmandReq(method, p, opts) { return request(this.osmand, method, p, opts); }
  async health() { return (await this.api('GET', '/api/health')).json; }
  async stop() {
    if (this.proc.exitCode !== null) return;
    this.proc.kill('SIGTERM');
    const r = await this.exited;
    if (r.code !== 0) throw new Error('daemon exit ' + JSON.stringify(r) + '\n' + this.logs());
  }
  async kill9() {
    this.proc.kill('SIGKILL');
    await this.exited;
  }
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

/* A websocket client of /live that queues what it receives. */
class Live {
  static open(port, query = '', opts = {}) {
    const c = new Live();
    c.msgs = [];     // not yet taken by next()
    c.seen = [];     // every message, in order
    c.waiters = [];
    c.closed = null;
    c.ws = new WebSocket(`ws://127.0.0.1:${port}/live${query}`, opts);
    c.ws.on('message', (m) => {
      const j = JSON.parse(m.toString());
      j._at = Date.now();
      c.msgs.push(j);
      c.seen.push(j);
      c._poke();
    });
    c.ws.on('close', (code, reason) => { c.closed = { code, reason: reason.toString() }; c._poke(); });
    c.ws.on('error', () => {});
    return new Promise((resolve, reject) => {
      c.ws.once('open', () => resolve(c));
      c.ws.once('unexpected-response', (req, res) => reject(new Error('upgrade refused: ' + res.statusCode)));
      c.ws.once('error', reject);
    });
  }
  _poke() { const w = this.waiters; this.waiters = []; w.forEach((f) => f()); }
  send(o) { this.ws.send(typeof o === 'string' ? o : JSON.stringify(o)); }
  /* The first queued message satisfying pred (removed from the queue). */
  async next(pred = () => true, ms = 10000, what = 'a message') {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.msgs.findIndex(pred);
      if (i >= 0) return this.msgs.splice(i, 1)[0];
      if (this.closed) throw new Error(`closed (${this.closed.code} ${this.closed.reason}) waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for ' + what + '; have ' + JSON.stringify(this.msgs.slice(-3)).slice(0, 500));
      await new Promise((r) => { this.waiters.push(r); setTimeout(r, left); });
    }
  }
  /* Every change item received so far (from "changes" frames), in order. */
  items() {
    const out = [];
    for (const m of this.seen) if (m.type === 'changes') for (const c of m.changes) out.push(Object.assign({ _at: m._at }, c));
    return out;
  }
  /* Waits until the items received so far satisfy pred(items). */
  async waitItems(pred, ms = 10000, what = 'items') {
    const deadline = Date.now() + ms;
    for (;;) {
      const it = this.items();
      if (pred(it)) return it;
      if (this.closed) throw new Error(`closed (${this.closed.code}) waiting for ${what}`);
      if (Date.now() > deadline) throw new Error('timed out waiting for ' + what + '; have ' + JSON.stringify(it.slice(-3)).slice(0, 400));
      await new Promise((r) => { this.waiters.push(r); setTimeout(r, 100); });
    }
  }
  async waitClosed(ms = 10000) {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('not closed');
      await new Promise((r) => { this.waiters.push(r); setTimeout(r, 100); });
    }
    return this.closed;
  }
  close() { this.ws.close(); }
}

async function run(tests) {
  let failed = 0;
  for (const t of tests) {
    const t0 = Date.now();
    try {
      await t();
      console.log(`ok   ${t.name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${t.name}\n${e.stack}`);
    }
  }
  console.log(`${tests.length - failed} passed, ${failed} failed`);
  agent.destroy();
  if (!failed) fs.rmSync(TMP, { recursive: true, force: true });
  process.exit(failed ? 1 : 0);
}

function sql(db, q) {
  return execFileSync('sqlite3', [db, q], { encoding: 'utf8' }).trim();
}

module.exports = { Daemon, Live, newDb, gridcc, request, run, sleep, sql, TMP, LAYERS };
