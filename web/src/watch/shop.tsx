// What a viewer buys from: the product banner over the video (the cue on screen), the show's
// products under the video (trending-ranked while live), "Frequently bought together" and
// "Related" for the product on screen, and the cart drawer with the hand-off to the shop.

import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../shared/api';
import type { CuePayload } from './cues';
import { cart, formatPrice, type CartItem } from './commerce';

/** A product as the page shows it (a cue's product, a catalog product or a recommendation). */
export interface ShopProduct {
  id: string;
  title: string;
  price?: string;
  currency?: string;
  image_url?: string;
  /** The shop's product page (cue `cta.url` or the catalog's `url`). */
  url?: string;
  cta_label?: string;
}

export interface CatalogProduct {
  id: string;
  title?: string;
  price?: string;
  currency?: string;
  image_url?: string;
  url?: string;
}

interface Recommended {
  product_id: string;
  title?: string | null;
  price?: string | null;
  currency?: string | null;
  image_url?: string | null;
}

export function fromRecommended(r: Recommended, catalog: Map<string, CatalogProduct>): ShopProduct {
  const c = catalog.get(r.product_id);
  return {
    id: r.product_id,
    title: r.title ?? c?.title ?? r.product_id,
    price: r.price ?? c?.price,
    currency: r.currency ?? c?.currency,
    image_url: r.image_url ?? c?.image_url,
    url: c?.url,
  };
}

export function fromCue(cue: CuePayload, catalog: Map<string, CatalogProduct>): ShopProduct | null {
  const p = cue.product;
  if (!p) return null;
  const c = catalog.get(p.id);
  return {
    id: p.id,
    title: p.title ?? c?.title ?? p.id,
    price: p.price ?? c?.price,
    currency: p.currency ?? c?.currency,
    image_url: p.image_url ?? c?.image_url,
    url: p.cta?.url ?? c?.url,
    cta_label: p.cta?.label,
  };
}

/** Seconds until `end` (Unix ms) as m:ss, ticking. */
function Countdown({ end }: { end: number }) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(t);
  }, []);
  const left = Math.max(0, Math.round((end - now) / 1000));
  const text = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
  return (
    <span class="banner-countdown" aria-label={`Offer ends in ${text}`}>
      Ends in {text}
    </span>
  );
}

export interface BuyActions {
  buy(product: ShopProduct, cue?: string): void;
  addToCart(product: ShopProduct, cue?: string): void;
  open(product: ShopProduct, cue?: string): void;
}

export function Banner({
  cue,
  product,
  offerEnd,
  actions,
}: {
  cue: CuePayload;
  product: ShopProduct;
  offerEnd: number | null;
  actions: BuyActions;
}) {
  // The studio's "Sold out" is a product cue with `data.sold_out` (docs/cues.md): the banner
  // says so and offers nothing to buy.
  const soldOut = cue.data?.sold_out === true;
  const label = soldOut ? 'Sold out' : cue.kind === 'offer' ? 'Live offer' : cue.kind === 'pin' ? 'Pinned' : 'Now showing';
  return (
    <div class={`banner kind-${cue.kind}${soldOut ? ' sold-out' : ''}`} data-cue={cue.id}>
      <div class="banner-image">
        {product.image_url ? <img src={product.image_url} alt="" width={72} height={72} /> : null}
      </div>
      <div class="banner-body">
        <span class="banner-kind">{label}</span>
        <strong class="banner-title">{product.title}</strong>
        <span class="banner-price">
          {formatPrice(product.price, product.currency)}
          {offerEnd ? <Countdown end={offerEnd} /> : null}
        </span>
      </div>
      <div class="banner-actions">
        {soldOut ? (
          <span class="banner-sold-out">Sold out</span>
        ) : (
          <>
        <a
          class="button primary banner-buy"
          href={product.url ?? '#'}
          target="_blank"
          rel="noopener"
          onClick={(e) => {
            e.preventDefault();
            actions.buy(product, cue.id);
          }}
        >
          {product.cta_label || 'Buy now'}
        </a>
        <button type="button" class="button banner-add" onClick={() => actions.addToCart(product, cue.id)}>
          Add<span class="wide-only"> to cart</span>
        </button>
          </>
        )}
      </div>
    </div>
  );
}

/** A row of product cards; each card's first sight sends one impression. */
export function ProductRow({
  title,
  id,
  products,
  highlight,
  actions,
  onSeen,
}: {
  title: string;
  id: string;
  products: ShopProduct[];
  highlight?: string | null;
  actions: BuyActions;
  onSeen(product: ShopProduct): void;
}) {
  const ref = useRef<HTMLUListElement>(null);
  const seen = useRef(new Set<string>());
  useEffect(() => {
    const el = ref.current;
    if (!el || !('IntersectionObserver' in window)) return;
    const observer = new IntersectionObserver(
      (entries) => {
        for (const entry of entries) {
          const pid = (entry.target as HTMLElement).dataset.product;
          if (!entry.isIntersecting || !pid || seen.current.has(pid)) continue;
          seen.current.add(pid);
          const product = products.find((p) => p.id === pid);
          if (product) onSeen(product);
        }
      },
      { threshold: 0.6 },
    );
    el.querySelectorAll('[data-product]').forEach((card) => observer.observe(card));
    return () => observer.disconnect();
  }, [products]);
  if (products.length === 0) return null;
  return (
    <section class="product-row" aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      <ul ref={ref}>
        {products.map((p) => (
          <li key={p.id} data-product={p.id} class={p.id === highlight ? 'card on-screen' : 'card'}>
            <button type="button" class="card-open" onClick={() => actions.open(p)} aria-label={`${p.title}, view product`}>
              <span class="card-image">
                {p.image_url ? <img src={p.image_url} alt="" width={160} height={160} loading="lazy" /> : null}
              </span>
              <span class="card-title">{p.title}</span>
              <span class="card-price">{formatPrice(p.price, p.currency)}</span>
            </button>
            <button type="button" class="button card-add" onClick={() => actions.addToCart(p)} aria-label={`Add ${p.title} to cart`}>
              Add to cart
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

/** The recommendation rows for the product on screen. */
export function ForProduct({
  product,
  catalog,
  actions,
  onSeen,
}: {
  product: ShopProduct | null;
  catalog: Map<string, CatalogProduct>;
  actions: BuyActions;
  onSeen(product: ShopProduct): void;
}) {
  const [together, setTogether] = useState<ShopProduct[]>([]);
  const [related, setRelated] = useState<ShopProduct[]>([]);
  // Only catalog products have neighbours (another id would be a 404, logged by the browser).
  const id = product && catalog.has(product.id) ? product.id : undefined;
  useEffect(() => {
    setTogether([]);
    setRelated([]);
    if (!id) return;
    const q = encodeURIComponent(id);
    let live = true;
    api<{ items: Recommended[] }>(`/api/recommendations/bought-together?product=${q}&limit=8`)
      .then((r) => live && setTogether(r.items.map((i) => fromRecommended(i, catalog))))
      .catch(() => {});
    api<{ items: Recommended[] }>(`/api/recommendations/related?product=${q}&limit=8`)
      .then((r) => live && setRelated(r.items.map((i) => fromRecommended(i, catalog))))
      .catch(() => {});
    return () => {
      live = false;
    };
  }, [id]);
  if (!product || !id) return null;
  return (
    <>
      <ProductRow id="row-together" title={`Frequently bought with ${product.title}`} products={together} actions={actions} onSeen={onSeen} />
      <ProductRow id="row-related" title="Related" products={related} actions={actions} onSeen={onSeen} />
    </>
  );
}

export function CartDrawer({
  open,
  items,
  onClose,
  onCheckout,
}: {
  open: boolean;
  items: CartItem[];
  onClose(): void;
  onCheckout(item: CartItem): void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog ref={ref} class="dialog cart-drawer" aria-labelledby="cart-title" onClose={onClose}>
      <button type="button" class="button icon dialog-close" aria-label="Close cart" onClick={onClose}>
        ×
      </button>
      <h2 id="cart-title">Your cart</h2>
      {items.length === 0 ? (
        <p class="cart-empty">Your cart is empty. Add products from the show.</p>
      ) : (
        <ul class="cart-items">
          {items.map((item) => (
            <li key={item.product} class="cart-item" data-product={item.product}>
              <span class="cart-image">{item.image_url ? <img src={item.image_url} alt="" width={56} height={56} /> : null}</span>
              <span class="cart-text">
                <strong>{item.title}</strong>
                <span>
                  {item.quantity} × {formatPrice(item.price, item.currency)}
                </span>
              </span>
              <span class="cart-actions">
                <button type="button" class="button primary" onClick={() => onCheckout(item)} disabled={!item.url}>
                  Checkout
                </button>
                <button type="button" class="button link" onClick={() => cart.remove(item.product)} aria-label={`Remove ${item.title}`}>
                  Remove
                </button>
              </span>
            </li>
          ))}
        </ul>
      )}
    </dialog>
  );
}
