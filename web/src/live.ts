// The /live bus: one websocket, every change once. The page remembers the
// last seq it applied; after a lost connection it subscribes again with
// `since`, so the changes made meanwhile come and none comes twice (a change
// at or below the last seq is dropped). Changes are handed on in batches
// once per animation frame, however fast they arrive.
import { getToken } from './api';

export interface Change { seq: number; topic: string; id: string; ts: number; data: any }
export type Batch = Change[];

export class Live {
  private ws: WebSocket | null = null;
  private last = -1;
  private queue: Change[] = [];
  private frame = 0;
  private retry = 0;
  private stopped = false;
  onBatch: (b: Batch) => void = () => {};
  onState: (up: boolean) => void = () => {};
  onResync: () => void = () => {};
  onUnauthorized: () => void = () => {};
  applied = 0;
  /** seqs of the changes applied (not positions), for the tests' "none
   * lost, none twice" */
  readonly log: number[] = [];

  constructor(private topics: string[]) {}

  get seq(): number { return this.last; }

  start(since = -1): void {
    this.stopped = false;
    if (since >= 0) this.last = since;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.ws?.close(1000);
    this.ws = null;
  }

  /** Drops the connection as a network would (tests, and a stuck socket). */
  cut(): void { this.ws?.close(4999, 'cut'); }

  private connect(): void {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/live?access_token=${encodeURIComponent(getToken())}`);
    this.ws = ws;
    ws.onopen = () => {
      const sub: any = { type: 'subscribe', topics: this.topics };
      if (this.last >= 0) sub.since = this.last;
      ws.send(JSON.stringify(sub));
      this.retry = 0;
      this.onState(true);
    };
    ws.onmessage = (ev) => this.message(ev.data);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      this.onState(false);
      if (ev.code === 4401) { this.onUnauthorized(); return; }
      // a close 4000 "resume since=N" (too far behind) needs nothing more:
      // this.last is the last change applied, a good `since` by itself
      // back off 0.5 s, 1 s, 2 s … up to 10 s, with jitter
      const wait = Math.min(10000, 500 * 2 ** this.retry++) * (0.75 + Math.random() / 2);
      setTimeout(() => { if (!this.stopped) this.connect(); }, wait);
    };
  }

  private message(raw: string): void {
    let m: any;
    try { m = JSON.parse(raw); } catch { return; }
    if (m.type === 'changes') {
      for (const c of m.changes as Change[]) {
        // positions are state (their seq is where they were seen) and may
        // repeat on a resubscription; everything else is applied once
        if (c.topic !== 'positions' && c.seq <= this.last) continue;
        this.queue.push(c);
        if (c.topic !== 'positions') { this.last = c.seq; this.log.push(c.seq); }
      }
      if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
    } else if (m.type === 'caught_up') {
      if (typeof m.seq === 'number' && this.last < 0) this.last = m.seq;
    } else if (m.type === 'resync') {
      this.last = m.seq;
      this.onResync();
    } else if (m.type === 'error' && m.code === 'unauthorized') {
      this.onUnauthorized();
    }
  }

  private flush(): void {
    this.frame = 0;
    const b = this.queue;
    this.queue = [];
    this.applied += b.length;
    if (b.length) this.onBatch(b);
  }
}
