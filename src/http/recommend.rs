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
//!
//! Answers come from the recommender's answer cache, every route through one helper
//! ([`through_cache`]): a request spelled as one answered before (same route, query string or
//! path, and caller) is answered with the cached JSON bytes before anything is parsed, so a hit
//! allocates nothing beyond the response; otherwise the route's closure checks the parameters
//! and computes the answer (or finds it under its normalized parameters), which is kept.

use std::future::Future;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::Caller;
use super::cues::ApiError;
use super::openapi::ErrorBody;
use crate::commerce::catalog::unix_now;
use crate::commerce::recommend::RecommendError;
use crate::commerce::recommend::cache::{Route, Who};
use crate::commerce::recommend::service::Asked;
use crate::users::Capability;

/// The recommendation routes.
pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(bought_together))
        .routes(routes!(related))
        .routes(routes!(trending))
        .routes(routes!(for_you))
        .routes(routes!(upcoming_shows))
        .routes(routes!(show_products))
}

/// A list of recommended products (what [`Answer::to_json`] writes for product answers).
#[derive(ToSchema)]
pub struct ProductRecommendations {
    /// Best first.
    pub items: Vec<RecommendedProduct>,
    /// The model that answered: `bought-together`, `related`, `trending`, `for-you`,
    /// `show-trending` or `show-order`.
    pub model: String,
    /// Whether the model had too little to go on and another answered instead (the reasons
    /// say which).
    pub fallback: bool,
}

/// One recommended product; the display fields are there when the catalog holds it.
#[derive(ToSchema)]
pub struct RecommendedProduct {
    /// The product's id (SKU).
    pub product_id: String,
    /// Higher is better; comparable within one answer only.
    pub score: f64,
    /// Why it is recommended, for a person.
    pub reason: String,
    /// The product's title.
    pub title: Option<String>,
    /// Its price, a decimal string (`49.00`).
    pub price: Option<String>,
    /// The price's currency (ISO 4217).
    pub currency: Option<String>,
    /// Its image, if it has one (null otherwise).
    pub image_url: Option<String>,
}

/// A list of recommended upcoming shows (`GET /api/recommendations/upcoming-shows`).
#[derive(ToSchema)]
pub struct ShowRecommendations {
    /// Best first.
    pub items: Vec<RecommendedShow>,
    /// The model that answered: `upcoming-shows`.
    pub model: String,
    /// Whether the shopper had no history and trending and soonest answered instead.
    pub fallback: bool,
}

/// One recommended upcoming show.
#[derive(ToSchema)]
pub struct RecommendedShow {
    /// The show's id.
    pub show_id: String,
    /// Higher is better; comparable within one answer only.
    pub score: f64,
    /// Why it is recommended, for a person.
    pub reason: String,
    /// Its scheduled start (RFC 3339), null if the show is gone.
    #[schema(required = true)]
    pub starts_at: Option<String>,
    /// The show's title.
    pub title: Option<String>,
    /// The host's username.
    pub host: Option<String>,
}

/// The query string of `GET /api/recommendations/bought-together`; any other parameter is
/// refused (400).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BoughtTogetherQuery {
    /// The cart: one or more product ids (`product=a&product=b`).
    #[param(min_items = 1)]
    pub product: Vec<String>,
    /// How many (`recommend.default_limit` when absent, at most `recommend.max_limit`).
    #[param(minimum = 1)]
    pub limit: Option<u64>,
    /// The least confidence, in % (default 0); below it, related products answer (`fallback`).
    #[param(minimum = 0, maximum = 100)]
    pub threshold: Option<f64>,
}

/// The query string of `GET /api/recommendations/related`; any other parameter is refused.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RelatedQuery {
    /// The product to find related products for.
    #[param(min_length = 1)]
    pub product: String,
    /// How many (`recommend.default_limit` when absent, at most `recommend.max_limit`).
    #[param(minimum = 1)]
    pub limit: Option<u64>,
}

/// The query string of `GET /api/recommendations/trending`; any other parameter is refused.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrendingQuery {
    /// How many (`recommend.default_limit` when absent, at most `recommend.max_limit`).
    #[param(minimum = 1)]
    pub limit: Option<u64>,
    /// Only this category and those below it (`beauty > fragrance`); empty = all.
    pub category: Option<String>,
    /// The trend's half-life in seconds, one of `recommend.trending_windows_s` (default: the
    /// first).
    pub window: Option<f64>,
}

/// The query string of the personal lists (`for-you`, `upcoming-shows`); any other parameter
/// is refused.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PersonalQuery {
    /// The shopper (default: the login token's user; with neither, the anonymous list).
    /// Another shopper's needs a `shop` login or the admin token.
    pub user: Option<String>,
    /// How many (`recommend.default_limit` when absent, at most `recommend.max_limit`).
    #[param(minimum = 1)]
    pub limit: Option<u64>,
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

    /// A number parameter: absent is `None`, given (even empty) it must parse.
    fn number<T: std::str::FromStr>(&self, name: &str, what: &str) -> Result<Option<T>, ApiError> {
        self.all(name)
            .into_iter()
            .next()
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

/// A 200 with an answer's JSON bytes (a cached [`Bytes`] is shared, not copied).
fn answer(body: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The answer to `route` asked by `who` as `raw` (the query string or path as sent): the
/// cached bytes when the same request was answered before and the answer is still valid
/// (nothing parsed), otherwise what `compute` makes of the request (parameters checked, the
/// answer computed and kept through the recommender's `*_json` methods, or the error).
async fn through_cache<'r, F, Fut, E>(
    api: &ApiState,
    route: Route,
    who: Who<'r>,
    raw: &'r str,
    compute: F,
) -> Response
where
    F: FnOnce(Asked<'r>) -> Fut,
    Fut: Future<Output = Result<Bytes, E>>,
    E: IntoResponse,
{
    let asked = Asked {
        who,
        raw,
        now: unix_now(),
    };
    if let Some(body) = api.recommend.cached(route, &asked) {
        return answer(body);
    }
    match compute(asked).await {
        Ok(body) => answer(body),
        Err(err) => err.into_response(),
    }
}

/// The query string of `uri` as sent (empty without one).
fn raw_query(uri: &Uri) -> &str {
    uri.query().unwrap_or("")
}

/// The query string of `uri` as name/value pairs (see [`Params`]).
fn pairs(uri: &Uri) -> Pairs {
    Query::try_from_uri(uri)
}

/// The caller as the answer cache keys a personal list's raw spelling.
fn who(caller: &Caller) -> Who<'_> {
    match caller {
        Caller::Anonymous => Who::Anyone,
        Caller::Admin => Who::Admin,
        Caller::User(claims) => Who::User(&claims.sub, claims.caps.contains(&Capability::Shop)),
    }
}

#[utoipa::path(get, path = "/api/recommendations/bought-together", tag = "recommendations",
    operation_id = "recommend_bought_together",
    summary = "Products bought in the same orders as a cart",
    params(BoughtTogetherQuery),
    responses(
        (status = 200, description = "Best first; related products when none is bought with the cart often enough (`fallback`)", body = ProductRecommendations),
        (status = 400, description = "A bad, unknown or repeated parameter, named", body = ErrorBody),
        (status = 404, description = "A product of the cart the catalog does not hold (`product`)", body = ErrorBody),
    ))]
async fn bought_together(State(api): State<Arc<ApiState>>, uri: Uri) -> Response {
    let (api, uri) = (&*api, &uri);
    through_cache(
        api,
        Route::BoughtTogether,
        Who::Anyone,
        raw_query(uri),
        |asked| async move {
            let params = Params::new(pairs(uri), &["product", "limit", "threshold"], &["product"])?;
            let products: Vec<String> = params
                .all("product")
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect();
            let threshold = params.number::<f64>("threshold", "a number")?;
            let threshold = threshold.map(|t| if t.is_finite() { t } else { -1.0 });
            let limit = params.limit()?;
            Ok::<_, ApiError>(
                api.recommend
                    .bought_together_json(&asked, &products, limit, threshold)?,
            )
        },
    )
    .await
}

#[utoipa::path(get, path = "/api/recommendations/related", tag = "recommendations",
    operation_id = "recommend_related",
    summary = "Products related to a product (viewed together, similar)",
    params(RelatedQuery),
    responses(
        (status = 200, description = "Best first", body = ProductRecommendations),
        (status = 400, description = "A bad, unknown or repeated parameter, named", body = ErrorBody),
        (status = 404, description = "A product the catalog does not hold (`product`)", body = ErrorBody),
    ))]
async fn related(State(api): State<Arc<ApiState>>, uri: Uri) -> Response {
    let (api, uri) = (&*api, &uri);
    through_cache(
        api,
        Route::Related,
        Who::Anyone,
        raw_query(uri),
        |asked| async move {
            let params = Params::new(pairs(uri), &["product", "limit"], &[])?;
            let product = params
                .text("product")
                .ok_or_else(|| ApiError::field("product", "product: required"))?;
            let limit = params.limit()?;
            Ok::<_, ApiError>(api.recommend.related_json(&asked, &product, limit)?)
        },
    )
    .await
}

#[utoipa::path(get, path = "/api/recommendations/trending", tag = "recommendations",
    operation_id = "recommend_trending",
    summary = "Trending products, overall or in a category",
    params(TrendingQuery),
    responses(
        (status = 200, description = "Most trending first", body = ProductRecommendations),
        (status = 400, description = "A bad, unknown or repeated parameter, named", body = ErrorBody),
    ))]
async fn trending(State(api): State<Arc<ApiState>>, uri: Uri) -> Response {
    let (api, uri) = (&*api, &uri);
    through_cache(
        api,
        Route::Trending,
        Who::Anyone,
        raw_query(uri),
        |asked| async move {
            let params = Params::new(pairs(uri), &["limit", "category", "window"], &[])?;
            let window = params.number::<f64>("window", "a number of seconds")?;
            let category = params.text("category");
            let limit = params.limit()?;
            Ok::<_, ApiError>(api.recommend.trending_json(
                &asked,
                limit,
                category.as_deref(),
                window,
            )?)
        },
    )
    .await
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

#[utoipa::path(get, path = "/api/recommendations/for-you", tag = "recommendations",
    operation_id = "recommend_for_you",
    summary = "Products for a shopper (anonymous: the cold-start list)",
    security((), ("admin" = []), ("login" = [])),
    params(PersonalQuery),
    responses(
        (status = 200, description = "Best first; trending when the shopper has no history (`fallback`)", body = ProductRecommendations),
        (status = 400, description = "A bad, unknown or repeated parameter, named", body = ErrorBody),
        (status = 401, description = "`user` without a token, or a token that is neither the admin token nor a valid login", body = ErrorBody),
        (status = 403, description = "Another shopper's `user` with a login token without `shop`", body = ErrorBody),
    ))]
async fn for_you(State(api): State<Arc<ApiState>>, caller: Caller, uri: Uri) -> Response {
    let (api, caller, uri) = (&*api, &caller, &uri);
    through_cache(
        api,
        Route::ForYou,
        who(caller),
        raw_query(uri),
        |asked| async move {
            let (user, limit) = personal(caller.clone(), pairs(uri))?;
            Ok::<_, ApiError>(api.recommend.for_you_json(&asked, user.as_deref(), limit)?)
        },
    )
    .await
}

#[utoipa::path(get, path = "/api/recommendations/upcoming-shows", tag = "recommendations",
    operation_id = "recommend_upcoming_shows",
    summary = "Upcoming shows for a shopper (anonymous: trending and soonest)",
    security((), ("admin" = []), ("login" = [])),
    params(PersonalQuery),
    responses(
        (status = 200, description = "Best first; trending and soonest when the shopper has no history (`fallback`)", body = ShowRecommendations),
        (status = 400, description = "A bad, unknown or repeated parameter, named", body = ErrorBody),
        (status = 401, description = "`user` without a token, or a token that is neither the admin token nor a valid login", body = ErrorBody),
        (status = 403, description = "Another shopper's `user` with a login token without `shop`", body = ErrorBody),
    ))]
async fn upcoming_shows(State(api): State<Arc<ApiState>>, caller: Caller, uri: Uri) -> Response {
    let (api, caller, uri) = (&*api, &caller, &uri);
    through_cache(
        api,
        Route::UpcomingShows,
        who(caller),
        raw_query(uri),
        |asked| async move {
            let (user, limit) = personal(caller.clone(), pairs(uri))?;
            Ok::<_, ApiError>(
                api.recommend
                    .upcoming_shows_json(&asked, user.as_deref(), limit)?,
            )
        },
    )
    .await
}

/// The query of a personal recommendation (`PersonalQuery`): the shopper the caller may read
/// (see [`shopper`]) and the limit.
fn personal(caller: Caller, query: Pairs) -> Result<(Option<String>, Option<usize>), ApiError> {
    let params = Params::new(query, &["user", "limit"], &[])?;
    let limit = params.limit()?;
    Ok((shopper(caller, params.text("user"))?, limit))
}

#[utoipa::path(get, path = "/api/shows/{id}/products", tag = "recommendations",
    operation_id = "recommend_show_products",
    summary = "A show's featured products, re-ranked by trending while it is live",
    params(("id" = String, Path, description = "Show id")),
    responses(
        (status = 200, description = "The show's products, in its order or by trending while live", body = ProductRecommendations),
        (status = 400, description = "A query parameter (this route takes none), named", body = ErrorBody),
        (status = 404, description = "No such show (`id`)", body = ErrorBody),
    ))]
async fn show_products(State(api): State<Arc<ApiState>>, uri: Uri, request: Request) -> Response {
    // Keyed by the path as sent, with its query string if it has one: such a request is refused
    // below, never kept, so it never finds an answer.
    let (api, uri) = (&*api, &uri);
    let raw = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    through_cache(
        api,
        Route::ShowProducts,
        Who::Anyone,
        raw,
        |asked| async move {
            let (mut parts, _) = request.into_parts();
            let Path(id) = Path::<String>::from_request_parts(&mut parts, &())
                .await
                .map_err(IntoResponse::into_response)?;
            let computed = Params::new(pairs(uri), &[], &[])
                .and_then(|_| Ok(api.recommend.show_products_json(&asked, &id)?));
            computed.map_err(IntoResponse::into_response)
        },
    )
    .await
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

    fn params(pairs: &[(&str, &str)]) -> Params {
        let pairs = pairs.iter().map(|(n, v)| (n.to_string(), v.to_string()));
        Params::new(Ok(Query(pairs.collect())), &["limit", "category"], &[]).expect("known")
    }

    #[test]
    fn a_number_given_empty_is_refused_not_taken_as_absent() {
        assert_eq!(params(&[]).limit().expect("absent"), None);
        assert_eq!(params(&[("limit", " 7 ")]).limit().expect("seven"), Some(7));
        for bad in ["", " ", "0.5", "-1"] {
            let err = params(&[("limit", bad)]).limit().expect_err(bad);
            let response = axum::response::IntoResponse::into_response(err);
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        }
        // An empty text is absent (`category=` lists every category).
        assert_eq!(params(&[("category", "")]).text("category"), None);
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
