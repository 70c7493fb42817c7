-- PostgreSQL version of ../0001_init.sql (same numbering; types: BIGINT for integers).
-- Server-wide settings that must survive restarts (for example signing secrets).
CREATE TABLE kv (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- Change notifications (PostgreSQL only): several nodes share this database and keep parts of
-- it in memory, so tables that nodes cache announce their changes on the `cuecast_changes`
-- channel as '<table> <key>' (the key column is the trigger's argument; '' for statement-level
-- triggers). NOTIFY is delivered at commit, so a listener re-reading the row sees the write.
CREATE FUNCTION cuecast_notify_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row_data jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN
        row_data := to_jsonb(OLD);
    ELSE
        row_data := to_jsonb(NEW);
    END IF;
    PERFORM pg_notify('cuecast_changes', TG_TABLE_NAME || ' ' || coalesce(row_data ->> TG_ARGV[0], ''));
    RETURN NULL;
END
$$;
CREATE FUNCTION cuecast_notify_table() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cuecast_changes', TG_TABLE_NAME || ' ');
    RETURN NULL;
END
$$;
