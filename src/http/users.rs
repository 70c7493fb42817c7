//! Account routes: `POST /api/signup`, `POST /api/login` (→ `{"token"}`), and the admin's
//! `GET`/`PUT /api/users/{username}/capabilities`.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::ApiState;
use super::auth::Admin;
use crate::users::{Capability, UserError};

/// Login or sign-up body.
#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// Capabilities body.
#[derive(Deserialize)]
struct Capabilities {
    capabilities: Vec<String>,
}

/// JSON error response.
pub fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": message.to_string() })),
    )
        .into_response()
}

fn user_error(err: UserError) -> Response {
    let status = match &err {
        UserError::BadUsername | UserError::BadPassword => StatusCode::BAD_REQUEST,
        UserError::Taken => StatusCode::CONFLICT,
        UserError::WrongCredentials => StatusCode::UNAUTHORIZED,
        UserError::NotFound => StatusCode::NOT_FOUND,
        UserError::SignupDisabled => StatusCode::FORBIDDEN,
        UserError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
        UserError::Db(_) | UserError::Hash(_) => {
            tracing::error!(error = %err, "account operation failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    error(status, err)
}

/// Parses a JSON body, answering 400 with the reason otherwise.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("invalid JSON body: {e}"),
        ))
    })
}

async fn signup(State(api): State<Arc<ApiState>>, body: axum::body::Bytes) -> Response {
    let creds: Credentials = match parse(&body) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    match api.users.signup(&creds.username, &creds.password).await {
        Ok(token) => (
            StatusCode::CREATED,
            Json(serde_json::json!({ "token": token })),
        )
            .into_response(),
        Err(err) => user_error(err),
    }
}

async fn login(State(api): State<Arc<ApiState>>, body: axum::body::Bytes) -> Response {
    let creds: Credentials = match parse(&body) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    match api.users.login(&creds.username, &creds.password).await {
        Ok(token) => Json(serde_json::json!({ "token": token })).into_response(),
        Err(err) => user_error(err),
    }
}

fn caps_json(username: &str, caps: &BTreeSet<Capability>) -> Response {
    Json(serde_json::json!({
        "username": username.to_ascii_lowercase(),
        "capabilities": caps.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
    }))
    .into_response()
}

async fn get_capabilities(
    _admin: Admin,
    State(api): State<Arc<ApiState>>,
    Path(username): Path<String>,
) -> Response {
    match api.users.capabilities(&username).await {
        Ok(caps) => caps_json(&username, &caps),
        Err(err) => user_error(err),
    }
}

async fn put_capabilities(
    _admin: Admin,
    State(api): State<Arc<ApiState>>,
    Path(username): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let wanted: Capabilities = match parse(&body) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let mut caps = BTreeSet::new();
    for name in &wanted.capabilities {
        match Capability::parse(name) {
            Some(cap) => {
                caps.insert(cap);
            }
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("unknown capability `{name}` (send, moderate, host, shop)"),
                );
            }
        }
    }
    match api.users.set_capabilities(&username, &caps).await {
        Ok(caps) => caps_json(&username, &caps),
        Err(err) => user_error(err),
    }
}

/// The account routes.
pub fn router(api: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/signup", post(signup))
        .route("/api/login", post(login))
        .route(
            "/api/users/{username}/capabilities",
            get(get_capabilities).put(put_capabilities),
        )
        .with_state(api)
}
