//! `[rtmp]`: the listener, the application name, chunk and message sizes, limits and read
//! batching.

use std::net::SocketAddr;

use serde::Deserialize;

use super::SessionConfig;
use super::server::RtmpSettings;
use crate::setting::{Invalid, millis_or_off, positive_secs, secs};

/// `[rtmp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Application name publishers connect to.
    pub app: String,
    /// Outgoing chunk size.
    pub chunk_size: u32,
    /// Largest accepted message.
    pub max_message_size: usize,
    /// Idle timeout, seconds.
    pub idle_timeout_s: f64,
    /// Connection limit.
    pub max_connections: usize,
    /// Read batching period, ms (0 = off).
    pub read_batch_ms: u64,
}

impl Config {
    /// Checks what serde cannot; keys are relative to `[rtmp]`.
    pub fn validate(&self) -> Result<(), Invalid> {
        positive_secs("idle_timeout_s", self.idle_timeout_s)?;
        if !(128..=65536).contains(&self.chunk_size) {
            return Err(Invalid::new("chunk_size", "must be within 128..=65536"));
        }
        if self.max_message_size < 1024 {
            return Err(Invalid::new("max_message_size", "must be at least 1024"));
        }
        if self.app.is_empty() {
            return Err(Invalid::new("app", "must not be empty"));
        }
        Ok(())
    }

    /// The RTMP server's settings.
    pub fn settings(&self) -> RtmpSettings {
        RtmpSettings {
            app: self.app.clone(),
            session: SessionConfig {
                chunk_size: self.chunk_size,
                max_message_size: self.max_message_size,
                ..SessionConfig::default()
            },
            idle_timeout: secs(self.idle_timeout_s),
            max_connections: self.max_connections,
            read_batch: millis_or_off(self.read_batch_ms),
        }
    }
}
