//! Account routes: `POST /api/signup`, `POST /api/login` (→ `{"token"}`), and the admin's
//! `GET`/`PUT /api/users/{username}/capabilities`.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::Admin;
use super::openapi::ErrorBody;
use crate::users::{Capability, UserError};

/// Login or sign-up body.
#[derive(Deserialize, ToSchema)]
pub struct Credentials {
    /// 3–32 letters, digits, `_`, `-`, `.`, starting with a letter or digit (case-insensitive).
    pub username: String,
    /// The password (sign-up: at least 8 characters).
    pub password: String,
}

/// A login token.
#[derive(Serialize, ToSchema)]
pub struct Token {
    /// Bearer token for chat, shows and events (`Authorization: Bearer <token>`).
    pub token: String,
}

/// The capabilities a user holds (`PUT` body; `GET`/`PUT` answer with `username` too).
#[derive(Deserialize, Serialize, ToSchema)]
pub struct Capabilities {
    /// The user (lower case); absent in requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// What the user may do.
    #[schema(value_type = Vec<CapabilityName>)]
    pub capabilities: Vec<String>,
}

/// A capability.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CapabilityName {
    /// Post chat messages.
    Send,
    /// Delete messages, time out and ban in chat.
    Moderate,
    /// Host shows: post links, product cards and pins; manage their own shows.
    Host,
    /// The shop's backend: report purchases to `POST /api/events`.
    Shop,
}

/// JSON error response.
pub fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(ErrorBody::message(message.to_string()))).into_response()
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

#[utoipa::path(post, path = "/api/signup", tag = "users", summary = "Create a chat account",
    request_body = Credentials,
    responses(
        (status = 201, description = "The account's login token", body = Token),
        (status = 400, description = "Bad JSON, username or password", body = ErrorBody),
        (status = 403, description = "Sign-up is disabled", body = ErrorBody),
        (status = 409, description = "The username is taken", body = ErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody),
    ))]
async fn signup(State(api): State<Arc<ApiState>>, body: axum::body::Bytes) -> Response {
    let creds: Credentials = match parse(&body) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    match api.users.signup(&creds.username, &creds.password).await {
        Ok(token) => (StatusCode::CREATED, Json(Token { token })).into_response(),
        Err(err) => user_error(err),
    }
}

#[utoipa::path(post, path = "/api/login", tag = "users", summary = "Log in",
    request_body = Credentials,
    responses(
        (status = 200, description = "A login token", body = Token),
        (status = 400, description = "Bad JSON", body = ErrorBody),
        (status = 401, description = "Wrong username or password", body = ErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody),
    ))]
async fn login(State(api): State<Arc<ApiState>>, body: axum::body::Bytes) -> Response {
    let creds: Credentials = match parse(&body) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    match api.users.login(&creds.username, &creds.password).await {
        Ok(token) => Json(Token { token }).into_response(),
        Err(err) => user_error(err),
    }
}

fn caps_json(username: &str, caps: &BTreeSet<Capability>) -> Response {
    Json(Capabilities {
        username: Some(username.to_ascii_lowercase()),
        capabilities: caps.iter().map(|c| c.as_str().to_string()).collect(),
    })
    .into_response()
}

#[utoipa::path(get, path = "/api/users/{username}/capabilities", tag = "users",
    summary = "A user's capabilities",
    security(("admin" = [])),
    params(("username" = String, Path, description = "The user")),
    responses(
        (status = 200, description = "The user's capabilities", body = Capabilities),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
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

#[utoipa::path(put, path = "/api/users/{username}/capabilities", tag = "users",
    summary = "Set a user's capabilities",
    security(("admin" = [])),
    params(("username" = String, Path, description = "The user")),
    request_body = Capabilities,
    responses(
        (status = 200, description = "The user's capabilities now", body = Capabilities),
        (status = 400, description = "Bad JSON or an unknown capability", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
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
pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(get_capabilities, put_capabilities))
}
