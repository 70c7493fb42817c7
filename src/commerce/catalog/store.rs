//! The catalog's table (`catalog_products`, migration 0004): one row per product, its JSON.

use sqlx::{Row, SqlitePool};

use super::model::CatalogProduct;

/// Every product, in id order.
pub async fn load_all(pool: &SqlitePool) -> Result<Vec<CatalogProduct>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, doc FROM catalog_products ORDER BY id")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            let doc: String = row.try_get("doc")?;
            serde_json::from_str(&doc).map_err(|err| sqlx::Error::ColumnDecode {
                index: "doc".into(),
                source: Box::new(err),
            })
        })
        .collect()
}

/// Inserts or replaces `products` in one transaction: all of them or none.
pub async fn upsert(pool: &SqlitePool, products: &[CatalogProduct]) -> Result<(), sqlx::Error> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut tx = pool.begin().await?;
    for p in products {
        let doc = serde_json::to_string(p).map_err(|err| sqlx::Error::Encode(Box::new(err)))?;
        sqlx::query(
            "INSERT INTO catalog_products (id, doc, updated_at_ms) VALUES (?, ?, ?) \
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
pub async fn delete(pool: &SqlitePool, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM catalog_products WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}
