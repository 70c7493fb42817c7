#!/usr/bin/env node
// Forces hls.js level switches on a live ABR stream in Debian's headless Chromium and prints ONE
// JSON object describing each switch to stdout (tests/ladder.rs decides what passes).
//
//   node tests/browser/switch.mjs --url http://127.0.0.1:8080/hls/demo/index.m3u8 [--json out.json]
//
// After the first frame, every level is selected in turn with `hls.currentLevel = i` (immediate
// switch: the buffer is flushed and refilled from level i), then the first level again with
// `hls.nextLevel` (smooth switch at the next fragment). A switch counts as done when hls.js
// plays a fragment of that level (FRAG_CHANGED) and the <video> element shows a picture of the
// level's size; playback must keep advancing throughout.
//
// Options: --dwell N (seconds allowed per switch, default 20), --start-timeout N (default 30),
// --json FILE, --chromium PATH (default $CHROMIUM or /usr/bin/chromium).
// Exit code 0 when the measurement ran (whatever it found); 2 on a harness failure.

import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { launchChromium, parseFlags, sleep, startPageServer } from './harness.mjs';

function parseArgs(argv) {
  const opts = parseFlags(argv, {
    url: null,
    dwell: 20,
    startTimeout: 30,
    json: null,
    chromium: process.env.CHROMIUM || '/usr/bin/chromium',
  }, {
    '--url': ['url', 'string'],
    '--dwell': ['dwell', 'number'],
    '--start-timeout': ['startTimeout', 'number'],
    '--json': ['json', 'string'],
    '--chromium': ['chromium', 'string'],
  }, 'usage: node switch.mjs --url MULTIVARIANT [--dwell 20] [--start-timeout 30] [--json FILE] [--chromium PATH]\n');
  if (!opts.url) throw new Error('--url is required');
  return opts;
}

/** Installs the switch bookkeeping in the page (player.html exposes `window.hls`). */
function instrument() {
  const log = { frags: [], switched: [] };
  window.switchLog = log;
  window.hls.on(Hls.Events.FRAG_CHANGED, (_e, d) => {
    log.frags.push({ level: d.frag.level, sn: d.frag.sn, t: performance.now() });
  });
  window.hls.on(Hls.Events.LEVEL_SWITCHED, (_e, d) => log.switched.push(d.level));
  return window.hls.levels.map((l, index) => ({
    index, width: l.width, height: l.height, bitrate: l.bitrate, codecs: l.codecSet || l.videoCodec,
  }));
}

async function runSwitch(page, target, method, level, dwellS) {
  const started = Date.now();
  const before = await page.evaluate(([t, m]) => {
    const mark = window.switchLog.frags.length;
    if (m === 'currentLevel') window.hls.currentLevel = t; else window.hls.nextLevel = t;
    return { mark, ct: document.getElementById('video').currentTime };
  }, [target, method]);
  let status = null;
  while (Date.now() - started < dwellS * 1000) {
    await sleep(250);
    status = await page.evaluate(([t, mark]) => {
      const v = document.getElementById('video');
      const played = window.switchLog.frags.slice(mark).some((f) => f.level === t);
      return { played, vw: v.videoWidth, vh: v.videoHeight, ct: v.currentTime };
    }, [target, before.mark]);
    if (status.played && status.vw === level.width && status.vh === level.height) break;
  }
  // Keep playing a little on the new level: it must advance.
  await sleep(2000);
  const after = await page.evaluate(() => document.getElementById('video').currentTime);
  return {
    target,
    method,
    ok: !!status && status.played && status.vw === level.width && status.vh === level.height,
    ms: Date.now() - started,
    video_width: status?.vw ?? null,
    video_height: status?.vh ?? null,
    level_width: level.width,
    level_height: level.height,
    advanced_s: Math.round((after - before.ct) * 1000) / 1000,
  };
}

async function main(opts) {
  const pageServer = await startPageServer();
  const pageUrl = `http://127.0.0.1:${pageServer.address().port}/player.html?src=${encodeURIComponent(opts.url)}`;
  const userDataDir = await mkdtemp(join(tmpdir(), 'cuecast-chromium-'));
  let context = null;
  const result = { url: opts.url, started: false, levels: [], switches: [], console: [] };
  try {
    context = await launchChromium(opts.chromium, userDataDir);
    const page = context.pages()[0] ?? await context.newPage();
    page.on('pageerror', (e) => result.console.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && result.console.length < 50) result.console.push(m.text().slice(0, 300));
    });
    await page.goto(pageUrl, { waitUntil: 'load', timeout: 15_000 });
    const deadline = Date.now() + opts.startTimeout * 1000;
    let state = await page.evaluate(() => window.report());
    while (!state.started && !state.fatal && Date.now() < deadline) {
      await sleep(200);
      state = await page.evaluate(() => window.report());
    }
    result.started = state.started;
    if (state.started) {
      result.levels = await page.evaluate(instrument);
      const initial = await page.evaluate(() => window.hls.currentLevel);
      result.initial_level = initial;
      const order = result.levels.map((l) => l.index).filter((i) => i !== initial);
      order.push(initial < 0 ? 0 : initial);
      for (const target of order) {
        result.switches.push(await runSwitch(page, target, 'currentLevel', result.levels[target], opts.dwell));
      }
      const smooth = order[0];
      result.switches.push(await runSwitch(page, smooth, 'nextLevel', result.levels[smooth], opts.dwell));
      state = await page.evaluate(() => window.report());
      result.level_switched_events = await page.evaluate(() => window.switchLog.switched);
    }
    result.errors = state.errors;
    result.error_count = state.error_count;
    result.fatal_error = state.fatal;
    result.stalls = state.stalls;
    result.played_s = Math.round(state.played_s * 1000) / 1000;
  } finally {
    if (context) await context.close().catch(() => {});
    pageServer.close();
    await rm(userDataDir, { recursive: true, force: true }).catch(() => {});
  }
  return result;
}

let opts;
try { opts = parseArgs(process.argv.slice(2)); } catch (e) {
  process.stderr.write(`switch.mjs: ${e.message}\n`);
  process.exit(2);
}
const hardTimeoutS = opts.startTimeout + 8 * (opts.dwell + 3) + 60;
setTimeout(() => {
  process.stderr.write(`switch.mjs: hard timeout after ${hardTimeoutS} s\n`);
  process.exit(2);
}, hardTimeoutS * 1000).unref();
try {
  const result = await main(opts);
  const text = JSON.stringify(result, null, 2);
  process.stdout.write(`${text}\n`);
  if (opts.json) await writeFile(opts.json, `${text}\n`);
  process.exit(0);
} catch (e) {
  process.stderr.write(`switch.mjs: ${e.message}\n`);
  process.exit(2);
}
