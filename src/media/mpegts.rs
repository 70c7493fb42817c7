//! MPEG-TS in, [`MediaUnit`]s out: the demuxing front of SRT ingest.
//!
//! `appsrc ! tsdemux`, then per elementary stream, linked when tsdemux adds its pad:
//! `h264parse ! video/x-h264,stream-format=avc,alignment=au ! appsink`,
//! `h265parse ! video/x-h265,stream-format=hvc1,alignment=au ! appsink`, or
//! `aacparse ! audio/mpeg,stream-format=raw ! appsink`. The parsers turn Annex B / ADTS into the
//! length-prefixed access units and codec configuration records (`avcC`, `hvcC`,
//! AudioSpecificConfig) that RTMP delivers, so the units then take exactly the RTMP path:
//! [`crate::media::StreamPipeline`] → the passthrough template → cmafmux → the HLS packager.
//! Streams of other codecs (and a second video or audio stream) go to a `fakesink`.
//!
//! The pads appear at run time, which a gst-launch template cannot express per codec, so this
//! small graph is built in code. Everything runs on tsdemux's streaming thread (no queues), so
//! units come out in the order the publisher multiplexed them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use gst::prelude::*;
use tokio::sync::mpsc;

use super::MediaError;
use super::frame::{AudioConfig, AudioFrame, MediaUnit, VideoConfig, VideoFrame};

/// Most bytes of MPEG-TS queued in the appsrc before the publisher is declared too fast.
const MAX_QUEUED_BYTES: u64 = 32 * 1024 * 1024;

/// A running MPEG-TS demuxer for one publisher.
pub struct TsDemuxer {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    /// Set when the appsrc queue or the unit channel is full.
    overloaded: Arc<AtomicBool>,
}

/// Which elementary stream a pad carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Track {
    H264,
    H265,
    Aac,
}

impl Track {
    fn of(caps: &gst::CapsRef) -> Option<Track> {
        let s = caps.structure(0)?;
        match s.name().as_str() {
            "video/x-h264" => Some(Track::H264),
            "video/x-h265" => Some(Track::H265),
            // MPEG-2 (ADTS, stream type 0x0F) or MPEG-4 AAC; not MPEG-1 layer 2/3.
            "audio/mpeg" if s.get::<i32>("mpegversion").is_ok_and(|v| v == 2 || v == 4) => {
                Some(Track::Aac)
            }
            _ => None,
        }
    }

    fn is_video(self) -> bool {
        self != Track::Aac
    }

    /// Parser element and the caps it must produce.
    fn parser(self) -> (&'static str, gst::Caps) {
        match self {
            Track::H264 => (
                "h264parse",
                gst::Caps::builder("video/x-h264")
                    .field("stream-format", "avc")
                    .field("alignment", "au")
                    .build(),
            ),
            Track::H265 => (
                "h265parse",
                gst::Caps::builder("video/x-h265")
                    .field("stream-format", "hvc1")
                    .field("alignment", "au")
                    .build(),
            ),
            Track::Aac => (
                "aacparse",
                gst::Caps::builder("audio/mpeg")
                    .field("stream-format", "raw")
                    .build(),
            ),
        }
    }
}

impl TsDemuxer {
    /// Starts a demuxer whose units go to `units`. `name` labels the pipeline (logs).
    pub fn start(name: &str, units: mpsc::Sender<MediaUnit>) -> Result<TsDemuxer, MediaError> {
        let error = |reason: String| MediaError::Pipeline {
            stream: name.to_string(),
            reason,
        };
        let pipeline = gst::Pipeline::with_name(&format!("mpegts-{name}"));
        let src = gst_app::AppSrc::builder()
            .name("ts_src")
            .caps(
                &gst::Caps::builder("video/mpegts")
                    .field("systemstream", true)
                    .build(),
            )
            .format(gst::Format::Bytes)
            .stream_type(gst_app::AppStreamType::Stream)
            .max_bytes(MAX_QUEUED_BYTES)
            .block(false)
            .build();
        let demux = gst::ElementFactory::make("tsdemux")
            .name("demux")
            .build()
            .map_err(|e| error(format!("tsdemux: {e}")))?;
        pipeline
            .add_many([src.upcast_ref(), &demux])
            .map_err(|e| error(e.to_string()))?;
        src.link(&demux).map_err(|e| error(e.to_string()))?;

        let overloaded = Arc::new(AtomicBool::new(false));
        let (full, drained) = (Arc::clone(&overloaded), Arc::clone(&overloaded));
        src.set_callbacks(
            gst_app::AppSrcCallbacks::builder()
                .enough_data(move |_| full.store(true, Ordering::Relaxed))
                .need_data(move |_, _| drained.store(false, Ordering::Relaxed))
                .build(),
        );

        let router = PadRouter {
            pipeline: pipeline.downgrade(),
            stream: name.to_string(),
            taken: Mutex::default(),
            units,
            overloaded: Arc::clone(&overloaded),
        };
        demux.connect_pad_added(move |_, pad| router.route(pad));

        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| error(format!("cannot start the MPEG-TS demuxer: {e}")))?;
        Ok(TsDemuxer {
            pipeline,
            src,
            overloaded,
        })
    }

    /// Feeds MPEG-TS bytes (any split). Errors when the demuxer cannot keep up or has stopped.
    pub fn push(&self, data: Bytes) -> Result<(), PushError> {
        if self.overloaded.load(Ordering::Relaxed) {
            return Err(PushError::Overloaded);
        }
        self.src
            .push_buffer(gst::Buffer::from_slice(data))
            .map(|_| ())
            .map_err(PushError::Refused)
    }

    /// No more data: the demuxer flushes what it holds, then posts EOS on its bus.
    pub fn end(&self) {
        let _ = self.src.end_of_stream();
    }

    /// The pipeline's bus (EOS, errors).
    pub fn bus(&self) -> Option<gst::Bus> {
        self.pipeline.bus()
    }
}

/// Routes each pad tsdemux adds: the first video and the first audio stream of a supported
/// codec to their parser and appsink, anything else to a fakesink.
struct PadRouter {
    /// The demuxer's pipeline (weak: the pipeline owns the demuxer, which owns this router).
    pipeline: gst::glib::WeakRef<gst::Pipeline>,
    /// The stream's name, for logs.
    stream: String,
    /// Whether a video and an audio stream were taken.
    taken: Mutex<(bool, bool)>,
    /// Where the units go.
    units: mpsc::Sender<MediaUnit>,
    /// Set when `units` is full.
    overloaded: Arc<AtomicBool>,
}

impl PadRouter {
    /// Links `pad` to its branch; a failure is logged (the stream then lacks that track).
    fn route(&self, pad: &gst::Pad) {
        let Some(pipeline) = self.pipeline.upgrade() else {
            return;
        };
        let stream = &self.stream;
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let linked = match Track::of(&caps).filter(|&track| self.claim(track)) {
            Some(track) => link_track(
                &pipeline,
                pad,
                track,
                self.units.clone(),
                Arc::clone(&self.overloaded),
            ),
            None => {
                tracing::info!(stream = %stream, pad = %pad.name(), caps = %caps, "MPEG-TS stream not used (codec not supported or a second track)");
                link_fakesink(&pipeline, pad)
            }
        };
        if let Err(err) = linked {
            tracing::warn!(stream = %stream, pad = %pad.name(), error = %err, "cannot link an MPEG-TS stream");
        }
    }

    /// True when `track` is the first of its kind (video or audio).
    fn claim(&self, track: Track) -> bool {
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        let slot = if track.is_video() {
            &mut taken.0
        } else {
            &mut taken.1
        };
        !std::mem::replace(slot, true)
    }
}

impl Drop for TsDemuxer {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Why an elementary stream's branch could not be linked.
/// Why [`TsDemuxer::push`] could not take a publisher's bytes.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The demuxer's outputs are full: the publisher sends faster than the pipeline runs.
    #[error("the MPEG-TS demuxer cannot keep up with the publisher")]
    Overloaded,
    /// The demuxer's source refused the buffer (it has stopped or failed).
    #[error("the MPEG-TS demuxer refused data: {0:?}")]
    Refused(gst::FlowError),
}

#[derive(Debug, thiserror::Error)]
enum LinkError {
    /// The parser element could not be made (its plugin is missing).
    #[error("{parser}: {source}")]
    Parser {
        /// The parser's factory name.
        parser: &'static str,
        /// GStreamer's error.
        source: gst::glib::BoolError,
    },
    /// An element could not be made, added, linked or started.
    #[error(transparent)]
    Element(#[from] gst::glib::BoolError),
    /// The demuxer's pad could not be linked to the branch.
    #[error(transparent)]
    Pad(#[from] gst::PadLinkError),
    /// The branch's first element has no sink pad.
    #[error("{0} has no sink pad")]
    NoSinkPad(&'static str),
}

/// `pad ! fakesink`: a stream that is not used.
fn link_fakesink(pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<(), LinkError> {
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .build()?;
    pipeline.add(&sink)?;
    let sink_pad = sink
        .static_pad("sink")
        .ok_or(LinkError::NoSinkPad("fakesink"))?;
    pad.link(&sink_pad)?;
    sink.sync_state_with_parent()?;
    Ok(())
}

/// `pad ! parser ! capsfilter ! appsink`, the appsink turning samples into units.
fn link_track(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    track: Track,
    units: mpsc::Sender<MediaUnit>,
    overloaded: Arc<AtomicBool>,
) -> Result<(), LinkError> {
    let (parser_name, caps) = track.parser();
    let parser = gst::ElementFactory::make(parser_name)
        .build()
        .map_err(|source| LinkError::Parser {
            parser: parser_name,
            source,
        })?;
    let filter = gst::ElementFactory::make("capsfilter")
        .property("caps", &caps)
        .build()?;
    let sink = gst_app::AppSink::builder()
        .sync(false)
        .async_(false)
        .enable_last_sample(false)
        .build();
    let mut last_config: Option<Bytes> = None;
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                for unit in sample_units(&sample, track, &mut last_config) {
                    if units.try_send(unit).is_err() {
                        // Full (the media side cannot keep up) or closed (the publish ended).
                        overloaded.store(true, Ordering::Relaxed);
                        return Err(gst::FlowError::Error);
                    }
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    pipeline.add_many([&parser, &filter, sink.upcast_ref()])?;
    gst::Element::link_many([&parser, &filter, sink.upcast_ref()])?;
    for element in [sink.upcast_ref(), &filter, &parser] {
        element.sync_state_with_parent()?;
    }
    let parser_sink = parser
        .static_pad("sink")
        .ok_or(LinkError::NoSinkPad("parser"))?;
    pad.link(&parser_sink)?;
    Ok(())
}

/// The units of one parsed sample: a configuration unit when `codec_data` is new, then the
/// frame. Samples without timestamps (never produced by tsdemux + parsers) are dropped.
fn sample_units(
    sample: &gst::Sample,
    track: Track,
    last_config: &mut Option<Bytes>,
) -> Vec<MediaUnit> {
    let mut out = Vec::with_capacity(2);
    let codec_data = sample
        .caps()
        .and_then(|caps| caps.structure(0))
        .and_then(|s| s.get::<gst::Buffer>("codec_data").ok())
        .and_then(|buffer| {
            buffer
                .map_readable()
                .ok()
                .map(|map| Bytes::copy_from_slice(&map))
        });
    if let Some(record) = codec_data
        && last_config.as_ref() != Some(&record)
    {
        *last_config = Some(record.clone());
        out.push(match track {
            Track::H264 => MediaUnit::VideoConfig(VideoConfig::H264 { avcc: record }),
            Track::H265 => MediaUnit::VideoConfig(VideoConfig::H265 { hvcc: record }),
            Track::Aac => MediaUnit::AudioConfig(AudioConfig::Aac { asc: record }),
        });
    }
    let Some(buffer) = sample.buffer() else {
        return out;
    };
    let Some(pts) = buffer.pts().or(buffer.dts()).map(|t| t.nseconds()) else {
        return out;
    };
    let Ok(map) = buffer.map_readable() else {
        return out;
    };
    let data = Bytes::copy_from_slice(&map);
    out.push(if track.is_video() {
        let dts = buffer.dts().map_or(pts, |t| t.nseconds()).min(pts);
        MediaUnit::Video(VideoFrame {
            dts,
            pts,
            keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
            data,
        })
    } else {
        MediaUnit::Audio(AudioFrame { pts, data })
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MPEG-TS with H.264 + AAC from GStreamer's own muxer, `seconds` long.
    fn transport_stream(seconds: u32, video: &str) -> Vec<u8> {
        let frames = seconds * 30;
        let description = format!(
            "videotestsrc num-buffers={frames} ! video/x-raw,width=320,height=240,framerate=30/1 \
             ! {video} ! mpegtsmux name=mux ! appsink name=out sync=false \
             audiotestsrc num-buffers={} samplesperbuffer=1024 ! audio/x-raw,rate=48000 \
             ! avenc_aac ! aacparse ! mux.",
            seconds * 47
        );
        let mut out = Vec::new();
        for sample in crate::media::run_to_appsink(&description) {
            out.extend_from_slice(&sample.buffer().unwrap().map_readable().unwrap());
        }
        out
    }

    async fn demux(ts: &[u8], chunk: usize) -> Vec<MediaUnit> {
        let (tx, mut rx) = mpsc::channel(100_000);
        let demuxer = TsDemuxer::start("test", tx).unwrap();
        for piece in ts.chunks(chunk) {
            demuxer.push(Bytes::copy_from_slice(piece)).unwrap();
        }
        demuxer.end();
        let bus = demuxer.bus().unwrap();
        let message = bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(20),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .expect("EOS");
        assert!(matches!(message.view(), gst::MessageView::Eos(_)));
        drop(demuxer);
        let mut units = Vec::new();
        while let Ok(unit) = rx.try_recv() {
            units.push(unit);
        }
        units
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn h264_and_aac_come_out_as_rtmp_style_units() {
        let ts = transport_stream(2, "x264enc key-int-max=30 speed-preset=ultrafast");
        // 1316 bytes: one SRT payload of 7 TS packets; 1000: splits across packets.
        for chunk in [1316, 1000] {
            let units = demux(&ts, chunk).await;
            let configs: Vec<_> = units
                .iter()
                .filter(|u| matches!(u, MediaUnit::VideoConfig(_) | MediaUnit::AudioConfig(_)))
                .collect();
            assert_eq!(configs.len(), 2, "one avcC and one ASC");
            assert!(matches!(
                configs
                    .iter()
                    .find(|u| matches!(u, MediaUnit::VideoConfig(_))),
                Some(MediaUnit::VideoConfig(VideoConfig::H264 { .. }))
            ));
            let video: Vec<&VideoFrame> = units
                .iter()
                .filter_map(|u| match u {
                    MediaUnit::Video(f) => Some(f),
                    _ => None,
                })
                .collect();
            assert_eq!(video.len(), 60);
            assert!(video[0].keyframe);
            assert_eq!(video.iter().filter(|f| f.keyframe).count(), 2);
            // Length-prefixed (avc), not Annex B.
            let first_len = u32::from_be_bytes(video[0].data[..4].try_into().unwrap());
            assert!(first_len as usize <= video[0].data.len() - 4);
            assert!(video.windows(2).all(|w| w[0].dts <= w[1].dts));
            let audio = units
                .iter()
                .filter(|u| matches!(u, MediaUnit::Audio(_)))
                .count();
            assert!(audio > 80, "{audio} AAC frames");
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn garbage_gives_no_units_and_no_panic() {
        let mut state = 7u32;
        let garbage: Vec<u8> = (0..50_000)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (state >> 16) as u8
            })
            .collect();
        crate::media::init().unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let demuxer = TsDemuxer::start("garbage", tx).unwrap();
        for piece in garbage.chunks(1316) {
            let _ = demuxer.push(Bytes::copy_from_slice(piece));
        }
        demuxer.end();
        let bus = demuxer.bus().unwrap();
        let _ = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(10),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        drop(demuxer);
        assert!(rx.try_recv().is_err());
    }
}
