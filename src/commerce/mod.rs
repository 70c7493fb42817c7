//! Commerce data shared by the features that show products: the product display data a cue
//! highlights and a host's chat product card carry (one shape, one set of rules, so the viewer
//! page renders both the same way); exact money amounts; shopper events and the per-moment
//! attribution built from them (`events`).

pub mod events;
pub mod money;
pub mod product;

pub use product::{Cta, FieldError, Product};
