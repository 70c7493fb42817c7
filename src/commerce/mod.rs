//! Commerce data shared by the features that show products: the product display data a cue
//! highlights and a host's chat product card carry (one shape, one set of rules, so the viewer
//! page renders both the same way), and the shows with their schedule ([`shows`]).

pub mod product;
pub mod shows;

pub use product::{Cta, FieldError, Product};
