// The pages' browser tests (web-*.mjs) share this: a real `cuecast serve` process on ephemeral
// ports with a throw-away data dir (the same environment tests/common/server.rs gives the Rust
// tests), ffmpeg publishing as OBS does, API calls, Chromium pages that record console errors,
// axe-core, and screenshots to tests/artifacts/.
//
// The binary comes from CUECAST_BIN (tests/web.rs passes Cargo's), the pages from the web build
// (web/dist, or CUECAST_WEB_DIR).

import { spawn } from 'node:child_process';
import { mkdtemp, readFile, mkdir, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, '../..');
export const artifacts = join(root, 'tests/artifacts');
export const ADMIN = 'dev-admin-token';
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Two configured streams, as in tests/common/server.rs. */
export const STREAMS = '[{name="demo", key="demo-key"}, {name="second", key="second-key"}]';

/** Fails the test with a message (exit code 1 from `main`). */
export function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

/** Polls `fn` until it returns a truthy value (returned) or `timeoutMs` passes (throws `what`). */
export async function waitFor(what, fn, timeoutMs = 15000, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

/** Waits until `page`'s video plays: two samples of currentTime 1.5 s apart, the second ahead (a
 * source switch in between retries), within `timeoutMs`. */
export async function playing(page, label, timeoutMs = 40000) {
  const now = () => page.evaluate(() => document.querySelector('video')?.currentTime ?? 0);
  await waitFor(`${label}: currentTime advances`, async () => {
    const t0 = await now();
    if (!(t0 > 0)) return false;
    await sleep(1500);
    const t1 = await now();
    return t1 > t0 + 0.5;
  }, timeoutMs, 100);
}

/** Where the watch page's player put cue `id` and its banner (the page's window.cuecast hooks):
 * the banner record (`pdt`, `currentTime` when it appeared), the cue's start on the player's
 * timeline and mapped through its PROGRAM-DATE-TIME, the banner on screen, its title and price. */
export async function cueReport(page, id) {
  return page.evaluate((cueId) => {
    const { player, banners } = window.cuecast;
    const video = document.querySelector('video');
    const pd = player?.playingDate() ?? null;
    const cue = player?.cues.all().find((c) => c.payload.id === cueId) ?? null;
    return {
      banner: banners.find((b) => b.id === cueId) ?? null,
      cueStart: cue ? cue.start : null,
      // PDT of the cue's start on this player's timeline.
      cueStartPdt: cue && pd ? pd + (cue.start - video.currentTime) * 1000 : null,
      shown: document.querySelector('.banner')?.dataset.cue ?? null,
      title: document.querySelector('.banner-title')?.textContent ?? null,
      price: document.querySelector('.banner-price')?.textContent ?? null,
    };
  }, id);
}

/** Waits until `page` shows the banner of cue `id` (its banner recorded and on screen), within
 * `timeoutMs`: its `cueReport` then. */
export async function bannerShown(page, id, what, timeoutMs = 20000) {
  return waitFor(what, async () => {
    const rep = await cueReport(page, id);
    return rep.banner && rep.shown === id ? rep : null;
  }, timeoutMs, 100);
}

/**
 * Starts `cuecast serve` with `env` overrides (CUECAST_*), waits for every listener's port in its
 * log and for /healthz. Returns { url(path), http, rtmpUrl(key), chatPort, log(), stop() }.
 */
export async function startServer(env = {}) {
  const bin = process.env.CUECAST_BIN || join(root, 'target/debug/cuecast');
  const dir = await mkdtemp(join(tmpdir(), 'cuecast-web-'));
  const logPath = join(dir, 'server.log');
  const { openSync } = await import('node:fs');
  const logFd = openSync(logPath, 'w');
  const child = spawn(bin, ['serve'], {
    cwd: root,
    stdio: ['ignore', 'ignore', logFd],
    env: {
      // Every CUECAST_* variable is a config key to the server: pass none of the test's own.
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CUECAST_'))),
      RUST_LOG: 'info,cuecast=debug',
      CUECAST_RTMP_LISTEN: '127.0.0.1:0',
      CUECAST_RTMPS_LISTEN: '127.0.0.1:0',
      CUECAST_HTTP_LISTEN: '127.0.0.1:0',
      CUECAST_SRT_LISTEN: '127.0.0.1:0',
      CUECAST_CHAT_LISTEN: '127.0.0.1:0',
      CUECAST_SERVER_DATA_DIR: join(dir, 'data'),
      CUECAST_STREAMS: STREAMS,
      CUECAST_MEDIA_LADDER: '[]',
      CUECAST_INGEST_RECONNECT_GRACE_S: '0',
      ...(process.env.CUECAST_WEB_DIR ? { CUECAST_WEB_DIR: process.env.CUECAST_WEB_DIR } : {}),
      ...env,
    },
  });
  let exited = null;
  child.on('exit', (code, signal) => {
    exited = { code, signal };
  });
  const log = () => {
    try {
      return readFileSync(logPath, 'utf8');
    } catch {
      return '';
    }
  };
  const port = (name) => {
    const match = log().match(new RegExp(`listening ${name}=\\S*:(\\d+)`));
    return match ? Number(match[1]) : null;
  };
  const wanted = ['rtmp', 'http'];
  if (env.CUECAST_RTMPS_ENABLED !== 'false') wanted.push('rtmps');
  if (env.CUECAST_SRT_ENABLED !== 'false') wanted.push('srt');
  if (env.CUECAST_CHAT_ENABLED !== 'false') wanted.push('chat');
  await waitFor(
    `cuecast to listen on ${wanted.join(', ')}`,
    () => {
      if (exited) throw new Error(`cuecast exited (${JSON.stringify(exited)}):\n${log()}`);
      return wanted.every((n) => port(n));
    },
    20000,
    50,
  );
  const http = port('http');
  const server = {
    http,
    rtmpPort: port('rtmp'),
    chatPort: port('chat'),
    url: (path = '/') => `http://127.0.0.1:${http}${path}`,
    rtmpUrl: (key) => `rtmp://127.0.0.1:${port('rtmp')}/live/${key}`,
    log,
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        await waitFor('cuecast to exit', () => exited, 15000).catch(() => child.kill('SIGKILL'));
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
  await waitFor('/healthz', async () => (await fetch(server.url('/healthz'))).ok, 20000);
  return server;
}

/** `fetch` of the JSON API: { status, body } (body parsed when JSON). */
export async function call(server, method, path, { token, body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(server.url(path), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: response.status, body: parsed };
}

/** Signs up `username` and gives it `caps` (admin call); returns its login token. */
export async function user(server, username, caps = ['send']) {
  const password = `pw-${username}-12345`;
  let r = await call(server, 'POST', '/api/signup', { body: { username, password } });
  check(r.status === 201, `signup ${username}: ${r.status} ${JSON.stringify(r.body)}`);
  r = await call(server, 'PUT', `/api/users/${username}/capabilities`, {
    token: ADMIN,
    body: { capabilities: caps },
  });
  check(r.status === 200, `capabilities ${username}: ${r.status} ${JSON.stringify(r.body)}`);
  r = await call(server, 'POST', '/api/login', { body: { username, password } });
  check(r.status === 200, `login ${username}: ${r.status}`);
  return { username, password, token: r.body.token };
}

/**
 * ffmpeg publishing as OBS does (H.264 high, 2 s GOP, AAC), real time, for `seconds`.
 * Returns { stop(), exited: Promise }.
 */
export function publish(url, seconds = 60, size = '640x360') {
  const args = [
    '-hide_banner', '-loglevel', 'warning', '-nostdin', '-re',
    '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=30`,
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', String(seconds), '-c:v', 'libx264', '-profile:v', 'high', '-preset', 'veryfast',
    '-pix_fmt', 'yuv420p', '-g', '60', '-keyint_min', '60', '-sc_threshold', '0', '-bf', '2',
    '-b:v', '800k', '-c:a', 'aac', '-ar', '48000', '-ac', '2', '-b:a', '128k', '-f', 'flv', url,
  ];
  const child = spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((r) => child.on('exit', (code) => r({ code, stderr })));
  return {
    exited,
    stderr: () => stderr,
    stop() {
      child.kill('SIGKILL');
    },
  };
}

/** Debian's headless Chromium (playwright-core). */
export async function launch() {
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    throw new Error(`playwright-core is not installed (npm ci in ${here}): ${e.message}`);
  }
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required',
      // WebTransport to the chat's self-signed development certificate is allowed by its hash
      // (serverCertificateHashes); QUIC to 127.0.0.1 needs no other flag.
    ],
  });
}

/** Desktop and phone viewports the pages are checked in. */
export const VIEWPORTS = {
  desktop: { viewport: { width: 1366, height: 800 } },
  phone: {
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  },
};

/**
 * A new page in its own context whose console errors and uncaught exceptions are collected:
 * `page.errors` (call `assertNoConsoleErrors(page)` at the end).
 */
export async function newPage(browser, kind = 'desktop', options = {}) {
  const context = await browser.newContext({ ...VIEWPORTS[kind], ...options });
  const page = await context.newPage();
  page.errors = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') page.errors.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => page.errors.push(`pageerror: ${err.message}`));
  return page;
}

export function assertNoConsoleErrors(page, allow = []) {
  const errors = page.errors.filter((e) => !allow.some((re) => re.test(e)));
  check(errors.length === 0, `console errors on ${page.url()}:\n${errors.join('\n')}`);
}

/** axe-core in the page: fails on serious or critical violations (WCAG 2.x A/AA rules). */
export async function axe(page, label) {
  const source = await readFile(join(here, 'node_modules/axe-core/axe.min.js'), 'utf8');
  await page.addScriptTag({ content: source });
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')),
    }));
  });
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  check(bad.length === 0, `axe (${label}): ${JSON.stringify(bad, null, 2)}`);
  return result;
}

/** A full-page screenshot to tests/artifacts/NAME.png. */
export async function screenshot(page, name) {
  await mkdir(artifacts, { recursive: true });
  const path = join(artifacts, `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  return path;
}

/**
 * Runs `body(ctx)` with a server and a browser, stopping both after; prints the error and exits
 * 1 on failure. `ctx` = { server, browser }.
 */
export async function main(body, env = {}) {
  let server;
  let browser;
  try {
    server = await startServer(env);
    browser = await launch();
    await body({ server, browser });
    console.log('ok');
  } catch (e) {
    console.error(e.stack || String(e));
    if (server) console.error(`--- server log (tail) ---\n${server.log().split('\n').slice(-60).join('\n')}`);
    process.exitCode = 1;
  } finally {
    await browser?.close().catch(() => {});
    await server?.stop().catch(() => {});
  }
}
