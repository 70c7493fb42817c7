//! `EXT-X-PART` and `EXT-X-PART-INF` (draft-pantos-hls-rfc8216bis §4.4.4.9, §4.4.3.7).

use std::fmt;
use std::time::Duration;

use super::format::FormatSeconds;

/// `#EXT-X-PART-INF:PART-TARGET=<s>`: "the Part Target Duration … MUST be ≥ the duration of
/// every Partial Segment". Required in playlists that contain `EXT-X-PART`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartInf {
    /// Part target duration (printed in seconds, three decimals).
    pub part_target: Duration,
}

impl fmt::Display for PartInf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "#EXT-X-PART-INF:PART-TARGET={}",
            FormatSeconds(self.part_target)
        )
    }
}

/// `#EXT-X-PART:DURATION=<s>,URI="…"[,INDEPENDENT=YES]`: one Partial Segment (one CMAF
/// chunk). Listed before the `EXTINF` of the segment it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Duration of the part.
    pub duration: Duration,
    /// URI of the part, relative to the media playlist.
    pub uri: String,
    /// `INDEPENDENT=YES`: the part starts with an independent frame (keyframe).
    pub independent: bool,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#EXT-X-PART:DURATION={},URI=\"{}\"",
            FormatSeconds(self.duration),
            self.uri
        )?;
        if self.independent {
            f.write_str(",INDEPENDENT=YES")?;
        }
        f.write_str("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_part_inf() {
        let inf = PartInf {
            part_target: Duration::from_millis(200),
        };
        assert_eq!(inf.to_string(), "#EXT-X-PART-INF:PART-TARGET=0.200\n");
    }

    #[test]
    fn golden_part() {
        let mut part = Part {
            duration: Duration::from_millis(200),
            uri: "part3.0.m4s".into(),
            independent: true,
        };
        assert_eq!(
            part.to_string(),
            "#EXT-X-PART:DURATION=0.200,URI=\"part3.0.m4s\",INDEPENDENT=YES\n"
        );
        part.independent = false;
        part.uri = "part3.1.m4s".into();
        assert_eq!(
            part.to_string(),
            "#EXT-X-PART:DURATION=0.200,URI=\"part3.1.m4s\"\n"
        );
    }
}
