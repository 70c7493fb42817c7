//! The viewer app across three nodes (issue #30, docs/scaling.md "Stream ownership and
//! playback"): a private PostgreSQL (the shared store) and Redis (leases, chat), and three
//! `cuecast serve` nodes started by `tests/browser/web-cluster-watch.mjs`. ffmpeg publishes to
//! node A; the real watch page (`/shows/{id}`, web/dist) plays on node B; a product cue POSTed to
//! node C shows as the banner on B's page at the cue's frame; "N watching" counts the viewers of
//! every node. Screenshot: tests/artifacts/cluster-viewer-banner.png.

mod common;

use std::path::Path;
use std::process::Command;

use common::services::{Postgres, Redis};

#[test]
fn the_watch_page_on_a_non_owner_node_shows_a_cue_posted_on_a_third_node_at_its_frame() {
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
    let pg = Postgres::start();
    let store = pg.create_database("cluster_web");
    let redis = Redis::start();
    let output = Command::new("node")
        .arg(browser.join("web-cluster-watch.mjs"))
        .env("CUECAST_BIN", env!("CARGO_BIN_EXE_cuecast"))
        .env("WEB_CLUSTER_STORE_URL", &store)
        .env("WEB_CLUSTER_REDIS_URL", redis.url())
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("run node (is Node.js installed?): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "web-cluster-watch.mjs failed ({}):\n{stdout}\n{stderr}\n--- PostgreSQL log (tail) ---\n{}",
        output.status,
        tail(&pg.log(), 30)
    );
    assert!(stdout.contains("B: banner at PDT"), "{stdout}");
    println!("{stdout}");
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
