//! A strict LL-HLS client against a real server fed by ffmpeg: it requests every
//! EXT-X-PRELOAD-HINT at once (held until the part exists), then the next playlist, across more
//! than 30 segment boundaries, with and without B-frames, video and audio. No hinted request may
//! end in 404 (a segment closing at a keyframe before the hinted part used to leave
//! `…partN.9.m4s` unserved), each must return the bytes of the part the next playlist lists at
//! that position, and every served playlist keeps HOLD-BACK ≥ 3 × TARGETDURATION and
//! PART-HOLD-BACK ≥ 3 × PART-TARGET as written.

mod common;

use std::time::{Duration, Instant};

use common::{Publisher, Server, get, media_url, part_uri_at, preload_hint, preload_hint_uri};

/// Segment boundaries each client follows.
const BOUNDARIES: u32 = 30;

/// Short segments so that 30 boundaries take seconds: a keyframe every 0.5 s, 0.5 s segments.
const SEGMENT_S: &str = "0.5";
const GOP_FRAMES: u32 = 15;

/// ffmpeg publishing `seconds` of 320x180 at 30 fps with a keyframe every [`GOP_FRAMES`], with
/// `bframes` B-frames.
fn publish(server: &Server, key: &str, bframes: u32, seconds: u32) -> Publisher {
    let url = server.rtmp_url(key);
    let args = format!(
        "-hide_banner -loglevel warning -nostdin -re \
         -f lavfi -i testsrc2=size=320x180:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
         -t {seconds} -c:v libx264 -profile:v high -preset veryfast -pix_fmt yuv420p \
         -g {GOP_FRAMES} -keyint_min {GOP_FRAMES} -sc_threshold 0 -bf {bframes} -b:v 300k \
         -c:a aac -ar 48000 -ac 2 -b:a 64k -f flv {url}"
    );
    let args: Vec<String> = args.split_whitespace().map(str::to_string).collect();
    Publisher::spawn_program_stdin("ffmpeg", &args)
}

/// A decimal attribute `NAME=<value>` of the first line starting with `tag`, in milliseconds
/// as written.
fn millis(text: &str, tag: &str, name: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(tag))
        .unwrap_or_else(|| panic!("no {tag}:\n{text}"));
    let value = line
        .trim_start_matches(tag)
        .split(',')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {line}"));
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let fraction = format!("{fraction:0<3}");
    assert_eq!(fraction.len(), 3, "{line}");
    whole.parse::<u64>().expect("seconds") * 1000 + fraction.parse::<u64>().expect("millis")
}

/// The hold-backs of a served playlist against the targets as written.
fn check_hold_backs(text: &str) {
    let target: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no TARGETDURATION:\n{text}"));
    let control = "#EXT-X-SERVER-CONTROL:";
    let hold_back = millis(text, control, "HOLD-BACK");
    let part_hold_back = millis(text, control, "PART-HOLD-BACK");
    let part_target = millis(text, "#EXT-X-PART-INF:", "PART-TARGET");
    assert!(hold_back >= 3 * 1000 * target, "HOLD-BACK:\n{text}");
    assert!(part_hold_back >= 3 * part_target, "PART-HOLD-BACK:\n{text}");
}

/// What one client saw.
#[derive(Debug)]
struct Followed {
    /// Hints followed.
    hints: u32,
    /// Hints that turned out to be part 0 of a new segment.
    boundaries: u32,
    /// Distinct PART-TARGETs written, ms.
    part_targets: Vec<u64>,
}

/// Follows every preload hint of `stream`'s `rendition` until [`BOUNDARIES`] hinted parts
/// started a new segment.
fn follow(server: &Server, stream: &str, rendition: &str) -> Followed {
    let url = media_url(server, stream, rendition);
    let at = |uri: &str| url.replace("playlist.m3u8", uri);
    let mut text = common::wait_for(&url, Duration::from_secs(20), |t| {
        t.contains("#EXT-X-PRELOAD-HINT")
    });
    let mut followed = Followed {
        hints: 0,
        boundaries: 0,
        part_targets: Vec::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while followed.boundaries < BOUNDARIES {
        assert!(Instant::now() < deadline, "{stream}: {followed:?}");
        check_hold_backs(&text);
        let part_target = millis(&text, "#EXT-X-PART-INF:", "PART-TARGET");
        if !followed.part_targets.contains(&part_target) {
            followed.part_targets.push(part_target);
        }
        let hinted = preload_hint_uri(&text);
        let (msn, part) = preload_hint(&text);
        // At once, before it exists: held until published.
        let (status, _, bytes) = get(&at(&hinted));
        assert_eq!(status, 200, "{stream}: hinted {hinted} after\n{text}");
        // The next playlist: where the hinted part ended up.
        let next = format!("{url}?_HLS_msn={msn}&_HLS_part={part}");
        let (status, _, body) = get(&next);
        assert_eq!(status, 200, "{next}");
        text = String::from_utf8(body).expect("UTF-8 playlist");
        let (listed, boundary) = match part_uri_at(&text, msn, part) {
            Some(uri) => (uri, false),
            None => {
                let first = part_uri_at(&text, msn + 1, 0);
                (first.unwrap_or_else(|| panic!("{next}:\n{text}")), true)
            }
        };
        assert_eq!(
            listed, hinted,
            "{stream}: the hint became another part\n{text}"
        );
        let (status, _, listed_bytes) = get(&at(&listed));
        assert_eq!(status, 200, "{listed}");
        assert!(bytes == listed_bytes, "{stream}: {hinted} bytes differ");
        followed.hints += 1;
        followed.boundaries += u32::from(boundary);
    }
    followed
}

#[test]
fn every_preload_hint_becomes_the_next_part_across_segment_boundaries() {
    let started = Instant::now();
    let server = Server::start_with(&[("CUECAST_HLS_SEGMENT_DURATION_S", SEGMENT_S)]);
    // `demo` with B-frames (composition offsets, PART-TARGET above the configured 0.2 s),
    // `second` without (and its audio); all followed at the same time.
    let _bframes = publish(&server, "demo-key", 2, 60);
    let _plain = publish(&server, "second-key", 0, 60);
    let clients = [
        ("demo", "source"),
        ("second", "source"),
        ("second", "audio"),
    ];
    let followed: Vec<Followed> = std::thread::scope(|scope| {
        let clients = clients.map(|(stream, rendition)| {
            let server = &server;
            scope.spawn(move || follow(server, stream, rendition))
        });
        clients
            .into_iter()
            .map(|client| client.join().expect("client"))
            .collect()
    });
    for ((stream, rendition), followed) in clients.iter().zip(&followed) {
        let name = format!("{stream}/{rendition}");
        assert!(followed.boundaries >= BOUNDARIES, "{name}: {followed:?}");
        assert!(
            followed.hints > followed.boundaries,
            "{name}: parts within segments too: {followed:?}"
        );
    }
    eprintln!("{followed:?} in {:?}", started.elapsed());
}
