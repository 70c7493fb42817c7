-- Recordings (src/hls/recording): one row per recorded HLS session, the index of the
-- recordings directory (each recording's manifest.json there is its truth; rows are rebuilt
-- from the manifests at startup).
CREATE TABLE recordings (
    id            TEXT PRIMARY KEY NOT NULL,
    -- The stream's public name.
    stream        TEXT NOT NULL,
    -- The HLS session recorded.
    session       TEXT NOT NULL,
    -- The show live on the stream during the session (shows.id), if any.
    show          TEXT,
    started_at_ms BIGINT NOT NULL,
    ended_at_ms   BIGINT,
    duration_ms   BIGINT NOT NULL,
    -- JSON array of rendition names.
    renditions    TEXT NOT NULL,
    -- recording, complete or cut_short.
    state         TEXT NOT NULL CHECK (state IN ('recording', 'complete', 'cut_short')),
    bytes         BIGINT NOT NULL
);
CREATE INDEX recordings_stream ON recordings (stream, started_at_ms);
CREATE INDEX recordings_show ON recordings (show, started_at_ms);
