//! What HLS offers another feature that puts timed metadata into a stream (the cues feature:
//! product highlights as EXT-X-DATERANGE and as ID3-in-`emsg`) and follows its media timeline
//! (rundowns). HLS owns these types and traits; the feature implements them, so it depends on
//! `hls` and `hls` never on it. Nothing here reads a clock: media time comes from the ingested
//! frames.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::packager::CmafChunk;
use super::playlist::DateRange;
use super::stream::HlsStream;

/// The media time of an ingested frame, as HLS follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTime {
    /// Presentation time, ns on the stream timeline.
    pub media_ns: u64,
    /// A video frame (else audio).
    pub video: bool,
}

/// Something ingested that may move the media timeline on (implemented by the media layer's
/// units; configuration records have no time).
pub trait Ingested {
    /// The unit's media time, if it is a frame.
    fn frame_time(&self) -> Option<FrameTime>;
}

impl Ingested for FrameTime {
    fn frame_time(&self) -> Option<FrameTime> {
        Some(*self)
    }
}

/// "Now" on a stream's media timeline: the PTS of the latest ingested video frame, or of the
/// latest frame of any track for audio-only streams. Lock-free; only ever raised.
#[derive(Debug)]
pub struct MediaNow {
    /// Latest video PTS, ns ([`NONE`] before the first).
    video: AtomicU64,
    /// Latest time of any frame, ns.
    any: AtomicU64,
}

/// "No time yet" in [`MediaNow`]'s atomics.
const NONE: u64 = u64::MAX;

impl Default for MediaNow {
    fn default() -> Self {
        MediaNow {
            video: AtomicU64::new(NONE),
            any: AtomicU64::new(NONE),
        }
    }
}

impl MediaNow {
    /// Records an ingested frame.
    pub fn observe(&self, frame: FrameTime) {
        if frame.video {
            raise(&self.video, frame.media_ns);
        }
        raise(&self.any, frame.media_ns);
    }

    /// The latest video PTS (latest frame of any track without video), ns; `None` before any
    /// frame.
    pub fn now_ns(&self) -> Option<u64> {
        read(&self.video).or(read(&self.any))
    }
}

fn raise(slot: &AtomicU64, value: u64) {
    let _ = slot.fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
        (current == NONE || value > current).then_some(value)
    });
}

fn read(slot: &AtomicU64) -> Option<u64> {
    Some(slot.load(Ordering::Acquire)).filter(|&v| v != NONE)
}

/// Another feature's part in every new stream of a [`super::registry::Registry`]. Called on
/// the ingest threads: keep it short.
pub trait StreamObserver: Send + Sync {
    /// The timed metadata a new session of stream `name` carries (called once per session,
    /// before it has renditions); `None` for none.
    fn timed_metadata(&self, name: &str) -> Option<Arc<dyn TimedMetadata>>;

    /// The latest ingested frame of `stream` is at `now_ns` ("now" on its media timeline).
    fn on_media(&self, stream: &HlsStream, now_ns: u64);
}

/// What a media playlist covers, for [`TimedMetadata::render`].
#[derive(Debug, Clone, Copy)]
pub struct View {
    /// PROGRAM-DATE-TIME of the first listed segment of the full playlist (`None`: nothing
    /// listed yet, every entry is listed).
    pub window_start: Option<DateTime<Utc>>,
    /// Media time of the latest ingested frame, ns (entries whose end is at or before it are
    /// finished and get their final DURATION).
    pub now_ns: u64,
    /// The stream ended (EXT-X-ENDLIST): every entry is final.
    pub ended: bool,
    /// This is a Playlist Delta Update.
    pub delta: Option<Delta>,
}

/// A Playlist Delta Update's view.
#[derive(Debug, Clone, Copy)]
pub struct Delta {
    /// PROGRAM-DATE-TIME of the first segment that is not skipped.
    pub boundary: Option<DateTime<Utc>>,
    /// CAN-SKIP-UNTIL: how far back a client's last reload may be.
    pub skip_until: Duration,
    /// `_HLS_skip=v2`: skip EXT-X-DATERANGEs the client already has.
    pub skip_dateranges: bool,
}

/// The EXT-X-DATERANGE part of one playlist.
#[derive(Debug, Default, PartialEq)]
pub struct Rendered {
    /// The EXT-X-DATERANGE tags to write, in order.
    pub dateranges: Vec<DateRange>,
    /// EXT-X-SKIP RECENTLY-REMOVED-DATERANGES (delta updates that skip dateranges).
    pub recently_removed: Vec<String>,
}

/// The timed metadata of one session: listed in every media playlist as EXT-X-DATERANGE and
/// carried in-band in every rendition's chunks. `Any` so that the feature that made it can
/// find it again ([`HlsStream::timed_metadata`]).
pub trait TimedMetadata: Any + Send + Sync {
    /// The EXT-X-DATERANGEs of a playlist covering `view`.
    fn render(&self, view: &View) -> Rendered;

    /// A new in-band carrier for one rendition.
    fn carrier(self: Arc<Self>) -> Box<dyn InBandCarrier>;
}

/// The in-band carriage of one rendition: puts what is due into each chunk before it is
/// published.
pub trait InBandCarrier: Send {
    /// A new init segment (the track's timescale may change).
    fn handle_init(&mut self, init: &[u8]);

    /// `chunk` with the metadata that is due in it.
    fn handle_chunk(&mut self, chunk: CmafChunk) -> CmafChunk;

    /// The chunk last returned by [`Self::handle_chunk`] was not published: what it carried
    /// rides in the next one.
    fn requeue_last(&mut self);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_now_is_the_latest_video_pts_else_the_latest_frame() {
        let now = MediaNow::default();
        assert_eq!(now.now_ns(), None);
        let frame = |media_ns, video| FrameTime { media_ns, video };
        now.observe(frame(40, false));
        assert_eq!(now.now_ns(), Some(40), "audio only so far");
        now.observe(frame(20, true));
        now.observe(frame(90, false));
        assert_eq!(now.now_ns(), Some(20), "video leads once there is video");
        now.observe(frame(10, true));
        assert_eq!(now.now_ns(), Some(20), "never goes back (B-frames)");
        now.observe(frame(0, true));
        now.observe(frame(30, true));
        assert_eq!(now.now_ns(), Some(30));
    }
}
