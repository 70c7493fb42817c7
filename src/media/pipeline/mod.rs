//! One GStreamer pipeline per live stream: publisher media units in (appsrc), CMAF out (appsink)
//! into the stream's HLS renditions.
//!
//! The pipeline starts once the tracks are known: when both the video and the audio decoder
//! configuration have arrived, or when `track_wait` of media time has passed with only one of them
//! (the other branch is then removed from the pipeline). Until then units are held in order.
//!
//! The data flow, one module per step: `waiting` holds units until the tracks are known, `caps`
//! turns codec configurations into GStreamer caps, `build` instantiates the graph from the
//! templates, `feed` pushes units into its appsrcs, `sink` reads `cmafmux` output from its
//! appsinks into the HLS renditions (split into chunks by the pure `cmaf`), and `bus` watches
//! errors and the end (docs/media.md).

mod build;
mod bus;
mod caps;
mod cmaf;
mod feed;
mod sink;
mod waiting;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::MediaError;
use super::frame::MediaUnit;
use super::ladder::Ladder;
use super::template::{Template, Timings};
use crate::hls::stream::HlsStream;
use crate::metrics::Metrics;
pub(crate) use caps::source_video;
use feed::Running;
use waiting::{Waiting, unit_time};

/// Most bytes of media held while waiting for the tracks to be known.
const MAX_PENDING_BYTES: usize = 32 * 1024 * 1024;

/// Settings shared by all stream pipelines.
#[derive(Debug)]
pub struct MediaSettings {
    /// The passthrough template.
    pub template: Template,
    /// The durations that fill the templates' placeholders (`video_fragment_ns`,
    /// `audio_fragment_ns`, `chunk_ns`) and pace the run time checks.
    pub values: Timings,
    /// Media time to wait for a missing track, ns.
    pub track_wait_ns: u64,
    /// Where ingest-to-part latency is recorded.
    pub metrics: Arc<Metrics>,
    /// The transcoding ladder; `None` = passthrough only.
    pub ladder: Option<Ladder>,
    /// Publish the source video as rendition `source` (forced on when no rung fits).
    pub source_rung: bool,
    /// The ladder's input blocks instead of dropping GOPs when it is behind (file
    /// transcoding and benchmarks; a live server drops so the source never waits).
    pub ladder_block: bool,
}

impl MediaSettings {
    /// The [`Timings`] for the given segment and part durations (see [`Timings::new`]).
    pub fn placeholder_values(segment: Duration, part: Duration) -> Timings {
        Timings::new(segment, part)
    }
}

/// The media side of one publish: owned by the ingest connection, fed in decode order.
pub struct StreamPipeline {
    stream: Arc<HlsStream>,
    settings: Arc<MediaSettings>,
    state: State,
    /// Added to every timestamp: 0 for a new stream; for a publish that continues a stream
    /// after a reconnect, moves the publisher's first timestamp just past the stream's media
    /// end, so the CMAF timeline stays monotonic across the seam. Set by the first timed unit.
    offset: Option<i128>,
    /// Set by [`StreamPipeline::interrupt`]: at end of stream the renditions are interrupted
    /// (a reconnect may continue them) instead of ended.
    interrupted: Arc<AtomicBool>,
}

/// Where a publish is.
enum State {
    /// Tracks not known yet.
    Waiting(Waiting),
    /// The pipeline runs.
    Running(Box<Running>),
    /// End of stream sent (or the pipeline failed).
    Finished,
}

impl StreamPipeline {
    /// A pipeline for `stream`, started when the tracks are known.
    pub fn new(stream: Arc<HlsStream>, settings: Arc<MediaSettings>) -> StreamPipeline {
        StreamPipeline {
            stream,
            settings,
            state: State::Waiting(Waiting::default()),
            offset: None,
            interrupted: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Moves `unit` onto the stream's timeline (see [`StreamPipeline::offset`]) and records it.
    fn place(&mut self, mut unit: MediaUnit) -> MediaUnit {
        let Some(time) = unit_time(&unit) else {
            return unit;
        };
        let offset = *self
            .offset
            .get_or_insert_with(|| match self.stream.continue_at() {
                Some(base) => {
                    self.stream.reanchor(base);
                    i128::from(base) - i128::from(time)
                }
                None => {
                    self.stream.anchor(time);
                    0
                }
            });
        let shift =
            |t: &mut u64| *t = u64::try_from((i128::from(*t) + offset).max(0)).unwrap_or(u64::MAX);
        match &mut unit {
            MediaUnit::Video(frame) => {
                shift(&mut frame.dts);
                shift(&mut frame.pts);
                self.stream.note_media(frame.pts.max(frame.dts));
            }
            MediaUnit::Audio(frame) => {
                shift(&mut frame.pts);
                self.stream.note_media(frame.pts);
            }
            MediaUnit::VideoConfig(_) | MediaUnit::AudioConfig(_) => {}
        }
        unit
    }

    /// Feeds one unit. An error means this stream cannot continue; the caller ends the publish.
    pub fn push(&mut self, unit: MediaUnit) -> Result<(), MediaError> {
        let unit = self.place(unit);
        self.stream.observe(&unit);
        match &mut self.state {
            State::Finished => Err(self.error("the stream has ended")),
            State::Running(running) => {
                if running.failed() {
                    self.state = State::Finished;
                    return Err(self.error("the pipeline failed"));
                }
                running.push(unit, &self.stream.name)
            }
            State::Waiting(waiting) => {
                let ready = waiting.hold(unit, self.settings.track_wait_ns);
                if ready {
                    let State::Waiting(waiting) =
                        std::mem::replace(&mut self.state, State::Finished)
                    else {
                        return Ok(());
                    };
                    let mut running = build::start(
                        &self.stream,
                        &self.settings,
                        &waiting,
                        Arc::clone(&self.interrupted),
                    )?;
                    for unit in waiting.pending {
                        running.push(unit, &self.stream.name)?;
                    }
                    self.state = State::Running(Box::new(running));
                } else if waiting.pending_bytes > MAX_PENDING_BYTES {
                    return Err(self.error("no decoder configuration received for the media sent"));
                }
                Ok(())
            }
        }
    }

    /// Ends the stream: the pipeline drains (the last segment is completed) and the playlists
    /// end with EXT-X-ENDLIST. Idempotent.
    pub fn finish(&mut self) {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Running(mut running) => running.end_of_stream(),
            State::Waiting(_) => {
                if !self.interrupted.load(Ordering::Acquire) {
                    self.stream.end();
                }
            }
            State::Finished => {}
        }
    }

    /// The publisher was lost: the pipeline drains (the last segment is completed) but the
    /// playlists stay live, without EXT-X-ENDLIST, so that a reconnecting publisher can continue
    /// the stream ([`crate::hls::packager::Packager::handle_interrupt`]). Ending the stream
    /// when nobody comes back is the caller's job. Idempotent; a pipeline that failed still
    /// ends its stream.
    pub fn interrupt(&mut self) {
        self.interrupted.store(true, Ordering::Release);
        self.finish();
    }

    /// An error of this stream's pipeline.
    fn error(&self, reason: &str) -> MediaError {
        pipeline_error(&self.stream.name, reason)
    }
}

impl Drop for StreamPipeline {
    fn drop(&mut self) {
        self.finish();
    }
}

/// An error of `stream`'s pipeline: the stream cannot continue.
fn pipeline_error(stream: &str, reason: impl Into<String>) -> MediaError {
    MediaError::Pipeline {
        stream: stream.to_string(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::hls::packager::PackagerConfig;
    use crate::hls::stream::RenditionKind;
    use crate::media::frame::{VideoConfig, VideoFrame};

    /// Real H.264 from x264enc: the avcC and `count` access units at 30 fps.
    fn encoded_h264(count: u32) -> (Bytes, Vec<VideoFrame>) {
        encoded(&format!(
            "videotestsrc num-buffers={count} ! video/x-raw,width=320,height=240,framerate=30/1 \
             ! x264enc key-int-max=30 speed-preset=ultrafast \
             ! video/x-h264,stream-format=avc,alignment=au ! appsink name=out sync=false"
        ))
    }

    /// Real H.265 from x265enc (via h265parse to `hvc1`): the hvcC and `count` access units
    /// at 30 fps, 426x240 (cropped from 432 coded columns).
    fn encoded_h265(count: u32) -> (Bytes, Vec<VideoFrame>) {
        encoded(&format!(
            "videotestsrc num-buffers={count} ! video/x-raw,format=I420,width=426,height=240,framerate=30/1 \
             ! x265enc key-int-max=30 speed-preset=ultrafast option-string=bframes=0 \
             ! h265parse ! video/x-h265,stream-format=hvc1,alignment=au \
             ! appsink name=out sync=false"
        ))
    }

    /// Runs an encoder pipeline ending in appsink `out`: its codec_data and frames.
    fn encoded(description: &str) -> (Bytes, Vec<VideoFrame>) {
        let mut avcc = None;
        let mut frames = Vec::new();
        for sample in crate::media::run_to_appsink(description) {
            if avcc.is_none() {
                let caps = sample.caps().unwrap();
                let data = caps
                    .structure(0)
                    .unwrap()
                    .get::<gst::Buffer>("codec_data")
                    .unwrap();
                avcc = Some(Bytes::copy_from_slice(&data.map_readable().unwrap()));
            }
            let buffer = sample.buffer().unwrap();
            frames.push(VideoFrame {
                dts: buffer.dts().or(buffer.pts()).unwrap().nseconds(),
                pts: buffer.pts().unwrap().nseconds(),
                keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
                data: Bytes::copy_from_slice(&buffer.map_readable().unwrap()),
            });
        }
        (avcc.unwrap(), frames)
    }

    fn settings(template: &str) -> Arc<MediaSettings> {
        crate::media::init().unwrap();
        Arc::new(MediaSettings {
            template: Template::parse("test.pipeline".into(), template),
            values: MediaSettings::placeholder_values(
                Duration::from_secs(1),
                Duration::from_millis(200),
            ),
            track_wait_ns: 0,
            metrics: Arc::default(),
            ladder: None,
            source_rung: true,
            ladder_block: false,
        })
    }

    fn stream() -> Arc<HlsStream> {
        Arc::new(HlsStream::new(
            "test",
            PackagerConfig {
                segment_target: Duration::from_secs(1),
                part_target: Duration::from_millis(200),
                window: Duration::from_secs(10),
            },
        ))
    }

    async fn wait_until(what: &str, condition: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !condition() {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs a video-only publish through the built-in passthrough template to its end.
    async fn publish_video(config: VideoConfig, frames: Vec<VideoFrame>) -> Arc<HlsStream> {
        let template = include_str!("../../../pipelines/passthrough.pipeline");
        publish_with(settings(template), config, frames).await
    }

    /// Runs a video-only publish with `settings` to its end.
    async fn publish_with(
        settings: Arc<MediaSettings>,
        config: VideoConfig,
        frames: Vec<VideoFrame>,
    ) -> Arc<HlsStream> {
        let stream = stream();
        let mut pipeline = StreamPipeline::new(Arc::clone(&stream), settings);
        pipeline.push(MediaUnit::VideoConfig(config)).unwrap();
        for frame in frames {
            pipeline.push(MediaUnit::Video(frame)).unwrap();
        }
        pipeline.finish();
        wait_until("stream ended", || stream.is_ended()).await;
        stream
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn hevc_publisher_gets_hvc1_codec_string_and_resolution() {
        let (hvcc, frames) = encoded_h265(60);
        let stream = publish_video(VideoConfig::H265 { hvcc }, frames).await;
        let renditions = stream.renditions();
        assert_eq!(renditions.len(), 1);
        let info = renditions[0].info();
        assert_eq!(info.resolution, Some((426, 240)));
        let codecs = info.codecs.unwrap();
        assert!(codecs.starts_with("hvc1.1.6.L"), "{codecs}");
        let text = renditions[0].packager().media_playlist(false).to_string();
        assert_eq!(text.matches("#EXTINF:").count(), 2, "{text}");
        let multivariant = stream.multivariant().unwrap().to_string();
        assert!(
            multivariant.contains("RESOLUTION=426x240"),
            "{multivariant}"
        );
        assert!(
            multivariant.contains("CODECS=\"hvc1.1.6.L"),
            "{multivariant}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn video_only_publisher_gets_cmaf_segments_and_an_ended_playlist() {
        let (avcc, frames) = encoded_h264(90);
        let stream = publish_video(VideoConfig::H264 { avcc }, frames).await;
        // The audio branch was removed: one rendition, video, with 3 one-second segments.
        let renditions = stream.renditions();
        assert_eq!(renditions.len(), 1);
        assert_eq!(renditions[0].name, "source");
        assert_eq!(renditions[0].kind, RenditionKind::Video);
        let info = renditions[0].info();
        assert_eq!(info.resolution, Some((320, 240)));
        assert!(info.codecs.unwrap().starts_with("avc1."));
        let text = renditions[0].packager().media_playlist(false).to_string();
        assert_eq!(text.matches("#EXTINF:1.000,").count(), 3, "{text}");
        assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
        let multivariant = stream.multivariant().unwrap().to_string();
        assert!(
            multivariant.contains("RESOLUTION=320x240"),
            "{multivariant}"
        );
        assert!(!multivariant.contains("TYPE=AUDIO"), "{multivariant}");
    }

    /// FLV composition times are signed: a publisher whose encoder does not shift its decode
    /// timestamps back sends reordered frames with PTS < DTS (negative composition offsets).
    /// The fuzzer's first property check tripped on such input; this checks the whole media
    /// path takes it: segments of the right length, no pipeline error.
    #[tokio::test(flavor = "multi_thread")]
    async fn frames_presented_before_their_decode_time_still_package() {
        let (avcc, mut frames) = encoded(
            "videotestsrc num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 \
             ! x264enc key-int-max=30 speed-preset=veryfast bframes=2 b-adapt=false \
             ! video/x-h264,stream-format=avc,alignment=au,profile=high ! appsink name=out sync=false",
        );
        // Decode times two frames later, as an encoder that starts DTS at the first PTS.
        let shift = 2 * 1_000_000_000 / 30;
        for frame in &mut frames {
            frame.dts += shift;
        }
        let earlier = frames.iter().filter(|f| f.pts < f.dts).count();
        assert!(
            earlier > 30,
            "the shift gives negative offsets ({earlier} frames)"
        );
        let stream = publish_video(VideoConfig::H264 { avcc }, frames).await;
        let renditions = stream.renditions();
        assert_eq!(renditions.len(), 1);
        let text = renditions[0].packager().media_playlist(false).to_string();
        assert_eq!(text.matches("#EXTINF:").count(), 3, "{text}");
        assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn pipeline_error_ends_only_that_stream() {
        let (avcc, frames) = encoded_h264(60);
        let stream = stream();
        // `identity error-after` makes the video branch fail after 10 buffers.
        let template = "appsrc name=video_src ! identity error-after=10 ! h264parse \
            ! cmafmux fragment-duration={video_fragment_ns} chunk-duration={chunk_ns} ! appsink name=hls_source\n\
            appsrc name=audio_src ! aacparse ! cmafmux ! appsink name=hls_audio";
        let mut pipeline = StreamPipeline::new(Arc::clone(&stream), settings(template));
        pipeline
            .push(MediaUnit::VideoConfig(VideoConfig::H264 { avcc }))
            .unwrap();
        let mut refused = None;
        for frame in frames {
            if let Err(err) = pipeline.push(MediaUnit::Video(frame)) {
                refused = Some(err);
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        wait_until("stream ended after the error", || stream.is_ended()).await;
        let err = match refused {
            Some(err) => err,
            None => pipeline
                .push(MediaUnit::VideoConfig(VideoConfig::H264 {
                    avcc: Bytes::new(),
                }))
                .expect_err("a failed pipeline refuses media"),
        };
        assert!(err.to_string().contains("test"), "{err}");
        assert!(
            stream.renditions()[0].packager().is_ended(),
            "the playlist is ended"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn ladder_without_source_rung_produces_aligned_rungs_only() {
        let (avcc, frames) = encoded_h264(90);
        let dir = tempfile::tempdir().unwrap();
        let base = settings(include_str!("../../../pipelines/passthrough.pipeline"));
        let rung = |name: &str, width, height| crate::media::RungConfig {
            name: name.into(),
            width,
            height,
            video_bitrate_kbps: 200,
            max_fps: 30,
            profile: "main".into(),
            preset: "ultrafast".into(),
            threads: 1,
        };
        // 480x360 is larger than the 320x240 source: skipped.
        let rungs = [rung("small", 160, 120), rung("big", 480, 360)];
        let ladder = Ladder::load(
            dir.path(),
            "ladder.pipeline",
            "rung.pipeline",
            &rungs,
            &base.values,
        )
        .unwrap();
        let settings = Arc::new(MediaSettings {
            template: base.template.clone(),
            values: base.values.clone(),
            track_wait_ns: 0,
            metrics: Arc::default(),
            ladder: Some(ladder),
            source_rung: false,
            ladder_block: true,
        });
        let stream = publish_with(settings, VideoConfig::H264 { avcc }, frames).await;
        let renditions = stream.renditions();
        let names: Vec<&str> = renditions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["small"]);
        let info = renditions[0].info();
        assert_eq!(info.resolution, Some((160, 120)));
        assert!(info.codecs.unwrap().starts_with("avc1.4"));
        // Keyframes forced on the source's 1 s GOP: 3 one-second segments.
        let text = renditions[0].packager().media_playlist(false).to_string();
        assert_eq!(text.matches("#EXTINF:1.000,").count(), 3, "{text}");
    }

    #[test]
    fn bad_decoder_configuration_is_an_error_not_a_panic() {
        let stream = stream();
        let template = include_str!("../../../pipelines/passthrough.pipeline");
        let mut pipeline = StreamPipeline::new(stream, settings(template));
        let garbage = Bytes::from_static(&[1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 3, 0x67]);
        let err = pipeline
            .push(MediaUnit::VideoConfig(VideoConfig::H264 { avcc: garbage }))
            .and_then(|()| {
                pipeline.push(MediaUnit::Video(VideoFrame {
                    dts: 0,
                    pts: 0,
                    keyframe: true,
                    data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
                }))
            })
            .expect_err("invalid avcC");
        assert!(err.to_string().contains("codec"), "{err}");
    }
}
