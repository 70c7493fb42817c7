//! Persistent state, through sqlx's `Any` driver so the same queries run on either backend:
//!
//! - the embedded SQLite database `<data_dir>/cuecast.db` (the default, one node);
//! - PostgreSQL (`[store] url = "postgres://…"`), shared by several nodes.
//!
//! Queries use `$1`-style placeholders, which both drivers read (SQLite takes `$N` as the N-th
//! parameter), and SQL both dialects accept (`ON CONFLICT … DO UPDATE`, `RETURNING`, quoted
//! `"user"`). Values are the types `Any` carries: `i64`, `f64`, `String`, `bool`, bytes.
//!
//! Each feature owns its tables: it adds a numbered migration under `src/store/migrations/` (and
//! its PostgreSQL version under `migrations/postgres/`, same number) and a line to
//! [`MIGRATIONS`]. Migrations run in order at startup inside one transaction each, and the
//! applied version is kept in `schema_version`, so a restart never re-runs or loses anything. On
//! PostgreSQL a session advisory lock is held while migrating, so nodes starting together
//! migrate once.
//!
//! Nodes that cache tables in memory follow other nodes' writes through [`Store::changes`]:
//! PostgreSQL triggers `NOTIFY cuecast_changes` with `<table> <key>` (see
//! `migrations/postgres/0001_init.sql`); the embedded store has one node and never announces.

pub mod config;

pub use config::{Backend, Config};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection, Executor};
use tokio::sync::broadcast;

/// The connection pool the feature modules query.
pub type Pool = AnyPool;

/// The database file inside the data directory.
pub const DB_FILE: &str = "cuecast.db";

/// Schema migrations, applied in order; the index + 1 is the schema version. Each has its
/// SQLite and its PostgreSQL text.
const MIGRATIONS: &[(&str, &str, &str)] = &[
    (
        "0001_init",
        include_str!("migrations/0001_init.sql"),
        include_str!("migrations/postgres/0001_init.sql"),
    ),
    (
        "0002_cues",
        include_str!("migrations/0002_cues.sql"),
        include_str!("migrations/postgres/0002_cues.sql"),
    ),
    (
        "0003_chat",
        include_str!("migrations/0003_chat.sql"),
        include_str!("migrations/postgres/0003_chat.sql"),
    ),
    (
        "0004_catalog",
        include_str!("migrations/0004_catalog.sql"),
        include_str!("migrations/postgres/0004_catalog.sql"),
    ),
    (
        "0005_shows",
        include_str!("migrations/0005_shows.sql"),
        include_str!("migrations/postgres/0005_shows.sql"),
    ),
    (
        "0006_events",
        include_str!("migrations/0006_events.sql"),
        include_str!("migrations/postgres/0006_events.sql"),
    ),
    (
        "0007_recordings",
        include_str!("migrations/0007_recordings.sql"),
        include_str!("migrations/postgres/0007_recordings.sql"),
    ),
    (
        "0008_stream_keys",
        include_str!("migrations/0008_stream_keys.sql"),
        include_str!("migrations/postgres/0008_stream_keys.sql"),
    ),
    (
        "0009_events_by_show",
        include_str!("migrations/0009_events_by_show.sql"),
        include_str!("migrations/postgres/0009_events_by_show.sql"),
    ),
];

/// The advisory lock key held while migrating a PostgreSQL database ("cuecast" in ASCII).
const MIGRATION_LOCK: i64 = 0x0063_7565_6361_7374;

/// The NOTIFY channel of the change triggers.
const CHANGES_CHANNEL: &str = "cuecast_changes";

/// How much of an SQLite database file is read through a memory map (1 GiB: beyond it, pages
/// are read with `read()`). Mapped pages count in the process's resident set only while the
/// kernel keeps them, and are shared with its page cache.
const MMAP_PRAGMA: &str = "PRAGMA mmap_size = 1073741824;";

/// The writer connection checkpoints the write-ahead log itself only past this many pages
/// (64 MiB): a backstop, should the background checkpointer fall behind or not run (SQLite's
/// default is 1,000 pages, a checkpoint inside every few commits, on the writer's path).
const WAL_AUTOCHECKPOINT_PRAGMA: &str = "PRAGMA wal_autocheckpoint = 16384;";

/// How often the background checkpointer copies committed pages from the write-ahead log into
/// the database file (see [`Checkpointer`]).
const CHECKPOINT_PERIOD: Duration = Duration::from_secs(1);

/// How long to wait for a PostgreSQL connection at start and per query.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections to a PostgreSQL server per node.
const POSTGRES_CONNECTIONS: u32 = 16;

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or queried.
    #[error("database {path}: {source}")]
    Open {
        /// The database path or URL (password hidden).
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
    /// `[store] url` is not usable (check-config reports it first).
    #[error("[store] {0}")]
    Config(#[from] crate::setting::Invalid),
}

/// Which backend a [`Store`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The embedded SQLite database.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A row changed by some node: the table and the row's key (empty when the whole table is
/// announced, as `events` is per statement).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The table's name.
    pub table: String,
    /// The key column's value.
    pub key: String,
}

impl Change {
    fn parse(payload: &str) -> Change {
        let (table, key) = payload.split_once(' ').unwrap_or((payload, ""));
        Change {
            table: table.to_string(),
            key: key.to_string(),
        }
    }
}

/// A handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    kind: Kind,
    /// Other nodes' (and this node's) changes, PostgreSQL only.
    changes: Option<broadcast::Sender<Change>>,
    /// The embedded database file's checkpoints (none in memory or on PostgreSQL).
    checkpointer: Option<Arc<Checkpointer>>,
}

/// Checkpoints of the embedded database's write-ahead log, on a connection of their own.
///
/// SQLite's default is that the commit that takes the log past 1,000 pages also copies the
/// log into the database file and syncs it, inside that commit: under a stream of shopper
/// events every few commits waited for it (the writer's commits took 2.4 ms at the median and
/// 12.5 ms at p90, docs/benchmarks/events.md). Here a task runs a PASSIVE checkpoint — which
/// never waits for, nor blocks, the writer or readers — once a [`CHECKPOINT_PERIOD`], and the
/// writer's own automatic checkpoint is left as a backstop at 64 MiB of log.
#[derive(Debug)]
struct Checkpointer {
    stop: tokio::sync::watch::Sender<bool>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Checkpointer {
    /// Opens its connection to the database at `options` and starts the task.
    async fn start(options: &AnyConnectOptions) -> Result<Checkpointer, sqlx::Error> {
        let conn = AnyConnection::connect_with(options).await?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(checkpoint_loop(conn, stopped));
        Ok(Checkpointer {
            stop,
            task: std::sync::Mutex::new(Some(task)),
        })
    }

    /// Stops the task after its current checkpoint and closes its connection.
    async fn stop(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

async fn checkpoint_loop(mut conn: AnyConnection, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut period = tokio::time::interval(CHECKPOINT_PERIOD);
    period.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = period.tick() => {}
            _ = stop.changed() => break,
        }
        // (busy, frames in the log, frames copied into the database file)
        let done: Result<(i64, i64, i64), _> = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut conn)
            .await;
        match done {
            Ok((_, log, copied)) if log > 0 => {
                tracing::trace!(log, copied, "database log checkpointed");
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, "database log checkpoint failed; the writer checkpoints past 64 MiB of log");
            }
        }
    }
    let _ = conn.close().await;
}

impl Store {
    /// Opens the store `config` names: the embedded database in `data_dir`, or PostgreSQL.
    pub async fn connect(config: &Config, data_dir: &Path) -> Result<Store, StoreError> {
        match config.backend()? {
            Backend::Embedded => Store::open(data_dir).await,
            Backend::Postgres(url) => Store::postgres(&url, &config.display()).await,
        }
    }

    /// Opens (creating if needed) `<data_dir>/cuecast.db` and brings its schema up to date.
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let path = data_dir.join(DB_FILE);
        // Absolute, so that the sqlite:// URL the Any driver opens has no host part (a
        // relative `data/` would read as the host "data").
        let path = std::path::absolute(&path).unwrap_or(path);
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let url = options.to_url_lossy();
        Self::sqlite(url.as_str(), path.display().to_string(), true).await
    }

    /// An in-memory database (tests and benchmarks).
    pub async fn in_memory() -> Result<Store, StoreError> {
        Self::sqlite("sqlite::memory:", ":memory:".into(), false).await
    }

    async fn sqlite(url: &str, path: String, file: bool) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let options: AnyConnectOptions = url.parse().map_err(open_err)?;
        // One writer connection keeps SQLite's single-writer rule out of the way of callers, and
        // a single in-memory database is only shared inside one connection anyway (so it is
        // never closed for idleness).
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")
                        .await?;
                    if file {
                        conn.execute("PRAGMA journal_mode = WAL;").await?;
                        conn.execute(WAL_AUTOCHECKPOINT_PRAGMA).await?;
                        // The database file is read through a memory map: the shopper events'
                        // indexes take inserts all over their B-trees, and a page the page
                        // cache (SQLite's default 2 MiB) no longer holds is then a memory read,
                        // not a read() from the OS. A larger private cache did the same for
                        // the events benchmark but kept every page the chat history appends,
                        // growing the process by ≈ 5 MB an hour up to its size
                        // (docs/benchmarks/soak.md); mapped pages are the kernel's to drop.
                        conn.execute(MMAP_PRAGMA).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await
            .map_err(open_err)?;
        let checkpointer = if file {
            Some(Arc::new(
                Checkpointer::start(&options).await.map_err(open_err)?,
            ))
        } else {
            None
        };
        let store = Store {
            pool,
            kind: Kind::Sqlite,
            changes: None,
            checkpointer,
        };
        store.migrate(&path).await?;
        Ok(store)
    }

    /// Connects to PostgreSQL at `url` (`shown` is the URL with its password hidden, for
    /// errors), migrates under an advisory lock and starts listening for changes.
    pub async fn postgres(url: &str, shown: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let open_err = |source| StoreError::Open {
            path: shown.to_string(),
            source,
        };
        let options: AnyConnectOptions = url.parse().map_err(open_err)?;
        // One connection first, so that a database that cannot be reached is reported with
        // the driver's reason (refused, unknown host, authentication) rather than the pool's
        // timeout.
        let first = tokio::time::timeout(CONNECT_TIMEOUT, AnyConnection::connect_with(&options))
            .await
            .map_err(|_| open_err(sqlx::Error::PoolTimedOut))?
            .map_err(open_err)?;
        let _ = first.close().await;
        let pool = AnyPoolOptions::new()
            .max_connections(POSTGRES_CONNECTIONS)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        let (changes, _) = broadcast::channel(4096);
        let store = Store {
            pool,
            kind: Kind::Postgres,
            changes: Some(changes.clone()),
            checkpointer: None,
        };
        let mut listener = sqlx::postgres::PgListener::connect(url)
            .await
            .map_err(open_err)?;
        listener.listen(CHANGES_CHANNEL).await.map_err(open_err)?;
        store.migrate(shown).await?;
        tokio::spawn(listen(store.pool.clone(), listener, changes));
        Ok(store)
    }

    async fn migrate(&self, path: &str) -> Result<(), StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_string(),
            source,
        };
        let mut conn = self.pool.acquire().await.map_err(open_err)?;
        if self.kind == Kind::Postgres {
            // Session-level: held across the per-migration transactions below, released when
            // done (or when the connection drops, if this node dies while migrating).
            sqlx::query("SELECT COUNT(*) FROM (SELECT pg_advisory_lock($1)) AS locked")
                .bind(MIGRATION_LOCK)
                .execute(&mut *conn)
                .await
                .map_err(open_err)?;
        }
        let result = self.migrate_locked(&mut conn, path).await;
        if self.kind == Kind::Postgres {
            let unlocked = sqlx::query("SELECT COUNT(*) FROM (SELECT pg_advisory_unlock($1)) AS u")
                .bind(MIGRATION_LOCK)
                .execute(&mut *conn)
                .await;
            if let Err(err) = unlocked {
                // The session still holds the lock: drop the connection to release it.
                tracing::warn!(error = %err, "cannot release the migration lock");
                conn.detach();
            }
        }
        result
    }

    async fn migrate_locked(
        &self,
        conn: &mut sqlx::pool::PoolConnection<sqlx::Any>,
        path: &str,
    ) -> Result<(), StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_string(),
            source,
        };
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
            .await
            .map_err(open_err)?;
        let current: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_version")
            .fetch_one(&mut **conn)
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
        for (index, (name, sqlite, postgres)) in
            MIGRATIONS.iter().enumerate().skip(current as usize)
        {
            let sql = match self.kind {
                Kind::Sqlite => *sqlite,
                Kind::Postgres => *postgres,
            };
            let migrate_err = |source| StoreError::Migrate { name, source };
            let mut tx = conn.begin().await.map_err(migrate_err)?;
            tx.execute(sql).await.map_err(migrate_err)?;
            sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
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
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The backend.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Changes to the cached tables made by any node (this one included), as committed; `None`
    /// on the embedded store, where this node is the only writer. A receiver that lags or a
    /// listener that reconnects gets a `Change` with table `*`: reload everything.
    pub fn changes(&self) -> Option<broadcast::Receiver<Change>> {
        self.changes.as_ref().map(broadcast::Sender::subscribe)
    }

    /// Closes the pool, waiting for queries in flight.
    pub async fn close(&self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.stop().await;
        }
        self.pool.close().await;
    }
}

/// Whether `pool` is a database several nodes may share (PostgreSQL), so rows this node does
/// not know of may be another node's.
pub fn is_shared(pool: &AnyPool) -> bool {
    pool.connect_options().database_url.scheme() != "sqlite"
}

/// `count` bind parameters for a query on `pool`, numbered from `first`, comma-separated: PostgreSQL's
/// `$first, $first+1, …`; on SQLite anonymous `?`s, bound in the same order. SQLite looks a
/// numbered parameter's name up by walking the list of every name in the statement, and the
/// driver asks for each one's name as it binds, so hundreds of numbered parameters (a
/// multi-row INSERT, an `IN` list) cost time quadratic in their count: 17 % of the server's CPU
/// in the events benchmark (docs/benchmarks/events.md). The parameters must be bound in the
/// order they appear, which numbered in order they are.
pub fn params(pool: &AnyPool, first: usize, count: usize) -> String {
    let numbered = is_shared(pool);
    let mut out = String::with_capacity(count * 6);
    for n in first..first + count {
        if n > first {
            out.push_str(", ");
        }
        if numbered {
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push('?');
        }
    }
    out
}

/// Forwards the `cuecast_changes` notifications until the store closes. When the listener's
/// connection drops (notifications may be missed until it reconnects) it sends a `*` change
/// at once and again after reconnecting, so caches reload.
async fn listen(
    pool: AnyPool,
    mut listener: sqlx::postgres::PgListener,
    changes: broadcast::Sender<Change>,
) {
    let mut missed = false;
    while !pool.is_closed() {
        match tokio::time::timeout(Duration::from_secs(1), listener.try_recv()).await {
            Err(_elapsed) => {}
            Ok(Ok(Some(notification))) => {
                if std::mem::take(&mut missed) {
                    let _ = changes.send(Change::parse("* "));
                }
                let _ = changes.send(Change::parse(notification.payload()));
            }
            Ok(Ok(None)) => {
                tracing::warn!("store: the change listener lost its connection; reconnecting");
                let _ = changes.send(Change::parse("* "));
                missed = true;
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "store: the change listener failed; retrying in 1 s");
                missed = true;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
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

    #[test]
    fn change_payloads() {
        let change = |table: &str, key: &str| Change {
            table: table.into(),
            key: key.into(),
        };
        assert_eq!(Change::parse("shows show-1"), change("shows", "show-1"));
        assert_eq!(Change::parse("events "), change("events", ""));
        assert_eq!(
            Change::parse("catalog_products sku 1"),
            change("catalog_products", "sku 1")
        );
    }

    #[tokio::test]
    async fn the_embedded_store_is_not_shared_and_announces_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        assert_eq!(store.kind(), Kind::Sqlite);
        assert!(!is_shared(store.pool()));
        assert!(store.changes().is_none());
        // $N placeholders, the syntax of every query, bind by number on SQLite too.
        let (a, b): (String, String) = sqlx::query_as("SELECT $2, $1")
            .bind("first")
            .bind("second")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("second", "first"));
    }

    /// The value of `PRAGMA name` on the store's connection.
    async fn pragma(store: &Store, name: &str) -> i64 {
        let (value,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("PRAGMA {name}")))
            .fetch_one(store.pool())
            .await
            .unwrap();
        value
    }

    #[tokio::test]
    async fn the_database_file_is_read_through_a_map_not_a_private_cache_that_keeps_what_is_written()
     {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let mmap = pragma(&store, "mmap_size").await;
        assert_eq!(mmap, 1 << 30);
        // SQLite's default cache (-2000: 2,000 KiB), not one that grows with every page the
        // chat history appends (docs/benchmarks/soak.md).
        let cache = pragma(&store, "cache_size").await;
        assert_eq!(cache, -2000);
    }

    /// A commit that takes the write-ahead log past SQLite's default 1,000 pages does not
    /// copy it into the database file itself (the writer's path stays a log append and its
    /// sync); the background checkpointer does, within a period or two.
    #[tokio::test]
    async fn commits_leave_checkpoints_to_the_background_checkpointer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let pages = pragma(&store, "wal_autocheckpoint").await;
        assert_eq!(pages, 16384);
        sqlx::query("CREATE TABLE blobs (b BLOB)")
            .execute(store.pool())
            .await
            .unwrap();
        let db = dir.path().join(DB_FILE);
        let size = || std::fs::metadata(&db).map_or(0, |m| m.len());
        let before = size();
        // 8 MiB in one commit: 2,000+ pages of log.
        let mut tx = store.pool().begin().await.unwrap();
        for _ in 0..128 {
            sqlx::query("INSERT INTO blobs VALUES (zeroblob(65536))")
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        assert!(
            size() < before + (1 << 20),
            "the commit checkpointed: {before} → {} bytes",
            size()
        );
        let deadline = std::time::Instant::now() + 4 * CHECKPOINT_PERIOD;
        while size() < before + (8 << 20) {
            assert!(
                std::time::Instant::now() < deadline,
                "not checkpointed in the background: {} bytes",
                size()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        store.close().await;
        assert!(
            !dir.path().join(format!("{DB_FILE}-wal")).exists(),
            "closing leaves no log behind"
        );
    }

    #[tokio::test]
    async fn bind_parameters_are_anonymous_on_sqlite_and_numbered_on_postgres() {
        let store = Store::in_memory().await.unwrap();
        assert_eq!(params(store.pool(), 1, 3), "?, ?, ?");
        // Bound in order, they land where the numbered ones would.
        let (a, b, c): (i64, i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {}",
            params(store.pool(), 1, 3)
        )))
        .bind(1_i64)
        .bind(2_i64)
        .bind(3_i64)
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!((a, b, c), (1, 2, 3));
        let postgres = AnyPoolOptions::new()
            .connect_lazy("postgres://cuecast@127.0.0.1:1/cuecast")
            .unwrap();
        assert_eq!(params(&postgres, 12, 3), "$12, $13, $14");
        assert_eq!(params(&postgres, 1, 0), "");
    }

    #[tokio::test]
    async fn in_memory_works() {
        let store = Store::in_memory().await.unwrap();
        assert_eq!(version(&store).await, MIGRATIONS.len() as i64);
    }
}
