//! Chat rooms spread over several nodes (cluster mode): what nodes exchange through Redis, as
//! sans-IO pieces — the room events, their encoding in a room's Redis stream, the stream order,
//! the Redis keys, the post script's limits and answers, and the decoding of Redis replies.
//! The IO (connections, the per-room stream readers) is in [`super::fanout`].
//!
//! Every accepted post, deletion, pin, ban, unban and slow-mode change of a room is appended to
//! the room's stream `cuecast:chat:{room}` (XADD): the stream's entry ids are the room's one
//! order. Each node with local members reads the stream and applies the entries to its own
//! [`super::room::Room`] in that order — its own entries too — and fans them out to its members,
//! so every node delivers the same sequence.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::proto::{ChatMessage, RejectCode};
use super::room::{Ban, Rejection, RoomSettings};

/// Entries a room's stream keeps (approximately: `XADD MAXLEN ~`).
pub const STREAM_MAXLEN: u64 = 10_000;
/// The counter message ids come from in cluster mode (unique across nodes).
pub const ID_KEY: &str = "cuecast:chat:next_id";

/// Something that happened in a room, as it travels between nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum RoomEvent {
    /// An accepted message (its id is the entry's `i` field; `message.id` is ignored).
    Message {
        /// The message.
        message: ChatMessage,
    },
    /// A deleted message; `unpinned` when it was the pin on the node that decided it.
    Deleted {
        /// Message id.
        id: i64,
        /// The deletion removed the pin.
        unpinned: bool,
    },
    /// The new pin (None = unpinned).
    Pinned {
        /// The pinned message.
        message: Option<ChatMessage>,
    },
    /// A ban or timeout.
    Banned {
        /// Username.
        user: String,
        /// Until when (Unix ms); None = until unbanned.
        until_ms: Option<i64>,
    },
    /// A lifted ban.
    Unbanned {
        /// Username.
        user: String,
    },
    /// A new slow mode.
    SlowMode {
        /// Seconds between a viewer's posts.
        seconds: u64,
    },
}

/// The Redis keys of one room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// The room's event stream.
    pub stream: String,
    /// Hash username → ban end (Unix ms, or `-1` for a ban without end): a node loading the
    /// room later applies them.
    pub bans: String,
    /// Hash of the room's current slow mode (`slow_mode_s`) and pin (`pinned`, JSON).
    pub state: String,
}

impl Keys {
    /// Keys of `room`.
    pub fn of(room: &str) -> Keys {
        Keys {
            stream: format!("cuecast:chat:{room}"),
            bans: format!("cuecast:chat:{room}:bans"),
            state: format!("cuecast:chat:{room}:state"),
        }
    }

    /// The key holding `user`'s slow-mode wait in this room.
    pub fn slow(&self, user: &str) -> String {
        format!("{}:slow:{user}", self.stream)
    }

    /// The key counting `user`'s posts in the current rate window in this room.
    pub fn rate(&self, user: &str) -> String {
        format!("{}:rate:{user}", self.stream)
    }
}

/// A Redis stream entry id (`<ms>-<seq>`), ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for StreamId {
    type Err = DecodeError;

    fn from_str(s: &str) -> Result<StreamId, DecodeError> {
        let bad = || DecodeError(format!("stream id {s:?}"));
        let (ms, seq) = s.split_once('-').ok_or_else(bad)?;
        Ok(StreamId {
            ms: ms.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

/// A stream entry that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chat bus: cannot decode {0}")]
pub struct DecodeError(pub String);

/// One decoded stream entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its place in the room's order.
    pub id: StreamId,
    /// The node that appended it ([`crate::cluster::Cluster::node_id`]).
    pub origin: String,
    /// What happened.
    pub event: RoomEvent,
}

/// The fields of an entry appended for `event` by `origin` (`i`, the message id, is added by
/// the post script for messages).
pub fn encode(origin: &str, event: &RoomEvent) -> [(&'static str, String); 2] {
    let json = serde_json::to_string(event).unwrap_or_default();
    [("o", origin.to_string()), ("e", json)]
}

/// Decodes an entry from its id and fields.
pub fn decode(id: &str, fields: &HashMap<String, Vec<u8>>) -> Result<Entry, DecodeError> {
    let id: StreamId = id.parse()?;
    let text = |name: &str| {
        fields
            .get(name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .ok_or_else(|| DecodeError(format!("entry {id}: field {name}")))
    };
    let origin = text("o")?.to_string();
    let mut event: RoomEvent = serde_json::from_str(text("e")?)
        .map_err(|err| DecodeError(format!("entry {id}: {err}")))?;
    if let RoomEvent::Message { message } = &mut event {
        message.id = text("i")?
            .parse()
            .map_err(|_| DecodeError(format!("entry {id}: message id")))?;
    }
    Ok(Entry { id, origin, event })
}

/// The room's order as a node has applied it: admits each entry once, in increasing id order
/// (a reader that reconnects or reloads the stream's tail may see an entry again).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    last: Option<StreamId>,
}

impl Cursor {
    /// A cursor after `last` (None: before the first entry).
    pub fn after(last: Option<StreamId>) -> Cursor {
        Cursor { last }
    }

    /// Whether `id` is new (after every admitted id); records it when it is.
    pub fn admit(&mut self, id: StreamId) -> bool {
        if self.last.is_some_and(|last| id <= last) {
            return false;
        }
        self.last = Some(id);
        true
    }

    /// The id to read after (`XREAD ... STREAMS key <this>`).
    pub fn position(&self) -> String {
        self.last.unwrap_or_default().to_string()
    }
}

/// The limits the post script checks across nodes for one post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostLimits {
    /// Slow mode, ms (0 = off).
    pub slow_ms: u64,
    /// Posts allowed per window (0 = exempt: staff).
    pub burst: u32,
    /// The rate window, ms: `burst` posts per `burst / rate_per_s` seconds.
    pub window_ms: u64,
}

impl PostLimits {
    /// A viewer's limits in a room with `slow_mode`.
    pub fn viewer(settings: &RoomSettings, slow_mode: Duration) -> PostLimits {
        let burst = settings.rate_burst.max(1);
        let rate = settings.rate_per_s.max(1e-6);
        let window_ms = (f64::from(burst) / rate * 1000.0).clamp(1.0, 86_400_000.0) as u64;
        PostLimits {
            slow_ms: slow_mode.as_millis().min(u128::from(u64::MAX)) as u64,
            burst,
            window_ms,
        }
    }

    /// No limits (hosts and moderators).
    pub fn exempt() -> PostLimits {
        PostLimits {
            slow_ms: 0,
            burst: 0,
            window_ms: 1,
        }
    }
}

/// The post script's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostOutcome {
    /// Appended with this message id.
    Accepted(i64),
    /// Refused: slow mode, retry after.
    SlowMode(Duration),
    /// Refused: rate limit, retry after.
    RateLimited(Duration),
}

impl PostOutcome {
    /// From the script's `{code, value}` reply.
    pub fn from_reply(code: i64, value: i64) -> Result<PostOutcome, DecodeError> {
        let wait = Duration::from_millis(value.max(1) as u64);
        match code {
            0 => Ok(PostOutcome::Accepted(value)),
            1 => Ok(PostOutcome::SlowMode(wait)),
            2 => Ok(PostOutcome::RateLimited(wait)),
            _ => Err(DecodeError(format!("post script reply {code}"))),
        }
    }

    /// The rejection a refused post gets (the same as a single node's).
    pub fn rejection(&self, slow_mode: Duration) -> Option<Rejection> {
        match *self {
            PostOutcome::Accepted(_) => None,
            PostOutcome::SlowMode(wait) => Some(Rejection {
                code: RejectCode::SlowMode,
                reason: format!("slow mode: one message every {} s", slow_mode.as_secs()),
                retry_after: Some(wait),
            }),
            PostOutcome::RateLimited(wait) => Some(Rejection {
                code: RejectCode::RateLimited,
                reason: "too many messages; slow down".into(),
                retry_after: Some(wait),
            }),
        }
    }
}

/// Checks a post against the limits across nodes, takes a message id and appends the message,
/// atomically (one round trip).
///
/// KEYS: slow key, rate key, id counter, stream. ARGV: slow_ms, burst (0 = exempt), window_ms,
/// id floor (the node's next id: the counter never goes below ids already used, e.g. after
/// Redis lost its data), stream max length, origin, event JSON. Reply `{0, id}`, `{1, wait_ms}`
/// (slow mode) or `{2, wait_ms}` (rate limit).
pub const POST_SCRIPT: &str = r"
local slow = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
if burst > 0 then
  if slow > 0 then
    local wait = redis.call('PTTL', KEYS[1])
    if wait > 0 then return {1, wait} end
  end
  local n = redis.call('INCR', KEYS[2])
  if n == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
  if n > burst then
    local wait = redis.call('PTTL', KEYS[2])
    if wait < 1 then wait = 1 end
    return {2, wait}
  end
  if slow > 0 then redis.call('SET', KEYS[1], '1', 'PX', slow) end
end
local id = redis.call('INCR', KEYS[3])
local floor = tonumber(ARGV[4])
if id < floor then
  redis.call('SET', KEYS[3], ARGV[4])
  id = floor
end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', 'o', ARGV[6], 'i', tostring(id), 'e', ARGV[7])
return {0, id}
";

/// A ban as stored in the room's bans hash.
pub fn ban_value(ban: Ban) -> String {
    ban.until_ms.unwrap_or(-1).to_string()
}

/// Bans from the room's bans hash (unreadable values are skipped).
pub fn bans_from(hash: &HashMap<String, String>) -> HashMap<String, Ban> {
    hash.iter()
        .filter_map(|(user, value)| {
            let until: i64 = value.parse().ok()?;
            Some((
                user.clone(),
                Ban {
                    until_ms: (until >= 0).then_some(until),
                },
            ))
        })
        .collect()
}

/// The entries of an XRANGE/XREVRANGE reply, or of one stream of an XREAD reply (RESP2 arrays
/// or RESP3 maps), as (id, fields).
pub fn entries_of(value: &redis::Value) -> Vec<(String, HashMap<String, Vec<u8>>)> {
    let redis::Value::Array(items) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let redis::Value::Array(pair) = item else {
                return None;
            };
            let id = text_of(pair.first()?)?;
            let fields = match pair.get(1)? {
                redis::Value::Array(flat) => flat
                    .chunks(2)
                    .filter_map(|kv| Some((text_of(kv.first()?)?, bytes_of(kv.get(1)?)?)))
                    .collect(),
                redis::Value::Map(kv) => kv
                    .iter()
                    .filter_map(|(k, v)| Some((text_of(k)?, bytes_of(v)?)))
                    .collect(),
                _ => return None,
            };
            Some((id, fields))
        })
        .collect()
}

/// The entries of an XREAD reply for one stream (Nil when BLOCK timed out).
pub fn xread_entries(value: &redis::Value) -> Vec<(String, HashMap<String, Vec<u8>>)> {
    match value {
        redis::Value::Array(streams) => streams
            .iter()
            .filter_map(|s| match s {
                redis::Value::Array(pair) => pair.get(1).map(entries_of),
                _ => None,
            })
            .flatten()
            .collect(),
        redis::Value::Map(streams) => streams.iter().flat_map(|(_, v)| entries_of(v)).collect(),
        _ => Vec::new(),
    }
}

fn bytes_of(value: &redis::Value) -> Option<Vec<u8>> {
    match value {
        redis::Value::BulkString(b) => Some(b.clone()),
        redis::Value::SimpleString(s) => Some(s.clone().into_bytes()),
        redis::Value::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

fn text_of(value: &redis::Value) -> Option<String> {
    bytes_of(value).and_then(|b| String::from_utf8(b).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::proto::{MessageKind, Role};
    use crate::chat::room::{Identity, LinkPolicy, Room};
    use std::sync::Arc;

    fn message(text: &str) -> ChatMessage {
        ChatMessage {
            id: 0,
            room: "demo".into(),
            user: "alice".into(),
            role: Role::Viewer,
            kind: MessageKind::Chat,
            text: text.into(),
            link: None,
            product: None,
            sent_at_ms: 1,
            session: None,
            media_time_ms: None,
        }
    }

    fn settings() -> Arc<RoomSettings> {
        Arc::new(RoomSettings {
            backfill: 10,
            max_text_chars: 100,
            max_staff_text_chars: 100,
            link_policy: LinkPolicy::Strip,
            link_allowlist: vec![],
            rate_burst: 5,
            rate_per_s: 0.5,
            slow_mode: Duration::ZERO,
        })
    }

    fn fields(origin: &str, event: &RoomEvent, id: Option<i64>) -> HashMap<String, Vec<u8>> {
        let mut out: HashMap<String, Vec<u8>> = encode(origin, event)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into_bytes()))
            .collect();
        if let Some(id) = id {
            out.insert("i".into(), id.to_string().into_bytes());
        }
        out
    }

    #[test]
    fn events_round_trip_and_messages_take_the_entry_id() {
        let event = RoomEvent::Message {
            message: message("hi"),
        };
        let entry = decode("17-3", &fields("node-a", &event, Some(42))).unwrap();
        assert_eq!(entry.id, StreamId { ms: 17, seq: 3 });
        assert_eq!(entry.origin, "node-a");
        let RoomEvent::Message { message: got } = entry.event else {
            panic!("{:?}", entry.event)
        };
        assert_eq!((got.id, got.text.as_str()), (42, "hi"));
        for event in [
            RoomEvent::Deleted {
                id: 3,
                unpinned: true,
            },
            RoomEvent::Pinned { message: None },
            RoomEvent::Banned {
                user: "troll".into(),
                until_ms: Some(5),
            },
            RoomEvent::Unbanned {
                user: "troll".into(),
            },
            RoomEvent::SlowMode { seconds: 30 },
        ] {
            assert_eq!(
                decode("1-0", &fields("b", &event, None)).unwrap().event,
                event
            );
        }
        // A message without its id, a bad id or bad JSON is an error, not a panic.
        assert!(
            decode(
                "1-0",
                &fields(
                    "b",
                    &RoomEvent::Message {
                        message: message("x")
                    },
                    None
                )
            )
            .is_err()
        );
        assert!(
            decode(
                "nope",
                &fields("b", &RoomEvent::SlowMode { seconds: 1 }, None)
            )
            .is_err()
        );
        let mut bad = fields("b", &RoomEvent::SlowMode { seconds: 1 }, None);
        bad.insert("e".into(), b"{".to_vec());
        assert!(decode("1-0", &bad).is_err());
    }

    #[test]
    fn the_cursor_admits_each_entry_once_in_stream_order() {
        let id = |ms, seq| StreamId { ms, seq };
        let mut cursor = Cursor::after(None);
        assert_eq!(cursor.position(), "0-0");
        assert!(cursor.admit(id(5, 0)));
        assert!(cursor.admit(id(5, 1)));
        assert!(cursor.admit(id(9, 0)));
        // A reconnecting reader or a reloaded tail repeats entries: each is applied once.
        assert!(!cursor.admit(id(5, 1)));
        assert!(!cursor.admit(id(9, 0)));
        assert!(cursor.admit(id(10, 0)));
        assert_eq!(cursor.position(), "10-0");
        assert!(id(9, 7) < id(10, 0) && id(10, 0) < id(10, 1));
    }

    #[test]
    fn every_node_applying_the_same_entries_ends_in_the_same_state() {
        // Two nodes' rooms: B already holds message 1 (a shared store), A does not. Both apply
        // the same stream, B partly twice (a reconnect): same history, same pin, same bans.
        let entries = [
            RoomEvent::Message {
                message: ChatMessage {
                    id: 1,
                    ..message("one")
                },
            },
            RoomEvent::Message {
                message: ChatMessage {
                    id: 2,
                    ..message("two")
                },
            },
            RoomEvent::Pinned {
                message: Some(ChatMessage {
                    id: 2,
                    ..message("two")
                }),
            },
            RoomEvent::Deleted {
                id: 1,
                unpinned: false,
            },
            RoomEvent::Banned {
                user: "troll".into(),
                until_ms: None,
            },
            RoomEvent::SlowMode { seconds: 9 },
        ];
        let apply = |room: &mut Room, event: &RoomEvent| match event.clone() {
            RoomEvent::Message { message } => {
                room.apply_message(message);
            }
            RoomEvent::Deleted { id, .. } => {
                room.apply_delete(id);
            }
            RoomEvent::Pinned { message } => {
                room.apply_pin(message);
            }
            RoomEvent::Banned { user, until_ms } => {
                room.apply_ban(&user, Ban { until_ms });
            }
            RoomEvent::Unbanned { user } => room.apply_unban(&user),
            RoomEvent::SlowMode { seconds } => room.apply_slow_mode(seconds),
        };
        let mut a = Room::new("demo", settings(), vec![], HashMap::new(), None, None);
        let stored = ChatMessage {
            id: 1,
            ..message("one")
        };
        let mut b = Room::new("demo", settings(), vec![stored], HashMap::new(), None, None);
        let troll = Identity {
            user: Some("troll".into()),
            caps: Default::default(),
        };
        b.join(7, &troll, 0, 0).unwrap();
        // Entries as a reader gets them: ids in stream order; B's reader reconnects after the
        // fourth entry and gets the stream again from an earlier point.
        let ids: Vec<StreamId> = (0..entries.len() as u64)
            .map(|seq| StreamId { ms: 100, seq })
            .collect();
        let mut cursor_a = Cursor::after(None);
        for (id, event) in ids.iter().zip(&entries) {
            if cursor_a.admit(*id) {
                apply(&mut a, event);
            }
        }
        let mut cursor_b = Cursor::after(None);
        let order = (0..4).chain(1..entries.len());
        for index in order {
            if cursor_b.admit(ids[index]) {
                apply(&mut b, &entries[index]);
            }
        }
        for room in [&mut a, &mut b] {
            let history = room.join(1, &Identity::anonymous(), 10, 0).unwrap();
            let ids: Vec<i64> = history.iter().map(|m| m.id).collect();
            assert_eq!(ids, [2]);
            assert_eq!(room.pinned().map(|m| m.id), Some(2));
            assert!(room.ban_of("troll", 0).is_some());
            assert_eq!(room.slow_mode(), Duration::from_secs(9));
        }
        // The ban applied on B names B's connection of the banned user, to close.
        let mut c = Room::new("demo", settings(), vec![], HashMap::new(), None, None);
        c.join(3, &troll, 0, 0).unwrap();
        assert_eq!(c.apply_ban("troll", Ban { until_ms: None }), [3]);
        assert!(c.join(4, &troll, 0, 0).is_err());
    }

    #[test]
    fn limits_and_script_replies() {
        let limits = PostLimits::viewer(&settings(), Duration::from_secs(3));
        // 5 posts per 10 s (5 / 0.5 per second), slow mode 3 s.
        assert_eq!(
            limits,
            PostLimits {
                slow_ms: 3000,
                burst: 5,
                window_ms: 10_000
            }
        );
        assert_eq!(PostLimits::exempt().burst, 0);
        assert_eq!(
            PostOutcome::from_reply(0, 77).unwrap(),
            PostOutcome::Accepted(77)
        );
        let slow = PostOutcome::from_reply(1, 1500).unwrap();
        let rejection = slow.rejection(Duration::from_secs(3)).unwrap();
        assert_eq!(rejection.code, RejectCode::SlowMode);
        assert_eq!(rejection.retry_after, Some(Duration::from_millis(1500)));
        let rate = PostOutcome::from_reply(2, 0).unwrap();
        assert_eq!(
            rate.rejection(Duration::ZERO).unwrap().code,
            RejectCode::RateLimited
        );
        assert!(PostOutcome::Accepted(1).rejection(Duration::ZERO).is_none());
        assert!(PostOutcome::from_reply(9, 0).is_err());
    }

    #[test]
    fn bans_hash_round_trips() {
        let mut hash = HashMap::new();
        hash.insert("a".to_string(), ban_value(Ban { until_ms: None }));
        hash.insert("b".to_string(), ban_value(Ban { until_ms: Some(99) }));
        hash.insert("c".to_string(), "garbage".to_string());
        let bans = bans_from(&hash);
        assert_eq!(bans.len(), 2);
        assert_eq!(bans["a"], Ban { until_ms: None });
        assert_eq!(bans["b"], Ban { until_ms: Some(99) });
    }

    #[test]
    fn stream_replies_decode_in_resp2_and_resp3_shapes() {
        use redis::Value::{Array, BulkString, Map, Nil};
        let entry = |id: &str, text: &str| {
            Array(vec![
                BulkString(id.as_bytes().to_vec()),
                Array(vec![
                    BulkString(b"o".to_vec()),
                    BulkString(b"n1".to_vec()),
                    BulkString(b"e".to_vec()),
                    BulkString(text.as_bytes().to_vec()),
                ]),
            ])
        };
        let stream = Array(vec![entry("1-0", "x"), entry("2-0", "y")]);
        let resp2 = Array(vec![Array(vec![BulkString(b"k".to_vec()), stream.clone()])]);
        let resp3 = Map(vec![(BulkString(b"k".to_vec()), stream.clone())]);
        for reply in [resp2, resp3] {
            let got = xread_entries(&reply);
            assert_eq!(got.len(), 2);
            assert_eq!(got[1].0, "2-0");
            assert_eq!(got[1].1["e"], b"y");
        }
        assert!(xread_entries(&Nil).is_empty());
        assert_eq!(entries_of(&stream).len(), 2);
    }
}
