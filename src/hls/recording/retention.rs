//! Which recordings retention deletes, pure: finished recordings older than the age limit,
//! then the oldest finished ones until the rest fit the size limit. A recording still being
//! written is never chosen (and its bytes still count towards the total).

use chrono::{DateTime, Utc};

/// What the policy needs to know of one recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Recording id.
    pub id: String,
    /// When it started (oldest first).
    pub started_at: DateTime<Utc>,
    /// When it was finished; `None` while it is being written.
    pub ended_at: Option<DateTime<Utc>>,
    /// Its size on disk, bytes.
    pub bytes: u64,
}

/// The limits (`[recordings] max_age_days`, `max_total_gb`); `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Finished recordings that ended longer ago than this go.
    pub max_age: Option<chrono::Duration>,
    /// The oldest finished recordings go until all of them take at most this many bytes.
    pub max_total_bytes: Option<u64>,
}

/// The ids to delete at `now`, oldest first.
pub fn choose(recordings: &[Candidate], limits: Limits, now: DateTime<Utc>) -> Vec<String> {
    let mut finished: Vec<&Candidate> =
        recordings.iter().filter(|r| r.ended_at.is_some()).collect();
    finished.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
    let mut total: u64 = recordings.iter().map(|r| r.bytes).sum();
    let mut chosen = Vec::new();
    for recording in finished {
        let too_old = limits
            .max_age
            .zip(recording.ended_at)
            .is_some_and(|(max_age, ended)| now - ended > max_age);
        let too_big = limits.max_total_bytes.is_some_and(|max| total > max);
        if too_old || too_big {
            total = total.saturating_sub(recording.bytes);
            chosen.push(recording.id.clone());
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(hours: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0)
            .single()
            .expect("valid")
            + chrono::Duration::hours(hours)
    }

    fn recording(id: &str, started: i64, ended: Option<i64>, bytes: u64) -> Candidate {
        Candidate {
            id: id.into(),
            started_at: at(started),
            ended_at: ended.map(at),
            bytes,
        }
    }

    #[test]
    fn the_size_limit_deletes_the_oldest_finished_first_never_the_live_one() {
        // Given out of order; "live" is the oldest but still being written.
        let recordings = [
            recording("c", 20, Some(21), 300),
            recording("live", 1, None, 500),
            recording("a", 2, Some(3), 100),
            recording("b", 10, Some(11), 200),
        ];
        let limits = Limits {
            max_age: None,
            max_total_bytes: Some(800),
        };
        // 1100 bytes: a (100) then b (200) go; 800 is within the limit.
        assert_eq!(choose(&recordings, limits, at(30)), ["a", "b"]);
        // Even a limit of 0 leaves the live one.
        let none_left = Limits {
            max_total_bytes: Some(0),
            ..limits
        };
        assert_eq!(choose(&recordings, none_left, at(30)), ["a", "b", "c"]);
        // No limits: nothing.
        assert!(choose(&recordings, Limits::default(), at(30)).is_empty());
    }

    #[test]
    fn the_age_limit_counts_from_the_end_of_a_finished_recording() {
        let recordings = [
            recording("old", 0, Some(1), 10),
            recording("edge", 0, Some(6), 10),
            recording("new", 20, Some(22), 10),
            recording("live", 0, None, 10),
        ];
        let limits = Limits {
            max_age: Some(chrono::Duration::hours(24)),
            max_total_bytes: None,
        };
        // At hour 30: "old" ended 29 h ago; "edge" exactly 24 h ago stays.
        assert_eq!(choose(&recordings, limits, at(30)), ["old"]);
        // Same start: by id.
        assert_eq!(choose(&recordings, limits, at(100)), ["edge", "old", "new"]);
    }
}
