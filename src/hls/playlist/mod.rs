//! HLS playlist model and serializers.
//!
//! Implements the playlist text of RFC 8216 (HTTP Live Streaming) and its Low-Latency
//! extensions from draft-pantos-hls-rfc8216bis (EXT-X-PART, EXT-X-PART-INF,
//! EXT-X-SERVER-CONTROL, EXT-X-PRELOAD-HINT, EXT-X-SKIP, EXT-X-RENDITION-REPORT) and
//! EXT-X-DATERANGE (timed metadata).
//!
//! One type per tag (like gohlslib's `pkg/playlist`); every type implements
//! [`std::fmt::Display`] and writes its exact playlist text with `\n` line ends. Whole
//! playlists ([`MediaPlaylist`], [`MultivariantPlaylist`]) start with `#EXTM3U`.
//!
//! The model is plain data: it does not check spec invariants beyond what
//! [`MediaPlaylist::validate`] / [`MultivariantPlaylist::validate`] report; the packager
//! (`super::packager`) is what builds spec-conforming values.

mod daterange;
mod format;
mod map;
mod media;
mod multivariant;
mod part;
mod preload_hint;
mod rendition_report;
mod server_control;
mod skip;

pub use daterange::{ClientValue, DateRange};
pub use format::{FormatSeconds, validate_quoted};
pub use map::Map;
pub use media::{MediaPlaylist, MediaSegment, PartialSegment, PlaylistType};
pub use multivariant::{AudioRendition, MultivariantPlaylist, Variant};
pub use part::{Part, PartInf};
pub use preload_hint::{PreloadHint, PreloadHintType};
pub use rendition_report::RenditionReport;
pub use server_control::ServerControl;
pub use skip::Skip;

/// Errors found by the `validate` methods of the playlist model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaylistError {
    /// RFC 8216 §4.2: a quoted-string "MUST NOT contain CR, LF or `"`".
    #[error("attribute {attribute} has a value that cannot be a quoted-string: {value:?}")]
    InvalidQuotedString {
        /// Attribute name, e.g. `NAME`.
        attribute: &'static str,
        /// The offending value.
        value: String,
    },
    /// A URI line must be one non-empty line.
    #[error("invalid URI line: {0:?}")]
    InvalidUri(String),
    /// An EXT-X-DATERANGE that breaks a rule of rfc8216bis §4.4.5.1.
    #[error("invalid EXT-X-DATERANGE: {0}")]
    InvalidDateRange(&'static str),
}
