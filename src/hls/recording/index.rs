//! The `recordings` table: the index of the recordings directory that the API lists and
//! retention walks. Each recording's manifest is its truth; a row is written from it
//! ([`Index::upsert`]) whenever the manifest changes state or grows.

use chrono::{DateTime, TimeZone, Utc};
use sqlx::AnyPool;
use sqlx::Row;

use super::manifest::{Manifest, RecordingState};

/// One row: what the API lists of a recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Recording id.
    pub id: String,
    /// The stream's public name.
    pub stream: String,
    /// The HLS session recorded.
    pub session: String,
    /// The show live on the stream during the session, if any.
    pub show: Option<String>,
    /// When the session started.
    pub started_at: DateTime<Utc>,
    /// When the recording was finished.
    pub ended_at: Option<DateTime<Utc>>,
    /// Recorded media, seconds.
    pub duration_s: f64,
    /// Renditions with media.
    pub renditions: Vec<String>,
    /// Recording, complete or cut short.
    pub state: RecordingState,
    /// Segment bytes.
    pub bytes: u64,
}

impl Entry {
    /// The row of `manifest`.
    pub fn of(manifest: &Manifest) -> Entry {
        Entry {
            id: manifest.id.clone(),
            stream: manifest.stream.clone(),
            session: manifest.session.clone(),
            show: manifest.show.clone(),
            started_at: manifest.started_at,
            ended_at: manifest.ended_at,
            duration_s: manifest.duration().as_secs_f64(),
            renditions: manifest.rendition_names(),
            state: manifest.state,
            bytes: manifest.bytes(),
        }
    }

    /// The playback URL of the recording.
    pub fn playlist(&self) -> String {
        playlist_url(&self.id)
    }
}

/// The playback URL of recording `id`.
pub fn playlist_url(id: &str) -> String {
    format!("/vod/{id}/index.m3u8")
}

/// Filters of [`Index::list`].
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only recordings of this stream.
    pub stream: Option<String>,
    /// Only recordings of this show.
    pub show: Option<String>,
}

/// `SELECT` of every column, then `$rest` (a static string: sqlx audits dynamic SQL).
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, stream, session, show, started_at_ms, ended_at_ms, duration_ms, \
             renditions, state, bytes FROM recordings ",
            $rest
        )
    };
}

/// The `recordings` table.
#[derive(Debug, Clone)]
pub struct Index {
    pool: AnyPool,
}

impl Index {
    /// The table in `pool`'s database.
    pub fn new(pool: AnyPool) -> Index {
        Index { pool }
    }

    /// Writes `entry` (insert or replace).
    pub async fn upsert(&self, entry: &Entry) -> Result<(), sqlx::Error> {
        let renditions = serde_json::to_string(&entry.renditions).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "INSERT INTO recordings (id, stream, session, show, started_at_ms, ended_at_ms, \
             duration_ms, renditions, state, bytes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (id) DO UPDATE SET show = excluded.show, \
             ended_at_ms = excluded.ended_at_ms, duration_ms = excluded.duration_ms, \
             renditions = excluded.renditions, state = excluded.state, bytes = excluded.bytes",
        )
        .bind(&entry.id)
        .bind(&entry.stream)
        .bind(&entry.session)
        .bind(&entry.show)
        .bind(entry.started_at.timestamp_millis())
        .bind(entry.ended_at.map(|t| t.timestamp_millis()))
        .bind((entry.duration_s * 1000.0).round() as i64)
        .bind(renditions)
        .bind(entry.state.as_str())
        .bind(i64::try_from(entry.bytes).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Recording `id`.
    pub async fn get(&self, id: &str) -> Result<Option<Entry>, sqlx::Error> {
        let row = sqlx::query(select!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| entry(&row)).transpose()
    }

    /// The recordings matching `filter`, newest first.
    pub async fn list(&self, filter: &Filter) -> Result<Vec<Entry>, sqlx::Error> {
        let rows = sqlx::query(select!(
            "WHERE ($1 IS NULL OR stream = $1) AND ($2 IS NULL OR show = $2) \
             ORDER BY started_at_ms DESC, id DESC"
        ))
        .bind(&filter.stream)
        .bind(&filter.show)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry).collect()
    }

    /// The newest recording of each of `shows` that has one: show id → entry. One query per
    /// [`SHOWS_PER_QUERY`] shows (`show IN ($1, $2, …)`, which both backends read).
    pub async fn newest_of_shows(
        &self,
        shows: &[&str],
    ) -> Result<std::collections::HashMap<String, Entry>, sqlx::Error> {
        let mut newest = std::collections::HashMap::new();
        if shows.is_empty() {
            return Ok(newest);
        }
        for chunk in shows.chunks(SHOWS_PER_QUERY) {
            // Built from constants only: the ids are bound.
            let sql = format!(
                "{} WHERE show IN ({}) ORDER BY started_at_ms DESC, id DESC",
                select!(""),
                crate::store::params(&self.pool, 1, chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for show in chunk {
                query = query.bind(*show);
            }
            for row in &query.fetch_all(&self.pool).await? {
                let entry = entry(row)?;
                if let Some(show) = entry.show.clone() {
                    newest.entry(show).or_insert(entry);
                }
            }
        }
        Ok(newest)
    }

    /// Closes the recordings of session `session` of `stream` other than `except` that are
    /// still listed as `recording` — parts of the session written by a node that died — as
    /// `cut_short`, ended at their recorded end (`started_at + duration_s`, as their last
    /// index row had it); nothing else of their rows changes. The ids closed. Called by the
    /// node that continues the session (it holds the stream's lease, so no other node is
    /// writing it); the dead node's own crash recovery rewrites its row from its manifest
    /// when it starts again.
    pub async fn close_cut_short(
        &self,
        stream: &str,
        session: &str,
        except: &str,
    ) -> Result<Vec<String>, sqlx::Error> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM recordings WHERE stream = $1 AND session = $2 AND id <> $3 \
             AND state = 'recording' ORDER BY id",
        )
        .bind(stream)
        .bind(session)
        .bind(except)
        .fetch_all(&self.pool)
        .await?;
        let mut closed = Vec::with_capacity(ids.len());
        for id in ids {
            let done = sqlx::query(
                "UPDATE recordings SET state = 'cut_short', \
                 ended_at_ms = started_at_ms + duration_ms WHERE id = $1 AND state = 'recording'",
            )
            .bind(&id)
            .execute(&self.pool)
            .await?;
            if done.rows_affected() > 0 {
                closed.push(id);
            }
        }
        Ok(closed)
    }

    /// Removes the row of `id`.
    pub async fn delete(&self, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM recordings WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Shows per query of [`Index::newest_of_shows`].
const SHOWS_PER_QUERY: usize = 500;

fn entry(row: &sqlx::any::AnyRow) -> Result<Entry, sqlx::Error> {
    let millis = |ms: i64| Utc.timestamp_millis_opt(ms).single();
    let decode = |column: &str, reason: &str| sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: reason.to_string().into(),
    };
    let state: String = row.try_get("state")?;
    let renditions: String = row.try_get("renditions")?;
    Ok(Entry {
        id: row.try_get("id")?,
        stream: row.try_get("stream")?,
        session: row.try_get("session")?,
        show: row.try_get("show")?,
        started_at: millis(row.try_get("started_at_ms")?)
            .ok_or_else(|| decode("started_at_ms", "out of range"))?,
        ended_at: row
            .try_get::<Option<i64>, _>("ended_at_ms")?
            .and_then(millis),
        duration_s: row.try_get::<i64, _>("duration_ms")? as f64 / 1000.0,
        renditions: serde_json::from_str(&renditions)
            .map_err(|_| decode("renditions", "not a JSON array of names"))?,
        state: RecordingState::parse(&state).ok_or_else(|| decode("state", "unknown state"))?,
        bytes: u64::try_from(row.try_get::<i64, _>("bytes")?).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// An index on an in-memory store, and a start time (in milliseconds, as rows keep it).
    async fn index_at() -> (Store, Index, DateTime<Utc>) {
        let store = Store::in_memory().await.expect("store");
        let index = Index::new(store.pool().clone());
        let t0 = Utc
            .timestamp_millis_opt(1_772_000_000_000)
            .single()
            .expect("t");
        (store, index, t0)
    }

    #[tokio::test]
    async fn rows_round_trip_and_filter_by_stream_and_show() {
        let (_store, index, t0) = index_at().await;
        let mut first = Manifest::new("demo-a", "demo", "a", t0, 2);
        first.show = Some("show-1".into());
        let second = Manifest::new("other-b", "other", "b", t0 + chrono::Duration::hours(1), 2);
        index.upsert(&Entry::of(&first)).await.expect("insert");
        index.upsert(&Entry::of(&second)).await.expect("insert");
        first.finish(RecordingState::Complete, t0 + chrono::Duration::minutes(5));
        index.upsert(&Entry::of(&first)).await.expect("update");
        let got = index.get("demo-a").await.expect("query").expect("found");
        assert_eq!(got, Entry::of(&first));
        assert_eq!(got.playlist(), "/vod/demo-a/index.m3u8");
        let all = index.list(&Filter::default()).await.expect("list");
        assert_eq!(
            all.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["other-b", "demo-a"]
        );
        let by_show = Filter {
            show: Some("show-1".into()),
            ..Filter::default()
        };
        assert_eq!(index.list(&by_show).await.expect("list").len(), 1);
        let by_stream = Filter {
            stream: Some("other".into()),
            ..Filter::default()
        };
        assert_eq!(index.list(&by_stream).await.expect("list")[0].id, "other-b");
        index.delete("other-b").await.expect("delete");
        assert!(index.get("other-b").await.expect("query").is_none());
    }

    #[tokio::test]
    async fn a_successor_closes_the_sessions_other_live_parts_as_cut_short() {
        let (_store, index, t0) = index_at().await;
        let at = |seconds| t0 + chrono::Duration::seconds(seconds);
        // The dead owner's part: 30 s recorded when its last row was written.
        let mut dead = Manifest::new("demo-s", "demo", "s", t0, 2);
        dead.show = Some("show-1".into());
        let mut dead_entry = Entry::of(&dead);
        dead_entry.duration_s = 30.0;
        dead_entry.bytes = 4096;
        index.upsert(&dead_entry).await.expect("insert");
        // Another session of the stream, live, and a finished part of this session.
        index
            .upsert(&Entry::of(&Manifest::new("demo-t", "demo", "t", at(5), 2)))
            .await
            .expect("insert");
        let mut finished = Manifest::new("demo-s-1", "demo", "s", at(1), 2);
        finished.finish(RecordingState::Complete, at(2));
        index.upsert(&Entry::of(&finished)).await.expect("insert");
        let successor = Manifest::new("demo-s-2", "demo", "s", at(40), 2);
        index.upsert(&Entry::of(&successor)).await.expect("insert");

        let closed = index
            .close_cut_short("demo", "s", "demo-s-2")
            .await
            .expect("closed");
        assert_eq!(closed, ["demo-s"]);
        let got = index.get("demo-s").await.expect("query").expect("row");
        assert_eq!(
            got,
            Entry {
                state: RecordingState::CutShort,
                ended_at: Some(at(30)),
                ..dead_entry
            },
            "closed at its recorded end, nothing else changed"
        );
        for (id, state) in [
            ("demo-s-2", RecordingState::Recording),
            ("demo-t", RecordingState::Recording),
            ("demo-s-1", RecordingState::Complete),
        ] {
            let row = index.get(id).await.expect("query").expect("row");
            assert_eq!(row.state, state, "{id} untouched");
        }
        assert!(
            index
                .close_cut_short("demo", "s", "demo-s-2")
                .await
                .expect("again")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn the_newest_recording_of_each_show_in_one_query() {
        let (_store, index, t0) = index_at().await;
        let at = |minutes| t0 + chrono::Duration::minutes(minutes);
        for (id, show, start) in [
            ("demo-a", Some("show-1"), 0),
            ("demo-b", Some("show-1"), 30),
            ("demo-c", Some("show-2"), 10),
            ("demo-d", None, 40),
            ("demo-e", Some("show-3"), 50),
        ] {
            let mut manifest = Manifest::new(id, "demo", id, at(start), 2);
            manifest.show = show.map(str::to_string);
            index.upsert(&Entry::of(&manifest)).await.expect("insert");
        }
        let newest = index
            .newest_of_shows(&["show-1", "show-2", "show-9"])
            .await
            .expect("query");
        let mut got: Vec<(&str, &str)> = newest
            .iter()
            .map(|(show, entry)| (show.as_str(), entry.id.as_str()))
            .collect();
        got.sort();
        assert_eq!(got, [("show-1", "demo-b"), ("show-2", "demo-c")]);
        assert!(index.newest_of_shows(&[]).await.expect("query").is_empty());
        // Ids are data, not SQL.
        let odd = index.newest_of_shows(&["x') OR 1=1 --"]).await;
        assert!(odd.expect("query").is_empty());
    }
}
