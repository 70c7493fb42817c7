//! The rooms of the server and their fan-out: members' send queues, batching per tick,
//! presence updates, persistence and the review hook around the [`Room`] state machines.
//!
//! Fan-out encodes each event once. With a tick (`chat.batch_ms` > 0) the events of a room are
//! appended to a buffer and every member gets that buffer once per tick (one queue entry and,
//! usually, one stream write per member per tick, however busy the room). The members are split
//! into phases (`chat.batch_phases`) flushed in turn across the tick, so a room's fan-out is a
//! steady stream of packets rather than one burst per tick: each member still waits at most one
//! tick, but no longer behind every other member of the room. A member whose queue is full is
//! closed with `SLOW_CONSUMER` rather than slowing the room down.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use super::bus::{PostLimits, PostOutcome, RoomEvent};
use super::fanout::{Delivery, RedisBus, Snapshot};
use super::history::{self, HistoryWriter, Op};
use super::metrics::ChatMetrics;
use super::presence::{self, Presence};
use super::proto::{self, ClientMsg, CloseCode, RejectCode, ServerMsg};
use super::review::{Decision, Review};
use super::room::{Ban, Identity, Moderation, Rejection, Room, RoomSettings, timeout_until};
use crate::commerce::ProductLookup;
use crate::hls::directory::{Owner, StreamDirectory};
use crate::hls::registry::Registry;
use crate::store::Store;
use crate::users::Capability;

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
    /// Bytes at the start of its phase's pending buffer that were queued before it joined: its
    /// welcome and backfill already reflect them, so its first batch skips them.
    skip: usize,
}

/// The members flushed together at one point of the tick, and what they have not yet received.
#[derive(Default)]
struct Phase {
    members: HashMap<u64, Member>,
    /// Encoded events not yet delivered to these members.
    pending: BytesMut,
}

/// A room with its members and pending output.
pub struct RoomEntry {
    room: Room,
    /// Members by phase: member `conn` is in phase `conn % phases.len()`.
    phases: Vec<Phase>,
    /// Presence last announced, and when.
    presence_sent: (usize, Instant),
    /// Cluster mode: the room's members on other nodes, as last read from Redis.
    presence: Presence,
    /// Cluster mode: stops the room's stream reader (when the room has no local members left).
    reader: Option<tokio_util::sync::CancellationToken>,
}

impl RoomEntry {
    /// The room's presence: this node's members now, and the other nodes' as last read.
    fn presence_now(&self) -> usize {
        self.presence.count(self.room.presence())
    }

    /// Encodes `msg` once and queues it for every phase's next flush.
    fn queue(&mut self, msg: &ServerMsg) {
        let encoded = proto::encode(msg);
        for phase in &mut self.phases {
            phase.pending.extend_from_slice(&encoded);
        }
    }
}

/// Fan-out settings.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// Room rules.
    pub room: Arc<RoomSettings>,
    /// Batching tick; zero = deliver each event at once.
    pub tick: Duration,
    /// Phases the members of a room are split into, flushed in turn, one every
    /// `tick / phases` (at least 1; 1 when `tick` is zero).
    pub phases: usize,
    /// Queue length per member, in batches.
    pub queue: usize,
}

/// What a ticker step found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepOutcome {
    /// Something is still queued (events for other phases, or a presence change not yet sent).
    pub waiting: bool,
    /// The members just served were largely still writing out their previous batch.
    pub behind: bool,
}

/// When each phase of a room's members gets its batch (pure; the ticker sleeps until
/// [`PhaseClock::deadline`] and flushes what [`PhaseClock::on_step`] returns).
///
/// A tick of `phases` steps, one every `tick / phases`: step `i` flushes phase `i`, so every
/// member gets at most one batch per tick and the room's packets are spread over the tick.
/// When a step runs late by more than a step, or the previous step found the members' queues
/// still holding their last batch (the runtime or the connections are overloaded, e.g. by the
/// fan-out itself), the phases left in that tick are flushed together: under overload one burst per
/// tick is the cheapest way to send (fewer, fuller wakeups and socket reads), and it keeps
/// the spreading from adding a backlog of its own. After such a burst the next tick starts
/// no earlier than one step later, so a burst is not followed by another at once.
#[derive(Debug, Clone)]
pub struct PhaseClock {
    phases: usize,
    step: Duration,
    tick_start: Instant,
    next: usize,
}

impl PhaseClock {
    /// A clock whose first step is one step after `now`.
    pub fn new(tick: Duration, phases: usize, now: Instant) -> PhaseClock {
        let phases = phases.max(1);
        let step = (tick / phases as u32).max(Duration::from_millis(1));
        PhaseClock {
            phases,
            step,
            tick_start: now + step,
            next: 0,
        }
    }

    /// When the next step is due.
    pub fn deadline(&self) -> Instant {
        self.tick_start + self.step * self.next as u32
    }

    /// A step runs at `now` (`behind`: the previous step reported a backlog): the phases to
    /// flush.
    pub fn on_step(&mut self, now: Instant, behind: bool) -> Range<usize> {
        let late = behind || now.saturating_duration_since(self.deadline()) > self.step;
        let end = if late { self.phases } else { self.next + 1 };
        let due = self.next..end;
        self.next = end;
        if self.next == self.phases {
            self.next = 0;
            let next_tick = self.tick_start + self.step * self.phases as u32;
            self.tick_start = if late {
                next_tick.max(now + self.step)
            } else {
                next_tick
            };
        }
        due
    }

    /// Starts over after an idle period: the first phase one step after `now`.
    pub fn restart(&mut self, now: Instant) {
        self.tick_start = now + self.step;
        self.next = 0;
    }
}

/// The rooms.
pub struct Hub {
    settings: HubSettings,
    /// Rooms by name; a room is loaded from the store on first use.
    rooms: tokio::sync::Mutex<HashMap<String, Arc<Mutex<RoomEntry>>>>,
    /// Room names that exist (the streams, configured and hosts'), with their owners.
    names: Arc<StreamDirectory>,
    registry: Arc<Registry>,
    store: Store,
    writer: Mutex<Option<HistoryWriter>>,
    next_id: AtomicI64,
    next_conn: AtomicU64,
    review: Option<Review>,
    /// The catalog, which fills a product card given by id only.
    products: Arc<dyn ProductLookup>,
    /// Wakes the idle ticker: an event was queued or a room's membership changed.
    wake: tokio::sync::Notify,
    /// Cluster mode: the rooms' events go through Redis (None: this node is alone).
    bus: Option<Arc<RedisBus>>,
    /// Counters.
    pub metrics: Arc<ChatMetrics>,
}

/// `who` in a room owned by `owner`: in a host's own room, only its owner keeps `host`, and the
/// owner (a host) also moderates there — the room is theirs.
fn narrowed(owner: Option<&Owner>, who: &Identity) -> Identity {
    let mut who = who.clone();
    if let Some(Owner::Host(owner)) = owner {
        if who.user.as_deref() != Some(owner.as_str()) {
            who.caps.remove(&Capability::Host);
        } else if who.can(Capability::Host) {
            who.caps.insert(Capability::Moderate);
        }
    }
    who
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
    /// Who joined, as they act in the room ([`Hub::in_room`]).
    pub who: Identity,
}

impl Hub {
    /// A hub over `store`.
    pub async fn new(
        settings: HubSettings,
        names: Arc<StreamDirectory>,
        registry: Arc<Registry>,
        store: Store,
        review: Option<Review>,
        metrics: Arc<ChatMetrics>,
        products: Arc<dyn ProductLookup>,
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
            products,
            wake: tokio::sync::Notify::new(),
            bus: None,
            metrics,
        })
    }

    /// In cluster mode: the rooms' events go through `bus` ([`Hub::run_bus`] must run).
    pub fn with_bus(mut self, bus: Option<Arc<RedisBus>>) -> Hub {
        self.bus = bus;
        self
    }

    /// Room settings.
    pub fn room_settings(&self) -> &RoomSettings {
        &self.settings.room
    }

    /// Whether `name` is a room.
    pub fn exists(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// `who` as they act in `room`: the room of a host's own stream (a host key's) has one
    /// host, its owner, who also moderates it — another user's `host` capability does not
    /// count there (moderators keep theirs).
    pub fn in_room(&self, room: &str, who: &Identity) -> Identity {
        narrowed(self.names.owner(room).as_ref(), who)
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

    /// The room `name` (loaded on first use; in cluster mode with the room's shared state and
    /// its stream reader started). `rooms` is the map's guard: a joining member is added before
    /// it is released, so an idle room is never dropped under a member.
    async fn room(
        &self,
        rooms: &mut HashMap<String, Arc<Mutex<RoomEntry>>>,
        name: &str,
    ) -> Result<Arc<Mutex<RoomEntry>>, sqlx::Error> {
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
        let mut entry = RoomEntry {
            room,
            phases: (0..self.phases()).map(|_| Phase::default()).collect(),
            presence_sent: (0, Instant::now()),
            presence: Presence::default(),
            reader: None,
        };
        let mut cursor = None;
        if let Some(bus) = &self.bus {
            // Redis known to be down: load nothing now; the reader catches up when it is back.
            if bus.is_healthy()
                && let Ok(snapshot) = bus.snapshot(name, self.settings.room.backfill).await
            {
                cursor = Some(snapshot.cursor);
                self.apply_snapshot(&mut entry, snapshot);
            }
            entry.reader = Some(tokio_util::sync::CancellationToken::new());
        }
        let reader = entry.reader.clone();
        let entry = Arc::new(Mutex::new(entry));
        if let (Some(bus), Some(stop)) = (&self.bus, reader) {
            bus.spawn_reader(
                name.to_string(),
                Arc::clone(&entry),
                cursor,
                self.settings.room.backfill,
                stop,
            );
        }
        rooms.insert(name.to_string(), Arc::clone(&entry));
        Ok(entry)
    }

    /// Applies a room's shared state from Redis: the stream's tail in order (messages not in
    /// the store, recent moderation), then the bans, slow mode and pin in force.
    fn apply_snapshot(&self, entry: &mut RoomEntry, snapshot: Snapshot) {
        for tail in snapshot.tail {
            self.apply_event(entry, tail.event);
        }
        entry.room.sort_history();
        for (user, ban) in snapshot.bans {
            self.apply_event(
                entry,
                RoomEvent::Banned {
                    user,
                    until_ms: ban.until_ms,
                },
            );
        }
        if let Some(seconds) = snapshot.slow_mode_s
            && Duration::from_secs(seconds) != entry.room.slow_mode()
        {
            self.apply_event(entry, RoomEvent::SlowMode { seconds });
        }
        if let Some(message) = snapshot.pinned
            && message.as_ref().map(|m| m.id) != entry.room.pinned().map(|m| m.id)
        {
            self.apply_event(entry, RoomEvent::Pinned { message });
        }
    }

    /// Applies one room event — decided here, or read from the room's stream in cluster mode —
    /// and fans it out to this node's members.
    fn apply_event(&self, entry: &mut RoomEntry, event: RoomEvent) {
        match event {
            RoomEvent::Message { message } => {
                let id = message.id;
                if let Some(message) = entry.room.apply_message(message) {
                    self.next_id
                        .fetch_max(id.saturating_add(1), Ordering::Relaxed);
                    self.broadcast(
                        entry,
                        &ServerMsg::Message {
                            message: (*message).clone(),
                            history: false,
                        },
                    );
                }
            }
            RoomEvent::Deleted { id, unpinned } => {
                let was_pinned = entry.room.apply_delete(id);
                self.broadcast(entry, &ServerMsg::Deleted { id });
                if was_pinned || unpinned {
                    self.broadcast(entry, &ServerMsg::Pinned { message: None });
                }
            }
            RoomEvent::Pinned { message } => {
                let message = entry.room.apply_pin(message);
                self.broadcast(
                    entry,
                    &ServerMsg::Pinned {
                        message: message.map(|m| (*m).clone()),
                    },
                );
            }
            RoomEvent::Banned { user, until_ms } => {
                for conn in entry.room.apply_ban(&user, Ban { until_ms }) {
                    let phase = Self::phase_of(conn, entry);
                    if let Some(member) = entry.phases[phase].members.remove(&conn) {
                        member.closer.close(CloseCode::Banned);
                        self.metrics.closed(CloseCode::Banned);
                    }
                    entry.room.leave(conn);
                }
            }
            RoomEvent::Unbanned { user } => entry.room.apply_unban(&user),
            RoomEvent::SlowMode { seconds } => {
                entry.room.apply_slow_mode(seconds);
                self.broadcast(entry, &ServerMsg::SlowMode { seconds });
            }
        }
    }

    /// Cluster mode: applies the rooms' stream entries in order as the readers deliver them, and
    /// every second drops the rooms without local members (their readers stop: the node reads a
    /// room's stream only while it has members there). Runs until `stop`.
    pub async fn run_bus(
        self: Arc<Self>,
        mut deliveries: mpsc::Receiver<Delivery>,
        stop: tokio_util::sync::CancellationToken,
    ) {
        tokio::spawn(Arc::clone(&self).run_presence(stop.clone()));
        let mut sweep = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                delivery = deliveries.recv() => match delivery {
                    Some(Delivery::Entry { room, entry }) => {
                        self.metrics.bus_applied.fetch_add(1, Ordering::Relaxed);
                        let mut guard = room.lock().unwrap_or_else(|e| e.into_inner());
                        self.apply_event(&mut guard, entry.event);
                    }
                    Some(Delivery::Snapshot { room, snapshot }) => {
                        let mut guard = room.lock().unwrap_or_else(|e| e.into_inner());
                        self.apply_snapshot(&mut guard, snapshot);
                    }
                    None => break,
                },
                _ = sweep.tick() => self.drop_idle_rooms().await,
                () = stop.cancelled() => break,
            }
        }
        for room in self.rooms.lock().await.values() {
            let entry = room.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(reader) = &entry.reader {
                reader.cancel();
            }
        }
    }

    /// Drops the rooms read from Redis that have no local member left, stopping their readers.
    async fn drop_idle_rooms(&self) {
        let mut rooms = self.rooms.lock().await;
        let mut dropped = Vec::new();
        rooms.retain(|name, room| {
            let entry = room.lock().unwrap_or_else(|e| e.into_inner());
            let Some(reader) = &entry.reader else {
                return true;
            };
            if entry.room.presence() > 0 {
                return true;
            }
            reader.cancel();
            tracing::debug!(room = %name, "chat: no local members left; room unloaded");
            dropped.push(name.clone());
            false
        });
        drop(rooms);
        if let Some(bus) = &self.bus {
            for name in dropped {
                bus.forget_presence(&name).await;
            }
        }
    }

    /// Cluster mode: every [`presence::REPORT_MS`], reports each room's local members to Redis
    /// and takes the room's count across nodes back (see [`presence`]); a changed count is
    /// announced by the ticker. Runs until `stop`.
    async fn run_presence(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let Some(bus) = self.bus.clone() else {
            return;
        };
        let mut every = tokio::time::interval(Duration::from_millis(presence::REPORT_MS));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = stop.cancelled() => break,
            }
            let rooms: Vec<(String, Arc<Mutex<RoomEntry>>, usize)> = self
                .rooms
                .lock()
                .await
                .iter()
                .filter_map(|(name, room)| {
                    let entry = room.lock().unwrap_or_else(|e| e.into_inner());
                    let local = entry.room.presence();
                    (entry.reader.is_some() && local > 0)
                        .then(|| (name.clone(), Arc::clone(room), local))
                })
                .collect();
            for (name, room, local) in rooms {
                let total = bus.presence(&name, local, now_ms()).await;
                let mut entry = room.lock().unwrap_or_else(|e| e.into_inner());
                let changed = match total {
                    Ok(total) => entry.presence.reported(local, total),
                    Err(_) => entry.presence.unknown(),
                };
                if changed {
                    self.wake.notify_one();
                }
            }
        }
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
        let who = &self.in_room(room, who);
        let mut rooms = self.rooms.lock().await;
        let entry = self.room(&mut rooms, room).await.map_err(|err| {
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
                    presence: state.presence_now(),
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
            let index = Self::phase_of(conn, state);
            let phase = &mut state.phases[index];
            phase.members.insert(
                conn,
                Member {
                    tx: tx.clone(),
                    closer,
                    skip: phase.pending.len(),
                },
            );
        }
        drop(rooms);
        // Presence changed.
        self.wake.notify_one();
        Ok((
            Joined {
                room: entry,
                conn,
                tx,
                who: who.clone(),
            },
            rx,
        ))
    }

    /// Leaves.
    pub fn leave(&self, joined: &Joined) {
        let mut entry = joined.room.lock().unwrap_or_else(|e| e.into_inner());
        entry.room.leave(joined.conn);
        let phase = Self::phase_of(joined.conn, &entry);
        entry.phases[phase].members.remove(&joined.conn);
        // Presence changed.
        self.wake.notify_one();
    }

    /// Number of phases a room's members are split into.
    fn phases(&self) -> usize {
        if self.settings.tick.is_zero() {
            1
        } else {
            self.settings.phases.max(1)
        }
    }

    fn phase_of(conn: u64, entry: &RoomEntry) -> usize {
        (conn % entry.phases.len() as u64) as usize
    }

    /// Queues `msg` to every member (now, or at its phase's next flush).
    fn broadcast(&self, entry: &mut RoomEntry, msg: &ServerMsg) {
        entry.queue(msg);
        if self.settings.tick.is_zero() {
            self.flush(entry, 0);
        }
        self.wake.notify_one();
    }

    /// Delivers phase `index`'s pending buffer to its members. Returns how many members got a
    /// batch and how many of those had not yet written out their previous one (backlog).
    fn flush(&self, entry: &mut RoomEntry, index: usize) -> (usize, usize) {
        let phase = &mut entry.phases[index];
        if phase.pending.is_empty() {
            return (0, 0);
        }
        let batch = phase.pending.split().freeze();
        let mut dropped = Vec::new();
        let mut delivered = 0u64;
        let mut backlogged = 0;
        for (conn, member) in &mut phase.members {
            if member.tx.capacity() < member.tx.max_capacity() {
                backlogged += 1;
            }
            let bytes = if member.skip > 0 {
                let rest = batch.slice(member.skip.min(batch.len())..);
                member.skip = 0;
                if rest.is_empty() {
                    continue;
                }
                rest
            } else {
                batch.clone()
            };
            match member.tx.try_send(bytes) {
                Ok(()) => delivered += 1,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    member.closer.close(CloseCode::SlowConsumer);
                    self.metrics.closed(CloseCode::SlowConsumer);
                    dropped.push(*conn);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => dropped.push(*conn),
            }
        }
        self.metrics
            .deliveries
            .fetch_add(delivered, Ordering::Relaxed);
        for conn in dropped {
            phase.members.remove(&conn);
            entry.room.leave(conn);
        }
        (delivered as usize, backlogged)
    }

    /// One step of the tick: at the start of a tick, presence updates (at most once per second
    /// per room); then `phases` of every room get their batches.
    pub async fn tick(&self, phases: Range<usize>) -> StepOutcome {
        let rooms: Vec<_> = self.rooms.lock().await.values().cloned().collect();
        let now = Instant::now();
        let mut waiting = false;
        let (mut flushed, mut backlogged) = (0, 0);
        for room in rooms {
            let mut entry = room.lock().unwrap_or_else(|e| e.into_inner());
            let presence = entry.presence_now();
            if phases.start == 0
                && presence != entry.presence_sent.0
                && now.duration_since(entry.presence_sent.1) >= PRESENCE_INTERVAL
            {
                entry.presence_sent = (presence, now);
                entry.queue(&ServerMsg::Presence { count: presence });
            }
            for index in phases.clone() {
                let (got, behind) = self.flush(&mut entry, index);
                flushed += got;
                backlogged += behind;
            }
            waiting |= entry.presence_now() != entry.presence_sent.0
                || entry.phases.iter().any(|phase| !phase.pending.is_empty());
        }
        StepOutcome {
            waiting,
            // More than a quarter of the members served still had their previous batch queued:
            // the connections are not keeping up with the tick.
            behind: backlogged * 4 > flushed,
        }
    }

    /// Runs the ticker until `stop`: steps on a [`PhaseClock`] while anything is waiting;
    /// asleep (no timer) while every room is idle, until an event or a join/leave wakes it.
    pub async fn run_ticker(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let tick = if self.settings.tick.is_zero() {
            Duration::from_millis(100)
        } else {
            self.settings.tick
        };
        let mut clock = PhaseClock::new(tick, self.phases(), Instant::now());
        let mut behind = false;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(clock.deadline().into()) => {
                    let phases = clock.on_step(Instant::now(), behind);
                    let outcome = self.tick(phases).await;
                    behind = outcome.behind;
                    if !outcome.waiting {
                        tokio::select! {
                            () = self.wake.notified() => clock.restart(Instant::now()),
                            () = stop.cancelled() => break,
                        }
                    }
                }
                () = stop.cancelled() => break,
            }
        }
    }

    /// Handles one request after `hello`; returns the reply for the requester, if any. The
    /// request acts as `who` narrowed to the room ([`Joined::who`]).
    pub async fn handle(&self, joined: &Joined, _who: &Identity, msg: ClientMsg) -> Option<Bytes> {
        let who = &joined.who;
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
            ClientMsg::Delete { id } => self.moderate(joined, |room| room.delete(who, id)).await,
            ClientMsg::Pin { id } => self.moderate(joined, |room| room.pin(who, Some(id))).await,
            ClientMsg::Unpin {} => self.moderate(joined, |room| room.pin(who, None)).await,
            ClientMsg::Timeout { user, seconds } => {
                let until = timeout_until(now_ms(), seconds);
                let user = user.to_ascii_lowercase();
                self.moderate(joined, |room| room.ban(who, &user, Some(until)))
                    .await
            }
            ClientMsg::Ban { user } => {
                let user = user.to_ascii_lowercase();
                self.moderate(joined, |room| room.ban(who, &user, None))
                    .await
            }
            ClientMsg::Unban { user } => {
                let user = user.to_ascii_lowercase();
                self.moderate(joined, |room| room.unban(who, &user)).await
            }
            ClientMsg::SlowMode { seconds } => {
                self.moderate(joined, |room| room.set_slow_mode(who, seconds))
                    .await
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
        // A host's card may carry just a catalog id: the catalog fills in the rest (anyone
        // else's card is refused by the room's rules, as it is).
        let product = match product {
            Some(card) if who.role() == proto::Role::Host => {
                Some(card.resolve(self.products.as_ref(), "product"))
            }
            other => other.map(Ok),
        };
        let product = match product {
            None => None,
            Some(Ok(card)) => Some(card),
            Some(Err(err)) => {
                let rejection = Rejection {
                    code: RejectCode::Invalid,
                    reason: err.to_string(),
                    retry_after: None,
                };
                return self.reject(&rejection, nonce);
            }
        };
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
        if let Some(bus) = &self.bus {
            // Cluster mode: the limits across nodes, the id and the room's order come from
            // Redis; every node (this one too) delivers the message when it reads it back.
            let (limits, slow_mode) = {
                let entry = joined.room.lock().unwrap_or_else(|e| e.into_inner());
                let slow_mode = entry.room.slow_mode();
                let limits = if draft.role == proto::Role::Viewer {
                    PostLimits::viewer(&self.settings.room, slow_mode)
                } else {
                    PostLimits::exempt()
                };
                (limits, slow_mode)
            };
            let mut message = draft.clone().into_message(
                0,
                room_name.clone(),
                now_ms(),
                session.clone(),
                media_time_ms,
            );
            let floor = self.next_id.load(Ordering::Relaxed);
            match bus.post(&room_name, limits, floor, &message).await {
                Ok(PostOutcome::Accepted(id)) => {
                    message.id = id;
                    self.next_id
                        .fetch_max(id.saturating_add(1), Ordering::Relaxed);
                    self.metrics.messages.fetch_add(1, Ordering::Relaxed);
                    self.persist(Op::Insert(Arc::new(message)));
                    return ServerMsg::Ack {
                        nonce,
                        id,
                        stripped,
                    };
                }
                Ok(refused) => {
                    if let Some(rejection) = refused.rejection(slow_mode) {
                        return self.reject(&rejection, nonce);
                    }
                }
                // Redis unreachable: this node's members get it (counted as local only).
                Err(_) => {
                    self.metrics.bus_local_only.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let message = {
            let mut entry = joined.room.lock().unwrap_or_else(|e| e.into_inner());
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let message = entry.room.commit(draft.into_message(
                id,
                room_name,
                now_ms(),
                session,
                media_time_ms,
            ));
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
                    .media_now_ns()
                    .map(|ns| i64::try_from(ns / 1_000_000).unwrap_or(i64::MAX)),
            ),
            _ => (None, None),
        }
    }

    /// Runs a moderation request on the room's rules (local state is authoritative for the
    /// check), persists its outcome, and delivers it: alone, to this node's members at once; in
    /// cluster mode through the room's stream (every node applies it in stream order, this one
    /// too), or to this node's members only when Redis cannot be reached.
    async fn moderate(
        &self,
        joined: &Joined,
        act: impl FnOnce(&mut Room) -> Result<Moderation, Rejection>,
    ) -> Option<ServerMsg> {
        let (room, event) = {
            let mut guard = joined.room.lock().unwrap_or_else(|e| e.into_inner());
            let entry = &mut *guard;
            let pinned_before = entry.room.pinned().map(|m| m.id);
            let outcome = match act(&mut entry.room) {
                Ok(outcome) => outcome,
                Err(rejection) => return Some(self.reject(&rejection, None)),
            };
            let room = entry.room.name.clone();
            let event = match outcome {
                Moderation::Deleted(id) => {
                    self.persist(Op::Delete {
                        room: room.clone(),
                        id,
                    });
                    RoomEvent::Deleted {
                        id,
                        unpinned: pinned_before == Some(id),
                    }
                }
                Moderation::Pinned(message) => {
                    self.persist(Op::Pin {
                        room: room.clone(),
                        id: message.as_ref().map(|m| m.id),
                    });
                    RoomEvent::Pinned {
                        message: message.map(|m| (*m).clone()),
                    }
                }
                Moderation::Banned { user, ban, .. } => {
                    self.persist(Op::Ban {
                        room: room.clone(),
                        user: user.clone(),
                        ban: Some(ban),
                    });
                    RoomEvent::Banned {
                        user,
                        until_ms: ban.until_ms,
                    }
                }
                Moderation::Unbanned(user) => {
                    self.persist(Op::Ban {
                        room: room.clone(),
                        user: user.clone(),
                        ban: None,
                    });
                    RoomEvent::Unbanned { user }
                }
                Moderation::SlowMode(seconds) => {
                    self.persist(Op::SlowMode {
                        room: room.clone(),
                        seconds,
                    });
                    RoomEvent::SlowMode { seconds }
                }
            };
            if self.bus.is_none() {
                self.apply_event(entry, event);
                return None;
            }
            (room, event)
        };
        if let Some(bus) = &self.bus
            && bus.publish(&room, &event).await.is_ok()
        {
            return None;
        }
        self.metrics.bus_local_only.fetch_add(1, Ordering::Relaxed);
        let mut entry = joined.room.lock().unwrap_or_else(|e| e.into_inner());
        self.apply_event(&mut entry, event);
        None
    }

    /// Closes every member (shutdown).
    pub async fn close_all(&self, code: CloseCode) {
        let rooms: Vec<_> = self.rooms.lock().await.values().cloned().collect();
        for room in rooms {
            let mut entry = room.lock().unwrap_or_else(|e| e.into_inner());
            for index in 0..entry.phases.len() {
                self.flush(&mut entry, index);
                for (_, member) in entry.phases[index].members.drain() {
                    member.closer.close(code);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn in_a_hosts_own_room_only_its_owner_keeps_the_host_capability() {
        let who = |user: &str, caps: &[Capability]| Identity {
            user: Some(user.into()),
            caps: caps.iter().copied().collect(),
        };
        let alice = who("alice", &[Capability::Send, Capability::Host]);
        let bob = who("bob", &[Capability::Send, Capability::Host]);
        let moderator = who("mo", &[Capability::Send, Capability::Moderate]);
        let owned = Owner::Host("alice".into());
        let alice_there = narrowed(Some(&owned), &alice);
        assert_eq!(alice_there.role(), proto::Role::Host);
        assert!(
            alice_there.can(Capability::Moderate),
            "the owner moderates her room"
        );
        assert!(!narrowed(None, &alice).can(Capability::Moderate));
        let bob_there = narrowed(Some(&owned), &bob);
        assert_eq!(bob_there.role(), proto::Role::Viewer);
        assert!(bob_there.can(Capability::Send));
        assert_eq!(narrowed(Some(&owned), &moderator), moderator);
        assert_eq!(narrowed(Some(&Owner::Configured), &bob), bob);
        assert_eq!(narrowed(None, &bob), bob);
        let anonymous = Identity::anonymous();
        assert_eq!(narrowed(Some(&owned), &anonymous), anonymous);
    }

    #[test]
    fn phases_are_flushed_one_per_step_across_the_tick() {
        let t0 = Instant::now();
        let mut clock = PhaseClock::new(50 * MS, 10, t0);
        for tick in 0..3u32 {
            for phase in 0..10 {
                let due = clock.deadline();
                assert_eq!(due, t0 + 5 * MS + tick * 50 * MS + phase * 5 * MS);
                // A millisecond of scheduling delay is on time.
                assert_eq!(
                    clock.on_step(due + MS, false),
                    phase as usize..phase as usize + 1
                );
            }
        }
    }

    #[test]
    fn a_late_step_flushes_the_rest_of_the_tick_and_the_next_tick_waits() {
        let t0 = Instant::now();
        let mut clock = PhaseClock::new(50 * MS, 10, t0);
        for phase in 0..3 {
            let due = clock.deadline();
            assert_eq!(clock.on_step(due, false), phase..phase + 1);
        }
        // Phase 3 was due at 20 ms; the ticker ran 12 ms late: phases 3..10 go now.
        assert_eq!(clock.deadline(), t0 + 20 * MS);
        assert_eq!(clock.on_step(t0 + 32 * MS, false), 3..10);
        // The next tick starts on schedule (55 ms), one phase at a time again.
        assert_eq!(clock.deadline(), t0 + 55 * MS);
        assert_eq!(clock.on_step(t0 + 55 * MS, false), 0..1);
        // Far behind (the step due at 60 ms runs at 200 ms): the rest at once, and the next
        // tick starts one step later, not immediately.
        assert_eq!(clock.on_step(t0 + 200 * MS, false), 1..10);
        assert_eq!(clock.deadline(), t0 + 205 * MS);
    }

    #[test]
    fn one_phase_flushes_everyone_each_tick_and_restart_resets() {
        let t0 = Instant::now();
        let mut clock = PhaseClock::new(50 * MS, 1, t0);
        assert_eq!(clock.deadline(), t0 + 50 * MS);
        assert_eq!(clock.on_step(t0 + 50 * MS, false), 0..1);
        assert_eq!(clock.deadline(), t0 + 100 * MS);
        let mut spread = PhaseClock::new(50 * MS, 10, t0);
        spread.on_step(spread.deadline(), false);
        spread.restart(t0 + 500 * MS);
        assert_eq!(spread.deadline(), t0 + 505 * MS);
        assert_eq!(spread.on_step(t0 + 505 * MS, false), 0..1);
        // A backlog reported by the previous step: the rest of the tick at once, on time.
        assert_eq!(spread.on_step(spread.deadline(), true), 1..10);
        assert_eq!(spread.deadline(), t0 + 555 * MS);
    }
}
