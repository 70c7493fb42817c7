//! "Watching now": distinct viewers per show seen in the last minute, from the pages'
//! `view_show` heartbeats (sans-IO: every call is given the time), and the per-minute timeline
//! of a show folded from the stored events.
//!
//! A viewer is its user when the event has one, else its visitor id. Memory is bounded: entries
//! older than the window are pruned (at most once per window, and whenever the counter is
//! full), and a full counter ignores new viewers until pruning makes room.

use std::collections::HashMap;

use super::model::{Event, EventType};

/// How long a heartbeat counts a viewer as watching, ms.
pub const WINDOW_MS: i64 = 60_000;
/// Viewers remembered across all shows before new ones are ignored.
pub const MAX_VIEWERS: usize = 1_000_000;
/// One minute, ms.
const MINUTE_MS: i64 = 60_000;
/// Most minutes of one timeline (a week); a longer show keeps its last ones.
pub const MAX_TIMELINE_MINUTES: i64 = 7 * 24 * 60;

/// Who a `view_show` event counts as: `u:` + its user, else `v:` + its visitor.
pub fn viewer_key(user: Option<&str>, visitor: Option<&str>) -> Option<String> {
    match (user, visitor) {
        (Some(user), _) => Some(format!("u:{user}")),
        (None, Some(visitor)) => Some(format!("v:{visitor}")),
        (None, None) => None,
    }
}

/// Distinct viewers per show seen in the last [`WINDOW_MS`].
#[derive(Debug)]
pub struct ViewerCounter {
    window_ms: i64,
    max_viewers: usize,
    /// Per show: viewer → last seen, ms.
    shows: HashMap<String, HashMap<String, i64>>,
    /// Entries across every show.
    entries: usize,
    last_prune_ms: i64,
}

impl Default for ViewerCounter {
    fn default() -> ViewerCounter {
        ViewerCounter::new(WINDOW_MS, MAX_VIEWERS)
    }
}

impl ViewerCounter {
    /// A counter of viewers seen within `window_ms`, remembering at most `max_viewers`.
    pub fn new(window_ms: i64, max_viewers: usize) -> ViewerCounter {
        ViewerCounter {
            window_ms,
            max_viewers,
            shows: HashMap::new(),
            entries: 0,
            last_prune_ms: i64::MIN,
        }
    }

    /// `viewer` was seen watching `show` at `at_ms`; `now_ms` is the clock (an event older than
    /// the window is not counted).
    pub fn seen(&mut self, show: &str, viewer: &str, at_ms: i64, now_ms: i64) {
        if now_ms.saturating_sub(self.last_prune_ms) >= self.window_ms {
            self.prune(now_ms);
        }
        if at_ms <= now_ms - self.window_ms {
            return;
        }
        if let Some(viewers) = self.shows.get_mut(show)
            && let Some(last) = viewers.get_mut(viewer)
        {
            *last = (*last).max(at_ms);
            return;
        }
        if self.entries >= self.max_viewers {
            self.prune(now_ms);
            if self.entries >= self.max_viewers {
                return;
            }
        }
        self.shows
            .entry(show.to_string())
            .or_default()
            .insert(viewer.to_string(), at_ms);
        self.entries += 1;
    }

    /// Records the `view_show` events of `events`, at their own times.
    pub fn record(&mut self, events: &[Event], now_ms: i64) {
        for event in events.iter().filter(|e| e.kind == EventType::ViewShow) {
            if let Some(key) = viewer_key(event.user.as_deref(), event.visitor.as_deref()) {
                self.seen(&event.show, &key, event.ts_ms, now_ms);
            }
        }
    }

    /// Distinct viewers of `show` seen in the window before `now_ms`.
    pub fn count(&self, show: &str, now_ms: i64) -> usize {
        self.shows.get(show).map_or(0, |viewers| {
            viewers
                .values()
                .filter(|&&last| last > now_ms - self.window_ms)
                .count()
        })
    }

    /// Forgets viewers not seen within the window, and shows left without any.
    pub fn prune(&mut self, now_ms: i64) {
        let horizon = now_ms - self.window_ms;
        let mut entries = 0;
        self.shows.retain(|_, viewers| {
            viewers.retain(|_, last| *last > horizon);
            entries += viewers.len();
            !viewers.is_empty()
        });
        self.entries = entries;
        self.last_prune_ms = now_ms;
    }

    /// Viewers remembered now (bounded by `max_viewers`).
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether no viewer is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
}

/// One minute of a timeline: its start (Unix ms) and its distinct viewers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Minute {
    /// Start of the minute, Unix ms.
    pub start_ms: i64,
    /// Distinct viewers with a heartbeat in it.
    pub viewers: u64,
}

/// Every minute from the one holding `from_ms` to the one holding `to_ms` (at most
/// [`MAX_TIMELINE_MINUTES`], the last ones), with the counts of `counted` (minute index =
/// `ts_ms / 60 000` → viewers) and zero elsewhere.
pub fn timeline(counted: &HashMap<i64, u64>, from_ms: i64, to_ms: i64) -> Vec<Minute> {
    if to_ms < from_ms {
        return Vec::new();
    }
    let last = to_ms.div_euclid(MINUTE_MS);
    let first = from_ms
        .div_euclid(MINUTE_MS)
        .max(last - MAX_TIMELINE_MINUTES + 1);
    (first..=last)
        .map(|minute| Minute {
            start_ms: minute * MINUTE_MS,
            viewers: counted.get(&minute).copied().unwrap_or(0),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_800_000_000_000;

    #[test]
    fn counts_distinct_viewers_of_the_last_minute_per_show() {
        let mut counter = ViewerCounter::default();
        counter.seen("s1", "v:a", T, T);
        counter.seen("s1", "v:b", T + 1_000, T + 1_000);
        counter.seen("s1", "v:a", T + 20_000, T + 20_000);
        counter.seen("s2", "v:a", T + 20_000, T + 20_000);
        assert_eq!(counter.count("s1", T + 20_000), 2);
        assert_eq!(counter.count("s2", T + 20_000), 1);
        assert_eq!(counter.count("nope", T + 20_000), 0);
        // b's only heartbeat leaves the window; a's second keeps a in it.
        assert_eq!(counter.count("s1", T + 61_000), 1);
        assert_eq!(counter.count("s1", T + 80_000), 0);
        // An event already older than the window does not count.
        counter.seen("s1", "v:late", T, T + 200_000);
        assert_eq!(counter.count("s1", T + 200_000), 0);
    }

    #[test]
    fn old_entries_are_pruned_and_memory_is_bounded() {
        let mut counter = ViewerCounter::new(WINDOW_MS, 3);
        for (i, viewer) in ["a", "b", "c"].iter().enumerate() {
            counter.seen("s", viewer, T + i as i64, T + i as i64);
        }
        assert_eq!(counter.len(), 3);
        // Full: a new viewer within the window is not remembered…
        counter.seen("s", "d", T + 10, T + 10);
        assert_eq!((counter.len(), counter.count("s", T + 10)), (3, 3));
        // …but a known one is refreshed.
        counter.seen("s", "a", T + 30_000, T + 30_000);
        // Once the others are out of the window they are pruned and make room.
        counter.seen("s", "e", T + 70_000, T + 70_000);
        assert_eq!(counter.len(), 2, "b and c pruned");
        assert_eq!(counter.count("s", T + 70_000), 2);
        counter.prune(T + 500_000);
        assert!(counter.is_empty());
        assert_eq!(counter.count("s", T + 500_000), 0);
    }

    #[test]
    fn viewers_are_users_else_visitors() {
        assert_eq!(viewer_key(Some("al"), Some("v1")).as_deref(), Some("u:al"));
        assert_eq!(viewer_key(None, Some("v1")).as_deref(), Some("v:v1"));
        assert_eq!(viewer_key(None, None), None);
    }

    #[test]
    fn a_timeline_has_every_minute_of_the_range() {
        let base = (T / MINUTE_MS) * MINUTE_MS;
        let counted = HashMap::from([(base / MINUTE_MS, 3), (base / MINUTE_MS + 2, 1)]);
        let minutes = timeline(&counted, base + 5_000, base + 2 * MINUTE_MS + 1);
        let got: Vec<_> = minutes
            .iter()
            .map(|m| (m.start_ms - base, m.viewers))
            .collect();
        assert_eq!(got, [(0, 3), (60_000, 0), (120_000, 1)]);
        assert!(timeline(&counted, base, base - 1).is_empty());
        let long = timeline(&HashMap::new(), 0, 400 * 24 * 3_600_000);
        assert_eq!(long.len() as i64, MAX_TIMELINE_MINUTES);
    }
}
