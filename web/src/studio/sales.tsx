// Sales per product moment: one row per cue (GET /api/shows/{id}/analytics `cues`), named by the
// cue's product and time, with the show's totals.

import { Analytics, Counts, Cue, clock, money } from './model';

function Cells({ c, currency }: { c: Counts; currency: string }) {
  return (
    <>
      <td class="num impressions">{c.impressions}</td>
      <td class="num cta">{c.cta_clicks}</td>
      <td class="num carts">{c.add_to_carts}</td>
      <td class="num purchases">{c.purchases}</td>
      <td class="num revenue">{money(c.revenue, currency)}</td>
    </>
  );
}

export function SalesTable({
  analytics,
  cues,
  error,
  live,
}: {
  analytics: Analytics | null;
  cues: Cue[];
  error?: string;
  live?: boolean;
}) {
  if (!analytics) return <p class="muted">{error ?? 'Loading sales…'}</p>;
  const byId = new Map(cues.map((c) => [c.id, c]));
  // Every product moment of the show, also those that have no events yet (a live cue).
  const rows = analytics.cues.map((row) => ({ row, cue: byId.get(row.cue) }));
  const seen = new Set(analytics.cues.map((c) => c.cue));
  for (const cue of cues) {
    if (seen.has(cue.id) || cue.kind === 'clear') continue;
    const zero = { impressions: 0, clicks: 0, cta_clicks: 0, add_to_carts: 0, purchases: 0, units: 0, revenue: '0.00' };
    rows.push({ row: { cue: cue.id, ...zero, products: [] }, cue });
  }
  rows.sort((a, b) => (a.cue ? Date.parse(a.cue.start_date) : Infinity) - (b.cue ? Date.parse(b.cue.start_date) : Infinity));
  const currency = analytics.currency;
  return (
    <div class="table-wrap" tabIndex={0} role="region" aria-label="Sales per product moment">
      <table class="data sales-table" aria-describedby={live ? 'sales-note' : undefined}>
        <thead>
          <tr>
            <th scope="col">Product moment</th>
            <th scope="col">Impressions</th>
            <th scope="col">CTA clicks</th>
            <th scope="col">Add to carts</th>
            <th scope="col">Purchases</th>
            <th scope="col">Revenue</th>
          </tr>
        </thead>
        <tbody>
          {rows.map(({ row, cue }) => (
            <tr key={row.cue} data-cue={row.cue}>
              <th scope="row">
                {cue?.product?.title ?? cue?.product?.id ?? row.cue}
                <small class="muted cue-meta">{cue ? `${cue.data?.sold_out ? 'sold out' : cue.kind} at ${clock(cue.media_time_s)}` : 'earlier cue'}</small>
              </th>
              <Cells c={row} currency={currency} />
            </tr>
          ))}
          {rows.length === 0 ? (
            <tr>
              <td colSpan={6} class="muted">
                No product moments yet: press “Show now” on a product.
              </td>
            </tr>
          ) : null}
        </tbody>
        <tfoot>
          <tr>
            <th scope="row">
              Whole show
              <small class="muted cue-meta">
                {analytics.shoppers} shopper{analytics.shoppers === 1 ? '' : 's'}
              </small>
            </th>
            <Cells c={analytics.totals} currency={currency} />
          </tr>
        </tfoot>
      </table>
      {live ? (
        <p id="sales-note" class="hint">
          Updated every second.
        </p>
      ) : null}
    </div>
  );
}
