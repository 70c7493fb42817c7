//! The pages in a real browser: each `tests/browser/web-*.mjs` script starts this build's
//! `cuecast serve` (tests/browser/cuecast.mjs), publishes with ffmpeg where it needs a stream,
//! and drives the viewer app and the studio in Debian's Chromium with playwright-core: clicks,
//! axe-core, console errors, screenshots to tests/artifacts/. The web build (web/dist) comes from
//! `.ci/setup` (`npm ci && npm run build` in web/).

use std::path::Path;
use std::process::Command;

/// Runs `tests/browser/{script}` and fails with its output unless it exits 0.
fn run(script: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let browser = root.join("tests/browser");
    assert!(
        browser.join("node_modules/playwright-core").is_dir(),
        "tests/browser/node_modules is missing: run `.ci/setup --test`"
    );
    assert!(
        root.join("web/dist/index.html").is_file(),
        "web/dist is missing: run `.ci/setup` (npm ci && npm run build in web/)"
    );
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
fn web_studio() {
    run("web-studio.mjs");
}
