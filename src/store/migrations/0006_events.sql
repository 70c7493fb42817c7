-- Shopper events (src/commerce/events): one row per accepted event of POST /api/events.
-- Written in group-committed transactions of multi-row INSERTs; read per show, grouped.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    type        TEXT NOT NULL CHECK (type IN ('view_show', 'impression', 'click', 'cta_click',
                                              'add_to_cart', 'purchase')),
    show        TEXT NOT NULL,
    product     TEXT,
    cue         TEXT,                  -- the product cue on screen (per-moment attribution)
    user        TEXT,                  -- set at once from a token, or later by visitor linking
    visitor     TEXT,                  -- the page's anonymous id
    order_id    TEXT,                  -- purchases
    quantity    INTEGER NOT NULL,
    price       TEXT,                  -- unit price, decimal string: summed exactly in Rust
    ts_ms       INTEGER NOT NULL,      -- client time clamped to the server clock
    received_ms INTEGER NOT NULL
);
-- Covers the analytics query (GROUP BY cue, product, type, price; SUM(quantity)) of one show.
CREATE INDEX events_by_show ON events (show, cue, product, type, price, quantity);
-- Anonymous events, for linking a visitor to the user who logged in.
CREATE INDEX events_anonymous ON events (visitor) WHERE user IS NULL;
-- A purchase line is recorded once, however often the shop's backend retries it.
CREATE UNIQUE INDEX events_purchase_lines ON events (order_id, product) WHERE type = 'purchase';
