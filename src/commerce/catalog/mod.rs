//! The shop's catalog: products persisted in the store, held in memory (by id, for reads and
//! the display data cues and chat cards take), and indexed for search ([`search`]): full text
//! with typo tolerance and prefixes, facets, re-ranked by recent popularity ([`rank`]).
//!
//! Writes go to the store first (one transaction per batch: all or nothing), then to memory
//! and the index, which is committed and reloaded before the call returns.

mod config;
pub mod import;
pub mod model;
pub mod rank;
pub mod search;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use sqlx::AnyPool;

pub use config::Config;
pub use model::{Availability, CatalogProduct};
use rank::{Cursor, Popularity, blend};
use search::{FacetCount, ScoreFn, SearchIndex, product_key};

use crate::commerce::product::{FieldError, Product, ProductLookup, invalid};

/// Why a catalog operation failed; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// 400: a field (of a row, or of the query) is not acceptable.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// 413: more products than one request may carry.
    #[error("{count} products in one request; the limit is {limit} (catalog.max_batch)")]
    TooMany {
        /// Products sent.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// 500: the store failed.
    #[error("catalog store: {0}")]
    Store(#[from] sqlx::Error),
    /// 500: the search index failed.
    #[error("catalog index: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// 500: an index update task did not finish.
    #[error("catalog index update: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A listing request: `GET /api/catalog/products?q=&category=&limit=&cursor=`.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    /// Full-text query; absent = browse in id order.
    pub q: Option<String>,
    /// Category path; matches it and the categories below it.
    pub category: Option<String>,
    /// Page size (`catalog.default_limit` when absent).
    pub limit: Option<usize>,
    /// Where the page starts (from the previous page's `next_cursor`).
    pub cursor: Option<String>,
}

/// Facet counts of a listing.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Facets {
    /// Categories one level below the `category` filter (top-level without one).
    pub category: Vec<FacetCount>,
    /// Brands.
    pub brand: Vec<FacetCount>,
}

/// A page of a listing.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page {
    /// The products, best match (or lowest id) first.
    pub products: Vec<CatalogProduct>,
    /// Products matching the query and filter in total.
    pub total: u64,
    /// Cursor of the next page; absent on the last one.
    pub next_cursor: Option<String>,
    /// Facet counts over every match.
    pub facets: Facets,
}

/// Products in memory, by id and by index key.
#[derive(Default)]
struct Products {
    by_id: BTreeMap<String, Arc<CatalogProduct>>,
    by_key: HashMap<u64, Arc<CatalogProduct>>,
}

impl Products {
    fn insert(&mut self, product: Arc<CatalogProduct>) {
        self.by_key
            .insert(product_key(&product.id), Arc::clone(&product));
        self.by_id.insert(product.id.clone(), product);
    }

    fn remove(&mut self, id: &str) {
        self.by_id.remove(id);
        self.by_key.remove(&product_key(id));
    }
}

/// Told of every catalog change once it is visible (the recommenders' content features):
/// called with the catalog's write lock held, so changes arrive in order. Must be quick.
pub trait CatalogObserver: Send + Sync {
    /// `products` were added or replaced.
    fn upserted(&self, products: &[Arc<CatalogProduct>]);
    /// Product `id` was deleted.
    fn deleted(&self, id: &str);
}

/// Products re-read per query when following other nodes' changes.
const FOLLOW_BATCH: usize = 1000;

/// Popularity by product key, shared with the scoring function of searches.
type Popularities = Arc<RwLock<HashMap<u64, Popularity>>>;

/// The catalog service.
pub struct Catalog {
    pool: AnyPool,
    /// Settings.
    pub settings: Config,
    products: RwLock<Products>,
    index: Arc<SearchIndex>,
    popularity: Popularities,
    /// Serializes writers, so the store, memory and the index change in the same order.
    writes: tokio::sync::Mutex<()>,
    /// Told of every change.
    observers: RwLock<Vec<Arc<dyn CatalogObserver>>>,
}

/// Whether `product` is in `category` (a normalized path) or below it.
fn in_category(product: &CatalogProduct, category: &str) -> bool {
    product.category.as_deref().is_some_and(|c| {
        c == category
            || c.strip_prefix(category)
                .is_some_and(|rest| rest.starts_with(model::CATEGORY_SEPARATOR))
    })
}

/// Seconds since the Unix epoch, the time base of popularity.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Catalog {
    /// Loads the catalog from the store and builds its index.
    pub async fn open(pool: AnyPool, settings: Config) -> Result<Arc<Catalog>, CatalogError> {
        let loaded: Vec<Arc<CatalogProduct>> = store::load_all(&pool)
            .await?
            .into_iter()
            .map(Arc::new)
            .collect();
        let index = Arc::new(SearchIndex::new()?);
        let mut products = Products::default();
        for p in &loaded {
            products.insert(Arc::clone(p));
        }
        let count = loaded.len();
        let building = Arc::clone(&index);
        tokio::task::spawn_blocking(move || building.apply(&loaded, &[])).await??;
        tracing::info!(products = count, "catalog loaded");
        Ok(Arc::new(Catalog {
            pool,
            settings,
            products: RwLock::new(products),
            index,
            popularity: Arc::default(),
            writes: tokio::sync::Mutex::new(()),
            observers: RwLock::new(Vec::new()),
        }))
    }

    /// Upserts a validated batch ([`import`] parses and validates): stored in one transaction,
    /// then searchable on return. The number of products.
    pub async fn upsert(&self, products: Vec<CatalogProduct>) -> Result<usize, CatalogError> {
        if products.len() > self.settings.max_batch {
            return Err(CatalogError::TooMany {
                count: products.len(),
                limit: self.settings.max_batch,
            });
        }
        let _writing = self.writes.lock().await;
        store::upsert(&self.pool, &products).await?;
        let products: Vec<Arc<CatalogProduct>> = products.into_iter().map(Arc::new).collect();
        self.update_index(products.clone(), Vec::new()).await?;
        {
            let mut memory = self.products.write().unwrap_or_else(|e| e.into_inner());
            for p in &products {
                memory.insert(Arc::clone(p));
            }
        }
        for observer in self.observers() {
            observer.upserted(&products);
        }
        Ok(products.len())
    }

    /// Deletes product `id`; whether it existed.
    pub async fn delete(&self, id: &str) -> Result<bool, CatalogError> {
        let _writing = self.writes.lock().await;
        if !store::delete(&self.pool, id).await? {
            return Ok(false);
        }
        self.update_index(Vec::new(), vec![id.to_string()]).await?;
        self.products
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        for observer in self.observers() {
            observer.deleted(id);
        }
        Ok(true)
    }

    /// On a shared database: applies other nodes' product changes, announced on `changes`
    /// (the store's notifications), to this node's memory, search index and observers — as
    /// [`Catalog::upsert`] and [`Catalog::delete`] would; its own come back too and change
    /// nothing. A lost notification stream (`*`) reloads every product. Ends when the store
    /// closes.
    pub fn follow(
        self: &Arc<Self>,
        mut changes: tokio::sync::broadcast::Receiver<crate::store::Change>,
    ) -> tokio::task::JoinHandle<()> {
        use tokio::sync::broadcast::error::{RecvError, TryRecvError};
        let catalog = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let mut ids = std::collections::BTreeSet::new();
                let mut everything = false;
                let first = changes.recv().await;
                let mut next = first.map_err(|err| match err {
                    RecvError::Closed => TryRecvError::Closed,
                    RecvError::Lagged(n) => TryRecvError::Lagged(n),
                });
                loop {
                    match next {
                        Ok(change) if change.table == "catalog_products" => {
                            ids.insert(change.key);
                        }
                        Ok(change) if change.table == "*" => everything = true,
                        Ok(_) => {}
                        Err(TryRecvError::Lagged(_)) => everything = true,
                        Err(TryRecvError::Closed) => return,
                        Err(TryRecvError::Empty) => break,
                    }
                    if ids.len() >= FOLLOW_BATCH {
                        break;
                    }
                    next = changes.try_recv();
                }
                if everything || !ids.is_empty() {
                    let ids: Vec<String> = ids.into_iter().collect();
                    if let Err(err) = catalog.refresh(everything, &ids).await {
                        tracing::warn!(error = %err, "catalog: cannot apply other nodes' changes");
                    }
                }
            }
        })
    }

    /// Re-reads products `ids` (or all, with `everything`) and applies what differs from memory.
    async fn refresh(&self, everything: bool, ids: &[String]) -> Result<(), CatalogError> {
        let _writing = self.writes.lock().await;
        let stored = if everything {
            store::load_all(&self.pool).await?
        } else {
            store::load_some(&self.pool, ids).await?
        };
        let (changed, deleted) = {
            let memory = self.products.read().unwrap_or_else(|e| e.into_inner());
            let present: std::collections::HashSet<String> =
                stored.iter().map(|p| p.id.clone()).collect();
            let changed: Vec<Arc<CatalogProduct>> = stored
                .into_iter()
                .filter(|p| memory.by_id.get(&p.id).is_none_or(|known| **known != *p))
                .map(Arc::new)
                .collect();
            let deleted: Vec<String> = if everything {
                memory
                    .by_id
                    .keys()
                    .filter(|id| !present.contains(*id))
                    .cloned()
                    .collect()
            } else {
                ids.iter()
                    .filter(|id| memory.by_id.contains_key(*id) && !present.contains(*id))
                    .cloned()
                    .collect()
            };
            (changed, deleted)
        };
        if changed.is_empty() && deleted.is_empty() {
            return Ok(());
        }
        self.update_index(changed.clone(), deleted.clone()).await?;
        {
            let mut memory = self.products.write().unwrap_or_else(|e| e.into_inner());
            for p in &changed {
                memory.insert(Arc::clone(p));
            }
            for id in &deleted {
                memory.remove(id);
            }
        }
        tracing::debug!(
            changed = changed.len(),
            deleted = deleted.len(),
            "catalog: applied other nodes' changes"
        );
        let observers = self.observers();
        for observer in &observers {
            if !changed.is_empty() {
                observer.upserted(&changed);
            }
            for id in &deleted {
                observer.deleted(id);
            }
        }
        Ok(())
    }

    /// Tells `observer` of every later change; returns every product now (a change racing
    /// with this call may reach the observer and be in the list: observers are idempotent).
    pub fn observe(&self, observer: Arc<dyn CatalogObserver>) -> Vec<Arc<CatalogProduct>> {
        self.observers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(observer);
        let memory = self.products.read().unwrap_or_else(|e| e.into_inner());
        memory.by_id.values().cloned().collect()
    }

    fn observers(&self) -> Vec<Arc<dyn CatalogObserver>> {
        self.observers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn update_index(
        &self,
        products: Vec<Arc<CatalogProduct>>,
        deleted: Vec<String>,
    ) -> Result<(), CatalogError> {
        let index = Arc::clone(&self.index);
        tokio::task::spawn_blocking(move || index.apply(&products, &deleted)).await??;
        Ok(())
    }

    /// Product `id`.
    pub fn get(&self, id: &str) -> Option<Arc<CatalogProduct>> {
        let memory = self.products.read().unwrap_or_else(|e| e.into_inner());
        memory.by_id.get(id).cloned()
    }

    /// Products in the catalog.
    pub fn len(&self) -> usize {
        let memory = self.products.read().unwrap_or_else(|e| e.into_inner());
        memory.by_id.len()
    }

    /// Whether the catalog has no product.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds an event of `weight` (a click, a purchase...) at `now` (Unix seconds, see
    /// [`unix_now`]) to product `product_id`'s popularity, which decays with
    /// `catalog.popularity_half_life_s` and re-ranks search results. Unknown products are
    /// ignored.
    pub fn record_popularity(&self, product_id: &str, weight: f64, now: f64) {
        let key = product_key(product_id);
        let known = {
            let memory = self.products.read().unwrap_or_else(|e| e.into_inner());
            memory.by_key.contains_key(&key)
        };
        if known && weight.is_finite() {
            let half_life = self.settings.popularity_half_life_s;
            let mut popularity = self.popularity.write().unwrap_or_else(|e| e.into_inner());
            popularity
                .entry(key)
                .or_default()
                .record(weight, now, half_life);
        }
    }

    /// Product `product_id`'s popularity at `now` (Unix seconds).
    pub fn popularity(&self, product_id: &str, now: f64) -> f64 {
        let popularity = self.popularity.read().unwrap_or_else(|e| e.into_inner());
        popularity
            .get(&product_key(product_id))
            .map_or(0.0, |p| p.at(now, self.settings.popularity_half_life_s))
    }

    /// The page size of `request`, checked against `catalog.max_limit`.
    fn limit(&self, request: &ListRequest) -> Result<usize, FieldError> {
        let max = self.settings.max_limit;
        match request.limit {
            None => Ok(self.settings.default_limit),
            Some(limit) if (1..=max).contains(&limit) => Ok(limit),
            Some(limit) => Err(invalid("limit", format!("{limit} is not in 1..={max}"))),
        }
    }

    /// A page of products: search results ranked by text and popularity when `q` is given,
    /// else the catalog in id order; filtered by category; with facet counts.
    pub fn list(&self, request: &ListRequest, now: f64) -> Result<Page, CatalogError> {
        let limit = self.limit(request)?;
        let cursor = request.cursor.as_deref().map(Cursor::decode).transpose()?;
        let category = request
            .category
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(model::normalize_category);
        let q = request
            .q
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty());
        match q {
            Some(q) => self.search(q, category.as_deref(), limit, cursor, now),
            None => self.browse(category.as_deref(), limit, cursor),
        }
    }

    fn search(
        &self,
        q: &str,
        category: Option<&str>,
        limit: usize,
        cursor: Option<Cursor>,
        now: f64,
    ) -> Result<Page, CatalogError> {
        let offset = match cursor {
            None => 0,
            Some(Cursor::Offset(n)) if n <= self.settings.max_offset => n,
            Some(Cursor::Offset(_)) => {
                return Err(invalid("cursor", "past catalog.max_offset; refine the query").into());
            }
            Some(Cursor::After(_)) => {
                return Err(invalid("cursor", "belongs to a listing without q").into());
            }
        };
        let popularity = Arc::clone(&self.popularity);
        let (half_life, weight) = (
            self.settings.popularity_half_life_s,
            self.settings.popularity_weight,
        );
        let score: ScoreFn = Arc::new(move |key, text_score| {
            let popular = popularity
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&key)
                .map_or(0.0, |p| p.at(now, half_life));
            blend(text_score, popular, weight)
        });
        let hits = self.index.search(Some(q), category, offset, limit, score)?;
        let memory = self.products.read().unwrap_or_else(|e| e.into_inner());
        let products = hits
            .keys
            .iter()
            .filter_map(|key| memory.by_key.get(key))
            .map(|p| (**p).clone())
            .collect();
        let end = offset + limit;
        Ok(Page {
            products,
            total: hits.total,
            next_cursor: (end < hits.total as usize && end <= self.settings.max_offset)
                .then(|| Cursor::Offset(end).encode()),
            facets: Facets {
                category: hits.categories,
                brand: hits.brands,
            },
        })
    }

    fn browse(
        &self,
        category: Option<&str>,
        limit: usize,
        cursor: Option<Cursor>,
    ) -> Result<Page, CatalogError> {
        let after = match cursor {
            None => None,
            Some(Cursor::After(id)) => Some(id),
            Some(Cursor::Offset(_)) => {
                return Err(invalid("cursor", "belongs to a search (a listing with q)").into());
            }
        };
        let counts = self
            .index
            .search(None, category, 0, 0, Arc::new(|_, score| score))?;
        let memory = self.products.read().unwrap_or_else(|e| e.into_inner());
        let start = after.as_ref().map_or(Bound::Unbounded, Bound::Excluded);
        let mut page: Vec<CatalogProduct> = memory
            .by_id
            .range::<String, _>((start, Bound::Unbounded))
            .map(|(_, p)| p)
            .filter(|p| category.is_none_or(|c| in_category(p, c)))
            .take(limit + 1)
            .map(|p| (**p).clone())
            .collect();
        let next_cursor = if page.len() > limit {
            page.truncate(limit);
            page.last().map(|p| Cursor::After(p.id.clone()).encode())
        } else {
            None
        };
        Ok(Page {
            products: page,
            total: counts.total,
            next_cursor,
            facets: Facets {
                category: counts.categories,
                brand: counts.brands,
            },
        })
    }
}

impl ProductLookup for Catalog {
    fn display(&self, id: &str) -> Option<Product> {
        self.get(id).map(|p| p.display())
    }

    fn is_empty(&self) -> bool {
        Catalog::is_empty(self)
    }
}

/// `cuecast catalog import`: parses `bytes` (JSON array or CSV), validates every row and
/// stores them in one transaction (nothing on any error). The number imported. A running
/// server indexes them at its next start.
pub async fn import_file(pool: &AnyPool, bytes: &[u8]) -> Result<usize, CatalogError> {
    let products = import::parse_file(bytes)?;
    store::upsert(pool, &products).await?;
    Ok(products.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commerce::catalog::model::tests::sample;
    use crate::store::Store;

    fn settings() -> Config {
        Config {
            max_request_bytes: 1 << 20,
            max_batch: 100,
            default_limit: 2,
            max_limit: 10,
            max_offset: 100,
            popularity_half_life_s: 3600.0,
            popularity_weight: 1.0,
        }
    }

    fn product(id: &str, title: &str, category: &str) -> CatalogProduct {
        CatalogProduct {
            title: title.into(),
            brand: None,
            category: Some(category.into()),
            ..sample(id)
        }
    }

    async fn catalog(store: &Store) -> Arc<Catalog> {
        let catalog = Catalog::open(store.pool().clone(), settings())
            .await
            .unwrap();
        catalog
            .upsert(vec![
                product("a", "Rose perfume", "beauty > fragrance"),
                product("b", "Rose soap", "beauty > skin"),
                product("c", "Rose tea", "grocery > tea"),
                product("d", "Green tea", "grocery > tea"),
            ])
            .await
            .unwrap();
        catalog
    }

    fn request(q: Option<&str>, category: Option<&str>, cursor: Option<String>) -> ListRequest {
        ListRequest {
            q: q.map(Into::into),
            category: category.map(Into::into),
            limit: None,
            cursor,
        }
    }

    #[tokio::test]
    async fn browse_pages_by_id_with_a_cursor_and_a_category() {
        let store = Store::in_memory().await.unwrap();
        let catalog = catalog(&store).await;
        let first = catalog.list(&request(None, None, None), 0.0).unwrap();
        assert_eq!(first.total, 4);
        let ids: Vec<&str> = first.products.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        let second = catalog
            .list(&request(None, None, first.next_cursor), 0.0)
            .unwrap();
        let ids: Vec<&str> = second.products.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["c", "d"]);
        assert_eq!(second.next_cursor, None);
        let beauty = catalog
            .list(&request(None, Some("beauty"), None), 0.0)
            .unwrap();
        assert_eq!(beauty.total, 2);
        assert_eq!(beauty.facets.category.len(), 2);
        let tea = catalog
            .list(&request(None, Some("grocery>tea"), None), 0.0)
            .unwrap();
        let ids: Vec<&str> = tea.products.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["c", "d"]);
    }

    #[tokio::test]
    async fn search_pages_and_popularity_reranks() {
        let store = Store::in_memory().await.unwrap();
        let catalog = catalog(&store).await;
        let now = 10_000.0;
        let first = catalog
            .list(&request(Some("rose"), None, None), now)
            .unwrap();
        assert_eq!(first.total, 3);
        assert_eq!(first.products.len(), 2);
        let second = catalog
            .list(&request(Some("rose"), None, first.next_cursor.clone()), now)
            .unwrap();
        assert_eq!(second.products.len(), 1);
        assert_eq!(second.next_cursor, None);
        let mut seen: Vec<String> = first
            .products
            .iter()
            .chain(&second.products)
            .map(|p| p.id.clone())
            .collect();
        seen.sort();
        assert_eq!(seen, ["a", "b", "c"]);
        // The least-ranked one becomes popular and comes first.
        let last = second.products[0].id.clone();
        for _ in 0..20 {
            catalog.record_popularity(&last, 1.0, now);
        }
        assert!((catalog.popularity(&last, now + 3600.0) - 10.0).abs() < 1e-6);
        let reranked = catalog
            .list(&request(Some("rose"), None, None), now)
            .unwrap();
        assert_eq!(reranked.products[0].id, last);
        catalog.record_popularity("unknown", 5.0, now);
        assert_eq!(catalog.popularity("unknown", now), 0.0);
    }

    #[tokio::test]
    async fn bad_requests_name_the_field() {
        let store = Store::in_memory().await.unwrap();
        let catalog = catalog(&store).await;
        let field = |r: ListRequest| match catalog.list(&r, 0.0).unwrap_err() {
            CatalogError::Invalid(e) => e.field,
            other => panic!("{other}"),
        };
        assert_eq!(
            field(ListRequest {
                limit: Some(11),
                ..request(None, None, None)
            }),
            "limit"
        );
        assert_eq!(
            field(ListRequest {
                limit: Some(0),
                ..request(None, None, None)
            }),
            "limit"
        );
        assert_eq!(field(request(None, None, Some("zz".into()))), "cursor");
        let search_cursor = Cursor::Offset(2).encode();
        assert_eq!(field(request(None, None, Some(search_cursor))), "cursor");
        let too_deep = Cursor::Offset(101).encode();
        assert_eq!(field(request(Some("rose"), None, Some(too_deep))), "cursor");
        let too_many = (0..101).map(|i| sample(&format!("p{i}"))).collect();
        assert!(matches!(
            catalog.upsert(too_many).await,
            Err(CatalogError::TooMany { count: 101, .. })
        ));
    }

    #[tokio::test]
    async fn delete_lookup_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let catalog = catalog(&store).await;
        let card = catalog.display("a").unwrap();
        assert_eq!(card.title.as_deref(), Some("Rose perfume"));
        assert!(catalog.delete("a").await.unwrap());
        assert!(!catalog.delete("a").await.unwrap());
        assert!(catalog.display("a").is_none());
        assert_eq!(
            catalog
                .list(&request(Some("perfume"), None, None), 0.0)
                .unwrap()
                .total,
            0
        );
        let imported = import_file(
            store.pool(),
            b"id,title,price,currency\ne,Earl Grey,4.50,GBP\n",
        )
        .await
        .unwrap();
        assert_eq!(imported, 1);
        assert!(
            import_file(
                store.pool(),
                b"id,title,price,currency\nf,F,1,GBP\ng,G,x,GBP\n"
            )
            .await
            .is_err()
        );
        store.close().await;
        let store = Store::open(dir.path()).await.unwrap();
        let reopened = Catalog::open(store.pool().clone(), settings())
            .await
            .unwrap();
        assert_eq!(reopened.len(), 4, "b, c, d and the imported e; not f");
        assert!(reopened.get("f").is_none());
        assert_eq!(
            reopened
                .list(&request(Some("earl gery"), None, None), 0.0)
                .unwrap()
                .total,
            1
        );
    }
}
