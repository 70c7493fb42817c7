//! `[cues]`: the per-stream request rate and the size limits of cue requests and rundowns.

use serde::Deserialize;

use crate::setting::Invalid;

/// `[cues]`, also the cue service's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Accepted cue requests per second per stream.
    pub rate_per_s: f64,
    /// Requests allowed at once before the rate applies.
    pub rate_burst: u32,
    /// Largest JSON of product + data, bytes (413 above).
    pub max_payload_bytes: usize,
    /// Largest request body, bytes (413 above).
    pub max_request_bytes: usize,
    /// Most items in one rundown upload.
    pub max_rundown_items: usize,
}

impl Config {
    /// Checks what serde cannot; keys are relative to `[cues]`.
    pub fn validate(&self) -> Result<(), Invalid> {
        if !(self.rate_per_s.is_finite() && self.rate_per_s > 0.0) {
            return Err(Invalid::new("rate_per_s", "must be a positive number"));
        }
        if self.rate_burst == 0 {
            return Err(Invalid::new("rate_burst", "must be at least 1"));
        }
        if self.max_payload_bytes < 64 {
            return Err(Invalid::new("max_payload_bytes", "must be at least 64"));
        }
        if self.max_request_bytes < self.max_payload_bytes {
            return Err(Invalid::new(
                "max_request_bytes",
                "must be at least cues.max_payload_bytes",
            ));
        }
        if self.max_rundown_items == 0 {
            return Err(Invalid::new("max_rundown_items", "must be at least 1"));
        }
        Ok(())
    }
}
