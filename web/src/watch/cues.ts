// Product moments carried by the media (docs/cues.md): the cue JSON arrives as an ID3 TXXX frame
// in an `emsg` box (hls.js / Safari: a metadata TextTrack cue whose `value` is `{key: 'TXXX',
// info: 'com.cuecast.cue', data: JSON}`) and as an EXT-X-DATERANGE (one cue per attribute,
// `cue.id` = the cue id, `value = {key, data}`; `X-DATA` holds the same JSON as 0x-hex UTF-8).
// This module turns either into one `MediaCue` on the video's timeline and decides which cue is on
// screen at a given time. Pure: no DOM beyond reading the cue objects it is given.

export interface CueProduct {
  id: string;
  title?: string;
  price?: string;
  currency?: string;
  image_url?: string;
  cta?: { label: string; url: string };
}

export type CueKind = 'product' | 'pin' | 'offer' | 'clear';

/** The cue JSON (the emsg TXXX value and the DATERANGE X-DATA). */
export interface CuePayload {
  id: string;
  kind: CueKind;
  media_time_s?: number;
  start_date?: string;
  duration_s?: number | null;
  end_on_next?: boolean;
  product?: CueProduct | null;
  data?: Record<string, unknown>;
}

/** A cue placed on the video's timeline (seconds of `currentTime`). */
export interface MediaCue {
  payload: CuePayload;
  start: number;
  /** Exclusive end; Infinity while open-ended. */
  end: number;
}

/** The shape hls.js and Safari give metadata cues (`DataCue`-like). */
export interface MetadataCueLike {
  id?: string;
  type?: string;
  startTime: number;
  endTime: number;
  value?: { key?: string; info?: string; data?: unknown };
}

const EMSG_ID3 = 'https://aomedia.org/emsg/ID3';
const DATERANGE = 'com.apple.quicktime.HLS';

function hexToText(hex: string): string | null {
  const digits = hex.startsWith('0x') || hex.startsWith('0X') ? hex.slice(2) : hex;
  if (digits.length % 2 !== 0 || /[^0-9a-fA-F]/.test(digits)) return null;
  const bytes = new Uint8Array(digits.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(digits.slice(i * 2, i * 2 + 2), 16);
  return new TextDecoder().decode(bytes);
}

function dataText(data: unknown): string | null {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new TextDecoder().decode(data);
  if (ArrayBuffer.isView(data)) return new TextDecoder().decode(data);
  return null;
}

/** Parses the cue JSON, or null when it is not a cuecast cue. */
export function parsePayload(text: string | null): CuePayload | null {
  if (!text) return null;
  const brace = text.indexOf('{');
  if (brace < 0) return null;
  try {
    const value = JSON.parse(text.slice(brace)) as CuePayload;
    if (typeof value.id !== 'string' || typeof value.kind !== 'string') return null;
    return value;
  } catch {
    return null;
  }
}

/**
 * The cue payload in one metadata TextTrack cue: an emsg ID3 TXXX (`com.cuecast.cue`) or a
 * DATERANGE `X-DATA` attribute; null for any other cue (other DATERANGE attributes included).
 */
export function payloadOf(cue: MetadataCueLike): CuePayload | null {
  const value = cue.value;
  if (!value) return null;
  if (value.key === 'TXXX' && (cue.type === undefined || cue.type === EMSG_ID3 || cue.type === 'org.id3')) {
    return parsePayload(dataText(value.data));
  }
  if (cue.type === DATERANGE && value.key === 'X-DATA') {
    const text = dataText(value.data);
    return parsePayload(text && text.startsWith('0x') ? hexToText(text) : text);
  }
  return null;
}

/** Every cue seen, by id: its payload and its place on the timeline. */
export class CueBook {
  private cues = new Map<string, MediaCue>();

  /** Adds or refines a cue; `endHint` is a player-known end (a DATERANGE's DURATION/END-DATE). */
  add(payload: CuePayload, start: number, endHint?: number): boolean {
    if (!Number.isFinite(start)) return false;
    const known = this.cues.get(payload.id);
    const planned =
      typeof payload.duration_s === 'number' && payload.duration_s >= 0 ? start + payload.duration_s : Infinity;
    let end = planned;
    if (endHint !== undefined && Number.isFinite(endHint) && endHint >= start) end = Math.min(end, endHint);
    if (known) {
      const changed = end < known.end;
      if (changed) known.end = end;
      return changed;
    }
    this.cues.set(payload.id, { payload, start, end });
    return true;
  }

  /** Forgets every cue (a new source: live → replay). */
  clear(): void {
    this.cues.clear();
  }

  all(): MediaCue[] {
    return [...this.cues.values()].sort((a, b) => a.start - b.start);
  }

  /**
   * The cue on screen at `time`: the latest product/offer/pin cue that has started and not
   * ended, not cleared by a later `clear`, and not replaced by a later cue of the same kind
   * with `end_on_next`.
   */
  onScreen(time: number): MediaCue | null {
    const cues = this.all();
    let clearedAt = -Infinity;
    for (const cue of cues) if (cue.payload.kind === 'clear' && cue.start <= time) clearedAt = cue.start;
    let best: MediaCue | null = null;
    for (let i = 0; i < cues.length; i++) {
      const cue = cues[i];
      if (cue.payload.kind === 'clear' || cue.start > time || cue.start < clearedAt) continue;
      let end = cue.end;
      if (cue.payload.end_on_next) {
        const next = cues.slice(i + 1).find((c) => c.payload.kind === cue.payload.kind);
        if (next) end = Math.min(end, next.start);
      }
      if (time >= end) continue;
      if (!best || cue.start >= best.start) best = cue;
    }
    return best;
  }
}
