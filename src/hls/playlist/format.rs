//! Shared formatting helpers for attribute values.

use std::fmt;
use std::time::Duration;

use super::PlaylistError;

/// Formats a [`Duration`] as HLS decimal seconds with exactly three decimals
/// (millisecond precision, rounded half up), e.g. `2.000`, `0.200`.
///
/// Rounding is monotonic, so `a <= b` implies the text of `a` is not larger than the
/// text of `b`: a part never prints longer than a `PART-TARGET` it does not exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatSeconds(pub Duration);

impl fmt::Display for FormatSeconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_nanos().saturating_add(500_000) / 1_000_000;
        write!(f, "{}.{:03}", millis / 1000, millis % 1000)
    }
}

/// Checks that `value` can be written as an HLS quoted-string (RFC 8216 §4.2: no CR, LF
/// or double quote).
pub fn validate_quoted(attribute: &'static str, value: &str) -> Result<(), PlaylistError> {
    if value.contains(['"', '\r', '\n']) {
        return Err(PlaylistError::InvalidQuotedString {
            attribute,
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// Checks that `uri` can be written as a URI line: not empty, no line break, does not
/// start with `#`.
pub(super) fn validate_uri_line(uri: &str) -> Result<(), PlaylistError> {
    if uri.is_empty() || uri.starts_with('#') || uri.contains(['\r', '\n']) {
        return Err(PlaylistError::InvalidUri(uri.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_three_decimals() {
        assert_eq!(FormatSeconds(Duration::from_secs(2)).to_string(), "2.000");
        assert_eq!(
            FormatSeconds(Duration::from_millis(200)).to_string(),
            "0.200"
        );
        assert_eq!(
            FormatSeconds(Duration::from_nanos(1_999_499_999)).to_string(),
            "1.999"
        );
        assert_eq!(
            FormatSeconds(Duration::from_nanos(1_999_500_000)).to_string(),
            "2.000"
        );
        assert_eq!(FormatSeconds(Duration::ZERO).to_string(), "0.000");
    }

    #[test]
    fn quoted_strings() {
        assert!(validate_quoted("NAME", "English").is_ok());
        assert!(validate_quoted("NAME", "a\"b").is_err());
        assert!(validate_quoted("NAME", "a\nb").is_err());
        assert!(validate_uri_line("seg1.m4s").is_ok());
        assert!(validate_uri_line("").is_err());
        assert!(validate_uri_line("#x").is_err());
    }
}
