//! Recordings and replay end to end: a real server fed by ffmpeg over RTMP records every
//! session as it is packaged. A publish with a product cue is listed after it ends, its VOD
//! playlist decodes whole with ffmpeg/ffprobe, carries the live DATERANGE and segments that are
//! byte for byte the live ones (emsg included), served with byte ranges and immutable caching,
//! and no path escapes the recordings; an ended show points at it. A reconnect within the grace
//! is one recording with a DISCONTINUITY, a publish after it a second one; `kill -9` leaves a
//! recording that the next start finishes as `cut_short` at its last complete segment; retention
//! deletes finished recordings and never the live one.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::bmff::top_boxes;
use common::{
    Publisher, Server, call, get, media_url, recordings, text, wait_for, wait_recordings,
    wait_show_state,
};
use serde_json::{Value, json};

const ADMIN: &str = "dev-admin-token";
const CUE: &str = r#"{"kind": "product", "at": "now", "duration_s": 4,
 "product": {"id": "sku-9", "title": "Silk scarf", "price": "19.00", "currency": "USD",
             "image_url": "https://shop.example/i/sku-9.jpg",
             "cta": {"label": "Buy", "url": "https://shop.example/p/sku-9"}}}"#;

/// GET `url`: 200 and its body.
fn fetch(url: &str) -> Vec<u8> {
    let (status, _, body) = get(url);
    assert_eq!(status, 200, "GET {url}: {}", String::from_utf8_lossy(&body));
    body
}

fn fetch_text(url: &str) -> String {
    String::from_utf8(fetch(url)).expect("utf-8")
}

/// URIs of the segments a media playlist lists.
fn segment_uris(playlist: &str) -> Vec<String> {
    playlist
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Values of every `name="…"` attribute in a playlist (EXT-X-MAP URIs and the like).
fn quoted_attrs(playlist: &str, name: &str) -> Vec<String> {
    let needle = format!("{name}=\"");
    playlist
        .lines()
        .filter_map(|line| {
            let start = line.find(&needle)? + needle.len();
            let end = line[start..].find('"')? + start;
            Some(line[start..end].to_string())
        })
        .collect()
}

/// The START-DATE of the DATERANGE with ID `id` in `playlist`.
fn start_date(playlist: &str, id: &str) -> Option<String> {
    let line = playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-DATERANGE:") && l.contains(&format!("ID=\"{id}\"")))?;
    quoted_attrs(line, "START-DATE").into_iter().next()
}

/// ffprobe over HTTP on a playlist: (duration s, decoded video frames). Decoding every frame
/// (`-count_frames`) fails on any segment that does not decode.
fn probe_playlist(url: &str) -> (f64, u64) {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames:format=duration"])
        .args(["-of", "json", url])
        .output()
        .expect("run ffprobe");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ffprobe {url}: {stderr}");
    assert!(
        stderr.trim().is_empty(),
        "ffprobe {url} complained: {stderr}"
    );
    let json: Value = serde_json::from_slice(&output.stdout).expect("ffprobe json");
    let duration = json["format"]["duration"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    let frames = json["streams"][0]["nb_read_frames"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (duration, frames)
}

/// Every file a recording's playlists reference answers 200 (and the media playlists end with
/// EXT-X-ENDLIST); returns the media playlists' text by rendition URI.
fn check_complete(server: &Server, id: &str) -> Vec<(String, String)> {
    let base = server.url(&format!("/vod/{id}"));
    let index = fetch_text(&format!("{base}/index.m3u8"));
    let mut uris = segment_uris(&index);
    uris.extend(quoted_attrs(&index, "URI"));
    assert!(!uris.is_empty(), "{index}");
    let mut playlists = Vec::new();
    for uri in uris {
        let playlist = fetch_text(&format!("{base}/{uri}"));
        assert!(
            playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"),
            "{playlist}"
        );
        assert!(playlist.ends_with("#EXT-X-ENDLIST\n"), "{playlist}");
        let dir = uri.rsplit_once('/').map(|(d, _)| d).expect("rendition dir");
        for file in segment_uris(&playlist)
            .into_iter()
            .chain(quoted_attrs(&playlist, "URI"))
        {
            assert!(!fetch(&format!("{base}/{dir}/{file}")).is_empty(), "{file}");
        }
        playlists.push((uri, playlist));
    }
    playlists
}

#[test]
fn a_publish_with_a_cue_is_recorded_byte_for_byte_and_replays_as_vod() {
    let server = Server::start_with(&[("CUECAST_CHAT_ENABLED", "false")]);
    // A show on the stream, so the recording names it and the ended show points at it.
    let creds = json!({ "username": "hana", "password": "correct horse battery" }).to_string();
    assert_eq!(
        call("POST", &server.url("/api/signup"), None, Some(&creds)).0,
        201
    );
    let grant = json!({ "capabilities": ["host"] }).to_string();
    let caps = server.url("/api/users/hana/capabilities");
    assert_eq!(call("PUT", &caps, Some(ADMIN), Some(&grant)).0, 200);
    let new_show = json!({
        "title": "Scarves", "stream": "demo", "host": "hana",
        "scheduled_start": chrono::Utc::now().to_rfc3339(),
    })
    .to_string();
    let (status, _, show) = call(
        "POST",
        &server.url("/api/shows"),
        Some(ADMIN),
        Some(&new_show),
    );
    assert_eq!(status, 201, "{show}");
    let show_id = show["id"].as_str().expect("id").to_string();

    let started = Instant::now();
    let mut publisher = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 14);
    let video = media_url(&server, "demo", "source");
    let live_base = video.rsplit_once('/').expect("path").0.to_string();
    wait_for(&video, Duration::from_secs(30), |t| {
        segment_uris(t).len() >= 2
    });
    // While live: listed as recording, its playlists not cacheable.
    let live = wait_recordings(&server, "stream=demo", Duration::from_secs(10), |items| {
        items.len() == 1 && items[0]["duration_s"].as_f64().unwrap_or(0.0) > 0.0
    });
    assert_eq!(live[0]["state"], "recording");
    let id = live[0]["id"].as_str().expect("id").to_string();
    let vod_video = server.url(&format!("/vod/{id}/source/playlist.m3u8"));
    let (status, headers, _) = get(&vod_video);
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "no-cache");

    let (status, _, cue) = call(
        "POST",
        &server.url("/api/streams/demo/cues"),
        Some(ADMIN),
        Some(CUE),
    );
    assert_eq!(status, 201, "{cue}");
    let cue_id = cue["id"].as_str().expect("cue id").to_string();
    // The live playlist's DATERANGE, and every live segment as /hls served it, fetched while
    // they are in the window.
    let live_text = wait_for(&video, Duration::from_secs(20), |t| {
        start_date(t, &cue_id).is_some()
    });
    let live_start = start_date(&live_text, &cue_id).expect("listed live");
    let mut served = std::collections::BTreeMap::new();
    while publisher.wait(Duration::from_millis(500)).is_none() {
        let (status, _, body) = get(&video);
        if status != 200 {
            continue;
        }
        for uri in segment_uris(&String::from_utf8_lossy(&body)) {
            if let std::collections::btree_map::Entry::Vacant(slot) = served.entry(uri) {
                let (status, _, bytes) = get(&format!("{live_base}/{}", slot.key()));
                if status == 200 {
                    slot.insert(bytes);
                }
            }
        }
    }
    let published_s = started.elapsed().as_secs_f64();

    // After it ends: listed complete, with the show.
    let items = wait_recordings(&server, "stream=demo", Duration::from_secs(20), |items| {
        items.len() == 1 && items[0]["state"] == "complete"
    });
    let item = &items[0];
    assert_eq!(item["id"], id.as_str());
    assert_eq!(item["stream"], "demo");
    assert_eq!(item["show"], show_id.as_str());
    assert_eq!(item["playlist"], format!("/vod/{id}/index.m3u8"));
    assert_eq!(item["renditions"], json!(["audio", "source"]));
    assert!(item["started_at"].as_str().is_some());
    let duration_s = item["duration_s"].as_f64().expect("duration");
    assert!(
        (8.0..=15.0).contains(&duration_s),
        "14 s published, {duration_s} s recorded"
    );
    let (status, _, one) = call(
        "GET",
        &server.url(&format!("/api/recordings/{id}")),
        None,
        None,
    );
    assert_eq!((status, &one), (200, item));
    assert_eq!(
        recordings(&server, &format!("show={show_id}")),
        items,
        "listed by show"
    );
    assert!(recordings(&server, "stream=second").is_empty());
    assert!(recordings(&server, "show=show-0000000000000000").is_empty());

    // The ended show points at its recording.
    let show = wait_show_state(&server, &show_id, "ended", Duration::from_secs(10));
    assert_eq!(
        show["replay"],
        json!({ "recording": id, "playlist": format!("/vod/{id}/index.m3u8") })
    );

    // The VOD playlists: complete, every file there, the cue's DATERANGE as live.
    let playlists = check_complete(&server, &id);
    let (_, vod_text) = playlists
        .iter()
        .find(|(uri, _)| uri == "source/playlist.m3u8")
        .expect("source listed");
    assert_eq!(start_date(vod_text, &cue_id), Some(live_start));
    assert!(vod_text.contains("#EXT-X-PROGRAM-DATE-TIME:"), "{vod_text}");
    let (status, headers, _) = get(&vod_video);
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "public, max-age=3600");
    assert_eq!(headers["content-type"], "application/vnd.apple.mpegurl");

    // Byte for byte what /hls served, emsg included.
    let recorded = segment_uris(vod_text);
    let mut compared = 0;
    let mut with_emsg = 0;
    for (uri, live_bytes) in &served {
        assert!(recorded.contains(uri), "{uri} served live but not recorded");
        let url = server.url(&format!("/vod/{id}/source/{uri}"));
        let (status, headers, bytes) = get(&url);
        assert_eq!(status, 200);
        assert_eq!(&bytes, live_bytes, "{uri} differs from what /hls served");
        assert_eq!(
            headers["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(headers["content-type"], "video/mp4");
        compared += 1;
        if top_boxes(&bytes).iter().any(|(kind, _)| kind == "emsg") {
            with_emsg += 1;
        }
    }
    assert!(compared >= 4, "only {compared} live segments compared");
    assert!(with_emsg >= 1, "no recorded segment carries the cue's emsg");

    // Decoded whole: every video frame of the publish, for about its length.
    let (duration, frames) = probe_playlist(&server.url(&format!("/vod/{id}/index.m3u8")));
    assert!(
        (duration - duration_s).abs() < 1.0 && duration <= published_s,
        "ffprobe: {duration} s, listed {duration_s} s, published {published_s:.1} s"
    );
    assert!(
        (frames as f64 - duration * 30.0).abs() <= 30.0,
        "{frames} frames decoded in {duration} s at 30 fps"
    );

    // Byte ranges on a segment: 206 with exactly those bytes.
    let (uri, live_bytes) = served.iter().next().expect("a segment");
    let response = reqwest::blocking::Client::new()
        .get(server.url(&format!("/vod/{id}/source/{uri}")))
        .header("range", "bytes=100-1099")
        .send()
        .expect("range request");
    assert_eq!(response.status().as_u16(), 206);
    assert_eq!(
        response.headers()["content-range"],
        format!("bytes 100-1099/{}", live_bytes.len()).as_str()
    );
    assert_eq!(
        response.bytes().expect("body").as_ref(),
        &live_bytes[100..1100]
    );

    // Nothing outside the recording's files is reachable.
    for path in [
        format!("/vod/{id}/manifest.json"),
        format!("/vod/{id}/source/manifest.json"),
        format!("/vod/{id}/source/..%2F..%2Fcuecast.db"),
        format!("/vod/{id}/..%2F..%2Fcuecast.db"),
        "/vod/..%2F..%2Fdata/index.m3u8".to_string(),
        "/vod/%2e%2e/source/init.mp4".to_string(),
        format!("/vod/{id}/%2e%2e/playlist.m3u8"),
        format!("/vod/{id}/source/part3.m4s"),
        "/vod/../../etc/passwd".to_string(),
        "/vod/nope/index.m3u8".to_string(),
    ] {
        let (status, _, body) = get(&server.url(&path));
        assert!(
            status == 400 || status == 404,
            "{path}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        assert!(!body.starts_with(b"SQLite"), "{path} leaked a file");
    }
    let (status, _, body) = call("GET", &server.url("/api/recordings/a.b"), None, None);
    assert_eq!((status, &body["field"]), (400, &json!("id")));
    let (status, _, body) = call("GET", &server.url("/api/recordings/nope-1"), None, None);
    assert_eq!(status, 404, "{body}");
    let (status, _, body) = call("GET", &server.url("/api/recordings?sort=new"), None, None);
    assert_eq!((status, &body["field"]), (400, &json!("sort")));
    let (status, _, body) = call("GET", &server.url("/api/recordings?stream=a/b"), None, None);
    assert_eq!((status, &body["field"]), (400, &json!("stream")));
}

#[test]
fn a_reconnect_within_the_grace_is_one_recording_and_a_publish_after_it_another() {
    let server = Server::start_with(&[
        ("CUECAST_INGEST_RECONNECT_GRACE_S", "5"),
        // ffmpeg unpublishes cleanly at its end: hold the session for the grace as for a show.
        ("CUECAST_SHOWS_HOLD_UNPUBLISH_WITHOUT_SHOW", "true"),
        ("CUECAST_CHAT_ENABLED", "false"),
        ("CUECAST_SRT_ENABLED", "false"),
    ]);
    let rtmp = server.rtmp_url("demo-key");
    let mut first = Publisher::ffmpeg(&rtmp, 6);
    let video = media_url(&server, "demo", "source");
    assert!(first.wait(Duration::from_secs(30)).is_some(), "ffmpeg ends");
    // Back within the grace: the same session.
    let mut second = Publisher::ffmpeg(&rtmp, 6);
    wait_for(&video, Duration::from_secs(30), |t| {
        t.contains("#EXT-X-DISCONTINUITY")
    });
    assert!(
        second.wait(Duration::from_secs(30)).is_some(),
        "ffmpeg ends"
    );
    let one = wait_recordings(&server, "stream=demo", Duration::from_secs(30), |items| {
        items.len() == 1 && items[0]["state"] == "complete"
    });
    // After the grace: a new session, a new recording.
    let mut third = Publisher::ffmpeg(&rtmp, 5);
    assert!(third.wait(Duration::from_secs(30)).is_some(), "ffmpeg ends");
    let two = wait_recordings(&server, "stream=demo", Duration::from_secs(30), |items| {
        items.len() == 2 && items.iter().all(|i| i["state"] == "complete")
    });
    // Newest first: the first recording is the second item.
    assert_eq!(two[1]["id"], one[0]["id"]);
    assert_ne!(two[0]["id"], two[1]["id"]);
    let first_id = one[0]["id"].as_str().expect("id");
    let seam = fetch_text(&server.url(&format!("/vod/{first_id}/source/playlist.m3u8")));
    assert_eq!(seam.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{seam}");
    let duration = one[0]["duration_s"].as_f64().expect("duration");
    assert!(duration >= 8.0, "two 6 s publishes, {duration} s recorded");
    let second_id = two[0]["id"].as_str().expect("id");
    let fresh = fetch_text(&server.url(&format!("/vod/{second_id}/source/playlist.m3u8")));
    assert!(!fresh.contains("#EXT-X-DISCONTINUITY"), "{fresh}");
    check_complete(&server, first_id);
    check_complete(&server, second_id);
    let (seam_duration, _) = probe_playlist(&server.url(&format!("/vod/{first_id}/index.m3u8")));
    assert!(
        (seam_duration - duration).abs() < 1.0,
        "{seam_duration} vs {duration}"
    );
}

#[test]
fn kill_9_during_a_live_stream_leaves_a_recording_the_restart_cuts_short() {
    let env = [
        ("CUECAST_CHAT_ENABLED", "false"),
        ("CUECAST_SRT_ENABLED", "false"),
    ];
    let server = Server::start_with(&env);
    let mut publisher = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 60);
    let video = media_url(&server, "demo", "source");
    wait_for(&video, Duration::from_secs(30), |t| {
        segment_uris(t).len() >= 3
    });
    // A growing recording's listing is updated every 10 s (docs/recordings.md).
    let live = wait_recordings(&server, "stream=demo", Duration::from_secs(25), |items| {
        items.len() == 1 && items[0]["duration_s"].as_f64().unwrap_or(0.0) >= 4.0
    });
    let id = live[0]["id"].as_str().expect("id").to_string();
    let data = server.dir.path().join("data").join("recordings").join(&id);
    // What was live just before the kill: the recording keeps all of it but the segment being
    // written (the ones since the last checkpoint come back from the journal).
    let live_segments = segment_uris(&text(&video)).len();
    let server = server.kill_and_restart(&env);
    publisher.kill();
    // On disk the manifest still says recording until the restart finished it.
    let items = wait_recordings(&server, "stream=demo", Duration::from_secs(10), |items| {
        items.len() == 1
    });
    let item = &items[0];
    assert_eq!(item["id"], id.as_str());
    assert_eq!(item["state"], "cut_short");
    let duration = item["duration_s"].as_f64().expect("duration");
    assert!(duration >= 4.0, "{duration}");
    let playlists = check_complete(&server, &id);
    let (_, source) = playlists
        .iter()
        .find(|(uri, _)| uri == "source/playlist.m3u8")
        .expect("source listed");
    let recorded = segment_uris(source).len();
    assert!(
        recorded + 1 >= live_segments,
        "{recorded} segments recorded, {live_segments} were live at the kill"
    );
    // The playlist ends at the last segment whose file is complete on disk.
    for (uri, playlist) in &playlists {
        let dir = uri.rsplit_once('/').expect("dir").0;
        for segment in segment_uris(playlist) {
            let path = data.join(dir).join(&segment);
            let on_disk = std::fs::read(&path).expect("listed segment on disk");
            assert!(!top_boxes(&on_disk).is_empty(), "{segment} is not whole");
        }
        let leftovers: Vec<_> = std::fs::read_dir(data.join(dir))
            .expect("dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(data.join("manifest.json")).expect("manifest"))
            .expect("json");
    assert_eq!(manifest["state"], "cut_short");
    let (probed, frames) = probe_playlist(&server.url(&format!("/vod/{id}/index.m3u8")));
    assert!((probed - duration).abs() < 1.0, "{probed} vs {duration}");
    assert!(frames > 0);
    assert!(Path::new(&data).join("index.m3u8").is_file());
}

#[test]
fn retention_deletes_finished_recordings_and_never_the_live_one() {
    // 1 kB: every finished recording is over the limit; retention runs every half second.
    let server = Server::start_with(&[
        ("CUECAST_RECORDINGS_MAX_TOTAL_GB", "0.000001"),
        ("CUECAST_RECORDINGS_RETENTION_INTERVAL_S", "0.5"),
        ("CUECAST_CHAT_ENABLED", "false"),
        ("CUECAST_SRT_ENABLED", "false"),
    ]);
    let mut first = Publisher::ffmpeg(&server.rtmp_url("second-key"), 5);
    // While live it stays, however far over the limit.
    let live = wait_recordings(&server, "stream=second", Duration::from_secs(30), |items| {
        items.len() == 1 && items[0]["duration_s"].as_f64().unwrap_or(0.0) >= 2.0
    });
    let first_id = live[0]["id"].as_str().expect("id").to_string();
    assert!(first.wait(Duration::from_secs(30)).is_some(), "ffmpeg ends");
    let mut second = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 30);
    // Once finished it goes (files and row); the live one on `demo` stays.
    wait_recordings(&server, "stream=second", Duration::from_secs(20), |items| {
        items.is_empty()
    });
    let (status, _, _) = get(&server.url(&format!("/vod/{first_id}/index.m3u8")));
    assert_eq!(status, 404);
    assert!(
        !server
            .dir
            .path()
            .join("data/recordings")
            .join(&first_id)
            .exists()
    );
    let live = wait_recordings(&server, "stream=demo", Duration::from_secs(30), |items| {
        items.len() == 1 && items[0]["duration_s"].as_f64().unwrap_or(0.0) >= 4.0
    });
    std::thread::sleep(Duration::from_secs(2));
    let still = recordings(&server, "stream=demo");
    assert_eq!(still.len(), 1, "the live recording was deleted");
    assert_eq!(still[0]["id"], live[0]["id"]);
    assert_eq!(still[0]["state"], "recording");
    second.kill();
}
