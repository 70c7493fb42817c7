//! Handing a live session to another node (docs/scaling.md, "When the owner dies"): what a
//! node that takes a stream over needs to continue the session another node was packaging —
//! the session id (so every URL stays the same), where each rendition's numbering continues
//! (media sequence, part and init version numbers), the discontinuity sequence, the target
//! duration, and the media timeline (so timestamps and PROGRAM-DATE-TIMEs stay monotonic).
//!
//! Pure data: the owner snapshots it ([`super::stream::HlsStream::handoff`]) and the cluster
//! keeps it in Redis as JSON; a node that starts the stream from it
//! ([`super::registry::Registry::publish_continuing`]) opens each rendition past everything
//! the previous owner may have published, with EXT-X-DISCONTINUITY at the seam.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::packager::MAX_PARTS_PER_SEGMENT;
use super::rendition::RenditionKind;

/// Where one rendition continues on the next owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenditionHandoff {
    /// Rendition name (its URL directory).
    pub name: String,
    /// Whether it is an audio rendition (else video).
    pub audio: bool,
    /// MSN of the successor's first segment.
    pub next_msn: u64,
    /// Part number of the successor's first part.
    pub next_part: u64,
    /// Version number of the successor's first init segment.
    pub next_init_version: u32,
    /// EXT-X-DISCONTINUITY-SEQUENCE of the successor's playlist: the discontinuity number of
    /// the last segment published before the seam.
    pub discontinuity_sequence: u64,
    /// EXT-X-TARGETDURATION so far (it never decreases).
    pub target_duration: u64,
}

impl RenditionHandoff {
    /// The kind of rendition.
    pub fn kind(&self) -> RenditionKind {
        if self.audio {
            RenditionKind::Audio
        } else {
            RenditionKind::Video
        }
    }
}

/// Where a whole session continues on the next owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamHandoff {
    /// The session id (every URL below the multivariant playlist carries it).
    pub session: String,
    /// The latest media timestamp packaged, ns (after continuation offsets).
    pub media_end_ns: Option<u64>,
    /// The PROGRAM-DATE-TIME anchor: media time ns and its wall clock.
    pub anchor: Option<(u64, DateTime<Utc>)>,
    /// Every rendition, sorted by name.
    pub renditions: Vec<RenditionHandoff>,
}

impl StreamHandoff {
    /// The JSON kept in Redis.
    pub fn to_json(&self) -> String {
        // A struct of strings and numbers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses what [`Self::to_json`] wrote.
    pub fn from_json(text: &str) -> Result<StreamHandoff, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The rendition called `name`.
    pub fn rendition(&self, name: &str) -> Option<&RenditionHandoff> {
        self.renditions.iter().find(|r| r.name == name)
    }
}

/// How far past the owner's state at the last snapshot the successor starts, so that nothing
/// it publishes can take a URL the owner published after the snapshot: the owner writes a
/// snapshot whenever a segment opens or completes, so between two snapshots it publishes at
/// most the rest of one segment. The successor skips one MSN and two segments' worth of part
/// numbers and one init version beyond that (URLs are immutable to caches; a gap in the
/// numbering is harmless, a reused URL is not).
pub const SKIP_MSNS: u64 = 1;
/// Part numbers skipped (see [`SKIP_MSNS`]).
pub const SKIP_PARTS: u64 = 2 * MAX_PARTS_PER_SEGMENT as u64;
/// Init versions skipped (see [`SKIP_MSNS`]).
pub const SKIP_INIT_VERSIONS: u32 = 1;
