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
    /// PROGRAM-DATE-TIME of the start of the segment the owner had open (else the end of its
    /// last one) at the snapshot: a viewer at the live edge has loaded at least up to here.
    /// Absent in documents written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seam_date: Option<DateTime<Utc>>,
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

    /// Where the successor's dates start: the earliest rendition's [`RenditionHandoff::seam_date`].
    ///
    /// A player that has no overlap between the old owner's playlist and the successor's (its
    /// segments are numbered past a gap, after a discontinuity) finds the next segment by date:
    /// hls.js looks for the segment whose dates contain the end of the last one it loaded, and
    /// finds nothing — and stops, for good — when the successor's first date is later than
    /// that. Dating the successor's first media at the earliest rendition's seam puts it at or
    /// before the end of whatever a viewer at the live edge has loaded, in every rendition.
    pub fn seam_date(&self) -> Option<DateTime<Utc>> {
        self.renditions.iter().filter_map(|r| r.seam_date).min()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rendition(name: &str, seam_date: Option<DateTime<Utc>>) -> RenditionHandoff {
        RenditionHandoff {
            name: name.into(),
            audio: name == "audio",
            next_msn: 7,
            next_part: 60,
            next_init_version: 2,
            discontinuity_sequence: 0,
            target_duration: 2,
            seam_date,
        }
    }

    /// The successor's dates start at the earliest rendition's seam; a document written
    /// before seam dates existed still parses (and gives none).
    #[test]
    fn the_seam_date_is_the_earliest_renditions_and_optional_in_the_document() {
        let t = DateTime::parse_from_rfc3339("2026-12-07T12:35:10.470Z")
            .expect("date")
            .with_timezone(&Utc);
        let handoff = StreamHandoff {
            session: "1a2508015b8".into(),
            media_end_ns: Some(10_900_000_000),
            anchor: Some((0, t)),
            renditions: vec![
                rendition("audio", Some(t - chrono::Duration::milliseconds(101))),
                rendition("source", Some(t)),
                rendition("low", None),
            ],
        };
        assert_eq!(
            handoff.seam_date(),
            Some(t - chrono::Duration::milliseconds(101))
        );
        let back = StreamHandoff::from_json(&handoff.to_json()).expect("round trip");
        assert_eq!(back, handoff);
        let old = r#"{"session":"s","media_end_ns":5,"anchor":null,"renditions":[
            {"name":"source","audio":false,"next_msn":3,"next_part":40,"next_init_version":2,
             "discontinuity_sequence":0,"target_duration":2}]}"#;
        let old = StreamHandoff::from_json(old).expect("an older document");
        assert_eq!(old.renditions[0].seam_date, None);
        assert_eq!(old.seam_date(), None);
    }
}
