// One show in the studio (/studio/shows/{id}): Setup (edit, schedule, products, rundown),
// Live (status, preview, product controls, rundown progress, chat, live sales) and After
// (recording and replay, per-cue sales, viewers and sales chart, chat export). The tab opens
// on the show's state; the show is reloaded every 5 s so a go-live switches it.

import { useEffect, useState } from 'preact/hooks';
import { session } from '../shared/session';
import { Analytics, Cue, Show, Viewers, errorText, onLink, useApi, when } from './model';
import { ShowForm, StateBadge } from './shows';
import { RundownEditor } from './rundown';
import { LivePanel } from './live';
import { SalesTable } from './sales';
import { TimelineChart } from './chart';

type Tab = 'setup' | 'live' | 'after';
const TABS: { id: Tab; label: string }[] = [
  { id: 'setup', label: 'Before the show' },
  { id: 'live', label: 'Live' },
  { id: 'after', label: 'After the show' },
];

export function ShowPage({ id }: { id: string }) {
  const loaded = useApi<Show>(`/api/shows/${encodeURIComponent(id)}`, 5000);
  const [show, setShow] = useState<Show | null>(null);
  const [tab, setTab] = useState<Tab | null>(null);
  useEffect(() => {
    if (loaded.data) setShow(loaded.data);
  }, [loaded.data]);
  const state = show?.state;
  useEffect(() => {
    if (state) setTab(state === 'live' ? 'live' : state === 'ended' ? 'after' : 'setup');
  }, [state]);
  const user = session.claims()?.sub ?? '';

  if (!show) {
    return (
      <section>
        <p>
          <a href="/studio" onClick={onLink}>
            ← My shows
          </a>
        </p>
        {loaded.error ? (
          <p class="form-error" role="alert">
            {loaded.error.status === 404 ? 'No such show.' : loaded.error.message}
          </p>
        ) : (
          <p class="muted">Loading the show…</p>
        )}
      </section>
    );
  }
  if (show.host !== user) {
    return (
      <section>
        <p>
          <a href="/studio" onClick={onLink}>
            ← My shows
          </a>
        </p>
        <h1>{show.title}</h1>
        <p class="form-error" role="alert">
          This show belongs to another host. You can only run your own shows.
        </p>
      </section>
    );
  }
  const current = tab ?? 'setup';
  return (
    <section class="show-page" aria-labelledby="show-title">
      <p class="crumbs">
        <a href="/studio" onClick={onLink}>
          ← My shows
        </a>
      </p>
      <div class="section-head">
        <h1 id="show-title">{show.title}</h1>
        <StateBadge state={show.state} />
        <span class="muted">
          {show.state === 'live' ? `live since ${when(show.started_at)}` : show.state === 'ended' ? `ended ${when(show.ended_at)}` : `starts ${when(show.scheduled_start)}`} · stream{' '}
          <code>{show.stream}</code>
        </span>
        <a class="button" href={`/shows/${encodeURIComponent(show.id)}`} target="_blank" rel="noopener">
          Viewer page
        </a>
      </div>
      <div class="tabs" role="tablist" aria-label="Show phases">
        {TABS.map((t) => (
          <button
            key={t.id}
            type="button"
            role="tab"
            id={`tab-${t.id}`}
            aria-selected={current === t.id}
            aria-controls={`panel-${t.id}`}
            tabIndex={current === t.id ? 0 : -1}
            class="tab"
            onClick={() => setTab(t.id)}
            onKeyDown={(e) => {
              const i = TABS.findIndex((x) => x.id === current);
              const by = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
              if (!by) return;
              const next = TABS[(i + by + TABS.length) % TABS.length].id;
              setTab(next);
              document.getElementById(`tab-${next}`)?.focus();
            }}
          >
            {t.label}
            {t.id === 'live' && show.state === 'live' ? <span class="dot" aria-hidden="true" /> : null}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`panel-${current}`} aria-labelledby={`tab-${current}`} class="tab-panel">
        {current === 'setup' ? (
          <div class="setup">
            <section aria-labelledby="edit-title" class="card">
              <h2 id="edit-title">Show details</h2>
              <ShowForm show={show} user={user} onSaved={setShow} />
            </section>
            <RundownEditor show={show} />
          </div>
        ) : null}
        {current === 'live' ? <LivePanel show={show} /> : null}
        {current === 'after' ? <AfterPanel show={show} /> : null}
      </div>
    </section>
  );
}

function AfterPanel({ show }: { show: Show }) {
  const base = `/api/shows/${encodeURIComponent(show.id)}`;
  const analytics = useApi<Analytics>(`${base}/analytics`);
  const viewers = useApi<Viewers>(`${base}/viewers`);
  const cues = useApi<{ cues: Cue[] }>(`/api/streams/${encodeURIComponent(show.stream)}/cues`);
  const recordings = useApi<{ items: Recording[] }>(`/api/recordings?show=${encodeURIComponent(show.id)}`);
  const showCues = filterShowCues(cues.data?.cues ?? [], show);
  return (
    <div class="after-layout">
      <section class="card" aria-labelledby="recording-title">
        <h2 id="recording-title">Recording and replay</h2>
        {show.state !== 'ended' ? <p class="muted">The recording is ready once the show has ended.</p> : null}
        {show.replay ? (
          <p class="replay-links">
            <a class="button primary" href={`/shows/${encodeURIComponent(show.id)}`}>
              Open the replay
            </a>
            <a href={show.replay.playlist}>Replay playlist (HLS)</a>
          </p>
        ) : null}
        {(recordings.data?.items ?? []).length ? (
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Recordings">
            <table class="data">
              <thead>
                <tr>
                  <th scope="col">Recording</th>
                  <th scope="col">Started</th>
                  <th scope="col">Length</th>
                  <th scope="col">State</th>
                  <th scope="col">Size</th>
                </tr>
              </thead>
              <tbody>
                {recordings.data!.items.map((r) => (
                  <tr key={r.id}>
                    <th scope="row">
                      <a href={r.playlist}>{r.id}</a>
                    </th>
                    <td>{when(r.started_at)}</td>
                    <td class="num">{r.duration_s != null ? `${Math.round(r.duration_s)} s` : '—'}</td>
                    <td>{r.state}</td>
                    <td class="num">{r.bytes != null ? `${(r.bytes / 1e6).toFixed(1)} MB` : '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : show.state === 'ended' && recordings.data ? (
          <p class="muted">No recording of this show.</p>
        ) : null}
      </section>
      <section class="card" aria-labelledby="after-sales-title">
        <h2 id="after-sales-title">Sales per product moment</h2>
        <SalesTable analytics={analytics.data} cues={showCues} error={analytics.error?.message} />
      </section>
      <section class="card" aria-labelledby="timeline-title">
        <h2 id="timeline-title">Viewers and sales over the show</h2>
        <TimelineChart viewers={viewers.data} cues={showCues} analytics={analytics.data} show={show} />
      </section>
      <section class="card" aria-labelledby="export-title">
        <h2 id="export-title">Chat export</h2>
        <ChatExport show={show} />
      </section>
    </div>
  );
}

interface Recording {
  id: string;
  started_at: string;
  duration_s: number | null;
  playlist: string;
  state: string;
  bytes: number | null;
}

/** The cues of this show's sessions: from its start on, before its end. */
export function filterShowCues(cues: Cue[], show: Show): Cue[] {
  const from = show.started_at ? Date.parse(show.started_at) - 5000 : Number.NEGATIVE_INFINITY;
  const to = show.ended_at ? Date.parse(show.ended_at) + 5000 : Number.POSITIVE_INFINITY;
  return cues.filter((c) => {
    const t = Date.parse(c.start_date);
    return t >= from && t <= to;
  });
}

function ChatExport({ show }: { show: Show }) {
  const [status, setStatus] = useState('');
  const [busy, setBusy] = useState(false);
  const download = async () => {
    setBusy(true);
    setStatus('Preparing the file…');
    try {
      const token = session.token();
      const response = await fetch(`/api/shows/${encodeURIComponent(show.id)}/chat.csv`, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
      if (!response.ok) {
        let message = `${response.status}`;
        try {
          message = ((await response.json()) as { error?: string }).error ?? message;
        } catch {
          /* not JSON */
        }
        throw new Error(response.status === 404 ? 'Chat export is not available on this server.' : message);
      }
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = `${show.id}-chat.csv`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      setStatus(`Downloaded ${show.id}-chat.csv (${(blob.size / 1024).toFixed(1)} KB).`);
    } catch (e) {
      setStatus(e instanceof Error ? e.message : errorText(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <p>
      <button type="button" class="button" disabled={busy} onClick={download}>
        Download chat (CSV)
      </button>{' '}
      <span role="status">{status}</span>
    </p>
  );
}
