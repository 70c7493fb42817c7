//! The held requests of one rendition (blocking playlist reloads, preload-hinted part GETs,
//! playlists of a continued session), grouped by what they wait for.
//!
//! A publication releases the groups it satisfies and leaves the others asleep: each group is
//! one [`Notify`], so a released request is woken once, finds its outcome in one atomic load and
//! has nothing to re-check, and a request waiting for a later part is not woken at all. The hold
//! limit is one timer per group, not one per request: the requests of one target whose limits
//! fall in the same [`EXPIRY_GRANULARITY`] slice share a group and its timer, so releasing
//! 10,000 held reloads cancels a handful of timers, not 10,000.
//!
//! A reached group also carries what its members answer with ([`Group::answer`]): the first
//! member to need a response body makes it, the others clone it without a lock.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use axum::http::HeaderValue;
use bytes::Bytes;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::packager::Position;

/// Requests of one target whose hold limits fall in one slice of this length share a group and
/// its timer: a request that times out is answered at most this much after its own limit (never
/// before it).
pub const EXPIRY_GRANULARITY: Duration = Duration::from_millis(100);

/// What a held request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `_HLS_msn` (and `_HLS_part`): the playlist has that segment, or that part of it.
    Playlist {
        /// `_HLS_msn`.
        msn: u64,
        /// `_HLS_part`.
        part: Option<u32>,
    },
    /// A part GET by part number: that part is published.
    Part(u64),
    /// A continued session's playlist: some segment at or after `msn` is complete.
    CompleteAfter(u64),
}

impl Target {
    /// Whether `position` satisfies the target. A stream that ended satisfies every target (the
    /// request is answered with what there is).
    pub fn is_reached(&self, position: &Position) -> bool {
        position.ended
            || match *self {
                Target::Playlist { msn, part } => position.contains(msn, part),
                Target::Part(number) => position.has_part(number),
                Target::CompleteAfter(msn) => position.complete_up_to > msn,
            }
    }
}

/// How a hold ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A publication reached the target (or the stream ended).
    Reached,
    /// The hold limit passed first.
    Expired,
}

const WAITING: u8 = 0;
const REACHED: u8 = 1;
const EXPIRED: u8 = 2;

/// A response body shared by the members of a reached group, with its `Content-Length`.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The body.
    pub body: Bytes,
    /// Its length, as a header value.
    pub content_length: HeaderValue,
}

impl Answer {
    /// `body` and its length.
    pub fn new(body: Bytes) -> Answer {
        Answer {
            content_length: HeaderValue::from(body.len()),
            body,
        }
    }
}

/// Number of answers a group can carry (one per playlist form).
pub const ANSWER_SLOTS: usize = 4;

/// The requests held for one target until one deadline slice.
pub struct Group {
    target: Target,
    expires: Instant,
    state: AtomicU8,
    notify: Notify,
    /// The timer task that expires the group (aborted when the group is reached).
    timer: Mutex<Option<AbortHandle>>,
    answers: [OnceLock<Answer>; ANSWER_SLOTS],
}

impl Group {
    fn new(target: Target, expires: Instant) -> Group {
        Group {
            target,
            expires,
            state: AtomicU8::new(WAITING),
            notify: Notify::new(),
            timer: Mutex::new(None),
            answers: Default::default(),
        }
    }

    /// What the group waits for.
    pub fn target(&self) -> Target {
        self.target
    }

    /// The outcome, once there is one.
    pub fn outcome(&self) -> Option<Outcome> {
        match self.state.load(Ordering::Acquire) {
            REACHED => Some(Outcome::Reached),
            EXPIRED => Some(Outcome::Expired),
            _ => None,
        }
    }

    /// Waits for the group's outcome: one wake-up when it is decided.
    pub async fn wait(&self) -> Outcome {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before the state is read: an outcome set after the read wakes it.
            notified.as_mut().enable();
            if let Some(outcome) = self.outcome() {
                return outcome;
            }
            notified.await;
        }
    }

    /// The answer in `slot` (`< ANSWER_SLOTS`), made by `make` for the first member that asks;
    /// the others (on any thread) get a clone of it. `None` for a slot out of range.
    pub fn answer(&self, slot: usize, make: impl FnOnce() -> Answer) -> Option<Answer> {
        self.answers
            .get(slot)
            .map(|cell| cell.get_or_init(make).clone())
    }

    fn finish(&self, state: u8) {
        self.state.store(state, Ordering::Release);
        if state == REACHED
            && let Some(timer) = lock(&self.timer).take()
        {
            timer.abort();
        }
        self.notify.notify_waiters();
    }
}

/// The held requests of one rendition, by group.
pub struct Holds {
    inner: Mutex<Inner>,
    /// Deadlines are rounded up to a multiple of [`EXPIRY_GRANULARITY`] after this instant.
    epoch: Instant,
}

struct Inner {
    /// The position last published.
    last: Position,
    /// Groups not decided yet.
    groups: Vec<Arc<Group>>,
}

impl Default for Holds {
    fn default() -> Holds {
        Holds::new()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Holds {
    /// No held request yet.
    pub fn new() -> Holds {
        Holds {
            inner: Mutex::new(Inner {
                last: Position::default(),
                groups: Vec::new(),
            }),
            epoch: Instant::now(),
        }
    }

    /// `deadline` rounded up to the next slice boundary.
    fn slice_end(&self, deadline: Instant) -> Instant {
        let granularity = EXPIRY_GRANULARITY.as_nanos();
        let since = deadline.saturating_duration_since(self.epoch).as_nanos();
        let rounded = since.div_ceil(granularity) * granularity;
        self.epoch + Duration::from_nanos(u64::try_from(rounded).unwrap_or(u64::MAX))
    }

    /// Holds a request for `target` for at most `limit` (plus less than one slice): the group
    /// to wait on, or `None` when the position last published already reaches the target.
    /// Must run inside a Tokio runtime (a new group starts its timer task).
    pub fn join(self: &Arc<Self>, target: Target, limit: Duration) -> Option<Arc<Group>> {
        let expires = self.slice_end(Instant::now() + limit);
        let mut inner = lock(&self.inner);
        if target.is_reached(&inner.last) {
            return None;
        }
        if let Some(group) = inner
            .groups
            .iter()
            .find(|g| g.target == target && g.expires == expires)
        {
            return Some(Arc::clone(group));
        }
        let group = Arc::new(Group::new(target, expires));
        let (holds, expiring) = (Arc::clone(self), Arc::clone(&group));
        let timer = tokio::spawn(async move {
            tokio::time::sleep_until(expires).await;
            holds.expire(&expiring);
        });
        // Under the lock: a publication cannot reach the group before its timer is stored.
        *lock(&group.timer) = Some(timer.abort_handle());
        inner.groups.push(Arc::clone(&group));
        Some(group)
    }

    /// A new position was published: the groups it reaches are released (each member woken
    /// once), the others left waiting.
    pub fn publish(&self, position: Position) {
        let mut reached = Vec::new();
        {
            let mut inner = lock(&self.inner);
            inner.last = position;
            inner.groups.retain(|group| {
                let done = group.target.is_reached(&position);
                if done {
                    reached.push(Arc::clone(group));
                }
                !done
            });
        }
        for group in reached {
            group.finish(REACHED);
        }
    }

    /// `group`'s timer fired: it expires unless a publication reached it first.
    fn expire(&self, group: &Arc<Group>) {
        let removed = {
            let mut inner = lock(&self.inner);
            let before = inner.groups.len();
            inner.groups.retain(|g| !Arc::ptr_eq(g, group));
            inner.groups.len() != before
        };
        if removed {
            group.finish(EXPIRED);
        }
    }

    /// Groups waiting now.
    pub fn groups(&self) -> usize {
        lock(&self.inner).groups.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::AtomicUsize;
    use std::task::{Context, Poll};

    /// A position with `parts` parts published into open segment `msn`.
    fn open(msn: u64, parts: u32, published: u64) -> Position {
        Position {
            complete_up_to: msn,
            open: Some((msn, parts)),
            last_complete_parts: 5,
            target_duration: 1,
            ended: false,
            parts_published: published,
        }
    }

    /// Counts the polls of the future it wraps.
    struct Polls<F> {
        inner: Pin<Box<F>>,
        count: Arc<AtomicUsize>,
    }

    impl<F: Future> Future for Polls<F> {
        type Output = F::Output;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            self.count.fetch_add(1, Ordering::Relaxed);
            self.inner.as_mut().poll(cx)
        }
    }

    fn counted<F: Future>(future: F) -> (Polls<F>, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        let polls = Polls {
            inner: Box::pin(future),
            count: Arc::clone(&count),
        };
        (polls, count)
    }

    /// Waits until every counter reads at least 1 (each task polled once, its wait
    /// registered).
    async fn polled(counts: impl Iterator<Item = &Arc<AtomicUsize>> + Clone) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while counts.clone().any(|c| c.load(Ordering::Relaxed) == 0) {
            assert!(std::time::Instant::now() < deadline, "tasks not polled");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[test]
    fn targets_are_reached_by_the_positions_that_contain_them() {
        let position = open(4, 2, 22);
        let playlist = |msn, part| Target::Playlist { msn, part };
        assert!(playlist(4, Some(1)).is_reached(&position));
        assert!(!playlist(4, Some(2)).is_reached(&position));
        assert!(playlist(3, None).is_reached(&position));
        assert!(!playlist(4, None).is_reached(&position));
        assert!(Target::Part(21).is_reached(&position));
        assert!(!Target::Part(22).is_reached(&position));
        assert!(Target::CompleteAfter(3).is_reached(&position));
        assert!(!Target::CompleteAfter(4).is_reached(&position));
        let ended = Position {
            ended: true,
            ..position
        };
        assert!(Target::Part(1000).is_reached(&ended));
    }

    /// A publication wakes the members of the groups it reaches, once each, and does not wake
    /// the members of the others at all.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_publication_wakes_only_the_groups_it_reaches_once_per_member() {
        let holds = Arc::new(Holds::new());
        holds.publish(open(4, 2, 22));
        let limit = Duration::from_secs(10);
        let next = Target::Playlist {
            msn: 4,
            part: Some(2),
        };
        let later = Target::Playlist {
            msn: 4,
            part: Some(3),
        };
        let mut members = Vec::new();
        for target in [next, later] {
            for _ in 0..50 {
                let group = holds.join(target, limit).expect("held");
                let (wait, polls) = counted(async move { group.wait().await });
                members.push((target, tokio::spawn(wait), polls));
            }
        }
        polled(members.iter().map(|(_, _, polls)| polls)).await;
        assert!(holds.groups() <= 4, "{} groups", holds.groups());
        for (_, _, polls) in &members {
            assert_eq!(polls.load(Ordering::Relaxed), 1, "polled once, then asleep");
        }
        holds.publish(open(4, 3, 23));
        let mut later_members = Vec::new();
        for (target, task, polls) in members {
            if target == next {
                assert_eq!(task.await.expect("join"), Outcome::Reached);
                assert_eq!(polls.load(Ordering::Relaxed), 2, "one wake-up");
            } else {
                later_members.push((task, polls));
            }
        }
        // Time for a wake-up to show, had there been one.
        tokio::time::sleep(Duration::from_millis(50)).await;
        for (task, polls) in &later_members {
            assert!(!task.is_finished());
            assert_eq!(polls.load(Ordering::Relaxed), 1, "not woken");
        }
        holds.publish(open(4, 4, 24));
        for (task, _) in later_members {
            assert_eq!(task.await.expect("join"), Outcome::Reached);
        }
        assert_eq!(holds.groups(), 0);
        // Reached already: nothing to hold.
        assert!(holds.join(next, limit).is_none());
    }

    /// Requests whose limits fall in one slice share one group (one timer); it expires no
    /// earlier than their limit and less than a slice after it.
    #[tokio::test]
    async fn one_timer_per_slice_expires_its_members_after_their_limit() {
        let holds = Arc::new(Holds::new());
        holds.publish(open(4, 2, 22));
        let limit = Duration::from_millis(300);
        let asked = Instant::now();
        let groups: Vec<_> = (0..1000)
            .map(|_| holds.join(Target::Part(30), limit).expect("held"))
            .collect();
        let elapsed_joining = asked.elapsed();
        assert!(holds.groups() <= 2, "{} groups", holds.groups());
        let first = &groups[0];
        assert_eq!(first.wait().await, Outcome::Expired);
        let waited = asked.elapsed();
        assert!(waited >= limit, "expired after {waited:?}");
        assert!(
            waited < limit + EXPIRY_GRANULARITY + elapsed_joining + Duration::from_millis(200),
            "expired after {waited:?}"
        );
        for group in &groups {
            assert_eq!(group.wait().await, Outcome::Expired);
        }
        assert_eq!(holds.groups(), 0);
        // A publication after the expiry changes nothing for them.
        holds.publish(open(6, 0, 31));
        assert_eq!(groups[0].outcome(), Some(Outcome::Expired));
    }

    /// A reached group's timer is cancelled, and its members share one answer per slot.
    #[tokio::test]
    async fn reached_groups_share_one_answer_and_cancel_their_timer() {
        let holds = Arc::new(Holds::new());
        holds.publish(open(4, 2, 22));
        let group = holds
            .join(Target::Part(22), Duration::from_millis(100))
            .expect("held");
        holds.publish(open(4, 3, 23));
        assert_eq!(group.wait().await, Outcome::Reached);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            group.outcome(),
            Some(Outcome::Reached),
            "the timer was cancelled"
        );
        let made = AtomicUsize::new(0);
        let make = || {
            made.fetch_add(1, Ordering::Relaxed);
            Answer::new(Bytes::from_static(b"#EXTM3U\n"))
        };
        let a = group.answer(1, make).expect("slot");
        let b = group.answer(1, make).expect("slot");
        assert_eq!(made.load(Ordering::Relaxed), 1);
        assert_eq!(a.body.as_ptr(), b.body.as_ptr());
        assert_eq!(a.content_length, "8");
        assert!(group.answer(ANSWER_SLOTS, make).is_none());
    }
}
