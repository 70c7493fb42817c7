//! The events (pure): their types and the JSON body `{"type", "id", "timestamp", "data"}`.
//!
//! Adding an event (for example `recording.ready` from the recordings feature) is one variant
//! of [`EventKind`] (with its name in `as_str` and `ALL`) and one [`super::Webhooks::emit`]
//! call where the moment happens.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A stream started a new session (not a reconnect within the grace period).
    StreamStarted,
    /// A stream's session ended (EXT-X-ENDLIST).
    StreamEnded,
    /// A show moved from one state to another.
    ShowStateChanged,
    /// A cue went live on a stream (posted through the API, or a rundown item reached).
    CueFired,
    /// A recording was finished: playable whole at its `playlist`.
    RecordingReady,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 5] = [
        EventKind::StreamStarted,
        EventKind::StreamEnded,
        EventKind::ShowStateChanged,
        EventKind::CueFired,
        EventKind::RecordingReady,
    ];

    /// The `type` field.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::StreamStarted => "stream.started",
            EventKind::StreamEnded => "stream.ended",
            EventKind::ShowStateChanged => "show.state_changed",
            EventKind::CueFired => "cue.fired",
            EventKind::RecordingReady => "recording.ready",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The names, comma-separated (error messages).
    pub fn names() -> String {
        EventKind::ALL.map(EventKind::as_str).join(", ")
    }
}

/// One event, as every endpoint receives it.
#[derive(Debug, Clone)]
pub struct Event {
    /// Its type.
    pub kind: EventKind,
    /// Unique id (`msg_` + 24 hex digits), also the `webhook-id` of each of its deliveries.
    pub id: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Type-specific fields.
    pub data: Value,
}

impl Event {
    /// A new event of `kind` at `at` with a fresh id.
    pub fn new(kind: EventKind, at: DateTime<Utc>, data: Value) -> Event {
        let id = format!("msg_{:024x}", rand::random::<u128>() >> 32);
        Event { kind, id, at, data }
    }

    /// The request body.
    pub fn body(&self) -> Vec<u8> {
        json!({
            "type": self.kind.as_str(),
            "id": self.id,
            "timestamp": self.at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "data": self.data,
        })
        .to_string()
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_type_id_timestamp_and_data() {
        let at = DateTime::parse_from_rfc3339("2026-12-06T19:00:00.250Z")
            .unwrap()
            .with_timezone(&Utc);
        let event = Event::new(EventKind::CueFired, at, json!({"stream": "demo"}));
        let body: Value = serde_json::from_slice(&event.body()).unwrap();
        assert_eq!(body["type"], "cue.fired");
        assert_eq!(body["id"], event.id.as_str());
        assert!(
            event.id.starts_with("msg_") && event.id.len() == 28,
            "{}",
            event.id
        );
        assert_eq!(body["timestamp"], "2026-12-06T19:00:00.250Z");
        assert_eq!(body["data"]["stream"], "demo");
        assert_ne!(
            Event::new(EventKind::CueFired, at, Value::Null).id,
            event.id
        );
    }

    #[test]
    fn names_round_trip() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("recording"), None);
    }
}
