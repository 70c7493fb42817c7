//! Issue #31, ingest side: clients that misbehave over time or exhaust resources on purpose,
//! against a real `cuecast serve`. Each test runs a healthy ffmpeg publisher (stream `demo`)
//! beside the hostile clients and asserts both the bounded outcome (the connection closed in
//! time, the refusal counted, memory not following a declared size) and that the healthy
//! stream kept producing LL-HLS parts on time meanwhile ([`PartWatch`]).
//!
//! The hostile RTMP peer is written here from the spec (handshake, chunk writer, AMF0), so it
//! can send what no encoder would.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{
    Publisher, Server, closed_by_peer, get, listed_parts, media_url, segments_at_least, text,
    wait_for, wait_log,
};

const READY: Duration = Duration::from_secs(30);
/// Longest wait between two new parts of the healthy stream (parts are 0.2 s long; the slack
/// covers a machine shared with other builds). A stalled ingest thread exceeds it at once.
const PART_DEADLINE: Duration = Duration::from_secs(2);

/// A raw RTMP client: only what the tests send.
mod rtmp {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::time::Duration;

    /// AMF0 encoders.
    pub fn string(out: &mut Vec<u8>, s: &str) {
        if let Ok(len) = u16::try_from(s.len()) {
            out.push(0x02);
            out.extend(len.to_be_bytes());
        } else {
            out.push(0x0C);
            out.extend((s.len() as u32).to_be_bytes());
        }
        out.extend(s.as_bytes());
    }

    pub fn number(out: &mut Vec<u8>, n: f64) {
        out.push(0x00);
        out.extend(n.to_be_bytes());
    }

    pub fn null(out: &mut Vec<u8>) {
        out.push(0x05);
    }

    /// An object of string properties.
    pub fn object(out: &mut Vec<u8>, properties: &[(&str, &str)]) {
        out.push(0x03);
        for (key, value) in properties {
            out.extend((key.len() as u16).to_be_bytes());
            out.extend(key.as_bytes());
            string(out, value);
        }
        out.extend([0, 0, 9]);
    }

    /// A command message payload: name, transaction id, then `rest` (already encoded).
    pub fn command(name: &str, txn: f64, rest: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        string(&mut out, name);
        number(&mut out, txn);
        out.extend(rest);
        out
    }

    /// One message as chunks of `chunk_size`: a type 0 chunk, then type 3 continuations.
    pub fn chunks(
        csid: u8,
        type_id: u8,
        stream_id: u32,
        payload: &[u8],
        chunk_size: usize,
    ) -> Vec<u8> {
        let mut out = vec![csid & 0x3F, 0, 0, 0];
        out.extend(&(payload.len() as u32).to_be_bytes()[1..]);
        out.push(type_id);
        out.extend(stream_id.to_le_bytes());
        for (i, piece) in payload.chunks(chunk_size).enumerate() {
            if i > 0 {
                out.push(0xC0 | (csid & 0x3F));
            }
            out.extend(piece);
        }
        out
    }

    /// A command on chunk stream 3 (stream 0) or 8 (a message stream).
    pub fn command_message(stream_id: u32, payload: &[u8]) -> Vec<u8> {
        let csid = if stream_id == 0 { 3 } else { 8 };
        chunks(csid, 20, stream_id, payload, 128)
    }

    /// Set Chunk Size `size`.
    pub fn set_chunk_size(size: u32) -> Vec<u8> {
        chunks(2, 1, 0, &size.to_be_bytes(), 128)
    }

    /// `connect` to application `live`.
    pub fn connect_message() -> Vec<u8> {
        let mut rest = Vec::new();
        object(
            &mut rest,
            &[("app", "live"), ("tcUrl", "rtmp://127.0.0.1/live")],
        );
        command_message(0, &command("connect", 1.0, &rest))
    }

    /// `createStream` (the server answers stream id 1) then `publish(name)` on stream 1.
    pub fn publish_messages(name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = Vec::new();
        null(&mut rest);
        out.extend(command_message(0, &command("createStream", 2.0, &rest)));
        string(&mut rest, name);
        string(&mut rest, "live");
        out.extend(command_message(1, &command("publish", 3.0, &rest)));
        out
    }

    /// Connects and completes the handshake (C0 C1, reads S0 S1 S2, C2).
    pub fn handshake(addr: SocketAddr) -> TcpStream {
        let mut socket = TcpStream::connect(addr).expect("connect");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut c0c1 = vec![3u8];
        c0c1.extend((0..1536).map(|i| (i % 251) as u8));
        socket.write_all(&c0c1).expect("C0 C1");
        let mut s0s1s2 = vec![0u8; 1 + 2 * 1536];
        socket.read_exact(&mut s0s1s2).expect("S0 S1 S2");
        assert_eq!(s0s1s2[0], 3);
        socket.write_all(&[0x55; 1536]).expect("C2");
        socket
    }

    /// Handshake and `connect`.
    pub fn connected(addr: SocketAddr) -> TcpStream {
        let mut socket = handshake(addr);
        socket.write_all(&connect_message()).expect("connect");
        socket
    }
}

/// The healthy stream: polls its source media playlist and records when each new part shows.
struct PartWatch {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(usize, Duration)>,
}

impl PartWatch {
    /// Waits for `stream` to play, then watches its parts.
    fn start(server: &Server, stream: &str) -> PartWatch {
        let url = media_url(server, stream, "source");
        wait_for(&url, READY, segments_at_least(1));
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut last = listed_parts(&text(&url)).1;
            let mut last_at = Instant::now();
            let (mut parts, mut longest) = (0usize, Duration::ZERO);
            while !stopping.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                let next = listed_parts(&text(&url)).1;
                longest = longest.max(last_at.elapsed());
                if next != last {
                    parts += 1;
                    last = next;
                    last_at = Instant::now();
                }
            }
            (parts, longest)
        });
        PartWatch { stop, thread }
    }

    /// Stops watching; asserts parts kept coming for the `watched` time, never more than
    /// [`PART_DEADLINE`] apart.
    fn assert_on_time(self, watched: Duration) {
        self.stop.store(true, Ordering::Relaxed);
        let (updates, longest) = self.thread.join().expect("watcher");
        assert!(
            longest <= PART_DEADLINE,
            "the healthy stream went {longest:?} without a new part"
        );
        // Playlist updates (each adds one part or more) at least every PART_DEADLINE.
        let at_least = (watched.as_secs_f64() / PART_DEADLINE.as_secs_f64()) as usize;
        assert!(updates >= at_least, "{updates} part updates in {watched:?}");
    }
}

/// A server with the given overrides and a healthy ffmpeg publisher on `demo` for `seconds`.
fn server_with_healthy_stream(env: &[(&str, &str)], seconds: u32) -> (Server, Publisher) {
    let server = Server::start_with(env);
    let publisher = Publisher::ffmpeg_args(&server.rtmp_url("demo-key"), seconds, "320x180");
    (server, publisher)
}

fn rtmp_addr(server: &Server) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], server.rtmp_port))
}

/// `cuecast_ingest_refused_total{protocol,reason}` from `/metrics`.
fn refused(server: &Server, protocol: &str, reason: &str) -> u64 {
    let metrics = String::from_utf8_lossy(&get(&server.url("/metrics")).2).into_owned();
    let series =
        format!("cuecast_ingest_refused_total{{protocol=\"{protocol}\",reason=\"{reason}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
}

/// [`refused`] once it reaches `at_least` (the server counts a connection as it finishes closing
/// it, so a test may see the close first), or after 5 s.
fn refused_reaches(server: &Server, protocol: &str, reason: &str, at_least: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let value = refused(server, protocol, reason);
        if value >= at_least || Instant::now() >= deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads what the server sends until it closes the connection; `None` if still open after
/// `timeout`.
fn read_until_closed(socket: &mut TcpStream, timeout: Duration) -> Option<Vec<u8>> {
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let deadline = Instant::now() + timeout;
    let mut all = Vec::new();
    let mut buf = [0u8; 8192];
    while Instant::now() < deadline {
        match socket.read(&mut buf) {
            Ok(0) => return Some(all),
            Ok(n) => all.extend(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(all),
        }
    }
    None
}

/// True while the server keeps `socket` open (what it sent is read and dropped).
fn is_open(socket: &mut TcpStream) -> bool {
    socket.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 8192];
    loop {
        match socket.read(&mut buf) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

/// Reads until the server's replies contain `needle` (panics after `timeout`).
fn wait_reply(socket: &mut TcpStream, needle: &str, timeout: Duration) {
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let deadline = Instant::now() + timeout;
    let mut all = Vec::new();
    let mut buf = [0u8; 8192];
    while !contains(&all, needle) {
        assert!(Instant::now() < deadline, "no {needle} in the replies");
        match socket.read(&mut buf) {
            Ok(0) => panic!("closed before {needle}"),
            Ok(n) => all.extend(&buf[..n]),
            Err(_) => {}
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Memory of the server process (found by its data directory), KiB: resident and virtual
/// (`VmSize` shows what was reserved even where no page was touched yet).
fn server_memory_kib(server: &Server) -> (u64, u64) {
    let marker = format!(
        "CUECAST_SERVER_DATA_DIR={}",
        server.dir.path().join("data").display()
    );
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ
            .split(|&b| b == 0)
            .any(|var| var == marker.as_bytes())
        {
            let status = std::fs::read_to_string(entry.path().join("status")).expect("status");
            let field = |name: &str| -> u64 {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                    .unwrap_or_else(|| panic!("no {name}"))
            };
            return (field("VmRSS:"), field("VmSize:"));
        }
    }
    panic!("server process not found");
}

#[test]
fn unfinished_and_trickled_handshakes_are_closed_by_the_handshake_timeout() {
    let (server, _publisher) = server_with_healthy_stream(
        &[
            ("CUECAST_RTMP_HANDSHAKE_TIMEOUT_S", "2"),
            // Longer than the test waits: only the handshake timeout can close them.
            ("CUECAST_RTMP_IDLE_TIMEOUT_S", "30"),
        ],
        60,
    );
    let watch = PartWatch::start(&server, "demo");
    let started = Instant::now();
    let addr = rtmp_addr(&server);

    // Connects and sends nothing.
    let mut silent = TcpStream::connect(addr).expect("connect");
    // Sends C0 and then one byte of C1 per 300 ms: never idle, never done.
    let trickle = std::thread::spawn(move || {
        let mut socket = TcpStream::connect(addr).expect("connect");
        let opened = Instant::now();
        for _ in 0..100 {
            if socket.write_all(&[3]).is_err() {
                return Some(opened.elapsed());
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        None
    });
    // Completes the handshake and connect, then sends pings instead of publishing.
    let mut stalled = rtmp::connected(addr);
    let pinger = {
        let mut socket = stalled.try_clone().expect("clone");
        std::thread::spawn(move || {
            let ping = rtmp::chunks(2, 4, 0, &[0, 6, 0, 0, 0, 1], 128);
            for _ in 0..100 {
                if socket.write_all(&ping).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };

    assert!(
        closed_by_peer(&mut silent, Duration::from_secs(8)),
        "silent connection still open"
    );
    let trickled = trickle.join().expect("trickle");
    let trickled = trickled.expect("the trickling connection was never closed");
    assert!(trickled < Duration::from_secs(8), "{trickled:?}");
    assert!(
        closed_by_peer(&mut stalled, Duration::from_secs(8)),
        "connected but never published: still open"
    );
    pinger.join().expect("pinger");
    assert!(started.elapsed() >= Duration::from_millis(1900));
    assert_eq!(refused_reaches(&server, "rtmp", "handshake_timeout", 3), 3);
    common::wait_log_count(&server, "not publishing 2s after connecting", 3, READY);
    watch.assert_on_time(started.elapsed());
}

#[test]
fn chunk_size_attacks_close_the_connection_and_memory_does_not_follow_declared_sizes() {
    // Room for the forty stalled connections below (all from 127.0.0.1).
    let (server, _publisher) =
        server_with_healthy_stream(&[("CUECAST_RTMP_MAX_CONNECTIONS_PER_IP", "64")], 60);
    let watch = PartWatch::start(&server, "demo");
    let started = Instant::now();
    let addr = rtmp_addr(&server);

    for size in [0u32, 1, 0x7FFF_FFFF] {
        let mut socket = rtmp::connected(addr);
        socket.write_all(&rtmp::set_chunk_size(size)).expect("send");
        assert!(
            closed_by_peer(&mut socket, Duration::from_secs(5)),
            "Set Chunk Size {size}: connection still open"
        );
    }
    // Half of a 1000-byte video message, then Set Chunk Size.
    let mut socket = rtmp::connected(addr);
    let video = rtmp::chunks(6, 9, 1, &[0x17; 1000], 128);
    socket
        .write_all(&video[..12 + 128 + 1 + 128])
        .expect("send");
    socket.write_all(&rtmp::set_chunk_size(4096)).expect("send");
    assert!(
        closed_by_peer(&mut socket, Duration::from_secs(5)),
        "mid-message change: still open"
    );
    for line in [
        "RTMP chunk size 0 is outside 128..=65536",
        "RTMP chunk size 1 is outside",
        "RTMP chunk size 2147483647 is outside",
        "Set Chunk Size 4096 while a message is incomplete",
    ] {
        wait_log(&server, line, Duration::from_secs(5));
    }

    // Forty connections each declare a 16 MiB - 1 message, send 64 KiB of it and stall. If the
    // server reserved what the headers claim it would hold 640 MiB; it holds what arrived.
    let before = server_memory_kib(&server);
    let mut stalled = Vec::new();
    for _ in 0..40 {
        let mut socket = rtmp::connected(addr);
        socket
            .write_all(&rtmp::set_chunk_size(65_536))
            .expect("send");
        let mut message = vec![6, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0];
        message.extend(vec![0x17; 64 * 1024]);
        socket.write_all(&message).expect("send");
        stalled.push(socket);
    }
    std::thread::sleep(Duration::from_secs(1));
    let after = server_memory_kib(&server);
    let rss_mib = after.0.saturating_sub(before.0) / 1024;
    let virtual_mib = after.1.saturating_sub(before.1) / 1024;
    assert!(
        rss_mib < 64 && virtual_mib < 128,
        "server memory grew {rss_mib} MiB resident, {virtual_mib} MiB virtual for 40 × 64 KiB received"
    );
    // They are under every limit: still open, waiting for the rest of their messages.
    assert!(stalled.iter_mut().all(is_open));
    drop(stalled);
    assert_eq!(refused_reaches(&server, "rtmp", "protocol_limit", 4), 4);
    watch.assert_on_time(started.elapsed());
}

#[test]
fn message_past_the_size_limit_is_refused_from_its_header() {
    let (server, _publisher) =
        server_with_healthy_stream(&[("CUECAST_RTMP_MAX_MESSAGE_SIZE", "1048576")], 40);
    let watch = PartWatch::start(&server, "demo");
    let started = Instant::now();
    let mut socket = rtmp::connected(rtmp_addr(&server));
    // Declares 2 MiB; only the header is sent.
    socket
        .write_all(&[6, 0, 0, 0, 0x20, 0x00, 0x00, 9, 1, 0, 0, 0])
        .expect("send");
    assert!(
        closed_by_peer(&mut socket, Duration::from_secs(5)),
        "still open"
    );
    wait_log(
        &server,
        "RTMP message of 2097152 bytes exceeds the limit of 1048576 bytes",
        Duration::from_secs(5),
    );
    assert_eq!(refused_reaches(&server, "rtmp", "protocol_limit", 1), 1);
    std::thread::sleep(Duration::from_secs(3));
    watch.assert_on_time(started.elapsed());
}

#[test]
fn hostile_amf0_and_stream_names_are_refused_without_a_lookup() {
    let (server, _publisher) = server_with_healthy_stream(&[], 60);
    let watch = PartWatch::start(&server, "demo");
    let started = Instant::now();
    let addr = rtmp_addr(&server);

    // AMF0: `connect` with a command object nested 1,000 deep.
    let mut nested = Vec::new();
    for _ in 0..1000 {
        nested.extend([0x03, 0x00, 0x01, b'a']);
    }
    nested.push(0x05);
    for _ in 0..1000 {
        nested.extend([0, 0, 9]);
    }
    // A string whose length runs past the end of the message.
    let past_end_string = [0x02, 0xFF, 0xFF, b'a', b'b', b'c'];
    // A strict array claiming 2^32 - 1 elements, with two.
    let mut past_end_array = vec![0x0A, 0xFF, 0xFF, 0xFF, 0xFF];
    rtmp::number(&mut past_end_array, 1.0);
    rtmp::number(&mut past_end_array, 2.0);
    for (what, rest) in [
        ("nested 1000 deep", nested),
        ("string past the end", past_end_string.to_vec()),
        ("array count past the end", past_end_array),
    ] {
        let mut socket = rtmp::handshake(addr);
        let message = rtmp::command_message(0, &rtmp::command("connect", 1.0, &rest));
        socket.write_all(&message).expect("send");
        assert!(
            closed_by_peer(&mut socket, Duration::from_secs(5)),
            "{what}: still open"
        );
    }
    common::wait_log_count(&server, "protocol error: AMF0: ", 3, Duration::from_secs(5));

    // Publish before connect.
    let mut socket = rtmp::handshake(addr);
    socket
        .write_all(&rtmp::publish_messages("demo-key"))
        .expect("send");
    assert!(
        closed_by_peer(&mut socket, Duration::from_secs(5)),
        "publish before connect: open"
    );
    wait_log(&server, "command before connect", Duration::from_secs(5));

    // Stream names: refused with NetStream.Publish.BadName before any key lookup.
    let long = "k".repeat(10 * 1024);
    for name in [
        long.as_str(),
        "../../../etc/passwd",
        "%2e%2e%2fdemo-key",
        "demo-key\0.flv",
    ] {
        let mut socket = rtmp::connected(addr);
        socket
            .write_all(&rtmp::publish_messages(name))
            .expect("send");
        let replies = read_until_closed(&mut socket, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{:.20}: still open", name));
        assert!(
            contains(&replies, "NetStream.Publish.BadName"),
            "{:.20}",
            name
        );
    }
    assert_eq!(refused_reaches(&server, "rtmp", "bad_stream_name", 4), 4);
    let log = common::wait_log_count(
        &server,
        "reason=protocol error: refused stream name",
        4,
        READY,
    );
    assert!(
        !log.contains("unknown stream key"),
        "a hostile name was looked up:\n{log}"
    );
    assert!(!log.contains("etc/passwd"), "{log}");
    let data = server.dir.path().join("data");
    let mut stack = vec![data];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                !name.contains("passwd") && !name.contains('%'),
                "{name} in {}",
                dir.display()
            );
            if entry.path().is_dir() {
                stack.push(entry.path());
            }
        }
    }
    watch.assert_on_time(started.elapsed());
}

#[test]
fn video_before_its_codec_header_and_a_one_track_stream() {
    let (server, _publisher) = server_with_healthy_stream(&[], 60);
    let watch = PartWatch::start(&server, "demo");
    let started = Instant::now();
    let addr = rtmp_addr(&server);

    // Publishes `second` and sends coded frames (AVC NALU packets) with no sequence header.
    let mut socket = rtmp::connected(addr);
    socket
        .write_all(&rtmp::publish_messages("second-key"))
        .expect("send");
    wait_reply(
        &mut socket,
        "NetStream.Publish.Start",
        Duration::from_secs(5),
    );
    for i in 0..30u32 {
        let mut frame = vec![if i == 0 { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        frame.extend([0, 0, 0, 5, 0x65, 0x88, 0x84, 0x00, 0x33]);
        let mut message = rtmp::chunks(6, 9, 1, &frame, 128);
        // Timestamp (type 0 header, bytes 1..4).
        message[1..4].copy_from_slice(&(i * 33).to_be_bytes()[1..]);
        if socket.write_all(&message).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(33));
    }
    drop(socket);
    std::thread::sleep(Duration::from_secs(1));

    // The stream is usable afterwards: a real one-track (video only) publisher of `second`.
    let args: Vec<String> = format!(
        "-hide_banner -loglevel warning -nostdin -re -f lavfi -i testsrc2=size=320x180:rate=30 \
         -t 20 -c:v libx264 -preset veryfast -pix_fmt yuv420p -g 30 -an -f flv {}",
        server.rtmp_url("second-key")
    )
    .split_whitespace()
    .map(str::to_string)
    .collect();
    let _video_only = Publisher::spawn_program_stdin("ffmpeg", &args);
    let second = media_url(&server, "second", "source");
    let first = wait_for(&second, READY, segments_at_least(1));
    let master = text(&server.url("/hls/second/index.m3u8"));
    assert!(!master.contains("/audio/"), "{master}");
    wait_for(&second, READY, |t| {
        common::last_msn(t) >= common::last_msn(&first) + 2
    });
    watch.assert_on_time(started.elapsed());
}

#[test]
fn a_thousand_idle_connections_meet_the_per_ip_cap_and_the_timeout() {
    const CAP: usize = 8;
    let (server, _publisher) = server_with_healthy_stream(
        &[
            ("CUECAST_RTMP_MAX_CONNECTIONS_PER_IP", "8"),
            ("CUECAST_RTMP_HANDSHAKE_TIMEOUT_S", "3"),
        ],
        60,
    );
    let watch = PartWatch::start(&server, "demo");
    let started = Instant::now();
    // From 127.0.0.2, so the healthy publisher (127.0.0.1) keeps its own allowance.
    let target = socket2::SockAddr::from(rtmp_addr(&server));
    let local = socket2::SockAddr::from(SocketAddr::from(([127, 0, 0, 2], 0)));
    let mut sockets = Vec::new();
    for _ in 0..1000 {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        socket.bind(&local).expect("bind 127.0.0.2");
        socket.connect(&target).expect("connect");
        sockets.push(TcpStream::from(socket));
    }
    let open = |sockets: &mut Vec<TcpStream>| {
        sockets.retain_mut(is_open);
        sockets.len()
    };
    // The cap is applied at accept: all but CAP are closed at once (a few more may have got
    // in as the first ones reached the handshake timeout while the loop was still connecting).
    let deadline = Instant::now() + Duration::from_secs(5);
    while open(&mut sockets) > CAP && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(open(&mut sockets) <= CAP);
    let per_ip = refused(&server, "rtmp", "max_connections_per_ip");
    assert!(per_ip >= (1000 - 3 * CAP) as u64, "{per_ip} refused");
    // A publisher from another address still gets in meanwhile.
    let mut other = rtmp::connected(rtmp_addr(&server));
    other
        .write_all(&rtmp::publish_messages("second-key"))
        .expect("send");
    wait_reply(
        &mut other,
        "NetStream.Publish.Start",
        Duration::from_secs(5),
    );
    drop(other);
    // The ones within the cap never publish: closed by the handshake timeout.
    let deadline = Instant::now() + Duration::from_secs(8);
    while open(&mut sockets) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(open(&mut sockets), 0);
    // Every one of the 1,000 was either refused at accept or timed out.
    let timed_out = refused_reaches(&server, "rtmp", "handshake_timeout", 1000 - per_ip);
    assert_eq!(
        refused(&server, "rtmp", "max_connections_per_ip") + timed_out,
        1000
    );
    // One log line per second of refusals, not one per connection.
    let log = server.log();
    let lines = log.matches("connection refused").count();
    assert!((1..=10).contains(&lines), "{lines} refusal lines");

    // RTMP and RTMPS share the places: with CAP plain connections open from 127.0.0.3, an
    // RTMPS one from there is closed at accept, before TLS.
    let from = |ip: [u8; 4], port: u16| {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        socket
            .bind(&socket2::SockAddr::from(SocketAddr::from((ip, 0))))
            .expect("bind");
        socket
            .connect(&socket2::SockAddr::from(SocketAddr::from((
                [127, 0, 0, 1],
                port,
            ))))
            .expect("connect");
        TcpStream::from(socket)
    };
    let mut plain: Vec<TcpStream> = (0..CAP)
        .map(|_| from([127, 0, 0, 3], server.rtmp_port))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(open(&mut plain), CAP);
    let mut tls = from([127, 0, 0, 3], server.rtmps_port);
    assert!(
        closed_by_peer(&mut tls, Duration::from_secs(2)),
        "RTMPS over the shared cap"
    );
    assert_eq!(
        refused_reaches(&server, "rtmps", "max_connections_per_ip", 1),
        1
    );
    watch.assert_on_time(started.elapsed());
}

#[test]
fn srt_hostile_stream_ids_silent_callers_and_a_handshake_flood() {
    const CAP: usize = 4;
    let (server, _publisher) = server_with_healthy_stream(
        &[
            ("CUECAST_SRT_MAX_CONNECTIONS_PER_IP", "4"),
            ("CUECAST_SRT_IDLE_TIMEOUT_S", "3"),
        ],
        60,
    );
    let watch = PartWatch::start(&server, "demo");
    let started = Instant::now();
    let url = server.srt_url();
    let caller = |stream_id: &str| {
        Publisher::spawn_program_stdin(
            "srt-live-transmit",
            &[
                "file://con".to_string(),
                format!("{url}?streamid={stream_id}"),
            ],
        )
    };

    // Stream ids at libsrt's 512-byte limit with a key of path and percent characters.
    let refused_callers: Vec<Publisher> = [
        format!("publish:live/{}%2e%2e", "k".repeat(490)),
        format!("#!::r=live/..,m=publish,u={}", "u".repeat(480)),
    ]
    .iter()
    .map(|id| caller(id))
    .collect();
    assert_eq!(refused_reaches(&server, "srt", "bad_stream_name", 2), 2);
    common::wait_log_count(&server, "refused stream key", 2, Duration::from_secs(5));
    drop(refused_callers);

    // A flood of callers from one address (each a new UDP port): CAP are admitted, the rest
    // refused — at handshake with SRT_REJX_OVERLOAD when the admitted ones already hold their
    // slots, or right after the handshake when the whole flood's handshakes ran before the first
    // accept (libsrt completes handshakes on its own thread; the slot is taken at accept). Either
    // way no more than CAP callers are ever connected. The admitted ones never send: they are
    // closed by the idle timeout and hold no stream.
    let mut flood: Vec<Publisher> = (0..12).map(|_| caller("publish:live/second-key")).collect();
    common::wait_log_count(&server, "SRT caller connected", CAP, READY);
    let deadline = Instant::now() + Duration::from_secs(15);
    while refused(&server, "srt", "max_connections_per_ip") < (12 - CAP) as u64 {
        assert!(Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = server.log();
    assert_eq!(log.matches("SRT caller connected").count(), CAP, "{log}");
    assert_eq!(
        refused(&server, "srt", "max_connections_per_ip"),
        (12 - CAP) as u64,
        "{log}"
    );
    assert!(
        log.contains("SRT_REJX_OVERLOAD") || log.contains("SRT caller closed after the handshake"),
        "{log}"
    );
    common::wait_log_count(&server, "no data for 3s", CAP, Duration::from_secs(15));
    assert!(refused(&server, "srt", "idle_timeout") >= CAP as u64);
    for caller in &mut flood {
        caller.kill();
    }
    watch.assert_on_time(started.elapsed());
}

/// A raw SRT caller (HSv5 caller–listener handshake, written from the protocol description):
/// induction, then a conclusion whose StreamID extension carries `sid` whatever its length —
/// what libsrt's own callers cannot send (they cap it at 512 bytes). Returns the handshake
/// type of the conclusion's answer (`0xFFFF_FFFF`: accepted; 1000 and above: rejected with
/// that minus 1000 — libsrt answers a protocol error with 1000, "unknown"), or `None` when the listener answered nothing within 2 s.
fn srt_raw_conclusion(addr: SocketAddr, sid: &[u8]) -> Option<u32> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("udp timeout");
    socket.connect(addr).expect("udp connect");
    let caller_id: u32 = 0x2000_0000 | (std::process::id() & 0xFFFF);
    let handshake = |version: u32, extension: u16, kind: u32, cookie: u32, tail: &[u8]| {
        let mut packet = Vec::new();
        for word in [0x8000_0000u32, 0, 1000, 0, version] {
            packet.extend_from_slice(&word.to_be_bytes()); // control: handshake, to the listener
        }
        packet.extend_from_slice(&0u16.to_be_bytes()); // no encryption
        packet.extend_from_slice(&extension.to_be_bytes());
        for word in [0x0102_0304u32, 1500, 8192, kind, caller_id, cookie] {
            packet.extend_from_slice(&word.to_be_bytes()); // ISN, MSS, window, type, id, cookie
        }
        packet.extend_from_slice(&u32::from_le_bytes([127, 0, 0, 1]).to_be_bytes());
        packet.extend_from_slice(&[0; 12]);
        packet.extend_from_slice(tail);
        packet
    };
    let exchange = |packet: &[u8]| -> Option<Vec<u8>> {
        socket.send(packet).ok()?;
        let mut buf = [0u8; 2048];
        let n = socket.recv(&mut buf).ok()?;
        (n >= 64).then(|| buf[..n].to_vec())
    };
    let field = |packet: &[u8], at: usize| {
        u32::from_be_bytes([
            packet[16 + at],
            packet[17 + at],
            packet[18 + at],
            packet[19 + at],
        ])
    };
    let induction = exchange(&handshake(4, 2, 1, 0, &[]))?;
    let cookie = field(&induction, 28);
    // HSREQ (SRT 1.5.0, live-mode flags, 120 ms latency both ways), then the StreamID: padded to
    // whole words, each word's bytes reversed on the wire.
    let mut tail = Vec::new();
    for word in [(1u32 << 16) | 3, 0x0001_0500, 0xBF, (120 << 16) | 120] {
        tail.extend_from_slice(&word.to_be_bytes());
    }
    let mut padded = sid.to_vec();
    padded.resize(sid.len().div_ceil(4) * 4, 0);
    tail.extend_from_slice(&((5u32 << 16) | (padded.len() / 4) as u32).to_be_bytes());
    for word in padded.chunks(4) {
        tail.extend_from_slice(
            &u32::from_le_bytes([word[0], word[1], word[2], word[3]]).to_be_bytes(),
        );
    }
    let conclusion = exchange(&handshake(5, 0x5, 0xFFFF_FFFF, cookie, &tail))?;
    Some(field(&conclusion, 20))
}

#[test]
fn srt_stream_ids_past_the_protocol_limit_are_refused_before_cuecast_reads_them() {
    let (server, _publisher) = server_with_healthy_stream(&[], 40);
    let watch = PartWatch::start(&server, "demo");
    let started = Instant::now();
    let addr = SocketAddr::from(([127, 0, 0, 1], server.srt_port));
    // The raw caller reaches cuecast's admission with a stream id within the limit: a name with
    // an encoded `..` is refused by cuecast, with its own reject code (server codes: 1000 + the
    // SRT_REJX_* code, itself above 1000).
    let within = format!("publish:live/{}%2e%2e", "k".repeat(480));
    let answer = srt_raw_conclusion(addr, within.as_bytes());
    assert!(
        answer.is_some_and(|kind| kind > 2000),
        "a 499-byte stream id: {answer:?}\n{}",
        server.log()
    );
    assert_eq!(refused_reaches(&server, "srt", "bad_stream_name", 1), 1);
    // 513 bytes and 1 kB (with a valid key in them, and path characters): libsrt refuses the
    // handshake itself (a StreamID over 512 bytes is a protocol error), so nothing of it reaches
    // cuecast's parser, admission or key lookup; no caller is connected.
    for sid in [
        format!("publish:live/demo-key?{}", "p".repeat(513 - 22)),
        format!(
            "#!::r=live/demo-key,m=publish,u=../../{}",
            "u".repeat(1024 - 38)
        ),
    ] {
        let answer = srt_raw_conclusion(addr, sid.as_bytes());
        assert!(
            answer.is_none_or(|kind| (1000..2000).contains(&kind)),
            "a {}-byte stream id was not refused by the protocol layer: {answer:?}",
            sid.len()
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(refused(&server, "srt", "bad_stream_name"), 1);
    let log = server.log();
    assert!(!log.contains("SRT caller connected"), "{log}");
    assert_eq!(log.matches("refused stream key").count(), 1, "{log}");
    assert_eq!(log.matches("STREAMID length").count(), 2, "{log}");
    // The listener still admits well-formed callers' handshakes after them.
    let again = srt_raw_conclusion(addr, within.as_bytes());
    assert!(again.is_some_and(|kind| kind > 2000), "{again:?}");
    watch.assert_on_time(started.elapsed());
}

/// Proves [`PartWatch`] can fail: a stream whose publisher stops has no new parts.
#[test]
fn part_watch_notices_a_stalled_stream() {
    let (server, mut publisher) =
        server_with_healthy_stream(&[("CUECAST_INGEST_RECONNECT_GRACE_S", "30")], 60);
    let watch = PartWatch::start(&server, "demo");
    std::thread::sleep(Duration::from_secs(1));
    publisher.kill();
    std::thread::sleep(PART_DEADLINE + Duration::from_secs(2));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        watch.assert_on_time(Duration::from_secs(5));
    }));
    assert!(result.is_err(), "a stalled stream passed the part check");
}
