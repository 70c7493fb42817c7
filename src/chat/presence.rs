//! A room's presence across nodes (cluster mode, docs/chat.md "Chat across nodes"), sans-IO:
//! every node with members in a room writes its own count into the room's Redis hash
//! `cuecast:chat:{room}:presence` (field: the node id, value: `"{count} {expires_ms}"`) about
//! once a second, and reads the whole hash back in the same round trip. The room's presence is
//! the sum of the entries that have not expired; a node that died stops renewing its entry and
//! drops out of the sum [`TTL_MS`] after its last report (the stale fields are deleted by the
//! next node that reads them). Time is passed in: `now_ms` is the node's Unix clock, so the
//! nodes' clocks must agree to well within [`TTL_MS`] (NTP does).
//!
//! [`Presence`] keeps a room's view on one node: the other nodes' members as last read, plus
//! the node's own members now — so a join or a leave here shows at once, and other nodes' within
//! a report interval.

/// How long a node's reported count stands without a renewal, ms.
pub const TTL_MS: i64 = 5_000;
/// How often a node reports its rooms' counts, ms.
pub const REPORT_MS: u64 = 1_000;

/// The Redis hash of `room`'s per-node counts.
pub fn key(room: &str) -> String {
    format!("cuecast:chat:{room}:presence")
}

/// The hash value a node writes: its `count`, standing until `now_ms + TTL_MS`.
pub fn value(count: usize, now_ms: i64) -> String {
    format!("{count} {}", now_ms.saturating_add(TTL_MS))
}

/// A room's per-node counts, read back at `now_ms`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Members on every node whose count has not expired.
    pub total: usize,
    /// Fields (node ids) that expired or cannot be read: to delete.
    pub stale: Vec<String>,
}

/// Sums the hash's `(node id, value)` fields standing at `now_ms`.
pub fn tally<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>, now_ms: i64) -> Tally {
    let mut tally = Tally::default();
    for (node, value) in fields {
        let parsed = value.split_once(' ').and_then(|(count, expires)| {
            Some((count.parse::<usize>().ok()?, expires.parse::<i64>().ok()?))
        });
        match parsed {
            Some((count, expires)) if expires > now_ms => {
                tally.total = tally.total.saturating_add(count);
            }
            _ => tally.stale.push(node.to_string()),
        }
    }
    tally
}

/// One room's presence as this node shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Presence {
    /// Members on other nodes, as of the last report.
    others: usize,
}

impl Presence {
    /// The room's presence with `local` members on this node now.
    pub fn count(&self, local: usize) -> usize {
        self.others.saturating_add(local)
    }

    /// A report of `reported` local members came back with the room's `total`: the other nodes
    /// have the difference. Returns whether that changed.
    pub fn reported(&mut self, reported: usize, total: usize) -> bool {
        let others = total.saturating_sub(reported);
        let changed = others != self.others;
        self.others = others;
        changed
    }

    /// Redis could not be asked: only this node's members are known. Returns whether that
    /// changed anything.
    pub fn unknown(&mut self) -> bool {
        let changed = self.others != 0;
        self.others = 0;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sum_of_the_counts_standing_now() {
        let now = 1_000_000;
        let a = value(2, now);
        let b = value(3, now - 1_000);
        let dead = value(7, now - TTL_MS);
        let fields = [
            ("a", a.as_str()),
            ("b", b.as_str()),
            ("dead", dead.as_str()),
            ("junk", "x"),
            ("half", "4"),
        ];
        let got = tally(fields, now);
        assert_eq!(got.total, 5, "a and b; the dead node's count expired");
        assert_eq!(got.stale, vec!["dead", "junk", "half"]);
        assert_eq!(tally([], now), Tally::default());
    }

    #[test]
    fn a_count_stands_for_the_ttl_after_its_report() {
        let reported = value(4, 10_000);
        assert_eq!(
            tally([("a", reported.as_str())], 10_000 + TTL_MS - 1).total,
            4
        );
        assert_eq!(tally([("a", reported.as_str())], 10_000 + TTL_MS).total, 0);
    }

    #[test]
    fn local_changes_show_at_once_and_other_nodes_at_the_next_report() {
        let mut presence = Presence::default();
        assert_eq!(presence.count(1), 1, "alone: this node's members");
        assert!(presence.reported(1, 4), "three members elsewhere");
        assert_eq!(presence.count(1), 4);
        assert_eq!(
            presence.count(2),
            5,
            "a join here counts before the next report"
        );
        assert!(!presence.reported(2, 5));
        assert!(presence.reported(2, 3), "one left elsewhere");
        assert_eq!(presence.count(2), 3);
        assert_eq!(
            presence.count(0),
            1,
            "everyone here left: the others remain"
        );
        assert!(presence.reported(5, 2), "never below this node's own");
        assert_eq!(presence.count(5), 5);
        assert!(presence.reported(1, 3));
        assert!(presence.unknown());
        assert_eq!(presence.count(1), 1, "Redis unreachable: this node's own");
        assert!(!presence.unknown());
    }
}
