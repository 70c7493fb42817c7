-- Shows (issue #25): live-shopping broadcasts on a configured stream, their schedule and state.

CREATE TABLE shows (
    id                 TEXT PRIMARY KEY NOT NULL,
    title              TEXT NOT NULL,
    description        TEXT NOT NULL,
    -- The host's username (users.username, lower-case).
    host               TEXT NOT NULL,
    -- A configured stream name ([[streams]] name).
    stream             TEXT NOT NULL,
    scheduled_start_ms BIGINT NOT NULL,
    cover_image_url    TEXT,
    -- JSON array of strings.
    tags               TEXT NOT NULL,
    -- scheduled, live or ended.
    state              TEXT NOT NULL,
    started_at_ms      BIGINT,
    ended_at_ms        BIGINT,
    -- The HLS session the show is live on (NULL when not live or waiting for its stream).
    session            TEXT,
    created_at_ms      BIGINT NOT NULL
);
CREATE INDEX shows_state_start ON shows (state, scheduled_start_ms);
CREATE INDEX shows_stream ON shows (stream);
CREATE INDEX shows_host ON shows (host);

-- A show's featured catalog products, in order (catalog ids, not checked against the catalog).
CREATE TABLE show_products (
    show_id    TEXT NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    position   BIGINT NOT NULL,
    product_id TEXT NOT NULL,
    PRIMARY KEY (show_id, position)
);
CREATE INDEX show_products_product ON show_products (product_id);

CREATE TRIGGER shows_changes AFTER INSERT OR UPDATE OR DELETE ON shows
    FOR EACH ROW EXECUTE FUNCTION cuecast_notify_row('id');
