//! Reading `cmafmux` output from a rendition's appsink into its HLS rendition: the init
//! segment, each chunk (see [`super::cmaf`]), and the end of stream.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use gst::prelude::*;

use super::caps::track_info;
use super::cmaf::{self, Chunk, Muxed, MuxedBuffer};
use crate::hls::packager::CmafChunk;
use crate::hls::stream::{HlsStream, Rendition, RenditionKind};
use crate::media::batch::PartClock;
use crate::media::ladder::RungMonitor;
use crate::metrics::Metrics;
use crate::metrics::stream::StreamStats;

/// Arrival instants of video frames (by PTS) not yet in a published part.
pub(super) type Arrivals = Arc<Mutex<VecDeque<(u64, Instant)>>>;

/// Who learns of a rendition's published chunks besides its packager.
#[derive(Default)]
pub(super) struct SinkFeedback {
    /// Video passthrough: each frame's ingest-to-part time, recorded as its part is published.
    pub(super) latency: Option<(Arrivals, Arc<Metrics>)>,
    /// Transcoded rung: its lag behind the source.
    pub(super) monitor: Option<RungMonitor>,
    /// Batched input: the muxer's boundaries.
    pub(super) clock: Option<Arc<PartClock>>,
    /// The stream's live statistics: every part's publication (the live edge) and, with
    /// `latency`, its publish delay.
    pub(super) stats: Option<Arc<StreamStats>>,
}

impl SinkFeedback {
    /// A chunk was read: its `moof` position moves the batcher's clock.
    fn on_chunk_read(&self, chunk: &Chunk) {
        if let (Some(clock), Some(position)) = (&self.clock, chunk.position) {
            // The muxer's input timeline (buffer positions), as the batcher sees frames.
            clock.on_chunk(position, chunk.duration, chunk.fragment_start);
        }
    }

    /// A chunk presenting up to `end` (running time) was published.
    fn on_chunk_published(&self, end: u64) {
        if let Some(monitor) = &self.monitor {
            monitor.on_chunk(end);
        }
        let now = Instant::now();
        // The arrival of the part's last frame.
        let mut last_arrival: Option<Instant> = None;
        if let Some((arrivals, metrics)) = &self.latency {
            let mut arrivals = arrivals.lock().unwrap_or_else(|e| e.into_inner());
            arrivals.retain(|&(frame_pts, arrived)| {
                let published = frame_pts < end;
                if published {
                    metrics.ingest_to_part.record(now - arrived);
                    last_arrival = Some(last_arrival.map_or(arrived, |last| last.max(arrived)));
                }
                !published
            });
        }
        if let Some(stats) = &self.stats {
            let delay = last_arrival.map(|arrived| now.saturating_duration_since(arrived));
            stats.on_part(stats.ns_at(now), delay);
        }
    }
}

/// Wires an appsink to its rendition: init segment, chunks, end of stream (the rendition ends,
/// or is interrupted when `interrupted` is set); `feedback` hears of every chunk.
pub(super) fn configure_sink(
    sink: &gst_app::AppSink,
    rendition: Arc<Rendition>,
    stream: Arc<HlsStream>,
    feedback: SinkFeedback,
    interrupted: Arc<AtomicBool>,
) {
    sink.set_sync(false);
    sink.set_property("buffer-list", true);
    sink.set_property("enable-last-sample", false);
    sink.set_wait_on_eos(false);
    let eos_rendition = Arc::clone(&rendition);
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                handle_sample(sink, &sample, &rendition, &stream, &feedback);
                Ok(gst::FlowSuccess::Ok)
            })
            .eos(move |_| {
                if interrupted.load(Ordering::Acquire) {
                    eos_rendition.interrupt();
                } else {
                    eos_rendition.end();
                }
            })
            .build(),
    );
}

/// Hands one appsink sample of cmafmux output to the rendition, split into the init segment
/// and chunks. Unreadable buffers are skipped.
fn handle_sample(
    sink: &gst_app::AppSink,
    sample: &gst::Sample,
    rendition: &Rendition,
    stream: &HlsStream,
    feedback: &SinkFeedback,
) {
    let buffers: Vec<&gst::BufferRef> = match (sample.buffer_list(), sample.buffer()) {
        (Some(list), _) => list.iter().collect(),
        (None, Some(buffer)) => vec![buffer],
        (None, None) => return,
    };
    let maps: Vec<(&gst::BufferRef, gst::BufferMap<'_, gst::buffer::Readable>)> = buffers
        .into_iter()
        .filter_map(|buffer| Some((buffer, buffer.map_readable().ok()?)))
        .collect();
    let muxed: Vec<MuxedBuffer<'_>> = maps
        .iter()
        .map(|(buffer, map)| MuxedBuffer {
            flags: buffer.flags(),
            pts: buffer.pts().map(gst::ClockTime::nseconds),
            duration: buffer.duration().map(gst::ClockTime::nseconds),
            data: map.as_slice(),
        })
        .collect();
    let all_independent = rendition.kind == RenditionKind::Audio;
    for piece in cmaf::split(&muxed, |t| running_time(sample, t), all_independent) {
        match piece {
            Muxed::Init(data) => rendition.push_init(data, track_info(sink, rendition.kind)),
            Muxed::Chunk(chunk) => publish(chunk, rendition, stream, feedback),
        }
    }
}

/// Publishes `chunk` in `rendition` and tells `feedback`.
fn publish(chunk: Chunk, rendition: &Rendition, stream: &HlsStream, feedback: &SinkFeedback) {
    feedback.on_chunk_read(&chunk);
    let end = chunk.presents.end;
    rendition.push_chunk_presenting(
        CmafChunk {
            data: chunk.data,
            pts: chunk.pts,
            duration: chunk.duration,
            fragment_start: chunk.fragment_start,
            independent: chunk.independent,
            program_date_time: stream.program_date_time(chunk.pts),
        },
        chunk.presents,
    );
    feedback.on_chunk_published(end);
}

/// `ns` (on the muxer's timeline) as running time in `sample`'s segment (`ns` itself without a
/// time segment).
fn running_time(sample: &gst::Sample, ns: u64) -> u64 {
    let time = gst::ClockTime::from_nseconds(ns.min(gst::ClockTime::MAX.nseconds()));
    sample
        .segment()
        .and_then(|segment| segment.downcast_ref::<gst::ClockTime>())
        .and_then(|segment| segment.to_running_time(time))
        .unwrap_or(time)
        .nseconds()
}
