// The home page's show cards: a cover with reserved space (16:9, no layout shift), badges over
// it, the title as the card's one link (the whole card is its click target), the host.

import { useEffect, useState } from 'preact/hooks';
import { countdown, countdownSpoken, replayLabel, Show, startLabel, Upcoming } from './data';

/** One clock for every countdown on the page: re-renders its users once a second. */
const ticks = new Set<(now: number) => void>();
let timer: number | undefined;
function useNow(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    ticks.add(setNow);
    if (timer === undefined) {
      timer = window.setInterval(() => {
        const t = Date.now();
        ticks.forEach((f) => f(t));
      }, 1000);
    }
    return () => {
      ticks.delete(setNow);
      if (ticks.size === 0 && timer !== undefined) {
        clearInterval(timer);
        timer = undefined;
      }
    };
  }, []);
  return now;
}

interface CoverProps {
  src: string | null;
  title: string;
  eager?: boolean;
  priority?: boolean;
  children?: preact.ComponentChildren;
}

/** The cover image (or the shop's accent with the title's initial), 16:9, badges on top. */
export function Cover({ src, title, eager, priority, children }: CoverProps) {
  const [broken, setBroken] = useState(false);
  const initial = (title.trim()[0] ?? '•').toUpperCase();
  return (
    <div class="cover">
      {src && !broken ? (
        <img
          src={src}
          alt=""
          width={640}
          height={360}
          loading={eager ? 'eager' : 'lazy'}
          decoding="async"
          {...(priority ? { fetchpriority: 'high' } : {})}
          onError={() => setBroken(true)}
        />
      ) : (
        <div class="cover-placeholder" aria-hidden="true">
          <span>{initial}</span>
        </div>
      )}
      <div class="cover-badges">{children}</div>
    </div>
  );
}

function EyeIcon() {
  return (
    <svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false">
      <path
        fill="currentColor"
        d="M12 5c-5 0-9 4.5-10 7 1 2.5 5 7 10 7s9-4.5 10-7c-1-2.5-5-7-10-7zm0 11.5A4.5 4.5 0 1 1 12 7.5a4.5 4.5 0 0 1 0 9zm0-2.5a2 2 0 1 0 0-4 2 2 0 0 0 0 4z"
      />
    </svg>
  );
}

export function LiveCard({ show, priority, feature }: { show: Show; priority?: boolean; feature?: boolean }) {
  const viewers = typeof show.viewers === 'number' ? show.viewers : null;
  return (
    <article class={`card${feature ? ' feature' : ''}`} data-show={show.id}>
      <Cover src={show.cover_image_url} title={show.title} eager priority={priority}>
        <span class="badge live">
          <span class="live-dot" aria-hidden="true" />
          LIVE
        </span>
        {viewers !== null ? (
          <span class="badge scrim viewers">
            <EyeIcon />
            {viewers} watching
          </span>
        ) : null}
      </Cover>
      <div class="card-body">
        <h3 class="card-title">
          <a class="card-link" href={`/shows/${encodeURIComponent(show.id)}`}>
            {show.title}
          </a>
        </h3>
        <p class="card-meta">with {show.host}</p>
        {feature && show.description ? <p class="card-description">{show.description}</p> : null}
        {feature ? (
          <span class="button primary card-cta" aria-hidden="true">
            Watch now
          </span>
        ) : null}
      </div>
    </article>
  );
}

export function UpcomingCard({ show, eager }: { show: Upcoming; eager?: boolean }) {
  const now = useNow();
  const left = show.startsAt - now;
  const text = countdown(left);
  const iso = new Date(show.startsAt).toISOString();
  return (
    <article class="card" data-show={show.id}>
      <Cover src={show.cover} title={show.title} eager={eager}>
        <span class="badge scrim countdown" role="timer" aria-label={`Starts ${countdownSpoken(left)}`}>
          {text ? (
            <>
              <span class="countdown-label">Starts in</span> <span class="countdown-value">{text}</span>
            </>
          ) : (
            'Starting now'
          )}
        </span>
        {show.forYou ? <span class="badge for-you">Picked for you</span> : null}
      </Cover>
      <div class="card-body">
        <h3 class="card-title">
          <a class="card-link" href={`/shows/${encodeURIComponent(show.id)}`}>
            {show.title}
          </a>
        </h3>
        <p class="card-meta">
          <time dateTime={iso}>{startLabel(show.startsAt, now)}</time> · with {show.host}
        </p>
        {show.tags.length ? (
          <ul class="tags" aria-label="Tags">
            {show.tags.slice(0, 3).map((t) => (
              <li key={t}>{t}</li>
            ))}
          </ul>
        ) : null}
      </div>
    </article>
  );
}

export function ReplayCard({ show }: { show: Show }) {
  return (
    <article class="card" data-show={show.id}>
      <Cover src={show.cover_image_url} title={show.title}>
        <span class="badge scrim">
          <svg viewBox="0 0 24 24" width="14" height="14" aria-hidden="true" focusable="false">
            <path fill="currentColor" d="M8 5v14l11-7z" />
          </svg>
          Replay
        </span>
      </Cover>
      <div class="card-body">
        <h3 class="card-title">
          <a class="card-link" href={`/shows/${encodeURIComponent(show.id)}`}>
            {show.title}
          </a>
        </h3>
        <p class="card-meta">
          with {show.host}
          {replayLabel(show) ? ` · ${replayLabel(show)}` : ''}
        </p>
      </div>
    </article>
  );
}

/** The next show's countdown, for the "nobody is live" message. */
export function NextShow({ show }: { show: Upcoming }) {
  const now = useNow();
  const text = countdown(show.startsAt - now);
  return (
    <p class="empty-next">
      Next up: <a href={`/shows/${encodeURIComponent(show.id)}`}>{show.title}</a>{' '}
      {text ? (
        <>
          in <span class="countdown-value">{text}</span>
        </>
      ) : (
        'is starting now'
      )}
    </p>
  );
}
