//! Shopper events and per-moment attribution (docs/events.md).
//!
//! A page (or the shop's backend) posts batches of events — views, impressions, clicks, CTA
//! clicks, add-to-carts, purchases — that may name the product cue on screen. A batch is
//! validated whole ([`model`], pure), its shows and products checked against what the server
//! knows ([`Known`]), then handed to one writer task that commits whatever batches are waiting
//! in one transaction (group commit, [`store`]) and answers each batch once it is durable. Every
//! committed batch is offered to the [`EventSink`] (the catalog's popularity ranking). The
//! analytics of a show are a pure fold ([`analytics`]) over the store's grouped rows.
//!
//! Visitor linking: an event that carries both a `user` (from a shopper's login token, or named
//! by the shop's backend) and a `visitor` links that visitor's earlier anonymous events to the
//! user, in the same transaction.
//!
//! Watching now: every committed `view_show` also feeds a [`viewers::ViewerCounter`] (distinct
//! viewers per show in the last minute); [`Events::viewer_timeline`] counts them per minute
//! from the store.

pub mod analytics;
mod config;
pub mod model;
pub mod store;
pub mod viewers;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use analytics::Analytics;
pub use config::Config;
pub use model::{BatchError, Event, EventType, Sender};

/// Batches waiting for the writer before senders wait for room.
const QUEUE_BATCHES: usize = 1024;
/// Most events the writer commits in one transaction.
const MAX_EVENTS_PER_COMMIT: usize = 10_000;

/// What [`model::parse_batch`] checks a batch against.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Most events in one batch.
    pub max_batch_events: usize,
    /// How far in the past a `ts` may lie, ms.
    pub max_clock_skew_ms: i64,
    /// The currency of prices and revenue.
    pub currency: String,
}

/// `[events]` as the service uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Batch checks.
    pub limits: Limits,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Events per second per client address.
    pub rate_per_client_per_s: f64,
    /// Events a client may send at once.
    pub rate_burst_events: f64,
}

/// Which shows and products exist: an event naming anything else is refused (404). The merge of
/// issue 25 implements it over the shows and the catalog.
pub trait Known: Send + Sync {
    /// Whether show `id` exists.
    fn show_exists<'a>(&'a self, id: &'a str) -> BoxFuture<'a, bool>;
    /// Whether product `id` exists.
    fn product_exists<'a>(&'a self, id: &'a str) -> BoxFuture<'a, bool>;
}

/// Knows every show and product: for a server without shows or a catalog.
#[derive(Debug, Clone, Copy, Default)]
pub struct KnowsEverything;

impl Known for KnowsEverything {
    fn show_exists<'a>(&'a self, _id: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(std::future::ready(true))
    }

    fn product_exists<'a>(&'a self, _id: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(std::future::ready(true))
    }
}

/// Told of every committed batch, on the writer task, in commit order (for example the catalog's
/// recent-popularity counts). Must be quick: it delays the next commit.
pub trait EventSink: Send + Sync {
    /// `events` were recorded.
    fn accepted(&self, events: &[Event]);
}

/// A sink that does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSink;

impl EventSink for NoSink {
    fn accepted(&self, _events: &[Event]) {}
}

/// Tells every sink it holds, in order (the catalog's popularity, the recommendations).
pub struct Sinks(pub Vec<Arc<dyn EventSink>>);

impl EventSink for Sinks {
    fn accepted(&self, events: &[Event]) {
        for sink in &self.0 {
            sink.accepted(events);
        }
    }
}

/// Feeds committed `view_show` events to the counter of viewers watching now.
struct ViewerFeed(Arc<Mutex<viewers::ViewerCounter>>);

impl EventSink for ViewerFeed {
    fn accepted(&self, events: &[Event]) {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut counter = self.0.lock().unwrap_or_else(|e| e.into_inner());
        counter.record(events, now_ms);
    }
}

/// Why events could not be recorded or read.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// The batch was refused as a whole.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// An event named a show or product that does not exist (404).
    #[error("{field}: no {what} {id:?}")]
    Unknown {
        /// The field (`events[2].product`, or `show` for analytics).
        field: String,
        /// `show` or `product`.
        what: &'static str,
        /// The id.
        id: String,
    },
    /// The store failed; nothing of the batch was recorded.
    #[error("{0}")]
    Store(String),
    /// The writer has stopped (shutting down).
    #[error("event recording has stopped")]
    Closed,
}

/// Batches waiting for one commit.
struct Job {
    events: Vec<Event>,
    done: oneshot::Sender<Result<(), String>>,
}

/// The event service: validation, the writer task, analytics.
pub struct Events {
    settings: Settings,
    pool: AnyPool,
    known: Arc<dyn Known>,
    queue: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    viewers: Arc<Mutex<viewers::ViewerCounter>>,
    /// The viewers counter and the given sink, told of recorded events.
    sink: Arc<dyn EventSink>,
}

impl Events {
    /// Starts the writer task on `pool` (the store's).
    pub fn start(
        pool: AnyPool,
        settings: Settings,
        known: Arc<dyn Known>,
        sink: Arc<dyn EventSink>,
    ) -> Events {
        let (queue, jobs) = mpsc::channel(QUEUE_BATCHES);
        let viewers = Arc::new(Mutex::new(viewers::ViewerCounter::default()));
        let feed = Arc::new(ViewerFeed(Arc::clone(&viewers)));
        let sink: Arc<dyn EventSink> = Arc::new(Sinks(vec![feed, sink]));
        tokio::spawn(seed_viewers(pool.clone(), Arc::clone(&viewers)));
        // On a shared database every node's events (this one's too) reach the sink through
        // the tail ([`Events::follow`]), once each and in one order on every node.
        let direct = (!crate::store::is_shared(&pool)).then(|| Arc::clone(&sink));
        let writer = tokio::spawn(write_loop(pool.clone(), jobs, direct));
        Events {
            settings,
            pool,
            known,
            queue: Mutex::new(Some(queue)),
            writer: Mutex::new(Some(writer)),
            viewers,
            sink,
        }
    }

    /// On a shared database: starts telling the sink of every node's events as they are
    /// committed, woken by `changes` (the store's notifications) and at least every
    /// [`TAIL_INTERVAL`]. Starts after the events already stored (the sink's owners load those
    /// at startup). Ends when the store closes.
    pub async fn follow(
        &self,
        changes: tokio::sync::broadcast::Receiver<crate::store::Change>,
    ) -> Result<JoinHandle<()>, store::StoreError> {
        let after = store::last_seq(&self.pool).await?;
        Ok(tokio::spawn(tail(
            self.pool.clone(),
            after,
            changes,
            Arc::clone(&self.sink),
        )))
    }

    /// The settings it was started with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Parses and validates a batch sent by `sender` now (nothing is recorded yet).
    pub fn parse(&self, body: &[u8], sender: &Sender) -> Result<Vec<Event>, BatchError> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        model::parse_batch(body, sender, now_ms, &self.settings.limits)
    }

    /// Checks the shows and products of `events` exist, then records them; returns once they
    /// are committed. All or nothing.
    pub async fn record(&self, events: Vec<Event>) -> Result<usize, EventsError> {
        self.check_known(&events).await?;
        let count = events.len();
        let queue = self
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(EventsError::Closed)?;
        let (done, committed) = oneshot::channel();
        queue
            .send(Job { events, done })
            .await
            .map_err(|_| EventsError::Closed)?;
        match committed.await {
            Ok(Ok(())) => Ok(count),
            Ok(Err(message)) => Err(EventsError::Store(message)),
            Err(_) => Err(EventsError::Closed),
        }
    }

    /// The first show or product of `events` that does not exist, named by its field.
    async fn check_known(&self, events: &[Event]) -> Result<(), EventsError> {
        let mut shows: BTreeMap<&str, usize> = BTreeMap::new();
        let mut products: BTreeMap<&str, usize> = BTreeMap::new();
        for (index, event) in events.iter().enumerate() {
            shows.entry(&event.show).or_insert(index);
            if let Some(product) = &event.product {
                products.entry(product).or_insert(index);
            }
        }
        let mut unknown = Vec::new();
        for (id, index) in shows {
            if !self.known.show_exists(id).await {
                unknown.push((index, "show", id));
            }
        }
        for (id, index) in products {
            if !self.known.product_exists(id).await {
                unknown.push((index, "product", id));
            }
        }
        match unknown.into_iter().min() {
            Some((index, what, id)) => Err(EventsError::Unknown {
                field: format!("events[{index}].{what}"),
                what,
                id: id.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// The per-cue, per-product and total figures of show `id`.
    pub async fn analytics(&self, show: &str) -> Result<Analytics, EventsError> {
        if !self.known.show_exists(show).await {
            return Err(EventsError::Unknown {
                field: "show".into(),
                what: "show",
                id: show.to_string(),
            });
        }
        let failed = |e: store::StoreError| EventsError::Store(e.to_string());
        let groups = store::groups(&self.pool, show).await.map_err(failed)?;
        let mut analytics = Analytics::fold(&groups);
        analytics.shoppers = store::shoppers(&self.pool, show).await.map_err(failed)?;
        Ok(analytics)
    }

    /// Distinct viewers of `show` with a `view_show` in the minute before `now_ms`.
    pub fn viewers_now(&self, show: &str, now_ms: i64) -> usize {
        let counter = self.viewers.lock().unwrap_or_else(|e| e.into_inner());
        counter.count(show, now_ms)
    }

    /// Distinct viewers of `show` per minute from `from_ms` to `to_ms`, from the stored
    /// `view_show` events.
    pub async fn viewer_timeline(
        &self,
        show: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<viewers::Minute>, EventsError> {
        let counted = store::viewers_per_minute(&self.pool, show, from_ms, to_ms)
            .await
            .map_err(|e| EventsError::Store(e.to_string()))?;
        Ok(viewers::timeline(&counted, from_ms, to_ms))
    }

    /// Stops taking batches and waits for the writer to commit what it holds.
    pub async fn close(&self) {
        drop(self.queue.lock().unwrap_or_else(|e| e.into_inner()).take());
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = writer
            && let Err(err) = writer.await
        {
            tracing::error!(error = %err, "event writer failed");
        }
    }
}

/// Counts the viewers of the last minute stored before a restart, so that "watching now" does
/// not start from zero.
async fn seed_viewers(pool: AnyPool, counter: Arc<Mutex<viewers::ViewerCounter>>) {
    let now_ms = chrono::Utc::now().timestamp_millis();
    match store::recent_views(&pool, now_ms - viewers::WINDOW_MS).await {
        Ok(views) => {
            let mut counter = counter.lock().unwrap_or_else(|e| e.into_inner());
            for (show, viewer, ts_ms) in views {
                counter.seen(&show, &viewer, ts_ms, now_ms);
            }
        }
        Err(err) => tracing::warn!(error = %err, "viewers of the last minute not restored"),
    }
}

/// How often a tail looks for new events when no notification comes.
pub const TAIL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Events read per query of the tail.
const TAIL_BATCH: usize = 10_000;

async fn tail(
    pool: AnyPool,
    mut after: i64,
    mut changes: tokio::sync::broadcast::Receiver<crate::store::Change>,
    sink: Arc<dyn EventSink>,
) {
    while !pool.is_closed() {
        loop {
            match store::since(&pool, after, TAIL_BATCH).await {
                Ok(rows) => {
                    let full = rows.len() == TAIL_BATCH;
                    if let Some((last, _)) = rows.last() {
                        after = *last;
                    }
                    let events: Vec<Event> = rows.into_iter().map(|(_, event)| event).collect();
                    if !events.is_empty() {
                        sink.accepted(&events);
                    }
                    if !full {
                        break;
                    }
                }
                Err(err) => {
                    if !pool.is_closed() {
                        tracing::warn!(error = %err, "events: cannot read other nodes' events");
                    }
                    break;
                }
            }
        }
        // Wake on the next `events` notification (or any lag), or after the interval.
        let _ = tokio::time::timeout(TAIL_INTERVAL, async {
            loop {
                match changes.recv().await {
                    Ok(change) if change.table == "events" || change.table == "*" => return,
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        std::future::pending::<()>().await
                    }
                }
            }
        })
        .await;
    }
}

/// The writer: takes every batch waiting (up to [`MAX_EVENTS_PER_COMMIT`] events), commits them
/// in one transaction, and hands them to [`complete_loop`] (which tells the sink and answers
/// each). Ends, after the last answer, when every sender is gone.
async fn write_loop(
    pool: AnyPool,
    mut jobs: mpsc::Receiver<Job>,
    sink: Option<Arc<dyn EventSink>>,
) {
    let statements = store::insert_statements(&pool);
    // Committed groups are handed to the sink and answered by a task of their own, in commit
    // order, so the next transaction starts meanwhile: the sink's counts took 13 % of this
    // loop's time under a stream of events (docs/benchmarks/events.md). Callers are still
    // answered after the sink has their events.
    let (committed, completions) = mpsc::channel(2);
    let completer = tokio::spawn(complete_loop(completions, sink));
    let mut idle_since = std::time::Instant::now();
    while let Some(first) = jobs.recv().await {
        let started = std::time::Instant::now();
        let mut pending = first.events.len();
        let mut group = vec![first];
        while pending < MAX_EVENTS_PER_COMMIT {
            match jobs.try_recv() {
                Ok(job) => {
                    pending += job.events.len();
                    group.push(job);
                }
                Err(_) => break,
            }
        }
        let events = group.iter().flat_map(|job| &job.events);
        let received_ms = chrono::Utc::now().timestamp_millis();
        let result = store::write(&pool, &statements, events, received_ms).await;
        match &result {
            Ok(()) => tracing::trace!(
                batches = group.len(),
                events = pending,
                idle_us = (started - idle_since).as_micros() as u64,
                write_us = started.elapsed().as_micros() as u64,
                "events committed"
            ),
            Err(err) => tracing::error!(error = %err, events = pending, "events not recorded"),
        }
        let result = result.map_err(|e| e.to_string());
        if committed.send((group, result)).await.is_err() {
            break;
        }
        idle_since = std::time::Instant::now();
    }
    drop(committed);
    let _ = completer.await;
}

/// Tells the sink of each committed group, then answers its callers.
async fn complete_loop(
    mut completions: mpsc::Receiver<(Vec<Job>, Result<(), String>)>,
    sink: Option<Arc<dyn EventSink>>,
) {
    while let Some((group, result)) = completions.recv().await {
        if let (Ok(()), Some(sink)) = (&result, &sink) {
            for job in &group {
                sink.accepted(&job.events);
            }
        }
        for job in group {
            let _ = job.done.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// Knows shows `s*` and products `p*` only.
    struct TestCatalog;

    impl Known for TestCatalog {
        fn show_exists<'a>(&'a self, id: &'a str) -> BoxFuture<'a, bool> {
            Box::pin(std::future::ready(id.starts_with('s')))
        }

        fn product_exists<'a>(&'a self, id: &'a str) -> BoxFuture<'a, bool> {
            Box::pin(std::future::ready(id.starts_with('p')))
        }
    }

    /// Counts what it is told.
    #[derive(Default)]
    struct Counter(std::sync::atomic::AtomicUsize);

    impl EventSink for Counter {
        fn accepted(&self, events: &[Event]) {
            self.0
                .fetch_add(events.len(), std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn settings() -> Settings {
        Config {
            max_batch_events: 100,
            max_body_bytes: 65536,
            rate_per_client_per_s: 100.0,
            rate_burst_events: 100,
            max_clock_skew_s: 300.0,
            currency: "USD".into(),
        }
        .settings()
    }

    async fn service(sink: Arc<dyn EventSink>) -> (Store, Events) {
        let store = Store::in_memory().await.unwrap();
        let events = Events::start(
            store.pool().clone(),
            settings(),
            Arc::new(TestCatalog),
            sink,
        );
        (store, events)
    }

    async fn post(events: &Events, sender: Sender, body: &str) -> Result<usize, EventsError> {
        let parsed = events.parse(body.as_bytes(), &sender)?;
        events.record(parsed).await
    }

    #[tokio::test]
    async fn concurrent_batches_are_all_committed_and_summed() {
        let sink = Arc::new(Counter::default());
        let (_store, events) = service(sink.clone()).await;
        let events = Arc::new(events);
        let mut tasks = Vec::new();
        for client in 0..20 {
            let events = Arc::clone(&events);
            tasks.push(tokio::spawn(async move {
                let lines: Vec<String> = (0..50)
                    .map(|i| {
                        format!(
                            r#"{{"type": "purchase", "user": "u{client}", "show": "s1",
                            "product": "p{}", "cue": "c{}", "order": "o{client}",
                            "quantity": 2, "price": "0.10"}}"#,
                            i,
                            i % 2
                        )
                    })
                    .collect();
                let body = format!(r#"{{"events": [{}]}}"#, lines.join(","));
                post(&events, Sender::Shop, &body).await.unwrap()
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), 50);
        }
        let a = events.analytics("s1").await.unwrap();
        assert_eq!(a.totals.purchases, 1000);
        assert_eq!(a.totals.units, 2000);
        assert_eq!(a.totals.revenue.to_string(), "200.00");
        assert_eq!(a.cues["c0"].purchases, 500);
        assert_eq!(a.products["p7"].revenue.to_string(), "4.00");
        assert_eq!(sink.0.load(std::sync::atomic::Ordering::Relaxed), 1000);

        // A retried purchase line is recorded once.
        let retry = r#"{"events": [{"type": "purchase", "user": "u0", "show": "s1",
            "product": "p0", "order": "o0", "quantity": 2, "price": "0.10"}]}"#;
        post(&events, Sender::Shop, retry).await.unwrap();
        assert_eq!(events.analytics("s1").await.unwrap().totals.purchases, 1000);
        events.close().await;
        assert!(matches!(
            post(&events, Sender::Shop, retry).await,
            Err(EventsError::Closed)
        ));
    }

    #[tokio::test]
    async fn unknown_shows_and_products_are_named_and_nothing_is_written() {
        let (_store, events) = service(Arc::new(NoSink)).await;
        let body = r#"{"events": [
            {"type": "view_show", "visitor": "v", "show": "s1"},
            {"type": "click", "visitor": "v", "show": "s1", "product": "p1"},
            {"type": "click", "visitor": "v", "show": "s1", "product": "nope"},
            {"type": "view_show", "visitor": "v", "show": "gone"}]}"#;
        let err = post(&events, Sender::Page, body).await.unwrap_err();
        assert_eq!(err.to_string(), r#"events[2].product: no product "nope""#);
        assert_eq!(events.analytics("s1").await.unwrap(), Analytics::default());
        assert!(matches!(
            events.analytics("gone").await,
            Err(EventsError::Unknown { what: "show", .. })
        ));
    }

    #[tokio::test]
    async fn view_heartbeats_count_now_and_survive_a_restart() {
        let (store, events) = service(Arc::new(NoSink)).await;
        let body = r#"{"events": [
            {"type": "view_show", "visitor": "v1", "show": "s1"},
            {"type": "view_show", "visitor": "v2", "show": "s1"},
            {"type": "view_show", "visitor": "v1", "show": "s1"},
            {"type": "view_show", "visitor": "v3", "show": "s2"},
            {"type": "click", "visitor": "v9", "show": "s1", "product": "p1"}]}"#;
        post(&events, Sender::Page, body).await.unwrap();
        post(
            &events,
            Sender::User("al".into()),
            r#"{"events": [
            {"type": "view_show", "visitor": "v4", "show": "s1"}]}"#,
        )
        .await
        .unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        assert_eq!(events.viewers_now("s1", now), 3, "v1, v2 and al");
        assert_eq!(events.viewers_now("s2", now), 1);
        let timeline = events
            .viewer_timeline("s1", now - 60_000, now)
            .await
            .unwrap();
        assert_eq!(timeline.iter().map(|m| m.viewers).sum::<u64>(), 3);
        events.close().await;

        let restarted = Events::start(
            store.pool().clone(),
            settings(),
            Arc::new(TestCatalog),
            Arc::new(NoSink),
        );
        for _ in 0..100 {
            if restarted.viewers_now("s1", now) == 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(restarted.viewers_now("s1", now), 3);
        assert_eq!(restarted.viewers_now("s2", now), 1);
    }

    #[tokio::test]
    async fn a_login_links_the_visitors_earlier_events() {
        let (store, events) = service(Arc::new(NoSink)).await;
        let anonymous = r#"{"events": [
            {"type": "click", "visitor": "v1", "show": "s1", "product": "p1"},
            {"type": "click", "visitor": "v2", "show": "s1", "product": "p1"}]}"#;
        post(&events, Sender::Page, anonymous).await.unwrap();
        let logged_in = r#"{"events": [
            {"type": "add_to_cart", "visitor": "v1", "show": "s1", "product": "p1"}]}"#;
        post(&events, Sender::User("alice".into()), logged_in)
            .await
            .unwrap();
        let rows: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT visitor, \"user\" FROM events ORDER BY seq")
                .fetch_all(store.pool())
                .await
                .unwrap();
        let shoppers = events.analytics("s1").await.unwrap().shoppers;
        assert_eq!(shoppers, 2, "alice (once v1) and v2, not v1 + v2 + alice");
        let alice = Some("alice".to_string());
        assert_eq!(
            rows,
            [
                ("v1".into(), alice.clone()),
                ("v2".into(), None),
                ("v1".into(), alice)
            ]
        );
    }
}
