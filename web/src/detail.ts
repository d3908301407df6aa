// The side panel that opens on a click: a case (details, photos, timeline,
// deadline countdown, the actions the user's role allows), a grid (its
// chain, workers, open cases) or a worker (last fix, today's track).
import { api, ApiError, type Me } from './api';
import { clear, h } from './dom';
import { fmtDateTime, t, tx } from './i18n';
import { Clock, fmtClock, positionAt, SPEEDS, type Fix } from './playback';

export interface Ctx {
  me: Me;
  /** the worker panel's track on the map: line and stops, the moving head */
  track: (line: any | null, stops: any[]) => void;
  trackHead: (pos: [number, number] | null, follow: boolean) => void;
  departments: string[];
  categoryName: (code: string) => string;
  onChanged: () => void;
  showCase: (id: string) => void;
  /** the cameras standing in a grid (as the server placed them), and the wall filled with them */
  gridCameras: (gridId: string) => number;
  gridToWall: (grid: { id: string; name: string }) => void;
}

const OPS = new Set(['operator', 'admin']);

/** What `role` may do to a case in `status` (README's table); the server
 * refuses anything else anyway. */
export function actionsFor(me: Me, c: any): string[] {
  const op = OPS.has(me.role);
  switch (c.status) {
    case 'reported': return op ? ['register', 'reject'] : [];
    case 'registered': return op ? ['dispatch'] : [];
    case 'dispatched':
      return me.role === 'admin' || (me.role === 'department' && me.department === c.department) ? ['handle'] : [];
    case 'handled': return op ? ['verify', 'send_back'] : [];
    case 'verified': return op ? ['close'] : [];
    case 'closed': return op && c.source !== 'resident' ? ['evaluate'] : [];
    default: return [];
  }
}

let timer = 0;
function countdown(el: HTMLElement, deadline: number): void {
  const tick = () => {
    const s = Math.round(deadline - Date.now() / 1000);
    const a = Math.abs(s);
    const txt = `${Math.floor(a / 3600)}:${String(Math.floor((a % 3600) / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
    el.textContent = s >= 0 ? `${t('remaining')} ${txt}` : `${t('overdue_by')} ${txt}`;
    el.className = s >= 0 ? (s < 3600 ? 'countdown soon' : 'countdown') : 'countdown late';
  };
  tick();
  clearInterval(timer);
  timer = window.setInterval(tick, 1000);
}

async function photo(hash: string): Promise<HTMLElement> {
  const img = h('img', { class: 'photo', alt: hash });
  try {
    const r = await fetch(`/api/photos/${encodeURIComponent(hash)}`, {
      headers: { Authorization: `Bearer ${localStorage.getItem('gridcc.token') || ''}` },
    });
    if (r.ok) img.src = URL.createObjectURL(await r.blob());
  } catch { /* the case shows without it */ }
  return img;
}

export function panel(): HTMLElement {
  return document.getElementById('detail') as HTMLElement;
}

export function closePanel(): void {
  clearInterval(timer);
  player?.pause();
  const p = panel();
  p.classList.remove('open');
  clear(p);
}

export function frame(title: string, ...body: (Node | null)[]): void {
  const p = panel();
  clear(p);
  p.append(h('div', { class: 'detail-head' }, h('h2', {}, title),
    h('button', { class: 'icon', 'aria-label': t('close'), onclick: closePanel }, '×')));
  for (const b of body) if (b) p.append(b);
  p.classList.add('open');
}

export async function showCase(ctx: Ctx, id: string): Promise<void> {
  const f = await api<any>(`/api/incidents/${encodeURIComponent(id)}`);
  const c = f.properties;
  const rows = h('dl', { class: 'facts' },
    h('dt', {}, t('status')), h('dd', {}, h('span', { class: `status st-${c.status}` }, tx(`st_${c.status}`))),
    h('dt', {}, t('category')), h('dd', {}, `${ctx.categoryName(c.category)} (${c.category})`),
    h('dt', {}, t('grid')), h('dd', {}, c.chain?.chain?.grid?.name || '—'),
    h('dt', {}, t('address')), h('dd', {}, c.address || '—'),
    h('dt', {}, t('department')), h('dd', {}, c.department || '—'),
    h('dt', {}, t('deadline')), h('dd', {}, c.deadline ? h('span', { class: 'countdown', id: 'countdown' }) : '—'));
  const desc = h('p', { class: 'description' }, c.description || '');
  const photos = h('div', { class: 'photos' });
  for (const p of c.photos || []) photos.append(await photo(p.hash || p.id || p));
  const tl = h('ol', { class: 'timeline' });
  for (const s of c.history || [])
    tl.append(h('li', {}, h('time', {}, fmtDateTime(s.at * 1000)), ' ',
      h('b', {}, tx(`act_${s.action}`) !== `act_${s.action}` ? tx(`act_${s.action}`) : s.action), ' ',
      s.actor ? `${s.actor} (${s.role})` : '', s.note ? ` — ${s.note}` : ''));
  const actions = h('div', { class: 'actions' });
  const err = h('div', { class: 'action-error', role: 'alert' });
  for (const a of actionsFor(ctx.me, c)) {
    actions.append(h('button', { class: `act act-${a}`, 'data-action': a, onclick: () => act(ctx, c, a, err) }, tx(`act_${a}`)));
  }
  frame(`${t('case')} ${c.case_no}`, rows, desc, photos.childElementCount ? photos : null,
    h('h3', {}, t('timeline')), tl, actions, err);
  const cd = document.getElementById('countdown');
  if (cd && c.deadline && !['closed', 'evaluated', 'rejected'].includes(c.status)) countdown(cd, c.deadline);
  else if (cd) cd.textContent = fmtDateTime(c.deadline * 1000);
}

/** Actions that need a word from the user open a small form in place. */
function act(ctx: Ctx, c: any, action: string, err: HTMLElement): void {
  const need: Record<string, () => HTMLElement> = {
    dispatch: () => h('select', { name: 'department' },
      ...ctx.departments.map((d) => { const o = h('option', { value: d }, d); if (d === c.department) o.selected = true; return o; })),
    reject: () => h('input', { name: 'note', required: true, placeholder: t('note') }),
    send_back: () => h('input', { name: 'note', required: true, placeholder: t('note') }),
    handle: () => h('input', { name: 'result', required: true, placeholder: t('result') }),
    evaluate: () => h('select', { name: 'rating' }, ...[5, 4, 3, 2, 1].map((n) => h('option', { value: n }, String(n)))),
  };
  const send = async (extra: Record<string, string | number>) => {
    try {
      await api(`/api/incidents/${c.id}/actions`, { method: 'POST', body: JSON.stringify({ action, ...extra }) });
      ctx.onChanged();
      await showCase(ctx, c.case_no);
    } catch (x) {
      err.textContent = x instanceof ApiError ? x.message : String(x);
    }
  };
  if (!need[action]) { void send({}); return; }
  document.getElementById('action-form')?.remove();
  const field = need[action]();
  const form = h('form', { class: 'action-form', id: 'action-form' }, field,
    h('button', { type: 'submit', class: 'act primary' }, tx(`act_${action}`)));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = (field as HTMLInputElement).value;
    const name = field.getAttribute('name') || 'note';
    void send({ [name]: name === 'rating' ? Number(v) : v });
  });
  err.before(form);
  field.focus();
}

export async function showGrid(ctx: Ctx, grid: { id: string; name: string }, lngLat: [number, number], workers: any[]): Promise<void> {
  const [chain, cases, prof] = await Promise.all([
    api<any>(`/api/geotag?lon=${lngLat[0]}&lat=${lngLat[1]}`),
    api<any>(`/api/incidents?grid=${encodeURIComponent(grid.id)}&status=reported,registered,dispatched,handled,verified&limit=200`),
    api<any>(`/api/units/${encodeURIComponent(grid.id)}/profile`).catch(() => null),
  ]);
  const ch = chain.chain || {};
  const chainText = ['district', 'street', 'community'].map((l) => ch[l]?.name).filter(Boolean).join(' › ');
  const mine = workers.filter((w) => (w.grids || []).includes(grid.id));
  const list = h('ul', { class: 'case-list' });
  for (const f of cases.features || []) {
    const p = f.properties;
    list.append(h('li', { onclick: () => ctx.showCase(p.case_no) },
      h('span', { class: `dot st-${p.status}` }), `${p.case_no} `, h('span', { class: 'muted' }, ctx.categoryName(p.category)), ' ',
      p.description || ''));
  }
  // 人地物事组织: what the layers hold of the grid, its cases, its workers
  const use = prof?.buildings_by_use || {};
  const orgs = ['办公', '商业', '公共服务', '教育'].reduce((a, k) => a + (use[k] || 0), 0);
  const counts = h('div', { class: 'counts', id: 'grid-counts' },
    ...([['people', prof?.population], ['households', prof?.households], ['buildings', prof?.buildings],
      ['organisations', prof ? orgs : null], ['open_cases', cases.numberMatched ?? (cases.features || []).length],
      ['workers', mine.length]] as [string, number | null | undefined][]).map(([k, v]) =>
      h('div', { class: 'count', 'data-count': k }, h('b', {}, v == null ? '—' : String(v)), h('span', {}, tx(k)))));
  const ncams = ctx.gridCameras(grid.id);
  const toWall = h('div', { class: 'actions' },
    h('button', { class: 'act', id: 'grid-to-wall', 'data-cameras': ncams, disabled: ncams === 0, onclick: () => ctx.gridToWall(grid) },
      `${t('grid_to_wall')} (${ncams} ${t('cam_count')})`));
  frame(`${t('grid')} ${grid.name}`, h('p', { class: 'muted' }, `${t('chain')}: ${chainText} · ${grid.id}`), counts, toWall,
    h('h3', {}, t('workers')), h('ul', { class: 'plain' }, ...mine.map((w) => h('li', {}, w.name || w.username || String(w.id)))),
    h('h3', {}, t('open_cases')), list.childElementCount ? list : h('p', { class: 'muted' }, t('no_cases')));
}

let player: Clock | null = null;

function stopPlayer(ctx?: Ctx): void {
  player?.pause();
  player = null;
  if (ctx) { ctx.track(null, []); ctx.trackHead(null, false); }
}

function midnight(): number {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

/** A worker: the last fix; today's track (line, distance, stops, grids
 * visited, coverage of the grids) with playback at 1×–60× and follow. */
export async function showWorker(ctx: Ctx, w: any): Promise<void> {
  stopPlayer(ctx);
  const id = w.wid ?? w.id;
  const from = Math.floor(midnight() / 1000);
  const [track, cov] = await Promise.all([
    api<any>(`/api/workers/${encodeURIComponent(id)}/track?from=${from}&zoom=16`),
    api<any>(`/api/workers/${encodeURIComponent(id)}/coverage`).catch(() => null),
  ]);
  const p = track.properties || {};
  ctx.track(track.geometry ? track : null, p.stops || []);
  const facts = h('dl', { class: 'facts' },
    h('dt', {}, t('last_fix')), h('dd', {}, w.t ? fmtDateTime(Number(w.t)) : '—'),
    h('dt', {}, t('grid')), h('dd', {}, w.grid_id || '—'),
    h('dt', {}, t('distance')), h('dd', {}, p.distance_m != null ? `${(p.distance_m / 1000).toFixed(2)} km` : '—'),
    h('dt', {}, t('fixes')), h('dd', {}, String(p.fixes ?? 0)),
    h('dt', {}, t('stops')), h('dd', {}, String((p.stops || []).length)));
  const covList = h('ul', { class: 'plain coverage' });
  for (const g of cov?.grids || [])
    covList.append(h('li', {}, `${g.name || g.grid_id}: `, h('b', {}, g.ratio != null ? `${Math.round(g.ratio * 100)}%` : '—')));
  // playback of today's fixes, with their times
  const play = h('div', { class: 'player' });
  if (p.first_ms && p.last_ms && p.last_ms > p.first_ms) {
    const hist = await api<any>(`/api/history/positions?from=${Math.floor(p.first_ms / 1000)}&to=${Math.ceil(p.last_ms / 1000) + 1}&workers=${encodeURIComponent(id)}`).catch(() => null);
    const fixes: Fix[] = hist?.workers?.[0]?.fixes || [];
    if (fixes.length > 1) {
      const clock = new Clock(fixes[0][2], fixes[fixes.length - 1][2]);
      player = clock;
      const label = h('span', { class: 'clock-label' }, fmtClock(clock.t));
      const slider = h('input', { type: 'range', min: 0, max: 1000, value: 0, class: 'slider' });
      const follow = h('input', { type: 'checkbox', checked: true });
      const speed = h('select', { class: 'speed' }, ...SPEEDS.map((x) => { const o = h('option', { value: x }, `${x}×`); if (x === 10) o.selected = true; return o; }));
      const btn = h('button', { class: 'act play' }, '▶');
      clock.onTick = (tt) => {
        label.textContent = fmtClock(tt);
        slider.value = String(Math.round((tt - clock.from) / (clock.to - clock.from) * 1000));
        ctx.trackHead(positionAt(fixes, tt, Infinity), follow.checked);
      };
      clock.onEnd = () => { btn.textContent = '▶'; };
      btn.addEventListener('click', () => {
        if (clock.isPlaying) { clock.pause(); btn.textContent = '▶'; } else { clock.play(); btn.textContent = '❚❚'; }
      });
      speed.addEventListener('change', () => { clock.speed = Number(speed.value); });
      slider.addEventListener('input', () => clock.seek(clock.from + (clock.to - clock.from) * Number(slider.value) / 1000));
      clock.speed = 10;
      play.append(btn, speed, slider, label, h('label', {}, follow, t('follow')));
      clock.seek(clock.from);
    }
  }
  frame(`${t('worker')} ${w.worker || p.worker || id}`, facts, h('h3', {}, t('playback')), play,
    h('h3', {}, t('coverage')), covList.childElementCount ? covList : h('p', { class: 'muted' }, '—'));
  const head = panel().querySelector('.detail-head button');
  head?.addEventListener('click', () => stopPlayer(ctx));
}
