//! Commerce: the product display data a cue highlights and a host's chat product card carry
//! (one shape, one set of rules, so the viewer page renders both the same way), the shop's
//! catalog that fills that shape from a product id ([`catalog`], [`ProductLookup`]), and the
//! shows with their schedule ([`shows`]).

pub mod catalog;
pub mod product;
pub mod shows;

pub use catalog::Catalog;
pub use product::{Cta, FieldError, Product, ProductLookup};
