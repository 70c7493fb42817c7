//! Splitting `cmafmux` output into the init segment and chunks, by buffer flags alone: a pure
//! function over the buffers of one appsink sample.
//!
//! cmafmux flags the init segment (`ftyp`+`moov`) HEADER|DISCONT and each chunk's `moof`
//! HEADER, plus DELTA_UNIT unless the chunk starts a fragment. The chunk's sample data follows
//! until the next HEADER (each sample buffer DELTA_UNIT, the last one also MARKER).

use std::ops::Range;

use bytes::{Bytes, BytesMut};

/// One buffer of cmafmux output, as the splitter reads it.
#[derive(Debug, Clone, Copy)]
pub(super) struct MuxedBuffer<'a> {
    /// The buffer's flags.
    pub(super) flags: gst::BufferFlags,
    /// Its PTS on the muxer's timeline (the buffer position), ns.
    pub(super) pts: Option<u64>,
    /// Its duration, ns.
    pub(super) duration: Option<u64>,
    /// Its bytes.
    pub(super) data: &'a [u8],
}

/// What one sample of cmafmux output holds, in order.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Muxed {
    /// An init segment (`ftyp`, `moov`).
    Init(Bytes),
    /// A chunk: its `moof` and sample data.
    Chunk(Chunk),
}

/// One chunk read from cmafmux output.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Chunk {
    /// The `moof`, then the sample data.
    pub(super) data: Bytes,
    /// PTS of its first sample in decode order, running time (0 when the `moof` has none).
    pub(super) pts: u64,
    /// The `moof`'s PTS on the muxer's timeline (buffer positions, as the input batcher sees
    /// frames); `None` when it has none.
    pub(super) position: Option<u64>,
    /// Decode-time duration, ns (0 when the `moof` has none).
    pub(super) duration: u64,
    /// The chunk starts a fragment (its `moof` is not DELTA_UNIT).
    pub(super) fragment_start: bool,
    /// The chunk starts with a sync sample: a fragment start, or any chunk of a track whose
    /// every frame is one (audio).
    pub(super) independent: bool,
    /// What its samples present (running time): the union of the sample buffers' spans, which
    /// with B-frames is not `pts` plus `duration`; that when no sample buffer has a PTS.
    pub(super) presents: Range<u64>,
}

/// A chunk whose sample data is still being read.
struct OpenChunk {
    /// The `moof`, then the sample data read so far.
    data: BytesMut,
    /// See [`Chunk::pts`].
    pts: u64,
    /// See [`Chunk::position`].
    position: Option<u64>,
    /// See [`Chunk::duration`].
    duration: u64,
    /// See [`Chunk::fragment_start`].
    fragment_start: bool,
    /// The sample buffers' presentation span so far.
    presents: Option<Range<u64>>,
}

impl OpenChunk {
    /// The chunk, read to its end.
    fn close(self, all_independent: bool) -> Chunk {
        Chunk {
            data: self.data.freeze(),
            pts: self.pts,
            position: self.position,
            duration: self.duration,
            fragment_start: self.fragment_start,
            independent: self.fragment_start || all_independent,
            presents: self
                .presents
                .unwrap_or(self.pts..self.pts.saturating_add(self.duration)),
        }
    }
}

/// Splits `buffers` (one appsink sample, in order) into init segments and chunks:
/// - HEADER|DISCONT, whatever else is set: an init segment; it ends the open chunk.
/// - HEADER without DISCONT: a `moof` that opens a chunk (ending the open one), a fragment
///   start unless DELTA_UNIT is set.
/// - Anything else (sample data: DELTA_UNIT, MARKER, DISCONT, none): appended to the open
///   chunk; dropped when no chunk is open.
///
/// `running_time` maps a time on the muxer's timeline to running time; `all_independent` marks
/// every chunk independent (audio: every frame is a sync sample).
pub(super) fn split(
    buffers: &[MuxedBuffer<'_>],
    running_time: impl Fn(u64) -> u64,
    all_independent: bool,
) -> Vec<Muxed> {
    let mut out = Vec::new();
    let mut open: Option<OpenChunk> = None;
    for (index, buffer) in buffers.iter().enumerate() {
        let header = buffer.flags.contains(gst::BufferFlags::HEADER);
        if header {
            if let Some(chunk) = open.take() {
                out.push(Muxed::Chunk(chunk.close(all_independent)));
            }
            if buffer.flags.contains(gst::BufferFlags::DISCONT) {
                out.push(Muxed::Init(Bytes::copy_from_slice(buffer.data)));
            } else {
                open = Some(open_chunk(buffer, &buffers[index + 1..], &running_time));
            }
        } else if let Some(chunk) = open.as_mut() {
            chunk.data.extend_from_slice(buffer.data);
            if let Some(pts) = buffer.pts {
                let end = pts.saturating_add(buffer.duration.unwrap_or(0));
                let (start, end) = (running_time(pts), running_time(end));
                let span = chunk.presents.get_or_insert(start..end);
                *span = span.start.min(start)..span.end.max(end);
            }
        }
    }
    if let Some(chunk) = open {
        out.push(Muxed::Chunk(chunk.close(all_independent)));
    }
    out
}

/// A chunk opened by `moof`, with room for the sample data in `rest` up to the next HEADER:
/// one allocation of its exact size, no regrowth while its samples are appended.
fn open_chunk(
    moof: &MuxedBuffer<'_>,
    rest: &[MuxedBuffer<'_>],
    running_time: impl Fn(u64) -> u64,
) -> OpenChunk {
    let size = moof.data.len()
        + rest
            .iter()
            .take_while(|b| !b.flags.contains(gst::BufferFlags::HEADER))
            .map(|b| b.data.len())
            .sum::<usize>();
    let mut data = BytesMut::with_capacity(size);
    data.extend_from_slice(moof.data);
    OpenChunk {
        data,
        // Running time, not the buffer's PTS: encoders (x264enc sets a 1000 h minimum PTS)
        // shift PTS and segment together, so only running time is on the source's timeline.
        pts: moof.pts.map(running_time).unwrap_or(0),
        position: moof.pts,
        duration: moof.duration.unwrap_or(0),
        fragment_start: !moof.flags.contains(gst::BufferFlags::DELTA_UNIT),
        presents: None,
    }
}

#[cfg(test)]
mod tests {
    use gst::BufferFlags as F;

    use super::*;

    /// A buffer with `flags`, PTS, duration and bytes.
    fn buf(
        flags: F,
        pts: Option<u64>,
        duration: Option<u64>,
        data: &'static [u8],
    ) -> MuxedBuffer<'static> {
        MuxedBuffer {
            flags,
            pts,
            duration,
            data,
        }
    }

    fn init() -> MuxedBuffer<'static> {
        buf(F::HEADER | F::DISCONT, Some(0), None, b"moov")
    }

    /// A chunk's `moof` at `pts` lasting `duration`, DELTA_UNIT unless it starts a fragment.
    fn moof(pts: u64, duration: u64, fragment_start: bool) -> MuxedBuffer<'static> {
        let flags = if fragment_start {
            F::HEADER
        } else {
            F::HEADER | F::DELTA_UNIT
        };
        buf(flags, Some(pts), Some(duration), b"moof")
    }

    /// A sample buffer presenting `pts..pts + duration`.
    fn sample(pts: u64, duration: u64, data: &'static [u8]) -> MuxedBuffer<'static> {
        buf(F::DELTA_UNIT, Some(pts), Some(duration), data)
    }

    fn identity(t: u64) -> u64 {
        t
    }

    fn chunks(out: Vec<Muxed>) -> Vec<Chunk> {
        out.into_iter()
            .map(|m| match m {
                Muxed::Chunk(chunk) => chunk,
                Muxed::Init(_) => panic!("an init segment where a chunk was expected"),
            })
            .collect()
    }

    #[test]
    fn nothing_in_nothing_out() {
        assert_eq!(split(&[], identity, false), []);
    }

    #[test]
    fn init_segment_alone() {
        assert_eq!(
            split(&[init()], identity, false),
            [Muxed::Init(Bytes::from_static(b"moov"))]
        );
    }

    #[test]
    fn fragment_start_chunk_takes_its_samples_up_to_the_end() {
        let out = split(
            &[
                init(),
                moof(100, 40, true),
                sample(100, 20, b"ab"),
                buf(F::DELTA_UNIT | F::MARKER, Some(120), Some(20), b"cd"),
            ],
            identity,
            false,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], Muxed::Init(Bytes::from_static(b"moov")));
        let Muxed::Chunk(chunk) = &out[1] else {
            panic!("{out:?}");
        };
        assert_eq!(
            *chunk,
            Chunk {
                data: Bytes::from_static(b"moofabcd"),
                pts: 100,
                position: Some(100),
                duration: 40,
                fragment_start: true,
                independent: true,
                presents: 100..140,
            }
        );
        assert_eq!(chunk.data.len(), 8);
    }

    #[test]
    fn delta_unit_moof_continues_a_fragment_and_is_not_independent() {
        let [chunk] = <[Chunk; 1]>::try_from(chunks(split(
            &[moof(0, 20, false), sample(0, 20, b"x")],
            identity,
            false,
        )))
        .unwrap();
        assert!(!chunk.fragment_start);
        assert!(!chunk.independent);
    }

    #[test]
    fn every_chunk_of_an_all_sync_track_is_independent() {
        let out = chunks(split(
            &[moof(0, 20, false), sample(0, 20, b"x"), moof(20, 20, true)],
            identity,
            true,
        ));
        assert_eq!(
            out.iter()
                .map(|c| (c.fragment_start, c.independent))
                .collect::<Vec<_>>(),
            [(false, true), (true, true)]
        );
    }

    #[test]
    fn each_moof_starts_a_new_chunk() {
        let out = chunks(split(
            &[
                moof(0, 20, true),
                sample(0, 20, b"a"),
                moof(20, 20, false),
                sample(20, 20, b"b"),
                sample(40, 0, b"c"),
            ],
            identity,
            false,
        ));
        assert_eq!(
            out.iter().map(|c| c.data.clone()).collect::<Vec<_>>(),
            [Bytes::from_static(b"moofa"), Bytes::from_static(b"moofbc")]
        );
        assert_eq!(out[1].pts, 20);
        assert_eq!(out[1].presents, 20..40);
    }

    #[test]
    fn an_init_segment_ends_the_open_chunk() {
        let out = split(
            &[
                moof(0, 20, true),
                sample(0, 20, b"a"),
                init(),
                sample(20, 20, b"lost"),
                moof(20, 20, true),
                sample(20, 20, b"b"),
            ],
            identity,
            false,
        );
        let kinds: Vec<&str> = out
            .iter()
            .map(|m| match m {
                Muxed::Init(_) => "init",
                Muxed::Chunk(_) => "chunk",
            })
            .collect();
        assert_eq!(kinds, ["chunk", "init", "chunk"]);
        let Muxed::Chunk(last) = &out[2] else {
            panic!("{out:?}");
        };
        assert_eq!(last.data, Bytes::from_static(b"moofb"));
    }

    #[test]
    fn sample_data_before_any_moof_is_dropped() {
        assert_eq!(
            split(&[sample(0, 20, b"orphan"), init()], identity, false),
            [Muxed::Init(Bytes::from_static(b"moov"))]
        );
    }

    #[test]
    fn discont_wins_over_delta_unit_on_a_header() {
        let out = split(
            &[buf(
                F::HEADER | F::DISCONT | F::DELTA_UNIT,
                None,
                None,
                b"moov",
            )],
            identity,
            false,
        );
        assert_eq!(out, [Muxed::Init(Bytes::from_static(b"moov"))]);
    }

    #[test]
    fn discont_or_marker_without_header_is_sample_data() {
        let [chunk] = <[Chunk; 1]>::try_from(chunks(split(
            &[
                moof(0, 40, true),
                buf(F::DISCONT, Some(0), Some(20), b"a"),
                buf(F::MARKER, Some(20), Some(20), b"b"),
            ],
            identity,
            false,
        )))
        .unwrap();
        assert_eq!(chunk.data, Bytes::from_static(b"moofab"));
    }

    #[test]
    fn marker_on_a_header_is_still_a_moof() {
        let [chunk] = <[Chunk; 1]>::try_from(chunks(split(
            &[buf(F::HEADER | F::MARKER, Some(5), Some(10), b"moof")],
            identity,
            false,
        )))
        .unwrap();
        assert!(chunk.fragment_start);
        assert_eq!(chunk.presents, 5..15);
    }

    #[test]
    fn reordered_samples_present_their_union_not_pts_plus_duration() {
        // I P B B in decode order: the chunk's decode span is 0..80, its samples present
        // 40..120 (a composition offset of 40 on every frame).
        let [chunk] = <[Chunk; 1]>::try_from(chunks(split(
            &[
                moof(0, 80, true),
                sample(40, 20, b"I"),
                sample(100, 20, b"P"),
                sample(60, 20, b"B"),
                sample(80, 20, b"B"),
            ],
            identity,
            false,
        )))
        .unwrap();
        assert_eq!((chunk.pts, chunk.duration), (0, 80));
        assert_eq!(chunk.presents, 40..120);
    }

    #[test]
    fn times_become_running_time_but_the_position_stays_on_the_muxer_timeline() {
        let hour = 3_600_000_000_000;
        let [chunk] = <[Chunk; 1]>::try_from(chunks(split(
            &[moof(hour + 10, 20, true), sample(hour + 10, 20, b"a")],
            |t| t - hour,
            false,
        )))
        .unwrap();
        assert_eq!(chunk.pts, 10);
        assert_eq!(chunk.position, Some(hour + 10));
        assert_eq!(chunk.presents, 10..30);
    }

    #[test]
    fn moof_without_times_and_samples_without_pts() {
        let [chunk] = <[Chunk; 1]>::try_from(chunks(split(
            &[
                buf(F::HEADER, None, None, b"moof"),
                buf(F::DELTA_UNIT, None, Some(20), b"a"),
            ],
            identity,
            false,
        )))
        .unwrap();
        assert_eq!((chunk.pts, chunk.position, chunk.duration), (0, None, 0));
        assert_eq!(chunk.presents, 0..0);
        assert_eq!(chunk.data, Bytes::from_static(b"moofa"));
    }

    #[test]
    fn span_end_saturates() {
        let [chunk] = <[Chunk; 1]>::try_from(chunks(split(
            &[moof(u64::MAX - 5, 10, true), sample(u64::MAX - 5, 10, b"a")],
            identity,
            false,
        )))
        .unwrap();
        assert_eq!(chunk.presents, u64::MAX - 5..u64::MAX);
    }
}
