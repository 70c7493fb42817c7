//! The Redis side of a room spread over several nodes (cluster mode; design in docs/chat.md
//! "Chat across nodes"): appending a room's events to its stream, loading a room's shared state,
//! and one stream reader per room with local members, which hands the room's entries, in stream
//! order, to the hub ([`super::hub::Hub::run_bus`]) to apply and fan out.
//!
//! Redis lost: publishing fails fast (the node then delivers to its own members only and counts
//! `cuecast_chat_bus_local_only_total`), readers retry with a backoff up to
//! [`MAX_BACKOFF`] and resume after the last entry they applied. Nothing here exits the process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::bus::{
    self, Cursor, DecodeError, Entry, Keys, PostLimits, PostOutcome, RoomEvent, STREAM_MAXLEN,
};
use super::hub::RoomEntry;
use super::metrics::ChatMetrics;
use super::presence;
use super::proto::ChatMessage;
use super::room::Ban;
use crate::cluster::Cluster;

/// How long one XREAD waits for entries (also how soon a stopped reader notices).
const BLOCK: Duration = Duration::from_millis(1000);
/// Longest wait between reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Entries read at most per XREAD.
const READ_COUNT: usize = 512;

/// A failed bus operation.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Redis refused or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis did not answer in time.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// A reply or entry could not be understood.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The node knows Redis is unreachable (a reader is reconnecting): not tried.
    #[error("redis is unreachable (reconnecting)")]
    Unreachable,
}

/// What a stream reader hands to the hub.
pub enum Delivery {
    /// The next entry of a room, in stream order.
    Entry {
        /// The room.
        room: Arc<Mutex<RoomEntry>>,
        /// The entry.
        entry: Entry,
    },
    /// A room's shared state, loaded late (Redis was unreachable when the room was loaded).
    Snapshot {
        /// The room.
        room: Arc<Mutex<RoomEntry>>,
        /// What Redis holds.
        snapshot: Snapshot,
    },
}

/// A room's shared state in Redis.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The stream's last entries, oldest first (messages since the store's history, and the
    /// room's recent moderation).
    pub tail: Vec<Entry>,
    /// Bans and timeouts in force.
    pub bans: HashMap<String, Ban>,
    /// Slow mode, if set on some node.
    pub slow_mode_s: Option<u64>,
    /// The pin, if set (Some(None): unpinned) on some node.
    pub pinned: Option<Option<ChatMessage>>,
    /// Where reading continues: after the tail's last entry.
    pub cursor: Cursor,
}

/// A node's chat bus over Redis.
pub struct RedisBus {
    cluster: Cluster,
    metrics: Arc<ChatMetrics>,
    deliveries: mpsc::Sender<Delivery>,
    /// False from a failed Redis operation until a reader reads again: posts and moderation
    /// skip Redis meanwhile instead of waiting for a timeout each.
    healthy: AtomicBool,
}

impl RedisBus {
    /// A bus over `cluster`; the receiver is for [`super::hub::Hub::run_bus`].
    pub fn new(
        cluster: Cluster,
        metrics: Arc<ChatMetrics>,
    ) -> (Arc<RedisBus>, mpsc::Receiver<Delivery>) {
        let (deliveries, rx) = mpsc::channel(4096);
        let bus = RedisBus {
            cluster,
            metrics,
            deliveries,
            healthy: AtomicBool::new(true),
        };
        (Arc::new(bus), rx)
    }

    /// This node's id in entries it appends.
    pub fn node_id(&self) -> &str {
        self.cluster.node_id()
    }

    /// Whether Redis answered the last operation.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    fn failed(&self, what: &str, room: &str, err: &BusError) {
        self.metrics.bus_errors.fetch_add(1, Ordering::Relaxed);
        if self.healthy.swap(false, Ordering::Relaxed) {
            tracing::warn!(error = %err, room, "chat bus: {what} failed; rooms on this node go on for their local members until Redis is back");
        }
    }

    fn recovered(&self) {
        if !self.healthy.swap(true, Ordering::Relaxed) {
            tracing::info!("chat bus: Redis is reachable again; rooms are shared again");
        }
    }

    async fn timed<T>(
        &self,
        work: impl Future<Output = Result<T, redis::RedisError>>,
    ) -> Result<T, BusError> {
        let limit = self.cluster.settings().connect_timeout;
        tokio::time::timeout(limit, work)
            .await
            .map_err(|_| BusError::Timeout(limit))?
            .map_err(BusError::from)
    }

    /// Whether `result` failed because the connection had dropped (worth one retry: the
    /// connection manager reconnects behind it).
    fn dropped<T>(result: &Result<T, BusError>) -> bool {
        matches!(result, Err(BusError::Redis(err)) if err.is_io_error() || err.is_connection_dropped())
    }

    /// Checks a post against the room's limits across nodes, takes its id and appends it
    /// (`message.id` is ignored); `floor` is the lowest id the node may be given.
    pub async fn post(
        &self,
        room: &str,
        limits: PostLimits,
        floor: i64,
        message: &ChatMessage,
    ) -> Result<PostOutcome, BusError> {
        if !self.is_healthy() {
            return Err(BusError::Unreachable);
        }
        let keys = Keys::of(room);
        let event = RoomEvent::Message {
            message: message.clone(),
        };
        let [_, (_, json)] = bus::encode(self.node_id(), &event);
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(bus::POST_SCRIPT)
            .arg(4)
            .arg(keys.slow(&message.user))
            .arg(keys.rate(&message.user))
            .arg(bus::ID_KEY)
            .arg(&keys.stream)
            .arg(limits.slow_ms)
            .arg(limits.burst)
            .arg(limits.window_ms)
            .arg(floor)
            .arg(STREAM_MAXLEN)
            .arg(self.node_id())
            .arg(json);
        let mut conn = self.cluster.connection();
        let mut result = self.timed(cmd.query_async::<(i64, i64)>(&mut conn)).await;
        if Self::dropped(&result) {
            // The shared connection had dropped (Redis restarted); it reconnects on this retry.
            result = self.timed(cmd.query_async::<(i64, i64)>(&mut conn)).await;
        }
        let result = result.and_then(|(code, value)| Ok(PostOutcome::from_reply(code, value)?));
        match &result {
            Ok(_) => self.metrics.bus_published.fetch_add(1, Ordering::Relaxed),
            Err(err) => {
                self.failed("post", room, err);
                0
            }
        };
        result
    }

    /// Appends a moderation event to the room's stream and records the room's resulting state
    /// (bans, slow mode, pin) for nodes that load the room later, atomically.
    pub async fn publish(&self, room: &str, event: &RoomEvent) -> Result<(), BusError> {
        if !self.is_healthy() {
            return Err(BusError::Unreachable);
        }
        let keys = Keys::of(room);
        let mut pipe = redis::pipe();
        pipe.atomic();
        let fields = bus::encode(self.node_id(), event);
        pipe.cmd("XADD")
            .arg(&keys.stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(STREAM_MAXLEN)
            .arg("*")
            .arg(fields[0].0)
            .arg(&fields[0].1)
            .arg(fields[1].0)
            .arg(&fields[1].1)
            .ignore();
        match event {
            RoomEvent::Banned { user, until_ms } => {
                let value = bus::ban_value(Ban {
                    until_ms: *until_ms,
                });
                pipe.cmd("HSET")
                    .arg(&keys.bans)
                    .arg(user)
                    .arg(value)
                    .ignore();
            }
            RoomEvent::Unbanned { user } => {
                pipe.cmd("HDEL").arg(&keys.bans).arg(user).ignore();
            }
            RoomEvent::SlowMode { seconds } => {
                pipe.cmd("HSET")
                    .arg(&keys.state)
                    .arg("slow_mode_s")
                    .arg(*seconds)
                    .ignore();
            }
            RoomEvent::Pinned { message } => {
                let json = serde_json::to_string(message).unwrap_or_default();
                pipe.cmd("HSET")
                    .arg(&keys.state)
                    .arg("pinned")
                    .arg(json)
                    .ignore();
            }
            RoomEvent::Deleted { unpinned: true, .. } => {
                pipe.cmd("HSET")
                    .arg(&keys.state)
                    .arg("pinned")
                    .arg("null")
                    .ignore();
            }
            RoomEvent::Deleted { .. } | RoomEvent::Message { .. } => {}
        }
        let mut conn = self.cluster.connection();
        let mut result = self.timed(pipe.query_async::<()>(&mut conn)).await;
        if Self::dropped(&result) {
            result = self.timed(pipe.query_async::<()>(&mut conn)).await;
        }
        match &result {
            Ok(()) => self.metrics.bus_published.fetch_add(1, Ordering::Relaxed),
            Err(err) => {
                self.failed("publish", room, err);
                0
            }
        };
        result
    }

    /// Loads the room's shared state: the stream's last `count` entries, bans, slow mode, pin.
    pub async fn snapshot(&self, room: &str, count: usize) -> Result<Snapshot, BusError> {
        let keys = Keys::of(room);
        let mut pipe = redis::pipe();
        pipe.cmd("XREVRANGE")
            .arg(&keys.stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(count.max(1));
        pipe.cmd("HGETALL").arg(&keys.bans);
        pipe.cmd("HGETALL").arg(&keys.state);
        let mut conn = self.cluster.connection();
        type Reply = (
            redis::Value,
            HashMap<String, String>,
            HashMap<String, String>,
        );
        let result = self.timed(pipe.query_async::<Reply>(&mut conn)).await;
        let (tail, bans, state) = match result {
            Ok(reply) => reply,
            Err(err) => {
                self.failed("room load", room, &err);
                return Err(err);
            }
        };
        let mut snapshot = Snapshot {
            bans: bus::bans_from(&bans),
            slow_mode_s: state.get("slow_mode_s").and_then(|v| v.parse().ok()),
            pinned: state
                .get("pinned")
                .and_then(|v| serde_json::from_str::<Option<ChatMessage>>(v).ok()),
            ..Snapshot::default()
        };
        let mut entries = bus::entries_of(&tail);
        entries.reverse();
        for (id, fields) in entries {
            match bus::decode(&id, &fields) {
                Ok(entry) => {
                    snapshot.cursor.admit(entry.id);
                    snapshot.tail.push(entry);
                }
                Err(err) => tracing::warn!(error = %err, room, "chat bus: entry skipped"),
            }
        }
        Ok(snapshot)
    }

    /// Reports this node's `local` members of `room` at `now_ms` and reads every node's back in
    /// one atomic round trip (the hash also expires by itself when no node renews it); returns
    /// the room's presence across nodes ([`presence::tally`]). Expired nodes' fields are deleted.
    pub async fn presence(&self, room: &str, local: usize, now_ms: i64) -> Result<usize, BusError> {
        if !self.is_healthy() {
            return Err(BusError::Unreachable);
        }
        let key = presence::key(room);
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("HSET")
            .arg(&key)
            .arg(self.node_id())
            .arg(presence::value(local, now_ms))
            .ignore();
        pipe.cmd("PEXPIRE").arg(&key).arg(presence::TTL_MS).ignore();
        pipe.cmd("HGETALL").arg(&key);
        let mut conn = self.cluster.connection();
        let result = self
            .timed(pipe.query_async::<(HashMap<String, String>,)>(&mut conn))
            .await;
        let (fields,) = match result {
            Ok(reply) => reply,
            Err(err) => {
                self.failed("presence", room, &err);
                return Err(err);
            }
        };
        let tally = presence::tally(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())), now_ms);
        if !tally.stale.is_empty() {
            let mut cmd = redis::cmd("HDEL");
            cmd.arg(&key).arg(&tally.stale);
            // Best effort: the next node to read deletes them otherwise.
            if let Err(err) = self.timed(cmd.query_async::<i64>(&mut conn)).await {
                tracing::debug!(error = %err, room, "chat presence: stale nodes not deleted");
            }
        }
        Ok(tally.total)
    }

    /// Removes this node's count of `room` (its last member left), best effort: it would expire
    /// by itself [`presence::TTL_MS`] after its last report.
    pub async fn forget_presence(&self, room: &str) {
        if !self.is_healthy() {
            return;
        }
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(presence::key(room)).arg(self.node_id());
        let mut conn = self.cluster.connection();
        if let Err(err) = self.timed(cmd.query_async::<i64>(&mut conn)).await {
            tracing::debug!(error = %err, room, "chat presence: this node's count not removed");
        }
    }

    /// Starts reading `room`'s stream after `cursor` (None: load a snapshot first) until
    /// `stop`; entries go to the hub in stream order.
    pub fn spawn_reader(
        self: &Arc<Self>,
        name: String,
        room: Arc<Mutex<RoomEntry>>,
        cursor: Option<Cursor>,
        backfill: usize,
        stop: CancellationToken,
    ) {
        let bus = Arc::clone(self);
        tokio::spawn(async move {
            tokio::select! {
                () = bus.read(&name, &room, cursor, backfill) => {}
                () = stop.cancelled() => {}
            }
            tracing::debug!(room = %name, "chat bus: stopped reading the room (no local members)");
        });
    }

    async fn read(
        &self,
        name: &str,
        room: &Arc<Mutex<RoomEntry>>,
        mut cursor: Option<Cursor>,
        backfill: usize,
    ) {
        let keys = Keys::of(name);
        let mut conn: Option<redis::aio::MultiplexedConnection> = None;
        let mut backoff = Duration::from_millis(50);
        loop {
            match self
                .read_once(name, &keys, room, &mut conn, &mut cursor, backfill)
                .await
            {
                Ok(()) => {
                    backoff = Duration::from_millis(50);
                    self.recovered();
                }
                Err(err) => {
                    conn = None;
                    self.failed("stream read", name, &err);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn read_once(
        &self,
        name: &str,
        keys: &Keys,
        room: &Arc<Mutex<RoomEntry>>,
        conn: &mut Option<redis::aio::MultiplexedConnection>,
        cursor: &mut Option<Cursor>,
        backfill: usize,
    ) -> Result<(), BusError> {
        let connection = match conn {
            Some(connection) => connection,
            None => {
                let limit = self.cluster.settings().connect_timeout;
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(limit))
                    .set_response_timeout(Some(BLOCK + limit));
                let fresh = self
                    .timed(
                        self.cluster
                            .client()
                            .get_multiplexed_async_connection_with_config(&config),
                    )
                    .await?;
                conn.insert(fresh)
            }
        };
        let at = match cursor {
            Some(at) => at,
            None => {
                // Loaded while Redis was unreachable: catch up with the shared state first.
                let snapshot = self.snapshot(name, backfill).await?;
                let at = cursor.insert(snapshot.cursor);
                self.deliver(Delivery::Snapshot {
                    room: Arc::clone(room),
                    snapshot,
                })
                .await;
                at
            }
        };
        let reply: redis::Value = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&keys.stream)
            .arg(at.position())
            .query_async(connection)
            .await?;
        for (id, fields) in bus::xread_entries(&reply) {
            match bus::decode(&id, &fields) {
                Ok(entry) => {
                    if at.admit(entry.id) {
                        self.deliver(Delivery::Entry {
                            room: Arc::clone(room),
                            entry,
                        })
                        .await;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, room = name, "chat bus: entry skipped");
                    if let Ok(id) = id.parse() {
                        at.admit(id);
                    }
                }
            }
        }
        Ok(())
    }

    async fn deliver(&self, delivery: Delivery) {
        // The hub outlives the readers (it cancels them); a closed channel means shutdown.
        let _ = self.deliveries.send(delivery).await;
    }
}
