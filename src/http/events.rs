//! Shopper event routes, around [`crate::commerce::events::Events`]:
//! - `POST /api/events` (public) → 202 `{"accepted": n}` once the batch is committed. Bounded:
//!   a body over `events.max_body_bytes` or more than `events.max_batch_events` events → 413;
//!   more events per second from one client address than `events.rate_per_client_per_s` → 429
//!   with Retry-After (the shop's backend — a `shop` token or the admin token — is not limited);
//!   a bad field → 400 naming it (`events[3].type: unknown type "buy"`, every one in `errors`);
//!   a purchase without a shop token, or another user's id → 403; an unknown show or product
//!   → 404; a token that is neither admin nor a valid login → 401.
//! - `GET /api/shows/{id}/analytics` (admin, or a login token with `host`) → per cue, per
//!   product and total impressions, clicks, CTA clicks, add-to-carts, purchases, revenue.
//!
//! Errors are the cue routes' shape: `{"error": "...", "field": "..."}`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::to_bytes;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::Caller;
use super::cues::{ApiError, json};
use super::openapi::ErrorBody;
use super::shows::show_actor;
use crate::commerce::events::{BatchError, Events, EventsError, Sender};
use crate::commerce::shows::Actor;
use crate::cues::rate::TokenBucket;
use crate::users::Capability;

/// Client addresses remembered before idle ones are forgotten.
const MAX_CLIENTS: usize = 100_000;

/// The event routes.
pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(post_events))
        .routes(routes!(analytics))
}

/// What the event routes hold: the service and the per-client limiter.
pub struct EventsApi {
    /// The event service.
    pub service: Arc<Events>,
    clients: ClientLimiter,
}

impl EventsApi {
    /// The routes' state for `service`, limited per client by its settings.
    pub fn new(service: Arc<Events>) -> EventsApi {
        let settings = service.settings();
        let clients =
            ClientLimiter::new(settings.rate_per_client_per_s, settings.rate_burst_events);
        EventsApi { service, clients }
    }
}

/// Per-client-address token buckets of events (one token per event).
#[derive(Debug)]
pub struct ClientLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, TokenBucket>>,
}

impl ClientLimiter {
    /// `per_second` events per client, `burst` at once.
    pub fn new(per_second: f64, burst: f64) -> ClientLimiter {
        ClientLimiter {
            per_second,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `events` tokens from `client`'s bucket at `now`, or says how long to wait.
    pub fn take(&self, client: IpAddr, events: usize, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_CLIENTS && !buckets.contains_key(&client) {
            // Forget the clients whose buckets have refilled: they lose nothing.
            buckets.retain(|_, bucket| !bucket.is_full(now));
            if buckets.len() >= MAX_CLIENTS {
                return Err(Duration::from_secs(1));
            }
        }
        buckets
            .entry(client)
            .or_insert_with(|| TokenBucket::new(self.per_second, self.burst, now))
            .take_many(events as f64, now)
    }
}

/// The address of the client (the TCP peer; unspecified when the server runs without
/// connection info, as in router tests).
fn client_addr(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
}

fn events_error(err: EventsError) -> ApiError {
    let message = err.to_string();
    match err {
        EventsError::Batch(BatchError::TooMany { .. }) => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
        }
        EventsError::Batch(BatchError::Invalid(errors)) => {
            let field = errors.first().map(|e| e.field.clone()).unwrap_or_default();
            let all = errors
                .into_iter()
                .map(|e| (e.field.clone(), e.to_string()))
                .collect();
            ApiError::new(StatusCode::BAD_REQUEST, message)
                .with_field(field)
                .errors(all)
        }
        EventsError::Batch(BatchError::Forbidden(err)) => {
            ApiError::new(StatusCode::FORBIDDEN, message).with_field(err.field)
        }
        EventsError::Unknown { field, .. } => {
            ApiError::new(StatusCode::NOT_FOUND, message).with_field(field)
        }
        EventsError::Closed => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
            .retry_after(Duration::from_secs(1)),
        EventsError::Store(err) => {
            tracing::error!(error = %err, "events not recorded");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage error")
        }
    }
}

#[utoipa::path(post, path = "/api/events", tag = "events", summary = "Record shopper events",
    security((), ("admin" = []), ("login" = [])),
    request_body = EventBatch,
    responses(
        (status = 202, description = "Recorded (committed)", body = Accepted),
        (status = 400, description = "Bad fields, every one named (`events[3].type`)", body = ErrorBody),
        (status = 401, description = "A token that is neither the admin token nor a valid login", body = ErrorBody),
        (status = 403, description = "A purchase without a shop token, or another user's id", body = ErrorBody),
        (status = 404, description = "An unknown show or product, named", body = ErrorBody),
        (status = 413, description = "Body over `events.max_body_bytes` or more than `events.max_batch_events` events", body = ErrorBody),
        (status = 429, description = "Over this client's event rate (Retry-After)", body = ErrorBody),
        (status = 503, description = "Shutting down (Retry-After)", body = ErrorBody),
    ))]
async fn post_events(
    State(api): State<Arc<ApiState>>,
    caller: Caller,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let events = &api.events.service;
    let limit = events.settings().max_body_bytes;
    let body = to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over {limit} bytes"),
        )
    })?;
    let sender = match caller {
        Caller::Admin => Sender::Shop,
        Caller::User(claims) if claims.caps.contains(&Capability::Shop) => Sender::Shop,
        Caller::User(claims) => Sender::User(claims.sub),
        Caller::Anonymous => Sender::Page,
    };
    let batch = events
        .parse(&body, &sender)
        .map_err(|e| events_error(e.into()))?;
    if sender != Sender::Shop {
        let client = client_addr(&parts);
        api.events
            .clients
            .take(client, batch.len(), Instant::now())
            .map_err(|wait| {
                let message = format!("over the event rate of this client; retry in {wait:?}");
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, message).retry_after(wait)
            })?;
    }
    let accepted = events.record(batch).await.map_err(events_error)?;
    Ok((StatusCode::ACCEPTED, axum::Json(Accepted { accepted })).into_response())
}

#[utoipa::path(get, path = "/api/shows/{id}/analytics", tag = "events", operation_id = "show_analytics",
    summary = "What a show sold, per cue, per product and in total",
    security(("admin" = []), ("login" = [])),
    params(("id" = String, Path, description = "Show id")),
    responses(
        (status = 200, description = "The show's figures", body = Analytics),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "Not a host, or another host's show", body = ErrorBody),
        (status = 404, description = "No such show", body = ErrorBody),
    ))]
async fn analytics(
    State(api): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let actor = show_actor(caller, "show analytics")?;
    let show = api
        .shows
        .get(&id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no show {id:?}")))?;
    if let Actor::Host(user) = &actor
        && *user != show.host
    {
        let message = format!("show {id:?} belongs to another host");
        return Err(ApiError::new(StatusCode::FORBIDDEN, message));
    }
    let analytics = api
        .events
        .service
        .analytics(&id)
        .await
        .map_err(events_error)?;
    let currency = &api.events.service.settings().limits.currency;
    Ok(json(StatusCode::OK, analytics.to_json(&id, currency)))
}

// The bodies' schemas: what `commerce::events::model` parses and `Analytics::to_json`
// writes, field for field.

/// The body of `POST /api/events`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    /// The events, all recorded or none.
    pub events: Vec<EventBody>,
}

/// One shopper event.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    /// What the shopper did.
    #[serde(rename = "type")]
    pub kind: EventTypeName,
    /// The logged-in user (the shop's backend; a login token's own name).
    pub user: Option<String>,
    /// The page's anonymous visitor id.
    pub visitor: Option<String>,
    /// The show it happened in.
    #[schema(min_length = 1)]
    pub show: String,
    /// The product (every type but `view_show`).
    pub product: Option<String>,
    /// The product cue on screen.
    pub cue: Option<String>,
    /// The shop's order id (purchases).
    pub order: Option<String>,
    /// Units (add-to-cart, purchase; default 1).
    pub quantity: Option<u32>,
    /// Unit price, a decimal string (purchases; optional on add-to-cart).
    pub price: Option<String>,
    /// ISO 4217 code of the price (`events.currency` only).
    pub currency: Option<String>,
    /// When it happened: Unix milliseconds or RFC 3339 (clamped to the server clock).
    pub ts: Option<Timestamp>,
}

/// An event type.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventTypeName {
    /// Opened the show.
    ViewShow,
    /// A product was shown.
    Impression,
    /// Clicked a product card.
    Click,
    /// Clicked the card's call to action.
    CtaClick,
    /// Put the product in the cart.
    AddToCart,
    /// Bought it (shop token only).
    Purchase,
}

/// A client timestamp.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum Timestamp {
    /// Unix milliseconds.
    Millis(i64),
    /// RFC 3339.
    Text(String),
}

/// The answer to `POST /api/events`.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// Events recorded.
    pub accepted: usize,
}

/// The body of `GET /api/shows/{id}/analytics`.
#[derive(ToSchema)]
pub struct Analytics {
    /// The show.
    pub show: String,
    /// The currency of every revenue figure (`events.currency`).
    pub currency: String,
    /// Distinct shoppers.
    pub shoppers: u64,
    /// Every event of the show.
    pub totals: Counts,
    /// Per cue, with what each cue sold per product.
    pub cues: Vec<CueCounts>,
    /// Per product.
    pub products: Vec<ProductCounts>,
}

/// Event counts and revenue.
#[derive(ToSchema)]
pub struct Counts {
    /// `view_show` events.
    pub views: u64,
    /// Impressions.
    pub impressions: u64,
    /// Clicks.
    pub clicks: u64,
    /// CTA clicks.
    pub cta_clicks: u64,
    /// Add-to-carts.
    pub add_to_carts: u64,
    /// Purchases.
    pub purchases: u64,
    /// Units purchased.
    pub units: u64,
    /// Revenue, an exact decimal string.
    pub revenue: String,
}

/// One cue's counts.
#[derive(ToSchema)]
pub struct CueCounts {
    /// The cue id.
    pub cue: String,
    /// Its counts.
    #[serde(flatten)]
    pub counts: Counts,
    /// Per product named by its events.
    pub products: Vec<ProductCounts>,
}

/// One product's counts.
#[derive(ToSchema)]
pub struct ProductCounts {
    /// The product id.
    pub product: String,
    /// Its counts.
    #[serde(flatten)]
    pub counts: Counts,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_address_has_its_own_bucket() {
        let limiter = ClientLimiter::new(100.0, 200.0);
        let t0 = Instant::now();
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        assert!(limiter.take(a, 100, t0).is_ok());
        assert!(limiter.take(a, 100, t0).is_ok());
        let wait = limiter.take(a, 100, t0).expect_err("burst spent");
        assert_eq!(wait, Duration::from_secs(1));
        assert!(
            limiter.take(b, 100, t0).is_ok(),
            "another client is not limited"
        );
        assert!(limiter.take(a, 100, t0 + wait).is_ok(), "refilled");
    }

    #[test]
    fn idle_clients_are_forgotten_when_the_table_is_full() {
        let limiter = ClientLimiter::new(10.0, 10.0);
        let t0 = Instant::now();
        for n in 0..MAX_CLIENTS as u32 {
            let client = IpAddr::V6(std::net::Ipv6Addr::from_bits(u128::from(n)));
            assert!(limiter.take(client, 10, t0).is_ok());
        }
        let newcomer = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
        assert!(
            limiter.take(newcomer, 1, t0).is_err(),
            "every bucket is in use: no room"
        );
        let later = t0 + Duration::from_secs(2);
        assert!(limiter.take(newcomer, 1, later).is_ok(), "refilled ones go");
        assert_eq!(
            limiter.buckets.lock().unwrap().len(),
            1,
            "only the newcomer is left"
        );
    }
}
