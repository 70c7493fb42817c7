//! The catalog's table (`catalog_products`, migration 0004): one row per product, its JSON.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, AssertSqlSafe, Row};

use super::model::CatalogProduct;

/// Every product, in id order.
pub async fn load_all(pool: &AnyPool) -> Result<Vec<CatalogProduct>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, doc FROM catalog_products ORDER BY id")
        .fetch_all(pool)
        .await?;
    rows.iter().map(product).collect()
}

/// Ids per query of [`load_some`].
const IDS_PER_QUERY: usize = 500;

/// The products of `ids` that exist (another node's changes, re-read).
pub async fn load_some(pool: &AnyPool, ids: &[String]) -> Result<Vec<CatalogProduct>, sqlx::Error> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_QUERY) {
        // Built from constants only: the ids are bound.
        let sql = format!(
            "SELECT id, doc FROM catalog_products WHERE id IN ({})",
            crate::store::params(pool, 1, chunk.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id.as_str());
        }
        for row in query.fetch_all(pool).await? {
            out.push(product(&row)?);
        }
    }
    Ok(out)
}

fn product(row: &AnyRow) -> Result<CatalogProduct, sqlx::Error> {
    let doc: String = row.try_get("doc")?;
    serde_json::from_str(&doc).map_err(|err| sqlx::Error::ColumnDecode {
        index: "doc".into(),
        source: Box::new(err),
    })
}

/// Inserts or replaces `products` in one transaction: all of them or none.
pub async fn upsert(pool: &AnyPool, products: &[CatalogProduct]) -> Result<(), sqlx::Error> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut tx = pool.begin().await?;
    for p in products {
        let doc = serde_json::to_string(p).map_err(|err| sqlx::Error::Encode(Box::new(err)))?;
        sqlx::query(
            "INSERT INTO catalog_products (id, doc, updated_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(&p.id)
        .bind(doc)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Deletes product `id`; whether it existed.
pub async fn delete(pool: &AnyPool, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM catalog_products WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}
