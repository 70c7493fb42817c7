-- Server-wide settings that must survive restarts (for example signing secrets).
CREATE TABLE kv (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
