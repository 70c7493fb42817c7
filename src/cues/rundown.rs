//! Rundowns: cues scheduled at offsets from the start of a stream's session (media time 0).
//! They fire when the ingested media timeline reaches them — driven by frames, never by a
//! wall-clock timer — and then become regular cues.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::model::CueSpec;

/// One rundown item waiting for its media time.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledCue {
    /// Database row.
    pub seq: i64,
    /// Public id (kept when it fires).
    pub id: String,
    /// Offset from the session's media time 0, ns.
    pub offset_ns: u64,
    /// What fires.
    pub spec: CueSpec,
}

/// The unfired items of one stream, by offset.
#[derive(Debug)]
pub struct Rundown {
    /// Items sorted by (offset, seq).
    items: Mutex<Vec<ScheduledCue>>,
    /// Offset of the earliest item (`u64::MAX`: none): checked per frame without the lock.
    next_ns: AtomicU64,
}

impl Default for Rundown {
    fn default() -> Self {
        Rundown {
            items: Mutex::new(Vec::new()),
            next_ns: AtomicU64::new(u64::MAX),
        }
    }
}

impl Rundown {
    fn update<R>(&self, change: impl FnOnce(&mut Vec<ScheduledCue>) -> R) -> R {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        let result = change(&mut items);
        items.sort_by_key(|i| (i.offset_ns, i.seq));
        self.next_ns.store(
            items.first().map_or(u64::MAX, |i| i.offset_ns),
            Ordering::Release,
        );
        result
    }

    /// Replaces (or, with `replace == false`, extends) the items.
    pub fn set(&self, new: Vec<ScheduledCue>, replace: bool) {
        self.update(|items| {
            if replace {
                items.clear();
            }
            items.extend(new);
        });
    }

    /// Removes item `id`; whether it was there.
    pub fn remove(&self, id: &str) -> bool {
        self.update(|items| {
            let before = items.len();
            items.retain(|i| i.id != id);
            items.len() != before
        })
    }

    /// Takes the items whose offset is at or before `now_ns`. Cheap when none is due.
    pub fn take_due(&self, now_ns: u64) -> Vec<ScheduledCue> {
        if self.next_ns.load(Ordering::Acquire) > now_ns {
            return Vec::new();
        }
        self.update(|items| {
            let due = items.partition_point(|i| i.offset_ns <= now_ns);
            items.drain(..due).collect()
        })
    }

    /// The items, by offset.
    pub fn items(&self) -> Vec<ScheduledCue> {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::CueKind;
    use super::*;

    fn item(seq: i64, offset_s: u64) -> ScheduledCue {
        ScheduledCue {
            seq,
            id: format!("r{seq}"),
            offset_ns: offset_s * 1_000_000_000,
            spec: CueSpec {
                kind: CueKind::Pin,
                duration: None,
                end_on_next: false,
                product: None,
                data: serde_json::json!({}),
            },
        }
    }

    #[test]
    fn fires_in_media_time_order_once() {
        let rundown = Rundown::default();
        rundown.set(vec![item(1, 30), item(2, 10), item(3, 10)], true);
        assert!(rundown.take_due(9_999_999_999).is_empty());
        let due: Vec<_> = rundown
            .take_due(10_000_000_000)
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(due, vec!["r2", "r3"]);
        assert!(rundown.take_due(10_000_000_000).is_empty());
        rundown.set(vec![item(4, 20)], false);
        assert!(rundown.remove("r4"));
        assert!(!rundown.remove("r4"));
        assert_eq!(rundown.take_due(u64::MAX - 1).len(), 1);
        assert!(rundown.items().is_empty());
    }
}
