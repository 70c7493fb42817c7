// The text colour on the shop's accent (`--accent-ink`): white or the page's ink, whichever
// reads better on the configured `[web] accent` (WCAG relative luminance), so a light brand
// colour (a yellow) still gets legible buttons and badges. Applied once when imported (site.ts
// imports it; every page uses site.ts). Links use the accent on white: pick an accent with at
// least 4.5:1 against white (docs/web.md) — a warning in the console says when it has not.

const INK = '#17171c';
const WHITE = '#ffffff';

/** `#rgb` / `#rrggbb` → [r, g, b] (0–255), or null. */
export function parseHex(hex: string): [number, number, number] | null {
  const m = hex.trim().match(/^#([0-9a-f]{3}|[0-9a-f]{6})$/i);
  if (!m) return null;
  const h = m[1].length === 3 ? [...m[1]].map((c) => c + c).join('') : m[1];
  return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16)) as [number, number, number];
}

function luminance([r, g, b]: [number, number, number]): number {
  const lin = (c: number) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

/** The WCAG contrast ratio of two `#hex` colours (1 to 21), or null if one is not a colour. */
export function contrast(a: string, b: string): number | null {
  const x = parseHex(a);
  const y = parseHex(b);
  if (!x || !y) return null;
  const [hi, lo] = [luminance(x), luminance(y)].sort((p, q) => q - p);
  return (hi + 0.05) / (lo + 0.05);
}

/** White or ink, whichever contrasts more with `accent`. */
export function inkOn(accent: string): string {
  const white = contrast(accent, WHITE) ?? 21;
  const ink = contrast(accent, INK) ?? 0;
  return white >= 4.5 || white >= ink ? WHITE : INK;
}

function apply(): void {
  const blob = document.getElementById('cuecast-site');
  let accent: string | undefined;
  try {
    accent = blob ? (JSON.parse(blob.textContent ?? '{}') as { accent?: string }).accent : undefined;
  } catch {
    accent = undefined;
  }
  if (!accent || !parseHex(accent)) return;
  document.documentElement.style.setProperty('--accent-ink', inkOn(accent));
  const onWhite = contrast(accent, WHITE) ?? 21;
  if (onWhite < 4.5) {
    console.warn(
      `[web] accent ${accent} has ${onWhite.toFixed(2)}:1 contrast on white (links need 4.5:1): pick a darker shade`,
    );
  }
}

apply();
