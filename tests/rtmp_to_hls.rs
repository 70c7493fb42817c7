//! End to end: real publishers (ffmpeg as OBS would, GStreamer rtmp2sink) push RTMP into a real
//! `cuecast serve` process; HLS is read back over HTTP, parsed with m3u8-rs, checked with ffprobe.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{
    Publisher, Server, ffprobe, get, last_msn, media_url, parse_master, parse_media,
    segments_at_least, wait_for,
};

const READY: Duration = Duration::from_secs(20);

#[test]
fn ffmpeg_publish_becomes_hls_that_parses_and_decodes() {
    let server = Server::start();
    let mut publisher = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 11);

    let master_text = wait_for(&server.url("/hls/demo/index.m3u8"), READY, |_| true);
    let master = parse_master(&master_text);
    assert!(
        master_text.contains("#EXT-X-INDEPENDENT-SEGMENTS"),
        "{master_text}"
    );
    assert_eq!(master.variants.len(), 1, "{master_text}");
    let variant = &master.variants[0];
    let codecs = variant.codecs.clone().unwrap_or_default();
    assert!(
        codecs.starts_with("avc1.64"),
        "H.264 high profile codec string: {codecs}"
    );
    assert!(
        codecs.contains("mp4a.40.2"),
        "AAC-LC codec string: {codecs}"
    );
    let resolution = variant.resolution.expect("RESOLUTION");
    assert_eq!((resolution.width, resolution.height), (640, 360));
    // 800 kb/s video + 128 kb/s audio: the measured peak must be in a plausible range.
    assert!(
        (300_000..5_000_000).contains(&variant.bandwidth),
        "BANDWIDTH {}",
        variant.bandwidth
    );
    let audio = master
        .alternatives
        .iter()
        .find(|m| m.media_type == m3u8_rs::AlternativeMediaType::Audio)
        .expect("audio rendition");
    assert_eq!(variant.audio.as_deref(), Some(audio.group_id.as_str()));

    let video_url = server.url(&format!("/hls/demo/{}", variant.uri));
    let audio_url = server.url(&format!(
        "/hls/demo/{}",
        audio.uri.as_deref().expect("audio URI")
    ));
    let text = wait_for(&video_url, READY, segments_at_least(3));
    let playlist = parse_media(&text);
    assert_eq!(playlist.target_duration, 2, "{text}");
    for segment in &playlist.segments {
        assert!(
            (segment.duration - 2.0).abs() < 0.05,
            "segment duration {} should match the 2 s target\n{text}",
            segment.duration
        );
        assert!(
            segment.program_date_time.is_some(),
            "PROGRAM-DATE-TIME\n{text}"
        );
    }
    assert!(!text.contains("#EXT-X-ENDLIST"));

    // Content types and cache policy per object kind; CORS for web players.
    let (status, headers, init) = get(&video_url.replace("playlist.m3u8", "init.mp4"));
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "video/mp4");
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let first = &playlist.segments[0].uri;
    let (status, headers, segment) = get(&video_url.replace("playlist.m3u8", first));
    assert_eq!(status, 200);
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=86400")
    );
    let mut file = init.clone();
    file.extend_from_slice(&segment);
    let probe = ffprobe(&file, server.dir.path());
    assert_eq!(probe.codec_name, "h264");
    assert_eq!((probe.width, probe.height), (Some(640), Some(360)));
    assert!(
        (probe.duration - 2.0).abs() < 0.1,
        "video segment duration {}",
        probe.duration
    );

    let response = reqwest::blocking::Client::new()
        .get(&video_url)
        .header("Origin", "https://shop.example")
        .send()
        .expect("playlist");
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.apple.mpegurl"
    );
    assert_eq!(response.headers()["cache-control"], "public, max-age=1");

    let text = wait_for(&audio_url, READY, segments_at_least(2));
    let audio_playlist = parse_media(&text);
    let (_, headers, init) = get(&audio_url.replace("playlist.m3u8", "init.mp4"));
    assert_eq!(headers["content-type"], "audio/mp4");
    let (_, _, segment) = get(&audio_url.replace("playlist.m3u8", &audio_playlist.segments[0].uri));
    let mut file = init;
    file.extend_from_slice(&segment);
    let probe = ffprobe(&file, server.dir.path());
    assert_eq!(probe.codec_name, "aac");
    assert_eq!(probe.sample_rate, Some(48000));
    assert_eq!(probe.channels, Some(2));
    assert!(
        (probe.duration - 2.0).abs() < 0.15,
        "audio segment duration {}",
        probe.duration
    );

    // Every frame's ingest-to-part latency is measured and exported.
    let (_, _, metrics) = get(&server.url("/metrics"));
    let metrics = String::from_utf8_lossy(&metrics).to_string();
    let count: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("cuecast_ingest_to_part_seconds_count "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(count > 100, "{metrics}");
    assert!(metrics.contains("cuecast_live_streams 1"), "{metrics}");

    // The publisher finishes: the playlist ends and stays available.
    let status = publisher
        .wait(Duration::from_secs(30))
        .expect("ffmpeg finished");
    assert!(status.success(), "ffmpeg: {}", publisher.stderr());
    let text = wait_for(&video_url, Duration::from_secs(10), |t| {
        t.contains("#EXT-X-ENDLIST")
    });
    let ended = parse_media(&text);
    assert!(ended.end_list);
    let total: f32 = ended.segments.iter().map(|s| s.duration).sum();
    assert!(
        total > 9.0,
        "about 11 s published, {total} s listed\n{text}"
    );
    let (status, _, _) = get(&server.url("/hls/demo/index.m3u8"));
    assert_eq!(status, 200, "an ended stream stays available");
}

#[test]
fn gstreamer_rtmp2sink_publisher_works() {
    let server = Server::start();
    let _publisher = Publisher::rtmp2sink(&server.rtmp_url("second-key"), 10);
    let master = parse_master(&wait_for(
        &server.url("/hls/second/index.m3u8"),
        READY,
        |_| true,
    ));
    let uri = master.variants[0].uri.clone();
    let url = server.url(&format!("/hls/second/{uri}"));
    let playlist = parse_media(&wait_for(&url, READY, segments_at_least(2)));
    let (_, _, mut bytes) = get(&url.replace("playlist.m3u8", "init.mp4"));
    let (_, _, segment) = get(&url.replace("playlist.m3u8", &playlist.segments[1].uri));
    bytes.extend_from_slice(&segment);
    let probe = ffprobe(&bytes, server.dir.path());
    assert_eq!(probe.codec_name, "h264");
    assert_eq!((probe.width, probe.height), (Some(640), Some(360)));
    assert!((probe.duration - 2.0).abs() < 0.1, "{}", probe.duration);
}

#[test]
fn wrong_key_and_second_publisher_are_refused() {
    let server = Server::start();

    let mut wrong = Publisher::ffmpeg(&server.rtmp_url("not-a-key"), 5);
    let status = wrong
        .wait(Duration::from_secs(10))
        .expect("refused publisher exits");
    assert!(!status.success(), "publish with an unknown key must fail");
    let log = server.log();
    assert!(
        log.contains("unknown stream key") && log.contains("peer=127.0.0.1:"),
        "{log}"
    );
    let (status, _, body) = get(&server.url("/hls/not-a-key/index.m3u8"));
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));

    let _first = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 30);
    let url = media_url(&server, "demo", "source");
    let before = last_msn(&wait_for(&url, READY, segments_at_least(1)));

    let mut second = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 5);
    let status = second
        .wait(Duration::from_secs(10))
        .expect("second publisher exits");
    assert!(
        !status.success(),
        "a second publisher on a live key must be refused"
    );
    assert!(
        server.log().contains("already has a publisher"),
        "{}",
        server.log()
    );

    // The first publisher is undisturbed: its playlist keeps growing.
    let after = wait_for(&url, READY, |t| last_msn(t) >= before + 2);
    assert!(!after.contains("#EXT-X-ENDLIST"));
}

#[test]
fn killed_publisher_ends_its_playlist_while_other_stream_continues() {
    let server = Server::start();
    let mut demo = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 60);
    let _second = Publisher::ffmpeg(&server.rtmp_url("second-key"), 60);
    let demo_url = media_url(&server, "demo", "source");
    let second_url = media_url(&server, "second", "source");
    wait_for(&demo_url, READY, segments_at_least(2));
    wait_for(&second_url, READY, segments_at_least(2));

    demo.kill();
    let ended = wait_for(&demo_url, Duration::from_secs(10), |t| {
        t.contains("#EXT-X-ENDLIST")
    });
    let ended_msn = last_msn(&ended);
    let second_at_kill = last_msn(&get_text(&second_url));

    // The other stream keeps producing segments; the ended one stays frozen and served.
    let later = wait_for(&second_url, READY, |t| last_msn(t) >= second_at_kill + 2);
    assert!(!later.contains("#EXT-X-ENDLIST"));
    let demo_now = get_text(&demo_url);
    assert_eq!(last_msn(&demo_now), ended_msn);
    // The demo key can publish again after its publisher is gone: a new session whose URLs
    // (seg0.m4s, init.mp4, …) never collide with the ended one's, which CDNs may still cache.
    let _again = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 20);
    let deadline = std::time::Instant::now() + READY;
    let new_url = loop {
        let (status, _, _) = get(&server.url("/hls/demo/index.m3u8"));
        if status == 200 {
            let url = media_url(&server, "demo", "source");
            if url != demo_url {
                break url;
            }
        }
        assert!(std::time::Instant::now() < deadline, "no new session");
        std::thread::sleep(Duration::from_millis(200));
    };
    let fresh = wait_for(&new_url, READY, segments_at_least(1));
    assert!(!fresh.contains("#EXT-X-ENDLIST"));
    assert_eq!(parse_media(&fresh).media_sequence, 0);
    let (status, _, body) = get(&demo_url);
    assert_eq!(status, 404, "the old session's URLs are gone, not reused");
    assert!(String::from_utf8_lossy(&body).contains("is over"));
}

fn get_text(url: &str) -> String {
    let (status, _, body) = get(url);
    assert_eq!(status, 200, "{url}");
    String::from_utf8_lossy(&body).to_string()
}

/// Pseudo-random bytes (xorshift), deterministic.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

#[test]
fn garbage_and_truncated_rtmp_close_only_that_connection() {
    let server = Server::start_with(&[("CUECAST_RTMP_IDLE_TIMEOUT_S", "2")]);
    let _publisher = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 40);
    let url = media_url(&server, "demo", "source");
    let before = last_msn(&wait_for(&url, READY, segments_at_least(1)));

    // 1. Random bytes (C0 is not version 3).
    let mut socket = server.rtmp_connect();
    let mut bytes = noise(8192, 0x9E37_79B9_7F4A_7C15);
    bytes[0] = 0x17;
    socket.write_all(&bytes).expect("write");
    assert!(
        common::closed_by_peer(&mut socket, Duration::from_secs(5)),
        "garbage: not closed"
    );

    // 2. A valid handshake followed by garbage chunks.
    let mut socket = server.rtmp_connect();
    handshake(&mut socket);
    let mut garbage = vec![0x03, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x14, 0, 0, 0, 0];
    garbage.extend(noise(4096, 7));
    let _ = socket.write_all(&garbage);
    assert!(
        common::closed_by_peer(&mut socket, Duration::from_secs(5)),
        "bad chunks: not closed"
    );

    // 3. A truncated chunk (header promises 200 bytes, 10 arrive), then silence.
    let mut socket = server.rtmp_connect();
    handshake(&mut socket);
    let mut truncated = vec![0x03, 0, 0, 0, 0, 0, 200, 0x14, 0, 0, 0, 0];
    truncated.extend_from_slice(&[0x02, 0, 7, b'c', b'o', b'n', b'n', b'e', b'c', b't']);
    socket.write_all(&truncated).expect("write");
    assert!(
        common::closed_by_peer(&mut socket, Duration::from_secs(6)),
        "truncated: not closed"
    );

    // 4. A handshake cut short.
    let mut socket = server.rtmp_connect();
    socket.write_all(&[3u8; 100]).expect("write");
    assert!(
        common::closed_by_peer(&mut socket, Duration::from_secs(6)),
        "short handshake: not closed"
    );

    // The server and the live stream are unaffected.
    let (status, _, _) = get(&server.url("/healthz"));
    assert_eq!(status, 200);
    let after = wait_for(&url, READY, |t| last_msn(t) >= before + 2);
    assert!(!after.contains("#EXT-X-ENDLIST"));
}

/// Client side of the simple RTMP handshake.
fn handshake(socket: &mut std::net::TcpStream) {
    let mut c0c1 = vec![3u8];
    c0c1.extend(noise(1536, 42));
    socket.write_all(&c0c1).expect("C0C1");
    let mut s0s1s2 = vec![0u8; 1 + 1536 * 2];
    socket.read_exact(&mut s0s1s2).expect("S0S1S2");
    assert_eq!(s0s1s2[0], 3);
    assert_eq!(&s0s1s2[1537..], &c0c1[1..], "S2 echoes C1");
    socket.write_all(&s0s1s2[1..1537]).expect("C2");
}

#[test]
fn sigterm_tells_publishers_ends_playlists_and_exits() {
    let mut server = Server::start();
    let mut publisher = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 60);
    let url = media_url(&server, "demo", "source");
    wait_for(&url, READY, segments_at_least(1));

    server.terminate();
    let ended = wait_for(&url, Duration::from_secs(5), |t| {
        t.contains("#EXT-X-ENDLIST")
    });
    assert!(parse_media(&ended).end_list);
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("server exits");
    assert!(status.success(), "exit status {status:?}\n{}", server.log());
    assert!(
        publisher.wait(Duration::from_secs(10)).is_some(),
        "publisher was disconnected"
    );
    assert!(
        server.log().contains("server shutting down") || server.log().contains("shutting down")
    );
}

#[test]
fn origin_errors_unknown_streams_and_traversal() {
    let server = Server::start();
    for path in [
        "/hls/nope/index.m3u8",
        "/hls/demo/index.m3u8",
        "/hls/demo/18f0a1b2c3d/source/playlist.m3u8",
        "/hls/..%2F..%2Fetc%2Fpasswd/index.m3u8",
        "/hls/demo/18f0a1b2c3d/source/..%2F..%2FCargo.toml",
        "/nothing",
    ] {
        let (status, headers, body) = get(&server.url(path));
        assert_eq!(status, 404, "{path}");
        assert_eq!(headers["content-type"], "application/json", "{path}");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json error");
        assert!(
            json["error"].as_str().is_some_and(|s| !s.is_empty()),
            "{path}"
        );
    }
    let (_, _, body) = get(&server.url("/hls/nope/index.m3u8"));
    assert!(String::from_utf8_lossy(&body).contains("not live"));

    // Literal dot segments straight on the wire (clients normally normalise them away).
    for raw in [
        "/hls/../Cargo.toml",
        "/hls/demo/../../src/main.rs",
        "/../../etc/passwd",
    ] {
        let mut socket = std::net::TcpStream::connect(("127.0.0.1", server.http_port)).unwrap();
        write!(
            socket,
            "GET {raw} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        let _ = socket.read_to_string(&mut response);
        let status_line = response.lines().next().unwrap_or("");
        assert!(
            status_line.contains("404") || status_line.contains("400"),
            "{raw}: {status_line}"
        );
        assert!(
            !response.contains("[package]") && !response.contains("root:"),
            "{raw}"
        );
    }

    // API auth.
    let client = reqwest::blocking::Client::new();
    let response = client.get(server.url("/api/streams")).send().unwrap();
    assert_eq!(response.status(), 401);
    let response = client
        .get(server.url("/api/streams"))
        .bearer_auth("wrong-token")
        .send()
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = client
        .get(server.url("/api/streams"))
        .bearer_auth("dev-admin-token")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let json: serde_json::Value = serde_json::from_slice(&response.bytes().unwrap()).unwrap();
    let names: Vec<&str> = json["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["demo", "second"]);
    let text = json.to_string();
    assert!(
        !text.contains("demo-key"),
        "keys never leave the server: {text}"
    );
}
