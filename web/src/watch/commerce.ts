// The shopper's side of the show: an anonymous visitor id, the cart (localStorage, survives a
// reload), and the events to `POST /api/events` (src/commerce/events/model.rs) in batches — every
// ~5 s and on pagehide with keepalive — each with the cue that was on screen. The login token
// goes with them when logged in (the server fills in `user`).

import { api } from '../shared/api';

const VISITOR_KEY = 'cuecast.visitor';
const CART_KEY = 'cuecast.cart';

function storageGet(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function storageSet(key: string, value: string): void {
  try {
    localStorage.setItem(key, value);
  } catch {
    /* private mode: lasts as long as the page */
  }
}

/** This browser's anonymous id (kept in localStorage). */
export function visitorId(): string {
  let id = storageGet(VISITOR_KEY);
  if (!id || !/^v-[0-9a-f]{8,64}$/.test(id)) {
    const bytes = crypto.getRandomValues(new Uint8Array(12));
    id = `v-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
    storageSet(VISITOR_KEY, id);
  }
  return id;
}

export type EventType = 'view_show' | 'impression' | 'click' | 'cta_click' | 'add_to_cart';

export interface ShopEvent {
  type: EventType;
  product?: string;
  cue?: string;
  quantity?: number;
  price?: string;
}

/** What the shop acts on (the studio's live sales): sent at once rather than with the batch. */
const URGENT: ReadonlySet<EventType> = new Set(['cta_click', 'add_to_cart']);

/**
 * Batches a show's events; `flush` on a timer and when the page goes away. A CTA click or an
 * add-to-cart goes out at once (with whatever is queued), keepalive since a "Buy now" may take
 * the shopper to another tab.
 */
export class EventQueue {
  private queue: Record<string, unknown>[] = [];
  private timer: number;
  private readonly visitor = visitorId();

  constructor(private readonly show: string) {
    this.timer = window.setInterval(() => void this.flush(), 5000);
    window.addEventListener('pagehide', () => void this.flush(true));
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'hidden') void this.flush(true);
    });
  }

  push(event: ShopEvent): void {
    const entry: Record<string, unknown> = { ...event, visitor: this.visitor, show: this.show, ts: Date.now() };
    for (const key of Object.keys(entry)) if (entry[key] === undefined) delete entry[key];
    this.queue.push(entry);
    if (URGENT.has(event.type)) void this.flush(true);
    else if (this.queue.length >= 50) void this.flush();
  }

  /** Sends what is queued (keepalive while the page unloads). Errors drop the batch quietly. */
  async flush(keepalive = false): Promise<void> {
    if (this.queue.length === 0) return;
    const events = this.queue.splice(0, 100);
    try {
      await api('/api/events', { body: { events }, keepalive });
    } catch {
      /* the page keeps working without analytics */
    }
  }

  stop(): void {
    window.clearInterval(this.timer);
  }
}

export interface CartItem {
  product: string;
  title: string;
  price?: string;
  currency?: string;
  image_url?: string;
  url?: string;
  cue?: string;
  show: string;
  quantity: number;
}

type CartListener = (items: CartItem[]) => void;

/** The cart, kept in localStorage (and in step across tabs). */
export const cart = {
  listeners: new Set<CartListener>(),
  items(): CartItem[] {
    try {
      const parsed = JSON.parse(storageGet(CART_KEY) ?? '[]') as CartItem[];
      return Array.isArray(parsed) ? parsed.filter((i) => typeof i.product === 'string') : [];
    } catch {
      return [];
    }
  },
  save(items: CartItem[]): void {
    storageSet(CART_KEY, JSON.stringify(items));
    cart.listeners.forEach((l) => l(items));
  },
  add(item: Omit<CartItem, 'quantity'>): CartItem[] {
    const items = cart.items();
    const found = items.find((i) => i.product === item.product);
    if (found) found.quantity = Math.min(found.quantity + 1, 99);
    else items.push({ ...item, quantity: 1 });
    cart.save(items);
    return items;
  },
  remove(product: string): void {
    cart.save(cart.items().filter((i) => i.product !== product));
  },
  subscribe(listener: CartListener): () => void {
    cart.listeners.add(listener);
    return () => cart.listeners.delete(listener);
  },
};

window.addEventListener('storage', (event) => {
  if (event.key === CART_KEY) cart.listeners.forEach((l) => l(cart.items()));
});

/** "49.00" + "USD" → "$49.00" in the viewer's locale. */
export function formatPrice(price?: string | null, currency?: string | null): string {
  if (!price) return '';
  const amount = Number(price);
  if (!currency || !Number.isFinite(amount)) return currency ? `${price} ${currency}` : price;
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(amount);
  } catch {
    return `${price} ${currency}`;
  }
}
