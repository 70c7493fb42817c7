// Shared by the browser scripts (play.mjs, switch.mjs): the local page server and Chromium.

import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const here = dirname(fileURLToPath(import.meta.url));

/** Serves player.html and hls.min.js on 127.0.0.1 (a secure context, and no outside network). */
export async function startPageServer() {
  const files = {
    '/player.html': ['text/html; charset=utf-8', await readFile(join(here, 'player.html'))],
    '/hls.min.js': ['text/javascript', await readFile(join(here, 'node_modules/hls.js/dist/hls.min.js'))],
  };
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    const file = files[path];
    if (!file) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': file[0], 'cache-control': 'no-store' }).end(file[1]);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return server;
}

/** Debian's headless Chromium with a throw-away profile in `userDataDir`. */
export async function launchChromium(executablePath, userDataDir) {
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    throw new Error(`playwright-core is not installed (run \`npm ci\` in ${here}): ${e.message}`);
  }
  try {
    return await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      timeout: 30_000,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--autoplay-policy=no-user-gesture-required',
      ],
      viewport: { width: 640, height: 360 },
    });
  } catch (e) {
    throw new Error(`Chromium failed to launch (${executablePath}): ${e.message}`);
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Parses `--flag value` arguments onto a copy of `defaults`: `flags` maps each flag to
 * [option key, 'number' | 'string']; `-h`/`--help` prints `usage` and exits.
 */
export function parseFlags(argv, defaults, flags, usage) {
  const opts = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') {
      process.stdout.write(usage);
      process.exit(0);
    }
    const spec = flags[arg];
    if (!spec) throw new Error(`unknown argument ${arg}`);
    if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
    const raw = argv[++i];
    opts[spec[0]] = spec[1] === 'number' ? Number(raw) : raw;
  }
  return opts;
}
