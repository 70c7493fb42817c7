// `/`: live now, the shopper's upcoming shows (a carousel ranked for them, with countdowns) and
// replays. Everything is fetched before the first render of the lists, so nothing jumps when the
// data arrives (cards reserve their image space); refreshed every 30 s and on log in / out.

import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import '../shared/base.css';
import './home.css';
import { Header, useSession } from '../shared/header';
import { pageTitle, site } from '../shared/site';
import { requireLogin } from '../shared/login';
import { HomeData, loadHome } from './data';
import { LiveCard, NextShow, ReplayCard, UpcomingCard } from './cards';
import { Carousel } from './carousel';

const REFRESH_MS = 30_000;

function Home() {
  const claims = useSession();
  const user = claims?.sub ?? null;
  const [data, setData] = useState<HomeData | null>(null);
  const [failed, setFailed] = useState(false);
  const [attempt, setAttempt] = useState(0);
  const loaded = useRef(false);

  useEffect(() => {
    const abort = new AbortController();
    let timer: number | undefined;
    const load = async () => {
      try {
        const next = await loadHome(user, abort.signal);
        loaded.current = true;
        setData(next);
        setFailed(false);
      } catch (e) {
        if (abort.signal.aborted) return;
        console.warn('home: could not load the shows', e);
        // Keep what is on screen; say so only when there is nothing to show.
        if (!loaded.current) setFailed(true);
      }
      if (!abort.signal.aborted) timer = window.setTimeout(load, REFRESH_MS);
    };
    load();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [user, attempt]);

  useEffect(() => {
    document.title = pageTitle(data?.live.length ? `${data.live.length} live now` : undefined);
  }, [data?.live.length]);

  if (!data) {
    return (
      <main id="main" class="home" aria-busy={!failed}>
        <h1 class="visually-hidden">{site().shop_name}: live shopping</h1>
        {failed ? (
          <div class="empty error" role="alert">
            <h2>We couldn't load the shows</h2>
            <p>Check your connection and try again.</p>
            <button
              type="button"
              class="button primary"
              onClick={() => {
                setFailed(false);
                setAttempt((a) => a + 1);
              }}
            >
              Try again
            </button>
          </div>
        ) : (
          <div class="loading" role="status">
            <span class="visually-hidden">Loading shows…</span>
          </div>
        )}
      </main>
    );
  }

  const { live, upcoming, personal, replays } = data;
  return (
    <main id="main" class="home" key="loaded">
      <h1 class="visually-hidden">{site().shop_name}: live shopping</h1>

      <section class="home-section" aria-labelledby="live-heading">
        <div class="section-head">
          <h2 id="live-heading">
            Live now
            {live.length ? <span class="count">{live.length}</span> : null}
          </h2>
        </div>
        {live.length ? (
          <div class={`grid live-grid${live.length === 1 ? ' single' : ''}`}>
            {live.map((show, i) => (
              <LiveCard key={show.id} show={show} priority={i === 0} feature={live.length === 1} />
            ))}
          </div>
        ) : (
          <div class="empty">
            <p class="empty-title">Nobody is live right now.</p>
            {upcoming.length ? (
              <NextShow show={[...upcoming].sort((a, b) => a.startsAt - b.startsAt)[0]} />
            ) : (
              <p>New shows are announced here. Check back soon.</p>
            )}
          </div>
        )}
      </section>

      <section class="home-section" aria-labelledby="upcoming-heading">
        {upcoming.length ? (
          <Carousel
            label="Upcoming shows"
            labelledBy="upcoming-heading"
            keys={upcoming.map((s) => s.id)}
            slides={upcoming.map((show, i) => <UpcomingCard show={show} eager={!live.length && i < 3} />)}
            header={
              <>
                <h2 id="upcoming-heading">Upcoming shows</h2>
                <p class="section-note">
                  {personal ? (
                    <>Picked for you, {claims?.sub}</>
                  ) : claims ? (
                    'Popular and starting soon. Watch and shop to get picks for you.'
                  ) : (
                    <>
                      Popular and starting soon.{' '}
                      <button
                        type="button"
                        class="button link inline"
                        onClick={() => requireLogin('Log in to see the shows picked for you.')}
                      >
                        Log in
                      </button>{' '}
                      for picks made for you.
                    </>
                  )}
                </p>
              </>
            }
          />
        ) : (
          <>
            <div class="section-head">
              <h2 id="upcoming-heading">Upcoming shows</h2>
            </div>
            <div class="empty">
              <p class="empty-title">No shows are scheduled yet.</p>
              <p>Hosts announce their next shows here: check back soon.</p>
            </div>
          </>
        )}
      </section>

      <section class="home-section" aria-labelledby="replays-heading">
        <div class="section-head">
          <h2 id="replays-heading">Replays</h2>
        </div>
        {replays.length ? (
          <div class="grid replay-grid">
            {replays.map((show) => (
              <ReplayCard key={show.id} show={show} />
            ))}
          </div>
        ) : (
          <div class="empty">
            <p class="empty-title">No replays yet.</p>
            <p>Missed a show? Its replay appears here when it ends.</p>
          </div>
        )}
      </section>
    </main>
  );
}

document.title = pageTitle();
render(
  <>
    <Header />
    <Home />
  </>,
  document.getElementById('app')!,
);
