//! `EXT-X-RENDITION-REPORT` (draft-pantos-hls-rfc8216bis §4.4.5.4).

use std::fmt;

/// `#EXT-X-RENDITION-REPORT:URI="…",LAST-MSN=<n>,LAST-PART=<n>`: where another rendition of
/// the same multivariant playlist currently ends, so a client can switch without an extra
/// reload. Values are supplied by the caller (it knows the other renditions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionReport {
    /// URI of the other rendition's media playlist, relative to this playlist
    /// (e.g. `../audio/playlist.m3u8`).
    pub uri: String,
    /// MSN of the last segment (complete or with parts) of that rendition.
    pub last_msn: Option<u64>,
    /// Index of the last part of segment `last_msn` of that rendition.
    pub last_part: Option<u32>,
}

impl fmt::Display for RenditionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#EXT-X-RENDITION-REPORT:URI=\"{}\"", self.uri)?;
        if let Some(msn) = self.last_msn {
            write!(f, ",LAST-MSN={msn}")?;
        }
        if let Some(part) = self.last_part {
            write!(f, ",LAST-PART={part}")?;
        }
        f.write_str("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden() {
        let report = RenditionReport {
            uri: "../audio/playlist.m3u8".into(),
            last_msn: Some(12),
            last_part: Some(4),
        };
        assert_eq!(
            report.to_string(),
            "#EXT-X-RENDITION-REPORT:URI=\"../audio/playlist.m3u8\",LAST-MSN=12,LAST-PART=4\n"
        );
        let report = RenditionReport {
            uri: "../audio/playlist.m3u8".into(),
            last_msn: None,
            last_part: None,
        };
        assert_eq!(
            report.to_string(),
            "#EXT-X-RENDITION-REPORT:URI=\"../audio/playlist.m3u8\"\n"
        );
    }
}
