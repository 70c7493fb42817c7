//! A recording's manifest (`manifest.json` in its directory) and the playlists it renders, pure.
//!
//! The manifest is the recording's truth: the writer adds a segment to it only after the
//! segment's file is on disk under its final name, writes it atomically, then renders the
//! playlists from it with the live playlist model ([`crate::hls::playlist`]). A restart after a
//! crash therefore finds every segment the manifest lists complete on disk, and finishes the
//! recording from the manifest alone ([`Manifest::cut_short`]).
//!
//! Playlists (RFC 8216): media playlists are `EXT-X-PLAYLIST-TYPE:EVENT` while the recording
//! grows and `VOD` with `EXT-X-ENDLIST` once it is finished ("If the EXT-X-PLAYLIST-TYPE tag
//! is VOD, the Media Playlist cannot change", §4.3.3.5); every segment carries
//! `EXT-X-PROGRAM-DATE-TIME`, `EXT-X-MAP` opens the playlist and follows every init change and
//! discontinuity, and the session's `EXT-X-DATERANGE`s are the ones the live playlists listed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::hls::packager::{
    CompletedSegment, PLAIN_VERSION, Resource, bits_per_sec, map_if_changed,
};
use crate::hls::playlist::{
    AudioRendition, DateRange, MediaPlaylist, MediaSegment, MultivariantPlaylist, PlaylistType,
    Variant,
};
use crate::hls::stream::{AUDIO_GROUP, RenditionKind, TrackInfo};
use crate::hls::timeline::nanos;

pub use super::segments::SegmentList;

/// File name of the manifest in a recording's directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of the multivariant playlist in a recording's directory.
pub const INDEX_FILE: &str = "index.m3u8";
/// File name of a rendition's media playlist in its directory.
pub const PLAYLIST_FILE: &str = "playlist.m3u8";
/// File name of the segment journal of a growing recording: one JSON line per segment recorded
/// since the manifest was last written ([`JournalLine`]).
pub const JOURNAL_FILE: &str = "segments.jsonl";

/// One line of the segment journal: a segment appended to a rendition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalLine {
    /// The rendition's name.
    pub rendition: String,
    /// Its kind.
    pub kind: Kind,
    /// The segment.
    pub segment: SegmentEntry,
}

impl Manifest {
    /// Applies a journal's text: each whole line's segment is appended to its rendition unless
    /// the manifest already lists it (a journal written before the manifest it was folded into).
    /// A torn last line (the process died mid-write) and anything after it are ignored.
    /// Returns how many segments were added.
    pub fn replay_journal(&mut self, text: &str) -> usize {
        let mut added = 0;
        for line in text.split_inclusive('\n') {
            let Some(line) = line.strip_suffix('\n') else {
                break;
            };
            let Ok(entry) = serde_json::from_str::<JournalLine>(line) else {
                break;
            };
            let record = self.rendition_mut(&entry.rendition, entry.kind);
            if record
                .segments
                .last()
                .is_none_or(|last| entry.segment.msn > last.msn)
            {
                record.segments.push(entry.segment);
                added += 1;
            }
        }
        added
    }
}

/// Where a recording is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingState {
    /// Its stream is live (or waiting for its publisher within the reconnect grace).
    Recording,
    /// Its stream ended and every segment was written.
    Complete,
    /// The server stopped without ending it (a crash, `kill -9`): finished at the next start
    /// at its last complete segment.
    CutShort,
}

impl RecordingState {
    /// The name in the API, the manifest and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingState::Recording => "recording",
            RecordingState::Complete => "complete",
            RecordingState::CutShort => "cut_short",
        }
    }

    /// Parses [`Self::as_str`].
    pub fn parse(name: &str) -> Option<RecordingState> {
        match name {
            "recording" => Some(RecordingState::Recording),
            "complete" => Some(RecordingState::Complete),
            "cut_short" => Some(RecordingState::CutShort),
            _ => None,
        }
    }

    /// Whether nothing will be added any more.
    pub fn is_finished(self) -> bool {
        self != RecordingState::Recording
    }
}

/// Video or audio, as the manifest writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A video rendition (a variant).
    Video,
    /// An audio rendition (the audio group).
    Audio,
}

impl From<RenditionKind> for Kind {
    fn from(kind: RenditionKind) -> Kind {
        match kind {
            RenditionKind::Video => Kind::Video,
            RenditionKind::Audio => Kind::Audio,
        }
    }
}

/// One recorded segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentEntry {
    /// Media Sequence Number, as live (file `seg{msn}.m4s`).
    pub msn: u64,
    /// Init version it needs (file `init.mp4` / `init{n}.mp4`).
    pub init_version: u32,
    /// EXT-X-DISCONTINUITY before it (a reconnect's seam, an init change, or segments lost
    /// before it).
    pub discontinuity: bool,
    /// Starts with an independent frame.
    pub independent: bool,
    /// EXT-X-PROGRAM-DATE-TIME.
    pub program_date_time: DateTime<Utc>,
    /// Duration, ns.
    pub duration_ns: u64,
    /// Size, bytes.
    pub bytes: u64,
}

impl SegmentEntry {
    /// The entry of a segment the packager completed.
    pub fn of(segment: &CompletedSegment) -> SegmentEntry {
        SegmentEntry {
            msn: segment.msn,
            init_version: segment.init_version,
            discontinuity: segment.discontinuity,
            independent: segment.independent,
            program_date_time: segment.program_date_time,
            duration_ns: u64::try_from(segment.duration.as_nanos()).unwrap_or(u64::MAX),
            bytes: segment.object.len() as u64,
        }
    }

    /// Its file name.
    pub fn file(&self) -> String {
        Resource::Segment(self.msn).to_string()
    }

    /// The wall-clock time its media ends.
    pub fn end(&self) -> DateTime<Utc> {
        self.program_date_time + nanos(self.duration_ns)
    }

    /// The wall-clock time halfway through its media.
    fn midpoint(&self) -> DateTime<Utc> {
        self.program_date_time + nanos(self.duration_ns / 2)
    }
}

/// One recorded rendition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenditionRecord {
    /// Its name (a directory of the recording, as in the live URLs).
    pub name: String,
    /// Video or audio.
    pub kind: Kind,
    /// Codec facts for the multivariant playlist.
    pub codecs: Option<String>,
    /// Video width × height.
    pub resolution: Option<(u32, u32)>,
    /// Video frames per second.
    pub frame_rate: Option<f64>,
    /// Audio channels.
    pub channels: Option<u32>,
    /// Init versions written (files `init.mp4`, `init{n}.mp4`).
    pub inits: Vec<u32>,
    /// Segments written, in order.
    pub segments: SegmentList,
    /// A segment was lost since the last one listed: the next one starts a discontinuity.
    #[serde(default)]
    pub gap: bool,
}

impl RenditionRecord {
    /// A rendition without media.
    pub fn new(name: &str, kind: Kind) -> RenditionRecord {
        RenditionRecord {
            name: name.to_string(),
            kind,
            codecs: None,
            resolution: None,
            frame_rate: None,
            channels: None,
            inits: Vec::new(),
            segments: SegmentList::new(),
            gap: false,
        }
    }

    /// Takes the codec facts of `info` (those it has).
    pub fn set_info(&mut self, info: &TrackInfo) {
        if info.codecs.is_some() {
            self.codecs = info.codecs.clone();
            self.resolution = info.resolution;
            self.frame_rate = info.frame_rate;
            self.channels = info.channels;
        }
    }

    /// Recorded duration.
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.segments.iter().map(|s| s.duration_ns).sum())
    }

    /// Peak and average bits/s over the segments; `None` without media.
    fn bandwidth(&self) -> Option<(u64, u64)> {
        let mut peak = None::<u64>;
        let (mut bits, mut nanos) = (0u128, 0u128);
        for segment in self.segments.iter().filter(|s| s.duration_ns > 0) {
            let segment_bits = u128::from(segment.bytes) * 8;
            let rate = bits_per_sec(segment_bits, u128::from(segment.duration_ns));
            peak = Some(peak.map_or(rate, |p| p.max(rate)));
            bits += segment_bits;
            nanos += u128::from(segment.duration_ns);
        }
        Some((peak?, bits_per_sec(bits, nanos)))
    }

    /// The URI of its media playlist, relative to the multivariant playlist.
    fn playlist_uri(&self) -> String {
        format!("{}/{PLAYLIST_FILE}", self.name)
    }
}

/// A recording's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Recording id (its directory name, its `/vod/{id}` URL).
    pub id: String,
    /// The stream's public name.
    pub stream: String,
    /// The HLS session recorded.
    pub session: String,
    /// The show live on the stream during the session, if any.
    pub show: Option<String>,
    /// When the session started.
    pub started_at: DateTime<Utc>,
    /// When it was finished.
    pub ended_at: Option<DateTime<Utc>>,
    /// Recording, complete or cut short.
    pub state: RecordingState,
    /// Segments were lost (the write queue was full, or the disk refused one): the playlists
    /// skip them with a discontinuity.
    pub incomplete: bool,
    /// EXT-X-TARGETDURATION floor, seconds (the live configured target, rounded up).
    pub target_duration: u64,
    /// The renditions, sorted by name.
    pub renditions: Vec<RenditionRecord>,
    /// The session's EXT-X-DATERANGEs as last rendered.
    pub dateranges: Vec<DateRange>,
}

impl Manifest {
    /// A new recording of session `session` of `stream`.
    pub fn new(
        id: &str,
        stream: &str,
        session: &str,
        started_at: DateTime<Utc>,
        target_duration: u64,
    ) -> Manifest {
        Manifest {
            id: id.to_string(),
            stream: stream.to_string(),
            session: session.to_string(),
            show: None,
            started_at,
            ended_at: None,
            state: RecordingState::Recording,
            incomplete: false,
            target_duration: target_duration.max(1),
            renditions: Vec::new(),
            dateranges: Vec::new(),
        }
    }

    /// Rendition `name`, added if new.
    pub fn rendition_mut(&mut self, name: &str, kind: Kind) -> &mut RenditionRecord {
        let index = match self.renditions.iter().position(|r| r.name == name) {
            Some(index) => index,
            None => {
                self.renditions.push(RenditionRecord::new(name, kind));
                self.renditions.sort_by(|a, b| a.name.cmp(&b.name));
                self.renditions
                    .iter()
                    .position(|r| r.name == name)
                    .unwrap_or(0)
            }
        };
        &mut self.renditions[index]
    }

    /// The recorded duration: the longest rendition's.
    pub fn duration(&self) -> Duration {
        self.renditions
            .iter()
            .map(RenditionRecord::duration)
            .max()
            .unwrap_or_default()
    }

    /// Bytes of every segment written (init segments are a few hundred bytes each).
    pub fn bytes(&self) -> u64 {
        self.renditions
            .iter()
            .flat_map(|r| &r.segments)
            .map(|s| s.bytes)
            .sum()
    }

    /// Names of the renditions that have media.
    pub fn rendition_names(&self) -> Vec<String> {
        self.renditions
            .iter()
            .filter(|r| !r.segments.is_empty())
            .map(|r| r.name.clone())
            .collect()
    }

    /// Finishes the recording as `state` at `now` (the end of its last segment if it has one:
    /// the media really ends there).
    pub fn finish(&mut self, state: RecordingState, now: DateTime<Utc>) {
        let media_end = self
            .renditions
            .iter()
            .filter_map(|r| r.segments.last())
            .map(SegmentEntry::end)
            .max();
        self.state = state;
        self.ended_at = Some(match (state, media_end) {
            (RecordingState::CutShort, Some(end)) => end,
            _ => now,
        });
    }

    /// Finishes a recording the server left in `recording` state: only segments whose file is
    /// on disk whole and that follow an init segment on disk stay listed — the first missing or
    /// short one ends its rendition — and the state becomes `cut_short`. `size` answers a file's
    /// length (name relative to the recording: `{rendition}/seg{msn}.m4s`), `None` when absent:
    /// segments are not fsynced one by one, so after a power loss a listed file may be shorter
    /// than recorded.
    pub fn cut_short(&mut self, size: impl Fn(&str) -> Option<u64>, now: DateTime<Utc>) {
        for rendition in &mut self.renditions {
            let name = rendition.name.clone();
            let inits = &rendition.inits;
            let keep = rendition
                .segments
                .iter()
                .take_while(|s| {
                    inits.contains(&s.init_version)
                        && size(&format!("{name}/{}", Resource::Init(s.init_version)))
                            .is_some_and(|len| len > 0)
                        && size(&format!("{name}/{}", s.file())) == Some(s.bytes)
                })
                .count();
            if keep < rendition.segments.len() {
                self.incomplete = true;
            }
            rendition.segments.truncate(keep);
        }
        // Renditions are written independently, so at the crash one may hold a segment more than
        // another: the recording ends where every rendition with media still has it (a segment
        // lying mostly past that end goes), so its listed duration is what a player plays.
        let common_end = self
            .renditions
            .iter()
            .filter_map(|r| r.segments.last())
            .map(SegmentEntry::end)
            .min();
        if let Some(end) = common_end {
            for rendition in &mut self.renditions {
                let before = rendition.segments.len();
                rendition.segments.retain(|s| s.midpoint() < end);
                if rendition.segments.len() < before {
                    self.incomplete = true;
                }
            }
        }
        self.finish(RecordingState::CutShort, now);
    }

    /// The media playlist of rendition `name`: every recorded segment, EVENT while the
    /// recording grows, VOD + EXT-X-ENDLIST once finished.
    pub fn media_playlist(&self, name: &str) -> Option<MediaPlaylist> {
        let rendition = self.renditions.iter().find(|r| r.name == name)?;
        let finished = self.state.is_finished();
        let mut previous_init = None;
        let mut target = self.target_duration;
        let segments: Vec<MediaSegment> = rendition
            .segments
            .iter()
            .map(|s| {
                let rounded = s.duration_ns.saturating_add(500_000_000) / 1_000_000_000;
                target = target.max(rounded);
                MediaSegment {
                    discontinuity: s.discontinuity,
                    map: map_if_changed(&mut previous_init, s.init_version, s.discontinuity),
                    program_date_time: Some(s.program_date_time),
                    parts: Vec::new(),
                    duration: Duration::from_nanos(s.duration_ns),
                    uri: s.file(),
                }
            })
            .collect();
        Some(MediaPlaylist {
            version: PLAIN_VERSION,
            target_duration: target,
            server_control: None,
            part_inf: None,
            media_sequence: rendition.segments.first().map_or(0, |s| s.msn),
            discontinuity_sequence: 0,
            independent_segments: rendition.segments.iter().all(|s| s.independent),
            playlist_type: Some(if finished {
                PlaylistType::Vod
            } else {
                PlaylistType::Event
            }),
            skip: None,
            dateranges: self.dateranges.clone(),
            segments,
            partial: None,
            preload_hints: Vec::new(),
            end_list: finished,
            rendition_reports: Vec::new(),
        })
    }

    /// The multivariant playlist: every rendition with media and its codec; `None` before
    /// the first segment.
    pub fn multivariant(&self) -> Option<MultivariantPlaylist> {
        let ready = |r: &&RenditionRecord| r.codecs.is_some() && !r.segments.is_empty();
        let mut audio = Vec::new();
        let mut audio_bandwidth = None;
        for r in self
            .renditions
            .iter()
            .filter(|r| r.kind == Kind::Audio)
            .filter(ready)
        {
            let (Some(bandwidth), Some(codecs)) = (r.bandwidth(), r.codecs.clone()) else {
                continue;
            };
            audio_bandwidth.get_or_insert((bandwidth, codecs));
            audio.push(AudioRendition {
                group_id: AUDIO_GROUP.to_string(),
                name: r.name.clone(),
                language: None,
                default: audio.is_empty(),
                autoselect: true,
                channels: r.channels.map(|c| c.to_string()),
                uri: Some(r.playlist_uri()),
            });
        }
        let mut variants = Vec::new();
        for r in self
            .renditions
            .iter()
            .filter(|r| r.kind == Kind::Video)
            .filter(ready)
        {
            let (Some((mut peak, mut average)), Some(mut codecs)) =
                (r.bandwidth(), r.codecs.clone())
            else {
                continue;
            };
            if let Some(((audio_peak, audio_average), audio_codecs)) = &audio_bandwidth {
                peak += audio_peak;
                average += audio_average;
                codecs = format!("{codecs},{audio_codecs}");
            }
            variants.push(Variant {
                bandwidth: peak,
                average_bandwidth: Some(average),
                codecs,
                resolution: r.resolution,
                frame_rate: r.frame_rate,
                audio: (!audio.is_empty()).then(|| AUDIO_GROUP.to_string()),
                uri: r.playlist_uri(),
            });
        }
        if variants.is_empty() {
            // Audio only: each audio rendition is a variant of its own.
            for r in self.renditions.iter().filter(ready) {
                let (Some((peak, average)), Some(codecs)) = (r.bandwidth(), r.codecs.clone())
                else {
                    continue;
                };
                variants.push(Variant {
                    bandwidth: peak,
                    average_bandwidth: Some(average),
                    codecs,
                    resolution: None,
                    frame_rate: None,
                    audio: None,
                    uri: r.playlist_uri(),
                });
            }
            audio.clear();
        }
        if variants.is_empty() {
            return None;
        }
        variants.sort_by_key(|v| std::cmp::Reverse(v.bandwidth));
        let independent_segments = self
            .renditions
            .iter()
            .all(|r| r.segments.iter().all(|s| s.independent));
        Some(MultivariantPlaylist {
            independent_segments,
            audio,
            variants,
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use chrono::TimeZone;

    use super::*;
    use crate::hls::packager::Object;
    use crate::hls::playlist::ClientValue;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 20, 0, 0)
            .single()
            .expect("valid")
    }

    fn segment(msn: u64, discontinuity: bool) -> SegmentEntry {
        SegmentEntry::of(&CompletedSegment {
            msn,
            init_version: 0,
            discontinuity,
            independent: true,
            program_date_time: t0() + chrono::Duration::seconds(2 * msn as i64),
            duration: Duration::from_secs(2),
            object: Object::from(Bytes::from(vec![0u8; 1000])),
        })
    }

    fn manifest() -> Manifest {
        let mut manifest = Manifest::new("demo-1", "demo", "1", t0(), 2);
        let video = manifest.rendition_mut("source", Kind::Video);
        video.set_info(&TrackInfo {
            codecs: Some("avc1.64001f".into()),
            resolution: Some((1280, 720)),
            frame_rate: Some(30.0),
            channels: None,
        });
        video.inits.push(0);
        video.segments = vec![segment(0, false), segment(1, false), segment(2, true)].into();
        let audio = manifest.rendition_mut("audio", Kind::Audio);
        audio.set_info(&TrackInfo {
            codecs: Some("mp4a.40.2".into()),
            channels: Some(2),
            ..TrackInfo::default()
        });
        audio.inits.push(0);
        audio.segments = vec![segment(0, false), segment(1, false)].into();
        manifest.dateranges = vec![DateRange {
            id: "cue-1".into(),
            class: Some("com.cuecast.product".into()),
            start_date: t0() + chrono::Duration::seconds(1),
            end_date: None,
            duration: None,
            planned_duration: None,
            end_on_next: false,
            client_attributes: vec![("X-PRODUCT".into(), ClientValue::Quoted("sku-1".into()))],
        }];
        manifest
    }

    #[test]
    fn a_growing_recording_is_an_event_playlist_and_a_finished_one_vod_with_endlist() {
        let mut manifest = manifest();
        let growing = manifest
            .media_playlist("source")
            .expect("rendition")
            .to_string();
        assert_eq!(
            growing,
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:EVENT\n\
             #EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-DATERANGE:ID=\"cue-1\",CLASS=\"com.cuecast.product\",\
             START-DATE=\"2026-03-01T20:00:01.000Z\",X-PRODUCT=\"sku-1\"\n\
             #EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-03-01T20:00:00.000Z\n\
             #EXTINF:2.000,\nseg0.m4s\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-03-01T20:00:02.000Z\n#EXTINF:2.000,\nseg1.m4s\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init.mp4\"\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-03-01T20:00:04.000Z\n#EXTINF:2.000,\nseg2.m4s\n"
        );
        manifest.finish(
            RecordingState::Complete,
            t0() + chrono::Duration::seconds(7),
        );
        let done = manifest
            .media_playlist("source")
            .expect("rendition")
            .to_string();
        assert!(done.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"), "{done}");
        assert!(done.ends_with("seg2.m4s\n#EXT-X-ENDLIST\n"), "{done}");
        let parsed = m3u8_rs::parse_media_playlist_res(done.as_bytes()).expect("parses");
        assert!(parsed.end_list);
        assert_eq!(parsed.segments.len(), 3);
        assert_eq!(manifest.duration(), Duration::from_secs(6));
        assert_eq!(manifest.bytes(), 5000);
        assert!(manifest.media_playlist("nothing").is_none());
    }

    #[test]
    fn the_multivariant_playlist_lists_renditions_with_media_relative_to_the_recording() {
        let mut manifest = manifest();
        let playlist = manifest.multivariant().expect("ready");
        assert_eq!(playlist.variants.len(), 1);
        let variant = &playlist.variants[0];
        assert_eq!(variant.uri, "source/playlist.m3u8");
        assert_eq!(variant.codecs, "avc1.64001f,mp4a.40.2");
        // 1000 bytes per 2 s, video + audio.
        assert_eq!(variant.bandwidth, 8000);
        assert_eq!(
            playlist.audio[0].uri.as_deref(),
            Some("audio/playlist.m3u8")
        );
        manifest
            .rendition_mut("source", Kind::Video)
            .segments
            .clear();
        let audio_only = manifest.multivariant().expect("audio");
        assert_eq!(audio_only.variants[0].uri, "audio/playlist.m3u8");
        assert!(audio_only.audio.is_empty());
        manifest.renditions.clear();
        assert!(manifest.multivariant().is_none());
    }

    #[test]
    fn cut_short_keeps_segments_up_to_the_first_missing_file_and_ends_at_the_media() {
        let mut manifest = manifest();
        let on_disk = [
            ("source/init.mp4", 700),
            ("source/seg0.m4s", 1000),
            ("source/seg2.m4s", 1000),
            ("audio/seg0.m4s", 1000),
        ];
        let size = |name: &str| {
            on_disk
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, len)| *len)
        };
        manifest.cut_short(size, t0() + chrono::Duration::hours(1));
        assert_eq!(manifest.state, RecordingState::CutShort);
        assert!(manifest.incomplete);
        let source = &manifest.renditions[1];
        assert_eq!(source.segments.len(), 1, "seg1 is missing: seg2 goes too");
        assert!(
            manifest.renditions[0].segments.is_empty(),
            "audio has no init"
        );
        assert_eq!(manifest.ended_at, Some(t0() + chrono::Duration::seconds(2)));
        let text = manifest
            .media_playlist("source")
            .expect("listed")
            .to_string();
        assert!(text.ends_with("seg0.m4s\n#EXT-X-ENDLIST\n"), "{text}");
        // The manifest survives its JSON.
        let json = serde_json::to_string(&manifest).expect("serializes");
        let back: Manifest = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, manifest);
    }

    #[test]
    fn cut_short_ends_at_a_segment_shorter_on_disk_than_recorded() {
        let mut cut = manifest();
        // seg1 lost its tail with the page cache (power loss): it and what follows go.
        let size = |name: &str| match name {
            "source/init.mp4" => Some(700),
            "source/seg0.m4s" | "source/seg2.m4s" => Some(1000),
            "source/seg1.m4s" => Some(10),
            _ => None,
        };
        cut.cut_short(size, t0() + chrono::Duration::hours(1));
        assert_eq!(cut.renditions[1].segments.len(), 1);
        assert!(cut.incomplete);
        let mut whole = manifest();
        whole.cut_short(|name| size(name).map(|_| 1000), t0());
        assert_eq!(whole.renditions[1].segments.len(), 3);
    }

    #[test]
    fn cut_short_ends_every_rendition_where_all_of_them_have_media() {
        // Video holds seg0..seg2 (to 6 s), audio seg0..seg1 (to 4 s), every file whole: the
        // recording ends at 4 s, so its duration is what a player of both plays.
        let mut manifest = manifest();
        let size = |name: &str| {
            Some(if name.ends_with("init.mp4") {
                700
            } else {
                1000
            })
        };
        manifest.cut_short(size, t0() + chrono::Duration::hours(1));
        let lengths: Vec<usize> = manifest
            .renditions
            .iter()
            .map(|r| r.segments.len())
            .collect();
        assert_eq!(lengths, vec![2, 2]);
        assert!(manifest.incomplete);
        assert_eq!(manifest.duration(), Duration::from_secs(4));
        assert_eq!(manifest.ended_at, Some(t0() + chrono::Duration::seconds(4)));
    }

    #[test]
    fn states_round_trip_their_names() {
        for state in [
            RecordingState::Recording,
            RecordingState::Complete,
            RecordingState::CutShort,
        ] {
            assert_eq!(RecordingState::parse(state.as_str()), Some(state));
        }
        assert_eq!(RecordingState::parse("done"), None);
        assert!(!RecordingState::Recording.is_finished());
    }

    #[test]
    fn a_journal_appends_what_the_manifest_lacks_and_stops_at_a_torn_line() {
        let mut manifest = manifest();
        let line = |rendition: &str, kind, msn| {
            let segment = segment(msn, false);
            let entry = JournalLine {
                rendition: rendition.into(),
                kind,
                segment,
            };
            serde_json::to_string(&entry).expect("json") + "\n"
        };
        // seg2 of source is already in the manifest; seg3 is new; audio gets seg2; the last
        // line was cut by the crash.
        let journal = line("source", Kind::Video, 2)
            + &line("source", Kind::Video, 3)
            + &line("audio", Kind::Audio, 2)
            + &line("source", Kind::Video, 4)[..20];
        assert_eq!(manifest.replay_journal(&journal), 2);
        let msns = |name: &str| -> Vec<u64> {
            let rendition = manifest.renditions.iter().find(|r| r.name == name);
            rendition
                .expect("rendition")
                .segments
                .iter()
                .map(|s| s.msn)
                .collect()
        };
        assert_eq!(msns("source"), [0, 1, 2, 3]);
        assert_eq!(msns("audio"), [0, 1, 2]);
        assert_eq!(manifest.replay_journal(""), 0);
        assert_eq!(manifest.replay_journal("garbage\n"), 0);
    }
}
