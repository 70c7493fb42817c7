//! Commerce: the product display data a cue highlights and a host's chat product card carry
//! (one shape, one set of rules, so the viewer page renders both the same way), the shop's
//! catalog that fills that shape from a product id ([`catalog`], [`ProductLookup`]), the shows
//! with their schedule ([`shows`]), exact money amounts ([`money`]), shopper events with the
//! per-moment attribution built from them ([`events`]), recommendations built from those
//! ([`recommend`]), and how these see each other ([`shop`]).

pub mod catalog;
pub mod events;
pub mod money;
pub mod product;
pub mod recommend;
pub mod shop;
pub mod shows;

pub use catalog::Catalog;
pub use product::{Cta, FieldError, Product, ProductLookup};
