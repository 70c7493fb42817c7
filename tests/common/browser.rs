//! What the browser tests need installed: `tests/browser/node_modules` (playwright-core drives
//! Chromium, hls.js plays) from `.ci/setup --test`, and for the pages the web build
//! (`web/dist`) from `.ci/setup`.

use std::path::{Path, PathBuf};

/// The repository root.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/browser`, the scripts' directory, once its `node_modules` are installed (fails the
/// test naming the command that installs them).
pub fn scripts() -> PathBuf {
    let dir = root().join("tests/browser");
    assert!(
        dir.join("node_modules/hls.js").is_dir()
            && dir.join("node_modules/playwright-core").is_dir(),
        "tests/browser/node_modules is missing: run `.ci/setup --test` (or `npm ci` in tests/browser)"
    );
    dir
}

/// [`scripts`], and the web build the pages are served from (`web/dist`).
pub fn scripts_and_pages() -> PathBuf {
    let dir = scripts();
    assert!(
        root().join("web/dist/index.html").is_file(),
        "web/dist is missing: run `.ci/setup` (npm ci && npm run build in web/)"
    );
    dir
}
