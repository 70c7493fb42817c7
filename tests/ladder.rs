//! End to end: the transcoding ladder. A real `cuecast serve` with rungs configured, ffmpeg
//! publishing over RTMP; every rung is checked with ffprobe (size, codec), segment by segment
//! against the source rung (same start PTS, same durations), and against what the
//! multivariant playlist claims (RESOLUTION, CODECS, FRAME-RATE, BANDWIDTH).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{
    Publisher, Server, bmff, ffprobe, get, media_url, parse_master, parse_media, wait_for,
};

/// The default config's rungs (480p, 360p) at preset `ultrafast`: the machine running the
/// suite is a shared 2-core box, and the test is about the ladder's plumbing, not x264.
const LADDER: &str = r#"[{name="480p", width=854, height=480, video_bitrate_kbps=1400, max_fps=30, profile="main", preset="ultrafast"}, {name="360p", width=640, height=360, video_bitrate_kbps=800, max_fps=30, profile="main", preset="ultrafast"}]"#;
const READY: Duration = Duration::from_secs(40);

/// The tests here each run x264 rungs next to a 720p ffmpeg publisher (one of them a
/// deliberately overloaded rung): run one at a time, so that on a 2-core machine they measure
/// the ladder rather than each other.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}
const SECONDS: u32 = 10;

/// A rendition's init segment and complete segments (bytes, EXTINF) once the stream ended.
struct Rendition {
    init: Vec<u8>,
    segments: Vec<(Vec<u8>, f64)>,
    /// EXT-X-PROGRAM-DATE-TIME of each segment, ms since the epoch.
    dates: Vec<Option<i64>>,
}

fn fetch(server: &Server, master_text: &str, uri: &str) -> Rendition {
    let url = server.url(&format!("/hls/demo/{uri}"));
    let text = wait_for(&url, READY, |t| t.contains("#EXT-X-ENDLIST"));
    let playlist = parse_media(&text);
    let (status, _, init) = get(&url.replace("playlist.m3u8", "init.mp4"));
    assert_eq!(status, 200, "init of {uri}\n{master_text}");
    let segments = playlist
        .segments
        .iter()
        .map(|s| {
            let (status, _, body) = get(&url.replace("playlist.m3u8", &s.uri));
            assert_eq!(status, 200, "{} of {uri}", s.uri);
            (body, f64::from(s.duration))
        })
        .collect();
    let dates = playlist
        .segments
        .iter()
        .map(|s| s.program_date_time.map(|d| d.timestamp_millis()))
        .collect();
    Rendition {
        init,
        segments,
        dates,
    }
}

/// Start times (seconds) of every CMAF chunk (LL-HLS part) of a segment: each `moof`'s
/// `tfdt` (cmafmux writes the first sample's presentation time there, with signed composition
/// offsets for B-frames) over the `mdhd` timescale of the init segment.
fn chunk_starts(init: &[u8], segment: &[u8]) -> Vec<f64> {
    let timescale = bmff::timescale(init) as f64;
    let starts: Vec<f64> = bmff::fragment_times(segment)
        .into_iter()
        .map(|time| time as f64 / timescale)
        .collect();
    assert!(!starts.is_empty(), "no moof/tfdt in segment");
    starts
}

/// `(URI, INDEPENDENT)` of every EXT-X-PART of a media playlist.
fn listed_parts(playlist: &str) -> Vec<(String, bool)> {
    playlist
        .lines()
        .filter_map(|line| line.strip_prefix("#EXT-X-PART:"))
        .filter_map(|attrs| {
            let start = attrs.find("URI=\"")? + 5;
            let end = attrs[start..].find('"')? + start;
            Some((
                attrs[start..end].to_string(),
                attrs.contains("INDEPENDENT=YES"),
            ))
        })
        .collect()
}

/// Until `publisher` exits: every part listed by both the source and a rung starts at the
/// same presentation time in both (first `tfdt`, to half a millisecond) and is independent in
/// both or in neither. Returns how many parts were compared per rung.
fn compare_live_parts(
    server: &Server,
    publisher: &mut Publisher,
    rungs: &[&str],
) -> Vec<(String, usize)> {
    wait_for(&server.url("/hls/demo/index.m3u8"), READY, |t| {
        rungs
            .iter()
            .all(|name| t.contains(&format!("/{name}/playlist.m3u8")))
    });
    let source_url = media_url(server, "demo", "source");
    let source_init = get(&source_url.replace("playlist.m3u8", "init.mp4")).2;
    let mut rung_urls = Vec::new();
    for name in rungs {
        let url = media_url(server, "demo", name);
        let init = get(&url.replace("playlist.m3u8", "init.mp4")).2;
        rung_urls.push((
            name.to_string(),
            url,
            init,
            std::collections::HashSet::new(),
        ));
    }
    while publisher.wait(Duration::from_millis(300)).is_none() {
        let (_, _, source_text) = get(&source_url);
        let source_parts = listed_parts(&String::from_utf8_lossy(&source_text));
        for (name, url, init, compared) in &mut rung_urls {
            let (_, _, text) = get(url);
            for (uri, independent) in listed_parts(&String::from_utf8_lossy(&text)) {
                let Some((_, source_independent)) = source_parts.iter().find(|(u, _)| *u == uri)
                else {
                    continue;
                };
                if !compared.insert(uri.clone()) {
                    continue;
                }
                let (status, _, part) = get(&url.replace("playlist.m3u8", &uri));
                let (source_status, _, source_part) =
                    get(&source_url.replace("playlist.m3u8", &uri));
                if status != 200 || source_status != 200 {
                    // Dropped from the window meanwhile.
                    compared.remove(&uri);
                    continue;
                }
                let start = chunk_starts(init, &part)[0];
                let source_start = chunk_starts(&source_init, &source_part)[0];
                assert!(
                    (start - source_start).abs() < 0.0005,
                    "{name} {uri}: starts at {start} s, the source's at {source_start} s"
                );
                assert_eq!(
                    independent, *source_independent,
                    "{name} {uri}: INDEPENDENT differs from the source's"
                );
            }
        }
    }
    rung_urls
        .into_iter()
        .map(|(name, _, _, compared)| (name, compared.len()))
        .collect()
}

/// Peak and average bits/s over the segments, as the packager measures them.
fn bandwidth(r: &Rendition) -> (f64, f64) {
    let peak = r
        .segments
        .iter()
        .map(|(b, d)| b.len() as f64 * 8.0 / d)
        .fold(0.0, f64::max);
    let bits: f64 = r.segments.iter().map(|(b, _)| b.len() as f64 * 8.0).sum();
    let secs: f64 = r.segments.iter().map(|(_, d)| d).sum();
    (peak, bits / secs)
}

/// `avc1.PPCCLL` from the `avcC` box of an init segment.
fn avc1_codec(init: &[u8]) -> String {
    let at = init
        .windows(4)
        .position(|w| w == b"avcC")
        .expect("avcC box in the init segment");
    let record = &init[at + 4..];
    format!("avc1.{:02x}{:02x}{:02x}", record[1], record[2], record[3])
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * b.max(1.0)
}

#[test]
fn ladder_from_720p_source_is_aligned_and_described() {
    let _serial = one_at_a_time();
    let server = Server::start_with(&[("CUECAST_MEDIA_LADDER", LADDER)]);
    let mut publisher = Publisher::ffmpeg_args(&server.rtmp_url("demo-key"), SECONDS, "1280x720");
    // While live: part P covers the same time in every rendition, the B-frame passthrough
    // included.
    let compared = compare_live_parts(&server, &mut publisher, &["480p", "360p"]);
    for (name, count) in compared {
        assert!(
            count >= 10,
            "{name}: only {count} parts compared with the source"
        );
    }
    let exit = publisher.wait(Duration::from_secs(u64::from(SECONDS) + 60));
    assert!(exit.is_some_and(|s| s.success()), "{}", publisher.stderr());

    // After the publish ended: every playlist has ENDLIST and the multivariant lists
    // exactly what was produced.
    let master_text = wait_for(&server.url("/hls/demo/index.m3u8"), READY, |t| {
        t.matches("#EXT-X-STREAM-INF").count() == 3
    });
    let master = parse_master(&master_text);
    let audio_uri = master.alternatives[0].uri.clone().expect("audio URI");
    let audio = fetch(&server, &master_text, &audio_uri);
    let (audio_peak, audio_avg) = bandwidth(&audio);

    let mut renditions = Vec::new();
    for (name, width, height) in [
        ("source", 1280, 720),
        ("480p", 854, 480),
        ("360p", 640, 360),
    ] {
        let variant = master
            .variants
            .iter()
            .find(|v| v.uri.ends_with(&format!("/{name}/playlist.m3u8")))
            .unwrap_or_else(|| panic!("variant {name}\n{master_text}"));
        let resolution = variant.resolution.expect("RESOLUTION");
        assert_eq!((resolution.width, resolution.height), (width, height));
        assert_eq!(variant.frame_rate, Some(30.0), "{master_text}");

        let rendition = fetch(&server, &master_text, &variant.uri);
        // CODECS: the avcC (profile, constraints, level) of the rendition's own init segment.
        let codecs = variant.codecs.clone().unwrap_or_default();
        let expected = format!("{},{}", avc1_codec(&rendition.init), "mp4a.40.2");
        assert_eq!(codecs, expected, "{name}\n{master_text}");
        let durations: Vec<f64> = rendition.segments.iter().map(|s| s.1).collect();
        assert!(
            rendition.segments.len() >= 4,
            "{name}: segments {durations:?}"
        );
        // Every segment decodes at the rung's size.
        for (i, (segment, _)) in rendition.segments.iter().enumerate() {
            let mut file = rendition.init.clone();
            file.extend_from_slice(segment);
            let probe = ffprobe(&file, server.dir.path());
            assert_eq!(probe.codec_name, "h264", "{name} seg{i}");
            assert_eq!(
                (probe.width, probe.height),
                (Some(width), Some(height)),
                "{name} seg{i}"
            );
        }
        // BANDWIDTH / AVERAGE-BANDWIDTH: the segments' peak and average, plus the audio's.
        let (peak, avg) = bandwidth(&rendition);
        assert!(
            close(variant.bandwidth as f64, peak + audio_peak, 0.02),
            "{name}: BANDWIDTH {} vs measured {}\n{master_text}",
            variant.bandwidth,
            peak + audio_peak
        );
        let average = variant.average_bandwidth.expect("AVERAGE-BANDWIDTH") as f64;
        assert!(
            close(average, avg + audio_avg, 0.02),
            "{name}: AVERAGE-BANDWIDTH {average} vs measured {}",
            avg + audio_avg
        );
        renditions.push((name, rendition));
    }

    // Sorted by bandwidth, highest first; the source (1280x720 at 800 kbit/s here) is listed
    // where its measured bandwidth puts it.
    let bandwidths: Vec<u64> = master.variants.iter().map(|v| v.bandwidth).collect();
    assert!(bandwidths.windows(2).all(|w| w[0] >= w[1]), "{master_text}");

    // Same segments in every rendition: same count, same durations, same start time (the
    // first chunk's tfdt); the transcoded rungs' chunks (one per frame) start at the same
    // times too. Parts were compared with the source's while live, above.
    let (_, source) = &renditions[0];
    let (_, first_rung) = &renditions[1];
    for (name, rung) in &renditions[1..] {
        assert_eq!(
            rung.segments.len(),
            source.segments.len(),
            "{name}: segment count"
        );
        // The same wall-clock time for the same media time (players switching levels, and
        // cues placed by PROGRAM-DATE-TIME, depend on it).
        for (i, (date, src_date)) in rung.dates.iter().zip(&source.dates).enumerate() {
            let (date, src_date) = (date.expect("PDT"), src_date.expect("PDT"));
            assert!(
                (date - src_date).abs() <= 1,
                "{name} seg{i}: PROGRAM-DATE-TIME {date} ms vs source {src_date} ms"
            );
        }
        for (i, (((seg, duration), (src_seg, src_duration)), (other, _))) in rung
            .segments
            .iter()
            .zip(&source.segments)
            .zip(&first_rung.segments)
            .enumerate()
        {
            assert!(
                (duration - src_duration).abs() < 0.002,
                "{name} seg{i}: EXTINF {duration} vs source {src_duration}"
            );
            let starts = chunk_starts(&rung.init, seg);
            let src_start = chunk_starts(&source.init, src_seg)[0];
            assert!(
                (starts[0] - src_start).abs() < 0.0005,
                "{name} seg{i}: starts at {} vs source {src_start}",
                starts[0]
            );
            assert_eq!(
                starts,
                chunk_starts(&first_rung.init, other),
                "{name} seg{i}: parts"
            );
        }
    }

    let (_, _, metrics) = get(&server.url("/metrics"));
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("cuecast_ladder_dropped_frames_total"),
        "{metrics}"
    );
}

/// The test ladder plus a 60 fps rung at 360p: above the 30 fps source's rate while `360p`
/// already carries 640x360 at 30 fps.
const LADDER_WITH_360P60: &str = r#"[{name="480p", width=854, height=480, video_bitrate_kbps=1400, max_fps=30, profile="main", preset="ultrafast"}, {name="360p60", width=640, height=360, video_bitrate_kbps=1000, max_fps=60, profile="main", preset="ultrafast"}, {name="360p", width=640, height=360, video_bitrate_kbps=800, max_fps=30, profile="main", preset="ultrafast"}]"#;

/// Rungs larger than the source, or above its frame rate next to a rung at its rate, are not
/// produced.
#[test]
fn rungs_above_a_360p_source_are_skipped() {
    let _serial = one_at_a_time();
    let server = Server::start_with(&[("CUECAST_MEDIA_LADDER", LADDER_WITH_360P60)]);
    let _publisher = Publisher::ffmpeg_args(&server.rtmp_url("demo-key"), 20, "640x360");
    let master_text = wait_for(&server.url("/hls/demo/index.m3u8"), READY, |t| {
        t.matches("#EXT-X-STREAM-INF").count() >= 2
    });
    let master = parse_master(&master_text);
    let uris: Vec<&str> = master.variants.iter().map(|v| v.uri.as_str()).collect();
    assert_eq!(master.variants.len(), 2, "{master_text}");
    assert!(
        uris.iter().any(|u| u.ends_with("/source/playlist.m3u8"))
            && uris.iter().any(|u| u.ends_with("/360p/playlist.m3u8")),
        "{master_text}"
    );
    assert!(!master_text.contains("480p"), "{master_text}");
    for variant in &master.variants {
        let resolution = variant.resolution.expect("RESOLUTION");
        assert_eq!((resolution.width, resolution.height), (640, 360));
    }
    let (status, _, _) = get(&server.url(&format!(
        "/hls/demo/{}",
        master.variants[0].uri.replace(
            master.variants[0].uri.rsplit('/').nth(1).unwrap_or(""),
            "480p"
        )
    )));
    assert_eq!(status, 404, "no 480p rendition exists");
    let log = server.log();
    assert!(
        log.contains("ladder rung skipped") && log.contains("no upscaling"),
        "{log}"
    );
    assert!(
        log.contains("rendition=360p60") && log.contains("above the source's 30.000 fps"),
        "{log}"
    );
    assert!(!master_text.contains("360p60"), "{master_text}");
}

/// hls.js in Chromium (tests/browser/switch.mjs) is forced onto every level in turn, then back
/// with a smooth switch; each level must play at its own size, with no fatal hls.js error and
/// no error caused by the switch.
#[test]
fn hls_js_switches_levels_in_chromium() {
    let _serial = one_at_a_time();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/hls.js").is_dir(),
        "tests/browser/node_modules is missing: run `.ci/setup --test` (or `npm ci` in tests/browser)"
    );
    let server = Server::start_with(&[("CUECAST_MEDIA_LADDER", LADDER)]);
    // Long enough for the worst case below: start-up plus four switches at the full dwell.
    let _publisher = Publisher::ffmpeg_args(&server.rtmp_url("demo-key"), 300, "1280x720");
    let url = server.url("/hls/demo/index.m3u8");
    wait_for(&url, READY, |t| t.matches("#EXT-X-STREAM-INF").count() == 3);
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ladder_switch.json");
    // A switch normally lands within a few seconds and the harness moves on at once; the dwell
    // only bounds a slow one. On a loaded 2-core box (the 720p publisher's own x264, two rungs
    // and Chromium's decoder share the cores) a rung can trail the source by several seconds,
    // and a 20 s bound was seen to expire before hls.js reached the 360p level.
    let output = Command::new("node")
        .arg(dir.join("switch.mjs"))
        .args(["--url", &url, "--dwell", "45", "--json"])
        .arg(&out)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "switch.mjs harness failure:\n{}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(report["started"], true, "{stdout}");
    let levels = report["levels"].as_array().map_or(0, Vec::len);
    assert_eq!(levels, 3, "{stdout}");
    let switches = report["switches"].as_array().cloned().unwrap_or_default();
    assert_eq!(switches.len(), levels + 1, "{stdout}");
    for switch in &switches {
        assert_eq!(switch["ok"], true, "switch {switch}\n{stdout}");
        assert!(
            switch["advanced_s"].as_f64().unwrap_or(0.0) > 0.5,
            "playback kept going after {switch}\n{stdout}"
        );
    }
    assert_eq!(report["fatal_error"], false, "{stdout}");
    // No error from the renditions: appending, parsing, codec changes, failed loads (HTTP
    // errors). Tolerated, all non-fatal: hls.js's own `aborted` (ErrorDetails.INTERNAL_ABORTED:
    // an immediate `currentLevel` switch cancels the old level's in-flight load), and what a
    // loaded 2-core box (publisher + 2 x264 rungs + Chromium + the rest of the suite) causes:
    // the live edge running dry, a blocking reload outlasting hls.js's timeout.
    let load_only = ["aborted", "bufferStalledError", "levelLoadTimeOut"];
    let switching_errors: Vec<&serde_json::Value> = report["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter(|e| !load_only.contains(&e["details"].as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        switching_errors.is_empty(),
        "hls.js errors {switching_errors:?}\n{stdout}"
    );
}

/// A rung that cannot keep up (x264 `placebo` at 720p on a shared 2-core machine) is reported
/// in the log and in /metrics, while the source rendition keeps publishing in real time.
#[test]
fn a_rung_that_cannot_keep_up_is_reported_and_the_source_does_not_wait() {
    let _serial = one_at_a_time();
    let server = Server::start_with(&[(
        "CUECAST_MEDIA_LADDER",
        r#"[{name="slow", width=1280, height=720, video_bitrate_kbps=2500, max_fps=30, profile="high", preset="placebo"}]"#,
    )]);
    let _publisher = Publisher::ffmpeg_args(&server.rtmp_url("demo-key"), 60, "1280x720");
    let source = common::media_url(&server, "demo", "source");
    // 8 segments of source (16 s of media) arrive while the slow rung is far behind.
    wait_for(&source, Duration::from_secs(45), |t| {
        t.matches("#EXTINF").count() >= 8
    });
    let metrics = wait_for(&server.url("/metrics"), Duration::from_secs(20), |m| {
        m.lines().any(|l| {
            l.starts_with("cuecast_ladder_dropped_frames_total ")
                && l.split(' ').nth(1).is_some_and(|v| v != "0")
        })
    });
    // The source's frames still reach their parts promptly (generous bound for a loaded box;
    // waiting on a 1-2 fps placebo encoder would make this tens of seconds).
    let p50 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("cuecast_ingest_to_part_seconds{quantile=\"0.5\"} "))
        .and_then(|v| v.parse::<f64>().ok())
        .expect("ingest-to-part p50");
    assert!(p50 < 3.0, "source ingest-to-part p50 {p50} s\n{metrics}");
    let log = server.log();
    assert!(log.contains("ladder cannot keep up"), "{log}");
    // The drops are the stream's: in its own series and in its live status, which lists the
    // lagging rendition beside the source.
    let dropped = metrics
        .lines()
        .find_map(|l| l.strip_prefix("cuecast_stream_dropped_frames_total{stream=\"demo\"} "))
        .and_then(|v| v.parse::<u64>().ok())
        .expect("per-stream dropped frames");
    assert!(dropped > 0, "{metrics}");
    let url = server.url("/api/streams/demo/status");
    let (status, _, live) = common::call("GET", &url, Some("dev-admin-token"), None);
    assert_eq!(status, 200, "{live}");
    assert!(
        live["dropped_frames"].as_u64().is_some_and(|d| d > 0),
        "{live}"
    );
    let renditions: Vec<&str> = live["renditions"]
        .as_array()
        .expect("renditions")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(renditions, ["slow", "source"], "{live}");
}
