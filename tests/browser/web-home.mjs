#!/usr/bin/env node
// `/` in a real browser: live now (a show ffmpeg is publishing), the upcoming-shows carousel as
// the recommender ranks it — for an anonymous viewer, then for a logged-in one (through the
// header's login dialog) whose history puts another show first — with ticking countdowns,
// keyboard navigation, auto-advance and its pause control (and reduced motion), replays (a show
// that ended and was recorded); empty states; axe-core desktop and phone; no console errors; CLS
// and LCP measured in the page; the default accent's contrast; screenshots to tests/artifacts/.
//
//   CUECAST_BIN=target/debug/cuecast node tests/browser/web-home.mjs

import {
  ADMIN, assertNoConsoleErrors, axe, call, check, main, newPage, publish, screenshot, sleep, user, waitFor,
} from './cuecast.mjs';
import { coverSvg, serveOrigin } from './origin.mjs';

const ADVANCE_MS = 6000; // web/src/home/carousel.tsx

/** Layout shift and largest contentful paint, observed from the first byte. */
function observeVitals() {
  window.__cls = 0;
  window.__lcp = 0;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) if (!entry.hadRecentInput) window.__cls += entry.value;
  }).observe({ type: 'layout-shift', buffered: true });
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) window.__lcp = entry.startTime;
  }).observe({ type: 'largest-contentful-paint', buffered: true });
}

/** Web Vitals' "good" LCP. */
const LCP_BUDGET_MS = 2500;

/**
 * Checks a page's LCP against the budget. The first load shares the two cores with the other
 * browser tests and their servers, so a load over budget is measured once more on a fresh page
 * (same device, same URL) before it fails: a page whose largest paint waits on something slow
 * is over budget both times, a load that met a busy moment is not.
 */
async function checkLcp(browser, url, device, lcp) {
  if (lcp > 0 && lcp <= LCP_BUDGET_MS) return;
  console.log(`${device}: LCP ${Math.round(lcp)} ms over ${LCP_BUDGET_MS} ms on the first load; measuring a fresh load`);
  const again = await newPage(browser, device);
  await again.addInitScript(observeVitals);
  await again.goto(url);
  await again.waitForSelector('.carousel .card');
  await sleep(2500);
  const second = await again.evaluate(() => window.__lcp);
  console.log(`${device}: LCP ${Math.round(second)} ms on a fresh load`);
  check(second > 0 && second <= LCP_BUDGET_MS, `${device}: LCP ${lcp} ms, then ${second} ms on a fresh load`);
  assertNoConsoleErrors(again);
  await again.context().close();
}

const carouselOrder = (page) =>
  page.$$eval('.carousel .carousel-slide .card', (cards) => cards.map((c) => c.dataset.show));

/** `2h 03m 15s` / `59m 59s` / `1d 2h 03m` → seconds. */
function seconds(text) {
  let total = 0;
  for (const [, n, unit] of text.matchAll(/(\d+)([dhms])/g)) {
    total += Number(n) * { d: 86400, h: 3600, m: 60, s: 1 }[unit];
  }
  return total;
}

async function showState(server, id) {
  const r = await call(server, 'GET', `/api/shows/${id}`);
  return r.body;
}

async function scheduleShow(server, body) {
  const r = await call(server, 'POST', '/api/shows', { token: ADMIN, body });
  check(r.status === 201, `create show ${body.title}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.id;
}

await main(async ({ server, browser }) => {
  const images = await serveOrigin({
    '/covers/live.svg': { type: 'image/svg+xml', body: coverSvg('Sneaker drop', '#3a0ca3', '#f72585') },
    '/covers/breakfast.svg': { type: 'image/svg+xml', body: coverSvg('Breakfast club', '#6a4c93', '#ffca3a') },
    '/covers/party.svg': { type: 'image/svg+xml', body: coverSvg('Party snacks', '#0b525b', '#90be6d') },
    '/covers/replay.svg': { type: 'image/svg+xml', body: coverSvg('Skincare Q&A', '#14213d', '#fca311') },
  });
  try {
    // Empty: every section says so, in words, and the page is still accessible.
    const empty = await newPage(browser, 'desktop');
    await empty.goto(server.url('/'));
    await empty.waitForSelector('.home-section');
    const emptyText = await empty.$$eval('.empty .empty-title', (els) => els.map((e) => e.textContent));
    check(emptyText.length === 3, `three empty states: ${JSON.stringify(emptyText)}`);
    check(/Nobody is live/.test(emptyText[0]) && /No shows are scheduled/.test(emptyText[1]) && /No replays/.test(emptyText[2]),
      `empty states: ${JSON.stringify(emptyText)}`);
    await axe(empty, 'home, empty');
    assertNoConsoleErrors(empty);
    await empty.context().close();

    // The shop: four hosts, a catalog, three scheduled shows (different hosts, tags, products),
    // one going live with ffmpeg on `demo`, one recorded on `second` that ends (a replay).
    for (const host of ['alice', 'bob', 'carl', 'dana', 'erin']) await user(server, host, ['host']);
    const product = (id, title, category) => ({ id, title, brand: 'Test', category, price: '3.50', currency: 'USD' });
    let r = await call(server, 'POST', '/api/catalog/products', {
      token: ADMIN,
      body: [
        product('bread', 'Sourdough loaf', 'Bakery > Bread'), product('butter', 'Salted butter', 'Dairy > Butter'),
        product('jam', 'Strawberry jam', 'Pantry > Spreads'), product('chips', 'Sea salt chips', 'Snacks > Chips'),
        product('salsa', 'Tomato salsa', 'Snacks > Dips'), product('cheese', 'Cheddar', 'Dairy > Cheese'),
        product('milk-oat', 'Oat milk', 'Dairy > Milk'), product('sneaker', 'Court sneaker', 'Shoes > Sneakers'),
        product('serum', 'Vitamin C serum', 'Beauty > Skincare'),
      ],
    });
    check(r.status === 200, `catalog: ${r.status} ${JSON.stringify(r.body)}`);
    const at = (hours) => new Date(Date.now() + hours * 3600e3).toISOString();
    const breakfast = await scheduleShow(server, {
      title: 'Breakfast club: bakery favourites', stream: 'demo', host: 'alice', scheduled_start: at(2),
      products: ['bread', 'butter', 'jam'], tags: ['breakfast'], cover_image_url: images.url('/covers/breakfast.svg'),
    });
    const party = await scheduleShow(server, {
      title: 'Party snacks for the weekend', stream: 'demo', host: 'bob', scheduled_start: at(5),
      products: ['chips', 'salsa'], tags: ['party'], cover_image_url: images.url('/covers/party.svg'),
    });
    const dairy = await scheduleShow(server, {
      title: 'The cheese board', stream: 'second', host: 'carl', scheduled_start: at(27),
      products: ['cheese', 'milk-oat'], tags: ['dairy'],
    });
    const live = await scheduleShow(server, {
      title: 'Sneaker drop: court classics', description: 'Three colourways, live try-ons and your questions answered.',
      stream: 'demo', host: 'dana', scheduled_start: at(0), products: ['sneaker'], tags: ['shoes'],
      cover_image_url: images.url('/covers/live.svg'),
    });
    const replay = await scheduleShow(server, {
      title: 'Skincare Q&A', stream: 'second', host: 'erin', scheduled_start: at(0), products: ['serum'],
      tags: ['beauty'], cover_image_url: images.url('/covers/replay.svg'),
    });
    const demo = publish(server.rtmpUrl('demo-key'), 300);
    const second = publish(server.rtmpUrl('second-key'), 6);
    try {
      await waitFor('the live show to go live', async () => (await showState(server, live)).state === 'live', 20000, 250);
      await waitFor('the recorded show to end with a replay', async () => {
        const s = await showState(server, replay);
        return s.state === 'ended' && s.replay;
      }, 30000, 250);
      await second.exited;

      // What the recommender says for an anonymous shopper.
      r = await call(server, 'GET', '/api/recommendations/upcoming-shows');
      check(r.status === 200, `upcoming: ${r.status}`);
      const apiCold = r.body.items.map((i) => i.show_id);
      check(apiCold.length === 3 && [breakfast, party, dairy].every((id) => apiCold.includes(id)),
        `anonymous upcoming: ${JSON.stringify(apiCold)}`);

      // Anonymous, desktop.
      const page = await newPage(browser, 'desktop');
      await page.addInitScript(observeVitals);
      const started = Date.now();
      await page.goto(server.url('/'));
      await page.waitForSelector('.carousel .card');
      const cold = await carouselOrder(page);
      check(JSON.stringify(cold) === JSON.stringify(apiCold), `the carousel shows the ranking: ${cold} vs ${apiCold}`);

      // Live now: the live show, its badge, host, link; replays: the ended one.
      const liveCard = await page.$eval(`.live-grid .card[data-show="${live}"]`, (card) => ({
        badge: card.querySelector('.badge.live')?.textContent.trim(),
        href: card.querySelector('a.card-link')?.getAttribute('href'),
        title: card.querySelector('.card-title')?.textContent,
        meta: card.querySelector('.card-meta')?.textContent,
        viewers: card.querySelector('.viewers')?.textContent ?? null,
        loading: card.querySelector('img')?.getAttribute('loading'),
        complete: card.querySelector('img')?.complete && card.querySelector('img')?.naturalWidth > 0,
      }));
      check(liveCard.badge === 'LIVE' && liveCard.href === `/shows/${live}`, `live card ${JSON.stringify(liveCard)}`);
      check(liveCard.title === 'Sneaker drop: court classics' && liveCard.meta === 'with dana', `live card ${JSON.stringify(liveCard)}`);
      check(liveCard.loading === 'eager' && liveCard.complete, `live cover eager and loaded: ${JSON.stringify(liveCard)}`);
      const liveJson = await showState(server, live);
      if (typeof liveJson.viewers === 'number') {
        check(liveCard.viewers === `${liveJson.viewers} watching`, `viewers ${liveCard.viewers} vs ${liveJson.viewers}`);
      } else {
        console.log('note: this server has no `viewers` in the show JSON (cuecast-main): the count is not shown');
      }
      const replays = await page.$$eval('.replay-grid .card', (cards) => cards.map((c) => ({
        id: c.dataset.show, loading: c.querySelector('img')?.getAttribute('loading'), href: c.querySelector('a')?.getAttribute('href'),
      })));
      check(replays.length === 1 && replays[0].id === replay && replays[0].loading === 'lazy' && replays[0].href === `/shows/${replay}`,
        `replays ${JSON.stringify(replays)}`);
      check(!cold.includes(live) && !cold.includes(replay), 'only scheduled shows are upcoming');
      // Every cover keeps its 16:9 box, image or not (no shift when images arrive).
      const ratios = await page.$$eval('.cover', (covers) => covers.map((c) => c.getBoundingClientRect().height / c.getBoundingClientRect().width));
      check(ratios.length === 5 && ratios.every((x) => Math.abs(x - 9 / 16) < 0.01), `cover ratios ${ratios}`);
      const placeholder = await page.$eval(`.carousel .card[data-show="${dairy}"]`, (c) => Boolean(c.querySelector('.cover-placeholder')) && !c.querySelector('img'));
      check(placeholder, 'a show without a cover gets the placeholder');
      check((await page.title()) === '1 live now · cuecast live', `title ${await page.title()}`);

      // The countdown ticks, and says the right time.
      const countdown = `.carousel .card[data-show="${breakfast}"] .countdown-value`;
      // Against the wall time between the two reads (a loaded machine stretches the sleep).
      const before1 = Date.now();
      const t1 = seconds(await page.textContent(countdown));
      const after1 = Date.now();
      const expected = (Date.parse((await showState(server, breakfast)).scheduled_start) - Date.now()) / 1000;
      await sleep(4100);
      const before2 = Date.now();
      const t2 = seconds(await page.textContent(countdown));
      const after2 = Date.now();
      // The page re-renders once a second, so either read may show a value up to one tick old
      // (plus a late timer on a loaded machine), and each is rounded down to a whole second.
      const least = Math.max(1, (before2 - after1) / 1000 - 2);
      const most = (after2 - before1) / 1000 + 2.5;
      check(t1 - t2 >= least && t1 - t2 <= most, `the countdown ticks: ${t1} → ${t2} over ${((after2 - before1) / 1000).toFixed(1)} s`);
      check(Math.abs(t1 - expected) <= 3, `the countdown says ${t1} s, the show starts in ${expected.toFixed(1)} s`);

      // Page quality: vitals (measured from navigation), contrast of the default accent, axe.
      await sleep(Math.max(0, 3000 - (Date.now() - started)));
      const vitals = await page.evaluate(() => ({ cls: window.__cls, lcp: window.__lcp }));
      console.log(`desktop: CLS ${vitals.cls.toFixed(4)}, LCP ${Math.round(vitals.lcp)} ms`);
      check(vitals.cls <= 0.1, `CLS ${vitals.cls}`);
      await checkLcp(browser, server.url('/'), 'desktop', vitals.lcp);
      const colours = await page.evaluate(() => {
        const root = getComputedStyle(document.documentElement);
        const badge = getComputedStyle(document.querySelector('.badge.live'));
        return {
          accent: root.getPropertyValue('--accent').trim(),
          badge: [badge.color, badge.backgroundColor],
          font: getComputedStyle(document.body).fontFamily,
        };
      });
      const rgb = (s) => s.match(/\d+/g).slice(0, 3).map(Number);
      const hex = (h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
      const lum = ([r, g, b]) => {
        const f = (c) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      const ratio = (a, b) => {
        const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
        return (x + 0.05) / (y + 0.05);
      };
      check(colours.accent === '#b4235a', `default accent ${colours.accent}`);
      const onWhite = ratio(hex(colours.accent), [255, 255, 255]);
      const badgeRatio = ratio(rgb(colours.badge[0]), rgb(colours.badge[1]));
      console.log(`default accent ${colours.accent}: ${onWhite.toFixed(2)}:1 on white, LIVE badge ${badgeRatio.toFixed(2)}:1`);
      check(onWhite >= 4.5 && badgeRatio >= 4.5, `accent contrast ${onWhite} / badge ${badgeRatio}`);
      await axe(page, 'home desktop');
      await screenshot(page, 'home-desktop');
      await page.evaluate(() => document.getElementById('replays-heading').scrollIntoView());
      await screenshot(page, 'home-desktop-replays');
      await page.evaluate(() => window.scrollTo(0, 0));

      // A shopper with a history: clicks and a purchase of the last-ranked show's products.
      const target = cold[cold.length - 1];
      const carol = await user(server, 'carol', ['send']);
      const targetProducts = (await showState(server, target)).products;
      r = await call(server, 'POST', '/api/events', {
        token: carol.token,
        body: { events: [
          { type: 'view_show', visitor: 'carol-page', show: target },
          ...targetProducts.map((p) => ({ type: 'click', visitor: 'carol-page', show: target, product: p })),
        ] },
      });
      check(r.status === 202, `carol's clicks: ${r.status} ${JSON.stringify(r.body)}`);
      r = await call(server, 'POST', '/api/events', {
        token: ADMIN,
        body: { events: [{ type: 'purchase', user: 'carol', show: target, product: targetProducts[0], order: 'o-carol-1', quantity: 1, price: '3.50' }] },
      });
      check(r.status === 202, `carol's purchase: ${r.status} ${JSON.stringify(r.body)}`);
      const warmApi = await waitFor('carol\'s personal upcoming shows', async () => {
        const a = await call(server, 'GET', '/api/recommendations/upcoming-shows', { token: carol.token });
        return a.body.fallback === false && a.body.items[0]?.show_id === target ? a.body.items.map((i) => i.show_id) : null;
      }, 10000, 100);

      // She logs in through the header's dialog; the carousel re-ranks without a reload.
      await page.click('.site-header button:has-text("Log in")');
      await page.waitForSelector('dialog.login-dialog[open]');
      await page.fill('#login-username', carol.username);
      await page.fill('#login-password', carol.password);
      await page.click('.login-form button[type="submit"]');
      await page.waitForSelector('dialog.login-dialog', { state: 'detached' });
      const warm = await waitFor('the carousel in carol\'s order', async () => {
        const order = await carouselOrder(page);
        return order[0] === target ? order : null;
      }, 5000);
      console.log(`anonymous order ${cold.join(', ')}; carol's ${warm.join(', ')}`);
      check(JSON.stringify(warm) !== JSON.stringify(cold), 'a different order for the shopper with a history');
      check(JSON.stringify(warm) === JSON.stringify(warmApi), `the page shows her ranking: ${warm} vs ${warmApi}`);
      const note = await page.textContent('.carousel .section-note');
      check(/Picked for you, carol/.test(note), `note ${note}`);
      check(await page.$(`.carousel .card[data-show="${target}"] .badge.for-you`), 'her pick is marked "Picked for you"');
      check((await page.textContent('.site-header .site-user')) === 'carol', 'the header says who is logged in');
      await screenshot(page, 'home-desktop-carol');
      assertNoConsoleErrors(page);

      // Phone: the carousel scrolls (one card and a peek); keyboard, auto-advance, pause.
      const phone = await newPage(browser, 'phone');
      await phone.addInitScript(observeVitals);
      await phone.goto(server.url('/'));
      await phone.waitForSelector('.carousel .card');
      const layout = await phone.evaluate(() => {
        const track = document.querySelector('.carousel-track');
        return {
          scrolls: track.scrollWidth > track.clientWidth,
          overflow: document.documentElement.scrollWidth > window.innerWidth,
          buttons: [...document.querySelectorAll('.carousel-controls .button, .site-header .button')]
            .map((b) => b.getBoundingClientRect()).map((b) => Math.min(b.width, b.height)),
        };
      });
      check(layout.scrolls && !layout.overflow, `phone layout ${JSON.stringify(layout)}`);
      check(layout.buttons.every((s) => s >= 44), `phone controls ≥ 44 px: ${layout.buttons}`);
      await sleep(2500);
      const phoneVitals = await phone.evaluate(() => ({ cls: window.__cls, lcp: window.__lcp }));
      console.log(`phone: CLS ${phoneVitals.cls.toFixed(4)}, LCP ${Math.round(phoneVitals.lcp)} ms`);
      check(phoneVitals.cls <= 0.1, `phone vitals ${JSON.stringify(phoneVitals)}`);
      await checkLcp(browser, server.url('/'), 'phone', phoneVitals.lcp);
      await axe(phone, 'home phone');
      await screenshot(phone, 'home-phone');
      await phone.evaluate(() => document.getElementById('upcoming-heading').scrollIntoView());
      await screenshot(phone, 'home-phone-upcoming');

      // Auto-advance runs, the pause control stops it, play starts it again.
      const carousel = '.carousel';
      const state = () => phone.$eval(carousel, (c) => ({
        index: Number(c.dataset.index), playing: c.dataset.playing, rotating: c.dataset.rotating,
        left: Math.round(c.querySelector('.carousel-track').scrollLeft),
      }));
      let s = await state();
      check(s.playing === 'true' && s.rotating === 'true', `auto-advance on: ${JSON.stringify(s)}`);
      const first = s.index;
      await waitFor('auto-advance', async () => (await state()).index !== first, ADVANCE_MS + 4000, 200);
      await phone.click('.carousel-play');
      s = await state();
      check(s.playing === 'false', `paused: ${JSON.stringify(s)}`);
      check((await phone.getAttribute('.carousel-play', 'aria-label')) === 'Start automatic slide show', 'the control now offers to start');
      await sleep(1000); // a smooth scroll in flight settles
      const paused = await state();
      await sleep(2 * ADVANCE_MS + 1000);
      const later = await state();
      check(later.index === paused.index && later.left === paused.left, `paused carousel moved: ${JSON.stringify(paused)} → ${JSON.stringify(later)}`);
      await phone.click('.carousel-play');
      await waitFor('auto-advance after play', async () => (await state()).index !== later.index, ADVANCE_MS + 4000, 200);
      await phone.click('.carousel-play'); // pause again for the keyboard checks
      // Previous/next say where they went (a status line; the track itself is not a live region,
      // or every countdown tick would be read out).
      await phone.click('.carousel-prev:not([disabled]), .carousel-next:not([disabled])');
      const said = await waitFor('the slide announcement', () => phone.textContent('.carousel [role="status"]'), 3000);
      check(/^Slide \d of 3: \S/.test(said), `announcement: ${said}`);
      check(!(await phone.$('.carousel [aria-live="polite"]')), 'no live region around the countdowns');

      // Keyboard: Tab reaches the carousel's controls; ←/→/Home/End move between slides.
      await phone.evaluate(() => document.activeElement?.blur());
      let reached = false;
      for (let i = 0; i < 30 && !reached; i++) {
        await phone.keyboard.press('Tab');
        reached = await phone.evaluate(() => document.activeElement?.classList.contains('carousel-play'));
      }
      check(reached, 'Tab reaches the pause control');
      await phone.focus('.carousel-slide[data-slide="0"] .card-link');
      await phone.keyboard.press('Home');
      const focusedSlide = () => phone.evaluate(() => Number(document.activeElement?.closest('[data-slide]')?.dataset.slide ?? -1));
      const inView = (i) => phone.evaluate((n) => {
        const track = document.querySelector('.carousel-track');
        const slide = track.querySelector(`[data-slide="${n}"]`).getBoundingClientRect();
        const box = track.getBoundingClientRect();
        return slide.left >= box.left - 2 && slide.right <= box.right + 2;
      }, i);
      await phone.keyboard.press('ArrowRight');
      check((await focusedSlide()) === 1, 'ArrowRight focuses the next slide');
      await waitFor('slide 2 scrolled into view', () => inView(1), 3000);
      await phone.keyboard.press('End');
      check((await focusedSlide()) === warm.length - 1, 'End focuses the last slide');
      await waitFor('the last slide in view', () => inView(warm.length - 1), 3000);
      await phone.keyboard.press('ArrowLeft');
      check((await focusedSlide()) === warm.length - 2, 'ArrowLeft focuses the previous slide');
      await phone.keyboard.press('Home');
      check((await focusedSlide()) === 0, 'Home focuses the first slide');
      await waitFor('the first slide in view', () => inView(0), 3000);
      const ring = await phone.evaluate(() => {
        const link = document.activeElement;
        return [getComputedStyle(link.closest('.card')).outlineStyle, getComputedStyle(link, '::after').outlineStyle];
      });
      check(ring.includes('solid'), `a visible focus ring on the focused card: ${ring}`);
      await screenshot(phone, 'home-phone-keyboard');
      await phone.keyboard.press('Enter');
      await phone.waitForURL(`**/shows/${warm[0]}`);
      assertNoConsoleErrors(phone);

      // Reduced motion: no auto-advance until asked.
      const calm = await newPage(browser, 'phone', { reducedMotion: 'reduce' });
      await calm.goto(server.url('/'));
      await calm.waitForSelector('.carousel .card');
      const calmState = await calm.$eval(carousel, (c) => c.dataset.playing);
      check(calmState === 'false', `reduced motion starts paused: ${calmState}`);
      assertNoConsoleErrors(calm);
    } finally {
      demo.stop();
      second.stop();
    }
  } finally {
    await images.close();
  }
});
