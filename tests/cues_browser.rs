//! Timed cues in a real player: hls.js in Debian's headless Chromium (tests/browser/cues.mjs)
//! must surface a posted cue — as a metadata TextTrack cue and a FRAG_PARSING_METADATA sample
//! from the segments' ID3-in-emsg, and as its parsed EXT-X-DATERANGE — at the media time of
//! its START-DATE on the player's own PDT mapping (±1 frame), live and again in the replay
//! after EXT-X-ENDLIST.
//!
//! Needs `/usr/bin/chromium` and `npm ci` in `tests/browser` (both done by `.ci/setup --test`).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Publisher, Server, wait_for};
use serde_json::Value;

/// One frame at the publisher's 30 fps, plus 2 ms for millisecond dates.
const TOLERANCE_S: f64 = 1.0 / 30.0 + 0.002;

fn check(phase: &str, report: &Value) {
    assert_eq!(
        report["found"], true,
        "{phase}: hls.js did not surface the cue: {report:#}"
    );
    let expected = report["expected_start"]
        .as_f64()
        .unwrap_or_else(|| panic!("{phase}: no PDT mapping: {report:#}"));
    let emsg = report["emsg"][0]["start"].as_f64().expect("emsg cue start");
    let sample = report["samples"][0]["pts"]
        .as_f64()
        .expect("FRAG_PARSING_METADATA sample pts");
    let daterange = report["parsed_daterange"]["start"]
        .as_f64()
        .expect("parsed DATERANGE start");
    eprintln!(
        "{phase}: START-DATE maps to {expected:.4} s; emsg TextTrack cue {:+.1} ms, \
         FRAG_PARSING_METADATA sample {:+.1} ms, DATERANGE {:+.1} ms; DATERANGE TextTrack cues {}",
        (emsg - expected) * 1e3,
        (sample - expected) * 1e3,
        (daterange - expected) * 1e3,
        report["daterange"].as_array().map_or(0, Vec::len),
    );
    for (what, at) in [
        ("emsg cue", emsg),
        ("metadata sample", sample),
        ("DATERANGE", daterange),
    ] {
        assert!(
            (at - expected).abs() <= TOLERANCE_S,
            "{phase}: {what} at {at}, START-DATE maps to {expected}: {report:#}"
        );
    }
    assert_eq!(report["parsed_daterange"]["class"], "com.cuecast.product");
    assert_eq!(report["samples"][0]["type"], "https://aomedia.org/emsg/ID3");
    let payload: Value =
        serde_json::from_str(report["emsg"][0]["data"].as_str().expect("TXXX text"))
            .expect("cue JSON in TXXX");
    assert_eq!(payload["product"]["id"], "sku-123");
    assert_eq!(report["emsg"][0]["info"], "com.cuecast.cue");
}

#[test]
fn hls_js_surfaces_cues_at_their_frame_live_and_in_replay() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/hls.js").is_dir()
            && dir.join("node_modules/playwright-core").is_dir(),
        "tests/browser/node_modules is missing: run `.ci/setup --test` (or `npm ci` in tests/browser)"
    );
    // A window longer than the show, so the replay holds all of it.
    let server = Server::start_with(&[("CUECAST_HLS_WINDOW_S", "120")]);
    let _publisher = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 30);
    let url = server.url("/hls/demo/index.m3u8");
    wait_for(&url, Duration::from_secs(30), |t| {
        t.contains("#EXT-X-STREAM-INF")
    });
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cues_browser");
    std::fs::create_dir_all(&out).expect("output dir");
    let output = Command::new("node")
        .arg(dir.join("cues.mjs"))
        .args(["--url", &url])
        .args(["--api", &server.url("/api/streams/demo/cues")])
        .args(["--token", "dev-admin-token"])
        .arg("--json")
        .arg(out.join("cues.json"))
        .output()
        .unwrap_or_else(|e| panic!("run node: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "cues.mjs failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(report["post_status"], 201, "{report:#}");
    check("live", &report["live"]);
    check("replay", &report["replay"]);
}
