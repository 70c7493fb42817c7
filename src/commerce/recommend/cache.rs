//! The answer cache: each recommendation answer kept as the JSON bytes the API sends, per
//! (route, caller, parameters), stamped with the versions of the model parts it was computed
//! from, so a repeated query costs a hash lookup and a [`Bytes`] clone.
//!
//! Pure (time is passed in, no I/O). The parts ([`Part`]) are versioned separately: a new
//! order bumps [`Part::Together`] only, so a cached related list stays until the related lists'
//! background refresh bumps [`Part::Related`]. An answer that moves with time (upcoming shows,
//! a show's products) is [`Depends::timed`] and lives `lag` seconds at most. Any answer younger
//! than `lag` is served even if a part it depends on changed since (so a stream of orders does
//! not recompute a hot list per order); `lag` bounds how far an answer trails the models. The
//! exception: parts that change at most a few times a second ([`Part::Trending`], the
//! background-built rankings) can be depended on at once ([`Depends::at_once`]), so an answer
//! from them is stale the moment they change, whatever its age.
//!
//! Memory is bounded: the entries' bytes (body, key and bookkeeping) stay within the cap; a
//! shard over its share evicts its least recently used quarter. Keys are hashed with a random
//! key (clients choose them), a shard per hash so concurrent readers rarely share a lock.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

/// Shards of the cache (a power of two).
const SHARDS: usize = 16;
/// Bytes counted per entry besides its body and key (the slot, the map's share).
const ENTRY_OVERHEAD: usize = std::mem::size_of::<Slot>() + 16;

/// The route an answer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `GET /api/recommendations/bought-together`.
    BoughtTogether,
    /// `GET /api/recommendations/related`.
    Related,
    /// `GET /api/recommendations/trending`.
    Trending,
    /// `GET /api/recommendations/for-you`.
    ForYou,
    /// `GET /api/recommendations/upcoming-shows`.
    UpcomingShows,
    /// `GET /api/shows/{id}/products`.
    ShowProducts,
}

/// A versioned part of the models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Co-purchases (bumped by each batch of events holding an order line).
    Together = 0,
    /// Related lists (bumped by their background refresh when co-views changed).
    Related = 1,
    /// The catalog (display fields, which products are listed, content similarity).
    Catalog = 2,
    /// The fitted for-you model (bumped by each refit).
    ForYou = 3,
    /// The trending rankings (bumped by each background rebuild, at most every 0.25 s).
    Trending = 4,
}

const PARTS: usize = 5;

/// The bit of each of `parts`.
const fn mask(parts: &[Part]) -> u8 {
    let mut mask = 0;
    let mut i = 0;
    while i < parts.len() {
        mask |= 1 << parts[i] as u8;
        i += 1;
    }
    mask
}

/// The parts an answer was computed from, and whether it moves with time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Depends {
    parts: u8,
    /// Those of `parts` whose change makes the answer stale at once (not after `lag`).
    at_once: u8,
    timed: bool,
}

impl Depends {
    /// An answer that only changes when one of `parts` does.
    pub const fn on(parts: &[Part]) -> Depends {
        Depends {
            parts: mask(parts),
            at_once: 0,
            timed: false,
        }
    }

    /// The same, also depending on `parts`, and stale as soon as one of them changes, even
    /// younger than `lag` (for parts that change a few times a second at most). Like a timed
    /// answer, an answer made stale so is served while one request recomputes it.
    pub const fn at_once(self, parts: &[Part]) -> Depends {
        Depends {
            parts: self.parts | mask(parts),
            at_once: self.at_once | mask(parts),
            timed: self.timed,
        }
    }

    /// An answer that moves with time: valid for `lag` seconds whatever changes.
    pub const fn timed() -> Depends {
        Depends {
            parts: 0,
            at_once: 0,
            timed: true,
        }
    }

    /// Whether an expired answer may be served while one request recomputes it.
    fn served_stale(&self) -> bool {
        self.timed || self.at_once != 0
    }

    /// Whether it moves with time.
    pub fn is_timed(&self) -> bool {
        self.timed
    }
}

/// The versions of every part when an answer's computation started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamp([u64; PARTS]);

impl Stamp {
    /// Whether `self` and `other` agree on every part of `mask`.
    fn agrees(&self, other: &Stamp, mask: u8) -> bool {
        (0..PARTS).all(|i| mask & (1 << i) == 0 || self.0[i] == other.0[i])
    }
}

/// The current version of each part.
#[derive(Debug, Default)]
pub struct Versions([AtomicU64; PARTS]);

impl Versions {
    /// Marks `part` changed: answers computed from it before are stale.
    pub fn bump(&self, part: Part) {
        self.0[part as usize].fetch_add(1, Ordering::AcqRel);
    }

    /// The versions now (take it before computing an answer from the models).
    pub fn stamp(&self) -> Stamp {
        Stamp(std::array::from_fn(|i| self.0[i].load(Ordering::Acquire)))
    }
}

/// How an entry's parameters are spelled: the query string as sent (what a repeated request
/// finds without parsing anything) or normalized (defaults filled in, trimmed; what differently
/// spelled requests for the same answer share).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Spelling {
    /// The raw query string (or path segment).
    Raw,
    /// The parameters after checking, defaults filled in.
    Normalized,
}

/// Who asks, as far as the answer depends on it (personal routes only; the rest use
/// [`Who::Anyone`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Who<'a> {
    /// Public routes, and anonymous callers of personal ones.
    Anyone,
    /// The admin token.
    Admin,
    /// A login token: its user, and whether it may read other shoppers' lists (`shop`).
    User(&'a str, bool),
    /// The shopper a normalized personal answer is for (`None`: anonymous).
    Shopper(Option<&'a str>),
}

/// The key of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key<'a> {
    /// The route.
    pub route: Route,
    /// How `params` is spelled.
    pub spelling: Spelling,
    /// Who asks.
    pub who: Who<'a>,
    /// The parameters.
    pub params: &'a str,
}

/// The owned form of [`Key::who`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum OwnedWho {
    Anyone,
    Admin,
    User(Box<str>, bool),
    Shopper(Option<Box<str>>),
}

impl OwnedWho {
    fn of(who: Who<'_>) -> OwnedWho {
        match who {
            Who::Anyone => OwnedWho::Anyone,
            Who::Admin => OwnedWho::Admin,
            Who::User(user, shop) => OwnedWho::User(user.into(), shop),
            Who::Shopper(user) => OwnedWho::Shopper(user.map(Into::into)),
        }
    }

    fn is(&self, who: Who<'_>) -> bool {
        match (self, who) {
            (OwnedWho::Anyone, Who::Anyone) | (OwnedWho::Admin, Who::Admin) => true,
            (OwnedWho::User(a, s), Who::User(b, t)) => **a == *b && *s == t,
            (OwnedWho::Shopper(a), Who::Shopper(b)) => a.as_deref() == b,
            _ => false,
        }
    }

    fn len(&self) -> usize {
        match self {
            OwnedWho::User(user, _) | OwnedWho::Shopper(Some(user)) => user.len(),
            _ => 0,
        }
    }
}

/// A cached answer: its body, the versions it was computed from and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Cached {
    /// The JSON the API sends.
    pub body: Bytes,
    /// The versions when its computation started.
    pub stamp: Stamp,
    /// What it depends on.
    pub depends: Depends,
    /// When it was computed (Unix seconds).
    pub at: f64,
}

#[derive(Debug)]
struct Slot {
    route: Route,
    spelling: Spelling,
    who: OwnedWho,
    params: Box<str>,
    answer: Cached,
    /// The shard's tick when it was last read or written.
    used: u64,
    /// When a request found this timed answer expired and went to recompute it (Unix
    /// seconds): until it stores the new one, others get this one (see [`STALE_GRACE`]).
    refreshing_since: Option<f64>,
}

/// How long after its lag an expired timed answer (upcoming shows, a show's products), or after
/// its at-once part changed an answer depending on one (trending), is still served while one
/// request recomputes it: the others would otherwise all recompute
/// the same answer at once and queue behind each other (trending recomputed per request made
/// p99 392 ms under 200 concurrent requests). The one stale-while-recompute mechanism of the
/// recommendations: the trending rankings an answer reads are rebuilt in the background and
/// never by a request. A recompute that never stores (an error) is retried after it.
pub const STALE_GRACE: f64 = 1.0;

impl Slot {
    fn is(&self, key: &Key<'_>) -> bool {
        self.route == key.route
            && self.spelling == key.spelling
            && *self.params == *key.params
            && self.who.is(key.who)
    }

    fn bytes(&self) -> usize {
        ENTRY_OVERHEAD + self.params.len() + self.who.len() + self.answer.body.len()
    }
}

/// Hashes a `u64` that is already a keyed hash (the map's keys) as itself.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Debug, Default)]
struct Shard {
    map: HashMap<u64, Slot, BuildHasherDefault<Prehashed>>,
    bytes: usize,
    tick: u64,
}

impl Shard {
    /// Drops the least recently used entries until the shard holds `target` bytes or less.
    fn evict_to(&mut self, target: usize) -> usize {
        let mut ages: Vec<(u64, u64)> = self.map.iter().map(|(h, s)| (s.used, *h)).collect();
        ages.sort_unstable();
        let mut evicted = 0;
        for (_, hash) in ages {
            if self.bytes <= target {
                break;
            }
            if let Some(slot) = self.map.remove(&hash) {
                self.bytes -= slot.bytes();
                evicted += 1;
            }
        }
        evicted
    }
}

/// Counters of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Lookups that found a valid answer.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Entries dropped to stay within the cap.
    pub evictions: u64,
    /// Entries held now.
    pub entries: usize,
    /// Bytes counted now (bodies, keys, bookkeeping).
    pub bytes: usize,
}

impl Stats {
    /// Prometheus text: `cuecast_recommend_cache_*`.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let lines: [(&str, &str, &str, u64); 5] = [
            (
                "cuecast_recommend_cache_hits_total",
                "counter",
                "Answer cache lookups that found a valid answer (raw or normalized spelling).",
                self.hits,
            ),
            (
                "cuecast_recommend_cache_misses_total",
                "counter",
                "Answer cache lookups that found none (raw or normalized spelling).",
                self.misses,
            ),
            (
                "cuecast_recommend_cache_evictions_total",
                "counter",
                "Answers dropped to stay within recommend.answer_cache_bytes.",
                self.evictions,
            ),
            (
                "cuecast_recommend_cache_entries",
                "gauge",
                "Answers cached now.",
                self.entries as u64,
            ),
            (
                "cuecast_recommend_cache_bytes",
                "gauge",
                "Bytes of the cached answers (bodies, keys, bookkeeping).",
                self.bytes as u64,
            ),
        ];
        for (name, kind, help, value) in lines {
            text.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        }
        text
    }
}

/// The answer cache (see the module docs).
#[derive(Debug)]
pub struct AnswerCache {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    /// Bytes each shard may hold (0: the cache is off).
    shard_cap: usize,
    /// Seconds an answer is served whatever changed.
    lag: f64,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

impl AnswerCache {
    /// A cache of at most `cap_bytes` (0: off) whose answers trail the models by at most
    /// `lag` seconds.
    pub fn new(cap_bytes: usize, lag: f64) -> AnswerCache {
        AnswerCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            shard_cap: cap_bytes / SHARDS,
            lag,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: &Key<'_>) -> (u64, &Mutex<Shard>) {
        let hash = self.hasher.hash_one(key);
        (hash, &self.shards[(hash >> 60) as usize % SHARDS])
    }

    /// The answer under `key`, if it is still valid at `now` for the models at `current`:
    /// younger than `lag`, or (when it does not move with time) computed from the same
    /// versions of the parts it depends on. Allocates nothing.
    pub fn get(&self, key: &Key<'_>, current: &Stamp, now: f64) -> Option<Cached> {
        if self.shard_cap == 0 {
            return None;
        }
        let (hash, shard) = self.shard(key);
        let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        shard.tick += 1;
        let tick = shard.tick;
        let found = shard.map.get_mut(&hash).filter(|slot| slot.is(key));
        let valid = found.and_then(|slot| {
            let answer = &slot.answer;
            let age = now - answer.at;
            let depends = answer.depends;
            let fresh =
                (0.0..self.lag).contains(&age) && answer.stamp.agrees(current, depends.at_once);
            let same = !depends.timed && answer.stamp.agrees(current, depends.parts);
            // An expired answer another request is recomputing right now.
            let refreshing = depends.served_stale()
                && (0.0..self.lag + STALE_GRACE).contains(&age)
                && slot
                    .refreshing_since
                    .is_some_and(|since| (0.0..STALE_GRACE).contains(&(now - since)));
            if fresh || same || refreshing {
                slot.used = tick;
                Some(answer.clone())
            } else {
                if depends.served_stale() {
                    // This request recomputes it; the next ones get this one meanwhile.
                    slot.refreshing_since = Some(now);
                }
                None
            }
        });
        let counter = if valid.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        valid
    }

    /// Keeps `answer` under `key` (replacing what the key or a colliding one held), evicting
    /// the least recently used entries of its shard when over the cap.
    pub fn insert(&self, key: &Key<'_>, answer: Cached) {
        let slot = Slot {
            route: key.route,
            spelling: key.spelling,
            who: OwnedWho::of(key.who),
            params: key.params.into(),
            answer,
            used: 0,
            refreshing_since: None,
        };
        let size = slot.bytes();
        if size > self.shard_cap {
            return;
        }
        let (hash, shard) = self.shard(key);
        let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        shard.tick += 1;
        let slot = Slot {
            used: shard.tick,
            ..slot
        };
        if let Some(old) = shard.map.insert(hash, slot) {
            shard.bytes -= old.bytes();
        }
        shard.bytes += size;
        if shard.bytes > self.shard_cap {
            let evicted = shard.evict_to(self.shard_cap / 4 * 3);
            self.evictions.fetch_add(evicted as u64, Ordering::Relaxed);
        }
    }

    /// The counters and the size now.
    pub fn stats(&self) -> Stats {
        let (entries, bytes) = self.shards.iter().fold((0, 0), |(n, b), shard| {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            (n + shard.map.len(), b + shard.bytes)
        });
        Stats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            entries,
            bytes,
        }
    }

    /// The most bytes it holds.
    pub fn cap(&self) -> usize {
        self.shard_cap * SHARDS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOGETHER: Depends = Depends::on(&[Part::Together, Part::Catalog]);
    const RELATED: Depends = Depends::on(&[Part::Related, Part::Catalog]);

    fn key(params: &str) -> Key<'_> {
        Key {
            route: Route::Related,
            spelling: Spelling::Raw,
            who: Who::Anyone,
            params,
        }
    }

    fn answer(body: &str, stamp: Stamp, depends: Depends, at: f64) -> Cached {
        Cached {
            body: Bytes::copy_from_slice(body.as_bytes()),
            stamp,
            depends,
            at,
        }
    }

    #[test]
    fn an_answer_stays_until_a_part_it_depends_on_changes_and_lag_passes() {
        let versions = Versions::default();
        let cache = AnswerCache::new(1 << 20, 0.25);
        cache.insert(&key("a"), answer("[1]", versions.stamp(), RELATED, 100.0));
        let got = |now| cache.get(&key("a"), &versions.stamp(), now).map(|c| c.body);
        assert_eq!(got(100.1), Some(Bytes::from_static(b"[1]")));
        assert_eq!(got(5000.0), Some(Bytes::from_static(b"[1]")));
        // An order changes bought-together, not related lists.
        versions.bump(Part::Together);
        assert_eq!(got(5000.0), Some(Bytes::from_static(b"[1]")));
        // The related refresh: stale once older than the lag.
        versions.bump(Part::Related);
        assert_eq!(got(100.2), Some(Bytes::from_static(b"[1]")));
        assert_eq!(got(100.3), None);
        // Another key, another route, another caller: not this answer.
        cache.insert(&key("b"), answer("[2]", versions.stamp(), TOGETHER, 100.0));
        let other = Key {
            route: Route::BoughtTogether,
            ..key("b")
        };
        assert_eq!(cache.get(&other, &versions.stamp(), 100.0), None);
        let other = Key {
            who: Who::User("ann", false),
            ..key("b")
        };
        assert_eq!(cache.get(&other, &versions.stamp(), 100.0), None);
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (4, 3, 2));
    }

    #[test]
    fn a_timed_answer_lives_lag_seconds() {
        let versions = Versions::default();
        let cache = AnswerCache::new(1 << 20, 0.25);
        cache.insert(
            &key("t"),
            answer("[]", versions.stamp(), Depends::timed(), 10.0),
        );
        assert!(cache.get(&key("t"), &versions.stamp(), 10.2).is_some());
        assert!(cache.get(&key("t"), &versions.stamp(), 10.25).is_none());
        // A clock that went back does not make it fresh forever.
        assert!(cache.get(&key("t"), &versions.stamp(), 9.0).is_none());
    }

    #[test]
    fn an_expired_timed_answer_is_recomputed_by_one_request_while_the_others_get_it() {
        let versions = Versions::default();
        let cache = AnswerCache::new(1 << 20, 0.25);
        let get = |now| cache.get(&key("t"), &versions.stamp(), now).map(|c| c.body);
        cache.insert(
            &key("t"),
            answer("[1]", versions.stamp(), Depends::timed(), 10.0),
        );
        // The first request after the lag recomputes; the ones during its recompute get the
        // expired answer instead of recomputing too.
        assert_eq!(get(10.3), None);
        assert_eq!(get(10.4), Some(Bytes::from_static(b"[1]")));
        assert_eq!(get(10.9), Some(Bytes::from_static(b"[1]")));
        // Its new answer replaces it for everyone.
        cache.insert(
            &key("t"),
            answer("[2]", versions.stamp(), Depends::timed(), 10.9),
        );
        assert_eq!(get(11.0), Some(Bytes::from_static(b"[2]")));
        // A recompute that never stores (an error): after the grace another request retries,
        // and an answer older than its lag plus the grace is never served.
        assert_eq!(get(11.2), None);
        assert_eq!(get(11.3), Some(Bytes::from_static(b"[2]")));
        assert_eq!(get(12.3), None);
        assert_eq!(get(12.4), None, "older than lag + grace");
        // Answers that wait for a model change are not served stale.
        cache.insert(&key("r"), answer("[r]", versions.stamp(), RELATED, 10.0));
        versions.bump(Part::Related);
        let related = |now| cache.get(&key("r"), &versions.stamp(), now);
        assert!(related(10.5).is_none());
        assert!(related(10.6).is_none());
    }

    #[test]
    fn an_answer_on_a_part_at_once_is_stale_when_it_changes_whatever_its_age() {
        let versions = Versions::default();
        let cache = AnswerCache::new(1 << 20, 0.25);
        let trending = Depends::on(&[Part::Catalog]).at_once(&[Part::Trending]);
        let get = |now| cache.get(&key("t"), &versions.stamp(), now).map(|c| c.body);
        cache.insert(&key("t"), answer("[1]", versions.stamp(), trending, 10.0));
        // Unchanged: served long after the lag (it is not timed).
        assert_eq!(get(50.0), Some(Bytes::from_static(b"[1]")));
        // A catalog change waits for the lag, as for any answer.
        versions.bump(Part::Catalog);
        cache.insert(&key("t"), answer("[2]", versions.stamp(), trending, 60.0));
        versions.bump(Part::Catalog);
        assert_eq!(get(60.1), Some(Bytes::from_static(b"[2]")));
        // A rebuild of the rankings: stale at once, younger than the lag. The first request
        // recomputes; the others get it meanwhile, until the new one is stored.
        cache.insert(&key("t"), answer("[3]", versions.stamp(), trending, 70.0));
        versions.bump(Part::Trending);
        assert_eq!(get(70.05), None);
        assert_eq!(get(70.06), Some(Bytes::from_static(b"[3]")));
        cache.insert(&key("t"), answer("[4]", versions.stamp(), trending, 70.07));
        assert_eq!(get(70.08), Some(Bytes::from_static(b"[4]")));
        // Answers without at-once parts keep the lag whatever changed.
        cache.insert(&key("r"), answer("[r]", versions.stamp(), RELATED, 80.0));
        versions.bump(Part::Related);
        versions.bump(Part::Trending);
        assert!(cache.get(&key("r"), &versions.stamp(), 80.1).is_some());
    }

    #[test]
    fn it_stays_within_its_cap_evicting_the_least_recently_used() {
        let versions = Versions::default();
        let cap = 64 * 1024;
        let cache = AnswerCache::new(cap, 0.25);
        let body = "x".repeat(500);
        let names: Vec<String> = (0..2000).map(|i| format!("p{i}")).collect();
        for (i, name) in names.iter().enumerate() {
            cache.insert(&key(name), answer(&body, versions.stamp(), RELATED, 0.0));
            // p0 is read after every insert: it stays.
            assert!(
                cache.get(&key("p0"), &versions.stamp(), 1.0).is_some(),
                "p0 evicted after {i}"
            );
            assert!(cache.stats().bytes <= cap);
        }
        let stats = cache.stats();
        assert!(stats.evictions > 1000, "{stats:?}");
        assert!(stats.entries < 2000 && stats.entries > 50, "{stats:?}");
        // The oldest unread ones went.
        assert!(cache.get(&key("p1"), &versions.stamp(), 1.0).is_none());
        // An answer larger than a shard's share is not kept.
        let huge = "y".repeat(cap);
        cache.insert(&key("huge"), answer(&huge, versions.stamp(), RELATED, 0.0));
        assert!(cache.get(&key("huge"), &versions.stamp(), 1.0).is_none());
    }

    #[test]
    fn a_cap_of_zero_turns_it_off() {
        let versions = Versions::default();
        let cache = AnswerCache::new(0, 0.25);
        cache.insert(&key("a"), answer("[]", versions.stamp(), RELATED, 0.0));
        assert!(cache.get(&key("a"), &versions.stamp(), 0.0).is_none());
        assert_eq!(cache.stats().entries, 0);
    }
}
