//! Shared helpers for the integration tests: a real `cuecast` process on ephemeral ports
//! ([`Server`]), real ffmpeg and GStreamer publishers ([`Publisher`]), HTTP and playlist helpers
//! (m3u8-rs, ffprobe) and a small ISO BMFF reader ([`bmff`]), independent of the server's.
//! Each test binary uses a part of them.
#![allow(dead_code, unused_imports)]

pub mod bmff;
mod hls;
mod publisher;
mod server;

pub use hls::*;
pub use publisher::Publisher;
pub use server::{STREAMS, Server, closed_by_peer, listener_addr, wait_log, wait_log_count};
