//! The pure recommenders' query and update costs (criterion), on synthetic data the size of the
//! Instacart sample (14,000 products in 21 departments × 134 aisles, 15,000 orders of ~10
//! lines with a skewed product popularity, 150,000 page clicks by 600 shoppers):
//! - bought-together: one product (every partner scored, and from its kept list), a cart of
//!   three; a purchase line recorded (and the lists it changes);
//! - related: co-view neighbours + content similarity of one product; a click recorded;
//! - trending: the top 10 of every product, one category; an event recorded; the rebuild of
//!   every ranking (3 windows, overall, per department and per aisle) when every product trends
//!   (150,000 lines in the last 10 minutes, as after the HTTP bench's load) and the top 10 of
//!   one department read from it (what a query does now);
//! - upcoming shows: 50 scheduled shows ranked for a shopper.
//!
//! `cargo bench --bench recommend`; `cargo test --benches` runs each once.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_main};
use cuecast::commerce::recommend::content::{Content, features};
use cuecast::commerce::recommend::coview::CoViews;
use cuecast::commerce::recommend::together::CoPurchases;
use cuecast::commerce::recommend::trending::{Params, Rankings, Trending};
use cuecast::commerce::recommend::upcoming::{Candidate, Facet, Profile, Weights, rank};

const PRODUCTS: u32 = 14_000;
const ORDERS: u32 = 15_000;
const SHOPPERS: u32 = 600;
const DAY: f64 = 86_400.0;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A product, popular ones far more often (the square of a uniform draw).
    fn product(&mut self) -> u32 {
        let u = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        ((u * u) * f64::from(PRODUCTS)) as u32
    }
}

fn category(p: u32) -> String {
    format!("department {} > aisle {}", p % 21, p % 134)
}

struct Models {
    together: CoPurchases,
    /// The same orders, with each product's list (as the service keeps them: twice the
    /// largest limit, support 2+).
    listed: CoPurchases,
    coviews: CoViews,
    content: Content,
    trending: Trending,
}

fn trending_model() -> Trending {
    Trending::new(Params {
        windows: vec![3600.0, 900.0, 21_600.0],
        long: 7.0 * DAY,
        prior: 1.0,
        min_volume: 3.0,
    })
}

fn build(rng: &mut Rng) -> Models {
    let mut content = Content::default();
    content.upsert_all((0..PRODUCTS).map(|p| {
        let title = format!("brand{} line{} item {}", p % 500, p % 2000, p % 37);
        let brand = format!("brand{}", p % 500);
        (p, features(Some(&category(p)), Some(&brand), &title))
    }));
    let mut together = CoPurchases::default();
    let mut listed = CoPurchases::with_lists(200, 2);
    let mut trending = trending_model();
    for order in 0..ORDERS {
        let t = f64::from(order) / f64::from(ORDERS) * 30.0 * DAY;
        for _ in 0..10 {
            let p = rng.product();
            together.record(&format!("o{order}"), p);
            listed.record(&format!("o{order}"), p);
            trending.record(p, 10.0, t);
        }
    }
    let mut coviews = CoViews::new(1_800_000);
    for i in 0..150_000u32 {
        let who = format!("v{}", i % SHOPPERS);
        coviews.record(&who, rng.product(), i64::from(i) * 1000);
    }
    Models {
        together,
        listed,
        coviews,
        content,
        trending,
    }
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut m = build(&mut rng);
    let now = 30.0 * DAY;
    c.bench_function("bought-together: one product", |b| {
        let mut rng = Rng(7);
        b.iter(|| black_box(m.together.query(&[rng.product()], 2, 0.0, 10)))
    });
    c.bench_function("bought-together: one product, from its list", |b| {
        let mut rng = Rng(7);
        b.iter(|| black_box(m.listed.query(&[rng.product()], 2, 0.0, 10)))
    });
    c.bench_function("bought-together: a cart of three", |b| {
        let mut rng = Rng(8);
        b.iter(|| {
            let cart = [rng.product(), rng.product(), rng.product()];
            black_box(m.together.query(&cart, 2, 0.0, 10))
        })
    });
    c.bench_function("related: co-views + content of one product", |b| {
        let mut rng = Rng(9);
        b.iter(|| {
            let p = rng.product();
            black_box((m.coviews.neighbours(p), m.content.similar(p, 50)))
        })
    });
    c.bench_function("trending: top 10 of all products", |b| {
        b.iter(|| black_box(m.trending.top(0, now, 10, |_| true)))
    });
    let in_aisle: HashMap<u32, bool> = (0..PRODUCTS).map(|p| (p, p % 134 == 7)).collect();
    c.bench_function("trending: top 10 of one aisle", |b| {
        b.iter(|| black_box(m.trending.top(0, now, 10, |p| in_aisle[&p])))
    });
    // Every line of every order in the last 10 minutes: every product bought trends.
    let mut young = trending_model();
    let mut rng = Rng(12);
    for line in 0..ORDERS * 10 {
        young.record(rng.product(), 10.0, now - 600.0 + f64::from(line) * 0.004);
    }
    let names: Vec<Arc<str>> = (0..PRODUCTS).map(|p| Arc::from(format!("{p}"))).collect();
    let categories: Vec<String> = (0..PRODUCTS).map(category).collect();
    let rebuild = || {
        Rankings::build(&young, now, " > ", |p| {
            (
                Arc::clone(&names[p as usize]),
                Some(categories[p as usize].as_str()),
            )
        })
    };
    c.bench_function(
        "trending: rebuild every ranking, every product trending",
        |b| b.iter(|| black_box(rebuild())),
    );
    let rankings = rebuild();
    let department = "department 7";
    assert!(rankings.get(0, Some(department)).len() >= 10, "it trends");
    c.bench_function(
        "trending: top 10 of one department from the rankings",
        |b| b.iter(|| black_box(rankings.get(0, Some(department)).iter().take(10).count())),
    );
    let mut profile = Profile::default();
    for p in 0..40 {
        profile.add((Facet::Category, category(p * 13)), 1.0 + f64::from(p));
        profile.add((Facet::Product, format!("{p}")), 1.0);
    }
    let shows: Vec<Candidate> = (0..50)
        .map(|s| Candidate {
            show: format!("show-{s}"),
            starts_at_ms: i64::from(s) * 3_600_000,
            tastes: (0..10)
                .flat_map(|i| {
                    let p = s * 10 + i;
                    [
                        ((Facet::Product, format!("{p}")), 1.0),
                        ((Facet::Category, category(p)), 1.0),
                    ]
                })
                .collect(),
            trend: f64::from(s % 5) / 5.0,
        })
        .collect();
    let weights = Weights {
        affinity: 0.6,
        trending: 0.25,
        soon: 0.15,
        soon_half_ms: DAY * 1000.0,
    };
    c.bench_function("upcoming shows: 50 shows for a shopper", |b| {
        b.iter(|| black_box(rank(Some(&profile), &shows, 0, &weights, 10)))
    });
    let mut order = ORDERS;
    c.bench_function(
        "update: a purchase line (bought-together + trending)",
        |b| {
            let mut rng = Rng(10);
            b.iter(|| {
                order += 1;
                let p = rng.product();
                m.together.record(&format!("o{}", order / 10), p);
                m.trending.record(p, 10.0, now);
            })
        },
    );
    let mut order = ORDERS;
    c.bench_function(
        "update: a purchase line and its lists (bought-together)",
        |b| {
            let mut rng = Rng(10);
            b.iter(|| {
                order += 1;
                m.listed.record(&format!("o{}", order / 10), rng.product());
            })
        },
    );
    c.bench_function("update: a click (co-views + trending)", |b| {
        let mut rng = Rng(11);
        let mut t = 150_000_000i64;
        b.iter(|| {
            t += 1000;
            let p = rng.product();
            m.coviews.record(&format!("v{}", rng.next() % 600), p, t);
            m.trending.record(p, 1.0, now);
        })
    });
}

/// criterion's entry points, private so the generated `benches` function needs no docs.
mod harness {
    use criterion::criterion_group;
    criterion_group!(benches, super::bench);
}
criterion_main!(harness::benches);
