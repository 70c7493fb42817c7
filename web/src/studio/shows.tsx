// My shows (the host's list), and the show form: create, edit, schedule, with featured products
// picked from the catalog by search.

import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../shared/api';
import { Product, Show, StreamKey, errorText, navigate, onLink, useApi, when } from './model';

export function StateBadge({ state }: { state: Show['state'] }) {
  return <span class={`badge state-${state}`}>{state === 'live' ? 'LIVE' : state}</span>;
}

export function ShowList({ user }: { user: string }) {
  const shows = useApi<{ shows: Show[] }>(`/api/shows?host=${encodeURIComponent(user)}`);
  const list = shows.data?.shows ?? [];
  const order = { live: 0, scheduled: 1, ended: 2 } as const;
  const sorted = [...list].sort(
    (a, b) => order[a.state] - order[b.state] || a.scheduled_start.localeCompare(b.scheduled_start),
  );
  return (
    <section aria-labelledby="shows-title">
      <div class="section-head">
        <h1 id="shows-title">My shows</h1>
        <a class="button primary" href="/studio/shows/new" onClick={onLink}>
          New show
        </a>
      </div>
      {shows.error ? <p class="form-error">{shows.error.message}</p> : null}
      {!shows.data && shows.loading ? <p class="muted">Loading your shows…</p> : null}
      {shows.data && sorted.length === 0 ? (
        <p class="empty">No shows yet. Create one, add the products you will present, and go live from OBS.</p>
      ) : null}
      {sorted.length > 0 ? (
        <div class="table-wrap" tabIndex={0} role="region" aria-label="My shows">
          <table class="data shows-table">
            <thead>
              <tr>
                <th scope="col">Show</th>
                <th scope="col">State</th>
                <th scope="col">Starts</th>
                <th scope="col">Stream</th>
                <th scope="col">Products</th>
                <th scope="col">Viewers</th>
              </tr>
            </thead>
            <tbody>
              {sorted.map((s) => (
                <tr key={s.id}>
                  <th scope="row">
                    <a href={`/studio/shows/${encodeURIComponent(s.id)}`} onClick={onLink}>
                      {s.title}
                    </a>
                  </th>
                  <td>
                    <StateBadge state={s.state} />
                  </td>
                  <td>{when(s.started_at ?? s.scheduled_start)}</td>
                  <td>
                    <code>{s.stream}</code>
                  </td>
                  <td class="num">{s.products.length}</td>
                  <td class="num">{s.viewers ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}

export function NewShow({ user }: { user: string }) {
  return (
    <section aria-labelledby="new-show-title">
      <p>
        <a href="/studio" onClick={onLink}>
          ← My shows
        </a>
      </p>
      <h1 id="new-show-title">New show</h1>
      <ShowForm user={user} onSaved={(s) => navigate(`/studio/shows/${encodeURIComponent(s.id)}`)} />
    </section>
  );
}

/** `2026-12-06T18:00` in local time, for <input type="datetime-local">. */
function localInput(iso: string | null | undefined): string {
  const d = iso ? new Date(iso) : new Date(Date.now() + 10 * 60_000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

const FIELDS = ['title', 'description', 'cover_image_url', 'scheduled_start', 'tags', 'stream', 'products'];

export function ShowForm({
  show,
  user,
  onSaved,
}: {
  show?: Show;
  user: string;
  onSaved: (show: Show) => void;
}) {
  const keys = useApi<{ items: StreamKey[] }>('/api/keys');
  const streams = (keys.data?.items ?? []).filter((k) => !k.revoked_at && k.host === user).map((k) => k.stream);
  const [title, setTitle] = useState(show?.title ?? '');
  const [description, setDescription] = useState(show?.description ?? '');
  const [cover, setCover] = useState(show?.cover_image_url ?? '');
  const [start, setStart] = useState(localInput(show?.scheduled_start));
  const [tags, setTags] = useState((show?.tags ?? []).join(', '));
  const [stream, setStream] = useState(show?.stream ?? '');
  const [products, setProducts] = useState<string[]>(show?.products ?? []);
  const [error, setError] = useState<{ message: string; field?: string } | null>(null);
  const [saving, setSaving] = useState(false);
  const [saved, setSaved] = useState('');
  useEffect(() => {
    if (!stream && streams.length) setStream(streams[0]);
  }, [streams.join()]);

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    setSaved('');
    const date = new Date(start);
    if (Number.isNaN(date.getTime())) {
      setError({ message: 'Start time: pick a date and time.', field: 'scheduled_start' });
      return;
    }
    const body = {
      title: title.trim(),
      description: description.trim(),
      cover_image_url: cover.trim() || null,
      scheduled_start: date.toISOString(),
      tags: tags
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean),
      stream: stream.trim(),
      products,
    };
    // Unchanged fields stay as they are (the form shows the start to the minute only).
    if (show && start === localInput(show.scheduled_start)) delete (body as Partial<typeof body>).scheduled_start;
    if (show && show.state !== 'scheduled') delete (body as Partial<typeof body>).stream;
    setSaving(true);
    try {
      const result = show
        ? await api<Show>(`/api/shows/${encodeURIComponent(show.id)}`, { method: 'PATCH', body })
        : await api<Show>('/api/shows', { body });
      setSaved(show ? 'Saved.' : 'Created.');
      onSaved(result);
    } catch (e) {
      const field = e instanceof ApiError ? e.field?.replace(/\[.*$/, '') : undefined;
      setError({ message: errorText(e), field });
      if (field && FIELDS.includes(field)) document.getElementById(`show-${field}`)?.focus();
    } finally {
      setSaving(false);
    }
  };
  const invalid = (field: string) => (error?.field === field ? true : undefined);
  const describedBy = (field: string) => (error?.field === field ? 'show-form-error' : undefined);

  return (
    <form class="show-form" onSubmit={submit} noValidate>
      <div class="form-grid">
        <label for="show-title">Title</label>
        <input
          id="show-title"
          value={title}
          required
          maxLength={200}
          aria-invalid={invalid('title')}
          aria-describedby={describedBy('title')}
          onInput={(e) => setTitle(e.currentTarget.value)}
        />
        <label for="show-description">Description</label>
        <textarea
          id="show-description"
          rows={3}
          value={description}
          aria-invalid={invalid('description')}
          onInput={(e) => setDescription(e.currentTarget.value)}
        />
        <label for="show-cover_image_url">Cover image URL</label>
        <input
          id="show-cover_image_url"
          type="url"
          placeholder="https://…"
          value={cover}
          aria-invalid={invalid('cover_image_url')}
          aria-describedby={describedBy('cover_image_url')}
          onInput={(e) => setCover(e.currentTarget.value)}
        />
        <label for="show-scheduled_start">Start time</label>
        <input
          id="show-scheduled_start"
          type="datetime-local"
          value={start}
          required
          aria-invalid={invalid('scheduled_start')}
          aria-describedby={describedBy('scheduled_start')}
          onInput={(e) => setStart(e.currentTarget.value)}
        />
        <label for="show-tags">Tags</label>
        <input
          id="show-tags"
          placeholder="beauty, spring"
          value={tags}
          aria-invalid={invalid('tags')}
          aria-describedby="show-tags-hint"
          onInput={(e) => setTags(e.currentTarget.value)}
        />
        <span id="show-tags-hint" class="hint">
          Separate tags with commas.
        </span>
        <label for="show-stream">Stream</label>
        <input
          id="show-stream"
          list="show-streams"
          value={stream}
          required
          disabled={show?.state === 'live'}
          aria-invalid={invalid('stream')}
          aria-describedby="show-stream-hint"
          onInput={(e) => setStream(e.currentTarget.value)}
        />
        <datalist id="show-streams">
          {streams.map((s) => (
            <option key={s} value={s} />
          ))}
        </datalist>
        <span id="show-stream-hint" class="hint">
          The stream your encoder publishes: one of your stream keys' streams (see Stream keys).
        </span>
      </div>
      <ProductPicker selected={products} onChange={setProducts} invalid={error?.field === 'products'} />
      <p id="show-form-error" class="form-error" role="alert">
        {error?.message ?? ''}
      </p>
      <div class="form-actions">
        <button type="submit" class="button primary" disabled={saving}>
          {show ? 'Save changes' : 'Create show'}
        </button>
        <span role="status" class="saved">
          {saved}
        </span>
      </div>
    </form>
  );
}

/** The featured products: search the catalog, add, reorder, remove. */
export function ProductPicker({
  selected,
  onChange,
  invalid,
}: {
  selected: string[];
  onChange: (ids: string[]) => void;
  invalid?: boolean;
}) {
  const [query, setQuery] = useState('');
  const [results, setResults] = useState<Product[]>([]);
  const [searched, setSearched] = useState(false);
  const [known, setKnown] = useState<Record<string, Product>>({});
  useEffect(() => {
    const controller = new AbortController();
    const timer = setTimeout(async () => {
      try {
        const q = query.trim();
        const r = await api<{ products: Product[] }>(
          `/api/catalog/products?limit=8${q ? `&q=${encodeURIComponent(q)}` : ''}`,
          { signal: controller.signal },
        );
        setResults(r.products);
        setSearched(true);
        setKnown((k) => ({ ...k, ...Object.fromEntries(r.products.map((p) => [p.id, p])) }));
      } catch {
        /* aborted or offline: keep the last results */
      }
    }, 200);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [query]);
  useEffect(() => {
    for (const id of selected.filter((id) => !known[id])) {
      api<Product>(`/api/catalog/products/${encodeURIComponent(id)}`)
        .then((p) => setKnown((k) => ({ ...k, [p.id]: p })))
        .catch(() => {});
    }
  }, [selected.join()]);
  const move = (i: number, by: number) => {
    const next = [...selected];
    const [id] = next.splice(i, 1);
    next.splice(i + by, 0, id);
    onChange(next);
  };
  return (
    <fieldset class="picker" aria-invalid={invalid ? true : undefined}>
      <legend>Featured products</legend>
      <div class="picker-grid">
        <div>
          <label for="product-search">Search the catalog</label>
          <input
            id="product-search"
            type="search"
            value={query}
            placeholder="Title, brand, category…"
            onInput={(e) => setQuery(e.currentTarget.value)}
          />
          <ul class="product-results" aria-label="Search results">
            {results.map((p) => {
              const added = selected.includes(p.id);
              return (
                <li key={p.id} class="product-row">
                  <ProductThumb product={p} />
                  <span class="product-name">
                    {p.title}
                    <small>
                      {p.id} · {p.price} {p.currency}
                    </small>
                  </span>
                  <button
                    type="button"
                    class="button"
                    disabled={added}
                    aria-label={added ? `${p.title} added` : `Add ${p.title}`}
                    onClick={() => onChange([...selected, p.id])}
                  >
                    {added ? 'Added' : 'Add'}
                  </button>
                </li>
              );
            })}
            {searched && results.length === 0 ? <li class="muted">No product matches.</li> : null}
          </ul>
        </div>
        <div>
          <h3 class="picker-title" id="selected-title">
            In this show ({selected.length})
          </h3>
          <ol class="product-selected" aria-labelledby="selected-title">
            {selected.map((id, i) => {
              const p = known[id];
              const name = p?.title ?? id;
              return (
                <li key={id} class="product-row">
                  <ProductThumb product={p} />
                  <span class="product-name">
                    {name}
                    <small>{id}</small>
                  </span>
                  <span class="row-actions">
                    <button type="button" class="button icon" aria-label={`Move ${name} up`} disabled={i === 0} onClick={() => move(i, -1)}>
                      ↑
                    </button>
                    <button
                      type="button"
                      class="button icon"
                      aria-label={`Move ${name} down`}
                      disabled={i === selected.length - 1}
                      onClick={() => move(i, 1)}
                    >
                      ↓
                    </button>
                    <button
                      type="button"
                      class="button icon"
                      aria-label={`Remove ${name}`}
                      onClick={() => onChange(selected.filter((s) => s !== id))}
                    >
                      ×
                    </button>
                  </span>
                </li>
              );
            })}
            {selected.length === 0 ? <li class="muted">Add the products you will present.</li> : null}
          </ol>
        </div>
      </div>
    </fieldset>
  );
}

export function ProductThumb({ product }: { product?: { image_url?: string | null } | null }) {
  return product?.image_url ? (
    <img class="thumb" src={product.image_url} alt="" width={44} height={44} loading="lazy" />
  ) : (
    <span class="thumb" aria-hidden="true" />
  );
}
