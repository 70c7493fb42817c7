// The studio's view of the API (docs/api.md, /work contract): shows, catalog products, cues,
// rundowns, analytics, stream status, keys. Small helpers shared by the studio's components.

import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError } from '../shared/api';

export type { Show } from '../shared/show';

export interface Product {
  id: string;
  title: string;
  brand?: string | null;
  category?: string | null;
  price: string;
  currency: string;
  image_url?: string | null;
  url?: string | null;
  availability?: string;
}

export interface CueProduct {
  id: string;
  title?: string;
  price?: string;
  currency?: string;
  image_url?: string;
  cta?: { label: string; url: string };
}

export type CueKind = 'product' | 'pin' | 'offer' | 'clear';

export interface Cue {
  id: string;
  kind: CueKind;
  media_time_s: number;
  start_date: string;
  duration_s: number | null;
  end_on_next: boolean;
  end_date: string | null;
  ended_early: boolean;
  product: CueProduct | null;
  data: Record<string, unknown>;
  stream: string;
  session: string;
  source: string;
}

export interface RundownItem {
  id?: string;
  offset_s: number;
  kind: CueKind;
  duration_s: number | null;
  end_on_next?: boolean;
  product: CueProduct | null;
  data?: Record<string, unknown>;
}

export interface Counts {
  views?: number;
  impressions: number;
  clicks: number;
  cta_clicks: number;
  add_to_carts: number;
  purchases: number;
  units: number;
  revenue: string;
}

export interface Analytics {
  show: string;
  currency: string;
  shoppers: number;
  totals: Counts;
  cues: (Counts & { cue: string; products: (Counts & { product: string })[] })[];
  products: (Counts & { product: string })[];
}

export interface StreamStatus {
  stream: string;
  live: boolean;
  protocol: string | null;
  started_at: string | null;
  video: { codec: string; width: number; height: number; fps: number | null } | null;
  audio: { codec: string; sample_rate: number; channels: number } | null;
  ingest_bitrate_kbps: number | null;
  dropped_frames: number | null;
  renditions: { name: string; width?: number | null; height?: number | null; bandwidth: number | null; encode_lag_ms: number | null }[];
  part_publish_delay_ms: { p50: number | null; p99: number | null } | null;
  live_edge_age_ms: number | null;
}

export interface Viewers {
  now: number;
  timeline: { t: string; viewers: number }[];
}

export interface StreamKey {
  id: string;
  name: string;
  host: string;
  stream: string;
  created_at: string;
  rotated_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
  prefix: string;
  key?: string;
}

export interface Ingest {
  rtmp: string;
  rtmps: string | null;
  srt: string | null;
  srt_streamid_template: string;
}

/** The card of a catalog product as a cue (docs/cues.md `product`), only fields it may carry. */
export function cueProduct(p: Product): CueProduct {
  const card: CueProduct = { id: p.id, title: p.title.slice(0, 256) };
  if (p.price && p.currency) {
    card.price = p.price;
    card.currency = p.currency;
  }
  if (p.image_url && /^https?:\/\//.test(p.image_url)) card.image_url = p.image_url;
  if (p.url && /^https?:\/\//.test(p.url)) card.cta = { label: 'Buy now', url: p.url };
  return card;
}

/** Whether a cue is on screen now (not a clear, not ended, not past its duration). */
export function cueActive(cue: Cue, now = Date.now()): boolean {
  if (cue.kind === 'clear' || cue.ended_early) return false;
  if (cue.end_date) return Date.parse(cue.end_date) > now;
  return true;
}

export function money(amount: string | number | undefined, currency = ''): string {
  if (amount === undefined) return '—';
  const n = Number(amount);
  if (!Number.isFinite(n)) return String(amount);
  try {
    return currency ? n.toLocaleString(undefined, { style: 'currency', currency }) : n.toFixed(2);
  } catch {
    return `${n.toFixed(2)} ${currency}`;
  }
}

export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? iso
    : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function clock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  return 'Could not reach the server. Try again.';
}

export interface Loaded<T> {
  data: T | null;
  error: ApiError | null;
  loading: boolean;
  reload: () => void;
}

/**
 * GETs `path` (null: nothing) and again every `everyMs` (0: once); keeps the last good answer on a
 * failed refresh. A 404 or 403 stops the polling (a route this server does not have).
 */
export function useApi<T>(path: string | null, everyMs = 0): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(path !== null);
  const [tick, setTick] = useState(0);
  const stopped = useRef(false);
  useEffect(() => {
    stopped.current = false;
    setData(null);
    setError(null);
  }, [path]);
  useEffect(() => {
    if (!path) return;
    let cancelled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const controller = new AbortController();
    const load = async () => {
      setLoading(true);
      try {
        // Stream routes (cues, rundown, status) may take only the admin token on some servers:
        // a 401 there is not a reason to log the host out.
        const keepSession = path.startsWith('/api/streams/');
        const value = await api<T>(path, { signal: controller.signal, keepSession });
        if (cancelled) return;
        setData(value);
        setError(null);
      } catch (e) {
        if (cancelled) return;
        const err = e instanceof ApiError ? e : new ApiError(0, 'Could not reach the server.');
        setError(err);
        if (err.status === 404 || err.status === 403 || err.status === 401) stopped.current = true;
      } finally {
        if (!cancelled) setLoading(false);
      }
      if (!cancelled && everyMs > 0 && !stopped.current) timer = setTimeout(load, everyMs);
    };
    void load();
    return () => {
      cancelled = true;
      controller.abort();
      clearTimeout(timer);
    };
  }, [path, everyMs, tick]);
  return { data, error, loading, reload: () => setTick((t) => t + 1) };
}

/** Client-side navigation inside /studio. */
export function navigate(path: string): void {
  history.pushState(null, '', path);
  window.dispatchEvent(new PopStateEvent('popstate'));
}

export function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const update = () => setPath(location.pathname);
    window.addEventListener('popstate', update);
    return () => window.removeEventListener('popstate', update);
  }, []);
  return path;
}

/** An <a> that navigates without a reload (modifier clicks open normally). */
export function onLink(event: MouseEvent): void {
  const a = event.currentTarget as HTMLAnchorElement;
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  navigate(a.pathname + a.search);
}

/** Copies text; resolves whether it worked. */
export async function copy(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}
