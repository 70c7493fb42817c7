-- Shows (issue #25): live-shopping broadcasts on a configured stream, their schedule and state.

CREATE TABLE shows (
    id                 TEXT PRIMARY KEY NOT NULL,
    title              TEXT NOT NULL,
    description        TEXT NOT NULL,
    -- The host's username (users.username, lower-case).
    host               TEXT NOT NULL,
    -- A configured stream name ([[streams]] name).
    stream             TEXT NOT NULL,
    scheduled_start_ms INTEGER NOT NULL,
    cover_image_url    TEXT,
    -- JSON array of strings.
    tags               TEXT NOT NULL,
    -- scheduled, live or ended.
    state              TEXT NOT NULL,
    started_at_ms      INTEGER,
    ended_at_ms        INTEGER,
    -- The HLS session the show is live on (NULL when not live or waiting for its stream).
    session            TEXT,
    created_at_ms      INTEGER NOT NULL
);
CREATE INDEX shows_state_start ON shows (state, scheduled_start_ms);
CREATE INDEX shows_stream ON shows (stream);
CREATE INDEX shows_host ON shows (host);

-- A show's featured catalog products, in order (catalog ids, not checked against the catalog).
CREATE TABLE show_products (
    show_id    TEXT NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    product_id TEXT NOT NULL,
    PRIMARY KEY (show_id, position)
);
CREATE INDEX show_products_product ON show_products (product_id);
