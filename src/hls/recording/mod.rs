//! Recordings: every live session written to disk as it is packaged, and played back as VOD
//! at `/vod/{id}/index.m3u8` (docs/recordings.md).
//!
//! What is written is what was served live, byte for byte: each rendition's init segments and
//! complete segments (their `emsg` boxes included) as the packager completed them — no second
//! encode, no remux — with media playlists and a multivariant playlist rendered by the live
//! playlist model from the recording's manifest ([`manifest`]), carrying the session's
//! EXT-X-DATERANGEs as the live playlists did.
//!
//! # Off the packaging path
//!
//! A rendition hands each segment it completes (shared `Bytes`, nothing copied) to its
//! session's writer thread through an unbounded channel whose *bytes* are bounded
//! ([`Budget`], `recordings.queue_mb` per session): a send never blocks the packager. A
//! segment that does not fit is not recorded — logged, the recording marked `incomplete`, the
//! next recorded segment of the rendition opening with EXT-X-DISCONTINUITY — so a slow disk
//! delays the recording and never a live part. One writer thread per session does the file
//! I/O; the index row is written through the main runtime's handle.
//!
//! # Crash safety
//!
//! A segment first (under its final name, one `writev`), then the journal line or manifest
//! that lists it, then the playlists rendered from that manifest, so no playlist or manifest
//! ever names a file that is not complete on disk. Init segments, manifests and playlists are
//! written under a temporary name, then renamed into place. Nothing is fsynced while a
//! recording grows (the files of its last two minutes, the manifest and playlists are once it
//! is finished): after a power loss the check of each listed file's size at the next start
//! ends the recording before the first one that is not whole. At startup
//! ([`Recorder::open`]) a manifest still in state `recording` (the server was killed) is
//! finished at its last complete segment as `cut_short`, its playlists get EXT-X-ENDLIST, and
//! leftover temporary files and the segment files it does not list are removed.
//!
//! # Sessions
//!
//! One recording per HLS session ([`super::stream::HlsStream::session`]): a publisher that
//! reconnects within the grace period continues the session and so the recording (the
//! packager's EXT-X-DISCONTINUITY at the seam is recorded with the segment), a publish after
//! the grace starts a new session and a new recording. A node that continues the session of a
//! node that died (a cluster's handoff) records its part as a recording of its own
//! ([`continued_recording_id`]) and closes the dead node's part, still listed as recording, as
//! cut short ([`Index::close_cut_short`]).

mod config;
pub mod index;
pub mod manifest;
pub mod retention;
mod segments;
pub mod vod;
mod writer;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use chrono::{DateTime, Utc};

pub use config::Config;
pub use index::{Entry, Filter, Index};
pub use manifest::{Manifest, RecordingState};

use super::packager::{CompletedSegment, Packager};
use super::stream::{RenditionKind, TrackInfo};
use super::timed::{MediaNow, TimedMetadata};
use manifest::Kind;

/// Longest recording id (a stream name of up to 64 characters, `-`, a session id).
pub const MAX_ID: usize = 128;

/// Whether `id` can be a recording id: 1–[`MAX_ID`] of `[A-Za-z0-9_-]` (ids are directory
/// names and URL segments: nothing else can reach the file system through one).
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The id of the recording of session `session` of stream `stream`.
pub fn recording_id(stream: &str, session: &str) -> String {
    format!("{stream}-{session}")
}

/// The id of the recording a node makes of session `session` of `stream` when it continues
/// that session after the node that started it died (docs/scaling.md, "When the owner dies"):
/// the session's id and when this node's part started (milliseconds, hex), so it never takes
/// the row of the dead node's part (`{stream}-{session}`) or of another successor's.
pub fn continued_recording_id(stream: &str, session: &str, started_at: DateTime<Utc>) -> String {
    format!(
        "{stream}-{session}-{:x}",
        started_at.timestamp_millis().max(0)
    )
}

/// Why the recordings could not be opened or changed.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// A file or directory could not be read, written or removed.
    #[error("recordings: {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The index could not be read or written.
    #[error("recordings index: {0}")]
    Index(#[from] sqlx::Error),
}

impl RecordingError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecordingError + '_ {
        move |source| RecordingError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Which show is live on a session: the shows of the commerce feature answer it (`hls`
/// owns the trait, so it never imports the feature; wired in `app`).
pub trait ShowOf: Send + Sync {
    /// The show live on session `session` of stream `stream`, if any.
    fn live_show(&self, stream: &str, session: &str) -> Option<String>;
}

/// Told when a recording is finished (`recording.ready` webhooks), on its writer thread: must
/// be quick (queue, never wait).
pub trait RecordingObserver: Send + Sync {
    /// Recording `entry` is finished and playable whole.
    fn ready(&self, entry: &Entry);
}

/// What the writers did, for `/metrics`.
#[derive(Debug, Default)]
pub struct RecordingCounters {
    /// Recordings finished (complete, playable whole).
    pub finished: AtomicU64,
    /// Media files (init segments and segments) written.
    pub files_written: AtomicU64,
    /// Media bytes written.
    pub bytes_written: AtomicU64,
    /// Media that did not make it to disk: a write that failed, or a segment dropped because
    /// the write queue was full.
    pub failed: AtomicU64,
    /// Recordings deleted (by retention or the API).
    pub deleted: AtomicU64,
}

impl RecordingCounters {
    /// Prometheus text of the counters.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for (name, help, value) in [
            (
                "cuecast_recordings_finished_total",
                "Recordings finished (playable whole).",
                &self.finished,
            ),
            (
                "cuecast_recording_files_written_total",
                "Recorded media files (init segments and segments) written to disk.",
                &self.files_written,
            ),
            (
                "cuecast_recording_bytes_written_total",
                "Recorded media bytes written to disk.",
                &self.bytes_written,
            ),
            (
                "cuecast_recording_failures_total",
                "Recorded media not written: a failed write, or a segment dropped because the write queue was full.",
                &self.failed,
            ),
            (
                "cuecast_recordings_deleted_total",
                "Recordings deleted (retention or DELETE /api/recordings/{id}).",
                &self.deleted,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        out
    }
}

/// Why a recording could not be deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// No such recording.
    #[error("no recording {0}")]
    Unknown(String),
    /// The recording is still being written.
    #[error("recording {0} is still being written")]
    Live(String),
    /// Its files or row could not be removed.
    #[error(transparent)]
    Failed(#[from] RecordingError),
}

/// The recordings of a server: starts a writer per session, knows which recordings are being
/// written, finishes what a crash left, and applies retention.
pub struct Recorder {
    /// The recordings directory.
    dir: PathBuf,
    /// Per-session bound of the write queue, bytes.
    queue_bytes: usize,
    /// Floor of EXT-X-TARGETDURATION, seconds.
    target_duration: u64,
    /// The `recordings` table.
    index: Index,
    /// The runtime the index is written on (writer threads block on it).
    runtime: tokio::runtime::Handle,
    /// Which show is live on a session.
    shows: OnceLock<Arc<dyn ShowOf>>,
    /// Who hears of finished recordings.
    observer: OnceLock<Arc<dyn RecordingObserver>>,
    /// Ids of the recordings being written.
    live: Mutex<HashSet<String>>,
    /// The writer threads, joined at shutdown.
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// What the writers did.
    pub counters: RecordingCounters,
}

impl Recorder {
    /// Opens the recordings under `dir` (created if missing): finishes every recording a
    /// crash left in state `recording` as `cut_short`, removes temporary files, and writes
    /// every manifest's row into the index (so the index follows the directory). Call on the
    /// runtime the index is written on.
    pub async fn open(
        dir: PathBuf,
        queue_bytes: usize,
        target_duration: u64,
        pool: sqlx::AnyPool,
    ) -> Result<Arc<Recorder>, RecordingError> {
        std::fs::create_dir_all(&dir).map_err(RecordingError::io(&dir))?;
        let shared = crate::store::is_shared(&pool);
        let index = Index::new(pool);
        let recovered = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || writer::recover_all(&dir, Utc::now()))
                .await
                .map_err(|err| RecordingError::Io {
                    path: PathBuf::new(),
                    source: std::io::Error::other(err),
                })??
        };
        let known: HashSet<String> = recovered.iter().map(|m| m.id.clone()).collect();
        for manifest in &recovered {
            index.upsert(&Entry::of(manifest)).await?;
        }
        // Rows whose directory is gone (deleted by hand) go too — on the embedded store only:
        // a shared database also indexes the other nodes' recordings, which are not here.
        for entry in index.list(&Filter::default()).await? {
            if !shared && !known.contains(&entry.id) {
                index.delete(&entry.id).await?;
            }
        }
        Ok(Arc::new(Recorder {
            dir,
            queue_bytes,
            target_duration: target_duration.max(1),
            index,
            runtime: tokio::runtime::Handle::current(),
            shows: OnceLock::new(),
            observer: OnceLock::new(),
            live: Mutex::new(HashSet::new()),
            threads: Mutex::new(Vec::new()),
            counters: RecordingCounters::default(),
        }))
    }

    /// Sets who hears of finished recordings (once).
    pub fn set_observer(&self, observer: Arc<dyn RecordingObserver>) {
        let _ = self.observer.set(observer);
    }

    /// Sets who answers which show is live on a session (once).
    pub fn set_shows(&self, shows: Arc<dyn ShowOf>) {
        let _ = self.shows.set(shows);
    }

    /// The recordings directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Whether recording `id` is being written.
    pub fn is_live(&self, id: &str) -> bool {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(id)
    }

    /// Starts recording session `session` of `stream` (started at `started_at`), with the
    /// session's timed metadata rendered into its playlists. Spawns the session's writer
    /// thread; everything slow happens there.
    ///
    /// `continued`: this node continues a session another node started and died in (a
    /// handoff). Its part is then a recording of its own ([`continued_recording_id`]: the
    /// same stream and session, a new id, its own files here), and the writer closes the parts
    /// of the session the index still lists as `recording` as `cut_short`
    /// ([`Index::close_cut_short`]): the node that wrote them is gone (its lease expired before
    /// this node took the stream).
    pub fn begin(
        self: &Arc<Self>,
        stream: &str,
        session: &str,
        continued: bool,
        started_at: DateTime<Utc>,
        metadata: Option<Arc<dyn TimedMetadata>>,
        media_now: Arc<MediaNow>,
    ) -> StreamRecording {
        let id = if continued {
            continued_recording_id(stream, session, started_at)
        } else {
            recording_id(stream, session)
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let budget = Arc::new(Budget::new(self.queue_bytes));
        let manifest = Manifest::new(&id, stream, session, started_at, self.target_duration);
        let writer = writer::Writer {
            dir: self.dir.join(&id),
            manifest,
            recorder: Arc::clone(self),
            metadata,
            media_now,
            budget: Arc::clone(&budget),
            index_text: String::new(),
            close_predecessors: continued,
            checkpoint_at: None,
            journal: None,
            unsynced: std::collections::VecDeque::new(),
        };
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("cuecast-rec-{stream}"))
            .spawn(move || writer.run(rx));
        match spawned {
            Ok(thread) => {
                let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
                threads.retain(|t| !t.is_finished());
                threads.push(thread);
            }
            Err(err) => {
                tracing::error!(recording = %id, error = %err, "recording not started");
                self.writer_done(&id);
            }
        }
        StreamRecording { id, tx, budget }
    }

    /// A media file of `bytes` was written.
    fn counted_write(&self, bytes: usize) {
        self.counters.files_written.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes_written
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Media did not make it to disk.
    fn counted_failure(&self) {
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// A writer thread finished recording `id`.
    fn writer_done(&self, id: &str) {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// Waits for every writer thread to finish (their sessions ended: shutdown).
    pub async fn close(&self) {
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        let joined = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        });
        let _ = joined.await;
    }

    /// Deletes what `limits` choose at `now` (files, then the row), oldest first, never a
    /// recording being written. Returns the deleted ids.
    pub async fn apply_retention(
        &self,
        limits: retention::Limits,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, RecordingError> {
        let entries = self.index.list(&Filter::default()).await?;
        let candidates: Vec<retention::Candidate> = entries
            .iter()
            .map(|e| retention::Candidate {
                id: e.id.clone(),
                started_at: e.started_at,
                // A recording being written is never finished, whatever its row says.
                ended_at: e.ended_at.filter(|_| !self.is_live(&e.id)),
                bytes: e.bytes,
            })
            .collect();
        let chosen = retention::choose(&candidates, limits, now);
        for id in &chosen {
            if !is_valid_id(id) || self.is_live(id) {
                continue;
            }
            self.remove(id).await?;
            tracing::info!(recording = %id, "recording deleted by retention");
        }
        Ok(chosen)
    }

    /// Deletes recording `id`: its files, then its index row. Never one being written.
    pub async fn delete(&self, id: &str) -> Result<(), DeleteError> {
        if !is_valid_id(id) {
            return Err(DeleteError::Unknown(id.to_string()));
        }
        if self.is_live(id) {
            return Err(DeleteError::Live(id.to_string()));
        }
        if self
            .index
            .get(id)
            .await
            .map_err(RecordingError::from)?
            .is_none()
        {
            return Err(DeleteError::Unknown(id.to_string()));
        }
        self.remove(id).await?;
        tracing::info!(recording = %id, "recording deleted");
        Ok(())
    }

    /// Removes the directory (gone already is fine) and the row of a finished recording with
    /// a valid id.
    async fn remove(&self, id: &str) -> Result<(), RecordingError> {
        let path = self.dir.join(id);
        let removed = tokio::task::spawn_blocking({
            let path = path.clone();
            move || std::fs::remove_dir_all(&path)
        })
        .await
        .unwrap_or_else(|err| Err(std::io::Error::other(err)));
        match removed {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(RecordingError::Io { path, source }),
        }
        self.index.delete(id).await?;
        self.counters.deleted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The bytes a session's write queue may hold: reserved by the packaging side before a
/// segment is queued, released by the writer once it is on disk.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    queued: AtomicUsize,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Budget {
        Budget {
            limit,
            queued: AtomicUsize::new(0),
        }
    }

    /// Takes `bytes` if they fit; false (nothing taken) if not.
    pub fn try_reserve(&self, bytes: usize) -> bool {
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                queued
                    .checked_add(bytes)
                    .filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    /// Gives `bytes` back.
    pub fn release(&self, bytes: usize) {
        let _ = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                Some(queued.saturating_sub(bytes))
            });
    }

    /// Bytes queued now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

/// What a session's renditions send its writer.
#[derive(Debug)]
enum Job {
    /// A new init segment version.
    Init {
        rendition: String,
        kind: Kind,
        version: u32,
        data: Bytes,
        info: TrackInfo,
    },
    /// A complete segment.
    Segment {
        rendition: String,
        kind: Kind,
        segment: CompletedSegment,
    },
    /// A segment was not queued (the queue was full).
    Lost { rendition: String, kind: Kind },
    /// The session ended.
    End,
}

/// One session's recording, as its stream holds it: where its renditions send their media.
#[derive(Debug, Clone)]
pub struct StreamRecording {
    /// The recording id.
    pub id: String,
    tx: std::sync::mpsc::Sender<Job>,
    budget: Arc<Budget>,
}

impl StreamRecording {
    /// The feed of rendition `name`.
    pub fn feed(&self, name: &str, kind: RenditionKind) -> Feed {
        Feed {
            recording: self.clone(),
            rendition: name.to_string(),
            kind: kind.into(),
            next_msn: 0,
            init_version: None,
            info: TrackInfo::default(),
        }
    }

    /// The session ended: the writer finishes the recording after what is queued.
    pub fn finish(&self) {
        let _ = self.tx.send(Job::End);
    }

    fn send(&self, job: Job) {
        // The writer is gone only if its thread died; the live stream goes on regardless.
        let _ = self.tx.send(job);
    }
}

/// One rendition's side of the recording: takes each init version and complete segment from
/// the rendition's packager (called under the packager's lock, never blocking).
#[derive(Debug)]
pub struct Feed {
    recording: StreamRecording,
    rendition: String,
    kind: Kind,
    /// The next segment to hand over.
    next_msn: u64,
    /// The init version handed over last.
    init_version: Option<u32>,
    /// Codec facts of the latest init.
    info: TrackInfo,
}

impl Feed {
    /// The codec facts that come with the next init segment.
    pub fn set_info(&mut self, info: &TrackInfo) {
        if info.codecs.is_some() {
            self.info = info.clone();
        }
    }

    /// Hands over what `packager` has that the recording has not: a new init version, and
    /// the segments completed since the last call.
    pub fn take(&mut self, packager: &Packager) {
        if let Some(version) = packager.init_version()
            && self.init_version != Some(version)
            && let Some(data) = packager.init_by_version(version)
        {
            self.init_version = Some(version);
            self.recording.send(Job::Init {
                rendition: self.rendition.clone(),
                kind: self.kind,
                version,
                data,
                info: self.info.clone(),
            });
        }
        let complete_up_to = packager.position().complete_up_to;
        while self.next_msn < complete_up_to {
            let msn = self.next_msn;
            self.next_msn += 1;
            let Some(segment) = packager.completed_segment(msn) else {
                continue;
            };
            let bytes = segment.object.len();
            if self.recording.budget.try_reserve(bytes) {
                self.recording.send(Job::Segment {
                    rendition: self.rendition.clone(),
                    kind: self.kind,
                    segment,
                });
            } else {
                tracing::warn!(
                    recording = %self.recording.id,
                    rendition = %self.rendition,
                    msn,
                    queued = self.recording.budget.queued(),
                    "recording queue full: segment not recorded"
                );
                self.recording.send(Job::Lost {
                    rendition: self.rendition.clone(),
                    kind: self.kind,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::hls::packager::{CmafChunk, PackagerConfig};
    use crate::hls::registry::Registry;
    use crate::store::Store;

    const SECOND: u64 = 1_000_000_000;

    fn chunk(pts: u64, size: usize) -> CmafChunk {
        CmafChunk {
            data: Bytes::from(vec![(pts / SECOND) as u8; size]),
            pts,
            duration: SECOND,
            fragment_start: true,
            independent: true,
            program_date_time: Utc::now(),
        }
    }

    /// A registry of 1 s segments, without a recorder.
    fn unrecorded_registry() -> Registry {
        Registry::new(
            PackagerConfig {
                segment_target: Duration::from_secs(1),
                part_target: Duration::from_millis(200),
                window: Duration::from_secs(3),
            },
            Duration::from_secs(60),
        )
    }

    /// A registry recording into a temporary directory with a queue of `queue_bytes`.
    async fn recording_registry(
        queue_bytes: usize,
    ) -> (tempfile::TempDir, Store, Arc<Recorder>, Registry) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::in_memory().await.expect("store");
        let recorder = Recorder::open(dir.path().join("rec"), queue_bytes, 1, store.pool().clone())
            .await
            .expect("opened");
        let registry = unrecorded_registry();
        registry.set_recorder(Arc::clone(&recorder));
        (dir, store, recorder, registry)
    }

    fn info() -> TrackInfo {
        TrackInfo {
            codecs: Some("avc1.64001f".into()),
            resolution: Some((640, 360)),
            frame_rate: Some(30.0),
            channels: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_session_is_recorded_with_the_bytes_served_live_and_listed_once_ended() {
        let (_dir, _store, recorder, registry) = recording_registry(1 << 20).await;
        let (stream, _) = registry.publish("demo", Duration::from_secs(5), false);
        let id = stream.recording_id().expect("recorded").to_string();
        let source = stream.add_rendition("source", RenditionKind::Video);
        source.push_init(Bytes::from_static(b"init-bytes"), info());
        for second in 0..4 {
            source.push_chunk(chunk(second * SECOND, 100));
        }
        let live = source
            .packager()
            .segment(1)
            .expect("live segment")
            .to_bytes();
        assert!(recorder.is_live(&id));
        stream.end();
        recorder.close().await;
        assert!(!recorder.is_live(&id));
        let entry = recorder
            .index()
            .get(&id)
            .await
            .expect("query")
            .expect("listed");
        assert_eq!(entry.state, RecordingState::Complete);
        assert_eq!(entry.renditions, ["source"]);
        assert_eq!(
            entry.duration_s, 4.0,
            "the open segment completed at the end"
        );
        let dir = recorder.dir().join(&id);
        assert_eq!(
            std::fs::read(dir.join("source/seg1.m4s")).expect("seg1"),
            live
        );
        assert_eq!(
            std::fs::read(dir.join("source/init.mp4")).expect("init"),
            b"init-bytes"
        );
        let playlist = std::fs::read_to_string(dir.join("source/playlist.m3u8")).expect("read");
        assert!(
            playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"),
            "{playlist}"
        );
        assert!(
            playlist.ends_with("seg3.m4s\n#EXT-X-ENDLIST\n"),
            "{playlist}"
        );
        let index = std::fs::read_to_string(dir.join("index.m3u8")).expect("read");
        assert!(index.contains("source/playlist.m3u8"), "{index}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_drops_segments_from_the_recording_and_never_blocks_the_packager() {
        // Room for every 100-byte segment of the test, never for the 1000-byte one.
        let (_dir, _store, recorder, registry) = recording_registry(500).await;
        let (stream, _) = registry.publish("demo", Duration::from_secs(5), false);
        let id = stream.recording_id().expect("recorded").to_string();
        let source = stream.add_rendition("source", RenditionKind::Video);
        source.push_init(Bytes::from_static(b"init"), info());
        // A segment bigger than the whole queue is never recorded.
        source.push_chunk(chunk(0, 100));
        source.push_chunk(chunk(SECOND, 1000));
        source.push_chunk(chunk(2 * SECOND, 100));
        source.push_chunk(chunk(3 * SECOND, 100));
        // Every part went live.
        assert_eq!(source.packager().position().complete_up_to, 3);
        stream.end();
        recorder.close().await;
        let dir = recorder.dir().join(&id);
        let manifest: Manifest =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("read"))
                .expect("json");
        assert!(manifest.incomplete);
        let msns: Vec<u64> = manifest.renditions[0]
            .segments
            .iter()
            .map(|s| s.msn)
            .collect();
        assert!(!msns.contains(&1), "{msns:?}");
        let after_gap = manifest.renditions[0]
            .segments
            .iter()
            .find(|s| s.msn == 2)
            .expect("seg2 recorded");
        assert!(after_gap.discontinuity, "the gap is a discontinuity");
        assert!(!dir.join("source/seg1.m4s").exists());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delete_refuses_the_live_recording_then_removes_files_and_row() {
        let (_dir, _store, recorder, registry) = recording_registry(1 << 20).await;
        let (stream, _) = registry.publish("demo", Duration::from_secs(5), false);
        let id = stream.recording_id().expect("recorded").to_string();
        let source = stream.add_rendition("source", RenditionKind::Video);
        source.push_init(Bytes::from_static(b"init-bytes"), info());
        for second in 0..3 {
            source.push_chunk(chunk(second * SECOND, 100));
        }
        assert!(matches!(
            recorder.delete(&id).await,
            Err(DeleteError::Live(_))
        ));
        stream.end();
        recorder.close().await;
        let counters = &recorder.counters;
        assert_eq!(counters.finished.load(Ordering::Relaxed), 1);
        assert!(
            counters.files_written.load(Ordering::Relaxed) >= 3,
            "init and segments"
        );
        assert!(counters.bytes_written.load(Ordering::Relaxed) >= 200);
        assert_eq!(counters.failed.load(Ordering::Relaxed), 0);
        let dir = recorder.dir().join(&id);
        assert!(dir.exists());
        recorder.delete(&id).await.expect("deleted");
        assert!(!dir.exists());
        assert!(recorder.index().get(&id).await.expect("query").is_none());
        assert!(matches!(
            recorder.delete(&id).await,
            Err(DeleteError::Unknown(_))
        ));
        assert!(matches!(
            recorder.delete("../x").await,
            Err(DeleteError::Unknown(_))
        ));
        assert!(
            recorder
                .counters
                .render()
                .contains("cuecast_recordings_deleted_total 1\n")
        );
    }

    /// Issue #30: a node continuing the session of a node that died records its part as a
    /// recording of its own (same stream and session, a new id, numbering from the seam), and
    /// closes the dead node's part, still listed as recording, as cut short.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_continued_session_is_recorded_as_a_part_of_its_own_and_closes_the_dead_owners() {
        let (_dir, _store, recorder, registry) = recording_registry(1 << 20).await;
        // The owner that died: another node (a registry of its own) that packaged 16 s of the
        // session, and the last index row it wrote for its part.
        let owner = unrecorded_registry();
        let (dead_stream, _) = owner.publish("demo", Duration::from_secs(5), false);
        let source = dead_stream.add_rendition("source", RenditionKind::Video);
        source.push_init(Bytes::from_static(b"init-a"), info());
        for second in 0..16 {
            source.push_chunk(chunk(second * SECOND, 100));
        }
        let handoff = dead_stream.handoff();
        let session = handoff.session.clone();
        let seam = handoff.rendition("source").expect("source").next_msn;
        // Milliseconds, as the index keeps times.
        let started = chrono::DateTime::from_timestamp_millis(
            (Utc::now() - chrono::Duration::seconds(40)).timestamp_millis(),
        )
        .expect("t");
        let dead_id = recording_id("demo", &session);
        let mut dead = Entry::of(&Manifest::new(&dead_id, "demo", &session, started, 1));
        dead.duration_s = 15.0;
        recorder.index().upsert(&dead).await.expect("row");
        let (stream, continued) =
            registry.publish_continuing("demo", Duration::from_secs(5), false, Some(handoff));
        assert!(continued);
        let id = stream.recording_id().expect("recorded").to_string();
        assert_ne!(id, dead_id, "a recording of its own");
        assert!(
            id.starts_with(&format!("{dead_id}-")) && is_valid_id(&id),
            "{id}"
        );
        let source = stream.rendition("source").expect("from the handoff");
        source.push_init(Bytes::from_static(b"init-b"), info());
        for second in 17..21 {
            source.push_chunk(chunk(second * SECOND, 100));
        }
        stream.end();
        recorder.close().await;

        let part = recorder
            .index()
            .get(&id)
            .await
            .expect("query")
            .expect("row");
        assert_eq!(
            (part.stream.as_str(), part.session.as_str()),
            ("demo", session.as_str())
        );
        assert_eq!(part.state, RecordingState::Complete);
        assert!(part.started_at > dead.started_at);
        let closed = recorder.index().get(&dead_id).await.expect("query");
        assert_eq!(
            closed,
            Some(Entry {
                state: RecordingState::CutShort,
                ended_at: Some(started + chrono::Duration::seconds(15)),
                ..dead
            }),
            "the dead owner's part closed at its recorded end, nothing else changed"
        );
        let dir = recorder.dir().join(&id);
        let manifest: Manifest =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("read"))
                .expect("json");
        let first = manifest.renditions[0].segments.first().expect("a segment");
        assert_eq!(first.msn, seam, "the live numbering from the seam");
        assert!(seam > 15, "past the owner's segments: {seam}");
        assert!(!first.discontinuity, "nothing before it in this recording");
        assert!(dir.join(format!("source/seg{seam}.m4s")).is_file());
        assert!(
            !recorder.dir().join(&dead_id).exists(),
            "the dead node's files are its own"
        );
    }

    #[test]
    fn ids_are_names_only() {
        assert!(is_valid_id("demo-18c3f2a0b1"));
        assert_eq!(recording_id("demo", "18c3"), "demo-18c3");
        let at = chrono::DateTime::from_timestamp_millis(0x019a_0000_0000).expect("t");
        assert_eq!(
            continued_recording_id("demo", "18c3", at),
            "demo-18c3-19a00000000"
        );
        assert!(is_valid_id(&continued_recording_id(
            &"s".repeat(64),
            "19a0c0ffee0",
            Utc::now()
        )));
        for bad in ["", "..", "a/b", "a%2e", "a.b", &"x".repeat(MAX_ID + 1)] {
            assert!(!is_valid_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_budget_refuses_what_does_not_fit_and_takes_it_back() {
        let budget = Budget::new(100);
        assert!(budget.try_reserve(60));
        assert!(!budget.try_reserve(41), "161 > 100");
        assert_eq!(budget.queued(), 60);
        assert!(budget.try_reserve(40));
        budget.release(60);
        assert!(budget.try_reserve(60));
        budget.release(1000);
        assert_eq!(budget.queued(), 0);
    }
}
