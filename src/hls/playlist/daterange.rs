//! `EXT-X-DATERANGE` (RFC 8216 §4.3.2.7; draft-pantos-hls-rfc8216bis §4.4.5.1).
//!
//! Spec rules the writer and [`DateRange::validate`] enforce:
//! - "ID: A quoted-string that uniquely identifies a Date Range in the Playlist. This attribute
//!   is REQUIRED." Quoted-strings cannot contain `"`, CR or LF (RFC 8216 §4.2).
//! - "END-ON-NEXT … MUST have a CLASS attribute" and "MUST NOT contain DURATION or END-DATE".
//! - "X-<client-attribute>": the name is `X-` followed by `[A-Z0-9-]`; the value is a
//!   quoted-string, a hexadecimal-sequence (`0x…`) or a decimal-floating-point (this writer
//!   uses the first two).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use super::PlaylistError;
use super::format::{FormatSeconds, validate_quoted};

/// The value of an `X-` client attribute.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ClientValue {
    /// A quoted-string (no `"`, CR or LF).
    Quoted(String),
    /// A hexadecimal-sequence, written `0x` + upper-case hex digits.
    Hex(Vec<u8>),
}

/// One `#EXT-X-DATERANGE` tag. Serializable so a recording's manifest keeps the tags its
/// playlists carry (`super::super::recording`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DateRange {
    /// `ID`: stable across playlist reloads.
    pub id: String,
    /// `CLASS`: the semantics of the range (e.g. `com.cuecast.product`).
    pub class: Option<String>,
    /// `START-DATE` (written with millisecond precision, `Z`, like PROGRAM-DATE-TIME).
    pub start_date: DateTime<Utc>,
    /// `END-DATE`.
    pub end_date: Option<DateTime<Utc>>,
    /// `DURATION`, seconds.
    pub duration: Option<Duration>,
    /// `PLANNED-DURATION`: the expected duration while the actual one is unknown.
    pub planned_duration: Option<Duration>,
    /// `END-ON-NEXT=YES`: ends at the start of the next range of the same CLASS.
    pub end_on_next: bool,
    /// `X-…` attributes in writing order.
    pub client_attributes: Vec<(String, ClientValue)>,
}

fn write_date(f: &mut fmt::Formatter<'_>, name: &str, date: &DateTime<Utc>) -> fmt::Result {
    write!(
        f,
        ",{name}=\"{}\"",
        date.to_rfc3339_opts(SecondsFormat::Millis, true)
    )
}

impl DateRange {
    /// Checks the tag can be written without breaking the playlist syntax or the rules above.
    pub fn validate(&self) -> Result<(), PlaylistError> {
        validate_quoted("ID", &self.id)?;
        if let Some(class) = &self.class {
            validate_quoted("CLASS", class)?;
        }
        if self.end_on_next
            && (self.class.is_none() || self.duration.is_some() || self.end_date.is_some())
        {
            return Err(PlaylistError::InvalidDateRange(
                "END-ON-NEXT needs CLASS and excludes DURATION and END-DATE",
            ));
        }
        for (name, value) in &self.client_attributes {
            let valid_name = name.len() > 2
                && name.starts_with("X-")
                && name[2..]
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
            if !valid_name {
                return Err(PlaylistError::InvalidDateRange(
                    "client attribute names are X- followed by A-Z, 0-9 or -",
                ));
            }
            if let ClientValue::Quoted(text) = value {
                validate_quoted("X-", text)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for DateRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#EXT-X-DATERANGE:ID=\"{}\"", self.id)?;
        if let Some(class) = &self.class {
            write!(f, ",CLASS=\"{class}\"")?;
        }
        write_date(f, "START-DATE", &self.start_date)?;
        if let Some(end) = &self.end_date {
            write_date(f, "END-DATE", end)?;
        }
        if let Some(duration) = self.duration {
            write!(f, ",DURATION={}", FormatSeconds(duration))?;
        }
        if let Some(planned) = self.planned_duration {
            write!(f, ",PLANNED-DURATION={}", FormatSeconds(planned))?;
        }
        for (name, value) in &self.client_attributes {
            match value {
                ClientValue::Quoted(text) => write!(f, ",{name}=\"{text}\"")?,
                ClientValue::Hex(bytes) => {
                    write!(f, ",{name}=0x")?;
                    for b in bytes {
                        write!(f, "{b:02X}")?;
                    }
                }
            }
        }
        if self.end_on_next {
            f.write_str(",END-ON-NEXT=YES")?;
        }
        f.write_str("\n")
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn start() -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_700_000_000_123)
            .single()
            .expect("valid")
    }

    #[test]
    fn golden_full() {
        let range = DateRange {
            id: "cue-1".into(),
            class: Some("com.cuecast.product".into()),
            start_date: start(),
            end_date: Some(start() + chrono::Duration::milliseconds(1500)),
            duration: Some(Duration::from_millis(1500)),
            planned_duration: None,
            end_on_next: false,
            client_attributes: vec![
                ("X-TITLE".into(), ClientValue::Quoted("Rose perfume".into())),
                ("X-BIN".into(), ClientValue::Hex(vec![0x0a, 0xff])),
            ],
        };
        range.validate().expect("valid");
        assert_eq!(
            range.to_string(),
            "#EXT-X-DATERANGE:ID=\"cue-1\",CLASS=\"com.cuecast.product\",\
             START-DATE=\"2023-11-14T22:13:20.123Z\",END-DATE=\"2023-11-14T22:13:21.623Z\",\
             DURATION=1.500,X-TITLE=\"Rose perfume\",X-BIN=0x0AFF\n"
        );
    }

    #[test]
    fn golden_end_on_next_and_planned() {
        let range = DateRange {
            id: "p".into(),
            class: Some("com.cuecast.pin".into()),
            start_date: start(),
            end_date: None,
            duration: None,
            planned_duration: None,
            end_on_next: true,
            client_attributes: Vec::new(),
        };
        range.validate().expect("valid");
        assert_eq!(
            range.to_string(),
            "#EXT-X-DATERANGE:ID=\"p\",CLASS=\"com.cuecast.pin\",START-DATE=\"2023-11-14T22:13:20.123Z\",END-ON-NEXT=YES\n"
        );
        let planned = DateRange {
            end_on_next: false,
            planned_duration: Some(Duration::from_secs(15)),
            ..range
        };
        assert!(planned.to_string().contains(",PLANNED-DURATION=15.000\n"));
    }

    #[test]
    fn rejects_what_would_break_the_syntax_or_the_rules() {
        let base = DateRange {
            id: "a".into(),
            class: None,
            start_date: start(),
            end_date: None,
            duration: None,
            planned_duration: None,
            end_on_next: false,
            client_attributes: Vec::new(),
        };
        let bad_id = DateRange {
            id: "a\"b".into(),
            ..base.clone()
        };
        assert!(bad_id.validate().is_err());
        let end_on_next_without_class = DateRange {
            end_on_next: true,
            ..base.clone()
        };
        assert!(end_on_next_without_class.validate().is_err());
        let bad_name = DateRange {
            client_attributes: vec![("X-low".into(), ClientValue::Hex(vec![1]))],
            ..base.clone()
        };
        assert!(bad_name.validate().is_err());
        let bad_value = DateRange {
            client_attributes: vec![("X-T".into(), ClientValue::Quoted("a\nb".into()))],
            ..base
        };
        assert!(bad_value.validate().is_err());
    }
}
