// Cameras on the map and on the wall: each camera is a point coloured by its
// live state with its view sector beside it; a click opens its live view; the
// video wall shows 1, 4, 9 or 16 of them, filled by grid, by case or by hand,
// and a tour (轮巡) steps through a grid's or a street's cameras.
import type { Map as MlMap } from 'maplibre-gl';
import { api } from './api';
import { clear, h } from './dom';
import { t, tx } from './i18n';
import { geo } from './map';
import { VideoPlayer } from './player';


/** A camera as the page keeps it, whatever form it came in (a registry
 * record or a change's Feature). The server works out the grid, community
 * and street it stands in as it answers (null outside the district). */
export interface Camera {
  id: string; name: string; department: string | null;
  lon: number; lat: number; heading: number; fov: number; range_m: number;
  state: string; reason: string | null;
  grid_id?: string | null; street_id?: string | null; community_id?: string | null;
  grid_name?: string | null; street_name?: string | null;
  sector?: any;
}

export function cameraFrom(x: any): Camera | null {
  const p = x?.type === 'Feature' ? { ...(x.properties || {}), id: x.properties?.id ?? x.id } : x;
  let lon = Number(p?.lon), lat = Number(p?.lat);
  const g = x?.type === 'Feature' ? x.geometry : null;
  if (g?.type === 'Point') [lon, lat] = g.coordinates;
  if (!p?.id || !Number.isFinite(lon) || !Number.isFinite(lat)) return null;
  return {
    id: String(p.id), name: String(p.name || p.id), department: p.department ?? null,
    lon, lat, heading: Number(p.heading) || 0, fov: Number(p.fov) || 360, range_m: Number(p.range_m) || 50,
    state: String(p.state || 'connecting'), reason: p.reason ?? null,
    grid_id: p.grid_id ?? null, street_id: p.street_id ?? null, community_id: p.community_id ?? null,
    grid_name: p.grid_name ?? null, street_name: p.street_name ?? null,
    sector: p.sector ?? (g && g.type !== 'Point' ? g : undefined),
  };
}

export function drawCameras(map: MlMap, cams: Iterable<Camera>): void {
  const pts: any[] = [], sectors: any[] = [];
  for (const c of cams) {
    const props = { id: c.id, name: c.name, state: c.state, heading: c.heading };
    pts.push({ type: 'Feature', geometry: { type: 'Point', coordinates: [c.lon, c.lat] }, properties: props });
    // the server's polygon (geodesic, PROJ): the list and every change carry it
    if (c.sector?.type === 'Polygon') sectors.push({ type: 'Feature', geometry: c.sector, properties: props });
  }
  geo(map, 'cameras')?.setData({ type: 'FeatureCollection', features: pts } as any);
  geo(map, 'camera-sectors')?.setData({ type: 'FeatureCollection', features: sectors } as any);
}

/** The engine's reason code in the page's language; any other text as it came. */
export function reasonText(code: string): string {
  const k = `why_${code}`;
  const s = tx(k);
  return s === k ? code : s;
}

function stateLine(c: Camera): HTMLElement {
  const s = h('span', { class: `cam-state cam-${c.state}` }, t(`cam_${c.state}` as any) || c.state);
  return h('div', { class: 'cam-status' }, s, c.reason ? h('span', { class: 'muted', title: c.reason }, ` · ${reasonText(c.reason)}`) : null);
}

/** A tile: one live view with its name and state over it. */
export class Tile {
  readonly el: HTMLElement;
  player: VideoPlayer | null = null;
  camera: Camera | null = null;
  private label: HTMLElement;
  private status: HTMLElement;

  constructor(onclick?: (tile: Tile) => void) {
    this.label = h('span', { class: 'tile-name' });
    this.status = h('span', { class: 'tile-state' });
    this.el = h('div', { class: 'tile', onclick: () => onclick?.(this) },
      h('div', { class: 'tile-bar' }, this.label, this.status));
  }

  show(c: Camera | null): void {
    if (this.camera?.id === c?.id) return;
    this.player?.stop();
    this.player?.video.remove();
    this.player = null;
    this.camera = c;
    this.label.textContent = c ? c.name : '';
    this.status.textContent = '';
    this.el.classList.toggle('empty', !c);
    if (!c) return;
    const p = new VideoPlayer(c.id);
    p.onState = (s, why) => { this.status.textContent = s === 'playing' ? '' : `${t(`cam_${s}` as any) || s}${why ? ' · ' + reasonText(why) : ''}`; };
    this.el.prepend(p.video);
    this.player = p;
    p.start();
  }
}

/** The panel of one camera: its live view, state and a snapshot. */
export function cameraPanel(c: Camera, addToWall: (c: Camera) => void): { body: HTMLElement; stop: () => void } {
  const tile = new Tile();
  tile.show(c);
  const snap = h('div', { class: 'cam-snapshot' });
  const body = h('div', { class: 'camera-panel' },
    tile.el, stateLine(c),
    h('div', { class: 'kv' },
      c.department ? h('span', {}, `${t('department')}: ${c.department}`) : null,
      h('span', {}, `${t('cam_heading')} ${Math.round(c.heading)}° · ${t('cam_fov')} ${Math.round(c.fov)}° · ${t('cam_range')} ${Math.round(c.range_m)} m`)),
    h('div', { class: 'actions' },
      h('button', { class: 'act', id: 'cam-snapshot', onclick: () => void snapshot(c.id, snap) }, t('cam_snapshot')),
      h('button', { class: 'act', id: 'cam-to-wall', onclick: () => addToWall(c) }, t('cam_to_wall'))),
    snap);
  return { body, stop: () => tile.show(null) };
}

async function snapshot(id: string, into: HTMLElement): Promise<void> {
  clear(into);
  try {
    const r = await fetch(`/api/cameras/${encodeURIComponent(id)}/snapshot.jpg`, {
      headers: { Authorization: `Bearer ${localStorage.getItem('gridcc.token') || ''}` },
    });
    if (!r.ok) {
      const j = await r.json().catch(() => null);
      into.append(h('span', { class: 'muted' }, j?.error?.message || `HTTP ${r.status}`));
      return;
    }
    into.append(h('img', { class: 'photo', alt: id, src: URL.createObjectURL(await r.blob()) }));
  } catch (e) {
    into.append(h('span', { class: 'muted' }, String(e)));
  }
}

export const LAYOUTS = [1, 4, 9, 16] as const;

/** The video wall over the map: n tiles, filled by grid, by case or by
 * hand, and a tour that steps through a list of cameras n at a time. */
export class VideoWall {
  readonly el: HTMLElement;
  tiles: Tile[] = [];
  private grid: HTMLElement;
  private picked = 0;               // the tile a camera picked by hand goes to
  private tourList: Camera[] = [];
  private tourAt = 0;
  private tourTimer = 0;
  private status: HTMLElement;
  private seconds: HTMLInputElement;
  active = false;

  constructor(private cameras: () => Camera[], private onClose: () => void) {
    this.grid = h('div', { class: 'wall-tiles' });
    this.status = h('span', { class: 'muted', id: 'wall-status' });
    const layout = h('select', { id: 'wall-layout', onchange: (e: Event) => this.layout(Number((e.target as HTMLSelectElement).value)) },
      ...LAYOUTS.map((n) => h('option', { value: String(n) }, `${n}`)));
    (layout as HTMLSelectElement).value = '4';
    const secs = this.seconds = h('input', { type: 'number', id: 'wall-tour-seconds', min: '5', max: '600', value: '15' }) as HTMLInputElement;
    this.el = h('div', { class: 'video-wall', id: 'video-wall', hidden: true },
      h('div', { class: 'wall-bar' },
        h('b', {}, t('video_wall')),
        h('label', {}, t('wall_layout'), layout),
        h('button', { class: 'act', id: 'wall-tour', onclick: () => this.tourToggle(Number(secs.value)) }, t('wall_tour')), secs, h('span', {}, 's'),
        this.status,
        h('button', { class: 'link', id: 'wall-close', onclick: () => this.close() }, t('close'))),
      this.grid);
    this.layout(4);
  }

  open(): void { this.el.hidden = false; this.active = true; }

  close(): void {
    this.stopTour();
    for (const tl of this.tiles) tl.show(null);
    this.el.hidden = true;
    this.active = false;
    this.onClose();
  }

  layout(n: number): void {
    if (!LAYOUTS.includes(n as any)) return;
    const keep = this.tiles.map((tl) => tl.camera);
    for (const tl of this.tiles.slice(n)) tl.show(null);
    this.tiles = this.tiles.slice(0, n);
    while (this.tiles.length < n) this.tiles.push(new Tile((tl) => this.pick(tl)));
    const sel = this.el.querySelector('#wall-layout') as HTMLSelectElement | null;
    if (sel) sel.value = String(n);   // the choice shown follows a layout set from elsewhere
    this.grid.style.setProperty('--side', String(Math.sqrt(n)));
    this.grid.replaceChildren(...this.tiles.map((tl) => tl.el));
    this.tiles.forEach((tl, i) => tl.show(keep[i] ?? tl.camera));
    this.picked = Math.min(this.picked, n - 1);
    this.mark();
  }

  /** These cameras, in order, from the first tile; the rest empty. */
  fill(cams: Camera[], why: string): void {
    this.stopTour();
    this.open();
    this.tiles.forEach((tl, i) => tl.show(cams[i] ?? null));
    this.status.textContent = `${why} · ${cams.length} ${t('cam_count')}`;
  }

  /** By hand: into the tile picked last, then the next; a camera already
   * on the wall stays where it is (one stream, not two tiles of it). */
  put(c: Camera): void {
    this.open();
    const at = this.tiles.findIndex((tl) => tl.camera?.id === c.id);
    if (at >= 0) {
      this.picked = (at + 1) % this.tiles.length;
      this.mark();
      return;
    }
    this.tiles[this.picked].show(c);
    this.picked = (this.picked + 1) % this.tiles.length;
    this.mark();
  }

  inGrid(gridId: string): Camera[] {
    return this.cameras().filter((c) => c.grid_id === gridId);
  }

  /** A grid's cameras: the wall grows to the layout that holds them all;
   * past 16 it tours them. */
  fillGrid(gridId: string, name: string): void {
    const cams = this.inGrid(gridId);
    const fit = LAYOUTS.find((n) => n >= cams.length) ?? LAYOUTS[LAYOUTS.length - 1];
    if (fit > this.tiles.length) this.layout(fit);
    const why = `${t('grid')} ${name}`;
    if (cams.length > this.tiles.length) this.tour(cams, Number(this.seconds.value), why);
    else this.fill(cams, why);
  }

  async fillCase(caseNo: string): Promise<void> {
    const c = await api<any>(`/api/incidents/${encodeURIComponent(caseNo)}`);
    const ids = ((c.properties?.cameras ?? c.cameras ?? []) as any[]).map((x) => String(x.id));
    const all = new Map(this.cameras().map((x) => [x.id, x]));
    this.fill(ids.map((id) => all.get(id)).filter((x): x is Camera => !!x), `${t('case')} ${caseNo}`);
  }

  /** 轮巡: the list n at a time, a step every `seconds`. */
  tour(cams: Camera[], seconds: number, why: string): void {
    this.stopTour();
    this.open();
    this.tourList = cams;
    this.tourAt = 0;
    const step = () => {
      const n = this.tiles.length;
      const page = this.tourList.slice(this.tourAt, this.tourAt + n);
      this.tiles.forEach((tl, i) => tl.show(page[i] ?? null));
      this.status.textContent = `${t('wall_tour')} ${why} · ${this.tourAt + 1}–${this.tourAt + page.length}/${this.tourList.length}`;
      this.tourAt = this.tourAt + n >= this.tourList.length ? 0 : this.tourAt + n;
    };
    step();
    if (cams.length > this.tiles.length) this.tourTimer = window.setInterval(step, Math.max(5, seconds) * 1000);
    document.getElementById('wall-tour')?.classList.add('on');
  }

  private tourToggle(seconds: number): void {
    if (this.tourTimer || this.tourList.length) { this.stopTour(); return; }
    const shown = this.tiles.map((tl) => tl.camera).find((c) => c);
    // the shown camera's grid, else its street, else every camera
    const all = this.cameras();
    const inGrid = shown?.grid_id ? all.filter((c) => c.grid_id === shown.grid_id) : [];
    const inStreet = shown?.street_id ? all.filter((c) => c.street_id === shown.street_id) : [];
    const list = inGrid.length > this.tiles.length ? inGrid : inStreet.length ? inStreet : all;
    this.tour(list, seconds, list === inGrid ? `${t('grid')} ${shown!.grid_name ?? shown!.grid_id}`
      : list === inStreet ? `${t('street')} ${shown!.street_name ?? shown!.street_id}` : t('all'));
  }

  private stopTour(): void {
    window.clearInterval(this.tourTimer);
    this.tourTimer = 0;
    this.tourList = [];
    document.getElementById('wall-tour')?.classList.remove('on');
  }

  private pick(tl: Tile): void {
    this.picked = this.tiles.indexOf(tl);
    this.mark();
  }

  private mark(): void {
    this.tiles.forEach((tl, i) => tl.el.classList.toggle('picked', i === this.picked));
  }
}
