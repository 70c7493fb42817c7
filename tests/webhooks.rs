//! Signed webhooks end to end: a real server fed by ffmpeg over RTMP delivers its events to a
//! small HTTP receiver on 127.0.0.1 (so `webhooks.allow_private = true`), which checks every
//! Standard Webhooks signature itself (ring + base64, not the server's code), sees the events in
//! order, and gets a retried delivery after answering 500 twice.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Publisher, Server, call, media_url, wait_for};

const TOKEN: &str = "dev-admin-token";
/// 32 key bytes, `whsec_` + base64.
const SECRET: &str = "whsec_C2FtcGxlLXNpZ25pbmcta2V5LWZvci10ZXN0cy0xMjM=";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: i64,
    signature: String,
    body: Vec<u8>,
    /// The status it answered.
    answered: u16,
}

impl Received {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    fn kind(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_string()
    }

    /// Standard Webhooks verification, written out: HMAC-SHA256 keyed by the base64 after
    /// `whsec_`, over "{id}.{timestamp}.{body}", compared with each `v1,` entry.
    fn signed_with(&self, secret: &str) -> bool {
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap())
            .unwrap();
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
        let mut message = format!("{}.{}.", self.id, self.timestamp).into_bytes();
        message.extend_from_slice(&self.body);
        let expected = STANDARD.encode(ring::hmac::sign(&key, &message).as_ref());
        self.signature
            .split(' ')
            .any(|entry| entry.strip_prefix("v1,") == Some(expected.as_str()))
    }
}

/// A minimal HTTP/1.1 receiver: answers each request with the next status of `statuses` (200
/// once they run out) and records it.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(statuses: Vec<u16>) -> Receiver {
        let statuses = Mutex::new(statuses.into_iter());
        Receiver::answering(move |_| {
            let status = statuses.lock().unwrap().next().unwrap_or(200);
            (status, String::new(), Duration::ZERO)
        })
    }

    /// A receiver whose answer to each request is `answer(request)`: (status, body, delay).
    fn answering(
        answer: impl Fn(&Received) -> (u16, String, Duration) + Send + 'static,
    ) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                // Keep-alive: several requests may come on one connection.
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let mut headers = std::collections::HashMap::new();
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).unwrap();
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        let (name, value) = header.split_once(':').unwrap();
                        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
                    }
                    let length: usize = headers["content-length"].parse().unwrap();
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let mut request = Received {
                        id: headers.get("webhook-id").cloned().unwrap_or_default(),
                        timestamp: headers
                            .get("webhook-timestamp")
                            .and_then(|t| t.parse().ok())
                            .unwrap_or_default(),
                        signature: headers
                            .get("webhook-signature")
                            .cloned()
                            .unwrap_or_default(),
                        body,
                        answered: 0,
                    };
                    let (status, reply, delay) = answer(&request);
                    request.answered = status;
                    log.lock().unwrap().push(request);
                    std::thread::sleep(delay);
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
                        reply.len()
                    );
                    if stream.write_all(response.as_bytes()).is_err() {
                        break;
                    }
                }
            }
        });
        Receiver { url, received }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what was received.
    fn wait(&self, timeout: Duration, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received();
            if done(&received) {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "receiver did not get what was expected: {:?}",
                received.iter().map(Received::kind).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Waits until `/metrics` has `line` (the server counts a delivery after the answer arrives).
fn wait_metric(server: &Server, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = common::text(&server.url("/metrics"));
        if metrics.lines().any(|l| l == line) {
            return;
        }
        assert!(Instant::now() < deadline, "no `{line}` in:\n{metrics}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn endpoints(url: &str, events: &str) -> String {
    format!(r#"[{{url="{url}", secret="{SECRET}", events={events}}}]"#)
}

#[test]
fn a_publish_delivers_signed_events_in_order() {
    let receiver = Receiver::start(vec![]);
    let endpoints = endpoints(&receiver.url, "[]");
    let server = Server::start_with(&[
        ("CUECAST_WEBHOOKS_ENDPOINTS", &endpoints),
        ("CUECAST_WEBHOOKS_ALLOW_PRIVATE", "true"),
    ]);
    let mut publisher = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 6);
    wait_for(
        &media_url(&server, "demo", "source"),
        Duration::from_secs(20),
        |t| t.contains("#EXTINF"),
    );
    let (status, _, cue) = call(
        "POST",
        &server.url("/api/streams/demo/cues"),
        Some(TOKEN),
        Some(
            r#"{"kind": "product", "at": "now", "duration_s": 5,
                 "product": {"id": "sku-1", "title": "Rose perfume", "price": "49.00",
                             "currency": "USD", "image_url": "https://shop.example/i.jpg",
                             "cta": {"label": "Buy", "url": "https://shop.example/p"}}}"#,
        ),
    );
    assert_eq!(status, 201, "{cue}");
    publisher.wait(Duration::from_secs(30));
    let received = receiver.wait(Duration::from_secs(20), |r| {
        r.iter().any(|r| r.kind() == "recording.ready")
    });
    let kinds: Vec<String> = received.iter().map(Received::kind).collect();
    assert_eq!(
        kinds,
        [
            "stream.started",
            "cue.fired",
            "stream.ended",
            "recording.ready"
        ],
        "{kinds:?}"
    );
    let now = chrono::Utc::now().timestamp();
    for r in &received {
        assert!(
            r.signed_with(SECRET),
            "bad signature on {}: {}",
            r.id,
            r.signature
        );
        assert!(!r.signed_with("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        assert!((now - r.timestamp).abs() < 120, "timestamp {}", r.timestamp);
        let body = r.json();
        assert_eq!(body["id"], r.id.as_str(), "webhook-id is the event id");
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(body["data"]["stream"], "demo");
    }
    let session = received[0].json()["data"]["session"].clone();
    assert!(session.is_string());
    assert_eq!(received[2].json()["data"]["session"], session);
    let fired = received[1].json();
    assert_eq!(fired["data"]["cue"], cue["id"]);
    assert_eq!(fired["data"]["kind"], "product");
    assert_eq!(fired["data"]["source"], "api");
    // The recording of the session, finished and playable at its playlist.
    let ready = received[3].json();
    assert_eq!(ready["data"]["session"], session);
    assert_eq!(ready["data"]["state"], "complete");
    let recording = ready["data"]["recording"].as_str().unwrap().to_string();
    assert_eq!(
        ready["data"]["playlist"],
        format!("/vod/{recording}/index.m3u8").as_str()
    );
    assert!(
        ready["data"]["duration_s"].as_f64().unwrap() > 1.0,
        "{ready}"
    );
    let vod = common::text(&server.url(&format!("/vod/{recording}/index.m3u8")));
    assert!(vod.starts_with("#EXTM3U"), "{vod}");
    wait_metric(
        &server,
        r#"cuecast_webhook_deliveries_total{endpoint="0",host="127.0.0.1",result="delivered"} 4"#,
    );
}

#[test]
fn a_failing_receiver_gets_the_event_again_until_it_accepts() {
    let receiver = Receiver::start(vec![500, 503]);
    let endpoints = endpoints(&receiver.url, r#"["stream.started"]"#);
    let server = Server::start_with(&[
        ("CUECAST_WEBHOOKS_ENDPOINTS", &endpoints),
        ("CUECAST_WEBHOOKS_ALLOW_PRIVATE", "true"),
        ("CUECAST_WEBHOOKS_RETRY_INITIAL_MS", "100"),
    ]);
    let mut publisher = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 3);
    let received = receiver.wait(Duration::from_secs(30), |r| {
        r.iter().any(|r| r.answered == 200)
    });
    publisher.wait(Duration::from_secs(30));
    assert_eq!(
        received.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [500, 503, 200]
    );
    assert!(
        received.iter().all(|r| r.id == received[0].id),
        "one event, retried"
    );
    assert!(received.iter().all(|r| r.kind() == "stream.started"));
    assert!(received.iter().all(|r| r.signed_with(SECRET)));
    let metrics = common::text(&server.url("/metrics"));
    assert!(
        metrics
            .contains(r#"cuecast_webhook_failed_attempts_total{endpoint="0",host="127.0.0.1"} 2"#),
        "{metrics}"
    );
}

#[test]
fn a_private_webhook_target_fails_the_config_unless_allowed() {
    let data = tempfile::tempdir().unwrap();
    for (url, allowed) in [
        ("http://127.0.0.1/hook", false),
        ("http://169.254.169.254/latest/meta-data/", false),
        ("http://169.254.169.254/latest/meta-data/", true),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_cuecast"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg("check-config")
            .env("CUECAST_SERVER_DATA_DIR", data.path())
            .env("CUECAST_WEBHOOKS_ENDPOINTS", endpoints(url, "[]"))
            .env("CUECAST_WEBHOOKS_ALLOW_PRIVATE", allowed.to_string())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if allowed {
            assert!(output.status.success(), "{url}: {stderr}");
        } else {
            assert_eq!(output.status.code(), Some(2), "{url}: {stderr}");
            assert!(stderr.contains("webhooks.endpoints[0].url"), "{stderr}");
            assert!(stderr.contains("allow_private"), "{stderr}");
        }
    }
}

/// A server whose admission hook answers `body` after `delay`, with `on_timeout`.
fn with_hook(body: &'static str, delay: Duration, on_timeout: &str) -> (Receiver, Server) {
    let hook = Receiver::answering(move |_| (200, body.to_string(), delay));
    let server = Server::start_with(&[
        ("CUECAST_WEBHOOKS_ALLOW_PRIVATE", "true"),
        ("CUECAST_WEBHOOKS_ADMISSION_URL", &hook.url),
        ("CUECAST_WEBHOOKS_ADMISSION_SECRET", SECRET),
        ("CUECAST_WEBHOOKS_ADMISSION_TIMEOUT_MS", "500"),
        (
            "CUECAST_WEBHOOKS_ADMISSION_ON_TIMEOUT",
            &format!("\"{on_timeout}\""),
        ),
    ]);
    (hook, server)
}

/// Whether an ffmpeg publish of `key` for 2 s is refused (ffmpeg fails, nothing goes live).
fn publish_refused(server: &Server, key: &str) -> bool {
    let mut publisher = Publisher::ffmpeg(&server.rtmp_url(key), 2);
    let status = publisher
        .wait(Duration::from_secs(30))
        .expect("ffmpeg ends");
    !status.success()
}

#[test]
fn a_deny_hook_refuses_the_publisher_with_its_reason() {
    let (hook, server) = with_hook(
        r#"{"allow": false, "reason": "no show booked now"}"#,
        Duration::ZERO,
        "allow",
    );
    assert!(publish_refused(&server, "demo-key"), "{}", server.log());
    let log = common::wait_log(
        &server,
        "refused by the admission hook",
        Duration::from_secs(5),
    );
    assert!(log.contains("no show booked now"), "{log}");
    let asked = hook.received();
    assert!(!asked.is_empty());
    let request = asked[0].json();
    assert_eq!(request["key"], "demo-key");
    assert_eq!(request["stream"], "demo");
    assert_eq!(request["protocol"], "rtmp");
    assert!(request["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(asked[0].signed_with(SECRET));
    let (_, _, streams) = call("GET", &server.url("/api/streams"), Some(TOKEN), None);
    assert!(!streams.to_string().contains(r#""live":true"#), "{streams}");
}

#[test]
fn an_allow_hook_admits_and_may_map_an_unknown_key_to_a_stream() {
    let (hook, server) = with_hook(
        r#"{"allow": true, "stream": "second"}"#,
        Duration::ZERO,
        "deny",
    );
    let _publisher = Publisher::ffmpeg(&server.rtmp_url("issued-by-the-shop"), 4);
    wait_for(
        &media_url(&server, "second", "source"),
        Duration::from_secs(20),
        |t| t.contains("#EXTINF"),
    );
    assert_eq!(hook.received()[0].json()["key"], "issued-by-the-shop");
    assert!(hook.received()[0].json()["stream"].is_null());
}

/// An ffmpeg SRT publish of `key` (the `#!::` stream id form) for `seconds`.
fn srt_publisher(server: &Server, key: &str, seconds: u32) -> Publisher {
    let stream_id = format!("#!::r=live/{key},m=publish");
    Publisher::ffmpeg_srt(&server.srt_url(), &stream_id, &[], seconds, "libx264")
}

#[test]
fn a_deny_hook_refuses_an_srt_caller_at_handshake_with_a_reject_code() {
    let (hook, server) = with_hook(
        r#"{"allow": false, "reason": "no show booked now"}"#,
        Duration::ZERO,
        "allow",
    );
    let mut publisher = srt_publisher(&server, "demo-key", 10);
    let status = publisher
        .wait(Duration::from_secs(20))
        .expect("ffmpeg is refused, not left running");
    assert!(!status.success(), "{}", server.log());
    let log = common::wait_log(
        &server,
        "refused by the admission hook: no show booked now",
        Duration::from_secs(5),
    );
    let line = log
        .lines()
        .find(|l| l.contains("refused by the admission hook"))
        .unwrap_or_default();
    assert!(line.contains("SRT caller rejected"), "{line}");
    assert!(
        line.contains("SRT_REJX_FORBIDDEN") && line.contains("1403"),
        "{line}"
    );
    assert!(!line.contains("demo-key"), "the key is not logged: {line}");
    let request = hook.received()[0].json();
    assert_eq!(request["key"], "demo-key");
    assert_eq!(request["stream"], "demo");
    assert_eq!(request["protocol"], "srt");
    assert!(hook.received()[0].signed_with(SECRET));
    let (_, _, streams) = call("GET", &server.url("/api/streams"), Some(TOKEN), None);
    assert!(!streams.to_string().contains(r#""live":true"#), "{streams}");
}

#[test]
fn an_allow_hook_maps_an_unknown_srt_key_to_a_stream() {
    let (hook, server) = with_hook(
        r#"{"allow": true, "stream": "second"}"#,
        Duration::ZERO,
        "deny",
    );
    let _publisher = srt_publisher(&server, "issued-by-the-shop", 6);
    wait_for(
        &media_url(&server, "second", "source"),
        Duration::from_secs(20),
        |t| t.contains("#EXTINF"),
    );
    let request = hook.received()[0].json();
    assert_eq!(request["key"], "issued-by-the-shop");
    assert!(request["stream"].is_null());
    assert_eq!(request["protocol"], "srt");
    assert!(
        server
            .log()
            .contains("SRT publish admitted by the admission hook")
    );
}

#[test]
fn a_hook_that_times_out_follows_on_timeout() {
    let slow = Duration::from_secs(3);
    let (_hook, server) = with_hook(r#"{"allow": true}"#, slow, "deny");
    assert!(publish_refused(&server, "demo-key"), "{}", server.log());
    common::wait_log(&server, "did not answer in time", Duration::from_secs(5));
    drop(server);
    let (_hook, server) = with_hook(r#"{"allow": false}"#, slow, "allow");
    let _publisher = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 4);
    wait_for(
        &media_url(&server, "demo", "source"),
        Duration::from_secs(20),
        |t| t.contains("#EXTINF"),
    );
}

#[test]
fn a_show_going_live_is_announced() {
    let receiver = Receiver::start(vec![]);
    let endpoints = endpoints(&receiver.url, r#"["show.state_changed"]"#);
    let server = Server::start_with(&[
        ("CUECAST_WEBHOOKS_ENDPOINTS", &endpoints),
        ("CUECAST_WEBHOOKS_ALLOW_PRIVATE", "true"),
    ]);
    let creds = r#"{"username": "alice", "password": "correct horse battery"}"#;
    let (status, _, _) = call("POST", &server.url("/api/signup"), None, Some(creds));
    assert_eq!(status, 201);
    let grant = r#"{"capabilities": ["send", "host"]}"#;
    let url = server.url("/api/users/alice/capabilities");
    let (status, _, _) = call("PUT", &url, Some(TOKEN), Some(grant));
    assert_eq!(status, 200);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let body = format!(
        r#"{{"title": "Spring fragrances", "stream": "demo", "host": "alice", "scheduled_start": "{now}"}}"#
    );
    let (status, _, show) = call("POST", &server.url("/api/shows"), Some(TOKEN), Some(&body));
    assert_eq!(status, 201, "{show}");
    let mut publisher = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 3);
    let received = receiver.wait(Duration::from_secs(30), |r| !r.is_empty());
    publisher.wait(Duration::from_secs(30));
    let event = received[0].json();
    assert_eq!(event["type"], "show.state_changed");
    assert_eq!(event["data"]["show"], show["id"]);
    assert_eq!(event["data"]["stream"], "demo");
    assert_eq!(event["data"]["from"], "scheduled");
    assert_eq!(event["data"]["to"], "live");
    assert!(received[0].signed_with(SECRET));
}
