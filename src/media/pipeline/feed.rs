//! Feeding publisher units into the running pipeline's appsrcs: caps on configuration changes,
//! timestamps and durations on every frame, part-aligned batching, and the transcoding ladder's
//! copy of the video.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::caps::{audio_caps, audio_frame_ns, estimated_frame_ns, video_caps, video_frame_ns};
use super::pipeline_error;
use super::sink::Arrivals;
use crate::media::MediaError;
use crate::media::batch::{FrameTimes, PartBatcher, PartClock};
use crate::media::frame::{AudioConfig, AudioFrame, MediaUnit, VideoConfig, VideoFrame};
use crate::media::ladder::{LadderError, LadderFeed};

/// Most frame arrival times remembered per rendition until their part is published.
const MAX_PENDING_ARRIVALS: usize = 1024;

/// Why an appsrc did not take a frame.
#[derive(Debug, thiserror::Error)]
pub(super) enum FeedError {
    /// The appsrc's queue is over its limit.
    #[error("the pipeline cannot keep up with the publisher")]
    Overloaded,
    /// The appsrc refused the data (the pipeline stopped or failed).
    #[error("pipeline refused data: {0:?}")]
    Refused(gst::FlowError),
    /// The transcoding ladder's appsrc refused the data.
    #[error(transparent)]
    Ladder(#[from] LadderError),
}

/// Part-aligned batching of one appsrc's frames into its `cmafmux` (see
/// [`crate::media::batch`]).
pub(super) struct Batch {
    /// Frames held until one may close a part.
    pub(super) batcher: PartBatcher<gst::Buffer>,
    /// The muxer's published boundaries, fed by its appsink.
    pub(super) clock: Arc<PartClock>,
}

/// One of the publisher's inputs: an appsrc and its batching.
pub(super) struct Input {
    /// The appsrc.
    pub(super) src: gst_app::AppSrc,
    /// Part-aligned batching (None: every frame is pushed as it comes).
    pub(super) batch: Option<Batch>,
    /// Set by the appsrcs' enough-data callback (queue above max-bytes), shared by the inputs.
    pub(super) overloaded: Arc<AtomicBool>,
}

impl Input {
    /// Pushes `buffer` with `times` now, or holds it while its part is in progress.
    fn push(
        &mut self,
        buffer: gst::Buffer,
        times: FrameTimes,
        now: Instant,
    ) -> Result<(), FeedError> {
        let frames = match &mut self.batch {
            Some(batch) => batch
                .batcher
                .push(buffer, times, batch.clock.boundaries(), now)
                .unwrap_or_default(),
            None => vec![buffer],
        };
        self.send(frames)
    }

    /// Pushes every held frame (before a caps change, and at the end).
    fn flush(&mut self) -> Result<(), FeedError> {
        match &mut self.batch {
            Some(batch) => {
                let frames = batch.batcher.take();
                self.send(frames)
            }
            None => Ok(()),
        }
    }

    /// Pushes `frames` (none, one buffer, or one buffer list: one wakeup of the appsrc thread).
    fn send(&self, mut frames: Vec<gst::Buffer>) -> Result<(), FeedError> {
        if frames.is_empty() {
            return Ok(());
        }
        // No lock per push: the flag is set by the appsrc's callbacks.
        if self.overloaded.load(Ordering::Relaxed) {
            return Err(FeedError::Overloaded);
        }
        let pushed = match frames.pop() {
            Some(last) if frames.is_empty() => self.src.push_buffer(last),
            Some(last) => {
                frames.push(last);
                self.src.push_buffer_list(frames.into_iter().collect())
            }
            None => return Ok(()),
        };
        pushed.map(|_| ()).map_err(FeedError::Refused)
    }
}

/// A running pipeline's inputs and what is known of the publisher's tracks.
pub(super) struct Running {
    /// The pipeline.
    pub(super) pipeline: gst::Pipeline,
    /// Video input, if the publisher sends video and the source rendition is published.
    pub(super) video: Option<Input>,
    /// Audio input, if the publisher sends audio.
    pub(super) audio: Option<Input>,
    /// Current video configuration (a change updates the appsrc caps).
    pub(super) video_config: Option<VideoConfig>,
    /// Current audio configuration.
    pub(super) audio_config: Option<AudioConfig>,
    /// Video frame duration (ns) when the configuration declares a frame rate: set on every
    /// buffer so the muxer knows the last frame's duration at end of stream (no parser
    /// element in the template infers it).
    pub(super) video_frame_ns: Option<u64>,
    /// DTS of the previous video frame, for a duration estimate when the configuration
    /// declares no frame rate and the ladder runs (its videorate needs durations).
    pub(super) last_video_dts: Option<u64>,
    /// AAC frame duration (ns) from the AudioSpecificConfig, set on every audio buffer.
    pub(super) audio_frame_ns: Option<u64>,
    /// Set by the bus watcher when the pipeline posted an error.
    pub(super) failed: Arc<AtomicBool>,
    /// Set once end-of-stream was given to the inputs (starts the drain timeout).
    pub(super) eos_sent: Arc<AtomicBool>,
    /// Per video rendition: frames waiting for their part (ingest-to-part latency).
    pub(super) arrivals: Vec<Arrivals>,
    /// The transcoding ladder's input, when rungs are produced.
    pub(super) ladder: Option<LadderFeed>,
}

impl Running {
    /// The bus watcher saw the pipeline fail.
    pub(super) fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Ends the inputs: held frames go first, then end-of-stream (the pipeline drains). Errors
    /// are the stream's end anyway and surface on the bus.
    pub(super) fn end_of_stream(&mut self) {
        for input in self.video.iter_mut().chain(self.audio.iter_mut()) {
            let _ = input.flush();
        }
        self.eos_sent.store(true, Ordering::Release);
        for input in self.video.iter().chain(self.audio.iter()) {
            let _ = input.src.end_of_stream();
        }
        if let Some(ladder) = &self.ladder {
            ladder.end_of_stream();
        }
    }

    /// Feeds one unit of `stream`.
    pub(super) fn push(&mut self, unit: MediaUnit, stream: &str) -> Result<(), MediaError> {
        let fed = match unit {
            MediaUnit::VideoConfig(config) => return self.set_video_config(config, stream),
            MediaUnit::AudioConfig(config) => return self.set_audio_config(config, stream),
            MediaUnit::Video(frame) => self.push_video(frame),
            MediaUnit::Audio(frame) => self.push_audio(frame),
        };
        fed.map_err(|e| pipeline_error(stream, e.to_string()))
    }

    /// A video configuration: new caps for the passthrough (after the frames held under the
    /// old ones) and the ladder; a codec change ends the ladder, whose decoder was chosen for
    /// the first codec.
    fn set_video_config(&mut self, config: VideoConfig, stream: &str) -> Result<(), MediaError> {
        if (self.video.is_none() && self.ladder.is_none())
            || self.video_config.as_ref() == Some(&config)
        {
            return Ok(());
        }
        let caps = video_caps(&config)?;
        if let Some(input) = &mut self.video {
            input
                .flush()
                .map_err(|e| pipeline_error(stream, e.to_string()))?;
            input.src.set_caps(Some(&caps));
        }
        let same_codec = self
            .video_config
            .as_ref()
            .is_none_or(|old| std::mem::discriminant(old) == std::mem::discriminant(&config));
        if same_codec {
            if let Some(ladder) = &self.ladder {
                ladder.set_caps(&caps);
            }
        } else if let Some(ladder) = self.ladder.take() {
            tracing::warn!(
                stream,
                "video codec changed mid-stream; the transcoded renditions end"
            );
            ladder.end_of_stream();
        }
        self.video_frame_ns = video_frame_ns(&config);
        self.video_config = Some(config);
        Ok(())
    }

    /// An audio configuration: new caps, after the frames held under the old ones.
    fn set_audio_config(&mut self, config: AudioConfig, stream: &str) -> Result<(), MediaError> {
        let Some(input) = &mut self.audio else {
            return Ok(());
        };
        if self.audio_config.as_ref() == Some(&config) {
            return Ok(());
        }
        let caps = audio_caps(&config)?;
        input
            .flush()
            .map_err(|e| pipeline_error(stream, e.to_string()))?;
        input.src.set_caps(Some(&caps));
        self.audio_frame_ns = audio_frame_ns(&config);
        self.audio_config = Some(config);
        Ok(())
    }

    /// One video frame: to the passthrough first (it never waits on the ladder), then the ladder.
    fn push_video(&mut self, frame: VideoFrame) -> Result<(), FeedError> {
        let now = Instant::now();
        self.note_arrival(frame.pts, now);
        if self.video.is_none() && self.ladder.is_none() {
            return Ok(());
        }
        let buffer = self.video_buffer(&frame);
        if let Some(input) = &mut self.video {
            let times = FrameTimes {
                pts: frame.pts,
                dts: frame.dts,
                duration: buffer.duration().map(|d| d.nseconds()),
                keyframe: Some(frame.keyframe),
            };
            input.push(buffer.clone(), times, now)?;
        }
        if let Some(ladder) = &mut self.ladder {
            ladder.push(buffer, frame.pts, frame.keyframe)?;
        }
        Ok(())
    }

    /// Remembers when the frame presented at `pts` arrived, for each video rendition's
    /// ingest-to-part latency.
    fn note_arrival(&self, pts: u64, now: Instant) {
        for queue in &self.arrivals {
            let mut queue = queue.lock().unwrap_or_else(|e| e.into_inner());
            if queue.len() == MAX_PENDING_ARRIVALS {
                queue.pop_front();
            }
            queue.push_back((pts, now));
        }
    }

    /// The buffer of a video frame: its timestamps, its duration (declared, or estimated when
    /// the ladder runs), DELTA_UNIT unless a keyframe.
    fn video_buffer(&mut self, frame: &VideoFrame) -> gst::Buffer {
        let previous_dts = self.last_video_dts.replace(frame.dts);
        let mut buffer = gst::Buffer::from_slice(frame.data.clone());
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(frame.pts));
            b.set_dts(gst::ClockTime::from_nseconds(frame.dts));
            let duration = self.video_frame_ns.or_else(|| {
                self.ladder
                    .as_ref()
                    .map(|_| estimated_frame_ns(previous_dts, frame.dts))
            });
            b.set_duration(duration.map(gst::ClockTime::from_nseconds));
            if !frame.keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        buffer
    }

    /// One audio frame, with its PTS and the AAC frame duration.
    fn push_audio(&mut self, frame: AudioFrame) -> Result<(), FeedError> {
        let Some(input) = &mut self.audio else {
            return Ok(());
        };
        let mut buffer = gst::Buffer::from_slice(frame.data);
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(frame.pts));
            b.set_duration(self.audio_frame_ns.map(gst::ClockTime::from_nseconds));
        }
        let times = FrameTimes {
            pts: frame.pts,
            dts: frame.pts,
            duration: self.audio_frame_ns,
            keyframe: None,
        };
        input.push(buffer, times, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An input whose appsrc is in no pipeline.
    fn input(overloaded: bool) -> Input {
        crate::media::init().unwrap();
        Input {
            src: gst_app::AppSrc::builder().build(),
            batch: None,
            overloaded: Arc::new(AtomicBool::new(overloaded)),
        }
    }

    #[test]
    fn nothing_to_send_is_not_an_error() {
        assert!(input(true).send(Vec::new()).is_ok());
        assert!(input(false).flush().is_ok());
    }

    #[test]
    fn an_overloaded_input_refuses_frames_with_the_reason() {
        let err = input(true)
            .send(vec![gst::Buffer::new()])
            .expect_err("over its queue limit");
        assert!(matches!(err, FeedError::Overloaded));
        assert_eq!(
            err.to_string(),
            "the pipeline cannot keep up with the publisher"
        );
    }

    #[test]
    fn an_ended_input_refuses_frames_and_lists() {
        let mut input = input(false);
        input.src.end_of_stream().unwrap();
        for frames in [vec![gst::Buffer::new()], vec![gst::Buffer::new(); 3]] {
            let err = input.send(frames).expect_err("after end of stream");
            assert_eq!(err.to_string(), "pipeline refused data: Eos");
        }
        let times = FrameTimes {
            pts: 0,
            dts: 0,
            duration: None,
            keyframe: Some(true),
        };
        assert!(
            input
                .push(gst::Buffer::new(), times, Instant::now())
                .is_err()
        );
    }
}
