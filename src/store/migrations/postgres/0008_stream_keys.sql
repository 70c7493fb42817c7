-- Hosts' stream keys (src/ingest/keys.rs): each publishes one stream owned by its host. Only
-- the SHA-256 of a key is kept; the plaintext is shown once, when created or rotated.
CREATE TABLE stream_keys (
    id            TEXT PRIMARY KEY NOT NULL,
    -- The host's username.
    host          TEXT NOT NULL,
    -- The host's label for the key ("studio", "phone").
    name          TEXT NOT NULL,
    -- The stream the key publishes (a public name, owned by the host).
    stream        TEXT NOT NULL,
    -- Lower-case hex SHA-256 of the key.
    key_hash      TEXT NOT NULL UNIQUE,
    -- The key's first characters, to tell keys apart in a list.
    prefix        TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    rotated_at_ms BIGINT,
    revoked_at_ms BIGINT,
    last_used_at_ms BIGINT
);
CREATE INDEX stream_keys_host ON stream_keys (host, created_at_ms);
CREATE INDEX stream_keys_stream ON stream_keys (stream);
CREATE TRIGGER stream_keys_changes AFTER INSERT OR UPDATE OR DELETE ON stream_keys
    FOR EACH ROW EXECUTE FUNCTION cuecast_notify_row('id');
