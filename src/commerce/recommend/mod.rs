//! Recommendations (docs/recommendations.md), answered from memory with a reason and updated as
//! shopper events arrive: frequently bought together ([`together`]), related products from
//! co-views ([`coview`]) blended with catalog content ([`content`]), trending products against
//! their own baseline ([`trending`]), upcoming shows for a shopper ([`upcoming`]), and
//! next-basket "for you" ([`basket`]: a shopper's own repeat purchases blended with what
//! shoppers with similar baskets buy, and its offline evaluation against the published
//! next-basket baselines). The models are pure (time passed in); [`service`] feeds them the
//! recorded events (also at startup, from the store), the catalog's changes and the shows, and
//! answers the API's queries, each kept as its JSON bytes in the answer [`cache`] until a model
//! part it was computed from changes.

pub mod basket;
pub mod cache;
mod config;
pub mod content;
pub mod coview;
pub mod ids;
pub mod service;
pub mod together;
pub mod trending;
pub mod upcoming;

pub use config::Config;
pub use service::{Answer, Item, RecommendError, Recommender};
