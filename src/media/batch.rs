//! Part-aligned batching of the frames handed to a `cmafmux` branch.
//!
//! Every buffer pushed into an `appsrc` wakes two threads: the `appsrc` streaming thread and the
//! muxer's aggregator thread. On a passthrough stream that is ~150 wakeups a second, and on a
//! small VM the context switches cost more than the muxing itself. But `cmafmux` publishes an
//! LL-HLS part only once it has seen the frame that *closes* it, so the frames before that one
//! can wait in a small buffer for free and go to GStreamer together, as one buffer list.
//!
//! [`PartBatcher`] decides, per frame, whether the frame may make `cmafmux` 0.14 close a chunk
//! (a part) or a fragment (a segment) — a superset of the muxer's own conditions
//! (`FMP4Mux::check_stream_filled`): a chunk closes at the first frame whose PTS is past chunk
//! start + chunk duration (strictly), or when a keyframe starts a new GOP; a fragment closes
//! once the GOP before the boundary keyframe has its final end, which for video is known at the
//! keyframe or at the first frame whose DTS reaches the keyframe's PTS (B-frames), and for audio
//! (every frame a sync sample) at the first frame at/after the fragment end. Such a frame flushes
//! everything held, itself included; other frames are held.
//!
//! Where chunks start is learnt from the muxer's own output ([`PartClock`], fed by the appsink
//! callback): the first chunk's PTS, then each chunk's duration (`cmafmux` sets it to chunk end −
//! chunk start, and each chunk starts where the previous ended). Until the clock knows a start,
//! and whenever its news is older than the frames arriving (the muxer is behind), the boundary
//! only looks earlier than it is: frames are flushed early — one more wakeup, never a later
//! part. To spare those wakeups in the common race (the frame after a part's closing frame
//! arrives in the same read batch, before the muxer has reported), a flush at a frame that
//! surely closes a chunk — past the exactly chained chunk end, no GOP half known, no fragment
//! end inside — assumes the next chunk starts at least half a chunk before the old end plus one
//! chunk, until the muxer reports anything. A hold limit ([`PartBatcher::new`]'s `max_hold`, measured on the injected clock) and a
//! frame-count limit bound what is held whatever the timestamps do; end of stream, caps changes
//! and errors flush first ([`PartBatcher::take`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Most frames held before a flush whatever the timestamps say.
pub const MAX_HELD_FRAMES: usize = 128;

/// Marks an unknown time in a [`PartClock`] atomic.
const UNKNOWN: u64 = u64::MAX;

/// The timing facts of one frame, in ns on the muxer's input timeline (running time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTimes {
    /// Presentation timestamp.
    pub pts: u64,
    /// Decode timestamp (= `pts` for audio).
    pub dts: u64,
    /// Duration, when known.
    pub duration: Option<u64>,
    /// `Some(keyframe)` for video; `None` for audio (every frame a sync sample).
    pub keyframe: Option<bool>,
}

/// Where the muxer's current chunk and fragment start, as far as its output tells.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Boundaries {
    /// Start of the chunk the muxer fills now.
    pub chunk_start: Option<u64>,
    /// Start of the current fragment.
    pub fragment_start: Option<u64>,
    /// The chunk start chained from the first chunk's PTS by the reported durations alone —
    /// exact when every chunk came out as reported, while `chunk_start` may be lower (see
    /// [`PartClock::on_chunk`]). Only used to be sure a frame closes a chunk.
    pub chunk_start_exact: Option<u64>,
}

/// What a muxer has published, written by its appsink's thread and read by the ingest side.
#[derive(Debug)]
pub struct PartClock {
    /// The muxer's `chunk-duration`, ns.
    chunk_ns: u64,
    /// The muxer's `fragment-duration`, ns.
    fragment_ns: u64,
    /// Start of the next chunk (= end of the last published one), ns; [`UNKNOWN`] before the
    /// first chunk.
    next_chunk: AtomicU64,
    /// Start of the current fragment, ns; [`UNKNOWN`] before the first chunk.
    fragment_start: AtomicU64,
    /// [`Boundaries::chunk_start_exact`], ns; [`UNKNOWN`] before the first chunk.
    exact_next: AtomicU64,
}

impl PartClock {
    /// The clock of a muxer with these chunk and fragment durations (ns).
    pub fn new(chunk_ns: u64, fragment_ns: u64) -> PartClock {
        PartClock {
            chunk_ns,
            fragment_ns,
            next_chunk: AtomicU64::new(UNKNOWN),
            fragment_start: AtomicU64::new(UNKNOWN),
            exact_next: AtomicU64::new(UNKNOWN),
        }
    }

    /// The muxer published a chunk: its header buffer's PTS (the earliest sample's), duration
    /// (chunk end − chunk start) and whether it starts a fragment. Called by the one thread
    /// that receives the muxer's output.
    pub fn on_chunk(&self, pts: u64, duration: u64, fragment_start: bool) {
        let known = self.next_chunk.load(Ordering::Relaxed);
        // Chunks are contiguous: this one starts where the last ended. The header PTS is the
        // earliest sample's, which is the start for the first chunk and for a fragment's first
        // chunk of a closed GOP; an open GOP's leading B-frames make it earlier — the lower
        // value only makes the boundary look earlier, which is safe.
        let start = if known == UNKNOWN {
            pts
        } else if fragment_start {
            known.min(pts)
        } else {
            known
        };
        let end = start.saturating_add(duration);
        let mut fragment = if fragment_start {
            start
        } else {
            self.fragment_start.load(Ordering::Relaxed)
        };
        // A chunk reaching the fragment end is the fragment's last when the muxer checks the
        // fragment first (it does whenever the fragment ends within the chunk), so the next
        // chunk starts a fragment. True for audio, where this is used; for video a late
        // keyframe can extend the fragment instead, but video frames do not use it.
        if fragment != UNKNOWN
            && start.saturating_add(self.chunk_ns) >= fragment.saturating_add(self.fragment_ns)
        {
            fragment = end;
        }
        let exact = match self.exact_next.load(Ordering::Relaxed) {
            UNKNOWN => pts,
            exact => exact,
        };
        self.exact_next
            .store(exact.saturating_add(duration), Ordering::Relaxed);
        self.fragment_start.store(fragment, Ordering::Relaxed);
        self.next_chunk.store(end, Ordering::Release);
    }

    /// The boundaries as last published.
    pub fn boundaries(&self) -> Boundaries {
        let known = |v: u64| (v != UNKNOWN).then_some(v);
        let chunk_start = known(self.next_chunk.load(Ordering::Acquire));
        Boundaries {
            chunk_start,
            fragment_start: known(self.fragment_start.load(Ordering::Relaxed)),
            chunk_start_exact: known(self.exact_next.load(Ordering::Relaxed)),
        }
    }
}

/// Holds the frames of the part in progress for one `cmafmux` input; see the module docs.
#[derive(Debug)]
pub struct PartBatcher<T> {
    /// The muxer's `chunk-duration`, ns.
    chunk_ns: u64,
    /// The muxer's `fragment-duration`, ns.
    fragment_ns: u64,
    /// Longest a frame is held.
    max_hold: Duration,
    /// Frames held, in arrival (decode) order.
    held: Vec<T>,
    /// When the oldest held frame arrived.
    held_since: Option<Instant>,
    /// PTS of the latest keyframe while its GOP's earliest PTS is not final for the muxer yet
    /// (until a frame's DTS reaches it).
    pending_keyframe: Option<u64>,
    /// End (PTS + duration) of the previous frame.
    last_end: Option<u64>,
    /// A lower bound of the first chunk's start, until the muxer published it: the first
    /// keyframe's DTS for video (no frame of its GOP presents earlier, and the muxer drops
    /// what comes before it), the first frame's PTS for audio.
    first_start: Option<u64>,
    /// Boundaries assumed after a flush that surely closed a chunk, until the muxer reports
    /// anything: (the reported chunk start they stand in for, the assumed boundaries). Without
    /// them a frame arriving before the muxer's report (same read batch) would see the old
    /// boundary and be flushed alone.
    provisional: Option<(Option<u64>, Boundaries)>,
    /// Flushes so far (for the benchmarks' and tests' accounting).
    flushes: u64,
}

impl<T> PartBatcher<T> {
    /// A batcher for a muxer with these chunk and fragment durations (ns); frames are held at
    /// most `max_hold`.
    pub fn new(chunk_ns: u64, fragment_ns: u64, max_hold: Duration) -> PartBatcher<T> {
        PartBatcher {
            chunk_ns,
            fragment_ns,
            max_hold,
            held: Vec::new(),
            held_since: None,
            pending_keyframe: None,
            last_end: None,
            first_start: None,
            provisional: None,
            flushes: 0,
        }
    }

    /// Takes `item` (a frame with `times`, arriving `now`) given the muxer's published
    /// `bounds`. Returns the frames to hand to the muxer now, `item` last, or `None` to hold.
    pub fn push(
        &mut self,
        item: T,
        times: FrameTimes,
        bounds: Boundaries,
        now: Instant,
    ) -> Option<Vec<T>> {
        let (closes, assumed) = self.may_close(&times, bounds);
        self.held.push(item);
        let since = *self.held_since.get_or_insert(now);
        let overdue = now.saturating_duration_since(since) >= self.max_hold;
        if !closes && !overdue && self.held.len() < MAX_HELD_FRAMES {
            return None;
        }
        if !assumed {
            self.provisional = self.assume_after(&times, bounds);
        }
        Some(self.take())
    }

    /// The boundaries to assume after flushing at a frame that surely makes the muxer close a
    /// chunk (not a fragment): its PTS past the exact chunk end, its GOP's earliest PTS known
    /// (video), the fragment end beyond this chunk. The muxer then splits at the first frame at
    /// or after the chunk end (audio: after the frame straddling it), so the next chunk starts
    /// at least there; half a chunk of margin covers timestamp gaps.
    fn assume_after(
        &self,
        times: &FrameTimes,
        bounds: Boundaries,
    ) -> Option<(Option<u64>, Boundaries)> {
        let exact = bounds.chunk_start_exact?;
        let end = exact.checked_add(self.chunk_ns)?;
        let fragment_end = bounds.fragment_start?.checked_add(self.fragment_ns)?;
        let sure = self.pending_keyframe.is_none()
            && times.keyframe != Some(true)
            && times.pts > end
            && fragment_end > end;
        sure.then(|| {
            let start = end - self.chunk_ns / 2;
            (
                bounds.chunk_start,
                Boundaries {
                    chunk_start: Some(start),
                    fragment_start: bounds.fragment_start,
                    chunk_start_exact: None,
                },
            )
        })
    }

    /// Everything held, oldest first (end of stream, caps change, error).
    pub fn take(&mut self) -> Vec<T> {
        self.held_since = None;
        if !self.held.is_empty() {
            self.flushes += 1;
        }
        std::mem::take(&mut self.held)
    }

    /// Frames held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Flushes so far.
    pub fn flushes(&self) -> u64 {
        self.flushes
    }

    /// Whether the muxer, once it has this frame, may close a chunk or a fragment, and whether
    /// that was judged on assumed boundaries.
    fn may_close(&mut self, times: &FrameTimes, bounds: Boundaries) -> (bool, bool) {
        let previous_end = self.last_end.replace(
            times
                .pts
                .saturating_add(times.duration.unwrap_or(0))
                .max(self.last_end.unwrap_or(0)),
        );
        if self.first_start.is_none() && times.keyframe != Some(false) {
            self.first_start = Some(times.dts.min(times.pts));
        }
        let (bounds, assumed) = match self.provisional {
            Some((replaced, assumed)) if replaced == bounds.chunk_start => (assumed, true),
            _ => {
                self.provisional = None;
                let bounds = match bounds.chunk_start {
                    Some(_) => bounds,
                    None => Boundaries {
                        chunk_start: self.first_start,
                        fragment_start: self.first_start,
                        chunk_start_exact: None,
                    },
                };
                (bounds, false)
            }
        };
        let mut closes = false;
        match times.keyframe {
            // A new GOP: the previous GOP's end (and for the GOP before it, finality) is known.
            Some(true) => {
                closes = true;
                self.pending_keyframe = Some(times.pts);
            }
            // The new GOP's earliest PTS became final: the previous GOP's end is final.
            Some(false) => {
                if self.pending_keyframe.is_some_and(|k| times.dts >= k) {
                    closes = true;
                    self.pending_keyframe = None;
                }
            }
            // Audio: every frame its own GOP; the fragment ends once a frame reaches its end.
            None => {
                if let Some(start) = bounds.fragment_start {
                    let end = start.saturating_add(self.fragment_ns);
                    if times.pts >= end || previous_end.is_some_and(|e| e >= end) {
                        closes = true;
                    }
                }
            }
        }
        let closes = match bounds.chunk_start {
            Some(start) => closes || times.pts > start.saturating_add(self.chunk_ns),
            // Before the first keyframe: the muxer drops these frames anyway.
            None => true,
        };
        (closes, assumed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gst::prelude::*;

    const MS: u64 = 1_000_000;

    fn video(pts_ms: u64, dts_ms: u64, keyframe: bool) -> FrameTimes {
        FrameTimes {
            pts: pts_ms * MS,
            dts: dts_ms * MS,
            duration: Some(33 * MS),
            keyframe: Some(keyframe),
        }
    }

    fn audio(pts_ms: u64) -> FrameTimes {
        FrameTimes {
            pts: pts_ms * MS,
            dts: pts_ms * MS,
            duration: Some(21 * MS),
            keyframe: None,
        }
    }

    fn at(chunk_ms: u64, fragment_ms: u64) -> Boundaries {
        Boundaries {
            chunk_start: Some(chunk_ms * MS),
            fragment_start: Some(fragment_ms * MS),
            chunk_start_exact: None,
        }
    }

    fn batcher() -> PartBatcher<u32> {
        PartBatcher::new(200 * MS, 1000 * MS, Duration::from_millis(400))
    }

    #[test]
    fn holds_a_parts_frames_until_one_is_past_its_end() {
        let mut b = batcher();
        let now = Instant::now();
        // Chunk [0, 200): frames up to PTS 200 (not past the end) are held.
        for (i, pts) in [33, 67, 100, 133, 167, 200].into_iter().enumerate() {
            let frame = video(pts, pts, false);
            assert_eq!(b.push(i as u32, frame, at(0, 0), now), None, "frame {pts}");
        }
        assert_eq!(b.held(), 6);
        let flushed = b.push(6, video(233, 233, false), at(0, 0), now);
        assert_eq!(flushed, Some(vec![0, 1, 2, 3, 4, 5, 6]));
        assert_eq!(b.held(), 0);
        assert_eq!(b.flushes(), 1);
    }

    #[test]
    fn before_the_first_chunk_the_first_keyframe_bounds_its_start() {
        let mut b = batcher();
        let now = Instant::now();
        let unknown = Boundaries::default();
        // Frames before the first keyframe: nothing to bound the start with, flushed.
        assert_eq!(b.push(0, video(5, 5, false), unknown, now), Some(vec![0]));
        // B-frame stream: the keyframe's DTS (10) is the bound, not its PTS (77).
        assert_eq!(b.push(1, video(77, 10, true), unknown, now), Some(vec![1]));
        assert_eq!(b.push(2, video(177, 43, false), unknown, now), None);
        assert_eq!(
            b.push(3, video(110, 77, false), unknown, now),
            Some(vec![2, 3])
        );
        assert_eq!(b.push(4, video(143, 110, false), unknown, now), None);
        assert_eq!(b.push(5, video(210, 143, false), unknown, now), None);
        assert_eq!(
            b.push(6, video(211, 177, false), unknown, now),
            Some(vec![4, 5, 6])
        );
    }

    #[test]
    fn keyframe_and_the_frame_making_its_gop_final_flush() {
        let mut b = batcher();
        let now = Instant::now();
        let at = |c: u64, f: u64| at(c + 100, f);
        assert_eq!(b.push(0, video(1033, 967, false), at(900, 0), now), None);
        // A keyframe (B-frame stream: DTS 2 frames behind PTS).
        assert_eq!(
            b.push(1, video(1067, 1000, true), at(900, 0), now),
            Some(vec![0, 1])
        );
        assert_eq!(b.push(2, video(1167, 1033, false), at(900, 0), now), None);
        // DTS reaches the keyframe's PTS: the muxer now knows the GOP's earliest PTS.
        assert_eq!(
            b.push(3, video(1100, 1067, false), at(900, 0), now),
            Some(vec![2, 3])
        );
        // Only once.
        assert_eq!(b.push(4, video(1133, 1100, false), at(900, 0), now), None);
    }

    #[test]
    fn audio_flushes_at_the_fragment_end_and_past_the_chunk_end() {
        let mut b = PartBatcher::new(200 * MS, 1000 * MS, Duration::from_secs(1));
        let now = Instant::now();
        // Chunk [900, 1100) of fragment [0, 1000).
        assert_eq!(b.push(0, audio(960), at(900, 0), now), None);
        // The previous frame ends at 981 < 1000; this one starts before the end but the muxer
        // only needs a frame ending at/after the fragment end: held.
        assert_eq!(b.push(1, audio(975), at(900, 0), now), None);
        // Previous end 996 < 1000, PTS 999 < 1000: held.
        assert_eq!(b.push(2, audio(999), at(900, 0), now), None);
        // The previous frame ends at 1020 >= 1000: the fragment can close.
        assert_eq!(
            b.push(3, audio(1010), at(900, 0), now),
            Some(vec![0, 1, 2, 3])
        );
        // Fragment end not known (before the first chunk): the chunk rule alone, unknown start.
        let mut b = PartBatcher::new(200 * MS, 1000 * MS, Duration::from_secs(1));
        let unknown_fragment = Boundaries {
            chunk_start: Some(0),
            fragment_start: None,
            chunk_start_exact: None,
        };
        assert_eq!(b.push(0, audio(100), unknown_fragment, now), None);
        assert_eq!(
            b.push(1, audio(201), unknown_fragment, now),
            Some(vec![0, 1])
        );
    }

    #[test]
    fn hold_limits_flush_whatever_the_timestamps() {
        let mut b = batcher();
        let start = Instant::now();
        assert_eq!(b.push(0, video(10, 10, false), at(0, 0), start), None);
        let later = start + Duration::from_millis(399);
        assert_eq!(b.push(1, video(11, 11, false), at(0, 0), later), None);
        let overdue = start + Duration::from_millis(400);
        assert_eq!(
            b.push(2, video(12, 12, false), at(0, 0), overdue),
            Some(vec![0, 1, 2])
        );
        // Frame count limit: identical timestamps never cross a boundary.
        for i in 0..MAX_HELD_FRAMES - 1 {
            assert_eq!(
                b.push(i as u32, video(20, 20, false), at(0, 0), later),
                None
            );
        }
        let flushed = b.push(0, video(20, 20, false), at(0, 0), later).unwrap();
        assert_eq!(flushed.len(), MAX_HELD_FRAMES);
    }

    #[test]
    fn a_sure_chunk_close_assumes_the_next_boundary_until_the_muxer_reports() {
        let now = Instant::now();
        let stale = Boundaries {
            chunk_start_exact: Some(0),
            ..at(0, 0)
        };
        let mut b = batcher();
        for (i, pts) in [33, 67, 100, 133, 167].into_iter().enumerate() {
            assert_eq!(b.push(i as u32, video(pts, pts, false), stale, now), None);
        }
        // Past the exact end of [0, 200): the muxer surely closes it.
        assert_eq!(
            b.push(5, video(233, 233, false), stale, now),
            Some(vec![0, 1, 2, 3, 4, 5])
        );
        // Before the muxer's report: the next chunk is assumed to start at least at 100.
        assert_eq!(b.push(6, video(267, 267, false), stale, now), None);
        // The report (chunk start 200) replaces the assumption.
        let reported = Boundaries {
            chunk_start_exact: Some(200 * MS),
            ..at(200, 0)
        };
        assert_eq!(b.push(7, video(300, 300, false), reported, now), None);
        assert_eq!(
            b.push(8, video(433, 433, false), reported, now),
            Some(vec![6, 7, 8])
        );
        // Without an exact chunk start nothing is assumed: the stale boundary flushes again.
        let mut b = batcher();
        let unsure = Boundaries {
            chunk_start_exact: None,
            ..stale
        };
        assert_eq!(
            b.push(0, video(233, 233, false), unsure, now),
            Some(vec![0])
        );
        assert_eq!(
            b.push(1, video(267, 267, false), unsure, now),
            Some(vec![1])
        );
    }

    #[test]
    fn take_empties_and_counts_only_non_empty_flushes() {
        let mut b = batcher();
        assert!(b.take().is_empty());
        assert_eq!(b.flushes(), 0);
        b.push(7, video(10, 10, false), at(0, 0), Instant::now());
        assert_eq!(b.take(), vec![7]);
        assert_eq!(b.flushes(), 1);
    }

    #[test]
    fn clock_chains_chunk_durations_from_the_first_chunk() {
        let clock = PartClock::new(200 * MS, 1000 * MS);
        // The exact chain never takes the lower fragment-start PTS.
        let exact = |b: Boundaries, exact_ms: u64| Boundaries {
            chunk_start_exact: Some(exact_ms * MS),
            ..b
        };
        assert_eq!(clock.boundaries(), Boundaries::default());
        clock.on_chunk(40 * MS, 200 * MS, true);
        assert_eq!(clock.boundaries(), exact(at(240, 40), 240));
        // A chunk whose earliest sample is a B-frame before its start: the chain decides.
        clock.on_chunk(200 * MS, 233 * MS, false);
        assert_eq!(clock.boundaries(), exact(at(473, 40), 473));
        // A fragment start reported earlier than the chain (open GOP): the earlier value.
        clock.on_chunk(470 * MS, 200 * MS, true);
        assert_eq!(clock.boundaries(), exact(at(670, 470), 673));
        clock.on_chunk(900 * MS, 200 * MS, true);
        assert_eq!(clock.boundaries(), exact(at(870, 670), 873));
        clock.on_chunk(870 * MS, 200 * MS, false);
        clock.on_chunk(1070 * MS, 200 * MS, false);
        assert_eq!(clock.boundaries(), exact(at(1270, 670), 1273));
        clock.on_chunk(1270 * MS, 200 * MS, false);
        assert_eq!(clock.boundaries(), exact(at(1470, 670), 1473));
        // Chunk [1470, 1670) reaches the fragment end (1670): it ends the fragment.
        clock.on_chunk(1470 * MS, 190 * MS, false);
        assert_eq!(clock.boundaries(), exact(at(1660, 1660), 1663));
    }

    /// One muxer, driven from the test thread: each [`Mux::sync`] returns once the muxer has
    /// processed everything given so far (a serialized event behind the buffers reaches the
    /// appsink only after the aggregate call that took them returned).
    struct Mux {
        pipeline: gst::Pipeline,
        pad: gst::Pad,
        sink: gst_app::AppSink,
        synced: std::sync::mpsc::Receiver<()>,
        /// (header PTS, duration, fragment start) of every chunk so far.
        chunks: Vec<(u64, u64, bool)>,
    }

    impl Mux {
        fn new(caps: &gst::Caps, chunk_ns: u64, fragment_ns: u64) -> Mux {
            let pipeline = gst::Pipeline::new();
            let mux = gst::ElementFactory::make("cmafmux")
                .property("chunk-duration", gst::ClockTime::from_nseconds(chunk_ns))
                .property(
                    "fragment-duration",
                    gst::ClockTime::from_nseconds(fragment_ns),
                )
                .build()
                .unwrap();
            mux.set_property_from_str("send-force-keyunit", "false");
            let sink = gst_app::AppSink::builder().sync(false).build();
            sink.set_property("buffer-list", true);
            pipeline.add_many([&mux, sink.upcast_ref()]).unwrap();
            mux.link(&sink).unwrap();
            let (tx, synced) = std::sync::mpsc::channel();
            sink.static_pad("sink").unwrap().add_probe(
                gst::PadProbeType::EVENT_DOWNSTREAM,
                move |_, info| {
                    if let Some(gst::PadProbeData::Event(event)) = &info.data
                        && event.type_() == gst::EventType::CustomDownstream
                    {
                        let _ = tx.send(());
                    }
                    gst::PadProbeReturn::Ok
                },
            );
            pipeline.set_state(gst::State::Playing).unwrap();
            let pad = mux.static_pad("sink").unwrap();
            assert!(pad.send_event(gst::event::StreamStart::new("test")));
            assert!(pad.send_event(gst::event::Caps::new(caps)));
            let segment = gst::FormattedSegment::<gst::ClockTime>::new();
            assert!(pad.send_event(gst::event::Segment::new(&segment)));
            Mux {
                pipeline,
                pad,
                sink,
                synced,
                chunks: Vec::new(),
            }
        }

        fn chain(&self, buffer: gst::Buffer) {
            self.pad.chain(buffer).unwrap();
        }

        /// Waits until the muxer processed all input; returns the chunks published by then.
        fn sync(&mut self) -> usize {
            let event = gst::event::CustomDownstream::new(gst::Structure::new_empty("test-sync"));
            assert!(self.pad.send_event(event));
            self.synced
                .recv_timeout(Duration::from_secs(30))
                .expect("muxer processed the input");
            while let Some(sample) = self.sink.try_pull_sample(gst::ClockTime::ZERO) {
                for buffer in sample.buffer_list().unwrap().iter() {
                    let flags = buffer.flags();
                    if flags.contains(gst::BufferFlags::HEADER)
                        && !flags.contains(gst::BufferFlags::DISCONT)
                    {
                        self.chunks.push((
                            buffer.pts().unwrap().nseconds(),
                            buffer.duration().unwrap().nseconds(),
                            !flags.contains(gst::BufferFlags::DELTA_UNIT),
                        ));
                    }
                }
            }
            self.chunks.len()
        }
    }

    impl Drop for Mux {
        fn drop(&mut self) {
            let _ = self.pipeline.set_state(gst::State::Null);
        }
    }

    /// Encoded frames from `description` (ending in appsink `out`), timestamps moved to start
    /// at 0 and, with `rtmp_ms`, rounded to whole milliseconds as RTMP carries them.
    fn encoded(description: &str, rtmp_ms: bool) -> (gst::Caps, Vec<gst::Buffer>) {
        let samples = crate::media::run_to_appsink(description);
        let caps = samples[0].caps().unwrap().to_owned();
        let buffers: Vec<gst::Buffer> = samples
            .iter()
            .map(|s| s.buffer().unwrap().to_owned())
            .collect();
        let base = buffers
            .iter()
            .map(|b| b.dts().or(b.pts()).unwrap().nseconds())
            .min()
            .unwrap();
        let time = |t: u64| {
            let t = t - base;
            if rtmp_ms { (t + MS / 2) / MS * MS } else { t }
        };
        let buffers = buffers
            .into_iter()
            .map(|mut buffer| {
                let b = buffer.make_mut();
                let pts = time(b.pts().unwrap().nseconds());
                b.set_pts(gst::ClockTime::from_nseconds(pts));
                let dts = b.dts().map(|d| time(d.nseconds()));
                b.set_dts(dts.map(gst::ClockTime::from_nseconds));
                buffer
            })
            .collect();
        (caps, buffers)
    }

    fn times(buffer: &gst::Buffer, video: bool) -> FrameTimes {
        let pts = buffer.pts().unwrap().nseconds();
        FrameTimes {
            pts,
            dts: buffer.dts().map(|d| d.nseconds()).unwrap_or(pts),
            duration: buffer.duration().map(|d| d.nseconds()),
            keyframe: video.then(|| !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT)),
        }
    }

    /// Runs `frames` through a real cmafmux twice — one frame at a time, and batched by a
    /// [`PartBatcher`] learning the boundaries from the muxer's output as the pipeline does —
    /// and checks that after every frame the same chunks were out: batching never delays a
    /// part. Returns (frames, flushes).
    fn check_against_cmafmux(
        description: &str,
        video: bool,
        rtmp_ms: bool,
        lag: usize,
    ) -> (usize, u64) {
        let (chunk_ns, fragment_ns) = (200 * MS, if video { 800 * MS } else { 1000 * MS });
        let (caps, frames) = encoded(description, rtmp_ms);
        let mut reference = Mux::new(&caps, chunk_ns, fragment_ns);
        let expected: Vec<usize> = frames
            .iter()
            .map(|frame| {
                reference.chain(frame.clone());
                reference.sync()
            })
            .collect();

        let mut batched = Mux::new(&caps, chunk_ns, fragment_ns);
        let clock = PartClock::new(chunk_ns, fragment_ns);
        let mut batcher = PartBatcher::new(chunk_ns, fragment_ns, Duration::from_secs(5));
        let start = Instant::now();
        // Chunks out after each frame, reported to the clock `lag` frames later (the muxer's
        // report racing the next frames of the same read batch).
        let mut reports: std::collections::VecDeque<Vec<(u64, u64, bool)>> = Default::default();
        let mut seen = 0;
        for (i, frame) in frames.iter().enumerate() {
            let t = times(frame, video);
            let now = start + Duration::from_nanos(t.dts);
            let pushed = batcher.push(frame.clone(), t, clock.boundaries(), now);
            if let Some(list) = pushed {
                for buffer in list {
                    batched.chain(buffer);
                }
            }
            let count = batched.sync();
            reports.push_back(batched.chunks[seen..].to_vec());
            seen = count;
            while reports.len() > lag {
                for (pts, duration, fragment_start) in reports.pop_front().unwrap_or_default() {
                    clock.on_chunk(pts, duration, fragment_start);
                }
            }
            assert_eq!(
                count, expected[i],
                "{description}: chunks out after frame {i} ({t:?}), batched vs one by one"
            );
        }
        assert_eq!(batched.chunks, reference.chunks, "{description}");
        assert!(reference.chunks.len() >= 10, "{:?}", reference.chunks);
        (frames.len(), batcher.flushes())
    }

    const X264: &str = "videotestsrc num-buffers=150 ! video/x-raw,width=160,height=120,framerate=30/1 \
        ! x264enc key-int-max=45 speed-preset=ultrafast";
    const CAPS_AVC: &str =
        "video/x-h264,stream-format=avc,alignment=au ! appsink name=out sync=false";

    /// [`check_against_cmafmux`] with exact and RTMP (whole ms) timestamps, the muxer's
    /// report in time and one frame late; batching must cut the pushes to under a third.
    fn check_all(description: &str, video: bool) {
        for rtmp_ms in [false, true] {
            for lag in [0, 1] {
                let (frames, flushes) = check_against_cmafmux(description, video, rtmp_ms, lag);
                assert!(
                    flushes * 3 < frames as u64,
                    "{flushes} flushes for {frames} frames (rtmp_ms {rtmp_ms}, lag {lag})"
                );
            }
        }
    }

    #[test]
    fn batched_h264_without_b_frames_publishes_every_part_as_early_as_frame_by_frame() {
        check_all(&format!("{X264} bframes=0 ! {CAPS_AVC}"), true);
    }

    #[test]
    fn batched_h264_with_b_frames_publishes_every_part_as_early_as_frame_by_frame() {
        check_all(
            &format!("{X264} bframes=2 b-adapt=false ! {CAPS_AVC}"),
            true,
        );
    }

    #[test]
    fn batched_aac_publishes_every_part_as_early_as_frame_by_frame() {
        check_all(
            "audiotestsrc num-buffers=120 samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 \
             ! avenc_aac ! aacparse ! audio/mpeg,stream-format=raw ! appsink name=out sync=false",
            false,
        );
    }
}
