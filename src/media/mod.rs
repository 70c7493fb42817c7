//! Media: per-stream GStreamer pipelines, built from the templates in `pipelines/`, that turn a
//! publisher's media units into CMAF (via `cmafmux`) for the HLS packager.

pub mod batch;
pub mod codec;
mod config;
pub mod frame;
pub mod ladder;
pub mod mpegts;
pub mod pipeline;
pub mod scale;
pub mod stats;
pub mod template;

pub use config::{
    Config, DEFAULT_RUNG_THREADS, H264_PROFILES, RESERVED_RENDITIONS, RungConfig, X264_PRESETS,
};
pub use pipeline::{MediaSettings, StreamPipeline};

/// Errors of the media layer.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// GStreamer could not be initialised.
    #[error("GStreamer initialisation failed: {0}")]
    Init(InitError),
    /// A pipeline template is unusable.
    #[error("pipeline template {template}: {reason}")]
    Template {
        /// The template's file (or built-in name).
        template: String,
        /// What is wrong.
        reason: String,
    },
    /// The publisher's codec configuration is unusable.
    #[error("codec configuration: {0}")]
    Codec(#[from] codec::CodecError),
    /// The pipeline failed at runtime (the stream ends).
    #[error("pipeline of stream {stream}: {reason}")]
    Pipeline {
        /// The stream.
        stream: String,
        /// The GStreamer error or what failed.
        reason: String,
    },
}

/// Why GStreamer could not be initialised (kept for every later [`init`] call).
#[derive(Debug, Clone, thiserror::Error)]
pub enum InitError {
    /// `gst_init` failed.
    #[error(transparent)]
    Gst(#[from] gst::glib::Error),
    /// A statically linked plugin or element could not be registered.
    #[error(transparent)]
    Register(#[from] gst::glib::BoolError),
}

/// Initialises GStreamer and registers the statically linked fmp4 plugin (`cmafmux`) and
/// cuecast's own elements (`cuecastscale`). Idempotent.
pub fn init() -> Result<(), MediaError> {
    static INIT: std::sync::OnceLock<Result<(), InitError>> = std::sync::OnceLock::new();
    INIT.get_or_init(|| {
        gst::init()?;
        gstfmp4::plugin_register_static()?;
        scale::register()?;
        Ok(())
    })
    .clone()
    .map_err(MediaError::Init)
}

/// Test support: runs a `gst-launch` style pipeline ending in an appsink named `out` to the end
/// and returns every sample it produced.
#[cfg(test)]
pub(crate) fn run_to_appsink(description: &str) -> Vec<gst::Sample> {
    use gst::prelude::*;
    init().unwrap();
    let pipeline = gst::parse::launch(description)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sink = pipeline
        .by_name("out")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut samples = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        samples.push(sample);
    }
    pipeline.set_state(gst::State::Null).unwrap();
    samples
}
