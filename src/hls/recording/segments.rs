//! A rendition's recorded segments, packed: what a growing recording keeps in memory for the
//! whole show.
//!
//! The writer renders a recording's playlists from its manifest at every checkpoint, so the
//! manifest holds every segment recorded. As plain entries that was ≈ 50 bytes per segment
//! and rendition, plus a vector's doubling slack: with ten shows recording, a few MB more every
//! hour, the largest part of a soak's growth (docs/benchmarks/soak.md). Here each entry is
//! encoded against the one before it — the next MSN, the same init, starting where the previous
//! one ended and lasting as long are flag bits; what differs is a LEB128 varint — so a typical
//! segment takes 5–10 bytes. Entries are decoded in order ([`SegmentList::iter`]), which is how
//! every reader walks them; the last one is kept whole for appends and the checks on it.
//!
//! On disk (the manifest's JSON) a list is the same array of entries as before.

use chrono::{DateTime, Utc};
use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::manifest::SegmentEntry;

/// Flag: EXT-X-DISCONTINUITY before the segment.
const DISCONTINUITY: u8 = 1;
/// Flag: it starts with an independent frame.
const INDEPENDENT: u8 = 1 << 1;
/// Flag: its MSN is the previous one's + 1 (else a varint follows).
const NEXT_MSN: u8 = 1 << 2;
/// Flag: it needs the previous one's init version (else a varint follows).
const SAME_INIT: u8 = 1 << 3;
/// Flag: it starts when the previous one ended (else a zigzag varint of the difference, ns).
const CONTIGUOUS: u8 = 1 << 4;
/// Flag: it lasts as long as the previous one (else a varint, ns).
const SAME_DURATION: u8 = 1 << 5;

/// A rendition's segments in order, packed (module docs).
#[derive(Clone, Default)]
pub struct SegmentList {
    /// The encoded entries.
    packed: Vec<u8>,
    /// How many.
    len: usize,
    /// The last one, whole.
    last: Option<SegmentEntry>,
}

impl SegmentList {
    /// An empty list.
    pub fn new() -> SegmentList {
        SegmentList::default()
    }

    /// How many segments.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first segment.
    pub fn first(&self) -> Option<SegmentEntry> {
        self.iter().next()
    }

    /// The last segment.
    pub fn last(&self) -> Option<&SegmentEntry> {
        self.last.as_ref()
    }

    /// Appends `entry`.
    pub fn push(&mut self, entry: SegmentEntry) {
        encode(&mut self.packed, self.last.as_ref(), &entry);
        self.len += 1;
        self.last = Some(entry);
    }

    /// The segments in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            rest: &self.packed,
            previous: None,
            left: self.len,
        }
    }

    /// Removes every segment.
    pub fn clear(&mut self) {
        *self = SegmentList::new();
    }

    /// Keeps the first `len` segments.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            *self = self.iter().take(len).collect();
        }
    }

    /// Keeps the segments `keep` accepts, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&SegmentEntry) -> bool) {
        *self = self.iter().filter(|entry| keep(entry)).collect();
    }
}

impl FromIterator<SegmentEntry> for SegmentList {
    fn from_iter<I: IntoIterator<Item = SegmentEntry>>(entries: I) -> SegmentList {
        let mut list = SegmentList::new();
        for entry in entries {
            list.push(entry);
        }
        list
    }
}

impl<'a> IntoIterator for &'a SegmentList {
    type Item = SegmentEntry;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl From<Vec<SegmentEntry>> for SegmentList {
    fn from(entries: Vec<SegmentEntry>) -> SegmentList {
        entries.into_iter().collect()
    }
}

impl PartialEq for SegmentList {
    fn eq(&self, other: &SegmentList) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl std::fmt::Debug for SegmentList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for SegmentList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for SegmentList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SegmentList, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = SegmentList;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of segments")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SegmentList, A::Error> {
                let mut list = SegmentList::new();
                while let Some(entry) = seq.next_element::<SegmentEntry>()? {
                    list.push(entry);
                }
                Ok(list)
            }
        }
        deserializer.deserialize_seq(Entries)
    }
}

/// The segments of a [`SegmentList`], decoded in order.
pub struct Iter<'a> {
    rest: &'a [u8],
    previous: Option<SegmentEntry>,
    left: usize,
}

impl Iterator for Iter<'_> {
    type Item = SegmentEntry;

    fn next(&mut self) -> Option<SegmentEntry> {
        if self.left == 0 {
            return None;
        }
        let entry = decode(&mut self.rest, self.previous.as_ref())?;
        self.left -= 1;
        self.previous = Some(entry.clone());
        Some(entry)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// A time as nanoseconds since the epoch (chrono's leap-second form, never produced by the
/// packager's clock, reads as the second after it).
fn to_nanos(time: &DateTime<Utc>) -> i128 {
    i128::from(time.timestamp()) * 1_000_000_000 + i128::from(time.timestamp_subsec_nanos())
}

/// The time `nanos` after the epoch; `None` past chrono's range.
fn from_nanos(nanos: i128) -> Option<DateTime<Utc>> {
    let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
    let subsec = u32::try_from(nanos.rem_euclid(1_000_000_000)).ok()?;
    DateTime::from_timestamp(secs, subsec)
}

/// When a segment after `previous` is expected to start: where it ended.
fn expected_start(previous: Option<&SegmentEntry>) -> i128 {
    previous.map_or(0, |p| {
        to_nanos(&p.program_date_time) + i128::from(p.duration_ns)
    })
}

fn encode(out: &mut Vec<u8>, previous: Option<&SegmentEntry>, entry: &SegmentEntry) {
    let mut flags = 0;
    if entry.discontinuity {
        flags |= DISCONTINUITY;
    }
    if entry.independent {
        flags |= INDEPENDENT;
    }
    let next_msn = previous.is_some_and(|p| p.msn.checked_add(1) == Some(entry.msn));
    let same_init = previous.is_some_and(|p| p.init_version == entry.init_version);
    let start_delta = to_nanos(&entry.program_date_time) - expected_start(previous);
    let same_duration = previous.is_some_and(|p| p.duration_ns == entry.duration_ns);
    if next_msn {
        flags |= NEXT_MSN;
    }
    if same_init {
        flags |= SAME_INIT;
    }
    if previous.is_some() && start_delta == 0 {
        flags |= CONTIGUOUS;
    }
    if same_duration {
        flags |= SAME_DURATION;
    }
    out.push(flags);
    if !next_msn {
        put_varint(out, u128::from(entry.msn));
    }
    if !same_init {
        put_varint(out, u128::from(entry.init_version));
    }
    if flags & CONTIGUOUS == 0 {
        put_varint(out, zigzag(start_delta));
    }
    if !same_duration {
        put_varint(out, u128::from(entry.duration_ns));
    }
    put_varint(out, u128::from(entry.bytes));
}

fn decode(input: &mut &[u8], previous: Option<&SegmentEntry>) -> Option<SegmentEntry> {
    let (&flags, rest) = input.split_first()?;
    *input = rest;
    let msn = match previous {
        Some(p) if flags & NEXT_MSN != 0 => p.msn.checked_add(1)?,
        _ => u64::try_from(get_varint(input)?).ok()?,
    };
    let init_version = match previous {
        Some(p) if flags & SAME_INIT != 0 => p.init_version,
        _ => u32::try_from(get_varint(input)?).ok()?,
    };
    let start_delta = match previous {
        Some(_) if flags & CONTIGUOUS != 0 => 0,
        _ => unzigzag(get_varint(input)?),
    };
    let program_date_time = from_nanos(expected_start(previous).checked_add(start_delta)?)?;
    let duration_ns = match previous {
        Some(p) if flags & SAME_DURATION != 0 => p.duration_ns,
        _ => u64::try_from(get_varint(input)?).ok()?,
    };
    let bytes = u64::try_from(get_varint(input)?).ok()?;
    Some(SegmentEntry {
        msn,
        init_version,
        discontinuity: flags & DISCONTINUITY != 0,
        independent: flags & INDEPENDENT != 0,
        program_date_time,
        duration_ns,
        bytes,
    })
}

fn zigzag(value: i128) -> u128 {
    ((value << 1) ^ (value >> 127)) as u128
}

fn unzigzag(value: u128) -> i128 {
    ((value >> 1) as i128) ^ -((value & 1) as i128)
}

/// LEB128: seven bits per byte, low first, the high bit set on every byte but the last.
fn put_varint(out: &mut Vec<u8>, mut value: u128) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn get_varint(input: &mut &[u8]) -> Option<u128> {
    let mut value = 0u128;
    for shift in (0..128).step_by(7) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        value |= u128::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64, nanos: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, nanos).expect("in range")
    }

    fn entry(msn: u64, start: DateTime<Utc>, duration_ns: u64) -> SegmentEntry {
        SegmentEntry {
            msn,
            init_version: 0,
            discontinuity: false,
            independent: true,
            program_date_time: start,
            duration_ns,
            bytes: 180_000 + msn * 7,
        }
    }

    /// A show's hour of one-second segments with what happens in one: a reconnect (MSN jump,
    /// new init, discontinuity, a start off the previous end), a segment without a keyframe,
    /// durations that wander, a time before the epoch and the extremes of every field.
    fn varied() -> Vec<SegmentEntry> {
        let mut entries = Vec::new();
        let mut start = at(1_796_000_000, 123_456_789);
        for msn in 0..100u64 {
            let duration = if msn % 7 == 0 {
                1_001_000_000
            } else {
                1_000_000_000
            };
            entries.push(entry(msn, start, duration));
            start += chrono::Duration::nanoseconds(duration as i64);
        }
        let mut seam = entry(
            500,
            start + chrono::Duration::milliseconds(2_400),
            960_000_000,
        );
        seam.discontinuity = true;
        seam.init_version = 3;
        entries.push(seam);
        let mut dependent = entry(501, start - chrono::Duration::seconds(1), 5);
        dependent.independent = false;
        entries.push(dependent);
        entries.push(SegmentEntry {
            msn: u64::MAX,
            init_version: u32::MAX,
            discontinuity: true,
            independent: false,
            program_date_time: at(-1_000_000, 999_999_999),
            duration_ns: u64::MAX,
            bytes: u64::MAX,
        });
        entries.push(entry(0, DateTime::<Utc>::MAX_UTC, 0));
        entries.push(entry(1, DateTime::<Utc>::MIN_UTC, 0));
        entries
    }

    #[test]
    fn every_entry_reads_back_as_it_was_pushed() {
        let entries = varied();
        let list: SegmentList = entries.clone().into();
        assert_eq!(list.len(), entries.len());
        assert_eq!(list.iter().collect::<Vec<_>>(), entries);
        assert_eq!(list.first().as_ref(), entries.first());
        assert_eq!(list.last(), entries.last());
    }

    #[test]
    fn a_steady_hour_takes_a_few_bytes_per_segment() {
        let mut list = SegmentList::new();
        let mut start = at(1_796_000_000, 0);
        for msn in 0..3600u64 {
            let duration = 1_000_000_000 + (msn % 3) * 33_333_333;
            list.push(entry(msn, start, duration));
            start += chrono::Duration::nanoseconds(duration as i64);
        }
        // A flag byte, the duration when it changed (5 bytes), the size (3 bytes); the first
        // one whole.
        assert!(
            list.packed.len() <= 3600 * 9 + 32,
            "{} bytes for 3600 segments",
            list.packed.len()
        );
        assert!(list.packed.len() * 4 < 3600 * std::mem::size_of::<SegmentEntry>());
    }

    #[test]
    fn truncate_and_retain_keep_what_they_say_and_appends_follow_on() {
        let entries = varied();
        let mut list: SegmentList = entries.clone().into();
        list.truncate(entries.len() + 5);
        assert_eq!(list.len(), entries.len());
        list.truncate(50);
        assert_eq!(list.iter().collect::<Vec<_>>(), entries[..50]);
        assert_eq!(list.last(), Some(&entries[49]));
        list.push(entries[50].clone());
        assert_eq!(list.iter().collect::<Vec<_>>(), entries[..51]);

        list.retain(|s| s.msn % 2 == 0);
        let even: Vec<_> = entries[..51]
            .iter()
            .filter(|s| s.msn % 2 == 0)
            .cloned()
            .collect();
        assert_eq!(list.iter().collect::<Vec<_>>(), even);
        assert_eq!(list.len(), even.len());
        list.retain(|_| false);
        assert!(list.is_empty());
        assert_eq!(list.first(), None);
        assert_eq!(list.last(), None);
    }

    #[test]
    fn json_is_the_array_of_entries_it_was_before() {
        let entries = varied();
        let list: SegmentList = entries.clone().into();
        let json = serde_json::to_string(&list).expect("serializes");
        assert_eq!(json, serde_json::to_string(&entries).expect("serializes"));
        let back: SegmentList = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, list);
        assert!(serde_json::from_str::<SegmentList>("{}").is_err());
    }

    #[test]
    fn varints_and_zigzag_round_trip_at_the_edges() {
        for value in [0u128, 1, 127, 128, 300, u64::MAX.into(), u128::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            let mut input = &out[..];
            assert_eq!(get_varint(&mut input), Some(value));
            assert!(input.is_empty());
        }
        for value in [0i128, 1, -1, i64::MIN.into(), i128::MAX, i128::MIN] {
            assert_eq!(unzigzag(zigzag(value)), value);
        }
        // Truncated input ends the walk instead of panicking.
        let mut input: &[u8] = &[0x80, 0x80];
        assert_eq!(get_varint(&mut input), None);
        let list = SegmentList {
            packed: vec![0xff],
            len: 3,
            last: None,
        };
        assert_eq!(list.iter().count(), 0);
    }
}
