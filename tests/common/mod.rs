//! Shared helpers for the integration tests: a real `cuecast` process on ephemeral ports
//! ([`Server`]), real ffmpeg and GStreamer publishers ([`Publisher`]), HTTP and playlist helpers
//! (m3u8-rs, ffprobe) and a small ISO BMFF reader ([`bmff`]), independent of the server's.
//! Each test binary uses a part of them.
#![allow(dead_code)]

mod api;
pub mod bmff;
pub mod browser;
pub mod chat;
mod hls;
mod publisher;
mod server;
pub mod services;

// Each test binary uses a part of these.
#[allow(unused_imports)]
pub use api::{account, call, recordings, wait_recordings, wait_show_state};
#[allow(unused_imports)]
pub use hls::*;
#[allow(unused_imports)]
pub use publisher::Publisher;
#[allow(unused_imports)]
pub use server::{STREAMS, Server, closed_by_peer, listener_addr, wait_log, wait_log_count};

/// Waits up to `timeout` for `child` to exit; its status if it did.
fn wait_child(
    child: &mut std::process::Child,
    timeout: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    None
}
