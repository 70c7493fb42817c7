//! The API's contract: an OpenAPI 3.1 document generated from the routes themselves, served at
//! `GET /api/openapi.json`.
//!
//! Every `/api` route is registered through [`utoipa_axum::router::OpenApiRouter`] with
//! `routes!(handler, …)`, and each handler carries its `#[utoipa::path]` (method, path,
//! parameters, request body, every status with its body, security), so a route cannot be served
//! without being documented. The schemas of the bodies the handlers build with `json!` are the
//! types of this module, which mirror them field for field; the schemathesis run
//! (`tests/api/schemathesis.sh`) checks every answer of a running server against them.
//!
//! Authentication is HTTP bearer, in two schemes: `admin` (`api.admin_token`) and `login` (a
//! token from `POST /api/login` or `/api/signup`). An operation that takes either lists both;
//! one open to everyone but also reading a token lists an empty requirement too.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;

/// The document's fixed parts: info, security schemes, tags. The paths come from the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "cuecast API",
        description = "Live shopping: streams and timed product cues, chat accounts, shows, \
                       the catalog, shopper events and their analytics. Errors are \
                       `{\"error\": \"...\"}`, naming the bad `field` (and every one in \
                       `errors`) where a request had bad input.",
        license(name = "MIT OR Apache-2.0")
    ),
    modifiers(&BearerSchemes),
    tags(
        (name = "streams", description = "Streams (configured and hosts') and their publishers (admin)"),
        (name = "cues", description = "Timed product cues and rundowns (admin, or the stream's host)"),
        (name = "keys", description = "Hosts' stream keys and the ingest URLs"),
        (name = "users", description = "Chat accounts, logins and capabilities"),
        (name = "chat", description = "Chat endpoint and replay history"),
        (name = "shows", description = "Shows and their schedule"),
        (name = "catalog", description = "The shop's catalog"),
        (name = "events", description = "Shopper events and show analytics"),
        (name = "recordings", description = "Recordings of live streams, played at /vod"),
        (name = "recommendations", description = "Recommended products and shows"),
        (name = "meta", description = "This document")
    )
)]
pub struct ApiDoc;

/// Adds the `admin` and `login` bearer schemes.
struct BearerSchemes;

impl Modify for BearerSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = |description: &str| {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.description = Some(description.to_string());
            SecurityScheme::Http(http)
        };
        components.add_security_scheme(
            ADMIN,
            scheme("The admin token (`api.admin_token`): every admin route, every stream."),
        );
        components.add_security_scheme(
            LOGIN,
            scheme(
                "A user's login token (`POST /api/login`); what it may do depends on its \
                 capabilities (`host` for shows and analytics, `shop` for purchases).",
            ),
        );
    }
}

/// The admin token's security scheme.
pub const ADMIN: &str = "admin";
/// Users' login tokens' security scheme.
pub const LOGIN: &str = "login";

/// The `/api` routes, each documented: the routers of every feature, merged. Adding a feature's
/// routes is one `.merge(feature::routes())` line here (docs/api.md, "Adding a route").
pub fn api_routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(serve_document))
        .merge(super::streams::routes())
        .merge(super::keys::routes())
        .merge(super::cues::routes())
        .merge(super::users::routes())
        .merge(super::chat::routes())
        .merge(super::chat_ws::routes())
        .merge(super::shows::routes())
        .merge(super::catalog::routes())
        .merge(super::events::routes())
        .merge(super::live::routes())
        .merge(super::recordings::routes())
        .merge(super::recommend::routes())
}

/// The document alone, built from the routers (serving nothing).
pub fn document() -> utoipa::openapi::OpenApi {
    api_routes().into_openapi()
}

/// The `/api` router, serving the document it was built with at `/api/openapi.json`.
pub fn api_router() -> axum::Router<Arc<ApiState>> {
    let (router, document) = api_routes().split_for_parts();
    let json = document.to_json().unwrap_or_else(|err| {
        tracing::error!(error = %err, "the OpenAPI document does not serialize");
        String::new()
    });
    let json = Document(Bytes::from(json));
    router.layer(axum::Extension(json))
}

/// The document, rendered once.
#[derive(Clone)]
struct Document(Bytes);

/// `GET /api/openapi.json`: this document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta", operation_id = "openapi_document",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API",
        content_type = "application/json", body = Object)))]
async fn serve_document(axum::Extension(document): axum::Extension<Document>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document.0).into_response()
}

/// The error body of every `/api` route (what [`super::cues::ApiError`] and the other error
/// answers write).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// What is wrong, for a person (`title: must not be empty`).
    pub error: String,
    /// The bad field or parameter, as a JSON path (`products[3].price`), on input errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every field error of the request, when it had more than one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldErrorBody>>,
}

impl ErrorBody {
    /// `{"error": message}`.
    pub fn message(message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            error: message.into(),
            field: None,
            errors: None,
        }
    }

    /// The JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// One field error of [`ErrorBody::errors`].
#[derive(Serialize, ToSchema)]
pub struct FieldErrorBody {
    /// The field, as a JSON path (`events[3].type`).
    pub field: String,
    /// What is wrong with it.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    /// `(METHOD, path)` of every operation of the document.
    fn operations(document: &utoipa::openapi::OpenApi) -> BTreeSet<(String, String)> {
        let value = serde_json::to_value(document).expect("serializes");
        let mut out = BTreeSet::new();
        for (path, item) in value["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                out.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
        out
    }

    /// Every `.rs` file under `dir`.
    fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read");
                out.push((path.display().to_string(), text));
            }
        }
    }

    /// `(METHOD, path)` of every `#[utoipa::path(method, path = "...")]` handler in `text`.
    fn annotated(text: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (at, _) in text.match_indices("#[utoipa::path(") {
            let rest = &text[at + "#[utoipa::path(".len()..];
            let method = rest
                .split(',')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_uppercase();
            let path = rest
                .split_once("path = \"")
                .and_then(|(_, p)| p.split_once('"'))
                .map(|(p, _)| p.to_string())
                .unwrap_or_default();
            out.push((method, path));
        }
        out
    }

    #[test]
    fn error_bodies_carry_field_and_errors_only_when_there_are_some() {
        assert_eq!(ErrorBody::message("no").to_json(), r#"{"error":"no"}"#);
        let body = ErrorBody {
            error: "events[0].type: unknown".into(),
            field: Some("events[0].type".into()),
            errors: Some(vec![FieldErrorBody {
                field: "events[0].type".into(),
                error: "unknown".into(),
            }]),
        };
        assert_eq!(
            body.to_json(),
            r#"{"error":"events[0].type: unknown","field":"events[0].type","errors":[{"field":"events[0].type","error":"unknown"}]}"#
        );
    }

    #[test]
    fn every_routed_api_handler_is_in_the_document_and_only_those() {
        let document = document();
        let documented = operations(&document);
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        let mut in_source = BTreeSet::new();
        for (file, text) in &files {
            // An `/api` route added with axum's `.route(...)` would be served undocumented:
            // every one goes through `routes!` and its `#[utoipa::path]`.
            let code = text.split("#[cfg(test)]").next().unwrap_or(text);
            let squeezed: String = code.split_whitespace().collect();
            assert!(
                !squeezed.contains(".route(\"/api") && !squeezed.contains(".nest(\"/api"),
                "{file}: an /api route registered outside OpenApiRouter::routes(routes!(...))"
            );
            in_source.extend(annotated(code));
        }
        assert_eq!(
            documented, in_source,
            "the document and the #[utoipa::path] handlers differ (a handler not in routes!?)"
        );
        for (method, path) in &documented {
            assert!(
                path.starts_with("/api/"),
                "{method} {path} is not under /api"
            );
        }
        // The routes of every feature are there (a merge forgotten in api_routes fails here).
        for prefix in [
            "/api/streams",
            "/api/streams/{stream}/cues",
            "/api/login",
            "/api/chat/",
            "/api/shows",
            "/api/catalog/products",
            "/api/events",
            "/api/openapi.json",
            "/api/recommendations/",
            "/api/keys",
            "/api/ingest",
        ] {
            assert!(
                documented.iter().any(|(_, p)| p.starts_with(prefix)),
                "no {prefix} route in the document"
            );
        }
    }

    #[test]
    fn every_operation_documents_its_errors_and_auth() {
        let value = serde_json::to_value(document()).expect("serializes");
        assert_eq!(value["openapi"], "3.1.0");
        let schemes = &value["components"]["securitySchemes"];
        for scheme in [ADMIN, LOGIN] {
            assert_eq!(schemes[scheme]["type"], "http", "{scheme}");
            assert_eq!(schemes[scheme]["scheme"], "bearer", "{scheme}");
        }
        let mut ids = BTreeSet::new();
        for (path, item) in value["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let name = format!("{method} {path}");
                let id = op["operationId"].as_str().expect("operationId");
                assert!(ids.insert(id.to_string()), "{name}: operationId {id} twice");
                let responses = op["responses"].as_object().expect("responses");
                // A WebSocket upgrade succeeds with 101.
                assert!(
                    responses.keys().any(|s| s.starts_with('2') || s == "101"),
                    "{name}: no 2xx"
                );
                for (status, response) in responses {
                    if status.starts_with('4') {
                        let schema = &response["content"]["application/json"]["schema"]["$ref"];
                        assert_eq!(
                            schema, "#/components/schemas/ErrorBody",
                            "{name}: {status} without the error body"
                        );
                    }
                }
                let secured = op["security"].as_array().is_some_and(|alternatives| {
                    alternatives.iter().all(|a| a != &serde_json::json!({}))
                });
                if secured {
                    assert!(responses.contains_key("401"), "{name}: secured, no 401");
                }
                let has_path_params = path.contains('{');
                if has_path_params {
                    assert!(
                        responses.contains_key("404"),
                        "{name}: path parameters, no 404 (an empty one is no route)"
                    );
                }
            }
        }
    }
}
