// Stream keys (/studio/keys): create, rename, rotate, revoke (`/api/keys`); the key itself is
// shown once, with a copy button. The OBS settings to copy (`/api/ingest`) and a "test your
// stream" light that turns green when media arrives (`/api/streams/{stream}/status`).

import { useEffect, useState } from 'preact/hooks';
import { api } from '../shared/api';
import { Ingest, StreamKey, StreamStatus, copy, errorText, useApi, when } from './model';

function CopyField({ id, label, value, secret }: { id: string; label: string; value: string; secret?: boolean }) {
  const [done, setDone] = useState('');
  return (
    <div class="copy-field">
      <label for={id}>{label}</label>
      <div class="copy-row">
        <input id={id} readOnly value={value} type={secret ? 'password' : 'text'} onFocus={(e) => e.currentTarget.select()} />
        <button
          type="button"
          class="button"
          aria-label={`Copy ${label}`}
          onClick={async () => setDone((await copy(value)) ? 'Copied.' : 'Select the text and copy it.')}
        >
          Copy
        </button>
      </div>
      <span class="hint" role="status">
        {done}
      </span>
    </div>
  );
}

export function KeysPage() {
  const keys = useApi<{ items: StreamKey[] }>('/api/keys');
  const ingest = useApi<Ingest>('/api/ingest');
  const [items, setItems] = useState<StreamKey[]>([]);
  const [name, setName] = useState('');
  const [stream, setStream] = useState('');
  const [error, setError] = useState('');
  const [status, setStatus] = useState('');
  const [revealed, setRevealed] = useState<StreamKey | null>(null);
  const [test, setTest] = useState<string>('');
  useEffect(() => {
    if (keys.data) setItems(keys.data.items);
  }, [keys.data]);
  const active = items.filter((k) => !k.revoked_at);
  useEffect(() => {
    if (!test && active.length) setTest(active[0].stream);
  }, [active.map((k) => k.stream).join()]);

  const create = async (event: Event) => {
    event.preventDefault();
    setError('');
    try {
      const body: Record<string, string> = { name: name.trim() };
      if (stream.trim()) body.stream = stream.trim();
      const key = await api<StreamKey>('/api/keys', { body, keepSession: true });
      setItems((all) => [...all, key]);
      setRevealed(key);
      setTest(key.stream);
      setName('');
      setStream('');
      setStatus(`Key “${key.name}” created. Copy it now: it is shown only once.`);
    } catch (e) {
      setError(errorText(e));
    }
  };
  const rotate = async (k: StreamKey) => {
    if (!confirm(`Rotate “${k.name}”? The old key stops working; update your encoder.`)) return;
    try {
      const key = await api<StreamKey>(`/api/keys/${encodeURIComponent(k.id)}/rotate`, { method: 'POST', keepSession: true });
      setItems((all) => all.map((x) => (x.id === k.id ? key : x)));
      setRevealed(key);
      setStatus(`Key “${k.name}” rotated. Copy the new key now.`);
    } catch (e) {
      setStatus(errorText(e));
    }
  };
  const revoke = async (k: StreamKey) => {
    if (!confirm(`Revoke “${k.name}”? An encoder using it can no longer publish.`)) return;
    try {
      await api(`/api/keys/${encodeURIComponent(k.id)}`, { method: 'DELETE', keepSession: true });
      setItems((all) => all.map((x) => (x.id === k.id ? { ...x, revoked_at: new Date().toISOString() } : x)));
      if (revealed?.id === k.id) setRevealed(null);
      setStatus(`Key “${k.name}” revoked.`);
    } catch (e) {
      setStatus(errorText(e));
    }
  };
  const rename = async (k: StreamKey) => {
    const next = prompt('New name for this key', k.name)?.trim();
    if (!next || next === k.name) return;
    try {
      const key = await api<StreamKey>(`/api/keys/${encodeURIComponent(k.id)}`, { method: 'PATCH', body: { name: next }, keepSession: true });
      setItems((all) => all.map((x) => (x.id === k.id ? { ...x, ...key } : x)));
      setStatus(`Renamed to “${next}”.`);
    } catch (e) {
      setStatus(errorText(e));
    }
  };

  const unavailable = keys.error?.status === 404;
  const ing = ingest.data;
  const srtUrl = (key: string) =>
    ing?.srt ? `${ing.srt}?streamid=${ing.srt_streamid_template.replace('{key}', key)}` : '';
  const shown = revealed?.key ?? '';
  return (
    <section aria-labelledby="keys-title" class="keys-page">
      <h1 id="keys-title">Stream keys</h1>
      <p class="hint">
        A stream key lets your encoder (OBS, a phone app) publish one of your streams. Keep it secret: anyone with it
        can go live as you.
      </p>
      {unavailable ? (
        <p class="muted">
          Stream keys are not managed on this server yet: publish with the key the operator gave you (its stream name
          is the one to pick for your shows).
        </p>
      ) : (
        <div class="keys-grid">
          <section class="card" aria-labelledby="your-keys-title">
            <h2 id="your-keys-title">Your keys</h2>
            {keys.error && !unavailable ? <p class="form-error">{keys.error.message}</p> : null}
            <div class="table-wrap" tabIndex={0} role="region" aria-label="Your keys">
              <table class="data keys-table">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Stream</th>
                    <th scope="col">Key</th>
                    <th scope="col">Last used</th>
                    <th scope="col">Actions</th>
                  </tr>
                </thead>
                <tbody>
                  {items.map((k) => (
                    <tr key={k.id} data-key={k.id} class={k.revoked_at ? 'revoked' : undefined}>
                      <th scope="row">{k.name}</th>
                      <td>
                        <code>{k.stream}</code>
                      </td>
                      <td>
                        <code>{k.prefix}…</code>
                      </td>
                      <td>{k.revoked_at ? `revoked ${when(k.revoked_at)}` : when(k.last_used_at)}</td>
                      <td>
                        {k.revoked_at ? null : (
                          <div class="row-actions">
                            <button type="button" class="button small" aria-label={`Rename ${k.name}`} onClick={() => rename(k)}>
                              Rename
                            </button>
                            <button type="button" class="button small" aria-label={`Rotate ${k.name}`} onClick={() => rotate(k)}>
                              Rotate
                            </button>
                            <button type="button" class="button small danger" aria-label={`Revoke ${k.name}`} onClick={() => revoke(k)}>
                              Revoke
                            </button>
                          </div>
                        )}
                      </td>
                    </tr>
                  ))}
                  {keys.data && items.length === 0 ? (
                    <tr>
                      <td colSpan={5} class="muted">
                        No keys yet.
                      </td>
                    </tr>
                  ) : null}
                </tbody>
              </table>
            </div>
            <form class="key-form" onSubmit={create}>
              <div>
                <label for="key-name">Name</label>
                <input id="key-name" required maxLength={64} placeholder="Studio OBS" value={name} onInput={(e) => setName(e.currentTarget.value)} />
              </div>
              <div>
                <label for="key-stream">Stream (optional)</label>
                <input id="key-stream" maxLength={64} placeholder="derived from the name" value={stream} onInput={(e) => setStream(e.currentTarget.value)} />
              </div>
              <button type="submit" class="button primary">
                Create key
              </button>
            </form>
            <p class="form-error" role="alert">
              {error}
            </p>
            <p role="status" class="saved" id="keys-status">
              {status}
            </p>
          </section>
          <section class="card" aria-labelledby="obs-title">
            <h2 id="obs-title">OBS settings</h2>
            <p class="hint">
              In OBS: Settings → Stream → Service “Custom…”, then paste the server and the stream key.
            </p>
            {revealed ? (
              <div class="revealed" id="revealed-key">
                <CopyField id="obs-key" label={`Stream key “${revealed.name}” (shown once)`} value={shown} />
              </div>
            ) : (
              <p class="muted">Create or rotate a key to see it here (keys are stored hashed and shown only once).</p>
            )}
            {ing ? (
              <>
                <CopyField id="obs-rtmp" label="Server (RTMP)" value={ing.rtmp} />
                {ing.rtmps ? <CopyField id="obs-rtmps" label="Server (RTMPS, encrypted)" value={ing.rtmps} /> : null}
                {ing.srt ? (
                  <CopyField id="obs-srt" label="SRT URL (with the stream id)" value={srtUrl(shown || '{your key}')} />
                ) : null}
              </>
            ) : ingest.error ? (
              <p class="muted">Ingest addresses are not available on this server.</p>
            ) : null}
            <TestStream streams={active.map((k) => k.stream)} stream={test} onStream={setTest} />
          </section>
        </div>
      )}
    </section>
  );
}

function TestStream({ streams, stream, onStream }: { streams: string[]; stream: string; onStream: (s: string) => void }) {
  const status = useApi<StreamStatus>(stream ? `/api/streams/${encodeURIComponent(stream)}/status` : null, 2000);
  const s = status.data;
  const live = !!s?.live;
  return (
    <div class="test-stream">
      <h3>Test your stream</h3>
      {streams.length > 1 ? (
        <>
          <label for="test-stream">Stream</label>
          <select id="test-stream" value={stream} onChange={(e) => onStream(e.currentTarget.value)}>
            {streams.map((x) => (
              <option key={x} value={x}>
                {x}
              </option>
            ))}
          </select>
        </>
      ) : null}
      {stream ? (
        <p class={`light ${live ? 'on' : 'off'}`} role="status" id="test-light">
          <span class="lamp" aria-hidden="true" />
          {live
            ? `“${stream}”: receiving ${s?.protocol?.toUpperCase() ?? ''}${s?.video ? ` · ${s.video.width}x${s.video.height}${s.video.fps != null ? ` ${Math.round(s.video.fps)} fps` : ''}` : ''}${s?.ingest_bitrate_kbps ? ` · ${Math.round(s.ingest_bitrate_kbps)} kb/s` : ''}`
            : status.error
              ? `Cannot check: ${status.error.message}`
              : `Waiting for media on “${stream}”… start streaming in OBS.`}
        </p>
      ) : (
        <p class="muted">Create a key first.</p>
      )}
    </div>
  );
}
