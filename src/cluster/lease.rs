//! Stream ownership leases: the node that has a stream's publisher holds
//! `cuecast:stream:{name}:owner` = its node id, with an expiry of `lease_ttl`, renewed every
//! third of it and deleted when the stream ends. A second publisher on another node is refused
//! (the key is another node's); a node that dies stops renewing and loses its streams within
//! `lease_ttl`.
//!
//! [`LeaseTable`] is the sans-IO part: which streams this node holds, counted (a publication
//! and the reconnect grace of the one before it may hold the same stream at once), and what a
//! Redis answer means. [`Leases`] runs the three Lua scripts against Redis:
//! take-or-renew (set when absent, extend when ours: a Redis that restarted empty, or a lease
//! that expired while Redis was unreachable, is taken back by its holder at the next renewal),
//! compare-and-delete at release, and GET for owner lookups.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Cluster;

/// The Redis key of a stream's owner.
pub fn owner_key(stream: &str) -> String {
    format!("cuecast:stream:{stream}:owner")
}

/// The HTTP base URL of the node whose id is `node_id` (ids are `{node_url}#{random}`).
pub fn node_url_of(node_id: &str) -> &str {
    node_id.rsplit_once('#').map_or(node_id, |(url, _)| url)
}

/// Sets the key to ARGV[1] for ARGV[2] ms when absent, extends it when it holds ARGV[1];
/// returns the holder (ARGV[1] when ours now).
const TAKE_OR_RENEW: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return holder
";

/// Deletes the key only while it holds ARGV[1]; 1 if deleted.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Why a lease could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another node holds the stream (its publisher is there).
    #[error("stream `{stream}` is published on node {holder}")]
    HeldElsewhere {
        /// The stream.
        stream: String,
        /// The holder's node id.
        holder: String,
    },
    /// Redis did not answer: ownership cannot be checked, so the publish is refused.
    #[error("cannot check the ownership of stream `{stream}` in Redis: {source}")]
    Redis {
        /// The stream.
        stream: String,
        /// The client's error.
        source: redis::RedisError,
    },
}

/// What a take-or-renew answer means for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The lease is ours (taken or extended).
    Ours,
    /// Another node holds it.
    Theirs(String),
}

/// The streams this node holds leases on, each with how many holders (publications, grace
/// periods) keep it: sans-IO.
#[derive(Debug, Default)]
pub struct LeaseTable {
    holds: HashMap<String, Held>,
}

#[derive(Debug, Default)]
struct Held {
    count: usize,
    /// The last renewal found another node holding the key.
    lost: bool,
}

impl LeaseTable {
    /// Interprets a take-or-renew reply for node `me`.
    pub fn answer(me: &str, holder: &str) -> Answer {
        if holder == me {
            Answer::Ours
        } else {
            Answer::Theirs(holder.to_string())
        }
    }

    /// Adds a holder of `stream` if it is held already (no Redis round trip needed); `false`
    /// when the stream is not held here.
    pub fn join(&mut self, stream: &str) -> bool {
        match self.holds.get_mut(stream) {
            Some(held) if !held.lost => {
                held.count += 1;
                true
            }
            _ => false,
        }
    }

    /// Records a lease just taken in Redis (first holder, or more if another took it at the
    /// same time).
    pub fn taken(&mut self, stream: &str) {
        let held = self.holds.entry(stream.to_string()).or_default();
        held.count += 1;
        held.lost = false;
    }

    /// Removes a holder; `true` when it was the last (the key is to be deleted).
    pub fn release(&mut self, stream: &str) -> bool {
        let Some(held) = self.holds.get_mut(stream) else {
            return false;
        };
        held.count = held.count.saturating_sub(1);
        if held.count == 0 {
            self.holds.remove(stream);
            return true;
        }
        false
    }

    /// The streams to renew, sorted.
    pub fn held(&self) -> Vec<String> {
        let mut names: Vec<String> = self.holds.keys().cloned().collect();
        names.sort();
        names
    }

    /// Records a renewal's answer; `true` when this is news (the lease just went to another
    /// node, or came back), for logging once.
    pub fn renewed(&mut self, stream: &str, answer: &Answer) -> bool {
        let Some(held) = self.holds.get_mut(stream) else {
            return false;
        };
        let lost = matches!(answer, Answer::Theirs(_));
        let changed = held.lost != lost;
        held.lost = lost;
        changed
    }

    /// Whether `stream` is held here (and not lost to another node).
    pub fn holds(&self, stream: &str) -> bool {
        self.holds.get(stream).is_some_and(|held| !held.lost)
    }
}

/// This node's leases in Redis.
pub struct Leases {
    cluster: Cluster,
    table: Mutex<LeaseTable>,
    /// Where releases run (guards may drop on the ingest runtime's threads).
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("node_id", &self.cluster.node_id())
            .finish()
    }
}

/// One holder of a stream's lease; released (the key deleted when it was the last holder)
/// on drop.
#[derive(Debug)]
pub struct LeaseGuard {
    stream: String,
    leases: Arc<Leases>,
    /// The stream's handoff ([`super::handoff`]) found when the lease was taken (not joined).
    handoff: Option<String>,
}

impl LeaseGuard {
    /// The handoff a previous owner left (JSON), when this lease was just taken and one was
    /// there: the session to continue.
    pub fn take_handoff(&mut self) -> Option<String> {
        self.handoff.take()
    }

    /// The leases it belongs to.
    pub fn leases(&self) -> &Arc<Leases> {
        &self.leases
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let last = self.leases.lock().release(&self.stream);
        if last {
            let leases = Arc::clone(&self.leases);
            let stream = std::mem::take(&mut self.stream);
            self.leases.runtime.spawn(async move {
                leases.delete(&stream).await;
            });
        }
    }
}

impl Leases {
    /// Leases of `cluster`'s node; releases run on the current Tokio runtime.
    pub fn new(cluster: Cluster) -> Arc<Leases> {
        Arc::new(Leases {
            cluster,
            table: Mutex::new(LeaseTable::default()),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LeaseTable> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The runtime its tasks run on.
    pub(super) fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    /// Takes (or joins) the lease on `stream`.
    pub async fn acquire(self: &Arc<Self>, stream: &str) -> Result<LeaseGuard, LeaseError> {
        let guard = |handoff| LeaseGuard {
            stream: stream.to_string(),
            leases: Arc::clone(self),
            handoff,
        };
        if self.lock().join(stream) {
            return Ok(guard(None));
        }
        let holder = self
            .take_or_renew(stream)
            .await
            .map_err(|source| LeaseError::Redis {
                stream: stream.to_string(),
                source,
            })?;
        match LeaseTable::answer(self.cluster.node_id(), &holder) {
            Answer::Ours => {
                self.lock().taken(stream);
                tracing::info!(stream, node_id = %self.cluster.node_id(), "cluster: stream lease taken");
                // A previous owner that died within the reconnect grace left its session.
                let handoff = match self.read_handoff(stream).await {
                    Ok(handoff) => handoff,
                    Err(err) => {
                        tracing::warn!(stream, error = %err, "cluster: cannot read the stream's handoff; starting a new session");
                        None
                    }
                };
                Ok(guard(handoff))
            }
            Answer::Theirs(holder) => Err(LeaseError::HeldElsewhere {
                stream: stream.to_string(),
                holder,
            }),
        }
    }

    /// Takes [`Leases::acquire`] from a thread outside the runtime (SRT's), waiting at most
    /// the connect timeout.
    pub fn acquire_blocking(self: &Arc<Self>, stream: &str) -> Result<LeaseGuard, LeaseError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (leases, name) = (Arc::clone(self), stream.to_string());
        self.runtime.spawn(async move {
            let _ = tx.send(leases.acquire(&name).await);
        });
        let wait = self.cluster.settings().connect_timeout + Duration::from_millis(500);
        rx.recv_timeout(wait).unwrap_or_else(|_| {
            Err(LeaseError::Redis {
                stream: stream.to_string(),
                source: redis::RedisError::from((redis::ErrorKind::Io, "no answer in time")),
            })
        })
    }

    /// The node id holding `stream`, if any (GET).
    pub async fn owner(&self, stream: &str) -> Result<Option<String>, redis::RedisError> {
        let mut connection = self.cluster.connection();
        redis::cmd("GET")
            .arg(owner_key(stream))
            .query_async(&mut connection)
            .await
    }

    /// Whether this node holds `stream`'s lease.
    pub fn holds(&self, stream: &str) -> bool {
        self.lock().holds(stream)
    }

    async fn take_or_renew(&self, stream: &str) -> Result<String, redis::RedisError> {
        let mut connection = self.cluster.connection();
        let ttl_ms = u64::try_from(self.cluster.lease_ttl().as_millis()).unwrap_or(u64::MAX);
        redis::cmd("EVAL")
            .arg(TAKE_OR_RENEW)
            .arg(1)
            .arg(owner_key(stream))
            .arg(self.cluster.node_id())
            .arg(ttl_ms)
            .query_async(&mut connection)
            .await
    }

    async fn delete(&self, stream: &str) {
        // A publication of the stream may have taken it again meanwhile.
        if self.holds(stream) {
            return;
        }
        let mut connection = self.cluster.connection();
        let deleted: Result<i64, _> = redis::cmd("EVAL")
            .arg(RELEASE)
            .arg(1)
            .arg(owner_key(stream))
            .arg(self.cluster.node_id())
            .query_async(&mut connection)
            .await;
        match deleted {
            Ok(_) => tracing::info!(stream, "cluster: stream lease released"),
            // It expires by itself.
            Err(err) => {
                tracing::warn!(stream, error = %err, "cluster: cannot release the stream lease; it expires")
            }
        }
    }

    /// Renews every held lease each third of the lease lifetime until `shutdown`. Failures are
    /// logged (once per outage) and the node keeps serving what it holds; the next renewal
    /// after Redis is back takes back leases Redis lost.
    pub fn spawn_renewal(self: &Arc<Self>, shutdown: CancellationToken) {
        let leases = Arc::clone(self);
        let period = self.cluster.lease_ttl() / 3;
        self.runtime.spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    () = shutdown.cancelled() => break,
                }
                let held = leases.lock().held();
                let mut failed = None;
                for stream in held {
                    match leases.take_or_renew(&stream).await {
                        Ok(holder) => {
                            let answer = LeaseTable::answer(leases.cluster.node_id(), &holder);
                            if leases.lock().renewed(&stream, &answer) {
                                match &answer {
                                    Answer::Theirs(holder) => tracing::error!(stream, %holder, "cluster: another node took this stream's lease (it expired while Redis was unreachable); this node's publisher continues, viewers elsewhere go to the new owner"),
                                    Answer::Ours => tracing::info!(stream, "cluster: stream lease is ours again"),
                                }
                            }
                        }
                        Err(err) => failed = Some(err),
                    }
                }
                match failed {
                    Some(err) if !failing => {
                        failing = true;
                        tracing::warn!(error = %err, "cluster: cannot renew stream leases in Redis; serving on and retrying");
                    }
                    None if failing => {
                        failing = false;
                        tracing::info!("cluster: Redis is back; stream leases renewed");
                    }
                    _ => {}
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_urls() {
        assert_eq!(owner_key("demo"), "cuecast:stream:demo:owner");
        assert_eq!(
            node_url_of("http://10.0.0.5:8080#00ff00ff00ff00ff"),
            "http://10.0.0.5:8080"
        );
        assert_eq!(node_url_of("no-suffix"), "no-suffix");
    }

    #[test]
    fn holders_are_counted_and_the_last_release_deletes() {
        let mut table = LeaseTable::default();
        assert!(!table.join("demo"), "not held: Redis must be asked");
        table.taken("demo");
        assert!(table.join("demo"), "a second holder needs no round trip");
        assert_eq!(table.held(), vec!["demo".to_string()]);
        assert!(!table.release("demo"));
        assert!(table.holds("demo"));
        assert!(table.release("demo"), "the last holder deletes the key");
        assert!(!table.holds("demo"));
        assert!(table.held().is_empty());
        assert!(!table.release("demo"), "an extra release does nothing");
    }

    #[test]
    fn answers_and_lost_leases() {
        assert_eq!(LeaseTable::answer("a#1", "a#1"), Answer::Ours);
        assert_eq!(
            LeaseTable::answer("a#1", "b#2"),
            Answer::Theirs("b#2".into())
        );
        let mut table = LeaseTable::default();
        table.taken("demo");
        assert!(!table.renewed("demo", &Answer::Ours), "no news");
        assert!(table.renewed("demo", &Answer::Theirs("b#2".into())));
        assert!(!table.holds("demo"));
        assert!(!table.join("demo"), "a lost lease is asked for again");
        assert!(table.renewed("demo", &Answer::Ours), "back");
        assert!(table.holds("demo"));
        assert!(!table.renewed("other", &Answer::Ours), "not held");
    }
}
