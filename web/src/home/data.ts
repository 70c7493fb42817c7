// What the home page shows and where it comes from: the live and ended shows (`GET /api/shows`,
// src/http/shows.rs) and the shopper's upcoming shows (`GET /api/recommendations/upcoming-shows`,
// src/http/recommend.rs: best first, personal with the shopper's login token), joined with the
// scheduled shows for their covers and tags.

import { api } from '../shared/api';
import type { Show } from '../shared/show';

export type { Show } from '../shared/show';

interface ShowList {
  shows: Show[];
}

interface RecommendedShow {
  show_id: string;
  score: number;
  reason: string;
  starts_at: string | null;
  title?: string | null;
  host?: string | null;
}

interface ShowRecommendations {
  items: RecommendedShow[];
  model: string;
  fallback: boolean;
}

/** An upcoming show in the carousel. */
export interface Upcoming {
  id: string;
  title: string;
  host: string;
  startsAt: number;
  cover: string | null;
  tags: string[];
  /** Ranked for this shopper from their own history (not the anonymous list). */
  forYou: boolean;
}

export interface HomeData {
  live: Show[];
  upcoming: Upcoming[];
  /** The upcoming list is personal (the shopper has a history). */
  personal: boolean;
  replays: Show[];
}

const UPCOMING_LIMIT = 12;
const REPLAYS_LIMIT = 12;

const time = (iso: string | null | undefined): number => (iso ? Date.parse(iso) : NaN);

/** Everything the page shows, for `user` (null: anonymous). */
export async function loadHome(user: string | null, signal?: AbortSignal): Promise<HomeData> {
  const [live, scheduled, ended] = await Promise.all(
    (['live', 'scheduled', 'ended'] as const).map((state) =>
      api<ShowList>(`/api/shows?state=${state}`, { signal, auth: false }).then((r) => r.shows),
    ),
  );
  const { upcoming, personal } = await loadUpcoming(user, scheduled, signal);
  const replays = ended
    .filter((s) => s.replay)
    .sort((a, b) => (time(b.ended_at) || 0) - (time(a.ended_at) || 0))
    .slice(0, REPLAYS_LIMIT);
  live.sort((a, b) => (b.viewers ?? 0) - (a.viewers ?? 0) || (time(b.started_at) || 0) - (time(a.started_at) || 0));
  return { live, upcoming, personal, replays };
}

async function loadUpcoming(
  user: string | null,
  scheduled: Show[],
  signal?: AbortSignal,
): Promise<{ upcoming: Upcoming[]; personal: boolean }> {
  const byId = new Map(scheduled.map((s) => [s.id, s]));
  const query = new URLSearchParams({ limit: String(UPCOMING_LIMIT) });
  if (user) query.set('user', user);
  let answer: ShowRecommendations | null = null;
  try {
    answer = await api<ShowRecommendations>(`/api/recommendations/upcoming-shows?${query}`, {
      signal,
      auth: Boolean(user),
    });
  } catch (e) {
    if (signal?.aborted) throw e;
    // Recommendations unavailable (or the login expired): the scheduled shows, soonest first.
  }
  if (!answer) {
    const now = Date.now();
    const upcoming = scheduled
      .map((s) => fromShow(s, false))
      .filter((u) => u.startsAt >= now - 60_000)
      .sort((a, b) => a.startsAt - b.startsAt)
      .slice(0, UPCOMING_LIMIT);
    return { upcoming, personal: false };
  }
  const upcoming = answer.items.flatMap((item): Upcoming[] => {
    const show = byId.get(item.show_id);
    const startsAt = time(item.starts_at ?? show?.scheduled_start);
    if (!show && !item.title) return [];
    return [
      {
        id: item.show_id,
        title: show?.title ?? item.title ?? '',
        host: show?.host ?? item.host ?? '',
        startsAt: Number.isNaN(startsAt) ? Date.now() : startsAt,
        cover: show?.cover_image_url ?? null,
        tags: show?.tags ?? [],
        forYou: !answer.fallback && item.reason.startsWith('matches your'),
      },
    ];
  });
  return { upcoming, personal: !answer.fallback };
}

function fromShow(show: Show, forYou: boolean): Upcoming {
  return {
    id: show.id,
    title: show.title,
    host: show.host,
    startsAt: time(show.scheduled_start),
    cover: show.cover_image_url,
    tags: show.tags,
    forYou,
  };
}

/** `2h 03m 15s` until `ms` from now (`ms` ≤ 0: null, it is starting). */
export function countdown(ms: number): string | null {
  if (ms <= 0) return null;
  const s = Math.floor(ms / 1000);
  const days = Math.floor(s / 86400);
  const hours = Math.floor((s % 86400) / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const seconds = s % 60;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (days > 0) return `${days}d ${hours}h ${pad(minutes)}m`;
  if (hours > 0) return `${hours}h ${pad(minutes)}m ${pad(seconds)}s`;
  return `${minutes}m ${pad(seconds)}s`;
}

/** The same for a screen reader: `2 hours 3 minutes`. */
export function countdownSpoken(ms: number): string {
  if (ms <= 0) return 'starting now';
  const minutesTotal = Math.ceil(ms / 60000);
  const days = Math.floor(minutesTotal / 1440);
  const hours = Math.floor((minutesTotal % 1440) / 60);
  const minutes = minutesTotal % 60;
  const part = (n: number, unit: string) => (n ? `${n} ${unit}${n === 1 ? '' : 's'}` : '');
  return `in ${[part(days, 'day'), part(hours, 'hour'), part(minutes, 'minute')].filter(Boolean).join(' ')}`;
}

const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short' });
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });

/** `Today, 19:00` / `Tomorrow, 19:00` / `Tue 8 Dec, 19:00`. */
export function startLabel(at: number, now = Date.now()): string {
  const day = new Date(at);
  const today = new Date(now);
  const midnight = (d: Date) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const days = Math.round((midnight(day) - midnight(today)) / 86_400_000);
  const name = days === 0 ? 'Today' : days === 1 ? 'Tomorrow' : dayFormat.format(day);
  return `${name}, ${timeFormat.format(day)}`;
}

/** `Aired 5 Dec · 42 min`. */
export function replayLabel(show: Show): string {
  const started = time(show.started_at);
  const ended = time(show.ended_at);
  const parts: string[] = [];
  if (!Number.isNaN(ended)) parts.push(`Aired ${dayFormat.format(new Date(ended))}`);
  if (!Number.isNaN(started) && !Number.isNaN(ended) && ended > started) {
    const minutes = Math.max(1, Math.round((ended - started) / 60000));
    parts.push(minutes >= 60 ? `${Math.floor(minutes / 60)} h ${minutes % 60} min` : `${minutes} min`);
  }
  return parts.join(' · ');
}
