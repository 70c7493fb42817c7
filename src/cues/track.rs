//! The cues of one session (a [`CueTrack`], the session's timed metadata in its `HlsStream`),
//! how each rendition carries them in-band ([`Carriage`]: emsg before the `moof` of the chunk
//! that holds the cue's start) and how playlists list them ([`render`]: EXT-X-DATERANGE, with
//! the rfc8216bis rules for Playlist Delta Updates). Pure: time comes in as media time (ns) of
//! the latest ingested frame; nothing here reads a clock. HLS reaches all of it through its
//! own interface ([`crate::hls::timed`]), implemented here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::emsg::{Emsg, ID3_SCHEME, Id3Frame, UNKNOWN_DURATION, id3_tag};
use super::model::{Cue, CueKind};
use super::mp4::{TrackTiming, earliest_presentation_time, moof_offset, track_timing};
use crate::hls::packager::CmafChunk;
use crate::hls::playlist::{ClientValue, DateRange};
use crate::hls::stream::HlsStream;
pub use crate::hls::timed::{Delta, Rendered, View};
use crate::hls::timed::{InBandCarrier, TimedMetadata};

/// TXXX description of the cue JSON in the ID3 tag.
pub const ID3_DESCRIPTION: &str = "com.cuecast.cue";

/// The cues of one session, in the order they were added.
#[derive(Debug, Default)]
pub struct CueTrack {
    /// Cues, insertion order (renditions pick up new ones by index).
    cues: Mutex<Vec<Arc<Cue>>>,
}

/// Adds `cue` to `stream`'s session: its playlists and every rendition's in-band carriage.
/// False if the stream carries no cues (made without the cue service).
pub fn add_to_stream(stream: &HlsStream, cue: Cue) -> bool {
    let Some(track) = stream.timed_metadata::<CueTrack>() else {
        tracing::warn!(stream = %stream.name, cue = %cue.id, "stream carries no cues");
        return false;
    };
    track.add(cue);
    stream.timed_metadata_changed();
    true
}

/// Cuts cue `id` of `stream`'s session short at media time `at_ns`; the updated cue, or `None`
/// if the session has no such cue.
pub fn end_in_stream(stream: &HlsStream, id: &str, at_ns: u64) -> Option<Cue> {
    let cue = stream.timed_metadata::<CueTrack>()?.end(id, at_ns)?;
    stream.timed_metadata_changed();
    Some((*cue).clone())
}

impl TimedMetadata for CueTrack {
    fn render(&self, view: &View) -> Rendered {
        let cues = self.cues();
        if cues.is_empty() {
            return Rendered::default();
        }
        render(&cues, view)
    }

    fn carrier(self: Arc<Self>) -> Box<dyn InBandCarrier> {
        Box::new(RenditionCarriage {
            track: self,
            carriage: Carriage::default(),
            carried: Vec::new(),
        })
    }
}

/// One rendition's [`Carriage`] of a track, as HLS drives it.
struct RenditionCarriage {
    /// The session's cues.
    track: Arc<CueTrack>,
    /// What this rendition carried so far.
    carriage: Carriage,
    /// Carried by the last chunk (requeued if it is not published).
    carried: Vec<Arc<Cue>>,
}

impl InBandCarrier for RenditionCarriage {
    fn handle_init(&mut self, init: &[u8]) {
        self.carriage.handle_init(init);
    }

    fn handle_chunk(&mut self, chunk: CmafChunk) -> CmafChunk {
        let (chunk, carried) = self.carriage.handle_chunk(&self.track, chunk);
        self.carried = carried;
        chunk
    }

    fn requeue_last(&mut self) {
        self.carriage.requeue(std::mem::take(&mut self.carried));
    }
}

impl CueTrack {
    /// Adds a cue.
    pub fn add(&self, cue: Cue) -> Arc<Cue> {
        let cue = Arc::new(cue);
        self.lock().push(Arc::clone(&cue));
        cue
    }

    /// Cuts cue `id` short at `at_ns` (not before its start); the updated cue, or `None` if
    /// it is not in this track.
    pub fn end(&self, id: &str, at_ns: u64) -> Option<Arc<Cue>> {
        let mut cues = self.lock();
        let slot = cues.iter_mut().find(|c| c.id == id)?;
        let mut cue = (**slot).clone();
        let at = at_ns.max(cue.start_ns);
        cue.ended_ns = Some(cue.ended_ns.map_or(at, |e| e.min(at)));
        *slot = Arc::new(cue);
        Some(Arc::clone(slot))
    }

    /// A snapshot of every cue.
    pub fn cues(&self) -> Vec<Arc<Cue>> {
        self.lock().clone()
    }

    /// Cues added after the first `seen`.
    fn added_since(&self, seen: usize) -> Vec<Arc<Cue>> {
        self.lock()
            .get(seen..)
            .map(<[_]>::to_vec)
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Cue>>> {
        self.cues.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The in-band carriage state of one rendition: its track timing and the cues it has not
/// carried yet.
#[derive(Debug, Default)]
pub struct Carriage {
    /// From the current init segment.
    timing: Option<TrackTiming>,
    /// How many of the track's cues were picked up.
    seen: usize,
    /// Picked up, not yet carried (start after every chunk so far).
    pending: Vec<Arc<Cue>>,
}

impl Carriage {
    /// A new init segment: the timescale may change.
    pub fn handle_init(&mut self, init: &[u8]) {
        if let Some(timing) = track_timing(init) {
            self.timing = Some(timing);
        }
    }

    /// Prepends one emsg per cue that starts before the chunk's end (and was not carried yet)
    /// to the chunk's `moof`. Returns the chunk and the cues it now carries; pass those to
    /// [`Self::requeue`] if the chunk is not published.
    pub fn handle_chunk(
        &mut self,
        track: &CueTrack,
        chunk: CmafChunk,
    ) -> (CmafChunk, Vec<Arc<Cue>>) {
        let added = track.added_since(self.seen);
        self.seen += added.len();
        self.pending.extend(added);
        let end = chunk.pts.saturating_add(chunk.duration);
        let Some(timing) = self.timing else {
            return (chunk, Vec::new());
        };
        if !self.pending.iter().any(|c| c.start_ns < end) {
            return (chunk, Vec::new());
        }
        let (Some(at), Some(earliest)) = (
            moof_offset(&chunk.data),
            earliest_presentation_time(&chunk.data, timing),
        ) else {
            return (chunk, Vec::new());
        };
        let (due, later): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|c| c.start_ns < end);
        self.pending = later;
        let mut boxes = Vec::new();
        let mut carried = Vec::new();
        for cue in due {
            match emsg_for(
                &cue,
                timing.timescale,
                ticks_at(cue.start_ns, &chunk, earliest, timing.timescale),
            ) {
                Some(bytes) => {
                    boxes.extend_from_slice(&bytes);
                    carried.push(cue);
                }
                None => tracing::warn!(cue = %cue.id, "cue cannot be written as emsg"),
            }
        }
        let mut data = BytesMut::with_capacity(chunk.data.len() + boxes.len());
        data.extend_from_slice(&chunk.data[..at]);
        data.extend_from_slice(&boxes);
        data.extend_from_slice(&chunk.data[at..]);
        (
            CmafChunk {
                data: data.freeze(),
                ..chunk
            },
            carried,
        )
    }

    /// The chunk that carried `cues` was not published: carry them in the next one.
    pub fn requeue(&mut self, cues: Vec<Arc<Cue>>) {
        self.pending.extend(cues);
    }
}

/// Media time `ns` in track ticks, through the chunk's (pts ns ↔ earliest ticks) pair.
fn ticks_at(ns: u64, chunk: &CmafChunk, earliest: u64, timescale: u32) -> u64 {
    let delta = i128::from(ns) - i128::from(chunk.pts);
    let delta_ticks = (delta * i128::from(timescale)).div_euclid(1_000_000_000)
        + i128::from(
            ((delta * i128::from(timescale)).rem_euclid(1_000_000_000) >= 500_000_000) as u8,
        );
    u64::try_from((i128::from(earliest) + delta_ticks).max(0)).unwrap_or(u64::MAX)
}

/// The emsg box of `cue` at `presentation_time` ticks.
pub fn emsg_for(cue: &Cue, timescale: u32, presentation_time: u64) -> Option<Bytes> {
    let duration = match (cue.spec.kind, cue.planned_end_ns()) {
        (CueKind::Clear, _) => 0,
        (_, Some(end)) => {
            let ns = u128::from(end - cue.start_ns);
            u32::try_from(ns * u128::from(timescale) / 1_000_000_000)
                .unwrap_or(UNKNOWN_DURATION - 1)
                .min(UNKNOWN_DURATION - 1)
        }
        (_, None) => UNKNOWN_DURATION,
    };
    let tag = id3_tag(&[Id3Frame::Txxx {
        description: ID3_DESCRIPTION.into(),
        value: cue.payload().to_string(),
    }])?;
    let emsg = Emsg {
        timescale,
        presentation_time,
        event_duration: duration,
        id: (cue.seq as u64 & 0xFFFF_FFFF) as u32,
        scheme_id_uri: ID3_SCHEME.into(),
        value: String::new(),
        message_data: tag,
    };
    emsg.to_bytes().map(Bytes::from)
}

/// The EXT-X-DATERANGEs of a playlist. Rules (rfc8216bis §4.4.5.1, §6.2.5.1):
/// - a cue is listed while any segment it covers is listed: its end (END-ON-NEXT: the next
///   cue of its class) is after the window start, or it starts at or after it;
/// - attributes only grow: a running cue with a duration carries PLANNED-DURATION; once it
///   is finished (its end at or before "now", or the stream ended) it carries DURATION, plus
///   END-DATE when it was cut short — so two tags with one ID never disagree;
/// - `_HLS_skip=v2`: a listed cue is skipped when it last changed (added, or finished)
///   before the first non-skipped segment — a client reloading within CAN-SKIP-UNTIL has it;
///   every cue that left the window within CAN-SKIP-UNTIL is in RECENTLY-REMOVED-DATERANGES.
pub fn render(cues: &[Arc<Cue>], view: &View) -> Rendered {
    let mut sorted: Vec<&Arc<Cue>> = cues.iter().collect();
    sorted.sort_by_key(|c| (c.start_ns, c.seq));
    let mut out = Rendered::default();
    for (index, cue) in sorted.iter().enumerate() {
        let next_same_class = || {
            sorted[index + 1..]
                .iter()
                .find(|n| n.spec.kind == cue.spec.kind && n.start_ns > cue.start_ns)
                .map(|n| n.start_ns)
        };
        let end_ns = if cue.spec.end_on_next {
            next_same_class()
        } else {
            cue.end_ns()
        };
        let start = cue.start_date;
        let listed = view
            .window_start
            .is_none_or(|ws| start >= ws || end_ns.is_none_or(|end| cue.date_at(end) > ws));
        if !listed {
            if let (Some(delta), Some(ws), Some(end)) = (view.delta, view.window_start, end_ns)
                && delta.skip_dateranges
            {
                let since = chrono::Duration::from_std(delta.skip_until).unwrap_or_default();
                if cue.date_at(end) >= ws - since {
                    out.recently_removed.push(cue.id.clone());
                }
            }
            continue;
        }
        let finished = !cue.spec.end_on_next
            && cue
                .end_ns()
                .is_some_and(|end| view.ended || end <= view.now_ns);
        let changed_ns = if finished {
            cue.end_ns().unwrap_or(cue.start_ns)
        } else {
            cue.start_ns
        }
        .max(cue.published_ns);
        if let Some(Delta {
            boundary: Some(boundary),
            skip_dateranges: true,
            ..
        }) = view.delta
            && cue.date_at(changed_ns) < boundary
        {
            continue;
        }
        out.dateranges.push(daterange(cue, finished));
    }
    out
}

/// Text for a quoted-string attribute: `"` becomes `'` (quoted-strings cannot hold `"`;
/// the exact text is in X-DATA); control characters were refused at validation.
fn quoted(text: &str) -> ClientValue {
    ClientValue::Quoted(text.replace('"', "'"))
}

/// The EXT-X-DATERANGE of one cue.
pub fn daterange(cue: &Cue, finished: bool) -> DateRange {
    let mut range = DateRange {
        id: cue.id.clone(),
        class: Some(cue.spec.kind.class()),
        start_date: cue.start_date,
        end_date: None,
        duration: None,
        planned_duration: None,
        end_on_next: cue.spec.end_on_next,
        client_attributes: Vec::new(),
    };
    if cue.spec.kind == CueKind::Clear {
        range.duration = Some(Duration::ZERO);
    } else if !cue.spec.end_on_next {
        match (finished, cue.end_ns()) {
            (true, Some(end)) => {
                range.duration = Some(Duration::from_nanos(end - cue.start_ns));
                if cue.ended_ns.is_some() {
                    range.end_date = Some(cue.date_at(end));
                }
            }
            _ => range.planned_duration = cue.spec.duration,
        }
    }
    let attrs = &mut range.client_attributes;
    if let Some(p) = &cue.spec.product {
        attrs.push(("X-PRODUCT-ID".into(), quoted(&p.id)));
        let optional = [
            ("X-TITLE", &p.title),
            ("X-PRICE", &p.price),
            ("X-CURRENCY", &p.currency),
            ("X-IMAGE-URL", &p.image_url),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                attrs.push((name.into(), quoted(value)));
            }
        }
        if let Some(cta) = &p.cta {
            attrs.push(("X-CTA-LABEL".into(), quoted(&cta.label)));
            attrs.push(("X-CTA-URL".into(), quoted(&cta.url)));
        }
    }
    attrs.push((
        "X-DATA".into(),
        ClientValue::Hex(cue.payload().to_string().into_bytes()),
    ));
    range
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};

    use super::super::emsg::parse_id3;
    use super::super::model::{CueSpec, Product, Source};
    use super::super::mp4::tests::{chunk as make_moof, init};
    use super::*;

    const S: u64 = 1_000_000_000;

    fn base_date() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0)
            .single()
            .expect("valid")
    }

    fn cue(seq: i64, kind: CueKind, start_s: u64, duration_s: Option<u64>) -> Cue {
        Cue {
            seq,
            id: format!("cue{seq}"),
            stream: "demo".into(),
            session: "s".into(),
            spec: CueSpec {
                kind,
                duration: duration_s.map(Duration::from_secs),
                end_on_next: false,
                product: (kind != CueKind::Clear).then(|| Product {
                    id: "sku-1".into(),
                    title: Some("Rose \"Noir\"".into()),
                    price: Some("49.00".into()),
                    currency: Some("USD".into()),
                    image_url: None,
                    cta: None,
                }),
                data: serde_json::json!({}),
            },
            start_ns: start_s * S,
            start_date: base_date() + chrono::Duration::seconds(start_s as i64),
            ended_ns: None,
            source: Source::Api,
            published_ns: start_s * S,
        }
    }

    fn date(s: i64) -> DateTime<Utc> {
        base_date() + chrono::Duration::seconds(s)
    }

    fn ids(rendered: &Rendered) -> Vec<&str> {
        rendered.dateranges.iter().map(|d| d.id.as_str()).collect()
    }

    fn view(window_start_s: i64, now_s: u64) -> View {
        View {
            window_start: Some(date(window_start_s)),
            now_ns: now_s * S,
            ended: false,
            delta: None,
        }
    }

    #[test]
    fn running_then_finished_then_removed() {
        let cues = vec![Arc::new(cue(1, CueKind::Product, 10, Some(15)))];
        let running = render(&cues, &view(0, 12));
        assert_eq!(
            running.dateranges[0].to_string(),
            format!(
                "#EXT-X-DATERANGE:ID=\"cue1\",CLASS=\"com.cuecast.product\",START-DATE=\"2026-01-01T12:00:10.000Z\",\
                 PLANNED-DURATION=15.000,X-PRODUCT-ID=\"sku-1\",X-TITLE=\"Rose 'Noir'\",X-PRICE=\"49.00\",\
                 X-CURRENCY=\"USD\",X-DATA=0x{}\n",
                cues[0]
                    .payload()
                    .to_string()
                    .bytes()
                    .map(|b| format!("{b:02X}"))
                    .collect::<String>()
            )
        );
        let finished = render(&cues, &view(0, 25));
        assert_eq!(
            finished.dateranges[0].duration,
            Some(Duration::from_secs(15))
        );
        assert_eq!(finished.dateranges[0].planned_duration, None);
        // Still covering a listed segment: kept.
        assert_eq!(ids(&render(&cues, &view(24, 40))), vec!["cue1"]);
        // Ended before the window: gone.
        assert!(render(&cues, &view(26, 40)).dateranges.is_empty());
    }

    #[test]
    fn cut_short_gets_end_date_and_final_duration() {
        let track = CueTrack::default();
        track.add(cue(1, CueKind::Offer, 10, Some(60)));
        let ended = track.end("cue1", 13 * S).expect("in track");
        assert_eq!(ended.end_ns(), Some(13 * S));
        let rendered = render(&track.cues(), &view(0, 14));
        let range = &rendered.dateranges[0];
        assert_eq!(range.duration, Some(Duration::from_secs(3)));
        assert_eq!(range.end_date, Some(date(13)));
        assert!(track.end("nope", 0).is_none());
    }

    #[test]
    fn end_on_next_ends_at_the_next_cue_of_its_class() {
        let mut first = cue(1, CueKind::Pin, 10, None);
        first.spec.end_on_next = true;
        let mut second = cue(2, CueKind::Pin, 20, None);
        second.spec.end_on_next = true;
        let other = cue(3, CueKind::Product, 30, Some(1));
        let cues: Vec<_> = [first, second, other].into_iter().map(Arc::new).collect();
        let rendered = render(&cues, &view(0, 40));
        assert!(
            rendered.dateranges[0]
                .to_string()
                .contains("END-ON-NEXT=YES")
        );
        // First pin ends at 20: gone once the window starts after it; the second is open.
        assert_eq!(ids(&render(&cues, &view(21, 40))), vec!["cue2", "cue3"]);
    }

    #[test]
    fn v2_delta_skips_unchanged_old_dateranges_and_reports_removed_ones() {
        let cues: Vec<_> = [
            cue(1, CueKind::Product, 2, Some(1)), // ended at 3: left the window at 5
            cue(2, CueKind::Product, 6, Some(2)), // finished at 8, before the boundary
            cue(3, CueKind::Product, 8, Some(100)), // running, started before the boundary
            cue(4, CueKind::Product, 9, Some(3)), // finished at 12, after the boundary
            cue(5, CueKind::Product, 30, Some(1)), // new
        ]
        .into_iter()
        .map(Arc::new)
        .collect();
        let delta = |skip_dateranges| View {
            delta: Some(Delta {
                boundary: Some(date(10)),
                skip_until: Duration::from_secs(12),
                skip_dateranges,
            }),
            ..view(5, 31)
        };
        let v2 = render(&cues, &delta(true));
        assert_eq!(ids(&v2), vec!["cue4", "cue5"]);
        assert_eq!(v2.recently_removed, vec!["cue1"]);
        let yes = render(&cues, &delta(false));
        assert_eq!(ids(&yes), vec!["cue2", "cue3", "cue4", "cue5"]);
        assert!(yes.recently_removed.is_empty());
        // Removed longer ago than CAN-SKIP-UNTIL: no longer reported.
        let late = View {
            window_start: Some(date(40)),
            ..delta(true)
        };
        assert!(
            !render(&cues, &late)
                .recently_removed
                .contains(&"cue1".to_string())
        );
        // A cue added late with a past start is sent even if it starts before the boundary.
        let mut late_cue = cue(6, CueKind::Product, 7, None);
        late_cue.published_ns = 31 * S;
        let with_late: Vec<_> = cues.iter().cloned().chain([Arc::new(late_cue)]).collect();
        assert!(ids(&render(&with_late, &delta(true))).contains(&"cue6"));
    }

    #[test]
    fn clear_is_an_instant() {
        let cues = vec![Arc::new(cue(1, CueKind::Clear, 10, None))];
        let rendered = render(&cues, &view(0, 5));
        assert_eq!(rendered.dateranges[0].duration, Some(Duration::ZERO));
        assert!(render(&cues, &view(10, 12)).dateranges.len() == 1);
        assert!(render(&cues, &view(11, 12)).dateranges.is_empty());
    }

    /// Through a real `HlsStream` rendition: emsg in the part and the same bytes in the
    /// segment; DATERANGEs in the LL playlist; v2 delta updates skip and report per the rules.
    #[test]
    fn stream_rendition_carries_cues_in_parts_segments_and_playlists() {
        use crate::hls::packager::PackagerConfig;
        use crate::hls::stream::{PlaylistForm, RenditionKind, TrackInfo};
        use crate::hls::timed::FrameTime;

        let stream = HlsStream::new(
            "demo",
            PackagerConfig {
                segment_target: Duration::from_secs(2),
                part_target: Duration::from_millis(500),
                window: Duration::from_secs(14),
            },
        )
        .with_timed_metadata(Arc::new(CueTrack::default()));
        stream.anchor(0);
        let rendition = stream.add_rendition("source", RenditionKind::Video);
        rendition.push_init(Bytes::from(init(90_000, 3000)), TrackInfo::default());
        let at = |start_ms: u64, seq: i64, duration_ms: u64| {
            let mut c = cue(seq, CueKind::Product, 0, None);
            c.start_ns = start_ms * 1_000_000;
            c.start_date = stream.program_date_time(c.start_ns);
            c.spec.duration = Some(Duration::from_millis(duration_ms));
            c
        };
        assert!(add_to_stream(&stream, at(600, 1, 1000)));
        assert!(add_to_stream(&stream, at(10_000, 2, 1000)));
        assert!(add_to_stream(&stream, at(17_000, 3, 100_000)));
        for index in 0..60u64 {
            let pts = index * 500_000_000;
            let frames: Vec<(u32, i32)> = vec![(3000, 0); 15];
            stream.observe(&FrameTime {
                media_ns: pts + 500_000_000,
                video: true,
            });
            rendition.push_chunk(CmafChunk {
                data: Bytes::from(make_moof(index * 45_000, &frames)),
                pts,
                duration: 500_000_000,
                fragment_start: index % 4 == 0,
                independent: index % 4 == 0,
                program_date_time: stream.program_date_time(pts),
            });
            if index == 1 {
                // Cue 1 (0.6 s) rides in the chunk 0.5–1.0 s: part 1 of segment 0.
                let part = rendition.packager().part(0, 1).expect("part 0.1");
                let emsg_len = u32::from_be_bytes(part[0..4].try_into().expect("4 bytes")) as usize;
                let emsg = Emsg::parse(&part[..emsg_len]).expect("emsg first");
                assert_eq!(emsg.presentation_time, 54_000);
                assert_eq!(&part[emsg_len + 4..emsg_len + 8], b"moof");
                let text = rendition.playlist(PlaylistForm::LowLatency, Vec::new);
                let text = String::from_utf8_lossy(&text);
                assert!(text.contains("#EXT-X-DATERANGE:ID=\"cue1\""), "{text}");
                assert!(text.contains("CAN-SKIP-DATERANGES=YES"), "{text}");
            }
            if index == 4 {
                let packager = rendition.packager();
                let segment = packager.segment(0).expect("segment 0");
                let parts: Vec<u8> = (0..4)
                    .flat_map(|p| packager.part(0, p).expect("part").to_vec())
                    .collect();
                assert_eq!(
                    segment.to_bytes().as_ref(),
                    parts.as_slice(),
                    "segment = its parts"
                );
            }
        }
        let text = |form| String::from_utf8_lossy(&rendition.playlist(form, Vec::new)).to_string();
        let full = text(PlaylistForm::LowLatency);
        let v2 = text(PlaylistForm::DeltaV2);
        let yes = text(PlaylistForm::Delta);
        // Cue 1 ended long before the window; cue 2 left within CAN-SKIP-UNTIL; cue 3 runs.
        assert!(
            !full.contains("ID=\"cue1\"") && !full.contains("ID=\"cue2\""),
            "{full}"
        );
        assert!(full.contains("ID=\"cue3\""), "{full}");
        assert!(v2.contains("RECENTLY-REMOVED-DATERANGES=\"cue2\""), "{v2}");
        assert!(
            !v2.contains("#EXT-X-DATERANGE"),
            "cue3 is old and unchanged: {v2}"
        );
        assert!(
            yes.contains("ID=\"cue3\"") && !yes.contains("RECENTLY-REMOVED"),
            "{yes}"
        );
        // Ending cue 3 changes it: v2 sends it again, with END-DATE.
        end_in_stream(&stream, "cue3", 29_000_000_000).expect("cue 3");
        let v2 = text(PlaylistForm::DeltaV2);
        assert!(
            v2.contains("ID=\"cue3\"") && v2.contains("END-DATE="),
            "{v2}"
        );
    }

    #[test]
    fn carriage_inserts_emsg_before_moof_with_exact_time() {
        let track = CueTrack::default();
        let mut carriage = Carriage::default();
        carriage.handle_init(&init(90_000, 3000));
        // Chunk at media 10 s (ticks 900000), 3 frames of 1/30 s.
        let moof = make_moof(900_000, &[(3000, 0), (3000, 0), (3000, 0)]);
        let make = |pts_s: f64, data: &[u8]| CmafChunk {
            data: Bytes::copy_from_slice(data),
            pts: (pts_s * 1e9) as u64,
            duration: 100_000_000,
            fragment_start: false,
            independent: true,
            program_date_time: base_date(),
        };
        let mut c = cue(7, CueKind::Product, 10, Some(15));
        c.start_ns = 10 * S + 50_000_000; // second frame
        track.add(c);
        track.add(cue(8, CueKind::Product, 11, Some(15))); // a later chunk
        let (out, carried) = carriage.handle_chunk(&track, make(10.0, &moof));
        assert_eq!(carried.len(), 1);
        let emsg_len = out.data.len() - moof.len();
        assert_eq!(
            &out.data[emsg_len..],
            &moof[..],
            "chunk bytes follow unchanged"
        );
        let emsg = Emsg::parse(&out.data[..emsg_len]).expect("one emsg");
        assert_eq!(emsg.timescale, 90_000);
        assert_eq!(emsg.presentation_time, 904_500);
        assert_eq!(emsg.event_duration, 15 * 90_000);
        assert_eq!(emsg.id, 7);
        assert_eq!(emsg.scheme_id_uri, ID3_SCHEME);
        let frames = parse_id3(&emsg.message_data).expect("id3");
        let Id3Frame::Txxx { description, value } = &frames[0] else {
            panic!("TXXX first: {frames:?}");
        };
        assert_eq!(description, ID3_DESCRIPTION);
        let json: serde_json::Value = serde_json::from_str(value).expect("json");
        assert_eq!(json["id"], "cue7");
        assert_eq!(json["product"]["id"], "sku-1");
        // Not published: carried again by the next chunk, still with its own time.
        carriage.requeue(carried);
        let moof2 = make_moof(909_000, &[(3000, 0)]);
        let (out, carried) = carriage.handle_chunk(&track, make(10.1, &moof2));
        assert_eq!(carried.len(), 1);
        let emsg = Emsg::parse(&out.data[..out.data.len() - moof2.len()]).expect("emsg");
        assert_eq!(emsg.presentation_time, 904_500);
        // Nothing due: the chunk is untouched.
        let (out, carried) = carriage.handle_chunk(&track, make(10.2, &moof2));
        assert!(carried.is_empty());
        assert_eq!(out.data.len(), moof2.len());
    }
}
