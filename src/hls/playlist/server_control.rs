//! `EXT-X-SERVER-CONTROL` (draft-pantos-hls-rfc8216bis §4.4.3.8).

use std::fmt;
use std::time::Duration;

use super::format::FormatSeconds;

/// `#EXT-X-SERVER-CONTROL:…`: what delivery directives the server supports.
///
/// Spec rules (the packager fills the values): HOLD-BACK "MUST be at least three times the
/// Target Duration"; PART-HOLD-BACK "MUST be at least twice the Part Target Duration" and
/// "SHOULD be at least three times"; CAN-SKIP-UNTIL "MUST be at least six times the Target
/// Duration".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServerControl {
    /// `CAN-BLOCK-RELOAD=YES`: the server honours `_HLS_msn` / `_HLS_part`.
    pub can_block_reload: bool,
    /// `CAN-SKIP-UNTIL=<s>`: delta updates (`_HLS_skip=YES`) may skip segments older than
    /// this distance from the playlist end.
    pub can_skip_until: Option<Duration>,
    /// `CAN-SKIP-DATERANGES=YES` (only meaningful with `can_skip_until`).
    pub can_skip_dateranges: bool,
    /// `HOLD-BACK=<s>`: minimum distance from the end a (non-LL) client starts playback.
    pub hold_back: Option<Duration>,
    /// `PART-HOLD-BACK=<s>`: minimum distance from the end an LL client starts playback.
    pub part_hold_back: Option<Duration>,
}

impl fmt::Display for ServerControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("#EXT-X-SERVER-CONTROL:")?;
        let mut sep = "";
        if self.can_block_reload {
            f.write_str("CAN-BLOCK-RELOAD=YES")?;
            sep = ",";
        }
        if let Some(until) = self.can_skip_until {
            write!(f, "{sep}CAN-SKIP-UNTIL={}", FormatSeconds(until))?;
            sep = ",";
            if self.can_skip_dateranges {
                f.write_str(",CAN-SKIP-DATERANGES=YES")?;
            }
        }
        if let Some(hold_back) = self.hold_back {
            write!(f, "{sep}HOLD-BACK={}", FormatSeconds(hold_back))?;
            sep = ",";
        }
        if let Some(part_hold_back) = self.part_hold_back {
            write!(f, "{sep}PART-HOLD-BACK={}", FormatSeconds(part_hold_back))?;
        }
        f.write_str("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden() {
        let control = ServerControl {
            can_block_reload: true,
            can_skip_until: Some(Duration::from_secs(12)),
            can_skip_dateranges: false,
            hold_back: Some(Duration::from_secs(6)),
            part_hold_back: Some(Duration::from_millis(600)),
        };
        assert_eq!(
            control.to_string(),
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.000,HOLD-BACK=6.000,PART-HOLD-BACK=0.600\n"
        );
    }

    #[test]
    fn golden_partial() {
        let control = ServerControl {
            can_skip_until: Some(Duration::from_secs(24)),
            can_skip_dateranges: true,
            ..ServerControl::default()
        };
        assert_eq!(
            control.to_string(),
            "#EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL=24.000,CAN-SKIP-DATERANGES=YES\n"
        );
    }
}
