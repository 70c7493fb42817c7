//! Recommendation routes (public), around [`crate::commerce::recommend::Recommender`]:
//! - `GET /api/recommendations/bought-together?product=ID[&product=ID2...]&limit=&threshold=`
//! - `GET /api/recommendations/related?product=ID&limit=`
//! - `GET /api/recommendations/trending?limit=&category=&window=`
//! - `GET /api/recommendations/for-you?user=&limit=`
//! - `GET /api/recommendations/upcoming-shows?user=&limit=`
//! - `GET /api/shows/{id}/products`
//!
//! Each answers `{"items": [{"product_id" | "show_id", "score", "reason", display fields...}],
//! "model", "fallback"}`. Errors are `{"error": "...", "field": "..."}`: 400 a bad or unknown
//! parameter (named), 404 an unknown product or show.
//!
//! A personal list (`for-you`, `upcoming-shows`) is read with the shopper's own login token
//! (`user` may be left out, or must be theirs), or by the shop's backend (a `shop` token) or
//! the admin for any `user`. Without a token and without `user`, the shopper is anonymous and
//! gets the cold-start answer; `user` without a token is 401, another shopper's `user` 403.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use super::ApiState;
use super::auth::Caller;
use super::cues::{ApiError, json};
use crate::commerce::catalog::unix_now;
use crate::commerce::recommend::{Answer, RecommendError};
use crate::users::Capability;

/// The recommendation routes.
pub fn router(api: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/recommendations/bought-together", get(bought_together))
        .route("/api/recommendations/related", get(related))
        .route("/api/recommendations/trending", get(trending))
        .route("/api/recommendations/for-you", get(for_you))
        .route("/api/recommendations/upcoming-shows", get(upcoming_shows))
        .route("/api/shows/{id}/products", get(show_products))
        .with_state(api)
}

impl From<RecommendError> for ApiError {
    fn from(err: RecommendError) -> ApiError {
        let message = err.to_string();
        match err {
            RecommendError::Invalid { field, .. } => ApiError::field(field, message),
            RecommendError::Unknown { field, .. } => {
                ApiError::new(StatusCode::NOT_FOUND, message).with_field(field)
            }
        }
    }
}

/// A query string as name/value pairs, in order (a name may repeat: `product=a&product=b`).
type Pairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// The parameters a route takes, checked: an unknown name is refused (a misspelt parameter
/// must not silently change the answer), a repeated one unless `repeats` allows it.
struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    fn new(pairs: Pairs, known: &[&str], repeats: &[&str]) -> Result<Params, ApiError> {
        let Query(pairs) =
            pairs.map_err(|err| ApiError::field("query", format!("query: {err}")))?;
        for (i, (name, _)) in pairs.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                return Err(ApiError::field(
                    name.clone(),
                    format!("{name}: unknown parameter ({})", known.join(", ")),
                ));
            }
            if !repeats.contains(&name.as_str()) && pairs[..i].iter().any(|(n, _)| n == name) {
                return Err(ApiError::field(
                    name.clone(),
                    format!("{name}: given more than once"),
                ));
            }
        }
        Ok(Params { pairs })
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    fn text(&self, name: &str) -> Option<String> {
        self.all(name).into_iter().next().filter(|v| !v.is_empty())
    }

    fn number<T: std::str::FromStr>(&self, name: &str, what: &str) -> Result<Option<T>, ApiError> {
        self.text(name)
            .map(|raw| {
                raw.parse::<T>()
                    .map_err(|_| ApiError::field(name, format!("{name}: not {what}: {raw:?}")))
            })
            .transpose()
    }

    fn limit(&self) -> Result<Option<usize>, ApiError> {
        self.number("limit", "a whole number")
    }
}

fn answer(answer: Answer) -> Response {
    json(StatusCode::OK, answer.to_json())
}

async fn bought_together(
    State(api): State<Arc<ApiState>>,
    query: Pairs,
) -> Result<Response, ApiError> {
    let params = Params::new(query, &["product", "limit", "threshold"], &["product"])?;
    let products: Vec<String> = params
        .all("product")
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
    let threshold = params.number::<f64>("threshold", "a number")?;
    let threshold = threshold.map(|t| if t.is_finite() { t } else { -1.0 });
    Ok(answer(api.recommend.bought_together(
        &products,
        params.limit()?,
        threshold,
    )?))
}

async fn related(State(api): State<Arc<ApiState>>, query: Pairs) -> Result<Response, ApiError> {
    let params = Params::new(query, &["product", "limit"], &[])?;
    let product = params
        .text("product")
        .ok_or_else(|| ApiError::field("product", "product: required"))?;
    Ok(answer(api.recommend.related(&product, params.limit()?)?))
}

async fn trending(State(api): State<Arc<ApiState>>, query: Pairs) -> Result<Response, ApiError> {
    let params = Params::new(query, &["limit", "category", "window"], &[])?;
    let window = params.number::<f64>("window", "a number of seconds")?;
    let category = params.text("category");
    Ok(answer(api.recommend.trending(
        params.limit()?,
        category.as_deref(),
        window,
        unix_now(),
    )?))
}

/// The shopper whose personal list `caller` may read (see the module docs).
fn shopper(caller: Caller, user: Option<String>) -> Result<Option<String>, ApiError> {
    match (caller, user) {
        (Caller::Anonymous, None) => Ok(None),
        (Caller::Anonymous, Some(_)) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "user: a shopper's personal recommendations need their login token (or a shop \
             token); leave `user` out for the anonymous list",
        )
        .with_field("user")),
        (Caller::Admin, user) => Ok(user),
        (Caller::User(claims), None) => Ok(Some(claims.sub)),
        (Caller::User(claims), Some(user)) => {
            if claims.caps.contains(&Capability::Shop) {
                Ok(Some(user))
            } else if user.eq_ignore_ascii_case(&claims.sub) {
                Ok(Some(claims.sub))
            } else {
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("user: {user:?} is another shopper; a login token reads its own list"),
                )
                .with_field("user"))
            }
        }
    }
}

async fn for_you(
    State(api): State<Arc<ApiState>>,
    caller: Caller,
    query: Pairs,
) -> Result<Response, ApiError> {
    let params = Params::new(query, &["user", "limit"], &[])?;
    let limit = params.limit()?;
    let user = shopper(caller, params.text("user"))?;
    Ok(answer(api.recommend.for_you(
        user.as_deref(),
        limit,
        unix_now(),
    )?))
}

async fn upcoming_shows(
    State(api): State<Arc<ApiState>>,
    caller: Caller,
    query: Pairs,
) -> Result<Response, ApiError> {
    let params = Params::new(query, &["user", "limit"], &[])?;
    let limit = params.limit()?;
    let user = shopper(caller, params.text("user"))?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    Ok(answer(api.recommend.upcoming_shows(
        user.as_deref(),
        limit,
        now_ms,
    )?))
}

async fn show_products(
    State(api): State<Arc<ApiState>>,
    Path(id): Path<String>,
    query: Pairs,
) -> Result<Response, ApiError> {
    Params::new(query, &[], &[])?;
    Ok(answer(api.recommend.show_products(&id, unix_now())?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::token::Claims;

    fn login(user: &str, caps: Vec<Capability>) -> Caller {
        Caller::User(Claims {
            sub: user.into(),
            caps,
            iat: 0,
            exp: i64::MAX,
        })
    }

    #[test]
    fn a_shoppers_list_is_theirs_the_shops_or_the_admins() {
        let some = |u: &str| Some(u.to_string());
        assert_eq!(shopper(Caller::Anonymous, None).unwrap(), None);
        assert_eq!(shopper(login("ann", vec![]), None).unwrap(), some("ann"));
        assert_eq!(
            shopper(login("ann", vec![]), some("ANN")).unwrap(),
            some("ann")
        );
        assert_eq!(shopper(Caller::Admin, some("bob")).unwrap(), some("bob"));
        let shop = login("backend", vec![Capability::Shop]);
        assert_eq!(shopper(shop, some("bob")).unwrap(), some("bob"));
        let refused = |caller, user: &str| {
            let err = shopper(caller, some(user)).expect_err("refused");
            let named = format!("{err:?}").contains(r#"field: Some("user")"#);
            (
                axum::response::IntoResponse::into_response(err).status(),
                named,
            )
        };
        assert_eq!(
            refused(Caller::Anonymous, "bob"),
            (StatusCode::UNAUTHORIZED, true)
        );
        assert_eq!(
            refused(login("ann", vec![Capability::Host]), "bob"),
            (StatusCode::FORBIDDEN, true)
        );
    }
}
