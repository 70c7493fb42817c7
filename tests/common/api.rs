//! Calling the JSON API.

use std::time::Duration;

/// (status, headers, JSON body) of an API call.
pub fn call(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let client = reqwest::blocking::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client.request(method, url).timeout(Duration::from_secs(20));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, headers, json)
}

/// Signs `user` up on `server`, grants `caps` with the admin token, and returns a login token
/// carrying them.
pub fn account(server: &super::Server, user: &str, caps: &[&str]) -> String {
    let creds = serde_json::json!({ "username": user, "password": "correct horse battery" });
    let creds = creds.to_string();
    let (status, _, _) = call("POST", &server.url("/api/signup"), None, Some(&creds));
    assert_eq!(status, 201, "signup {user}");
    let url = server.url(&format!("/api/users/{user}/capabilities"));
    let grant = serde_json::json!({ "capabilities": caps }).to_string();
    let (status, _, _) = call("PUT", &url, Some("dev-admin-token"), Some(&grant));
    assert_eq!(status, 200, "grant {caps:?} to {user}");
    let (status, _, body) = call("POST", &server.url("/api/login"), None, Some(&creds));
    assert_eq!(status, 200, "login {user}");
    body["token"].as_str().expect("token").to_string()
}

/// The recordings `server` lists for `query` (`stream=demo`, `show=ID`), newest first.
pub fn recordings(server: &super::Server, query: &str) -> Vec<serde_json::Value> {
    let (status, _, body) = call(
        "GET",
        &server.url(&format!("/api/recordings?{query}")),
        None,
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().expect("items").clone()
}

/// Polls [`recordings`] of `query` until `accept` likes them, or panics after `timeout` (with
/// the server's log).
pub fn wait_recordings(
    server: &super::Server,
    query: &str,
    timeout: Duration,
    accept: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let items = recordings(server, query);
        if accept(&items) {
            return items;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "recordings of {query} never as expected: {items:#?}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Show `show` as `server` answers it once its `state` is `state` (polled; panics with the last
/// answer after `timeout`).
pub fn wait_show_state(
    server: &super::Server,
    show: &str,
    state: &str,
    timeout: Duration,
) -> serde_json::Value {
    let url = server.url(&format!("/api/shows/{show}"));
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let (_, _, body) = call("GET", &url, None, None);
        if body["state"] == state {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "show {show} never {state}: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
