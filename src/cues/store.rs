//! Cue persistence in the `cues` table (migration `0002_cues`). Every write is one statement,
//! so a failed request leaves nothing behind.

use chrono::{DateTime, Utc};
use sqlx::AnyPool;

use super::model::{Cue, CueSpec, Source, format_date};
use super::rundown::ScheduledCue;

/// A database error, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("cue store: {action}: {source}")]
pub struct StoreError {
    /// What failed.
    pub action: &'static str,
    /// The driver's error.
    pub source: sqlx::Error,
}

fn err(action: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError { action, source }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

type Row = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

/// The columns of a [`Row`].
macro_rules! live_columns {
    () => {
        "seq, id, stream, source, spec, session, start_ns, start_date, published_ns, ended_ns"
    };
}

fn cue_from_row(row: Row) -> Option<Cue> {
    let (seq, id, stream, source, spec, session, start_ns, start_date, published_ns, ended_ns) =
        row;
    let spec: CueSpec = serde_json::from_str(&spec).ok()?;
    Some(Cue {
        seq,
        id,
        stream,
        session: session?,
        spec,
        start_ns: to_u64(start_ns?),
        start_date: DateTime::parse_from_rfc3339(&start_date?)
            .ok()?
            .with_timezone(&Utc),
        ended_ns: ended_ns.map(to_u64),
        source: if source == "rundown" {
            Source::Rundown
        } else {
            Source::Api
        },
        published_ns: published_ns.map_or(0, to_u64),
    })
}

/// Inserts a live cue (seq and id are assigned here); returns its seq.
pub async fn insert_live(pool: &AnyPool, cue: &Cue) -> Result<i64, StoreError> {
    let spec = serde_json::to_string(&cue.spec).unwrap_or_default();
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO cues (id, stream, state, source, spec, session, start_ns, start_date, \
         published_ns, created_at) VALUES ($1, $2, 'live', $3, $4, $5, $6, $7, $8, $9) RETURNING seq",
    )
    .bind(&cue.id)
    .bind(&cue.stream)
    .bind(cue.source.as_str())
    .bind(spec)
    .bind(&cue.session)
    .bind(to_i64(cue.start_ns))
    .bind(format_date(&cue.start_date))
    .bind(to_i64(cue.published_ns))
    .bind(format_date(&Utc::now()))
    .fetch_one(pool)
    .await
    .map_err(err("insert cue"))?;
    Ok(seq)
}

/// A fired rundown item becomes live on `cue.session`.
pub async fn mark_fired(pool: &AnyPool, cue: &Cue) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE cues SET state = 'live', session = $1, start_ns = $2, start_date = $3, \
         published_ns = $4 WHERE seq = $5",
    )
    .bind(&cue.session)
    .bind(to_i64(cue.start_ns))
    .bind(format_date(&cue.start_date))
    .bind(to_i64(cue.published_ns))
    .bind(cue.seq)
    .execute(pool)
    .await
    .map_err(err("mark rundown cue fired"))?;
    Ok(())
}

/// Records a cut.
pub async fn set_ended(pool: &AnyPool, seq: i64, ended_ns: u64) -> Result<(), StoreError> {
    sqlx::query("UPDATE cues SET ended_ns = $1 WHERE seq = $2")
        .bind(to_i64(ended_ns))
        .bind(seq)
        .execute(pool)
        .await
        .map_err(err("end cue"))?;
    Ok(())
}

/// Live cues of `stream`, oldest first.
pub async fn list_live(pool: &AnyPool, stream: &str) -> Result<Vec<Cue>, StoreError> {
    let rows: Vec<Row> = sqlx::query_as(concat!(
        "SELECT ",
        live_columns!(),
        " FROM cues WHERE stream = $1 AND state = 'live' ORDER BY seq"
    ))
    .bind(stream)
    .fetch_all(pool)
    .await
    .map_err(err("list cues"))?;
    Ok(rows.into_iter().filter_map(cue_from_row).collect())
}

/// What a cue id names.
pub enum Found {
    /// A live cue.
    Live(Box<Cue>),
    /// A rundown item not fired yet.
    Scheduled(i64),
}

/// The cue or rundown item `id` of `stream`.
pub async fn find(pool: &AnyPool, stream: &str, id: &str) -> Result<Option<Found>, StoreError> {
    let row: Option<(String, Row)> = sqlx::query_as::<
        _,
        (
            String,
            i64,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<i64>,
            Option<String>,
            Option<i64>,
            Option<i64>,
        ),
    >(concat!(
        "SELECT state, ",
        live_columns!(),
        " FROM cues WHERE stream = $1 AND id = $2"
    ))
    .bind(stream)
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(err("find cue"))?
    .map(|(state, a, b, c, d, e, f, g, h, i, j)| (state, (a, b, c, d, e, f, g, h, i, j)));
    Ok(row.and_then(|(state, row)| {
        if state == "scheduled" {
            Some(Found::Scheduled(row.0))
        } else {
            cue_from_row(row).map(|c| Found::Live(Box::new(c)))
        }
    }))
}

/// Inserts rundown items for `stream` (with `replace`, unfired items are deleted first), in
/// one transaction; returns them with their seq.
pub async fn schedule(
    pool: &AnyPool,
    stream: &str,
    items: Vec<(String, u64, CueSpec)>,
    replace: bool,
) -> Result<Vec<ScheduledCue>, StoreError> {
    let mut tx = pool.begin().await.map_err(err("begin rundown"))?;
    if replace {
        sqlx::query("DELETE FROM cues WHERE stream = $1 AND state = 'scheduled'")
            .bind(stream)
            .execute(&mut *tx)
            .await
            .map_err(err("replace rundown"))?;
    }
    let now = format_date(&Utc::now());
    let mut out = Vec::with_capacity(items.len());
    for (id, offset_ns, spec) in items {
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO cues (id, stream, state, source, spec, offset_ns, created_at) \
             VALUES ($1, $2, 'scheduled', 'rundown', $3, $4, $5) RETURNING seq",
        )
        .bind(&id)
        .bind(stream)
        .bind(serde_json::to_string(&spec).unwrap_or_default())
        .bind(to_i64(offset_ns))
        .bind(&now)
        .fetch_one(&mut *tx)
        .await
        .map_err(err("insert rundown item"))?;
        out.push(ScheduledCue {
            seq,
            id,
            offset_ns,
            spec,
        });
    }
    tx.commit().await.map_err(err("commit rundown"))?;
    Ok(out)
}

/// Deletes an unfired rundown item.
pub async fn delete_scheduled(pool: &AnyPool, seq: i64) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM cues WHERE seq = $1 AND state = 'scheduled'")
        .bind(seq)
        .execute(pool)
        .await
        .map_err(err("delete rundown item"))?;
    Ok(result.rows_affected() > 0)
}

/// Every unfired rundown item, by stream (startup).
pub async fn all_scheduled(pool: &AnyPool) -> Result<Vec<(String, ScheduledCue)>, StoreError> {
    let rows: Vec<(i64, String, String, String, Option<i64>)> = sqlx::query_as(
        "SELECT seq, id, stream, spec, offset_ns FROM cues WHERE state = 'scheduled' ORDER BY seq",
    )
    .fetch_all(pool)
    .await
    .map_err(err("load rundowns"))?;
    Ok(rows
        .into_iter()
        .filter_map(|(seq, id, stream, spec, offset)| {
            let spec: CueSpec = serde_json::from_str(&spec).ok()?;
            Some((
                stream,
                ScheduledCue {
                    seq,
                    id,
                    offset_ns: to_u64(offset?),
                    spec,
                },
            ))
        })
        .collect())
}

/// A fresh public id: `cue-` + 16 hex digits.
pub fn new_id() -> String {
    format!("cue-{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cues::model::CueKind;
    use crate::store::Store;

    fn spec() -> CueSpec {
        CueSpec {
            kind: CueKind::Product,
            duration: Some(Duration::from_secs(15)),
            end_on_next: false,
            product: None,
            data: serde_json::json!({"a": 1}),
        }
    }

    #[tokio::test]
    async fn live_cues_round_trip_and_rundowns_replace() {
        let store = Store::in_memory().await.expect("store");
        let pool = store.pool();
        let mut cue = Cue {
            seq: 0,
            id: new_id(),
            stream: "demo".into(),
            session: "s1".into(),
            spec: spec(),
            start_ns: 1_500_000_000,
            start_date: DateTime::parse_from_rfc3339("2026-01-01T00:00:01.500Z")
                .expect("date")
                .with_timezone(&Utc),
            ended_ns: None,
            source: Source::Api,
            published_ns: 1_400_000_000,
        };
        cue.seq = insert_live(pool, &cue).await.expect("insert");
        set_ended(pool, cue.seq, 2_000_000_000).await.expect("end");
        cue.ended_ns = Some(2_000_000_000);
        assert_eq!(
            list_live(pool, "demo").await.expect("list"),
            vec![cue.clone()]
        );
        assert!(list_live(pool, "other").await.expect("list").is_empty());
        assert!(matches!(
            find(pool, "demo", &cue.id).await.expect("find"),
            Some(Found::Live(c)) if *c == cue
        ));
        // The same id twice is refused (UNIQUE), and nothing is written.
        assert!(insert_live(pool, &cue).await.is_err());
        assert_eq!(list_live(pool, "demo").await.expect("list").len(), 1);

        let first = schedule(pool, "demo", vec![("r1".into(), 5, spec())], false)
            .await
            .expect("schedule");
        schedule(pool, "demo", vec![("r2".into(), 7, spec())], true)
            .await
            .expect("replace");
        let all = all_scheduled(pool).await.expect("all");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1.id, "r2");
        assert!(
            !delete_scheduled(pool, first[0].seq)
                .await
                .expect("gone already")
        );
        let mut fired = cue.clone();
        fired.seq = all[0].1.seq;
        fired.id = "r2".into();
        fired.ended_ns = None;
        mark_fired(pool, &fired).await.expect("fired");
        assert!(all_scheduled(pool).await.expect("all").is_empty());
        assert_eq!(list_live(pool, "demo").await.expect("list").len(), 2);
    }
}
