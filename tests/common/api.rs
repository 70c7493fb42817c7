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
