#!/usr/bin/env node
// The embed on a shop's own site: embed.html, served from another origin (origin.mjs), loads
// /embed.js with one script tag; <cuecast-show> puts /embed/shows/{id} in an iframe on the cuecast
// origin, sized to the element, and relays the watch page's add_to_cart / checkout as DOM events —
// only from its own iframe on the cuecast origin, and only the kinds the shop listens for (the
// handshake: a frame nobody listens to keeps its built-in cart). Also the shop's theme from
// config (CUECAST_WEB_ACCENT / CUECAST_WEB_FONT) in the pages' computed styles.
//
// The embedded show is live (ffmpeg publishes). When the watch page speaks the bridge (it says
// `cuecast:hello`), a product cue is POSTed and the banner's real "Add to cart" is clicked inside
// the iframe. Either way, web/src/shared/embed-bridge.ts — the module the watch page calls — is
// also bundled here and injected into the framed page with a stand-in button, so the relay, the
// origin/source checks and the handshake are tested whatever the watch page's markup.
//
//   CUECAST_BIN=target/debug/cuecast node tests/browser/web-embed.mjs

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import {
  ADMIN, assertNoConsoleErrors, axe, call, check, main, newPage, publish, root, screenshot, sleep, user, waitFor,
} from './cuecast.mjs';
import { serveOrigin } from './origin.mjs';

const ACCENT = '#0a7d5a';
const ACCENT_RGB = 'rgb(10, 125, 90)';
const FONT = "Georgia, 'Times New Roman', serif";

/** embed-bridge.ts as a script that sets window.cuecastBridge (esbuild from web/'s toolchain). */
async function bridgeScript() {
  const require = createRequire(join(root, 'web/package.json'));
  const esbuild = require('esbuild');
  const out = await esbuild.build({
    entryPoints: [join(root, 'web/src/shared/embed-bridge.ts')],
    bundle: true,
    format: 'iife',
    globalName: 'cuecastBridge',
    target: 'es2022',
    write: false,
  });
  return out.outputFiles[0].text;
}

/**
 * Every stylesheet of the build takes the shop's colour and font from the variables: the default
 * accent is written once (base.css's default), and every font-family is var(--font) (or
 * monospace for code).
 */
async function checkBuiltStyles() {
  const { readdir } = await import('node:fs/promises');
  const dir = join(root, 'web/dist/assets');
  const css = (await Promise.all((await readdir(dir)).filter((f) => f.endsWith('.css'))
    .map(async (f) => [f, await readFile(join(dir, f), 'utf8')])));
  check(css.length > 0, 'the build has stylesheets');
  const accents = css.flatMap(([f, text]) => (text.match(/#b4235a/gi) ?? []).map(() => f));
  check(accents.length === 1, `the default accent is hard-coded outside base.css's default: ${accents}`);
  for (const [f, text] of css) {
    for (const [, value] of text.matchAll(/font-family:([^;}]+)/g)) {
      check(/var\(--font\)|monospace|inherit/.test(value), `${f}: font-family ${value} ignores --font`);
    }
  }
}

await main(
  async ({ server, browser }) => {
    await checkBuiltStyles();
    // A show to embed, with a host and a product.
    await user(server, 'maison', ['host']);
    let r = await call(server, 'POST', '/api/catalog/products', {
      token: ADMIN,
      body: [{ id: 'rose-50', title: 'Rose perfume 50 ml', brand: 'Lune', category: 'Beauty > Fragrance',
        price: '49.00', currency: 'USD' }],
    });
    check(r.status === 200, `catalog: ${r.status} ${JSON.stringify(r.body)}`);
    r = await call(server, 'POST', '/api/shows', {
      token: ADMIN,
      body: { title: 'Spring collection', stream: 'demo', host: 'maison', products: ['rose-50'],
        scheduled_start: new Date().toISOString(), tags: ['beauty'] },
    });
    check(r.status === 201, `show: ${r.status} ${JSON.stringify(r.body)}`);
    const show = r.body.id;
    // And one to come, for the home page's carousel in the theming check.
    r = await call(server, 'POST', '/api/shows', {
      token: ADMIN,
      body: { title: 'Summer preview', stream: 'second', host: 'maison', products: ['rose-50'],
        scheduled_start: new Date(Date.now() + 3 * 3600e3).toISOString(), tags: ['beauty'] },
    });
    check(r.status === 201, `show: ${r.status} ${JSON.stringify(r.body)}`);
    const ffmpeg = publish(server.rtmpUrl('demo-key'), 240);
    try {
      await waitFor('the embedded show to go live', async () =>
        (await call(server, 'GET', `/api/shows/${show}`)).body.state === 'live', 20000, 250);
      await waitFor('the live playlist', async () => (await fetch(server.url('/hls/demo/index.m3u8'))).ok, 20000, 250);

      // embed.js: served from the top of the build, no-cache, and a classic script.
      const js = await fetch(server.url('/embed.js'));
      check(js.status === 200, `/embed.js: ${js.status}`);
      check(/javascript/.test(js.headers.get('content-type') ?? ''), `/embed.js type ${js.headers.get('content-type')}`);
      check(js.headers.get('cache-control') === 'no-cache', `/embed.js cache-control ${js.headers.get('cache-control')}`);
      check(!/\bimport\s*[{(*'"]|\bexport\s/.test(await js.text()), '/embed.js is a classic script (no import/export)');

      const template = await readFile(join(import.meta.dirname, 'embed.html'), 'utf8');
      const cuecast = new URL(server.url('/')).origin;
      const shop = await serveOrigin({
        '/embed.html': {
          type: 'text/html; charset=utf-8',
          body: template.replaceAll('{{CUECAST}}', cuecast).replaceAll('{{SHOW}}', show),
        },
      });
      check(shop.origin !== cuecast, 'the shop page is on another origin');
      const bridge = await bridgeScript();
      try {
        const page = await newPage(browser, 'desktop');
        await page.goto(shop.url('/embed.html'));
        const embedUrl = `${cuecast}/embed/shows/${show}`;
        const frame = await waitFor('the embedded watch page', () =>
          page.frames().find((f) => f.url() === embedUrl && f.parentFrame() === page.mainFrame()),
        );
        await frame.waitForLoadState('load');
        // The iframe is the element's width and a responsive height; it asks for what a player needs.
        const box = await page.evaluate(() => {
          const el = document.getElementById('live');
          const iframe = el.shadowRoot.querySelector('iframe');
          const a = el.getBoundingClientRect();
          const b = iframe.getBoundingClientRect();
          return { el: a.width, width: b.width, height: b.height, allow: iframe.allow, title: iframe.title };
        });
        check(Math.abs(box.width - box.el) < 1, `iframe width ${box.width} = element ${box.el}`);
        check(box.height >= 520 && box.height <= 900, `desktop iframe height ${box.height}`);
        check(/autoplay/.test(box.allow) && /fullscreen/.test(box.allow), `allow=${box.allow}`);
        check(box.title === 'Maison Lune live show', `iframe title ${box.title}`);
        // The embedded page carries the shop's theme too.
        const framedAccent = await frame.evaluate(() =>
          getComputedStyle(document.documentElement).getPropertyValue('--accent').trim(),
        );
        check(framedAccent === ACCENT, `--accent in the embed page: ${framedAccent}`);

        // The real watch page speaks the bridge: its banner's "Add to cart" reaches the shop.
        await waitFor('the watch page\'s hello', () =>
          page.evaluate(() => window.cuecastMessages.includes('cuecast:hello')), 10000);
        {
          r = await call(server, 'POST', '/api/streams/demo/cues', {
            token: ADMIN,
            body: { kind: 'product', at: 'now', duration_s: 60, product: { id: 'rose-50', title: 'Rose perfume 50 ml',
              price: '49.00', currency: 'USD', cta: { label: 'Buy now', url: 'https://shop.example/p/rose-50' } }, data: {} },
          });
          check(r.status === 201, `cue: ${r.status} ${JSON.stringify(r.body)}`);
          const cue = r.body.id;
          const add = frame.locator('.banner-add').first();
          await add.waitFor({ state: 'visible', timeout: 20000 });
          await add.click();
          const real = await waitFor('cuecast:add_to_cart from the watch page', async () => {
            const got = await page.evaluate(() => window.received);
            return got.length ? got : null;
          }, 5000);
          check(real[0].type === 'cuecast:add_to_cart' && real[0].detail.product.id === 'rose-50' && real[0].detail.cue === cue
            && real[0].detail.show === show, `from the watch page: ${JSON.stringify(real)}`);
          const dialog = await frame.$('dialog[open]');
          check(!dialog, 'the shop took the cart over: no login prompt in the frame');
          await screenshot(page, 'embed-desktop-banner');
          await page.evaluate(() => { window.received = []; });
        }

        // The bridge itself, and a stand-in "Add to cart" button that calls it.
        await frame.addScriptTag({ content: bridge });
        await frame.evaluate(() => {
          const button = document.createElement('button');
          button.id = 'stand-in-add';
          button.textContent = 'Add to cart';
          button.style.cssText = 'position:fixed;left:16px;bottom:16px;z-index:99;min-height:44px';
          button.addEventListener('click', () => {
            window.notified = window.cuecastBridge.notifyHost('add_to_cart', {
              show: location.pathname.split('/').pop(),
              product: { id: 'rose-50', title: 'Rose perfume 50 ml', price: '49.00', currency: 'USD' },
              cue: 'cue-17',
              quantity: 1,
            });
          });
          document.body.append(button);
        });
        await waitFor('the handshake (the shop listens)', () =>
          frame.evaluate(() => window.cuecastBridge.hostListens('add_to_cart') && window.cuecastBridge.hostListens('checkout')),
        5000);
        check(await frame.evaluate(() => window.cuecastBridge.isEmbedded()), 'isEmbedded() in the frame');

        // A real click inside the iframe → a DOM event on the shop's element.
        await frame.click('#stand-in-add');
        const received = await waitFor('cuecast:add_to_cart on the shop page', async () => {
          const got = await page.evaluate(() => window.received);
          return got.length ? got : null;
        }, 5000);
        check(await frame.evaluate(() => window.notified) === true, 'notifyHost returned true (the shop took over)');
        check(received.length === 1 && received[0].type === 'cuecast:add_to_cart', `received ${JSON.stringify(received)}`);
        const detail = received[0].detail;
        check(detail.product.id === 'rose-50' && detail.cue === 'cue-17' && detail.show === show && detail.quantity === 1,
          `detail ${JSON.stringify(detail)}`);
        // checkout, too (from the frame's code, no click needed).
        check(await frame.evaluate(() => window.cuecastBridge.notifyHost('checkout', {
          show: 'x', product: { id: 'rose-50' }, cue: null,
          items: [{ product: { id: 'rose-50' }, quantity: 2, cue: 'cue-17' }],
        })), 'notifyHost(checkout) true');
        await waitFor('cuecast:checkout', () => page.evaluate(() => window.received.length === 2), 5000);
        const checkout = (await page.evaluate(() => window.received))[1];
        check(checkout.type === 'cuecast:checkout' && checkout.detail.items[0].quantity === 2, `checkout ${JSON.stringify(checkout)}`);

        await screenshot(page, 'embed-desktop');

        // Origin and source checks: the same message from the shop page itself, or from another
        // cuecast frame that is not this element's, is not relayed.
        await page.evaluate((msg) => window.postMessage(msg, '*'), {
          source: 'cuecast', type: 'cuecast:event', kind: 'add_to_cart',
          detail: { show, product: { id: 'forged' }, cue: null },
        });
        const plainFrameUrl = embedUrl;
        await page.evaluate(() => document.getElementById('plain').scrollIntoView());
        const plain = await waitFor('the second (lazy) embed', () =>
          page.frames().find((f) => f.url() === plainFrameUrl && f !== frame),
        );
        await plain.waitForLoadState('load');
        await plain.evaluate(() => parent.postMessage({
          source: 'cuecast', type: 'cuecast:event', kind: 'add_to_cart',
          detail: { show: 'x', product: { id: 'from-the-other-frame' }, cue: null },
        }, '*'));
        // Nobody listens to the second element: its frame keeps the built-in cart.
        await plain.addScriptTag({ content: bridge });
        await sleep(1000);
        const plainAnswer = await plain.evaluate(() => ({
          listens: window.cuecastBridge.hostListens('add_to_cart'),
          notified: window.cuecastBridge.notifyHost('add_to_cart', { show: 'x', product: { id: 'rose-50' }, cue: null }),
        }));
        check(!plainAnswer.listens && plainAnswer.notified === false,
          `an element nobody listens to: ${JSON.stringify(plainAnswer)} (built-in cart expected)`);
        await sleep(500);
        const all = await page.evaluate(() => window.received);
        check(all.length === 2, `forged or foreign messages were relayed: ${JSON.stringify(all.slice(2))}`);
        // Outside a frame, notifyHost says no.
        const top = await newPage(browser, 'desktop');
        await top.goto(embedUrl);
        await top.addScriptTag({ content: bridge });
        check(await top.evaluate(() => !window.cuecastBridge.isEmbedded()
          && window.cuecastBridge.notifyHost('add_to_cart', { show: 'x', product: { id: 'a' }, cue: null }) === false),
          'not embedded: notifyHost false');
        assertNoConsoleErrors(page);

        // Phone: the embed is 9:16-ish and never taller than the screen.
        const phone = await newPage(browser, 'phone');
        await phone.goto(shop.url('/embed.html'));
        const phoneBox = await phone.evaluate(() => {
          const iframe = document.getElementById('live').shadowRoot.querySelector('iframe');
          const b = iframe.getBoundingClientRect();
          return { width: b.width, height: b.height, screen: window.innerHeight };
        });
        check(phoneBox.height > phoneBox.width && phoneBox.height <= phoneBox.screen,
          `phone iframe ${JSON.stringify(phoneBox)}`);
        await screenshot(phone, 'embed-phone');
        assertNoConsoleErrors(phone);

        // Theming: the configured accent and font in the computed styles of `/`.
        const home = await newPage(browser, 'desktop');
        await home.goto(server.url('/'));
        await home.waitForSelector('.carousel .card');
        const theme = await home.evaluate(() => {
          const style = (sel, prop) => (document.querySelector(sel) ? getComputedStyle(document.querySelector(sel))[prop] : null);
          return {
            accent: getComputedStyle(document.documentElement).getPropertyValue('--accent').trim(),
            link: style('.section-note .button.link', 'color'),
            placeholder: style('.cover-placeholder', 'backgroundImage'),
            font: getComputedStyle(document.body).fontFamily,
            button: getComputedStyle(document.querySelector('.site-header .button')).fontFamily,
          };
        });
        check(theme.accent === ACCENT, `--accent ${theme.accent}`);
        check(theme.link === ACCENT_RGB, `the log-in link's colour ${theme.link}`);
        check(theme.placeholder?.includes(ACCENT_RGB), `the cover placeholder ${theme.placeholder}`);
        check(/^Georgia/.test(theme.font) && /^Georgia/.test(theme.button), `font ${theme.font} / ${theme.button}`);
        await axe(home, 'home with a custom accent');
        await screenshot(home, 'home-custom-accent');
        assertNoConsoleErrors(home);
      } finally {
        await shop.close();
      }
    } finally {
      ffmpeg.stop();
    }
  },
  { CUECAST_WEB_ACCENT: ACCENT, CUECAST_WEB_FONT: FONT, CUECAST_SRT_ENABLED: 'false' },
);
