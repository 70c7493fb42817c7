#!/usr/bin/env node
// The watch page's pure cue logic (web/src/watch/cues.ts), without a browser or a server: the cue
// JSON from each metadata-cue shape hls.js and Safari produce (emsg ID3 TXXX, DATERANGE X-DATA
// as 0x-hex or bytes), and which cue is on screen at a time (durations, DATERANGE ends, `clear`,
// `end_on_next`, a later cue over an earlier one). The TypeScript is compiled with the web
// build's esbuild.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { root } from './cuecast.mjs';

const require = createRequire(join(root, 'web/package.json'));
const esbuild = require('esbuild');
const source = await readFile(join(root, 'web/src/watch/cues.ts'), 'utf8');
const { code } = await esbuild.transform(source, { loader: 'ts', format: 'esm', target: 'es2022' });
const { parsePayload, payloadOf, CueBook } = await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`);

const cue = (id, kind, extra = {}) => ({ id, kind, product: { id: `p-${id}`, title: id }, ...extra });
const json = (c) => JSON.stringify(c);
const hex = (text) => `0x${Buffer.from(text).toString('hex').toUpperCase()}`;

// emsg ID3: hls.js gives the TXXX frame; Safari's DataCue may omit `type` or say org.id3.
const a = cue('a', 'product', { duration_s: 10 });
assert.deepEqual(payloadOf({ type: 'https://aomedia.org/emsg/ID3', startTime: 1, endTime: 2, value: { key: 'TXXX', info: 'com.cuecast.cue', data: json(a) } }), a);
assert.deepEqual(payloadOf({ startTime: 1, endTime: 2, value: { key: 'TXXX', data: json(a) } }), a);
assert.deepEqual(payloadOf({ type: 'org.id3', startTime: 1, endTime: 2, value: { key: 'TXXX', data: new TextEncoder().encode(json(a)).buffer } }), a);
// DATERANGE: X-DATA as hex (hls.js) or bytes (Safari); other attributes are not the payload.
assert.deepEqual(payloadOf({ id: 'a', type: 'com.apple.quicktime.HLS', startTime: 1, endTime: 2, value: { key: 'X-DATA', data: hex(json(a)) } }), a);
assert.deepEqual(payloadOf({ id: 'a', type: 'com.apple.quicktime.HLS', startTime: 1, endTime: 2, value: { key: 'X-DATA', data: new TextEncoder().encode(json(a)) } }), a);
assert.equal(payloadOf({ id: 'a', type: 'com.apple.quicktime.HLS', startTime: 1, endTime: 2, value: { key: 'X-TITLE', data: 'a' } }), null);
assert.equal(payloadOf({ type: 'com.apple.quicktime.HLS', startTime: 1, endTime: 2, value: { key: 'X-DATA', data: '0xZZ' } }), null);
// Not ours, or broken.
assert.equal(parsePayload('{"not":"a cue"}'), null);
assert.equal(parsePayload('garbage'), null);
assert.equal(parsePayload(null), null);
assert.deepEqual(parsePayload(`\u0003${json(a)}`), a, 'a leading encoding byte is skipped');

// On screen.
const book = new CueBook();
assert.equal(book.add(a, 10), true);
assert.equal(book.add(a, 10), false, 'the same cue twice (emsg and DATERANGE) is one cue');
assert.equal(book.onScreen(9.99), null);
assert.equal(book.onScreen(10).payload.id, 'a');
assert.equal(book.onScreen(19.9).payload.id, 'a');
assert.equal(book.onScreen(20), null, 'over after its duration');
assert.equal(book.add(a, 10, 15), true, 'a DATERANGE end (ended early) shortens it');
assert.equal(book.onScreen(15.5), null);
const b = cue('b', 'offer');
book.add(b, 30);
assert.equal(book.onScreen(1000).payload.id, 'b', 'open-ended');
const c = cue('c', 'pin', { duration_s: 5 });
book.add(c, 40);
assert.equal(book.onScreen(41).payload.id, 'c', 'the latest started wins');
assert.equal(book.onScreen(46).payload.id, 'b', 'back to the open-ended one');
book.add({ id: 'x', kind: 'clear', duration_s: 0 }, 50);
assert.equal(book.onScreen(50), null, 'clear removes what started before it');
assert.equal(book.onScreen(60), null);
const d = cue('d', 'product', { end_on_next: true });
const e = cue('e', 'product', { end_on_next: true });
book.add(d, 70);
book.add(e, 80);
assert.equal(book.onScreen(75).payload.id, 'd');
assert.equal(book.onScreen(85).payload.id, 'e');
book.clear();
assert.equal(book.onScreen(85), null);
assert.equal(book.add(a, NaN), false, 'no place on the timeline, no cue');
console.log('ok');
