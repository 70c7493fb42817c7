//! Media Playlist (RFC 8216 §4.3.3, §4.3.2; draft-pantos-hls-rfc8216bis §4.4.3–§4.4.5).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use super::format::{FormatSeconds, validate_quoted, validate_uri_line};
use super::{
    DateRange, Map, Part, PartInf, PlaylistError, PreloadHint, RenditionReport, ServerControl, Skip,
};

/// A Media Playlist: the list of segments (and, for LL-HLS, parts) of one rendition.
///
/// Written in this order: header tags (`EXT-X-VERSION`, `EXT-X-TARGETDURATION`,
/// `EXT-X-SERVER-CONTROL`, `EXT-X-PART-INF`, `EXT-X-MEDIA-SEQUENCE`,
/// `EXT-X-DISCONTINUITY-SEQUENCE`, `EXT-X-INDEPENDENT-SEGMENTS`), `EXT-X-SKIP`, the
/// `EXT-X-DATERANGE`s, the segments, the open segment's parts, `EXT-X-PRELOAD-HINT`s, `EXT-X-ENDLIST`, then
/// `EXT-X-RENDITION-REPORT`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPlaylist {
    /// `EXT-X-VERSION`. 6 is the minimum for `EXT-X-MAP` without I-frames-only; 9 for
    /// playlists that may carry `EXT-X-SKIP`.
    pub version: u8,
    /// `EXT-X-TARGETDURATION`, whole seconds: every `EXTINF` rounded to the nearest integer
    /// must be ≤ this.
    pub target_duration: u64,
    /// `EXT-X-SERVER-CONTROL` (LL-HLS); `None` in plain playlists.
    pub server_control: Option<ServerControl>,
    /// `EXT-X-PART-INF` (LL-HLS); required when any `EXT-X-PART` is present.
    pub part_inf: Option<PartInf>,
    /// `EXT-X-MEDIA-SEQUENCE`: MSN of the first segment (the first skipped one in a delta
    /// update). Always written, also when 0.
    pub media_sequence: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE`: number of `EXT-X-DISCONTINUITY` tags that slid out
    /// of the playlist. Written only when non-zero.
    pub discontinuity_sequence: u64,
    /// `EXT-X-INDEPENDENT-SEGMENTS`: every segment starts with an independent frame.
    pub independent_segments: bool,
    /// `EXT-X-PLAYLIST-TYPE` (RFC 8216 §4.3.3.5): `None` for live sliding-window playlists,
    /// `EVENT` for a recording still growing, `VOD` for a finished one.
    pub playlist_type: Option<PlaylistType>,
    /// `EXT-X-SKIP` of a Playlist Delta Update; `None` in full playlists.
    pub skip: Option<Skip>,
    /// `EXT-X-DATERANGE`s (timed metadata), written before the first segment. A playlist
    /// with any must carry EXT-X-PROGRAM-DATE-TIME (the packager writes it on every segment).
    pub dateranges: Vec<DateRange>,
    /// Complete Media Segments, oldest first (after the skipped ones, if any).
    pub segments: Vec<MediaSegment>,
    /// The open (still growing) segment's parts (LL-HLS only); has no `EXTINF` yet.
    pub partial: Option<PartialSegment>,
    /// `EXT-X-PRELOAD-HINT`s (LL-HLS): the next part (and/or map) before it exists.
    pub preload_hints: Vec<PreloadHint>,
    /// `EXT-X-ENDLIST`: no more segments will be added.
    pub end_list: bool,
    /// `EXT-X-RENDITION-REPORT`s for the other renditions (LL-HLS), supplied by the caller.
    pub rendition_reports: Vec<RenditionReport>,
}

/// `EXT-X-PLAYLIST-TYPE` (RFC 8216 §4.3.3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistType {
    /// `EVENT`: "Media Segments can only be added to the end of the Media Playlist".
    Event,
    /// `VOD`: "the Media Playlist cannot change".
    Vod,
}

impl fmt::Display for PlaylistType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PlaylistType::Event => "EVENT",
            PlaylistType::Vod => "VOD",
        })
    }
}

/// One complete Media Segment with the tags that precede its URI line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSegment {
    /// `EXT-X-DISCONTINUITY` before this segment (e.g. codec change).
    pub discontinuity: bool,
    /// `EXT-X-MAP` when this segment needs a different init than the previous listed one
    /// (always set on the first listed segment).
    pub map: Option<Map>,
    /// `EXT-X-PROGRAM-DATE-TIME` of the segment's first sample (written with ms precision,
    /// `Z`).
    pub program_date_time: Option<DateTime<Utc>>,
    /// `EXT-X-PART`s of this segment (LL-HLS, only near the playlist end); written before
    /// the `EXTINF`.
    pub parts: Vec<Part>,
    /// `EXTINF` duration (written in seconds, three decimals).
    pub duration: Duration,
    /// Segment URI line, relative to the media playlist.
    pub uri: String,
}

/// The open segment of an LL-HLS playlist: its parts so far, no `EXTINF` or URI yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialSegment {
    /// `EXT-X-DISCONTINUITY` before this segment.
    pub discontinuity: bool,
    /// `EXT-X-MAP` if this segment needs a different init than the previous listed one.
    pub map: Option<Map>,
    /// `EXT-X-PROGRAM-DATE-TIME` of the segment's first sample.
    pub program_date_time: Option<DateTime<Utc>>,
    /// The parts published so far.
    pub parts: Vec<Part>,
}

impl MediaPlaylist {
    /// Checks the caller-supplied strings (URIs, quoted-strings) can be written without
    /// breaking the playlist syntax.
    pub fn validate(&self) -> Result<(), PlaylistError> {
        let maps = self
            .segments
            .iter()
            .filter_map(|s| s.map.as_ref())
            .chain(self.partial.as_ref().and_then(|p| p.map.as_ref()));
        for map in maps {
            validate_quoted("URI", &map.uri)?;
        }
        let parts = self
            .segments
            .iter()
            .flat_map(|s| &s.parts)
            .chain(self.partial.iter().flat_map(|p| &p.parts));
        for part in parts {
            validate_quoted("URI", &part.uri)?;
        }
        for segment in &self.segments {
            validate_uri_line(&segment.uri)?;
        }
        for hint in &self.preload_hints {
            validate_quoted("URI", &hint.uri)?;
        }
        for report in &self.rendition_reports {
            validate_quoted("URI", &report.uri)?;
        }
        for range in &self.dateranges {
            range.validate()?;
        }
        if let Some(skip) = &self.skip {
            for id in &skip.recently_removed_dateranges {
                validate_quoted("RECENTLY-REMOVED-DATERANGES", id)?;
                if id.contains('\t') {
                    return Err(PlaylistError::InvalidQuotedString {
                        attribute: "RECENTLY-REMOVED-DATERANGES",
                        value: id.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Writes the tags shared by [`MediaSegment`] and [`PartialSegment`].
fn write_segment_head(
    f: &mut fmt::Formatter<'_>,
    discontinuity: bool,
    map: Option<&Map>,
    program_date_time: Option<&DateTime<Utc>>,
    parts: &[Part],
) -> fmt::Result {
    if discontinuity {
        f.write_str("#EXT-X-DISCONTINUITY\n")?;
    }
    if let Some(map) = map {
        write!(f, "{map}")?;
    }
    if let Some(pdt) = program_date_time {
        writeln!(
            f,
            "#EXT-X-PROGRAM-DATE-TIME:{}",
            pdt.to_rfc3339_opts(SecondsFormat::Millis, true)
        )?;
    }
    for part in parts {
        write!(f, "{part}")?;
    }
    Ok(())
}

impl fmt::Display for MediaSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_segment_head(
            f,
            self.discontinuity,
            self.map.as_ref(),
            self.program_date_time.as_ref(),
            &self.parts,
        )?;
        writeln!(f, "#EXTINF:{},", FormatSeconds(self.duration))?;
        writeln!(f, "{}", self.uri)
    }
}

impl fmt::Display for PartialSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_segment_head(
            f,
            self.discontinuity,
            self.map.as_ref(),
            self.program_date_time.as_ref(),
            &self.parts,
        )
    }
}

impl MediaPlaylist {
    /// Turns this full playlist into a Playlist Delta Update (`_HLS_skip`, rfc8216bis
    /// §6.2.5.1): the leading segments that end at least `skip_until` (CAN-SKIP-UNTIL)
    /// before the end of the playlist are replaced by one `EXT-X-SKIP`. MEDIA-SEQUENCE and
    /// DISCONTINUITY-SEQUENCE keep their full-playlist values; the first remaining segment
    /// carries the `EXT-X-MAP` in force. Nothing changes when no segment qualifies.
    pub fn skip_segments(&mut self, skip_until: Duration) {
        let mut after: Duration = self
            .partial
            .iter()
            .flat_map(|p| &p.parts)
            .map(|p| p.duration)
            .sum();
        let mut keep_from = self.segments.len();
        for (index, segment) in self.segments.iter().enumerate().rev() {
            if after >= skip_until {
                break;
            }
            keep_from = index;
            after += segment.duration;
        }
        if keep_from == 0 {
            return;
        }
        let map_in_force = self.segments[..keep_from]
            .iter()
            .rev()
            .find_map(|s| s.map.clone());
        self.segments.drain(..keep_from);
        match self.segments.first_mut() {
            Some(first) if first.map.is_none() => first.map = map_in_force,
            Some(_) => {}
            None => {
                if let Some(partial) = self.partial.as_mut().filter(|p| p.map.is_none()) {
                    partial.map = map_in_force;
                }
            }
        }
        self.skip = Some(Skip {
            skipped_segments: keep_from as u64,
            recently_removed_dateranges: Vec::new(),
        });
        self.version = self.version.max(9);
    }
}

impl fmt::Display for MediaPlaylist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("#EXTM3U\n")?;
        writeln!(f, "#EXT-X-VERSION:{}", self.version)?;
        writeln!(f, "#EXT-X-TARGETDURATION:{}", self.target_duration)?;
        if let Some(control) = &self.server_control {
            write!(f, "{control}")?;
        }
        if let Some(part_inf) = &self.part_inf {
            write!(f, "{part_inf}")?;
        }
        if let Some(kind) = self.playlist_type {
            writeln!(f, "#EXT-X-PLAYLIST-TYPE:{kind}")?;
        }
        writeln!(f, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence)?;
        if self.discontinuity_sequence != 0 {
            writeln!(
                f,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_sequence
            )?;
        }
        if self.independent_segments {
            f.write_str("#EXT-X-INDEPENDENT-SEGMENTS\n")?;
        }
        if let Some(skip) = &self.skip {
            write!(f, "{skip}")?;
        }
        for range in &self.dateranges {
            write!(f, "{range}")?;
        }
        for segment in &self.segments {
            write!(f, "{segment}")?;
        }
        if let Some(partial) = &self.partial {
            write!(f, "{partial}")?;
        }
        for hint in &self.preload_hints {
            write!(f, "{hint}")?;
        }
        if self.end_list {
            f.write_str("#EXT-X-ENDLIST\n")?;
        }
        for report in &self.rendition_reports {
            write!(f, "{report}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::super::PreloadHintType;
    use super::*;

    fn pdt(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_700_000_000_000 + ms)
            .single()
            .expect("valid timestamp")
    }

    fn part(uri: &str, independent: bool) -> Part {
        Part {
            duration: Duration::from_millis(500),
            uri: uri.into(),
            independent,
        }
    }

    /// A hand-built delta update exercising every tag of the model.
    fn delta_update() -> MediaPlaylist {
        MediaPlaylist {
            version: 9,
            target_duration: 1,
            server_control: Some(ServerControl {
                can_block_reload: true,
                can_skip_until: Some(Duration::from_secs(6)),
                can_skip_dateranges: false,
                hold_back: Some(Duration::from_secs(3)),
                part_hold_back: Some(Duration::from_millis(1500)),
            }),
            part_inf: Some(PartInf {
                part_target: Duration::from_millis(500),
            }),
            media_sequence: 10,
            discontinuity_sequence: 2,
            independent_segments: true,
            playlist_type: None,
            skip: Some(Skip {
                skipped_segments: 6,
                recently_removed_dateranges: Vec::new(),
            }),
            dateranges: Vec::new(),
            segments: vec![
                MediaSegment {
                    discontinuity: false,
                    map: Some(Map {
                        uri: "init1.mp4".into(),
                    }),
                    program_date_time: Some(pdt(6000)),
                    parts: Vec::new(),
                    duration: Duration::from_secs(1),
                    uri: "seg16.m4s".into(),
                },
                MediaSegment {
                    discontinuity: true,
                    map: Some(Map {
                        uri: "init2.mp4".into(),
                    }),
                    program_date_time: Some(pdt(7000)),
                    parts: vec![part("part17.0.m4s", true), part("part17.1.m4s", false)],
                    duration: Duration::from_secs(1),
                    uri: "seg17.m4s".into(),
                },
            ],
            partial: Some(PartialSegment {
                discontinuity: false,
                map: None,
                program_date_time: Some(pdt(8000)),
                parts: vec![part("part18.0.m4s", true)],
            }),
            preload_hints: vec![PreloadHint {
                hint_type: PreloadHintType::Part,
                uri: "part18.1.m4s".into(),
            }],
            end_list: false,
            rendition_reports: vec![RenditionReport {
                uri: "../audio/playlist.m3u8".into(),
                last_msn: Some(18),
                last_part: Some(0),
            }],
        }
    }

    #[test]
    fn golden_delta_update() {
        let expected = "\
#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.000,HOLD-BACK=3.000,PART-HOLD-BACK=1.500
#EXT-X-PART-INF:PART-TARGET=0.500
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-DISCONTINUITY-SEQUENCE:2
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-SKIP:SKIPPED-SEGMENTS=6
#EXT-X-MAP:URI=\"init1.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:26.000Z
#EXTINF:1.000,
seg16.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI=\"init2.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:27.000Z
#EXT-X-PART:DURATION=0.500,URI=\"part17.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI=\"part17.1.m4s\"
#EXTINF:1.000,
seg17.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:28.000Z
#EXT-X-PART:DURATION=0.500,URI=\"part18.0.m4s\",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part18.1.m4s\"
#EXT-X-RENDITION-REPORT:URI=\"../audio/playlist.m3u8\",LAST-MSN=18,LAST-PART=0
";
        let playlist = delta_update();
        assert_eq!(playlist.to_string(), expected);
        assert_eq!(playlist.validate(), Ok(()));
        // An independent parser still accepts it (LL tags are unknown to it).
        let parsed = m3u8_rs::parse_media_playlist_res(expected.as_bytes())
            .expect("m3u8-rs parses the delta update");
        assert_eq!(parsed.media_sequence, 10);
        assert_eq!(parsed.segments.len(), 2);
    }

    #[test]
    fn validate_rejects_broken_strings() {
        let mut playlist = delta_update();
        playlist.segments[0].uri = "seg\n#EXT-X-ENDLIST".into();
        assert!(matches!(
            playlist.validate(),
            Err(PlaylistError::InvalidUri(_))
        ));
        let mut playlist = delta_update();
        playlist.rendition_reports[0].uri = "a\"b".into();
        assert!(playlist.validate().is_err());
    }

    #[test]
    fn delta_update_skips_segments_older_than_the_skip_boundary() {
        let start = chrono::DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let segment = |msn: u64, map: bool| MediaSegment {
            discontinuity: false,
            map: map.then(|| Map {
                uri: "init.mp4".into(),
            }),
            program_date_time: Some(start + chrono::Duration::seconds(2 * msn as i64)),
            parts: Vec::new(),
            duration: Duration::from_secs(2),
            uri: format!("seg{msn}.m4s"),
        };
        let mut playlist = MediaPlaylist {
            version: 9,
            target_duration: 2,
            server_control: None,
            part_inf: None,
            media_sequence: 5,
            discontinuity_sequence: 0,
            independent_segments: true,
            playlist_type: None,
            skip: None,
            dateranges: Vec::new(),
            segments: (5..15).map(|msn| segment(msn, msn == 5)).collect(),
            partial: None,
            preload_hints: Vec::new(),
            end_list: false,
            rendition_reports: Vec::new(),
        };
        let full = playlist.clone();
        // 10 segments of 2 s; CAN-SKIP-UNTIL 12 s: the 6 last segments stay.
        playlist.skip_segments(Duration::from_secs(12));
        let text = playlist.to_string();
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:5\n"), "{text}");
        assert!(text.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n"), "{text}");
        assert!(
            !text.contains("seg8.m4s") && text.contains("seg9.m4s"),
            "{text}"
        );
        // The map in force moves to the first listed segment.
        let skip_at = text.find("#EXT-X-SKIP").unwrap();
        let map_at = text.find("#EXT-X-MAP:URI=\"init.mp4\"").unwrap();
        assert!(
            map_at > skip_at && map_at < text.find("seg9.m4s").unwrap(),
            "{text}"
        );
        assert_eq!(playlist.segments.len(), 6);
        // A short playlist is left whole.
        let mut short = full.clone();
        short.skip_segments(Duration::from_secs(60));
        assert_eq!(short, full);
    }
}
