// /embed.js — live shopping on the shop's own site from one script tag:
//
//   <script src="https://live.shop.example/embed.js" async></script>
//   <cuecast-show show="show-0123456789abcdef"></cuecast-show>
//
// defines <cuecast-show>, which puts the watch page (/embed/shows/{id} on the cuecast server that
// served this script) in a responsive iframe and turns the page's postMessage events into DOM
// events on the element:
//
//   el.addEventListener('cuecast:add_to_cart', (e) => myCart.add(e.detail.product.id, e.detail.quantity));
//   el.addEventListener('cuecast:checkout', (e) => location.assign('/checkout'));
//
// `e.detail` is `{show, product: {id, title, price, currency, image_url, url}, cue, quantity,
// items?}` (web/src/shared/embed-bridge.ts). The watch page hands a kind over to the shop only
// when the shop listens for it: a listener on the element (`addEventListener('cuecast:…')`) says
// so by itself; a shop that listens higher up (the events bubble and are composed) sets
// `cart="host"`; `cart="builtin"` keeps the built-in cart whatever listens. Without any of that the
// built-in cart stays the default. Messages are accepted only from the cuecast origin and from this
// element's own iframe.
//
// Attributes: `show` (required), `cart` (`host` | `builtin`), `height` (a CSS length; default: 16:9
// video plus room for the products on a wide element, 9:16 on a narrow one, or set
// `--cuecast-height`), `title` (the iframe's accessible name), `loading` (`lazy` below the fold).

import { EMBED_KINDS, type EmbedEventKind } from '../shared/embed-protocol';

/** The cuecast server this script came from (the iframe's origin). */
function cuecastOrigin(): string {
  const current = document.currentScript as HTMLScriptElement | null;
  const src =
    current?.src || document.querySelector<HTMLScriptElement>('script[src$="/embed.js"]')?.src || location.href;
  return new URL(src, location.href).origin;
}

const ORIGIN = cuecastOrigin();

const STYLE = `
:host { display: block; width: 100%; container-type: inline-size; }
:host([hidden]) { display: none; }
iframe {
  display: block; width: 100%; border: 0; background: transparent;
  border-radius: var(--cuecast-radius, 12px);
  height: 640px;
  height: var(--cuecast-height, clamp(520px, calc(56.25cqw + 200px), 900px));
}
@container (max-width: 599px) {
  iframe { height: var(--cuecast-height, min(92svh, 177.78cqw)); }
}
`;

function isKind(value: unknown): value is EmbedEventKind {
  return typeof value === 'string' && EMBED_KINDS.includes(value as EmbedEventKind);
}

export class CuecastShow extends HTMLElement {
  static observedAttributes = ['show', 'cart', 'height', 'title', 'loading'];

  #frame: HTMLIFrameElement;
  /** Kinds someone listens for on this element. */
  #kinds = new Set<EmbedEventKind>();
  /** The iframe's page said hello (it is ready for the answer). */
  #hello = false;

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    const style = document.createElement('style');
    style.textContent = STYLE;
    this.#frame = document.createElement('iframe');
    this.#frame.setAttribute('allow', 'autoplay; fullscreen; picture-in-picture; encrypted-media; clipboard-write');
    this.#frame.setAttribute('allowfullscreen', '');
    root.append(style, this.#frame);
  }

  /** The origin the iframe is loaded from (the cuecast server). */
  get origin(): string {
    return ORIGIN;
  }

  get frame(): HTMLIFrameElement {
    return this.#frame;
  }

  connectedCallback(): void {
    window.addEventListener('message', this.#onMessage);
    this.#load();
  }

  disconnectedCallback(): void {
    window.removeEventListener('message', this.#onMessage);
  }

  attributeChangedCallback(name: string, before: string | null, after: string | null): void {
    if (before === after) return;
    if (name === 'show') this.#load();
    else if (name === 'cart') this.#answer();
    else if (name === 'height') {
      if (after) this.style.setProperty('--cuecast-height', after);
      else this.style.removeProperty('--cuecast-height');
    } else if (name === 'title') this.#frame.title = after || 'Live shopping show';
    else if (name === 'loading') this.#frame.setAttribute('loading', after === 'lazy' ? 'lazy' : 'eager');
  }

  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject,
    options?: boolean | AddEventListenerOptions,
  ): void {
    super.addEventListener(type, listener, options);
    const kind = type.startsWith('cuecast:') ? type.slice('cuecast:'.length) : '';
    if (isKind(kind) && listener && !this.#kinds.has(kind)) {
      this.#kinds.add(kind);
      this.#answer();
    }
  }

  #load(): void {
    if (!this.isConnected) return;
    const show = (this.getAttribute('show') || '').trim();
    if (!show) {
      console.warn('<cuecast-show>: the show attribute is missing');
      return;
    }
    const src = `${ORIGIN}/embed/shows/${encodeURIComponent(show)}`;
    if (this.#frame.src === src) return;
    this.#hello = false;
    if (!this.#frame.title) this.#frame.title = this.getAttribute('title') || 'Live shopping show';
    this.#frame.src = src;
  }

  /** The kinds the shop handles, as the watch page is told. */
  #listening(): EmbedEventKind[] {
    const cart = this.getAttribute('cart');
    if (cart === 'builtin') return [];
    if (cart === 'host') return [...EMBED_KINDS];
    return EMBED_KINDS.filter((k) => this.#kinds.has(k));
  }

  #answer(): void {
    const target = this.#frame.contentWindow;
    if (!this.#hello || !target) return;
    target.postMessage({ source: 'cuecast', type: 'cuecast:listening', events: this.#listening() }, ORIGIN);
  }

  #onMessage = (event: MessageEvent): void => {
    // Only the cuecast page in this element's own iframe speaks for this element.
    if (event.origin !== ORIGIN || event.source !== this.#frame.contentWindow) return;
    const data = event.data as { source?: unknown; type?: unknown; kind?: unknown; detail?: unknown } | null;
    if (!data || typeof data !== 'object' || data.source !== 'cuecast') return;
    if (data.type === 'cuecast:hello') {
      this.#hello = true;
      this.#answer();
    } else if (data.type === 'cuecast:event' && isKind(data.kind) && data.detail && typeof data.detail === 'object') {
      this.dispatchEvent(
        new CustomEvent(`cuecast:${data.kind}`, { detail: data.detail, bubbles: true, composed: true }),
      );
    }
  };
}

if (!customElements.get('cuecast-show')) customElements.define('cuecast-show', CuecastShow);

declare global {
  interface HTMLElementTagNameMap {
    'cuecast-show': CuecastShow;
  }
}
