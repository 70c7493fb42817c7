//! End to end over RTMPS: ffmpeg publishes `rtmps://` into a real `cuecast serve` process and
//! the HLS it becomes is decoded by ffprobe; plain RTMP, garbage and silence on the TLS port are
//! refused with a log line and counted while a stream on the plain port keeps producing; a wrong
//! key is refused as over RTMP; a configured certificate is the one a TLS client is shown.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use common::{
    Publisher, Server, call, ffprobe, get, last_msn, listed_parts, media_url, parse_media,
    segments_at_least, wait_for, wait_log,
};

const READY: Duration = Duration::from_secs(20);
const ADMIN: &str = "dev-admin-token";

/// The value of a counter line `name{labels} N` in `/metrics`.
fn metric(server: &Server, line_prefix: &str) -> u64 {
    let (_, _, body) = get(&server.url("/metrics"));
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(line_prefix)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {line_prefix}"))
}

#[test]
fn ffmpeg_publishes_over_rtmps_and_the_hls_decodes() {
    let server = Server::start();
    assert_ne!(server.rtmps_port, server.rtmp_port);
    assert!(
        server.log().contains("self-signed development certificate"),
        "{}",
        server.log()
    );
    let mut publisher = Publisher::ffmpeg(&server.rtmps_url("demo-key"), 9);

    let video_url = media_url(&server, "demo", "source");
    let text = wait_for(&video_url, READY, segments_at_least(2));
    let playlist = parse_media(&text);
    let (status, _, init) = get(&video_url.replace("playlist.m3u8", "init.mp4"));
    assert_eq!(status, 200);
    let (status, _, segment) = get(&video_url.replace("playlist.m3u8", &playlist.segments[0].uri));
    assert_eq!(status, 200);
    let mut file = init.clone();
    file.extend_from_slice(&segment);
    let probe = ffprobe(&file, server.dir.path());
    assert_eq!(probe.codec_name, "h264");
    assert_eq!((probe.width, probe.height), (Some(640), Some(360)));
    assert!((probe.duration - 2.0).abs() < 0.1, "{}", probe.duration);
    // LL-HLS parts of the same stream decode too.
    let (parts, _) = listed_parts(&text);
    let part = parts.last().expect("parts listed");
    let (status, _, bytes) = get(&video_url.replace("playlist.m3u8", &part.uri));
    assert_eq!(status, 200);
    let mut file = init;
    file.extend_from_slice(&bytes);
    assert_eq!(ffprobe(&file, server.dir.path()).codec_name, "h264");

    // The publisher is reported as an RTMPS one.
    let (status, _, streams) = call("GET", &server.url("/api/streams"), Some(ADMIN), None);
    assert_eq!(status, 200, "{streams}");
    let demo = streams["streams"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == "demo"))
        .unwrap_or_else(|| panic!("{streams}"));
    assert_eq!(demo["publisher"]["protocol"], "rtmps", "{streams}");
    // And so by the stream's live status.
    let url = server.url("/api/streams/demo/status");
    let (status, _, live) = call("GET", &url, Some(ADMIN), None);
    assert_eq!(status, 200, "{live}");
    assert_eq!(live["protocol"], "rtmps", "{live}");

    let status = publisher
        .wait(Duration::from_secs(30))
        .expect("ffmpeg ends");
    assert!(status.success(), "ffmpeg: {}", publisher.stderr());
    let ended = wait_for(&video_url, Duration::from_secs(10), |t| {
        t.contains("#EXT-X-ENDLIST")
    });
    let total: f32 = parse_media(&ended)
        .segments
        .iter()
        .map(|s| s.duration)
        .sum();
    assert!(
        total > 7.0,
        "about 9 s published, {total} s listed\n{ended}"
    );
}

#[test]
fn plain_rtmp_garbage_and_silence_on_the_tls_port_are_refused_while_rtmp_keeps_producing() {
    let server = Server::start_with(&[("CUECAST_RTMPS_HANDSHAKE_TIMEOUT_S", "1")]);
    let _healthy = Publisher::ffmpeg(&server.rtmp_url("second-key"), 40);
    let url = media_url(&server, "second", "source");
    let before = last_msn(&wait_for(&url, READY, segments_at_least(1)));

    // ffmpeg speaking plain RTMP to the TLS port.
    let mut plain = Publisher::ffmpeg(
        &format!("rtmp://127.0.0.1:{}/live/demo-key", server.rtmps_port),
        5,
    );
    let status = plain
        .wait(Duration::from_secs(15))
        .expect("refused ffmpeg exits");
    assert!(!status.success(), "plain RTMP on the TLS port must fail");
    let log = wait_log(
        &server,
        "plain RTMP on the TLS port",
        Duration::from_secs(5),
    );
    assert!(
        log.contains("RTMPS connection refused peer=127.0.0.1:"),
        "{log}"
    );

    // Bytes that are neither TLS nor RTMP: closed by the TLS handshake.
    let mut garbage = TcpStream::connect(("127.0.0.1", server.rtmps_port)).unwrap();
    garbage.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert!(closed(&mut garbage), "garbage must be closed");
    // A client that connects and says nothing: closed after the handshake timeout.
    let mut silent = TcpStream::connect(("127.0.0.1", server.rtmps_port)).unwrap();
    assert!(closed(&mut silent), "a silent client must be closed");
    let log = wait_log(
        &server,
        "TLS handshake not completed",
        Duration::from_secs(5),
    );
    assert!(log.contains("TLS handshake failed"), "{log}");

    let name = "cuecast_rtmps_handshake_failures_total";
    assert_eq!(
        metric(&server, &format!("{name}{{reason=\"plain_rtmp\"}}")),
        1
    );
    assert_eq!(metric(&server, &format!("{name}{{reason=\"tls\"}}")), 1);
    assert_eq!(metric(&server, &format!("{name}{{reason=\"timeout\"}}")), 1);
    assert!(!log.contains("panicked"), "{log}");

    // The stream on the plain port was undisturbed and keeps producing.
    let after = wait_for(&url, READY, |t| last_msn(t) >= before + 2);
    assert!(!after.contains("#EXT-X-ENDLIST"), "{after}");
    // Nothing was published under the key tried in plain RTMP.
    let (status, _, _) = get(&server.url("/hls/demo/index.m3u8"));
    assert_eq!(status, 404);
}

/// True once the server closed `stream` (EOF or reset) within 5 s.
fn closed(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(err) => {
                return !matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
            }
        }
    }
}

#[test]
fn wrong_key_over_rtmps_is_refused_as_over_rtmp() {
    let server = Server::start();
    let mut wrong = Publisher::ffmpeg(&server.rtmps_url("not-a-key"), 5);
    let status = wrong
        .wait(Duration::from_secs(15))
        .expect("refused ffmpeg exits");
    assert!(!status.success(), "an unknown key must be refused");
    let log = wait_log(&server, "unknown stream key", Duration::from_secs(5));
    assert!(log.contains("RTMP publish refused"), "{log}");
    let (status, _, _) = get(&server.url("/hls/not-a-key/index.m3u8"));
    assert_eq!(status, 404);
    let refused = metric(&server, "cuecast_rtmp_publishes_refused_total");
    assert_eq!(refused, 1);
    // The TLS handshake itself succeeded: no handshake failure counted.
    let name = "cuecast_rtmps_handshake_failures_total";
    assert_eq!(metric(&server, &format!("{name}{{reason=\"tls\"}}")), 0);
}

#[test]
fn a_configured_certificate_is_the_one_presented() {
    // A CA and a leaf for rtmps.test it signed, written as an operator would install them.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "cuecast test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["rtmps.test".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("fullchain.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, format!("{}{}", leaf.pem(), ca.pem())).unwrap();
    std::fs::write(&key_file, leaf_key.serialize_pem()).unwrap();

    let server = Server::start_with(&[
        ("CUECAST_RTMPS_CERT_FILE", cert_file.to_str().unwrap()),
        ("CUECAST_RTMPS_KEY_FILE", key_file.to_str().unwrap()),
    ]);
    assert!(
        !server.log().contains("self-signed development certificate"),
        "{}",
        server.log()
    );

    // A verifying client that trusts only the CA completes the handshake for rtmps.test and is
    // shown exactly the configured leaf and chain.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("rtmps.test").unwrap();
    let mut client = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut socket = TcpStream::connect(("127.0.0.1", server.rtmps_port)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    while client.is_handshaking() {
        client
            .complete_io(&mut socket)
            .unwrap_or_else(|e| panic!("handshake: {e}\n{}", server.log()));
    }
    let presented = client.peer_certificates().expect("server certificates");
    assert_eq!(presented[0].as_ref(), leaf.der().as_ref());
    assert_eq!(presented[1].as_ref(), ca.der().as_ref());

    // RTMP then runs inside: C0+C1 in, S0 (version 3) + S1 + S2 back.
    let mut tls = rustls::Stream::new(&mut client, &mut socket);
    let mut c0c1 = vec![3u8];
    c0c1.extend(std::iter::repeat_n(0u8, 1536));
    tls.write_all(&c0c1).unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 2 * 1536];
    tls.read_exact(&mut s0s1s2).unwrap();
    assert_eq!(s0s1s2[0], 3);
}
