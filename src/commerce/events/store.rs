//! Event persistence in the `events` table (migration `0006_events`): a group of batches in one
//! transaction of multi-row INSERTs (prepared once per row count, cached by the connection),
//! visitor linking, and the grouped read the analytics fold sums.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use sqlx::{AnyPool, AssertSqlSafe};

use super::analytics::Group;
use super::model::{Event, EventType};
use crate::commerce::money::Amount;

/// Rows per INSERT statement (11 columns each: 704 parameters, far below SQLite's limit).
pub const ROWS_PER_INSERT: usize = 64;

/// The transaction-level advisory lock that orders event writers on a shared database.
const WRITE_LOCK: i64 = 0x0063_7565_6576_7473;

/// Columns per inserted row.
const COLUMNS: usize = 11;

/// A database error, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("event store: {action}: {source}")]
pub struct StoreError {
    /// What failed.
    pub action: &'static str,
    /// The driver's error.
    pub source: sqlx::Error,
}

fn err(action: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError { action, source }
}

/// The INSERT statements for 1..=[`ROWS_PER_INSERT`] rows (index = rows - 1) for the database
/// of `pool` ([`crate::store::params`]): built from constants only, never from input.
pub fn insert_statements(pool: &AnyPool) -> Vec<Arc<str>> {
    (1..=ROWS_PER_INSERT)
        .map(|rows| {
            let values: Vec<String> = (0..rows)
                .map(|row| {
                    format!(
                        "({})",
                        crate::store::params(pool, row * COLUMNS + 1, COLUMNS)
                    )
                })
                .collect();
            format!(
                "INSERT INTO events (type, show, product, cue, \"user\", visitor, order_id, \
                 quantity, price, ts_ms, received_ms) VALUES {} ON CONFLICT DO NOTHING",
                values.join(", ")
            )
            .into()
        })
        .collect()
}

/// Writes `events` in one transaction, first linking the earlier anonymous events of every
/// visitor that now comes with a user. `statements` are [`insert_statements`].
pub async fn write<'a>(
    pool: &AnyPool,
    statements: &[Arc<str>],
    events: impl Iterator<Item = &'a Event> + Clone,
    received_ms: i64,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(err("begin"))?;
    if crate::store::is_shared(pool) {
        // Nodes sharing the database write events one transaction at a time, so seq order is
        // commit order and the nodes' tails ([`since`]) never skip a row committed late.
        sqlx::query("SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock($1)) AS locked")
            .bind(WRITE_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(err("lock"))?;
    }
    let started = std::time::Instant::now();
    let links: BTreeSet<(&str, &str)> = events
        .clone()
        .filter_map(|e| Some((e.visitor.as_deref()?, e.user.as_deref()?)))
        .collect();
    let linked = links.len();
    for (visitor, user) in links {
        sqlx::query("UPDATE events SET \"user\" = $1 WHERE visitor = $2 AND \"user\" IS NULL")
            .bind(user)
            .bind(visitor)
            .execute(&mut *tx)
            .await
            .map_err(err("link visitor"))?;
    }
    let inserting = std::time::Instant::now();
    let events: Vec<&Event> = events.collect();
    for chunk in events.chunks(ROWS_PER_INSERT) {
        let Some(sql) = statements.get(chunk.len() - 1) else {
            continue;
        };
        let mut query = sqlx::query(AssertSqlSafe(Arc::clone(sql)));
        for event in chunk {
            query = query
                .bind(event.kind.as_str())
                .bind(&event.show)
                .bind(&event.product)
                .bind(&event.cue)
                .bind(&event.user)
                .bind(&event.visitor)
                .bind(&event.order)
                .bind(i64::from(event.quantity))
                .bind(event.price.map(|p| p.to_string()))
                .bind(event.ts_ms)
                .bind(received_ms);
        }
        query.execute(&mut *tx).await.map_err(err("insert"))?;
    }
    let committing = std::time::Instant::now();
    tx.commit().await.map_err(err("commit"))?;
    // Where a transaction's time goes (docs/benchmarks/events.md reads these).
    tracing::trace!(
        linked,
        link_us = (inserting - started).as_micros() as u64,
        insert_us = (committing - inserting).as_micros() as u64,
        commit_us = committing.elapsed().as_micros() as u64,
        "events written"
    );
    Ok(())
}

/// The highest seq written so far (0 for none): where a tail starts.
pub async fn last_seq(pool: &AnyPool) -> Result<i64, StoreError> {
    let last: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM events")
        .fetch_one(pool)
        .await
        .map_err(err("read the last seq"))?;
    Ok(last.unwrap_or(0))
}

/// Up to `limit` events after seq `after`, in seq order, with their seq (the tail of a shared
/// database: every node's events).
pub async fn since(
    pool: &AnyPool,
    after: i64,
    limit: usize,
) -> Result<Vec<(i64, Event)>, StoreError> {
    type Row = (
        i64,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        i64,
        Option<String>,
        i64,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT seq, type, show, product, cue, \"user\", visitor, order_id, quantity, price, \
         ts_ms FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await
    .map_err(err("read new events"))?;
    Ok(rows
        .into_iter()
        .filter_map(
            |(seq, kind, show, product, cue, user, visitor, order, quantity, price, ts_ms)| {
                Some((
                    seq,
                    Event {
                        kind: EventType::parse(&kind)?,
                        user,
                        visitor,
                        show,
                        product,
                        cue,
                        order,
                        quantity: u32::try_from(quantity).unwrap_or(1),
                        price: price.as_deref().and_then(Amount::parse),
                        ts_ms,
                    },
                ))
            },
        )
        .collect())
}

/// A show's events grouped by cue, product, type and price, for [`super::Analytics::fold`].
pub async fn groups(pool: &AnyPool, show: &str) -> Result<Vec<Group>, StoreError> {
    type Row = (
        Option<String>,
        Option<String>,
        String,
        Option<String>,
        i64,
        i64,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT cue, product, type, price, COUNT(*), CAST(SUM(quantity) AS BIGINT) FROM events WHERE show = $1 \
         GROUP BY cue, product, type, price",
    )
    .bind(show)
    .fetch_all(pool)
    .await
    .map_err(err("read analytics"))?;
    Ok(rows
        .into_iter()
        .filter_map(|(cue, product, kind, price, events, quantity)| {
            Some(Group {
                cue,
                product,
                kind: EventType::parse(&kind)?,
                price: price.as_deref().and_then(Amount::parse),
                events: u64::try_from(events).unwrap_or(0),
                quantity: u64::try_from(quantity).unwrap_or(0),
            })
        })
        .collect())
}

/// Distinct shoppers of a show: each user once, and each visitor not linked to a user once.
pub async fn shoppers(pool: &AnyPool, show: &str) -> Result<u64, StoreError> {
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT CASE WHEN \"user\" IS NULL THEN 'v:' || visitor ELSE 'u:' || \"user\" END) \
         FROM events WHERE show = $1",
    )
    .bind(show)
    .fetch_one(pool)
    .await
    .map_err(err("count shoppers"))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// The `view_show` events since `since_ms`: (show, viewer key, time), for the viewers counter
/// after a restart.
pub async fn recent_views(
    pool: &AnyPool,
    since_ms: i64,
) -> Result<Vec<(String, String, i64)>, StoreError> {
    let rows: Vec<(String, Option<String>, Option<String>, i64)> = sqlx::query_as(
        "SELECT show, \"user\", visitor, ts_ms FROM events WHERE type = 'view_show' AND ts_ms > $1",
    )
    .bind(since_ms)
    .fetch_all(pool)
    .await
    .map_err(err("read recent views"))?;
    Ok(rows
        .into_iter()
        .filter_map(|(show, user, visitor, ts_ms)| {
            let key = super::viewers::viewer_key(user.as_deref(), visitor.as_deref())?;
            Some((show, key, ts_ms))
        })
        .collect())
}

/// Distinct viewers (each user once, each visitor not linked to a user once) of `show`'s
/// `view_show` events per minute (`ts_ms / 60 000`) from `from_ms` to `to_ms` (inclusive).
pub async fn viewers_per_minute(
    pool: &AnyPool,
    show: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<HashMap<i64, u64>, StoreError> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT ts_ms / 60000, COUNT(DISTINCT CASE WHEN \"user\" IS NULL THEN 'v:' || visitor \
         ELSE 'u:' || \"user\" END) FROM events WHERE show = $1 AND type = 'view_show' \
         AND ts_ms >= $2 AND ts_ms <= $3 GROUP BY ts_ms / 60000",
    )
    .bind(show)
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(pool)
    .await
    .map_err(err("count viewers"))?;
    Ok(rows
        .into_iter()
        .map(|(minute, viewers)| (minute, u64::try_from(viewers).unwrap_or(0)))
        .collect())
}
