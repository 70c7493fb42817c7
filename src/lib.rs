//! cuecast: a live-shopping media server.
//!
//! Data flows `ingest` (RTMP, SRT) → `media` (GStreamer pipelines, CMAF) → `hls` (packager,
//! playlists, origin); `cues` adds timed product cues to playlists and segments; `http` serves
//! the origin and the API; `app` wires the features from `config` and owns shutdown. `chat` is
//! the QUIC live chat beside the video, with its accounts in `users`.
//!
//! Each feature owns its config section (`hls::Config`, ...; shared pieces in `setting`);
//! `config` loads and composes them. The allowed import directions between these modules are
//! in docs/architecture.md, checked by `tests/architecture.rs`.

pub mod app;
pub mod chat;
pub mod cluster;
pub mod commerce;
pub mod config;
pub mod cues;
pub mod hls;
pub mod http;
pub mod ingest;
pub mod media;
pub mod metrics;
pub mod setting;
pub mod store;
pub mod tls;
pub mod users;
pub mod webhooks;

#[cfg(test)]
mod testing;
