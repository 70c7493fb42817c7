//! "For you" recommendations (criterion): `ForYou::fit` on the Instacart sample's training
//! orders (each shopper's last order held out, as `cuecast recs eval` does) when
//! `INSTACART_CSV` names df_sample.csv, else on synthetic baskets of the same shape (600
//! shoppers × 25 orders of ~10 products over 14,000 products, a personal favourites set and a
//! skewed global popularity, an order every 3–10 days); and `recommend(user, 10)` latency,
//! shoppers taken in turn, and `recommend_at(user, 10, now)`, asked at each held-out order's
//! day (synthetic: 7 days after the last order) — the time-aware re-ranking of the shopper's
//! list.
//! Beside them, same run: the peer of `fit`, TIFU-KNN (k 300) scoring every shopper (its user
//! vectors, neighbours and blended scores: what precomputing its lists would cost), and the
//! floor of `recommend`, a `HashMap` from shopper to ten product ids, looked up and cloned; and
//! the fit without its EASE part, with EASE's dense inverse alone at 1,000 and 3,000 rows (the
//! products-side cap).
//! `cargo test --benches` runs each once on a smaller synthetic set.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_main};
use std::collections::HashMap;
use std::sync::Arc;

use cuecast::commerce::recommend::basket::ease::spd_inverse;
use cuecast::commerce::recommend::basket::models::{Accumulator, TifuKnn};
use cuecast::commerce::recommend::basket::orders::Orders;
use cuecast::commerce::recommend::basket::{Baskets, ForYou, ForYouParams};

/// A small deterministic generator (xorshift64*), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Skewed towards 0: the square of a uniform draw.
    fn skewed(&mut self, n: u64) -> u64 {
        let u = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        ((u * u) * n as f64) as u64
    }
}

/// `users` shoppers with `orders` orders each, and when each is asked.
fn synthetic(users: usize, orders: usize, products: u64) -> (Baskets, Vec<(String, Option<f64>)>) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut data = Baskets::new();
    let mut ids = Vec::with_capacity(users);
    for user in 0..users {
        let id = format!("u{user}");
        let favourites: Vec<u64> = (0..15).map(|_| rng.skewed(products)).collect();
        let mut day = 0.0;
        for _ in 0..orders {
            day += (3 + rng.next() % 8) as f64;
            let size = 4 + rng.next() % 12;
            let basket: Vec<String> = (0..size)
                .map(|_| {
                    let p = if rng.next().is_multiple_of(2) {
                        favourites[(rng.next() % 15) as usize]
                    } else {
                        rng.skewed(products)
                    };
                    format!("p{p}")
                })
                .collect();
            data.push_at(&id, basket.iter().map(String::as_str), Some(day));
        }
        ids.push((id, Some(day + 7.0)));
    }
    (data, ids)
}

/// The training orders, their shoppers and when each is asked.
type Data = (Baskets, Vec<(String, Option<f64>)>, &'static str);

/// The training orders, their shoppers and when each is asked.
fn data(test_mode: bool) -> Data {
    if let Ok(path) = std::env::var("INSTACART_CSV") {
        match Orders::read_file(std::path::Path::new(&path)) {
            Ok(orders) => {
                let split = orders.split(0);
                let users = split
                    .held_out
                    .into_iter()
                    .map(|(user, _)| user)
                    .zip(split.held_out_days)
                    .collect();
                return (split.train, users, "instacart");
            }
            Err(err) => eprintln!("INSTACART_CSV: {err}; synthetic data instead"),
        }
    }
    if test_mode {
        let (data, users) = synthetic(60, 10, 2_000);
        (data, users, "synthetic-small")
    } else {
        let (data, users) = synthetic(600, 25, 14_000);
        (data, users, "synthetic")
    }
}

/// A symmetric positive definite `n × n` matrix shaped like EASE's: co-purchase counts of a
/// skewed catalogue plus λ on the diagonal.
fn spd_matrix(n: usize) -> Vec<f64> {
    let mut rng = Rng(7);
    let mut m = vec![0.0; n * n];
    for _ in 0..n * 20 {
        let basket: Vec<usize> = (0..8).map(|_| rng.skewed(n as u64) as usize).collect();
        for &i in &basket {
            for &j in &basket {
                m[i * n + j] += 1.0;
            }
        }
    }
    for i in 0..n {
        m[i * n + i] += 200.0;
    }
    m
}

fn bench(c: &mut Criterion) {
    let test_mode = !std::env::args().any(|a| a == "--bench");
    let (data, users, name) = data(test_mode);
    let params = ForYouParams::default();
    let model = ForYou::fit(&data, &params);
    eprintln!(
        "{name}: {} shoppers, {} products, {} orders; model ≈ {:.1} MB",
        data.users(),
        data.products(),
        data.baskets(),
        model.memory_bytes() as f64 / 1e6
    );
    let mut group = c.benchmark_group("foryou");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function(format!("fit/{name}"), |b| {
        b.iter(|| ForYou::fit(black_box(&data), &params))
    });
    // The same fit without the EASE part: what it costs.
    let without_ease = ForYouParams {
        ease_weight: 0.0,
        ..params.clone()
    };
    group.bench_function(format!("fit-without-ease/{name}"), |b| {
        b.iter(|| ForYou::fit(black_box(&data), &without_ease))
    });
    group.bench_function(format!("fit-peer-tifu-knn/{name}"), |b| {
        b.iter(|| {
            let model = TifuKnn::fit(black_box(&data), 0.9, 0.7, 3, 300, 0.7);
            let mut acc = Accumulator::new(data.products());
            (0..data.users())
                .map(|user| model.scores(user, &mut acc).len())
                .sum::<usize>()
        })
    });
    // EASE's dense inverse at the products-side cap (3,000: a shop with more shoppers than
    // that and more products) and at 1,000; a 20 × 20 matrix in test mode.
    for n in if test_mode {
        vec![20]
    } else {
        vec![1000, 3000]
    } {
        let matrix = spd_matrix(n);
        group.bench_function(format!("ease-spd-inverse/{n}"), |b| {
            b.iter(|| spd_inverse(black_box(matrix.clone()), n))
        });
    }
    group.finish();
    let floor: HashMap<String, Vec<Arc<str>>> = users
        .iter()
        .map(|(user, _)| {
            let items = model.recommend(user, 10).items;
            (user.clone(), items.into_iter().map(|s| s.product).collect())
        })
        .collect();
    let mut next = 0;
    c.bench_function(&format!("foryou/recommend10-floor-hashmap/{name}"), |b| {
        b.iter(|| {
            next = (next + 1) % users.len();
            black_box(floor.get(&users[next].0).cloned())
        })
    });
    c.bench_function(&format!("foryou/recommend10/{name}"), |b| {
        b.iter(|| {
            next = (next + 1) % users.len();
            black_box(model.recommend(&users[next].0, 10))
        })
    });
    c.bench_function(&format!("foryou/recommend10-at-time/{name}"), |b| {
        b.iter(|| {
            next = (next + 1) % users.len();
            let (user, now) = &users[next];
            black_box(model.recommend_at(user, 10, *now))
        })
    });
}

/// criterion's entry points, private so the generated `benches` function needs no docs.
mod harness {
    use criterion::criterion_group;
    criterion_group!(benches, super::bench);
}
criterion_main!(harness::benches);
