//! The recommendation service: the models in memory behind one lock, fed every recorded event
//! ([`EventSink`], on the event writer's task — a few hash-map updates per event, so events
//! are visible to the next query), the catalog's changes ([`CatalogObserver`]) and, at
//! startup, every event in the store (so a restart answers as before). Queries take the lock
//! for reading, check their parameters (each error names its parameter) and say why each item
//! is there. The API reads answers through the answer cache ([`AnswerCache`]): the `*_json`
//! methods compute an answer once, keep its JSON bytes per (route, caller, parameters) stamped
//! with the versions of the model parts it used, and [`Recommender::cached`] serves them again
//! until one of those parts changes (events bump bought-together at once; co-views bump the
//! related lists at their background refresh, `recommend.related_refresh_s`). Trending is
//! ranked in the background ([`Rankings`], rebuilt at most every [`TRENDING_REFRESH_S`] when
//! events arrived) and swapped in whole: a trending query only reads the last rankings.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value, json};
use sqlx::AnyPool;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Config;
use super::basket::{Baskets, ForYou, ForYouParams};
use super::cache::{AnswerCache, Cached, Depends, Key, Part, Route, Spelling, Versions, Who};
use super::content::{self, Content, Kind};
use super::coview::CoViews;
use super::ids::{Id, Ids};
use super::together::CoPurchases;
use super::trending::{Params, Rankings, Trend, Trending};
use super::upcoming::{self, Candidate, Facet, Profile, Taste, Weights};
use crate::commerce::catalog::model::{CATEGORY_SEPARATOR, normalize_category};
use crate::commerce::catalog::{Catalog, CatalogObserver, CatalogProduct, unix_now};
use crate::commerce::events::{Event, EventSink, EventType};
use crate::commerce::shop::{event_weight, popularity_weight};
use crate::commerce::shows::model::rfc3339;
use crate::commerce::shows::state::State;
use crate::commerce::shows::{Show, Shows};

/// Most products of one bought-together query (a cart).
pub const MAX_CART: usize = 50;
/// Candidates drawn from each source of related products per item asked for.
const CANDIDATES_PER_ITEM: usize = 5;
/// Events replayed into the models per call at startup.
const REPLAY_CHUNK: usize = 10_000;
/// Least seconds between two rebuilds of the trending rankings, which the background task
/// starts as soon as an event arrives after this long: an event is ranked within this (plus
/// the rebuild, a few milliseconds), then the answer cache's lag; well within 1 s.
pub const TRENDING_REFRESH_S: f64 = 0.25;
/// Seconds after which the rankings are rebuilt even without events (the decay moves the
/// scores slowly: a 15-minute half-life moves them by 0.8 % in 10 s).
const TRENDING_IDLE_S: f64 = 10.0;
/// How long a description of the scheduled shows answers upcoming-shows (their products'
/// trends move with time; a changed list of shows is described again at once).
const SHOWS_TTL_S: f64 = 0.25;
/// The scheduled shows as upcoming-shows ranks them and when they were described.
type ShowsCache = Mutex<Option<(i64, Arc<Vec<Candidate>>)>>;

/// Why a query was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecommendError {
    /// 400: a parameter is not acceptable.
    #[error("{field}: {reason}")]
    Invalid {
        /// The parameter.
        field: String,
        /// Why.
        reason: String,
    },
    /// 404: it names a product or show that does not exist.
    #[error("{field}: no {what} {id:?}")]
    Unknown {
        /// The parameter.
        field: String,
        /// `product` or `show`.
        what: &'static str,
        /// The id.
        id: String,
    },
}

fn invalid(field: &str, reason: impl Into<String>) -> RecommendError {
    RecommendError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// One recommended product or show.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// `product_id` or `show_id`.
    pub key: &'static str,
    /// The product's or show's id.
    pub id: String,
    /// Higher is better; comparable within one answer only.
    pub score: f64,
    /// Why it is recommended.
    pub reason: String,
    /// Display fields (title, price, currency, image_url; starts_at, host for shows).
    pub display: Map<String, Value>,
}

/// The answer to a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Best first.
    pub items: Vec<Item>,
    /// The model that answered (`bought-together`, `related`, `trending`, ...).
    pub model: &'static str,
    /// Whether the model had too little to go on and another answered instead (the reasons
    /// say which).
    pub fallback: bool,
}

impl Answer {
    /// The API's JSON.
    pub fn to_json(&self) -> Value {
        let items: Vec<Value> = self
            .items
            .iter()
            .map(|item| {
                let mut object = Map::new();
                object.insert(item.key.into(), item.id.clone().into());
                object.insert("score".into(), json!((item.score * 1e6).round() / 1e6));
                object.insert("reason".into(), item.reason.clone().into());
                for (k, v) in &item.display {
                    object.insert(k.clone(), v.clone());
                }
                Value::Object(object)
            })
            .collect();
        json!({ "items": items, "model": self.model, "fallback": self.fallback })
    }
}

/// An order: its id, its distinct products, in the order their lines arrived, and the time
/// of its first line (Unix ms).
pub type Order = (Arc<str>, Vec<Id>, i64);

/// Each user's purchases, grouped by order, orders in the order they arrived.
#[derive(Debug, Default)]
pub struct Purchases {
    users: HashMap<Arc<str>, Vec<Order>>,
}

/// Orders of a user searched (from the newest) for the order a line belongs to.
const RECENT_ORDERS: usize = 16;

impl Purchases {
    fn record(&mut self, user: &str, order: &str, product: Id, ts_ms: i64) {
        let orders = match self.users.get_mut(user) {
            Some(orders) => orders,
            None => self.users.entry(Arc::from(user)).or_default(),
        };
        let found = orders
            .iter_mut()
            .rev()
            .take(RECENT_ORDERS)
            .find(|(id, _, _)| &**id == order);
        match found {
            Some((_, products, _)) => {
                if !products.contains(&product) {
                    products.push(product);
                }
            }
            None => orders.push((Arc::from(order), vec![product], ts_ms)),
        }
    }

    /// Each user's orders (product ids), oldest first.
    pub fn users(&self) -> impl Iterator<Item = (&Arc<str>, &[Order])> {
        self.users.iter().map(|(u, o)| (u, o.as_slice()))
    }

    fn memory_bytes(&self) -> usize {
        self.users
            .values()
            .flatten()
            .map(|(o, p, _)| o.len() + 64 + p.capacity() * 4)
            .sum()
    }
}

/// Every model, behind the service's lock.
struct Models {
    ids: Ids,
    together: CoPurchases,
    coviews: CoViews,
    content: Content,
    trending: Trending,
    profiles: HashMap<Arc<str>, Profile>,
    purchases: Purchases,
}

/// A show's host and tags, the tastes an event in it adds.
type ShowTastes = Option<(String, Vec<String>)>;

impl Models {
    fn new(settings: &Config) -> Models {
        Models {
            ids: Ids::default(),
            // A query asks the model for twice its limit (some may be off the catalog).
            together: CoPurchases::with_lists(
                2 * settings.max_limit,
                settings.together_min_support,
            ),
            coviews: CoViews::new((settings.related_session_s * 1000.0) as i64),
            content: Content::default(),
            trending: Trending::new(Params {
                windows: settings.trending_windows_s.clone(),
                long: settings.trending_long_half_life_s,
                prior: settings.trending_prior,
                min_volume: settings.trending_min_volume,
            }),
            profiles: HashMap::new(),
            purchases: Purchases::default(),
        }
    }

    fn apply(&mut self, event: &Event, show: &ShowTastes) {
        let product = event.product.as_deref().map(|p| self.ids.intern(p));
        if let Some(p) = product {
            let weight = event_weight(event);
            self.trending.record(p, weight, event.ts_ms as f64 / 1000.0);
            match event.kind {
                EventType::Purchase => {
                    if let Some(order) = &event.order {
                        self.together.record(order, p);
                        if let Some(user) = &event.user {
                            self.purchases.record(user, order, p, event.ts_ms);
                        }
                    }
                }
                EventType::Click | EventType::CtaClick | EventType::AddToCart => {
                    let who = event.user.as_deref().or(event.visitor.as_deref());
                    if let Some(who) = who {
                        self.coviews.record(who, p, event.ts_ms);
                    }
                }
                EventType::ViewShow | EventType::Impression => {}
            }
        }
        let Some(user) = &event.user else {
            return;
        };
        let mut tastes: Vec<(Taste, f64)> = Vec::new();
        if let Some(p) = product {
            let weight = popularity_weight(event.kind);
            tastes.push(((Facet::Product, self.ids.name(p).to_string()), weight));
            for (kind, text) in self.content.features_of(p) {
                match kind {
                    Kind::Category => tastes.push(((Facet::Category, text.clone()), weight)),
                    Kind::Brand => tastes.push(((Facet::Brand, text.clone()), weight)),
                    Kind::Word => {}
                }
            }
        }
        if let Some((host, tags)) = show {
            // Watching a show says as much of its host as a click says of a product.
            let weight = popularity_weight(event.kind).max(1.0);
            tastes.push(((Facet::Host, host.clone()), weight));
            for tag in tags {
                tastes.push(((Facet::Tag, tag.to_lowercase()), weight));
            }
        }
        if tastes.is_empty() {
            return;
        }
        let profile = match self.profiles.get_mut(user.as_str()) {
            Some(profile) => profile,
            None => self.profiles.entry(Arc::from(user.as_str())).or_default(),
        };
        for (taste, weight) in tastes {
            profile.add(taste, weight);
        }
    }

    fn memory_bytes(&self) -> usize {
        self.ids.memory_bytes()
            + self.together.memory_bytes()
            + self.coviews.memory_bytes()
            + self.content.memory_bytes()
            + self.trending.memory_bytes()
            + self.purchases.memory_bytes()
            + self
                .profiles
                .iter()
                .map(|(k, p)| k.len() + 64 + p.memory_bytes())
                .sum::<usize>()
    }
}

/// Unix seconds as Unix days, the clock of the for-you model's baskets.
fn unix_days(seconds: f64) -> f64 {
    seconds / 86_400.0
}

/// The category features of a catalog product.
fn product_features(product: &CatalogProduct) -> Vec<content::Feature> {
    content::features(
        product.category.as_deref(),
        product.brand.as_deref(),
        &product.title,
    )
}

/// A trending z-score squashed into 0..1 (0 when not trending).
fn squash(z: f64) -> f64 {
    if z > 0.0 { z / (z + 3.0) } else { 0.0 }
}

/// A duration in the words of a reason: `15 min`, `1 h`, `6 h`, `1.5 d`.
fn span(seconds: f64) -> String {
    if seconds < 3600.0 {
        format!("{:.0} min", seconds / 60.0)
    } else if seconds < 86_400.0 {
        format!("{} h", (seconds / 360.0).round() / 10.0)
    } else {
        format!("{} d", (seconds / 8640.0).round() / 10.0)
    }
}

/// The recommendation service.
pub struct Recommender {
    settings: Config,
    catalog: Arc<Catalog>,
    shows: Arc<Shows>,
    models: RwLock<Models>,
    /// The for-you model last fitted (none before the first fit).
    for_you: RwLock<Option<Arc<ForYou>>>,
    /// Purchases arrived since the last for-you fit started.
    purchased: AtomicBool,
    /// The last trending rankings, rebuilt in the background and swapped in whole.
    rankings: RwLock<Arc<Rankings>>,
    /// Woken by each event batch with a product: the rankings are due for a rebuild.
    trended: Arc<Notify>,
    /// The last description of the scheduled shows.
    upcoming: ShowsCache,
    /// Answers as the API sends them.
    answers: AnswerCache,
    /// The versions of the model parts the cached answers were computed from.
    versions: Versions,
    /// Co-views arrived since the last related refresh.
    coviewed: AtomicBool,
    /// Stops the background tasks (for-you refits, related refreshes, trending rebuilds).
    stop: CancellationToken,
    refits: Mutex<Vec<JoinHandle<()>>>,
}

/// What bought-together answers are computed from (the fallback is related products).
const TOGETHER_DEPENDS: Depends = Depends::on(&[Part::Together, Part::Related, Part::Catalog]);
/// What related answers are computed from.
const RELATED_DEPENDS: Depends = Depends::on(&[Part::Related, Part::Catalog]);
/// What a fitted for-you model's answers are computed from.
const FOR_YOU_DEPENDS: Depends = Depends::on(&[Part::ForYou, Part::Catalog]);
/// What trending answers are computed from: the rankings (stale as soon as they are rebuilt, so
/// an event shows one rebuild after it arrives) and the catalog (display fields).
const TRENDING_DEPENDS: Depends = Depends::on(&[Part::Catalog]).at_once(&[Part::Trending]);

/// Hands the catalog's changes to the service without keeping it alive.
struct CatalogFeed(Weak<Recommender>);

impl CatalogObserver for CatalogFeed {
    fn upserted(&self, products: &[Arc<CatalogProduct>]) {
        if let Some(service) = self.0.upgrade() {
            service.describe(products);
            service.versions.bump(Part::Catalog);
        }
    }

    fn deleted(&self, id: &str) {
        if let Some(service) = self.0.upgrade() {
            let mut models = service.write();
            if let Some(p) = models.ids.get(id) {
                models.content.remove(p);
            }
            drop(models);
            service.versions.bump(Part::Catalog);
        }
    }
}

impl EventSink for Recommender {
    fn accepted(&self, events: &[Event]) {
        let mut shows: HashMap<&str, ShowTastes> = HashMap::new();
        for event in events.iter().filter(|e| e.user.is_some()) {
            shows.entry(&event.show).or_insert_with(|| {
                self.shows
                    .get(&event.show)
                    .map(|show| (show.host, show.tags))
            });
        }
        let mut models = self.write();
        for event in events {
            let show = shows.get(event.show.as_str()).unwrap_or(&None);
            models.apply(event, show);
        }
        drop(models);
        // Bumped after the models changed: an answer stamped before is stale.
        let with_product = || events.iter().filter(|e| e.product.is_some());
        if with_product().any(|e| e.kind == EventType::Purchase && e.order.is_some()) {
            self.versions.bump(Part::Together);
        }
        if with_product().any(|e| {
            matches!(
                e.kind,
                EventType::Click | EventType::CtaClick | EventType::AddToCart
            ) && (e.user.is_some() || e.visitor.is_some())
        }) {
            self.coviewed.store(true, Ordering::Release);
        }
        if events
            .iter()
            .any(|e| e.kind == EventType::Purchase && e.user.is_some())
        {
            self.purchased.store(true, Ordering::Release);
        }
        if with_product().next().is_some() {
            self.trended.notify_one();
        }
    }
}

/// Rebuilds the trending rankings when events arrived (woken by them), at most once per
/// [`TRENDING_REFRESH_S`], and every [`TRENDING_IDLE_S`] without events, off the runtime's
/// threads; queries read the previous rankings meanwhile. Ends on `stop` or when the service
/// is gone.
async fn trending_loop(service: Weak<Recommender>, trended: Arc<Notify>, stop: CancellationToken) {
    let every = Duration::from_secs_f64(TRENDING_REFRESH_S);
    let idle = Duration::from_secs_f64(TRENDING_IDLE_S);
    loop {
        tokio::select! {
            () = trended.notified() => {}
            () = tokio::time::sleep(idle) => {}
            () = stop.cancelled() => return,
        }
        let Some(current) = service.upgrade() else {
            return;
        };
        let started = tokio::time::Instant::now();
        let rebuilt =
            tokio::task::spawn_blocking(move || current.refresh_trending(unix_now())).await;
        match rebuilt {
            Ok(ranked) => tracing::debug!(
                elapsed_us = started.elapsed().as_micros() as u64,
                ranked,
                "trending rankings rebuilt"
            ),
            Err(err) => tracing::error!(error = %err, "trending rebuild failed"),
        }
        // The next one starts `every` after this one started (an event arriving during a
        // rebuild waits for the rest of it, not for a whole period after it).
        tokio::select! {
            () = tokio::time::sleep_until(started + every) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Refits for-you when purchases arrived, at most once per `interval`, off the runtime's
/// threads; the previous model answers meanwhile. Ends on `stop` or when the service is gone.
async fn refit_loop(service: Weak<Recommender>, interval: Duration, stop: CancellationToken) {
    loop {
        let Some(current) = service.upgrade() else {
            return;
        };
        if current.purchased.swap(false, Ordering::AcqRel) {
            let data = current.baskets();
            let started = std::time::Instant::now();
            let fitted =
                tokio::task::spawn_blocking(move || ForYou::fit(&data, &ForYouParams::default()))
                    .await;
            match fitted {
                Ok(model) => {
                    tracing::debug!(
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        memory_bytes = model.memory_bytes(),
                        "for-you refitted"
                    );
                    *current.for_you.write().unwrap_or_else(|e| e.into_inner()) =
                        Some(Arc::new(model));
                    current.versions.bump(Part::ForYou);
                }
                Err(err) => tracing::error!(error = %err, "for-you refit failed"),
            }
        }
        drop(current);
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Refreshes the related lists when co-views arrived, once per `interval`: the cached related
/// answers (and bought-together's related fallbacks) are computed again on their next ask.
/// Ends on `stop` or when the service is gone.
async fn related_loop(service: Weak<Recommender>, interval: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = stop.cancelled() => return,
        }
        let Some(current) = service.upgrade() else {
            return;
        };
        current.refresh_related();
    }
}

impl Recommender {
    /// The service over `catalog` and `shows`, empty (see [`Recommender::start`]).
    pub fn new(settings: Config, catalog: Arc<Catalog>, shows: Arc<Shows>) -> Recommender {
        let models = RwLock::new(Models::new(&settings));
        Recommender {
            catalog,
            shows,
            models,
            for_you: RwLock::new(None),
            purchased: AtomicBool::new(false),
            rankings: RwLock::new(Arc::new(Rankings::default())),
            trended: Arc::new(Notify::new()),
            upcoming: Mutex::new(None),
            answers: AnswerCache::new(settings.answer_cache_bytes, settings.answer_cache_lag_s),
            versions: Versions::default(),
            coviewed: AtomicBool::new(false),
            stop: CancellationToken::new(),
            refits: Mutex::new(Vec::new()),
            settings,
        }
    }

    /// Each user's orders as the for-you model takes them, each on its day (Unix days, from
    /// the time of the order's first purchase event).
    pub fn baskets(&self) -> Baskets {
        let models = self.read();
        let mut data = Baskets::new();
        for (user, orders) in models.purchases.users() {
            for (_, products, ts_ms) in orders {
                data.push_at(
                    user,
                    products.iter().map(|p| &**models.ids.name(*p)),
                    Some(unix_days(*ts_ms as f64 / 1000.0)),
                );
            }
        }
        data
    }

    /// Stops the background tasks (for-you refits, related refreshes, trending rebuilds).
    pub async fn close(&self) {
        self.stop.cancel();
        let tasks = std::mem::take(&mut *self.refits.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            let _ = task.await;
        }
    }

    /// The service, following the catalog's changes, its models rebuilt from every event in
    /// the store (`pool`): feed it the events recorded from now on ([`EventSink`]).
    pub async fn start(
        pool: &AnyPool,
        settings: Config,
        catalog: Arc<Catalog>,
        shows: Arc<Shows>,
    ) -> Result<Arc<Recommender>, sqlx::Error> {
        let service = Arc::new(Recommender::new(settings, Arc::clone(&catalog), shows));
        let products = catalog.observe(Arc::new(CatalogFeed(Arc::downgrade(&service))));
        service.describe(&products);
        let started = std::time::Instant::now();
        let replayed = service.replay(pool).await?;
        service.refresh_trending(unix_now());
        tracing::info!(
            events = replayed,
            products = products.len(),
            memory_bytes = service.memory_bytes(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "recommendations rebuilt"
        );
        // Fit for-you at once (in the background) on what was replayed.
        service.purchased.store(true, Ordering::Release);
        let interval = Duration::from_secs_f64(service.settings.for_you_refit_interval_s);
        let refits = tokio::spawn(refit_loop(
            Arc::downgrade(&service),
            interval,
            service.stop.clone(),
        ));
        let related = tokio::spawn(related_loop(
            Arc::downgrade(&service),
            Duration::from_secs_f64(service.settings.related_refresh_s),
            service.stop.clone(),
        ));
        let trending = tokio::spawn(trending_loop(
            Arc::downgrade(&service),
            Arc::clone(&service.trended),
            service.stop.clone(),
        ));
        service
            .refits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend([refits, related, trending]);
        Ok(service)
    }

    /// The settings.
    pub fn settings(&self) -> &Config {
        &self.settings
    }

    fn read(&self) -> RwLockReadGuard<'_, Models> {
        self.models.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Models> {
        self.models.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the content features of `products`.
    pub fn describe(&self, products: &[Arc<CatalogProduct>]) {
        let features: Vec<(&str, Vec<content::Feature>)> = products
            .iter()
            .map(|p| (p.id.as_str(), product_features(p)))
            .collect();
        let mut models = self.write();
        let described: Vec<(Id, Vec<content::Feature>)> = features
            .into_iter()
            .map(|(id, features)| (models.ids.intern(id), features))
            .collect();
        models.content.upsert_all(described);
    }

    /// Feeds every recorded event back into the models, oldest first; how many.
    pub async fn replay(&self, pool: &AnyPool) -> Result<usize, sqlx::Error> {
        type Row = (
            String,
            Option<String>,
            Option<String>,
            String,
            Option<String>,
            Option<String>,
            i64,
            i64,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT type, \"user\", visitor, show, product, order_id, quantity, ts_ms \
             FROM events ORDER BY seq",
        )
        .fetch_all(pool)
        .await?;
        let count = rows.len();
        let mut chunk = Vec::with_capacity(REPLAY_CHUNK.min(count));
        for (kind, user, visitor, show, product, order, quantity, ts_ms) in rows {
            let Some(kind) = EventType::parse(&kind) else {
                continue;
            };
            chunk.push(Event {
                kind,
                user,
                visitor,
                show,
                product,
                cue: None,
                order,
                quantity: u32::try_from(quantity).unwrap_or(1),
                price: None,
                ts_ms,
            });
            if chunk.len() == REPLAY_CHUNK {
                self.accepted(&chunk);
                chunk.clear();
            }
        }
        self.accepted(&chunk);
        Ok(count)
    }

    /// Approximate heap bytes of the models (the trending rankings included).
    pub fn memory_bytes(&self) -> usize {
        self.read().memory_bytes() + self.rankings().memory_bytes()
    }

    /// The last trending rankings.
    fn rankings(&self) -> Arc<Rankings> {
        Arc::clone(&self.rankings.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Ranks every trending product at `now` (Unix s), overall and per category, in every
    /// window, and swaps the rankings in for the queries (the background task calls it;
    /// `start` once after the replay). How many entries they hold.
    pub fn refresh_trending(&self, now: f64) -> usize {
        let models = self.read();
        let rankings = Rankings::build(&models.trending, now, CATEGORY_SEPARATOR, |p| {
            (Arc::clone(models.ids.name(p)), models.content.category(p))
        });
        drop(models);
        let ranked = rankings.len();
        *self.rankings.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rankings);
        // After the swap: an answer stamped before it is stale, one stamped after reads these.
        self.versions.bump(Part::Trending);
        ranked
    }

    /// `limit`, or the default; checked against `recommend.max_limit`.
    fn limit(&self, limit: Option<usize>) -> Result<usize, RecommendError> {
        let max = self.settings.max_limit;
        match limit {
            None => Ok(self.settings.default_limit),
            Some(limit) if (1..=max).contains(&limit) => Ok(limit),
            Some(limit) => Err(invalid("limit", format!("{limit} is not in 1..={max}"))),
        }
    }

    /// The id of product `id` in the models, if the catalog holds it (or, without a catalog,
    /// an event named it).
    fn product(&self, models: &Models, id: &str) -> Result<Id, RecommendError> {
        match models.ids.get(id) {
            Some(p) if self.listed(id) => Ok(p),
            _ => Err(RecommendError::Unknown {
                field: "product".into(),
                what: "product",
                id: id.into(),
            }),
        }
    }

    /// A product item with the catalog's display fields.
    fn product_item(&self, id: &str, score: f64, reason: String) -> Item {
        let mut display = Map::new();
        if let Some(p) = self.catalog.get(id) {
            display.insert("title".into(), p.title.clone().into());
            display.insert("price".into(), p.price.clone().into());
            display.insert("currency".into(), p.currency.clone().into());
            display.insert("image_url".into(), p.image_url.clone().into());
        }
        Item {
            key: "product_id",
            id: id.into(),
            score,
            reason,
            display,
        }
    }

    /// Whether the catalog (when it has products) still holds `id`.
    fn listed(&self, id: &str) -> bool {
        self.catalog.is_empty() || self.catalog.get(id).is_some()
    }

    /// `GET /api/recommendations/bought-together?product=...&limit=&threshold=`: products
    /// bought in the same orders as `products` (a cart), with a confidence of at least
    /// `threshold` % (0..=100, default 0); when none is, related products (`fallback`).
    pub fn bought_together(
        &self,
        products: &[String],
        limit: Option<usize>,
        threshold: Option<f64>,
    ) -> Result<Answer, RecommendError> {
        let limit = self.limit(limit)?;
        let threshold = match threshold {
            None => 0.0,
            Some(t) if (0.0..=100.0).contains(&t) => t / 100.0,
            Some(t) => {
                return Err(invalid(
                    "threshold",
                    format!("{t} is not in 0..=100 (the least confidence, %)"),
                ));
            }
        };
        if products.is_empty() {
            return Err(invalid("product", "required: one or more product ids"));
        }
        if products.len() > MAX_CART {
            return Err(invalid("product", format!("more than {MAX_CART} products")));
        }
        let models = self.read();
        let mut cart = Vec::with_capacity(products.len());
        for id in products {
            let p = self.product(&models, id)?;
            if !cart.contains(&p) {
                cart.push(p);
            }
        }
        let support = self.settings.together_min_support;
        let found = models.together.query(&cart, support, threshold, limit * 2);
        let items: Vec<Item> = found
            .into_iter()
            .filter(|t| self.listed(models.ids.name(t.product)))
            .take(limit)
            .map(|t| {
                let reason = format!(
                    "bought with {} in {} of its {} orders ({:.0} %, lift {:.1})",
                    models.ids.name(t.with),
                    t.support,
                    t.with_orders,
                    100.0 * f64::from(t.support) / f64::from(t.with_orders.max(1)),
                    t.lift
                );
                self.product_item(models.ids.name(t.product), t.score, reason)
            })
            .collect();
        if !items.is_empty() {
            return Ok(Answer {
                items,
                model: "bought-together",
                fallback: false,
            });
        }
        let mut merged: HashMap<Id, (f64, String)> = HashMap::new();
        for &p in &cart {
            for (q, score, reason) in self.related_of(&models, p, limit) {
                if cart.contains(&q) {
                    continue;
                }
                let entry = merged.entry(q).or_insert((0.0, reason));
                entry.0 += score / cart.len() as f64;
            }
        }
        let mut related: Vec<(Id, f64, String)> =
            merged.into_iter().map(|(q, (s, r))| (q, s, r)).collect();
        related.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let items = related
            .into_iter()
            .take(limit)
            .map(|(q, score, reason)| {
                let reason = format!(
                    "too little purchase data (no product shares {support}+ orders at \
                     {:.0} %+ confidence): related — {reason}",
                    threshold * 100.0
                );
                self.product_item(models.ids.name(q), score, reason)
            })
            .collect();
        Ok(Answer {
            items,
            model: "bought-together",
            fallback: true,
        })
    }

    /// `GET /api/recommendations/related?product=&limit=`.
    pub fn related(&self, product: &str, limit: Option<usize>) -> Result<Answer, RecommendError> {
        let limit = self.limit(limit)?;
        let models = self.read();
        let p = self.product(&models, product)?;
        let items = self
            .related_of(&models, p, limit)
            .into_iter()
            .map(|(q, score, reason)| self.product_item(models.ids.name(q), score, reason))
            .collect();
        Ok(Answer {
            items,
            model: "related",
            fallback: false,
        })
    }

    /// Co-viewed and content neighbours of `p`, blended, best first.
    fn related_of(&self, models: &Models, p: Id, limit: usize) -> Vec<(Id, f64, String)> {
        let alpha = self.settings.related_behaviour_weight;
        let mut blend: HashMap<Id, (f64, u32, f64, Option<content::Feature>)> = HashMap::new();
        for n in models.coviews.neighbours(p) {
            blend.insert(n.product, (n.similarity, n.together, 0.0, None));
        }
        let candidates = (limit * CANDIDATES_PER_ITEM).max(50);
        for s in models.content.similar(p, candidates) {
            let entry = blend.entry(s.product).or_insert((0.0, 0, 0.0, None));
            entry.2 = s.similarity;
            entry.3 = s.because;
        }
        let mut ranked: Vec<(Id, f64, String)> = blend
            .into_iter()
            .filter(|(q, _)| *q != p && self.listed(models.ids.name(*q)))
            .map(|(q, (co, sessions, similar, because))| {
                let score = alpha * co + (1.0 - alpha) * similar;
                let mut reasons = Vec::new();
                if sessions > 0 {
                    let s = if sessions == 1 { "" } else { "s" };
                    reasons.push(format!("viewed together in {sessions} session{s}"));
                }
                if let Some((kind, text)) = because {
                    reasons.push(match kind {
                        Kind::Category => format!("same category {text:?}"),
                        Kind::Brand => format!("same brand {text:?}"),
                        Kind::Word => format!("similar title ({text:?})"),
                    });
                }
                (q, score, reasons.join("; "))
            })
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(limit);
        ranked
    }

    /// The index of the short half-life `window` (seconds) names, or the default (the first).
    fn window(&self, window: Option<f64>) -> Result<usize, RecommendError> {
        let windows = &self.settings.trending_windows_s;
        match window {
            None => Ok(0),
            Some(w) => windows
                .iter()
                .position(|h| (h - w).abs() < 0.5)
                .ok_or_else(|| {
                    let choices: Vec<String> = windows.iter().map(|h| format!("{h}")).collect();
                    invalid(
                        "window",
                        format!("{w} is not one of {} (seconds)", choices.join(", ")),
                    )
                }),
        }
    }

    /// `GET /api/recommendations/trending?limit=&category=&window=`: from the last rankings
    /// (see [`Recommender::refresh_trending`]); nothing is computed but the answer.
    pub fn trending(
        &self,
        limit: Option<usize>,
        category: Option<&str>,
        window: Option<f64>,
    ) -> Result<Answer, RecommendError> {
        let limit = self.limit(limit)?;
        let index = self.window(window)?;
        let category = category
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(normalize_category);
        let window_s = self.settings.trending_windows_s[index];
        let items = self
            .rankings()
            .get(index, category.as_deref())
            .iter()
            .filter(|r| self.listed(&r.name))
            .take(limit)
            .map(|r| self.product_item(&r.name, r.trend.z, trend_reason(&r.trend, window_s)))
            .collect();
        Ok(Answer {
            items,
            model: "trending",
            fallback: false,
        })
    }

    /// `GET /api/recommendations/for-you?user=&limit=` at `now` (Unix s): the next-basket
    /// model's list for `user`, their past products ranked by how due they are `now` (the days
    /// since they last bought each); popular products (`fallback`) for an anonymous or unknown
    /// shopper, and what trends now until the model is first fitted.
    pub fn for_you(
        &self,
        user: Option<&str>,
        limit: Option<usize>,
        now: f64,
    ) -> Result<Answer, RecommendError> {
        let limit = self.limit(limit)?;
        let model = self
            .for_you
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(model) = model else {
            let mut answer = self.trending(Some(limit), None, None)?;
            for item in &mut answer.items {
                item.reason = format!("model not fitted yet; trending: {}", item.reason);
            }
            answer.model = "for-you";
            answer.fallback = true;
            return Ok(answer);
        };
        let recommended = model.recommend_at(user.unwrap_or(""), limit, Some(unix_days(now)));
        let fallback = recommended.fallback;
        let items = recommended
            .items
            .into_iter()
            .map(|scored| {
                let reason = if fallback {
                    format!("no purchases of this shopper yet: {}", scored.reason)
                } else {
                    scored.reason.to_string()
                };
                self.product_item(&scored.product, scored.score, reason)
            })
            .collect();
        Ok(Answer {
            items,
            model: "for-you",
            fallback,
        })
    }

    /// `GET /api/recommendations/upcoming-shows?user=&limit=` at `now_ms` (Unix ms).
    pub fn upcoming_shows(
        &self,
        user: Option<&str>,
        limit: Option<usize>,
        now_ms: i64,
    ) -> Result<Answer, RecommendError> {
        let limit = self.limit(limit)?;
        // A scheduled show whose window to go live has closed is not coming.
        let late_ms = (self.shows.settings().live_window_after_s * 1000.0) as i64;
        let mut shows = self.shows.list(Some(State::Scheduled));
        shows.retain(|s| s.status.scheduled_start.timestamp_millis() + late_ms >= now_ms);
        let models = self.read();
        let candidates = self.candidates(&models, &shows, now_ms);
        let weights = Weights {
            affinity: self.settings.upcoming_affinity_weight,
            trending: self.settings.upcoming_trending_weight,
            soon: self.settings.upcoming_soon_weight,
            soon_half_ms: self.settings.upcoming_soon_half_s * 1000.0,
        };
        let profile = user.and_then(|u| models.profiles.get(u));
        let (ranked, fallback) = upcoming::rank(profile, &candidates, now_ms, &weights, limit);
        let by_id: HashMap<&str, &Show> = shows.iter().map(|s| (s.id.as_str(), s)).collect();
        let items = ranked
            .into_iter()
            .map(|r| {
                let mut display = Map::new();
                display.insert(
                    "starts_at".into(),
                    by_id
                        .get(r.show.as_str())
                        .map(|s| rfc3339(s.status.scheduled_start))
                        .into(),
                );
                if let Some(show) = by_id.get(r.show.as_str()) {
                    display.insert("title".into(), show.title.clone().into());
                    display.insert("host".into(), show.host.clone().into());
                }
                let reason = if fallback {
                    format!("no shopping history: trending and soonest — {}", r.reason)
                } else {
                    r.reason
                };
                Item {
                    key: "show_id",
                    id: r.show,
                    score: r.score,
                    reason,
                    display,
                }
            })
            .collect();
        Ok(Answer {
            items,
            model: "upcoming-shows",
            fallback,
        })
    }

    /// The scheduled `shows` as the ranking sees them, described at most once per
    /// [`SHOWS_TTL_S`] (their products' trends move with time; a changed list of shows is
    /// described again at once).
    fn candidates(&self, models: &Models, shows: &[Show], now_ms: i64) -> Arc<Vec<Candidate>> {
        let mut cache = self.upcoming.lock().unwrap_or_else(|e| e.into_inner());
        let ttl_ms = (SHOWS_TTL_S * 1000.0) as i64;
        if let Some((at, candidates)) = cache.as_ref()
            && (*at..*at + ttl_ms).contains(&now_ms)
            && candidates.len() == shows.len()
            && candidates.iter().zip(shows).all(|(c, s)| {
                c.show == s.id && c.starts_at_ms == s.status.scheduled_start.timestamp_millis()
            })
        {
            return Arc::clone(candidates);
        }
        let now = now_ms as f64 / 1000.0;
        let candidates: Arc<Vec<Candidate>> = Arc::new(
            shows
                .iter()
                .map(|show| self.candidate(models, show, 0, now))
                .collect(),
        );
        *cache = Some((now_ms, Arc::clone(&candidates)));
        candidates
    }

    /// A scheduled show as the upcoming-shows ranking sees it.
    fn candidate(&self, models: &Models, show: &Show, window: usize, now: f64) -> Candidate {
        let mut tastes: HashMap<Taste, f64> = HashMap::new();
        tastes.insert((Facet::Host, show.host.clone()), 1.0);
        for tag in &show.tags {
            tastes.insert((Facet::Tag, tag.to_lowercase()), 1.0);
        }
        let mut trend: f64 = 0.0;
        for id in &show.products {
            tastes.insert((Facet::Product, id.clone()), 1.0);
            let Some(p) = models.ids.get(id) else {
                continue;
            };
            for (kind, text) in models.content.features_of(p) {
                let facet = match kind {
                    Kind::Category => Facet::Category,
                    Kind::Brand => Facet::Brand,
                    Kind::Word => continue,
                };
                *tastes.entry((facet, text.clone())).or_default() += 1.0;
            }
            if let Some(t) = models.trending.trend(p, window, now)
                && models.trending.is_trending(&t)
            {
                trend = trend.max(squash(t.z));
            }
        }
        Candidate {
            show: show.id.clone(),
            starts_at_ms: show.status.scheduled_start.timestamp_millis(),
            tastes,
            trend,
        }
    }

    /// `GET /api/shows/{id}/products` at `now` (Unix s): the show's featured products, re-ranked
    /// by trending while it is live, in its own order otherwise.
    pub fn show_products(&self, id: &str, now: f64) -> Result<Answer, RecommendError> {
        let show = self.shows.get(id).ok_or_else(|| RecommendError::Unknown {
            field: "id".into(),
            what: "show",
            id: id.into(),
        })?;
        let live = show.status.state == State::Live;
        let models = self.read();
        let window_s = self.settings.trending_windows_s[0];
        let count = show.products.len().max(1) as f64;
        let mut ranked: Vec<(usize, f64, Option<Trend>)> = show
            .products
            .iter()
            .enumerate()
            .map(|(i, product)| {
                let trend = models
                    .ids
                    .get(product)
                    .and_then(|p| models.trending.trend(p, 0, now));
                let score = if live {
                    trend.map_or(f64::MIN, |t| t.z)
                } else {
                    1.0 - i as f64 / count
                };
                (i, score, trend)
            })
            .collect();
        if live {
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        }
        let items = ranked
            .into_iter()
            .map(|(i, score, trend)| {
                let place = format!("featured #{}", i + 1);
                let reason = match (live, trend) {
                    (true, Some(t)) => format!("live, by trending: {}", trend_reason(&t, window_s)),
                    (true, None) => format!("live, by trending: no events yet; {place}"),
                    (false, _) => format!(
                        "{place} in the show's order (the show is {}; re-ranked by trending \
                         while live)",
                        show.status.state.as_str()
                    ),
                };
                let score = if score == f64::MIN { 0.0 } else { score };
                self.product_item(&show.products[i], score, reason)
            })
            .collect();
        Ok(Answer {
            items,
            model: if live { "show-trending" } else { "show-order" },
            fallback: false,
        })
    }
}

/// A request as the answer cache keys it: who asks (see [`Who`]), its query string (or path)
/// as sent, and when (Unix seconds).
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    /// Who asks, as far as the answer depends on it.
    pub who: Who<'a>,
    /// The query string as sent (for a show's products, the path).
    pub raw: &'a str,
    /// Now, Unix seconds.
    pub now: f64,
}

/// The answers through the cache, as the JSON bytes the API sends.
impl Recommender {
    /// The cached answer to `route` asked as `asked`, if it is still valid: a hash lookup and
    /// a [`Bytes`] clone, nothing parsed or allocated.
    pub fn cached(&self, route: Route, asked: &Asked<'_>) -> Option<Bytes> {
        let key = Key {
            route,
            spelling: Spelling::Raw,
            who: asked.who,
            params: asked.raw,
        };
        self.answers
            .get(&key, &self.versions.stamp(), asked.now)
            .map(|cached| cached.body)
    }

    /// The answer to `route` under its `normalized` parameters for `shopper`: cached, or
    /// `compute`d (from the models at the versions stamped before) and kept; kept under its
    /// raw spelling too, so the next identical request is a [`Recommender::cached`] hit.
    fn through_cache(
        &self,
        route: Route,
        asked: &Asked<'_>,
        shopper: Who<'_>,
        normalized: &str,
        depends: Depends,
        compute: impl FnOnce() -> Result<Answer, RecommendError>,
    ) -> Result<Bytes, RecommendError> {
        let stamp = self.versions.stamp();
        let key = Key {
            route,
            spelling: Spelling::Normalized,
            who: shopper,
            params: normalized,
        };
        let answer = match self.answers.get(&key, &stamp, asked.now) {
            Some(cached) => cached,
            None => {
                let cached = Cached {
                    body: Bytes::from(compute()?.to_json().to_string()),
                    stamp,
                    depends,
                    at: asked.now,
                };
                self.answers.insert(&key, cached.clone());
                cached
            }
        };
        let body = answer.body.clone();
        let raw = Key {
            route,
            spelling: Spelling::Raw,
            who: asked.who,
            params: asked.raw,
        };
        self.answers.insert(&raw, answer);
        Ok(body)
    }

    /// [`Recommender::bought_together`] through the cache.
    pub fn bought_together_json(
        &self,
        asked: &Asked<'_>,
        products: &[String],
        limit: Option<usize>,
        threshold: Option<f64>,
    ) -> Result<Bytes, RecommendError> {
        let normalized = format!(
            "{products:?} {} {}",
            limit.unwrap_or(self.settings.default_limit),
            threshold.unwrap_or(0.0)
        );
        self.through_cache(
            Route::BoughtTogether,
            asked,
            Who::Anyone,
            &normalized,
            TOGETHER_DEPENDS,
            || self.bought_together(products, limit, threshold),
        )
    }

    /// [`Recommender::related`] through the cache.
    pub fn related_json(
        &self,
        asked: &Asked<'_>,
        product: &str,
        limit: Option<usize>,
    ) -> Result<Bytes, RecommendError> {
        let limit_or_default = limit.unwrap_or(self.settings.default_limit);
        let normalized = format!("{product:?} {limit_or_default}");
        self.through_cache(
            Route::Related,
            asked,
            Who::Anyone,
            &normalized,
            RELATED_DEPENDS,
            || self.related(product, limit),
        )
    }

    /// [`Recommender::trending`] through the cache (until the next rebuild of the rankings).
    pub fn trending_json(
        &self,
        asked: &Asked<'_>,
        limit: Option<usize>,
        category: Option<&str>,
        window: Option<f64>,
    ) -> Result<Bytes, RecommendError> {
        let normalized_category = category
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(normalize_category);
        let normalized = format!(
            "{normalized_category:?} {} {}",
            window.unwrap_or(self.settings.trending_windows_s[0]),
            limit.unwrap_or(self.settings.default_limit)
        );
        self.through_cache(
            Route::Trending,
            asked,
            Who::Anyone,
            &normalized,
            TRENDING_DEPENDS,
            || self.trending(limit, category, window),
        )
    }

    /// [`Recommender::for_you`] of `user` through the cache.
    pub fn for_you_json(
        &self,
        asked: &Asked<'_>,
        user: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Bytes, RecommendError> {
        let timed = self
            .for_you
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_none_or(|model| model.is_timed());
        // Until the first fit, trending answers; a time-aware model's answers move with the
        // days since the shopper's purchases: both move with time.
        let depends = if timed {
            Depends::timed()
        } else {
            FOR_YOU_DEPENDS
        };
        let normalized = format!("{}", limit.unwrap_or(self.settings.default_limit));
        self.through_cache(
            Route::ForYou,
            asked,
            Who::Shopper(user),
            &normalized,
            depends,
            || self.for_you(user, limit, asked.now),
        )
    }

    /// [`Recommender::upcoming_shows`] for `user` through the cache (at `asked.now`).
    pub fn upcoming_shows_json(
        &self,
        asked: &Asked<'_>,
        user: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Bytes, RecommendError> {
        let normalized = format!("{}", limit.unwrap_or(self.settings.default_limit));
        let now_ms = (asked.now * 1000.0) as i64;
        self.through_cache(
            Route::UpcomingShows,
            asked,
            Who::Shopper(user),
            &normalized,
            Depends::timed(),
            || self.upcoming_shows(user, limit, now_ms),
        )
    }

    /// [`Recommender::show_products`] of show `id` through the cache (at `asked.now`; the show's
    /// state and trending move with time).
    pub fn show_products_json(&self, asked: &Asked<'_>, id: &str) -> Result<Bytes, RecommendError> {
        self.through_cache(
            Route::ShowProducts,
            asked,
            Who::Anyone,
            id,
            Depends::timed(),
            || self.show_products(id, asked.now),
        )
    }

    /// The answer cache's counters and size.
    pub fn cache_stats(&self) -> super::cache::Stats {
        self.answers.stats()
    }

    /// Refreshes the related lists if co-views arrived since the last refresh: the cached
    /// related answers are computed again on their next ask (the background task calls it
    /// every `recommend.related_refresh_s`). Whether it did.
    pub fn refresh_related(&self) -> bool {
        let changed = self.coviewed.swap(false, Ordering::AcqRel);
        if changed {
            self.versions.bump(Part::Related);
        }
        changed
    }
}

/// Why a product trends (or not) in a window of `window_s`.
fn trend_reason(t: &Trend, window_s: f64) -> String {
    format!(
        "{:.1} weighted events in the last ~{} against {:.1} expected from its own baseline \
         (z {:.1})",
        t.recent,
        span(window_s),
        t.expected,
        t.z
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commerce::catalog::model::tests::sample;
    use crate::hls::directory::StreamDirectory;
    use crate::hls::packager::PackagerConfig;
    use crate::hls::registry::Registry;
    use crate::store::Store;

    const NOW: f64 = 1_900_000_000.0;

    /// A recommender over a catalog of `ids` (grocery > bakery), no shows, no events, with the
    /// shipped `[recommend]` changed by `tune`.
    async fn recommender(store: &Store, ids: &[&str], tune: fn(&mut Config)) -> Recommender {
        let defaults = crate::config::Config::load(None, std::iter::empty()).expect("defaults");
        let catalog = Catalog::open(store.pool().clone(), defaults.catalog)
            .await
            .expect("catalog");
        let products = ids
            .iter()
            .map(|id| CatalogProduct {
                title: format!("Bakery {id}"),
                category: Some("grocery > bakery".into()),
                ..sample(id)
            })
            .collect();
        catalog.upsert(products).await.expect("products");
        let registry = Arc::new(Registry::new(
            PackagerConfig {
                segment_target: Duration::from_secs(2),
                part_target: Duration::from_millis(500),
                window: Duration::from_secs(6),
            },
            Duration::from_secs(60),
        ));
        let shows = Shows::start(
            store.pool().clone(),
            defaults.shows,
            registry,
            Arc::new(StreamDirectory::new(["demo".into()])),
            Arc::new(crate::commerce::product::NoCatalog),
            Duration::from_secs(1),
        )
        .await
        .expect("shows");
        let mut settings = defaults.recommend;
        tune(&mut settings);
        let service = Recommender::new(settings, Arc::clone(&catalog), shows);
        service.describe(&catalog.observe(Arc::new(NoFeed)));
        service
    }

    /// Observes nothing (the tests describe the catalog once).
    struct NoFeed;

    impl CatalogObserver for NoFeed {
        fn upserted(&self, _: &[Arc<CatalogProduct>]) {}
        fn deleted(&self, _: &str) {}
    }

    fn event(kind: EventType, who: &str, product: &str, order: Option<&str>, t: f64) -> Event {
        Event {
            kind,
            user: Some(who.into()),
            visitor: None,
            show: "s1".into(),
            product: Some(product.into()),
            cue: None,
            order: order.map(Into::into),
            quantity: 1,
            price: None,
            ts_ms: (t * 1000.0) as i64,
        }
    }

    fn orders(service: &Recommender, lines: &[(&str, &[&str])], t: f64) {
        let events: Vec<Event> = lines
            .iter()
            .flat_map(|(order, products)| {
                products
                    .iter()
                    .map(move |p| event(EventType::Purchase, "u1", p, Some(order), t))
            })
            .collect();
        service.accepted(&events);
    }

    fn asked(raw: &str, now: f64) -> Asked<'_> {
        Asked {
            who: Who::Anyone,
            raw,
            now,
        }
    }

    fn text(bytes: &Bytes) -> &str {
        std::str::from_utf8(bytes).expect("utf-8")
    }

    /// The products of a trending answer.
    fn trending_ids(answer: &Answer) -> Vec<&str> {
        answer.items.iter().map(|i| i.id.as_str()).collect()
    }

    #[tokio::test]
    async fn trending_reads_the_last_rankings_and_computes_nothing() {
        let store = Store::in_memory().await.expect("store");
        let service = recommender(&store, &["a", "b", "c"], |_| {}).await;
        let clicks = |product: &str, n: usize, t: f64| {
            let events: Vec<Event> = (0..n)
                .map(|i| event(EventType::Click, &format!("v{i}"), product, None, t))
                .collect();
            service.accepted(&events);
        };
        clicks("a", 5, NOW - 10.0);
        // Recorded, but not ranked yet: queries read the rankings as last rebuilt.
        assert!(service.trending(None, None, None).unwrap().items.is_empty());
        assert!(service.refresh_trending(NOW) > 0);
        let first = service.trending(None, None, None).unwrap();
        assert_eq!(trending_ids(&first), ["a"]);
        clicks("b", 20, NOW);
        assert_eq!(service.trending(None, None, None).unwrap(), first);
        service.refresh_trending(NOW + 1.0);
        let second = service.trending(None, None, None).unwrap();
        assert_eq!(trending_ids(&second), ["b", "a"]);
        // Per category (and above it), per window, as the model ranks them at the rebuild.
        let grocery = service.trending(None, Some(" grocery "), None).unwrap();
        assert_eq!(grocery, second);
        let bakery = service.trending(Some(1), Some("grocery >bakery"), Some(900.0));
        assert_eq!(trending_ids(&bakery.unwrap()), ["b"]);
        let models = service.read();
        let b = models.ids.get("b").expect("b");
        let z = models.trending.trend(b, 0, NOW + 1.0).expect("trend").z;
        drop(models);
        assert_eq!(second.items[0].score, z, "the score at the rebuild");
        assert!(
            service
                .trending(None, Some("toys"), None)
                .unwrap()
                .items
                .is_empty()
        );
        // Still checked: the window and the limit.
        assert!(matches!(
            service.trending(None, None, Some(5.0)),
            Err(RecommendError::Invalid { field, .. }) if field == "window"
        ));
        assert!(matches!(
            service.trending(Some(0), None, None),
            Err(RecommendError::Invalid { field, .. }) if field == "limit"
        ));
    }

    #[tokio::test]
    async fn the_background_rebuild_ranks_an_event_within_a_second_and_not_on_a_query() {
        let store = Store::in_memory().await.expect("store");
        let Recommender {
            settings,
            catalog,
            shows,
            ..
        } = recommender(&store, &["a", "b"], |_| {}).await;
        let service = Recommender::start(store.pool(), settings, catalog, shows)
            .await
            .expect("started");
        let now = unix_now();
        let clicks: Vec<Event> = (0..5)
            .map(|i| event(EventType::Click, &format!("v{i}"), "b", None, now))
            .collect();
        service.accepted(&clicks);
        let before = service.rankings();
        let asked_at = std::time::Instant::now();
        let mut seen = None;
        while asked_at.elapsed() < Duration::from_secs(1) {
            if trending_ids(&service.trending(None, None, None).unwrap()) == ["b"] {
                seen = Some(asked_at.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(seen.is_some(), "the click was not ranked within 1 s");
        assert!(!Arc::ptr_eq(&before, &service.rankings()), "swapped in");
        // Without events, nothing is rebuilt: the rankings stay the same object.
        let settled = service.rankings();
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(Arc::ptr_eq(&settled, &service.rankings()));
        service.close().await;
    }

    #[tokio::test]
    async fn cached_answers_are_the_computed_ones_whatever_the_spelling() {
        let store = Store::in_memory().await.expect("store");
        let service = recommender(&store, &["a", "b", "c", "d"], |_| {}).await;
        orders(
            &service,
            &[
                ("o1", &["a", "b"]),
                ("o2", &["a", "b"]),
                ("o3", &["a", "c"]),
            ],
            NOW - 60.0,
        );
        let cart = ["a".to_string()];
        let computed = service.bought_together(&cart, None, None).unwrap();
        assert_eq!(computed.items.len(), 1, "{computed:?}");
        let computed = computed.to_json().to_string();
        // A miss computes and keeps it under both spellings.
        assert_eq!(
            service.cached(Route::BoughtTogether, &asked("product=a", NOW)),
            None
        );
        let first = service
            .bought_together_json(&asked("product=a", NOW), &cart, None, None)
            .unwrap();
        assert_eq!(text(&first), computed);
        // The same spelling: a hit, long after (nothing changed).
        let hit = service.cached(Route::BoughtTogether, &asked("product=a", NOW + 600.0));
        assert_eq!(hit.as_ref().map(text), Some(computed.as_str()));
        // Another spelling of the same query: the normalized entry answers.
        let misses = service.cache_stats().misses;
        let other = service
            .bought_together_json(&asked("limit=10&product=a", NOW), &cart, Some(10), None)
            .unwrap();
        assert_eq!(text(&other), computed);
        assert_eq!(
            service.cache_stats().misses,
            misses,
            "the normalized key hit"
        );
        // Every route: through the cache (a miss, then a hit) as computed.
        let related = service.related("a", Some(3)).unwrap().to_json().to_string();
        let through = service
            .related_json(&asked("product=a&limit=3", NOW), "a", Some(3))
            .unwrap();
        assert_eq!(text(&through), related);
        let hit = service.cached(Route::Related, &asked("product=a&limit=3", NOW + 1.0));
        assert_eq!(hit.as_ref().map(text), Some(related.as_str()));
        let trending = service.trending(None, None, None).unwrap();
        let through = service
            .trending_json(&asked("", NOW), None, None, None)
            .unwrap();
        assert_eq!(text(&through), trending.to_json().to_string());
        let for_you = service.for_you(None, None, NOW).unwrap();
        let through = service.for_you_json(&asked("", NOW), None, None).unwrap();
        assert_eq!(text(&through), for_you.to_json().to_string());
        let upcoming = service
            .upcoming_shows(None, None, (NOW * 1000.0) as i64)
            .unwrap();
        let through = service
            .upcoming_shows_json(&asked("", NOW), None, None)
            .unwrap();
        assert_eq!(text(&through), upcoming.to_json().to_string());
        // Trending answers stay until the rankings are rebuilt, then are stale at once.
        assert!(
            service
                .cached(Route::Trending, &asked("", NOW + 60.0))
                .is_some()
        );
        service.refresh_trending(NOW);
        assert!(
            service
                .cached(Route::Trending, &asked("", NOW + 0.1))
                .is_none()
        );
        // Refused queries answer their error every time and are not kept.
        let entries = service.cache_stats().entries;
        for _ in 0..2 {
            let unknown = service.related_json(&asked("product=zz", NOW), "zz", None);
            assert!(
                matches!(unknown, Err(RecommendError::Unknown { field, .. }) if field == "product")
            );
            let limit = service.related_json(&asked("product=a&limit=0", NOW), "a", Some(0));
            assert!(
                matches!(limit, Err(RecommendError::Invalid { field, .. }) if field == "limit")
            );
        }
        assert!(
            service
                .cached(Route::Related, &asked("product=zz", NOW))
                .is_none()
        );
        assert_eq!(service.cache_stats().entries, entries);
    }

    #[tokio::test]
    async fn an_order_changes_bought_together_at_once_a_related_list_at_its_refresh() {
        let store = Store::in_memory().await.expect("store");
        let service = recommender(&store, &["a", "b", "c", "d"], |_| {}).await;
        orders(
            &service,
            &[("o1", &["a", "b"]), ("o2", &["a", "b"])],
            NOW - 60.0,
        );
        let cart = ["a".to_string()];
        let before = service
            .bought_together_json(&asked("product=a", NOW), &cart, None, None)
            .unwrap();
        let related_before = service
            .related_json(&asked("product=c", NOW), "c", None)
            .unwrap();
        // c bought with a three times, and c and d viewed together.
        orders(
            &service,
            &[
                ("o3", &["a", "c"]),
                ("o4", &["a", "c"]),
                ("o5", &["a", "c"]),
            ],
            NOW,
        );
        service.accepted(&[
            event(EventType::Click, "v1", "c", None, NOW),
            event(EventType::Click, "v1", "d", None, NOW + 1.0),
        ]);
        // Within the lag the cached answer may still answer; past it, the order shows.
        let later = NOW + 0.3;
        let expected = service.bought_together(&cart, None, None).unwrap();
        assert_eq!(expected.items[0].id, "c", "{expected:?}");
        let after = service
            .cached(Route::BoughtTogether, &asked("product=a", later))
            .map_or_else(
                || service.bought_together_json(&asked("product=a", later), &cart, None, None),
                Ok,
            )
            .unwrap();
        assert_ne!(after, before);
        assert_eq!(text(&after), expected.to_json().to_string());
        // The related list of c stays cached (the co-view waits for the refresh)...
        let related_now = service.related("c", None).unwrap().to_json().to_string();
        assert_ne!(text(&related_before), related_now, "the click changed it");
        let cached = service.cached(Route::Related, &asked("product=c", NOW + 5.0));
        assert_eq!(cached.as_ref(), Some(&related_before));
        // ...which computes it again.
        assert!(service.refresh_related());
        assert!(!service.refresh_related(), "nothing new since");
        assert_eq!(
            service.cached(Route::Related, &asked("product=c", NOW + 5.0)),
            None
        );
        let refreshed = service
            .related_json(&asked("product=c", NOW + 5.0), "c", None)
            .unwrap();
        assert_eq!(text(&refreshed), related_now);
        assert!(related_now.contains("viewed together"), "{related_now}");
    }

    #[tokio::test]
    async fn for_you_puts_weekly_milk_first_when_a_week_has_passed_not_the_day_after() {
        let store = Store::in_memory().await.expect("store");
        let service = recommender(&store, &["milk", "tea"], |_| {}).await;
        // Four shoppers buy milk every 7 days (days 0, 7, … 28) and tea two days after it
        // (days 2, 9, … 23): the purchase events carry the time, one order per day.
        let day = |d: f64| NOW + d * 86_400.0;
        let mut events = Vec::new();
        for user in ["u1", "u2", "u3", "u4"] {
            for week in 0..5 {
                let milk = f64::from(week * 7);
                let order = format!("{user}-milk-{week}");
                events.push(event(
                    EventType::Purchase,
                    user,
                    "milk",
                    Some(&order),
                    day(milk),
                ));
                if week < 4 {
                    let order = format!("{user}-tea-{week}");
                    let tea = day(milk + 2.0);
                    events.push(event(EventType::Purchase, user, "tea", Some(&order), tea));
                }
            }
        }
        service.accepted(&events);
        // The service's fit, as its refit loop makes it.
        let model = ForYou::fit(&service.baskets(), &ForYouParams::default());
        assert!(
            model.is_timed(),
            "the shipped parameters read the query's time"
        );
        *service.for_you.write().unwrap() = Some(Arc::new(model));
        service.versions.bump(Part::ForYou);
        let first = |now: f64| {
            let answer = service.for_you(Some("u1"), Some(2), now).unwrap();
            assert!(!answer.fallback);
            answer.items[0].id.clone()
        };
        // u1 last bought milk on day 28: 7 days later it is due, first.
        assert_eq!(first(day(35.0)), "milk");
        // The day after, it is not: tea, bought 6 days before, is.
        assert_eq!(first(day(29.0)), "tea");
        // Through the answer cache at the request's time: a day-old answer is not served.
        let at = |now: f64| {
            let body = service
                .for_you_json(&asked("user=u1&limit=2", now), Some("u1"), Some(2))
                .unwrap();
            let json: Value = serde_json::from_slice(&body).unwrap();
            json["items"][0]["product_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(at(day(29.0)), "tea");
        assert_eq!(at(day(35.0)), "milk");
    }

    #[tokio::test]
    async fn the_cache_stays_within_its_cap() {
        let store = Store::in_memory().await.expect("store");
        let ids: Vec<String> = (0..300).map(|i| format!("p{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let cap = 64 * 1024;
        let service = recommender(&store, &refs, |c| c.answer_cache_bytes = 64 * 1024).await;
        let mut kept = 0;
        for id in &ids {
            let raw = format!("product={id}");
            let body = service.related_json(&asked(&raw, NOW), id, None).unwrap();
            assert!(body.len() > 1000, "a full answer");
            kept += body.len();
            let stats = service.cache_stats();
            assert!(stats.bytes <= cap, "{stats:?}");
        }
        let stats = service.cache_stats();
        assert!(kept > 4 * cap, "asked for more than fits");
        assert!(stats.evictions > 100, "{stats:?}");
        assert!(stats.entries > 10, "{stats:?}");
        // The last asked are kept, the first went.
        let last = format!("product={}", ids[299]);
        assert!(service.cached(Route::Related, &asked(&last, NOW)).is_some());
        assert!(
            service
                .cached(Route::Related, &asked("product=p0", NOW))
                .is_none()
        );
    }
}
