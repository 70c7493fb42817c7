//! Building a stream's GStreamer graph once the tracks are known: the passthrough template and
//! the ladder's text launched as one pipeline, the publisher's appsrcs configured (or their
//! branches removed), the ladder's input and encoders wired, each rendition appsink connected
//! to its HLS rendition, and the pipeline started.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use gst::prelude::*;

use super::bus::spawn_bus_watch;
use super::caps::source_video;
use super::feed::{Batch, Input, Running};
use super::sink::{Arrivals, SinkFeedback, configure_sink};
use super::waiting::Waiting;
use super::{MediaSettings, pipeline_error};
use crate::hls::stream::{HlsStream, RenditionKind};
use crate::media::MediaError;
use crate::media::batch::{PartBatcher, PartClock};
use crate::media::frame::{MediaUnit, VideoConfig};
use crate::media::ladder::{
    self, ENCODER_PREFIX, KeyframeTimes, LADDER_SRC, LadderFeed, PlannedRung, RungMonitor,
    SourceCodec,
};
use crate::media::template::{self, AUDIO_SRC, VIDEO_SRC};

/// Most bytes an appsrc may queue before the stream is declared unable to keep up.
const MAX_APPSRC_QUEUE_BYTES: u64 = 64 * 1024 * 1024;
/// Longest a frame waits for its part's other frames, in chunk durations (see [`Batch`]).
const MAX_HOLD_CHUNKS: u32 = 2;
/// The muxer's input queue (its `latency`), in chunk durations: room for a whole batch, so
/// that a buffer list is queued without a thread hand-off per buffer.
const MUXER_QUEUE_CHUNKS: u64 = 4;

/// The ladder part of the pipeline for one publish.
struct LadderPlan {
    /// Its gst-launch text (head and rungs).
    text: String,
    /// The rungs that fit the source.
    planned: Vec<PlannedRung>,
    /// The source's codec (the ladder's decoder).
    codec: SourceCodec,
}

/// The publisher's inputs, as wired into the pipeline.
#[derive(Default)]
struct Inputs {
    /// The video appsrc, when the publisher sends video and the source rendition is published.
    video: Option<Input>,
    /// The audio appsrc, when the publisher sends audio.
    audio: Option<Input>,
    /// Per batched input: the name of the rendition sink whose output drives its clock.
    clocks: BTreeMap<String, Arc<PartClock>>,
    /// Names of the elements downstream of the audio input: its renditions are audio.
    audio_elements: HashSet<String>,
}

/// The transcoding ladder, as wired into the pipeline.
struct LadderWiring {
    /// Its input.
    feed: LadderFeed,
    /// Names of its renditions.
    rungs: HashSet<String>,
    /// Latest source PTS fed, against which the rungs' lag is measured.
    latest_pts: Arc<AtomicU64>,
}

/// Builds and starts the pipeline of `stream` for the tracks `waiting` found.
pub(super) fn start(
    stream: &Arc<HlsStream>,
    settings: &MediaSettings,
    waiting: &Waiting,
    interrupted: Arc<AtomicBool>,
) -> Result<Running, MediaError> {
    let name = stream.name.as_str();
    let ladder_plan = plan_ladder(name, settings, waiting.video.as_ref())?;
    let pipeline = launch(name, settings, ladder_plan.as_ref())?;
    // AV1 is transcoded only (no AV1 passthrough): it needs at least one rung.
    let av1 = matches!(waiting.video, Some(VideoConfig::Av1 { .. }));
    if av1 && ladder_plan.is_none() {
        return Err(pipeline_error(
            name,
            "AV1 video is only transcoded (no AV1 passthrough) and no media.ladder rung fits it",
        ));
    }
    // The source rung can only be left out when a transcoded rung replaces it.
    let source_rung = (settings.source_rung || ladder_plan.is_none()) && !av1;
    let mut inputs = wire_inputs(
        &pipeline,
        name,
        waiting.video.is_some() && source_rung,
        waiting.audio.is_some(),
    )?;
    let ladder = match &ladder_plan {
        Some(plan) => Some(wire_ladder(&pipeline, name, settings, plan, source_rung)?),
        None => None,
    };
    let arrivals = wire_renditions(
        &pipeline,
        stream,
        settings,
        &mut inputs,
        ladder.as_ref(),
        &interrupted,
    );
    let mut running = Running {
        pipeline,
        video: inputs.video,
        audio: inputs.audio,
        video_config: None,
        audio_config: None,
        video_frame_ns: None,
        last_video_dts: None,
        audio_frame_ns: None,
        failed: Arc::new(AtomicBool::new(false)),
        eos_sent: Arc::new(AtomicBool::new(false)),
        arrivals,
        ladder: ladder.map(|l| l.feed),
    };
    play(&mut running, stream, settings, waiting, interrupted)?;
    Ok(running)
}

/// Gives `running` the tracks' configurations, sets it playing and watches its bus.
fn play(
    running: &mut Running,
    stream: &Arc<HlsStream>,
    settings: &MediaSettings,
    waiting: &Waiting,
    interrupted: Arc<AtomicBool>,
) -> Result<(), MediaError> {
    if let Some(config) = &waiting.video {
        running.push(MediaUnit::VideoConfig(config.clone()), &stream.name)?;
    }
    if let Some(config) = &waiting.audio {
        running.push(MediaUnit::AudioConfig(config.clone()), &stream.name)?;
    }
    running
        .pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| pipeline_error(&stream.name, format!("cannot start: {e}")))?;
    spawn_bus_watch(
        running.pipeline.clone(),
        Arc::clone(stream),
        Arc::clone(&running.failed),
        Arc::clone(&running.eos_sent),
        Arc::clone(&settings.metrics),
        interrupted,
    );
    tracing::info!(
        stream = %stream.name,
        video = running.video.is_some(),
        audio = running.audio.is_some(),
        "media pipeline started"
    );
    Ok(())
}

/// The ladder part of the pipeline for this publish, when a ladder is configured, the
/// publisher sends video and a rung fits it.
fn plan_ladder(
    stream: &str,
    settings: &MediaSettings,
    video: Option<&VideoConfig>,
) -> Result<Option<LadderPlan>, MediaError> {
    let (Some(ladder), Some(config)) = (&settings.ladder, video) else {
        return Ok(None);
    };
    let source = source_video(config)?;
    if !source.codec.decoder_available() {
        return Err(pipeline_error(
            stream,
            format!(
                "no {} decoder element in this GStreamer installation for the transcoding ladder",
                source.codec.decoder()
            ),
        ));
    }
    let (planned, skipped) = ladder::plan(ladder.rungs(), &source);
    for (rung, reason) in &skipped {
        tracing::info!(stream, rendition = %rung, reason = %reason, "ladder rung skipped");
    }
    if planned.is_empty() {
        return Ok(None);
    }
    let text = ladder.describe(source.codec, &planned, &settings.values)?;
    Ok(Some(LadderPlan {
        text,
        planned,
        codec: source.codec,
    }))
}

/// The stream's pipeline: the passthrough template filled with the timings, then the ladder.
fn launch(
    stream: &str,
    settings: &MediaSettings,
    ladder: Option<&LadderPlan>,
) -> Result<gst::Pipeline, MediaError> {
    let mut description = settings.template.render(&settings.values.placeholders())?;
    if let Some(plan) = ladder {
        description.push('\n');
        description.push_str(&plan.text);
    }
    let pipeline = settings.template.launch(&description)?;
    pipeline.set_property("name", format!("stream-{stream}"));
    Ok(pipeline)
}

/// Configures the appsrcs of the tracks the publisher sends (`video`, `audio`) and removes the
/// branches of the others.
fn wire_inputs(
    pipeline: &gst::Pipeline,
    stream: &str,
    video: bool,
    audio: bool,
) -> Result<Inputs, MediaError> {
    let overloaded = Arc::new(AtomicBool::new(false));
    let mut inputs = Inputs::default();
    for (name, present) in [(VIDEO_SRC, video), (AUDIO_SRC, audio)] {
        let element = pipeline
            .by_name(name)
            .ok_or_else(|| pipeline_error(stream, format!("template lacks `{name}`")))?;
        let downstream = downstream_elements(&element);
        if !present {
            // The publisher does not send this track: remove its branch.
            for e in std::iter::once(element).chain(downstream) {
                let _ = e.set_state(gst::State::Null);
                let _ = pipeline.remove(&e);
            }
            continue;
        }
        if name == AUDIO_SRC {
            inputs.audio_elements = downstream.iter().map(|e| e.name().to_string()).collect();
        }
        let src = element
            .downcast::<gst_app::AppSrc>()
            .map_err(|_| pipeline_error(stream, format!("`{name}` is not an appsrc")))?;
        configure_appsrc(&src, &overloaded);
        let batch = batch_for(&downstream).map(|(batch, sink)| {
            inputs.clocks.insert(sink, Arc::clone(&batch.clock));
            batch
        });
        let input = Some(Input {
            src,
            batch,
            overloaded: Arc::clone(&overloaded),
        });
        if name == VIDEO_SRC {
            inputs.video = input;
        } else {
            inputs.audio = input;
        }
    }
    Ok(inputs)
}

/// A publisher appsrc: timed, not live, bounded, never blocking; `overloaded` follows whether
/// its queue is over the bound.
fn configure_appsrc(src: &gst_app::AppSrc, overloaded: &Arc<AtomicBool>) {
    src.set_format(gst::Format::Time);
    src.set_is_live(false);
    src.set_stream_type(gst_app::AppStreamType::Stream);
    src.set_max_bytes(MAX_APPSRC_QUEUE_BYTES);
    src.set_block(false);
    let (full, drained) = (Arc::clone(overloaded), Arc::clone(overloaded));
    src.set_callbacks(
        gst_app::AppSrcCallbacks::builder()
            .enough_data(move |_| full.store(true, Ordering::Relaxed))
            .need_data(move |_, _| drained.store(false, Ordering::Relaxed))
            .build(),
    );
}

/// The ladder's input and the keyframe alignment of its encoders.
fn wire_ladder(
    pipeline: &gst::Pipeline,
    stream: &str,
    settings: &MediaSettings,
    plan: &LadderPlan,
    source_rung: bool,
) -> Result<LadderWiring, MediaError> {
    let src = pipeline
        .by_name(LADDER_SRC)
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or_else(|| {
            pipeline_error(
                stream,
                format!("ladder template lacks appsrc `{LADDER_SRC}`"),
            )
        })?;
    let keyframes = Arc::new(KeyframeTimes::default());
    let latest_pts = Arc::new(AtomicU64::new(0));
    let feed = LadderFeed::new(
        src,
        Arc::clone(&keyframes),
        Arc::clone(&latest_pts),
        settings.ladder_block,
        Arc::clone(&settings.metrics),
        stream,
    );
    let mut rungs = HashSet::new();
    for rung in &plan.planned {
        let name = format!("{ENCODER_PREFIX}{}", rung.config.name);
        let encoder = pipeline
            .by_name(&name)
            .ok_or_else(|| pipeline_error(stream, format!("rung template lacks `{name}`")))?;
        ladder::align_keyframes(&encoder, Arc::clone(&keyframes));
        rungs.insert(rung.config.name.clone());
    }
    tracing::info!(
        stream,
        decoder = plan.codec.decoder(),
        rungs = ?plan.planned.iter().map(|r| format!("{} {}x{}", r.config.name, r.width, r.height)).collect::<Vec<_>>(),
        source = source_rung,
        "transcoding ladder"
    );
    Ok(LadderWiring {
        feed,
        rungs,
        latest_pts,
    })
}

/// Connects every rendition appsink to a new rendition of `stream`, with the feedback its
/// chunks give (latency, rung lag, the batcher's clock); transcoded rungs cut their parts
/// where the passthrough's end (`hls::align`). The passthrough video's arrival queues.
fn wire_renditions(
    pipeline: &gst::Pipeline,
    stream: &Arc<HlsStream>,
    settings: &MediaSettings,
    inputs: &mut Inputs,
    ladder: Option<&LadderWiring>,
    interrupted: &Arc<AtomicBool>,
) -> Vec<Arrivals> {
    let lag_threshold_ns =
        u64::try_from(settings.values.audio_fragment.as_nanos()).unwrap_or(u64::MAX);
    let mut arrivals = Vec::new();
    let mut passthrough = None;
    let mut transcoded = Vec::new();
    for (rendition_name, sink) in template::rendition_sinks(pipeline) {
        let kind = if inputs.audio_elements.contains(sink.name().as_str()) {
            RenditionKind::Audio
        } else {
            RenditionKind::Video
        };
        let rendition = stream.add_rendition(&rendition_name, kind);
        let rung = ladder.filter(|l| l.rungs.contains(&rendition_name));
        if rung.is_some() {
            transcoded.push(Arc::clone(&rendition));
        } else if kind == RenditionKind::Video {
            passthrough = Some(Arc::clone(&rendition));
        }
        // Ingest-to-part latency is the passthrough's: transcoded rungs add the encoder's delay.
        let latency = (kind == RenditionKind::Video && rung.is_none()).then(|| {
            let queue = Arrivals::default();
            arrivals.push(Arc::clone(&queue));
            (queue, Arc::clone(&settings.metrics))
        });
        let monitor = rung.map(|l| {
            RungMonitor::new(
                Arc::clone(&l.latest_pts),
                lag_threshold_ns,
                Arc::clone(&settings.metrics),
                &stream.name,
                &rendition_name,
            )
        });
        let feedback = SinkFeedback {
            latency,
            monitor,
            clock: inputs.clocks.remove(sink.name().as_str()),
            stats: Some(settings.metrics.streams.get_or_create(&stream.name)),
        };
        configure_sink(
            &sink,
            rendition,
            Arc::clone(stream),
            feedback,
            Arc::clone(interrupted),
        );
    }
    for rung in &transcoded {
        rung.gather_parts(passthrough.as_ref());
    }
    arrivals
}

/// Part-aligned batching for an appsrc whose `downstream` elements are one `cmafmux` (an
/// element with a `chunk-duration`, set) feeding one rendition appsink, and that sink's name.
/// Anything else (no chunking, a tee to several muxers, a custom element between) keeps
/// per-frame pushing: the batcher's boundaries are one muxer's.
fn batch_for(downstream: &[gst::Element]) -> Option<(Batch, String)> {
    let muxers: Vec<&gst::Element> = downstream
        .iter()
        .filter(|e| e.find_property("chunk-duration").is_some())
        .collect();
    let [muxer] = muxers.as_slice() else {
        return None;
    };
    let chunk = muxer.property::<Option<gst::ClockTime>>("chunk-duration")?;
    let fragment = muxer.property::<gst::ClockTime>("fragment-duration");
    let sinks: Vec<&gst::Element> = downstream
        .iter()
        .filter(|e| e.is::<gst_app::AppSink>())
        .collect();
    let [sink] = sinks.as_slice() else {
        return None;
    };
    if chunk.is_zero() || muxer.sink_pads().len() != 1 {
        return None;
    }
    // GstAggregator queues one buffer per pad at `latency` 0 and makes the next chain call
    // wait until the muxer took it: a list would cross threads per buffer again. In a
    // non-live pipeline `latency` only sizes that queue (no timeout, no added delay).
    let queue = chunk.nseconds().saturating_mul(MUXER_QUEUE_CHUNKS);
    if muxer.property::<u64>("latency") < queue {
        muxer.set_property("latency", queue);
    }
    let batch = Batch {
        batcher: PartBatcher::new(
            chunk.nseconds(),
            fragment.nseconds(),
            Duration::from_nanos(chunk.nseconds()) * MAX_HOLD_CHUNKS,
        ),
        clock: Arc::new(PartClock::new(chunk.nseconds(), fragment.nseconds())),
    };
    Some((batch, sink.name().to_string()))
}

/// All elements downstream of `element` (following every src pad).
fn downstream_elements(element: &gst::Element) -> Vec<gst::Element> {
    let mut seen: Vec<gst::Element> = Vec::new();
    let mut queue = vec![element.clone()];
    while let Some(current) = queue.pop() {
        for pad in current.src_pads() {
            if let Some(next) = pad.peer().and_then(|p| p.parent_element())
                && !seen.contains(&next)
            {
                seen.push(next.clone());
                queue.push(next);
            }
        }
    }
    seen
}
