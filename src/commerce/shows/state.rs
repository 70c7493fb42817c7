//! A show's state machine, pure: `scheduled → live → ended`, driven by its stream's sessions
//! and by the host's or an admin's override. Every time comes in as an argument (sans-IO, like
//! `hls::timeline`); [`super::service::Shows`] feeds it the registry's events and the clock and
//! stores what it decides.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Where a show is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Announced; its stream has not gone live within its window yet.
    Scheduled,
    /// On air.
    Live,
    /// Over (its stream ended after the reconnect grace, or it was ended or cancelled by hand).
    Ended,
}

impl State {
    /// The name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Scheduled => "scheduled",
            State::Live => "live",
            State::Ended => "ended",
        }
    }

    /// Parses a state name.
    pub fn parse(name: &str) -> Option<State> {
        match name {
            "scheduled" => Some(State::Scheduled),
            "live" => Some(State::Live),
            "ended" => Some(State::Ended),
            _ => None,
        }
    }
}

/// How long before and after its `scheduled_start` a show goes live when its stream does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// How early the stream may start (rehearsals before it stay off the show).
    pub before: Duration,
    /// How late it may start.
    pub after: Duration,
}

impl Window {
    /// Whether `now` is within the window around `start` (both edges included).
    pub fn contains(&self, start: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        now >= start - self.before && now <= start + self.after
    }
}

/// What the state machine of one show decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShowState {
    /// The state.
    pub state: State,
    /// When the show is announced to start.
    pub scheduled_start: DateTime<Utc>,
    /// When it went live.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// The HLS session of its stream it is live on (`None` while not live, or live and waiting
    /// for its stream: set live by hand, or after a server restart).
    pub session: Option<String>,
}

/// What happens to a show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// The show's stream has session `session` that has not ended (a new session started, or
    /// one is found live when the window opens).
    StreamOn {
        /// The HLS session id.
        session: &'a str,
    },
    /// Session `session` of the show's stream ended: its publisher stopped or was lost and did
    /// not come back within the reconnect grace, or the session was ended on purpose.
    SessionEnded {
        /// The HLS session id.
        session: &'a str,
    },
    /// The server restarted while the show was live, and the reconnect grace has passed since.
    RestartGraceOver,
    /// The host or an admin sets the state.
    Set(State),
}

/// An override that does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// Ended is final.
    #[error("the show has ended; it cannot be {} again", .0.as_str())]
    Ended(State),
    /// Live goes on to ended only.
    #[error("a live show cannot go back to scheduled")]
    BackToScheduled,
}

impl ShowState {
    /// A new scheduled show.
    pub fn scheduled(scheduled_start: DateTime<Utc>) -> ShowState {
        ShowState {
            state: State::Scheduled,
            scheduled_start,
            started_at: None,
            ended_at: None,
            session: None,
        }
    }

    /// The state after `event` at `now`: `Ok(None)` when nothing changes (the event does not
    /// concern the show, or sets the state it has), `Err` for an override that does not apply.
    pub fn apply(
        &self,
        event: Event<'_>,
        now: DateTime<Utc>,
        window: &Window,
    ) -> Result<Option<ShowState>, TransitionError> {
        let next = match (self.state, event) {
            (State::Scheduled, Event::StreamOn { session })
                if window.contains(self.scheduled_start, now) =>
            {
                self.go_live(now, Some(session))
            }
            // Live and waiting for its stream: the stream's session is the show's.
            (State::Live, Event::StreamOn { session }) if self.session.is_none() => ShowState {
                session: Some(session.to_string()),
                ..self.clone()
            },
            (State::Live, Event::SessionEnded { session })
                if self.session.as_deref() == Some(session) =>
            {
                self.end(now)
            }
            (State::Live, Event::RestartGraceOver) if self.session.is_none() => self.end(now),
            (State::Scheduled, Event::Set(State::Live)) => self.go_live(now, None),
            (State::Scheduled | State::Live, Event::Set(State::Ended)) => self.end(now),
            (State::Live, Event::Set(State::Scheduled)) => {
                return Err(TransitionError::BackToScheduled);
            }
            (State::Ended, Event::Set(to)) if to != State::Ended => {
                return Err(TransitionError::Ended(to));
            }
            _ => return Ok(None),
        };
        Ok(Some(next))
    }

    fn go_live(&self, now: DateTime<Utc>, session: Option<&str>) -> ShowState {
        ShowState {
            state: State::Live,
            started_at: Some(now),
            session: session.map(str::to_string),
            ..self.clone()
        }
    }

    fn end(&self, now: DateTime<Utc>) -> ShowState {
        ShowState {
            state: State::Ended,
            ended_at: Some(now),
            session: None,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-06T18:00:00Z.
    fn start() -> DateTime<Utc> {
        DateTime::from_timestamp(1_796_580_000, 0).expect("in range")
    }

    fn window() -> Window {
        Window {
            before: Duration::minutes(30),
            after: Duration::minutes(60),
        }
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        start() + Duration::minutes(minutes)
    }

    fn apply(show: &ShowState, event: Event<'_>, now: DateTime<Utc>) -> Option<ShowState> {
        show.apply(event, now, &window()).expect("applies")
    }

    const ON: Event<'static> = Event::StreamOn { session: "s1" };

    #[test]
    fn the_stream_takes_the_show_live_only_within_its_window() {
        let show = ShowState::scheduled(start());
        let edge = Duration::nanoseconds(1);
        // Both edges are in the window, a nanosecond outside is not.
        assert_eq!(apply(&show, ON, at(-30) - edge), None, "rehearsal");
        assert_eq!(apply(&show, ON, at(60) + edge), None, "too late");
        for now in [at(-30), at(0), at(60)] {
            let live = apply(&show, ON, now).expect("live");
            assert_eq!(live.state, State::Live);
            assert_eq!(live.started_at, Some(now));
            assert_eq!(live.session.as_deref(), Some("s1"));
            assert_eq!(live.ended_at, None);
        }
        // A session ending before the show went live changes nothing.
        assert_eq!(
            apply(&show, Event::SessionEnded { session: "s1" }, at(1)),
            None
        );
    }

    #[test]
    fn the_show_ends_when_its_own_session_ends() {
        let live = apply(&ShowState::scheduled(start()), ON, at(2)).expect("live");
        // Another session ending (a previous one, replaced) is not the show's.
        assert_eq!(
            apply(&live, Event::SessionEnded { session: "s0" }, at(3)),
            None
        );
        // A resumed or second StreamOn of the same show keeps its session.
        assert_eq!(apply(&live, Event::StreamOn { session: "s2" }, at(3)), None);
        let ended = apply(&live, Event::SessionEnded { session: "s1" }, at(50)).expect("ended");
        assert_eq!(ended.state, State::Ended);
        assert_eq!(ended.started_at, Some(at(2)));
        assert_eq!(ended.ended_at, Some(at(50)));
        assert_eq!(ended.session, None);
        // Ended is final: no stream brings it back.
        assert_eq!(apply(&ended, ON, at(51)), None);
    }

    #[test]
    fn manual_override_and_its_refusals() {
        let scheduled = ShowState::scheduled(start());
        // Live by hand, hours before the window: it waits for its stream, which then attaches.
        let live = apply(&scheduled, Event::Set(State::Live), at(-600)).expect("live");
        assert_eq!((live.state, live.session.clone()), (State::Live, None));
        assert_eq!(live.started_at, Some(at(-600)));
        let attached = apply(&live, ON, at(-590)).expect("attached");
        assert_eq!(attached.session.as_deref(), Some("s1"));
        assert_eq!(attached.started_at, Some(at(-600)));
        // Setting the state it has is no change.
        assert_eq!(apply(&attached, Event::Set(State::Live), at(0)), None);
        assert_eq!(apply(&scheduled, Event::Set(State::Scheduled), at(0)), None);
        // Ended by hand while live, or cancelled before it aired.
        let ended = apply(&attached, Event::Set(State::Ended), at(5)).expect("ended");
        assert_eq!((ended.state, ended.ended_at), (State::Ended, Some(at(5))));
        let cancelled = apply(&scheduled, Event::Set(State::Ended), at(-60)).expect("cancelled");
        assert_eq!(cancelled.started_at, None);
        assert_eq!(cancelled.ended_at, Some(at(-60)));
        assert_eq!(apply(&ended, Event::Set(State::Ended), at(6)), None);
        // What does not apply is refused.
        let refuse = |show: &ShowState, to| show.apply(Event::Set(to), at(7), &window());
        assert_eq!(
            refuse(&attached, State::Scheduled),
            Err(TransitionError::BackToScheduled)
        );
        assert_eq!(
            refuse(&ended, State::Live),
            Err(TransitionError::Ended(State::Live))
        );
        assert_eq!(
            refuse(&ended, State::Scheduled).map_err(|e| e.to_string()),
            Err("the show has ended; it cannot be scheduled again".to_string())
        );
    }

    #[test]
    fn after_a_restart_a_live_show_ends_unless_its_stream_came_back() {
        // Loaded after a restart: live, its old session gone.
        let restarted = ShowState {
            session: None,
            ..apply(&ShowState::scheduled(start()), ON, at(0)).expect("live")
        };
        let ended = apply(&restarted, Event::RestartGraceOver, at(1)).expect("ended");
        assert_eq!((ended.state, ended.ended_at), (State::Ended, Some(at(1))));
        // The host republished within the grace: the show is on the new session and stays.
        let back = apply(&restarted, Event::StreamOn { session: "s9" }, at(1)).expect("back");
        assert_eq!(back.state, State::Live);
        assert_eq!(apply(&back, Event::RestartGraceOver, at(2)), None);
        // Not live: the grace timer concerns nothing.
        assert_eq!(
            apply(
                &ShowState::scheduled(start()),
                Event::RestartGraceOver,
                at(2)
            ),
            None
        );
    }

    #[test]
    fn state_names_round_trip() {
        for state in [State::Scheduled, State::Live, State::Ended] {
            assert_eq!(State::parse(state.as_str()), Some(state));
        }
        assert_eq!(State::parse("replay"), None);
    }
}
