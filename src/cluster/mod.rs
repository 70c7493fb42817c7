//! Several cuecast nodes behind one address (docs/scaling.md): what they share through Redis.
//!
//! With `[cluster] redis_url` empty (the default) a node is alone: every stream, room and cue
//! lives in this process and nothing here runs. With it set, the node connects to Redis at start
//! (and exits, saying so, when it cannot), and the features that move state between nodes —
//! stream ownership leases, chat and cue fan-out, playback from the owner — take the [`Cluster`]
//! handle from here. Redis is the only thing nodes share besides the store: no node talks a
//! protocol of ours to another except plain HTTP playback requests to a stream's owner.

pub mod config;
pub mod edge;
pub mod handoff;
pub mod lease;

pub use config::{Config, Settings};

use std::time::Duration;

/// Why the cluster connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The Redis URL was refused by the client.
    #[error("cluster.redis_url {url}: {source}")]
    Url {
        /// The URL (without its password).
        url: String,
        /// The client's error.
        source: redis::RedisError,
    },
    /// Redis could not be reached (or did not answer PING) within the connect timeout.
    #[error("cannot reach Redis at {url}: {reason}")]
    Unreachable {
        /// The URL (without its password).
        url: String,
        /// What failed.
        reason: String,
    },
}

/// A node's membership of the cluster: its Redis client and connection, and how other nodes
/// reach it. Cheap to clone (the connection manager multiplexes one connection and reconnects
/// by itself after Redis restarts).
#[derive(Clone)]
pub struct Cluster {
    settings: Settings,
    client: redis::Client,
    manager: redis::aio::ConnectionManager,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("redis", &self.settings.redis_display)
            .field("node_url", &self.settings.node_url.as_str())
            .field("node_id", &self.settings.node_id)
            .finish()
    }
}

impl Cluster {
    /// Connects to Redis and checks it answers (PING) within `settings.connect_timeout`.
    pub async fn connect(settings: Settings) -> Result<Cluster, ClusterError> {
        let url = settings.redis_display.clone();
        let client = redis::Client::open(settings.redis_url.as_str()).map_err(|source| {
            ClusterError::Url {
                url: url.clone(),
                source,
            }
        })?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.connect_timeout));
        let unreachable = |reason: String| ClusterError::Unreachable {
            url: url.clone(),
            reason,
        };
        let mut manager = tokio::time::timeout(
            settings.connect_timeout,
            redis::aio::ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| {
            unreachable(format!(
                "no connection within {:?}",
                settings.connect_timeout
            ))
        })?
        .map_err(|err| unreachable(err.to_string()))?;
        let pong: String = tokio::time::timeout(
            settings.connect_timeout,
            redis::cmd("PING").query_async(&mut manager),
        )
        .await
        .map_err(|_| unreachable("no answer to PING".into()))?
        .map_err(|err| unreachable(err.to_string()))?;
        if pong != "PONG" {
            return Err(unreachable(format!("PING answered {pong:?}")));
        }
        tracing::info!(redis = %url, node_url = %settings.node_url, node_id = %settings.node_id, "cluster: connected to Redis");
        Ok(Cluster {
            settings,
            client,
            manager,
        })
    }

    /// The settings it was made from.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// This node's id in Redis values (lease holders, message origins): unique per process.
    pub fn node_id(&self) -> &str {
        &self.settings.node_id
    }

    /// The HTTP base URL other nodes use to reach this one (no trailing slash).
    pub fn node_url(&self) -> &str {
        self.settings.node_url.as_str().trim_end_matches('/')
    }

    /// The shared, reconnecting connection for commands (not for SUBSCRIBE).
    pub fn connection(&self) -> redis::aio::ConnectionManager {
        self.manager.clone()
    }

    /// The client, for dedicated connections (pub/sub subscribers).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// How long a lease lives without renewal.
    pub fn lease_ttl(&self) -> Duration {
        self.settings.lease_ttl
    }
}
