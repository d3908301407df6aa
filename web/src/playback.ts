// A clock over a past window, played at 1×–60×, and where each worker was
// at any moment of it (between two fixes: along the line joining them).
// The worker panel's track playback and the district replay share it.
export type Fix = [number, number, number];   // lon, lat, t (ms)

export class Clock {
  t: number;
  speed = 10;
  private playing = false;
  private frame = 0;
  private last = 0;
  onTick: (t: number) => void = () => {};
  onEnd: () => void = () => {};

  constructor(public from: number, public to: number) { this.t = from; }

  get isPlaying(): boolean { return this.playing; }

  play(): void {
    if (this.playing) return;
    if (this.t >= this.to) this.t = this.from;
    this.playing = true;
    this.last = performance.now();
    const step = (now: number) => {
      if (!this.playing) return;
      this.t = Math.min(this.to, this.t + (now - this.last) * this.speed);
      this.last = now;
      this.onTick(this.t);
      if (this.t >= this.to) { this.pause(); this.onEnd(); return; }
      this.frame = requestAnimationFrame(step);
    };
    this.frame = requestAnimationFrame(step);
  }

  pause(): void {
    this.playing = false;
    cancelAnimationFrame(this.frame);
  }

  seek(t: number): void {
    this.t = Math.max(this.from, Math.min(this.to, t));
    this.onTick(this.t);
  }
}

/** Where the fixes (in time order) put the worker at t; null before the
 * first fix or more than `gapMs` after the last one before t (the device
 * was silent: nobody is drawn where nobody was seen). */
export function positionAt(fixes: Fix[], t: number, gapMs = 5 * 60 * 1000): [number, number] | null {
  if (!fixes.length || t < fixes[0][2]) return null;
  let lo = 0, hi = fixes.length - 1;
  while (lo < hi) {   // the last fix at or before t
    const mid = (lo + hi + 1) >> 1;
    if (fixes[mid][2] <= t) lo = mid; else hi = mid - 1;
  }
  const a = fixes[lo], b = fixes[lo + 1];
  if (!b) return t - a[2] <= gapMs ? [a[0], a[1]] : null;
  if (b[2] - a[2] > gapMs) return t - a[2] <= gapMs ? [a[0], a[1]] : null;
  const f = b[2] === a[2] ? 0 : (t - a[2]) / (b[2] - a[2]);
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f];
}

/** The fixes of the last `ms` before t, as a line (the trail). */
export function trailBefore(fixes: Fix[], t: number, ms: number): [number, number][] {
  const out: [number, number][] = [];
  for (const f of fixes) {
    if (f[2] > t) break;
    if (f[2] >= t - ms) out.push([f[0], f[1]]);
  }
  const here = positionAt(fixes, t);
  if (here && out.length) out.push(here);
  return out;
}

export const SPEEDS = [1, 5, 10, 30, 60];

export function fmtClock(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
