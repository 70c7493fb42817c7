//! Chat persistence in the embedded store: messages (with the stream's media time), deletions,
//! bans and room settings. Writes go through one writer task in order (so a delete never
//! overtakes its insert) and are batched in transactions; [`HistoryWriter::close`] drains them.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::Row;
use sqlx::any::AnyRow;
use tokio::sync::mpsc;

use super::proto::{ChatMessage, MessageKind, Role};
use super::room::Ban;
use crate::store::Store;

/// Most messages one replay query returns.
pub const MAX_REPLAY: i64 = 5000;

/// A write.
#[derive(Debug)]
pub enum Op {
    /// Store a message.
    Insert(std::sync::Arc<ChatMessage>),
    /// Remove a message.
    Delete {
        /// Room.
        room: String,
        /// Id.
        id: i64,
    },
    /// Store a ban (None = lifted).
    Ban {
        /// Room.
        room: String,
        /// User.
        user: String,
        /// The ban.
        ban: Option<Ban>,
    },
    /// Store the pin.
    Pin {
        /// Room.
        room: String,
        /// Message id.
        id: Option<i64>,
    },
    /// Store slow mode.
    SlowMode {
        /// Room.
        room: String,
        /// Seconds.
        seconds: u64,
    },
}

/// What a room loads at start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Last messages, oldest first.
    pub messages: Vec<ChatMessage>,
    /// Bans in force or future.
    pub bans: HashMap<String, Ban>,
    /// Pinned message.
    pub pinned: Option<ChatMessage>,
    /// Slow mode, if set.
    pub slow_mode: Option<Duration>,
}

/// Sends writes to the writer task.
pub struct HistoryWriter {
    tx: mpsc::UnboundedSender<Op>,
    task: tokio::task::JoinHandle<()>,
}

impl HistoryWriter {
    /// Starts the writer on `store`.
    pub fn start(store: Store) -> HistoryWriter {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(write_loop(store, rx));
        HistoryWriter { tx, task }
    }

    /// Queues a write.
    pub fn send(&self, op: Op) {
        let _ = self.tx.send(op);
    }

    /// Drains queued writes and stops.
    pub async fn close(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

async fn write_loop(store: Store, mut rx: mpsc::UnboundedReceiver<Op>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 512).await > 0 {
        if let Err(err) = apply(&store, &batch).await {
            tracing::error!(error = %err, ops = batch.len(), "chat history write failed");
        }
        batch.clear();
    }
}

async fn apply(store: &Store, ops: &[Op]) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    for op in ops {
        match op {
            Op::Insert(m) => {
                sqlx::query(
                    "INSERT INTO chat_messages (id, room, username, role, kind, text, link, product, sent_at_ms, session, media_time_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (id) DO UPDATE SET room = excluded.room, username = excluded.username, \
                     role = excluded.role, kind = excluded.kind, text = excluded.text, link = excluded.link, \
                     product = excluded.product, sent_at_ms = excluded.sent_at_ms, session = excluded.session, \
                     media_time_ms = excluded.media_time_ms",
                )
                .bind(m.id)
                .bind(&m.room)
                .bind(&m.user)
                .bind(m.role.as_str())
                .bind(m.kind.as_str())
                .bind(&m.text)
                .bind(m.link.as_ref().and_then(|l| serde_json::to_string(l).ok()))
                .bind(m.product.as_ref().and_then(|p| serde_json::to_string(p).ok()))
                .bind(m.sent_at_ms)
                .bind(&m.session)
                .bind(m.media_time_ms)
                .execute(&mut *tx)
                .await?;
            }
            Op::Delete { room, id } => {
                sqlx::query("DELETE FROM chat_messages WHERE room = $1 AND id = $2")
                    .bind(room)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE chat_rooms SET pinned_id = NULL WHERE room = $1 AND pinned_id = $2",
                )
                .bind(room)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            Op::Ban { room, user, ban } => match ban {
                Some(ban) => {
                    sqlx::query(
                        "INSERT INTO chat_bans (room, username, until_ms) VALUES ($1, $2, $3) \
                         ON CONFLICT (room, username) DO UPDATE SET until_ms = excluded.until_ms",
                    )
                    .bind(room)
                    .bind(user)
                    .bind(ban.until_ms)
                    .execute(&mut *tx)
                    .await?;
                }
                None => {
                    sqlx::query("DELETE FROM chat_bans WHERE room = $1 AND username = $2")
                        .bind(room)
                        .bind(user)
                        .execute(&mut *tx)
                        .await?;
                }
            },
            Op::Pin { room, id } => {
                sqlx::query(
                    "INSERT INTO chat_rooms (room, pinned_id) VALUES ($1, $2) \
                     ON CONFLICT (room) DO UPDATE SET pinned_id = excluded.pinned_id",
                )
                .bind(room)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            Op::SlowMode { room, seconds } => {
                sqlx::query(
                    "INSERT INTO chat_rooms (room, slow_mode_s) VALUES ($1, $2) \
                     ON CONFLICT (room) DO UPDATE SET slow_mode_s = excluded.slow_mode_s",
                )
                .bind(room)
                .bind(*seconds as i64)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await
}

/// The message columns, in [`message`]'s order.
macro_rules! columns {
    () => {
        "id, room, username, role, kind, text, link, product, sent_at_ms, session, media_time_ms"
    };
}

fn message(row: &AnyRow) -> Result<ChatMessage, sqlx::Error> {
    let link: Option<String> = row.try_get("link")?;
    let product: Option<String> = row.try_get("product")?;
    Ok(ChatMessage {
        id: row.try_get("id")?,
        room: row.try_get("room")?,
        user: row.try_get("username")?,
        role: Role::parse(row.try_get("role")?),
        kind: MessageKind::parse(row.try_get("kind")?),
        text: row.try_get("text")?,
        link: link.and_then(|l| serde_json::from_str(&l).ok()),
        product: product.and_then(|p| serde_json::from_str(&p).ok()),
        sent_at_ms: row.try_get("sent_at_ms")?,
        session: row.try_get("session")?,
        media_time_ms: row.try_get("media_time_ms")?,
    })
}

/// The next free message id.
pub async fn next_id(store: &Store) -> Result<i64, sqlx::Error> {
    let max: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM chat_messages")
        .fetch_one(store.pool())
        .await?;
    Ok(max.unwrap_or(0) + 1)
}

/// Loads a room's state: the last `backfill` messages, bans, pin, slow mode.
pub async fn load(
    store: &Store,
    room: &str,
    backfill: usize,
    now_ms: i64,
) -> Result<Loaded, sqlx::Error> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM chat_messages WHERE room = $1 ORDER BY id DESC LIMIT $2"
    ))
    .bind(room)
    .bind(backfill as i64)
    .fetch_all(store.pool())
    .await?;
    let mut messages = rows.iter().map(message).collect::<Result<Vec<_>, _>>()?;
    messages.reverse();
    let bans = sqlx::query(
        "SELECT username, until_ms FROM chat_bans WHERE room = $1 AND (until_ms IS NULL OR until_ms > $2)",
    )
    .bind(room)
    .bind(now_ms)
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(|row| {
        Ok((
            row.try_get::<String, _>("username")?,
            Ban {
                until_ms: row.try_get("until_ms")?,
            },
        ))
    })
    .collect::<Result<HashMap<_, _>, sqlx::Error>>()?;
    let settings: Option<(Option<i64>, Option<i64>)> =
        sqlx::query_as("SELECT pinned_id, slow_mode_s FROM chat_rooms WHERE room = $1")
            .bind(room)
            .fetch_optional(store.pool())
            .await?;
    let (pinned_id, slow_mode) = settings.unwrap_or((None, None));
    let pinned = match pinned_id {
        Some(id) => sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM chat_messages WHERE room = $1 AND id = $2"
        ))
        .bind(room)
        .bind(id)
        .fetch_optional(store.pool())
        .await?
        .as_ref()
        .map(message)
        .transpose()?,
        None => None,
    };
    Ok(Loaded {
        messages,
        bans,
        pinned,
        slow_mode: slow_mode.map(|s| Duration::from_secs(s.max(0) as u64)),
    })
}

/// Most messages one export returns.
pub const MAX_EXPORT: i64 = 100_000;

/// Messages of `room` sent from `from_ms` to `to_ms` (inclusive), oldest first, at most
/// [`MAX_EXPORT`] (the first ones).
pub async fn sent_between(
    store: &Store,
    room: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<ChatMessage>, sqlx::Error> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM chat_messages WHERE room = $1 AND sent_at_ms >= $2 AND sent_at_ms <= $3 \
         ORDER BY sent_at_ms, id LIMIT $4"
    ))
    .bind(room)
    .bind(from_ms)
    .bind(to_ms)
    .bind(MAX_EXPORT)
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(message).collect()
}

/// A replay query.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReplayQuery {
    /// HLS session; default: the room's latest session with messages.
    pub session: Option<String>,
    /// From media time (inclusive), ms.
    pub from_ms: Option<i64>,
    /// To media time (exclusive), ms.
    pub to_ms: Option<i64>,
    /// At most this many (≤ [`MAX_REPLAY`]).
    pub limit: Option<i64>,
}

/// Messages of `room` in a session's media-time range, in media-time order.
pub async fn replay(
    store: &Store,
    room: &str,
    query: &ReplayQuery,
) -> Result<(Option<String>, Vec<ChatMessage>), sqlx::Error> {
    let session = match &query.session {
        Some(session) => Some(session.clone()),
        None => {
            sqlx::query_scalar(
                "SELECT session FROM chat_messages WHERE room = $1 AND session IS NOT NULL ORDER BY id DESC LIMIT 1",
            )
            .bind(room)
            .fetch_optional(store.pool())
            .await?
        }
    };
    let Some(session) = session else {
        return Ok((None, Vec::new()));
    };
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM chat_messages WHERE room = $1 AND session = $2 \
         AND media_time_ms >= $3 AND media_time_ms < $4 ORDER BY media_time_ms, id LIMIT $5"
    ))
    .bind(room)
    .bind(&session)
    .bind(query.from_ms.unwrap_or(0))
    .bind(query.to_ms.unwrap_or(i64::MAX))
    .bind(query.limit.unwrap_or(MAX_REPLAY).clamp(1, MAX_REPLAY))
    .fetch_all(store.pool())
    .await?;
    let messages = rows.iter().map(message).collect::<Result<Vec<_>, _>>()?;
    Ok((Some(session), messages))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn msg(id: i64, session: &str, media: i64) -> Arc<ChatMessage> {
        Arc::new(ChatMessage {
            id,
            room: "demo".into(),
            user: "u".into(),
            role: Role::Viewer,
            kind: MessageKind::Chat,
            text: format!("m{id}"),
            link: None,
            product: None,
            sent_at_ms: id,
            session: Some(session.into()),
            media_time_ms: Some(media),
        })
    }

    #[tokio::test]
    async fn writes_load_and_replay() {
        let store = Store::in_memory().await.unwrap();
        let writer = HistoryWriter::start(store.clone());
        for (id, session, media) in [(1, "a", 100), (2, "b", 50), (3, "b", 2000), (4, "b", 900)] {
            writer.send(Op::Insert(msg(id, session, media)));
        }
        writer.send(Op::Delete {
            room: "demo".into(),
            id: 4,
        });
        writer.send(Op::Ban {
            room: "demo".into(),
            user: "bob".into(),
            ban: Some(Ban { until_ms: None }),
        });
        writer.send(Op::Ban {
            room: "demo".into(),
            user: "old".into(),
            ban: Some(Ban { until_ms: Some(5) }),
        });
        writer.send(Op::Pin {
            room: "demo".into(),
            id: Some(3),
        });
        writer.send(Op::SlowMode {
            room: "demo".into(),
            seconds: 7,
        });
        writer.close().await;

        assert_eq!(next_id(&store).await.unwrap(), 4);
        let loaded = load(&store, "demo", 2, 10).await.unwrap();
        assert_eq!(
            loaded.messages.iter().map(|m| m.id).collect::<Vec<_>>(),
            [2, 3]
        );
        assert_eq!(loaded.bans.len(), 1, "expired timeout not loaded");
        assert!(loaded.bans.contains_key("bob"));
        assert_eq!(loaded.pinned.map(|m| m.id), Some(3));
        assert_eq!(loaded.slow_mode, Some(Duration::from_secs(7)));

        let (session, messages) = replay(&store, "demo", &ReplayQuery::default())
            .await
            .unwrap();
        assert_eq!(session.as_deref(), Some("b"));
        assert_eq!(messages.iter().map(|m| m.id).collect::<Vec<_>>(), [2, 3]);
        let query = ReplayQuery {
            session: Some("b".into()),
            from_ms: Some(0),
            to_ms: Some(1000),
            limit: None,
        };
        let (_, messages) = replay(&store, "demo", &query).await.unwrap();
        assert_eq!(messages.iter().map(|m| m.id).collect::<Vec<_>>(), [2]);
    }
}
