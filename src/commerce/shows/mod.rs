//! Shows (live sessions) and their schedule: a host's broadcast on one of the configured
//! streams at a scheduled time, featuring catalog products in order, with the state machine
//! `scheduled → live → ended` ([`state`], pure) driven by its stream's HLS sessions and by the
//! host's or an admin's override ([`service`]), stored in SQLite ([`store`]).
//!
//! The stream reaches the shows only through `hls::lifecycle`: the registry tells the service
//! when sessions start and end, and asks it whether a clean unpublish holds a session for the
//! reconnect grace — it does while a show is live on the stream, so a host who stops and
//! restarts the encoder keeps the show and every viewer's playlist. See docs/commerce.md.

mod config;
pub mod model;
pub mod service;
pub mod state;
pub mod store;

pub use config::Config;
pub use model::{Show, ShowRequest};
pub use service::{Actor, ShowError, Shows};
pub use state::{ShowState, State};
