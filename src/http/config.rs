//! `[http]` (where the server listens, CORS) and `[api]` (the admin token).

use std::net::SocketAddr;

use serde::Deserialize;
use tokio::net::TcpListener;

use super::HttpError;
use super::auth::AdminToken;
use crate::setting::Invalid;

/// The development admin token shipped in the default config.
pub const DEV_ADMIN_TOKEN: &str = "dev-admin-token";

/// `[http]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Access-Control-Allow-Origin value.
    pub cors_allow_origin: String,
}

impl Config {
    /// Binds the listen address (`http.listen` in the error).
    pub async fn bind(&self) -> Result<TcpListener, HttpError> {
        TcpListener::bind(self.listen)
            .await
            .map_err(|source| HttpError::Bind {
                addr: self.listen,
                source,
            })
    }
}

/// `[api]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Admin bearer token.
    pub admin_token: String,
}

impl ApiConfig {
    /// Checks what serde cannot; keys are relative to `[api]`.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.admin_token.len() < 8 {
            return Err(Invalid::new("admin_token", "must be at least 8 characters"));
        }
        Ok(())
    }

    /// The admin token the routers check; warns while it is the public development default.
    pub fn admin_token(&self) -> AdminToken {
        if self.admin_token == DEV_ADMIN_TOKEN {
            tracing::warn!(
                "api.admin_token is the public development default; set your own before exposing this server"
            );
        }
        AdminToken::new(self.admin_token.clone())
    }
}
