//! Live statistics end to end: ffmpeg publishes 640x360 at 30 fps over RTMP as OBS would;
//! `GET /api/streams/{stream}/status` reports it live over rtmp, h264 640x360, ~30 fps, a
//! bitrate, the renditions, a part publish delay and a fresh live edge; `/metrics` carries the
//! per-stream series, the HLS requests by object kind and status class after real HLS requests,
//! and the recording counters; `DELETE /api/recordings/{id}` refuses the live recording (409),
//! then deletes it (204) and its playback is gone.

mod common;

use std::time::{Duration, Instant};

use common::{Publisher, Server, call, get, media_url, segments_at_least, wait_for};
use serde_json::Value;

const ADMIN: &str = "dev-admin-token";

fn status(server: &Server, stream: &str, token: Option<&str>) -> (u16, Value) {
    let url = server.url(&format!("/api/streams/{stream}/status"));
    let (code, _, body) = call("GET", &url, token, None);
    (code, body)
}

fn metrics(server: &Server) -> String {
    let (code, _, body) = get(&server.url("/metrics"));
    assert_eq!(code, 200);
    String::from_utf8(body).expect("utf-8")
}

/// The value of the series `series` (name and labels, exactly) in `text`.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// The first URI of a media playlist that ends with `suffix` in the lines starting `prefix`
/// (segments: `""`, parts: `#EXT-X-PART:`), relative to the playlist.
fn uri_in(playlist: &str, prefix: &str, suffix: &str) -> Option<String> {
    playlist.lines().find_map(|line| {
        let rest = line.strip_prefix(prefix)?;
        if prefix.is_empty() {
            return (!line.starts_with('#') && line.ends_with(suffix)).then(|| line.to_string());
        }
        let start = rest.find("URI=\"")? + 5;
        let end = rest[start..].find('"')? + start;
        Some(rest[start..end].to_string())
    })
}

#[test]
fn status_and_metrics_of_a_real_publish_then_delete_its_recording() {
    let server = Server::start_with(&[("CUECAST_CHAT_ENABLED", "false")]);
    // Before any publish: known and not live; unknown streams and bad tokens are refused.
    let (code, idle) = status(&server, "demo", Some(ADMIN));
    assert_eq!(code, 200, "{idle}");
    assert_eq!(idle["live"], false);
    assert!(
        idle["protocol"].is_null() && idle["video"].is_null(),
        "{idle}"
    );
    assert_eq!(status(&server, "demo", None).0, 401);
    assert_eq!(status(&server, "demo", Some("not-a-token")).0, 401);
    // A login token is not the stream's owner.
    let (code, _, signed_up) = call(
        "POST",
        &server.url("/api/signup"),
        None,
        Some(r#"{"username":"viewer1","password":"viewer-password"}"#),
    );
    assert!(code == 200 || code == 201, "{signed_up}");
    let viewer = signed_up["token"].as_str().expect("token").to_string();
    assert_eq!(status(&server, "demo", Some(&viewer)).0, 403);
    assert_eq!(status(&server, "nope", Some(ADMIN)).0, 404);
    assert_eq!(status(&server, "bad.name", Some(ADMIN)).0, 400);

    let mut publisher = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 14);
    let media = media_url(&server, "demo", "source");
    let playlist = wait_for(&media, Duration::from_secs(20), segments_at_least(2));
    let base = media.trim_end_matches("playlist.m3u8");
    // Real HLS requests of every live kind.
    let init = uri_in(&playlist, "#EXT-X-MAP:", "").expect("EXT-X-MAP");
    assert_eq!(get(&format!("{base}{init}")).0, 200);
    let segment = uri_in(&playlist, "", ".m4s").expect("a segment");
    assert_eq!(get(&format!("{base}{segment}")).0, 200);
    if let Some(part) = uri_in(&playlist, "#EXT-X-PART:", "") {
        assert_eq!(get(&format!("{base}{part}")).0, 200);
    }
    assert_eq!(get(&format!("{base}seg999999.m4s")).0, 404);

    // The status, once the frame rate and bitrate windows hold a few seconds.
    std::thread::sleep(Duration::from_secs(2));
    let (code, live) = status(&server, "demo", Some(ADMIN));
    assert_eq!(code, 200, "{live}");
    assert_eq!(live["stream"], "demo");
    assert_eq!(live["live"], true, "{live}");
    assert_eq!(live["protocol"], "rtmp", "{live}");
    assert!(
        live["started_at"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z'))
    );
    let video = &live["video"];
    assert_eq!(video["codec"], "h264", "{live}");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(640), Some(360))
    );
    let fps = video["fps"].as_f64().expect("fps");
    assert!((fps - 30.0).abs() < 1.5, "fps {fps}: {live}");
    assert_eq!(live["audio"]["codec"], "aac");
    assert_eq!(live["audio"]["sample_rate"], 48000);
    assert_eq!(live["audio"]["channels"], 2);
    // 800 kbit/s video + 128 kbit/s audio, give or take what x264 makes of a test pattern.
    let kbps = live["ingest_bitrate_kbps"].as_f64().expect("bitrate");
    assert!(kbps > 50.0 && kbps < 5000.0, "{kbps}: {live}");
    assert_eq!(live["dropped_frames"], 0, "{live}");
    let renditions = live["renditions"].as_array().expect("renditions");
    let source = renditions
        .iter()
        .find(|r| r["name"] == "source")
        .unwrap_or_else(|| panic!("no source rendition: {live}"));
    assert_eq!(
        (source["width"].as_u64(), source["height"].as_u64()),
        (Some(640), Some(360))
    );
    assert!(
        source["bandwidth"].as_u64().is_some_and(|b| b > 0),
        "{live}"
    );
    assert_eq!(source["encode_lag_ms"], 0.0);
    let p50 = live["part_publish_delay_ms"]["p50"].as_f64().expect("p50");
    let p99 = live["part_publish_delay_ms"]["p99"].as_f64().expect("p99");
    assert!(p50 >= 0.0 && p50 <= p99 && p99 < 5000.0, "{live}");
    let edge = live["live_edge_age_ms"].as_f64().expect("live edge age");
    assert!(edge < 3000.0, "{live}");

    // /metrics: the stream's series and the requests made above.
    let text = metrics(&server);
    let stream = "{stream=\"demo\"}";
    assert!(value(&text, &format!("cuecast_stream_ingest_bitrate_bps{stream}")) > 50_000.0);
    let rate = value(&text, &format!("cuecast_stream_frame_rate{stream}"));
    assert!((rate - 30.0).abs() < 1.5, "{rate}");
    assert_eq!(
        value(
            &text,
            &format!("cuecast_stream_dropped_frames_total{stream}")
        ),
        0.0
    );
    assert!(value(&text, &format!("cuecast_stream_ingest_bytes_total{stream}")) > 0.0);
    assert!(
        value(
            &text,
            &format!("cuecast_stream_part_publish_delay_seconds_count{stream}")
        ) > 0.0
    );
    assert!(
        text.contains(
            "cuecast_stream_part_publish_delay_seconds{stream=\"demo\",quantile=\"0.99\"} "
        )
    );
    assert!(
        value(
            &text,
            &format!("cuecast_stream_live_edge_age_seconds{stream}")
        ) < 3.0
    );
    // `second` exists but never published: no series of its own.
    assert!(!text.contains("stream=\"second\""), "{text}");
    let requests = |kind: &str, class: &str| {
        value(
            &text,
            &format!("cuecast_hls_requests_total{{kind=\"{kind}\",status=\"{class}\"}}"),
        )
    };
    assert!(requests("multivariant", "2xx") >= 1.0);
    assert!(requests("media_playlist", "2xx") >= 1.0);
    assert!(requests("init", "2xx") >= 1.0);
    assert!(requests("segment", "2xx") >= 1.0);
    assert!(requests("segment", "4xx") >= 1.0);
    if uri_in(&playlist, "#EXT-X-PART:", "").is_some() {
        assert!(requests("part", "2xx") >= 1.0);
    }
    assert!(
        !text.contains("visitor") && !text.contains("peer="),
        "no per-viewer labels"
    );

    // The recording being written cannot be deleted.
    let (code, _, listed) = call(
        "GET",
        &server.url("/api/recordings?stream=demo"),
        None,
        None,
    );
    assert_eq!(code, 200);
    let id = listed["items"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no recording listed: {listed}"))
        .to_string();
    let delete = |token: Option<&str>| {
        let url = server.url(&format!("/api/recordings/{id}"));
        call("DELETE", &url, token, None)
    };
    let (code, _, body) = delete(Some(ADMIN));
    assert_eq!(code, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("being written"))
    );

    // The publish ends: not live any more, the recording is finished and counted.
    assert!(
        publisher.wait(Duration::from_secs(30)).is_some(),
        "ffmpeg did not finish"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = metrics(&server);
        if value(&text, "cuecast_recordings_finished_total") >= 1.0 {
            assert!(value(&text, "cuecast_recording_bytes_written_total") > 10_000.0);
            assert!(value(&text, "cuecast_recording_files_written_total") >= 2.0);
            assert_eq!(value(&text, "cuecast_recording_failures_total"), 0.0);
            assert_eq!(
                value(&text, &format!("cuecast_stream_ingest_bitrate_bps{stream}")),
                0.0
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "recording never finished:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, ended) = status(&server, "demo", Some(ADMIN));
    assert_eq!(ended["live"], false, "{ended}");
    assert!(
        ended["protocol"].is_null() && ended["started_at"].is_null(),
        "{ended}"
    );
    assert_eq!(ended["ingest_bitrate_kbps"], 0.0);

    // VOD requests are counted as such.
    let vod = server.url(&format!("/vod/{id}/index.m3u8"));
    assert_eq!(get(&vod).0, 200);
    assert!(
        value(
            &metrics(&server),
            "cuecast_hls_requests_total{kind=\"vod\",status=\"2xx\"}"
        ) >= 1.0
    );

    // Delete: a token is needed, then it is gone with its files.
    assert_eq!(delete(None).0, 401);
    assert_eq!(delete(Some(&viewer)).0, 403);
    let (code, _, body) = delete(Some(ADMIN));
    assert_eq!(code, 204, "{body}");
    assert!(!server.dir.path().join("data/recordings").join(&id).exists());
    assert_eq!(get(&vod).0, 404);
    let url = server.url(&format!("/api/recordings/{id}"));
    assert_eq!(call("GET", &url, None, None).0, 404);
    assert_eq!(delete(Some(ADMIN)).0, 404);
    assert_eq!(
        call(
            "DELETE",
            &server.url("/api/recordings/bad.id"),
            Some(ADMIN),
            None
        )
        .0,
        400
    );
    assert!(metrics(&server).contains("cuecast_recordings_deleted_total 1\n"));
}
