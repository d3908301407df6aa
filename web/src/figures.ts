// The figures around the map: today's counts, trends over 7 and 30 days,
// cases by street (ECharts), the 红旗网格 ranking and the live event feed.
// ECharts is a chunk of its own, loaded with the first figures: a wall
// waits for its map, not for its charts (charts.ts).
import type { ECharts } from 'echarts/core';
import { api } from './api';
import { clear, h, scale } from './dom';
import { currentLang, fmtTime, t } from './i18n';

const DONE = ['closed', 'evaluated'];
const CLOSED = ['closed', 'evaluated', 'rejected'];
const DAY = 86400;
const TEXT = '#a9c1d9';
const AXIS = '#2a4058';

function midnight(daysAgo = 0): number {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  return Math.floor(d.getTime() / 1000) - daysAgo * DAY;
}

/** A stats answer's units taken as one (the district's and, beside it, the
 * cases outside it or with no place, which are the center's cases too):
 * counts added, each rate weighted by what it is a rate of. */
export function whole(units: any[] = []): any {
  const w: any = { total: 0, by_status: {} as Record<string, number>, overdue: 0, finished: 0, rated: 0 };
  let onTime = 0, ratings = 0;
  for (const u of units) {
    w.total += u.total || 0;
    w.overdue += u.overdue || 0;
    w.finished += u.finished || 0;
    w.rated += u.rated || 0;
    for (const [k, v] of Object.entries(u.by_status || {})) w.by_status[k] = (w.by_status[k] || 0) + Number(v);
    onTime += (u.on_time_rate ?? 0) * (u.finished || 0);
    ratings += (u.satisfaction ?? 0) * (u.rated || 0);
  }
  w.on_time_rate = w.finished ? onTime / w.finished : null;
  w.satisfaction = w.rated ? ratings / w.rated : null;
  return w;
}

function sum(o: Record<string, number> | undefined, keys: string[]): number {
  return keys.reduce((a, k) => a + (o?.[k] || 0), 0);
}

export interface Kpis { new: number; handled: number; overdue: number; onTime: number | null; satisfaction: number | null; hotline: number; onDuty: number }

const FEED_MAX = 60;
interface FeedItem { ts: number; kind: string; text: string; onclick?: () => void }

export class Figures {
  private liveFeed: FeedItem[] = [];
  private feedPaused = false;
  private charts: ECharts[] = [];
  private trend7!: ECharts;
  private trend30!: ECharts;
  private streets!: ECharts;
  private loading: Promise<void> | null = null;
  kpis: Kpis | null = null;

  constructor(private root: { kpis: HTMLElement; trend7: HTMLElement; trend30: HTMLElement; streets: HTMLElement; ranking: HTMLElement; feed: HTMLElement }) {
    window.addEventListener('resize', () => this.charts.forEach((c) => c.resize()));
  }

  /** ECharts and the three charts, the first time figures are drawn. */
  private ensureCharts(): Promise<void> {
    this.loading ??= import('./charts').then(({ chart }) => {
      this.trend7 = chart(this.root.trend7);
      this.trend30 = chart(this.root.trend30);
      this.streets = chart(this.root.streets);
      this.charts = [this.trend7, this.trend30, this.streets];
    }).catch((e) => {
      this.loading = null;   // asked again at the next refresh
      throw e;
    });
    return this.loading;
  }

  resize(): void { this.charts.forEach((c) => c.resize()); }

  async refresh(onDuty: number): Promise<void> {
    const today = midnight();
    const [, day, d30, month, hotline, rank] = await Promise.all([
      this.ensureCharts(),
      api<any>(`/api/incidents/stats?level=district&from=${today}`),
      api<any>(`/api/incidents/stats?level=district&from=${midnight(29)}`),
      api<any>(`/api/incidents/stats?level=street&from=${midnight(29)}`),
      api<any>(`/api/incidents?source=hotline&from=${today}&limit=1`),
      api<any>('/api/incidents/ranking'),
    ]);
    // every unit of the answer: the first alone was the cases outside the
    // district whenever there were any (its id "" sorts first)
    const u = whole(day.units);
    // rates over 30 days: a day's few closures say little, and a morning none
    const u30 = whole(d30.units);
    this.kpis = {
      new: u.total || 0,
      handled: sum(u.by_status, DONE),
      overdue: u.overdue || 0,
      onTime: u30.on_time_rate ?? null,
      satisfaction: u30.satisfaction ?? null,
      hotline: hotline.numberMatched ?? (hotline.features || []).length,
      onDuty,
    };
    this.drawKpis();
    this.drawStreets(month.units || []);
    this.drawRanking(rank.grids || []);
    await this.drawTrends();
  }

  /** Workers on duty change with every fix: redrawn without asking the server. */
  setOnDuty(n: number): void {
    if (!this.kpis || this.kpis.onDuty === n) return;
    this.kpis.onDuty = n;
    this.drawKpis();
  }

  private drawKpis(): void {
    const k = this.kpis!;
    const pct = (v: number | null) => (v == null ? '—' : `${Math.round(v * 100)}%`);
    const items: [string, string, string][] = [
      ['today_new', String(k.new), ''], ['today_handled', String(k.handled), 'good'],
      ['overdue', String(k.overdue), k.overdue ? 'bad' : ''], ['on_time', pct(k.onTime), ''],
      ['satisfaction', k.satisfaction == null ? '—' : k.satisfaction.toFixed(2), ''],
      ['hotline', String(k.hotline), ''], ['on_duty', String(k.onDuty), 'good'],
    ];
    clear(this.root.kpis);
    for (const [key, v, cls] of items)
      this.root.kpis.append(h('div', { class: `kpi ${cls}`, 'data-kpi': key }, h('b', {}, v), h('span', {}, t(key as any))));
  }

  private async drawTrends(): Promise<void> {
    // one stats call a day: the per-day series the trend needs
    const days = Array.from({ length: 30 }, (_, i) => 29 - i);
    const per = await Promise.all(days.map((d) =>
      api<any>(`/api/incidents/stats?level=district&from=${midnight(d)}&to=${midnight(d) + DAY}`)));
    const labels = days.map((d) => {
      const x = new Date((midnight(d)) * 1000);
      return `${x.getMonth() + 1}/${x.getDate()}`;
    });
    const rep = per.map((p) => whole(p.units).total);
    const done = per.map((p) => sum(whole(p.units).by_status, DONE));
    const k = scale();
    const opt = (n: number) => ({
      animation: false,
      textStyle: { fontSize: 12 * k },
      grid: { left: 36 * k, right: 12 * k, top: 28 * k, bottom: 22 * k },
      legend: { data: [t('reported'), t('closed')], textStyle: { color: TEXT, fontSize: 12 * k }, top: 0, itemHeight: 8 * k, itemWidth: 20 * k },
      tooltip: { trigger: 'axis', textStyle: { fontSize: 13 * k } },
      xAxis: { type: 'category', data: labels.slice(-n), axisLine: { lineStyle: { color: AXIS } }, axisLabel: { color: TEXT, fontSize: 11 * k } },
      yAxis: { type: 'value', minInterval: 1, splitLine: { lineStyle: { color: AXIS } }, axisLabel: { color: TEXT, fontSize: 11 * k } },
      series: [
        { name: t('reported'), type: 'line', smooth: false, data: rep.slice(-n), symbolSize: 4 * k, lineStyle: { width: 2 * k }, itemStyle: { color: '#ff922b' }, areaStyle: { opacity: 0.15 } },
        { name: t('closed'), type: 'line', smooth: false, data: done.slice(-n), symbolSize: 4 * k, lineStyle: { width: 2 * k }, itemStyle: { color: '#3ddc97' } },
      ],
    });
    this.trend7.setOption(opt(7), true);
    this.trend30.setOption(opt(30), true);
  }

  private drawStreets(units: any[]): void {
    // the cases in no street of the district (outside it, or without a place)
    // come last, named as such rather than left a blank label
    const us = [...units].sort((a, b) => Number(!a.id) - Number(!b.id) || (b.total || 0) - (a.total || 0));
    const k = scale();
    this.streets.setOption({
      animation: false,
      textStyle: { fontSize: 12 * k },
      grid: { left: 96 * k, right: 16 * k, top: 24 * k, bottom: 20 * k },
      legend: { data: [t('reported'), t('closed')], textStyle: { color: TEXT, fontSize: 12 * k }, top: 0, itemHeight: 8 * k, itemWidth: 20 * k },
      tooltip: { trigger: 'axis', textStyle: { fontSize: 13 * k } },
      xAxis: { type: 'value', minInterval: 1, splitLine: { lineStyle: { color: AXIS } }, axisLabel: { color: TEXT, fontSize: 11 * k } },
      yAxis: { type: 'category', inverse: true, data: us.map((u) => u.name || u.id || t('no_street')), axisLabel: { color: TEXT, fontSize: 12 * k }, axisLine: { lineStyle: { color: AXIS } } },
      series: [
        { name: t('reported'), type: 'bar', barMaxWidth: 14 * k, data: us.map((u) => u.total || 0), itemStyle: { color: '#4dabf7' } },
        { name: t('closed'), type: 'bar', barMaxWidth: 14 * k, data: us.map((u) => sum(u.by_status, DONE)), itemStyle: { color: '#3ddc97' } },
      ],
    }, true);
  }

  private drawRanking(grids: any[]): void {
    clear(this.root.ranking);
    const list = h('ol', { class: 'ranking' });
    for (const g of grids.slice(0, 10))
      list.append(h('li', {}, h('span', { class: 'name' }, g.name || g.grid_id || g.id),
        h('span', { class: 'score' }, g.score != null ? Number(g.score).toFixed(1) : '—')));
    if (!grids.length) list.append(h('li', { class: 'muted' }, '—'));
    this.root.ranking.append(list);
  }

  /** One line of the live feed, newest first, at most 60 kept. While a
   *  replay shows its own lines the live ones are still kept, and come
   *  back when it ends. */
  feed(ts: number, kind: string, text: string, onclick?: () => void): void {
    const item = { ts, kind, text, onclick };
    this.liveFeed.unshift(item);
    if (this.liveFeed.length > FEED_MAX) this.liveFeed.length = FEED_MAX;
    if (!this.feedPaused) this.feedLine(item);
  }

  /** A replay's line: shown, not kept. */
  replayFeed(ts: number, kind: string, text: string): void { this.feedLine({ ts, kind, text }); }

  /** The feed empties for a replay's lines; the live ones wait. */
  pauseFeed(): void { this.feedPaused = true; this.root.feed.replaceChildren(); }

  /** Back to now: the live feed as it is, with what came meanwhile. */
  resumeFeed(): void {
    this.feedPaused = false;
    this.root.feed.replaceChildren();
    for (const item of [...this.liveFeed].reverse()) this.feedLine(item);
  }

  private feedLine(f: FeedItem): void {
    const li = h('li', { class: `feed-${f.kind}`, onclick: f.onclick }, h('time', {}, fmtTime(f.ts)), h('span', { class: 'kind' }, f.kind), h('span', { class: 'text' }, f.text));
    this.root.feed.prepend(li);
    while (this.root.feed.childElementCount > FEED_MAX) this.root.feed.lastElementChild!.remove();
  }

  relabel(): void {
    if (this.kpis) this.drawKpis();
    void currentLang;
  }
}

export { CLOSED };
