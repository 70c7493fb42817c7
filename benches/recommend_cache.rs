//! The answer cache's hit path (criterion): what a repeated recommendation request costs the
//! server once axum has parsed it — the cache lookup of its raw query string and the clone of
//! the cached JSON bytes — with 20,000 answers of 1.5 kB cached (the Instacart sample's
//! related and bought-together answers of one product each, roughly), and beside it in the same
//! run:
//! - floor: a `HashMap<String, Bytes>` get by `&str` and a clone (the least a keyed lookup of
//!   shared bytes costs; no versions, no LRU, no lock);
//! - the miss bookkeeping: an insert (the key copied, the LRU tick, eviction amortized);
//! - 4 threads hitting the same cache at once (wall time per lookup: the shard locks under
//!   contention).
//!
//! `cargo bench --bench recommend_cache`; `cargo test --benches` runs each once.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_main};
use cuecast::commerce::recommend::cache::{
    AnswerCache, Cached, Depends, Key, Part, Route, Spelling, Versions, Who,
};

const ANSWERS: usize = 20_000;
const BODY: usize = 1500;
const DEPENDS: Depends = Depends::on(&[Part::Related, Part::Catalog]);

fn query(i: usize) -> String {
    format!("product={}&limit=10", 10_000 + i)
}

fn key(params: &str) -> Key<'_> {
    Key {
        route: Route::Related,
        spelling: Spelling::Raw,
        who: Who::Anyone,
        params,
    }
}

fn bench(c: &mut Criterion) {
    let versions = Versions::default();
    let cache = Arc::new(AnswerCache::new(256 << 20, 0.25));
    let body = Bytes::from(vec![b'x'; BODY]);
    let queries: Vec<String> = (0..ANSWERS).map(query).collect();
    let mut floor: HashMap<String, Bytes> = HashMap::new();
    for q in &queries {
        let answer = Cached {
            body: body.clone(),
            stamp: versions.stamp(),
            depends: DEPENDS,
            at: 0.0,
        };
        cache.insert(&key(q), answer);
        floor.insert(q.clone(), body.clone());
    }
    let now = 1000.0;
    let mut i = 0usize;
    c.bench_function("hit: cache lookup + Bytes clone (20k answers)", |b| {
        b.iter(|| {
            i = (i + 7919) % ANSWERS;
            let found = cache.get(&key(&queries[i]), &versions.stamp(), now);
            black_box(found.map(|c| c.body))
        })
    });
    c.bench_function("floor: HashMap<String, Bytes> get + clone", |b| {
        b.iter(|| {
            i = (i + 7919) % ANSWERS;
            black_box(floor.get(queries[i].as_str()).cloned())
        })
    });
    let fresh: Vec<String> = (ANSWERS..2 * ANSWERS).map(query).collect();
    c.bench_function("miss bookkeeping: insert (key copied, LRU)", |b| {
        b.iter(|| {
            i = (i + 7919) % ANSWERS;
            let answer = Cached {
                body: body.clone(),
                stamp: versions.stamp(),
                depends: DEPENDS,
                at: now,
            };
            cache.insert(&key(&fresh[i]), answer);
        })
    });
    c.bench_function("hit: 4 threads at once (wall time per lookup)", |b| {
        b.iter_custom(|iters| {
            let per_thread = iters.div_ceil(4);
            let started = std::time::Instant::now();
            std::thread::scope(|scope| {
                for t in 0..4 {
                    let cache = &cache;
                    let queries = &queries;
                    let versions = &versions;
                    scope.spawn(move || {
                        let mut j = t * 1000;
                        for _ in 0..per_thread {
                            j = (j + 7919) % ANSWERS;
                            let found = cache.get(&key(&queries[j]), &versions.stamp(), now);
                            black_box(found.map(|c| c.body));
                        }
                    });
                }
            });
            started.elapsed()
        })
    });
}

/// criterion's entry points, private so the generated `benches` function needs no docs.
mod harness {
    use criterion::criterion_group;
    criterion_group!(benches, super::bench);
}
criterion_main!(harness::benches);
