//! Commerce: the product display data a cue highlights and a host's chat product card carry
//! (one shape, one set of rules, so the viewer page renders both the same way), and the shop's
//! catalog that fills that shape from a product id ([`catalog`], [`ProductLookup`]).

pub mod catalog;
pub mod product;

pub use catalog::Catalog;
pub use product::{Cta, FieldError, Product, ProductLookup};
