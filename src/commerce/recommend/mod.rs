//! Recommendations from the shop's orders and events, answered from memory with a reason.
//! [`basket`]: next-basket "for you" recommendations (a shopper's own repeat purchases blended
//! with what shoppers with similar baskets buy) and their offline evaluation against the
//! published next-basket baselines (docs/recommendations.md).

pub mod basket;
