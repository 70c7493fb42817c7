//! The web pages' serving (src/http/pages.rs), against a small build written by the test (the
//! real build's pages are driven in Chromium by tests/web.rs): each route gets its HTML entry
//! point with the shop's theme from `[web]` written in and a framing policy (only the embed may
//! be framed by other sites), hashed assets are immutable, the build's
//! top-level files are served and nothing outside the build is, and a server without a build
//! answers the pages with 503 and how to build them while the API keeps working.

mod common;

use std::fs;

use common::{Server, get};

/// A build as vite lays it out: HTML entry points with the site marker, assets/, public files.
fn fake_build() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for page in ["index", "show", "studio"] {
        let html = format!(
            "<!doctype html><html><head><!--cuecast:site--><title>{page}</title></head>\
             <body data-page=\"{page}\"></body></html>"
        );
        fs::write(dir.path().join(format!("{page}.html")), html).expect("write page");
    }
    fs::create_dir(dir.path().join("assets")).expect("assets");
    fs::write(dir.path().join("assets/app-0123abcd.js"), "console.log(1)").expect("asset");
    fs::write(dir.path().join("favicon.svg"), "<svg/>").expect("favicon");
    dir
}

fn text(server: &Server, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let (status, headers, body) = get(&server.url(path));
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn pages_are_served_with_the_shops_theme_and_nothing_outside_the_build() {
    let build = fake_build();
    let dir = build.path().to_str().expect("utf-8 path");
    let server = Server::start_with(&[
        ("CUECAST_WEB_DIR", dir),
        ("CUECAST_WEB_SHOP_NAME", "Maison </script> Lune"),
        ("CUECAST_WEB_ACCENT", "#0a7d5a"),
        ("CUECAST_WEB_EMBED_ANCESTORS", r#"["https://shop.example"]"#),
    ]);

    for (path, page) in [
        ("/", "index"),
        ("/shows/show-0011223344556677", "show"),
        ("/embed/shows/show-0011223344556677", "show"),
        ("/studio", "studio"),
        ("/studio/shows/show-1", "studio"),
    ] {
        let (status, headers, body) = text(&server, path);
        assert_eq!(status, 200, "{path}: {body}");
        assert!(
            body.contains(&format!("data-page=\"{page}\"")),
            "{path}: {body}"
        );
        assert_eq!(headers["cache-control"], "no-cache", "{path}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(body.contains("--accent:#0a7d5a"), "{path}: {body}");
        // The shop name is data, never markup: `</script>` cannot close the JSON's element.
        assert!(
            body.contains("Maison \\u003c/script> Lune"),
            "{path}: {body}"
        );
        assert!(!body.contains("<!--cuecast:site-->"), "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        // Only the embed may be framed by other sites (the config's embed_ancestors).
        let csp = headers["content-security-policy"].to_str().unwrap();
        if path.starts_with("/embed/") {
            assert_eq!(csp, "frame-ancestors https://shop.example", "{path}");
            assert!(headers.get("x-frame-options").is_none(), "{path}");
        } else {
            assert_eq!(csp, "frame-ancestors 'self'", "{path}");
            assert_eq!(headers["x-frame-options"], "SAMEORIGIN", "{path}");
        }
    }

    let (status, headers, body) = text(&server, "/assets/app-0123abcd.js");
    assert_eq!(status, 200);
    assert_eq!(body, "console.log(1)");
    let cache = headers["cache-control"].to_str().unwrap();
    assert!(cache.contains("immutable"), "{cache}");
    let (status, headers, _) = text(&server, "/favicon.svg");
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "image/svg+xml");

    // Nothing outside the build, and no HTML or unknown kinds through the top-level route.
    for path in [
        "/assets/../index.html",
        "/assets/..%2f..%2fCargo.toml",
        "/assets/missing-0000.js",
        "/..%2fCargo.toml",
        "/index.html",
        "/Cargo.toml",
        "/.env",
    ] {
        let (status, _, body) = text(&server, path);
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.contains("[package]"), "{path}");
    }
    // The API and the service routes still answer beside the pages.
    assert_eq!(get(&server.url("/healthz")).0, 200);
    assert_eq!(get(&server.url("/api/shows")).0, 200);
}

#[test]
fn without_a_build_the_pages_say_how_to_build_them() {
    let empty = tempfile::tempdir().expect("tempdir");
    let dir = empty.path().to_str().expect("utf-8 path");
    let server = Server::start_with(&[("CUECAST_WEB_DIR", dir)]);
    let (status, headers, body) = text(&server, "/");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("npm ci"), "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(get(&server.url("/api/shows")).0, 200);
}

#[test]
fn a_bad_theme_is_refused_at_start_naming_the_key() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cuecast"))
        .args(["check-config"])
        .env("CUECAST_WEB_ACCENT", "red;}body{display:none")
        .output()
        .expect("run cuecast");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("web.accent"), "{stderr}");
}
