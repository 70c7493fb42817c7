-- Chat (issue #7): accounts, message history with media time, bans/timeouts, room settings.

-- Accounts. Usernames are stored lower-case; passwords as argon2id PHC strings.
CREATE TABLE users (
    username      TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL,
    -- Comma-separated capabilities: send, moderate, host.
    capabilities  TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

-- Chat history. Deleted messages are removed.
CREATE TABLE chat_messages (
    id            BIGINT PRIMARY KEY NOT NULL,
    room          TEXT NOT NULL,
    username      TEXT NOT NULL,
    role          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    text          TEXT NOT NULL,
    -- JSON of the attached link / product card, or NULL.
    link          TEXT,
    product       TEXT,
    sent_at_ms    BIGINT NOT NULL,
    -- HLS session of the stream when sent and the media time within it (NULL when not live).
    session       TEXT,
    media_time_ms BIGINT
);
CREATE INDEX chat_messages_room_id ON chat_messages (room, id);
CREATE INDEX chat_messages_replay ON chat_messages (room, session, media_time_ms);

-- Bans (until_ms NULL) and timeouts (until_ms set) per room.
CREATE TABLE chat_bans (
    room     TEXT NOT NULL,
    username TEXT NOT NULL,
    until_ms BIGINT,
    PRIMARY KEY (room, username)
);

-- Per-room state set by hosts and moderators.
CREATE TABLE chat_rooms (
    room        TEXT PRIMARY KEY NOT NULL,
    pinned_id   BIGINT,
    slow_mode_s BIGINT
);
