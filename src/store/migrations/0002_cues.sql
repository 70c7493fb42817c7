-- Timed product cues (src/cues): posted cues placed on a session's media timeline ('live') and
-- rundown items waiting for the media timeline to reach their offset ('scheduled').
CREATE TABLE cues (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT, -- also the emsg id
    id           TEXT NOT NULL UNIQUE,              -- public id, EXT-X-DATERANGE ID
    stream       TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('scheduled', 'live')),
    source       TEXT NOT NULL CHECK (source IN ('api', 'rundown')),
    spec         TEXT NOT NULL,                     -- JSON: kind, duration, end_on_next, product, data
    offset_ns    INTEGER,                           -- rundown offset from session start
    session      TEXT,                              -- set once live
    start_ns     INTEGER,                           -- resolved media time
    start_date   TEXT,                              -- PROGRAM-DATE-TIME of start_ns (RFC 3339)
    published_ns INTEGER,                           -- media time when it was added to the session
    ended_ns     INTEGER,                           -- cut short at this media time
    created_at   TEXT NOT NULL
);
CREATE INDEX cues_by_stream ON cues (stream, state, seq);
