//! The OpenAPI document on a real server: served at `/api/openapi.json`, and every operation it
//! lists is a route the server takes (not the fallback's 404, not a 405), answering a request
//! without a token or a body with a status the document lists and a JSON error body; a path or
//! query that does not decode gets the JSON error too. (schemathesis fuzzes the same document:
//! tests/api/schemathesis.sh.)

mod common;

use common::{Server, call};

/// The fallback's message: no route matched.
const NO_ROUTE: &str = "no such resource";

#[test]
fn every_documented_operation_is_routed_and_answers_as_documented() {
    let server = Server::start_with(&[("CUECAST_SRT_ENABLED", "false")]);
    let (status, headers, document) = call("GET", &server.url("/api/openapi.json"), None, None);
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().expect("paths");
    assert!(paths.len() >= 17, "{} paths", paths.len());
    let mut operations = 0;
    for (path, item) in paths {
        // Path parameters get a value no resource has.
        let concrete: String = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "nothing-here"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for (method, operation) in item.as_object().expect("path item") {
            operations += 1;
            let name = format!("{} {path}", method.to_ascii_uppercase());
            let (status, headers, body) = call(
                &method.to_ascii_uppercase(),
                &server.url(&concrete),
                None,
                None,
            );
            assert_ne!(status, 405, "{name}: not routed for this method");
            assert_ne!(body["error"], NO_ROUTE, "{name}: not routed");
            let documented = operation["responses"].as_object().expect("responses");
            assert!(
                documented.contains_key(&status.to_string()),
                "{name}: answered {status}, documented {:?}: {body}",
                documented.keys().collect::<Vec<_>>()
            );
            if status >= 400 {
                assert_eq!(headers["content-type"], "application/json", "{name}");
                assert!(body["error"].is_string(), "{name}: {body}");
            }
        }
    }
    assert!(operations >= 25, "{operations} operations");

    // Axum's own rejections (before a handler runs) are JSON errors as well.
    for (method, path) in [
        ("GET", "/api/shows/%FF"),
        ("GET", "/api/catalog/products/%FF%FE"),
        ("PATCH", "/api/openapi.json"),
    ] {
        let (status, headers, body) = call(method, &server.url(path), None, None);
        assert!((400..500).contains(&status), "{method} {path}: {status}");
        assert_eq!(
            headers["content-type"], "application/json",
            "{method} {path}"
        );
        assert!(body["error"].is_string(), "{method} {path}: {body}");
    }
    let (status, headers, _) = call("PATCH", &server.url("/api/openapi.json"), None, None);
    assert_eq!(status, 405);
    assert_eq!(headers["allow"], "GET,HEAD");
}
