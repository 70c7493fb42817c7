//! The transcoding ladder: the publisher's video decoded once and encoded again per rung
//! (`pipelines/ladder.pipeline` + one `pipelines/rung.pipeline` per rung), each rung its own
//! HLS rendition next to the passthrough `source`.
//!
//! - Rungs larger than the source are skipped for that publish ([`plan`]), and so are rungs
//!   whose frame rate is above the source's when another rung of their size carries the
//!   source's rate; frame rates are only ever capped (videorate drops, never duplicates).
//! - Keyframe alignment: cuecast records the source's keyframe times as it feeds the ladder and
//!   sends each rung's encoder a force-key-unit event for the frame at that time
//!   ([`align_keyframes`]); the encoders place no keyframes of their own. Every rendition's
//!   fragments (segments) and chunks (parts) then start at the same media times.
//! - Decoupling: the ladder has its own appsrc. When its queue is full (the ladder cannot keep
//!   up) whole GOPs are dropped there ([`LadderFeed`]), counted and logged, and the passthrough
//!   never waits. Each rung's lag behind the source is measured per chunk ([`RungMonitor`]).

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gst::prelude::*;

use super::MediaError;
use super::RungConfig;
use super::template::{RENDITION_SINK_PREFIX, Template};
use crate::metrics::Metrics;
use crate::metrics::stream::StreamStats;

/// Name of the ladder's appsrc.
pub const LADDER_SRC: &str = "ladder_src";
/// Name of the tee carrying decoded frames.
pub const DECODED_TEE: &str = "decoded";
/// Prefix of each rung's encoder name (the rest is the rung name).
pub const ENCODER_PREFIX: &str = "encoder_";
/// Most compressed media (ns) queued in front of the decoder before the ladder counts as
/// behind and drops GOPs.
pub const MAX_LADDER_QUEUE_NS: u64 = 2_000_000_000;
/// Source keyframe times remembered for the rungs' encoders.
const MAX_KEYFRAMES: usize = 256;
/// Structure name of the GstVideo force-key-unit event.
const FORCE_KEY_UNIT: &str = "GstForceKeyUnit";

/// The source's video codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceCodec {
    /// H.264.
    H264,
    /// H.265.
    H265,
    /// AV1 (transcoded only: no passthrough).
    Av1,
}

impl SourceCodec {
    /// Its short name (`h264`, `h265`, `av1`), as the stream status names it.
    pub fn name(self) -> &'static str {
        match self {
            SourceCodec::H264 => "h264",
            SourceCodec::H265 => "h265",
            SourceCodec::Av1 => "av1",
        }
    }

    /// The decoder element for `{decoder}`.
    pub fn decoder(self) -> &'static str {
        match self {
            SourceCodec::H264 => "avdec_h264",
            SourceCodec::H265 => "avdec_h265",
            SourceCodec::Av1 => "av1dec",
        }
    }

    /// True when this GStreamer installation has the decoder.
    pub fn decoder_available(self) -> bool {
        gst::ElementFactory::find(self.decoder()).is_some()
    }
}

/// What the ladder needs to know about the source's video (from its first SPS).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceVideo {
    /// Codec.
    pub codec: SourceCodec,
    /// Display width.
    pub width: u32,
    /// Display height.
    pub height: u32,
    /// Frames per second, when the SPS declares it.
    pub frame_rate: Option<f64>,
}

/// A rung planned for one publish.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRung {
    /// Its configuration.
    pub config: RungConfig,
    /// Output width (the rung's box fitted to the source's aspect ratio).
    pub width: u32,
    /// Output height.
    pub height: u32,
}

/// The rungs to produce for `source`, and the skipped ones with the reason, never upscaling:
/// - a rung whose box is wider or taller than the source is skipped;
/// - a rung whose `max_fps` is above the source's frame rate (when the SPS declares one)
///   would carry the source's rate, not its own: it is skipped when another rung of the same
///   output size already carries that rate (a 720p60 rung next to a 720p30 one, for a 30 fps
///   source), and kept, at the source's rate, when it is the only rung at its size.
pub fn plan(
    rungs: &[RungConfig],
    source: &SourceVideo,
) -> (Vec<PlannedRung>, Vec<(String, String)>) {
    let mut planned = Vec::new();
    let mut skipped = Vec::new();
    let above_source_rate = |rung: &RungConfig| {
        source
            .frame_rate
            .is_some_and(|rate| f64::from(rung.max_fps) > rate + 0.5)
    };
    let mut fitting = Vec::new();
    for rung in rungs {
        if rung.width > source.width || rung.height > source.height {
            skipped.push((
                rung.name.clone(),
                format!(
                    "{}x{} is larger than the source's {}x{} (no upscaling)",
                    rung.width, rung.height, source.width, source.height
                ),
            ));
            continue;
        }
        let (width, height) = fit(rung.width, rung.height, source.width, source.height);
        fitting.push(PlannedRung {
            config: rung.clone(),
            width,
            height,
        });
    }
    for candidate in &fitting {
        if above_source_rate(&candidate.config) {
            // A rung at the source's rate, or an earlier one also capped to it.
            let same_size = |other: &&PlannedRung| {
                (other.width, other.height) == (candidate.width, candidate.height)
            };
            let twin = fitting
                .iter()
                .filter(same_size)
                .find(|other| !above_source_rate(&other.config))
                .or_else(|| planned.iter().find(same_size));
            if let Some(twin) = twin {
                skipped.push((
                    candidate.config.name.clone(),
                    format!(
                        "{} fps is above the source's {:.3} fps (no frame duplication); \
                         rung {} already carries {}x{} at the source's rate",
                        candidate.config.max_fps,
                        source.frame_rate.unwrap_or_default(),
                        twin.config.name,
                        twin.width,
                        twin.height
                    ),
                ));
                continue;
            }
        }
        planned.push(candidate.clone());
    }
    (planned, skipped)
}

/// The largest even size with the source's aspect ratio inside the `box_w`×`box_h` box.
pub fn fit(box_w: u32, box_h: u32, src_w: u32, src_h: u32) -> (u32, u32) {
    let even = |v: f64| ((v / 2.0).round() as u32).max(1) * 2;
    if src_w == 0 || src_h == 0 {
        return (box_w, box_h);
    }
    let (src_w, src_h) = (f64::from(src_w), f64::from(src_h));
    let width_at_box_height = f64::from(box_h) * src_w / src_h;
    if width_at_box_height <= f64::from(box_w) + 1.0 {
        (even(width_at_box_height).min(box_w), box_h)
    } else {
        (box_w, even(f64::from(box_w) * src_h / src_w).min(box_h))
    }
}

/// The loaded ladder templates and rungs.
#[derive(Debug)]
pub struct Ladder {
    head: Template,
    rung: Template,
    rungs: Vec<RungConfig>,
}

impl Ladder {
    /// Loads and validates the head and rung templates for every configured rung (`base`: the
    /// fragment and chunk durations of the passthrough's placeholders).
    pub fn load(
        dir: &Path,
        head: &str,
        rung: &str,
        rungs: &[RungConfig],
        base: &super::template::Timings,
    ) -> Result<Ladder, MediaError> {
        let ladder = Ladder {
            head: Template::read(dir, head)?,
            rung: Template::read(dir, rung)?,
            rungs: rungs.to_vec(),
        };
        ladder.validate(base)?;
        Ok(ladder)
    }

    /// The configured rungs.
    pub fn rungs(&self) -> &[RungConfig] {
        &self.rungs
    }

    /// The gst-launch text of the head and `planned` rungs for `codec`.
    pub fn describe(
        &self,
        codec: SourceCodec,
        planned: &[PlannedRung],
        base: &super::template::Timings,
    ) -> Result<String, MediaError> {
        let mut text = self
            .head
            .render(&BTreeMap::from([("decoder", codec.decoder().to_string())]))?;
        for rung in planned {
            text.push('\n');
            text.push_str(&self.rung.render(&rung_values(rung, base))?);
        }
        Ok(text)
    }

    fn validate(&self, base: &super::template::Timings) -> Result<(), MediaError> {
        let codecs = [SourceCodec::H264, SourceCodec::H265, SourceCodec::Av1];
        // AV1 sources are refused at publish time when av1dec is missing (no startup error:
        // H.264/H.265 publishers do not need it).
        for codec in codecs.into_iter().filter(|c| c.decoder_available()) {
            let text = self.describe(codec, &[], base)?;
            let pipeline = self.head.launch(&text)?;
            let src = pipeline.by_name(LADDER_SRC).ok_or_else(|| {
                self.head
                    .error(&format!("missing element named `{LADDER_SRC}` (an appsrc)"))
            })?;
            if src.downcast_ref::<gst_app::AppSrc>().is_none() {
                return Err(self
                    .head
                    .error(&format!("element `{LADDER_SRC}` must be an appsrc")));
            }
            if pipeline.by_name(DECODED_TEE).is_none() {
                return Err(self
                    .head
                    .error(&format!("missing element named `{DECODED_TEE}` (a tee)")));
            }
        }
        let encoder_type = gst::glib::Type::from_name("GstVideoEncoder");
        for rung in &self.rungs {
            // Each rung alone behind a stand-in head, so errors name the rung template.
            let planned = PlannedRung {
                config: rung.clone(),
                width: rung.width,
                height: rung.height,
            };
            let text = format!(
                "videotestsrc num-buffers=1 ! tee name={DECODED_TEE}\n{}",
                self.rung.render(&rung_values(&planned, base))?
            );
            let pipeline = self.rung.launch(&text)?;
            let encoder_name = format!("{ENCODER_PREFIX}{}", rung.name);
            let encoder = pipeline.by_name(&encoder_name).ok_or_else(|| {
                self.rung.error(&format!(
                    "rung `{}`: missing element named `{encoder_name}` (a video encoder)",
                    rung.name
                ))
            })?;
            if encoder_type.is_none_or(|t| !encoder.type_().is_a(t)) {
                return Err(self.rung.error(&format!(
                    "rung `{}`: `{encoder_name}` must be a video encoder (GstVideoEncoder)",
                    rung.name
                )));
            }
            let sink_name = format!("{RENDITION_SINK_PREFIX}{}", rung.name);
            let sink = pipeline.by_name(&sink_name).ok_or_else(|| {
                self.rung.error(&format!(
                    "rung `{}`: missing appsink named `{sink_name}`",
                    rung.name
                ))
            })?;
            if sink.downcast_ref::<gst_app::AppSink>().is_none() {
                return Err(self
                    .rung
                    .error(&format!("element `{sink_name}` must be an appsink")));
            }
        }
        Ok(())
    }
}

/// Placeholder values of one rung: `base`'s durations and the rung's own.
fn rung_values(
    rung: &PlannedRung,
    base: &super::template::Timings,
) -> BTreeMap<&'static str, String> {
    let mut values = base.placeholders();
    let c = &rung.config;
    values.extend([
        ("name", c.name.clone()),
        ("width", rung.width.to_string()),
        ("height", rung.height.to_string()),
        ("max_rate", (c.max_fps + 1).to_string()),
        ("video_bitrate_kbps", c.video_bitrate_kbps.to_string()),
        ("preset", c.preset.clone()),
        ("profile", c.profile.clone()),
        ("threads", c.threads.to_string()),
    ]);
    values
}

/// Why the ladder did not take a source frame.
#[derive(Debug, thiserror::Error)]
pub enum LadderError {
    /// The ladder's appsrc refused the frame (its pipeline stopped or failed).
    #[error("ladder refused data: {0:?}")]
    Refused(gst::FlowError),
}

/// Source keyframe times (PTS, ns) not yet passed by every rung.
#[derive(Debug, Default)]
pub struct KeyframeTimes(Mutex<VecDeque<u64>>);

impl KeyframeTimes {
    /// Records a source keyframe.
    pub fn push(&self, pts: u64) {
        let mut times = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if times.len() == MAX_KEYFRAMES {
            times.pop_front();
        }
        times.push_back(pts);
    }

    /// True when a source keyframe lies in `(after, pts]` (`after` = None: exactly at `pts`).
    fn any_in(&self, after: Option<u64>, pts: u64) -> bool {
        let times = self.0.lock().unwrap_or_else(|e| e.into_inner());
        times
            .iter()
            .any(|&k| k <= pts && after.is_none_or(|a| k > a) && (after.is_some() || k == pts))
    }
}

/// Makes `encoder` produce a keyframe on the first frame at or after every source keyframe
/// time (normally the very frame: decoding, scaling and rate capping keep PTS).
pub fn align_keyframes(encoder: &gst::Element, keyframes: Arc<KeyframeTimes>) {
    let Some(pad) = encoder.static_pad("sink") else {
        return;
    };
    let last = Mutex::new(None::<u64>);
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(buffer) = info.buffer() else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(pts) = buffer.pts() else {
            return gst::PadProbeReturn::Ok;
        };
        let pts_ns = pts.nseconds();
        let previous = {
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            last.replace(pts_ns)
        };
        // An encoder's first frame is a keyframe anyway (and GstVideoEncoder would take a
        // request on it as the reference for throttling later ones).
        if previous.is_some() && keyframes.any_in(previous, pts_ns) {
            let running_time = pad
                .sticky_event::<gst::event::Segment>(0)
                .and_then(|e| {
                    e.segment()
                        .downcast_ref::<gst::ClockTime>()
                        .and_then(|s| s.to_running_time(pts))
                })
                .unwrap_or(pts);
            let structure = gst::Structure::builder(FORCE_KEY_UNIT)
                .field("timestamp", pts_ns)
                .field("stream-time", pts_ns)
                .field("running-time", running_time.nseconds())
                .field("all-headers", true)
                .field("count", 0u32)
                .build();
            pad.send_event(gst::event::CustomDownstream::new(structure));
        }
        gst::PadProbeReturn::Ok
    });
}

/// Feeds the ladder's appsrc; drops whole GOPs while the ladder is behind.
pub struct LadderFeed {
    src: gst_app::AppSrc,
    keyframes: Arc<KeyframeTimes>,
    /// Set by the appsrc's enough-data callback, cleared by need-data.
    behind: Arc<AtomicBool>,
    /// Dropping until the next keyframe after the queue drained.
    skipping: bool,
    /// Frames dropped in the current episode.
    dropped: u64,
    /// Block instead of dropping (file transcoding, benchmarks).
    block: bool,
    /// Latest source PTS pushed (for the rungs' lag).
    latest_pts: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
    /// The stream's live statistics (its dropped frames).
    stats: Arc<StreamStats>,
    stream: String,
}

impl LadderFeed {
    /// Configures the ladder's appsrc.
    pub fn new(
        src: gst_app::AppSrc,
        keyframes: Arc<KeyframeTimes>,
        latest_pts: Arc<AtomicU64>,
        block: bool,
        metrics: Arc<Metrics>,
        stream: &str,
    ) -> LadderFeed {
        src.set_format(gst::Format::Time);
        src.set_is_live(false);
        src.set_stream_type(gst_app::AppStreamType::Stream);
        src.set_max_bytes(64 * 1024 * 1024);
        src.set_max_time(Some(gst::ClockTime::from_nseconds(MAX_LADDER_QUEUE_NS)));
        src.set_block(block);
        let behind = Arc::new(AtomicBool::new(false));
        if !block {
            let (full, drained) = (Arc::clone(&behind), Arc::clone(&behind));
            src.set_callbacks(
                gst_app::AppSrcCallbacks::builder()
                    .enough_data(move |_| full.store(true, Ordering::Relaxed))
                    .need_data(move |_, _| drained.store(false, Ordering::Relaxed))
                    .build(),
            );
        }
        LadderFeed {
            src,
            keyframes,
            behind,
            skipping: false,
            dropped: 0,
            block,
            latest_pts,
            stats: metrics.streams.get_or_create(stream),
            metrics,
            stream: stream.to_string(),
        }
    }

    /// New source caps.
    pub fn set_caps(&self, caps: &gst::Caps) {
        self.src.set_caps(Some(caps));
    }

    /// One source frame (the same buffer the passthrough gets).
    pub fn push(
        &mut self,
        buffer: gst::Buffer,
        pts: u64,
        keyframe: bool,
    ) -> Result<(), LadderError> {
        self.latest_pts.fetch_max(pts, Ordering::Relaxed);
        if !self.block {
            if self.behind.load(Ordering::Relaxed) && !self.skipping {
                self.skipping = true;
                tracing::warn!(
                    stream = %self.stream,
                    "transcoding ladder cannot keep up with the source; dropping GOPs for every rung \
                     (the source rendition is unaffected)"
                );
            }
            if self.skipping {
                if keyframe && !self.behind.load(Ordering::Relaxed) {
                    self.skipping = false;
                    tracing::info!(stream = %self.stream, dropped = self.dropped, "transcoding ladder caught up");
                    self.dropped = 0;
                } else {
                    self.dropped += 1;
                    self.metrics
                        .ladder_dropped_frames
                        .fetch_add(1, Ordering::Relaxed);
                    self.stats.add_dropped(1);
                    return Ok(());
                }
            }
        }
        if keyframe {
            self.keyframes.push(pts);
        }
        self.src
            .push_buffer(buffer)
            .map(|_| ())
            .map_err(LadderError::Refused)
    }

    /// End of stream.
    pub fn end_of_stream(&self) {
        let _ = self.src.end_of_stream();
    }
}

/// Watches one rung's output against the source timeline.
pub struct RungMonitor {
    /// Latest source PTS fed to the pipeline.
    pub latest_pts: Arc<AtomicU64>,
    /// Lag above which the rung is reported as lagging, ns.
    pub threshold_ns: u64,
    /// Currently lagging.
    lagging: AtomicBool,
    metrics: Arc<Metrics>,
    stream: String,
    rung: String,
}

impl RungMonitor {
    /// A monitor for `rung` of `stream`.
    pub fn new(
        latest_pts: Arc<AtomicU64>,
        threshold_ns: u64,
        metrics: Arc<Metrics>,
        stream: &str,
        rung: &str,
    ) -> RungMonitor {
        RungMonitor {
            latest_pts,
            threshold_ns,
            lagging: AtomicBool::new(false),
            metrics,
            stream: stream.to_string(),
            rung: rung.to_string(),
        }
    }

    /// A chunk ending at `end_pts` was published.
    pub fn on_chunk(&self, end_pts: u64) {
        let lag = self
            .latest_pts
            .load(Ordering::Relaxed)
            .saturating_sub(end_pts);
        self.metrics.set_rung_lag(&self.stream, &self.rung, lag);
        let lagging = lag > self.threshold_ns;
        if lagging != self.lagging.swap(lagging, Ordering::Relaxed) {
            if lagging {
                tracing::warn!(
                    stream = %self.stream,
                    rendition = %self.rung,
                    lag_s = lag as f64 / 1e9,
                    "transcoded rendition is lagging behind the source"
                );
            } else {
                tracing::info!(stream = %self.stream, rendition = %self.rung, "transcoded rendition caught up");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rung(name: &str, width: u32, height: u32) -> RungConfig {
        RungConfig {
            name: name.into(),
            width,
            height,
            video_bitrate_kbps: 800,
            max_fps: 30,
            profile: "main".into(),
            preset: "veryfast".into(),
            threads: 1,
        }
    }

    fn source(width: u32, height: u32) -> SourceVideo {
        SourceVideo {
            codec: SourceCodec::H264,
            width,
            height,
            frame_rate: Some(30.0),
        }
    }

    #[test]
    fn plan_skips_rungs_larger_than_the_source() {
        let rungs = [
            rung("720p", 1280, 720),
            rung("480p", 854, 480),
            rung("360p", 640, 360),
        ];
        let (planned, skipped) = plan(&rungs, &source(1280, 720));
        let sizes: Vec<_> = planned
            .iter()
            .map(|p| (p.config.name.as_str(), p.width, p.height))
            .collect();
        assert_eq!(
            sizes,
            [("720p", 1280, 720), ("480p", 854, 480), ("360p", 640, 360)]
        );
        assert!(skipped.is_empty());

        let (planned, skipped) = plan(&rungs, &source(640, 360));
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].config.name, "360p");
        let names: Vec<_> = skipped.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(names, ["720p", "480p"]);
        assert!(skipped[0].1.contains("no upscaling"), "{}", skipped[0].1);
    }

    #[test]
    fn plan_skips_rungs_above_the_source_frame_rate_that_duplicate_another() {
        let fps = |name: &str, width, height, max_fps| RungConfig {
            max_fps,
            ..rung(name, width, height)
        };
        let rungs = [
            fps("720p60", 1280, 720, 60),
            fps("720p30", 1280, 720, 30),
            fps("480p60", 854, 480, 60),
            fps("480p50", 854, 480, 50),
            fps("360p30", 640, 360, 30),
        ];
        let names = |planned: &[PlannedRung]| -> Vec<String> {
            planned.iter().map(|p| p.config.name.clone()).collect()
        };
        // 30 fps source: 720p60 would be 720p30 again; 480p60 is the first at its size and is
        // kept (capped at the source's rate), 480p50 would repeat it.
        let (planned, skipped) = plan(&rungs, &source(1280, 720));
        assert_eq!(names(&planned), ["720p30", "480p60", "360p30"]);
        let skipped_names: Vec<&str> = skipped.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(skipped_names, ["720p60", "480p50"]);
        assert!(skipped[1].1.contains("480p60"), "{}", skipped[1].1);
        assert!(
            skipped[0].1.contains("above the source's 30.000 fps")
                && skipped[0].1.contains("720p30"),
            "{}",
            skipped[0].1
        );
        // 60 fps source: every rung fits.
        let source60 = SourceVideo {
            frame_rate: Some(60.0),
            ..source(1280, 720)
        };
        let (planned, skipped) = plan(&rungs, &source60);
        assert_eq!(
            names(&planned),
            ["720p60", "720p30", "480p60", "480p50", "360p30"]
        );
        assert!(skipped.is_empty());
        // Unknown source rate (no VUI timing): nothing is skipped for its rate.
        let unknown = SourceVideo {
            frame_rate: None,
            ..source(1280, 720)
        };
        assert_eq!(plan(&rungs, &unknown).0.len(), 5);
        // 29.97 fps source with 30 fps rungs: not "above".
        let ntsc = SourceVideo {
            frame_rate: Some(29.97),
            ..source(1280, 720)
        };
        assert_eq!(plan(&rungs[1..2], &ntsc).0.len(), 1);
    }

    #[test]
    fn fit_keeps_the_aspect_ratio_inside_the_box() {
        assert_eq!(fit(854, 480, 1280, 720), (854, 480));
        assert_eq!(fit(640, 360, 1920, 1080), (640, 360));
        // 4:3 source in a 16:9 box: full height, narrower.
        assert_eq!(fit(854, 480, 1024, 768), (640, 480));
        // Ultra-wide source: full width, shorter.
        assert_eq!(fit(854, 480, 2560, 1080), (854, 360));
        // Portrait (phone) source.
        assert_eq!(fit(854, 480, 720, 1280), (270, 480));
    }

    #[test]
    fn keyframe_times_match_exactly_or_by_interval() {
        let k = KeyframeTimes::default();
        k.push(2_000);
        assert!(k.any_in(None, 2_000));
        assert!(!k.any_in(None, 1_999));
        assert!(k.any_in(Some(1_967), 2_000));
        // The keyframe's own frame was dropped (rate cap): the next frame takes it.
        assert!(k.any_in(Some(1_967), 2_033));
        assert!(!k.any_in(Some(2_000), 2_033));
    }

    fn base() -> crate::media::template::Timings {
        super::super::MediaSettings::placeholder_values(
            std::time::Duration::from_secs(2),
            std::time::Duration::from_millis(200),
        )
    }

    #[test]
    fn builtin_templates_are_valid_and_describe_the_rungs() {
        crate::media::init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let rungs = [rung("480p", 854, 480), rung("360p", 640, 360)];
        let ladder = Ladder::load(
            dir.path(),
            "ladder.pipeline",
            "rung.pipeline",
            &rungs,
            &base(),
        )
        .unwrap();
        let (planned, _) = plan(ladder.rungs(), &source(1280, 720));
        let text = ladder
            .describe(SourceCodec::H265, &planned, &base())
            .unwrap();
        assert!(text.contains("avdec_h265"), "{text}");
        assert!(text.contains("x264enc name=encoder_480p"), "{text}");
        assert!(text.contains("appsink name=hls_360p"), "{text}");
        assert!(text.contains("width=854,height=480"), "{text}");
    }

    /// The error of loading the ladder with `rung_template` as rung.pipeline.
    fn rung_template_error(rung_template: &str) -> String {
        crate::media::init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rung.pipeline"), rung_template).unwrap();
        Ladder::load(
            dir.path(),
            "ladder.pipeline",
            "rung.pipeline",
            &[rung("360p", 640, 360)],
            &base(),
        )
        .unwrap_err()
        .to_string()
    }

    #[test]
    fn broken_rung_template_error_names_template_and_element() {
        let err = rung_template_error(
            "decoded. ! queue ! no_such_encoder name=encoder_{name} ! appsink name=hls_{name}",
        );
        assert!(err.contains("rung.pipeline"), "{err}");
        assert!(err.contains("no_such_encoder"), "{err}");

        let err = rung_template_error(
            "decoded. ! queue ! videoconvert name=encoder_{name} ! appsink name=hls_{name}",
        );
        assert!(
            err.contains("encoder_360p") && err.contains("video encoder"),
            "{err}"
        );
    }
}
