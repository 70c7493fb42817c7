//! HTTP API of the catalog (JSON), around [`crate::commerce::Catalog`]:
//! - `POST /api/catalog/products` (admin): upserts a JSON array of products, all or none →
//!   `{"upserted": n}`
//! - `GET /api/catalog/products/{id}` → the product
//! - `GET /api/catalog/products?q=&category=&limit=&cursor=` → `{"products", "total",
//!   "next_cursor", "facets": {"category", "brand"}}`
//! - `DELETE /api/catalog/products/{id}` (admin) → 204
//!
//! Errors are `{"error": "...", "field": "..."}` (field only for 400, e.g.
//! `products[3].price`): 400 bad input, 401 missing/invalid token, 404 unknown product, 413 body
//! over `catalog.max_request_bytes` or more than `catalog.max_batch` products, 500 storage.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::Admin;
use super::cues::{ApiError, json};
use super::openapi::ErrorBody;
use crate::commerce::catalog::{CatalogError, CatalogProduct, ListRequest, Page, import, unix_now};

/// The catalog routes.
pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(list_products, upsert_products))
        .routes(routes!(get_product, delete_product))
}

/// The answer to an upsert.
#[derive(Serialize, ToSchema)]
pub struct Upserted {
    /// Products inserted or replaced.
    pub upserted: usize,
}

/// The query string of `GET /api/catalog/products`; any other parameter is refused (400).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Full-text query (typo-tolerant, prefixes); absent = browse in id order.
    pub q: Option<String>,
    /// Category path (`beauty > fragrance`): it and the categories below it.
    pub category: Option<String>,
    /// Page size (`catalog.default_limit` when absent, at most `catalog.max_limit`).
    #[param(minimum = 1)]
    pub limit: Option<u64>,
    /// Where the page starts: the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

impl From<CatalogError> for ApiError {
    fn from(err: CatalogError) -> ApiError {
        let message = err.to_string();
        match err {
            CatalogError::Invalid(field) => ApiError::field(field.field, message),
            CatalogError::TooMany { .. } => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message),
            CatalogError::Store(_) | CatalogError::Index(_) | CatalogError::Task(_) => {
                tracing::error!(error = %message, "catalog request failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage error")
            }
        }
    }
}

fn no_product(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no product `{id}`"))
}

#[utoipa::path(post, path = "/api/catalog/products", tag = "catalog",
    summary = "Insert or replace products (all or none)",
    security(("admin" = [])),
    request_body = Vec<CatalogProduct>,
    responses(
        (status = 200, description = "How many were upserted", body = Upserted),
        (status = 400, description = "A bad field, named (`products[3].price`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 413, description = "Body over `catalog.max_request_bytes` or more than `catalog.max_batch` products", body = ErrorBody),
    ))]
async fn upsert_products(
    _admin: Admin,
    State(api): State<Arc<ApiState>>,
    body: Body,
) -> Result<Response, ApiError> {
    let limit = api.catalog.settings.max_request_bytes;
    let body = to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over {limit} bytes (catalog.max_request_bytes)"),
        )
    })?;
    let products = import::parse_json(&body).map_err(CatalogError::from)?;
    let upserted = api.catalog.upsert(products).await?;
    Ok(axum::Json(Upserted { upserted }).into_response())
}

#[utoipa::path(get, path = "/api/catalog/products/{id}", tag = "catalog", summary = "A product",
    params(("id" = String, Path, description = "Product id (SKU)")),
    responses(
        (status = 200, description = "The product", body = CatalogProduct),
        (status = 404, description = "No such product", body = ErrorBody),
    ))]
async fn get_product(
    State(api): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let product = api.catalog.get(&id).ok_or_else(|| no_product(&id))?;
    Ok(json(
        StatusCode::OK,
        serde_json::to_value(&*product).unwrap_or_default(),
    ))
}

#[utoipa::path(delete, path = "/api/catalog/products/{id}", tag = "catalog",
    summary = "Delete a product",
    security(("admin" = [])),
    params(("id" = String, Path, description = "Product id (SKU)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
    ))]
async fn delete_product(
    _admin: Admin,
    State(api): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if api.catalog.delete(&id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(no_product(&id))
    }
}

/// The listing's query string: `q`, `category`, `limit` (a number), `cursor`; anything else is
/// refused so a misspelt parameter does not silently list everything.
fn list_request(mut params: HashMap<String, String>) -> Result<ListRequest, ApiError> {
    let limit = params
        .remove("limit")
        .map(|raw| {
            raw.trim()
                .parse::<usize>()
                .map_err(|_| ApiError::field("limit", format!("limit: not a number {raw:?}")))
        })
        .transpose()?;
    let request = ListRequest {
        q: params.remove("q"),
        category: params.remove("category"),
        limit,
        cursor: params.remove("cursor").filter(|c| !c.is_empty()),
    };
    if let Some(name) = params.keys().next() {
        return Err(ApiError::field(
            name.clone(),
            format!("{name}: unknown parameter (q, category, limit, cursor)"),
        ));
    }
    Ok(request)
}

#[utoipa::path(get, path = "/api/catalog/products", tag = "catalog",
    summary = "Search or browse products",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of products with facet counts", body = Page),
        (status = 400, description = "A bad parameter, named", body = ErrorBody),
    ))]
async fn list_products(
    State(api): State<Arc<ApiState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let request = list_request(params)?;
    let page = api.catalog.list(&request, unix_now())?;
    Ok(json(
        StatusCode::OK,
        serde_json::to_value(page).unwrap_or_default(),
    ))
}
