//! Multivariant Playlist (RFC 8216 §4.3.4): `EXT-X-STREAM-INF` variants and `EXT-X-MEDIA`
//! audio renditions.

use std::fmt;

use super::PlaylistError;
use super::format::{validate_quoted, validate_uri_line};

/// A Multivariant ("master") Playlist. Output is deterministic: audio renditions, then
/// variants, each in the given order.
///
/// No `EXT-X-VERSION` is written: nothing used here needs more than version 1
/// (`CHANNELS`, `AVERAGE-BANDWIDTH`, `FRAME-RATE` carry no version requirement).
#[derive(Debug, Clone, PartialEq)]
pub struct MultivariantPlaylist {
    /// `EXT-X-INDEPENDENT-SEGMENTS`: every segment of every media playlist starts with an
    /// independent frame (true for cmafmux output: fragments start on keyframes).
    pub independent_segments: bool,
    /// `EXT-X-MEDIA:TYPE=AUDIO` renditions.
    pub audio: Vec<AudioRendition>,
    /// `EXT-X-STREAM-INF` variants.
    pub variants: Vec<Variant>,
}

/// One `#EXT-X-STREAM-INF` variant and its URI line.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// `BANDWIDTH`: peak bits/s of the whole variant (video + its audio group's rendition).
    pub bandwidth: u64,
    /// `AVERAGE-BANDWIDTH`: average bits/s of the whole variant.
    pub average_bandwidth: Option<u64>,
    /// `CODECS`, built by the caller, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: String,
    /// `RESOLUTION=<w>x<h>` of the video.
    pub resolution: Option<(u32, u32)>,
    /// `FRAME-RATE` (written with three decimals).
    pub frame_rate: Option<f64>,
    /// `AUDIO`: group id of the `EXT-X-MEDIA:TYPE=AUDIO` renditions to play with it.
    pub audio: Option<String>,
    /// URI of the variant's media playlist, relative to the multivariant playlist.
    pub uri: String,
}

/// One `#EXT-X-MEDIA:TYPE=AUDIO` rendition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioRendition {
    /// `GROUP-ID`, referenced by [`Variant::audio`].
    pub group_id: String,
    /// `NAME`: human-readable, unique within the group.
    pub name: String,
    /// `LANGUAGE` (RFC 5646 tag), if known.
    pub language: Option<String>,
    /// `DEFAULT=YES`.
    pub default: bool,
    /// `AUTOSELECT=YES`.
    pub autoselect: bool,
    /// `CHANNELS`, e.g. `2`.
    pub channels: Option<String>,
    /// URI of the rendition's media playlist; `None` when the audio is muxed in the
    /// variant.
    pub uri: Option<String>,
}

impl MultivariantPlaylist {
    /// Checks the caller-supplied strings can be written without breaking the syntax.
    pub fn validate(&self) -> Result<(), PlaylistError> {
        for audio in &self.audio {
            validate_quoted("GROUP-ID", &audio.group_id)?;
            validate_quoted("NAME", &audio.name)?;
            if let Some(language) = &audio.language {
                validate_quoted("LANGUAGE", language)?;
            }
            if let Some(channels) = &audio.channels {
                validate_quoted("CHANNELS", channels)?;
            }
            if let Some(uri) = &audio.uri {
                validate_quoted("URI", uri)?;
            }
        }
        for variant in &self.variants {
            validate_quoted("CODECS", &variant.codecs)?;
            if let Some(audio) = &variant.audio {
                validate_quoted("AUDIO", audio)?;
            }
            validate_uri_line(&variant.uri)?;
        }
        Ok(())
    }
}

impl fmt::Display for AudioRendition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{}\",NAME=\"{}\"",
            self.group_id, self.name
        )?;
        if let Some(language) = &self.language {
            write!(f, ",LANGUAGE=\"{language}\"")?;
        }
        if self.default {
            f.write_str(",DEFAULT=YES")?;
        }
        if self.autoselect {
            f.write_str(",AUTOSELECT=YES")?;
        }
        if let Some(channels) = &self.channels {
            write!(f, ",CHANNELS=\"{channels}\"")?;
        }
        if let Some(uri) = &self.uri {
            write!(f, ",URI=\"{uri}\"")?;
        }
        f.write_str("\n")
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#EXT-X-STREAM-INF:BANDWIDTH={}", self.bandwidth)?;
        if let Some(average) = self.average_bandwidth {
            write!(f, ",AVERAGE-BANDWIDTH={average}")?;
        }
        write!(f, ",CODECS=\"{}\"", self.codecs)?;
        if let Some((width, height)) = self.resolution {
            write!(f, ",RESOLUTION={width}x{height}")?;
        }
        if let Some(frame_rate) = self.frame_rate {
            write!(f, ",FRAME-RATE={frame_rate:.3}")?;
        }
        if let Some(audio) = &self.audio {
            write!(f, ",AUDIO=\"{audio}\"")?;
        }
        writeln!(f)?;
        writeln!(f, "{}", self.uri)
    }
}

impl fmt::Display for MultivariantPlaylist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("#EXTM3U\n")?;
        if self.independent_segments {
            f.write_str("#EXT-X-INDEPENDENT-SEGMENTS\n")?;
        }
        for audio in &self.audio {
            write!(f, "{audio}")?;
        }
        for variant in &self.variants {
            write!(f, "{variant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> MultivariantPlaylist {
        MultivariantPlaylist {
            independent_segments: true,
            audio: vec![AudioRendition {
                group_id: "audio".into(),
                name: "audio".into(),
                language: None,
                default: true,
                autoselect: true,
                channels: Some("2".into()),
                uri: Some("audio/playlist.m3u8".into()),
            }],
            variants: vec![Variant {
                bandwidth: 2_628_000,
                average_bandwidth: Some(2_128_000),
                codecs: "avc1.64001f,mp4a.40.2".into(),
                resolution: Some((1280, 720)),
                frame_rate: Some(29.97),
                audio: Some("audio".into()),
                uri: "source/playlist.m3u8".into(),
            }],
        }
    }

    #[test]
    fn golden_video_and_audio_group() {
        let expected = "\
#EXTM3U
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/playlist.m3u8\"
#EXT-X-STREAM-INF:BANDWIDTH=2628000,AVERAGE-BANDWIDTH=2128000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=29.970,AUDIO=\"audio\"
source/playlist.m3u8
";
        let playlist = sample();
        assert_eq!(playlist.to_string(), expected);
        assert_eq!(playlist.validate(), Ok(()));

        let parsed = m3u8_rs::parse_master_playlist_res(expected.as_bytes())
            .expect("m3u8-rs parses the multivariant playlist");
        assert!(parsed.independent_segments);
        assert_eq!(parsed.variants.len(), 1);
        let variant = &parsed.variants[0];
        assert_eq!(variant.bandwidth, 2_628_000);
        assert_eq!(variant.average_bandwidth, Some(2_128_000));
        assert_eq!(variant.codecs.as_deref(), Some("avc1.64001f,mp4a.40.2"));
        assert_eq!(variant.audio.as_deref(), Some("audio"));
        assert_eq!(variant.uri, "source/playlist.m3u8");
        assert_eq!(parsed.alternatives.len(), 1);
        let audio = &parsed.alternatives[0];
        assert_eq!(audio.group_id, "audio");
        assert!(audio.default && audio.autoselect);
        assert_eq!(audio.channels.as_deref(), Some("2"));
        assert_eq!(audio.uri.as_deref(), Some("audio/playlist.m3u8"));
    }

    #[test]
    fn golden_minimal_variant() {
        let playlist = MultivariantPlaylist {
            independent_segments: true,
            audio: Vec::new(),
            variants: vec![Variant {
                bandwidth: 128_000,
                average_bandwidth: None,
                codecs: "mp4a.40.2".into(),
                resolution: None,
                frame_rate: None,
                audio: None,
                uri: "audio/playlist.m3u8".into(),
            }],
        };
        assert_eq!(
            playlist.to_string(),
            "#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-STREAM-INF:BANDWIDTH=128000,CODECS=\"mp4a.40.2\"\naudio/playlist.m3u8\n"
        );
    }

    #[test]
    fn validate_rejects_quotes() {
        let mut playlist = sample();
        playlist.audio[0].name = "bad\"name".into();
        assert!(matches!(
            playlist.validate(),
            Err(PlaylistError::InvalidQuotedString {
                attribute: "NAME",
                ..
            })
        ));
    }
}
