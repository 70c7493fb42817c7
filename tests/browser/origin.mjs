// A second web origin for the pages' browser tests: a tiny HTTP server on another port (and
// host name: `localhost`, where cuecast is on 127.0.0.1) standing in for a shop's own site —
// the page that embeds a show (embed.html) and the shop's images (show covers).

import { createServer } from 'node:http';

/**
 * Serves `files` (`{ '/path': { type, body } }`, body a string/Buffer or a function of the
 * request's URL) on `localhost`. Returns { url(path), origin, close() }.
 */
export async function serveOrigin(files) {
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const file = files[url.pathname];
    if (!file && url.pathname === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    if (!file) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const body = typeof file.body === 'function' ? file.body(url) : file.body;
    res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' }).end(body);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const origin = `http://localhost:${server.address().port}`;
  return {
    origin,
    url: (path = '/') => `${origin}${path}`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** An SVG cover (16:9) with a gradient and a title: what a shop's CDN would send. */
export function coverSvg(title, from = '#1d3557', to = '#e76f51') {
  const text = title.replace(/[<&>]/g, '');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="640" height="360" viewBox="0 0 640 360">
<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="${from}"/><stop offset="1" stop-color="${to}"/></linearGradient></defs>
<rect width="640" height="360" fill="url(#g)"/>
<circle cx="520" cy="90" r="120" fill="#fff" fill-opacity="0.12"/>
<circle cx="110" cy="320" r="160" fill="#000" fill-opacity="0.10"/>
<text x="40" y="300" font-family="Georgia, serif" font-size="44" font-weight="700" fill="#fff">${text}</text>
</svg>`;
}
