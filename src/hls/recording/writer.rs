//! A session's writer thread, and the startup pass that finishes what a crash left. See the
//! module docs of [`super`] for the order of writes that keeps a recording consistent.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use chrono::{DateTime, Utc};

use super::manifest::{
    INDEX_FILE, JOURNAL_FILE, JournalLine, Kind, MANIFEST_FILE, Manifest, PLAYLIST_FILE,
    RecordingState, SegmentEntry,
};
use super::{Budget, Entry, Job, Recorder, RecordingError};
use crate::hls::packager::Resource;
use crate::hls::timed::{MediaNow, TimedMetadata, View};

/// Suffix of files being written.
const TEMP_SUFFIX: &str = ".tmp";

/// Writes `data` to `path` atomically: a temporary file in the same directory, then renamed
/// over `path`; the data is fsynced before the rename when `durable`.
pub(super) fn write_atomic(path: &Path, data: &[&[u8]], durable: bool) -> std::io::Result<()> {
    write_atomic_with(path, durable, |file| {
        for piece in data {
            file.write_all(piece)?;
        }
        Ok(())
    })
}

/// [`write_atomic`] of what `write` writes, through a buffer: a growing recording's manifest
/// and playlists (hundreds of kB after an hour) are serialized straight into the file, never
/// whole in memory — a new, larger temporary at every checkpoint is what made the writer
/// threads' heaps grow over a long show (docs/benchmarks/soak.md).
pub(super) fn write_atomic_with(
    path: &Path,
    durable: bool,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(TEMP_SUFFIX);
    let temp = PathBuf::from(temp);
    let result = (|| {
        let mut file =
            std::io::BufWriter::with_capacity(WRITE_BUFFER, std::fs::File::create(&temp)?);
        write(&mut file)?;
        let file = file.into_inner().map_err(|e| e.into_error())?;
        if durable {
            file.sync_data()?;
        }
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// The buffer [`write_atomic_with`] writes through.
const WRITE_BUFFER: usize = 32 * 1024;

/// Writes a segment's pieces (the packager's shared part buffers, nothing copied) to `path`
/// under its final name with one `writev` (another only after a short write): one open, one
/// write and one close per segment, no temporary name and no rename. Until the write returned
/// nothing names the file (the journal line or manifest that lists it comes after), and a file
/// a crash left half-written is not listed and is removed at the next start
/// ([`remove_unlisted`]); on an error here it is removed at once.
pub(super) fn write_segment(path: &Path, pieces: &[bytes::Bytes]) -> std::io::Result<()> {
    let result = (|| {
        let mut file = std::fs::File::create(path)?;
        let mut slices: Vec<std::io::IoSlice<'_>> =
            pieces.iter().map(|p| std::io::IoSlice::new(p)).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            match file.write_vectored(rest) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => std::io::IoSlice::advance_slices(&mut rest, n),
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// A session's writer: owns the recording's manifest and directory.
pub(super) struct Writer {
    /// The recording's directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// The recorder (index, shows, live set).
    pub recorder: Arc<Recorder>,
    /// The session's timed metadata (EXT-X-DATERANGE).
    pub metadata: Option<Arc<dyn TimedMetadata>>,
    /// "Now" on the session's media timeline.
    pub media_now: Arc<MediaNow>,
    /// The session's write queue bound.
    pub budget: Arc<Budget>,
    /// The renditions of the multivariant playlist as last written.
    pub index_text: String,
    /// This recording is a successor's part of a session another node started and died in:
    /// the session's other parts still listed as `recording` are closed as `cut_short` with
    /// the first index row written (retried at every checkpoint until it is done).
    pub close_predecessors: bool,
    /// When the manifest, playlists and index row were last written for new segments (at the
    /// first segment, then every [`CHECKPOINT_INTERVAL`] while the recording grows; the
    /// segments between go to the journal).
    pub checkpoint_at: Option<std::time::Instant>,
    /// The segment journal ([`JOURNAL_FILE`]), open for appending once a segment went to it.
    pub journal: Option<std::fs::File>,
    /// Media files written in the last [`WRITEBACK_WINDOW`], and when: what the end of the
    /// recording fsyncs.
    pub unsynced: std::collections::VecDeque<(PathBuf, std::time::Instant)>,
}

/// How often a growing recording's manifest, playlists and index row are rewritten. Between
/// these checkpoints each new segment is one line appended to the journal: rewriting the
/// manifest and a playlist per segment (a new file renamed over the old one, each time) made
/// the file system allocate and free inodes at every segment, the writer threads' top cost in
/// a profile (docs/benchmarks/density.md). The playlists of a recording being written (`/vod`,
/// `/api/recordings`) lag by up to this much; a crash loses nothing the journal holds (the next
/// start replays it).
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
/// Media files are not fsynced while a recording grows: the kernel writes them back (within
/// `vm.dirty_expire_centisecs`, 30 s by default) from its own threads. A killed process loses
/// nothing (the page cache holds it), a power loss the last seconds, and the next start's check
/// of each listed file's size ([`Manifest::cut_short`]) ends the recording before the first
/// file that did not reach the disk whole. When the recording finishes, the files written in
/// this last window (older ones are on disk by then) are fsynced, so a finished recording is
/// durable.
const WRITEBACK_WINDOW: std::time::Duration = std::time::Duration::from_secs(120);

impl Writer {
    /// Writes what comes until the session ends (or every sender is gone), then finishes the
    /// recording as complete.
    pub fn run(mut self, jobs: Receiver<Job>) {
        let id = self.manifest.id.clone();
        match std::fs::create_dir_all(&self.dir) {
            Ok(()) => self.save(false),
            Err(err) => tracing::error!(recording = %id, error = %err, "recording directory"),
        }
        tracing::info!(recording = %id, "recording started");
        while let Ok(job) = jobs.recv() {
            match job {
                Job::Init {
                    rendition,
                    kind,
                    version,
                    data,
                    info,
                } => {
                    let path = self
                        .dir
                        .join(&rendition)
                        .join(Resource::Init(version).to_string());
                    let written = std::fs::create_dir_all(self.dir.join(&rendition))
                        .and_then(|()| write_atomic(&path, &[&data], true));
                    let record = self.manifest.rendition_mut(&rendition, kind);
                    record.set_info(&info);
                    match written {
                        Ok(()) => {
                            self.recorder.counted_write(data.len());
                            if !record.inits.contains(&version) {
                                record.inits.push(version);
                                // The segments that follow name it: the manifest lists it first.
                                self.save(true);
                            }
                        }
                        Err(err) => {
                            tracing::error!(recording = %id, path = %path.display(), error = %err, "init segment not recorded");
                            self.recorder.counted_failure();
                            self.manifest.incomplete = true;
                        }
                    }
                }
                Job::Segment {
                    rendition,
                    kind,
                    segment,
                } => {
                    let bytes = segment.object.len();
                    let path = self
                        .dir
                        .join(&rendition)
                        .join(Resource::Segment(segment.msn).to_string());
                    let written = write_segment(&path, segment.object.pieces());
                    self.budget.release(bytes);
                    match &written {
                        Ok(()) => {
                            self.recorder.counted_write(bytes);
                            self.written(path.clone());
                        }
                        Err(_) => self.recorder.counted_failure(),
                    }
                    let record = self.manifest.rendition_mut(&rendition, kind);
                    match written {
                        Ok(()) if record.inits.contains(&segment.init_version) => {
                            let mut entry = SegmentEntry::of(&segment);
                            entry.discontinuity |= std::mem::take(&mut record.gap);
                            // Nothing before a rendition's first segment to be discontinuous
                            // with (a successor's part starts at the packager's seam).
                            entry.discontinuity &= !record.segments.is_empty();
                            record.segments.push(entry.clone());
                            self.grew(rendition, kind, entry);
                        }
                        Ok(()) => {
                            record.gap = true;
                            self.manifest.incomplete = true;
                            let _ = std::fs::remove_file(&path);
                        }
                        Err(err) => {
                            tracing::error!(recording = %id, path = %path.display(), error = %err, "segment not recorded");
                            record.gap = true;
                            self.manifest.incomplete = true;
                        }
                    }
                }
                Job::Lost { rendition, kind } => {
                    self.recorder.counted_failure();
                    self.manifest.rendition_mut(&rendition, kind).gap = true;
                    self.manifest.incomplete = true;
                }
                Job::End => break,
            }
        }
        self.sync_recent();
        self.render_dateranges(true);
        self.manifest.finish(RecordingState::Complete, Utc::now());
        self.save(false);
        self.journal = None;
        if let Err(err) = std::fs::remove_file(self.dir.join(JOURNAL_FILE))
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(recording = %id, error = %err, "recording journal not removed");
        }
        tracing::info!(
            recording = %id,
            duration_s = self.manifest.duration().as_secs_f64(),
            bytes = self.manifest.bytes(),
            incomplete = self.manifest.incomplete,
            "recording finished"
        );
        self.recorder
            .counters
            .finished
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(observer) = self.recorder.observer.get() {
            observer.ready(&Entry::of(&self.manifest));
        }
        self.recorder.writer_done(&id);
    }

    /// Notes a media file written now (forgetting those older than [`WRITEBACK_WINDOW`]).
    fn written(&mut self, path: PathBuf) {
        let now = std::time::Instant::now();
        while self
            .unsynced
            .front()
            .is_some_and(|(_, at)| now.duration_since(*at) > WRITEBACK_WINDOW)
        {
            self.unsynced.pop_front();
        }
        self.unsynced.push_back((path, now));
    }

    /// Fsyncs the media files of the last [`WRITEBACK_WINDOW`] (the recording has finished).
    fn sync_recent(&mut self) {
        for (path, _) in self.unsynced.drain(..) {
            if let Err(err) = std::fs::File::open(&path).and_then(|file| file.sync_data()) {
                tracing::warn!(path = %path.display(), error = %err, "recording segment not synced");
            }
        }
    }

    /// The session's EXT-X-DATERANGEs as its live playlists list them now.
    fn render_dateranges(&mut self, ended: bool) {
        if let Some(metadata) = &self.metadata {
            let view = View {
                window_start: None,
                now_ns: self.media_now.now_ns().unwrap_or(0),
                ended,
                delta: None,
            };
            self.manifest.dateranges = metadata.render(&view).dateranges;
        }
    }

    /// A segment was recorded: a checkpoint when one is due, else a line in the journal.
    fn grew(&mut self, rendition: String, kind: Kind, segment: SegmentEntry) {
        let due = self
            .checkpoint_at
            .is_none_or(|at| at.elapsed() >= CHECKPOINT_INTERVAL);
        if due {
            self.save(true);
            return;
        }
        let line = JournalLine {
            rendition,
            kind,
            segment,
        };
        if let Err(err) = self.append(&line) {
            tracing::warn!(recording = %self.manifest.id, error = %err, "recording journal not written: checkpoint instead");
            self.save(true);
        }
    }

    /// Appends `line` to the journal (opened on first use).
    fn append(&mut self, line: &JournalLine) -> std::io::Result<()> {
        let mut text = serde_json::to_vec(line).map_err(std::io::Error::other)?;
        text.push(b'\n');
        let journal = match self.journal.as_mut() {
            Some(journal) => journal,
            None => self.journal.insert(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join(JOURNAL_FILE))?,
            ),
        };
        journal.write_all(&text)
    }

    /// A checkpoint (`growing`) or the start or end of the recording: the manifest, then every
    /// playlist (the multivariant one when its renditions changed), then the journal emptied
    /// (the manifest now lists what it held), then the index row.
    fn save(&mut self, growing: bool) {
        if self.manifest.show.is_none()
            && let Some(shows) = self.recorder.shows.get()
        {
            self.manifest.show = shows.live_show(&self.manifest.stream, &self.manifest.session);
        }
        if growing {
            self.render_dateranges(false);
            // The interval counts from the first checkpoint with media in it, so a new
            // recording is listed with its first segment at once (an init segment comes first).
            if self
                .manifest
                .renditions
                .iter()
                .any(|r| !r.segments.is_empty())
            {
                self.checkpoint_at = Some(std::time::Instant::now());
            }
        }
        match write_files(&self.dir, &self.manifest, None, &mut self.index_text) {
            Ok(()) => {
                if let Some(journal) = &self.journal
                    && let Err(err) = journal.set_len(0)
                {
                    tracing::warn!(recording = %self.manifest.id, error = %err, "recording journal not emptied");
                }
            }
            Err(err) => {
                tracing::error!(recording = %self.manifest.id, error = %err, "recording playlists not written");
            }
        }
        let entry = Entry::of(&self.manifest);
        let index = self.recorder.index.clone();
        if let Err(err) = self.recorder.runtime.block_on(index.upsert(&entry)) {
            tracing::error!(recording = %self.manifest.id, error = %err, "recording index not written");
            return;
        }
        if self.close_predecessors {
            let closed = self.recorder.runtime.block_on(index.close_cut_short(
                &self.manifest.stream,
                &self.manifest.session,
                &self.manifest.id,
            ));
            match closed {
                Ok(ids) => {
                    self.close_predecessors = false;
                    for previous in ids {
                        tracing::info!(recording = %self.manifest.id, previous = %previous, "recording of the session's previous owner closed as cut short");
                    }
                }
                Err(err) => {
                    tracing::warn!(recording = %self.manifest.id, error = %err, "the session's previous recording not closed (retried at the next checkpoint)");
                }
            }
        }
    }
}

/// Writes the manifest, then the media playlists (of `rendition`, or all) and the multivariant
/// playlist it renders (while growing, only when its renditions differ from `index`, the ones
/// written last, which it updates). Only a finished recording's files are fsynced; while it
/// grows, a manifest or playlist lost with the page cache is the previous one, and the check at
/// the next start ends it before any segment that is not whole on disk.
fn write_files(
    dir: &Path,
    manifest: &Manifest,
    rendition: Option<&str>,
    index: &mut String,
) -> Result<(), RecordingError> {
    let durable = manifest.state.is_finished();
    let path = dir.join(MANIFEST_FILE);
    write_atomic_with(&path, durable, |file| {
        serde_json::to_writer(file, manifest).map_err(std::io::Error::other)
    })
    .map_err(RecordingError::io(&path))?;
    // Every playlist when asked for all, else the one of the rendition that grew (the others
    // get the latest DATERANGEs with their own next segment, and all of them at the end).
    for record in &manifest.renditions {
        if rendition.is_some_and(|name| name != record.name) || record.segments.is_empty() {
            continue;
        }
        if let Some(playlist) = manifest.media_playlist(&record.name) {
            let path = dir.join(&record.name).join(PLAYLIST_FILE);
            write_atomic_with(&path, durable, |file| write!(file, "{playlist}"))
                .map_err(RecordingError::io(&path))?;
        }
    }
    if let Some(playlist) = manifest.multivariant() {
        // Its BANDWIDTHs move with every segment: while the recording grows it is rewritten
        // when its renditions change, and once more, exact, at the end.
        let shape: String = playlist
            .variants
            .iter()
            .map(|v| v.uri.as_str())
            .chain(playlist.audio.iter().filter_map(|a| a.uri.as_deref()))
            .collect::<Vec<_>>()
            .join(" ");
        if durable || shape != *index {
            let path = dir.join(INDEX_FILE);
            write_atomic(&path, &[playlist.to_string().as_bytes()], durable)
                .map_err(RecordingError::io(&path))?;
            *index = shape;
        }
    }
    Ok(())
}

/// Every recording's manifest under `dir`, those a crash left `recording` finished as
/// `cut_short` at `now` (their playlists rewritten with EXT-X-ENDLIST), temporary files
/// removed. Directories without a readable manifest are skipped (logged).
pub(super) fn recover_all(dir: &Path, now: DateTime<Utc>) -> Result<Vec<Manifest>, RecordingError> {
    let mut manifests = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(RecordingError::io(dir))? {
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        let is_recording = entry.file_type().is_ok_and(|t| t.is_dir())
            && entry.file_name().to_str().is_some_and(super::is_valid_id);
        if !is_recording {
            continue;
        }
        match recover(&path, now) {
            Ok(Some(manifest)) => manifests.push(manifest),
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "recording skipped"),
        }
    }
    Ok(manifests)
}

/// One recording directory: its manifest, finished as `cut_short` if a crash left it
/// `recording`; `None` without a manifest.
fn recover(dir: &Path, now: DateTime<Utc>) -> Result<Option<Manifest>, RecordingError> {
    remove_temp_files(dir);
    let path = dir.join(MANIFEST_FILE);
    let json = match std::fs::read(&path) {
        Ok(json) => json,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(RecordingError::Io { path, source }),
    };
    let mut manifest: Manifest =
        serde_json::from_slice(&json).map_err(|err| RecordingError::Io {
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, err),
        })?;
    let journal = dir.join(JOURNAL_FILE);
    if manifest.state == RecordingState::Recording
        && let Ok(text) = std::fs::read_to_string(&journal)
    {
        manifest.replay_journal(&text);
    }
    if manifest.state == RecordingState::Recording {
        let size = |name: &str| {
            std::fs::metadata(dir.join(name))
                .ok()
                .filter(std::fs::Metadata::is_file)
                .map(|m| m.len())
        };
        manifest.cut_short(size, now);
        write_files(dir, &manifest, None, &mut String::new())?;
        remove_unlisted(dir, &manifest);
        tracing::warn!(
            recording = %manifest.id,
            duration_s = manifest.duration().as_secs_f64(),
            "recording cut short (the server stopped while it was being written)"
        );
    }
    // Folded into the manifest now (or left by a finish that stopped before removing it).
    if let Err(err) = std::fs::remove_file(&journal)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %journal.display(), error = %err, "recording journal not removed");
    }
    Ok(Some(manifest))
}

/// Removes the segment files of `manifest`'s renditions that it does not list: a segment a
/// crash left half-written (segments are written under their final names, [`write_segment`]),
/// and those after the first file [`Manifest::cut_short`] did not find whole.
fn remove_unlisted(dir: &Path, manifest: &Manifest) {
    for rendition in &manifest.renditions {
        let listed: std::collections::HashSet<String> =
            rendition.segments.iter().map(|s| s.file()).collect();
        let Ok(entries) = std::fs::read_dir(dir.join(&rendition.name)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let is_segment = matches!(Resource::parse(name), Some(Resource::Segment(_)));
            if is_segment
                && !listed.contains(name)
                && let Err(err) = std::fs::remove_file(entry.path())
            {
                tracing::warn!(path = %entry.path().display(), error = %err, "unlisted recording segment not removed");
            }
        }
    }
}

/// Removes `*.tmp` files in `dir` and its rendition directories.
fn remove_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_temp_files(&path);
        } else if path.to_str().is_some_and(|p| p.ends_with(TEMP_SUFFIX)) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hls::recording::manifest::{Kind, SegmentEntry};

    #[test]
    fn a_segment_is_its_pieces_in_one_file_under_its_final_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("seg7.m4s");
        let pieces: Vec<bytes::Bytes> = (0u8..12)
            .map(|i| bytes::Bytes::from(vec![i; 1000 + usize::from(i)]))
            .collect();
        write_segment(&path, &pieces).expect("written");
        assert_eq!(std::fs::read(&path).expect("read"), pieces.concat());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["seg7.m4s"]);
        // A write that fails leaves no file.
        let missing = dir.path().join("nowhere").join("seg8.m4s");
        assert!(write_segment(&missing, &pieces).is_err());
        assert!(!missing.exists());
    }

    #[test]
    fn recovery_finishes_a_recording_left_recording_and_removes_temp_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rec = dir.path().join("demo-1");
        std::fs::create_dir_all(rec.join("source")).expect("mkdir");
        let t0 = Utc::now();
        let mut manifest = Manifest::new("demo-1", "demo", "1", t0, 2);
        let source = manifest.rendition_mut("source", Kind::Video);
        source.codecs = Some("avc1.64001f".into());
        source.inits.push(0);
        for msn in 0..3 {
            source.segments.push(SegmentEntry {
                msn,
                init_version: 0,
                discontinuity: false,
                independent: true,
                program_date_time: t0,
                duration_ns: 2_000_000_000,
                bytes: 4,
            });
        }
        write_atomic(&rec.join("source/init.mp4"), &[b"init"], true).expect("write");
        for msn in 0..2 {
            write_atomic(&rec.join(format!("source/seg{msn}.m4s")), &[b"data"], true)
                .expect("write");
        }
        // seg2 was being written when the server died (an older server wrote it under a
        // temporary name), and so was seg3, unlisted yet, under its final name.
        std::fs::write(rec.join("source/seg2.m4s.tmp"), b"da").expect("write");
        std::fs::write(rec.join("source/seg3.m4s"), b"d").expect("write");
        write_files(&rec, &manifest, None, &mut String::new()).expect("saved");
        // A directory without a manifest and a file that is not a recording are skipped.
        std::fs::create_dir_all(dir.path().join("empty")).expect("mkdir");
        std::fs::write(dir.path().join("stray.txt"), b"x").expect("write");

        let recovered = recover_all(dir.path(), t0).expect("recovered");
        assert_eq!(recovered.len(), 1);
        let manifest = &recovered[0];
        assert_eq!(manifest.state, RecordingState::CutShort);
        assert_eq!(manifest.renditions[0].segments.len(), 2);
        assert!(!rec.join("source/seg2.m4s.tmp").exists());
        assert!(
            !rec.join("source/seg3.m4s").exists(),
            "unlisted segment removed"
        );
        assert!(rec.join("source/seg1.m4s").exists());
        assert!(rec.join("source/init.mp4").exists());
        let playlist = std::fs::read_to_string(rec.join("source/playlist.m3u8")).expect("read");
        assert!(
            playlist.ends_with("seg1.m4s\n#EXT-X-ENDLIST\n"),
            "{playlist}"
        );
        let saved: Manifest =
            serde_json::from_slice(&std::fs::read(rec.join(MANIFEST_FILE)).expect("read"))
                .expect("json");
        assert_eq!(&saved, manifest);
        // A second start changes nothing.
        let again = recover_all(dir.path(), t0 + chrono::Duration::hours(1)).expect("again");
        assert_eq!(&again[0], manifest);
    }
}
