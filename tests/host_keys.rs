//! Hosts' stream keys end to end: a host creates a key through the API, ffmpeg publishes with it
//! over RTMP (as OBS would), SRT and RTMPS, and the key's stream works like a configured one
//! (HLS, recording, chat room, cues, shows); rotating refuses the old key, revoking refuses the key and
//! disconnects its live publisher; another host gets 403 on the key, the stream's cues, rundown
//! and shows; the configured keys keep publishing; keys survive a restart.

mod common;

use std::time::{Duration, Instant};

use common::{Publisher, Server, account, media_url, wait_for};
use serde_json::{Value, json};

const ADMIN: &str = "dev-admin-token";
const READY: Duration = Duration::from_secs(30);

/// A JSON request; (status, body).
fn call(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let (status, _, body) = common::call(method, url, token, body.as_deref());
    (status, body)
}

/// Whether stream `name` has a publisher now (admin's `/api/streams`).
fn is_live(server: &Server, name: &str) -> bool {
    let (status, body) = call("GET", &server.url("/api/streams"), Some(ADMIN), None);
    assert_eq!(status, 200, "{body}");
    body["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .any(|s| s["name"] == name && s["live"] == true)
}

fn wait_live(server: &Server, name: &str, live: bool, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while is_live(server, name) != live {
        assert!(
            Instant::now() < deadline,
            "{name} live={} after {timeout:?}:\n{}",
            !live,
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An RTMP publish of `key` for 3 s is refused (ffmpeg fails).
fn rtmp_refused(server: &Server, key: &str) -> bool {
    let mut publisher = Publisher::ffmpeg(&server.rtmp_url(key), 3);
    let status = publisher
        .wait(Duration::from_secs(30))
        .expect("ffmpeg ends");
    !status.success()
}

fn srt_publisher(server: &Server, key: &str, seconds: u32) -> Publisher {
    let stream_id = format!("#!::r=live/{key},m=publish");
    Publisher::ffmpeg_srt(&server.srt_url(), &stream_id, &[], seconds, "libx264")
}

#[test]
fn a_hosts_key_publishes_its_own_stream_until_rotated_or_revoked() {
    let server = Server::start();
    let alice = account(&server, "alice", &["send", "host"]);
    let bob = account(&server, "bob", &["send", "host"]);
    let viewer = account(&server, "vic", &["send"]);
    let keys = server.url("/api/keys");

    // What OBS needs.
    let (status, ingest) = call("GET", &server.url("/api/ingest"), None, None);
    assert_eq!(status, 200, "{ingest}");
    assert_eq!(
        ingest["rtmp"],
        format!("rtmp://127.0.0.1:{}/live", server.rtmp_port)
    );
    assert_eq!(
        ingest["srt"],
        format!("srt://127.0.0.1:{}", server.srt_port)
    );
    assert!(ingest["rtmps"].as_str().unwrap().starts_with("rtmps://"));
    assert_eq!(
        ingest["srt_streamid_template"],
        "#!::r=live/{key},m=publish"
    );

    // Who may create keys.
    let (status, _) = call("POST", &keys, None, Some(json!({"name": "x"})));
    assert_eq!(status, 401);
    let (status, _) = call("POST", &keys, Some(&viewer), Some(json!({"name": "x"})));
    assert_eq!(status, 403);
    let (status, body) = call("POST", &keys, Some(&alice), Some(json!({"name": " "})));
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("name")),
        "{body}"
    );
    let (status, body) = call(
        "POST",
        &keys,
        Some(&alice),
        Some(json!({"name": "x", "stream": "demo"})),
    );
    assert_eq!(
        (status, body["field"].as_str()),
        (409, Some("stream")),
        "{body}"
    );

    let (status, created) = call(
        "POST",
        &keys,
        Some(&alice),
        Some(json!({"name": "Main studio"})),
    );
    assert_eq!(status, 201, "{created}");
    let stream = created["stream"].as_str().expect("stream").to_string();
    assert_eq!(stream, "alice-main-studio");
    assert_eq!(created["host"], "alice");
    let id = created["id"].as_str().expect("id").to_string();
    let key = created["key"].as_str().expect("key").to_string();
    assert!(key.starts_with("cck_") && key.len() > 40, "{key}");
    assert!(key.starts_with(created["prefix"].as_str().unwrap()));
    assert!(created["revoked_at"].is_null() && created["last_used_at"].is_null());

    let (status, list) = call("GET", &keys, Some(&alice), None);
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(
        list["items"][0].get("key").is_none(),
        "never listed: {list}"
    );
    let (_, list) = call("GET", &keys, Some(&bob), None);
    assert_eq!(list["items"], json!([]));
    let (status, _) = call("GET", &format!("{keys}?host=alice"), Some(&bob), None);
    assert_eq!(status, 403);
    let (_, list) = call("GET", &format!("{keys}?host=alice"), Some(ADMIN), None);
    assert_eq!(list["items"][0]["id"], id.as_str());

    let (_, streams) = call("GET", &server.url("/api/streams"), Some(ADMIN), None);
    let listed = streams["streams"].as_array().expect("streams");
    assert!(
        listed
            .iter()
            .any(|s| s["name"] == stream.as_str() && s["owner"] == "alice"),
        "{streams}"
    );
    assert!(
        listed
            .iter()
            .any(|s| s["name"] == "demo" && s["owner"].is_null())
    );

    // ffmpeg publishes with the key; a configured key at the same time.
    let _publisher = Publisher::ffmpeg(&server.rtmp_url(&key), 6);
    let _configured = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 6);
    wait_for(&media_url(&server, &stream, "source"), READY, |t| {
        t.contains("#EXTINF")
    });
    wait_for(&media_url(&server, "demo", "source"), READY, |t| {
        t.contains("#EXTINF")
    });
    let log = server.log();
    assert!(!log.contains(&key), "the key is never logged");
    let history = server.url(&format!("/api/chat/{stream}/history"));
    let (status, body) = call("GET", &history, None, None);
    assert_eq!(status, 200, "the stream's chat room exists: {body}");
    let (_, list) = call("GET", &keys, Some(&alice), None);
    assert!(list["items"][0]["last_used_at"].is_string(), "{list}");

    // The stream is alice's: cues, rundown and shows.
    let cues = server.url(&format!("/api/streams/{stream}/cues"));
    let rundown = server.url(&format!("/api/streams/{stream}/rundown"));
    for url in [&cues, &rundown] {
        assert_eq!(call("GET", url, Some(&alice), None).0, 200, "{url}");
        assert_eq!(call("GET", url, Some(ADMIN), None).0, 200, "{url}");
        assert_eq!(call("GET", url, Some(&bob), None).0, 403, "{url}");
        assert_eq!(call("GET", url, None, None).0, 401, "{url}");
    }
    let (status, _) = call("PUT", &rundown, Some(&bob), Some(json!({"items": []})));
    assert_eq!(status, 403);
    let show = |stream: &str| {
        json!({
            "title": "Spring drop",
            "stream": stream,
            "scheduled_start": (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339(),
        })
    };
    let shows = server.url("/api/shows");
    let (status, body) = call("POST", &shows, Some(&bob), Some(show(&stream)));
    assert_eq!(status, 403, "{body}");
    let (status, body) = call("POST", &shows, Some(&alice), Some(show(&stream)));
    assert_eq!(status, 201, "{body}");
    // On a configured stream, the host of a show there manages its cues; other hosts do not.
    let (status, body) = call("POST", &shows, Some(&alice), Some(show("second")));
    assert_eq!(status, 201, "{body}");
    let second = server.url("/api/streams/second/rundown");
    assert_eq!(call("GET", &second, Some(&alice), None).0, 200);
    assert_eq!(call("GET", &second, Some(&bob), None).0, 403);

    // Another host cannot touch the key, nor take its stream.
    let key_url = server.url(&format!("/api/keys/{id}"));
    let rotate_url = format!("{key_url}/rotate");
    assert_eq!(
        call("PATCH", &key_url, Some(&bob), Some(json!({"name": "mine"}))).0,
        403
    );
    assert_eq!(call("POST", &rotate_url, Some(&bob), None).0, 403);
    assert_eq!(call("DELETE", &key_url, Some(&bob), None).0, 403);
    let (status, body) = call(
        "POST",
        &keys,
        Some(&bob),
        Some(json!({"name": "x", "stream": stream})),
    );
    assert_eq!(status, 409, "{body}");
    let (status, renamed) = call(
        "PATCH",
        &key_url,
        Some(&alice),
        Some(json!({"name": "Studio A"})),
    );
    assert_eq!((status, renamed["name"].as_str()), (200, Some("Studio A")));

    // Rotate: the old key is refused, the new one publishes (over SRT too).
    wait_live(&server, &stream, false, READY);
    let recordings = server.url(&format!("/api/recordings?stream={stream}"));
    let deadline = Instant::now() + READY;
    loop {
        let (status, body) = call("GET", &recordings, None, None);
        assert_eq!(status, 200, "{body}");
        if body["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty())
        {
            assert_eq!(body["items"][0]["stream"], stream.as_str());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recording of {stream}: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, rotated) = call("POST", &rotate_url, Some(&alice), None);
    assert_eq!(status, 200, "{rotated}");
    let new_key = rotated["key"].as_str().expect("key").to_string();
    assert_ne!(new_key, key);
    assert_eq!(rotated["stream"], stream.as_str());
    assert!(rotated["rotated_at"].is_string());
    assert!(rtmp_refused(&server, &key), "{}", server.log());
    let mut srt = srt_publisher(&server, &new_key, 30);
    wait_live(&server, &stream, true, READY);

    // Revoke: the live publisher is disconnected, and the key is refused.
    let (status, _) = call("DELETE", &key_url, Some(&alice), None);
    assert_eq!(status, 204);
    wait_live(&server, &stream, false, Duration::from_secs(10));
    assert!(
        srt.wait(Duration::from_secs(15)).is_some(),
        "the SRT publisher on a revoked key is disconnected"
    );
    assert!(rtmp_refused(&server, &new_key), "{}", server.log());
    let (_, list) = call("GET", &keys, Some(&alice), None);
    assert!(list["items"][0]["revoked_at"].is_string(), "{list}");
    assert_eq!(call("POST", &rotate_url, Some(&alice), None).0, 409);

    // Keys and their streams survive a restart; the configured keys still publish.
    let server = server.restart(&[]);
    let keys = server.url("/api/keys");
    let history = server.url(&format!("/api/chat/{stream}/history"));
    let (_, list) = call("GET", &keys, Some(ADMIN), None);
    assert_eq!(list["items"][0]["id"], id.as_str(), "{list}");
    assert_eq!(call("GET", &history, None, None).0, 200);
    assert!(rtmp_refused(&server, &new_key));
    let (status, again) = call(
        "POST",
        &keys,
        Some(&alice),
        Some(json!({"name": "again", "stream": stream})),
    );
    assert_eq!(
        status, 201,
        "a revoked key's stream takes a new key: {again}"
    );
    // Over RTMPS this time.
    let rtmps = server.rtmps_url(again["key"].as_str().unwrap());
    let _publisher = Publisher::ffmpeg(&rtmps, 4);
    wait_live(&server, &stream, true, READY);
}
