//! The answer cache's hit path allocates nothing: a counting allocator (this test binary's
//! global allocator) counts the allocations of a cached lookup on this thread, the work the
//! recommendation handlers do on a hit before building the response.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use cuecast::commerce::recommend::cache::{
    AnswerCache, Cached, Depends, Key, Part, Route, Spelling, Versions, Who,
};

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, counting each allocation of the calling thread.
struct Counting;

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// const-initialized thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn a_cache_hit_allocates_nothing() {
    let versions = Versions::default();
    let cache = AnswerCache::new(16 << 20, 0.25);
    let raw = "product=bread&product=butter&limit=5";
    let key = |who| Key {
        route: Route::BoughtTogether,
        spelling: Spelling::Raw,
        who,
        params: raw,
    };
    for who in [Who::Anyone, Who::User("ann", false)] {
        let body = Bytes::from(format!("{{\"items\":[],\"who\":\"{who:?}\"}}"));
        let answer = Cached {
            body,
            stamp: versions.stamp(),
            depends: Depends::on(&[Part::Together, Part::Catalog]),
            at: 100.0,
        };
        cache.insert(&key(who), answer);
    }
    // Warm (first-use initializations of the hasher and the lock are not the hit path).
    assert!(
        cache
            .get(&key(Who::Anyone), &versions.stamp(), 100.0)
            .is_some()
    );

    let before = allocations();
    let mut bodies = 0;
    for _ in 0..1000 {
        for who in [Who::Anyone, Who::User("ann", false)] {
            let hit = cache.get(&key(who), &versions.stamp(), 5000.0);
            bodies += hit.map_or(0, |c| c.body.len());
        }
    }
    let during = allocations() - before;
    assert!(bodies > 2000, "every lookup hits");
    assert_eq!(during, 0, "allocations in 2000 cache hits");

    // The counter sees this thread's allocations: an insert copies its key.
    let before = allocations();
    cache.insert(
        &key(Who::Admin),
        Cached {
            body: Bytes::from_static(b"{}"),
            stamp: versions.stamp(),
            depends: Depends::timed(),
            at: 0.0,
        },
    );
    assert!(allocations() > before, "an insert copies its key");
}
