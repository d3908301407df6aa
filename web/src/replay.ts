// Replay (回放): any past window of the district played again on the same
// map at 1×–60×: where the workers were (from the positions table), the
// cases as they stood and changed, the alerts raised (from the change log);
// and "who was in this area between T1 and T2" by drawing a box.
import type { Map as MlMap } from 'maplibre-gl';
import { api } from './api';
import { clear, h } from './dom';
import { t } from './i18n';
import { geo } from './map';
import { Clock, fmtClock, positionAt, SPEEDS, trailBefore, type Fix } from './playback';
import { TRAIL_MS, type WorkerDot } from './workers_layer';

const OPEN = new Set(['reported', 'registered', 'dispatched', 'handled', 'verified']);

interface ReplayWorker { id: string; name: string; fixes: Fix[] }
interface Change { seq: number; topic: string; id: string; ts: number | string; data: any }

export interface ReplayHost {
  map: MlMap;
  /** the live layers stop drawing while a replay runs, and draw again after */
  pauseLive: (paused: boolean) => void;
  feed: (ts: number, kind: string, text: string) => void;
  alerts: (all: [string, any][]) => void;
  /** where the workers were, drawn as the live ones are (their trails
   * in this frame: the clock may run at 60x) */
  workers: (dots: WorkerDot[], now: boolean) => void;
  alertText: (a: any) => string;
  clearFeed: () => void;
  panel: (title: string, ...body: Node[]) => void;
}

function when(c: Change): number {
  return typeof c.ts === 'number' ? (c.ts < 1e12 ? c.ts * 1000 : c.ts) : Date.parse(c.ts);
}

function localInput(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

export class Replay {
  private bar: HTMLElement;
  clock: Clock | null = null;
  private workers: ReplayWorker[] = [];
  private changes: Change[] = [];
  private start = new Map<string, any>();   // cases as they stood at snapAt
  private snapAt = 0;
  private fetching = false;
  private applied = 0;                      // changes applied up to the clock
  private cases = new Map<string, any>();
  private alerts = new Map<string, any>();
  active = false;
  /** where the last drawn moment put each worker (the tests read it) */
  lastPositions: { id: string; name: string; at: [number, number] }[] = [];

  constructor(private host: ReplayHost, frame: HTMLElement) {
    this.bar = h('div', { class: 'replay-bar', id: 'replay-bar', hidden: true });
    frame.append(this.bar);
  }

  toggle(): void {
    if (this.active) this.exit(); else this.enter();
  }

  enter(from?: number, to?: number): void {
    this.active = true;
    this.host.pauseLive(true);
    this.bar.hidden = false;
    document.body.classList.add('replaying');
    const now = Date.now();
    const f = h('input', { type: 'datetime-local', id: 'replay-from', value: localInput(from ?? now - 3600 * 1000) });
    const tt = h('input', { type: 'datetime-local', id: 'replay-to', value: localInput(to ?? now) });
    const load = h('button', { class: 'act', id: 'replay-load' }, t('load'));
    const area = h('button', { class: 'act', id: 'replay-area' }, t('area'));
    const status = h('span', { class: 'muted', id: 'replay-status' });
    clear(this.bar);
    this.bar.append(h('div', { class: 'replay-row' }, h('b', {}, t('replay')), f, '—', tt, load, area, status),
      h('div', { class: 'replay-row', id: 'replay-controls' }));
    load.addEventListener('click', () => void this.load(Date.parse(f.value), Date.parse(tt.value)));
    area.addEventListener('click', () => this.drawArea(Date.parse(f.value), Date.parse(tt.value)));
    this.host.clearFeed();
  }

  exit(): void {
    this.clock?.pause();
    this.clock = null;
    this.active = false;
    this.bar.hidden = true;
    document.body.classList.remove('replaying');
    geo(this.host.map, 'replay-area')?.setData({ type: 'FeatureCollection', features: [] });
    this.host.alerts([]);
    this.host.pauseLive(false);
  }

  /** Loads the window and puts the clock at its start. */
  async load(from: number, to: number): Promise<void> {
    const status = document.getElementById('replay-status')!;
    if (!(to > from)) { status.textContent = t('bad_window'); return; }
    status.textContent = '…';
    const s = Math.floor(from / 1000), e = Math.ceil(to / 1000);
    const [pos, cases] = await Promise.all([
      api<any>(`/api/history/positions?from=${s}&to=${e}`),
      api<any>(`/api/history/incidents?at=${s}`),
    ]);
    const changes: Change[] = [];
    for (let after: number | null = null; ;) {
      const r: any = await api<any>(`/api/history/changes?from=${s}&to=${e}&topics=incidents,alerts${after != null ? `&after_seq=${after}` : ''}`);
      changes.push(...(r.changes || []));
      if (!r.truncated || r.next == null) break;
      after = r.next;
    }
    this.workers = (pos.workers || []).map((w: any) => ({ id: String(w.id), name: w.name, fixes: w.fixes }));
    this.changes = changes.sort((a, b) => a.seq - b.seq);
    this.start = new Map((cases.features || []).map((f: any) => [f.properties.case_no || f.id, f]));
    this.snapAt = from;
    const fixes = this.workers.reduce((a, w) => a + w.fixes.length, 0);
    status.textContent = `${this.workers.length} ${t('workers')} · ${fixes} ${t('fixes')} · ${this.changes.length} ${t('changes')}${pos.thinned ? ' ·' + t('thinned') : ''}`;
    this.controls(from, to);
  }

  private controls(from: number, to: number): void {
    const c = document.getElementById('replay-controls')!;
    clear(c);
    this.clock?.pause();
    const clock = new Clock(from, to);
    this.clock = clock;
    const btn = h('button', { class: 'act play', id: 'replay-play' }, '▶');
    const speed = h('select', { class: 'speed', id: 'replay-speed' }, ...SPEEDS.map((x) => { const o = h('option', { value: x }, `${x}×`); if (x === 60) o.selected = true; return o; }));
    const slider = h('input', { type: 'range', min: 0, max: 10000, value: 0, class: 'slider', id: 'replay-slider' });
    const label = h('span', { class: 'clock-label', id: 'replay-clock' });
    clock.speed = 60;
    clock.onTick = (tt) => {
      label.textContent = fmtClock(tt);
      slider.value = String(Math.round((tt - from) / (to - from) * 10000));
      this.draw(tt);
    };
    clock.onEnd = () => { btn.textContent = '▶'; };
    btn.addEventListener('click', () => { if (clock.isPlaying) { clock.pause(); btn.textContent = '▶'; } else { clock.play(); btn.textContent = '❚❚'; } });
    speed.addEventListener('change', () => { clock.speed = Number(speed.value); });
    slider.addEventListener('input', () => clock.seek(from + (to - from) * Number(slider.value) / 10000));
    c.append(btn, speed, slider, label);
    this.cases = new Map(this.start);
    this.alerts = new Map();
    this.applied = 0;
    clock.seek(from);
  }

  /** The district at time tt: changes applied up to it (from the start
   * again when the clock went back), workers where their fixes put them. */
  draw(tt: number): void {
    // the change log holds the steps taken live; steps recorded afterwards
    // (a 12345 import, history) are in each case's audit trail, which the
    // as-of read follows: the cases are read again as the clock moves on
    if (!this.fetching && (tt < this.snapAt || tt - this.snapAt > 10 * 60 * 1000)) void this.asOf(tt);
    if (this.applied > 0 && this.applied <= this.changes.length && when(this.changes[this.applied - 1]) > tt) {
      this.cases = new Map(this.start);
      this.alerts = new Map();
      this.applied = this.changes.findIndex((c) => when(c) > this.snapAt);
      if (this.applied < 0) this.applied = this.changes.length;
      this.host.clearFeed();
    }
    let casesChanged = this.applied === 0, alertsChanged = this.applied === 0;
    while (this.applied < this.changes.length && when(this.changes[this.applied]) <= tt) {
      const c = this.changes[this.applied++];
      if (c.topic === 'incidents' && c.data) {
        const no = c.data.properties?.case_no || c.data.id || c.id;
        this.cases.set(no, c.data);
        casesChanged = true;
        this.host.feed(when(c), t('case'), `${no} ${c.data.properties?.status || ''} · ${c.data.properties?.description || ''}`);
      } else if (c.topic === 'alerts' && c.data) {
        this.alerts.set(String(c.data.id ?? c.id), c.data);
        alertsChanged = true;
        this.host.feed(when(c), t('alert'), this.host.alertText(c.data));
      }
    }
    const map = this.host.map;
    if (casesChanged) {
      const feats = [...this.cases.values()].filter((f) => f.geometry && OPEN.has(f.properties?.status))
        .map((f) => ({ type: 'Feature', geometry: f.geometry, properties: { case_no: f.properties.case_no || f.id, status: f.properties.status, overdue: false } }));
      geo(map, 'incidents')?.setData({ type: 'FeatureCollection', features: feats } as any);
    }
    if (alertsChanged) {
      this.host.alerts([...this.alerts.entries()]);
    }
    const dots: WorkerDot[] = [];
    this.lastPositions = [];
    for (const w of this.workers) {
      const p = positionAt(w.fixes, tt);
      if (!p) continue;
      this.lastPositions.push({ id: w.id, name: w.name, at: p });
      dots.push({ wid: w.id, name: w.name, at: p, sos: false, trail: trailBefore(w.fixes, tt, TRAIL_MS) as [number, number][],
        props: { wid: w.id, worker: w.name } });
    }
    this.host.workers(dots, true);
  }

  private async asOf(tt: number): Promise<void> {
    this.fetching = true;
    try {
      const r = await api<any>(`/api/history/incidents?at=${Math.floor(tt / 1000)}`);
      this.start = new Map((r.features || []).map((f: any) => [f.properties.case_no || f.id, f]));
      this.snapAt = tt;
      this.cases = new Map(this.start);
      this.applied = this.changes.findIndex((c) => when(c) > tt);
      if (this.applied < 0) this.applied = this.changes.length;
      if (this.clock) this.draw(this.clock.t);
    } finally {
      this.fetching = false;
    }
  }

  /** Draw a box with the mouse; then who was in it in the window. */
  drawArea(from: number, to: number): void {
    const map = this.host.map;
    const canvas = map.getCanvasContainer();
    map.dragPan.disable();
    canvas.style.cursor = 'crosshair';
    let start: { x: number; y: number } | null = null;
    const box = (a: any, b: any) => {
      const p1 = map.unproject([a.x, a.y]), p2 = map.unproject([b.x, b.y]);
      return [Math.min(p1.lng, p2.lng), Math.min(p1.lat, p2.lat), Math.max(p1.lng, p2.lng), Math.max(p1.lat, p2.lat)];
    };
    const show = (bb: number[]) => geo(map, 'replay-area')?.setData({ type: 'FeatureCollection', features: [{ type: 'Feature', properties: {},
      geometry: { type: 'LineString', coordinates: [[bb[0], bb[1]], [bb[2], bb[1]], [bb[2], bb[3]], [bb[0], bb[3]], [bb[0], bb[1]]] } }] } as any);
    const down = (e: any) => { start = e.point; };
    const move = (e: any) => { if (start) show(box(start, e.point)); };
    const up = async (e: any) => {
      if (!start) return;
      const bb = box(start, e.point);
      start = null;
      map.off('mousedown', down); map.off('mousemove', move); map.off('mouseup', up);
      map.dragPan.enable();
      canvas.style.cursor = '';
      show(bb);
      await this.who(bb, from, to);
    };
    map.on('mousedown', down); map.on('mousemove', move); map.on('mouseup', up);
  }

  async who(bb: number[], from: number, to: number): Promise<any[]> {
    const r = await api<any>(`/api/history/area?from=${Math.floor(from / 1000)}&to=${Math.ceil(to / 1000)}&bbox=${bb.map((v) => v.toFixed(6)).join(',')}`);
    const list = h('ul', { class: 'plain area-workers', id: 'area-workers' });
    for (const w of r.workers || [])
      list.append(h('li', {}, h('b', {}, w.name || String(w.id)), ` ${fmtClock(w.first_ms)} – ${fmtClock(w.last_ms)} · ${w.fixes} ${t('fixes')}`));
    if (!(r.workers || []).length) list.append(h('li', { class: 'muted' }, t('nobody')));
    this.host.panel(`${t('area')}: ${fmtClock(from)} – ${fmtClock(to)}`, list);
    return r.workers || [];
  }
}
