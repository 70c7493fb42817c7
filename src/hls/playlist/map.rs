//! `EXT-X-MAP` (RFC 8216 §4.3.2.5): the Media Initialization Section (fMP4 `ftyp`+`moov`).

use std::fmt;

/// `#EXT-X-MAP:URI="…"`. Applies to every following Media Segment until the next
/// `EXT-X-MAP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Map {
    /// URI of the init segment, relative to the media playlist (e.g. `init.mp4`).
    pub uri: String,
}

impl fmt::Display for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "#EXT-X-MAP:URI=\"{}\"", self.uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden() {
        let map = Map {
            uri: "init.mp4".into(),
        };
        assert_eq!(map.to_string(), "#EXT-X-MAP:URI=\"init.mp4\"\n");
    }
}
