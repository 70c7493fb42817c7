//! What HLS tells another feature about the life of its streams' sessions, and the one question
//! it asks back. The shows of the commerce feature implement [`SessionLifecycle`] (a show goes
//! live when its stream starts a session, ends when that session ends, and keeps the session
//! through an encoder restart); `hls` owns the trait, so it never imports the feature. The
//! registry holds the implementation ([`super::registry::Registry::set_lifecycle`]), wired in
//! `app`.

/// A change in a stream's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// A new session started (not a publisher continuing one within the reconnect grace).
    Started,
    /// The session ended: its playlists got EXT-X-ENDLIST (a clean stop, the grace period
    /// passed without a publisher, the session was ended on purpose or replaced).
    Ended,
}

/// Another feature's part in the lifecycle of every stream of a registry. Called on the ingest
/// threads and timers, sometimes under the registry's lock: keep it short, never call back into
/// the registry, hand anything slow (storage) to a task.
pub trait SessionLifecycle: Send + Sync {
    /// Whether a clean unpublish of stream `name` (OBS "Stop Streaming", an encoder reaching
    /// its end) waits the reconnect grace like a lost connection — the same session continues
    /// if a publisher comes back in time — instead of ending the session at once.
    fn hold_on_unpublish(&self, name: &str) -> bool;

    /// Session `session` of stream `name` changed.
    fn on_session(&self, name: &str, session: &str, event: SessionEvent);
}

/// Two lifecycles as one (the registry's second [`super::registry::Registry::set_lifecycle`]):
/// both hear every event, first the first; a session is held if either holds it.
pub struct Both(
    pub std::sync::Arc<dyn SessionLifecycle>,
    pub std::sync::Arc<dyn SessionLifecycle>,
);

impl SessionLifecycle for Both {
    fn hold_on_unpublish(&self, name: &str) -> bool {
        self.0.hold_on_unpublish(name) || self.1.hold_on_unpublish(name)
    }

    fn on_session(&self, name: &str, session: &str, event: SessionEvent) {
        self.0.on_session(name, session, event);
        self.1.on_session(name, session, event);
    }
}
