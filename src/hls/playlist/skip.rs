//! `EXT-X-SKIP` (draft-pantos-hls-rfc8216bis §4.4.5.2), used in Playlist Delta Updates.

use std::fmt;

/// `#EXT-X-SKIP:SKIPPED-SEGMENTS=<n>[,RECENTLY-REMOVED-DATERANGES="<id>\t<id>"]`: replaces
/// the first `skipped_segments` segments of a delta update. Requires EXT-X-VERSION 9
/// (10 with `RECENTLY-REMOVED-DATERANGES`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Skip {
    /// Number of Media Segments replaced by this tag.
    pub skipped_segments: u64,
    /// IDs of EXT-X-DATERANGE tags removed since the last reload (`_HLS_skip=v2`);
    /// written tab-separated, omitted when empty.
    pub recently_removed_dateranges: Vec<String>,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#EXT-X-SKIP:SKIPPED-SEGMENTS={}", self.skipped_segments)?;
        if !self.recently_removed_dateranges.is_empty() {
            write!(
                f,
                ",RECENTLY-REMOVED-DATERANGES=\"{}\"",
                self.recently_removed_dateranges.join("\t")
            )?;
        }
        f.write_str("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden() {
        let skip = Skip {
            skipped_segments: 7,
            recently_removed_dateranges: Vec::new(),
        };
        assert_eq!(skip.to_string(), "#EXT-X-SKIP:SKIPPED-SEGMENTS=7\n");
        let skip = Skip {
            skipped_segments: 3,
            recently_removed_dateranges: vec!["cue-1".into(), "cue-2".into()],
        };
        assert_eq!(
            skip.to_string(),
            "#EXT-X-SKIP:SKIPPED-SEGMENTS=3,RECENTLY-REMOVED-DATERANGES=\"cue-1\tcue-2\"\n"
        );
    }
}
