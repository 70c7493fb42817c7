//! How the commerce features see each other once they all run: shopper events check their show
//! and product against the shows and the catalog ([`ShopKnown`]), and every recorded event
//! raises its product's popularity in catalog search ([`PopularityFeed`]), also after a restart
//! ([`replay_popularity`]), and feeds the recommendations ([`start_events`]).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use sqlx::AnyPool;

use super::catalog::Catalog;
use super::events::{Event, EventSink, EventType, Events, Known, Settings, Sinks};
use super::product::ProductLookup;
use super::shows::Shows;

/// Shows and products as the shop has them: a show is known when it is scheduled, live or
/// ended; a product when the catalog admits it ([`ProductLookup::admits`]: it holds it, or it
/// is empty — cues carry their products inline, no catalog loaded).
pub struct ShopKnown {
    /// The shows.
    pub shows: Arc<Shows>,
    /// The catalog.
    pub catalog: Arc<Catalog>,
}

impl Known for ShopKnown {
    fn show_exists<'a>(&'a self, id: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(std::future::ready(self.shows.get(id).is_some()))
    }

    fn product_exists<'a>(&'a self, id: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(std::future::ready(self.catalog.admits(id)))
    }
}

/// How much one unit of an event raises its product's popularity: intent counts more than a
/// glance (an impression is a hundredth of a purchase).
pub fn popularity_weight(kind: EventType) -> f64 {
    match kind {
        EventType::ViewShow => 0.0,
        EventType::Impression => 0.1,
        EventType::Click => 1.0,
        EventType::CtaClick => 2.0,
        EventType::AddToCart => 4.0,
        EventType::Purchase => 10.0,
    }
}

/// The weight of one recorded event: [`popularity_weight`] per unit for carts and purchases
/// (units capped at 100, so one bulk order cannot bury every other product), once otherwise.
pub fn event_weight(event: &Event) -> f64 {
    weight_of(event.kind, event.quantity)
}

/// [`event_weight`] of an event of `kind` for `quantity` units.
fn weight_of(kind: EventType, quantity: u32) -> f64 {
    let units = match kind {
        EventType::AddToCart | EventType::Purchase => f64::from(quantity.clamp(1, 100)),
        _ => 1.0,
    };
    popularity_weight(kind) * units
}

/// Feeds recorded events into the catalog's popularity (search re-ranking), at each event's
/// own (clamped) time.
pub struct PopularityFeed {
    /// The catalog whose ranking the events raise.
    pub catalog: Arc<Catalog>,
}

impl EventSink for PopularityFeed {
    fn accepted(&self, events: &[Event]) {
        for event in events {
            let Some(product) = &event.product else {
                continue;
            };
            let weight = event_weight(event);
            if weight > 0.0 {
                let now = event.ts_ms as f64 / 1000.0;
                self.catalog.record_popularity(product, weight, now);
            }
        }
    }
}

/// Starts shopper events wired to the shop: they check their show and product against `shows`
/// and `catalog` ([`ShopKnown`]) and raise their products in catalog search
/// ([`PopularityFeed`]), after the recorded events of the last half-lives were replayed into
/// the popularity (`half_life_s` is `catalog.popularity_half_life_s`); `also` hears every
/// recorded event too (the recommendations, rebuilt from the store before this call).
pub async fn start_events(
    pool: &AnyPool,
    settings: Settings,
    shows: &Arc<Shows>,
    catalog: &Arc<Catalog>,
    half_life_s: f64,
    also: Arc<dyn EventSink>,
) -> Result<Arc<Events>, sqlx::Error> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    replay_popularity(pool, catalog, half_life_s, now_ms).await?;
    let known = ShopKnown {
        shows: Arc::clone(shows),
        catalog: Arc::clone(catalog),
    };
    let feed = PopularityFeed {
        catalog: Arc::clone(catalog),
    };
    Ok(Arc::new(Events::start(
        pool.clone(),
        settings,
        Arc::new(known),
        Arc::new(Sinks(vec![Arc::new(feed), also])),
    )))
}

/// Events older than this many popularity half-lives are not replayed at startup: they would
/// weigh less than 0.1 % of a fresh one.
const REPLAY_HALF_LIVES: f64 = 10.0;

/// Feeds the recorded events of the last [`REPLAY_HALF_LIVES`] popularity half-lives back into
/// `catalog`'s popularity, oldest first, as [`PopularityFeed`] did when they arrived: search
/// ranks the same after a restart. `half_life_s` is `catalog.popularity_half_life_s`, `now_ms`
/// the current Unix time in ms. Returns how many events were replayed.
pub async fn replay_popularity(
    pool: &AnyPool,
    catalog: &Catalog,
    half_life_s: f64,
    now_ms: i64,
) -> Result<usize, sqlx::Error> {
    let since_ms = now_ms - (half_life_s * REPLAY_HALF_LIVES * 1000.0) as i64;
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT type, product, quantity, ts_ms FROM events \
         WHERE product IS NOT NULL AND ts_ms >= $1 ORDER BY seq",
    )
    .bind(since_ms)
    .fetch_all(pool)
    .await?;
    let mut replayed = 0;
    for (kind, product, quantity, ts_ms) in rows {
        let Some(kind) = EventType::parse(&kind) else {
            continue;
        };
        let units = u32::try_from(quantity).unwrap_or(1);
        let weight = weight_of(kind, units);
        if weight > 0.0 {
            catalog.record_popularity(&product, weight, ts_ms as f64 / 1000.0);
            replayed += 1;
        }
    }
    Ok(replayed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventType, quantity: u32) -> Event {
        Event {
            kind,
            user: None,
            visitor: Some("v1".into()),
            show: "show-1".into(),
            product: Some("sku-1".into()),
            cue: None,
            order: None,
            quantity,
            price: None,
            ts_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn intent_weighs_more_than_a_glance_and_units_count_for_carts_and_purchases() {
        let weights: Vec<f64> = EventType::ALL.into_iter().map(popularity_weight).collect();
        assert!(weights.windows(2).all(|w| w[0] < w[1]), "{weights:?}");
        assert_eq!(event_weight(&event(EventType::Purchase, 3)), 30.0);
        assert_eq!(event_weight(&event(EventType::Click, 3)), 1.0);
        assert_eq!(event_weight(&event(EventType::Purchase, 1_000_000)), 1000.0);
    }
}
