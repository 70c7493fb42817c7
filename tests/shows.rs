//! Shows against a real server and a real ffmpeg RTMP publisher: a scheduled show goes live
//! when its stream is published, survives the host stopping and restarting the encoder (the
//! first media playlist URL keeps answering, with a DISCONTINUITY at the seam), and ends when
//! the stream stops for longer than the reconnect grace. The API refuses bad fields by name,
//! another host's changes (403), oversized bodies (413) and unknown ids (404); a restart keeps
//! the shows and gives a show that was live the reconnect grace to come back.

mod common;

use std::time::{Duration, Instant};

use common::{Publisher, Server, account, get, media_url, text, wait_for, wait_log};
use serde_json::{Value, json};

const ADMIN: &str = "dev-admin-token";
const READY: Duration = Duration::from_secs(40);

/// A JSON request; (status, body).
fn call(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let (status, _, body) = common::call(method, url, token, body.as_deref());
    (status, body)
}

/// Polls show `id` until `state`, or panics after `timeout`.
fn wait_state(server: &Server, id: &str, state: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    let url = server.url(&format!("/api/shows/{id}"));
    loop {
        let (status, show) = call("GET", &url, None, None);
        assert_eq!(status, 200, "{show}");
        if show["state"] == state {
            return show;
        }
        assert!(
            Instant::now() < deadline,
            "show never became {state}: {show}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339()
}

#[test]
fn a_show_follows_its_stream_and_survives_an_encoder_restart() {
    let server = Server::start_with(&[
        ("CUECAST_INGEST_RECONNECT_GRACE_S", "8"),
        ("CUECAST_SRT_ENABLED", "false"),
        ("CUECAST_CHAT_ENABLED", "false"),
    ]);
    let alice = account(&server, "alice", &["send", "host"]);
    let bob = account(&server, "bob", &["send", "host"]);
    let carol = account(&server, "carol", &["send"]);
    let shows = server.url("/api/shows");
    let new_show = json!({
        "title": "Spring fragrances",
        "description": "Three new scents",
        "stream": "demo",
        "scheduled_start": now_rfc3339(),
        "tags": ["beauty"],
        "products": ["sku-2", "sku-1"],
    });
    let (status, show) = call("POST", &shows, Some(&alice), Some(new_show.clone()));
    assert_eq!(status, 201, "{show}");
    assert_eq!(show["state"], "scheduled");
    assert_eq!(show["host"], "alice");
    assert_eq!(show["products"], json!(["sku-2", "sku-1"]));
    let id = show["id"].as_str().expect("id").to_string();
    let show_url = server.url(&format!("/api/shows/{id}"));

    // Who may change it, and what is refused.
    let (status, _) = call(
        "PATCH",
        &show_url,
        Some(&bob),
        Some(json!({"title": "Mine"})),
    );
    assert_eq!(status, 403, "another host's show");
    let (status, _) = call("POST", &shows, Some(&carol), Some(new_show.clone()));
    assert_eq!(status, 403, "no host capability");
    let (status, _) = call("POST", &shows, None, Some(new_show.clone()));
    assert_eq!(status, 401);
    for (field, value, message) in [
        ("title", json!(""), "title: must not be empty"),
        (
            "stream",
            json!("nope"),
            "stream: no stream `nope` is configured",
        ),
        (
            "scheduled_start",
            json!("soon"),
            "scheduled_start: must be an RFC 3339 date",
        ),
        ("tags", json!(["a", ""]), "tags[1]: must not be empty"),
    ] {
        let mut bad = new_show.clone();
        bad[field] = value;
        let (status, body) = call("POST", &shows, Some(&alice), Some(bad));
        assert_eq!(status, 400, "{body}");
        let error = body["error"].as_str().expect("error");
        assert!(error.starts_with(message), "{error}");
        assert_eq!(
            body["field"],
            if field == "tags" { "tags[1]" } else { field }
        );
    }
    let mut huge = new_show.clone();
    huge["description"] = json!("x".repeat(70_000));
    assert_eq!(call("POST", &shows, Some(&alice), Some(huge)).0, 413);
    let (status, body) = call(
        "PATCH",
        &show_url,
        Some(&alice),
        Some(json!({"state": "paused"})),
    );
    assert_eq!((status, body["field"].clone()), (400, json!("state")));
    let (status, _) = call("GET", &server.url("/api/shows/show-0000"), None, None);
    assert_eq!(status, 404);
    let (status, _) = call(
        "PATCH",
        &server.url("/api/shows/show-0000"),
        Some(ADMIN),
        Some(json!({})),
    );
    assert_eq!(status, 404);

    // The host starts the encoder: the show goes live.
    let rtmp = server.rtmp_url("demo-key");
    let mut first = Publisher::ffmpeg(&rtmp, 10);
    let live = wait_state(&server, &id, "live", READY);
    assert!(live["started_at"].is_string(), "{live}");
    let (_, listed) = call("GET", &format!("{shows}?state=live"), None, None);
    assert_eq!(
        listed["shows"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    let url = media_url(&server, "demo", "source");
    wait_for(&url, READY, |t| t.matches("#EXTINF").count() >= 2);

    // ffmpeg reaches its end (a clean RTMP unpublish); the host starts again 3 s later.
    assert!(
        first.wait(READY).is_some_and(|s| s.success()),
        "{}",
        first.stderr()
    );
    wait_log(
        &server,
        "the session is held for the reconnect grace",
        READY,
    );
    std::thread::sleep(Duration::from_secs(3));
    let gap = text(&url);
    assert!(!gap.contains("#EXT-X-ENDLIST"), "{gap}");
    let mut second = Publisher::ffmpeg(&rtmp, 4);
    let after = wait_for(&url, READY, |t| {
        t.split("#EXT-X-DISCONTINUITY\n")
            .nth(1)
            .is_some_and(|tail| tail.contains("#EXTINF"))
    });
    assert!(!after.contains("#EXT-X-ENDLIST"), "{after}");
    assert_eq!(get(&url).0, 200, "the first playlist URL still answers");
    assert_eq!(
        wait_state(&server, &id, "live", READY)["started_at"],
        live["started_at"]
    );

    // The second run ends too, and nobody comes back within the grace: the show ends.
    assert!(
        second.wait(READY).is_some_and(|s| s.success()),
        "{}",
        second.stderr()
    );
    let ended = wait_state(&server, &id, "ended", READY);
    assert!(ended["ended_at"].is_string(), "{ended}");
    assert!(text(&url).contains("#EXT-X-ENDLIST"));
    let (status, _) = call(
        "PATCH",
        &show_url,
        Some(&alice),
        Some(json!({"state": "live"})),
    );
    assert_eq!(status, 409, "an ended show stays ended");

    // A stream without a live show ends at a clean stop, without waiting the 8 s grace.
    let mut plain = Publisher::ffmpeg(&server.rtmp_url("second-key"), 4);
    let second_url = media_url(&server, "second", "source");
    assert!(
        plain.wait(READY).is_some_and(|s| s.success()),
        "{}",
        plain.stderr()
    );
    wait_for(&second_url, Duration::from_secs(4), |t| {
        t.contains("#EXT-X-ENDLIST")
    });
}

#[test]
fn shows_survive_a_restart_and_a_live_show_gets_the_grace() {
    let env = [
        ("CUECAST_INGEST_RECONNECT_GRACE_S", "4"),
        ("CUECAST_SRT_ENABLED", "false"),
        ("CUECAST_CHAT_ENABLED", "false"),
    ];
    let first = Server::start_with(&env);
    let host = account(&first, "dana", &["host"]);
    let shows = first.url("/api/shows");
    let create = |title: &str, start: &str| {
        let body = json!({
            "title": title, "stream": "second", "scheduled_start": start,
            "cover_image_url": "https://shop.example/cover.jpg", "products": ["sku-9"],
        });
        let (status, show) = call("POST", &shows, Some(&host), Some(body));
        assert_eq!(status, 201, "{show}");
        show
    };
    // The admin creates shows for a host it names, which must hold the host capability.
    let for_host = |host: &str| {
        let body = json!({
            "title": "For a host", "stream": "demo", "scheduled_start": "2030-01-02T18:00:00Z",
            "host": host,
        });
        call("POST", &shows, Some(ADMIN), Some(body))
    };
    let (status, body) = for_host("nobody");
    assert_eq!(
        (status, body["field"].clone()),
        (400, json!("host")),
        "{body}"
    );
    let (status, body) = for_host("Dana");
    assert_eq!(
        (status, body["host"].clone()),
        (201, json!("dana")),
        "{body}"
    );
    let url = first.url(&format!("/api/shows/{}", body["id"].as_str().expect("id")));
    assert_eq!(
        call("DELETE", &url, Some(&host), None).0,
        204,
        "the host's own"
    );
    assert_eq!(call("GET", &url, None, None).0, 404, "deleted");
    let scheduled = create("Next week", "2030-01-01T18:00:00Z");
    let live = create("On air", &now_rfc3339());
    let live_url = first.url(&format!("/api/shows/{}", live["id"].as_str().expect("id")));
    // Live by hand (the host's studio): it waits for its stream.
    let (status, on_air) = call(
        "PATCH",
        &live_url,
        Some(ADMIN),
        Some(json!({"state": "live"})),
    );
    assert_eq!(
        (status, on_air["state"].clone()),
        (200, json!("live")),
        "{on_air}"
    );
    first.terminate();
    let mut first = first;
    assert!(first.wait_exit(Duration::from_secs(15)).is_some());

    let data = first.dir.path().join("data");
    let data = data.to_str().expect("utf-8 path");
    let mut env = env.to_vec();
    env.push(("CUECAST_SERVER_DATA_DIR", data));
    let second = Server::start_with(&env);
    let (status, kept) = call(
        "GET",
        &second.url(&format!(
            "/api/shows/{}",
            scheduled["id"].as_str().expect("id")
        )),
        None,
        None,
    );
    assert_eq!((status, &kept), (200, &scheduled), "kept as it was");
    let id = live["id"].as_str().expect("id");
    let (_, still) = call("GET", &second.url(&format!("/api/shows/{id}")), None, None);
    assert_eq!(still["state"], "live", "live right after the restart");
    // Its stream does not come back within the 4 s grace: it ends.
    let ended = wait_state(&second, id, "ended", Duration::from_secs(15));
    assert_eq!(ended["started_at"], on_air["started_at"]);
    let (_, listed) = call("GET", &second.url("/api/shows?state=scheduled"), None, None);
    assert_eq!(listed["shows"], json!([scheduled]));
}
