// The host studio (/studio) in Chromium against a real server: a host logs in through the page,
// creates a stream key and a show with three catalog products, ffmpeg publishes with that key,
// the studio shows live status (640x360, ~30 fps), "Show now" puts the product's banner on the
// viewer page (/shows/{id}, a second browser context) whose CTA click shows in the studio's
// per-cue table within 2 s, moderation from the studio deletes a viewer's message on the viewer
// page and for a `cuecast chat` client, slow mode is enforced, a second host sees none of it (and
// the API answers 403), a revoked key cannot publish, axe is clean, screenshots to
// tests/artifacts/studio-*.png.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import {
  ADMIN, artifacts, assertNoConsoleErrors, axe, call, check, main, newPage, publish, screenshot, sleep, user, waitFor,
} from './cuecast.mjs';

const note = (text) => console.log(`note: ${text}`);

/** Logs `who` in through the studio's login dialog. */
async function login(page, server, who) {
  await page.goto(server.url('/studio'));
  await page.locator('#login-username').waitFor({ timeout: 10000 });
  await page.fill('#login-username', who.username);
  await page.fill('#login-password', who.password);
  await page.locator('.login-dialog button[type=submit]').click();
  await page.locator('#shows-title').waitFor({ timeout: 10000 });
}

/** `cuecast chat ROOM --json` as a viewer: lines in, JSON events out. */
function chatClient(server, room, token) {
  const bin = process.env.CUECAST_BIN;
  const child = spawn(bin, [
    'chat', room, '--json', '--token', token,
    '--server', `127.0.0.1:${server.chatPort}`, '--http', server.url(''),
  ], { stdio: ['pipe', 'pipe', 'pipe'] });
  const events = [];
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      events.push(JSON.parse(line));
    } catch {
      /* not JSON */
    }
  });
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    events,
    exited,
    stderr: () => stderr,
    say: (text) => child.stdin.write(`${text}\n`),
    stop: () => child.kill('SIGKILL'),
  };
}

await main(async ({ server, browser }) => {
  // Checks whose failure should not hide the rest of the run: collected, failed at the end.
  const failures = [];
  const soft = async (what, fn) => {
    try {
      await fn();
    } catch (e) {
      failures.push(`${what}: ${e.message}`);
      console.error(`FAIL (reported at the end) ${what}: ${e.message}`);
    }
  };
  // The routes the studio uses must all be there (a server without them fails here, not later).
  const paths = (await call(server, 'GET', '/api/openapi.json')).body.paths ?? {};
  const has = (path) => path in paths;
  const missing = ['/api/keys', '/api/ingest', '/api/streams/{stream}/status', '/api/shows/{id}/viewers', '/api/shows/{id}/chat.csv'].filter((p) => !has(p));
  check(missing.length === 0, `this server lacks ${missing.join(', ')}`);
  // hls.js retries a playlist the origin answers 503 while the first segment is being made.
  const allow = [/status of 503/];
  const serverErrors = [];
  const watch5xx = (p) =>
    p.on('response', (res) => {
      if (res.status() >= 500 && !new URL(res.url()).pathname.startsWith('/hls/')) serverErrors.push(`${res.status()} ${res.url()}`);
    });

  // Three catalog products (images served by cuecast itself, so nothing leaves the machine).
  const img = server.url('/favicon.svg');
  const products = [
    { id: 'studio-mug', title: 'Studio mug', price: '12.50', brand: 'Cuecast' },
    { id: 'studio-tee', title: 'Studio tee', price: '24.00', brand: 'Cuecast' },
    { id: 'studio-cap', title: 'Studio cap', price: '18.00', brand: 'Cuecast' },
  ].map((p) => ({ ...p, currency: 'USD', category: 'merch', image_url: img, url: server.url(`/p/${p.id}`), availability: 'in_stock' }));
  let r = await call(server, 'POST', '/api/catalog/products', { token: ADMIN, body: products });
  check(r.status === 200 || r.status === 201, `catalog upsert: ${r.status} ${JSON.stringify(r.body)}`);

  const host = await user(server, 'hannah', ['send', 'host', 'moderate']);
  const other = await user(server, 'otto', ['send', 'host', 'moderate']);
  const viewer = await user(server, 'vera', ['send']);
  const rowdy = await user(server, 'walt', ['send']);

  // Anonymous: the studio asks to log in.
  const page = await newPage(browser, 'desktop');
  watch5xx(page);
  // confirm() answers yes; prompt() (rename a key) answers `promptAnswer`.
  let promptAnswer = '';
  page.on('dialog', (d) => (d.type() === 'prompt' ? d.accept(promptAnswer) : d.accept()));
  await login(page, server, host);
  await axe(page, 'studio shows (empty)');

  // A stream key: the host's own, made on the keys page: the stream it publishes and its id.
  await page.getByRole('link', { name: 'Stream keys' }).click();
  await page.locator('#keys-title').waitFor();
  await page.fill('#key-name', 'Main cam');
  await page.getByRole('button', { name: 'Create key' }).click();
  await page.locator('#obs-key').waitFor();
  const key = await page.inputValue('#obs-key');
  check(key.length >= 16, `the key is shown once: ${JSON.stringify(key)}`);
  const keys = await call(server, 'GET', '/api/keys', { token: host.token });
  check(keys.status === 200 && keys.body.items.length === 1, `GET /api/keys: ${JSON.stringify(keys.body)}`);
  const stream = keys.body.items[0].stream;
  const keyId = keys.body.items[0].id;
  const rtmp = await page.inputValue('#obs-rtmp');
  check(rtmp.startsWith('rtmp://'), `OBS server: ${rtmp}`);
  await soft('the test light before publishing', async () => {
    await sleep(500);
    const light = await page.locator('#test-light').textContent();
    check(/Waiting for media/.test(light), `test light before publishing: ${light}`);
  });
  await axe(page, 'studio keys');
  await screenshot(page, 'studio-keys');
  {
    // SRT ingest is on by default: the key's page shows its SRT URL.
    check((await page.locator('#obs-srt').count()) === 1, 'the key page shows the SRT URL');
    // The SRT URL as shown (stream id included) publishes, as OBS would use it.
    const srt = await page.inputValue('#obs-srt');
    check(srt.includes(key), `the SRT URL carries the key: ${srt}`);
    const ff = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-re', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30',
      '-t', '20', '-c:v', 'libx264', '-preset', 'veryfast', '-g', '60', '-f', 'mpegts', srt], { stdio: 'ignore' });
    try {
      await soft('publishing with the SRT URL', () => waitFor('an SRT publish with the shown URL', async () => {
        const st = await call(server, 'GET', `/api/streams/${stream}/status`, { token: host.token });
        return st.body.live && st.body.protocol === 'srt';
      }, 15000, 250));
      await soft('the test light on an SRT publish', () => page.locator('#test-light.on', { hasText: 'receiving SRT' }).waitFor({ timeout: 5000 }));
    } finally {
      ff.kill('SIGKILL');
    }
    await waitFor('the SRT publish to end', async () => !(await call(server, 'GET', `/api/streams/${stream}/status`, { token: host.token })).body.live, 15000, 250);
  }

  // A show with three products picked by search.
  await page.getByRole('link', { name: 'Shows' }).click();
  await page.getByRole('link', { name: 'New show' }).click();
  await page.fill('#show-title', 'Studio merch drop');
  await page.fill('#show-description', 'Mugs, tees and caps, live.');
  await page.fill('#show-cover_image_url', img);
  await page.fill('#show-tags', 'merch, live');
  await page.fill('#show-stream', stream);
  await page.fill('#product-search', 'studio');
  for (const p of products) {
    const add = page.getByRole('button', { name: `Add ${p.title}` });
    await add.waitFor({ timeout: 10000 });
    await add.click();
  }
  await page.locator('.product-selected li.product-row').nth(2).waitFor();
  await axe(page, 'studio new show');
  await screenshot(page, 'studio-new-show');
  await page.getByRole('button', { name: 'Create show' }).click();
  await page.waitForURL(/\/studio\/shows\/show-/, { timeout: 10000 });
  const showId = decodeURIComponent(page.url().split('/').pop());
  r = await call(server, 'GET', `/api/shows/${showId}`);
  check(r.status === 200, `GET show: ${r.status}`);
  check(r.body.host === host.username && r.body.stream === stream, `show owner/stream: ${JSON.stringify(r.body)}`);
  check(JSON.stringify(r.body.products) === JSON.stringify(products.map((p) => p.id)), `products: ${JSON.stringify(r.body.products)}`);
  check(r.body.tags.join() === 'merch,live', `tags: ${r.body.tags}`);
  await page.locator('#tab-setup[aria-selected=true]').waitFor();
  await page.locator('#rundown-title').waitFor();

  // Edit: a new description, the rest unchanged.
  await page.fill('#show-description', 'Mugs, tees and caps — live tonight.');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.locator('.show-form .saved', { hasText: 'Saved.' }).waitFor({ timeout: 5000 });
  const before = r.body;
  r = await call(server, 'GET', `/api/shows/${showId}`);
  check(r.body.description === 'Mugs, tees and caps — live tonight.', `edited description: ${r.body.description}`);
  check(r.body.scheduled_start === before.scheduled_start && r.body.products.length === 3, `edit kept the rest: ${JSON.stringify(r.body)}`);

  // A rundown: one offer an hour in (it stays unfired through the test).
  await page.getByRole('button', { name: 'Add cue' }).click();
  await page.getByLabel('Cue 1 offset in seconds').fill('3600');
  await page.getByLabel('Cue 1 kind').selectOption('offer');
  await page.getByLabel('Cue 1 product').selectOption(products[2].id);
  await page.getByLabel('Cue 1 length in seconds').fill('600');
  await page.getByRole('button', { name: 'Save rundown' }).click();
  await page.getByText('Rundown saved: 1 cue.').waitFor({ timeout: 5000 });
  r = await call(server, 'GET', `/api/streams/${stream}/rundown`, { token: host.token });
  check(r.status === 200 && r.body.items.length === 1, `rundown: ${r.status} ${JSON.stringify(r.body)}`);
  const item = r.body.items[0];
  check(item.offset_s === 3600 && item.kind === 'offer' && item.duration_s === 600 && item.product?.id === products[2].id,
    `rundown item: ${JSON.stringify(item)}`);
  await sleep(500);
  await axe(page, 'studio show setup');
  await screenshot(page, 'studio-before');

  // The show list has it.
  r = await call(server, 'GET', `/api/shows?host=${host.username}`);
  check(r.body.shows.some((s) => s.id === showId), 'the host lists the show');

  // Go live with the key.
  const ffmpeg = publish(server.rtmpUrl(key), 120);
  await waitFor('the show to go live', async () => (await call(server, 'GET', `/api/shows/${showId}`)).body.state === 'live', 30000, 250);
  await page.locator('#tab-live[aria-selected=true]').waitFor({ timeout: 15000 });
  await soft('the status panel', async () => {
    await waitFor('live status 640x360 ~30 fps', async () => {
      const video = await page.locator('#stat-video').textContent();
      const fps = parseFloat((await page.locator('#stat-fps dd').textContent()) || '');
      return video.includes('640x360') && fps >= 28 && fps <= 32;
    }, 20000, 250);
    check((await page.locator('#stat-protocol').textContent()).includes('RTMP'), 'protocol RTMP');
  });
  check((await page.locator('#stream-state').textContent()).includes('LIVE'), 'the LIVE badge');

  await page.locator('.rundown-progress li.next', { hasText: products[2].title }).waitFor({ timeout: 10000 });

  if (has('/api/shows/{id}/viewers')) {
    // Two viewers' heartbeats: "viewers now" and the per-minute chart.
    r = await call(server, 'POST', '/api/events', {
      body: { events: ['v-a', 'v-b'].map((visitor) => ({ type: 'view_show', visitor, show: showId })) },
    });
    check(r.status === 202, `view_show: ${r.status} ${JSON.stringify(r.body)}`);
    await soft('viewers now', () => waitFor('2 viewers in the studio', async () =>
      (await page.locator('#stat-viewers dd').textContent()).trim() === '2', 15000, 250));
    await soft('the viewers chart', () => page.locator('svg.spark').waitFor({ timeout: 5000 }));
  }

  // Chat: the studio is connected as the host.
  await page.locator('.chat-panel .badge.ok').waitFor({ timeout: 15000 });

  // The viewer page of the show (a second browser context), opened once the first cue is shown.
  let watcher;
  {
    // Show now → a product cue on the stream.
    const first = products[0];
    await page.getByRole('button', { name: `Show now: ${first.title}` }).click();
    await page.locator('#controls-status', { hasText: 'is on screen' }).waitFor({ timeout: 10000 });
    const cue = await waitFor('the product cue', async () => {
      const c = await call(server, 'GET', `/api/streams/${stream}/cues`, { token: host.token });
      return c.status === 200 && c.body.cues.find((x) => x.kind === 'product' && x.product?.id === first.id);
    }, 10000, 200);
    check(cue.product.title === first.title && cue.product.price === first.price, `cue card: ${JSON.stringify(cue.product)}`);
    await page.locator(`tr[data-product="${first.id}"].on-air`).waitFor({ timeout: 5000 });

    // The viewer page, in a second browser context (vera, logged in), shows the product's
    // banner; her click on its CTA shows in the studio's per-cue table within 2 s.
    watcher = await newPage(browser, 'desktop');
    await watcher.context().addInitScript((token) => localStorage.setItem('cuecast.token', token), viewer.token);
    await watcher.goto(server.url(`/shows/${showId}`));
    const banner = watcher.locator(`.banner[data-cue="${cue.id}"]`);
    await banner.waitFor({ timeout: 20000 });
    check((await banner.locator('.banner-title').textContent()).trim() === first.title, 'the viewer sees the product shown now');
    const row = page.locator(`.sales-table tr[data-cue="${cue.id}"]`);
    await row.waitFor({ timeout: 5000 });
    const [popup] = await Promise.all([watcher.context().waitForEvent('page'), banner.locator('.banner-buy').click()]);
    const clicked = Date.now();
    await popup.close();
    await waitFor('the CTA click in the studio', async () => (await row.locator('td.cta').textContent()).trim() === '1', 2000, 100);
    console.log(`cta click shown after ${Date.now() - clicked} ms`);

    // The shop's backend reports a purchase credited to that moment: revenue in the row.
    r = await call(server, 'POST', '/api/events', {
      token: ADMIN,
      body: { events: [{ type: 'purchase', user: viewer.username, visitor: 'v-studio-test', show: showId, product: first.id, cue: cue.id, order: 'o-1', quantity: 2, price: first.price }] },
    });
    check(r.status === 202, `purchase: ${r.status} ${JSON.stringify(r.body)}`);
    await waitFor('the purchase in the studio', async () => {
      const [purchases, revenue] = await Promise.all([row.locator('td.purchases').textContent(), row.locator('td.revenue').textContent()]);
      return purchases.trim() === '1' && revenue.includes('25.00');
    }, 2000, 100);

    // Clear ends it.
    await page.getByRole('button', { name: `Clear: ${first.title}` }).click();
    await waitFor('the cue to end', async () => {
      const c = await call(server, 'GET', `/api/streams/${stream}/cues`, { token: host.token });
      return c.body.cues.find((x) => x.id === cue.id)?.ended_early;
    }, 10000, 200);

    // Offer with a countdown (the chosen length), then Clear all ends it.
    const cap = products[2];
    await page.selectOption('#offer-minutes', '5');
    await page.getByRole('button', { name: `Offer: ${cap.title}` }).click();
    const offer = await waitFor('the offer cue', async () => {
      const c = await call(server, 'GET', `/api/streams/${stream}/cues`, { token: host.token });
      return c.body.cues.find((x) => x.kind === 'offer' && x.product?.id === cap.id);
    }, 10000, 200);
    check(offer.duration_s === 300 && offer.end_date, `offer: ${JSON.stringify(offer)}`);
    const badge = page.locator(`tr[data-product="${cap.id}"] .on-screen`);
    await waitFor('the countdown', async () => /offer ends in 4:[0-5]\d/.test((await badge.textContent().catch(() => '')) || ''), 10000, 200);
    await page.getByRole('button', { name: 'Clear all' }).click();
    await waitFor('the offer to end', async () => {
      const c = await call(server, 'GET', `/api/streams/${stream}/cues`, { token: host.token });
      return c.body.cues.find((x) => x.id === offer.id)?.ended_early;
    }, 10000, 200);
    await waitFor('the badge to go', async () => (await badge.count()) === 0, 5000);

    // Sold out: a short product cue marked sold out.
    await page.getByRole('button', { name: `Sold out: ${first.title}` }).click();
    const sold = await waitFor('the sold-out cue', async () => {
      const c = await call(server, 'GET', `/api/streams/${stream}/cues`, { token: host.token });
      return c.body.cues.find((x) => x.kind === 'product' && x.product?.id === first.id && x.data?.sold_out === true);
    }, 10000, 200);
    check(sold.duration_s === 10, `sold out: ${JSON.stringify(sold)}`);
    await page.locator(`tr[data-product="${first.id}"] .on-screen`, { hasText: 'sold out' }).waitFor({ timeout: 5000 });
  }

  // Moderation: a viewer's message deleted from the studio reaches the viewer as `deleted`.
  const chat = chatClient(server, stream, viewer.token);
  try {
    await waitFor('the viewer to join', () => chat.events.some((e) => e.kind === 'live'), 15000);
    chat.say('is the mug dishwasher safe?');
    const message = page.locator('.chat-message', { hasText: 'is the mug dishwasher safe?' });
    await message.waitFor({ timeout: 10000 });
    const onViewerPage = watcher.locator('.chat-list', { hasText: 'is the mug dishwasher safe?' });
    await onViewerPage.waitFor({ timeout: 10000 });
    const id = Number(await message.getAttribute('data-id'));
    await message.getByRole('button', { name: `Delete message from ${viewer.username}` }).click();
    await waitFor('the viewer to see the message deleted', () => chat.events.some((e) => e.kind === 'deleted' && Number(e.id) === id), 10000);
    await waitFor('the message to leave the studio', async () => (await message.count()) === 0, 5000);
    await waitFor('the message to leave the viewer page', async () => (await onViewerPage.count()) === 0, 5000);

    // Slow mode from the studio: the viewer's second message within it is refused.
    await page.selectOption('#slow-mode', '30');
    await waitFor('slow mode to reach the viewer', () => chat.events.some((e) => e.kind === 'slow_mode' && Number(e.seconds) === 30), 10000);
    // The viewer's last message was seconds ago: within 30 s slow mode refuses the next one.
    chat.say('second, too soon');
    const rejected = await waitFor('slow mode to refuse', () => chat.events.find((e) => e.kind === 'rejected'), 5000);
    check(rejected.code === 'slow_mode', `rejected: ${JSON.stringify(rejected)}`);
    check((await page.inputValue('#slow-mode')) === '30', 'the studio shows slow mode 30 s');

    // Pin in chat: a product card posted by the host and pinned, seen by the viewer.
    const tee = products[1];
    await page.getByRole('button', { name: `Pin in chat: ${tee.title}` }).click();
    const pinned = await waitFor('the viewer to see the pinned card', () => chat.events.find((e) => e.kind === 'pinned' && e.message), 10000);
    check(pinned.message.product?.id === tee.id && pinned.message.user === host.username, `pinned: ${JSON.stringify(pinned)}`);
    await page.locator('.pinned', { hasText: tee.title }).waitFor({ timeout: 5000 });

    // Time out: the viewer is disconnected (close code 6) and cannot rejoin.
    const walt = chatClient(server, stream, rowdy.token);
    try {
      await waitFor('walt to join', () => walt.events.some((e) => e.kind === 'live'), 15000);
      walt.say('BUY MY STUFF');
      const shout = page.locator('.chat-message', { hasText: 'BUY MY STUFF' });
      await shout.waitFor({ timeout: 10000 });
      await shout.getByRole('button', { name: `Time out ${rowdy.username} for 5 minutes` }).click();
      await waitFor('the timed-out viewer to be disconnected (close code 0x6)', () => /code 0x6/.test(walt.stderr()), 10000);
      await page.locator('#chat-status', { hasText: `${rowdy.username} is timed out` }).waitFor({ timeout: 5000 });
    } finally {
      walt.stop();
    }
    const again = chatClient(server, stream, rowdy.token);
    try {
      await waitFor('the timed-out viewer to be refused', () => /code 0x6/.test(again.stderr()), 10000);
      check(!again.events.some((e) => e.kind === 'live'), 'a timed-out viewer cannot rejoin');
    } finally {
      again.stop();
    }
  } finally {
    chat.stop();
  }
  await sleep(500);
  await axe(page, 'studio live');
  await screenshot(page, 'studio-during');
  await page.screenshot({ path: `${artifacts}/studio-during-full.png`, fullPage: true });
  const tablet = await newPage(browser, 'desktop', { viewport: { width: 820, height: 1180 } });
  // This tablet's browser has no WebTransport: the studio's chat takes the WebSocket fallback.
  await tablet.addInitScript(() => {
    delete window.WebTransport;
  });
  const sockets = [];
  tablet.on('websocket', (ws) => sockets.push(ws.url()));
  await tablet.goto(server.url('/'));
  await tablet.evaluate((t) => localStorage.setItem('cuecast.token', t), host.token);
  await tablet.goto(server.url(`/studio/shows/${showId}`));
  await tablet.locator('#tab-live[aria-selected=true]').waitFor({ timeout: 10000 });
  await soft('chat over the WebSocket fallback', async () => {
    await tablet.locator('.chat-panel .badge.ok').waitFor({ timeout: 10000 });
    await tablet.locator('.chat-panel .pinned', { hasText: products[1].title }).waitFor({ timeout: 5000 });
    await tablet.fill('#chat-input', 'hello over the fallback');
    await tablet.getByRole('button', { name: 'Send' }).click();
    await page.locator('.chat-message', { hasText: 'hello over the fallback' }).waitFor({ timeout: 5000 });
    check(sockets.some((u) => u.endsWith(`/api/chat/${stream}/ws`)), `the chat used the WebSocket: ${sockets}`);
  });
  await sleep(1000);
  await axe(tablet, 'studio live (tablet)');
  await screenshot(tablet, 'studio-during-tablet');
  // The key's "test your stream" light is green while ffmpeg publishes.
  await tablet.goto(server.url('/studio/keys'));
  await soft('the test light while publishing', () =>
    waitFor('the test light to turn green', async () => {
      const text = await tablet.locator('#test-light.on').textContent({ timeout: 500 }).catch(() => '');
      return /receiving RTMP · 640x360 30 fps/.test(text);
    }, 10000, 250));
  await screenshot(tablet, 'studio-keys-live');
  await soft('console errors (tablet)', async () => assertNoConsoleErrors(tablet, allow));
  await tablet.context().close();

  // A second host sees none of it; the API refuses with 403.
  const page2 = await newPage(browser, 'desktop');
  await login(page2, server, other);
  await sleep(500);
  check(!(await page2.getByText('Studio merch drop').count()), 'the second host does not see the show');
  await page2.goto(server.url(`/studio/shows/${showId}`));
  await page2.getByText('belongs to another host').waitFor({ timeout: 10000 });
  r = await call(server, 'PATCH', `/api/shows/${showId}`, { token: other.token, body: { title: 'mine now' } });
  check(r.status === 403, `another host's PATCH: ${r.status}`);
  r = await call(server, 'GET', '/api/keys', { token: other.token });
  check(r.status === 200 && r.body.items.length === 0, `another host's keys: ${JSON.stringify(r.body)}`);
  r = await call(server, 'POST', `/api/streams/${stream}/cues`, { token: other.token, body: { kind: 'clear' } });
  check(r.status === 403, `another host's cue: ${r.status}`);
  r = await call(server, 'GET', `/api/streams/${stream}/status`, { token: other.token });
  check(r.status === 403, `another host's stream status: ${r.status}`);
  r = await call(server, 'PUT', `/api/streams/${stream}/rundown`, { token: other.token, body: { cues: [] } });
  check(r.status === 403, `another host's rundown: ${r.status}`);
  for (const [method, path, body] of [
    ['PATCH', `/api/keys/${keyId}`, { name: 'mine' }],
    ['POST', `/api/keys/${keyId}/rotate`, undefined],
    ['DELETE', `/api/keys/${keyId}`, undefined],
  ]) {
    r = await call(server, method, path, { token: other.token, body });
    check(r.status === 403, `another host's ${method} ${path}: ${r.status}`);
  }
  await page2.goto(server.url('/studio/keys'));
  await page2.locator('.keys-table').waitFor();
  check(!(await page2.getByText('Main cam').count()), 'the second host does not see the key');
  await soft('console errors (page2)', async () => assertNoConsoleErrors(page2, allow));
  await page2.context().close();

  // After the show.
  ffmpeg.stop();
  r = await call(server, 'PATCH', `/api/shows/${showId}`, { token: host.token, body: { state: 'ended' } });
  check(r.status === 200, `end the show: ${r.status} ${JSON.stringify(r.body)}`);
  await page.locator('#tab-after[aria-selected=true]').waitFor({ timeout: 15000 });
  await waitFor('the replay link', async () => {
    await page.reload();
    await page.locator('#tab-after[aria-selected=true]').waitFor({ timeout: 10000 });
    return (await page.getByRole('link', { name: 'Open the replay' }).count()) > 0;
  }, 30000, 1000);
  await page.locator('.timeline svg, .chart-empty').first().waitFor();
  const download = page.waitForEvent('download', { timeout: 10000 });
  await page.getByRole('button', { name: 'Download chat (CSV)' }).click();
  const file = await download;
  check(/chat\.csv$/.test(file.suggestedFilename()), `download: ${file.suggestedFilename()}`);
  await page.getByText(/Downloaded .*chat\.csv/).waitFor();
  await sleep(300);
  await axe(page, 'studio after');
  await screenshot(page, 'studio-after');
  await page.screenshot({ path: `${artifacts}/studio-after-full.png`, fullPage: true });

  // Keyboard: the phase tabs follow the arrow keys.
  await page.focus('#tab-after');
  await page.keyboard.press('ArrowLeft');
  await page.locator('#tab-live[aria-selected=true]').waitFor();
  check(await page.evaluate(() => document.activeElement?.id === 'tab-live'), 'focus follows the selected tab');
  await page.keyboard.press('ArrowLeft');
  await page.locator('#tab-setup[aria-selected=true]').waitFor();
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  await page.locator('#tab-after[aria-selected=true]').waitFor();

  // A phone still gets a usable (single-column) studio.
  const phone = await newPage(browser, 'phone');
  await phone.goto(server.url('/'));
  await phone.evaluate((t) => localStorage.setItem('cuecast.token', t), host.token);
  await phone.goto(server.url('/studio'));
  await phone.getByRole('link', { name: 'Studio merch drop' }).waitFor({ timeout: 10000 });
  await axe(phone, 'studio shows (phone)');
  await screenshot(phone, 'studio-phone');
  await soft('console errors (phone)', async () => assertNoConsoleErrors(phone, allow));
  await phone.context().close();

  // Keys after the show: rename, rotate (the old key stops working), revoke (so does the new one).
  await page.goto(server.url('/studio/keys'));
  promptAnswer = 'Studio cam';
  await page.getByRole('button', { name: 'Rename Main cam' }).click();
  await page.locator('#keys-status', { hasText: 'Renamed to “Studio cam”' }).waitFor();
  r = await call(server, 'GET', '/api/keys', { token: host.token });
  check(r.body.items[0].name === 'Studio cam', `renamed: ${JSON.stringify(r.body.items)}`);
  await page.getByRole('button', { name: 'Rotate Studio cam' }).click();
  await page.locator('#keys-status', { hasText: 'rotated' }).waitFor();
  const rotated = await page.inputValue('#obs-key');
  check(rotated && rotated !== key, 'rotating shows a new key');
  const old = publish(server.rtmpUrl(key), 5);
  check((await old.exited).code !== 0, 'the rotated-out key can no longer publish');
  await page.getByRole('button', { name: 'Revoke Studio cam' }).click();
  await page.locator('#keys-status', { hasText: 'revoked' }).waitFor();
  check((await page.locator('#obs-key').count()) === 0, 'a revoked key is no longer shown');
  const again = publish(server.rtmpUrl(rotated), 5);
  check((await again.exited).code !== 0, 'a revoked key can no longer publish');
  await axe(page, 'studio keys (after)');
  await soft('console errors (page)', async () => assertNoConsoleErrors(page, allow));
  check(serverErrors.length === 0, `server errors: ${serverErrors.join(', ')}`);
  check(failures.length === 0, `failed:\n${failures.join('\n')}`);
});
