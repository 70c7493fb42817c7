// An accessible carousel (the WAI-ARIA APG carousel pattern): a region with
// aria-roledescription="carousel", slides as labelled groups in a scroll-snapping track that
// also scrolls by touch, previous/next buttons (announced through a status line rather than a
// live track, whose countdowns change every second), ←/→/Home/End between slides (focus moves),
// and auto-advance with a pause control. Auto-advance starts paused for people who ask for reduced motion, holds
// while the pointer is over the slides or focus is in them, and skips when every slide is in view.

import { ComponentChildren } from 'preact';
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';

/** Time between automatic advances. */
export const ADVANCE_MS = 6000;

const reducedMotion = () => window.matchMedia?.('(prefers-reduced-motion: reduce)').matches ?? false;

interface Props {
  /** The carousel's name ("Upcoming shows"). */
  label: string;
  /** The id of the heading that names it, if any. */
  labelledBy?: string;
  /** One child per slide; `keys` keeps them apart. */
  slides: ComponentChildren[];
  keys: string[];
  /** Shown left of the controls (the section's heading). */
  header?: ComponentChildren;
}

export function Carousel({ label, labelledBy, slides, keys, header }: Props) {
  const track = useRef<HTMLDivElement>(null);
  const [index, setIndex] = useState(0);
  const [edges, setEdges] = useState({ start: true, end: true });
  const [playing, setPlaying] = useState(() => !reducedMotion());
  const [hold, setHold] = useState({ hover: false, focus: false });
  /** What a screen reader hears after previous/next (not on auto-advance, not per countdown tick). */
  const [announcement, setAnnouncement] = useState('');
  const count = slides.length;
  const scrolls = !(edges.start && edges.end);

  const slideAt = (i: number) => track.current?.children[i] as HTMLElement | undefined;

  const measure = useCallback(() => {
    const el = track.current;
    if (!el) return;
    const first = slideAt(0);
    const origin = first ? first.offsetLeft : 0;
    let nearest = 0;
    let best = Infinity;
    for (let i = 0; i < el.children.length; i++) {
      const d = Math.abs((el.children[i] as HTMLElement).offsetLeft - origin - el.scrollLeft);
      if (d < best) {
        best = d;
        nearest = i;
      }
    }
    const start = el.scrollLeft <= 1;
    const end = el.scrollLeft + el.clientWidth >= el.scrollWidth - 1;
    // At the end of the track, the last slide is the one in view (it may not reach the start).
    setIndex(end && !start ? el.children.length - 1 : nearest);
    setEdges((e) => (e.start === start && e.end === end ? e : { start, end }));
  }, []);

  const go = useCallback((i: number, focus = false) => {
    const el = track.current;
    const slide = slideAt(i);
    const first = slideAt(0);
    if (!el || !slide || !first) return;
    el.scrollTo({ left: slide.offsetLeft - first.offsetLeft, behavior: reducedMotion() ? 'auto' : 'smooth' });
    if (focus) slide.querySelector<HTMLElement>('a, button')?.focus({ preventScroll: true });
  }, []);

  useLayoutEffect(() => {
    measure();
  }, [count, measure]);

  useEffect(() => {
    const el = track.current;
    if (!el) return;
    let frame = 0;
    const onScroll = () => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(measure);
    };
    const resize = new ResizeObserver(onScroll);
    resize.observe(el);
    el.addEventListener('scroll', onScroll, { passive: true });
    const hover = (on: boolean) => () => setHold((h) => ({ ...h, hover: on }));
    const enter = hover(true);
    const leave = hover(false);
    const focusIn = () => setHold((h) => ({ ...h, focus: true }));
    const focusOut = (event: FocusEvent) => {
      if (!el.contains(event.relatedTarget as Node | null)) setHold((h) => ({ ...h, focus: false }));
    };
    el.addEventListener('pointerenter', enter);
    el.addEventListener('pointerleave', leave);
    el.addEventListener('focusin', focusIn);
    el.addEventListener('focusout', focusOut);
    return () => {
      cancelAnimationFrame(frame);
      resize.disconnect();
      el.removeEventListener('scroll', onScroll);
      el.removeEventListener('pointerenter', enter);
      el.removeEventListener('pointerleave', leave);
      el.removeEventListener('focusin', focusIn);
      el.removeEventListener('focusout', focusOut);
    };
  }, [measure]);

  const held = hold.hover || hold.focus;
  const rotating = playing && !held && scrolls && count > 1;
  useEffect(() => {
    if (!rotating) return;
    const timer = window.setTimeout(() => go(edges.end ? 0 : index + 1), ADVANCE_MS);
    return () => clearTimeout(timer);
  }, [rotating, index, edges.end, go]);

  /** Previous/next: scroll there and say which slide it is. */
  const step = (i: number) => {
    const target = Math.max(0, Math.min(count - 1, i));
    go(target);
    const title = slideAt(target)?.querySelector('h3, h2')?.textContent ?? '';
    setAnnouncement(`Slide ${target + 1} of ${count}${title ? `: ${title}` : ''}`);
  };

  const onKeyDown = (event: KeyboardEvent) => {
    const target = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: count - 1 }[event.key];
    if (target === undefined || event.altKey || event.ctrlKey || event.metaKey) return;
    event.preventDefault();
    const focused = (event.target as HTMLElement).closest<HTMLElement>('[data-slide]');
    const from = focused ? Number(focused.dataset.slide) : index;
    const next = event.key === 'ArrowRight' ? from + 1 : event.key === 'ArrowLeft' ? from - 1 : target;
    go(Math.max(0, Math.min(count - 1, next)), true);
  };

  const trackId = `${labelledBy ?? 'carousel'}-track`;
  return (
    <div
      class="carousel"
      role="region"
      aria-roledescription="carousel"
      aria-label={labelledBy ? undefined : label}
      aria-labelledby={labelledBy}
      data-index={index}
      data-playing={String(playing)}
      data-rotating={String(rotating)}
    >
      <div class="carousel-head">
        <div class="carousel-title">{header}</div>
        <div class="carousel-controls" style={{ visibility: scrolls ? 'visible' : 'hidden' }}>
          <button
            type="button"
            class="button icon carousel-play"
            aria-label={playing ? 'Pause automatic slide show' : 'Start automatic slide show'}
            aria-controls={trackId}
            onClick={() => setPlaying((p) => !p)}
          >
            {playing ? (
              <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
                <path fill="currentColor" d="M7 5h4v14H7zm6 0h4v14h-4z" />
              </svg>
            ) : (
              <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
                <path fill="currentColor" d="M8 5v14l11-7z" />
              </svg>
            )}
          </button>
          <span class="carousel-position" aria-hidden="true">
            {Math.min(index + 1, count)} / {count}
          </span>
          <button
            type="button"
            class="button icon carousel-prev"
            aria-label="Previous slide"
            aria-controls={trackId}
            disabled={edges.start}
            onClick={() => step(index - 1)}
          >
            <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
              <path fill="currentColor" d="M15.4 7.4 14 6l-6 6 6 6 1.4-1.4L10.8 12z" />
            </svg>
          </button>
          <button
            type="button"
            class="button icon carousel-next"
            aria-label="Next slide"
            aria-controls={trackId}
            disabled={edges.end}
            onClick={() => step(index + 1)}
          >
            <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
              <path fill="currentColor" d="M8.6 16.6 10 18l6-6-6-6-1.4 1.4 4.6 4.6z" />
            </svg>
          </button>
        </div>
      </div>
      <div
        class="carousel-track"
        id={trackId}
        ref={track}
        onKeyDown={onKeyDown}
      >
        {slides.map((slide, i) => (
          <div
            key={keys[i]}
            class="carousel-slide"
            role="group"
            aria-roledescription="slide"
            aria-label={`${i + 1} of ${count}`}
            data-slide={i}
          >
            {slide}
          </div>
        ))}
      </div>
      <p class="visually-hidden" role="status">
        {announcement}
      </p>
    </div>
  );
}
