// The watch page: `/shows/{id}` (and `/embed/shows/{id}` inside a shop's iframe: no site header,
// compact layout). One page for live and replay: the video with the product moments it carries,
// the show's products, the chat, the cart. docs/web.md describes it.

import { render } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import '../shared/base.css';
import './watch.css';
import { api, ApiError } from '../shared/api';
import { hostListens, notifyHost, type EmbedProduct } from '../shared/embed-bridge';
import { Header } from '../shared/header';
import { requireLogin } from '../shared/login';
import { pageTitle } from '../shared/site';
import { Chat } from './chat';
import { cart, EventQueue, formatPrice, type CartItem } from './commerce';
import type { CueProduct, MediaCue } from './cues';
import { Player, type PlayerState } from './player';
import {
  Banner,
  CartDrawer,
  ForProduct,
  fromCue,
  fromRecommended,
  ProductRow,
  type BuyActions,
  type CatalogProduct,
  type ShopProduct,
} from './shop';
import type { Show } from '../shared/show';


const embedded = location.pathname.startsWith('/embed/');
const showId = decodeURIComponent(location.pathname.replace(/\/+$/, '').split('/').pop() ?? '');
const LIVE_REFRESH_MS = 20000;
const BEHIND_S = 6;

/** What tests and the embed layer may read: the player and when each banner appeared. */
interface DebugHooks {
  player: Player | null;
  banners: { id: string; currentTime: number; pdt: number | null; at: number }[];
}
const hooks: DebugHooks = { player: null, banners: [] };
(window as unknown as { cuecast: DebugHooks }).cuecast = hooks;

function viewersText(n: number | undefined): string | null {
  // Nobody counted yet (this page's first heartbeat is on its way): say nothing rather than 0.
  if (typeof n !== 'number' || n < 1) return null;
  return n === 1 ? '1 watching' : `${n.toLocaleString()} watching`;
}

function SpeakerIcon({ muted }: { muted: boolean }) {
  return (
    <svg width="20" height="20" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">
      <path d="M11 5 6 9H2v6h4l5 4V5z" fill="currentColor" />
      {muted ? (
        <path d="m23 9-6 6M17 9l6 6" />
      ) : (
        <path d="M15.5 8.5a5 5 0 0 1 0 7M19 5a10 10 0 0 1 0 14" />
      )}
    </svg>
  );
}

function LiveBadge({ state, onJump }: { state: PlayerState; onJump(): void }) {
  const latency = state.latency;
  const behind = latency !== null && latency > Math.max(BEHIND_S, (state.target ?? 0) + 3);
  if (behind || (!state.playing && latency !== null)) {
    return (
      <button type="button" class="badge-button behind" onClick={onJump} data-latency={latency?.toFixed(2)}>
        Behind live — jump to live
      </button>
    );
  }
  return (
    <span class="badge live" data-latency={latency?.toFixed(2) ?? ''} title="Distance to the live edge">
      LIVE{latency !== null ? <span class="latency"> · {latency.toFixed(1)} s</span> : null}
    </span>
  );
}

function App() {
  const [show, setShow] = useState<Show | null>(null);
  const [missing, setMissing] = useState<string | null>(null);
  const [catalog, setCatalog] = useState(new Map<string, CatalogProduct>());
  const [ranked, setRanked] = useState<ShopProduct[]>([]);
  const [pstate, setPstate] = useState<PlayerState>({
    playing: false,
    muted: true,
    latency: null,
    target: null,
    live: true,
    trouble: null,
  });
  const [cue, setCue] = useState<MediaCue | null>(null);
  const [mediaTime, setMediaTime] = useState(0);
  const [items, setItems] = useState<CartItem[]>(cart.items());
  const [drawer, setDrawer] = useState(false);
  const [announce, setAnnounce] = useState('');
  const [mode, setMode] = useState<'live' | 'replay' | null>(null);
  const [session, setSession] = useState<string | null>(null);
  const video = useRef<HTMLVideoElement>(null);
  const player = useRef<Player | null>(null);
  const events = useMemo(() => new EventQueue(showId), []);
  const catalogRef = useRef(catalog);
  catalogRef.current = catalog;

  useEffect(() => cart.subscribe(setItems), []);

  // The show, refreshed (viewers, state); faster while the stream is in trouble.
  const loadShow = async () => {
    try {
      const s = await api<Show>(`/api/shows/${encodeURIComponent(showId)}`);
      setShow(s);
      return s;
    } catch (e) {
      if (e instanceof ApiError && (e.status === 404 || e.status === 400)) setMissing('This show does not exist.');
      return null;
    }
  };
  useEffect(() => {
    void loadShow();
  }, []);
  useEffect(() => {
    const every = pstate.trouble || show?.state === 'scheduled' ? 3000 : LIVE_REFRESH_MS;
    const t = window.setInterval(() => void loadShow(), every);
    return () => window.clearInterval(t);
  }, [pstate.trouble, show?.state]);

  useEffect(() => {
    if (show) document.title = pageTitle(show.title);
  }, [show?.title]);

  // The catalog's products of the show (their shop URLs, for the hand-off).
  useEffect(() => {
    if (!show) return;
    const missingIds = show.products.filter((id) => !catalogRef.current.has(id));
    if (missingIds.length === 0) return;
    void Promise.all(
      missingIds.map((id) =>
        api<CatalogProduct>(`/api/catalog/products/${encodeURIComponent(id)}`).catch(() => null),
      ),
    ).then((found) => {
      const next = new Map(catalogRef.current);
      for (const p of found) if (p) next.set(p.id, p);
      setCatalog(next);
    });
  }, [show?.products.join(',')]);

  // The show's products, trending-ranked while live.
  useEffect(() => {
    if (!show) return;
    let stopped = false;
    const load = () =>
      api<{ items: { product_id: string }[] }>(`/api/shows/${encodeURIComponent(showId)}/products`)
        .then((r) => !stopped && setRanked(r.items.map((i) => fromRecommended(i, catalogRef.current))))
        .catch(() => {});
    void load();
    const t = show.state === 'live' ? window.setInterval(load, LIVE_REFRESH_MS) : undefined;
    return () => {
      stopped = true;
      window.clearInterval(t);
    };
  }, [show?.state, catalog]);

  // "Watching now": a heartbeat every 20 s.
  useEffect(() => {
    if (!show || show.state === 'ended') return;
    const beat = () => {
      events.push({ type: 'view_show' });
      void events.flush();
    };
    beat();
    const t = window.setInterval(beat, LIVE_REFRESH_MS);
    return () => window.clearInterval(t);
  }, [show?.state === 'ended', !!show]);

  // Which source: live while the show is live, the replay once it ended.
  useEffect(() => {
    if (!show) return;
    if (show.state === 'live' && mode === null) setMode('live');
    if (show.state === 'ended' && show.replay && mode === null) setMode('replay');
  }, [show?.state, show?.replay?.playlist, mode]);

  // The player.
  useEffect(() => {
    const el = video.current;
    if (!el || !show || mode === null) return;
    if (!player.current) {
      player.current = new Player(el, {
        state: setPstate,
        cue: (c) => {
          setCue(c);
          if (c) {
            hooks.banners.push({
              id: c.payload.id,
              currentTime: el.currentTime,
              pdt: player.current?.playingDate() ?? null,
              at: Date.now(),
            });
          }
        },
        time: (t) => setMediaTime(t),
      });
      hooks.player = player.current;
    }
    if (mode === 'live') player.current.load(show.playback_url, true);
    else if (show.replay) {
      player.current.load(show.replay.playlist, false);
      api<{ session: string }>(`/api/recordings/${encodeURIComponent(show.replay.recording)}`)
        .then((r) => setSession(r.session))
        .catch(() => {});
    }
  }, [mode]);
  useEffect(() => () => player.current?.destroy(), []);

  // Recovery: while the show is live and the stream is gone or ended, reload the multivariant
  // playlist every few seconds; once the show is over, offer the replay.
  useEffect(() => {
    if (mode !== 'live' || !pstate.trouble || show?.state !== 'live') return;
    const t = window.setInterval(() => player.current?.reload(), 4000);
    return () => window.clearInterval(t);
  }, [mode, pstate.trouble, show?.state]);

  const product = cue ? fromCue(cue.payload, catalog) : null;
  useEffect(() => {
    if (!cue || !product) return;
    events.push({ type: 'impression', product: product.id, cue: cue.payload.id });
    setAnnounce(`Now showing: ${product.title}${product.price ? `, ${formatPrice(product.price, product.currency)}` : ''}`);
  }, [cue?.payload.id]);

  const cueId = (explicit?: string) => explicit ?? cue?.payload.id;

  const urlOf = (p: ShopProduct) => p.url ?? catalogRef.current.get(p.id)?.url;
  const embedProduct = (p: ShopProduct): EmbedProduct => ({
    id: p.id,
    title: p.title,
    price: p.price,
    currency: p.currency,
    image_url: p.image_url,
    url: urlOf(p),
  });

  // Embedded in a shop's page that listens (shared/embed-bridge.ts), the shop's own cart takes
  // over: no login here, no built-in cart. Otherwise the built-in cart, for logged-in shoppers.
  const actions: BuyActions = {
    buy: async (p, c) => {
      const cueOnScreen = cueId(c) ?? null;
      if (!hostListens('checkout') && !(await requireLogin('Log in to buy from the show.'))) return;
      events.push({ type: 'cta_click', product: p.id, cue: cueOnScreen ?? undefined });
      void events.flush();
      if (notifyHost('checkout', { show: showId, product: embedProduct(p), cue: cueOnScreen, quantity: 1 })) {
        setAnnounce(`${p.title}: continue in the shop`);
        return;
      }
      const url = urlOf(p);
      if (url) window.open(url, '_blank', 'noopener');
    },
    addToCart: async (p, c) => {
      const cueOnScreen = cueId(c) ?? null;
      if (!hostListens('add_to_cart') && !(await requireLogin('Log in to add products to your cart.'))) return;
      events.push({ type: 'add_to_cart', product: p.id, cue: cueOnScreen ?? undefined, quantity: 1 });
      void events.flush();
      if (notifyHost('add_to_cart', { show: showId, product: embedProduct(p), cue: cueOnScreen, quantity: 1 })) {
        setAnnounce(`${p.title} added to the shop's cart`);
        return;
      }
      cart.add({
        product: p.id,
        title: p.title,
        price: p.price,
        currency: p.currency,
        image_url: p.image_url,
        url: urlOf(p),
        cue: cueOnScreen ?? undefined,
        show: showId,
      });
      setAnnounce(`${p.title} added to your cart`);
    },
    open: (p, c) => {
      events.push({ type: 'click', product: p.id, cue: cueId(c) });
      const url = urlOf(p);
      if (url) window.open(url, '_blank', 'noopener');
    },
  };
  const openChatProduct = (p: CueProduct) => {
    const c = catalog.get(p.id);
    actions.open({ id: p.id, title: p.title ?? c?.title ?? p.id, url: p.cta?.url ?? c?.url });
  };
  const checkout = (item: CartItem) => {
    events.push({ type: 'cta_click', product: item.product, cue: item.cue });
    void events.flush();
    const line = (i: CartItem) => ({
      product: { id: i.product, title: i.title, price: i.price, currency: i.currency, image_url: i.image_url, url: i.url },
      quantity: i.quantity,
      cue: i.cue ?? null,
    });
    const handed = notifyHost('checkout', {
      show: showId,
      ...line(item),
      items: items.map(line),
    });
    if (!handed && item.url) window.open(item.url, '_blank', 'noopener');
  };
  const seen = (p: ShopProduct) => events.push({ type: 'impression', product: p.id, cue: cue?.payload.id });

  if (missing) {
    return (
      <main id="main" class="watch-missing">
        <h1>{missing}</h1>
        <a href="/">See what is live</a>
      </main>
    );
  }

  const ended = show?.state === 'ended';
  const offerEnd =
    cue && cue.payload.kind === 'offer'
      ? typeof cue.payload.data?.ends_at === 'string'
        ? Date.parse(cue.payload.data.ends_at as string)
        : cue.payload.start_date && typeof cue.payload.duration_s === 'number'
          ? Date.parse(cue.payload.start_date) + cue.payload.duration_s * 1000
          : null
      : null;
  let notice: preact.ComponentChildren = null;
  if (show?.state === 'scheduled') {
    notice = (
      <>
        <strong>Starting soon</strong>
        <span>
          {new Date(show.scheduled_start).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })}
        </span>
      </>
    );
  } else if (mode === 'live' && ended) {
    notice = (
      <>
        <strong>This show has ended</strong>
        {show?.replay ? (
          <button type="button" class="button primary" onClick={() => setMode('replay')}>
            Watch the replay
          </button>
        ) : (
          <span>The replay will be here shortly.</span>
        )}
      </>
    );
  } else if (mode === 'live' && pstate.trouble) {
    notice = (
      <>
        <strong>The host will be right back</strong>
        <span>Stay here: the show resumes by itself.</span>
      </>
    );
  } else if (mode === 'replay' && pstate.trouble) {
    notice = <strong>The replay could not be loaded.</strong>;
  } else if (ended && !show?.replay) {
    notice = <strong>This show has ended</strong>;
  }
  const viewers = viewersText(show?.viewers);
  const cartCount = items.reduce((n, i) => n + i.quantity, 0);

  return (
    <>
      {embedded ? null : <Header />}
      <main id="main" class={embedded ? 'watch embed' : 'watch'}>
        <div class="stage">
          <div class="player">
            <video
              ref={video}
              muted
              playsInline
              autoplay
              poster={show?.cover_image_url ?? undefined}
              aria-label={show ? `Video: ${show.title}` : 'Video'}
            />
            <div class="player-top scrim-top">
              {pstate.muted ? (
                <button
                  type="button"
                  class="badge-button unmute"
                  onClick={() => {
                    const v = video.current;
                    if (v) {
                      v.muted = false;
                      void v.play().catch(() => {});
                    }
                  }}
                >
                  <SpeakerIcon muted /> Tap to unmute
                </button>
              ) : (
                <button type="button" class="badge-button unmute" onClick={() => video.current && (video.current.muted = true)}>
                  <SpeakerIcon muted={false} /> Mute
                </button>
              )}
              <span class="player-badges">
                {mode === 'live' && !ended ? <LiveBadge state={pstate} onJump={() => player.current?.goLive()} /> : null}
                {mode === 'replay' ? <span class="badge">REPLAY</span> : null}
                {viewers && !ended ? <span class="badge viewers">{viewers}</span> : null}
              </span>
            </div>
            {notice ? <div class="player-notice">{notice}</div> : null}
            <div class="banner-slot">
              {cue && product ? <Banner cue={cue.payload} product={product} offerEnd={offerEnd} actions={actions} /> : null}
            </div>
          </div>
          <div class="show-info">
            <div class="show-text">
              <h1>{show?.title ?? ' '}</h1>
              <p>{show ? `with ${show.host}` : ' '}</p>
            </div>
            <button type="button" class="button cart-button" onClick={() => setDrawer(true)} aria-haspopup="dialog">
              Cart{cartCount ? <span class="cart-count"> ({cartCount})</span> : null}
            </button>
          </div>
        </div>
        <aside class="side">
          {show ? (
            <Chat
              room={show.stream}
              replay={mode === 'replay' ? { session } : null}
              mediaTime={mediaTime}
              onProduct={openChatProduct}
            />
          ) : null}
        </aside>
        <div class="shop">
          {show?.description ? <p class="show-description">{show.description}</p> : null}
          <ProductRow
            id="row-show"
            title={show?.state === 'live' ? 'In this show — trending now' : 'In this show'}
            products={ranked}
            highlight={product?.id}
            actions={actions}
            onSeen={seen}
          />
          <ForProduct product={product} catalog={catalog} actions={actions} onSeen={seen} />
        </div>
      </main>
      <div class="visually-hidden" role="status" aria-live="polite">
        {announce}
      </div>
      <CartDrawer open={drawer} items={items} onClose={() => setDrawer(false)} onCheckout={checkout} />
    </>
  );
}

document.title = pageTitle();
render(<App />, document.getElementById('app')!);
