// The video: hls.js (bundled) in low-latency mode, or the browser's own HLS (Safari without MSE).
// It reports the distance to the live edge, the product cue on screen (from the media's metadata
// TextTracks — emsg ID3 and EXT-X-DATERANGE — through one `cuechange` handler, which also serves
// Safari's DataCues), and the stream's trouble: a stall, a 404 or an ENDLIST while the show is
// live. It recovers by reloading the multivariant playlist (`reload()`), never leaving a dead
// player.

import Hls, { type LevelDetails } from 'hls.js';
import { CueBook, payloadOf, type MediaCue, type MetadataCueLike } from './cues';

export type PlayerTrouble = 'stalled' | 'gone' | 'ended' | null;

export interface PlayerState {
  playing: boolean;
  muted: boolean;
  /** Seconds behind the live edge (live only). */
  latency: number | null;
  /** The latency the player aims at. */
  target: number | null;
  live: boolean;
  trouble: PlayerTrouble;
}

export interface PlayerEvents {
  state(state: PlayerState): void;
  cue(cue: MediaCue | null): void;
  /** Media time (s) for the replay's chat. */
  time?(seconds: number): void;
}

export class Player {
  readonly cues = new CueBook();
  private hls: Hls | null = null;
  private shown: MediaCue | null = null;
  private stallTimer: number | undefined;
  private state: PlayerState;
  private listening = new WeakSet<TextTrack>();
  private src = '';
  private wantLive = true;
  private stateTimer: number | undefined;

  constructor(
    readonly video: HTMLVideoElement,
    private readonly on: PlayerEvents,
  ) {
    this.state = { playing: false, muted: true, latency: null, target: null, live: true, trouble: null };
    video.muted = true;
    video.playsInline = true;
    const tracks = video.textTracks;
    const watch = () => {
      for (const track of Array.from(tracks)) this.listen(track);
    };
    tracks.addEventListener('addtrack', watch);
    watch();
    video.addEventListener('timeupdate', () => {
      this.evaluate();
      this.on.time?.(video.currentTime);
    });
    video.addEventListener('seeked', () => this.evaluate());
    video.addEventListener('playing', () => {
      window.clearTimeout(this.stallTimer);
      this.update({ playing: true, trouble: this.state.trouble === 'stalled' ? null : this.state.trouble });
    });
    video.addEventListener('pause', () => this.update({ playing: false }));
    video.addEventListener('volumechange', () => this.update({ muted: video.muted }));
    video.addEventListener('waiting', () => {
      window.clearTimeout(this.stallTimer);
      // A short rebuffer is normal; a long one while live means the host's stream is gone.
      this.stallTimer = window.setTimeout(() => {
        if (this.wantLive && this.state.trouble === null) this.update({ trouble: 'stalled' });
      }, 4000);
    });
    this.stateTimer = window.setInterval(() => this.measure(), 500);
  }

  /** Starts `src` (`live`: low-latency live, else a replay from the start). */
  load(src: string, live: boolean): void {
    this.src = src;
    this.wantLive = live;
    this.cues.clear();
    this.shown = null;
    this.on.cue(null);
    this.update({ live, trouble: null, latency: null });
    this.start();
  }

  /** Reloads the multivariant playlist (after a 404, an ENDLIST or a long stall). */
  reload(): void {
    if (this.src) this.start();
  }

  private start(): void {
    const video = this.video;
    this.hls?.destroy();
    this.hls = null;
    if (Hls.isSupported()) {
      const hls = new Hls({
        lowLatencyMode: this.wantLive,
        enableEmsgMetadataCues: true,
        enableID3MetadataCues: true,
        enableDateRangeMetadataCues: true,
        backBufferLength: 30,
        manifestLoadingMaxRetry: 2,
        levelLoadingMaxRetry: 2,
        fragLoadingMaxRetry: 3,
      });
      this.hls = hls;
      hls.on(Hls.Events.ERROR, (_event, data) => {
        if (!data.fatal) return;
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
          hls.recoverMediaError();
          return;
        }
        this.update({ trouble: this.wantLive ? 'gone' : 'ended' });
      });
      hls.on(Hls.Events.LEVEL_UPDATED, (_event, data) => this.onLevel(data.details));
      hls.on(Hls.Events.LEVEL_LOADED, (_event, data) => this.onLevel(data.details));
      hls.attachMedia(video);
      hls.loadSource(this.src);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      video.src = this.src;
    } else {
      this.update({ trouble: 'gone' });
      return;
    }
    video.play().catch(() => {
      /* autoplay refused even muted: the big play button stays */
    });
  }

  private onLevel(details: LevelDetails): void {
    // The playlist's DATERANGEs straight from hls.js: a viewer who joins after a cue has it even
    // when the TextTrack cues were reset (Chromium's metadata track can drop its first cues).
    for (const range of Object.values(details.dateRanges)) {
      if (!range) continue;
      const hex = range.attr['X-DATA'];
      if (typeof hex !== 'string') continue;
      const payload = payloadOf({
        type: 'com.apple.quicktime.HLS',
        startTime: range.startTime,
        endTime: range.startTime,
        value: { key: 'X-DATA', data: hex },
      });
      if (!payload) continue;
      const end = range.endDate && range.duration !== null ? range.startTime + range.duration : undefined;
      this.cues.add(payload, range.startTime, end);
    }
    if (this.wantLive && !details.live) this.update({ trouble: 'ended' });
    this.evaluate();
  }

  private listen(track: TextTrack): void {
    if (track.kind !== 'metadata' || this.listening.has(track)) return;
    this.listening.add(track);
    if (track.mode === 'disabled') track.mode = 'hidden';
    // One handler for every metadata cue source: hls.js's emsg-ID3 and DATERANGE cues and
    // Safari's DataCues have the same shape (type, value).
    track.addEventListener('cuechange', () => {
      for (const cue of Array.from(track.cues ?? [])) {
        const like = cue as unknown as MetadataCueLike;
        const payload = payloadOf(like);
        if (!payload) continue;
        const dateRangeEnd = like.type === 'com.apple.quicktime.HLS' && like.endTime > like.startTime ? like.endTime : undefined;
        this.cues.add(payload, like.startTime, dateRangeEnd);
      }
      this.evaluate();
    });
  }

  /** Shows the cue on screen now (called on cuechange, timeupdate, seeks and level updates). */
  private evaluate(): void {
    const now = this.cues.onScreen(this.video.currentTime);
    if (now?.payload.id !== this.shown?.payload.id) {
      this.shown = now;
      this.on.cue(now);
    }
  }

  private measure(): void {
    const hls = this.hls;
    if (!this.wantLive) return;
    let latency: number | null = null;
    let target: number | null = null;
    if (hls) {
      latency = Number.isFinite(hls.latency) && hls.latency > 0 ? hls.latency : null;
      target = Number.isFinite(hls.targetLatency ?? NaN) ? hls.targetLatency : null;
    } else if (this.video.seekable.length > 0) {
      latency = this.video.seekable.end(this.video.seekable.length - 1) - this.video.currentTime;
    }
    this.update({ latency, target });
  }

  /** Jumps to the live edge. */
  goLive(): void {
    const hls = this.hls;
    const edge = hls?.liveSyncPosition ?? (this.video.seekable.length ? this.video.seekable.end(this.video.seekable.length - 1) - 1 : null);
    if (edge !== null && edge !== undefined && Number.isFinite(edge)) this.video.currentTime = edge;
    this.video.play().catch(() => {});
  }

  /** The PROGRAM-DATE-TIME of the frame on screen (Unix ms), when known. */
  playingDate(): number | null {
    return this.hls?.playingDate?.getTime() ?? null;
  }

  hlsInstance(): Hls | null {
    return this.hls;
  }

  private update(patch: Partial<PlayerState>): void {
    const next = { ...this.state, ...patch };
    const same = (Object.keys(next) as (keyof PlayerState)[]).every((k) => next[k] === this.state[k]);
    if (same) return;
    this.state = next;
    this.on.state(next);
  }

  destroy(): void {
    window.clearInterval(this.stateTimer);
    window.clearTimeout(this.stallTimer);
    this.hls?.destroy();
    this.hls = null;
  }
}
