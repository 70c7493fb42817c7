// The rundown editor: cues at offsets from the stream's start (docs/cues.md, `GET`/`PUT
// /api/streams/{stream}/rundown`). Editing replaces the unfired items; fired ones are cues.

import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../shared/api';
import { CueKind, Product, RundownItem, Show, clock, cueProduct, errorText } from './model';

interface Row {
  key: number;
  offset: string;
  kind: CueKind;
  product: string;
  duration: string;
}

let nextKey = 1;

function toRow(item: RundownItem): Row {
  return {
    key: nextKey++,
    offset: String(item.offset_s),
    kind: item.kind,
    product: item.product?.id ?? '',
    duration: item.duration_s != null ? String(item.duration_s) : '',
  };
}

/** The show's products from the catalog, in the show's order (missing ones skipped). */
export function useShowProducts(show: Show): Product[] {
  const [products, setProducts] = useState<Record<string, Product>>({});
  useEffect(() => {
    for (const id of show.products) {
      if (products[id]) continue;
      api<Product>(`/api/catalog/products/${encodeURIComponent(id)}`)
        .then((p) => setProducts((all) => ({ ...all, [id]: p })))
        .catch(() => {});
    }
  }, [show.products.join()]);
  return show.products.map((id) => products[id]).filter(Boolean);
}

export function RundownEditor({ show }: { show: Show }) {
  const path = `/api/streams/${encodeURIComponent(show.stream)}/rundown`;
  const products = useShowProducts(show);
  const [rows, setRows] = useState<Row[]>([]);
  const [status, setStatus] = useState('');
  const [error, setError] = useState<{ message: string; field?: string } | null>(null);
  const [unavailable, setUnavailable] = useState('');
  useEffect(() => {
    api<{ items: RundownItem[] }>(path, { keepSession: true })
      .then((r) => setRows(r.items.map(toRow)))
      .catch((e) => {
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
          setUnavailable('You cannot edit the rundown of this stream (it is not one of your streams).');
        } else setError({ message: errorText(e) });
      });
  }, [path]);

  const update = (key: number, change: Partial<Row>) =>
    setRows((all) => all.map((r) => (r.key === key ? { ...r, ...change } : r)));
  const add = () => {
    const last = rows.length ? Number(rows[rows.length - 1].offset) || 0 : 0;
    setRows([...rows, { key: nextKey++, offset: String(last + 60), kind: 'product', product: products[0]?.id ?? '', duration: '30' }]);
  };
  const save = async (event: Event) => {
    event.preventDefault();
    setError(null);
    setStatus('');
    const cues = rows.map((r) => {
      const product = products.find((p) => p.id === r.product);
      const item: Record<string, unknown> = { offset_s: Number(r.offset), kind: r.kind };
      if (r.duration.trim() && r.kind !== 'clear') item.duration_s = Number(r.duration);
      if (r.kind !== 'clear' && r.product) item.product = product ? cueProduct(product) : { id: r.product };
      return item;
    });
    try {
      const r = await api<{ items: RundownItem[] }>(path, { method: 'PUT', body: { cues }, keepSession: true });
      if (r?.items) setRows(r.items.map(toRow));
      setStatus(`Rundown saved: ${cues.length} cue${cues.length === 1 ? '' : 's'}.`);
    } catch (e) {
      setError({ message: errorText(e), field: e instanceof ApiError ? e.field : undefined });
    }
  };
  const rowError = (i: number) => (error?.field?.startsWith(`cues[${i}]`) ? true : undefined);

  return (
    <section class="card" aria-labelledby="rundown-title">
      <h2 id="rundown-title">Rundown</h2>
      <p class="hint">
        Cues that fire by themselves when the stream reaches their offset from its start (the media timeline, so a
        late start shifts them with the show).
      </p>
      {unavailable ? (
        <p class="muted">{unavailable}</p>
      ) : (
        <form onSubmit={save}>
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Rundown cues">
            <table class="data rundown-table">
              <thead>
                <tr>
                  <th scope="col">At (s)</th>
                  <th scope="col">Cue</th>
                  <th scope="col">Product</th>
                  <th scope="col">Length (s)</th>
                  <th scope="col">
                    <span class="visually-hidden">Remove</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r, i) => (
                  <tr key={r.key} aria-invalid={rowError(i)}>
                    <td>
                      <input
                        type="number"
                        min={0}
                        step="any"
                        aria-label={`Cue ${i + 1} offset in seconds`}
                        value={r.offset}
                        onInput={(e) => update(r.key, { offset: e.currentTarget.value })}
                      />
                      <small class="muted">{clock(Number(r.offset) || 0)}</small>
                    </td>
                    <td>
                      <select aria-label={`Cue ${i + 1} kind`} value={r.kind} onChange={(e) => update(r.key, { kind: e.currentTarget.value as CueKind })}>
                        <option value="product">Show product</option>
                        <option value="offer">Offer (countdown)</option>
                        <option value="pin">Pin</option>
                        <option value="clear">Clear</option>
                      </select>
                    </td>
                    <td>
                      <select
                        aria-label={`Cue ${i + 1} product`}
                        value={r.product}
                        disabled={r.kind === 'clear'}
                        onChange={(e) => update(r.key, { product: e.currentTarget.value })}
                      >
                        <option value="">—</option>
                        {products.map((p) => (
                          <option key={p.id} value={p.id}>
                            {p.title}
                          </option>
                        ))}
                        {r.product && !products.some((p) => p.id === r.product) ? <option value={r.product}>{r.product}</option> : null}
                      </select>
                    </td>
                    <td>
                      <input
                        type="number"
                        min={1}
                        step="any"
                        aria-label={`Cue ${i + 1} length in seconds`}
                        placeholder="open"
                        disabled={r.kind === 'clear'}
                        value={r.duration}
                        onInput={(e) => update(r.key, { duration: e.currentTarget.value })}
                      />
                    </td>
                    <td>
                      <button type="button" class="button icon" aria-label={`Remove cue ${i + 1}`} onClick={() => setRows(rows.filter((x) => x.key !== r.key))}>
                        ×
                      </button>
                    </td>
                  </tr>
                ))}
                {rows.length === 0 ? (
                  <tr>
                    <td colSpan={5} class="muted">
                      No cues planned.
                    </td>
                  </tr>
                ) : null}
              </tbody>
            </table>
          </div>
          <p class="form-error" role="alert">
            {error?.message ?? ''}
          </p>
          <div class="form-actions">
            <button type="button" class="button" onClick={add}>
              Add cue
            </button>
            <button type="submit" class="button primary">
              Save rundown
            </button>
            <span role="status" class="saved">
              {status}
            </span>
          </div>
        </form>
      )}
    </section>
  );
}
