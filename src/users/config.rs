//! `[users]`: login token lifetime and open sign-up.

use std::time::Duration;

use serde::Deserialize;

use super::UsersSettings;
use crate::setting::Invalid;

/// `[users]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Token lifetime, seconds.
    pub token_ttl_s: u64,
    /// Open sign-up.
    pub signup_enabled: bool,
}

impl Config {
    /// Checks what serde cannot; keys are relative to `[users]`.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.token_ttl_s < 60 {
            return Err(Invalid::new("token_ttl_s", "must be at least 60"));
        }
        Ok(())
    }

    /// The accounts' runtime settings.
    pub fn settings(&self) -> UsersSettings {
        UsersSettings {
            token_ttl: Duration::from_secs(self.token_ttl_s),
            signup_enabled: self.signup_enabled,
        }
    }
}
