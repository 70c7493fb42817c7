//! The rooms of the server and their fan-out: members' send queues, batching per tick,
//! presence updates, persistence and the review hook around the [`Room`] state machines.
//!
//! Fan-out encodes each event once. With a tick (`chat.batch_ms` > 0) the events of a room are
//! appended to one buffer and every member gets that buffer once per tick (one queue entry and,
//! usually, one stream write per member per tick, however busy the room). A member whose queue
//! is full is closed with `SLOW_CONSUMER` rather than slowing the room down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use super::history::{self, HistoryWriter, Op};
use super::metrics::ChatMetrics;
use super::proto::{self, ChatMessage, ClientMsg, CloseCode, RejectCode, ServerMsg};
use super::review::{Decision, Review};
use super::room::{Identity, Moderation, Rejection, Room, RoomSettings};
use crate::hls::registry::Registry;
use crate::store::Store;

/// Shortest interval between presence updates of a room.
const PRESENCE_INTERVAL: Duration = Duration::from_secs(1);

/// Something that can close a client's connection (a QUIC connection or a WebTransport session).
pub trait Closer: Send + Sync {
    /// Closes with an application error code.
    fn close(&self, code: CloseCode);
}

/// A connected member's outlet.
struct Member {
    tx: mpsc::Sender<Bytes>,
    closer: Arc<dyn Closer>,
}

/// A room with its members and pending output.
pub struct RoomEntry {
    room: Room,
    members: HashMap<u64, Member>,
    /// Encoded events not yet delivered (batching).
    pending: BytesMut,
    /// Presence last announced, and when.
    presence_sent: (usize, Instant),
}

/// Fan-out settings.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// Room rules.
    pub room: Arc<RoomSettings>,
    /// Batching tick; zero = deliver each event at once.
    pub tick: Duration,
    /// Queue length per member, in batches.
    pub queue: usize,
}

/// The rooms.
pub struct Hub {
    settings: HubSettings,
    /// Rooms by name; a room is loaded from the store on first use.
    rooms: tokio::sync::Mutex<HashMap<String, Arc<Mutex<RoomEntry>>>>,
    /// Room names that exist (the configured stream names).
    names: Vec<String>,
    registry: Arc<Registry>,
    store: Store,
    writer: Mutex<Option<HistoryWriter>>,
    next_id: AtomicI64,
    next_conn: AtomicU64,
    review: Option<Review>,
    /// Counters.
    pub metrics: Arc<ChatMetrics>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A joined member's handle.
pub struct Joined {
    /// Room.
    pub room: Arc<Mutex<RoomEntry>>,
    /// Connection id in the room.
    pub conn: u64,
    /// Own queue (for acks and rejections).
    pub tx: mpsc::Sender<Bytes>,
}

impl Hub {
    /// A hub over `store`.
    pub async fn new(
        settings: HubSettings,
        names: Vec<String>,
        registry: Arc<Registry>,
        store: Store,
        review: Option<Review>,
        metrics: Arc<ChatMetrics>,
    ) -> Result<Hub, sqlx::Error> {
        let next_id = history::next_id(&store).await?;
        Ok(Hub {
            settings,
            rooms: tokio::sync::Mutex::new(HashMap::new()),
            names,
            registry,
            writer: Mutex::new(Some(HistoryWriter::start(store.clone()))),
            store,
            next_id: AtomicI64::new(next_id),
            next_conn: AtomicU64::new(1),
            review,
            metrics,
        })
    }

    /// Room settings.
    pub fn room_settings(&self) -> &RoomSettings {
        &self.settings.room
    }

    /// Whether `name` is a room.
    pub fn exists(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    fn persist(&self, op: Op) {
        if let Some(writer) = self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            writer.send(op);
        }
    }

    /// Drains pending writes (shutdown).
    pub async fn close(&self) {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = writer {
            writer.close().await;
        }
    }

    async fn room(&self, name: &str) -> Result<Arc<Mutex<RoomEntry>>, sqlx::Error> {
        let mut rooms = self.rooms.lock().await;
        if let Some(room) = rooms.get(name) {
            return Ok(Arc::clone(room));
        }
        let loaded =
            history::load(&self.store, name, self.settings.room.backfill, now_ms()).await?;
        let room = Room::new(
            name,
            Arc::clone(&self.settings.room),
            loaded.messages,
            loaded.bans,
            loaded.pinned,
            loaded.slow_mode,
        );
        let entry = Arc::new(Mutex::new(RoomEntry {
            room,
            members: HashMap::new(),
            pending: BytesMut::new(),
            presence_sent: (0, Instant::now()),
        }));
        rooms.insert(name.to_string(), Arc::clone(&entry));
        Ok(entry)
    }

    /// Joins `room`: queues welcome + backfill + `live` first, then live events, on the
    /// returned queue.
    pub async fn join(
        &self,
        room: &str,
        who: &Identity,
        backfill: Option<u32>,
        closer: Arc<dyn Closer>,
    ) -> Result<(Joined, mpsc::Receiver<Bytes>), CloseCode> {
        if !self.exists(room) {
            return Err(CloseCode::UnknownRoom);
        }
        let entry = self.room(room).await.map_err(|err| {
            tracing::error!(error = %err, room, "cannot load chat room");
            CloseCode::Shutdown
        })?;
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.settings.queue.max(4));
        let want = backfill.map_or(self.settings.room.backfill, |n| n as usize);
        {
            let mut guard = entry.lock().unwrap_or_else(|e| e.into_inner());
            let state = &mut *guard;
            let backlog = state
                .room
                .join(conn, who, want, now_ms())
                .map_err(|_| CloseCode::Banned)?;
            let mut out = BytesMut::new();
            proto::encode_into(
                &ServerMsg::Welcome {
                    version: proto::VERSION,
                    room: room.to_string(),
                    user: who.user.clone(),
                    capabilities: {
                        let mut caps: Vec<_> = who.caps.iter().copied().collect();
                        caps.sort();
                        caps
                    },
                    presence: state.room.presence(),
                    slow_mode_s: state.room.slow_mode().as_secs(),
                    max_text_chars: self.settings.room.max_text_chars,
                    pinned: state.room.pinned().map(|m| (**m).clone()),
                },
                &mut out,
            );
            for message in backlog {
                proto::encode_into(
                    &ServerMsg::Message {
                        message: (*message).clone(),
                        history: true,
                    },
                    &mut out,
                );
            }
            proto::encode_into(&ServerMsg::Live {}, &mut out);
            // The queue is new and empty: this cannot be full.
            let _ = tx.try_send(out.freeze());
            state.members.insert(
                conn,
                Member {
                    tx: tx.clone(),
                    closer,
                },
            );
        }
        Ok((
            Joined {
                room: entry,
                conn,
                tx,
            },
            rx,
        ))
    }

    /// Leaves.
    pub fn leave(&self, joined: &Joined) {
        let mut entry = joined.room.lock().unwrap_or_else(|e| e.into_inner());
        entry.room.leave(joined.conn);
        entry.members.remove(&joined.conn);
    }

    /// Queues `msg` to every member (now, or at the next tick).
    fn broadcast(&self, entry: &mut RoomEntry, msg: &ServerMsg) {
        proto::encode_into(msg, &mut entry.pending);
        if self.settings.tick.is_zero() {
            self.flush(entry);
        }
    }

    /// Delivers the pending buffer to every member.
    fn flush(&self, entry: &mut RoomEntry) {
        if entry.pending.is_empty() {
            return;
        }
        let batch = entry.pending.split().freeze();
        let mut dropped = Vec::new();
        for (conn, member) in &entry.members {
            match member.tx.try_send(batch.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    member.closer.close(CloseCode::SlowConsumer);
                    self.metrics.closed(CloseCode::SlowConsumer);
                    dropped.push(*conn);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => dropped.push(*conn),
            }
        }
        self.metrics.deliveries.fetch_add(
            (entry.members.len() - dropped.len()) as u64,
            Ordering::Relaxed,
        );
        for conn in dropped {
            entry.members.remove(&conn);
            entry.room.leave(conn);
        }
    }

    /// One tick: presence updates (at most once per second per room) and batched delivery.
    pub async fn tick(&self) {
        let rooms: Vec<_> = self.rooms.lock().await.values().cloned().collect();
        let now = Instant::now();
        for room in rooms {
            let mut entry = room.lock().unwrap_or_else(|e| e.into_inner());
            let presence = entry.room.presence();
            if presence != entry.presence_sent.0
                && now.duration_since(entry.presence_sent.1) >= PRESENCE_INTERVAL
            {
                entry.presence_sent = (presence, now);
                proto::encode_into(&ServerMsg::Presence { count: presence }, &mut entry.pending);
            }
            self.flush(&mut entry);
        }
    }

    /// Runs the ticker until `stop`.
    pub async fn run_ticker(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let period = if self.settings.tick.is_zero() {
            Duration::from_millis(100)
        } else {
            self.settings.tick
        };
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => self.tick().await,
                () = stop.cancelled() => break,
            }
        }
    }

    /// Handles one request after `hello`; returns the reply for the requester, if any.
    pub async fn handle(&self, joined: &Joined, who: &Identity, msg: ClientMsg) -> Option<Bytes> {
        let reply = match msg {
            ClientMsg::Hello { .. } => None,
            ClientMsg::Post {
                text,
                link,
                product,
                nonce,
            } => Some(
                self.post(joined, who, &text, link, product.map(|p| *p), nonce)
                    .await,
            ),
            ClientMsg::Delete { id } => self.moderate(joined, |room| room.delete(who, id)),
            ClientMsg::Pin { id } => self.moderate(joined, |room| room.pin(who, Some(id))),
            ClientMsg::Unpin {} => self.moderate(joined, |room| room.pin(who, None)),
            ClientMsg::Timeout { user, seconds } => {
                let until = now_ms().saturating_add((seconds.min(366 * 86_400) * 1000) as i64);
                let user = user.to_ascii_lowercase();
                self.moderate(joined, |room| room.ban(who, &user, Some(until)))
            }
            ClientMsg::Ban { user } => {
                let user = user.to_ascii_lowercase();
                self.moderate(joined, |room| room.ban(who, &user, None))
            }
            ClientMsg::Unban { user } => {
                let user = user.to_ascii_lowercase();
                self.moderate(joined, |room| room.unban(who, &user))
            }
            ClientMsg::SlowMode { seconds } => {
                self.moderate(joined, |room| room.set_slow_mode(who, seconds))
            }
        };
        reply.map(|msg| proto::encode(&msg))
    }

    fn reject(&self, rejection: &Rejection, nonce: Option<String>) -> ServerMsg {
        self.metrics.rejected.fetch_add(1, Ordering::Relaxed);
        rejection.to_msg(nonce)
    }

    async fn post(
        &self,
        joined: &Joined,
        who: &Identity,
        text: &str,
        link: Option<proto::Link>,
        product: Option<proto::ProductCard>,
        nonce: Option<String>,
    ) -> ServerMsg {
        let draft = {
            let mut entry = joined.room.lock().unwrap_or_else(|e| e.into_inner());
            entry
                .room
                .check_post(who, text, link, product, Instant::now(), now_ms())
        };
        let draft = match draft {
            Ok(draft) => draft,
            Err(rejection) => return self.reject(&rejection, nonce),
        };
        let room_name = {
            let entry = joined.room.lock().unwrap_or_else(|e| e.into_inner());
            entry.room.name.clone()
        };
        if let Some(review) = &self.review
            && draft.role == proto::Role::Viewer
            && review.check(&room_name, &draft.user, &draft.text).await == Decision::Deny
        {
            return self.reject(
                &Rejection {
                    code: RejectCode::Denied,
                    reason: "the message was not approved".into(),
                    retry_after: None,
                },
                nonce,
            );
        }
        let (session, media_time_ms) = self.media_time(&room_name);
        let stripped = draft.stripped;
        let message = {
            let mut entry = joined.room.lock().unwrap_or_else(|e| e.into_inner());
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let message = entry.room.commit(ChatMessage {
                id,
                room: room_name,
                user: draft.user,
                role: draft.role,
                kind: draft.kind,
                text: draft.text,
                link: draft.link,
                product: draft.product,
                sent_at_ms: now_ms(),
                session,
                media_time_ms,
            });
            self.broadcast(
                &mut entry,
                &ServerMsg::Message {
                    message: (*message).clone(),
                    history: false,
                },
            );
            message
        };
        self.metrics.messages.fetch_add(1, Ordering::Relaxed);
        let id = message.id;
        self.persist(Op::Insert(message));
        ServerMsg::Ack {
            nonce,
            id,
            stripped,
        }
    }

    /// The stream's HLS session and the media time at send: the PTS of the latest ingested
    /// frame, the same "now" a cue posted at this moment gets (`media_time_s`), on the timeline
    /// the session's segments (and so its replay) play on, continued across reconnects.
    fn media_time(&self, room: &str) -> (Option<String>, Option<i64>) {
        match self.registry.get(room) {
            Some(stream) if !stream.is_ended() => (
                Some(stream.session.clone()),
                stream
                    .cues()
                    .now_ns()
                    .map(|ns| i64::try_from(ns / 1_000_000).unwrap_or(i64::MAX)),
            ),
            _ => (None, None),
        }
    }

    fn moderate(
        &self,
        joined: &Joined,
        act: impl FnOnce(&mut Room) -> Result<Moderation, Rejection>,
    ) -> Option<ServerMsg> {
        let mut guard = joined.room.lock().unwrap_or_else(|e| e.into_inner());
        let entry = &mut *guard;
        let pinned_before = entry.room.pinned().map(|m| m.id);
        let outcome = match act(&mut entry.room) {
            Ok(outcome) => outcome,
            Err(rejection) => return Some(self.reject(&rejection, None)),
        };
        let room = entry.room.name.clone();
        match outcome {
            Moderation::Deleted(id) => {
                self.broadcast(entry, &ServerMsg::Deleted { id });
                if pinned_before == Some(id) {
                    self.broadcast(entry, &ServerMsg::Pinned { message: None });
                }
                self.persist(Op::Delete { room, id });
            }
            Moderation::Pinned(message) => {
                let id = message.as_ref().map(|m| m.id);
                self.broadcast(
                    entry,
                    &ServerMsg::Pinned {
                        message: message.map(|m| (*m).clone()),
                    },
                );
                self.persist(Op::Pin { room, id });
            }
            Moderation::Banned { user, ban, kick } => {
                for conn in kick {
                    if let Some(member) = entry.members.remove(&conn) {
                        member.closer.close(CloseCode::Banned);
                        self.metrics.closed(CloseCode::Banned);
                    }
                    entry.room.leave(conn);
                }
                self.persist(Op::Ban {
                    room,
                    user,
                    ban: Some(ban),
                });
            }
            Moderation::Unbanned(user) => self.persist(Op::Ban {
                room,
                user,
                ban: None,
            }),
            Moderation::SlowMode(seconds) => {
                self.broadcast(entry, &ServerMsg::SlowMode { seconds });
                self.persist(Op::SlowMode { room, seconds });
            }
        }
        None
    }

    /// Closes every member (shutdown).
    pub async fn close_all(&self, code: CloseCode) {
        let rooms: Vec<_> = self.rooms.lock().await.values().cloned().collect();
        for room in rooms {
            let mut entry = room.lock().unwrap_or_else(|e| e.into_inner());
            self.flush(&mut entry);
            for (_, member) in entry.members.drain() {
                member.closer.close(code);
            }
        }
    }
}
