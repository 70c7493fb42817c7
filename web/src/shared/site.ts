// What the server wrote into the page about the shop (src/http/pages.rs, `[web]` in the config):
// its name, logo and accent colour. The CSS variables (--accent, --font) are already applied;
// theme.ts adds the text colour that reads on the accent.

import './theme';

export interface Site {
  shop_name: string;
  logo_url: string;
  accent: string;
}

const FALLBACK: Site = { shop_name: 'cuecast live', logo_url: '', accent: '#b4235a' };

let cached: Site | undefined;

/** The shop's theme, read once from `<script id="cuecast-site">`. */
export function site(): Site {
  if (cached) return cached;
  const element = document.getElementById('cuecast-site');
  try {
    cached = { ...FALLBACK, ...(element ? JSON.parse(element.textContent ?? '{}') : {}) };
  } catch {
    cached = FALLBACK;
  }
  return cached!;
}

/** `Title · Shop` for document.title. */
export function pageTitle(title?: string): string {
  return title ? `${title} · ${site().shop_name}` : site().shop_name;
}
