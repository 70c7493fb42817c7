//! A live (or recently ended) HLS stream: its renditions (each a [`Packager`] behind a lock,
//! see [`super::rendition`]), the mapping from media time to wall-clock time used for
//! EXT-X-PROGRAM-DATE-TIME, and publisher continuity across reconnects. The decisions are pure
//! ([`super::timeline`]); the stream keeps them behind locks and reads its [`Clock`].
//!
//! # Lock order
//!
//! The registry's stream map may be held while a stream's locks are taken (a publish resumes
//! or ends the stream it replaces under it), never the other way round. Within a stream,
//! `timeline`, `continuity` and `multivariant` (the rendered text) are leaves: nothing else is
//! locked while one is held. The rendition list is only read-locked long enough to clone it or
//! one of its entries, or to read each rendition's update counter (a `watch` read, a leaf), so a
//! rendition's own locks (their order is in [`super::rendition`]) are never taken under a stream
//! lock. `rendering_multivariant` is taken first, before the list and the renditions' locks.
//!
//! [`Packager`]: super::packager::Packager

use std::any::Any;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::handoff::StreamHandoff;
use super::lifecycle::{SessionEvent, SessionLifecycle};
use super::packager::{Packager, PackagerConfig};
use super::playlist::{AudioRendition, MultivariantPlaylist, RenditionReport, Variant};
use super::recording::{Recorder, StreamRecording};
pub use super::rendition::{PlaylistForm, Published, Rendition, RenditionKind, TrackInfo};
use super::timed::{Ingested, MediaNow, StreamObserver, TimedMetadata};
pub use super::timeline::CONTINUE_MARGIN_NS;
use super::timeline::{Clock, Continuity, SystemClock, Timeline};

/// Group id of the audio renditions in the multivariant playlist.
pub const AUDIO_GROUP: &str = "audio";
/// A video rendition still without a complete segment once another video rendition has this
/// many is left out of the multivariant playlist (a transcoded rung that cannot keep up must
/// not keep viewers from starting the others).
pub const LAGGARD_SEGMENTS: u64 = 2;

/// The state of a stream's renditions a multivariant playlist was rendered from: how many, and
/// the sum of their update counters (each only grows, so any publication changes the sum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MultivariantKey {
    renditions: usize,
    versions: u64,
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
    /// Where the stream reads the time.
    clock: Arc<dyn Clock>,
    /// Media timeline and wall-clock anchor, shared by the publishes that continue the stream.
    timeline: Mutex<Timeline>,
    /// Whether the publisher is gone and since when, for reconnects within the grace period.
    continuity: Mutex<Continuity>,
    /// Renditions, sorted by name; added when the pipeline starts.
    renditions: RwLock<Vec<Arc<Rendition>>>,
    /// The multivariant playlist text and the renditions' state it was rendered from. A leaf.
    multivariant: RwLock<Option<(MultivariantKey, Option<Bytes>)>>,
    /// Held while the multivariant playlist is rendered (once per key, however many requests
    /// miss together); taken before the rendition list and the renditions' locks.
    rendering_multivariant: Mutex<()>,
    /// When the stream ended (publisher gone, pipeline stopped).
    ended_at: OnceLock<Instant>,
    /// When the stream was created.
    pub created_at: Instant,
    /// "Now" on the media timeline: the latest ingested frame.
    media_now: Arc<MediaNow>,
    /// The session's timed metadata (cues), listed and carried by every rendition.
    metadata: Option<Arc<dyn TimedMetadata>>,
    /// Told about ingested media time (rundowns).
    observer: Option<Arc<dyn StreamObserver>>,
    /// Told when the session ends (shows).
    lifecycle: Option<Arc<dyn SessionLifecycle>>,
    /// The session's recording, if recorded.
    recording: Option<StreamRecording>,
    /// Where this session continues another node's (it took the stream over after that node
    /// died): its renditions' numbering starts there.
    handoff: Option<StreamHandoff>,
    /// Set once something keeps this session's handoff for a successor.
    handoff_kept: std::sync::atomic::AtomicBool,
}

impl HlsStream {
    /// A new, empty stream on the system clocks, without timed metadata.
    pub fn new(name: &str, config: PackagerConfig) -> HlsStream {
        HlsStream::with_clock(name, config, Arc::new(SystemClock))
    }

    /// A new, empty stream reading the time from `clock`.
    pub fn with_clock(name: &str, config: PackagerConfig, clock: Arc<dyn Clock>) -> HlsStream {
        HlsStream {
            name: name.to_string(),
            session: format!("{:x}", clock.wall().timestamp_millis()),
            config,
            created_at: clock.now(),
            clock,
            timeline: Mutex::new(Timeline::default()),
            continuity: Mutex::new(Continuity::default()),
            renditions: RwLock::new(Vec::new()),
            multivariant: RwLock::new(None),
            rendering_multivariant: Mutex::new(()),
            ended_at: OnceLock::new(),
            media_now: Arc::new(MediaNow::default()),
            metadata: None,
            observer: None,
            lifecycle: None,
            recording: None,
            handoff: None,
            handoff_kept: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// `true` the first time only: the caller keeps this session's handoff (one writer per
    /// session, however many publishes continue it).
    pub fn keep_handoff(&self) -> bool {
        !self
            .handoff_kept
            .swap(true, std::sync::atomic::Ordering::AcqRel)
    }

    /// A stream continuing the session another node packaged until it died (see
    /// [`super::handoff`]): the same session id, its media timeline, and renditions numbered
    /// on from it once added (call [`Self::add_handoff_renditions`] after the builders).
    pub fn continuing(
        name: &str,
        config: PackagerConfig,
        clock: Arc<dyn Clock>,
        handoff: StreamHandoff,
    ) -> HlsStream {
        let mut stream = HlsStream::with_clock(name, config, clock);
        stream.session = handoff.session.clone();
        stream.timeline = Mutex::new(Timeline::continuing(
            handoff.media_end_ns,
            handoff.anchor,
            handoff.seam_date(),
        ));
        stream.handoff = Some(handoff);
        stream
    }

    /// Adds every rendition the previous owner had, so their playlists are held (not 404)
    /// until this node's pipeline publishes into them.
    pub fn add_handoff_renditions(&self) {
        let renditions: Vec<(String, RenditionKind)> = self
            .handoff
            .iter()
            .flat_map(|h| h.renditions.iter().map(|r| (r.name.clone(), r.kind())))
            .collect();
        for (name, kind) in renditions {
            self.add_rendition(&name, kind);
        }
    }

    /// The first MSN of rendition `name` when this session continues another node's (the
    /// MSNs before it were that node's), `None` otherwise.
    pub fn handoff_start(&self, name: &str) -> Option<u64> {
        self.handoff.as_ref()?.rendition(name).map(|r| r.next_msn)
    }

    /// Where a node taking this session over would continue it, now.
    pub fn handoff(&self) -> StreamHandoff {
        let (media_end_ns, anchor) = {
            let timeline = self.timeline();
            (timeline.media_end(), timeline.anchor_point())
        };
        StreamHandoff {
            session: self.session.clone(),
            media_end_ns,
            anchor,
            renditions: self
                .renditions()
                .iter()
                .map(|r| r.packager().handoff(&r.name, r.kind))
                .collect(),
        }
    }

    /// Changes whenever a rendition opens or completes a segment, gets an init or ends (from
    /// the published positions: no packager lock), so a handoff is written once per segment.
    pub fn handoff_key(&self) -> u64 {
        let renditions = self.renditions.read().unwrap_or_else(|e| e.into_inner());
        renditions
            .iter()
            .map(|r| {
                let p = r.position();
                let open = p.open.map_or(0, |(msn, _)| msn + 1);
                p.complete_up_to
                    .wrapping_mul(31)
                    .wrapping_add(open)
                    .wrapping_mul(31)
                    .wrapping_add(u64::from(r.is_initialized()))
            })
            .fold(renditions.len() as u64, |sum, k| {
                sum.wrapping_mul(1_000_003).wrapping_add(k)
            })
    }

    /// The session is recorded by `recorder` (with its timed metadata: after
    /// [`Self::observed_by`]). Before the first rendition. A session continuing another
    /// node's (a handoff) is recorded as a part of its own ([`Recorder::begin`]).
    pub fn recorded_by(mut self, recorder: &Arc<Recorder>) -> HlsStream {
        self.recording = Some(recorder.begin(
            &self.name,
            &self.session,
            self.handoff.is_some(),
            self.clock.wall(),
            self.metadata.clone(),
            Arc::clone(&self.media_now),
        ));
        self
    }

    /// The id of the session's recording, if recorded.
    pub fn recording_id(&self) -> Option<&str> {
        self.recording.as_ref().map(|r| r.id.as_str())
    }

    /// The stream tells `lifecycle` when its session ends. Before the first rendition.
    pub fn with_lifecycle(mut self, lifecycle: Arc<dyn SessionLifecycle>) -> HlsStream {
        self.lifecycle = Some(lifecycle);
        self
    }

    /// The stream reports ingested media time to `observer` and carries the timed metadata it
    /// supplies for this session. Before the first rendition.
    pub fn observed_by(mut self, observer: Arc<dyn StreamObserver>) -> HlsStream {
        self.metadata = observer.timed_metadata(&self.name);
        self.observer = Some(observer);
        self
    }

    /// The stream carries `metadata` in its playlists and chunks. Before the first rendition.
    pub fn with_timed_metadata(mut self, metadata: Arc<dyn TimedMetadata>) -> HlsStream {
        self.metadata = Some(metadata);
        self
    }

    /// The session's timed metadata, if it is a `T` (the feature that supplied it finds it
    /// again).
    pub fn timed_metadata<T: TimedMetadata>(&self) -> Option<&T> {
        let metadata: &dyn Any = self.metadata.as_deref()?;
        metadata.downcast_ref()
    }

    /// The timed metadata changed: every rendition renders its playlists again (and held
    /// reloads re-check).
    pub fn timed_metadata_changed(&self) {
        for rendition in self.renditions() {
            rendition.touch();
        }
    }

    /// An ingested media unit: advances "now" on the media timeline (video by PTS) and tells
    /// the observer (rundowns fire from it).
    pub fn observe(&self, unit: &impl Ingested) {
        let Some(frame) = unit.frame_time() else {
            return;
        };
        self.media_now.observe(frame);
        if let (Some(observer), Some(now)) = (&self.observer, self.media_now.now_ns()) {
            observer.on_media(self, now);
        }
    }

    /// "Now" on the media timeline: the PTS of the latest ingested video frame (the latest
    /// audio frame's time for audio-only streams), ns; `None` before any frame.
    pub fn media_now_ns(&self) -> Option<u64> {
        self.media_now.now_ns()
    }

    /// Media time (ns) of wall-clock `date` through the PROGRAM-DATE-TIME anchor; `None`
    /// before the anchor's media time 0 or without an anchor.
    pub fn media_time_at(&self, date: DateTime<Utc>) -> Option<u64> {
        self.timeline().media_time_at(date)
    }

    /// Anchors media time `media_ns` to the current wall clock (first call wins).
    pub fn anchor(&self, media_ns: u64) {
        let wall = self.clock.wall();
        self.timeline().anchor(media_ns, wall);
    }

    /// Wall-clock time of media time `pts_ns` (the ingest clock, through the anchor).
    pub fn program_date_time(&self, pts_ns: u64) -> DateTime<Utc> {
        let wall = self.clock.wall();
        self.timeline().program_date_time(pts_ns, wall)
    }

    /// Where the next publish's media continues: the stream's media end plus a frame of margin
    /// (`None` before any media). Used as the offset base of a publisher that continues the
    /// stream after a reconnect, so that timestamps stay monotonic across the seam.
    pub fn continue_at(&self) -> Option<u64> {
        self.timeline().continue_at()
    }

    /// Records media up to `end_ns` (after any continuation offset).
    pub fn note_media(&self, end_ns: u64) {
        self.timeline().note_media(end_ns);
    }

    /// A new publish continues the stream at media time `media_ns`: PROGRAM-DATE-TIME carries on
    /// with the wall clock from now (never going back before the previous publish's last
    /// mapped instant).
    pub fn reanchor(&self, media_ns: u64) {
        let wall = self.clock.wall();
        self.timeline().reanchor(media_ns, wall);
    }

    fn timeline(&self) -> MutexGuard<'_, Timeline> {
        self.timeline.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn continuity(&self) -> MutexGuard<'_, Continuity> {
        self.continuity.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current publish generation (bumped by every resume and takeover).
    pub fn generation(&self) -> u64 {
        self.continuity().generation()
    }

    /// The publisher of `generation` is gone but may come back (see
    /// [`Self::end_if_still_interrupted`]). False — nothing changes — if another publisher has
    /// taken the stream over since.
    pub fn interrupt(&self, generation: u64) -> bool {
        let now = self.clock.now();
        self.continuity().interrupt(generation, now)
    }

    /// Another publisher takes over the live stream: a new generation continues the session.
    /// False if the stream has ended.
    pub fn take_over(&self) -> bool {
        self.continuity().take_over(self.is_ended())
    }

    /// A publisher is back within `grace` of the interruption: the stream continues (true).
    /// False if the stream is not interrupted, has ended, or the grace period is over.
    pub fn resume(&self, grace: Duration) -> bool {
        let now = self.clock.now();
        self.continuity().resume(grace, self.is_ended(), now)
    }

    /// When the publisher was lost, while nobody has resumed the stream.
    pub fn interrupted_at(&self) -> Option<Instant> {
        self.continuity().interrupted_at()
    }

    /// The grace period of publish `generation` is over: ends the stream unless a publisher
    /// resumed it meanwhile. True if it ended the stream.
    pub fn end_if_still_interrupted(&self, generation: u64) -> bool {
        let still = self.continuity().still_interrupted(generation);
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
        let packager = match self.handoff.as_ref().and_then(|h| h.rendition(name)) {
            Some(handoff) => Packager::continuing(self.config, handoff),
            None => Packager::new(self.config),
        };
        let rendition = Arc::new(Rendition::with_packager(
            name,
            kind,
            packager,
            Arc::clone(&self.media_now),
            self.metadata.clone(),
        ));
        if let Some(recording) = &self.recording {
            rendition.record_into(recording.feed(name, kind));
        }
        renditions.push(Arc::clone(&rendition));
        renditions.sort_by(|a, b| a.name.cmp(&b.name));
        rendition
    }

    /// The rendition called `name` (the list is searched under its read lock: one `Arc` is
    /// cloned, not the list).
    pub fn rendition(&self, name: &str) -> Option<Arc<Rendition>> {
        self.renditions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|r| r.name == name)
            .cloned()
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

    /// Ends the stream: every rendition's playlist gets EXT-X-ENDLIST, and the lifecycle
    /// hears of it (once). Idempotent.
    pub fn end(&self) {
        let first = self.ended_at.set(self.clock.now()).is_ok();
        if first && let Some(lifecycle) = &self.lifecycle {
            lifecycle.on_session(&self.name, &self.session, SessionEvent::Ended);
        }
        for rendition in self.renditions() {
            if !rendition.packager().is_ended() {
                rendition.end();
            }
        }
        // After every rendition handed over its last segment.
        if first && let Some(recording) = &self.recording {
            recording.finish();
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

    /// Whether the stream ended more than `retention` ago.
    pub fn ended_longer_than(&self, retention: Duration) -> bool {
        self.ended_at()
            .is_some_and(|at| self.clock.now().saturating_duration_since(at) > retention)
    }

    /// URI of a rendition's media playlist, relative to the multivariant playlist.
    fn playlist_uri(&self, rendition: &str) -> String {
        format!("{}/{rendition}/playlist.m3u8", self.session)
    }

    /// The multivariant playlist's text ([`Self::multivariant`]), rendered once per state of
    /// the renditions and shared by every request until one of them publishes again.
    pub fn multivariant_text(&self) -> Option<Bytes> {
        let key = self.multivariant_key();
        if let Some(text) = self.cached_multivariant(key) {
            return text;
        }
        let _rendering = self
            .rendering_multivariant
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(text) = self.cached_multivariant(key) {
            return text;
        }
        let text = self
            .multivariant()
            .map(|playlist| Bytes::from(playlist.to_string()));
        *self.multivariant.write().unwrap_or_else(|e| e.into_inner()) = Some((key, text.clone()));
        text
    }

    /// The renditions' state now. Their update counters are read under the list's read lock
    /// (a `watch` read, a leaf), so the list is not cloned.
    fn multivariant_key(&self) -> MultivariantKey {
        let renditions = self.renditions.read().unwrap_or_else(|e| e.into_inner());
        MultivariantKey {
            renditions: renditions.len(),
            versions: renditions
                .iter()
                .fold(0u64, |sum, r| sum.wrapping_add(r.version())),
        }
    }

    /// The multivariant text rendered for `key`, if it is (`Some(None)`: not playable yet).
    fn cached_multivariant(&self, key: MultivariantKey) -> Option<Option<Bytes>> {
        let cache = self.multivariant.read().unwrap_or_else(|e| e.into_inner());
        match cache.as_ref() {
            Some((cached, text)) if *cached == key => Some(text.clone()),
            _ => None,
        }
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
    use bytes::Bytes;

    use super::*;
    use crate::hls::packager::CmafChunk;
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

    fn live_rendition(stream: &HlsStream, name: &str, seconds: u64) -> Arc<Rendition> {
        let rendition = stream.add_rendition(name, RenditionKind::Video);
        rendition.push_init(Bytes::from_static(b"init"), info("avc1.64001f"));
        for second in 0..seconds {
            rendition.push_chunk(chunk(second * SECOND));
        }
        rendition
    }

    fn one_second_segments() -> PackagerConfig {
        PackagerConfig {
            segment_target: Duration::from_secs(1),
            part_target: Duration::from_millis(200),
            window: Duration::from_secs(30),
        }
    }

    /// However many requests ask, each version and form is rendered once and every request
    /// gets the same bytes (the same buffer, not a copy); a publication renders anew.
    #[test]
    fn each_playlist_version_is_rendered_once_and_shared() {
        let stream = HlsStream::new("s", one_second_segments());
        let rendition = live_rendition(&stream, "source", 4);
        let reports = || stream.rendition_reports("source");
        let first = rendition.playlist(PlaylistForm::LowLatency, reports);
        assert_eq!(rendition.renders(), 1);
        for _ in 0..100 {
            let again = rendition.playlist(PlaylistForm::LowLatency, reports);
            assert_eq!(again.as_ptr(), first.as_ptr(), "the same buffer");
        }
        assert_eq!(rendition.renders(), 1, "rendered once for 101 requests");
        // Each form is its own rendering of the version.
        let delta = rendition.playlist(PlaylistForm::Delta, reports);
        let plain = rendition.playlist(PlaylistForm::Plain, reports);
        assert_eq!(rendition.renders(), 3);
        assert_ne!(delta.as_ptr(), first.as_ptr());
        assert_ne!(plain, first);
        // A new part: a new version, rendered once more.
        rendition.push_chunk(chunk(4 * SECOND));
        let next = rendition.playlist(PlaylistForm::LowLatency, reports);
        assert_ne!(next, first);
        assert_eq!(rendition.renders(), 4);
        assert_eq!(
            rendition
                .playlist(PlaylistForm::LowLatency, reports)
                .as_ptr(),
            next.as_ptr()
        );
        assert_eq!(rendition.renders(), 4);
    }

    /// Requests that miss the cache together (the waiters one publication releases) still
    /// render the version once.
    #[test]
    fn concurrent_misses_render_a_version_once() {
        let stream = HlsStream::new("s", one_second_segments());
        let rendition = live_rendition(&stream, "source", 4);
        for round in 1..=20u64 {
            rendition.push_chunk(chunk((3 + round) * SECOND));
            let barrier = std::sync::Barrier::new(8);
            let texts: Vec<Bytes> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..8)
                    .map(|_| {
                        scope.spawn(|| {
                            barrier.wait();
                            rendition.playlist(PlaylistForm::LowLatency, || {
                                stream.rendition_reports("source")
                            })
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("no panic"))
                    .collect()
            });
            assert_eq!(rendition.renders(), round, "one rendering per version");
            assert!(texts.iter().all(|t| t.as_ptr() == texts[0].as_ptr()));
        }
    }

    /// The delta form served from the cache is the playlist model's own delta update of the
    /// packager's state: the full LL playlist with the segments older than six target
    /// durations replaced by EXT-X-SKIP, rendition reports of the other renditions.
    #[test]
    fn the_cached_delta_form_is_the_models_delta_update() {
        use crate::hls::packager::SKIP_BOUNDARY_TARGETS;

        let stream = HlsStream::new("s", one_second_segments());
        let rendition = live_rendition(&stream, "source", 14);
        live_rendition(&stream, "low", 14);
        let served = rendition.playlist(PlaylistForm::Delta, || stream.rendition_reports("source"));
        let expected = {
            let packager = rendition.packager();
            let mut playlist = packager.media_playlist(true);
            if let Some(control) = playlist.server_control.as_mut() {
                control.can_skip_dateranges = control.can_skip_until.is_some();
            }
            playlist.skip_segments(
                Duration::from_secs(packager.target_duration()) * SKIP_BOUNDARY_TARGETS,
            );
            drop(packager);
            playlist.rendition_reports = stream.rendition_reports("source");
            playlist.to_string()
        };
        let served = std::str::from_utf8(&served).expect("text");
        assert_eq!(served, expected);
        assert!(served.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS="), "{served}");
        assert!(served.contains("#EXT-X-RENDITION-REPORT:URI=\"../low/playlist.m3u8\""));
        // And the full form is the same model without the skip.
        let full = rendition.playlist(PlaylistForm::LowLatency, || {
            stream.rendition_reports("source")
        });
        assert!(
            !std::str::from_utf8(&full)
                .expect("text")
                .contains("EXT-X-SKIP")
        );
    }

    /// The multivariant text is rendered once per state of the renditions and shared; any
    /// rendition's publication renders it again.
    #[test]
    fn the_multivariant_text_is_shared_until_a_rendition_publishes() {
        let stream = HlsStream::new("s", one_second_segments());
        assert!(stream.multivariant_text().is_none(), "no rendition yet");
        let source = live_rendition(&stream, "source", 3);
        let first = stream.multivariant_text().expect("playable");
        assert_eq!(first, stream.multivariant().expect("playable").to_string());
        assert_eq!(
            stream.multivariant_text().expect("playable").as_ptr(),
            first.as_ptr()
        );
        // A new rendition (not playable yet: no segment) and then its first segments.
        let low = stream.add_rendition("low", RenditionKind::Video);
        low.push_init(Bytes::from_static(b"init"), info("avc1.4d401e"));
        let without = stream.multivariant_text().expect("the laggard is left out");
        assert!(
            !std::str::from_utf8(&without)
                .expect("text")
                .contains("low/")
        );
        low.push_chunk(chunk(0));
        low.push_chunk(chunk(SECOND));
        let both = stream.multivariant_text().expect("playable");
        assert_eq!(both, stream.multivariant().expect("playable").to_string());
        assert!(
            std::str::from_utf8(&both)
                .expect("text")
                .contains("low/playlist.m3u8")
        );
        source.push_chunk(chunk(3 * SECOND));
        let after = stream.multivariant_text().expect("playable");
        assert_ne!(after.as_ptr(), both.as_ptr(), "rendered again");
    }

    /// A node continuing a dead owner's session dates its first media at the start of the
    /// segment the owner had open, not after the owner's last ingested timestamp (which runs
    /// ahead of what was packaged): hls.js, whose playlist has no overlap with the successor's,
    /// looks for the segment whose dates contain the end of the last one it loaded and stops
    /// for good when the successor's dates start after it.
    #[test]
    fn a_successor_dates_its_first_media_where_the_owners_open_segment_starts() {
        let owner = HlsStream::new("demo", one_second_segments());
        owner.anchor(0);
        let source = owner.add_rendition("source", RenditionKind::Video);
        source.push_init(Bytes::from_static(b"init"), info("avc1.64001f"));
        for second in 0..3 {
            let mut c = chunk(second * SECOND);
            c.program_date_time = owner.program_date_time(second * SECOND);
            source.push_chunk(c);
        }
        // Segments 0 and 1 complete, 2 open at 2 s; ingest has seen media up to 3.4 s.
        owner.note_media(3 * SECOND + 400_000_000);
        let open_start = owner.program_date_time(2 * SECOND);
        let handoff = StreamHandoff::from_json(&owner.handoff().to_json()).expect("JSON");
        assert_eq!(handoff.seam_date(), Some(open_start));

        let successor = HlsStream::continuing(
            "demo",
            one_second_segments(),
            Arc::new(crate::hls::timeline::SystemClock),
            handoff,
        );
        let first = successor.continue_at().expect("the owner's media end");
        assert!(first > 3 * SECOND, "timestamps stay monotonic: {first}");
        successor.reanchor(first);
        assert_eq!(successor.program_date_time(first), open_start);
        // A viewer that loaded anything of segment 2 (or all of segment 1) ended at or after
        // the seam, inside the successor's first segment.
        let viewer_end = owner.program_date_time(2 * SECOND + 200_000_000);
        assert!(successor.program_date_time(first) <= viewer_end);
        assert!(successor.program_date_time(first + SECOND) > viewer_end);
    }

    /// The same at every point of the part cycle the owner can die at, with a second
    /// rendition two parts behind the first. Whatever a viewer at the live edge has loaded —
    /// the last complete segment, or any number of the open segment's parts — ends at or after
    /// the successor's first date in every rendition (a date before it would stop hls.js for
    /// good), and within the successor's first segment while the renditions are in the same
    /// segment; when the owner died between one rendition's segment boundary and the other's,
    /// the leading rendition's viewers are at most one segment past it (hls.js finds the seam
    /// once the successor's second segment is listed).
    #[test]
    fn every_viewer_at_the_live_edge_finds_the_successors_first_segment_by_date() {
        const PART: u64 = 200_000_000;
        const PARTS_PER_SEGMENT: u64 = 5;
        let config = PackagerConfig {
            segment_target: Duration::from_secs(1),
            part_target: Duration::from_millis(200),
            window: Duration::from_secs(30),
        };
        for pushed in 1..=17u64 {
            let owner = HlsStream::new("demo", config);
            owner.anchor(0);
            let mut loaded: Vec<(String, Vec<DateTime<Utc>>)> = Vec::new();
            for (name, parts) in [("source", pushed), ("low", pushed.saturating_sub(2).max(1))] {
                let rendition = owner.add_rendition(name, RenditionKind::Video);
                rendition.push_init(Bytes::from_static(b"init"), info("avc1.64001f"));
                for i in 0..parts {
                    rendition.push_chunk(CmafChunk {
                        data: Bytes::from(vec![0u8; 100]),
                        pts: i * PART,
                        duration: PART,
                        fragment_start: i % PARTS_PER_SEGMENT == 0,
                        independent: i % PARTS_PER_SEGMENT == 0,
                        program_date_time: owner.program_date_time(i * PART),
                    });
                }
                // A viewer has the last complete segment, and maybe parts of the open one.
                let open_from = (parts - 1) / PARTS_PER_SEGMENT * PARTS_PER_SEGMENT;
                let ends = (open_from..=parts)
                    .map(|i| owner.program_date_time(i * PART))
                    .collect();
                loaded.push((name.to_string(), ends));
            }
            // Ingest runs ahead of what was packaged.
            owner.note_media((pushed + 3) * PART);
            let handoff = StreamHandoff::from_json(&owner.handoff().to_json()).expect("JSON");
            let successor = HlsStream::continuing(
                "demo",
                config,
                Arc::new(crate::hls::timeline::SystemClock),
                handoff,
            );
            let first = successor.continue_at().expect("media end");
            successor.reanchor(first);
            let starts = successor.program_date_time(first);
            let one_segment =
                |n: u64| successor.program_date_time(first + n * PARTS_PER_SEGMENT * PART);
            let same_segment = (pushed - 1) / PARTS_PER_SEGMENT
                == (pushed.saturating_sub(2).max(1) - 1) / PARTS_PER_SEGMENT;
            let found_by = one_segment(if same_segment { 1 } else { 2 });
            for (name, ends) in &loaded {
                for end in ends {
                    assert!(
                        starts <= *end && *end <= found_by,
                        "killed after {pushed} parts: a viewer of `{name}` that loaded up to \
                         {end} is outside {starts} – {found_by}"
                    );
                }
            }
        }
    }

    /// Continuity through the registry on a manual clock: a reconnect at the end of the grace
    /// period continues the session and its PROGRAM-DATE-TIMEs, the first publish's grace timer
    /// then ends nothing, a reconnect after the grace period starts a new session, and an ended
    /// session is kept for exactly the retention period.
    #[test]
    fn reconnects_grace_timers_and_retention_on_a_manual_clock() {
        use chrono::TimeZone;

        use crate::hls::registry::Registry;
        use crate::hls::timeline::ManualClock;

        let t0 = Utc
            .with_ymd_and_hms(2026, 3, 1, 20, 0, 0)
            .single()
            .expect("valid");
        let clock = Arc::new(ManualClock::new(t0));
        let retention = Duration::from_secs(60);
        let registry = Registry::with_clock(
            PackagerConfig {
                segment_target: Duration::from_secs(2),
                part_target: Duration::from_millis(500),
                window: Duration::from_secs(6),
            },
            retention,
            clock.clone(),
        );
        let grace = Duration::from_secs(15);
        let (stream, resumed) = registry.publish("demo", grace, false);
        assert!(!resumed);
        assert_eq!(stream.session, format!("{:x}", t0.timestamp_millis()));
        // 10 s of media in 10 s, then the publisher is lost.
        stream.anchor(0);
        clock.advance(Duration::from_secs(10));
        stream.note_media(10 * SECOND);
        let before_seam = stream.program_date_time(10 * SECOND);
        assert_eq!(before_seam, t0 + chrono::Duration::seconds(10));
        let first = stream.generation();
        assert!(stream.interrupt(first));
        // Back exactly when the grace period ends: the same session goes on.
        clock.advance(grace);
        let (again, resumed) = registry.publish("demo", grace, false);
        assert!(resumed && Arc::ptr_eq(&stream, &again));
        let seam = again.continue_at().expect("media seen");
        again.reanchor(seam);
        // PROGRAM-DATE-TIME carries on from the reconnect's wall clock.
        assert_eq!(
            again.program_date_time(seam),
            t0 + chrono::Duration::seconds(25)
        );
        assert!(again.program_date_time(seam) > before_seam);
        // The first publish's grace timer fires now: stale, nothing ends.
        assert!(!again.end_if_still_interrupted(first));
        assert!(!again.is_ended());
        // Lost again; back a millisecond after the grace period: a new session.
        let second = again.generation();
        assert!(again.interrupt(second));
        clock.advance(grace + Duration::from_millis(1));
        let (fresh, resumed) = registry.publish("demo", grace, false);
        assert!(!resumed && !Arc::ptr_eq(&fresh, &again));
        assert!(again.is_ended(), "replaced");
        assert_ne!(fresh.session, again.session);
        // An ended session stays for the retention period, then is gone.
        fresh.end();
        clock.advance(retention);
        assert!(registry.get("demo").is_some());
        clock.advance(Duration::from_nanos(1));
        assert!(registry.get("demo").is_none());
    }

    /// The observer supplies each session's timed metadata (found again by its type) and
    /// hears "now" on the media timeline for every frame, not for configuration records.
    #[test]
    fn an_observer_gets_media_time_and_supplies_timed_metadata() {
        use crate::hls::timed::{
            FrameTime, InBandCarrier, Rendered, StreamObserver, TimedMetadata, View,
        };

        /// Empty metadata; `KIND` makes distinct types.
        struct Empty<const KIND: u8>;
        impl<const KIND: u8> TimedMetadata for Empty<KIND> {
            fn render(&self, _: &View) -> Rendered {
                Rendered::default()
            }
            fn carrier(self: Arc<Self>) -> Box<dyn InBandCarrier> {
                unreachable!("no rendition in this test")
            }
        }
        type NoMetadata = Empty<0>;
        type Other = Empty<1>;
        #[derive(Default)]
        struct Recorder(Mutex<Vec<(String, u64)>>);
        impl StreamObserver for Recorder {
            fn timed_metadata(&self, _: &str) -> Option<Arc<dyn TimedMetadata>> {
                Some(Arc::new(Empty::<0>))
            }
            fn on_media(&self, stream: &HlsStream, now_ns: u64) {
                self.0
                    .lock()
                    .expect("not poisoned")
                    .push((stream.name.clone(), now_ns));
            }
        }
        /// A configuration record: no media time.
        struct Config;
        impl Ingested for Config {
            fn frame_time(&self) -> Option<FrameTime> {
                None
            }
        }

        let recorder = Arc::new(Recorder::default());
        let config = PackagerConfig {
            segment_target: Duration::from_secs(2),
            part_target: Duration::from_millis(500),
            window: Duration::from_secs(6),
        };
        let stream = HlsStream::new("s", config).observed_by(recorder.clone());
        assert!(stream.timed_metadata::<NoMetadata>().is_some());
        assert!(stream.timed_metadata::<Other>().is_none());
        assert!(
            HlsStream::new("t", config)
                .timed_metadata::<NoMetadata>()
                .is_none()
        );
        stream.observe(&Config);
        assert_eq!(stream.media_now_ns(), None);
        let frame = |media_ns, video| FrameTime { media_ns, video };
        stream.observe(&frame(5 * SECOND, false));
        stream.observe(&frame(4 * SECOND, true));
        stream.observe(&frame(6 * SECOND, false));
        assert_eq!(stream.media_now_ns(), Some(4 * SECOND), "video leads");
        let heard = recorder.0.lock().expect("not poisoned").clone();
        let expected = [5 * SECOND, 4 * SECOND, 4 * SECOND].map(|ns| ("s".to_string(), ns));
        assert_eq!(heard, expected);
    }
}
