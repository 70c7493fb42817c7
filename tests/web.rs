//! The pages in a real browser: each `tests/browser/web-*.mjs` script starts this build's
//! `cuecast serve` (tests/browser/cuecast.mjs), publishes with ffmpeg where it needs a stream,
//! and drives the viewer app and the studio in Debian's Chromium with playwright-core: clicks,
//! axe-core, console errors, screenshots to tests/artifacts/. The web build (web/dist) comes from
//! `.ci/setup` (`npm ci && npm run build` in web/).

mod common;

use std::path::Path;
use std::process::Command;

/// Runs `tests/browser/{script}` and fails with its output unless it exits 0.
fn run(script: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let browser = common::browser::scripts_and_pages();
    let output = Command::new("node")
        .arg(browser.join(script))
        .env("CUECAST_BIN", env!("CARGO_BIN_EXE_cuecast"))
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("run node (is Node.js installed?): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

#[test]
fn embed_relays_cart_events_to_a_shop_on_another_origin_and_takes_the_theme() {
    run("web-embed.mjs");
}

#[test]
fn home_page_live_now_personal_upcoming_carousel_and_replays() {
    run("web-home.mjs");
}

#[test]
fn watch_page_plays_shows_cues_chats_and_sells() {
    run("web-watch.mjs");
}

#[test]
fn watch_page_cue_logic() {
    run("web-watch-cues.mjs");
}

#[test]
fn studio_runs_a_show_from_keys_to_sales_and_moderation() {
    run("web-studio.mjs");
}
