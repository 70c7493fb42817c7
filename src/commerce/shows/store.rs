//! Shows in SQLite (`shows`, `show_products`; migration `0005_shows`).

use chrono::{DateTime, Utc};
use sqlx::{AnyPool, Row};

use super::model::Show;
use super::state::{ShowState, State};

/// Why the show store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A row the database holds cannot be read back.
    #[error("show {id}: stored {what} is invalid")]
    Corrupt {
        /// The show.
        id: String,
        /// Which column.
        what: &'static str,
    },
}

/// A new show id.
pub fn new_id() -> String {
    format!("show-{:016x}", rand::random::<u64>())
}

fn ms(date: DateTime<Utc>) -> i64 {
    date.timestamp_millis()
}

fn date(id: &str, what: &'static str, ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt {
        id: id.to_string(),
        what,
    })
}

/// Every show with its products.
pub async fn load_all(pool: &AnyPool) -> Result<Vec<Show>, StoreError> {
    load(pool, None).await
}

/// Show `id` with its products, if it exists.
pub async fn load_one(pool: &AnyPool, id: &str) -> Result<Option<Show>, StoreError> {
    Ok(load(pool, Some(id)).await?.pop())
}

/// Every show, or the one of `only`.
async fn load(pool: &AnyPool, only: Option<&str>) -> Result<Vec<Show>, StoreError> {
    let rows = match only {
        None => sqlx::query(
            "SELECT id, title, description, host, stream, scheduled_start_ms, cover_image_url, \
             tags, state, started_at_ms, ended_at_ms, session FROM shows \
             ORDER BY scheduled_start_ms, id",
        ),
        Some(id) => sqlx::query(
            "SELECT id, title, description, host, stream, scheduled_start_ms, cover_image_url, \
             tags, state, started_at_ms, ended_at_ms, session FROM shows WHERE id = $1",
        )
        .bind(id),
    }
    .fetch_all(pool)
    .await?;
    let mut shows = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get("id")?;
        let corrupt = |what| StoreError::Corrupt {
            id: id.clone(),
            what,
        };
        let tags: String = row.try_get("tags")?;
        let state: String = row.try_get("state")?;
        let optional_date = |column: &'static str| -> Result<Option<DateTime<Utc>>, StoreError> {
            row.try_get::<Option<i64>, _>(column)?
                .map(|v| date(&id, column, v))
                .transpose()
        };
        let status = ShowState {
            state: State::parse(&state).ok_or_else(|| corrupt("state"))?,
            scheduled_start: date(
                &id,
                "scheduled_start_ms",
                row.try_get("scheduled_start_ms")?,
            )?,
            started_at: optional_date("started_at_ms")?,
            ended_at: optional_date("ended_at_ms")?,
            session: row.try_get("session")?,
        };
        shows.push(Show {
            title: row.try_get("title")?,
            description: row.try_get("description")?,
            host: row.try_get("host")?,
            stream: row.try_get("stream")?,
            cover_image_url: row.try_get("cover_image_url")?,
            tags: serde_json::from_str(&tags).map_err(|_| corrupt("tags"))?,
            products: Vec::new(),
            status,
            id,
        });
    }
    let products = match only {
        None => {
            sqlx::query("SELECT show_id, product_id FROM show_products ORDER BY show_id, position")
        }
        Some(id) => sqlx::query(
            "SELECT show_id, product_id FROM show_products WHERE show_id = $1 ORDER BY position",
        )
        .bind(id),
    }
    .fetch_all(pool)
    .await?;
    let mut by_show: std::collections::HashMap<String, Vec<String>> = Default::default();
    for row in products {
        by_show
            .entry(row.try_get("show_id")?)
            .or_default()
            .push(row.try_get("product_id")?);
    }
    for show in &mut shows {
        show.products = by_show.remove(&show.id).unwrap_or_default();
    }
    Ok(shows)
}

/// Inserts `show`, or replaces every column and the products of the stored one.
pub async fn save(pool: &AnyPool, show: &Show) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO shows (id, title, description, host, stream, scheduled_start_ms, \
         cover_image_url, tags, state, started_at_ms, ended_at_ms, session, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (id) DO UPDATE SET title = excluded.title, \
         description = excluded.description, host = excluded.host, stream = excluded.stream, \
         scheduled_start_ms = excluded.scheduled_start_ms, \
         cover_image_url = excluded.cover_image_url, tags = excluded.tags, \
         state = excluded.state, started_at_ms = excluded.started_at_ms, \
         ended_at_ms = excluded.ended_at_ms, session = excluded.session",
    )
    .bind(&show.id)
    .bind(&show.title)
    .bind(&show.description)
    .bind(&show.host)
    .bind(&show.stream)
    .bind(ms(show.status.scheduled_start))
    .bind(&show.cover_image_url)
    .bind(serde_json::Value::from(show.tags.clone()).to_string())
    .bind(show.status.state.as_str())
    .bind(show.status.started_at.map(ms))
    .bind(show.status.ended_at.map(ms))
    .bind(&show.status.session)
    .bind(ms(Utc::now()))
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM show_products WHERE show_id = $1")
        .bind(&show.id)
        .execute(&mut *tx)
        .await?;
    for (position, product) in show.products.iter().enumerate() {
        sqlx::query(
            "INSERT INTO show_products (show_id, position, product_id) VALUES ($1, $2, $3)",
        )
        .bind(&show.id)
        .bind(position as i64)
        .bind(product)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Deletes show `id` (and its products); false if there was none.
pub async fn delete(pool: &AnyPool, id: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM shows WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn show(id: &str) -> Show {
        Show {
            id: id.into(),
            title: "Spring".into(),
            description: String::new(),
            host: "alice".into(),
            stream: "demo".into(),
            cover_image_url: Some("https://x.example/c.png".into()),
            tags: vec!["beauty".into()],
            products: vec!["sku-2".into(), "sku-1".into()],
            status: ShowState::scheduled(
                DateTime::from_timestamp_millis(1_796_580_000_123).expect("date"),
            ),
        }
    }

    #[tokio::test]
    async fn saves_updates_loads_and_deletes() {
        let store = Store::in_memory().await.expect("store");
        let pool = store.pool();
        let mut first = show("show-1");
        save(pool, &first).await.expect("insert");
        save(pool, &show("show-2")).await.expect("insert");
        first.products = vec!["sku-3".into()];
        first.status.state = State::Live;
        first.status.session = Some("19a".into());
        first.status.started_at = Some(first.status.scheduled_start);
        save(pool, &first).await.expect("update");
        let loaded = load_all(pool).await.expect("load");
        assert_eq!(loaded, vec![first, show("show-2")]);
        assert!(delete(pool, "show-2").await.expect("delete"));
        assert!(!delete(pool, "show-2").await.expect("delete"));
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM show_products")
            .fetch_one(pool)
            .await
            .expect("count");
        assert_eq!(left, 1, "products go with their show");
    }
}
