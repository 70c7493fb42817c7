//! HLS: the pure packager and playlist model, the live stream registry, and the HTTP origin.

pub mod align;
mod config;
pub mod directives;
pub mod origin;
pub mod packager;
pub mod playlist;
pub mod registry;
pub mod stream;

pub use config::Config;
