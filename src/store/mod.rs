//! Persistent state in an embedded SQLite database (`<data_dir>/cuecast.db`), through sqlx so the
//! same queries can later run against PostgreSQL when several origins share state.
//!
//! Each feature owns its tables: it adds a numbered migration under `src/store/migrations/` and a
//! line to [`MIGRATIONS`]. Migrations run in order at startup inside one transaction each, and the
//! applied version is kept in `schema_version`, so a restart never re-runs or loses anything.

pub mod config;

pub use config::{Backend, Config};

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Connection, Executor};

/// The database file inside the data directory.
pub const DB_FILE: &str = "cuecast.db";

/// Schema migrations, applied in order; the index + 1 is the schema version.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("migrations/0001_init.sql")),
    ("0002_cues", include_str!("migrations/0002_cues.sql")),
    ("0003_chat", include_str!("migrations/0003_chat.sql")),
    ("0004_catalog", include_str!("migrations/0004_catalog.sql")),
    ("0005_shows", include_str!("migrations/0005_shows.sql")),
    ("0006_events", include_str!("migrations/0006_events.sql")),
    (
        "0007_recordings",
        include_str!("migrations/0007_recordings.sql"),
    ),
    (
        "0008_stream_keys",
        include_str!("migrations/0008_stream_keys.sql"),
    ),
];

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or queried.
    #[error("database {path}: {source}")]
    Open {
        /// The database path.
        path: String,
        /// The driver error.
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("database migration {name}: {source}")]
    Migrate {
        /// The migration's name.
        name: &'static str,
        /// The driver error.
        source: sqlx::Error,
    },
    /// The database was written by a newer cuecast.
    #[error("database schema version {found} is newer than this build knows ({known})")]
    TooNew {
        /// Version found in the file.
        found: i64,
        /// Latest version this build has.
        known: i64,
    },
}

/// A handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) `<data_dir>/cuecast.db` and brings its schema up to date.
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let path = data_dir.join(DB_FILE);
        let display = path.display().to_string();
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5))
            // 64 MiB of page cache (the default is 2 MiB): the shopper events' indexes take
            // inserts all over their B-trees, and every page missed is a read from the OS.
            .pragma("cache_size", "-65536");
        Self::connect(options, display).await
    }

    /// An in-memory database (tests and benchmarks).
    pub async fn in_memory() -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: ":memory:".into(),
            source,
        };
        let options = SqliteConnectOptions::from_str("sqlite::memory:").map_err(open_err)?;
        Self::connect(options, ":memory:".into()).await
    }

    async fn connect(options: SqliteConnectOptions, path: String) -> Result<Store, StoreError> {
        // One writer connection keeps SQLite's single-writer rule out of the way of callers, and
        // a single in-memory database is only shared inside one connection anyway.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?;
        let store = Store { pool };
        store.migrate(&path).await?;
        Ok(store)
    }

    async fn migrate(&self, path: &str) -> Result<(), StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_string(),
            source,
        };
        let mut conn = self.pool.acquire().await.map_err(open_err)?;
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            .await
            .map_err(open_err)?;
        let current: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_version")
            .fetch_one(&mut *conn)
            .await
            .map_err(open_err)?;
        let current = current.unwrap_or(0);
        let known = MIGRATIONS.len() as i64;
        if current > known {
            return Err(StoreError::TooNew {
                found: current,
                known,
            });
        }
        for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let migrate_err = |source| StoreError::Migrate { name, source };
            let mut tx = conn.begin().await.map_err(migrate_err)?;
            tx.execute(*sql).await.map_err(migrate_err)?;
            sqlx::query("INSERT INTO schema_version (version) VALUES (?)")
                .bind(index as i64 + 1)
                .execute(&mut *tx)
                .await
                .map_err(migrate_err)?;
            tx.commit().await.map_err(migrate_err)?;
            tracing::info!(migration = name, "database migrated");
        }
        Ok(())
    }

    /// The connection pool, for the feature modules' queries.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the pool, waiting for queries in flight.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn version(store: &Store) -> i64 {
        sqlx::query_scalar("SELECT MAX(version) FROM schema_version")
            .fetch_one(store.pool())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn migrates_once_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        assert_eq!(version(&store).await, MIGRATIONS.len() as i64);
        sqlx::query("INSERT INTO kv (key, value) VALUES ('a', 'b')")
            .execute(store.pool())
            .await
            .unwrap();
        store.close().await;
        let store = Store::open(dir.path()).await.unwrap();
        assert_eq!(version(&store).await, MIGRATIONS.len() as i64);
        let value: String = sqlx::query_scalar("SELECT value FROM kv WHERE key = 'a'")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(value, "b");
    }

    #[tokio::test]
    async fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        sqlx::query("INSERT INTO schema_version (version) VALUES (999)")
            .execute(store.pool())
            .await
            .unwrap();
        store.close().await;
        let err = Store::open(dir.path()).await.unwrap_err();
        assert!(
            matches!(err, StoreError::TooNew { found: 999, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn in_memory_works() {
        let store = Store::in_memory().await.unwrap();
        assert_eq!(version(&store).await, MIGRATIONS.len() as i64);
    }
}
