#!/usr/bin/env node
// Plays a live HLS stream with hls.js (lowLatencyMode) in Debian's headless Chromium, driven by
// playwright-core, and prints ONE JSON object describing the playback to stdout.
//
//   node tests/browser/play.mjs --url http://127.0.0.1:8080/hls/demo/index.m3u8 --seconds 20 [--json out.json]
//
// Options: --seconds N (wall time to play after the first frame, default 20), --start-timeout N
// (seconds to wait for the first frame, default 20), --json FILE (also write the JSON there),
// --chromium PATH (default $CHROMIUM or /usr/bin/chromium), --screenshot FILE (PNG at the end),
// --log FILE (turns on hls.js debug logging and writes the page's whole console there),
// --started-file FILE (written, with the wall time in ms, once the first frame played: a caller
// that changes something during playback — a failover — knows when to start).
//
// Exit code 0 whenever the measurement ran, even if playback never started (`started: false`):
// the caller decides what passes. Exit code 2 on a harness failure (bad arguments, hls.js missing,
// Chromium failed to launch, hard timeout), with the reason on stderr and as `harness_error`.

import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { launchChromium, parseFlags, sleep, startPageServer } from './harness.mjs';

function parseArgs(argv) {
  const opts = parseFlags(argv, {
    url: null,
    seconds: 20,
    startTimeout: 20,
    json: null,
    chromium: process.env.CHROMIUM || '/usr/bin/chromium',
    screenshot: null,
    log: null,
    startedFile: null,
  }, {
    '--url': ['url', 'string'],
    '--seconds': ['seconds', 'number'],
    '--start-timeout': ['startTimeout', 'number'],
    '--json': ['json', 'string'],
    '--chromium': ['chromium', 'string'],
    '--screenshot': ['screenshot', 'string'],
    '--log': ['log', 'string'],
    '--started-file': ['startedFile', 'string'],
  }, 'usage: node play.mjs --url MULTIVARIANT [--seconds 20] [--start-timeout 20] [--json FILE] [--chromium PATH] [--screenshot FILE] [--log FILE] [--started-file FILE]\n');
  if (!opts.url) throw new Error('--url is required');
  for (const [name, v] of [['--seconds', opts.seconds], ['--start-timeout', opts.startTimeout]]) {
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
  }
  return opts;
}

/** Percentile with linear interpolation; null for no samples. */
function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

function summary(values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const round = (v) => (v === null ? null : Math.round(v * 1000) / 1000);
  return {
    samples: sorted.length,
    min: round(sorted.length ? sorted[0] : null),
    p50: round(percentile(sorted, 50)),
    p90: round(percentile(sorted, 90)),
    max: round(sorted.length ? sorted[sorted.length - 1] : null),
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const pageServer = await startPageServer();
  const pageUrl = `http://127.0.0.1:${pageServer.address().port}/player.html?src=${encodeURIComponent(opts.url)}${opts.log ? '&debug=1' : ''}`;
  const userDataDir = await mkdtemp(join(tmpdir(), 'cuecast-chromium-'));
  let context = null;
  const console_ = [];
  const log = [];
  const result = {
    url: opts.url,
    seconds: opts.seconds,
    chromium: null,
    started: false,
    startup_ms: null,
  };
  try {
    context = await launchChromium(opts.chromium, userDataDir);
    result.chromium = context.browser()?.version() ?? null;
    const page = context.pages()[0] ?? await context.newPage();
    page.on('console', (msg) => {
      if (opts.log) log.push(`${new Date().toISOString()} ${msg.type()}: ${msg.text()}`);
      if ((msg.type() === 'error' || msg.type() === 'warning') && console_.length < 50) {
        console_.push(`${msg.type()}: ${msg.text()}`.slice(0, 500));
      }
    });
    let crashed = false;
    page.on('crash', () => { crashed = true; });
    page.on('pageerror', (e) => { if (console_.length < 50) console_.push(`pageerror: ${e.message}`); });

    await page.goto(pageUrl, { waitUntil: 'load', timeout: 15_000 });
    const ready = await page.evaluate(() => typeof window.cuecastState === 'object');
    if (!ready) throw new Error(`player page did not initialise: ${console_.join(' | ') || 'no console output'}`);

    // Wait for the first frame (or a fatal error, or the start timeout).
    const startDeadline = Date.now() + opts.startTimeout * 1000;
    let state = await page.evaluate(() => window.report());
    while (!state.started && !state.fatal && !state.harness_error && !crashed && Date.now() < startDeadline) {
      await sleep(200);
      state = await page.evaluate(() => window.report());
    }
    if (state.started) {
      if (opts.startedFile) await writeFile(opts.startedFile, `${Date.now()}\n`);
      // Play for `seconds` of wall time after the first frame, keeping the last snapshot in case
      // the renderer dies.
      const end = Date.now() + opts.seconds * 1000;
      while (Date.now() < end && !crashed) {
        await sleep(Math.min(1000, Math.max(0, end - Date.now())));
        if (!crashed) state = await page.evaluate(() => window.report());
      }
    }
    if (opts.screenshot && !crashed) await page.screenshot({ path: opts.screenshot });
    result.page_crashed = crashed;
    Object.assign(result, shape(state, opts));
  } finally {
    result.console = console_;
    if (opts.log) await writeFile(opts.log, `${log.join('\n')}\n`).catch(() => {});
    if (context) await context.close().catch(() => {});
    pageServer.close();
    await rm(userDataDir, { recursive: true, force: true }).catch(() => {});
  }
  return result;
}

/** The page's raw state → the reported JSON (summaries first, raw series last). */
function shape(s, opts) {
  return {
    started: s.started,
    startup_ms: s.startup_ms,
    played_s: Math.round(s.played_s * 1000) / 1000,
    wall_s: opts.seconds,
    stalls: s.stalls,
    stall_ms: Math.round(s.stall_ms),
    fatal_error: s.fatal,
    error_count: s.error_count,
    errors: s.errors,
    latency_s: summary(s.latency),
    target_latency_s: summary(s.target_latency),
    pdt_latency_s: summary(s.pdt_latency),
    live: s.live,
    low_latency_mode: s.low_latency_mode,
    parts_seen: s.parts_seen,
    part_target_s: s.part_target,
    can_block_reload: s.can_block_reload,
    target_duration_s: s.target_duration,
    level: s.level,
    levels: s.levels,
    seeks: s.seeks,
    stall_events: s.stall_events,
    dropped_frames: s.dropped_frames,
    total_frames: s.total_frames,
    start_current_time: s.start_current_time,
    end_current_time: s.current_time,
    hls_version: s.hls_version,
    mse_h264: s.mse_h264,
    mse_aac: s.mse_aac,
    harness_error: s.harness_error ?? null,
    play_rejected: s.play_rejected ?? null,
    samples: s.samples,
  };
}

async function emit(result, jsonPath) {
  const text = JSON.stringify(result, null, 2);
  process.stdout.write(`${text}\n`);
  if (jsonPath) await writeFile(jsonPath, `${text}\n`);
}

let opts = null;
try { opts = parseArgs(process.argv.slice(2)); } catch (e) {
  process.stderr.write(`play.mjs: ${e.message}\n`);
  process.exit(2);
}
// Hard timeout: whatever hangs (Chromium, CDP, the page), the process ends.
const hardTimeoutS = opts.startTimeout + opts.seconds + 40;
const hard = setTimeout(() => {
  process.stderr.write(`play.mjs: hard timeout after ${hardTimeoutS} s\n`);
  emit({ url: opts.url, started: false, harness_error: `hard timeout after ${hardTimeoutS} s` }, opts.json)
    .finally(() => process.exit(2));
}, hardTimeoutS * 1000);
hard.unref();

try {
  const result = await main();
  await emit(result, opts.json);
  if (result.harness_error) {
    process.stderr.write(`play.mjs: ${result.harness_error}\n`);
    process.exit(2);
  }
  process.exit(0);
} catch (e) {
  process.stderr.write(`play.mjs: ${e.message}\n`);
  await emit({ url: opts.url, started: false, harness_error: e.message }, opts.json).catch(() => {});
  process.exit(2);
}
