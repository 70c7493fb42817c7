#!/usr/bin/env node
// Timed cues in a real player: hls.js in Debian's headless Chromium (playwright-core) plays a live
// stream, this script POSTs a cue to the cuecast API, and reports where hls.js put it — as a
// metadata TextTrack cue from the segments' ID3-in-emsg and from the playlist's EXT-X-DATERANGE —
// (and hls.js's parsed DATERANGE and FRAG_PARSING_METADATA samples) next to where the player's own currentTime → PROGRAM-DATE-TIME mapping puts the cue's
// START-DATE. Then, once the stream has ended (EXT-X-ENDLIST), it plays the replay in a fresh
// player and reports the same. Prints ONE JSON object; the Rust test decides what passes.
//
//   node tests/browser/cues.mjs --url http://127.0.0.1:8080/hls/demo/index.m3u8 \
//     --api http://127.0.0.1:8080/api/streams/demo/cues --token dev-admin-token [--json FILE]
//
// Exit code 0 when the measurement ran; 2 on a harness failure (reason on stderr).

import { createServer } from 'node:http';
import { readFile, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const ISSUE_BODY = {
  kind: 'product', at: 'now', duration_s: 15,
  product: {
    id: 'sku-123', title: 'Rose perfume 50 ml', price: '49.00', currency: 'USD',
    image_url: 'https://shop.example/i/sku-123.jpg',
    cta: { label: 'Buy now', url: 'https://shop.example/p/sku-123' },
  },
  data: {},
};

function parseArgs(argv) {
  const opts = { url: null, api: null, token: null, json: null, timeout: 40, chromium: process.env.CHROMIUM || '/usr/bin/chromium' };
  for (let i = 0; i < argv.length; i++) {
    const value = () => argv[++i];
    switch (argv[i]) {
      case '--url': opts.url = value(); break;
      case '--api': opts.api = value(); break;
      case '--token': opts.token = value(); break;
      case '--json': opts.json = value(); break;
      case '--timeout': opts.timeout = Number(value()); break;
      case '--chromium': opts.chromium = value(); break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!opts.url || !opts.api || !opts.token) throw new Error('--url, --api and --token are required');
  return opts;
}

async function startPageServer() {
  const files = {
    '/cues.html': ['text/html; charset=utf-8', await readFile(join(here, 'cues.html'))],
    '/hls.min.js': ['text/javascript', await readFile(join(here, 'node_modules/hls.js/dist/hls.min.js'))],
  };
  const server = createServer((req, res) => {
    const file = files[new URL(req.url, 'http://x').pathname];
    if (!file) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': file[0], 'cache-control': 'no-store' }).end(file[1]);
  });
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  return server;
}

/** Loads the player page and waits for playback. */
async function openPlayer(context, pageBase, src, timeoutS) {
  const page = await context.newPage();
  await page.goto(`${pageBase}/cues.html?src=${encodeURIComponent(src)}`, { waitUntil: 'load' });
  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    const state = await page.evaluate(() => window.cueState);
    if (state.started) return page;
    if (state.fatal) throw new Error(`hls.js fatal error: ${state.fatal}`);
    if (Date.now() > deadline) throw new Error('playback did not start');
    await sleep(200);
  }
}

/** Polls the page until hls.js has both cue kinds for `id`; the report with the expected time. */
async function waitForCue(page, id, startDateMs, timeoutS) {
  const deadline = Date.now() + timeoutS * 1000;
  let report = null;
  for (;;) {
    report = await page.evaluate((cueId) => window.cueReport(cueId), id);
    if (report.emsg.length > 0 && report.parsed_daterange && report.samples.length > 0
        && report.playing_date_ms !== null) break;
    if (Date.now() > deadline) break;
    await sleep(250);
  }
  // Where the player's PDT mapping puts START-DATE on its timeline.
  report.expected_start = report.playing_date_ms === null
    ? null
    : report.current_time + (startDateMs - report.playing_date_ms) / 1000;
  report.found = report.emsg.length > 0 && report.parsed_daterange !== null && report.samples.length > 0;
  return report;
}

async function mediaPlaylistUrl(multivariant) {
  const text = await (await fetch(multivariant)).text();
  const uri = text.split('\n').find((l) => l && !l.startsWith('#'));
  return new URL(uri, multivariant).toString();
}

async function main(opts) {
  const { chromium } = await import('playwright-core');
  const pageServer = await startPageServer();
  const pageBase = `http://127.0.0.1:${pageServer.address().port}`;
  const userDataDir = await mkdtemp(join(tmpdir(), 'cuecast-cues-'));
  let context = null;
  const result = {};
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: opts.chromium,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
    });
    const live = await openPlayer(context, pageBase, opts.url, opts.timeout);
    const response = await fetch(opts.api, {
      method: 'POST',
      headers: { authorization: `Bearer ${opts.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(ISSUE_BODY),
    });
    result.post_status = response.status;
    result.cue = await response.json();
    if (response.status !== 201) return result;
    const id = result.cue.id;
    const startMs = Date.parse(result.cue.start_date);
    result.live = await waitForCue(live, id, startMs, opts.timeout);
    await live.close();

    // Replay: once the publisher is gone, the ended playlist in a fresh player.
    const media = await mediaPlaylistUrl(opts.url);
    const deadline = Date.now() + 120_000;
    while (!(await (await fetch(media)).text()).includes('#EXT-X-ENDLIST')) {
      if (Date.now() > deadline) throw new Error('the stream did not end');
      await sleep(500);
    }
    const replay = await openPlayer(context, pageBase, opts.url, opts.timeout);
    result.replay = await waitForCue(replay, id, startMs, opts.timeout);
  } finally {
    if (context) await context.close().catch(() => {});
    pageServer.close();
    await rm(userDataDir, { recursive: true, force: true }).catch(() => {});
  }
  return result;
}

let opts;
try { opts = parseArgs(process.argv.slice(2)); } catch (e) {
  process.stderr.write(`cues.mjs: ${e.message}\n`);
  process.exit(2);
}
const hard = setTimeout(() => { process.stderr.write('cues.mjs: hard timeout\n'); process.exit(2); }, (opts.timeout * 4 + 150) * 1000);
hard.unref();
try {
  const result = await main(opts);
  const text = JSON.stringify(result, null, 2);
  process.stdout.write(`${text}\n`);
  if (opts.json) await writeFile(opts.json, `${text}\n`);
  process.exit(0);
} catch (e) {
  process.stderr.write(`cues.mjs: ${e.stack || e.message}\n`);
  process.exit(2);
}
