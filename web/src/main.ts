// gridcc's wall: the district map in the middle, figures around it, a live
// event feed, and a panel for whatever was clicked. Everything after the
// first load arrives through /live.
import * as maplibregl from 'maplibre-gl';
import type { MapGeoJSONFeature, Map as MlMap } from 'maplibre-gl';
import { api, getToken, onUnauthorized, setToken, type Me } from './api';
import { closePanel, frame, showCase, showGrid, showWorker, type Ctx } from './detail';
import { $, h } from './dom';
import { CLOSED, Figures } from './figures';
import { currentLang, fmtDateTime, onLang, setLang, t, tx } from './i18n';
import { type Change, Live } from './live';
import { showLogin } from './login';
import { addBasemap, cameraIcon, createMap, geo, MAP_TILE_SOURCES, STATUS_COLORS, tileJsonUrl } from './map';
import { type Camera, cameraFrom, cameraPanel, drawCameras, VideoWall } from './cameras';
import { Replay } from './replay';
import { TRAIL_MS, type WorkerDot, WorkersLayer } from './workers_layer';
import './style.css';

const TRAIL_STEP_MS = 5000;
const OPEN = ['reported', 'registered', 'dispatched', 'handled', 'verified'];

interface Worker { wid: string; feature: any; trail: [number, number, number][] }

const state = {
  me: null as Me | null,
  incidents: new Map<string, any>(),
  workers: new Map<string, Worker>(),
  alerts: new Map<string, any>(),
  workerList: [] as any[],
  categories: new Map<string, string>(),
  departments: [] as string[],
  figure: 'open' as 'open' | 'overdue' | 'satisfaction',
  gridStats: new Map<string, any>(),
  replaying: false,
  category: '' as string,   // a major class shown alone, or '' for all
  cameras: new Map<string, Camera>(),
};

declare global { interface Window { gridcc: any } }

function shell(me: Me): Record<string, HTMLElement> {
  document.body.replaceChildren();
  const clock = h('span', { class: 'clock', id: 'clock' });
  const liveDot = h('span', { class: 'live-dot', id: 'live-dot', title: 'live' });
  const header = h('header', { class: 'top' },
    h('div', { class: 'brand' }, h('span', { class: 'logo' }), h('h1', { id: 'title' }, t('title'))),
    h('div', { class: 'top-right' }, liveDot, clock,
      h('span', { class: 'me', id: 'me' }, `${me.name} · ${me.role}`),
      h('button', { class: 'link', id: 'wall-toggle', 'data-i18n': 'video_wall', onclick: () => toggleWall() }, t('video_wall')),
      h('button', { class: 'link', id: 'replay-toggle', 'data-i18n': 'replay', onclick: () => replay?.toggle() }, t('replay')),
      h('button', { class: 'link', id: 'lang', onclick: () => setLang(currentLang() === 'zh' ? 'en' : 'zh') }, t('lang')),
      h('button', { class: 'link', id: 'logout', onclick: () => void logout() }, t('logout'))));
  const banner = h('div', { class: 'banner', id: 'offline', role: 'status', hidden: true }, t('offline'));
  const panelTitle = (k: string) => h('h2', { 'data-i18n': k }, t(k as any));
  const figureSel = h('select', { id: 'figure', onchange: (e: Event) => { state.figure = (e.target as HTMLSelectElement).value as any; paintGrids(); } },
    ...(['open', 'overdue', 'satisfaction'] as const).map((f) => h('option', { value: f, 'data-i18n': `fig_${f}` }, t(`fig_${f}` as any))));
  const el = {
    kpis: h('section', { class: 'kpis', id: 'kpis' }),
    trend7: h('div', { class: 'chart', id: 'trend7' }),
    trend30: h('div', { class: 'chart', id: 'trend30' }),
    streets: h('div', { class: 'chart tall', id: 'streets' }),
    ranking: h('div', { id: 'ranking' }),
    feed: h('ul', { class: 'feed', id: 'feed' }),
    map: h('div', { class: 'map', id: 'map' }),
  };
  const left = h('aside', { class: 'col left' },
    h('section', { class: 'card' }, panelTitle('trend7'), el.trend7),
    h('section', { class: 'card' }, panelTitle('trend30'), el.trend30),
    h('section', { class: 'card grow' }, panelTitle('by_street'), el.streets));
  const right = h('aside', { class: 'col right' },
    h('section', { class: 'card grow' }, panelTitle('feed'), el.feed),
    h('section', { class: 'card' }, panelTitle('ranking'), el.ranking));
  const categorySel = h('select', { id: 'category', onchange: (e: Event) => { state.category = (e.target as HTMLSelectElement).value; drawIncidents(); } },
    h('option', { value: '', 'data-i18n': 'all' }, t('all')));
  const legend = h('div', { class: 'legend', id: 'legend' },
    h('label', {}, h('span', { 'data-i18n': 'color_by' }, t('color_by')), figureSel),
    h('label', {}, h('span', { 'data-i18n': 'category' }, t('category')), categorySel),
    h('div', { class: 'statuses' }, ...Object.entries(STATUS_COLORS).slice(0, 6).map(([s, c]) =>
      h('span', { class: 'st' }, h('i', { style: undefined, class: `swatch st-${s}` }), h('span', { 'data-i18n': `st_${s}` }, tx(`st_${s}`)))),
      h('span', { class: 'st' }, h('i', { class: 'swatch worker-swatch' }), h('span', { 'data-i18n': 'worker' }, t('worker'))),
      h('span', { class: 'st' }, h('img', { class: 'cam-swatch', alt: '', src: cameraIcon('playing', 16).toDataURL() }),
        h('span', { 'data-i18n': 'camera' }, t('camera')))));
  void STATUS_COLORS;
  const center = h('main', { class: 'center' }, el.kpis,
    h('div', { class: 'map-frame' }, el.map, legend, h('aside', { class: 'detail', id: 'detail' })));
  document.body.append(header, banner, h('div', { class: 'wall' }, left, center, right));
  setInterval(() => { clock.textContent = fmtDateTime(Date.now()); }, 1000);
  clock.textContent = fmtDateTime(Date.now());
  return el;
}

async function logout(): Promise<void> {
  // revoked before the page goes: a reload would cancel the request
  await api('/api/logout', { method: 'POST' }).catch(() => {});
  setToken('');
  location.reload();
}

function incidentFeature(f: any): any {
  const p = f.properties || {};
  // 超期: past the deadline now, or past one before (escalation set a new one)
  const overdue = OPEN.includes(p.status) && ((p.deadline && p.deadline * 1000 < Date.now()) || p.overdue_count > 0);
  return {
    type: 'Feature', geometry: f.geometry,
    properties: { case_no: p.case_no || f.id, id: p.id, status: p.status, category: p.category, grid_id: p.grid_id, overdue: !!overdue },
  };
}

let map: ReturnType<typeof createMap>;
let figures: Figures;
let live: Live;
let dirtyIncidents = false;

let replay: Replay | null = null;
let workersLayer: WorkersLayer | null = null;

function drawIncidents(): void {
  if (state.replaying) return;
  const cat = state.category;
  const feats = [...state.incidents.values()]
    .filter((f) => f.geometry && (!cat || String(f.properties?.category || '').startsWith(cat)))
    .map(incidentFeature);
  geo(map, 'incidents')?.setData({ type: 'FeatureCollection', features: feats });
}

function paintGrids(): void {
  if (!map.getSource('areas')) return;
  let max = 1;
  const val = (s: any) => {
    if (!s) return 0;
    if (state.figure === 'open') return (s.total || 0) - ['closed', 'evaluated', 'rejected'].reduce((a, k) => a + (s.by_status?.[k] || 0), 0);
    if (state.figure === 'overdue') return s.overdue || 0;
    return s.satisfaction == null ? 0 : (5 - s.satisfaction) / 4;   // low satisfaction is hot
  };
  // a few cases are not a red district: the scale starts at 5
  if (state.figure !== 'satisfaction') max = 5;
  for (const s of state.gridStats.values()) max = Math.max(max, val(s));
  for (const [id, s] of state.gridStats)
    map.setFeatureState({ source: 'areas', sourceLayer: 'grid', id }, { v: state.figure === 'satisfaction' ? val(s) : val(s) / max });
}

/** The grids' figures, fetched when asked (fetched: a request already on
 * its way, as the page's first). */
async function loadGridStats(fetched?: Promise<any>): Promise<void> {
  const r = await (fetched ?? api<any>('/api/incidents/stats?level=grid'));
  state.gridStats = new Map((r.units || []).map((u: any) => [u.id, u]));
  paintGrids();
}

/** Once the map's style has made its sources (GeoJSON sources take data
 * from then on, well before the map's load): true; false if the map fails
 * first (a style it refused makes none). */
function sourcesMade(m: MlMap): Promise<boolean> {
  return new Promise((resolve) => {
    const made = () => !!m.getSource('incidents');
    if (made()) { resolve(true); return; }
    const done = (ok: boolean) => { m.off('styledata', on); m.off('error', failed); resolve(ok); };
    const on = () => { if (made()) done(true); };
    const failed = () => { if (!made()) done(false); };
    m.on('styledata', on);
    m.on('error', failed);
  });
}

/** The workers where their last fixes put them, with the last minutes of
 * trail, to the canvas over the map (workers_layer.ts says why not a
 * MapLibre source): drawn once in the next frame however many came. */
function drawWorkers(): void {
  if (!workersLayer || state.replaying) return;
  const now = Date.now();
  const dots: WorkerDot[] = [];
  for (const w of state.workers.values()) {
    let old = 0;
    while (old < w.trail.length && now - w.trail[old][2] >= TRAIL_MS) old++;
    if (old) w.trail.splice(0, old);
    const p = w.feature.properties || {};
    dots.push({ wid: w.wid, name: String(p.worker ?? ''), at: w.feature.geometry.coordinates, sos: !!p.sos, trail: w.trail, props: p });
  }
  workersLayer.set(dots);
}

/** An alert in words: a worker's (a GeoJSON Feature: outside, silent, sos)
 * or a case's escalation (kind overdue, the unit now answering). */
export function alertText(a: any): string {
  const p = a?.properties || a || {};
  const kind = p.kind || 'alert';
  const what = tx(`alert_${kind}`);
  const who = p.worker || p.case_no || '';
  const unit = p.unit?.name ? ` → ${p.unit.name}` : '';
  return `${what === `alert_${kind}` ? kind : what} ${who}${unit}`;
}

/* Open alerts pulse where they happen: DOM markers with a CSS animation,
 * so the pulse costs the compositor, not a repaint of the map each frame. */
const alertMarkers = new Map<string, maplibregl.Marker>();
function drawAlerts(): void {
  if (!state.replaying) drawAlertMarkers([...state.alerts.entries()]);
}
function drawAlertMarkers(all: [string, any][]): void {
  const open = all.filter(([, a]) => a.geometry && a.properties?.state !== 'closed');
  const keep = new Set(open.map(([k]) => k));
  for (const [k, m] of alertMarkers) if (!keep.has(k)) { m.remove(); alertMarkers.delete(k); }
  for (const [k, a] of open) {
    if (alertMarkers.has(k)) continue;
    const kind = a.properties?.kind || 'alert';
    const el = h('div', { class: `alert-pulse alert-${kind}`, title: alertText(a) });
    alertMarkers.set(k, new maplibregl.Marker({ element: el }).setLngLat(a.geometry.coordinates).addTo(map));
  }
}

function applyBatch(batch: Change[]): void {
  let moved = false;
  let incidents = false, alerts = false, camerasDirty = false;
  for (const c of batch) {
    if (c.topic === 'positions' && c.data?.geometry) {
      const wid = String(c.data.id ?? c.id);
      let w = state.workers.get(wid);
      if (!w) { w = { wid, feature: c.data, trail: [] }; state.workers.set(wid, w); }
      w.feature = { type: 'Feature', geometry: c.data.geometry, properties: { ...c.data.properties, wid } };
      const [x, y] = c.data.geometry.coordinates;
      // a point every 5 s at most, and the newest as the trail's head: a
      // device sending every second keeps 120 points in 10 minutes, not 600
      const t = c.data.properties?.t || Date.now(), n = w.trail.length;
      if (n >= 2 && t - w.trail[n - 2][2] < TRAIL_STEP_MS) w.trail[n - 1] = [x, y, t];
      else w.trail.push([x, y, t]);
      moved = true;
    } else if (c.topic === 'incidents' && c.data) {
      const f = c.data;
      const no = f.properties?.case_no || f.id || c.id;
      // the catch-up at start replays changes the snapshot already holds
      // (it was read after their seq): they go to the feed only, neither
      // putting a case back to an older state nor redrawing the map
      if (c.seq > snapshotSeq) {
        if (CLOSED.includes(f.properties?.status)) state.incidents.delete(no);
        else state.incidents.set(no, f);
        incidents = true;
      }
      figures.feed(Date.parse(c.ts as any) || Date.now(), t('case'), `${no} ${tx(`st_${f.properties?.status}`)} · ${f.properties?.description || ''}`, () => void openCase(no));
    } else if (c.topic === 'alerts' && c.data) {
      if (c.seq > snapshotSeq) {   // as the cases'
        state.alerts.set(String(c.data.id ?? c.id), c.data);
        alerts = true;
      }
      figures.feed(Date.parse(c.ts as any) || Date.now(), t('alert'), alertText(c.data),
        c.data.case_no ? () => void openCase(c.data.case_no) : undefined);
    } else if (c.topic === 'cameras' && c.seq > snapshotSeq) {   // as the cases'
      // a camera's change carries the whole camera; a deleted one nothing to draw
      const cam = c.data?.deleted ? null : cameraFrom(c.data);
      if (cam) state.cameras.set(cam.id, { ...state.cameras.get(cam.id), ...cam });
      else state.cameras.delete(String(c.id));
      camerasDirty = true;
    } else if (c.topic === 'layers' && c.seq > snapshotSeq) {   // older ones the tiles already show
      for (const l of MAP_TILE_SOURCES) {
        const u = tileJsonUrl(l);
        (map.getSource(l) as any)?.setUrl?.(`${u}${u.includes('?') ? '&' : '?'}v=${c.seq}`);
      }
    }
  }
  if (moved) drawWorkers();
  if (camerasDirty) { camerasDirty = false; drawCameras(map, state.cameras.values()); }
  if (incidents) { dirtyIncidents = true; drawIncidents(); }
  if (alerts) drawAlerts();
}

let ctx: Ctx;
let snapshotSeq = -1;
async function openCase(no: string): Promise<void> { await showCase(ctx, no); }

async function loadSnapshot(): Promise<number> {
  const health = await api<any>('/api/health');
  const seq = health.store?.last_seq ?? -1;
  const [open, alerts, workers, cams] = await Promise.all([
    api<any>(`/api/incidents?status=${OPEN.join(',')}&limit=10000`),
    api<any>('/api/alerts?open=true').catch(() => ({ features: [] })),
    api<any>('/api/workers').catch(() => ({ workers: [] })),
    api<any>('/api/cameras').catch(() => ({ cameras: [] })),
  ]);
  state.cameras = new Map(((cams.features || cams.cameras || []) as any[])
    .map(cameraFrom).filter((c): c is Camera => !!c).map((c) => [c.id, c]));
  state.incidents = new Map((open.features || []).map((f: any) => [f.properties?.case_no || f.id, f]));
  state.alerts = new Map((alerts.features || alerts.alerts || []).map((a: any) => [String(a.id ?? a.properties?.id), a]));
  state.workerList = workers.workers || [];
  return seq;
}

function onDuty(): number {
  const now = Date.now();
  return [...state.workers.values()].filter((w) => now - (w.feature.properties?.t || 0) < 15 * 60 * 1000).length;
}

async function start(me: Me): Promise<void> {
  state.me = me;
  const el = shell(me);
  // the whole district in view, whatever the screen's size, from the start
  const district = api<any>('/tiles/district.json').catch(() => null);
  const categories = api<any>('/api/categories');
  // what the map shows first is asked for with the page's first requests:
  // a wall on two busy cores waits for each round trip
  const snapshot = loadSnapshot();
  const gridStats = api<any>('/api/incidents/stats?level=grid');
  snapshot.catch(() => {}); gridStats.catch(() => {});   // awaited below
  ctx = {
    me, departments: state.departments,
    categoryName: (code) => state.categories.get(code) || code,
    onChanged: () => {},
    showCase: (id) => void openCase(id),
    gridCameras: (gridId) => wall.inGrid(gridId).length,
    gridToWall: (g) => { wall.fillGrid(g.id, g.name); $('#wall-toggle').classList.add('on'); },
    track: (line, stops) => {
      const fc = (features: any[]) => ({ type: 'FeatureCollection', features } as any);
      geo(map, 'track')?.setData(fc(line ? [line] : []));
      geo(map, 'track-stops')?.setData(fc(stops.map((s: any) => ({ type: 'Feature', properties: s, geometry: { type: 'Point', coordinates: [s.lon, s.lat] } }))));
      if (line?.geometry?.coordinates?.length) {
        const cs = line.geometry.coordinates as [number, number][];
        const xs = cs.map((c) => c[0]), ys = cs.map((c) => c[1]);
        map.fitBounds([[Math.min(...xs), Math.min(...ys)], [Math.max(...xs), Math.max(...ys)]], { padding: 80, duration: 0, maxZoom: 17 });
      }
    },
    trackHead: (pos, follow) => {
      geo(map, 'track-head')?.setData({ type: 'FeatureCollection', features: pos ? [{ type: 'Feature', properties: {}, geometry: { type: 'Point', coordinates: pos } }] : [] } as any);
      if (pos && follow) map.jumpTo({ center: pos });
    },
  };
  const tj = await district;
  map = createMap(el.map, [116.335, 40.0], 12.6, tj?.bounds);
  window.gridcc = { map };   // the whole of it once the wall is ready
  // the map first: it is what the wall waits for
  const cats = await categories;
  const sel = document.getElementById('category') as HTMLSelectElement;
  for (const c of cats.categories || []) {
    if (!c.parent) sel.append(h('option', { value: c.code }, `${c.code} ${c.name}`));
    state.categories.set(c.code, c.name);
    if (c.department && !state.departments.includes(c.department)) state.departments.push(c.department);
  }
  workersLayer = new WorkersLayer(map);
  // listened for now: the snapshot below may take longer than the map's load
  const mapLoaded = new Promise<void>((resolve) => map.once('load', () => resolve()));
  // only with serve --basemap (health says so): no failed request otherwise
  const basemap = api<any>('/api/health')
    .then((hl) => (hl.basemap ? api<any>('/basemap.json') : null)).catch(() => null);
  figures = new Figures(el as any);
  const seq = await snapshot;
  live = new Live(['incidents', 'positions', 'alerts', 'cameras', 'layers']);
  live.onBatch = applyBatch;
  live.onState = (up) => { $('#offline').hidden = up; $('#live-dot').classList.toggle('up', up); };
  live.onResync = async () => { await loadSnapshot(); drawIncidents(); drawAlerts(); drawCameras(map, state.cameras.values()); };
  live.onUnauthorized = async () => { live.stop(); await relogin(); live.start(live.seq); };
  // the cases and cameras are cut into tiles with the boundaries and drawn
  // in the same frames, not in frames of their own after the map's load
  const drawn = await sourcesMade(map);
  const drawAll = () => { drawCameras(map, state.cameras.values()); drawIncidents(); drawAlerts(); };
  drawAll();
  void mapLoaded.then(async () => {
    if (!drawn) drawAll();
    addBasemap(map, await basemap);
    await loadGridStats(gridStats).catch(() => {});
    // the feed starts with the last 100 changes before the snapshot
    snapshotSeq = seq;
    live.start(Math.max(0, seq - 100));
    document.body.dataset.ready = '1';
    // its first rest with the grids coloured is the complete map a wall
    // waits for: marked for the benchmark (bench/bench_dashboard.mjs)
    map.once('idle', () => performance.mark('gridcc:map-complete'));
    map.triggerRepaint();
  });
  // the workers are drawn above everything else: a click on one is his
  workersLayer.onClick = (w) => void showWorker(ctx, w.props);
  const workerAt = (e: { originalEvent?: Event }) => !!(e.originalEvent?.target as Element | null)?.closest?.('.worker-dot');
  map.on('click', 'incidents', (e) => { if (workerAt(e)) return; const f = e.features?.[0]; if (f) void openCase(String(f.properties.case_no)); });
  map.on('click', 'incident-clusters', async (e) => {
    const f = e.features?.[0] as MapGeoJSONFeature | undefined;
    if (!f) return;
    const z = await geo(map, 'incidents').getClusterExpansionZoom(f.properties.cluster_id);
    map.easeTo({ center: (f.geometry as any).coordinates, zoom: z });
  });
  map.on('click', 'cameras', (e) => {
    const id = String(e.features?.[0]?.properties?.id ?? '');
    const cam = state.cameras.get(id);
    if (!cam) return;
    if (wall.active) { wall.put(cam); return; }
    showCamera(cam);
  });
  map.on('click', 'grid-fill', (e) => {
    const hit = map.queryRenderedFeatures(e.point, { layers: ['incidents', 'incident-clusters', 'cameras'] });
    if (hit.length || workerAt(e)) return;
    const f = e.features?.[0];
    if (!f) return;
    for (const id of selected) map.setFeatureState({ source: 'areas', sourceLayer: 'grid', id }, { selected: false });
    selected = [String(f.id)];
    map.setFeatureState({ source: 'areas', sourceLayer: 'grid', id: f.id! }, { selected: true });
    void showGrid(ctx, { id: String(f.properties.id ?? f.id), name: String(f.properties.name || f.id) }, [e.lngLat.lng, e.lngLat.lat], state.workerList);
  });
  for (const l of ['incidents', 'incident-clusters', 'cameras', 'grid-fill'])
    map.on('mouseenter', l, () => { map.getCanvas().style.cursor = 'pointer'; });
  let refreshAt = 0;
  const refresh = async () => {
    refreshAt = Date.now();
    await figures.refresh(onDuty()).catch((e) => console.warn('figures', e));
    await loadGridStats().catch(() => {});
  };
  // the figures once the map is drawn: they are not what a wall waits for
  // (or after 10 s, if something keeps the map from resting)
  let started = false;
  const first = () => { if (!started) { started = true; void refresh(); } };
  map.once('idle', first);
  setTimeout(first, 10000);
  // figures follow the cases, at most every 5 s
  setInterval(() => { if (dirtyIncidents && Date.now() - refreshAt > 5000) { dirtyIncidents = false; void refresh(); } }, 1000);
  setInterval(() => drawAlerts(), 60000);
  // trails lose their old minutes even when no fix comes
  setInterval(() => drawWorkers(), 30000);
  setInterval(() => figures.setOnDuty(onDuty()), 2000);
  onLang(() => {
    $('#title').textContent = t('title');
    $('#lang').textContent = t('lang');
    $('#logout').textContent = t('logout');
    $('#offline').textContent = t('offline');
    document.querySelectorAll<HTMLElement>('[data-i18n]').forEach((e) => { e.textContent = tx(e.dataset.i18n!); });
    figures.relabel();
    void refresh();
    closePanel();
  });
  replay = new Replay({
    map,
    pauseLive: (paused) => {
      state.replaying = paused;
      if (paused) { drawAlertMarkers([]); figures.pauseFeed(); return; }
      figures.resumeFeed();
      // back to now: every layer from the live state
      drawIncidents();
      drawAlerts();
      drawWorkers();
    },
    feed: (ts, kind, text) => figures.replayFeed(ts, kind, text),
    alerts: (all) => drawAlertMarkers(all),
    workers: (dots, now) => workersLayer?.set(dots, now),
    alertText,
    clearFeed: () => figures.pauseFeed(),
    panel: (title, ...body) => frame(title, ...body),
  }, document.querySelector('.map-frame') as HTMLElement);
  wall = new VideoWall(() => [...state.cameras.values()], () => $('#wall-toggle').classList.remove('on'));
  document.querySelector('.map-frame')!.append(wall.el);
  if (location.pathname === '/wall') toggleWall();
  window.gridcc = { map, live, state, figures, openCase, replay, wall, workers: workersLayer, ready: true,
    openCamera: (id: string) => { const c = state.cameras.get(id); if (c) showCamera(c); } };
}

let wall: VideoWall;
function toggleWall(): void {
  if (wall.active) { wall.close(); return; }
  wall.open();
  $('#wall-toggle').classList.add('on');
  // an empty wall starts with the first cameras, in the order they are listed
  if (wall.tiles.every((tl) => !tl.camera)) wall.fill([...state.cameras.values()], t('all'));
}

function showCamera(cam: Camera): void {
  const { body } = cameraPanel(cam, (c) => { wall.put(c); $('#wall-toggle').classList.add('on'); });
  frame(cam.name, body);
}

let selected: string[] = [];
let pending: Promise<Me> | null = null;
function relogin(): Promise<void> {
  // one form however many requests found the token expired
  pending ??= showLogin(t('session_expired')).finally(() => { pending = null; });
  return pending.then(() => {});
}

onUnauthorized(relogin);
async function boot(): Promise<void> {
  document.documentElement.lang = currentLang() === 'zh' ? 'zh-CN' : 'en';
  let me: Me | null = null;
  if (getToken()) me = await api<Me>('/api/me').catch(() => null);
  if (!me) { setToken(''); me = await showLogin(); }
  await start(me);
}
void boot();
