//! `EXT-X-PRELOAD-HINT` (draft-pantos-hls-rfc8216bis §4.4.5.3).

use std::fmt;

/// The kind of resource a preload hint announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreloadHintType {
    /// `TYPE=PART`: the next Partial Segment.
    Part,
    /// `TYPE=MAP`: the next Media Initialization Section.
    Map,
}

/// `#EXT-X-PRELOAD-HINT:TYPE=PART|MAP,URI="…"`: a resource that does not exist yet; the
/// server may hold a GET for it until it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreloadHint {
    /// Kind of the hinted resource.
    pub hint_type: PreloadHintType,
    /// URI of the hinted resource, relative to the media playlist.
    pub uri: String,
}

impl fmt::Display for PreloadHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hint_type = match self.hint_type {
            PreloadHintType::Part => "PART",
            PreloadHintType::Map => "MAP",
        };
        writeln!(
            f,
            "#EXT-X-PRELOAD-HINT:TYPE={hint_type},URI=\"{}\"",
            self.uri
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden() {
        let hint = PreloadHint {
            hint_type: PreloadHintType::Part,
            uri: "part7.3.m4s".into(),
        };
        assert_eq!(
            hint.to_string(),
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part7.3.m4s\"\n"
        );
        let hint = PreloadHint {
            hint_type: PreloadHintType::Map,
            uri: "init1.mp4".into(),
        };
        assert_eq!(
            hint.to_string(),
            "#EXT-X-PRELOAD-HINT:TYPE=MAP,URI=\"init1.mp4\"\n"
        );
    }
}
