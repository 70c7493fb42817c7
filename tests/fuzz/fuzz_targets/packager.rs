//! The LL-HLS packager fed an arbitrary run of CMAF chunks (any duration, fragment starts and
//! independence anywhere, new init segments, interruptions, the end), the playlists it then
//! writes checked against the rules players rely on (draft-pantos-hls-rfc8216bis, LL-HLS):
//! every EXTINF rounds to ≤ TARGETDURATION, every EXT-X-PART is ≤ PART-TARGET, the hold-backs
//! are at least three times the targets as written, the preload hint names the part that is
//! published next, segment numbers follow EXT-X-MEDIA-SEQUENCE without gaps, part lines
//! only for segments within 3 target durations of the end, and every delivery directive a player
//! could send is either accepted or refused (400), never a panic. Each input step is
//! `[flags u8][duration ms u16 LE]`.

#![no_main]

use std::time::Duration;

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use cuecast::hls::directives::Directives;
use cuecast::hls::packager::{CmafChunk, Packager, PackagerConfig};
use libfuzzer_sys::fuzz_target;

const FRAGMENT_START: u8 = 0x01;
const INDEPENDENT: u8 = 0x02;
const NEW_INIT: u8 = 0x04;
const INTERRUPT: u8 = 0x08;
const END: u8 = 0x10;

fuzz_target!(|data: &[u8]| {
    let mut packager = Packager::new(PackagerConfig {
        segment_target: Duration::from_secs(2),
        part_target: Duration::from_millis(200),
        window: Duration::from_secs(12),
    });
    packager.handle_init(Bytes::from_static(b"init-0"));
    let start = Utc
        .timestamp_opt(1_700_000_000, 0)
        .single()
        .expect("a valid instant");
    let mut pts: u64 = 0;
    let mut inits = 0u32;
    for step in data.chunks_exact(3) {
        let flags = step[0];
        let duration_ns = u64::from(u16::from_le_bytes([step[1], step[2]])) * 1_000_000;
        if flags & END != 0 {
            packager.handle_end();
            check(&packager);
            return;
        }
        if flags & INTERRUPT != 0 {
            packager.handle_interrupt();
        }
        if flags & NEW_INIT != 0 {
            inits += 1;
            packager.handle_init(Bytes::from(format!("init-{inits}").into_bytes()));
        }
        let program_date_time = start + chrono::Duration::nanoseconds(pts as i64);
        let hinted = packager
            .media_playlist(true)
            .preload_hints
            .first()
            .map(|hint| hint.uri.clone());
        let outcome = packager.handle_chunk(CmafChunk {
            data: Bytes::from_static(b"moof+mdat"),
            pts,
            duration: duration_ns,
            fragment_start: flags & FRAGMENT_START != 0,
            independent: flags & INDEPENDENT != 0,
            program_date_time,
        });
        pts = pts.saturating_add(duration_ns);
        if outcome.part().is_some() {
            // Wherever the segment boundary fell, the hinted URI is the part just published.
            let playlist = packager.media_playlist(true);
            let newest = playlist.partial.as_ref().and_then(|open| open.parts.last());
            assert_eq!(
                newest.map(|part| &part.uri),
                hinted.as_ref(),
                "preload hint"
            );
        }
        check(&packager);
    }
});

fn attribute(line: &str, name: &str) -> Option<f64> {
    line.split([':', ','])
        .find_map(|field| field.strip_prefix(name)?.strip_prefix('='))
        .and_then(|value| value.parse().ok())
}

fn check(packager: &Packager) {
    let playlist = packager.media_playlist(true);
    playlist
        .validate()
        .expect("the packager's own playlist validates");
    let text = playlist.to_string();
    let target = packager.target_duration() as f64;
    // EXT-X-PART-INF follows EXT-X-SERVER-CONTROL: read PART-TARGET first.
    let part_target = text
        .lines()
        .find(|line| line.starts_with("#EXT-X-PART-INF:"))
        .and_then(|line| attribute(line, "PART-TARGET"));
    // Milliseconds as written (three decimals): compared without floating-point slack.
    let millis = |seconds: f64| (seconds * 1000.0).round() as u64;
    let mut next_segment = None;
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            assert_eq!(value.parse::<f64>().ok(), Some(target), "{text}");
        } else if let Some(duration) = line.strip_prefix("#EXTINF:") {
            let seconds: f64 = duration
                .trim_end_matches(',')
                .parse()
                .expect("EXTINF number");
            assert!(
                seconds.round() <= target,
                "EXTINF {seconds} over {target}\n{text}"
            );
        } else if line.starts_with("#EXT-X-PART:") {
            let duration = attribute(line, "DURATION").expect("part DURATION");
            let limit = part_target.expect("EXT-X-PART-INF before the parts");
            assert!(
                duration <= limit + 5e-4,
                "part {duration} over {limit}\n{text}"
            );
        } else if line.starts_with("#EXT-X-SERVER-CONTROL:") {
            // "At least three times" the targets as written (the PART-HOLD-BACK SHOULD).
            let limit = part_target.expect("EXT-X-PART-INF in an LL playlist");
            let hold = attribute(line, "PART-HOLD-BACK").expect("PART-HOLD-BACK");
            assert!(
                millis(hold) >= 3 * millis(limit),
                "PART-HOLD-BACK {hold}\n{text}"
            );
            let hold = attribute(line, "HOLD-BACK").expect("HOLD-BACK");
            assert!(
                millis(hold) >= 3 * millis(target),
                "HOLD-BACK {hold}\n{text}"
            );
        } else if let Some(value) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            next_segment = value.parse::<u64>().ok();
        } else if let Some(rest) = line.strip_prefix("seg") {
            let msn: u64 = rest
                .trim_end_matches(".m4s")
                .parse()
                .expect("segment number");
            assert_eq!(Some(msn), next_segment, "segments out of sequence\n{text}");
            next_segment = Some(msn + 1);
        }
    }
    // Parts only for the segments that start within 3 target durations of the playlist end.
    let span = 3.0 * target;
    let mut from_end: f64 = playlist
        .partial
        .iter()
        .flat_map(|p| &p.parts)
        .map(|p| p.duration.as_secs_f64())
        .sum::<f64>()
        + playlist
            .segments
            .iter()
            .map(|s| s.duration.as_secs_f64())
            .sum::<f64>();
    for segment in &playlist.segments {
        if !segment.parts.is_empty() {
            assert!(
                from_end <= span + 1e-6,
                "parts listed {from_end} s from the end\n{text}"
            );
        }
        from_end -= segment.duration.as_secs_f64();
    }
    // Every delivery directive a player could send around the current position.
    let last = packager.last_part().unwrap_or(packager.next_part());
    let per_segment = 10;
    for msn in [
        0,
        last.msn,
        last.msn + 1,
        last.msn + 2,
        last.msn + 3,
        u64::MAX,
    ] {
        for part in [
            None,
            Some(0),
            Some(last.part),
            Some(last.part + 1),
            Some(u32::MAX),
        ] {
            let query = match part {
                Some(part) => format!("_HLS_msn={msn}&_HLS_part={part}"),
                None => format!("_HLS_msn={msn}"),
            };
            // Out-of-range numbers are refused at parsing (400) already.
            let Ok(directives) = Directives::parse(Some(&query)) else {
                continue;
            };
            if directives
                .check(last, per_segment, packager.part_target())
                .is_ok()
            {
                let _ = packager.contains(msn, part);
            }
        }
    }
}
