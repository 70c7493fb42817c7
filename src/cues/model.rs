//! The cue model: what a host posts (`CueRequest`, validated into a [`CueSpec`]) and what the
//! server keeps and carries (a [`Cue`]: a spec resolved to a point on one session's media
//! timeline).

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::commerce::FieldError;
pub use crate::commerce::{Cta, Product};

/// Longest cue: one day.
pub const MAX_DURATION_S: f64 = 86_400.0;

/// What a cue means to the player; the DATERANGE CLASS is `com.cuecast.<kind>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CueKind {
    /// Highlight a product.
    Product,
    /// Pin something (a product or a message) on screen.
    Pin,
    /// An offer with a countdown (its duration) or end time.
    Offer,
    /// Clear whatever is shown (an instant: duration 0).
    Clear,
}

impl CueKind {
    /// Name in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            CueKind::Product => "product",
            CueKind::Pin => "pin",
            CueKind::Offer => "offer",
            CueKind::Clear => "clear",
        }
    }

    /// Parses [`Self::as_str`].
    pub fn parse(s: &str) -> Option<CueKind> {
        [Self::Product, Self::Pin, Self::Offer, Self::Clear]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    /// The EXT-X-DATERANGE CLASS.
    pub fn class(self) -> String {
        format!("com.cuecast.{}", self.as_str())
    }
}

/// When a cue starts, as requested.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum At {
    /// `"now"`: the media time of the latest ingested frame.
    #[default]
    Now,
    /// `{"media_time_s": x}`: seconds on the session's media timeline (0 = first frame).
    MediaTime {
        /// Seconds.
        media_time_s: f64,
    },
    /// `{"wall_clock": "RFC 3339"}`: mapped to media time through PROGRAM-DATE-TIME.
    WallClock {
        /// The instant.
        wall_clock: DateTime<Utc>,
    },
}

impl<'de> Deserialize<'de> for At {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<At, D::Error> {
        use serde::de::Error;
        const EXPECTED: &str =
            r#"expected "now", {"media_time_s": <seconds>} or {"wall_clock": "<RFC 3339>"}"#;
        let value = serde_json::Value::deserialize(d)?;
        match value {
            serde_json::Value::String(s) if s == "now" => Ok(At::Now),
            serde_json::Value::Object(map) if map.len() == 1 => {
                if let Some(v) = map.get("media_time_s") {
                    let media_time_s = v.as_f64().ok_or_else(|| D::Error::custom(EXPECTED))?;
                    Ok(At::MediaTime { media_time_s })
                } else if let Some(v) = map.get("wall_clock") {
                    let text = v.as_str().ok_or_else(|| D::Error::custom(EXPECTED))?;
                    let wall_clock = DateTime::parse_from_rfc3339(text)
                        .map_err(|e| D::Error::custom(format!("wall_clock: {e}")))?
                        .with_timezone(&Utc);
                    Ok(At::WallClock { wall_clock })
                } else {
                    Err(D::Error::custom(EXPECTED))
                }
            }
            _ => Err(D::Error::custom(EXPECTED)),
        }
    }
}

/// The body of `POST /api/streams/{stream}/cues` (and one rundown item, with `offset_s`
/// instead of `at`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CueRequest {
    /// Meaning.
    pub kind: CueKind,
    /// Start (default `"now"`).
    #[serde(default)]
    pub at: Option<At>,
    /// Duration, seconds; absent = open-ended (until ended or, with `end_on_next`, the next
    /// cue of the same kind).
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// Ends at the start of the next cue of the same kind (END-ON-NEXT=YES).
    #[serde(default)]
    pub end_on_next: bool,
    /// The product.
    #[serde(default)]
    pub product: Option<Product>,
    /// Free JSON object for the player.
    #[serde(default)]
    pub data: Option<serde_json::Value>,
}

/// A validated cue, not yet placed on a timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CueSpec {
    /// Meaning.
    pub kind: CueKind,
    /// Duration; `None` = open-ended.
    pub duration: Option<Duration>,
    /// END-ON-NEXT.
    pub end_on_next: bool,
    /// The product.
    pub product: Option<Product>,
    /// Free JSON object (`{}` when not given).
    pub data: serde_json::Value,
}

/// Why a request was refused (before anything was stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CueError {
    /// 400: `field` is wrong.
    #[error("{field}: {reason}")]
    Invalid {
        /// JSON path of the field (`product.price`).
        field: String,
        /// Why.
        reason: String,
    },
    /// 413: product + data exceed the limit.
    #[error("product and data take {size} bytes of JSON; the limit is {limit}")]
    TooLarge {
        /// Bytes.
        size: usize,
        /// Limit.
        limit: usize,
    },
}

impl From<FieldError> for CueError {
    fn from(e: FieldError) -> CueError {
        invalid(e.field, e.reason)
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> CueError {
    CueError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Validates seconds: finite and within `0..=max` (`positive`: > 0).
pub fn check_seconds(field: &str, value: f64, positive: bool, max: f64) -> Result<(), CueError> {
    if !value.is_finite() || value < 0.0 || (positive && value == 0.0) || value > max {
        let range = if positive { "> 0" } else { "≥ 0" };
        return Err(invalid(
            field,
            format!("must be a number of seconds {range} and ≤ {max}"),
        ));
    }
    Ok(())
}

impl CueRequest {
    /// Checks every field; `max_payload` limits the JSON of product + data (413).
    pub fn validate(self, max_payload: usize) -> Result<CueSpec, CueError> {
        if let Some(d) = self.duration_s {
            check_seconds("duration_s", d, true, MAX_DURATION_S)?;
        }
        if self.end_on_next && self.duration_s.is_some() {
            return Err(invalid(
                "end_on_next",
                "cannot be combined with duration_s (END-ON-NEXT excludes DURATION)",
            ));
        }
        if self.kind == CueKind::Clear {
            if self.duration_s.is_some() || self.end_on_next {
                return Err(invalid(
                    "duration_s",
                    "a clear cue is an instant; it takes no duration_s or end_on_next",
                ));
            }
            if self.product.is_some() {
                return Err(invalid("product", "a clear cue has no product"));
            }
        }
        if matches!(self.kind, CueKind::Product | CueKind::Offer) && self.product.is_none() {
            return Err(invalid(
                "product",
                format!("required for kind {}", self.kind.as_str()),
            ));
        }
        if let Some(p) = &self.product {
            p.validate("product")?;
        }
        let data = self
            .data
            .unwrap_or_else(|| serde_json::Value::Object(Default::default()));
        if !data.is_object() {
            return Err(invalid("data", "must be a JSON object"));
        }
        let size = self
            .product
            .as_ref()
            .map_or(0, |p| serde_json::to_string(p).map_or(0, |s| s.len()))
            + serde_json::to_string(&data).map_or(0, |s| s.len());
        if size > max_payload {
            return Err(CueError::TooLarge {
                size,
                limit: max_payload,
            });
        }
        Ok(CueSpec {
            kind: self.kind,
            duration: self.duration_s.map(Duration::from_secs_f64),
            end_on_next: self.end_on_next,
            product: self.product,
            data,
        })
    }
}

/// Where a cue came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `POST …/cues`.
    Api,
    /// A rundown item that fired.
    Rundown,
}

impl Source {
    /// Name in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Api => "api",
            Source::Rundown => "rundown",
        }
    }
}

/// A cue placed on one session's media timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    /// Database row (also the emsg `id`).
    pub seq: i64,
    /// Stable public id (DATERANGE ID).
    pub id: String,
    /// Stream name.
    pub stream: String,
    /// Session the media time belongs to.
    pub session: String,
    /// What it is.
    pub spec: CueSpec,
    /// Start on the session's media timeline, ns.
    pub start_ns: u64,
    /// PROGRAM-DATE-TIME of `start_ns` (DATERANGE START-DATE).
    pub start_date: DateTime<Utc>,
    /// Cut short at this media time (DELETE / end), ns.
    pub ended_ns: Option<u64>,
    /// Origin.
    pub source: Source,
    /// Media time of the latest ingested frame when the cue was added to the session, ns:
    /// playlists cannot have carried it before (delta updates use it).
    pub published_ns: u64,
}

/// Nanoseconds → seconds.
pub fn ns_to_s(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// RFC 3339 with milliseconds and `Z` (the format of PROGRAM-DATE-TIME and START-DATE).
pub fn format_date(date: &DateTime<Utc>) -> String {
    date.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Cue {
    /// Planned end on the media timeline (start + duration); `None` if open-ended. A clear
    /// cue ends where it starts.
    pub fn planned_end_ns(&self) -> Option<u64> {
        if self.spec.kind == CueKind::Clear {
            return Some(self.start_ns);
        }
        let duration = u64::try_from(self.spec.duration?.as_nanos()).unwrap_or(u64::MAX);
        Some(self.start_ns.saturating_add(duration))
    }

    /// Actual end: the cut, else the planned end.
    pub fn end_ns(&self) -> Option<u64> {
        match (self.ended_ns, self.planned_end_ns()) {
            (Some(cut), Some(planned)) => Some(cut.min(planned)),
            (cut, planned) => cut.or(planned),
        }
    }

    /// Date of a media time on this cue's session timeline.
    pub fn date_at(&self, media_ns: u64) -> DateTime<Utc> {
        let delta = i64::try_from(media_ns).unwrap_or(i64::MAX)
            - i64::try_from(self.start_ns).unwrap_or(i64::MAX);
        self.start_date + chrono::Duration::nanoseconds(delta)
    }

    /// The JSON players receive (ID3 TXXX value, DATERANGE X-DATA, API answers carry more).
    pub fn payload(&self) -> serde_json::Value {
        let mut payload = serde_json::json!({
            "id": self.id,
            "kind": self.spec.kind.as_str(),
            "media_time_s": ns_to_s(self.start_ns),
            "start_date": format_date(&self.start_date),
            "duration_s": self.spec.duration.map(|d| d.as_secs_f64()),
            "end_on_next": self.spec.end_on_next,
            "data": self.spec.data,
        });
        if let (Some(product), Some(obj)) = (&self.spec.product, payload.as_object_mut()) {
            obj.insert(
                "product".into(),
                serde_json::to_value(product).unwrap_or_default(),
            );
        }
        payload
    }

    /// The API representation: the payload plus stream, session, source and end.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = self.payload();
        if let Some(obj) = value.as_object_mut() {
            obj.insert("stream".into(), self.stream.clone().into());
            obj.insert("session".into(), self.session.clone().into());
            obj.insert("source".into(), self.source.as_str().into());
            obj.insert(
                "end_date".into(),
                self.end_ns()
                    .map(|end| format_date(&self.date_at(end)))
                    .into(),
            );
            obj.insert(
                "ended_early".into(),
                self.ended_ns
                    .is_some_and(|cut| self.planned_end_ns().is_none_or(|planned| cut < planned))
                    .into(),
            );
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE_BODY: &str = r#"{"kind": "product", "at": "now", "duration_s": 15,
        "product": {"id": "sku-123", "title": "Rose perfume 50 ml", "price": "49.00", "currency": "USD",
                    "image_url": "https://shop.example/i/sku-123.jpg",
                    "cta": {"label": "Buy now", "url": "https://shop.example/p/sku-123"}},
        "data": {}}"#;

    /// A request body, or a 400 naming the JSON path of the field that does not parse.
    fn parse(body: &str) -> Result<CueRequest, CueError> {
        let de = &mut serde_json::Deserializer::from_str(body);
        serde_path_to_error::deserialize(de)
            .map_err(|e| invalid(e.path().to_string(), e.inner().to_string()))
    }

    fn field<T: std::fmt::Debug>(result: Result<T, CueError>) -> String {
        match result {
            Err(CueError::Invalid { field, .. }) => field,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn the_issue_request_validates() {
        let request = parse(ISSUE_BODY).expect("parses");
        let spec = request.validate(1024).expect("valid");
        assert_eq!(spec.kind, CueKind::Product);
        assert_eq!(spec.duration, Some(Duration::from_secs(15)));
        assert_eq!(
            spec.product.as_ref().map(|p| p.id.as_str()),
            Some("sku-123")
        );
    }

    #[test]
    fn parse_errors_name_the_field() {
        assert_eq!(
            field(parse(r#"{"kind": "banner"}"#)),
            "kind",
            "unknown kind"
        );
        assert_eq!(
            field(parse(r#"{"kind": "product", "product": {"id": 5}}"#)),
            "product.id"
        );
        assert_eq!(
            field(parse(r#"{"kind": "product", "duraton_s": 5}"#)),
            "duraton_s"
        );
    }

    #[test]
    fn validation_names_the_field() {
        let with = |body: &str| parse(body).expect("parses").validate(1024);
        assert_eq!(field(with(r#"{"kind":"product"}"#)), "product");
        assert_eq!(
            field(with(
                r#"{"kind":"product","duration_s":-1,"product":{"id":"a"}}"#
            )),
            "duration_s"
        );
        assert_eq!(
            field(with(
                r#"{"kind":"product","product":{"id":"a","price":"4,9","currency":"USD"}}"#
            )),
            "product.price"
        );
        assert_eq!(
            field(with(
                r#"{"kind":"product","product":{"id":"a","price":"4.90"}}"#
            )),
            "product.currency"
        );
        assert_eq!(
            field(with(
                r#"{"kind":"product","product":{"id":"a","image_url":"javascript:x"}}"#
            )),
            "product.image_url"
        );
        assert_eq!(
            field(with(
                r#"{"kind":"pin","product":{"id":"a","title":"two\nlines"}}"#
            )),
            "product.title"
        );
        assert_eq!(field(with(r#"{"kind":"pin","data":[1]}"#)), "data");
        assert_eq!(
            field(with(r#"{"kind":"pin","duration_s":3,"end_on_next":true}"#)),
            "end_on_next"
        );
        assert_eq!(
            field(with(r#"{"kind":"clear","duration_s":3}"#)),
            "duration_s"
        );
    }

    #[test]
    fn payload_limit_is_a_413() {
        let big = format!(
            r#"{{"kind":"pin","data":{{"text":"{}"}}}}"#,
            "x".repeat(1100)
        );
        let result = parse(&big).expect("parses").validate(1024);
        assert!(matches!(
            result,
            Err(CueError::TooLarge { limit: 1024, .. })
        ));
    }

    #[test]
    fn at_forms() {
        let at = |v: &str| serde_json::from_str::<At>(v);
        assert_eq!(at(r#""now""#).expect("now"), At::Now);
        assert_eq!(
            at(r#"{"media_time_s": 12.5}"#).expect("media"),
            At::MediaTime { media_time_s: 12.5 }
        );
        assert!(matches!(
            at(r#"{"wall_clock": "2026-01-01T00:00:00Z"}"#),
            Ok(At::WallClock { .. })
        ));
        assert!(at(r#""later""#).is_err());
    }
}
