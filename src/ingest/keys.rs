//! Publish keys: the configured ones (`[[streams]]`, kept in the config in plain text) and the
//! hosts' own stream keys (created, named, rotated and revoked through `/api/keys`, stored as
//! the SHA-256 of a 256-bit random key: the plaintext is shown once and never logged).
//!
//! [`StreamKeys`] is the lookup every ingest protocol asks (key → stream name), updated at run
//! time; [`HostKeys`] is the hosts' keys in the store. A host key's stream is owned by the host
//! ([`crate::hls::directory::Owner::Host`]) and works everywhere a configured stream does.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sqlx::AnyPool;
use sqlx::Row;
use tokio::sync::mpsc;

use super::{LiveSet, StreamConfig};
use crate::hls::directory::{Owner, StreamDirectory};
use crate::hls::origin::is_valid_stream_name;

/// What every host key starts with (tells a cuecast key from a configured one in a leak scan).
pub const KEY_PREFIX: &str = "cck_";
/// Random bytes in a host key.
const KEY_BYTES: usize = 32;
/// Characters of a key kept to tell keys apart (`cck_` and 6 more).
const SHOWN_PREFIX: usize = 10;
/// Longest key name, characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Most keys (revoked included) one host may have.
pub const MAX_KEYS_PER_HOST: usize = 100;

/// Lower-case hex SHA-256 of a key.
fn hash(key: &str) -> String {
    crate::tls::hex(ring::digest::digest(&ring::digest::SHA256, key.as_bytes()).as_ref())
}

/// A host key as the lookup holds it.
#[derive(Debug, Clone)]
struct Hosted {
    id: String,
    stream: String,
}

/// Publish keys → public stream names: the configured keys and the hosts' active keys.
#[derive(Debug)]
pub struct StreamKeys {
    configured: HashMap<String, String>,
    /// Active host keys by hash.
    hosted: RwLock<HashMap<String, Hosted>>,
    directory: Arc<StreamDirectory>,
    /// Told the id of each host key presented by a publisher ([`HostKeys`] records it).
    used: OnceLock<mpsc::UnboundedSender<String>>,
}

impl StreamKeys {
    /// Keys from the `[[streams]]` config (host keys are added by [`HostKeys::open`]).
    pub fn new(streams: &[StreamConfig]) -> StreamKeys {
        StreamKeys {
            configured: streams
                .iter()
                .map(|s| (s.key.clone(), s.name.clone()))
                .collect(),
            hosted: RwLock::new(HashMap::new()),
            directory: Arc::new(StreamDirectory::new(streams.iter().map(|s| s.name.clone()))),
            used: OnceLock::new(),
        }
    }

    /// The streams (configured and hosts'), shared with the features that follow them.
    pub fn directory(&self) -> &Arc<StreamDirectory> {
        &self.directory
    }

    /// The stream name for a publish key (a `?query` suffix, as some encoders append, is
    /// ignored): a configured key, or a host's active key.
    pub fn stream_for(&self, key: &str) -> Option<String> {
        let key = key.split('?').next().unwrap_or(key);
        if let Some(name) = self.configured.get(key) {
            return Some(name.clone());
        }
        if !key.starts_with(KEY_PREFIX) {
            return None;
        }
        let hosted = self
            .hosted
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hash(key))
            .cloned()?;
        if let Some(used) = self.used.get() {
            let _ = used.send(hosted.id);
        }
        Some(hosted.stream)
    }

    /// All stream names (configured and hosts'), sorted.
    pub fn names(&self) -> Vec<String> {
        self.directory.names()
    }

    /// Whether `name` is a stream.
    pub fn is_stream(&self, name: &str) -> bool {
        self.directory.contains(name)
    }

    fn activate(&self, key_hash: String, id: String, stream: String) {
        self.hosted
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key_hash, Hosted { id, stream });
    }

    /// Removes every active hash of key `id`; whether there was one.
    fn deactivate_id(&self, id: &str) -> bool {
        let mut hosted = self.hosted.write().unwrap_or_else(|e| e.into_inner());
        let before = hosted.len();
        hosted.retain(|_, key| key.id != id);
        hosted.len() != before
    }

    fn deactivate(&self, key_hash: &str) {
        self.hosted
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key_hash);
    }
}

/// Who manages keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyActor {
    /// The admin token: every key.
    Admin,
    /// A user with the `host` capability: their own keys.
    Host(String),
}

/// Why a key request failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A bad field.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// No such key.
    #[error("no stream key `{0}`")]
    NotFound(String),
    /// Another host's key or stream.
    #[error("{0}")]
    Forbidden(String),
    /// Taken, or not applicable now.
    #[error("{field}: {message}")]
    Conflict {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The store failed.
    #[error("stream keys store: {0}")]
    Store(#[from] sqlx::Error),
}

/// A key as listed (never the key itself).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    /// Key id (`key-…`).
    pub id: String,
    /// The host's label.
    pub name: String,
    /// The host (username).
    pub host: String,
    /// The stream the key publishes.
    pub stream: String,
    /// When created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// When last rotated (null: never).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub rotated_at: Option<DateTime<Utc>>,
    /// When revoked (null: active).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<DateTime<Utc>>,
    /// When a publisher last presented it (null: never).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<DateTime<Utc>>,
    /// The key's first characters (`cck_` and 6 more).
    pub prefix: String,
}

/// A new key: its listing and the plaintext (shown once).
#[derive(Debug, Clone)]
pub struct NewKey {
    /// The listing.
    pub info: KeyInfo,
    /// The key.
    pub key: String,
}

/// Makes a stream name from `host` and a key `name`: `<host>-<slug(name)>`, within 64
/// characters of letters, digits, '-' and '_'.
pub fn derived_stream(host: &str, name: &str) -> String {
    let slug = |text: &str| -> String {
        let mut out = String::new();
        for c in text.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() || c == '_' {
                out.push(c);
            } else if !out.ends_with('-') {
                out.push('-');
            }
        }
        out.trim_matches('-').to_string()
    };
    let (host, name) = (slug(host), slug(name));
    let mut stream = match (host.is_empty(), name.is_empty()) {
        (false, false) => format!("{host}-{name}"),
        (false, true) => host,
        (true, false) => name,
        (true, true) => "stream".to_string(),
    };
    stream.truncate(64);
    stream.trim_end_matches('-').to_string()
}

fn new_key() -> String {
    let bytes: [u8; KEY_BYTES] = rand::random();
    format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

fn check_name(name: &str) -> Result<String, KeyError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(KeyError::Invalid {
            field: "name",
            message: format!("must be 1-{MAX_NAME_CHARS} characters without control characters"),
        });
    }
    Ok(name.to_string())
}

fn date(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The hosts' stream keys, in the store and in the [`StreamKeys`] lookup.
pub struct HostKeys {
    pool: AnyPool,
    keys: Arc<StreamKeys>,
    live: Arc<LiveSet>,
    /// Serializes changes (uniqueness checks, then writes).
    writing: tokio::sync::Mutex<()>,
}

/// `SELECT <every column> FROM stream_keys <rest>`, a literal.
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, host, name, stream, key_hash, prefix, created_at_ms, rotated_at_ms, ",
            "revoked_at_ms, last_used_at_ms FROM stream_keys ",
            $rest
        )
    };
}

fn info_of(row: &sqlx::any::AnyRow) -> Result<(KeyInfo, String), sqlx::Error> {
    let optional = |column: &str| -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        Ok(row.try_get::<Option<i64>, _>(column)?.map(date))
    };
    Ok((
        KeyInfo {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            host: row.try_get("host")?,
            stream: row.try_get("stream")?,
            created_at: date(row.try_get("created_at_ms")?),
            rotated_at: optional("rotated_at_ms")?,
            revoked_at: optional("revoked_at_ms")?,
            last_used_at: optional("last_used_at_ms")?,
            prefix: row.try_get("prefix")?,
        },
        row.try_get("key_hash")?,
    ))
}

impl HostKeys {
    /// Loads the hosts' keys into `keys` (active keys publish; every key's stream exists) and
    /// starts recording when keys are used.
    pub async fn open(
        pool: AnyPool,
        keys: Arc<StreamKeys>,
        live: Arc<LiveSet>,
    ) -> Result<Arc<HostKeys>, KeyError> {
        let rows = sqlx::query(select!("ORDER BY created_at_ms"))
            .fetch_all(&pool)
            .await?;
        for row in &rows {
            let (info, key_hash) = info_of(row)?;
            if !keys.directory.add_hosted(&info.stream, &info.host) {
                tracing::warn!(key = %info.id, stream = %info.stream, "a host's stream key names a configured stream or another host's; it cannot publish");
                continue;
            }
            if info.revoked_at.is_none() {
                keys.activate(key_hash, info.id, info.stream);
            }
        }
        let (used_tx, mut used) = mpsc::unbounded_channel::<String>();
        let _ = keys.used.set(used_tx);
        let writer = pool.clone();
        tokio::spawn(async move {
            while let Some(id) = used.recv().await {
                let now = Utc::now().timestamp_millis();
                let result =
                    sqlx::query("UPDATE stream_keys SET last_used_at_ms = $1 WHERE id = $2")
                        .bind(now)
                        .bind(&id)
                        .execute(&writer)
                        .await;
                if let Err(err) = result {
                    tracing::warn!(key = %id, error = %err, "cannot record the stream key's use");
                }
            }
        });
        Ok(Arc::new(HostKeys {
            pool,
            keys,
            live,
            writing: tokio::sync::Mutex::new(()),
        }))
    }

    /// The keys of `host` (every key when `None`), oldest first.
    pub async fn list(&self, host: Option<&str>) -> Result<Vec<KeyInfo>, KeyError> {
        let rows = sqlx::query(select!(
            "WHERE $1 IS NULL OR host = $1 ORDER BY created_at_ms, id"
        ))
        .bind(host)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok(info_of(row)?.0))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(KeyError::from)
    }

    /// Creates a key named `name` for `host`, publishing `stream` (or `<host>-<slug(name)>`).
    /// The stream must be no configured stream, not another host's, and have no active key.
    pub async fn create(
        &self,
        host: &str,
        name: &str,
        stream: Option<&str>,
    ) -> Result<NewKey, KeyError> {
        let name = check_name(name)?;
        let stream = match stream {
            Some(stream) if !is_valid_stream_name(stream) => {
                return Err(KeyError::Invalid {
                    field: "stream",
                    message: format!(
                        "`{stream}` must be 1-64 characters of letters, digits, '-' or '_'"
                    ),
                });
            }
            Some(stream) => stream.to_string(),
            None => derived_stream(host, &name),
        };
        let _writing = self.writing.lock().await;
        match self.keys.directory.owner(&stream) {
            Some(Owner::Configured) => {
                return Err(KeyError::Conflict {
                    field: "stream",
                    message: format!("`{stream}` is a configured stream"),
                });
            }
            Some(Owner::Host(owner)) if owner != host => {
                return Err(KeyError::Conflict {
                    field: "stream",
                    message: format!("`{stream}` is another host's stream"),
                });
            }
            _ => {}
        }
        let existing = self.list(Some(host)).await?;
        if existing.len() >= MAX_KEYS_PER_HOST {
            return Err(KeyError::Conflict {
                field: "name",
                message: format!("a host has at most {MAX_KEYS_PER_HOST} keys"),
            });
        }
        if let Some(active) = existing
            .iter()
            .find(|k| k.stream == stream && k.revoked_at.is_none())
        {
            return Err(KeyError::Conflict {
                field: "stream",
                message: format!(
                    "`{stream}` already has an active key (`{}`): rotate it instead",
                    active.id
                ),
            });
        }
        let (key, key_hash) = {
            let key = new_key();
            let key_hash = hash(&key);
            (key, key_hash)
        };
        let id = format!("key-{:016x}", rand::random::<u64>());
        let now = Utc::now().timestamp_millis();
        let prefix: String = key.chars().take(SHOWN_PREFIX).collect();
        sqlx::query(
            "INSERT INTO stream_keys (id, host, name, stream, key_hash, prefix, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(host)
        .bind(&name)
        .bind(&stream)
        .bind(&key_hash)
        .bind(&prefix)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.keys.directory.add_hosted(&stream, host);
        self.keys.activate(key_hash, id.clone(), stream.clone());
        tracing::info!(key = %id, %host, %stream, "stream key created");
        let info = self.get(&id).await?;
        Ok(NewKey { info, key })
    }

    /// Renames key `id`.
    pub async fn rename(
        &self,
        actor: &KeyActor,
        id: &str,
        name: &str,
    ) -> Result<KeyInfo, KeyError> {
        let name = check_name(name)?;
        let _writing = self.writing.lock().await;
        self.owned(actor, id).await?;
        sqlx::query("UPDATE stream_keys SET name = $1 WHERE id = $2")
            .bind(&name)
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.get(id).await
    }

    /// Replaces key `id` by a new one (same stream): the old key no longer publishes (a publish
    /// in progress goes on; reconnecting needs the new key).
    pub async fn rotate(&self, actor: &KeyActor, id: &str) -> Result<NewKey, KeyError> {
        let _writing = self.writing.lock().await;
        let (before, old_hash) = self.owned(actor, id).await?;
        if before.revoked_at.is_some() {
            return Err(KeyError::Conflict {
                field: "id",
                message: format!("stream key `{id}` is revoked"),
            });
        }
        let key = new_key();
        let key_hash = hash(&key);
        let prefix: String = key.chars().take(SHOWN_PREFIX).collect();
        sqlx::query(
            "UPDATE stream_keys SET key_hash = $1, prefix = $2, rotated_at_ms = $3 WHERE id = $4",
        )
        .bind(&key_hash)
        .bind(&prefix)
        .bind(Utc::now().timestamp_millis())
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.keys.deactivate(&old_hash);
        self.keys
            .activate(key_hash, id.to_string(), before.stream.clone());
        tracing::info!(key = %id, stream = %before.stream, "stream key rotated");
        let info = self.get(id).await?;
        Ok(NewKey { info, key })
    }

    /// Revokes key `id`: it no longer publishes, and a publisher live on its stream is
    /// disconnected. Revoking a revoked key changes nothing.
    pub async fn revoke(&self, actor: &KeyActor, id: &str) -> Result<(), KeyError> {
        let _writing = self.writing.lock().await;
        let (before, key_hash) = self.owned(actor, id).await?;
        if before.revoked_at.is_some() {
            return Ok(());
        }
        sqlx::query("UPDATE stream_keys SET revoked_at_ms = $1 WHERE id = $2")
            .bind(Utc::now().timestamp_millis())
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.keys.deactivate(&key_hash);
        let kicked = self.live.kick(&before.stream);
        tracing::info!(key = %id, stream = %before.stream, publisher_disconnected = kicked, "stream key revoked");
        Ok(())
    }

    /// On a shared database: applies other nodes' key changes, announced on `changes` (the
    /// store's notifications): a key created there publishes here, a rotated one publishes
    /// with its new key only, a revoked one no longer publishes (and its publisher here is
    /// disconnected). `*` (notifications lost) re-reads every key. Ends when the store closes.
    pub fn follow(
        self: &Arc<Self>,
        mut changes: tokio::sync::broadcast::Receiver<crate::store::Change>,
    ) -> tokio::task::JoinHandle<()> {
        use tokio::sync::broadcast::error::RecvError;
        let keys = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let result = match changes.recv().await {
                    Ok(change) if change.table == "stream_keys" => keys.refresh(&change.key).await,
                    Ok(change) if change.table == "*" => keys.refresh_all().await,
                    Ok(_) => Ok(()),
                    Err(RecvError::Lagged(_)) => keys.refresh_all().await,
                    Err(RecvError::Closed) => return,
                };
                if let Err(err) = result {
                    tracing::warn!(error = %err, "stream keys: cannot apply other nodes' changes");
                }
            }
        })
    }

    async fn refresh_all(&self) -> Result<(), KeyError> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM stream_keys")
            .fetch_all(&self.pool)
            .await?;
        for id in ids {
            self.refresh(&id).await?;
        }
        Ok(())
    }

    /// Re-reads key `id` into the lookup.
    async fn refresh(&self, id: &str) -> Result<(), KeyError> {
        let _writing = self.writing.lock().await;
        let (info, key_hash) = match self.row(id).await {
            Ok(found) => found,
            Err(KeyError::NotFound(_)) => {
                self.keys.deactivate_id(id);
                return Ok(());
            }
            Err(err) => return Err(err),
        };
        if !self.keys.directory.add_hosted(&info.stream, &info.host) {
            return Ok(());
        }
        let was_active = self.keys.deactivate_id(id);
        if info.revoked_at.is_none() {
            self.keys.activate(key_hash, info.id, info.stream);
        } else if was_active {
            let kicked = self.live.kick(&info.stream);
            tracing::info!(key = %id, stream = %info.stream, publisher_disconnected = kicked, "stream key revoked on another node");
        }
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<KeyInfo, KeyError> {
        Ok(self.row(id).await?.0)
    }

    async fn row(&self, id: &str) -> Result<(KeyInfo, String), KeyError> {
        let row = sqlx::query(select!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| KeyError::NotFound(id.to_string()))?;
        Ok(info_of(&row)?)
    }

    /// Key `id` with its hash, if `actor` may change it (403 for another host's).
    async fn owned(&self, actor: &KeyActor, id: &str) -> Result<(KeyInfo, String), KeyError> {
        let (info, key_hash) = self.row(id).await?;
        match actor {
            KeyActor::Host(host) if *host != info.host => Err(KeyError::Forbidden(format!(
                "stream key `{id}` belongs to another host"
            ))),
            _ => Ok((info, key_hash)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_keys_map_to_names_ignoring_query() {
        let keys = StreamKeys::new(&[StreamConfig {
            name: "demo".into(),
            key: "demo-key".into(),
            srt_passphrase: String::new(),
        }]);
        assert_eq!(keys.stream_for("demo-key").as_deref(), Some("demo"));
        assert_eq!(keys.stream_for("demo-key?obs=1").as_deref(), Some("demo"));
        assert_eq!(keys.stream_for("demo"), None);
        assert_eq!(keys.stream_for(""), None);
    }

    #[test]
    fn host_keys_are_looked_up_by_hash_until_deactivated() {
        let keys = StreamKeys::new(&[]);
        let key = new_key();
        assert!(key.starts_with(KEY_PREFIX) && key.len() == KEY_PREFIX.len() + 43);
        assert!(!key.contains(['?', '/', ' ', '+', '=']), "{key}");
        assert_ne!(key, new_key());
        keys.activate(hash(&key), "key-1".into(), "alice-shop".into());
        assert_eq!(keys.stream_for(&key).as_deref(), Some("alice-shop"));
        assert_eq!(
            keys.stream_for(&format!("{key}?x=1")).as_deref(),
            Some("alice-shop")
        );
        assert_eq!(keys.stream_for(&new_key()), None);
        keys.deactivate(&hash(&key));
        assert_eq!(keys.stream_for(&key), None);
    }

    #[tokio::test]
    async fn a_hosts_keys_are_theirs_and_stop_publishing_when_rotated_or_revoked() {
        let store = crate::store::Store::in_memory().await.unwrap();
        let keys = Arc::new(StreamKeys::new(&[StreamConfig {
            name: "demo".into(),
            key: "demo-key".into(),
            srt_passphrase: String::new(),
        }]));
        let live = Arc::new(LiveSet::default());
        let host_keys = HostKeys::open(store.pool().clone(), Arc::clone(&keys), live)
            .await
            .unwrap();
        let created = host_keys
            .create("alice", "Main studio", None)
            .await
            .unwrap();
        assert_eq!(created.info.stream, "alice-main-studio");
        assert_eq!(
            keys.stream_for(&created.key).as_deref(),
            Some("alice-main-studio")
        );
        assert_eq!(
            keys.directory().owner("alice-main-studio"),
            Some(Owner::Host("alice".into()))
        );
        // Only the hash is stored.
        let stored: String = sqlx::query_scalar("SELECT key_hash FROM stream_keys")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(stored, hash(&created.key));
        assert!(!stored.contains(&created.key));

        let conflict = |err: KeyError| {
            matches!(
                err,
                KeyError::Conflict {
                    field: "stream",
                    ..
                }
            )
        };
        let taken = host_keys
            .create("bob", "x", Some("alice-main-studio"))
            .await;
        assert!(conflict(taken.unwrap_err()));
        let configured = host_keys.create("bob", "x", Some("demo")).await;
        assert!(conflict(configured.unwrap_err()));
        let twice = host_keys
            .create("alice", "y", Some("alice-main-studio"))
            .await;
        assert!(conflict(twice.unwrap_err()), "rotate instead");
        let bad = host_keys.create("alice", "y", Some("a b")).await;
        assert!(matches!(
            bad.unwrap_err(),
            KeyError::Invalid {
                field: "stream",
                ..
            }
        ));

        let bob = KeyActor::Host("bob".into());
        let alice = KeyActor::Host("alice".into());
        let id = created.info.id.clone();
        for result in [
            host_keys.rename(&bob, &id, "mine").await.map(drop),
            host_keys.rotate(&bob, &id).await.map(drop),
            host_keys.revoke(&bob, &id).await,
        ] {
            assert!(matches!(result, Err(KeyError::Forbidden(_))), "{result:?}");
        }
        let rotated = host_keys.rotate(&alice, &id).await.unwrap();
        assert_eq!(keys.stream_for(&created.key), None);
        assert_eq!(
            keys.stream_for(&rotated.key).as_deref(),
            Some("alice-main-studio")
        );
        host_keys.revoke(&KeyActor::Admin, &id).await.unwrap();
        assert_eq!(keys.stream_for(&rotated.key), None);
        assert!(matches!(
            host_keys.rotate(&alice, &id).await,
            Err(KeyError::Conflict { .. })
        ));
        assert!(keys.is_stream("alice-main-studio"), "the stream stays");
        assert!(host_keys.list(Some("bob")).await.unwrap().is_empty());
        let listed = host_keys.list(None).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].revoked_at.is_some() && listed[0].rotated_at.is_some());

        // A restart loads the keys: the stream and its owner, no active key.
        let reloaded = Arc::new(StreamKeys::new(&[]));
        HostKeys::open(
            store.pool().clone(),
            Arc::clone(&reloaded),
            Arc::new(LiveSet::default()),
        )
        .await
        .unwrap();
        assert!(reloaded.is_stream("alice-main-studio"));
        assert_eq!(reloaded.stream_for(&rotated.key), None);
    }

    #[test]
    fn derived_stream_names_are_valid() {
        assert_eq!(derived_stream("alice", "Main studio"), "alice-main-studio");
        assert_eq!(derived_stream("a.b", "  Ça va?! "), "a-b-a-va");
        assert_eq!(derived_stream("bob", "!!!"), "bob");
        let long = derived_stream("host", &"x".repeat(200));
        assert_eq!(long.len(), 64);
        for name in ["alice-main-studio", "a-b-a-va", "bob", &long] {
            assert!(is_valid_stream_name(name), "{name}");
        }
        assert!(check_name(" ").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
        assert_eq!(check_name(" studio ").unwrap(), "studio");
    }
}
