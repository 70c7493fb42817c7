//! Continuity across publisher reconnects (RTMP, RTMPS and SRT): a publisher killed and restarted within
//! the grace period continues the same HLS session — MSNs go on, an EXT-X-DISCONTINUITY (with a
//! new EXT-X-MAP when the resolution changed) marks the seam, every URL listed before stays
//! fetchable, timestamps stay monotonic — and the stream ends (EXT-X-ENDLIST) when nobody comes
//! back in time. hls.js in Chromium keeps playing across the seam.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    Publisher, Server, ffprobe, get, media_url, parse_media, text, wait_for, wait_log_count,
};

const READY: Duration = Duration::from_secs(40);

/// Every URI a player may hold from an LL playlist: segments, parts, maps.
fn listed_uris(playlist: &str) -> BTreeSet<String> {
    playlist
        .lines()
        .filter_map(|line| {
            if !line.starts_with('#') && !line.is_empty() {
                return Some(line.to_string());
            }
            if line.starts_with("#EXT-X-PRELOAD-HINT") {
                return None;
            }
            let start = line.find("URI=\"")? + 5;
            let end = line[start..].find('"')? + start;
            Some(line[start..end].to_string())
        })
        .filter(|uri| !uri.starts_with(".."))
        .collect()
}

/// start_time (tfdt-based) and width of init + segment, as ffprobe reads them.
fn segment_start(server: &Server, base: &str, init: &str, segment: &str) -> (f64, Option<u64>) {
    let mut file = get(&format!("{base}{init}")).2;
    file.extend_from_slice(&get(&format!("{base}{segment}")).2);
    let path = server.dir.path().join(format!("{segment}.mp4"));
    std::fs::write(&path, &file).expect("write");
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=start_time",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .expect("ffprobe");
    let out = String::from_utf8_lossy(&output.stdout);
    let start = out.trim().parse::<f64>().unwrap_or(f64::NAN);
    (start, ffprobe(&file, server.dir.path()).width)
}

/// The reconnect scenario against a running server: `publish(size)` starts a publisher.
fn reconnect_continues_the_session(server: &Server, publish: &dyn Fn(&str) -> Publisher) {
    let mut first = publish("640x360");
    let url = media_url(server, "demo", "source");
    let before = wait_for(&url, READY, |t| t.matches("#EXTINF").count() >= 3);
    let held = listed_uris(&before);
    assert!(held.contains("init.mp4"), "{before}");

    first.kill();
    wait_log_count(server, "publisher lost", 1, READY);
    // During the gap the playlist is live: no ENDLIST, still answering.
    let gap = text(&url);
    assert!(!gap.contains("#EXT-X-ENDLIST"), "{gap}");
    // A blocking reload for the next segment waits (then 200 or 503), it never 404s.
    let gap_playlist = parse_media(&gap);
    let next = gap_playlist.media_sequence + gap_playlist.segments.len() as u64 + 1;
    let (status, _, _) = get(&format!("{url}?_HLS_msn={next}"));
    assert!(
        status == 200 || status == 503,
        "blocking reload in the gap: {status}"
    );

    // Back within the grace period, at another resolution.
    let _second = publish("1280x720");
    let after = wait_for(&url, READY, |t| {
        t.split("#EXT-X-DISCONTINUITY\n")
            .nth(1)
            .is_some_and(|tail| tail.matches("#EXTINF").count() >= 2)
    });
    let playlist = parse_media(&after);
    assert!(!playlist.end_list);
    assert_eq!(
        after.matches("#EXT-X-DISCONTINUITY\n").count(),
        1,
        "{after}"
    );
    let seam = playlist
        .segments
        .iter()
        .position(|s| s.discontinuity)
        .expect("a discontinuity");
    let new_map = playlist.segments[seam]
        .map
        .as_ref()
        .expect("EXT-X-MAP at the seam");
    assert_eq!(
        new_map.uri, "init1.mp4",
        "a new init for the new resolution"
    );
    // MSNs continue: one sequence, each URI once.
    let uris: Vec<&str> = playlist.segments.iter().map(|s| s.uri.as_str()).collect();
    let expected: Vec<String> = (0..uris.len() as u64)
        .map(|i| format!("seg{}.m4s", playlist.media_sequence + i))
        .collect();
    assert_eq!(uris, expected, "{after}");
    // PROGRAM-DATE-TIME increases across the seam.
    let dates: Vec<_> = playlist
        .segments
        .iter()
        .filter_map(|s| s.program_date_time)
        .collect();
    assert!(dates.windows(2).all(|w| w[0] < w[1]), "{after}");

    // Everything listed before is still served.
    let base = url.trim_end_matches("playlist.m3u8").to_string();
    for uri in &held {
        let (status, _, _) = get(&format!("{base}{uri}"));
        assert_eq!(status, 200, "{uri} listed before the reconnect");
    }
    // Timestamps are monotonic across the seam, and the new segments are the new resolution.
    let (old_start, old_width) = segment_start(server, &base, "init.mp4", uris[seam - 1]);
    let old_duration = f64::from(playlist.segments[seam - 1].duration);
    let (new_start, new_width) = segment_start(server, &base, "init1.mp4", uris[seam]);
    assert_eq!(old_width, Some(640));
    assert_eq!(new_width, Some(1280));
    assert!(
        new_start >= old_start + old_duration - 0.05 && new_start < old_start + old_duration + 1.0,
        "timeline: old segment {old_start}+{old_duration}, new one {new_start}"
    );
}

#[test]
fn rtmp_reconnect_within_grace_continues_then_grace_expiry_ends() {
    let server = Server::start_with(&[
        ("CUECAST_INGEST_RECONNECT_GRACE_S", "8"),
        ("CUECAST_HLS_WINDOW_S", "120"),
    ]);
    let rtmp = server.rtmp_url("demo-key");
    reconnect_continues_the_session(&server, &|size| Publisher::ffmpeg_args(&rtmp, 120, size));
    assert!(server.log().contains("resumed=true"));
    let url = media_url(&server, "demo", "source");
    // Nobody comes back after the second drop: the stream ends after the grace period.
    let mut third = Publisher::ffmpeg_args(&rtmp, 120, "640x360");
    wait_log_count(&server, "RTMP publish started", 3, READY);
    std::thread::sleep(Duration::from_secs(2));
    third.kill();
    let lost_at = Instant::now();
    let ended = wait_for(&url, READY, |t| t.contains("#EXT-X-ENDLIST"));
    assert!(
        lost_at.elapsed() >= Duration::from_secs(6),
        "ended before the grace period"
    );
    assert!(!ended.contains("#EXT-X-PRELOAD-HINT"));
    // A deliberate stop (ffmpeg finishing: FCUnpublish/deleteStream) ends at once, no grace.
    let server = Server::start_with(&[("CUECAST_INGEST_RECONNECT_GRACE_S", "30")]);
    let mut publisher = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 4);
    let url = media_url(&server, "demo", "source");
    publisher.wait(READY).expect("ffmpeg finished");
    wait_for(&url, Duration::from_secs(10), |t| {
        t.contains("#EXT-X-ENDLIST")
    });
}

#[test]
fn an_rtmp_publisher_that_comes_back_over_rtmps_continues_the_session() {
    let server = Server::start_with(&[
        ("CUECAST_INGEST_RECONNECT_GRACE_S", "8"),
        ("CUECAST_HLS_WINDOW_S", "120"),
    ]);
    let (rtmp, rtmps) = (server.rtmp_url("demo-key"), server.rtmps_url("demo-key"));
    // First over plain RTMP (640x360), back over TLS (1280x720).
    reconnect_continues_the_session(&server, &|size| {
        let url = if size == "640x360" { &rtmp } else { &rtmps };
        Publisher::ffmpeg_args(url, 120, size)
    });
    let log = server.log();
    assert!(log.contains("RTMPS publish started"), "{log}");
    assert!(log.contains("resumed=true"), "{log}");
}

#[test]
fn srt_reconnect_within_grace_continues_then_grace_expiry_ends() {
    let server = Server::start_with(&[
        ("CUECAST_INGEST_RECONNECT_GRACE_S", "12"),
        ("CUECAST_HLS_WINDOW_S", "120"),
    ]);
    let srt = server.srt_url();
    reconnect_continues_the_session(&server, &|size| {
        Publisher::ffmpeg_srt_size(
            &srt,
            "#!::r=live/demo-key,m=publish",
            &[],
            120,
            "libx264",
            size,
        )
    });
    let url = media_url(&server, "demo", "source");
    // The second publisher is killed too (by drop); after the grace period the stream ends.
    wait_for(&url, Duration::from_secs(60), |t| {
        t.contains("#EXT-X-ENDLIST")
    })
    .contains("#EXT-X-DISCONTINUITY");
}

/// Chromium + hls.js play across an RTMP reconnect: currentTime goes past the seam and keeps
/// going.
#[test]
fn hls_js_keeps_playing_across_a_reconnect() {
    let server = Server::start_with(&[
        ("CUECAST_INGEST_RECONNECT_GRACE_S", "15"),
        ("CUECAST_HLS_WINDOW_S", "120"),
    ]);
    let rtmp = server.rtmp_url("demo-key");
    hls_js_plays_across_a_reconnect(&server, "rtmp", &|| Publisher::ffmpeg(&rtmp, 120));
}

/// The same across an SRT reconnect (libsrt notices the dead caller after its peer-idle
/// timeout, about 5 s, so the gap is longer).
#[test]
fn hls_js_keeps_playing_across_an_srt_reconnect() {
    let server = Server::start_with(&[
        ("CUECAST_INGEST_RECONNECT_GRACE_S", "15"),
        ("CUECAST_HLS_WINDOW_S", "120"),
    ]);
    let srt = server.srt_url();
    hls_js_plays_across_a_reconnect(&server, "srt", &|| {
        Publisher::ffmpeg_srt(&srt, "publish:live/demo-key", &[], 120, "libx264")
    });
}

/// Plays the stream in hls.js while `publish`'s first publisher is killed and a second one
/// continues the stream.
fn hls_js_plays_across_a_reconnect(server: &Server, name: &str, publish: &dyn Fn() -> Publisher) {
    let mut first = publish();
    let url = server.url("/hls/demo/index.m3u8");
    let video = media_url(server, "demo", "source");
    wait_for(&video, READY, |t| t.matches("#EXTINF").count() >= 3);

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/hls.js").is_dir(),
        "tests/browser/node_modules is missing: run `.ci/setup --test`"
    );
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("browser_reconnect_{name}"));
    std::fs::create_dir_all(&out).expect("output dir");
    let player = {
        let (url, out, dir) = (url.clone(), out.clone(), dir.clone());
        std::thread::spawn(move || {
            Command::new("node")
                .arg(dir.join("play.mjs"))
                .args(["--url", &url, "--seconds", "45", "--start-timeout", "30"])
                .arg("--json")
                .arg(out.join("play.json"))
                .arg("--log")
                .arg(out.join("hls.log"))
                .output()
                .expect("run node")
        })
    };
    // Let the player start and play a while, then drop the publisher and come back.
    std::thread::sleep(Duration::from_secs(15));
    first.kill();
    wait_log_count(server, "publisher lost", 1, READY);
    std::thread::sleep(Duration::from_secs(2));
    let _second = publish();
    let output = player.join().expect("player thread");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "play.mjs failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("play.mjs JSON");
    assert_eq!(report["started"], true, "{stdout}");

    // Where the seam is on the media timeline: the sum of the segments before it.
    let playlist = parse_media(&text(&video));
    let seam = playlist
        .segments
        .iter()
        .position(|s| s.discontinuity)
        .expect("a discontinuity in the playlist");
    assert_eq!(playlist.media_sequence, 0, "window holds the whole stream");
    let seam_time: f64 = playlist.segments[..seam]
        .iter()
        .map(|s| f64::from(s.duration))
        .sum();
    let samples = report["samples"].as_array().expect("samples");
    let times: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|s| Some((s["t_s"].as_f64()?, s["ct"].as_f64()?)))
        .collect();
    let (last_t, last_ct) = *times.last().expect("samples");
    assert!(
        last_ct > seam_time + 5.0,
        "currentTime {last_ct} did not get 5 s past the seam at {seam_time}: {stdout}"
    );
    // Still advancing at the end: at least 5 s of media in the last 10 s of wall time.
    let earlier = times
        .iter()
        .rev()
        .find(|(t, _)| *t <= last_t - 10.0)
        .map_or(0.0, |(_, ct)| *ct);
    assert!(
        last_ct - earlier >= 5.0,
        "playback stopped after the seam ({earlier} → {last_ct}): {stdout}"
    );
    let fatal = report["fatal_error"] == true;
    assert!(!fatal, "fatal hls.js error: {stdout}");
}

/// With `ingest.takeover`, a second publisher (here RTMP) replaces a live one (here SRT): the old
/// connection is closed and the new publisher continues the same session after a discontinuity.
#[test]
fn takeover_replaces_the_live_publisher_and_continues_the_session() {
    let server = Server::start_with(&[
        ("CUECAST_INGEST_TAKEOVER", "true"),
        ("CUECAST_INGEST_RECONNECT_GRACE_S", "15"),
        ("CUECAST_HLS_WINDOW_S", "120"),
    ]);
    let mut first = Publisher::ffmpeg_srt(&server.srt_url(), "demo-key", &[], 120, "libx264");
    let url = media_url(&server, "demo", "source");
    wait_for(&url, READY, |t| t.matches("#EXTINF").count() >= 2);
    let _second = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 120);
    wait_log_count(&server, "new publisher takes the stream over", 1, READY);
    // The replaced SRT caller is disconnected: ffmpeg sees its connection closed and exits.
    assert!(
        first.wait(Duration::from_secs(30)).is_some(),
        "the replaced publisher is still connected"
    );
    let after = wait_for(&url, READY, |t| {
        t.split("#EXT-X-DISCONTINUITY\n")
            .nth(1)
            .is_some_and(|tail| tail.matches("#EXTINF").count() >= 2)
    });
    assert!(!after.contains("#EXT-X-ENDLIST"), "{after}");
    let playlist = parse_media(&after);
    let uris: Vec<&str> = playlist.segments.iter().map(|s| s.uri.as_str()).collect();
    let expected: Vec<String> = (0..uris.len() as u64)
        .map(|i| format!("seg{}.m4s", playlist.media_sequence + i))
        .collect();
    assert_eq!(uris, expected, "{after}");
    let log = server.log();
    assert!(log.contains("replaced by a new publisher"), "{log}");
    assert!(!log.contains("stream ended"), "{log}");
}
