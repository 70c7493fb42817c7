// The watch page's side of the embed: tells the shop's page (the one that put the show in an
// iframe, with /embed.js's <cuecast-show> or by hand) what the shopper does, so the shop's own
// cart can take over. The host page's side is web/src/embed/ (docs/web.md, "Embed").
//
// Contract for the watch page (web/src/watch/):
//
// - `notifyHost(kind, detail): boolean` — call it when the shopper adds a product to the cart
//   (`'add_to_cart'`) or checks out / buys now (`'checkout'`). It returns **true when the host page
//   listens for that kind** and the message was posted: the shop's cart takes over, so the page
//   shows a short confirmation and does not open its own cart / checkout hand-off. It returns
//   **false** when the page is not embedded, or nobody on the host page listens (yet): keep the
//   built-in cart, which stays the default. It never throws. Still send the shopper events to
//   /api/events as usual either way. Call it *before* `requireLogin`: a shop that takes the cart
//   over has its own accounts, so its shoppers are not asked to log in to cuecast to buy.
//   E.g. in the watch page's addToCart:
//     if (notifyHost('add_to_cart', { show, product: { id, title, price, currency, image_url, url },
//                                      cue: cueId ?? null, quantity: 1 })) { announce(); return; }
//     const who = await requireLogin(...); ... the built-in cart ...
// - `detail` is `EmbedEventDetail` (embed-protocol.ts): the show, the product (id and what the shop's cart needs
//   to show it) and the id of the product cue on screen (or null), plus the quantity; a checkout
//   may add the whole built-in cart as `items`.
// - `isEmbedded()` — the page runs in a frame (`/embed/shows/{id}`); `hostListens(kind)` — the
//   answer `notifyHost` would give now; `onHostChange(listener)` — called when the host page starts
//   listening (e.g. to relabel "Checkout" to "Add to the shop's cart"); returns the unsubscribe.
// - Nothing to start: importing the module posts the handshake (`cuecast:hello`) to the parent.
//
// Wire format (window.postMessage, every message `{source: 'cuecast', type, ...}`):
//   frame → host  {type: 'cuecast:hello', show}                        on load (target '*': it
//                                                                       carries only the show id)
//   host → frame  {type: 'cuecast:listening', events: ['add_to_cart', 'checkout']}
//                                                                       the kinds the host handles
//                                                                       (an empty list: none)
//   frame → host  {type: 'cuecast:event', kind, detail}                 only to the origin that
//                                                                       answered `listening`
// The frame accepts `listening` only from its parent window; the host must check that an event
// comes from the cuecast origin and from its iframe (embed.js does).

import { EMBED_KINDS, type EmbedEventDetail, type EmbedEventKind } from './embed-protocol';

export { EMBED_KINDS };
export type { EmbedEventDetail, EmbedEventKind, EmbedProduct } from './embed-protocol';

interface State {
  /** The origin of the host page that answered `listening`. */
  origin: string | null;
  kinds: Set<EmbedEventKind>;
}

const state: State = { origin: null, kinds: new Set() };
const listeners = new Set<() => void>();

/** The page runs inside a frame (the embed). */
export function isEmbedded(): boolean {
  try {
    return window.parent !== window;
  } catch {
    return true;
  }
}

/** Whether the host page listens for `kind` (what `notifyHost` would answer now). */
export function hostListens(kind: EmbedEventKind): boolean {
  return isEmbedded() && state.origin !== null && state.kinds.has(kind);
}

/**
 * Tells the host page that the shopper did `kind`; true when a host page listens for it and was
 * told (its cart takes over), false when the built-in cart should handle it.
 */
export function notifyHost(kind: EmbedEventKind, detail: EmbedEventDetail): boolean {
  if (!hostListens(kind) || !state.origin) return false;
  // An opaque host (a file:// page, a sandboxed frame) has the origin "null": only '*' reaches it.
  const target = state.origin === 'null' ? '*' : state.origin;
  try {
    window.parent.postMessage({ source: 'cuecast', type: 'cuecast:event', kind, detail }, target);
    return true;
  } catch {
    return false;
  }
}

/** Called whenever the host page's answer changes; returns the unsubscribe. */
export function onHostChange(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The show id of this page (`/shows/{id}` or `/embed/shows/{id}`). */
function showId(): string {
  const match = location.pathname.match(/\/shows\/([^/]+)/);
  return match ? decodeURIComponent(match[1]) : '';
}

function onMessage(event: MessageEvent): void {
  if (event.source !== window.parent) return;
  const data = event.data as { source?: unknown; type?: unknown; events?: unknown } | null;
  if (!data || typeof data !== 'object' || data.source !== 'cuecast' || data.type !== 'cuecast:listening') return;
  const kinds = Array.isArray(data.events)
    ? data.events.filter((k): k is EmbedEventKind => EMBED_KINDS.includes(k as EmbedEventKind))
    : [...EMBED_KINDS];
  state.origin = kinds.length ? event.origin : null;
  state.kinds = new Set(kinds);
  listeners.forEach((l) => l());
}

if (isEmbedded()) {
  window.addEventListener('message', onMessage);
  try {
    window.parent.postMessage({ source: 'cuecast', type: 'cuecast:hello', show: showId() }, '*');
  } catch {
    /* a parent that cannot be reached: the built-in cart it is */
  }
}
