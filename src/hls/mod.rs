//! HLS: the pure packager and playlist model, the live stream registry, and the HTTP origin.
//!
//! Dependencies point into `hls`, never out of it to other features: the media pipeline pushes
//! CMAF chunks in ([`packager::CmafChunk`], [`timed::Ingested`]), and the cues feature plugs its
//! timed metadata and its media-time observer in through [`timed`]; the shows of the commerce
//! feature follow sessions starting and ending, and decide whether a clean unpublish holds the
//! session for the reconnect grace, through [`lifecycle`].

pub mod align;
mod config;
pub mod directives;
pub mod directory;
pub mod handoff;
pub mod hold;
pub mod lifecycle;
pub mod origin;
pub mod packager;
pub mod playlist;
pub mod recording;
pub mod registry;
pub mod rendition;
pub mod stream;
pub mod timed;
pub mod timeline;

pub use config::Config;
