//! The cue service: places requested cues on a live session's media timeline, persists them
//! before they become visible, cuts them short, keeps rundowns and fires them from the media
//! timeline. The HTTP layer (`crate::http::cues`) is a thin shell around it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sqlx::AnyPool;
use tokio::sync::mpsc;

use super::Config;
use super::model::{
    At, Cue, CueError, CueKind, CueRequest, CueSpec, Source, check_seconds, ns_to_s,
};
use super::rate::TokenBucket;
use super::rundown::{Rundown, ScheduledCue};
use super::store::{self, Found, StoreError};
use super::track::{self, CueTrack};
use crate::commerce::ProductLookup;
use crate::hls::registry::Registry;
use crate::hls::stream::HlsStream;
use crate::hls::timed::{StreamObserver, TimedMetadata};
use crate::webhooks::{EventKind, Webhooks};

/// Longest rundown offset: 7 days.
pub const MAX_OFFSET_S: f64 = 7.0 * 86_400.0;

/// Why a cue operation failed; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// 400 / 413 from validation.
    #[error(transparent)]
    Cue(#[from] CueError),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409: the operation does not apply in the cue's state.
    #[error("{0}")]
    Conflict(String),
    /// 429: over the per-stream rate.
    #[error("more than {rate} cue requests per second for stream `{stream}`")]
    RateLimited {
        /// Stream.
        stream: String,
        /// The configured rate.
        rate: f64,
        /// When to retry.
        retry_after: Duration,
    },
    /// 503: live, but no frame ingested yet.
    #[error("stream `{0}` has not ingested any media yet")]
    NoMedia(String),
    /// 500.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A rundown item as uploaded.
#[derive(Debug, Clone)]
pub struct RundownItem {
    /// Offset from session start, seconds.
    pub offset_s: f64,
    /// The cue.
    pub spec: CueSpec,
}

/// Shared state of the cue feature.
pub struct CueService {
    pool: AnyPool,
    /// Settings.
    pub settings: Config,
    registry: Arc<Registry>,
    /// The catalog, which fills a product given by id only.
    products: Arc<dyn ProductLookup>,
    /// Rate limiters by stream.
    buckets: Mutex<HashMap<String, TokenBucket>>,
    /// Unfired rundown items by stream.
    rundowns: Mutex<HashMap<String, Arc<Rundown>>>,
    /// Fired rundown cues to persist (from the ingest thread).
    fired: Mutex<Option<mpsc::UnboundedSender<Cue>>>,
    /// The persisting task.
    persister: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Where cues going live are announced (`cue.fired`), once set.
    webhooks: OnceLock<Arc<Webhooks>>,
}

impl CueService {
    /// Loads unfired rundown items and starts the task that persists fired ones; `products`
    /// fills the product of a cue that gives only its catalog id.
    pub async fn start(
        pool: AnyPool,
        settings: Config,
        registry: Arc<Registry>,
        products: Arc<dyn ProductLookup>,
    ) -> Result<Arc<CueService>, StoreError> {
        let mut rundowns: HashMap<String, Arc<Rundown>> = HashMap::new();
        let mut by_stream: HashMap<String, Vec<ScheduledCue>> = HashMap::new();
        for (stream, item) in store::all_scheduled(&pool).await? {
            by_stream.entry(stream).or_default().push(item);
        }
        for (stream, items) in by_stream {
            let rundown = Rundown::default();
            rundown.set(items, true);
            rundowns.insert(stream, Arc::new(rundown));
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<Cue>();
        let task_pool = pool.clone();
        let persister = tokio::spawn(async move {
            while let Some(cue) = rx.recv().await {
                if let Err(err) = store::mark_fired(&task_pool, &cue).await {
                    tracing::error!(cue = %cue.id, error = %err, "rundown cue not persisted");
                }
            }
        });
        let service = Arc::new(CueService {
            pool,
            settings,
            registry: Arc::clone(&registry),
            products,
            buckets: Mutex::new(HashMap::new()),
            rundowns: Mutex::new(rundowns),
            fired: Mutex::new(Some(tx)),
            persister: Mutex::new(Some(persister)),
            webhooks: OnceLock::new(),
        });
        // A weak reference: the registry must not keep the service (and its registry) alive.
        registry.set_observer(Arc::new(WeakObserver(Arc::downgrade(&service))));
        Ok(service)
    }

    /// Announces every cue that goes live to `webhooks` from now on (once).
    pub fn set_webhooks(&self, webhooks: Arc<Webhooks>) {
        let _ = self.webhooks.set(webhooks);
    }

    /// `cue.fired` for `cue`, when webhooks are set.
    fn announce(&self, cue: &Cue) {
        if let Some(webhooks) = self.webhooks.get() {
            webhooks.emit(
                EventKind::CueFired,
                serde_json::json!({
                    "cue": cue.id,
                    "stream": cue.stream,
                    "session": cue.session,
                    "kind": cue.spec.kind.as_str(),
                    "source": cue.source.as_str(),
                    "media_time_s": ns_to_s(cue.start_ns),
                    "start_date": cue.start_date.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                }),
            );
        }
    }

    /// Persists what is pending and stops the persisting task (shutdown).
    pub async fn close(&self) {
        drop(self.fired.lock().unwrap_or_else(|e| e.into_inner()).take());
        let task = self
            .persister
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    fn rundown(&self, stream: &str) -> Arc<Rundown> {
        let mut map = self.rundowns.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(map.entry(stream.to_string()).or_default())
    }

    fn live_stream(&self, name: &str) -> Option<Arc<HlsStream>> {
        self.registry.get(name).filter(|s| !s.is_ended())
    }

    /// Takes a rate token for `stream`.
    fn take_token(&self, stream: &str) -> Result<(), ServiceError> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets.entry(stream.to_string()).or_insert_with(|| {
            TokenBucket::new(
                self.settings.rate_per_s,
                f64::from(self.settings.rate_burst.max(1)),
                now,
            )
        });
        bucket
            .take(now)
            .map_err(|retry_after| ServiceError::RateLimited {
                stream: stream.to_string(),
                rate: self.settings.rate_per_s,
                retry_after,
            })
    }

    fn refund(&self, stream: &str) {
        if let Some(bucket) = self
            .buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(stream)
        {
            bucket.refund();
        }
    }

    /// Completes the request's product from the catalog: one given by its id only is filled
    /// in (an unknown id is an error on `product.id`), fields given win.
    pub fn fill_product(&self, request: &mut CueRequest) -> Result<(), CueError> {
        if let Some(product) = request.product.take() {
            request.product = Some(product.resolve(self.products.as_ref(), "product")?);
        }
        Ok(())
    }

    /// Places a validated request on `stream`'s live session, persists it, then publishes it
    /// (playlists, emsg). Nothing is stored or shown on any error.
    pub async fn post(&self, stream: &str, mut request: CueRequest) -> Result<Cue, ServiceError> {
        let at = request.at.clone().unwrap_or_default();
        self.fill_product(&mut request)?;
        let spec = request.validate(self.settings.max_payload_bytes)?;
        if let At::MediaTime { media_time_s } = at {
            check_seconds("at.media_time_s", media_time_s, false, MAX_OFFSET_S)?;
        }
        let session = self
            .live_stream(stream)
            .ok_or_else(|| ServiceError::NotFound(format!("stream `{stream}` is not live")))?;
        let now_ns = session
            .media_now_ns()
            .ok_or_else(|| ServiceError::NoMedia(stream.to_string()))?;
        let start_ns = match at {
            At::Now => now_ns,
            At::MediaTime { media_time_s } => (media_time_s * 1e9).round() as u64,
            At::WallClock { wall_clock } => {
                session
                    .media_time_at(wall_clock)
                    .ok_or_else(|| CueError::Invalid {
                        field: "at.wall_clock".into(),
                        reason: "is before the first frame of the live session".into(),
                    })?
            }
        };
        self.take_token(stream)?;
        let mut cue = Cue {
            seq: 0,
            id: store::new_id(),
            stream: stream.to_string(),
            session: session.session.clone(),
            spec,
            start_ns,
            start_date: session.program_date_time(start_ns),
            ended_ns: None,
            source: Source::Api,
            published_ns: now_ns,
        };
        match store::insert_live(&self.pool, &cue).await {
            Ok(seq) => cue.seq = seq,
            Err(err) => {
                self.refund(stream);
                return Err(err.into());
            }
        }
        // The latest ingested frame may have moved on while the row was written.
        cue.published_ns = session.media_now_ns().unwrap_or(now_ns);
        track::add_to_stream(&session, cue.clone());
        self.announce(&cue);
        tracing::info!(stream, cue = %cue.id, kind = cue.spec.kind.as_str(), media_time_s = cue.start_ns as f64 / 1e9, "cue posted");
        Ok(cue)
    }

    /// A stream's cues (every session), oldest first, with the live state where the session
    /// is still in memory.
    pub async fn list(&self, stream: &str) -> Result<Vec<Cue>, ServiceError> {
        Ok(store::list_live(&self.pool, stream).await?)
    }

    /// Ends cue `id` now (or removes a rundown item that has not fired).
    pub async fn end(&self, stream: &str, id: &str) -> Result<Option<Cue>, ServiceError> {
        let not_found = || ServiceError::NotFound(format!("stream `{stream}` has no cue `{id}`"));
        match store::find(&self.pool, stream, id)
            .await?
            .ok_or_else(not_found)?
        {
            Found::Scheduled(seq) => {
                store::delete_scheduled(&self.pool, seq).await?;
                self.rundown(stream).remove(id);
                Ok(None)
            }
            Found::Live(cue) => {
                if cue.spec.end_on_next {
                    return Err(ServiceError::Conflict(format!(
                        "cue `{id}` ends at the next cue of kind {} (END-ON-NEXT); post one to end it",
                        cue.spec.kind.as_str()
                    )));
                }
                if cue.spec.kind == CueKind::Clear {
                    return Ok(Some(*cue));
                }
                let session = self
                    .live_stream(stream)
                    .filter(|s| s.session == cue.session)
                    .ok_or_else(|| {
                        ServiceError::Conflict(format!(
                            "cue `{id}` belongs to session {} which is no longer live",
                            cue.session
                        ))
                    })?;
                let now = session.media_now_ns().unwrap_or(cue.start_ns);
                if cue.end_ns().is_some_and(|end| end <= now) {
                    return Ok(Some(*cue));
                }
                let at = now.max(cue.start_ns);
                store::set_ended(&self.pool, cue.seq, at).await?;
                let ended = track::end_in_stream(&session, id, at).unwrap_or(Cue {
                    ended_ns: Some(at),
                    ..*cue
                });
                tracing::info!(stream, cue = id, "cue ended");
                Ok(Some(ended))
            }
        }
    }

    /// Stores rundown items (replacing the unfired ones with `replace`) and schedules them.
    /// Offsets already passed on a live session are refused.
    pub async fn schedule(
        &self,
        stream: &str,
        items: Vec<RundownItem>,
        replace: bool,
    ) -> Result<Vec<ScheduledCue>, ServiceError> {
        if let Some(now) = self.live_stream(stream).and_then(|s| s.media_now_ns()) {
            for (index, item) in items.iter().enumerate() {
                if (item.offset_s * 1e9) < now as f64 {
                    return Err(CueError::Invalid {
                        field: format!("cues[{index}].offset_s"),
                        reason: format!(
                            "{} s is already past on the live session (now {:.3} s)",
                            item.offset_s,
                            now as f64 / 1e9
                        ),
                    }
                    .into());
                }
            }
        }
        let rows = items
            .into_iter()
            .map(|i| (store::new_id(), (i.offset_s * 1e9).round() as u64, i.spec))
            .collect();
        let scheduled = store::schedule(&self.pool, stream, rows, replace).await?;
        self.rundown(stream).set(scheduled.clone(), replace);
        Ok(self.rundown(stream).items())
    }

    /// Unfired rundown items of `stream`.
    pub fn rundown_items(&self, stream: &str) -> Vec<ScheduledCue> {
        self.rundown(stream).items()
    }
}

/// The service as every stream's observer (a cue track per session; rundowns fire from the
/// media timeline), without an ownership cycle.
struct WeakObserver(std::sync::Weak<CueService>);

impl StreamObserver for WeakObserver {
    fn timed_metadata(&self, _name: &str) -> Option<Arc<dyn TimedMetadata>> {
        Some(Arc::new(CueTrack::default()))
    }

    fn on_media(&self, stream: &HlsStream, now_ns: u64) {
        if let Some(service) = self.0.upgrade() {
            service.fire_due(stream, now_ns);
        }
    }
}

impl CueService {
    /// Fires the rundown items of `stream` whose offset the media timeline reached.
    fn fire_due(&self, stream: &HlsStream, now_ns: u64) {
        let rundown = {
            let map = self.rundowns.lock().unwrap_or_else(|e| e.into_inner());
            match map.get(&stream.name) {
                Some(r) => Arc::clone(r),
                None => return,
            }
        };
        for item in rundown.take_due(now_ns) {
            let cue = Cue {
                seq: item.seq,
                id: item.id,
                stream: stream.name.clone(),
                session: stream.session.clone(),
                spec: item.spec,
                start_ns: item.offset_ns,
                start_date: stream.program_date_time(item.offset_ns),
                ended_ns: None,
                source: Source::Rundown,
                published_ns: now_ns,
            };
            tracing::info!(stream = %stream.name, cue = %cue.id, "rundown cue fired");
            if let Some(tx) = self
                .fired
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
            {
                let _ = tx.send(cue.clone());
            }
            self.announce(&cue);
            track::add_to_stream(stream, cue);
        }
    }
}
