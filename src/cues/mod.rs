//! Timed product cues (issue #5): a host marks a moment of the live show ("now", a media
//! time, or a wall-clock time) with a product highlight, pin, offer or clear; cuecast puts it
//! on the stream's media timeline and carries it two ways, so players see it on the exact
//! frame, live and in replay:
//! - EXT-X-DATERANGE in every media playlist (`track::render`, rfc8216bis §4.4.5.1), kept
//!   consistent through Playlist Delta Updates (RECENTLY-REMOVED-DATERANGES);
//! - an `emsg` v1 box with an ID3v2.4 tag (`emsg`) before the `moof` of the chunk holding the
//!   cue's start, in every rendition (`track::Carriage`).
//!
//! Cues are persisted (`store`, SQLite) before they are published; rundowns (`rundown`) fire
//! from the ingested media timeline. `service` holds the logic, `crate::http::cues` the HTTP
//! shell.
//!
//! `cues` depends on `hls`, never the reverse: a session's [`track::CueTrack`] is its
//! `hls::timed::TimedMetadata`, and the service is every stream's `hls::timed::StreamObserver`.

mod config;
pub mod emsg;
pub mod model;
pub mod mp4;
pub mod rate;
pub mod rundown;
pub mod service;
pub mod store;
pub mod track;

pub use config::Config;
