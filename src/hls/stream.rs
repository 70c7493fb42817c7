//! A live (or recently ended) HLS stream: its renditions, each a [`Packager`] behind a lock, and
//! the mapping from media time to wall-clock time used for EXT-X-PROGRAM-DATE-TIME.

use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::align::{PartAligner, PartEnds};
use super::packager::{
    ChunkOutcome, CmafChunk, Packager, PackagerConfig, Position, SKIP_BOUNDARY_TARGETS,
};
use super::playlist::{AudioRendition, MultivariantPlaylist, RenditionReport, Variant};
use crate::cues::MediaClock;
use crate::cues::model::Cue;
use crate::cues::track::{self, Carriage, CueTrack};
use crate::media::frame::MediaUnit;

/// Group id of the audio renditions in the multivariant playlist.
pub const AUDIO_GROUP: &str = "audio";
/// A video rendition still without a complete segment once another video rendition has this
/// many is left out of the multivariant playlist (a transcoded rung that cannot keep up must
/// not keep viewers from starting the others).
pub const LAGGARD_SEGMENTS: u64 = 2;

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
    fn index(self) -> usize {
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
    /// Playlists rendered for the current update counter (read-locked on the hot path).
    rendered: RwLock<RenderCache>,
    /// The session's cues (EXT-X-DATERANGE, emsg).
    cues: Arc<CueTrack>,
    /// Which cues this rendition still has to carry in-band.
    carriage: Mutex<Carriage>,
    /// Where this rendition's latest parts end, for renditions aligned to it.
    part_ends: Mutex<PartEnds>,
    /// Set on transcoded renditions: regroups their per-frame chunks into parts ending where
    /// the reference rendition's parts end (see [`super::align`]).
    aligner: Mutex<Option<(PartAligner, Option<Arc<Rendition>>)>>,
}

impl Rendition {
    fn new(
        name: &str,
        kind: RenditionKind,
        config: PackagerConfig,
        cues: Arc<CueTrack>,
    ) -> Rendition {
        Rendition {
            name: name.to_string(),
            kind,
            packager: Mutex::new(Packager::new(config)),
            info: Mutex::new(TrackInfo::default()),
            updates: tokio::sync::watch::Sender::new(Published::default()),
            rendered: RwLock::new(RenderCache::default()),
            cues,
            carriage: Mutex::new(Carriage::default()),
            part_ends: Mutex::new(PartEnds::default()),
            aligner: Mutex::new(None),
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

    /// The media playlist text in `form`, rendered once per packager update and shared.
    /// `reports` supplies the EXT-X-RENDITION-REPORTs (LL forms), called only on a miss.
    pub fn playlist(
        &self,
        form: PlaylistForm,
        reports: impl FnOnce() -> Vec<RenditionReport>,
    ) -> Bytes {
        // Read the counter before the packager: the text is then at least as new as the key.
        let version = self.updates.borrow().version;
        {
            let cache = self.rendered.read().unwrap_or_else(|e| e.into_inner());
            if cache.version == version
                && let Some(text) = &cache.texts[form.index()]
            {
                return text.clone();
            }
        }
        let reports = match form {
            PlaylistForm::Plain => Vec::new(),
            _ => reports(),
        };
        let text = {
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
            let cues = self.cues.cues();
            if !cues.is_empty() {
                let view = track::View {
                    window_start,
                    now_ns: self.cues.now_ns().unwrap_or(0),
                    ended: packager.is_ended(),
                    delta: delta.then(|| track::Delta {
                        boundary: playlist
                            .segments
                            .first()
                            .and_then(|s| s.program_date_time)
                            .or_else(|| {
                                playlist.partial.as_ref().and_then(|p| p.program_date_time)
                            }),
                        skip_until,
                        skip_dateranges: form == PlaylistForm::DeltaV2 && playlist.skip.is_some(),
                    }),
                };
                let rendered = track::render(&cues, &view);
                playlist.dateranges = rendered.dateranges;
                if let Some(skip) = playlist.skip.as_mut() {
                    skip.recently_removed_dateranges = rendered.recently_removed;
                }
            }
            playlist.rendition_reports = reports;
            Bytes::from(playlist.to_string())
        };
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
                *current = info;
            }
        }
        self.carriage().handle_init(&init);
        let position = {
            let mut packager = self.packager();
            packager.handle_init(init);
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
            let mut carriage = self.carriage();
            let (chunk, carried) = carriage.handle_chunk(&self.cues, chunk);
            let mut packager = self.packager();
            if let ChunkOutcome::Dropped(_) = packager.handle_chunk(chunk) {
                carriage.requeue(carried);
            }
            packager.position()
        };
        self.publish(position);
    }

    fn carriage(&self) -> MutexGuard<'_, Carriage> {
        self.carriage.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cues changed: playlists are rendered again (and held reloads re-check).
    pub fn touch(&self) {
        let position = self.position();
        self.publish(position);
    }

    /// The publisher's pipeline drained but the stream goes on (see
    /// [`Packager::handle_interrupt`]).
    pub fn interrupt(&self) {
        self.flush_aligned();
        let position = {
            let mut packager = self.packager();
            packager.handle_interrupt();
            packager.position()
        };
        self.publish(position);
    }

    /// The muxer reached end of stream.
    pub fn end(&self) {
        self.flush_aligned();
        let position = {
            let mut packager = self.packager();
            packager.handle_end();
            packager.position()
        };
        self.publish(position);
    }

    /// Subscribes to changes.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Published> {
        self.updates.subscribe()
    }

    /// The playlist's end as last published.
    pub fn position(&self) -> Position {
        self.updates.borrow().position
    }

    fn publish(&self, position: Position) {
        self.updates.send_modify(|published| {
            published.version = published.version.wrapping_add(1);
            published.position = position;
        });
    }
}

/// Media-time margin added after the previous publish's last timestamp when a new publish
/// continues the stream (covers the last frame's duration).
pub const CONTINUE_MARGIN_NS: u64 = 100_000_000;

/// The media timeline of a stream.
#[derive(Debug, Default)]
struct Timeline {
    /// (media time ns, wall clock): PROGRAM-DATE-TIME = wall + (pts − media).
    anchor: Option<(u64, DateTime<Utc>)>,
    /// Latest media timestamp pushed (ns, after continuation offsets).
    media_end: Option<u64>,
}

/// Publisher presence, for continuity across reconnects.
#[derive(Debug, Default)]
struct Continuity {
    /// When the last publisher was lost (`None` while one is publishing or never lost).
    interrupted_at: Option<Instant>,
    /// Bumped by every resume, so a stale grace timer cannot end a resumed stream.
    generation: u64,
}

/// Wall clock of `pts_ns` through the anchor (`media`, `wall`).
fn wall_at(media: u64, wall: DateTime<Utc>, pts_ns: u64) -> DateTime<Utc> {
    let offset = i64::try_from(pts_ns).unwrap_or(i64::MAX) - i64::try_from(media).unwrap_or(0);
    wall + chrono::Duration::nanoseconds(offset)
}

/// A stream as the HLS origin sees it: one session, continued by publishers that reconnect
/// within the grace period.
pub struct HlsStream {
    /// Public name.
    pub name: String,
    /// Session id, unique per session (hex milliseconds since the Unix epoch at creation).
    /// Every URL below the multivariant playlist carries it, so a new session of the same
    /// stream never reuses a URL that a CDN may hold as immutable (`seg0.m4s`, `init.mp4`).
    /// A publisher that reconnects within the grace period continues the session.
    pub session: String,
    /// Packager settings for new renditions.
    config: PackagerConfig,
    /// Media timeline and wall-clock anchor, shared by the publishes that continue the stream.
    timeline: Mutex<Timeline>,
    /// Whether the publisher is gone and since when, for reconnects within the grace period.
    continuity: Mutex<Continuity>,
    /// Renditions, sorted by name; added when the pipeline starts.
    renditions: RwLock<Vec<Arc<Rendition>>>,
    /// When the stream ended (publisher gone, pipeline stopped).
    ended_at: OnceLock<Instant>,
    /// When the stream was created.
    pub created_at: Instant,
    /// The session's cues.
    cues: Arc<CueTrack>,
    /// Told about ingested media time (rundowns).
    media_clock: OnceLock<Arc<dyn MediaClock>>,
}

impl HlsStream {
    /// A new, empty stream.
    pub fn new(name: &str, config: PackagerConfig) -> HlsStream {
        HlsStream {
            name: name.to_string(),
            session: format!("{:x}", Utc::now().timestamp_millis()),
            config,
            timeline: Mutex::new(Timeline::default()),
            continuity: Mutex::new(Continuity::default()),
            renditions: RwLock::new(Vec::new()),
            ended_at: OnceLock::new(),
            created_at: Instant::now(),
            cues: Arc::new(CueTrack::default()),
            media_clock: OnceLock::new(),
        }
    }

    /// Sets who hears about ingested media time (once).
    pub fn set_media_clock(&self, clock: Arc<dyn MediaClock>) {
        let _ = self.media_clock.set(clock);
    }

    /// An ingested media unit: anchors the timeline, advances "now" for cues (video by PTS)
    /// and fires due rundown cues.
    pub fn observe(&self, unit: &MediaUnit) {
        let (time, video) = match unit {
            MediaUnit::Video(frame) => (frame.pts, true),
            MediaUnit::Audio(frame) => (frame.pts, false),
            _ => return,
        };
        self.cues.observe(time, video);
        if let (Some(clock), Some(now)) = (self.media_clock.get(), self.cues.now_ns()) {
            clock.on_media(self, now);
        }
    }

    /// The session's cues.
    pub fn cues(&self) -> &CueTrack {
        &self.cues
    }

    /// Adds a cue to every rendition's playlists and in-band carriage.
    pub fn add_cue(&self, cue: Cue) {
        self.cues.add(cue);
        for rendition in self.renditions() {
            rendition.touch();
        }
    }

    /// Cuts cue `id` short at media time `at_ns`.
    pub fn end_cue(&self, id: &str, at_ns: u64) -> Option<Cue> {
        let cue = self.cues.end(id, at_ns)?;
        for rendition in self.renditions() {
            rendition.touch();
        }
        Some((*cue).clone())
    }

    /// Media time (ns) of wall-clock `date` through the PROGRAM-DATE-TIME anchor; `None`
    /// before the anchor's media time 0 or without an anchor.
    pub fn media_time_at(&self, date: DateTime<Utc>) -> Option<u64> {
        let (media, wall) = self.timeline().anchor?;
        let offset = (date - wall).num_nanoseconds()?;
        u64::try_from(i64::try_from(media).ok()?.checked_add(offset)?).ok()
    }

    /// Anchors media time `media_ns` to the current wall clock (first call wins).
    pub fn anchor(&self, media_ns: u64) {
        let mut timeline = self.timeline();
        if timeline.anchor.is_none() {
            timeline.anchor = Some((media_ns, Utc::now()));
        }
    }

    /// Wall-clock time of media time `pts_ns` (the ingest clock, through the anchor).
    pub fn program_date_time(&self, pts_ns: u64) -> DateTime<Utc> {
        let mut timeline = self.timeline();
        let (media, wall) = *timeline.anchor.get_or_insert_with(|| (pts_ns, Utc::now()));
        wall_at(media, wall, pts_ns)
    }

    /// Where the next publish's media continues: the stream's media end plus a frame of margin
    /// (`None` before any media). Used as the offset base of a publisher that continues the
    /// stream after a reconnect, so that timestamps stay monotonic across the seam.
    pub fn continue_at(&self) -> Option<u64> {
        self.timeline()
            .media_end
            .map(|end| end.saturating_add(CONTINUE_MARGIN_NS))
    }

    /// Records media up to `end_ns` (after any continuation offset).
    pub fn note_media(&self, end_ns: u64) {
        let mut timeline = self.timeline();
        timeline.media_end = Some(timeline.media_end.map_or(end_ns, |e| e.max(end_ns)));
    }

    /// A new publish continues the stream at media time `media_ns`: PROGRAM-DATE-TIME carries on
    /// with the wall clock from now (never going back before the previous publish's last
    /// mapped instant).
    pub fn reanchor(&self, media_ns: u64) {
        let now = Utc::now();
        let mut timeline = self.timeline();
        let wall = match timeline.anchor {
            Some((media, wall)) => now.max(wall_at(media, wall, media_ns)),
            None => now,
        };
        timeline.anchor = Some((media_ns, wall));
    }

    fn timeline(&self) -> MutexGuard<'_, Timeline> {
        self.timeline.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn continuity(&self) -> MutexGuard<'_, Continuity> {
        self.continuity.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current publish generation (bumped by every resume and takeover).
    pub fn generation(&self) -> u64 {
        self.continuity().generation
    }

    /// The publisher of `generation` is gone but may come back (see
    /// [`Self::end_if_still_interrupted`]). False — nothing changes — if another publisher has
    /// taken the stream over since.
    pub fn interrupt(&self, generation: u64) -> bool {
        let mut continuity = self.continuity();
        if continuity.generation != generation {
            return false;
        }
        continuity.interrupted_at.get_or_insert_with(Instant::now);
        true
    }

    /// Another publisher takes over the live stream: a new generation continues the session.
    /// False if the stream has ended.
    pub fn take_over(&self) -> bool {
        let mut continuity = self.continuity();
        if self.is_ended() {
            return false;
        }
        continuity.interrupted_at = None;
        continuity.generation += 1;
        true
    }

    /// A publisher is back within `grace` of the interruption: the stream continues (true).
    /// False if the stream is not interrupted, has ended, or the grace period is over.
    pub fn resume(&self, grace: Duration) -> bool {
        let mut continuity = self.continuity();
        match continuity.interrupted_at {
            Some(at) if !self.is_ended() && at.elapsed() <= grace => {
                continuity.interrupted_at = None;
                continuity.generation += 1;
                true
            }
            _ => false,
        }
    }

    /// When the publisher was lost, while nobody has resumed the stream.
    pub fn interrupted_at(&self) -> Option<Instant> {
        self.continuity().interrupted_at
    }

    /// The grace period of publish `generation` is over: ends the stream unless a publisher
    /// resumed it meanwhile. True if it ended the stream.
    pub fn end_if_still_interrupted(&self, generation: u64) -> bool {
        let still = {
            let continuity = self.continuity();
            continuity.interrupted_at.is_some() && continuity.generation == generation
        };
        if still && !self.is_ended() {
            self.end();
            return true;
        }
        false
    }

    /// Adds (or returns the existing) rendition `name`.
    pub fn add_rendition(&self, name: &str, kind: RenditionKind) -> Arc<Rendition> {
        let mut renditions = self.renditions.write().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = renditions.iter().find(|r| r.name == name) {
            return Arc::clone(existing);
        }
        let rendition = Arc::new(Rendition::new(
            name,
            kind,
            self.config,
            Arc::clone(&self.cues),
        ));
        renditions.push(Arc::clone(&rendition));
        renditions.sort_by(|a, b| a.name.cmp(&b.name));
        rendition
    }

    /// The rendition called `name`.
    pub fn rendition(&self, name: &str) -> Option<Arc<Rendition>> {
        self.renditions().into_iter().find(|r| r.name == name)
    }

    /// EXT-X-RENDITION-REPORTs for every rendition but `name`, with URIs relative to
    /// `name`'s playlist (renditions are sibling directories).
    pub fn rendition_reports(&self, name: &str) -> Vec<RenditionReport> {
        self.renditions()
            .iter()
            .filter(|r| r.name != name)
            .map(|r| {
                let last = r.packager().last_part();
                RenditionReport {
                    uri: format!("../{}/playlist.m3u8", r.name),
                    last_msn: last.map(|p| p.msn),
                    last_part: last.map(|p| p.part),
                }
            })
            .collect()
    }

    /// All renditions, sorted by name.
    pub fn renditions(&self) -> Vec<Arc<Rendition>> {
        self.renditions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The publisher's pipeline drained after the publisher was lost: every rendition completes
    /// its open segment and marks the next one as a discontinuity; playlists stay live.
    pub fn interrupt_renditions(&self) {
        for rendition in self.renditions() {
            rendition.interrupt();
        }
    }

    /// Ends the stream: every rendition's playlist gets EXT-X-ENDLIST. Idempotent.
    pub fn end(&self) {
        self.ended_at.get_or_init(Instant::now);
        for rendition in self.renditions() {
            if !rendition.packager().is_ended() {
                rendition.end();
            }
        }
    }

    /// True once the stream has ended.
    pub fn is_ended(&self) -> bool {
        self.ended_at.get().is_some()
    }

    /// When the stream ended.
    pub fn ended_at(&self) -> Option<Instant> {
        self.ended_at.get().copied()
    }

    /// URI of a rendition's media playlist, relative to the multivariant playlist.
    fn playlist_uri(&self, rendition: &str) -> String {
        format!("{}/{rendition}/playlist.m3u8", self.session)
    }

    /// The multivariant playlist, once every rendition has its codec and a complete segment
    /// (BANDWIDTH is measured from segments); `None` before that. A video rendition that is
    /// still not ready when another has [`LAGGARD_SEGMENTS`] complete segments is left out.
    pub fn multivariant(&self) -> Option<MultivariantPlaylist> {
        let renditions = self.renditions();
        if renditions.is_empty() {
            return None;
        }
        let mut audio = Vec::new();
        let mut audio_bandwidth = None;
        for r in renditions.iter().filter(|r| r.kind == RenditionKind::Audio) {
            let info = r.info();
            let bandwidth = r.packager().bandwidth()?;
            let codecs = info.codecs.clone()?;
            audio_bandwidth.get_or_insert((bandwidth, codecs));
            audio.push(AudioRendition {
                group_id: AUDIO_GROUP.to_string(),
                name: r.name.clone(),
                language: None,
                default: audio.is_empty(),
                autoselect: true,
                channels: info.channels.map(|c| c.to_string()),
                uri: Some(self.playlist_uri(&r.name)),
            });
        }
        let mut variants = Vec::new();
        let most_segments = renditions
            .iter()
            .filter(|r| r.kind == RenditionKind::Video)
            .map(|r| r.position().complete_up_to)
            .max()
            .unwrap_or(0);
        for r in renditions.iter().filter(|r| r.kind == RenditionKind::Video) {
            let info = r.info();
            let (bandwidth, mut codecs) = match (r.packager().bandwidth(), info.codecs.clone()) {
                (Some(bandwidth), Some(codecs)) => (bandwidth, codecs),
                _ if most_segments >= LAGGARD_SEGMENTS => continue,
                _ => return None,
            };
            let (mut peak, mut average) = (bandwidth.peak, bandwidth.average);
            if let Some((audio_bw, audio_codecs)) = &audio_bandwidth {
                peak += audio_bw.peak;
                average += audio_bw.average;
                codecs = format!("{codecs},{audio_codecs}");
            }
            variants.push(Variant {
                bandwidth: peak,
                average_bandwidth: Some(average),
                codecs,
                resolution: info.resolution,
                frame_rate: info.frame_rate,
                audio: (!audio.is_empty()).then(|| AUDIO_GROUP.to_string()),
                uri: self.playlist_uri(&r.name),
            });
        }
        if variants.is_empty() {
            // Audio-only stream: each audio rendition is a variant of its own.
            for r in renditions.iter() {
                let info = r.info();
                let bandwidth = r.packager().bandwidth()?;
                variants.push(Variant {
                    bandwidth: bandwidth.peak,
                    average_bandwidth: Some(bandwidth.average),
                    codecs: info.codecs.clone()?,
                    resolution: None,
                    frame_rate: None,
                    audio: None,
                    uri: self.playlist_uri(&r.name),
                });
            }
            audio.clear();
        }
        variants.sort_by_key(|v| std::cmp::Reverse(v.bandwidth));
        let independent_segments = renditions
            .iter()
            .all(|r| r.packager().media_playlist(false).independent_segments);
        Some(MultivariantPlaylist {
            independent_segments,
            audio,
            variants,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SECOND: u64 = 1_000_000_000;

    fn chunk(pts: u64) -> CmafChunk {
        CmafChunk {
            data: Bytes::from(vec![0u8; 1000]),
            pts,
            duration: SECOND,
            fragment_start: true,
            independent: true,
            program_date_time: Utc::now(),
        }
    }

    fn info(codecs: &str) -> TrackInfo {
        TrackInfo {
            codecs: Some(codecs.into()),
            resolution: Some((640, 360)),
            frame_rate: Some(30.0),
            channels: None,
        }
    }

    #[test]
    fn a_lagging_rendition_is_left_out_after_two_segments_of_the_others() {
        let stream = HlsStream::new(
            "s",
            PackagerConfig {
                segment_target: Duration::from_secs(1),
                part_target: Duration::from_millis(200),
                window: Duration::from_secs(10),
            },
        );
        let source = stream.add_rendition("source", RenditionKind::Video);
        let slow = stream.add_rendition("slow", RenditionKind::Video);
        source.push_init(Bytes::from_static(b"init"), info("avc1.64001f"));
        slow.push_init(Bytes::from_static(b"init"), info("avc1.4d401e"));
        source.push_chunk(chunk(0));
        source.push_chunk(chunk(SECOND));
        // One complete segment of the source: the slow rung is still waited for.
        assert!(stream.multivariant().is_none());
        source.push_chunk(chunk(2 * SECOND));
        let playlist = stream.multivariant().expect("served without the laggard");
        assert_eq!(playlist.variants.len(), 1);
        assert!(playlist.variants[0].uri.ends_with("/source/playlist.m3u8"));
        // Once the rung has a segment it is listed again.
        slow.push_chunk(chunk(0));
        slow.push_chunk(chunk(SECOND));
        assert_eq!(stream.multivariant().expect("both").variants.len(), 2);
    }
}
