//! The segmenter and sliding window of ONE rendition (e.g. `source` video or `audio`).
//!
//! Pure state machine (no I/O, no clock): CMAF output of GStreamer's `cmafmux` comes in
//! through [`Packager::handle_init`] / [`Packager::handle_chunk`] / [`Packager::handle_end`];
//! playlists, segments and parts come out through the query methods.
//!
//! Model (RFC 8216, draft-pantos-hls-rfc8216bis):
//! - every CMAF chunk (moof+mdat) is one LL-HLS Partial Segment;
//! - a chunk with `fragment_start` begins a new CMAF fragment and so a new Media Segment
//!   (cmafmux's fragment-duration is the HLS segment target; video fragments start on
//!   keyframes);
//! - Media Sequence Numbers start at 0; parts are indexed from 0 within their segment (the
//!   `_HLS_part` of blocking reloads and the LAST-PART of rendition reports);
//! - every part also has a *part number*: its place among all parts the rendition published,
//!   from 0, whatever segment it ends up in. Part URIs use it, so the EXT-X-PRELOAD-HINT (the
//!   number of the next part) always names the part that comes next — also when the next chunk
//!   starts a new segment, which the hint cannot know in advance (a keyframe closes the segment
//!   wherever it falls).
//!
//! URIs, relative to the media playlist (`/hls/{stream}/{rendition}/playlist.m3u8`) — see
//! [`Resource`]: `init.mp4` (init version 0) / `init{n}.mp4` (version n ≥ 1),
//! `seg{msn}.m4s`, `part{number}.m4s`.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::handoff::{RenditionHandoff, SKIP_INIT_VERSIONS, SKIP_MSNS, SKIP_PARTS};
use super::rendition::RenditionKind;

use super::playlist::{
    Map, MediaPlaylist, MediaSegment, Part, PartInf, PartialSegment, PreloadHint, PreloadHintType,
    ServerControl,
};

/// CAN-SKIP-UNTIL in target durations: "at least six times the Target Duration"
/// (rfc8216bis §4.4.3.8); delta updates skip segments older than this.
pub const SKIP_BOUNDARY_TARGETS: u32 = 6;

/// At least this many complete segments are listed once available, whatever the window
/// (RFC 8216 §6.2.2: the server "MUST NOT remove a Media Segment from a Playlist file
/// without an EXT-X-ENDLIST tag if that would produce a Playlist whose duration is less
/// than three times the target duration"; we keep ≥ 3 segments).
pub const MIN_LISTED_SEGMENTS: usize = 3;

/// Upper bound on parts in one segment. A publisher that never starts a new fragment
/// would otherwise grow the open segment without bound: at this many parts the segment is
/// force-closed and the next chunk opens a new one even without `fragment_start` (that
/// segment then may not start independently). 512 × 200 ms ≈ 100 s.
pub const MAX_PARTS_PER_SEGMENT: usize = 512;

/// `EXT-X-VERSION` of plain playlists: 6 is the minimum for `EXT-X-MAP` in a Media
/// Playlist without `EXT-X-I-FRAMES-ONLY` (RFC 8216 §7); decimal `EXTINF` needs 3.
pub const PLAIN_VERSION: u8 = 6;

/// `EXT-X-VERSION` of LL-HLS playlists: 9, because LL playlists may be served as Playlist
/// Delta Updates with `EXT-X-SKIP`, which requires version 9 (rfc8216bis §8); full and
/// delta playlists of a rendition then carry the same version.
pub const LOW_LATENCY_VERSION: u8 = 9;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// One CMAF chunk from cmafmux.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmafChunk {
    /// moof+mdat bytes of one CMAF chunk.
    pub data: Bytes,
    /// Presentation time of the chunk's first sample, ns, stream timeline.
    pub pts: u64,
    /// Chunk duration, ns.
    pub duration: u64,
    /// Starts a new CMAF fragment (→ new HLS segment).
    pub fragment_start: bool,
    /// Starts with an independent frame (keyframe; always true for audio).
    pub independent: bool,
    /// Wall-clock time of the chunk's first sample (ingest wall clock mapped through the
    /// stream timeline).
    pub program_date_time: DateTime<Utc>,
}

/// Settings of one [`Packager`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackagerConfig {
    /// Target segment duration (cmafmux fragment-duration); floor of EXT-X-TARGETDURATION.
    pub segment_target: Duration,
    /// Part target duration (cmafmux chunk-duration); floor of PART-TARGET (LL-HLS).
    pub part_target: Duration,
    /// How much media the playlist window lists (e.g. 30 s); at least
    /// [`MIN_LISTED_SEGMENTS`] complete segments are always kept.
    pub window: Duration,
}

/// Identifies one part: segment MSN and part index within the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartId {
    /// Media Sequence Number of the segment.
    pub msn: u64,
    /// Index of the part within the segment, from 0.
    pub part: u32,
}

/// The end of a rendition's playlist, as [`Packager::position`] reports it after every change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// Segments below this MSN are complete.
    pub complete_up_to: u64,
    /// The open segment: (MSN, parts so far).
    pub open: Option<(u64, u32)>,
    /// Parts of the last complete segment.
    pub last_complete_parts: u32,
    /// Current EXT-X-TARGETDURATION, seconds.
    pub target_duration: u64,
    /// EXT-X-ENDLIST is present.
    pub ended: bool,
    /// Parts published so far: the part number of the next part (the preload hint's).
    pub parts_published: u64,
}

impl Position {
    /// Same answer as [`Packager::contains`] for the state this position was taken from.
    pub fn contains(&self, msn: u64, part: Option<u32>) -> bool {
        let Some(part) = part else {
            return msn < self.complete_up_to;
        };
        if let Some((_, parts)) = self.open.filter(|(open, _)| *open == msn) {
            return part < parts;
        }
        if msn >= self.complete_up_to {
            return false;
        }
        // Past the last part of the last complete segment: part 0 of the next one.
        if msn + 1 == self.complete_up_to && part >= self.last_complete_parts {
            return self.contains(msn + 1, Some(0));
        }
        true
    }

    /// Whether the part numbered `number` has been published (for held part GETs).
    pub fn has_part(&self, number: u64) -> bool {
        number < self.parts_published
    }
}

/// A complete segment as a recording takes it ([`Packager::completed_segment`]): the bytes
/// served live and the facts its playlist line needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedSegment {
    /// Media Sequence Number (its file is [`Resource::Segment`]`(msn)`).
    pub msn: u64,
    /// Init version its chunks need ([`Resource::Init`]).
    pub init_version: u32,
    /// Starts a discontinuity (EXT-X-DISCONTINUITY).
    pub discontinuity: bool,
    /// Starts with an independent frame.
    pub independent: bool,
    /// Wall-clock time of the first sample.
    pub program_date_time: DateTime<Utc>,
    /// Duration.
    pub duration: Duration,
    /// Its bytes: its parts back to back, shared with the live origin.
    pub object: Object,
}

/// Why a chunk was not published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// No init segment received yet.
    NoInit,
    /// No segment is open for this chunk: before the first `fragment_start`, or after an
    /// init change (the next segment must start with a fragment start using the new init).
    AwaitingFragmentStart,
    /// [`Packager::handle_end`] was called.
    Ended,
}

/// What [`Packager::handle_chunk`] changed; used to wake blocked readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// Nothing changed.
    Dropped(DropReason),
    /// The chunk was appended to the open segment as part `PartId`.
    PartAdded(PartId),
    /// Segment `completed` was closed, and the chunk opened segment `started.msn` as its
    /// part 0.
    SegmentCompleted {
        /// MSN of the segment that is now complete.
        completed: u64,
        /// The new part (always part 0 of the new segment).
        started: PartId,
    },
}

impl ChunkOutcome {
    /// The part the chunk was published as, if any.
    pub fn part(&self) -> Option<PartId> {
        match *self {
            Self::Dropped(_) => None,
            Self::PartAdded(part) => Some(part),
            Self::SegmentCompleted { started, .. } => Some(started),
        }
    }

    /// The segment completed by this chunk, if any.
    pub fn completed(&self) -> Option<u64> {
        match *self {
            Self::SegmentCompleted { completed, .. } => Some(completed),
            _ => None,
        }
    }
}

/// Measured bitrate over the complete segments of the window, bits/s (init excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bandwidth {
    /// Highest segment bitrate (`BANDWIDTH`), rounded up.
    pub peak: u64,
    /// Total bits / total duration (`AVERAGE-BANDWIDTH`), rounded up.
    pub average: u64,
}

/// A resource under a rendition's directory, with its canonical URI ([`fmt::Display`]) and
/// parser ([`Resource::parse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// Init segment version n: `init.mp4` for 0, `init{n}.mp4` for n ≥ 1.
    Init(u32),
    /// Complete segment: `seg{msn}.m4s`.
    Segment(u64),
    /// Part by part number (see the module docs): `part{number}.m4s`.
    Part(u64),
}

impl Resource {
    /// Parses a file name produced by [`fmt::Display`]. Only canonical names are accepted
    /// (no leading zeros, no signs; `init0.mp4` is not a name), so each resource has
    /// exactly one URI and one cache key.
    pub fn parse(name: &str) -> Option<Self> {
        if name == "init.mp4" {
            return Some(Self::Init(0));
        }
        if let Some(n) = name
            .strip_prefix("init")
            .and_then(|s| s.strip_suffix(".mp4"))
        {
            return parse_canonical(n)
                .filter(|&n| n != 0)
                .and_then(|n| u32::try_from(n).ok())
                .map(Self::Init);
        }
        if let Some(n) = name
            .strip_prefix("seg")
            .and_then(|s| s.strip_suffix(".m4s"))
        {
            return parse_canonical(n).map(Self::Segment);
        }
        let number = name.strip_prefix("part")?.strip_suffix(".m4s")?;
        parse_canonical(number).map(Self::Part)
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Init(0) => f.write_str("init.mp4"),
            Self::Init(version) => write!(f, "init{version}.mp4"),
            Self::Segment(msn) => write!(f, "seg{msn}.m4s"),
            Self::Part(number) => write!(f, "part{number}.m4s"),
        }
    }
}

/// Decimal digits only, no leading zero (except "0" itself).
fn parse_canonical(digits: &str) -> Option<u64> {
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if canonical { digits.parse().ok() } else { None }
}

/// One version of the init segment.
#[derive(Debug)]
struct InitVersion {
    /// Version number, from 0, incremented on every change.
    version: u32,
    /// ftyp+moov bytes.
    data: Bytes,
}

/// The bytes of a served object, shared, never copied: one buffer (an init segment or a part),
/// or a complete segment as its parts back to back (the segment is never concatenated; the
/// origin writes its parts one after the other under one Content-Length).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Object {
    pieces: Vec<Bytes>,
    len: usize,
}

impl Object {
    /// Total length, bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The buffers, in order.
    pub fn pieces(&self) -> &[Bytes] {
        &self.pieces
    }

    /// The pieces, by value.
    pub fn into_pieces(self) -> Vec<Bytes> {
        self.pieces
    }

    /// One contiguous buffer (copied if there are several pieces): for inspection and tests,
    /// not for serving.
    pub fn to_bytes(&self) -> Bytes {
        match self.pieces.as_slice() {
            [one] => one.clone(),
            pieces => Bytes::from(pieces.concat()),
        }
    }
}

impl From<Bytes> for Object {
    fn from(bytes: Bytes) -> Object {
        Object {
            len: bytes.len(),
            pieces: vec![bytes],
        }
    }
}

/// A part, of the open segment or of a complete one.
#[derive(Debug)]
struct StoredPart {
    /// The part's bytes (the chunk as cmafmux produced it).
    data: Bytes,
    /// Duration, ns.
    duration: u64,
    /// Starts with an independent frame.
    independent: bool,
}

/// A complete segment.
#[derive(Debug)]
struct Segment {
    /// Media Sequence Number.
    msn: u64,
    /// Init version the segment's chunks need.
    init_version: u32,
    /// Starts a discontinuity (EXT-X-DISCONTINUITY): the init version changed, or a new
    /// publisher continues the stream after [`Packager::handle_interrupt`].
    discontinuity: bool,
    /// Wall-clock time of the first sample.
    program_date_time: DateTime<Utc>,
    /// Sum of the part durations, ns.
    duration: u64,
    /// Sum of the part sizes, bytes.
    size: usize,
    /// Part number of the first part.
    first_part: u64,
    /// The parts; the segment's bytes are theirs back to back.
    parts: Vec<StoredPart>,
}

impl Segment {
    fn part(&self, index: u32) -> Option<Bytes> {
        let entry = self.parts.get(usize::try_from(index).ok()?)?;
        Some(entry.data.clone())
    }

    fn object(&self) -> Object {
        Object {
            pieces: self.parts.iter().map(|part| part.data.clone()).collect(),
            len: self.size,
        }
    }

    fn starts_independent(&self) -> bool {
        self.parts.first().is_some_and(|p| p.independent)
    }

    /// Part numbers past the last part.
    fn parts_end(&self) -> u64 {
        self.first_part + self.parts.len() as u64
    }
}

/// The segment being filled; never empty (opened by its first chunk).
#[derive(Debug)]
struct OpenSegment {
    /// Media Sequence Number it will have.
    msn: u64,
    /// Init version its chunks need.
    init_version: u32,
    /// Starts a discontinuity (see [`Segment::discontinuity`]).
    discontinuity: bool,
    /// Wall-clock time of the first sample.
    program_date_time: DateTime<Utc>,
    /// Sum of part durations so far, ns.
    duration: u64,
    /// Sum of part sizes so far, bytes.
    size: usize,
    /// Part number of the first part.
    first_part: u64,
    /// Parts so far.
    parts: Vec<StoredPart>,
}

impl OpenSegment {
    fn complete(self) -> Segment {
        Segment {
            msn: self.msn,
            init_version: self.init_version,
            discontinuity: self.discontinuity,
            program_date_time: self.program_date_time,
            duration: self.duration,
            size: self.size,
            first_part: self.first_part,
            parts: self.parts,
        }
    }
}

/// Segmenter + sliding window of one rendition. See the module docs.
///
/// Init versioning: every init that differs from the current one becomes a new version
/// (0, 1, 2, …; URI `init.mp4`, `init1.mp4`, …). Segments remember the version they
/// need; the playlist writes `EXT-X-MAP` on the first listed segment and again, with
/// `EXT-X-DISCONTINUITY`, where the version changes. After an init change, chunks are
/// dropped until the next `fragment_start`. Old versions are kept while a stored segment
/// needs them.
#[derive(Debug)]
pub struct Packager {
    /// Settings.
    config: PackagerConfig,
    /// Init versions still needed, oldest first; the last is the current one.
    inits: VecDeque<InitVersion>,
    /// Complete segments listed in the playlist, oldest first.
    window: VecDeque<Segment>,
    /// Sum of `window` durations, ns.
    window_duration: u64,
    /// Segments that slid out of the window but stay fetchable, oldest first.
    retained: VecDeque<Segment>,
    /// Sum of `retained` durations, ns.
    retained_duration: u64,
    /// The segment being filled.
    open: Option<OpenSegment>,
    /// MSN of the next segment to open.
    next_msn: u64,
    /// Parts published so far (the part number of the next part).
    parts_published: u64,
    /// Init version of the most recently opened segment (for EXT-X-DISCONTINUITY).
    last_init_version: Option<u32>,
    /// Current EXT-X-TARGETDURATION, s; never decreases.
    target_duration: u64,
    /// Longest part seen, ns (raises PART-TARGET if above the configured target).
    max_part_duration: u64,
    /// EXT-X-DISCONTINUITY-SEQUENCE: discontinuities that slid out of the window.
    discontinuity_sequence: u64,
    /// The publisher was lost ([`Packager::handle_interrupt`]): the next segment opened
    /// starts with EXT-X-DISCONTINUITY (and EXT-X-MAP).
    discontinuity_pending: bool,
    /// The publisher ended (EXT-X-ENDLIST).
    ended: bool,
    /// Version number of the first init (non-zero when continuing another node's session).
    first_init_version: u32,
}

impl Packager {
    /// A packager with no init and no segments.
    pub fn new(config: PackagerConfig) -> Self {
        Self {
            config,
            inits: VecDeque::new(),
            window: VecDeque::new(),
            window_duration: 0,
            retained: VecDeque::new(),
            retained_duration: 0,
            open: None,
            next_msn: 0,
            parts_published: 0,
            last_init_version: None,
            target_duration: ceil_secs(config.segment_target).max(1),
            max_part_duration: 0,
            discontinuity_sequence: 0,
            discontinuity_pending: false,
            ended: false,
            first_init_version: 0,
        }
    }

    /// A packager continuing a rendition another node packaged until it died (see
    /// [`crate::hls::handoff`]): numbering continues from `handoff`, and the first segment
    /// starts with EXT-X-DISCONTINUITY (and EXT-X-MAP of a new init version).
    pub fn continuing(config: PackagerConfig, handoff: &RenditionHandoff) -> Self {
        let mut packager = Packager::new(config);
        packager.next_msn = handoff.next_msn;
        packager.parts_published = handoff.next_part;
        packager.first_init_version = handoff.next_init_version;
        packager.discontinuity_sequence = handoff.discontinuity_sequence;
        packager.discontinuity_pending = true;
        packager.target_duration = packager.target_duration.max(handoff.target_duration);
        packager
    }

    /// Where a successor continues this rendition (see [`crate::hls::handoff`]): past every
    /// number this packager has used, and may use before its next segment boundary.
    pub fn handoff(&self, name: &str, kind: RenditionKind) -> RenditionHandoff {
        let discontinuities = self
            .window
            .iter()
            .map(|segment| segment.discontinuity)
            .chain(self.open.as_ref().map(|open| open.discontinuity))
            .filter(|&d| d)
            .count() as u64;
        let next_init_version = self
            .inits
            .back()
            .map_or(self.first_init_version, |init| init.version + 1);
        RenditionHandoff {
            name: name.to_string(),
            audio: kind == RenditionKind::Audio,
            next_msn: self.next_msn + SKIP_MSNS,
            next_part: self.parts_published + SKIP_PARTS,
            next_init_version: next_init_version + SKIP_INIT_VERSIONS,
            discontinuity_sequence: self.discontinuity_sequence + discontinuities,
            target_duration: self.target_duration,
            seam_date: self.seam_date(),
        }
    }

    /// PROGRAM-DATE-TIME where a successor's media would meet this rendition's: the start of
    /// the open segment, else the end of the last complete one (`None` before any segment).
    /// Every viewer has loaded up to here at least, if it follows the live edge.
    fn seam_date(&self) -> Option<DateTime<Utc>> {
        if let Some(open) = &self.open {
            return Some(open.program_date_time);
        }
        self.window
            .back()
            .map(|segment| segment.program_date_time + super::timeline::nanos(segment.duration))
    }

    /// The settings.
    pub fn config(&self) -> &PackagerConfig {
        &self.config
    }

    /// Init segment (ftyp+moov). The same bytes again are a no-op; different bytes become
    /// a new init version (see the type docs). Ignored after [`Self::handle_end`].
    pub fn handle_init(&mut self, init: Bytes) {
        if self.ended {
            return;
        }
        if self
            .inits
            .back()
            .is_some_and(|current| current.data == init)
        {
            return;
        }
        let version = self
            .inits
            .back()
            .map_or(self.first_init_version, |current| current.version + 1);
        self.inits.push_back(InitVersion {
            version,
            data: init,
        });
        self.prune_inits();
    }

    /// Appends a chunk. A `fragment_start` chunk closes the open segment (never empty) and
    /// opens a new one. Chunks before any init, before the first `fragment_start`, after
    /// an init change until the next `fragment_start`, or after the end are dropped.
    pub fn handle_chunk(&mut self, chunk: CmafChunk) -> ChunkOutcome {
        if self.ended {
            return ChunkOutcome::Dropped(DropReason::Ended);
        }
        let Some(current_init) = self.inits.back().map(|init| init.version) else {
            return ChunkOutcome::Dropped(DropReason::NoInit);
        };
        let part = StoredPart {
            data: chunk.data,
            duration: chunk.duration,
            independent: chunk.independent,
        };

        let force_close = self
            .open
            .as_ref()
            .is_some_and(|open| open.parts.len() >= MAX_PARTS_PER_SEGMENT);
        if !chunk.fragment_start && !force_close {
            return match &mut self.open {
                Some(open) if open.init_version == current_init => {
                    self.max_part_duration = self.max_part_duration.max(part.duration);
                    let index = len_u32(open.parts.len());
                    open.duration = open.duration.saturating_add(part.duration);
                    open.size += part.data.len();
                    open.parts.push(part);
                    self.parts_published += 1;
                    ChunkOutcome::PartAdded(PartId {
                        msn: open.msn,
                        part: index,
                    })
                }
                _ => ChunkOutcome::Dropped(DropReason::AwaitingFragmentStart),
            };
        }

        self.max_part_duration = self.max_part_duration.max(part.duration);
        let completed = self.close_open();
        let msn = self.next_msn;
        self.next_msn += 1;
        let discontinuity = self.discontinuity_pending
            || self
                .last_init_version
                .is_some_and(|last| last != current_init);
        self.discontinuity_pending = false;
        self.last_init_version = Some(current_init);
        self.open = Some(OpenSegment {
            msn,
            init_version: current_init,
            discontinuity,
            program_date_time: chunk.program_date_time,
            duration: part.duration,
            size: part.data.len(),
            first_part: self.parts_published,
            parts: vec![part],
        });
        self.parts_published += 1;
        let started = PartId { msn, part: 0 };
        match completed {
            Some(completed) => ChunkOutcome::SegmentCompleted { completed, started },
            None => ChunkOutcome::PartAdded(started),
        }
    }

    /// The publisher ended: completes the open segment and marks the playlist ended
    /// (EXT-X-ENDLIST). Later inputs are ignored.
    pub fn handle_end(&mut self) {
        if !self.ended {
            self.close_open();
            self.ended = true;
        }
    }

    /// The publisher was lost but the stream goes on (a reconnect may continue it): completes
    /// the open segment, so every part listed so far belongs to a complete segment that stays
    /// fetchable, and marks the next segment as a discontinuity (rfc8216bis §4.4.4.3: the
    /// timestamps, encoder and possibly the codec parameters change there). MSNs continue.
    /// Without a segment yet, nothing needs marking. Ignored after the end.
    pub fn handle_interrupt(&mut self) {
        if self.ended {
            return;
        }
        self.close_open();
        if self.last_init_version.is_some() {
            self.discontinuity_pending = true;
        }
    }

    /// Whether [`Self::handle_end`] was called.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The current init segment.
    pub fn init(&self) -> Option<Bytes> {
        self.inits.back().map(|init| init.data.clone())
    }

    /// The current init version (URI: `Resource::Init(version)`).
    pub fn init_version(&self) -> Option<u32> {
        self.inits.back().map(|init| init.version)
    }

    /// Init segment `version`, while it is current or a stored segment needs it.
    pub fn init_by_version(&self, version: u32) -> Option<Bytes> {
        self.inits
            .iter()
            .find(|init| init.version == version)
            .map(|init| init.data.clone())
    }

    /// A complete segment's bytes by MSN: listed segments, and segments that slid out of
    /// the window within the last window length + one target duration (RFC 8216 §6.2.2:
    /// available "for a period of time equal to the duration of the segment plus the
    /// duration of the longest Playlist file"). Its parts' shared buffers; nothing is copied.
    pub fn segment(&self, msn: u64) -> Option<Object> {
        self.stored_segment(msn).map(Segment::object)
    }

    /// A complete segment with what a recording lists about it, while it is stored (listed or
    /// retained): just after it completed, always.
    pub fn completed_segment(&self, msn: u64) -> Option<CompletedSegment> {
        let segment = self.stored_segment(msn)?;
        Some(CompletedSegment {
            msn,
            init_version: segment.init_version,
            discontinuity: segment.discontinuity,
            independent: segment.starts_independent(),
            program_date_time: segment.program_date_time,
            duration: Duration::from_nanos(segment.duration),
            object: segment.object(),
        })
    }

    /// One part by (msn, index): parts of the open segment, of listed segments, and (as a
    /// convenience) of retained segments.
    pub fn part(&self, msn: u64, part: u32) -> Option<Bytes> {
        if let Some(open) = self.open.as_ref().filter(|open| open.msn == msn) {
            let index = usize::try_from(part).ok()?;
            return open.parts.get(index).map(|p| p.data.clone());
        }
        self.stored_segment(msn)?.part(part)
    }

    /// One part by part number (see the module docs): parts of the open segment, of listed
    /// segments and of retained segments.
    pub fn numbered_part(&self, number: u64) -> Option<Bytes> {
        if let Some(open) = self.open.as_ref().filter(|open| number >= open.first_part) {
            let index = usize::try_from(number - open.first_part).ok()?;
            return open.parts.get(index).map(|p| p.data.clone());
        }
        // Stored segments hold consecutive part numbers, oldest first.
        [&self.retained, &self.window]
            .into_iter()
            .find_map(|segments| {
                let segment =
                    segments.get(segments.partition_point(|s| s.parts_end() <= number))?;
                segment.part(u32::try_from(number.checked_sub(segment.first_part)?).ok()?)
            })
    }

    /// Any resource of this rendition by its parsed URI.
    pub fn resource(&self, resource: Resource) -> Option<Object> {
        match resource {
            Resource::Init(version) => self.init_by_version(version).map(Object::from),
            Resource::Segment(msn) => self.segment(msn),
            Resource::Part(number) => self.numbered_part(number).map(Object::from),
        }
    }

    /// MSN of the last complete segment in the window.
    pub fn last_msn(&self) -> Option<u64> {
        self.window.back().map(|segment| segment.msn)
    }

    /// The last published part (for `EXT-X-RENDITION-REPORT` LAST-MSN / LAST-PART): the
    /// open segment's last part, else the last part of the last complete segment.
    pub fn last_part(&self) -> Option<PartId> {
        if let Some(open) = &self.open {
            let part = len_u32(open.parts.len()).checked_sub(1)?;
            return Some(PartId {
                msn: open.msn,
                part,
            });
        }
        let last = self.window.back()?;
        Some(PartId {
            msn: last.msn,
            part: len_u32(last.parts.len()).checked_sub(1)?,
        })
    }

    /// The part number of the next part, whatever segment it will be in (the
    /// `EXT-X-PRELOAD-HINT` target).
    pub fn next_part_number(&self) -> u64 {
        self.parts_published
    }

    /// The position the next chunk takes unless it starts a new segment (the `_HLS_msn` /
    /// `_HLS_part` a client asks for next): the open segment's next index, else part 0 of the
    /// next MSN.
    pub fn next_part(&self) -> PartId {
        match &self.open {
            Some(open) => PartId {
                msn: open.msn,
                part: len_u32(open.parts.len()),
            },
            None => PartId {
                msn: self.next_msn,
                part: 0,
            },
        }
    }

    /// Blocking playlist reload (rfc8216bis §6.2.5.2): whether the playlist already
    /// contains segment `msn` (`part == None`: complete) or part `part` of segment `msn`.
    /// "If the Partial Segment … is beyond the last Partial Segment of Segment M, it means
    /// Part 0 of Segment M+1." Segments that slid out count as contained.
    pub fn contains(&self, msn: u64, part: Option<u32>) -> bool {
        let complete_up_to = self.next_msn - u64::from(self.open.is_some());
        let Some(part) = part else {
            return msn < complete_up_to;
        };
        if let Some(open) = self.open.as_ref().filter(|open| open.msn == msn) {
            return part < len_u32(open.parts.len());
        }
        if msn >= complete_up_to {
            return false;
        }
        match self.stored_segment(msn) {
            // Past the last part of a complete segment: part 0 of the next one.
            Some(segment) if part >= len_u32(segment.parts.len()) => {
                self.contains(msn + 1, Some(0))
            }
            _ => true,
        }
    }

    /// Where the rendition ends now, as a small copyable value: published to blocked readers
    /// so they can test their directive without taking the packager's lock.
    pub fn position(&self) -> Position {
        Position {
            complete_up_to: self.next_msn - u64::from(self.open.is_some()),
            open: self
                .open
                .as_ref()
                .map(|open| (open.msn, len_u32(open.parts.len()))),
            last_complete_parts: self
                .window
                .back()
                .map_or(0, |segment| len_u32(segment.parts.len())),
            target_duration: self.target_duration,
            ended: self.ended,
            parts_published: self.parts_published,
        }
    }

    /// Current `EXT-X-TARGETDURATION`, seconds.
    ///
    /// `max(ceil(segment_target), round(longest segment so far))`, never decreasing.
    /// RFC 8216 §4.3.3.1 says the target duration MUST NOT change, and every `EXTINF`
    /// rounded to the nearest integer MUST be ≤ it; we start at the configured target and
    /// raise it only when a segment would otherwise violate it (a publisher with a 4 s GOP
    /// gets 4). Players re-read it on each reload.
    pub fn target_duration(&self) -> u64 {
        self.target_duration
    }

    /// Current `PART-TARGET`: `max(part_target, longest part so far)`, never decreasing
    /// (same policy as [`Self::target_duration`]: "every part duration ≤ PART-TARGET").
    pub fn part_target(&self) -> Duration {
        self.config
            .part_target
            .max(Duration::from_nanos(self.max_part_duration))
    }

    /// Measured bitrate over the complete segments in the window; `None` before the first
    /// segment completes (or if all have zero duration).
    pub fn bandwidth(&self) -> Option<Bandwidth> {
        let mut peak = None::<u64>;
        let mut bits: u128 = 0;
        let mut nanos: u128 = 0;
        for segment in self.window.iter().filter(|s| s.duration > 0) {
            let segment_bits = segment.size as u128 * 8;
            let rate = bits_per_sec(segment_bits, u128::from(segment.duration));
            peak = Some(peak.map_or(rate, |p| p.max(rate)));
            bits += segment_bits;
            nanos += u128::from(segment.duration);
        }
        Some(Bandwidth {
            peak: peak?,
            average: bits_per_sec(bits, nanos),
        })
    }

    /// The media playlist for the current state.
    ///
    /// Plain (`low_latency == false`): complete segments of the window only. LL: adds
    /// `EXT-X-SERVER-CONTROL`, `EXT-X-PART-INF`, `EXT-X-PART`s of the segments within 3
    /// target durations of the playlist end, the open segment's parts and
    /// `EXT-X-PRELOAD-HINT` for the next part (not after the end). `rendition_reports`
    /// and `skip` are left empty for the caller to fill.
    pub fn media_playlist(&self, low_latency: bool) -> MediaPlaylist {
        let target = self.target_duration;
        let target_span = Duration::from_secs(target);
        // "Remove a segment's EXT-X-PART lines once it is more than 3 target durations
        // from the playlist end": parts are listed for segments that start within
        // 3 × TARGETDURATION of the end.
        let parts_span = 3 * target.saturating_mul(NANOS_PER_SEC);
        let open_duration = self.open.as_ref().map_or(0, |open| open.duration);
        let mut from_end = open_duration.saturating_add(self.window_duration);

        let mut segments = Vec::with_capacity(self.window.len());
        let mut previous_init = None;
        for segment in &self.window {
            let with_parts = low_latency && from_end <= parts_span;
            from_end = from_end.saturating_sub(segment.duration);
            let parts = if with_parts {
                part_lines(segment.first_part, &segment.parts)
            } else {
                Vec::new()
            };
            segments.push(MediaSegment {
                discontinuity: segment.discontinuity,
                map: map_if_changed(
                    &mut previous_init,
                    segment.init_version,
                    segment.discontinuity,
                ),
                program_date_time: Some(segment.program_date_time),
                parts,
                duration: Duration::from_nanos(segment.duration),
                uri: Resource::Segment(segment.msn).to_string(),
            });
        }

        let partial = self.open.as_ref().filter(|_| low_latency).map(|open| {
            let parts = part_lines(open.first_part, &open.parts);
            PartialSegment {
                discontinuity: open.discontinuity,
                map: map_if_changed(&mut previous_init, open.init_version, open.discontinuity),
                program_date_time: Some(open.program_date_time),
                parts,
            }
        });

        let independent_segments = self.window.iter().all(Segment::starts_independent)
            && (partial.is_none()
                || self
                    .open
                    .as_ref()
                    .is_none_or(|open| open.parts.first().is_some_and(|p| p.independent)));
        let media_sequence = self
            .window
            .front()
            .map(|segment| segment.msn)
            .or_else(|| self.open.as_ref().map(|open| open.msn))
            .unwrap_or(self.next_msn);

        let part_target = self.part_target();
        let preload_hints = if low_latency && !self.ended {
            vec![PreloadHint {
                hint_type: PreloadHintType::Part,
                uri: Resource::Part(self.parts_published).to_string(),
            }]
        } else {
            Vec::new()
        };

        MediaPlaylist {
            version: if low_latency {
                LOW_LATENCY_VERSION
            } else {
                PLAIN_VERSION
            },
            target_duration: target,
            server_control: low_latency.then(|| ServerControl {
                can_block_reload: true,
                can_skip_until: Some(target_span * SKIP_BOUNDARY_TARGETS),
                can_skip_dateranges: false,
                hold_back: Some(target_span * 3),
                part_hold_back: Some(part_hold_back(part_target)),
            }),
            part_inf: low_latency.then_some(PartInf { part_target }),
            media_sequence,
            discontinuity_sequence: self.discontinuity_sequence,
            independent_segments,
            playlist_type: None,
            skip: None,
            dateranges: Vec::new(),
            segments,
            partial,
            preload_hints,
            end_list: self.ended,
            rendition_reports: Vec::new(),
        }
    }

    /// Closes the open segment into the window; returns its MSN.
    fn close_open(&mut self) -> Option<u64> {
        let segment = self.open.take()?.complete();
        let msn = segment.msn;
        let rounded = segment.duration.saturating_add(NANOS_PER_SEC / 2) / NANOS_PER_SEC;
        self.target_duration = self.target_duration.max(rounded);
        self.window_duration = self.window_duration.saturating_add(segment.duration);
        self.window.push_back(segment);
        self.slide_window();
        Some(msn)
    }

    /// Moves segments beyond the window to `retained`, and drops retained segments that
    /// were removed long enough ago.
    fn slide_window(&mut self) {
        let window = duration_nanos(self.config.window);
        while self.window.len() > MIN_LISTED_SEGMENTS && self.window_duration > window {
            let Some(removed) = self.window.pop_front() else {
                break;
            };
            self.window_duration -= removed.duration;
            if removed.discontinuity {
                self.discontinuity_sequence += 1;
            }
            self.retained_duration += removed.duration;
            self.retained.push_back(removed);
        }
        // Media time since a segment's removal ≈ the duration removed after it. Keep it
        // while that is ≤ the longest playlist (≥ the window, ≥ 3 target durations) plus
        // one target duration (≥ the segment's own duration).
        let target = self.target_duration.saturating_mul(NANOS_PER_SEC);
        let retention = window
            .max(target.saturating_mul(MIN_LISTED_SEGMENTS as u64))
            .saturating_add(target);
        while let Some(oldest) = self.retained.front() {
            if self.retained_duration - oldest.duration <= retention {
                break;
            }
            self.retained_duration -= oldest.duration;
            self.retained.pop_front();
        }
        self.prune_inits();
    }

    /// Drops init versions that are neither current nor needed by a stored segment.
    fn prune_inits(&mut self) {
        let oldest_needed = self
            .retained
            .front()
            .or(self.window.front())
            .map(|segment| segment.init_version)
            .or(self.open.as_ref().map(|open| open.init_version));
        while self.inits.len() > 1
            && self
                .inits
                .front()
                .is_some_and(|init| oldest_needed.is_none_or(|needed| init.version < needed))
        {
            self.inits.pop_front();
        }
    }

    /// A complete segment (window or retained) by MSN. MSNs are contiguous from the oldest
    /// retained segment to the newest listed one.
    fn stored_segment(&self, msn: u64) -> Option<&Segment> {
        let first = self.retained.front().or(self.window.front())?.msn;
        let index = usize::try_from(msn.checked_sub(first)?).ok()?;
        match index.checked_sub(self.retained.len()) {
            None => self.retained.get(index),
            Some(index) => self.window.get(index),
        }
    }
}

/// The `EXT-X-PART` lines of `parts`, numbered from `first`.
fn part_lines(first: u64, parts: &[StoredPart]) -> Vec<Part> {
    (first..)
        .zip(parts)
        .map(|(number, part)| Part {
            duration: Duration::from_nanos(part.duration),
            uri: Resource::Part(number).to_string(),
            independent: part.independent,
        })
        .collect()
}

/// PART-HOLD-BACK for `part_target`: three times the target rounded up to the millisecond, so
/// that the served strings meet "at least three times the Part Target Duration" (rfc8216bis
/// §4.4.3.8, SHOULD) against the PART-TARGET as written (rounded to the nearest millisecond).
/// Three times the unrounded target, rounded when written, can come out below it:
/// `PART-TARGET=0.300` with `PART-HOLD-BACK=0.899`.
fn part_hold_back(part_target: Duration) -> Duration {
    let millis = part_target.as_nanos().div_ceil(1_000_000);
    Duration::from_millis(
        u64::try_from(millis)
            .unwrap_or(u64::MAX / 3)
            .saturating_mul(3),
    )
}

/// `EXT-X-MAP` for `version` if it differs from the previous listed segment's, or after a
/// discontinuity (players reset their demuxer there and re-read the init segment).
pub(super) fn map_if_changed(
    previous: &mut Option<u32>,
    version: u32,
    discontinuity: bool,
) -> Option<Map> {
    if *previous == Some(version) && !discontinuity {
        return None;
    }
    *previous = Some(version);
    Some(Map {
        uri: Resource::Init(version).to_string(),
    })
}

/// Whole seconds, rounded up.
fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// Duration in ns, saturating.
fn duration_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// `bits / (nanos / 1e9)`, rounded up, saturating.
pub(super) fn bits_per_sec(bits: u128, nanos: u128) -> u64 {
    if nanos == 0 {
        return 0;
    }
    u64::try_from((bits * u128::from(NANOS_PER_SEC)).div_ceil(nanos)).unwrap_or(u64::MAX)
}

/// A part count or index as u32 (bounded by [`MAX_PARTS_PER_SEGMENT`]).
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const MS: u64 = 1_000_000;

    /// 2 s segments, 500 ms parts, 6 s window: short goldens.
    fn config() -> PackagerConfig {
        PackagerConfig {
            segment_target: Duration::from_secs(2),
            part_target: Duration::from_millis(500),
            window: Duration::from_secs(6),
        }
    }

    /// Drives a packager over a simulated timeline.
    struct Feed {
        packager: Packager,
        /// Stream time of the next chunk, ns.
        pts: u64,
    }

    impl Feed {
        fn new(config: PackagerConfig) -> Self {
            let mut packager = Packager::new(config);
            packager.handle_init(Bytes::from_static(b"INIT0"));
            Self { packager, pts: 0 }
        }

        fn chunk(&mut self, duration_ms: u64, fragment_start: bool) -> ChunkOutcome {
            let chunk = make_chunk(self.pts, duration_ms, fragment_start);
            self.pts += duration_ms * MS;
            self.packager.handle_chunk(chunk)
        }

        /// One segment of `parts` chunks of `part_ms`, the first a fragment start.
        fn segment(&mut self, parts: usize, part_ms: u64) {
            for index in 0..parts {
                self.chunk(part_ms, index == 0);
            }
        }
    }

    fn pdt_at(pts: u64) -> DateTime<Utc> {
        let base = Utc
            .with_ymd_and_hms(2024, 5, 1, 12, 0, 0)
            .single()
            .expect("valid date");
        base + chrono::Duration::nanoseconds(i64::try_from(pts).expect("small pts"))
    }

    fn make_chunk(pts: u64, duration_ms: u64, fragment_start: bool) -> CmafChunk {
        CmafChunk {
            data: Bytes::from(format!("[{pts}]")),
            pts,
            duration: duration_ms * MS,
            fragment_start,
            independent: fragment_start,
            program_date_time: pdt_at(pts),
        }
    }

    fn parse_media(text: &str) -> m3u8_rs::MediaPlaylist {
        m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("m3u8-rs parses our playlist")
    }

    #[test]
    fn golden_plain_mid_stream() {
        let mut feed = Feed::new(config());
        feed.segment(4, 500);
        feed.segment(4, 500);
        feed.chunk(500, true); // open segment 2: not listed in plain HLS
        let text = feed.packager.media_playlist(false).to_string();
        let expected = "\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI=\"init.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z
#EXTINF:2.000,
seg0.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:02.000Z
#EXTINF:2.000,
seg1.m4s
";
        assert_eq!(text, expected);
        let parsed = parse_media(&text);
        assert_eq!(parsed.version, Some(6));
        assert_eq!(parsed.target_duration, 2);
        assert_eq!(parsed.segments.len(), 2);
        assert_eq!(parsed.segments[1].uri, "seg1.m4s");
        assert!(!parsed.end_list);
        let map = parsed.segments[0]
            .map
            .as_ref()
            .expect("map on first segment");
        assert_eq!(map.uri, "init.mp4");
    }

    #[test]
    fn golden_plain_after_window_slides() {
        let mut feed = Feed::new(config());
        for _ in 0..5 {
            feed.segment(4, 500);
        }
        feed.chunk(500, true);
        let text = feed.packager.media_playlist(false).to_string();
        let expected = "\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:2
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI=\"init.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:04.000Z
#EXTINF:2.000,
seg2.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:06.000Z
#EXTINF:2.000,
seg3.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:08.000Z
#EXTINF:2.000,
seg4.m4s
";
        assert_eq!(text, expected);
        let parsed = parse_media(&text);
        assert_eq!(parsed.media_sequence, 2);
        assert_eq!(parsed.segments.len(), 3);
    }

    #[test]
    fn golden_plain_after_end() {
        let mut feed = Feed::new(config());
        feed.segment(4, 500);
        feed.chunk(500, true);
        feed.chunk(300, false); // open segment 1, 0.8 s, completed by the end
        feed.packager.handle_end();
        assert!(feed.packager.is_ended());
        let text = feed.packager.media_playlist(false).to_string();
        let expected = "\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI=\"init.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z
#EXTINF:2.000,
seg0.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:02.000Z
#EXTINF:0.800,
seg1.m4s
#EXT-X-ENDLIST
";
        assert_eq!(text, expected);
        assert!(parse_media(&text).end_list);
        // The LL form carries no preload hint after the end.
        let ll = feed.packager.media_playlist(true);
        assert!(ll.preload_hints.is_empty() && ll.partial.is_none() && ll.end_list);
        // Inputs after the end are ignored.
        assert_eq!(
            feed.chunk(500, true),
            ChunkOutcome::Dropped(DropReason::Ended)
        );
    }

    #[test]
    fn golden_target_duration_raise() {
        let mut feed = Feed::new(config());
        feed.segment(4, 500);
        feed.segment(8, 500); // 4 s GOP
        feed.segment(3, 500);
        feed.chunk(500, true);
        let text = feed.packager.media_playlist(false).to_string();
        let expected = "\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI=\"init.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z
#EXTINF:2.000,
seg0.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:02.000Z
#EXTINF:4.000,
seg1.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:06.000Z
#EXTINF:1.500,
seg2.m4s
";
        assert_eq!(text, expected);
        assert_eq!(parse_media(&text).target_duration, 4);
        // Never decreases, even after the long segment slid out.
        for _ in 0..6 {
            feed.segment(4, 500);
        }
        assert_eq!(feed.packager.media_playlist(false).media_sequence, 6);
        assert_eq!(feed.packager.target_duration(), 4);
    }

    #[test]
    fn target_duration_rounds_segment_durations() {
        // 2.4 s rounds to 2: no raise. 2.5 s rounds to 3: raise.
        let mut feed = Feed::new(config());
        feed.segment(6, 400);
        feed.chunk(500, true);
        assert_eq!(feed.packager.target_duration(), 2);
        feed.segment(5, 500);
        feed.chunk(500, true);
        assert_eq!(feed.packager.target_duration(), 3);
        // A fractional segment target rounds up.
        let packager = Packager::new(PackagerConfig {
            segment_target: Duration::from_millis(1500),
            ..config()
        });
        assert_eq!(packager.target_duration(), 2);
    }

    #[test]
    fn extinf_is_the_sum_of_chunk_durations() {
        let mut feed = Feed::new(config());
        for index in 0..3 {
            let chunk = CmafChunk {
                duration: 33_366_666,
                ..make_chunk(feed.pts, 0, index == 0)
            };
            feed.pts += chunk.duration;
            feed.packager.handle_chunk(chunk);
        }
        feed.packager.handle_end();
        let playlist = feed.packager.media_playlist(false);
        assert_eq!(
            playlist.segments[0].duration,
            Duration::from_nanos(100_099_998)
        );
        assert!(playlist.to_string().contains("#EXTINF:0.100,\nseg0.m4s\n"));
    }

    #[test]
    fn golden_low_latency() {
        let mut feed = Feed::new(config());
        for _ in 0..4 {
            feed.segment(4, 500);
        }
        feed.chunk(500, true);
        feed.chunk(500, false);
        let mut playlist = feed.packager.media_playlist(true);
        playlist
            .rendition_reports
            .push(RenditionReportFixture::audio());
        let text = playlist.to_string();
        let expected = "\
#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.000,HOLD-BACK=6.000,PART-HOLD-BACK=1.500
#EXT-X-PART-INF:PART-TARGET=0.500
#EXT-X-MEDIA-SEQUENCE:1
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI=\"init.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:02.000Z
#EXTINF:2.000,
seg1.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:04.000Z
#EXT-X-PART:DURATION=0.500,URI=\"part8.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI=\"part9.m4s\"
#EXT-X-PART:DURATION=0.500,URI=\"part10.m4s\"
#EXT-X-PART:DURATION=0.500,URI=\"part11.m4s\"
#EXTINF:2.000,
seg2.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:06.000Z
#EXT-X-PART:DURATION=0.500,URI=\"part12.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI=\"part13.m4s\"
#EXT-X-PART:DURATION=0.500,URI=\"part14.m4s\"
#EXT-X-PART:DURATION=0.500,URI=\"part15.m4s\"
#EXTINF:2.000,
seg3.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:08.000Z
#EXT-X-PART:DURATION=0.500,URI=\"part16.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI=\"part17.m4s\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part18.m4s\"
#EXT-X-RENDITION-REPORT:URI=\"../audio/playlist.m3u8\",LAST-MSN=4,LAST-PART=1
";
        assert_eq!(text, expected);
        assert_eq!(playlist.validate(), Ok(()));
        // Unknown LL tags do not stop an independent parser.
        let parsed = parse_media(&text);
        assert_eq!(parsed.media_sequence, 1);
        assert_eq!(parsed.segments.len(), 3);
        assert_eq!(parsed.segments[2].uri, "seg3.m4s");

        assert_eq!(feed.packager.last_msn(), Some(3));
        assert_eq!(feed.packager.last_part(), Some(PartId { msn: 4, part: 1 }));
        assert_eq!(feed.packager.next_part(), PartId { msn: 4, part: 2 });
    }

    /// Rendition report values as the caller would supply them.
    struct RenditionReportFixture;

    impl RenditionReportFixture {
        fn audio() -> super::super::playlist::RenditionReport {
            super::super::playlist::RenditionReport {
                uri: "../audio/playlist.m3u8".into(),
                last_msn: Some(4),
                last_part: Some(1),
            }
        }
    }

    #[test]
    fn low_latency_before_first_chunk() {
        let packager = Packager::new(config());
        let text = packager.media_playlist(true).to_string();
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:0\n"));
        assert!(text.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part0.m4s\"\n"));
        assert_eq!(packager.last_part(), None);
        assert_eq!(packager.bandwidth(), None);
    }

    #[test]
    fn part_target_follows_longest_part() {
        let mut feed = Feed::new(config());
        feed.chunk(500, true);
        feed.chunk(520, false);
        assert_eq!(feed.packager.part_target(), Duration::from_millis(520));
        let text = feed.packager.media_playlist(true).to_string();
        assert!(text.contains("#EXT-X-PART-INF:PART-TARGET=0.520\n"));
        assert!(text.contains("PART-HOLD-BACK=1.560\n"));
    }

    #[test]
    fn segment_bytes_are_concatenated_parts() {
        let mut feed = Feed::new(config());
        feed.segment(4, 500);
        assert_eq!(
            feed.packager.segment(0),
            None,
            "open segment is not complete"
        );
        assert_eq!(
            feed.packager.part(0, 1),
            Some(Bytes::from_static(b"[500000000]"))
        );
        assert_eq!(feed.packager.part(0, 4), None);
        feed.chunk(500, true);
        let segment = feed.packager.segment(0).expect("segment 0 complete");
        assert_eq!(
            segment.to_bytes(),
            Bytes::from_static(b"[0][500000000][1000000000][1500000000]")
        );
        assert_eq!(segment.len(), 38);
        // The segment is its parts' own buffers, not a copy of them.
        let parts: Vec<Bytes> = (0..4)
            .map(|i| feed.packager.part(0, i).expect("part exists"))
            .collect();
        assert_eq!(segment.pieces(), parts.as_slice());
        for (piece, part) in segment.pieces().iter().zip(&parts) {
            assert_eq!(piece.as_ptr(), part.as_ptr(), "shared, not copied");
        }
        // Parts of the open segment.
        assert_eq!(
            feed.packager.part(1, 0),
            Some(Bytes::from_static(b"[2000000000]"))
        );
        assert_eq!(feed.packager.part(1, 1), None);
        assert_eq!(feed.packager.part(2, 0), None);
        // Resource lookup by URI.
        let by_uri = |name: &str| {
            Resource::parse(name).and_then(|resource| feed.packager.resource(resource))
        };
        assert_eq!(by_uri("seg0.m4s"), Some(segment.clone()));
        assert_eq!(
            by_uri("part4.m4s"),
            feed.packager.part(1, 0).map(Object::from)
        );
        assert_eq!(
            by_uri("part1.m4s"),
            feed.packager.part(0, 1).map(Object::from)
        );
        assert_eq!(by_uri("part5.m4s"), None, "not published yet");
        assert_eq!(
            by_uri("init.mp4"),
            Some(Object::from(Bytes::from_static(b"INIT0")))
        );
    }

    #[test]
    fn removed_segments_stay_fetchable_for_one_more_window() {
        let mut feed = Feed::new(config());
        for _ in 0..4 {
            feed.segment(4, 500);
        }
        feed.chunk(500, true); // completes segment 3: segment 0 slides out
        assert_eq!(feed.packager.media_playlist(false).media_sequence, 1);
        assert!(feed.packager.segment(0).is_some());
        assert!(feed.packager.part(0, 2).is_some());
        // Retention = window (6 s) + target duration (2 s) of media removed after it.
        for msn in 4..9 {
            for _ in 0..3 {
                feed.chunk(500, false);
            }
            let outcome = feed.chunk(500, true);
            assert_eq!(outcome.completed(), Some(msn));
            if msn < 8 {
                // Up to 8 s of media removed after segment 0: kept.
                assert!(feed.packager.segment(0).is_some(), "after segment {msn}");
            }
        }
        // Segment 8 completed: 10 s of media were removed after segment 0.
        assert_eq!(feed.packager.segment(0), None);
        assert_eq!(feed.packager.part(0, 0), None);
        assert!(feed.packager.segment(1).is_some());
        assert_eq!(feed.packager.media_playlist(false).media_sequence, 6);
        assert!(feed.packager.segment(9).is_none(), "open segment");
        assert!(feed.packager.segment(99).is_none());
    }

    #[test]
    fn chunks_before_init_or_fragment_start_are_dropped() {
        let mut packager = Packager::new(config());
        assert_eq!(
            packager.handle_chunk(make_chunk(0, 500, true)),
            ChunkOutcome::Dropped(DropReason::NoInit)
        );
        packager.handle_init(Bytes::from_static(b"INIT0"));
        assert_eq!(
            packager.handle_chunk(make_chunk(0, 500, false)),
            ChunkOutcome::Dropped(DropReason::AwaitingFragmentStart)
        );
        assert_eq!(
            packager.handle_chunk(make_chunk(500 * MS, 500, true)),
            ChunkOutcome::PartAdded(PartId { msn: 0, part: 0 })
        );
        assert_eq!(
            packager.handle_chunk(make_chunk(1000 * MS, 500, false)),
            ChunkOutcome::PartAdded(PartId { msn: 0, part: 1 })
        );
        assert_eq!(
            packager.handle_chunk(make_chunk(1500 * MS, 500, true)),
            ChunkOutcome::SegmentCompleted {
                completed: 0,
                started: PartId { msn: 1, part: 0 }
            }
        );
        // The dropped chunks are in no segment; PDT comes from the first kept chunk.
        let playlist = packager.media_playlist(false);
        assert_eq!(playlist.segments.len(), 1);
        assert_eq!(playlist.segments[0].duration, Duration::from_secs(1));
        assert_eq!(
            playlist.segments[0].program_date_time,
            Some(pdt_at(500 * MS))
        );
    }

    #[test]
    fn bandwidth_peak_and_average() {
        let mut packager = Packager::new(config());
        packager.handle_init(Bytes::from_static(b"INIT"));
        // Segment 0: 2 s, 50_000 bytes → 200_000 bit/s.
        // Segment 1: 1 s, 40_000 bytes → 320_000 bit/s.
        let sizes = [
            (true, 25_000, 1000),
            (false, 25_000, 1000),
            (true, 40_000, 1000),
        ];
        let mut pts = 0;
        for (fragment_start, size, ms) in sizes {
            packager.handle_chunk(CmafChunk {
                data: Bytes::from(vec![0u8; size]),
                duration: ms * MS,
                ..make_chunk(pts, ms, fragment_start)
            });
            pts += ms * MS;
        }
        assert_eq!(
            packager.bandwidth(),
            Some(Bandwidth {
                peak: 200_000,
                average: 200_000
            })
        );
        packager.handle_end();
        // Average: 720_000 bits / 3 s.
        assert_eq!(
            packager.bandwidth(),
            Some(Bandwidth {
                peak: 320_000,
                average: 240_000
            })
        );
    }

    #[test]
    fn bandwidth_rounds_up() {
        let mut packager = Packager::new(config());
        packager.handle_init(Bytes::from_static(b"INIT"));
        packager.handle_chunk(CmafChunk {
            data: Bytes::from(vec![0u8; 1]),
            ..make_chunk(0, 3000, true)
        });
        packager.handle_end();
        // 8 bits / 3 s = 2.67 → 3.
        assert_eq!(
            packager.bandwidth(),
            Some(Bandwidth {
                peak: 3,
                average: 3
            })
        );
    }

    #[test]
    fn init_change_versions_the_map() {
        let mut feed = Feed::new(config());
        feed.segment(4, 500);
        feed.chunk(500, true);
        feed.packager.handle_init(Bytes::from_static(b"INIT0")); // same bytes: no-op
        assert_eq!(feed.packager.init_version(), Some(0));
        feed.packager.handle_init(Bytes::from_static(b"INIT1"));
        assert_eq!(feed.packager.init_version(), Some(1));
        assert_eq!(feed.packager.init(), Some(Bytes::from_static(b"INIT1")));
        // Segment 1 was opened with init 0: a non-fragment-start chunk cannot join it.
        assert_eq!(
            feed.chunk(500, false),
            ChunkOutcome::Dropped(DropReason::AwaitingFragmentStart)
        );
        assert_eq!(
            feed.chunk(500, true),
            ChunkOutcome::SegmentCompleted {
                completed: 1,
                started: PartId { msn: 2, part: 0 }
            }
        );
        feed.chunk(500, false);
        let text = feed.packager.media_playlist(true).to_string();
        let expected_tail = "\
#EXT-X-MAP:URI=\"init.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z
#EXT-X-PART:DURATION=0.500,URI=\"part0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI=\"part1.m4s\"
#EXT-X-PART:DURATION=0.500,URI=\"part2.m4s\"
#EXT-X-PART:DURATION=0.500,URI=\"part3.m4s\"
#EXTINF:2.000,
seg0.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:02.000Z
#EXT-X-PART:DURATION=0.500,URI=\"part4.m4s\",INDEPENDENT=YES
#EXTINF:0.500,
seg1.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI=\"init1.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:03.000Z
#EXT-X-PART:DURATION=0.500,URI=\"part5.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI=\"part6.m4s\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part7.m4s\"
";
        assert!(text.ends_with(expected_tail), "{text}");
        // Both versions are fetchable while segments need them.
        assert_eq!(
            feed.packager.init_by_version(0),
            Some(Bytes::from_static(b"INIT0"))
        );
        assert_eq!(
            feed.packager.resource(Resource::Init(1)),
            Some(Object::from(Bytes::from_static(b"INIT1")))
        );
        // Once segments 0 and 1 are gone for good, version 0 is dropped and the
        // discontinuity that slid out is counted.
        for _ in 0..10 {
            feed.segment(4, 500);
        }
        assert_eq!(feed.packager.init_by_version(0), None);
        let playlist = feed.packager.media_playlist(false);
        assert_eq!(playlist.discontinuity_sequence, 1);
        assert!(
            playlist
                .to_string()
                .contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n")
        );
        assert_eq!(
            playlist.segments[0].map,
            Some(Map {
                uri: "init1.mp4".into()
            })
        );
        assert_eq!(parse_media(&playlist.to_string()).discontinuity_sequence, 1);
    }

    #[test]
    fn runaway_segment_is_force_closed() {
        let mut feed = Feed::new(config());
        feed.chunk(100, true);
        for _ in 1..MAX_PARTS_PER_SEGMENT {
            assert!(matches!(feed.chunk(100, false), ChunkOutcome::PartAdded(_)));
        }
        assert_eq!(
            feed.chunk(100, false),
            ChunkOutcome::SegmentCompleted {
                completed: 0,
                started: PartId { msn: 1, part: 0 }
            }
        );
        // The forced segment does not start with an independent frame.
        feed.chunk(100, true);
        assert!(!feed.packager.media_playlist(false).independent_segments);
    }

    #[test]
    fn contains_for_blocking_reload() {
        let mut feed = Feed::new(config());
        assert!(!feed.packager.contains(0, None));
        assert!(!feed.packager.contains(0, Some(0)));
        feed.segment(4, 500);
        feed.chunk(500, true);
        // Segment 0 complete (4 parts), segment 1 open with 1 part.
        assert!(feed.packager.contains(0, None));
        assert!(feed.packager.contains(0, Some(3)));
        assert!(feed.packager.contains(0, Some(4)), "= part 0 of segment 1");
        assert!(feed.packager.contains(1, Some(0)));
        assert!(!feed.packager.contains(1, Some(1)));
        assert!(!feed.packager.contains(1, None));
        assert!(!feed.packager.contains(2, Some(0)));
        feed.chunk(500, false);
        assert!(feed.packager.contains(1, Some(1)));
        // The lock-free position gives the same answers.
        let position = feed.packager.position();
        for msn in 0..4 {
            assert_eq!(
                position.contains(msn, None),
                feed.packager.contains(msn, None)
            );
            for part in 0..6 {
                assert_eq!(
                    position.contains(msn, Some(part)),
                    feed.packager.contains(msn, Some(part)),
                    "{msn}.{part}"
                );
            }
        }
    }

    #[test]
    fn resource_uris_round_trip() {
        let resources = [
            (Resource::Init(0), "init.mp4"),
            (Resource::Init(3), "init3.mp4"),
            (Resource::Segment(0), "seg0.m4s"),
            (Resource::Segment(1234), "seg1234.m4s"),
            (Resource::Part(0), "part0.m4s"),
            (Resource::Part(712), "part712.m4s"),
        ];
        for (resource, uri) in resources {
            assert_eq!(resource.to_string(), uri);
            assert_eq!(Resource::parse(uri), Some(resource));
        }
        for bad in [
            "init0.mp4",
            "init01.mp4",
            "seg.m4s",
            "seg01.m4s",
            "seg+1.m4s",
            "seg-1.m4s",
            "part01.m4s",
            "part.m4s",
            "part1.0.m4s",
            "part1.2.3.m4s",
            "seg1.mp4",
            "playlist.m3u8",
            "part99999999999999999999.m4s",
        ] {
            assert_eq!(Resource::parse(bad), None, "{bad}");
        }
    }

    /// A node taking over a dead owner's rendition continues its numbering past every URL the
    /// owner used or could have used before its next snapshot (segments, parts, init
    /// versions), with EXT-X-DISCONTINUITY and a new EXT-X-MAP at the seam and the
    /// discontinuity sequence carried over.
    #[test]
    fn a_successor_continues_the_numbering_past_the_handoff_with_a_discontinuity() {
        let mut feed = Feed::new(config());
        feed.segment(4, 500);
        feed.segment(4, 500);
        feed.packager.handle_interrupt(); // one discontinuity in the owner's window…
        feed.packager.handle_init(Bytes::from_static(b"INIT1"));
        feed.segment(4, 500);
        feed.chunk(500, true); // …and an open segment (msn 3) with one part
        let handoff = feed.packager.handoff("source", RenditionKind::Video);
        assert_eq!(handoff.next_msn, 4 + SKIP_MSNS, "past the open segment");
        assert_eq!(handoff.next_part, 13 + SKIP_PARTS);
        assert_eq!(handoff.next_init_version, 2 + SKIP_INIT_VERSIONS);
        assert_eq!(handoff.discontinuity_sequence, 1);
        assert_eq!(handoff.kind(), RenditionKind::Video);
        let json = StreamHandoffFixture::round_trip(&handoff);
        assert_eq!(json, handoff);

        let mut next = Packager::continuing(config(), &handoff);
        next.handle_init(Bytes::from_static(b"OTHER ENCODER"));
        assert_eq!(next.init_version(), Some(handoff.next_init_version));
        let first = next.handle_chunk(make_chunk(20 * NANOS_PER_SEC, 500, true));
        assert_eq!(
            first,
            ChunkOutcome::PartAdded(PartId {
                msn: handoff.next_msn,
                part: 0
            })
        );
        for index in 1..4 {
            next.handle_chunk(make_chunk(
                20 * NANOS_PER_SEC + index * 500 * MS,
                500,
                false,
            ));
        }
        next.handle_chunk(make_chunk(22 * NANOS_PER_SEC, 500, true));
        let text = next.media_playlist(true).to_string();
        let playlist = parse_media(&text);
        assert_eq!(playlist.media_sequence, handoff.next_msn);
        assert_eq!(playlist.discontinuity_sequence, 1);
        assert!(playlist.segments[0].discontinuity, "{text}");
        assert!(
            text.contains(&format!(
                "#EXT-X-MAP:URI=\"init{}.mp4\"",
                handoff.next_init_version
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!("URI=\"part{}.m4s\"", handoff.next_part)),
            "{text}"
        );
        // Nothing of the old owner's is claimed here.
        assert!(next.segment(3).is_none() && next.init_by_version(1).is_none());
        // The target duration never decreases across the seam.
        assert!(next.target_duration() >= feed.packager.target_duration());
    }

    /// JSON round trip of a rendition handoff (as kept in Redis).
    struct StreamHandoffFixture;

    impl StreamHandoffFixture {
        fn round_trip(handoff: &RenditionHandoff) -> RenditionHandoff {
            let stream = crate::hls::handoff::StreamHandoff {
                session: "abc".into(),
                media_end_ns: Some(1),
                anchor: Some((0, pdt_at(0))),
                renditions: vec![handoff.clone()],
            };
            let back =
                crate::hls::handoff::StreamHandoff::from_json(&stream.to_json()).expect("parses");
            assert_eq!(back, stream);
            back.rendition("source").expect("listed").clone()
        }
    }

    #[test]
    fn interrupt_and_resume_continue_msns_with_a_discontinuity() {
        let mut feed = Feed::new(config());
        feed.segment(4, 500);
        feed.chunk(500, true);
        feed.chunk(500, false); // open segment 1 with 2 parts
        feed.packager.handle_interrupt();
        // The open segment was completed: everything listed so far is a complete segment.
        let position = feed.packager.position();
        assert_eq!(position.complete_up_to, 2);
        assert_eq!(position.open, None);
        assert!(!position.ended);
        let gap = feed.packager.media_playlist(true).to_string();
        assert!(
            gap.ends_with("seg1.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part6.m4s\"\n"),
            "{gap}"
        );
        assert!(!gap.contains("#EXT-X-ENDLIST"));
        // A second interrupt (e.g. a failed reconnect) adds nothing.
        feed.packager.handle_interrupt();
        // The new publisher: same init bytes (same codec and size), a 7 s wall-clock gap.
        feed.packager.handle_init(Bytes::from_static(b"INIT0"));
        feed.pts += 7000 * MS;
        assert_eq!(
            feed.chunk(500, false),
            ChunkOutcome::Dropped(DropReason::AwaitingFragmentStart)
        );
        assert_eq!(
            feed.chunk(500, true),
            ChunkOutcome::PartAdded(PartId { msn: 2, part: 0 })
        );
        feed.chunk(500, false);
        feed.chunk(500, true);
        let text = feed.packager.media_playlist(true).to_string();
        let expected_tail = "\
#EXTINF:1.000,
seg1.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI=\"init.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:10.500Z
#EXT-X-PART:DURATION=0.500,URI=\"part6.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI=\"part7.m4s\"
#EXTINF:1.000,
seg2.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:11.500Z
#EXT-X-PART:DURATION=0.500,URI=\"part8.m4s\",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part9.m4s\"
";
        assert!(text.ends_with(expected_tail), "{text}");
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1);
        let parsed = parse_media(&text);
        assert!(parsed.segments[2].discontinuity);
        // Everything listed before the gap is still served.
        for msn in 0..2 {
            assert!(feed.packager.segment(msn).is_some(), "seg{msn}");
        }
        assert!(feed.packager.part(1, 1).is_some());
        assert!(feed.packager.init_by_version(0).is_some());
    }

    #[test]
    fn resume_with_a_new_init_versions_the_map_and_keeps_the_old_one() {
        let mut feed = Feed::new(config());
        feed.segment(4, 500);
        feed.chunk(500, true);
        feed.packager.handle_interrupt();
        feed.packager.handle_init(Bytes::from_static(b"INIT-720p"));
        feed.chunk(500, true);
        let text = feed.packager.media_playlist(false).to_string();
        assert!(
            text.ends_with("seg1.m4s\n"),
            "the resumed segment is still open: {text}"
        );
        feed.chunk(500, true);
        let text = feed.packager.media_playlist(false).to_string();
        assert!(
            text.contains("seg1.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init1.mp4\"\n"),
            "{text}"
        );
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
        // The old init stays fetchable while listed segments need it.
        assert_eq!(
            feed.packager.resource(Resource::Init(0)),
            Some(Object::from(Bytes::from_static(b"INIT0")))
        );
        // Once the seam leaves the window, the sequence counts it and the old init goes.
        for _ in 0..10 {
            feed.segment(4, 500);
        }
        let playlist = feed.packager.media_playlist(false);
        assert_eq!(playlist.discontinuity_sequence, 1);
        assert!(!playlist.segments.iter().any(|s| s.discontinuity));
        assert_eq!(feed.packager.init_by_version(0), None);
    }

    #[test]
    fn interrupt_before_any_segment_or_after_the_end_marks_nothing() {
        let mut feed = Feed::new(config());
        feed.packager.handle_interrupt();
        feed.chunk(500, true);
        feed.chunk(500, true);
        let text = feed.packager.media_playlist(false).to_string();
        assert!(!text.contains("DISCONTINUITY"), "{text}");
        feed.packager.handle_end();
        feed.packager.handle_interrupt();
        assert!(feed.packager.is_ended());
        assert_eq!(
            feed.chunk(500, true),
            ChunkOutcome::Dropped(DropReason::Ended)
        );
    }

    /// The URI of the playlist's EXT-X-PRELOAD-HINT.
    fn hint(packager: &Packager) -> String {
        let playlist = packager.media_playlist(true);
        assert_eq!(playlist.preload_hints.len(), 1, "one hint while live");
        playlist.preload_hints[0].uri.clone()
    }

    /// The URI of the playlist's last EXT-X-PART (open segment first, else the last segment).
    fn last_listed_part(packager: &Packager) -> Option<String> {
        let playlist = packager.media_playlist(true);
        let open = playlist.partial.iter().flat_map(|p| &p.parts).last();
        open.or_else(|| playlist.segments.last()?.parts.last())
            .map(|part| part.uri.clone())
    }

    #[test]
    fn the_preload_hint_is_the_next_part_wherever_the_segment_ends() {
        let mut feed = Feed::new(config());
        // Segments of 1 to 6 parts: a keyframe closes a segment after any part, also right
        // after the playlist hinted a further part of it.
        let mut boundaries = 0;
        for step in 0..120u64 {
            // After the gap at step 60 only a fragment start is taken.
            let fragment_start = step == 0 || step == 61 || (step * 7) % 11 < 3;
            boundaries += u64::from(fragment_start);
            let hinted = hint(&feed.packager);
            let pts = feed.pts;
            let outcome = feed.chunk(100 + step % 5, fragment_start);
            assert!(outcome.part().is_some(), "{outcome:?}");
            assert_eq!(last_listed_part(&feed.packager), Some(hinted.clone()));
            let served = Resource::parse(&hinted).and_then(|r| feed.packager.resource(r));
            assert_eq!(
                served,
                Some(Object::from(Bytes::from(format!("[{pts}]")))),
                "{hinted}"
            );
            if step == 60 {
                // A lost publisher, then one with a new init: dropped chunks take no number.
                feed.packager.handle_interrupt();
                let after_gap = hint(&feed.packager);
                assert_eq!(after_gap, Resource::Part(step + 1).to_string());
                feed.packager.handle_init(Bytes::from_static(b"INIT1"));
                feed.chunk(100, false);
                assert_eq!(hint(&feed.packager), after_gap);
            }
        }
        assert!(boundaries >= 30, "{boundaries} segment boundaries");
        assert!(
            feed.packager.media_playlist(true).media_sequence > 0,
            "the window slid"
        );
        feed.packager.handle_end();
        assert!(feed.packager.media_playlist(true).preload_hints.is_empty());
    }

    #[test]
    fn a_part_number_finds_its_part_in_open_listed_and_retained_segments() {
        let mut feed = Feed::new(config());
        for _ in 0..12 {
            feed.segment(4, 500);
        }
        feed.chunk(500, true);
        // 12 complete segments of 4 parts, the open one with part 48. The 6 s window lists 3.
        assert_eq!(feed.packager.media_playlist(false).media_sequence, 9);
        assert_eq!(feed.packager.next_part_number(), 49);
        let mut gone = 0;
        for number in 0..49 {
            let (msn, index) = (number / 4, (number % 4) as u32);
            let by_number = feed.packager.numbered_part(number);
            assert_eq!(by_number, feed.packager.part(msn, index), "{msn}.{index}");
            // Listed and retained segments keep their parts; older ones are gone.
            assert_eq!(
                by_number.is_some(),
                feed.packager.segment(msn).is_some() || msn == 12
            );
            gone += u64::from(by_number.is_none());
        }
        assert!(gone > 0 && gone < 40, "{gone} parts gone");
        assert_eq!(feed.packager.numbered_part(49), None, "not yet");
        assert_eq!(feed.packager.numbered_part(u64::MAX), None);
        let position = feed.packager.position();
        assert!(position.has_part(48) && !position.has_part(49));
    }

    #[test]
    fn hold_backs_are_at_least_three_targets_as_written() {
        /// A `NAME=<seconds>` attribute of `line`.
        fn seconds(line: &str, name: &str) -> f64 {
            line.split([':', ','])
                .find_map(|field| field.strip_prefix(name)?.strip_prefix('='))
                .and_then(|value| value.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in {line}"))
        }
        let line = |text: &str, tag: &str| -> String {
            text.lines()
                .find(|l| l.starts_with(tag))
                .unwrap_or_else(|| panic!("no {tag}:\n{text}"))
                .to_string()
        };
        let config = PackagerConfig {
            part_target: Duration::from_millis(200),
            ..config()
        };
        // 29.97 fps B-frame input: parts of 9 frames ≈ 299.66 ms.
        let mut feed = Feed::new(config);
        feed.chunk(200, true);
        feed.packager.handle_chunk(CmafChunk {
            duration: 299_666_667,
            ..make_chunk(feed.pts, 0, false)
        });
        let text = feed.packager.media_playlist(true).to_string();
        assert!(text.contains("PART-TARGET=0.300\n"), "{text}");
        assert!(text.contains("PART-HOLD-BACK=0.900\n"), "{text}");
        // Every part target from 200 ms to 2 s in steps that hit every rounding case.
        for micros in (200_000..2_000_000u64).step_by(333) {
            let mut feed = Feed::new(config);
            feed.chunk(200, true);
            feed.packager.handle_chunk(CmafChunk {
                duration: micros * 1000 + micros % 7,
                ..make_chunk(feed.pts, 0, false)
            });
            let text = feed.packager.media_playlist(true).to_string();
            let control = line(&text, "#EXT-X-SERVER-CONTROL:");
            let target: f64 = line(&text, "#EXT-X-TARGETDURATION:")
                .trim_start_matches("#EXT-X-TARGETDURATION:")
                .parse()
                .expect("integer");
            let part_target = seconds(&line(&text, "#EXT-X-PART-INF:"), "PART-TARGET");
            // In milliseconds, as written: no floating-point slack.
            let ms = |s: f64| (s * 1000.0).round() as u64;
            assert!(
                ms(seconds(&control, "HOLD-BACK")) >= 3 * ms(target),
                "{text}"
            );
            assert!(
                ms(seconds(&control, "PART-HOLD-BACK")) >= 3 * ms(part_target),
                "{text}"
            );
        }
    }
}
