//! `kill -9` mid-show (issue #31): a host's key publishes a live show while chat, cues and
//! shopper events flow; the process is killed with SIGKILL and started again on the same data
//! directory. Users, keys, catalog, shows, cues, chat history, events and the recording up to
//! its last complete segment are intact; the publisher reconnects with the same key and the same
//! show continues.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Publisher, Server, account, call, media_url, wait_for};
use cuecast::chat::client;
use cuecast::chat::proto::{ClientMsg, ServerMsg};
use serde_json::{Value, json};

const ADMIN: &str = "dev-admin-token";

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        // The show waits this long for its publisher after the restart.
        ("CUECAST_INGEST_RECONNECT_GRACE_S", "20"),
        ("CUECAST_SRT_ENABLED", "false"),
        ("CUECAST_RTMPS_ENABLED", "false"),
        // Chat flows at more than a viewer's default rate.
        ("CUECAST_CHAT_RATE_BURST", "100"),
        ("CUECAST_CHAT_RATE_PER_S", "50"),
    ]
}

fn get_json(server: &Server, path: &str, token: Option<&str>) -> Value {
    let (status, _, body) = call("GET", &server.url(path), token, None);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// Polls `path` until `accept` likes it.
fn wait_json(
    server: &Server,
    path: &str,
    token: Option<&str>,
    accept: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _, body) = call("GET", &server.url(path), token, None);
        if status == 200 && accept(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "GET {path}: {status} {body}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Posts `count` chat messages as `token` in `room` over QUIC and waits for every ack.
fn chat(server: &Server, room: &str, token: &str, prefix: &str, count: usize) {
    let http = server.url("");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (trust, port) = client::fetch_pins(&http).await.expect("pins");
        let addr = SocketAddr::from(([127, 0, 0, 1], port.expect("chat port")));
        let endpoint = client::endpoint(addr).expect("endpoint");
        let conn = client::connect(&endpoint, addr, "localhost", &trust)
            .await
            .expect("connect");
        let mut stream = client::ChatStream::join(conn, room, Some(token.to_string()), None)
            .await
            .expect("join");
        for i in 0..count {
            stream
                .send(&ClientMsg::Post {
                    text: format!("{prefix} {i}"),
                    link: None,
                    product: None,
                    nonce: Some(format!("n{i}")),
                })
                .await
                .expect("post");
        }
        let mut acked = 0;
        while acked < count {
            let msg = tokio::time::timeout(Duration::from_secs(15), stream.next())
                .await
                .expect("chat answer")
                .expect("read")
                .expect("open");
            match msg {
                ServerMsg::Ack { .. } => acked += 1,
                ServerMsg::Rejected { code, .. } => panic!("rejected: {code:?}"),
                _ => {}
            }
        }
    });
}

fn events(server: &Server, show: &str, visitor: &str) -> usize {
    let batch = json!({"events": [
        {"type": "view_show", "visitor": visitor, "show": show},
        {"type": "impression", "visitor": visitor, "show": show, "product": "sku-1"},
        {"type": "click", "visitor": visitor, "show": show, "product": "sku-1"},
    ]});
    let (status, _, body) = call(
        "POST",
        &server.url("/api/events"),
        None,
        Some(&batch.to_string()),
    );
    assert_eq!(status, 202, "{body}");
    body["accepted"].as_u64().expect("accepted") as usize
}

#[test]
fn kill_9_mid_show_keeps_everything_stored_and_the_show_continues() {
    let server = Server::start_with(&env());
    // Users and a host's key.
    let host = account(&server, "hana", &["send", "host"]);
    let viewer = account(&server, "vic", &["send"]);
    let (status, _, key) = call(
        "POST",
        &server.url("/api/keys"),
        Some(&host),
        Some(r#"{"name": "Main"}"#),
    );
    assert_eq!(status, 201, "{key}");
    let stream = key["stream"].as_str().expect("stream").to_string();
    let secret = key["key"].as_str().expect("key").to_string();
    // Catalog.
    let product = json!([{"id": "sku-1", "title": "Rose perfume 50 ml", "price": "49.00",
        "currency": "USD", "image_url": "https://shop.example/i/sku-1.jpg",
        "url": "https://shop.example/p/sku-1"}]);
    let (status, _, body) = call(
        "POST",
        &server.url("/api/catalog/products"),
        Some(ADMIN),
        Some(&product.to_string()),
    );
    assert_eq!(status, 200, "{body}");
    // A show on the host's stream, live once it publishes.
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let show = json!({"title": "Spring drop", "stream": stream, "scheduled_start": now,
        "cover_image_url": "https://shop.example/cover.jpg", "products": ["sku-1"]});
    let (status, _, show) = call(
        "POST",
        &server.url("/api/shows"),
        Some(&host),
        Some(&show.to_string()),
    );
    assert_eq!(status, 201, "{show}");
    let show_id = show["id"].as_str().expect("id").to_string();
    let mut publisher = Publisher::ffmpeg(&server.rtmp_url(&secret), 120);
    let video = media_url(&server, &stream, "source");
    wait_for(&video, Duration::from_secs(30), |t| {
        t.matches("#EXTINF").count() >= 3
    });
    let live = wait_json(&server, &format!("/api/shows/{show_id}"), None, |s| {
        s["state"] == "live"
    });

    // Chat, cues and events flowing.
    chat(&server, &stream, &viewer, "before the crash", 20);
    let cues_path = format!("/api/streams/{stream}/cues");
    let mut cue_ids = Vec::new();
    for i in 0..3 {
        let cue = json!({"kind": "product", "at": "now", "duration_s": 600,
            "product": {"id": "sku-1", "title": format!("Rose {i}"), "price": "49.00",
                        "currency": "USD", "image_url": "https://shop.example/i.jpg",
                        "cta": {"label": "Buy", "url": "https://shop.example/p"}}});
        let (status, _, body) = call(
            "POST",
            &server.url(&cues_path),
            Some(&host),
            Some(&cue.to_string()),
        );
        assert_eq!(status, 201, "{body}");
        cue_ids.push(body["id"].as_str().expect("id").to_string());
    }
    let accepted: usize = (0..10)
        .map(|i| events(&server, &show_id, &format!("v-{i}")))
        .sum();
    // A growing recording's listing is updated every 10 s (docs/recordings.md).
    let recording_path = format!("/api/recordings?stream={stream}");
    let recordings = wait_json(&server, &recording_path, Some(ADMIN), |r| {
        r["items"][0]["duration_s"].as_f64().unwrap_or(0.0) >= 4.0
    });
    let recording_id = recordings["items"][0]["id"]
        .as_str()
        .expect("recording id")
        .to_string();
    let catalog_before = get_json(&server, "/api/catalog/products/sku-1", None);
    let keys_before = get_json(&server, "/api/keys", Some(&host));
    let analytics_path = format!("/api/shows/{show_id}/analytics");
    let analytics_before = get_json(&server, &analytics_path, Some(ADMIN));
    let csv_path = server.url(&format!("/api/shows/{show_id}/chat.csv"));
    let chat_before = csv(&csv_path);
    assert_eq!(
        chat_before.matches("before the crash").count(),
        20,
        "{chat_before}"
    );

    // kill -9 while everything flows; the publisher loses its server.
    let server = server.kill_and_restart(&env());
    publisher.kill();
    let _ = publisher.wait(Duration::from_secs(5));

    // Stored state is intact.
    let (status, _, relogin) = call(
        "POST",
        &server.url("/api/login"),
        None,
        Some(r#"{"username": "hana", "password": "correct horse battery"}"#),
    );
    assert_eq!(status, 200, "login after restart: {relogin}");
    assert_eq!(get_json(&server, "/api/keys", Some(&host)), keys_before);
    assert_eq!(
        get_json(&server, "/api/catalog/products/sku-1", None),
        catalog_before
    );
    let analytics_after = get_json(&server, &analytics_path, Some(ADMIN));
    assert_eq!(analytics_after, analytics_before, "events after restart");
    assert!(accepted == 30);
    let chat_after = csv(&server.url(&format!("/api/shows/{show_id}/chat.csv")));
    assert_eq!(chat_after, chat_before, "chat history");

    // The publisher reconnects with the same key: the same show goes on, cues and all.
    let mut publisher = Publisher::ffmpeg(&server.rtmp_url(&secret), 60);
    let video = media_url(&server, &stream, "source");
    wait_for(&video, Duration::from_secs(30), |t| {
        t.matches("#EXTINF").count() >= 2
    });
    let again = get_json(&server, &format!("/api/shows/{show_id}"), None);
    assert_eq!(again["state"], "live", "{again}");
    assert_eq!(again["started_at"], live["started_at"]);
    let cues = get_json(&server, &cues_path, Some(&host));
    let listed: Vec<&str> = cues["cues"]
        .as_array()
        .expect("cues")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    for id in &cue_ids {
        assert!(listed.contains(&id.as_str()), "cue {id} lost: {cues}");
    }
    chat(&server, &stream, &viewer, "after the restart", 3);
    let chat_now = csv(&server.url(&format!("/api/shows/{show_id}/chat.csv")));
    assert_eq!(chat_now.matches("before the crash").count(), 20);
    assert_eq!(chat_now.matches("after the restart").count(), 3);

    // The recording cut by the crash: finished by the restart, whole to its last segment.
    let recording = wait_json(
        &server,
        &format!("/api/recordings/{recording_id}"),
        Some(ADMIN),
        |r| r["state"] == "cut_short",
    );
    assert!(
        recording["duration_s"].as_f64().unwrap_or(0.0) >= 4.0,
        "{recording}"
    );
    let vod = server.url(&format!("/vod/{recording_id}/index.m3u8"));
    let (status, _, _) = common::get(&vod);
    assert_eq!(status, 200);
    publisher.kill();
}

/// The show's chat export.
fn csv(url: &str) -> String {
    let response = reqwest::blocking::Client::new()
        .get(url)
        .bearer_auth(ADMIN)
        .timeout(Duration::from_secs(10))
        .send()
        .expect("chat.csv");
    assert_eq!(response.status().as_u16(), 200);
    response.text().expect("csv")
}
