// Inline SVG charts (no chart library): viewers over time (a line), and sales per product moment
// as bars at the cue's time.

import { Analytics, Cue, Show, Viewers, money } from './model';

const W = 1000;
const H = 220;
const PAD = { l: 40, r: 48, t: 12, b: 24 };

/** A small sparkline-style chart of viewers per minute. */
export function ViewersChart({ viewers }: { viewers: Viewers | null }) {
  const points = viewers?.timeline ?? [];
  if (points.length === 0) return <p class="muted chart-empty">No viewer data yet.</p>;
  const max = Math.max(1, ...points.map((p) => p.viewers));
  const w = 280;
  const h = 72;
  const x = (i: number) => (points.length === 1 ? w / 2 : (i / (points.length - 1)) * (w - 8) + 4);
  const y = (v: number) => h - 6 - (v / max) * (h - 14);
  const path = points.map((p, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(p.viewers).toFixed(1)}`).join(' ');
  const last = points[points.length - 1];
  return (
    <svg class="spark" viewBox={`0 0 ${w} ${h}`} role="img" aria-label={`Viewers per minute: ${points.map((p) => p.viewers).join(', ')}; peak ${max}`}>
      <line x1="0" x2={w} y1={h - 6} y2={h - 6} class="axis" />
      <path d={path} class="line" />
      <circle cx={x(points.length - 1)} cy={y(last.viewers)} r="3.5" class="dot" />
      <text x="4" y="10" class="label">
        peak {max}
      </text>
    </svg>
  );
}

/** Viewers (line, left axis) and revenue per cue (bars, right axis) over the show's time. */
export function TimelineChart({
  viewers,
  cues,
  analytics,
  show,
}: {
  viewers: Viewers | null;
  cues: Cue[];
  analytics: Analytics | null;
  show: Show;
}) {
  const points = (viewers?.timeline ?? []).map((p) => ({ t: Date.parse(p.t), v: p.viewers }));
  // Bars: revenue per product moment; CTA clicks when nothing sold yet.
  const byRevenue = (analytics?.cues ?? []).some((c) => Number(c.revenue) > 0);
  const revenue = new Map((analytics?.cues ?? []).map((c) => [c.cue, byRevenue ? Number(c.revenue) || 0 : c.cta_clicks]));
  const bars = cues.filter((c) => c.kind !== 'clear').map((c) => ({ t: Date.parse(c.start_date), r: revenue.get(c.id) ?? 0, cue: c }));
  const times = [...points.map((p) => p.t), ...bars.map((b) => b.t)];
  if (show.started_at) times.push(Date.parse(show.started_at));
  if (show.ended_at) times.push(Date.parse(show.ended_at));
  if (points.length === 0 && bars.length === 0) return <p class="muted chart-empty">Nothing to chart yet.</p>;
  const t0 = Math.min(...times);
  const t1 = Math.max(t0 + 30_000, ...times);
  const maxV = Math.max(1, ...points.map((p) => p.v));
  const maxR = Math.max(1, ...bars.map((b) => b.r));
  const x = (t: number) => PAD.l + ((t - t0) / (t1 - t0)) * (W - PAD.l - PAD.r);
  const yV = (v: number) => H - PAD.b - (v / maxV) * (H - PAD.t - PAD.b);
  const yR = (r: number) => H - PAD.b - (r / maxR) * (H - PAD.t - PAD.b);
  const line = points.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${yV(p.v).toFixed(1)}`).join(' ');
  const minutes = Math.max(1, Math.round((t1 - t0) / 60_000));
  const currency = analytics?.currency ?? '';
  const fmt = (v: number) => (byRevenue ? money(v, currency) : `${v} clicks`);
  const summary =
    `Over ${minutes} minutes: viewers peaked at ${maxV}; ` +
    bars.map((b) => `${b.cue.product?.title ?? b.cue.id} ${fmt(b.r)}`).join(', ');
  return (
    <figure class="timeline">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={summary}>
        <line x1={PAD.l} x2={W - PAD.r} y1={H - PAD.b} y2={H - PAD.b} class="axis" />
        {points.length ? (
          <text x={PAD.l - 6} y={PAD.t + 8} class="label" text-anchor="end">
            {maxV}
          </text>
        ) : null}
        <text x={W - PAD.r + 6} y={PAD.t + 8} class="label">
          {fmt(maxR)}
        </text>
        <text x={PAD.l} y={H - 6} class="label">
          0:00
        </text>
        <text x={W - PAD.r} y={H - 6} class="label" text-anchor="end">
          +{minutes} min
        </text>
        {bars.map((b) => (
          <rect key={b.cue.id} x={x(b.t) - 6} width="12" y={yR(b.r)} height={Math.max(1, H - PAD.b - yR(b.r))} class="bar" />
        ))}
        {points.length ? <path d={line} class="line" /> : null}
      </svg>
      <figcaption class="legend">
        <span class="key line-key" aria-hidden="true" /> viewers per minute <span class="key bar-key" aria-hidden="true" />{' '}
        {byRevenue ? 'revenue' : 'CTA clicks'} per product moment
      </figcaption>
    </figure>
  );
}
