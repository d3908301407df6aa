// The district map: one WebGL map for the screen. Boundaries and buildings
// come as vector tiles from gridcc (/tiles/{layer}.json), incidents and
// cameras as GeoJSON sources the live bus keeps current. The workers and
// their trails are drawn over it (workers_layer.ts), alerts as markers.
import * as maplibregl from 'maplibre-gl';
import type { GeoJSONSource, Map as MlMap, StyleSpecification } from 'maplibre-gl';
import 'maplibre-gl/dist/maplibre-gl.css';
import { getToken } from './api';
import { scale } from './dom';

maplibregl.setWorkerUrl(new URL('/maplibre-gl-worker.mjs', location.href).href);

export const STATUS_COLORS: Record<string, string> = {
  reported: '#ff5a5f', registered: '#ff9f43', dispatched: '#ffd23f', handled: '#3fb8ff',
  verified: '#7bdff2', closed: '#3ddc97', evaluated: '#2bb07f', rejected: '#7d8597',
};
// a camera's live state, as the video engine reports it (topic cameras)
export const CAMERA_COLORS: Record<string, string> = {
  playing: '#3ddc97', connecting: '#74c0fc', retrying: '#ffd23f', stalled: '#ff9f43', failed: '#ff5a5f',
};
const CAMERA_OTHER = '#7d8597';
const CAMERA_STATE: any = ['match', ['get', 'state'], ...Object.entries(CAMERA_COLORS).flat(), CAMERA_OTHER];

/** A camera's mark, drawn here (no sprite sheet to serve): seen from above,
 * a body and the lens widening the way it looks (up, so the map turns it to
 * the camera's heading, as its view sector);
 * filled with its state's colour, outlined dark so it reads on any ground,
 * and unlike the round marks of the cases. px: its side in CSS pixels. */
export function cameraIcon(state: string, px: number, ratio = 2): HTMLCanvasElement {
  const c = document.createElement('canvas');
  const n = Math.round(px * ratio);
  c.width = c.height = n;
  const g = c.getContext('2d')!;
  g.scale(n / 24, n / 24);   // drawn on a 24 x 24 grid
  g.lineJoin = 'round';
  g.lineWidth = 2.2;
  g.strokeStyle = '#06101a';
  g.fillStyle = CAMERA_COLORS[state] ?? CAMERA_OTHER;
  const shape = () => {
    g.beginPath();
    g.moveTo(7.5, 22); g.lineTo(16.5, 22); g.lineTo(16.5, 13);   // the body
    g.lineTo(21, 3); g.lineTo(3, 3); g.lineTo(7.5, 13);            // the lens, widening as it looks
    g.closePath();
  };
  shape(); g.stroke(); g.fill();
  g.fillStyle = '#06101a';
  g.beginPath(); g.arc(12, 17.5, 2.2, 0, 2 * Math.PI); g.fill();
  return c;
}
const FONT = ['Noto Sans Regular'];
const BOLD = ['Noto Sans Bold'];
// the district's areas, from the top of the hierarchy down, in one tile per
// place (gridcc's ?with=): one request and one tile for the worker to parse
// where there were four, so fewer frames while the map fills
const AREA_LAYERS = ['district', 'street', 'community', 'grid'];
/** The TileJSON of a map source: 'areas' (every area level in one tile) or 'building'. */
export function tileJsonUrl(source: 'areas' | 'building'): string {
  const [first, ...rest] = source === 'areas' ? AREA_LAYERS : [source];
  return `/tiles/${encodeURIComponent(first)}.json` + rest.map((l, i) => `${i ? '&' : '?'}with=${encodeURIComponent(l)}`).join('');
}
export const MAP_TILE_SOURCES = ['areas', 'building'] as const;

function style(): StyleSpecification {
  const k = scale();
  // a screen of k times the pixels shows the district k times larger, one
  // zoom level (log2 k) further in: the labels' zoom ranges move with it,
  // so a 4K wall names the streets a 1080p one does
  const dz = Math.log2(k);
  const vector = (source: 'areas' | 'building') => ({ type: 'vector' as const, url: tileJsonUrl(source), promoteId: 'id' });
  const empty = { type: 'geojson' as const, data: { type: 'FeatureCollection' as const, features: [] } };
  return {
    version: 8,
    glyphs: '/glyphs/{fontstack}/{range}.pbf',
    sources: {
      ...Object.fromEntries(MAP_TILE_SOURCES.map((l) => [l, vector(l)])),
      incidents: { ...empty, cluster: true, clusterMaxZoom: 14, clusterRadius: 40, promoteId: 'case_no' },
      cameras: { ...empty },
      'camera-sectors': { ...empty },
      highlight: { ...empty },
      track: { ...empty },
      'track-stops': { ...empty },
      'track-head': { ...empty },
      'replay-area': { ...empty },
    },
    layers: [
      { id: 'bg', type: 'background', paint: { 'background-color': '#06101a' } },
      {
        id: 'grid-fill', type: 'fill', source: 'areas', 'source-layer': 'grid',
        paint: {
          'fill-color': ['case', ['==', ['feature-state', 'v'], null], '#0c1c2c',
            ['interpolate', ['linear'], ['feature-state', 'v'], 0, '#0c2233', 0.25, '#184360', 0.5, '#8a6714', 0.75, '#a4411a', 1, '#a12a2a']],
          // opaque: on a wall without a GPU every blended pixel costs
          'fill-opacity': 1,
        },
      },
      { id: 'building-fill', type: 'fill', source: 'building', 'source-layer': 'building', minzoom: 13,
        paint: { 'fill-color': ['interpolate', ['linear'], ['zoom'], 13, '#17304a', 15, '#243b53'] } },
      { id: 'building-line', type: 'line', source: 'building', 'source-layer': 'building', minzoom: 16,
        paint: { 'line-color': '#36597a', 'line-width': 0.5 * k } },
      { id: 'grid-line', type: 'line', source: 'areas', 'source-layer': 'grid',
        paint: { 'line-color': '#2f7fb5', 'line-width': ['interpolate', ['linear'], ['zoom'], 11, 0.4 * k, 16, 1.5 * k], 'line-opacity': 0.8 } },
      { id: 'grid-selected', type: 'line', source: 'areas', 'source-layer': 'grid',
        paint: { 'line-color': '#ffe066', 'line-width': ['case', ['boolean', ['feature-state', 'selected'], false], 3 * k, 0] } },
      { id: 'community-line', type: 'line', source: 'areas', 'source-layer': 'community',
        paint: { 'line-color': '#5fb3e6', 'line-width': ['interpolate', ['linear'], ['zoom'], 11, 1 * k, 16, 2.5 * k] } },
      { id: 'street-line', type: 'line', source: 'areas', 'source-layer': 'street',
        paint: { 'line-color': '#9ad4ff', 'line-width': ['interpolate', ['linear'], ['zoom'], 10, 1.5 * k, 16, 4 * k], 'line-opacity': 0.9 } },
      { id: 'district-line', type: 'line', source: 'areas', 'source-layer': 'district',
        paint: { 'line-color': '#d0ebff', 'line-width': 2.5 * k } },
      { id: 'camera-sectors', type: 'fill', source: 'camera-sectors', minzoom: 13,
        paint: { 'fill-color': CAMERA_STATE, 'fill-opacity': ['interpolate', ['linear'], ['zoom'], 13, 0.08, 17, 0.18] } },
      { id: 'camera-sector-lines', type: 'line', source: 'camera-sectors', minzoom: 14,
        paint: { 'line-color': CAMERA_STATE, 'line-width': 0.8 * k, 'line-opacity': 0.6 } },
      { id: 'cameras', type: 'symbol', source: 'cameras',
        layout: { 'icon-image': ['concat', 'camera-', ['get', 'state']], 'icon-rotate': ['get', 'heading'],
          'icon-rotation-alignment': 'map', 'icon-allow-overlap': true, 'icon-ignore-placement': true,
          'icon-size': ['interpolate', ['linear'], ['zoom'], 12, 0.65 * k, 17, 1.2 * k] } },
      { id: 'incident-clusters', type: 'circle', source: 'incidents', filter: ['has', 'point_count'],
        paint: { 'circle-color': '#ff922b', 'circle-opacity': 0.85, 'circle-stroke-color': '#ffe8cc', 'circle-stroke-width': 1.5 * k,
          'circle-radius': ['step', ['get', 'point_count'], 12 * k, 10, 16 * k, 50, 22 * k, 200, 28 * k] } },
      { id: 'incident-cluster-count', type: 'symbol', source: 'incidents', filter: ['has', 'point_count'],
        layout: { 'text-field': ['get', 'point_count_abbreviated'], 'text-font': BOLD, 'text-size': 13 * k },
        paint: { 'text-color': '#1b1b1b' } },
      { id: 'incidents', type: 'circle', source: 'incidents', filter: ['!', ['has', 'point_count']],
        paint: {
          'circle-radius': ['interpolate', ['linear'], ['zoom'], 12, 4 * k, 17, 8 * k],
          'circle-color': ['match', ['get', 'status'], ...Object.entries(STATUS_COLORS).flat(), '#adb5bd'] as any,
          'circle-stroke-color': ['case', ['get', 'overdue'], '#ff2d55', '#06101a'],
          'circle-stroke-width': ['case', ['get', 'overdue'], 3 * k, 1 * k],
        } },
      { id: 'community-labels', type: 'symbol', source: 'areas', 'source-layer': 'community_label', minzoom: 12.5 + dz, maxzoom: 15 + dz,
        layout: { 'text-field': ['get', 'name'], 'text-font': FONT, 'text-size': 13 * k },
        paint: { 'text-color': '#a5d8ff', 'text-halo-color': '#06101a', 'text-halo-width': 1.5 * k } },
      { id: 'grid-labels', type: 'symbol', source: 'areas', 'source-layer': 'grid_label', minzoom: 15 + dz,
        layout: { 'text-field': ['get', 'name'], 'text-font': FONT, 'text-size': 11 * k },
        paint: { 'text-color': '#74c0fc', 'text-halo-color': '#06101a', 'text-halo-width': 1.2 * k } },
      // above the other names: MapLibre places the upper layer's labels first,
      // and a street's name is what a wall is read by (below, two of six lost
      // their place to community names)
      { id: 'street-labels', type: 'symbol', source: 'areas', 'source-layer': 'street_label', maxzoom: 13.5 + dz,
        layout: { 'text-field': ['get', 'name'], 'text-font': BOLD, 'text-size': 16 * k, 'symbol-placement': 'point' },
        paint: { 'text-color': '#d0ebff', 'text-halo-color': '#06101a', 'text-halo-width': 2 * k } },
      { id: 'highlight', type: 'line', source: 'highlight', paint: { 'line-color': '#ffe066', 'line-width': 3 * k } },
      { id: 'track', type: 'line', source: 'track', layout: { 'line-join': 'round', 'line-cap': 'round' },
        paint: { 'line-color': '#fcc419', 'line-width': 3 * k, 'line-opacity': 0.9 } },
      { id: 'track-stops', type: 'circle', source: 'track-stops',
        paint: { 'circle-radius': 6 * k, 'circle-color': '#06101a', 'circle-stroke-color': '#fcc419', 'circle-stroke-width': 2 * k } },
      { id: 'track-head', type: 'circle', source: 'track-head',
        paint: { 'circle-radius': 8 * k, 'circle-color': '#fcc419', 'circle-stroke-color': '#fff', 'circle-stroke-width': 2 * k } },
      { id: 'replay-area', type: 'line', source: 'replay-area', paint: { 'line-color': '#f783ac', 'line-width': 2 * k, 'line-dasharray': [2, 1] } },
    ],
  } as StyleSpecification;
}

/** The map, opening on bounds (the district's, from its TileJSON) when
 * given: its first tiles are those of the view it keeps, with no second
 * round for a fit after the load. */
export function createMap(container: HTMLElement, center: [number, number], zoom: number,
  bounds?: [number, number, number, number]): MlMap {
  const map = new maplibregl.Map({
    container,
    style: style(),
    center,
    zoom,
    ...(bounds ? { bounds: [[bounds[0], bounds[1]], [bounds[2], bounds[3]]] as [[number, number], [number, number]], fitBoundsOptions: { padding: 16 } } : {}),
    attributionControl: false,
    // labels appear at once: a fade would repaint the map for 300 ms after
    // every change, and live changes never stop
    fadeDuration: 0,
    localIdeographFontFamily: "'Noto Sans CJK SC', 'Noto Sans SC', 'Noto Sans CJK', sans-serif",
    transformRequest: (url: string) => {
      // only our own origin gets the token; nothing else is ever fetched
      if (url.startsWith(location.origin) || url.startsWith('/'))
        return { url, headers: { Authorization: `Bearer ${getToken()}` } };
      return { url };
    },
  });
  // a camera's mark, per state, the first time the map asks for it
  map.on('styleimagemissing', (e: { id: string }) => {
    if (!e.id.startsWith('camera-') || map.hasImage(e.id)) return;
    const c = cameraIcon(e.id.slice('camera-'.length), 22);
    map.addImage(e.id, c.getContext('2d')!.getImageData(0, 0, c.width, c.height), { pixelRatio: 2 });
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'bottom-right');
  // as wide on a 4K wall as its text, which grows with the screen
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric', maxWidth: 100 * scale() }), 'bottom-left');
  return map;
}

// The operator's own base map (serve --basemap), drawn under everything
// but the background. Its TileJSON comes from /basemap.json; null: none.
// A vector one's schema is unknown, so each of its layers gets a quiet
// polygon fill and a thin line, no labels; the grid fill then lets it
// show through. Without one the style is left as it is.
export function addBasemap(map: MlMap, tj: any): void {
  if (!tj?.tiles) return;
  const range = { minzoom: tj.minzoom ?? 0, maxzoom: tj.maxzoom ?? 22, ...(tj.bounds ? { bounds: tj.bounds } : {}) };
  const before = 'grid-fill';
  if (tj.format === 'pbf') {
    map.addSource('basemap', { type: 'vector', tiles: tj.tiles, ...range, attribution: tj.attribution });
    for (const l of (tj.vector_layers ?? []) as { id: string }[]) {
      const water = /water/i.test(l.id);
      map.addLayer({ id: `basemap-${l.id}-fill`, type: 'fill', source: 'basemap', 'source-layer': l.id,
        filter: ['in', ['geometry-type'], ['literal', ['Polygon', 'MultiPolygon']]],
        paint: { 'fill-color': water ? '#0a1d30' : '#0b1620', 'fill-opacity': 0.9 } }, before);
      map.addLayer({ id: `basemap-${l.id}-line`, type: 'line', source: 'basemap', 'source-layer': l.id,
        filter: ['in', ['geometry-type'], ['literal', ['LineString', 'MultiLineString']]],
        paint: { 'line-color': '#2a3b4d', 'line-width': 0.6 * scale(), 'line-opacity': 0.7 } }, before);
    }
  } else {
    map.addSource('basemap', { type: 'raster', tiles: tj.tiles, tileSize: 256, ...range, attribution: tj.attribution });
    // a daylight map dimmed to sit under the wall's dark colours
    map.addLayer({ id: 'basemap-raster', type: 'raster', source: 'basemap',
      paint: { 'raster-brightness-max': 0.45, 'raster-saturation': -0.5, 'raster-opacity': 0.9 } }, before);
  }
  // the grid fill is opaque for speed; over a base map it must let it through
  map.setPaintProperty('grid-fill', 'fill-opacity', 0.55);
}

export function geo(map: MlMap, id: string): GeoJSONSource {
  return map.getSource(id) as GeoJSONSource;
}
