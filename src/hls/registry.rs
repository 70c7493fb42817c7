//! The streams the origin knows: live ones and ended ones kept for a retention period.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use super::handoff::StreamHandoff;
use super::lifecycle::{Both, SessionEvent, SessionLifecycle};
use super::packager::PackagerConfig;
use super::recording::Recorder;
use super::stream::HlsStream;
use super::timed::StreamObserver;
use super::timeline::{Clock, SystemClock};

/// Live and recently ended streams by public name.
pub struct Registry {
    streams: RwLock<HashMap<String, Arc<HlsStream>>>,
    /// Packager settings for new streams.
    packager: PackagerConfig,
    /// How long an ended stream stays available.
    retention: Duration,
    /// Given to every new stream (cues: their carriage and rundowns).
    observer: OnceLock<Arc<dyn StreamObserver>>,
    /// Told when sessions start and end, asked whether a clean unpublish holds a session
    /// (shows, webhooks).
    lifecycle: RwLock<Option<Arc<dyn SessionLifecycle>>>,
    /// Records every new session, when set.
    recorder: OnceLock<Arc<Recorder>>,
    /// Where streams read the time.
    clock: Arc<dyn Clock>,
}

impl Registry {
    /// An empty registry on the system clocks.
    pub fn new(packager: PackagerConfig, retention: Duration) -> Registry {
        Registry::with_clock(packager, retention, Arc::new(SystemClock))
    }

    /// An empty registry whose streams read the time from `clock`.
    pub fn with_clock(
        packager: PackagerConfig,
        retention: Duration,
        clock: Arc<dyn Clock>,
    ) -> Registry {
        Registry {
            streams: RwLock::new(HashMap::new()),
            packager,
            retention,
            observer: OnceLock::new(),
            lifecycle: RwLock::new(None),
            recorder: OnceLock::new(),
            clock,
        }
    }

    /// Sets the observer of every new stream (once): it supplies each session's timed
    /// metadata and hears about its media time.
    pub fn set_observer(&self, observer: Arc<dyn StreamObserver>) {
        let _ = self.observer.set(observer);
    }

    /// Adds a lifecycle of every new stream (before the first publish): it hears sessions
    /// start and end and has a say in whether a clean unpublish holds a session
    /// ([`Self::holds_on_unpublish`]). Lifecycles added later hear after the earlier ones.
    pub fn set_lifecycle(&self, lifecycle: Arc<dyn SessionLifecycle>) {
        let mut current = self.lifecycle.write().unwrap_or_else(|e| e.into_inner());
        *current = Some(match current.take() {
            Some(first) => Arc::new(Both(first, lifecycle)),
            None => lifecycle,
        });
    }

    fn lifecycle(&self) -> Option<Arc<dyn SessionLifecycle>> {
        self.lifecycle
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets the recorder of every new session (once).
    pub fn set_recorder(&self, recorder: Arc<Recorder>) {
        let _ = self.recorder.set(recorder);
    }

    /// Whether a clean unpublish of `name` waits the reconnect grace like a lost connection
    /// (the lifecycle decides; without one, it ends the session at once).
    pub fn holds_on_unpublish(&self, name: &str) -> bool {
        self.lifecycle()
            .is_some_and(|lifecycle| lifecycle.hold_on_unpublish(name))
    }

    /// Ends the current session of `name` now (EXT-X-ENDLIST), whether a publisher is on it or
    /// it waits for one to reconnect. False if there is no session that has not ended.
    pub fn end_session(&self, name: &str) -> bool {
        match self.get(name).filter(|stream| !stream.is_ended()) {
            Some(stream) => {
                stream.end();
                true
            }
            None => false,
        }
    }

    /// The session of `name` that has not ended, if any (a publisher is on it or it waits for
    /// one within the reconnect grace).
    pub fn live_session(&self, name: &str) -> Option<String> {
        self.get(name)
            .filter(|stream| !stream.is_ended())
            .map(|stream| stream.session.clone())
    }

    /// Starts a new stream `name`, replacing an ended one of the same name.
    pub fn create(&self, name: &str) -> Arc<HlsStream> {
        let mut streams = self.streams.write().unwrap_or_else(|e| e.into_inner());
        self.start_session(&mut streams, name)
    }

    /// The stream for a new publish of `name`: the current session if its publisher was lost
    /// less than `grace` ago, or is being replaced (`take_over`) — continued, `true` — else a new
    /// session replacing any previous one.
    pub fn publish(&self, name: &str, grace: Duration, take_over: bool) -> (Arc<HlsStream>, bool) {
        // Lock order: the stream map → a stream's own locks (continuity to resume or take it
        // over, its renditions to end it); no stream lock is held when the map is taken.
        let mut streams = self.streams.write().unwrap_or_else(|e| e.into_inner());
        if let Some(current) = streams.get(name)
            && (current.resume(grace) || (take_over && current.take_over()))
        {
            return (Arc::clone(current), true);
        }
        (self.start_session(&mut streams, name), false)
    }

    /// [`Self::publish`] on a clustered node that has just taken the stream's lease: when
    /// there is no session here to continue and `handoff` is set (the previous owner died
    /// within the reconnect grace), the session continues from it — the same session id and
    /// URLs, numbering on from the previous owner's, EXT-X-DISCONTINUITY at the seam — and
    /// counts as continued (`true`).
    pub fn publish_continuing(
        &self,
        name: &str,
        grace: Duration,
        take_over: bool,
        handoff: Option<StreamHandoff>,
    ) -> (Arc<HlsStream>, bool) {
        let mut streams = self.streams.write().unwrap_or_else(|e| e.into_inner());
        if let Some(current) = streams.get(name)
            && (current.resume(grace) || (take_over && current.take_over()))
        {
            return (Arc::clone(current), true);
        }
        let Some(handoff) = handoff else {
            return (self.start_session(&mut streams, name), false);
        };
        let base = HlsStream::continuing(name, self.packager, Arc::clone(&self.clock), handoff);
        let stream = self.observe(base);
        stream.add_handoff_renditions();
        (self.insert_session(&mut streams, name, stream), true)
    }

    /// A new session of `name` in `streams` (the locked map), ending the one it replaces; the
    /// lifecycle hears of both.
    fn start_session(
        &self,
        streams: &mut HashMap<String, Arc<HlsStream>>,
        name: &str,
    ) -> Arc<HlsStream> {
        let stream = self.new_stream(name);
        self.insert_session(streams, name, stream)
    }

    /// `stream` becomes the session of `name` in `streams` (the locked map), ending the one it
    /// replaces; the lifecycle hears of both.
    fn insert_session(
        &self,
        streams: &mut HashMap<String, Arc<HlsStream>>,
        name: &str,
        stream: Arc<HlsStream>,
    ) -> Arc<HlsStream> {
        if let Some(previous) = streams.insert(name.to_string(), Arc::clone(&stream)) {
            previous.end();
        }
        if let Some(lifecycle) = self.lifecycle() {
            lifecycle.on_session(name, &stream.session, SessionEvent::Started);
        }
        stream
    }

    /// A new stream, observed by the observer and the lifecycle when they are set.
    fn new_stream(&self, name: &str) -> Arc<HlsStream> {
        self.observe(HlsStream::with_clock(
            name,
            self.packager,
            Arc::clone(&self.clock),
        ))
    }

    /// `stream`, observed by the observer and the lifecycle and recorded, when they are set.
    fn observe(&self, mut stream: HlsStream) -> Arc<HlsStream> {
        if let Some(observer) = self.observer.get() {
            stream = stream.observed_by(Arc::clone(observer));
        }
        if let Some(lifecycle) = self.lifecycle() {
            stream = stream.with_lifecycle(lifecycle);
        }
        if let Some(recorder) = self.recorder.get() {
            stream = stream.recorded_by(recorder);
        }
        Arc::new(stream)
    }

    /// The stream `name`, unless unknown or ended longer ago than the retention period.
    pub fn get(&self, name: &str) -> Option<Arc<HlsStream>> {
        let stream = self
            .streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()?;
        if self.expired(&stream) {
            self.sweep();
            return None;
        }
        Some(stream)
    }

    /// All streams still available, sorted by name.
    pub fn list(&self) -> Vec<Arc<HlsStream>> {
        self.sweep();
        let mut list: Vec<_> = self
            .streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// Ends every stream (shutdown).
    pub fn end_all(&self) {
        for stream in self.list() {
            stream.end();
        }
    }

    /// Drops ended streams past their retention.
    pub fn sweep(&self) {
        self.streams
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, stream| !self.expired(stream));
    }

    fn expired(&self, stream: &HlsStream) -> bool {
        stream.ended_longer_than(self.retention)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        Registry::new(
            PackagerConfig {
                segment_target: Duration::from_secs(2),
                part_target: Duration::from_millis(500),
                window: Duration::from_secs(6),
            },
            Duration::from_secs(60),
        )
    }

    #[test]
    fn a_lost_publisher_back_within_grace_continues_the_session() {
        let registry = registry();
        let grace = Duration::from_secs(15);
        let (first, resumed) = registry.publish("demo", grace, false);
        assert!(!resumed);
        let generation = first.generation();
        assert!(first.interrupt(generation));
        let (again, resumed) = registry.publish("demo", grace, false);
        assert!(resumed);
        assert!(Arc::ptr_eq(&first, &again), "same session");
        assert_eq!(again.interrupted_at(), None);
        // The first publish's grace timer fires late: the resumed stream goes on.
        assert!(!again.end_if_still_interrupted(generation));
        assert!(!again.is_ended());
        // A stale interrupt from the first publish changes nothing.
        assert!(!again.interrupt(generation));
        assert_eq!(again.interrupted_at(), None);
        // A takeover continues the live session; the replaced publisher's interrupt is ignored.
        let replaced = again.generation();
        let (taken, resumed) = registry.publish("demo", grace, true);
        assert!(resumed && Arc::ptr_eq(&taken, &again));
        assert!(!taken.interrupt(replaced));
        // Lost again, and this time nobody comes back in time.
        let generation = taken.generation();
        assert!(again.interrupt(generation));
        assert!(again.end_if_still_interrupted(generation));
        assert!(again.is_ended());
        let (fresh, resumed) = registry.publish("demo", grace, true);
        assert!(!resumed);
        assert_ne!(fresh.session, "", "a new session");
        assert!(!Arc::ptr_eq(&fresh, &again));
    }

    /// A node that took a dead owner's lease continues its session from the handoff: the same
    /// session id, the renditions there (held until they publish), numbering from the handoff
    /// and the media timeline after the owner's; without a handoff, a new session; a session
    /// still waiting here for its publisher is resumed whatever Redis says.
    #[test]
    fn a_handoff_continues_another_nodes_session() {
        use crate::hls::handoff::{RenditionHandoff, StreamHandoff};

        let registry = registry();
        let grace = Duration::from_secs(15);
        let anchor = chrono::Utc::now() - chrono::Duration::seconds(30);
        let handoff = StreamHandoff {
            session: "19a0c0ffee".into(),
            media_end_ns: Some(30_000_000_000),
            anchor: Some((0, anchor)),
            renditions: vec![RenditionHandoff {
                name: "source".into(),
                audio: false,
                next_msn: 16,
                next_part: 2000,
                next_init_version: 2,
                discontinuity_sequence: 1,
                target_duration: 2,
                seam_date: None,
            }],
        };
        let (stream, continued) =
            registry.publish_continuing("demo", grace, false, Some(handoff.clone()));
        assert!(continued);
        assert_eq!(stream.session, "19a0c0ffee");
        assert_eq!(registry.live_session("demo").as_deref(), Some("19a0c0ffee"));
        let source = stream.rendition("source").expect("added from the handoff");
        assert!(!source.is_initialized(), "held until this node publishes");
        assert_eq!(source.packager().next_part().msn, 16);
        assert_eq!(stream.handoff_start("source"), Some(16));
        assert_eq!(stream.handoff_start("other"), None);
        assert!(stream.continue_at().is_some_and(|at| at > 30_000_000_000));
        // The first reanchor keeps the old owner's dates: no jump of the failover's gap.
        let before = stream.program_date_time(30_000_000_000);
        stream.reanchor(30_100_000_000);
        assert_eq!(
            stream.program_date_time(30_000_000_000),
            before,
            "PROGRAM-DATE-TIME runs on from the old owner's"
        );
        assert_eq!(before, anchor + chrono::Duration::seconds(30));
        // Its own snapshot names the same session and numbers on.
        let again = stream.handoff();
        assert_eq!(again.session, "19a0c0ffee");
        assert!(again.renditions[0].next_msn > 16);
        assert!(
            stream.keep_handoff() && !stream.keep_handoff(),
            "one writer"
        );
        // Lost here and back within the grace: resumed locally, the handoff is not used.
        stream.interrupt(stream.generation());
        let (local, continued) = registry.publish_continuing("demo", grace, false, Some(handoff));
        assert!(continued && Arc::ptr_eq(&local, &stream));
        // No handoff and nothing to resume: a new session.
        local.end();
        let (fresh, continued) = registry.publish_continuing("demo", grace, false, None);
        assert!(!continued);
        assert_ne!(fresh.session, "19a0c0ffee");
        assert_eq!(fresh.handoff_start("source"), None);
    }

    /// Records what the registry tells its lifecycle; holds the unpublish of `held`.
    #[derive(Default)]
    struct Recorder {
        events: std::sync::Mutex<Vec<(String, String, SessionEvent)>>,
    }

    impl SessionLifecycle for Recorder {
        fn hold_on_unpublish(&self, name: &str) -> bool {
            name == "held"
        }

        fn on_session(&self, name: &str, session: &str, event: SessionEvent) {
            self.events.lock().unwrap_or_else(|e| e.into_inner()).push((
                name.into(),
                session.into(),
                event,
            ));
        }
    }

    #[test]
    fn the_lifecycle_hears_sessions_start_and_end_once_and_decides_holds() {
        let registry = registry();
        assert!(!registry.holds_on_unpublish("held"), "no lifecycle: never");
        let recorder = Arc::new(Recorder::default());
        registry.set_lifecycle(recorder.clone());
        assert!(registry.holds_on_unpublish("held"));
        assert!(!registry.holds_on_unpublish("demo"));
        let taken = |r: &Recorder| std::mem::take(&mut *r.events.lock().expect("events"));
        let grace = Duration::from_secs(15);
        let (first, _) = registry.publish("demo", grace, false);
        let session = first.session.clone();
        assert_eq!(
            taken(&recorder),
            [("demo".into(), session.clone(), SessionEvent::Started)]
        );
        // Interrupted and resumed: the same session, nothing to tell.
        first.interrupt(first.generation());
        let (again, resumed) = registry.publish("demo", grace, false);
        assert!(resumed && Arc::ptr_eq(&first, &again));
        assert_eq!(registry.live_session("demo"), Some(session.clone()));
        assert!(taken(&recorder).is_empty());
        // Ended on purpose: told once, however often it is ended.
        assert!(registry.end_session("demo"));
        assert!(!registry.end_session("demo"), "already ended");
        again.end();
        assert_eq!(registry.live_session("demo"), None);
        assert_eq!(
            taken(&recorder),
            [("demo".into(), session, SessionEvent::Ended)]
        );
        // A new session replacing a live one: the old one ends before the new one starts.
        std::thread::sleep(Duration::from_millis(2));
        let (second, _) = registry.publish("demo", grace, false);
        std::thread::sleep(Duration::from_millis(2));
        let (third, _) = registry.publish("demo", grace, false);
        assert_eq!(
            taken(&recorder),
            [
                ("demo".into(), second.session.clone(), SessionEvent::Started),
                ("demo".into(), second.session.clone(), SessionEvent::Ended),
                ("demo".into(), third.session.clone(), SessionEvent::Started),
            ]
        );
        assert!(!registry.end_session("nothing"));
    }

    #[test]
    fn no_resume_after_the_grace_period_or_for_a_live_or_ended_stream() {
        let registry = registry();
        let (live, _) = registry.publish("demo", Duration::from_secs(15), false);
        // Not interrupted (a publisher is on it): a publish replaces it (the claim prevents
        // this in practice) and the old one ends.
        let (next, resumed) = registry.publish("demo", Duration::from_secs(15), false);
        assert!(!resumed);
        assert!(live.is_ended());
        next.interrupt(next.generation());
        std::thread::sleep(Duration::from_millis(20));
        let (after, resumed) = registry.publish("demo", Duration::from_millis(1), false);
        assert!(!resumed, "grace period over");
        assert!(next.is_ended());
        after.interrupt(after.generation());
        after.end();
        assert!(!registry.publish("demo", Duration::from_secs(15), true).1);
    }
}
