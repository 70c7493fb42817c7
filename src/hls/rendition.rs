//! One rendition of a stream: its [`Packager`] behind a lock, fed from the pipeline's
//! streaming thread and read by the HTTP handlers, the playlists rendered once per change, the
//! in-band carriage of the stream's timed metadata, and the part alignment of transcoded rungs.
//!
//! # Lock order
//!
//! A thread may take a lock while holding the ones listed before it, never the other way round
//! (so two threads can never wait on each other):
//!
//! 1. `aligner` → the *reference* rendition's `part_ends` ([`Rendition::push_chunk_presenting`]:
//!    a transcoded rung reads where the passthrough's parts ended while it regroups its frames;
//!    the reference never takes a rung's lock);
//! 2. `carriage` → `packager` (`push_part`: a chunk gets its in-band metadata and is
//!    published as one step, so a chunk the packager drops hands its metadata back before the
//!    next chunk is carried);
//!
//! `recording` is a leaf taken under `packager` (a completed segment is handed to the
//! recording in the same step that completes it; handing over never blocks).
//!
//! 3. `rendering` → `packager` (this rendition's, then each other rendition's in turn for the
//!    rendition reports; never two packagers at once): one rendering per playlist version.
//!
//! `info`, `part_ends` (own), `rendered` and `packager` on its own are taken alone and released
//! before any other lock of the rendition; playlist rendering (under `rendering`) reads the
//! packagers, releases them, then fills the render cache. Across renditions, only the rule of 1. applies; the stream's
//! locks ([`super::stream`]) are never taken under a rendition's. The timed metadata's own
//! locks (a cue track's list) are leaves: taken under `carriage` (carrying) and under `packager`
//! (rendering DATERANGEs), never holding another.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bytes::Bytes;

use super::align::{PartAligner, PartEnds};
use super::hold::Holds;
use super::packager::{ChunkOutcome, CmafChunk, Packager, Position, SKIP_BOUNDARY_TARGETS};
use super::playlist::RenditionReport;
use super::recording::Feed;
use super::timed::{Delta, InBandCarrier, MediaNow, TimedMetadata, View};

/// What a rendition carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenditionKind {
    /// A video track (a variant of the multivariant playlist).
    Video,
    /// An audio track (an EXT-X-MEDIA TYPE=AUDIO rendition shared by all variants).
    Audio,
}

/// Codec facts of a rendition, for the multivariant playlist.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackInfo {
    /// RFC 6381 codec string, e.g. `avc1.64001f` or `mp4a.40.2`.
    pub codecs: Option<String>,
    /// Video width × height.
    pub resolution: Option<(u32, u32)>,
    /// Video frames per second.
    pub frame_rate: Option<f64>,
    /// Audio channel count.
    pub channels: Option<u32>,
}

/// The forms in which a media playlist is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistForm {
    /// RFC 8216 playlist: complete segments only.
    Plain,
    /// LL-HLS: parts, preload hint, server control, rendition reports.
    LowLatency,
    /// LL-HLS Playlist Delta Update (`_HLS_skip=YES`): old segments replaced by EXT-X-SKIP.
    Delta,
    /// Delta update that also skips old EXT-X-DATERANGEs (`_HLS_skip=v2`, CAN-SKIP-DATERANGES).
    DeltaV2,
}

impl PlaylistForm {
    /// Slot of the form in per-form caches (0 to 3).
    pub fn index(self) -> usize {
        match self {
            PlaylistForm::Plain => 0,
            PlaylistForm::LowLatency => 1,
            PlaylistForm::Delta => 2,
            PlaylistForm::DeltaV2 => 3,
        }
    }
}

/// Rendered playlists of one packager state, so that the thousands of requests released by
/// one new part share one rendering.
#[derive(Default)]
struct RenderCache {
    /// The update counter the texts belong to.
    version: u64,
    /// Text per [`PlaylistForm`].
    texts: [Option<Bytes>; 4],
}

/// What a rendition publishes to its readers after every change.
#[derive(Debug, Clone, Copy, Default)]
pub struct Published {
    /// Bumped on every change (keys the playlist render cache).
    pub version: u64,
    /// The playlist's end, so held requests test their directive without the packager lock.
    pub position: Position,
}

/// One rendition of a stream.
pub struct Rendition {
    /// Name in URLs (`/hls/{stream}/{name}/playlist.m3u8`).
    pub name: String,
    /// Video or audio.
    pub kind: RenditionKind,
    /// The packager, fed from the pipeline's streaming thread, read by HTTP handlers.
    packager: Mutex<Packager>,
    /// Codec facts from the first init segment.
    info: Mutex<TrackInfo>,
    /// Published on every change, so readers can wait for new parts and segments.
    updates: tokio::sync::watch::Sender<Published>,
    /// The requests held for a part or segment, grouped by target: released by [`Self::publish`].
    holds: Arc<Holds>,
    /// Playlists rendered for the current update counter (read-locked on the hot path).
    rendered: RwLock<RenderCache>,
    /// Held while a playlist is rendered, so each version and form is rendered once however
    /// many requests miss the cache together. Lock order: before `packager` (and before other
    /// renditions' `packager`, read for the rendition reports).
    rendering: Mutex<()>,
    /// Playlists rendered so far.
    renders: AtomicU64,
    /// Set once the first init segment is in the packager.
    initialized: AtomicBool,
    /// "Now" on the stream's media timeline (shared with the stream).
    media_now: Arc<MediaNow>,
    /// The session's timed metadata (EXT-X-DATERANGE), if any.
    metadata: Option<Arc<dyn TimedMetadata>>,
    /// Its in-band carriage in this rendition's chunks (emsg). Lock order: before `packager`.
    carriage: Mutex<Option<Box<dyn InBandCarrier>>>,
    /// Where this rendition's latest parts end, for renditions aligned to it.
    part_ends: Mutex<PartEnds>,
    /// Set on transcoded renditions: regroups their per-frame chunks into parts ending where
    /// the reference rendition's parts end (see [`super::align`]). Lock order: before the
    /// reference's `part_ends`.
    aligner: Mutex<Option<(PartAligner, Option<Arc<Rendition>>)>>,
    /// The session's recording of this rendition, if recorded. Lock order: after `packager`.
    recording: Mutex<Option<Feed>>,
}

impl Rendition {
    /// A rendition without media around `packager` (a new one, or one continuing another
    /// node's numbering); `metadata` (the session's) is listed in its playlists and carried in
    /// its chunks.
    pub(super) fn with_packager(
        name: &str,
        kind: RenditionKind,
        packager: Packager,
        media_now: Arc<MediaNow>,
        metadata: Option<Arc<dyn TimedMetadata>>,
    ) -> Rendition {
        let carriage = metadata.clone().map(TimedMetadata::carrier);
        Rendition {
            name: name.to_string(),
            kind,
            packager: Mutex::new(packager),
            info: Mutex::new(TrackInfo::default()),
            updates: tokio::sync::watch::Sender::new(Published::default()),
            holds: Arc::new(Holds::new()),
            rendered: RwLock::new(RenderCache::default()),
            rendering: Mutex::new(()),
            renders: AtomicU64::new(0),
            initialized: AtomicBool::new(false),
            media_now,
            metadata,
            carriage: Mutex::new(carriage),
            part_ends: Mutex::new(PartEnds::default()),
            aligner: Mutex::new(None),
            recording: Mutex::new(None),
        }
    }

    /// From now on every init version and complete segment of this rendition is handed to
    /// `feed` (the session's recording).
    pub fn record_into(&self, feed: Feed) {
        *self.recording.lock().unwrap_or_else(|e| e.into_inner()) = Some(feed);
    }

    /// Hands what `packager` (this rendition's, locked) completed to the recording.
    fn record(&self, packager: &Packager, info: Option<&TrackInfo>) {
        let mut recording = self.recording.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(feed) = recording.as_mut() {
            if let Some(info) = info {
                feed.set_info(info);
            }
            feed.take(packager);
        }
    }

    /// From now on this rendition is fed one frame per chunk and gathers them into parts that
    /// end where `reference`'s parts end (same frames, same timestamps: a transcoded rung and
    /// the passthrough it was decoded from), or at the part target without a reference.
    pub fn gather_parts(&self, reference: Option<&Arc<Rendition>>) {
        let part_target = self.packager().config().part_target;
        let aligner = PartAligner::new(u64::try_from(part_target.as_nanos()).unwrap_or(u64::MAX));
        *self.aligner.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((aligner, reference.cloned()));
    }

    /// The media playlist text in `form`, rendered once per packager update and shared: every
    /// request and every released waiter of one version gets a clone of the same [`Bytes`].
    /// `reports` supplies the EXT-X-RENDITION-REPORTs (LL forms), called only on a miss.
    pub fn playlist(
        &self,
        form: PlaylistForm,
        reports: impl FnOnce() -> Vec<RenditionReport>,
    ) -> Bytes {
        // Read the counter before the packager: the text is then at least as new as the key.
        let version = self.updates.borrow().version;
        if let Some(text) = self.cached(version, form) {
            return text;
        }
        // One rendering per version and form: the waiters a publication releases all miss at
        // once; the first renders, the others find its text here.
        let _rendering = self.rendering.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(text) = self.cached(version, form) {
            return text;
        }
        let text = self.render(form, reports);
        let mut cache = self.rendered.write().unwrap_or_else(|e| e.into_inner());
        if cache.version != version {
            *cache = RenderCache {
                version,
                texts: Default::default(),
            };
        }
        cache.texts[form.index()] = Some(text.clone());
        text
    }

    /// The text of `form` rendered for `version`, if it is.
    fn cached(&self, version: u64, form: PlaylistForm) -> Option<Bytes> {
        let cache = self.rendered.read().unwrap_or_else(|e| e.into_inner());
        if cache.version == version {
            cache.texts[form.index()].clone()
        } else {
            None
        }
    }

    /// Playlists rendered so far (every form; each version and form is rendered once).
    pub fn renders(&self) -> u64 {
        self.renders.load(Ordering::Relaxed)
    }

    /// Renders the media playlist in `form` from the packager's current state.
    fn render(&self, form: PlaylistForm, reports: impl FnOnce() -> Vec<RenditionReport>) -> Bytes {
        self.renders.fetch_add(1, Ordering::Relaxed);
        let reports = match form {
            PlaylistForm::Plain => Vec::new(),
            _ => reports(),
        };
        let packager = self.packager();
        let mut playlist = packager.media_playlist(form != PlaylistForm::Plain);
        if let Some(control) = playlist.server_control.as_mut() {
            control.can_skip_dateranges = control.can_skip_until.is_some();
        }
        let window_start = playlist.segments.first().and_then(|s| s.program_date_time);
        let skip_until =
            std::time::Duration::from_secs(packager.target_duration()) * SKIP_BOUNDARY_TARGETS;
        let delta = matches!(form, PlaylistForm::Delta | PlaylistForm::DeltaV2);
        if delta {
            playlist.skip_segments(skip_until);
        }
        if let Some(metadata) = &self.metadata {
            let view = View {
                window_start,
                now_ns: self.media_now.now_ns().unwrap_or(0),
                ended: packager.is_ended(),
                delta: delta.then(|| Delta {
                    boundary: playlist
                        .segments
                        .first()
                        .and_then(|s| s.program_date_time)
                        .or_else(|| playlist.partial.as_ref().and_then(|p| p.program_date_time)),
                    skip_until,
                    skip_dateranges: form == PlaylistForm::DeltaV2 && playlist.skip.is_some(),
                }),
            };
            let rendered = metadata.render(&view);
            playlist.dateranges = rendered.dateranges;
            if let Some(skip) = playlist.skip.as_mut() {
                skip.recently_removed_dateranges = rendered.recently_removed;
            }
        }
        drop(packager);
        playlist.rendition_reports = reports;
        Bytes::from(playlist.to_string())
    }

    /// Whether the rendition has its init segment (it is then never without one): playlists
    /// can be served.
    pub fn is_initialized(&self) -> bool {
        self.initialized.load(Ordering::Acquire)
    }

    /// The packager, locked. A poisoned lock (a panic elsewhere) is recovered: the packager's
    /// state is consistent after every call.
    pub fn packager(&self) -> MutexGuard<'_, Packager> {
        self.packager.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Codec facts.
    pub fn info(&self) -> TrackInfo {
        self.info.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A new init segment from the muxer.
    pub fn push_init(&self, init: Bytes, info: TrackInfo) {
        {
            let mut current = self.info.lock().unwrap_or_else(|e| e.into_inner());
            if info.codecs.is_some() {
                *current = info.clone();
            }
        }
        if let Some(carrier) = self.carriage().as_mut() {
            carrier.handle_init(&init);
        }
        let position = {
            let mut packager = self.packager();
            packager.handle_init(init);
            self.record(&packager, Some(&info));
            if packager.init().is_some() {
                self.initialized.store(true, Ordering::Release);
            }
            packager.position()
        };
        self.publish(position);
    }

    /// A new CMAF chunk from the muxer. Cues starting before the chunk's end that this
    /// rendition has not carried yet ride in it as emsg boxes before its `moof` (so the part
    /// and its segment hold the same bytes).
    pub fn push_chunk(&self, chunk: CmafChunk) {
        let presents = chunk.pts..chunk.pts.saturating_add(chunk.duration);
        self.push_chunk_presenting(chunk, presents);
    }

    /// [`Self::push_chunk`] for a chunk whose samples are presented over `presents` (ns): with
    /// B-frames that is not `pts` (its first sample in decode order) plus its decode-time
    /// duration.
    pub fn push_chunk_presenting(&self, chunk: CmafChunk, presents: Range<u64>) {
        let parts = {
            let mut aligner = self.aligner.lock().unwrap_or_else(|e| e.into_inner());
            match aligner.as_mut() {
                Some((aligner, Some(reference))) => {
                    // Lock order: aligner → the reference's part ends.
                    let ends = reference
                        .part_ends
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    aligner.push(chunk, presents, &ends)
                }
                Some((aligner, None)) => aligner.push(chunk, presents, &PartEnds::default()),
                None => vec![(chunk, presents)],
            }
        };
        for (part, presents) in parts {
            self.push_part(part, presents);
        }
    }

    /// The part gathered by the aligner so far goes out (the muxer drained).
    fn flush_aligned(&self) {
        let part = self
            .aligner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .and_then(|(aligner, _)| aligner.flush());
        if let Some((part, presents)) = part {
            self.push_part(part, presents);
        }
    }

    /// Publishes a part presenting `presents` (ns).
    fn push_part(&self, chunk: CmafChunk, presents: Range<u64>) {
        self.part_ends
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(presents);
        let position = {
            // Lock order: carriage → packager (the chunk is carried and published as one step).
            let mut carriage = self.carriage();
            let chunk = match carriage.as_mut() {
                Some(carrier) => carrier.handle_chunk(chunk),
                None => chunk,
            };
            let mut packager = self.packager();
            if let (ChunkOutcome::Dropped(_), Some(carrier)) =
                (packager.handle_chunk(chunk), carriage.as_mut())
            {
                carrier.requeue_last();
            }
            self.record(&packager, None);
            packager.position()
        };
        self.publish(position);
    }

    fn carriage(&self) -> MutexGuard<'_, Option<Box<dyn InBandCarrier>>> {
        self.carriage.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The timed metadata changed: playlists are rendered again (and held reloads re-check).
    pub fn touch(&self) {
        let position = self.position();
        self.publish(position);
    }

    /// The publisher's pipeline drained but the stream goes on (see
    /// [`Packager::handle_interrupt`]).
    pub fn interrupt(&self) {
        self.flush_then(Packager::handle_interrupt);
    }

    /// The muxer reached end of stream.
    pub fn end(&self) {
        self.flush_then(Packager::handle_end);
    }

    /// Publishes the part the aligner gathered so far, then applies `step` to the packager.
    fn flush_then(&self, step: fn(&mut Packager)) {
        self.flush_aligned();
        let position = {
            let mut packager = self.packager();
            step(&mut packager);
            self.record(&packager, None);
            packager.position()
        };
        self.publish(position);
    }

    /// Subscribes to changes.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Published> {
        self.updates.subscribe()
    }

    /// The update counter (bumped on every publication).
    pub fn version(&self) -> u64 {
        self.updates.borrow().version
    }

    /// The playlist's end as last published.
    pub fn position(&self) -> Position {
        self.updates.borrow().position
    }

    /// The requests held for this rendition's parts and segments.
    pub fn holds(&self) -> &Arc<Holds> {
        &self.holds
    }

    fn publish(&self, position: Position) {
        self.updates.send_modify(|published| {
            published.version = published.version.wrapping_add(1);
            published.position = position;
        });
        // After the update counter: a released request renders (or finds) a version at least
        // as new as the one that released it.
        self.holds.publish(position);
    }
}
