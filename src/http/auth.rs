//! API authentication: `Authorization: Bearer <token>`. The one admin-token check of every
//! router ([`Admin`], [`AdminToken::matches`]), and [`Caller`] for routes that also take users'
//! login tokens.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::cues::ApiError;
use crate::hls::directory::Owner;
use crate::users::Capability;
use crate::users::token::Claims;

/// Proof that the request carried the admin token.
pub struct Admin;

/// Why a request is not authorised.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No (or a malformed) Authorization header.
    #[error("missing bearer token (Authorization: Bearer <token>)")]
    Missing,
    /// A token that grants nothing here.
    #[error("invalid token")]
    Invalid,
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let body = super::openapi::ErrorBody::message(self.to_string()).to_json();
        (
            StatusCode::UNAUTHORIZED,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::WWW_AUTHENTICATE, "Bearer"),
            ],
            body,
        )
            .into_response()
    }
}

/// The bearer token of a request, if well formed.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The admin bearer token (`api.admin_token`): may call every admin route, for every stream.
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    /// The configured token.
    pub fn new(token: impl Into<String>) -> AdminToken {
        AdminToken(token.into())
    }

    /// Whether a request's `token` is the admin token (compared in constant time).
    pub fn matches(&self, token: &str) -> bool {
        constant_time_eq(token.as_bytes(), self.0.as_bytes())
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl FromRequestParts<Arc<ApiState>> for Admin {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(AuthError::Missing)?;
        if state.admin_token.matches(token) {
            Ok(Admin)
        } else {
            Err(AuthError::Invalid)
        }
    }
}

/// Who called a route that takes both the admin token and users' login tokens (and maybe no
/// token at all). A token that is neither is refused (401), never taken for no token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No Authorization header.
    Anonymous,
    /// The admin token.
    Admin,
    /// A valid login token.
    User(Claims),
}

impl FromRequestParts<Arc<ApiState>> for Caller {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        if !parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(Caller::Anonymous);
        }
        let token = bearer(parts).ok_or(AuthError::Missing)?;
        if state.admin_token.matches(token) {
            return Ok(Caller::Admin);
        }
        state
            .users
            .verify(token)
            .map(Caller::User)
            .map_err(|_| AuthError::Invalid)
    }
}

/// The one check of "may this caller manage stream `stream`" (its cues and rundown, its live
/// status, its chat's host actions), used by every route that manages a stream:
/// - no token: 401; no such stream: 404;
/// - the admin token: every stream;
/// - a host's own stream (the host of its key): that host;
/// - a configured stream: a host with a show on it that has not ended;
/// - anyone else: 403.
pub fn may_manage_stream(api: &ApiState, caller: &Caller, stream: &str) -> Result<(), ApiError> {
    let user = match caller {
        Caller::Anonymous => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "managing a stream needs the admin token or its host's login token",
            ));
        }
        Caller::Admin => None,
        Caller::User(claims) => Some(claims),
    };
    let owner = api
        .keys
        .directory()
        .owner(stream)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no stream `{stream}`")))?;
    let Some(claims) = user else {
        return Ok(());
    };
    let allowed = claims.caps.contains(&Capability::Host)
        && match owner {
            Owner::Host(host) => host == claims.sub,
            Owner::Configured => api.shows.hosts_on(&claims.sub, stream),
        };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("stream `{stream}` is managed by its host and the admin"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(value: Option<&str>) -> Parts {
        let mut builder = axum::http::Request::builder();
        if let Some(v) = value {
            builder = builder.header(header::AUTHORIZATION, v);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer(&parts(Some("Bearer abc"))), Some("abc"));
        assert_eq!(bearer(&parts(Some("bearer  abc "))), Some("abc"));
        assert_eq!(bearer(&parts(Some("Basic abc"))), None);
        assert_eq!(bearer(&parts(Some("Bearer "))), None);
        assert_eq!(bearer(&parts(None)), None);
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"dev-admin-token", b"dev-admin-token"));
        assert!(!constant_time_eq(b"dev-admin-token", b"dev-admin-tokem"));
        assert!(!constant_time_eq(b"dev", b"dev-admin-token"));
        let admin = AdminToken::new("dev-admin-token");
        assert!(admin.matches("dev-admin-token"));
        assert!(!admin.matches("dev-admin-tokem"));
        assert!(!admin.matches(""));
        assert_eq!(format!("{admin:?}"), "AdminToken(..)");
    }
}
