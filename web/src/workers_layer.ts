// The grid workers on the map: a dot each (red on SOS), the name from zoom
// 14, and the last 10 minutes of trail, laid over the map rather than drawn
// as MapLibre layers. Positions never stop arriving, and in a MapLibre
// source every batch repaints the whole WebGL map: on a wall PC without a
// GPU (software GL) that is 0.4-0.5 s a frame at 1920x1080 with the
// buildings in view, so the map fell behind the fixes and the page froze.
// Here the map draws only when it moves:
//  - each worker is a MapLibre marker (a small element the map moves with
//    itself); a fix moves one element, which costs the compositor a few
//    small squares, not a full-screen canvas or map;
//  - the trails are lines on one 2D canvas over the map, drawn again in
//    the same frame as the map when it moves, and at most twice a second as
//    fixes come (a trail is minutes long: a frame's fixes do not change how
//    it reads; a replay, whose clock may run at 60x, draws them each
//    frame), a point closer than 2 px to the last one drawn skipped;
//  - names show from zoom 14, and a name that would cover one already
//    shown is hidden (an SOS first), as MapLibre does for its labels.
import * as maplibregl from 'maplibre-gl';
import type { Map as MlMap } from 'maplibre-gl';
import { scale } from './dom';

export interface WorkerDot {
  wid: string;
  name: string;
  at: [number, number];
  sos: boolean;
  /** the last minutes, oldest first: lon, lat (and anything after) */
  trail: readonly (readonly number[])[];
  /** what the worker panel is opened with */
  props: any;
}

/** how far back a worker's trail reaches, live and in a replay */
export const TRAIL_MS = 10 * 60 * 1000;
const TRAIL = 'rgba(177, 151, 252, 0.8)';   // a lighter --worker of style.css: it reads over a red grid too
const LABEL_ZOOM = 14;                // on a 1080p screen; further in on larger ones (map.ts)
const TRAIL_EVERY_MS = 500;

interface Drawn { marker: maplibregl.Marker; el: HTMLElement; label: HTMLElement; dot: WorkerDot; at: [number, number]; hidden: boolean }

export class WorkersLayer {
  /** the trails' canvas */
  readonly canvas: HTMLCanvasElement;
  private dots: WorkerDot[] = [];
  private drawn = new Map<string, Drawn>();
  private trailsAt = 0;
  private trailsStale = false;
  private trailTimer = 0;
  /** a worker's dot was clicked */
  onClick: (d: WorkerDot) => void = () => {};
  /** trail drawings since the page opened (tests and benchmarks read it) */
  trailDraws = 0;
  /** the wall's scale (dom.ts), read again only when the map is resized:
   * reading it after markers moved would make the browser lay out anew */
  private k = scale();

  constructor(private map: MlMap) {
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'workers-trails';
    // over the map, under the markers (workers, alerts) and the controls
    map.getCanvasContainer().insertBefore(this.canvas, map.getCanvas().nextSibling);
    map.on('render', () => this.drawTrails());
    map.on('resize', () => { this.k = scale(); this.drawTrails(); });
    const labels = () => map.getContainer().classList.toggle('worker-names', this.named());
    map.on('zoom', labels);
    map.on('moveend', () => this.declutter());
    labels();
  }

  /** Replaces what is drawn: markers move at once (the live bus hands
   * batches once a frame), the trails follow within half a second, or in
   * this frame when now is set (a replay's clock). */
  set(dots: WorkerDot[], now = false): void {
    this.dots = dots;
    const keep = new Set<string>();
    for (const d of dots) {
      keep.add(d.wid);
      let m = this.drawn.get(d.wid);
      if (!m) {
        const label = document.createElement('span');
        label.className = 'name';
        const el = document.createElement('div');
        el.className = 'worker-dot';
        el.dataset.wid = d.wid;
        el.append(label);
        const drawn: Drawn = { marker: new maplibregl.Marker({ element: el }), el, label, dot: d, at: [NaN, NaN], hidden: false };
        // his, not the map's: no grid panel under his, no zoom on a double click
        el.addEventListener('click', (e) => { e.stopPropagation(); this.onClick(drawn.dot); });
        el.addEventListener('dblclick', (e) => e.stopPropagation());
        m = drawn;
        this.drawn.set(d.wid, m);
        m.marker.setLngLat(d.at).addTo(this.map);
      }
      m.dot = d;
      if (m.at[0] !== d.at[0] || m.at[1] !== d.at[1]) {
        m.at = [d.at[0], d.at[1]];
        m.marker.setLngLat(m.at);
      }
      if (m.label.textContent !== d.name) m.label.textContent = d.name;
      m.el.classList.toggle('sos', d.sos);
    }
    for (const [wid, m] of this.drawn) {
      if (keep.has(wid)) continue;
      m.marker.remove();
      this.drawn.delete(wid);
    }
    this.trailsStale = true;
    const wait = TRAIL_EVERY_MS - (performance.now() - this.trailsAt);
    if (wait <= 0 || now) this.drawTrails();
    else if (!this.trailTimer) {
      this.trailTimer = window.setTimeout(() => {
        this.trailTimer = 0;
        if (this.trailsStale) this.drawTrails();
      }, wait);
    }
  }

  /** The workers drawn, by id: where each is (tests read it). */
  placed(): { wid: string; name: string; at: [number, number]; sos: boolean }[] {
    return [...this.drawn.values()].map((m) => ({ wid: m.dot.wid, name: m.dot.name, at: m.at, sos: m.dot.sos }));
  }

  /** whether the names show: from LABEL_ZOOM on a 1080p screen, as many
   * levels further in as the screen is larger (log2 of its scale, kept
   * from the last resize: no style read on every zoom event) */
  private named(): boolean {
    return this.map.getZoom() >= LABEL_ZOOM + Math.log2(this.k);
  }

  /** Names that would cover one already shown are hidden: SOS first,
   * then the others in the order they came. A name's box is reckoned from
   * its length (a Chinese character 1 em, others 0.6) to spare a layout. */
  private declutter(): void {
    if (!this.named()) return;
    const em = 12 * this.k, r = 8 * this.k;
    const w = this.map.getCanvas().clientWidth, hgt = this.map.getCanvas().clientHeight;
    const shown: [number, number, number, number][] = [];
    const all = [...this.drawn.values()].sort((a, b) => Number(b.dot.sos) - Number(a.dot.sos));
    for (const m of all) {
      const p = this.map.project(m.at);
      let hide = p.x < -w || p.y < -hgt || p.x > 2 * w || p.y > 2 * hgt;   // far off: no matter
      if (!hide) {
        let len = 0;
        for (const ch of m.dot.name) len += ch.charCodeAt(0) > 0x2e80 ? 1 : 0.6;
        const half = (len * em) / 2;
        const box: [number, number, number, number] = [p.x - half, p.y + r, p.x + half, p.y + r + em * 1.3];
        hide = shown.some((b) => box[0] < b[2] && box[2] > b[0] && box[1] < b[3] && box[3] > b[1]);
        if (!hide) shown.push(box);
      }
      if (hide !== m.hidden) {
        m.hidden = hide;
        m.el.classList.toggle('name-hidden', hide);
      }
    }
  }

  private drawTrails(): void {
    this.declutter();
    this.trailsAt = performance.now();
    this.trailsStale = false;
    this.trailDraws++;
    const map = this.map, cv = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const box = map.getCanvas();
    const w = box.clientWidth, hgt = box.clientHeight;
    if (cv.width !== Math.round(w * ratio) || cv.height !== Math.round(hgt * ratio)) {
      cv.width = Math.round(w * ratio);
      cv.height = Math.round(hgt * ratio);
      cv.style.width = `${w}px`;
      cv.style.height = `${hgt}px`;
    }
    const g = cv.getContext('2d');
    if (!g) return;
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, w, hgt);
    g.lineJoin = 'round';
    g.lineCap = 'round';
    g.strokeStyle = TRAIL;
    g.lineWidth = 2 * this.k;
    g.beginPath();
    for (const d of this.dots) {
      const n = d.trail.length;
      if (n < 2) continue;
      let lx = NaN, ly = NaN;
      for (let i = 0; i < n; i++) {
        const p = map.project([d.trail[i][0], d.trail[i][1]]);
        if (i === 0) g.moveTo(p.x, p.y);
        else if ((p.x - lx) ** 2 + (p.y - ly) ** 2 < 4 && i < n - 1) continue;
        else g.lineTo(p.x, p.y);
        lx = p.x;
        ly = p.y;
      }
    }
    g.stroke();
  }
}
