// The embed's message vocabulary, shared by both sides without side effects: the watch page in
// the iframe (embed-bridge.ts) and the shop's page (web/src/embed/, /embed.js). The contract is
// described at the top of embed-bridge.ts.

export type EmbedEventKind = 'add_to_cart' | 'checkout';

export const EMBED_KINDS: readonly EmbedEventKind[] = ['add_to_cart', 'checkout'];

export interface EmbedProduct {
  /** The catalog product id (SKU). */
  id: string;
  title?: string;
  /** A decimal string (`"49.00"`), as the catalog has it. */
  price?: string;
  currency?: string;
  image_url?: string;
  /** The product's page in the shop (the cue's CTA URL or the catalog's url). */
  url?: string;
}

export interface EmbedEventDetail {
  /** The show's id. */
  show: string;
  /** The product acted on. */
  product: EmbedProduct;
  /** The id of the product cue on screen when it happened, or null. */
  cue: string | null;
  /** How many (default 1). */
  quantity?: number;
  /** For a checkout of the built-in cart: every line in it. */
  items?: { product: EmbedProduct; quantity: number; cue: string | null }[];
}
