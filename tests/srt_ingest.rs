//! SRT ingest end to end: real SRT callers (ffmpeg with libsrt, GStreamer srtsink,
//! srt-live-transmit) publish MPEG-TS to one `cuecast serve` UDP port; HLS is read back over HTTP,
//! parsed with m3u8-rs and checked with ffprobe.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::{
    Publisher, Server, ffprobe, get, last_msn, media_url, parse_media, segments_at_least, text,
    wait_for, wait_log,
};

const READY: Duration = Duration::from_secs(30);

/// Three streams: `demo` (no passphrase of its own), `second` (its own passphrase), `third`.
const STREAMS: &str = r#"[{name="demo", key="demo-key"}, {name="second", key="second-key", srt_passphrase="second-secret-42"}, {name="third", key="third-key"}]"#;

/// The first complete video segment of `playlist_url` with its init, as ffprobe sees it.
fn probe_first_segment(server: &Server, playlist_url: &str) -> common::Probe {
    let playlist = parse_media(&text(playlist_url));
    let base = playlist_url.trim_end_matches("playlist.m3u8");
    let (status, _, mut file) = get(&format!("{base}init.mp4"));
    assert_eq!(status, 200);
    let (status, _, segment) = get(&format!("{base}{}", playlist.segments[0].uri));
    assert_eq!(status, 200);
    file.extend_from_slice(&segment);
    ffprobe(&file, server.dir.path())
}

/// A publisher refused at handshake: ffmpeg exits with an error, quickly.
fn assert_refused(mut publisher: Publisher, what: &str) {
    let status = publisher
        .wait(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{what}: ffmpeg still running (not refused)"));
    assert!(!status.success(), "{what}: ffmpeg succeeded");
}

#[test]
fn three_publishers_with_each_stream_id_form_share_one_port() {
    let server = Server::start_with(&[
        ("CUECAST_STREAMS", STREAMS),
        ("CUECAST_SRT_IDLE_TIMEOUT_S", "3"),
    ]);
    let url = server.srt_url();
    let _demo = Publisher::ffmpeg_srt(
        &url,
        "#!::u=host1,r=live/demo-key,m=publish",
        &[],
        90,
        "libx264",
    );
    let _second = Publisher::ffmpeg_srt(
        &url,
        "publish:live/second-key",
        &["-passphrase", "second-secret-42", "-pbkeylen", "32"],
        90,
        "libx264",
    );
    let _third = Publisher::ffmpeg_srt(&url, "third-key", &[], 90, "libx264");

    let urls: Vec<String> = ["demo", "second", "third"]
        .iter()
        .map(|name| media_url(&server, name, "source"))
        .collect();
    for url in &urls {
        wait_for(url, READY, segments_at_least(2));
    }
    for url in &urls {
        let probe = probe_first_segment(&server, url);
        assert_eq!(probe.codec_name, "h264");
        assert_eq!((probe.width, probe.height), (Some(640), Some(360)));
    }
    let audio = media_url(&server, "demo", "audio");
    let audio_text = wait_for(&audio, READY, segments_at_least(1));
    assert!(!audio_text.contains("#EXT-X-ENDLIST"));
    let log = server.log();
    assert!(log.contains("SRT caller connected"), "{log}");
    assert!(log.contains("user=host1"), "{log}");
    assert!(
        !log.contains("live/demo-key"),
        "stream ids are logged without their key:\n{log}"
    );

    // Refused at handshake, each with its reason, while the three keep publishing.
    let before: Vec<u64> = urls.iter().map(|u| last_msn(&text(u))).collect();
    let cases: [(&str, &[&str], &str); 5] = [
        ("#!::r=live/wrong-key,m=publish", &[], "SRT_REJX_FORBIDDEN"),
        ("#!::r=live/demo-key,m=request", &[], "SRT_REJX_BAD_MODE"),
        ("#!::r=live/demo-key,m=publish", &[], "SRT_REJX_CONFLICT"),
        ("", &[], "SRT_REJX_NOTFOUND"),
        ("#!::r", &[], "SRT_REJX_BAD_REQUEST"),
    ];
    for (stream_id, options, reason) in cases {
        let publisher = Publisher::ffmpeg_srt(&url, stream_id, options, 10, "libx264");
        assert_refused(publisher, stream_id);
        let log = wait_log(&server, reason, Duration::from_secs(5));
        assert!(log.contains("SRT caller rejected"), "{log}");
    }
    // Garbage datagrams on the port and a caller that connects but never sends.
    let noise = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let mut seed = 0x9e37_79b9_u32;
    for _ in 0..500 {
        let packet: Vec<u8> = (0..1316)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed as u8
            })
            .collect();
        let _ = noise.send_to(&packet, ("127.0.0.1", server.srt_port));
    }
    for (url, before) in urls.iter().zip(before) {
        let later = wait_for(url, READY, |t| last_msn(t) >= before + 3);
        assert!(!later.contains("#EXT-X-ENDLIST"), "{later}");
    }
}

#[test]
fn silent_caller_holds_nothing_and_is_closed() {
    let server = Server::start_with(&[("CUECAST_SRT_IDLE_TIMEOUT_S", "3")]);
    let url = server.srt_url();
    // Connects with a valid key and never sends: stdin stays open and empty.
    let mut silent = Publisher::spawn_program_stdin(
        "srt-live-transmit",
        &[
            "file://con".to_string(),
            format!("{url}?streamid=publish:live/demo-key"),
        ],
    );
    wait_log(&server, "SRT caller connected", READY);
    // The stream is not claimed: a real publisher of the same key gets in meanwhile.
    let _publisher = Publisher::ffmpeg_srt(&url, "demo-key", &[], 60, "libx264");
    let playlist = media_url(&server, "demo", "source");
    let first = wait_for(&playlist, READY, segments_at_least(1));
    let log = wait_log(&server, "no data for 3s", Duration::from_secs(15));
    assert!(log.contains("published=false"), "{log}");
    // The publisher is undisturbed.
    wait_for(&playlist, READY, |t| last_msn(t) >= last_msn(&first) + 2);
    silent.kill();
}

#[test]
fn global_passphrase_with_each_key_length() {
    let server = Server::start_with(&[
        ("CUECAST_STREAMS", STREAMS),
        ("CUECAST_SRT_PASSPHRASE", "global-secret-123"),
        ("CUECAST_SRT_PBKEYLEN", "24"),
    ]);
    let url = server.srt_url();
    let secret = ["-passphrase", "global-secret-123"];
    let _a = Publisher::ffmpeg_srt(
        &url,
        "demo-key",
        &[secret[0], secret[1], "-pbkeylen", "16"],
        60,
        "libx264",
    );
    let _c = Publisher::ffmpeg_srt(
        &url,
        "third-key",
        &[secret[0], secret[1], "-pbkeylen", "32"],
        60,
        "libx264",
    );
    // `second` has its own passphrase, which overrides the global one.
    let _b = Publisher::ffmpeg_srt(
        &url,
        "second-key",
        &["-passphrase", "second-secret-42", "-pbkeylen", "24"],
        60,
        "libx264",
    );
    for name in ["demo", "second", "third"] {
        let url = media_url(&server, name, "source");
        wait_for(&url, READY, segments_at_least(1));
    }
    let live = server.log();
    assert!(live.contains("encrypted=true"), "{live}");
    drop((_a, _b, _c));
    wait_log(&server, "SRT caller disconnected", READY);
}

#[test]
fn unencrypted_or_wrong_passphrase_is_rejected_and_logged() {
    let server = Server::start_with(&[
        ("CUECAST_STREAMS", STREAMS),
        ("CUECAST_SRT_PASSPHRASE", "global-secret-123"),
    ]);
    let url = server.srt_url();
    let cases: [(&str, &[&str]); 3] = [
        ("demo-key", &[]),
        ("demo-key", &["-passphrase", "wrong-secret-123"]),
        // `second` has its own passphrase: the global one does not open it.
        ("second-key", &["-passphrase", "global-secret-123"]),
    ];
    for (stream_id, options) in cases {
        assert_refused(
            Publisher::ffmpeg_srt(&url, stream_id, options, 10, "libx264"),
            &format!("{stream_id} {options:?}"),
        );
    }
    let log = server.log();
    // The caller's address and socket id, then libsrt's reason for that socket.
    assert!(log.contains("handshake continues peer=127.0.0.1:"), "{log}");
    assert!(log.contains("Incorrect passphrase"), "{log}");
    assert!(log.contains("Password required or unexpected"), "{log}");
    assert!(!log.contains("SRT publish started"), "{log}");
    for name in ["demo", "second"] {
        let (status, _, _) = get(&server.url(&format!("/hls/{name}/index.m3u8")));
        assert_eq!(status, 404);
    }
    // A passphrase where none is configured is refused too (no silent downgrade).
    let open = Server::start();
    assert_refused(
        Publisher::ffmpeg_srt(
            &open.srt_url(),
            "demo-key",
            &["-passphrase", "needless-secret"],
            10,
            "libx264",
        ),
        "unexpected passphrase",
    );
    assert!(open.log().contains("Password required or unexpected"));
}

#[test]
fn gstreamer_srtsink_publishes() {
    let server = Server::start();
    let uri = format!("{}?streamid=publish:live/demo-key", server.srt_url());
    let _publisher = Publisher::srtsink(&uri, 60);
    let url = media_url(&server, "demo", "source");
    wait_for(&url, READY, segments_at_least(2));
    let probe = probe_first_segment(&server, &url);
    assert_eq!(probe.codec_name, "h264");
    assert_eq!((probe.width, probe.height), (Some(640), Some(360)));
    let master = text(&server.url("/hls/demo/index.m3u8"));
    assert!(master.contains("mp4a.40.2"), "{master}");
}

#[test]
fn h265_over_srt_becomes_hvc1() {
    let server = Server::start();
    let _publisher = Publisher::ffmpeg_srt(
        &server.srt_url(),
        "#!::r=live/demo-key,m=publish",
        &[],
        60,
        "libx265",
    );
    let url = media_url(&server, "demo", "source");
    wait_for(&url, READY, segments_at_least(2));
    let master = text(&server.url("/hls/demo/index.m3u8"));
    assert!(master.contains("CODECS=\"hvc1."), "{master}");
    let probe = probe_first_segment(&server, &url);
    assert_eq!(probe.codec_name, "hevc");
    assert_eq!((probe.width, probe.height), (Some(640), Some(360)));
    // The stream's live status tells the protocol and the codec.
    let url = server.url("/api/streams/demo/status");
    let (status, _, live) = common::call("GET", &url, Some("dev-admin-token"), None);
    assert_eq!(status, 200, "{live}");
    assert_eq!(live["protocol"], "srt", "{live}");
    assert_eq!(live["video"]["codec"], "h265", "{live}");
    assert_eq!(live["video"]["width"], 640, "{live}");
    assert!(
        live["ingest_bitrate_kbps"]
            .as_f64()
            .is_some_and(|k| k > 0.0),
        "{live}"
    );
}

/// libsrt is released before the process exits: without `srt_cleanup`, its static destructors
/// ran under its own garbage-collection thread and an idle server died of SIGSEGV (exit 139)
/// after logging "stopped", every time. Several rounds, with and without an SRT publisher.
#[test]
fn the_server_exits_cleanly_after_srt_on_sigterm() {
    for round in 0..3 {
        let mut server = Server::start();
        let publisher = (round == 2).then(|| {
            let uri = format!("{}?streamid=publish:live/demo-key", server.srt_url());
            let publisher = Publisher::srtsink(&uri, 30);
            let url = media_url(&server, "demo", "source");
            wait_for(&url, READY, segments_at_least(1));
            publisher
        });
        server.terminate();
        let status = server
            .wait_exit(Duration::from_secs(20))
            .expect("server exits");
        assert!(
            status.success(),
            "round {round}: exit status {status:?}\n{}",
            server.log()
        );
        drop(publisher);
    }
}
