//! The show service: shows in memory (every read) and in SQLite (every change, written before
//! it is visible), their state moved by the HLS registry's session events through the pure
//! [`super::state::ShowState::apply`], and the registry's question whether a clean unpublish holds a session.
//!
//! The registry calls [`SessionLifecycle`] on the ingest threads: the calls only read the
//! in-memory shows or queue the event; one task applies events, in order, with the store
//! writes they need, and once a second looks for a scheduled show whose window opened while its
//! stream was already live.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::AnyPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Config;
use super::model::{Show, ShowRequest};
use super::state::{Event, State, TransitionError, Window};
use super::store::{self, StoreError};
use crate::commerce::product::{FieldError, ProductLookup};
use crate::hls::directory::{Owner, StreamDirectory};
use crate::hls::lifecycle::{SessionEvent, SessionLifecycle};
use crate::hls::recording::ShowOf;
use crate::hls::registry::Registry;
use crate::webhooks::{EventKind, Webhooks};

/// How often the service looks for windows that opened on an already live stream.
const TICK: Duration = Duration::from_secs(1);

/// Why a show operation failed; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ShowError {
    /// 400: a field is invalid.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// 404.
    #[error("no show `{0}`")]
    NotFound(String),
    /// 403: not the caller's show, or not the caller's to change.
    #[error("{0}")]
    Forbidden(String),
    /// 409: the change does not apply in the show's state.
    #[error("{0}")]
    Conflict(String),
    /// 500.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TransitionError> for ShowError {
    fn from(err: TransitionError) -> ShowError {
        ShowError::Conflict(err.to_string())
    }
}

/// Who asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The admin token: any show.
    Admin,
    /// A user with the `host` capability: their own shows.
    Host(String),
}

/// What the event task is told.
#[derive(Debug)]
enum Message {
    /// From the registry.
    Session {
        stream: String,
        session: String,
        event: SessionEvent,
    },
    /// The reconnect grace after startup passed for show `id`, live when the server stopped.
    RestartGraceOver { id: String },
}

/// Shows, their schedule and their state.
pub struct Shows {
    pool: AnyPool,
    settings: Config,
    window: Window,
    registry: Arc<Registry>,
    /// The streams (configured and hosts'), with their owners.
    streams: Arc<StreamDirectory>,
    /// The catalog the featured products must be in.
    products: Arc<dyn ProductLookup>,
    /// Every show by id: the reads, and the registry's questions.
    shows: Mutex<BTreeMap<String, Show>>,
    /// Serializes read-modify-write of shows (API changes and stream events).
    writing: tokio::sync::Mutex<()>,
    stop: CancellationToken,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Where state changes are announced (`show.state_changed`), once set.
    webhooks: OnceLock<Arc<Webhooks>>,
}

impl Shows {
    /// Loads the shows, becomes the registry's session lifecycle and starts the event task. A
    /// show live when the server stopped waits `reconnect_grace` for its stream, then ends.
    pub async fn start(
        pool: AnyPool,
        settings: Config,
        registry: Arc<Registry>,
        streams: Arc<StreamDirectory>,
        products: Arc<dyn ProductLookup>,
        reconnect_grace: Duration,
    ) -> Result<Arc<Shows>, StoreError> {
        let mut shows = BTreeMap::new();
        let mut waiting = Vec::new();
        // On a shared store a live show may be live on another node: it is left to that node.
        let shared = crate::store::is_shared(&pool);
        for mut show in store::load_all(&pool).await? {
            if show.status.state == State::Live && !shared {
                // Its session died with the previous process.
                show.status.session = None;
                waiting.push(show.id.clone());
            }
            shows.insert(show.id.clone(), show);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let service = Arc::new(Shows {
            pool,
            window: settings.window(),
            settings,
            registry: Arc::clone(&registry),
            streams,
            products,
            shows: Mutex::new(shows),
            writing: tokio::sync::Mutex::new(()),
            stop: CancellationToken::new(),
            task: Mutex::new(None),
            webhooks: OnceLock::new(),
        });
        for id in waiting {
            tracing::info!(show = %id, grace_s = reconnect_grace.as_secs_f64(), "show was live at shutdown; waiting for its stream");
            let tx = tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(reconnect_grace).await;
                let _ = tx.send(Message::RestartGraceOver { id });
            });
        }
        // Weak: the registry must not keep the service alive.
        registry.set_lifecycle(Arc::new(Lifecycle {
            shows: Arc::downgrade(&service),
            tx,
        }));
        let task = tokio::spawn(Arc::clone(&service).run(rx));
        *service.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        Ok(service)
    }

    /// Announces every state change to `webhooks` from now on (once).
    pub fn set_webhooks(&self, webhooks: Arc<Webhooks>) {
        let _ = self.webhooks.set(webhooks);
    }

    /// Stops following the streams (shutdown, before the streams end: a show live at shutdown
    /// stays live in the store, and the next start gives it the reconnect grace).
    pub async fn close(&self) {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Config {
        &self.settings
    }

    fn shows(&self) -> MutexGuard<'_, BTreeMap<String, Show>> {
        self.shows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Show `id`.
    pub fn get(&self, id: &str) -> Option<Show> {
        self.shows().get(id).cloned()
    }

    /// The shows (in `state` if given), by scheduled start.
    pub fn list(&self, state: Option<State>) -> Vec<Show> {
        let mut list: Vec<Show> = self
            .shows()
            .values()
            .filter(|show| state.is_none_or(|s| show.status.state == s))
            .cloned()
            .collect();
        list.sort_by(|a, b| {
            (a.status.scheduled_start, &a.id).cmp(&(b.status.scheduled_start, &b.id))
        });
        list
    }

    /// Whether a clean unpublish of `stream` holds its session: a show is live on it, or the
    /// config holds every stream's.
    fn holds(&self, stream: &str) -> bool {
        self.settings.hold_unpublish_without_show
            || self
                .shows()
                .values()
                .any(|show| show.stream == stream && show.status.state == State::Live)
    }

    /// On a shared database: applies other nodes' show changes, announced on `changes` (the
    /// store's notifications), to this node's shows; `*` (notifications lost) reloads them
    /// all. Its own writes come back too and change nothing. Ends when the store closes.
    pub fn follow(
        self: &Arc<Self>,
        mut changes: tokio::sync::broadcast::Receiver<crate::store::Change>,
    ) -> tokio::task::JoinHandle<()> {
        use tokio::sync::broadcast::error::RecvError;
        let shows = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let result = match changes.recv().await {
                    Ok(change) if change.table == "shows" => shows.refresh(Some(&change.key)).await,
                    Ok(change) if change.table == "*" => shows.refresh(None).await,
                    Ok(_) => Ok(()),
                    Err(RecvError::Lagged(_)) => shows.refresh(None).await,
                    Err(RecvError::Closed) => return,
                };
                if let Err(err) = result {
                    tracing::warn!(error = %err, "shows: cannot apply other nodes' changes");
                }
            }
        })
    }

    /// Re-reads show `id` (or every show) from the store into memory.
    async fn refresh(&self, id: Option<&str>) -> Result<(), StoreError> {
        let _writing = self.writing.lock().await;
        match id {
            Some(id) => {
                let stored = store::load_one(&self.pool, id).await?;
                let mut shows = self.shows();
                match stored {
                    Some(show) => {
                        if shows.get(id) != Some(&show) {
                            tracing::debug!(show = %id, "show changed on another node");
                            shows.insert(show.id.clone(), show);
                        }
                    }
                    None => {
                        shows.remove(id);
                    }
                }
            }
            None => {
                let stored = store::load_all(&self.pool).await?;
                let mut shows = self.shows();
                *shows = stored.into_iter().map(|s| (s.id.clone(), s)).collect();
            }
        }
        Ok(())
    }

    /// Writes `show`, then makes it visible.
    async fn commit(&self, show: Show) -> Result<Show, StoreError> {
        store::save(&self.pool, &show).await?;
        self.shows().insert(show.id.clone(), show.clone());
        Ok(show)
    }

    /// Creates a scheduled show: a host's own, or (admin) one for the host the request names.
    pub async fn create(&self, actor: &Actor, request: ShowRequest) -> Result<Show, ShowError> {
        let edit = request.validate(&self.streams.names())?;
        self.check_products(edit.products.as_deref())?;
        self.check_stream(actor, edit.stream.as_deref())?;
        let host = match (actor, &edit.host) {
            (Actor::Admin, Some(host)) => host.clone(),
            (Actor::Admin, None) => {
                return Err(FieldError {
                    field: "host".into(),
                    reason: "required when the admin token creates a show".into(),
                }
                .into());
            }
            (Actor::Host(user), Some(host)) if host != user => {
                return Err(ShowError::Forbidden(
                    "a host creates their own shows; the admin creates shows for others".into(),
                ));
            }
            (Actor::Host(user), _) => user.clone(),
        };
        let show = edit.create(store::new_id(), host)?;
        let _writing = self.writing.lock().await;
        let show = self.commit(show).await?;
        tracing::info!(show = %show.id, host = %show.host, stream = %show.stream, "show scheduled");
        Ok(show)
    }

    /// Featured products must be catalog products (when there is a catalog): the first that is
    /// not is named (`products[2]: no catalog product "sku-9"`).
    fn check_products(&self, products: Option<&[String]>) -> Result<(), FieldError> {
        let unknown = products
            .unwrap_or_default()
            .iter()
            .enumerate()
            .find(|(_, id)| !self.products.admits(id));
        match unknown {
            Some((i, id)) => Err(FieldError {
                field: format!("products[{i}]"),
                reason: format!("no catalog product {id:?}"),
            }),
            None => Ok(()),
        }
    }

    /// A host puts shows only on configured streams and their own (a host key's stream belongs
    /// to its host); the admin on any.
    fn check_stream(&self, actor: &Actor, stream: Option<&str>) -> Result<(), ShowError> {
        let (Actor::Host(user), Some(stream)) = (actor, stream) else {
            return Ok(());
        };
        match self.streams.owner(stream) {
            Some(Owner::Host(owner)) if owner != *user => Err(ShowError::Forbidden(format!(
                "stream `{stream}` belongs to another host"
            ))),
            _ => Ok(()),
        }
    }

    /// Whether `user` hosts a show on `stream` that has not ended.
    pub fn hosts_on(&self, user: &str, stream: &str) -> bool {
        self.shows()
            .values()
            .any(|s| s.stream == stream && s.host == user && s.status.state != State::Ended)
    }

    /// Show `id` if `actor` may change it.
    fn owned(&self, actor: &Actor, id: &str) -> Result<Show, ShowError> {
        let show = self
            .get(id)
            .ok_or_else(|| ShowError::NotFound(id.to_string()))?;
        match actor {
            Actor::Host(user) if *user != show.host => Err(ShowError::Forbidden(format!(
                "show `{id}` belongs to another host"
            ))),
            _ => Ok(show),
        }
    }

    /// The live show on `stream` other than `except`, if any.
    fn live_on(&self, stream: &str, except: &str) -> Option<String> {
        self.shows()
            .values()
            .find(|s| s.stream == stream && s.id != except && s.status.state == State::Live)
            .map(|s| s.id.clone())
    }

    /// Changes the fields given and applies a state override (`live`: on air now, on its
    /// stream's session if it has one; `ended`: over, and its HLS session ends at once).
    pub async fn update(
        &self,
        actor: &Actor,
        id: &str,
        request: ShowRequest,
    ) -> Result<Show, ShowError> {
        let edit = request.validate(&self.streams.names())?;
        self.check_products(edit.products.as_deref())?;
        self.check_stream(actor, edit.stream.as_deref())?;
        let _writing = self.writing.lock().await;
        let before = self.owned(actor, id)?;
        if edit.host.as_ref().is_some_and(|h| *h != before.host) && *actor != Actor::Admin {
            return Err(ShowError::Forbidden(
                "only the admin hands a show to another host".into(),
            ));
        }
        let mut show = before.clone();
        edit.apply(&mut show);
        if show.stream != before.stream && before.status.state == State::Live {
            return Err(ShowError::Conflict(
                "the stream of a live show cannot change".into(),
            ));
        }
        let now = Utc::now();
        if let Some(state) = edit.state {
            if state == State::Live
                && let Some(other) = self.live_on(&show.stream, id)
            {
                return Err(ShowError::Conflict(format!(
                    "show `{other}` is live on stream `{}`",
                    show.stream
                )));
            }
            if let Some(next) = show.status.apply(Event::Set(state), now, &self.window)? {
                show.status = next;
            }
            // Live by hand while its stream is on: the show is on that session.
            if let Some(session) = self.registry.live_session(&show.stream)
                && let Some(next) =
                    show.status
                        .apply(Event::StreamOn { session: &session }, now, &self.window)?
            {
                show.status = next;
            }
        }
        let show = self.commit(show).await?;
        if before.status.state == State::Live && show.status.state == State::Ended {
            self.end_session(&before);
        }
        Ok(show)
    }

    /// Ends the HLS session `show` was live on, if it is still its stream's session.
    fn end_session(&self, show: &Show) {
        let current = self.registry.live_session(&show.stream);
        if current.is_some() && current == show.status.session {
            self.registry.end_session(&show.stream);
            tracing::info!(show = %show.id, stream = %show.stream, "show ended; its session ended");
        }
    }

    /// Deletes a show that is not live.
    pub async fn delete(&self, actor: &Actor, id: &str) -> Result<(), ShowError> {
        let _writing = self.writing.lock().await;
        let show = self.owned(actor, id)?;
        if show.status.state == State::Live {
            return Err(ShowError::Conflict(format!(
                "show `{id}` is live; end it first (PATCH {{\"state\": \"ended\"}})"
            )));
        }
        store::delete(&self.pool, id).await?;
        self.shows().remove(id);
        Ok(())
    }

    /// Applies `event` to show `id` at `now` and stores the result; the new show if it
    /// changed.
    async fn apply(
        &self,
        id: &str,
        event: Event<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<Show>, ShowError> {
        let Some(mut show) = self.get(id) else {
            return Ok(None);
        };
        let Some(next) = show.status.apply(event, now, &self.window)? else {
            return Ok(None);
        };
        let from = show.status.state;
        show.status = next;
        let show = self.commit(show).await?;
        if from != show.status.state {
            tracing::info!(show = %show.id, stream = %show.stream, state = show.status.state.as_str(), "show state changed");
            if let Some(webhooks) = self.webhooks.get() {
                webhooks.emit(
                    EventKind::ShowStateChanged,
                    serde_json::json!({
                        "show": show.id,
                        "stream": show.stream,
                        "from": from.as_str(),
                        "to": show.status.state.as_str(),
                        "session": show.status.session,
                    }),
                );
            }
        }
        Ok(Some(show))
    }

    /// Stream `stream` has session `session`: a live show waiting for its stream is on it;
    /// else, with no live show on the stream, the scheduled show whose window holds `now`
    /// (the closest start) goes live.
    async fn stream_on(
        &self,
        stream: &str,
        session: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ShowError> {
        let (live, candidate) = {
            let shows = self.shows();
            let on_stream = || shows.values().filter(|s| s.stream == stream);
            let live = on_stream()
                .find(|s| s.status.state == State::Live)
                .map(|s| (s.id.clone(), s.status.session.is_none()));
            let candidate = on_stream()
                .filter(|s| {
                    s.status.state == State::Scheduled
                        && self.window.contains(s.status.scheduled_start, now)
                })
                .min_by_key(|s| (s.status.scheduled_start - now).abs())
                .map(|s| s.id.clone());
            (live, candidate)
        };
        let target = match live {
            Some((id, true)) => Some(id),
            Some((_, false)) => None,
            None => candidate,
        };
        if let Some(id) = target {
            self.apply(&id, Event::StreamOn { session }, now).await?;
        }
        Ok(())
    }

    async fn handle(&self, message: Message) -> Result<(), ShowError> {
        let _writing = self.writing.lock().await;
        let now = Utc::now();
        match message {
            Message::Session {
                stream,
                session,
                event: SessionEvent::Started,
            } => self.stream_on(&stream, &session, now).await,
            Message::Session {
                stream,
                session,
                event: SessionEvent::Ended,
            } => {
                let ids: Vec<String> = self
                    .shows()
                    .values()
                    .filter(|s| s.stream == stream && s.status.session.as_deref() == Some(&session))
                    .map(|s| s.id.clone())
                    .collect();
                for id in ids {
                    self.apply(&id, Event::SessionEnded { session: &session }, now)
                        .await?;
                }
                Ok(())
            }
            Message::RestartGraceOver { id } => self
                .apply(&id, Event::RestartGraceOver, now)
                .await
                .map(drop),
        }
    }

    /// Streams with a live session and a show that may go on it (scheduled, or live and
    /// waiting): the window of a scheduled show may open while its stream is already live.
    async fn tick(&self) -> Result<(), ShowError> {
        let streams: std::collections::BTreeSet<String> = self
            .shows()
            .values()
            .filter(|s| {
                s.status.state == State::Scheduled
                    || (s.status.state == State::Live && s.status.session.is_none())
            })
            .map(|s| s.stream.clone())
            .collect();
        for stream in streams {
            if let Some(session) = self.registry.live_session(&stream) {
                let _writing = self.writing.lock().await;
                self.stream_on(&stream, &session, Utc::now()).await?;
            }
        }
        Ok(())
    }

    async fn run(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Message>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let result = tokio::select! {
                biased;
                () = self.stop.cancelled() => break,
                message = rx.recv() => match message {
                    Some(message) => self.handle(message).await,
                    None => break,
                },
                _ = tick.tick() => self.tick().await,
            };
            if let Err(err) = result {
                tracing::error!(error = %err, "show state not updated");
            }
        }
    }
}

/// The recordings ask which show a session they record belongs to.
impl ShowOf for Shows {
    fn live_show(&self, stream: &str, session: &str) -> Option<String> {
        self.shows()
            .values()
            .find(|show| show.stream == stream && show.status.session.as_deref() == Some(session))
            .map(|show| show.id.clone())
    }
}

/// The registry's view of the shows.
struct Lifecycle {
    shows: Weak<Shows>,
    tx: mpsc::UnboundedSender<Message>,
}

impl SessionLifecycle for Lifecycle {
    fn hold_on_unpublish(&self, name: &str) -> bool {
        self.shows.upgrade().is_some_and(|shows| shows.holds(name))
    }

    fn on_session(&self, name: &str, session: &str, event: SessionEvent) {
        let _ = self.tx.send(Message::Session {
            stream: name.to_string(),
            session: session.to_string(),
            event,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hls::packager::PackagerConfig;
    use crate::store::Store;

    fn registry() -> Arc<Registry> {
        Arc::new(Registry::new(
            PackagerConfig {
                segment_target: Duration::from_secs(2),
                part_target: Duration::from_millis(500),
                window: Duration::from_secs(6),
            },
            Duration::from_secs(60),
        ))
    }

    async fn start(store: &Store, registry: &Arc<Registry>, grace: Duration) -> Arc<Shows> {
        Shows::start(
            store.pool().clone(),
            super::super::config::example(),
            Arc::clone(registry),
            Arc::new(StreamDirectory::new(["demo".into(), "second".into()])),
            Arc::new(crate::commerce::product::NoCatalog),
            grace,
        )
        .await
        .expect("started")
    }

    fn request(json: serde_json::Value) -> ShowRequest {
        serde_json::from_value(json).expect("request")
    }

    fn new_show(start_in_minutes: i64) -> ShowRequest {
        show_at(Utc::now() + chrono::Duration::minutes(start_in_minutes))
    }

    fn show_at(start: DateTime<Utc>) -> ShowRequest {
        request(serde_json::json!({
            "title": "Spring", "stream": "demo", "scheduled_start": start.to_rfc3339(),
        }))
    }

    async fn wait_state(shows: &Shows, id: &str, state: State) -> Show {
        for _ in 0..600 {
            if let Some(show) = shows.get(id).filter(|s| s.status.state == state) {
                return show;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("show {id} never became {state:?}: {:?}", shows.get(id));
    }

    #[tokio::test]
    async fn sessions_drive_the_show_and_a_live_show_holds_its_stream() {
        let store = Store::in_memory().await.expect("store");
        let registry = registry();
        let shows = start(&store, &registry, Duration::from_secs(5)).await;
        let alice = Actor::Host("alice".into());
        let later = shows.create(&alice, new_show(120)).await.expect("created");
        let show = shows.create(&alice, new_show(5)).await.expect("created");
        assert!(!registry.holds_on_unpublish("demo"), "nothing live yet");
        // The stream goes live: the show in the window does, the one in two hours does not.
        let (stream, _) = registry.publish("demo", Duration::from_secs(5), false);
        let live = wait_state(&shows, &show.id, State::Live).await;
        assert_eq!(
            live.status.session.as_deref(),
            Some(stream.session.as_str())
        );
        assert_eq!(
            shows.get(&later.id).expect("kept").status.state,
            State::Scheduled
        );
        assert!(registry.holds_on_unpublish("demo"));
        assert!(!registry.holds_on_unpublish("second"));
        // The session ends (grace over): so does the show, and it no longer holds the stream.
        stream.end();
        let ended = wait_state(&shows, &show.id, State::Ended).await;
        assert!(ended.status.ended_at >= ended.status.started_at);
        assert!(!registry.holds_on_unpublish("demo"));
        shows.close().await;
    }

    #[tokio::test]
    async fn a_window_opening_on_a_live_stream_takes_the_show_live() {
        let store = Store::in_memory().await.expect("store");
        let registry = registry();
        let shows = start(&store, &registry, Duration::from_secs(5)).await;
        // The window (30 min before the start) opens two seconds from now; the host is already
        // rehearsing on the stream.
        let opens = Utc::now() + chrono::Duration::milliseconds(2000);
        let start_at = opens + chrono::Duration::minutes(30);
        let host = Actor::Host("alice".into());
        let show = shows
            .create(&host, show_at(start_at))
            .await
            .expect("created");
        let (stream, _) = registry.publish("demo", Duration::from_secs(5), false);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            shows.get(&show.id).expect("show").status.state,
            State::Scheduled,
            "a rehearsal before the window"
        );
        let live = wait_state(&shows, &show.id, State::Live).await;
        assert!(live.status.started_at.is_some_and(|at| at >= opens));
        assert_eq!(
            live.status.session.as_deref(),
            Some(stream.session.as_str())
        );
        shows.close().await;
    }

    #[tokio::test]
    async fn overrides_ownership_and_ending_ends_the_session() {
        let store = Store::in_memory().await.expect("store");
        let registry = registry();
        let shows = start(&store, &registry, Duration::from_secs(5)).await;
        let alice = Actor::Host("alice".into());
        let bob = Actor::Host("bob".into());
        // Far outside its window: the stream alone does not take it live.
        let show = shows
            .create(&alice, new_show(24 * 60))
            .await
            .expect("created");
        let (stream, _) = registry.publish("demo", Duration::from_secs(5), false);
        let set = |state: &str| request(serde_json::json!({ "state": state }));
        assert!(matches!(
            shows.update(&bob, &show.id, set("live")).await,
            Err(ShowError::Forbidden(_))
        ));
        assert!(matches!(
            shows.delete(&bob, &show.id).await,
            Err(ShowError::Forbidden(_))
        ));
        let live = shows
            .update(&alice, &show.id, set("live"))
            .await
            .expect("live");
        assert_eq!(live.status.state, State::Live);
        assert_eq!(
            live.status.session.as_deref(),
            Some(stream.session.as_str())
        );
        // One live show per stream.
        let other = shows.create(&bob, new_show(0)).await.expect("created");
        assert!(matches!(
            shows.update(&Actor::Admin, &other.id, set("live")).await,
            Err(ShowError::Conflict(_))
        ));
        assert!(matches!(
            shows.delete(&alice, &show.id).await,
            Err(ShowError::Conflict(_))
        ));
        // Ending it ends its HLS session at once.
        let ended = shows
            .update(&Actor::Admin, &show.id, set("ended"))
            .await
            .expect("ended");
        assert_eq!(ended.status.state, State::Ended);
        assert!(stream.is_ended());
        assert!(matches!(
            shows.update(&alice, &show.id, set("live")).await,
            Err(ShowError::Conflict(_))
        ));
        shows.delete(&alice, &show.id).await.expect("deleted");
        assert!(shows.get(&show.id).is_none());
        assert!(matches!(
            shows.delete(&alice, &show.id).await,
            Err(ShowError::NotFound(_))
        ));
        // The admin names the host; a host cannot create for another.
        let err = shows
            .create(&Actor::Admin, new_show(0))
            .await
            .expect_err("no host");
        assert!(matches!(err, ShowError::Invalid(FieldError { ref field, .. }) if field == "host"));
        let mut for_bob = new_show(0);
        for_bob.host = Some("Bob".into());
        assert!(matches!(
            shows.create(&alice, for_bob).await,
            Err(ShowError::Forbidden(_))
        ));
        shows.close().await;
    }

    #[tokio::test]
    async fn after_a_restart_a_live_show_waits_the_grace_then_ends_or_continues() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(dir.path()).await.expect("store");
        let registry = registry();
        let shows = start(&store, &registry, Duration::from_secs(5)).await;
        let alice = Actor::Host("alice".into());
        let stays = shows.create(&alice, new_show(0)).await.expect("created");
        let mut second = new_show(0);
        second.stream = Some("second".into());
        let ends = shows.create(&alice, second).await.expect("created");
        let (_demo, _) = registry.publish("demo", Duration::from_secs(5), false);
        let (_second, _) = registry.publish("second", Duration::from_secs(5), false);
        wait_state(&shows, &stays.id, State::Live).await;
        wait_state(&shows, &ends.id, State::Live).await;
        // The server stops: the shows stay live in the store.
        shows.close().await;
        registry.end_all();
        store.close().await;

        let store = Store::open(dir.path()).await.expect("reopened");
        let registry = self::registry();
        let shows = start(&store, &registry, Duration::from_millis(300)).await;
        assert_eq!(
            shows.list(Some(State::Live)).len(),
            2,
            "both live after the restart"
        );
        // Only `demo` comes back within the grace.
        let (demo, _) = registry.publish("demo", Duration::from_secs(5), false);
        let ended = wait_state(&shows, &ends.id, State::Ended).await;
        assert!(ended.status.ended_at.is_some());
        let kept = shows.get(&stays.id).expect("kept");
        assert_eq!(kept.status.state, State::Live);
        assert_eq!(kept.status.session.as_deref(), Some(demo.session.as_str()));
        shows.close().await;
    }
}
