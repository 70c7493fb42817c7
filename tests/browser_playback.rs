//! A real player: hls.js (npm) in low-latency mode, in Debian's headless Chromium driven by
//! playwright-core, plays a stream published with ffmpeg. `tests/browser/play.mjs` measures the
//! playback and prints JSON; this test decides what passes.
//!
//! Needs `/usr/bin/chromium` and `npm ci` in `tests/browser` (both done by `.ci/setup --test`).

mod common;

use common::{Publisher, Server, media_url, wait_for};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Wall time the player must play after its first frame.
const PLAY_SECONDS: u32 = 20;
/// Time allowed from page load to the first frame (a loaded 2-core machine: ffmpeg + server + Chromium).
const START_TIMEOUT_S: u32 = 20;

/// Runs play.mjs against `url`, returning its JSON report; panics with its output on a harness
/// failure (non-zero exit).
fn play(url: &str, seconds: u32, out: &Path) -> Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/hls.js").is_dir()
            && dir.join("node_modules/playwright-core").is_dir(),
        "tests/browser/node_modules is missing: run `.ci/setup --test` (or `npm ci` in tests/browser)"
    );
    let output = Command::new("node")
        .arg(dir.join("play.mjs"))
        .args(["--url", url])
        .args(["--seconds", &seconds.to_string()])
        .args(["--start-timeout", &START_TIMEOUT_S.to_string()])
        .arg("--json")
        .arg(out.join("play.json"))
        .arg("--log")
        .arg(out.join("hls.log"))
        .output()
        .unwrap_or_else(|e| panic!("run node (is Node.js installed?): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "play.mjs harness failure ({}):\n{stderr}\n{stdout}",
        output.status
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("play.mjs printed no JSON ({e}):\n{stdout}\n{stderr}"))
}

/// Sum of the EXTINF durations of a media playlist.
fn listed_seconds(playlist: &str) -> f64 {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .filter_map(|v| v.split(',').next()?.trim().parse::<f64>().ok())
        .sum()
}

/// EXT-X-TARGETDURATION of a media playlist (infinite when absent, so nothing is ever enough).
fn target_duration(playlist: &str) -> f64 {
    playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::INFINITY)
}

/// The report without its raw per-sample series, for readable failure messages.
fn brief(report: &Value) -> String {
    let mut report = report.clone();
    if let Some(map) = report.as_object_mut() {
        map.remove("samples");
    }
    serde_json::to_string_pretty(&report).unwrap_or_default()
}

#[test]
fn hls_js_plays_low_latency_in_chromium_without_stalls() {
    let server = Server::start();
    // Long enough to outlast a slow start plus the playing time; killed when the test ends.
    let _publisher = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 60);
    let url = server.url("/hls/demo/index.m3u8");
    wait_for(&url, Duration::from_secs(20), |t| {
        t.contains("#EXT-X-STREAM-INF")
    });
    // Join as a viewer of a running stream does: once the playlist holds the 3 target durations a
    // player keeps behind the live edge (RFC 8216 6.3.3). Started on a 1-segment playlist, hls.js
    // plays from the first second with nothing in hand and stalls as soon as one segment comes
    // late. (An LL-HLS playlist reaches its much smaller PART-HOLD-BACK sooner.)
    let video = media_url(&server, "demo", "source");
    wait_for(&video, Duration::from_secs(30), |t| {
        listed_seconds(t) >= 3.0 * target_duration(t) || t.contains("#EXT-X-PART-INF")
    });

    // The report and hls.js's debug log stay in target/tmp for a look after a failure.
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser_playback");
    std::fs::create_dir_all(&out).expect("create output dir");
    let report = play(&url, PLAY_SECONDS, &out);
    eprintln!(
        "browser playback: report {}, hls.js log {}",
        out.join("play.json").display(),
        out.join("hls.log").display()
    );
    let summary = brief(&report);

    eprintln!(
        "browser playback: started={} startup_ms={} played_s={} stalls={} hls.latency s {} \
         PDT latency s {} live={} low_latency_mode={} parts_seen={} level={}",
        report["started"],
        report["startup_ms"],
        report["played_s"],
        report["stalls"],
        report["latency_s"],
        report["pdt_latency_s"],
        report["live"],
        report["low_latency_mode"],
        report["parts_seen"],
        report["level"],
    );

    assert_eq!(
        report["started"],
        Value::Bool(true),
        "playback never started within {START_TIMEOUT_S} s:\n{summary}"
    );
    let played = report["played_s"].as_f64().unwrap_or(0.0);
    assert!(
        played >= f64::from(PLAY_SECONDS) - 2.0,
        "played only {played} s of media in {PLAY_SECONDS} s:\n{summary}"
    );
    assert_eq!(
        report["stalls"].as_u64(),
        Some(0),
        "playback stalled after it started:\n{summary}"
    );
    let fatal: Vec<&Value> = report["errors"]
        .as_array()
        .map(|errors| errors.iter().filter(|e| e["fatal"] == true).collect())
        .unwrap_or_default();
    assert!(
        fatal.is_empty() && report["fatal_error"] != true,
        "fatal hls.js errors {fatal:?}:\n{summary}"
    );
    assert!(
        report["latency_s"]["samples"].as_u64().unwrap_or(0) > 0
            && report["latency_s"]["p50"].is_number(),
        "no hls.latency samples recorded:\n{summary}"
    );
    assert_eq!(
        report["live"],
        Value::Bool(true),
        "hls.js did not see a live playlist:\n{summary}"
    );
    assert_eq!(
        report["low_latency_mode"],
        Value::Bool(true),
        "hls.js was not in low-latency mode:\n{summary}"
    );
    // The server speaks LL-HLS, and hls.js used it: parts and blocking reloads.
    assert_eq!(
        report["parts_seen"],
        Value::Bool(true),
        "hls.js saw no EXT-X-PART:\n{summary}"
    );
    assert_eq!(
        report["can_block_reload"],
        Value::Bool(true),
        "hls.js saw no CAN-BLOCK-RELOAD:\n{summary}"
    );
}
