//! cuecast: a live-shopping media server.
//!
//! Data flows `ingest` (RTMP) → `media` (GStreamer pipelines, CMAF) → `hls` (packager,
//! playlists, origin); `cues` adds timed product cues to playlists and segments; `http` serves the origin and the API; `app` wires the features from
//! `config` and owns shutdown.

pub mod app;
pub mod config;
pub mod cues;
pub mod hls;
pub mod http;
pub mod ingest;
pub mod media;
pub mod metrics;
pub mod store;
