#!/usr/bin/env node
// The viewer app across three nodes (issue #30, docs/scaling.md): three `cuecast serve`
// processes (A, B, C) on one PostgreSQL store and one Redis, driven in Debian's Chromium with
// playwright-core.
//
// - The catalog, a host and a show are written through node C's API.
// - ffmpeg publishes the show's stream to node A (A holds the lease and packages the media).
// - The watch page /shows/{id} is opened on node B (which does not own the stream): every request
//   the page makes goes to B, B fetches the media from A, and the page plays.
// - A product cue is POSTed to node C (C forwards it to A, which places it in the media).
// - B's page shows the product banner with the catalog's title, within 0.5 s of the frame the cue
//   marks: the player's PROGRAM-DATE-TIME when the banner appeared vs the cue's START-DATE, and
//   the player's currentTime when it appeared vs where the player placed the cue.
// - "N watching" counts the viewers of every node: a viewer on each of A, B and C, and B's page
//   (and every node's API) says 3.
// Screenshot: tests/artifacts/cluster-viewer-banner.png (B's page with the banner).
//
// Run by tests/cluster_web.rs, which starts PostgreSQL and Redis and passes their URLs in
// WEB_CLUSTER_STORE_URL and WEB_CLUSTER_REDIS_URL (not CUECAST_*: cuecast.mjs keeps the test's
// own CUECAST_* variables away from the servers).

import { createServer } from 'node:net';
import {
  ADMIN, call, user, publish, launch, newPage, screenshot, check, waitFor,
  assertNoConsoleErrors, startServer, playing, bannerShown,
} from './cuecast.mjs';

const STORE_URL = process.env.WEB_CLUSTER_STORE_URL;
const REDIS_URL = process.env.WEB_CLUSTER_REDIS_URL;

const SHOP = 'https://shop.example';
const PRODUCTS = [
  { id: 'sku-1', title: 'Rose perfume 50 ml', brand: 'Maison Rose', category: 'beauty > fragrance', price: '49.00' },
  { id: 'sku-2', title: 'Oud candle', brand: 'Maison Rose', category: 'beauty > home', price: '29.50' },
].map((p) => ({ ...p, currency: 'USD', image_url: `${SHOP}/i/${p.id}.svg`, url: `${SHOP}/p/${p.id}`, availability: 'in_stock' }));

/** A free loopback TCP port (bound, then released): a node's node_url must be known before it starts. */
async function freePort() {
  const server = createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A node of the cluster: its own ports and data dir, the shared store and Redis. */
async function node(name) {
  const port = await freePort();
  const server = await startServer({
    CUECAST_HTTP_LISTEN: `127.0.0.1:${port}`,
    CUECAST_STORE_URL: STORE_URL,
    CUECAST_CLUSTER_REDIS_URL: REDIS_URL,
    CUECAST_CLUSTER_NODE_URL: `http://127.0.0.1:${port}`,
    CUECAST_CLUSTER_LEASE_TTL_MS: '5000',
    CUECAST_CLUSTER_CONNECT_TIMEOUT_MS: '2000',
    CUECAST_SRT_ENABLED: 'false',
    CUECAST_RTMPS_ENABLED: 'false',
  });
  server.name = name;
  return server;
}

/** The shop's product images and pages, answered inside the browser (no outside network). */
async function shopRoutes(context) {
  await context.route(`${SHOP}/**`, (route) => {
    const url = new URL(route.request().url());
    const id = url.pathname.split('/').pop().replace('.svg', '');
    if (url.pathname.startsWith('/i/')) {
      const hue = { 'sku-1': 340, 'sku-2': 30 }[id] ?? 260;
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="160" height="160"><rect width="160" height="160" fill="hsl(${hue} 60% 55%)"/><text x="80" y="90" font-size="22" text-anchor="middle" fill="#fff" font-family="sans-serif">${id}</text></svg>`;
      return route.fulfill({ contentType: 'image/svg+xml', body: svg });
    }
    return route.fulfill({ contentType: 'text/html', body: `<!doctype html><title>${id}</title><h1>${id}</h1>` });
  });
}

/** The watch page of `showId` on `server`, in its own context; `page.origins` lists every origin it asked. */
async function openWatch(browser, server, showId) {
  const page = await newPage(browser, 'desktop');
  await shopRoutes(page.context());
  page.origins = new Set();
  page.on('request', (req) => {
    const url = new URL(req.url());
    if (url.protocol.startsWith('http')) page.origins.add(url.origin);
  });
  page.on('response', (res) => {
    if (res.status() >= 400) console.log(`[${server.name}] ${res.status()} ${res.url()}`);
  });
  await page.goto(server.url(`/shows/${showId}`), { waitUntil: 'load' });
  return page;
}

/** The `cuecast_edge_*` counter `name` in `server`'s /metrics (summed over its labels). */
async function metric(server, name, label = '') {
  const text = await (await fetch(server.url('/metrics'))).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name) && l.includes(label))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

async function run(nodes, browser) {
  const [a, b, c] = nodes;

  // --- Everything written through C.
  let r = await call(c, 'POST', '/api/catalog/products', { token: ADMIN, body: PRODUCTS });
  check(r.status === 200, `catalog on C: ${r.status} ${JSON.stringify(r.body)}`);
  await user(c, 'hana', ['send', 'host']);
  r = await call(c, 'POST', '/api/shows', {
    token: ADMIN,
    body: {
      title: 'Spring fragrances on three nodes', description: 'Published on A, watched on B, cued on C.', host: 'hana',
      stream: 'demo', scheduled_start: new Date().toISOString(), tags: ['beauty'], products: ['sku-1', 'sku-2'],
    },
  });
  check(r.status === 201, `create show on C: ${r.status} ${JSON.stringify(r.body)}`);
  const showId = r.body.id;

  // --- Published on A.
  const ffmpeg = publish(a.rtmpUrl('demo-key'), 600);
  try {
    await waitFor('the show live, as B sees it', async () => (await call(b, 'GET', `/api/shows/${showId}`)).body.state === 'live', 30000, 250);
    // The page retries a 503 by itself, but Chromium logs it as a console error: open it once B
    // can serve the stream (from A).
    await waitFor('B serves the playlist', async () => (await fetch(b.url('/hls/demo/index.m3u8'))).status === 200, 30000, 250);
    const edge = (await fetch(b.url('/hls/demo/index.m3u8'))).headers.get('x-cuecast-edge');
    check(edge !== null, 'B is not the owner: its playlist comes from A (x-cuecast-edge)');
    check((await fetch(a.url('/hls/demo/index.m3u8'))).headers.get('x-cuecast-edge') === null, 'A serves its own stream');

    // --- The viewer app on B.
    const page = await openWatch(browser, b, showId);
    await playing(page, 'B', 60000);
    const upstreamBefore = await metric(b, 'cuecast_edge_requests_total', 'served="upstream"');
    check(upstreamBefore > 0, `B fetched the page's media from A (cuecast_edge_requests_total upstream ${upstreamBefore})`);

    // --- A product cue POSTed to C, at "now".
    const forwardedBefore = await metric(c, 'cuecast_edge_forwarded_total');
    r = await call(c, 'POST', '/api/streams/demo/cues', {
      token: ADMIN,
      body: { kind: 'product', at: 'now', duration_s: 120, product: { id: 'sku-1', cta: { label: 'Buy now', url: `${SHOP}/p/sku-1` } } },
    });
    check(r.status === 201, `post the cue to C: ${r.status} ${JSON.stringify(r.body)}`);
    const cue = r.body;
    const startMs = Date.parse(cue.start_date);
    check(Number.isFinite(startMs), `the cue has a START-DATE: ${JSON.stringify(cue)}`);
    check((await metric(c, 'cuecast_edge_forwarded_total')) > forwardedBefore, 'C forwarded the cue to the owner');
    check(a.log().includes(cue.id), 'A (the owner) placed the cue');

    // --- B's page shows it, at its frame.
    const shown = await bannerShown(page, cue.id, `the banner of cue ${cue.id} on B's page`, 30000);
    check(shown.banner.pdt !== null, 'B\'s player knows the PROGRAM-DATE-TIME when the banner appeared');
    const skew = shown.banner.pdt - startMs;
    const placed = shown.cueStartPdt - startMs;
    const mediaSkew = shown.banner.currentTime - shown.cueStart;
    console.log(
      `B: banner at PDT ${skew} ms from the cue's START-DATE (${cue.start_date}, media time ${cue.media_time_s} s on A); ` +
      `cue placed ${Math.round(placed)} ms from it; banner at currentTime ${shown.banner.currentTime.toFixed(3)} s, cue at ${shown.cueStart.toFixed(3)} s`,
    );
    check(Math.abs(skew) <= 500, `banner within 0.5 s of the cue's frame (PDT skew ${skew} ms)`);
    check(Math.abs(placed) <= 500, `cue placed at its START-DATE on B's timeline (${placed} ms)`);
    check(mediaSkew >= -0.1 && mediaSkew <= 0.5, `banner at the cue's media time on B's player (${mediaSkew.toFixed(3)} s after it)`);
    // The page opened while the session's first segment was still in the playlist, so B's player
    // timeline is the owner's media timeline: the cue sits at the media time A gave it.
    check(Math.abs(shown.cueStart - cue.media_time_s) <= 0.5, `cue at A's media time on B's player (${shown.cueStart.toFixed(3)} vs ${cue.media_time_s} s)`);
    check(shown.title === 'Rose perfume 50 ml', `banner title from the catalog written on C: ${shown.title}`);
    check((shown.price ?? '').includes('49.00'), `banner price: ${shown.price}`);
    check((await page.textContent('.banner-kind').catch(() => '')).trim().length > 0, 'banner kind label');

    // --- Every request of the page went to B: B is the viewer's node.
    const origins = [...page.origins].filter((o) => o !== SHOP);
    check(origins.length === 1 && origins[0] === new URL(b.url('/')).origin, `the page asked only B: ${origins.join(', ')}`);

    // --- "N watching" counts every node's viewers: one more on A, one on C.
    const others = [await openWatch(browser, a, showId), await openWatch(browser, c, showId)];
    await playing(others[0], 'A', 60000);
    await playing(others[1], 'C', 60000);
    for (const n of nodes) {
      await waitFor(`${n.name}'s API counts the 3 viewers`, async () => (await call(n, 'GET', `/api/shows/${showId}`)).body.viewers === 3, 30000, 500);
    }
    const watching = await waitFor('"3 watching" on B\'s page', async () => {
      const text = (await page.textContent('.badge.viewers').catch(() => '')) ?? '';
      return text.includes('3 watching') ? text : null;
    }, 45000, 500);
    console.log(`B's page: ${watching.trim()}`);

    // B's page still plays, with the banner on screen (120 s): the screenshot shows it with the
    // count. (On a loaded machine the page may have fallen behind the live edge meanwhile: said.)
    await playing(page, 'B at the end', 60000);
    await page.waitForSelector(`.banner[data-cue="${cue.id}"]`, { timeout: 10000 });
    const path = await screenshot(page, 'cluster-viewer-banner');
    const atShot = await page.evaluate(() => ({
      latency: document.querySelector('.badge.live, .badge-button.behind')?.dataset.latency ?? null,
      behind: document.querySelector('.badge-button.behind') !== null,
    }));
    console.log(`screenshot: ${path} (B's page ${atShot.behind ? 'behind' : 'at'} the live edge, ${atShot.latency} s from it)`);

    for (const p of [page, ...others]) assertNoConsoleErrors(p);
    for (const p of others) await p.context().close();
  } finally {
    ffmpeg.stop();
  }
}

async function main() {
  check(STORE_URL && REDIS_URL, 'WEB_CLUSTER_STORE_URL and WEB_CLUSTER_REDIS_URL are set (tests/cluster_web.rs sets them)');
  const nodes = [];
  let browser;
  try {
    for (const name of ['A', 'B', 'C']) nodes.push(await node(name));
    browser = await launch();
    await run(nodes, browser);
    console.log('ok');
  } catch (e) {
    console.error(e.stack || String(e));
    for (const n of nodes) console.error(`--- node ${n.name} log (tail) ---\n${n.log().split('\n').slice(-40).join('\n')}`);
    process.exitCode = 1;
  } finally {
    await browser?.close().catch(() => {});
    for (const n of nodes) await n.stop().catch(() => {});
  }
}

await main();
