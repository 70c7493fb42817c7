//! Part alignment across renditions (sans-IO).
//!
//! `cmafmux` cuts a part at the first sample, in decode order, whose PTS reaches the part's
//! end. With a B-frame source (OBS's default) the passthrough's parts therefore end where the
//! publisher's decode order allows, up to a couple of frames before the nominal boundary,
//! while a transcoded rung (no B-frames) would be cut exactly on it: part P would cover
//! different times in different renditions. So transcoded rungs are muxed one frame per CMAF
//! chunk and a [`PartAligner`] regroups those chunks into parts that end exactly where the
//! reference rendition's (the passthrough's) parts end. A part may hold several `moof`+`mdat`
//! pairs, as a segment does.
//!
//! The reference is always ahead (the rungs add decoding, lookahead and encoding), so the
//! boundary a rung part needs is known when its last frame arrives: regrouping adds no
//! latency. Without a reference boundary (no passthrough rendition, or it is behind), parts are
//! cut as `cmafmux` cuts them: once they reach the part target.

use std::collections::VecDeque;
use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::packager::CmafChunk;

/// Slack when comparing timestamps of the same frame in two renditions, ns. Both come from
/// the publisher's timestamps (whole ms for RTMP); frames are at least ~8 ms apart.
const TOLERANCE_NS: u64 = 2_000_000;

/// How many recent part ends a reference keeps (a few segments' worth).
const KEPT_ENDS: usize = 64;

/// The ends (PTS, ns) of a reference rendition's latest parts, ascending.
#[derive(Debug, Default, Clone)]
pub struct PartEnds {
    ends: VecDeque<u64>,
}

impl PartEnds {
    /// Records a part of the reference presenting `presents`. Its start ends the previous
    /// part too (a new fragment may follow a gap).
    pub fn record(&mut self, presents: Range<u64>) {
        for end in [presents.start, presents.end] {
            if self.ends.back().is_none_or(|&last| end > last) {
                if self.ends.len() == KEPT_ENDS {
                    self.ends.pop_front();
                }
                self.ends.push_back(end);
            }
        }
    }

    /// The first recorded end strictly after `pts` (beyond the tolerance).
    fn next_after(&self, pts: u64) -> Option<u64> {
        let after = pts.saturating_add(TOLERANCE_NS);
        self.ends.iter().copied().find(|&end| end > after)
    }
}

/// The part being gathered.
#[derive(Debug)]
struct Pending {
    data: BytesMut,
    /// The first chunk's timing and flags (its bytes are in `data`).
    first: CmafChunk,
    duration: u64,
    /// What its frames present.
    presents: Range<u64>,
}

/// Regroups one rendition's per-frame chunks into parts ending on the reference's part ends.
#[derive(Debug)]
pub struct PartAligner {
    part_target_ns: u64,
    pending: Option<Pending>,
}

impl PartAligner {
    /// A new aligner cutting parts of at most about `part_target_ns` when no reference
    /// boundary is known.
    pub fn new(part_target_ns: u64) -> PartAligner {
        PartAligner {
            part_target_ns,
            pending: None,
        }
    }

    /// Takes the next chunk of the rendition, whose samples present `presents` (ns); returns
    /// the parts it completes with what they present, in order (none, one, or two when a new
    /// fragment starts right after a completed part).
    pub fn push(
        &mut self,
        chunk: CmafChunk,
        presents: Range<u64>,
        reference: &PartEnds,
    ) -> Vec<(CmafChunk, Range<u64>)> {
        let mut parts = Vec::new();
        if chunk.fragment_start {
            parts.extend(self.flush());
        }
        let pending = match self.pending.as_mut() {
            Some(pending) => {
                pending.data.extend_from_slice(&chunk.data);
                pending.duration = pending.duration.saturating_add(chunk.duration);
                pending.presents.start = pending.presents.start.min(presents.start);
                pending.presents.end = pending.presents.end.max(presents.end);
                pending
            }
            None => self.pending.insert(Pending {
                data: BytesMut::from(&chunk.data[..]),
                duration: chunk.duration,
                presents,
                first: CmafChunk {
                    data: Bytes::new(),
                    ..chunk
                },
            }),
        };
        let Range { start, end } = pending.presents;
        let complete = match reference.next_after(start) {
            Some(boundary) => end.saturating_add(TOLERANCE_NS) >= boundary,
            None => (end - start.min(end)).saturating_add(TOLERANCE_NS) >= self.part_target_ns,
        };
        if complete {
            parts.extend(self.flush());
        }
        parts
    }

    /// The part gathered so far and what it presents, if any (end of stream, interruption).
    pub fn flush(&mut self) -> Option<(CmafChunk, Range<u64>)> {
        self.pending.take().map(|pending| {
            let part = CmafChunk {
                data: pending.data.freeze(),
                duration: pending.duration,
                ..pending.first
            };
            (part, pending.presents)
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    const MS: u64 = 1_000_000;

    fn frame(pts_ms: u64, duration_ms: u64, fragment_start: bool) -> CmafChunk {
        CmafChunk {
            data: Bytes::from(format!("[{pts_ms}]")),
            pts: pts_ms * MS,
            duration: duration_ms * MS,
            fragment_start,
            independent: fragment_start,
            program_date_time: DateTime::<Utc>::from_timestamp_millis(
                1_700_000_000_000 + i64::try_from(pts_ms).unwrap_or(0),
            )
            .unwrap_or_default(),
        }
    }

    /// 30 fps frames as RTMP timestamps them (whole ms), from `from_ms`, `count` of them.
    fn frames(from_ms: u64, count: u64) -> Vec<(u64, u64)> {
        (0..count)
            .map(|i| {
                let at = |n: u64| from_ms + n * 1000 / 30;
                (at(i), at(i + 1) - at(i))
            })
            .collect()
    }

    fn parts_of(
        aligner: &mut PartAligner,
        reference: &PartEnds,
        frames: &[(u64, u64)],
    ) -> Vec<CmafChunk> {
        let mut parts = Vec::new();
        for (i, &(pts, duration)) in frames.iter().enumerate() {
            let done = aligner.push(
                frame(pts, duration, i == 0),
                pts * MS..(pts + duration) * MS,
                reference,
            );
            parts.extend(done.into_iter().map(|(part, _)| part));
        }
        parts
    }

    #[test]
    fn parts_end_where_the_reference_parts_end() {
        // A B-frame passthrough cut its 2 s segment into uneven parts.
        let mut reference = PartEnds::default();
        let boundaries_ms = [0, 166, 366, 566, 733, 966, 1166, 1366, 1566, 1766, 2000];
        for pair in boundaries_ms.windows(2) {
            reference.record(pair[0] * MS..pair[1] * MS);
        }
        let mut aligner = PartAligner::new(200 * MS);
        let parts = parts_of(&mut aligner, &reference, &frames(0, 60));
        let got: Vec<(u64, u64)> = parts
            .iter()
            .map(|p| (p.pts / MS, (p.pts + p.duration) / MS))
            .collect();
        let want: Vec<(u64, u64)> = boundaries_ms.windows(2).map(|w| (w[0], w[1])).collect();
        assert_eq!(got, want);
        // Every byte of every frame, in order, exactly once.
        let all: Vec<u8> = parts.iter().flat_map(|p| p.data.to_vec()).collect();
        let expected: Vec<u8> = frames(0, 60)
            .iter()
            .flat_map(|(pts, _)| format!("[{pts}]").into_bytes())
            .collect();
        assert_eq!(all, expected);
        assert!(parts[0].fragment_start && parts[0].independent);
        assert!(
            parts[1..]
                .iter()
                .all(|p| !p.fragment_start && !p.independent)
        );
        assert_eq!(
            parts[3].program_date_time,
            frame(566, 33, false).program_date_time
        );
        assert!(aligner.flush().is_none(), "nothing left over");
    }

    #[test]
    fn without_a_reference_parts_are_cut_at_the_target() {
        let mut aligner = PartAligner::new(200 * MS);
        let parts = parts_of(&mut aligner, &PartEnds::default(), &frames(0, 60));
        assert_eq!(parts.len(), 10);
        for (i, part) in parts.iter().enumerate() {
            assert_eq!(part.pts / MS, i as u64 * 200, "part {i}");
            assert_eq!(part.duration / MS, 200, "part {i}");
        }
    }

    #[test]
    fn a_reference_behind_falls_back_to_the_target() {
        // The reference has only published its first part so far.
        let mut reference = PartEnds::default();
        reference.record(0..166 * MS);
        let mut aligner = PartAligner::new(200 * MS);
        let parts = parts_of(&mut aligner, &reference, &frames(0, 15));
        let ends: Vec<u64> = parts.iter().map(|p| (p.pts + p.duration) / MS).collect();
        assert_eq!(ends, vec![166, 366]);
    }

    #[test]
    fn a_new_fragment_closes_the_part_in_progress() {
        let mut aligner = PartAligner::new(200 * MS);
        let reference = PartEnds::default();
        let mut parts = Vec::new();
        for (pts, duration) in frames(0, 4) {
            let done = aligner.push(
                frame(pts, duration, pts == 0),
                pts * MS..(pts + duration) * MS,
                &reference,
            );
            parts.extend(done);
        }
        assert!(parts.is_empty(), "4 frames are not a part yet");
        let parts = aligner.push(frame(133, 33, true), 133 * MS..166 * MS, &reference);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].1, 0..133 * MS);
        assert_eq!((parts[0].0.pts, parts[0].0.duration), (0, 133 * MS));
        let (last, presents) = aligner.flush().expect("the new fragment's first frame");
        assert_eq!(presents, 133 * MS..166 * MS);
        assert!(last.fragment_start && last.independent);
        assert_eq!(last.pts, 133 * MS);
    }

    #[test]
    fn a_frame_spanning_a_boundary_ends_its_part() {
        // A 15 fps rung against a 30 fps reference whose part ends mid-frame.
        let mut reference = PartEnds::default();
        reference.record(0..233 * MS);
        reference.record(233 * MS..433 * MS);
        let mut aligner = PartAligner::new(200 * MS);
        let rung: Vec<(u64, u64)> = (0..8).map(|i| (i * 67, 67)).collect();
        let parts = parts_of(&mut aligner, &reference, &rung);
        let ends: Vec<u64> = parts.iter().map(|p| (p.pts + p.duration) / MS).collect();
        assert_eq!(ends, vec![268, 469]);
    }

    #[test]
    fn the_reference_keeps_only_recent_ascending_ends() {
        let mut reference = PartEnds::default();
        for i in 0..200 {
            reference.record(i * 200 * MS..(i + 1) * 200 * MS);
        }
        reference.record(5 * MS..6 * MS);
        assert_eq!(reference.ends.len(), KEPT_ENDS);
        assert!(
            reference
                .ends
                .iter()
                .zip(reference.ends.iter().skip(1))
                .all(|(a, b)| a < b)
        );
        assert_eq!(reference.next_after(0), Some(137 * 200 * MS));
    }
}
