//! Pipeline templates: gst-launch text with named placeholders, kept in `pipelines/` so operators
//! can read and tune them. Loaded and validated once at startup.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gst::prelude::*;

use super::MediaError;

/// Name of the appsrc receiving the publisher's video.
pub const VIDEO_SRC: &str = "video_src";
/// Name of the appsrc receiving the publisher's audio.
pub const AUDIO_SRC: &str = "audio_src";
/// Prefix of appsink names; the rest of the name is the HLS rendition name.
pub const RENDITION_SINK_PREFIX: &str = "hls_";

/// The durations a stream's pipeline is built with, derived once from the HLS segment and part
/// targets: they fill the templates' placeholders and pace the checks at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timings {
    /// `{video_fragment_ns}`: cmafmux's video `fragment-duration` (see [`Timings::new`]).
    pub video_fragment: Duration,
    /// `{audio_fragment_ns}`: cmafmux's audio `fragment-duration`, the segment target; also the
    /// lag behind the source above which a transcoded rendition is reported lagging.
    pub audio_fragment: Duration,
    /// `{chunk_ns}`: cmafmux's `chunk-duration`, the part target.
    pub chunk: Duration,
}

impl Timings {
    /// The timings for the given segment and part durations.
    ///
    /// `video_fragment` is one part shorter than the segment target: cmafmux ends a fragment at
    /// the first keyframe at or after its duration, and a keyframe landing exactly on the
    /// boundary (a 2 s GOP with 2 s segments) is otherwise sometimes carried into the next
    /// fragment, doubling that segment. With the margin the boundary keyframe always starts
    /// the next fragment, and GOPs shorter than the target still group into full segments.
    /// Audio has no keyframes to wait for, so `audio_fragment` is the segment target itself
    /// (its segments then line up with the video's).
    pub fn new(segment: Duration, part: Duration) -> Timings {
        Timings {
            video_fragment: segment.saturating_sub(part).max(part),
            audio_fragment: segment,
            chunk: part,
        }
    }

    /// The placeholder values, in nanoseconds: `video_fragment_ns`, `audio_fragment_ns`,
    /// `chunk_ns`.
    pub fn placeholders(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            (
                "video_fragment_ns",
                self.video_fragment.as_nanos().to_string(),
            ),
            (
                "audio_fragment_ns",
                self.audio_fragment.as_nanos().to_string(),
            ),
            ("chunk_ns", self.chunk.as_nanos().to_string()),
        ])
    }
}

/// A loaded pipeline template.
#[derive(Debug, Clone)]
pub struct Template {
    /// Where it came from (file path or "built-in …"), for error messages.
    pub origin: String,
    /// The gst-launch description with comments removed, placeholders not yet filled.
    text: String,
}

/// Built-in copies of the templates, used when the configured directory lacks the file.
const BUILTIN: &[(&str, &str)] = &[
    (
        "passthrough.pipeline",
        include_str!("../../pipelines/passthrough.pipeline"),
    ),
    (
        "ladder.pipeline",
        include_str!("../../pipelines/ladder.pipeline"),
    ),
    (
        "rung.pipeline",
        include_str!("../../pipelines/rung.pipeline"),
    ),
];

impl Template {
    /// Loads the passthrough template `name` from `dir` (see [`Template::read`]), then validates
    /// it filled with `timings`.
    pub fn load(dir: &Path, name: &str, timings: &Timings) -> Result<Template, MediaError> {
        let template = Template::read(dir, name)?;
        template.validate(timings)?;
        Ok(template)
    }

    /// Reads `name` from `dir`, falling back to the built-in copy of the same name when the file
    /// does not exist. Not validated.
    pub fn read(dir: &Path, name: &str) -> Result<Template, MediaError> {
        let path: PathBuf = dir.join(name);
        let template = match std::fs::read_to_string(&path) {
            Ok(text) => Template::parse(path.display().to_string(), &text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let builtin = BUILTIN.iter().find(|(n, _)| *n == name).ok_or_else(|| {
                    MediaError::Template {
                        template: path.display().to_string(),
                        reason: "file not found and no built-in template has that name".into(),
                    }
                })?;
                tracing::info!(template = %path.display(), "template file not found; using the built-in copy");
                Template::parse(format!("built-in {name}"), builtin.1)
            }
            Err(err) => {
                return Err(MediaError::Template {
                    template: path.display().to_string(),
                    reason: format!("cannot read: {err}"),
                });
            }
        };
        Ok(template)
    }

    /// The template text with comments removed, placeholders not filled.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// A template from text (comments are lines whose first non-blank character is `#`).
    pub fn parse(origin: String, text: &str) -> Template {
        let text = text
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        Template { origin, text }
    }

    /// Fills the placeholders; an unknown or unfilled placeholder is an error.
    pub fn render(&self, values: &BTreeMap<&'static str, String>) -> Result<String, MediaError> {
        let mut out = String::with_capacity(self.text.len());
        let mut rest = self.text.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| self.error("unclosed '{' placeholder"))?;
            let key = &after[..close];
            let value = values
                .get(key)
                .ok_or_else(|| self.error(&format!("unknown placeholder {{{key}}}")))?;
            out.push_str(value);
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Builds the pipeline from the rendered template.
    pub fn instantiate(
        &self,
        values: &BTreeMap<&'static str, String>,
    ) -> Result<gst::Pipeline, MediaError> {
        let description = self.render(values)?;
        self.launch(&description)
    }

    /// Builds a pipeline from `description` (this template rendered, possibly with more text);
    /// errors name this template.
    pub fn launch(&self, description: &str) -> Result<gst::Pipeline, MediaError> {
        let mut context = gst::ParseContext::new();
        let element = gst::parse::launch_full(
            description,
            Some(&mut context),
            gst::ParseFlags::FATAL_ERRORS,
        )
        .map_err(|err| {
            let missing = context.missing_elements();
            if missing.is_empty() {
                self.error(&err.to_string())
            } else {
                self.error(&format!("no such element: {}", missing.join(", ")))
            }
        })?;
        element
            .downcast::<gst::Pipeline>()
            .map_err(|_| self.error("must describe a pipeline (at least two chains or elements)"))
    }

    /// Instantiates the template once and checks the element contract.
    fn validate(&self, timings: &Timings) -> Result<(), MediaError> {
        let pipeline = self.instantiate(&timings.placeholders())?;
        for name in [VIDEO_SRC, AUDIO_SRC] {
            let element = pipeline.by_name(name).ok_or_else(|| {
                self.error(&format!("missing element named `{name}` (an appsrc)"))
            })?;
            if element.downcast_ref::<gst_app::AppSrc>().is_none() {
                return Err(self.error(&format!("element `{name}` must be an appsrc")));
            }
        }
        let sinks = rendition_sinks(&pipeline);
        if sinks.is_empty() {
            return Err(self.error(&format!(
                "no appsink named `{RENDITION_SINK_PREFIX}<rendition>`"
            )));
        }
        for (rendition, _) in &sinks {
            if !crate::hls::origin::is_valid_stream_name(rendition) {
                return Err(self.error(&format!(
                    "appsink `{RENDITION_SINK_PREFIX}{rendition}`: rendition names are letters, digits, '-' and '_'"
                )));
            }
        }
        Ok(())
    }

    /// An error naming this template.
    pub fn error(&self, reason: &str) -> MediaError {
        MediaError::Template {
            template: self.origin.clone(),
            reason: reason.to_string(),
        }
    }
}

/// The pipeline's rendition appsinks: (rendition name, sink), sorted by name.
pub fn rendition_sinks(pipeline: &gst::Pipeline) -> Vec<(String, gst_app::AppSink)> {
    let mut sinks: Vec<(String, gst_app::AppSink)> = pipeline
        .iterate_recurse()
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|element| {
            let name = element.name();
            let rendition = name.strip_prefix(RENDITION_SINK_PREFIX)?.to_string();
            let sink = element.downcast::<gst_app::AppSink>().ok()?;
            Some((rendition, sink))
        })
        .collect();
    sinks.sort_by(|a, b| a.0.cmp(&b.0));
    sinks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timings() -> Timings {
        Timings {
            video_fragment: Duration::from_millis(1800),
            audio_fragment: Duration::from_secs(2),
            chunk: Duration::from_millis(200),
        }
    }

    fn values() -> BTreeMap<&'static str, String> {
        timings().placeholders()
    }

    #[test]
    fn timings_keep_a_part_of_margin_before_the_video_fragment_ends() {
        let t = Timings::new(Duration::from_secs(2), Duration::from_millis(200));
        assert_eq!(t, timings());
        assert_eq!(
            t.placeholders(),
            BTreeMap::from([
                ("video_fragment_ns", "1800000000".to_string()),
                ("audio_fragment_ns", "2000000000".to_string()),
                ("chunk_ns", "200000000".to_string()),
            ])
        );
        // A segment target of a single part: the fragment is that part, not zero.
        let short = Timings::new(Duration::from_millis(200), Duration::from_millis(200));
        assert_eq!(short.video_fragment, Duration::from_millis(200));
    }

    #[test]
    fn render_fills_placeholders_and_rejects_unknown_ones() {
        let t = Template::parse(
            "t".into(),
            "# comment {nope}\na x={audio_fragment_ns} ! b y={chunk_ns}",
        );
        assert_eq!(
            t.render(&values()).unwrap(),
            "a x=2000000000 ! b y=200000000"
        );
        let bad = Template::parse("bad.pipeline".into(), "a x={nope}");
        let err = bad.render(&values()).unwrap_err().to_string();
        assert!(
            err.contains("bad.pipeline") && err.contains("{nope}"),
            "{err}"
        );
        let unclosed = Template::parse("u".into(), "a x={chunk_ns");
        assert!(unclosed.render(&values()).is_err());
    }

    #[test]
    fn builtin_passthrough_template_is_valid() {
        crate::media::init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let t = Template::load(dir.path(), "passthrough.pipeline", &timings()).unwrap();
        assert!(t.origin.contains("built-in"));
        let pipeline = t.instantiate(&values()).unwrap();
        let names: Vec<String> = rendition_sinks(&pipeline)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["audio", "source"]);
    }

    #[test]
    fn broken_template_error_names_template_and_element() {
        crate::media::init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.pipeline");
        std::fs::write(
            &path,
            "appsrc name=video_src ! h264parse ! nosuchelement ! appsink name=hls_source\nappsrc name=audio_src ! fakesink",
        )
        .unwrap();
        let err = Template::load(dir.path(), "broken.pipeline", &timings())
            .unwrap_err()
            .to_string();
        assert!(err.contains("broken.pipeline"), "{err}");
        assert!(err.contains("nosuchelement"), "{err}");

        std::fs::write(&path, "videotestsrc ! fakesink\naudiotestsrc ! fakesink").unwrap();
        let err = Template::load(dir.path(), "broken.pipeline", &timings())
            .unwrap_err()
            .to_string();
        assert!(err.contains("video_src"), "{err}");
    }
}
