// During the show: stream status, a muted preview, the product controls (Show now, Pin in chat,
// Offer, Sold out, Clear), the rundown's progress, chat with moderation, and live sales per
// product moment (refreshed every 2 s).

import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError } from '../shared/api';
import { Analytics, Cue, Product, RundownItem, Show, StreamStatus, Viewers, clock, cueActive, cueProduct, errorText, money, useApi } from './model';
import { ProductThumb } from './shows';
import { useShowProducts } from './rundown';
import { SalesTable } from './sales';
import { ViewersChart } from './chart';
import { ChatPanel, useChat } from './chat';
import { filterShowCues } from './show';

export function LivePanel({ show }: { show: Show }) {
  const stream = encodeURIComponent(show.stream);
  const base = `/api/shows/${encodeURIComponent(show.id)}`;
  const cues = useApi<{ cues: Cue[] }>(`/api/streams/${stream}/cues`, 2000);
  // Polled every second so a sale shows within 2 s of happening.
  const analytics = useApi<Analytics>(`${base}/analytics`, 1000);
  const chat = useChat(show.stream);
  const showCues = filterShowCues(cues.data?.cues ?? [], show);
  return (
    <div class="live-layout">
      <div class="live-side">
        <Preview show={show} />
        <StatusPanel show={show} />
        <RundownProgress show={show} cues={showCues} />
      </div>
      <div class="live-center">
        <ProductControls show={show} cues={showCues} cuesError={cues.error} reload={cues.reload} chat={chat} />
        <section class="card" aria-labelledby="live-sales-title">
          <h2 id="live-sales-title">Live sales per product moment</h2>
          <SalesTable analytics={analytics.data} cues={showCues} error={analytics.error?.message} live />
        </section>
      </div>
      <ChatPanel chat={chat} />
    </div>
  );
}

function Stat({ label, value, id }: { label: string; value: preact.ComponentChildren; id?: string }) {
  return (
    <div class="stat" id={id}>
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  );
}

export function StatusPanel({ show }: { show: Show }) {
  const status = useApi<StreamStatus>(`/api/streams/${encodeURIComponent(show.stream)}/status`, 2000);
  const viewers = useApi<Viewers>(`/api/shows/${encodeURIComponent(show.id)}/viewers`, 10000);
  const s = status.data;
  const live = s?.live ?? show.state === 'live';
  const video = s?.video;
  const audio = s?.audio;
  return (
    <section class="card status-panel" aria-labelledby="status-title">
      <div class="section-head">
        <h2 id="status-title">Stream</h2>
        <span class={`badge ${live ? 'live' : 'offline'}`} id="stream-state">
          {live ? 'LIVE' : 'offline'}
        </span>
      </div>
      {status.error && !s ? (
        <p class="muted">
          {status.error.status === 404 ? 'Detailed stream status is not available on this server.' : status.error.message}
        </p>
      ) : null}
      <dl class="stats">
        <Stat label="Protocol" id="stat-protocol" value={s?.protocol?.toUpperCase() ?? '—'} />
        <Stat label="Video" id="stat-video" value={video ? `${video.codec} ${video.width}x${video.height}` : '—'} />
        <Stat label="Frame rate" id="stat-fps" value={video?.fps != null ? `${Math.round(video.fps * 10) / 10} fps` : '—'} />
        <Stat label="Audio" value={audio ? `${audio.codec} ${audio.sample_rate / 1000} kHz ${audio.channels === 2 ? 'stereo' : `${audio.channels} ch`}` : '—'} />
        <Stat label="Bitrate" value={s?.ingest_bitrate_kbps != null ? `${Math.round(s.ingest_bitrate_kbps)} kb/s` : '—'} />
        <Stat label="Dropped frames" value={s?.dropped_frames ?? '—'} />
        <Stat label="Live latency" value={s?.live_edge_age_ms != null ? `${(s.live_edge_age_ms / 1000).toFixed(1)} s` : '—'} />
        <Stat
          label="Part delay p50 / p99"
          value={s?.part_publish_delay_ms?.p50 != null ? `${Math.round(s.part_publish_delay_ms.p50)} / ${Math.round(s.part_publish_delay_ms.p99 ?? 0)} ms` : '—'}
        />
        <Stat label="Viewers now" id="stat-viewers" value={viewers.data?.now ?? show.viewers ?? '—'} />
      </dl>
      {s?.renditions?.length ? (
        <>
          <h3 class="mini-title" id="renditions-title">
            Renditions
          </h3>
          <ul class="renditions" aria-labelledby="renditions-title">
            {s.renditions.map((r) => (
              <li key={r.name}>
                <strong>{r.name}</strong> {r.width ? `${r.width}x${r.height}` : 'audio'}
                {r.bandwidth != null ? ` · ${Math.round(r.bandwidth / 1000)} kb/s` : ''}
                {r.encode_lag_ms != null ? ` · lag ${Math.round(r.encode_lag_ms)} ms` : ''}
              </li>
            ))}
          </ul>
        </>
      ) : null}
      <h3 class="mini-title">Viewers per minute</h3>
      <ViewersChart viewers={viewers.data} />
    </section>
  );
}

function Preview({ show }: { show: Show }) {
  const video = useRef<HTMLVideoElement>(null);
  const [note, setNote] = useState('');
  useEffect(() => {
    const element = video.current;
    if (!element || show.state !== 'live') return;
    let hls: import('hls.js').default | null = null;
    let cancelled = false;
    let retry: ReturnType<typeof setTimeout> | undefined;
    // hls.js is loaded only when a preview plays (its own chunk).
    void import('hls.js').then(({ default: Hls }) => {
      if (cancelled) return;
      if (!Hls.isSupported()) {
        if (element.canPlayType('application/vnd.apple.mpegurl')) element.src = show.playback_url;
        element.play().catch(() => {});
        return;
      }
      const start = () => {
        if (cancelled) return;
        hls = new Hls({ lowLatencyMode: true, liveSyncDurationCount: 2 });
        hls.on(Hls.Events.ERROR, (_e, data) => {
          if (!data.fatal) return;
          // The playlist may not exist yet (the first segment is being made): start over.
          setNote('Waiting for the stream…');
          hls?.destroy();
          hls = null;
          retry = setTimeout(start, 2000);
        });
        hls.on(Hls.Events.FRAG_LOADED, () => setNote(''));
        hls.loadSource(show.playback_url);
        hls.attachMedia(element);
        element.play().catch(() => {});
      };
      start();
    });
    return () => {
      cancelled = true;
      clearTimeout(retry);
      hls?.destroy();
    };
  }, [show.playback_url, show.state]);
  return (
    <section class="card preview" aria-labelledby="preview-title">
      <h2 id="preview-title">Preview</h2>
      <div class="preview-frame">
        <video ref={video} muted playsInline autoplay aria-label="Muted preview of your stream" />
        {show.state !== 'live' ? <p class="preview-off">The preview starts when the show is live.</p> : null}
      </div>
      <p class="hint" role="status">
        {note}
      </p>
    </section>
  );
}

const OFFER_MINUTES = [1, 5, 10, 15, 30];

function ProductControls({
  show,
  cues,
  cuesError,
  reload,
  chat,
}: {
  show: Show;
  cues: Cue[];
  cuesError: ApiError | null;
  reload: () => void;
  chat: ReturnType<typeof useChat>;
}) {
  const products = useShowProducts(show);
  const [announce, setAnnounce] = useState('');
  const [busy, setBusy] = useState('');
  const [offerMinutes, setOfferMinutes] = useState(5);
  const [, setNow] = useState(0);
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  const path = `/api/streams/${encodeURIComponent(show.stream)}/cues`;
  const active = cues.filter((c) => cueActive(c));

  const run = async (label: string, action: () => Promise<string>) => {
    setBusy(label);
    try {
      setAnnounce(await action());
      reload();
    } catch (e) {
      setAnnounce(`${label} failed: ${errorText(e)}`);
    } finally {
      setBusy('');
    }
  };
  const post = (body: Record<string, unknown>) => api<Cue>(path, { body: { at: 'now', ...body }, keepSession: true });
  const end = (cue: Cue) => api<Cue>(`${path}/${encodeURIComponent(cue.id)}/end`, { method: 'POST', keepSession: true });

  const showNow = (p: Product) =>
    run(`Show ${p.title}`, async () => {
      await post({ kind: 'product', product: cueProduct(p) });
      return `${p.title} is on screen.`;
    });
  const offer = (p: Product) =>
    run(`Offer ${p.title}`, async () => {
      const ends = new Date(Date.now() + offerMinutes * 60_000).toISOString();
      await post({ kind: 'offer', duration_s: offerMinutes * 60, product: cueProduct(p), data: { ends_at: ends } });
      return `Offer on ${p.title} for ${offerMinutes} min.`;
    });
  const soldOut = (p: Product) =>
    run(`Sold out ${p.title}`, async () => {
      for (const c of active.filter((c) => c.product?.id === p.id)) await end(c).catch(() => {});
      await post({ kind: 'product', duration_s: 10, product: cueProduct(p), data: { sold_out: true } });
      return `${p.title} marked sold out.`;
    });
  const clear = (p?: Product) =>
    run('Clear', async () => {
      const ending = active.filter((c) => !p || c.product?.id === p.id);
      if (ending.length === 0 && !p) {
        await post({ kind: 'clear' });
        return 'Cleared the screen.';
      }
      for (const c of ending) await end(c);
      return p ? `${p.title} cleared.` : `Cleared ${ending.length} cue${ending.length === 1 ? '' : 's'}.`;
    });
  const pin = (p: Product) =>
    run(`Pin ${p.title}`, async () => {
      const id = await chat.postProduct(p);
      chat.send({ type: 'pin', id });
      return `${p.title} is pinned in chat.`;
    });

  return (
    <section class="card controls" aria-labelledby="controls-title">
      <div class="section-head">
        <h2 id="controls-title">Products</h2>
        <label class="inline" for="offer-minutes">
          Offer length
        </label>
        <select id="offer-minutes" value={offerMinutes} onChange={(e) => setOfferMinutes(Number(e.currentTarget.value))}>
          {OFFER_MINUTES.map((m) => (
            <option key={m} value={m}>
              {m} min
            </option>
          ))}
        </select>
        <button type="button" class="button" disabled={!!busy || show.state !== 'live'} onClick={() => clear()}>
          Clear all
        </button>
      </div>
      {cuesError ? (
        <p class="form-error">
          {cuesError.status === 401 || cuesError.status === 403
            ? 'This server does not let your account post cues on this stream.'
            : `Cues: ${cuesError.message}`}
        </p>
      ) : null}
      {show.state !== 'live' ? <p class="muted">The buttons work once the show is live (your encoder is publishing).</p> : null}
      <div class="table-wrap" tabIndex={0} role="region" aria-label="Products">
        <table class="data product-controls">
          <thead>
            <tr>
              <th scope="col">Product</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {products.map((p) => {
              const on = active.filter((c) => c.product?.id === p.id);
              const offerCue = on.find((c) => c.kind === 'offer');
              const disabled = !!busy || show.state !== 'live';
              return (
                <tr key={p.id} data-product={p.id} class={on.length ? 'on-air' : undefined}>
                  <th scope="row">
                    <span class="product-cell">
                      <ProductThumb product={p} />
                      <span>
                        {p.title}
                        <small>{money(p.price, p.currency)}</small>
                        {on.length ? (
                          <span class="badge live on-screen">
                            {offerCue?.end_date
                              ? `offer ends in ${clock((Date.parse(offerCue.end_date) - Date.now()) / 1000)}`
                              : on.some((c) => c.data?.sold_out)
                                ? 'sold out'
                                : 'on screen'}
                          </span>
                        ) : null}
                      </span>
                    </span>
                  </th>
                  <td>
                    <div class="row-actions cue-actions">
                      <button type="button" class="button primary" disabled={disabled} onClick={() => showNow(p)} aria-label={`Show now: ${p.title}`}>
                        Show now
                      </button>
                      <button type="button" class="button" disabled={disabled || !chat.canPost} onClick={() => pin(p)} aria-label={`Pin in chat: ${p.title}`}>
                        Pin in chat
                      </button>
                      <button type="button" class="button" disabled={disabled} onClick={() => offer(p)} aria-label={`Offer: ${p.title}`}>
                        Offer
                      </button>
                      <button type="button" class="button" disabled={disabled} onClick={() => soldOut(p)} aria-label={`Sold out: ${p.title}`}>
                        Sold out
                      </button>
                      <button type="button" class="button" disabled={disabled || on.length === 0} onClick={() => clear(p)} aria-label={`Clear: ${p.title}`}>
                        Clear
                      </button>
                    </div>
                  </td>
                </tr>
              );
            })}
            {products.length === 0 ? (
              <tr>
                <td colSpan={2} class="muted">
                  This show has no products: add them under “Before the show”.
                </td>
              </tr>
            ) : null}
          </tbody>
        </table>
      </div>
      <p class="announce" role="status" id="controls-status">
        {announce}
      </p>
    </section>
  );
}

function RundownProgress({ show, cues }: { show: Show; cues: Cue[] }) {
  const rundown = useApi<{ items: RundownItem[] }>(`/api/streams/${encodeURIComponent(show.stream)}/rundown`, 5000);
  const fired = cues.filter((c) => c.source === 'rundown');
  const next = rundown.data?.items ?? [];
  const session = cues.length ? cues[cues.length - 1] : null;
  return (
    <section class="card" aria-labelledby="progress-title">
      <h2 id="progress-title">Rundown</h2>
      {rundown.error ? <p class="muted">{rundown.error.status === 401 || rundown.error.status === 403 ? 'The rundown of this stream is not yours to read.' : rundown.error.message}</p> : null}
      <ol class="rundown-progress">
        {fired.map((c) => (
          <li key={c.id} class="fired">
            <span class="badge">fired</span> {clock(c.media_time_s)} · {c.kind} {c.product?.title ?? c.product?.id ?? ''}
          </li>
        ))}
        {next.map((item, i) => (
          <li key={item.id ?? i} class={i === 0 ? 'next' : undefined}>
            <span class="badge">{i === 0 ? 'next' : 'later'}</span> {clock(item.offset_s)} · {item.kind} {item.product?.title ?? item.product?.id ?? ''}
            {i === 0 && session ? <span class="muted"> (in {clock(item.offset_s - (session.media_time_s + (Date.now() - Date.parse(session.start_date)) / 1000))})</span> : null}
          </li>
        ))}
        {fired.length + next.length === 0 ? <li class="muted">No rundown for this show.</li> : null}
      </ol>
    </section>
  );
}
