// A camera's live view: the /video/{id} websocket's fragmented MP4 played
// through Media Source Extensions, kept near live for hours.
//
// The server sends {"type":"init","mime",…} as text, the init segment as one
// binary message, then media fragments beginning at a keyframe. A viewer that
// fell behind is skipped to the next keyframe ({"type":"skip"}), which leaves
// a hole in the buffered ranges; the camera's ups and downs come as
// {"type":"state"} and a new init follows when it plays again. A browser
// that cannot decode H.265 says so as it connects (?codec=h264) and gets an
// H.265 camera's one shared transcode to H.264 ("transcoded": true); one
// that turns out not to play the camera's profile asks with a message.
//
// Near live: MSE plays whatever is buffered at normal speed, so any stall
// (a late fragment, a hidden tab, a hole) adds to the delay for good. Twice
// a second the playhead is checked against the buffered end: a little late,
// it plays slightly faster; more than LAG_MAX late, or stuck in front of a
// hole, it jumps. Old media is trimmed so the buffer never fills.
//
// A decode error (a camera's corrupt or lost frames, a decoder that trips
// on a stream's change) does not leave the tile black: the player starts
// again with a new MediaSource and a new connection, which the server begins
// at its latest keyframe, as a viewer who reopened it would; repeated errors
// wait longer (0.5 s doubling to 15 s).
import { getToken } from './api';

const LAG_MAX = 1.0;        // s behind the newest frame before a jump
const LAG_EASE = 0.45;      // s behind before playing a little faster
const KEEP = 8;             // s of played media kept behind the playhead

export interface PlayerStats {
  codec: string; mime: string; transcoded: boolean;
  fragments: number; bytes: number; skips: number; jumps: number;
  /** times the player started again after a decode error */
  recoveries: number;
  errors: string[]; state: string; reason: string;
}

/** Whether this browser's MSE takes HEVC in MP4 (Chromium on Linux: no). */
export function hevcPlays(): boolean {
  return !!window.MediaSource && MediaSource.isTypeSupported('video/mp4; codecs="hvc1.1.6.L93.B0"');
}

export class VideoPlayer {
  readonly video: HTMLVideoElement;
  readonly stats: PlayerStats = {
    codec: '', mime: '', transcoded: false, fragments: 0, bytes: 0, skips: 0, jumps: 0, recoveries: 0, errors: [], state: 'connecting', reason: '',
  };
  onState: (state: string, reason: string) => void = () => {};
  onUnauthorized: () => void = () => {};
  private ws: WebSocket | null = null;
  private ms: MediaSource | null = null;
  private sb: SourceBuffer | null = null;
  private url = '';
  private queue: ArrayBuffer[] = [];
  private awaitingInit = false;     // the next binary message is an init segment
  private askedH264 = false;
  private started = false;          // the playhead has been put on the first fragment
  private stopped = false;
  private retry = 0;
  private timer = 0;
  private retryTimer = 0;
  private attached = false;
  private recovering = false;       // torn down after a decode error, not yet playing again
  private recentErrors: number[] = [];

  constructor(readonly camera: string) {
    this.video = document.createElement('video');
    this.video.muted = true;          // autoplay without a gesture
    this.video.playsInline = true;
    this.video.className = 'live-video';
    this.video.addEventListener('error', () => {
      // the element's own error, or the src removed as we stop
      if (this.video.error && this.ms) this.recover(`video: ${this.video.error.message || this.video.error.code}`);
    });
  }

  start(): void {
    this.stopped = false;
    this.connect();
    this.timer = window.setInterval(() => this.keepLive(), 500);
  }

  stop(): void {
    this.stopped = true;
    this.recovering = false;
    window.clearInterval(this.timer);
    window.clearTimeout(this.retryTimer);
    this.ws?.close(1000);
    this.ws = null;
    this.resetMedia();
    this.video.removeAttribute('src');
    this.video.load();
  }

  /** Seconds between the playhead and the newest frame buffered. */
  lag(): number {
    const b = this.video.buffered;
    return b.length ? b.end(b.length - 1) - this.video.currentTime : NaN;
  }

  private connect(): void {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.askedH264 = !hevcPlays();
    const codec = this.askedH264 ? '&codec=h264' : '';
    const ws = new WebSocket(`${proto}//${location.host}/video/${encodeURIComponent(this.camera)}?access_token=${encodeURIComponent(getToken())}${codec}`);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;     // one given up after an error
      if (typeof ev.data === 'string') this.control(ev.data);
      else this.media(ev.data as ArrayBuffer);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      if (ev.code === 4401 || ev.code === 1008) { this.onUnauthorized(); return; }
      this.setState('connecting', ev.reason || 'closed');
      // a new connection starts again on a keyframe, with its own init
      const wait = Math.min(15000, 500 * 2 ** this.retry++) * (0.8 + 0.4 * Math.random());
      this.retryTimer = window.setTimeout(() => { if (!this.stopped) this.connect(); }, wait);
    };
  }

  private control(text: string): void {
    let m: any;
    try { m = JSON.parse(text); } catch { return; }
    if (m.type === 'init') {
      this.retry = 0;
      this.recovering = false;
      this.stats.codec = m.codec || '';
      this.stats.mime = m.mime || '';
      this.stats.transcoded = !!m.transcoded;
      if (!window.MediaSource || !MediaSource.isTypeSupported(m.mime)) {
        if (m.codec === 'h265' && !this.askedH264) {
          // Chromium on Linux cannot decode HEVC: the server transcodes for us
          this.askedH264 = true;
          this.ws?.send(JSON.stringify({ type: 'codec', want: 'h264' }));
          this.awaitingInit = false;
          return;
        }
        this.fail(`this browser cannot play ${m.mime}`);
        return;
      }
      this.awaitingInit = true;
      this.setState('playing', '');
    } else if (m.type === 'skip') {
      this.stats.skips += Number(m.dropped) || 1;
    } else if (m.type === 'state') {
      this.setState(String(m.state), String(m.reason || ''));
    } else if (m.type === 'error') {
      this.fail(String(m.message || m.code));
    }
  }

  private media(buf: ArrayBuffer): void {
    if (this.awaitingInit) {
      // a new init: a new MediaSource (the stream's timestamps may start over)
      this.awaitingInit = false;
      this.resetMedia();
      this.queue = [buf];
      const ms = new MediaSource();
      this.ms = ms;
      this.url = URL.createObjectURL(ms);
      this.video.src = this.url;
      ms.addEventListener('sourceopen', () => {
        if (this.ms !== ms) return;
        try {
          this.sb = ms.addSourceBuffer(this.stats.mime);
        } catch (e) {
          this.fail(`addSourceBuffer: ${(e as Error).message}`);
          return;
        }
        this.sb.mode = 'segments';
        this.sb.addEventListener('updateend', () => { this.firstPlay(); this.pump(); });
        this.sb.addEventListener('error', () => this.recover('the source buffer refused a fragment'));
        this.pump();
      }, { once: true });
      return;
    }
    if (!this.ms) return;          // fragments before an init we can play
    this.stats.fragments++;
    this.stats.bytes += buf.byteLength;
    this.queue.push(buf);
    // a page that cannot keep up (hidden, slow) must not hold media without bound
    if (this.queue.length > 120) this.queue.splice(1, this.queue.length - 60);
    this.pump();
  }

  private pump(): void {
    const sb = this.sb;
    if (!sb || sb.updating || !this.queue.length || this.ms?.readyState !== 'open') return;
    const next = this.queue.shift()!;
    try {
      sb.appendBuffer(next);
    } catch (e) {
      if ((e as DOMException).name === 'QuotaExceededError') {
        this.queue.unshift(next);
        this.trim(true);
        return;
      }
      // the element already failed (its error event recovers), or the
      // buffer refused this fragment: either way, start again
      this.recover(`appendBuffer: ${(e as Error).message}`);
      return;
    }
  }

  /** The first fragment is in: the playhead goes to it (a stream joined
   *  midway starts its timeline far from 0). */
  private firstPlay(): void {
    const b = this.video.buffered;
    if (this.started || !b.length) return;
    this.started = true;
    this.video.currentTime = b.start(b.length - 1);
    void this.video.play().catch(() => {});
  }

  private keepLive(): void {
    // a view whose panel was closed or replaced stops with it
    if (this.video.isConnected) this.attached = true;
    else if (this.attached) { this.stop(); return; }
    const v = this.video, b = v.buffered;
    if (!b.length || !this.started) return;
    const end = b.end(b.length - 1), last = b.start(b.length - 1);
    const lag = end - v.currentTime;
    if (lag > LAG_MAX || v.currentTime < last) {
      // behind, or in front of a hole a skip left: to the newest keyframe's range
      v.currentTime = Math.max(last, end - 0.2);
      this.stats.jumps++;
    }
    v.playbackRate = lag > LAG_EASE ? 1.1 : 1;
    if (v.paused && !v.ended) void v.play().catch(() => {});
    this.trim(false);
  }

  private trim(hard: boolean): void {
    const sb = this.sb, v = this.video;
    if (!sb || sb.updating || !v.buffered.length) return;
    const start = v.buffered.start(0), upTo = v.currentTime - (hard ? 1 : KEEP);
    if (upTo - start > (hard ? 0 : 4)) sb.remove(start, upTo);
  }

  private resetMedia(): void {
    this.sb = null;
    this.started = false;
    if (this.ms && this.ms.readyState === 'open') {
      try { this.ms.endOfStream(); } catch { /* closing anyway */ }
    }
    this.ms = null;
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = '';
  }

  /** Starts again after a decode error: a new connection, which the server
   *  begins with an init and its latest keyframe, into a new MediaSource. */
  private recover(msg: string): void {
    if (this.recovering || this.stopped) return;
    this.recovering = true;
    this.note(msg);
    this.stats.recoveries++;
    const now = Date.now();
    this.recentErrors = this.recentErrors.filter((t) => now - t < 60000);
    this.recentErrors.push(now);
    const ws = this.ws;
    this.ws = null;                  // its close is ours: no reconnect from onclose
    ws?.close(1000);
    this.queue = [];
    this.awaitingInit = false;
    this.resetMedia();
    this.setState('connecting', 'recovering');
    const wait = Math.min(15000, 500 * 2 ** (this.recentErrors.length - 1)) * (0.8 + 0.4 * Math.random());
    window.clearTimeout(this.retryTimer);
    this.retryTimer = window.setTimeout(() => { if (!this.stopped) this.connect(); }, wait);
  }

  private setState(state: string, reason: string): void {
    this.stats.state = state;
    this.stats.reason = reason;
    this.onState(state, reason);
  }

  /** What cannot be mended by starting again (a codec this browser lacks). */
  private fail(msg: string): void {
    this.note(msg);
    this.setState('error', msg);
  }

  private note(msg: string): void {
    this.stats.errors.push(msg);
    if (this.stats.errors.length > 20) this.stats.errors.shift();
    console.warn(`camera ${this.camera}: ${msg}`);
  }
}
