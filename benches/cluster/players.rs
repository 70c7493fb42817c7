//! LL-HLS players for `benches/cluster/run.sh` (the compiled twin of `players.py`, which cannot
//! run 1,000 players on two cores): `PLAYERS` players on the edge node (B) and one probe on the
//! owner (A), each looping as hls.js does at the live edge: a blocking playlist reload for the
//! preload-hinted part (`_HLS_msn`/`_HLS_part`), then that part. One tokio runtime (two worker
//! threads); each player owns one keep-alive HTTP/1.1 connection, as a browser tab does, spoken
//! by a minimal client (request line, `Content-Length` or chunked bodies: a playlist into a
//! reused buffer, a part's bytes discarded without being copied out of the kernel): the players
//! share the two cores with both nodes, so the less the client costs, the more of the measured
//! latency is the servers'. (Until 2026-12-07 evening the players shared one
//! `reqwest` client and its pool.)
//!
//! For every (msn, part) the probe on A and a player on B both received, the edge's added
//! latency is the time B's blocking reload completed minus the time A's completed (same clock,
//! same process). Prints one JSON object, the keys of players.py: `players`,
//! `parts_seen_by_probe`, `probe_requests`, `edge_requests`, `errors`, `samples`,
//! `added_ms_p50`, `added_ms_p99`, `failures` (the errors by kind: `io` — the connection failed
//! or closed, `timeout` — no answer in 10 s, or the HTTP status), and `owner`: with
//! `OWNER_METRICS` (A's `/metrics` URL), A's media playlist and part requests (2xx) and published
//! video parts over the measured window.
//!
//! `PLAYERS_WARMUP_S` (default 0): the players start that long before the measured window (their
//! first plain playlist loads and catching up to the live edge are not counted); requests and
//! latency samples count only inside the window, which lasts `DURATION_S`.
//!
//! Usage: `cluster_players --bench EDGE_MEDIA_URL OWNER_MEDIA_URL PLAYERS DURATION_S` (the media
//! playlist URLs of the same rendition on B and A). Without `--bench` (as `cargo test --benches`
//! runs it) it checks its playlist reading on a sample and prints what it is.

#[path = "../support/mod.rs"]
mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BufMut;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const HINT: &str = "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"";

#[derive(Default)]
struct Counters {
    /// Requests sent in the measured window.
    requests: AtomicU64,
    errors: AtomicU64,
    /// The errors by kind (`io`, `timeout`, or the status).
    failures: Mutex<BTreeMap<String, u64>>,
    /// Whether the measured window is on.
    measuring: std::sync::atomic::AtomicBool,
}

impl Counters {
    fn request(&self) {
        if self.measuring.load(Ordering::Relaxed) {
            self.requests.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn error(&self, failure: Failure) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let kind = match failure {
            Failure::Io => "io".to_string(),
            Failure::Timeout => "timeout".to_string(),
            Failure::Status(status) => status.to_string(),
        };
        *self
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(kind)
            .or_default() += 1;
    }
}

/// Why a request did not give a 200.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Failure {
    /// The connection failed, closed, or spoke something else than HTTP/1.1.
    Io,
    /// No whole answer within [`TIMEOUT`].
    Timeout,
    /// An answer, not 200.
    Status(u16),
}

/// How long a request may take (as the reqwest client before had).
const TIMEOUT: Duration = Duration::from_secs(10);

/// One player's keep-alive HTTP/1.1 connection to one server (`host:port`), opened on first
/// use and again after a failure.
struct Conn {
    host: String,
    stream: Option<BufReader<TcpStream>>,
    request: Vec<u8>,
}

impl Conn {
    fn new(host: &str) -> Conn {
        Conn {
            host: host.to_string(),
            stream: None,
            request: Vec::with_capacity(256),
        }
    }

    /// GET `path`; the body goes to `body` (replaced), or with `None` is discarded unread. A
    /// failed request closes the connection.
    async fn get(&mut self, path: &str, body: Option<&mut Vec<u8>>) -> Result<(), Failure> {
        let result = match tokio::time::timeout(TIMEOUT, self.exchange(path, body)).await {
            Ok(Ok(200)) => return Ok(()),
            Ok(Ok(status)) => Err(Failure::Status(status)),
            Ok(Err(_)) => Err(Failure::Io),
            Err(_) => Err(Failure::Timeout),
        };
        // Whatever was left unread of a failed answer: start over on a new connection.
        self.stream = None;
        result
    }

    async fn exchange(&mut self, path: &str, body: Option<&mut Vec<u8>>) -> std::io::Result<u16> {
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => {
                let tcp = TcpStream::connect(&self.host).await?;
                tcp.set_nodelay(true)?;
                // Room for a status line, headers and a playlist; a part's bytes past it are
                // read (or discarded) straight from the socket.
                self.stream.insert(BufReader::with_capacity(BUFFER, tcp))
            }
        };
        self.request.clear();
        self.request.extend_from_slice(b"GET ");
        self.request.extend_from_slice(path.as_bytes());
        self.request.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        self.request.extend_from_slice(self.host.as_bytes());
        self.request.extend_from_slice(b"\r\n\r\n");
        stream.get_mut().write_all(&self.request).await?;
        read_response(stream, body).await
    }
}

fn malformed(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// Reads one line (to `\n`, kept) into `line` (replaced); the end of the stream is an error.
async fn read_line(stream: &mut BufReader<TcpStream>, line: &mut Vec<u8>) -> std::io::Result<()> {
    line.clear();
    if stream.read_until(b'\n', line).await? == 0 {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
    }
    Ok(())
}

/// Reads one HTTP/1.1 answer: the status; the body (`Content-Length` or chunked) into `body`,
/// or with `None` discarded.
async fn read_response(
    stream: &mut BufReader<TcpStream>,
    mut body: Option<&mut Vec<u8>>,
) -> std::io::Result<u16> {
    let mut line = Vec::with_capacity(128);
    read_line(stream, &mut line).await?;
    let status = std::str::from_utf8(&line)
        .ok()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| malformed("status line"))?;
    let (mut length, mut chunked) = (None, false);
    loop {
        read_line(stream, &mut line).await?;
        let text = std::str::from_utf8(&line)
            .map_err(|_| malformed("header"))?
            .trim_end();
        if text.is_empty() {
            break;
        }
        let Some((name, value)) = text.split_once(':') else {
            return Err(malformed("header"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| malformed("content-length"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    if let Some(body) = body.as_deref_mut() {
        body.clear();
    }
    if chunked {
        loop {
            read_line(stream, &mut line).await?;
            let size = std::str::from_utf8(&line)
                .ok()
                .and_then(|l| l.trim().split(';').next())
                .and_then(|h| usize::from_str_radix(h.trim(), 16).ok())
                .ok_or_else(|| malformed("chunk size"))?;
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    read_line(stream, &mut line).await?;
                    if line == b"\r\n" {
                        return Ok(status);
                    }
                }
            }
            read_body(stream, body.as_deref_mut(), size).await?;
            read_line(stream, &mut line).await?;
        }
    }
    let length = length.ok_or_else(|| malformed("no content-length"))?;
    read_body(stream, body, length).await?;
    Ok(status)
}

/// Appends the next `length` bytes of `stream` to `body`: what the reader has buffered, then
/// straight from the socket into `body`'s spare capacity (one copy, no zeroing). With `None`
/// they are discarded: what is buffered is dropped and the rest is taken off the socket with
/// `MSG_TRUNC`, which TCP honours by not copying it at all (tcp(7)): a player has no use for a
/// part's bytes, and copying them is load-client work on the servers' cores.
async fn read_body(
    stream: &mut BufReader<TcpStream>,
    body: Option<&mut Vec<u8>>,
    length: usize,
) -> std::io::Result<()> {
    let Some(body) = body else {
        return discard(stream, length).await;
    };
    let want = body.len() + length;
    body.reserve(length);
    let buffered = stream.buffer();
    let take = buffered.len().min(length);
    body.extend_from_slice(&buffered[..take]);
    stream.consume(take);
    let socket = stream.get_mut();
    while body.len() < want {
        let left = want - body.len();
        let mut limited = (&mut *body).limit(left);
        if socket.read_buf(&mut limited).await? == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        }
    }
    Ok(())
}

/// How much a connection's reader buffers: a status line, headers and a playlist.
const BUFFER: usize = 8 * 1024;

thread_local! {
    /// What [`discard`] names as its buffer: with `MSG_TRUNC` on TCP the kernel neither reads
    /// nor writes it, its length only bounds how much one call takes off.
    static SCRATCH: std::cell::RefCell<Vec<std::mem::MaybeUninit<u8>>> =
        std::cell::RefCell::new(vec![std::mem::MaybeUninit::uninit(); 256 * 1024]);
}

/// Takes the next `length` bytes off `stream` without copying them (see [`read_body`]).
async fn discard(stream: &mut BufReader<TcpStream>, length: usize) -> std::io::Result<()> {
    let buffered = stream.buffer().len().min(length);
    stream.consume(buffered);
    let mut left = length - buffered;
    let socket = stream.get_mut();
    while left > 0 {
        let got = loop {
            socket.readable().await?;
            match socket.try_io(tokio::io::Interest::READABLE, || {
                SCRATCH.with_borrow_mut(|scratch| {
                    let take = left.min(scratch.len());
                    socket2::SockRef::from(&*socket)
                        .recv_with_flags(&mut scratch[..take], libc::MSG_TRUNC)
                })
            }) {
                Ok(got) => break got,
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(err) => return Err(err),
            }
        };
        if got == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        }
        // At most `left`: each call asks for no more.
        left -= got;
    }
    Ok(())
}

/// `http://host:port/path` → (`host:port`, `/path`).
fn split_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("http://")?;
    let slash = rest.find('/')?;
    Some((&rest[..slash], &rest[slash..]))
}

/// (msn, part index) of the preload-hinted part: after the last listed part.
fn next_part(text: &str) -> Option<(u64, u32)> {
    let mut msn: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))?
        .trim()
        .parse()
        .ok()?;
    let mut index = 0;
    for line in text.lines() {
        if line.starts_with("#EXT-X-PART:") {
            index += 1;
        } else if !line.is_empty() && !line.starts_with('#') {
            msn += 1;
            index = 0;
        }
    }
    Some((msn, index))
}

/// The preload-hinted part's URI.
fn hint(text: &str) -> Option<&str> {
    let at = text.find(HINT)? + HINT.len();
    text[at..].split('"').next()
}

/// One player until `deadline`: when each blocking reload completed, per (msn, part).
async fn player(
    url: String,
    deadline: Instant,
    counters: Arc<Counters>,
) -> Vec<((u64, u32), Instant)> {
    let mut done = Vec::new();
    let Some((host, path)) = split_url(&url) else {
        counters.error(Failure::Io);
        return done;
    };
    let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or_default();
    let mut conn = Conn::new(host);
    // The playlist last loaded, and the buffer the other answers are read into (swapped when
    // a reload brings the next playlist).
    let mut playlist: Vec<u8> = Vec::with_capacity(8 * 1024);
    let mut body: Vec<u8> = Vec::with_capacity(128 * 1024);
    while Instant::now() < deadline {
        let text = std::str::from_utf8(&playlist).unwrap_or_default();
        let (Some(uri), Some((msn, index))) = (hint(text), next_part(text)) else {
            // No playlist yet (or no hint): load it plainly.
            if let Err(failure) = conn.get(path, Some(&mut playlist)).await {
                playlist.clear();
                counters.error(failure);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            continue;
        };
        let part_path = format!("{dir}/{uri}");
        let reload = conn
            .get(
                &format!("{path}?_HLS_msn={msn}&_HLS_part={index}"),
                Some(&mut body),
            )
            .await;
        let now = Instant::now();
        counters.request();
        match reload {
            Ok(()) => {
                if counters.measuring.load(Ordering::Relaxed) {
                    done.push(((msn, index), now));
                }
                std::mem::swap(&mut playlist, &mut body);
            }
            Err(failure) => {
                counters.error(failure);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        counters.request();
        if let Err(failure) = conn.get(&part_path, None).await {
            counters.error(failure);
        }
    }
    done
}

/// The owner's counters: media playlist and part requests answered 2xx, and the video parts it
/// published (the count of its part publish delay summary, one per passthrough video part).
async fn owner_counts(http: &reqwest::Client, metrics_url: &str) -> Option<[f64; 3]> {
    let text = http.get(metrics_url).send().await.ok()?.text().await.ok()?;
    let value = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Some([
        value(r#"cuecast_hls_requests_total{kind="media_playlist",status="2xx"} "#),
        value(r#"cuecast_hls_requests_total{kind="part",status="2xx"} "#),
        value(r#"cuecast_stream_part_publish_delay_seconds_count{stream="demo"} "#),
    ])
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

/// What `cargo test --benches` checks (it runs this without `--bench`): the playlist reading.
fn self_check() {
    let text = "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-PART:DURATION=0.2,URI=\"a.m4s\"\n\
                #EXTINF:0.4,\nseg7.m4s\n#EXT-X-PART:DURATION=0.2,URI=\"b.m4s\"\n\
                #EXT-X-PART:DURATION=0.2,URI=\"c.m4s\"\n\
                #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part99.m4s\"\n";
    assert_eq!(
        next_part(text),
        Some((8, 2)),
        "the hinted part follows the last listed one"
    );
    assert_eq!(hint(text), Some("part99.m4s"));
    assert_eq!(next_part("#EXTM3U\n"), None);
    assert_eq!(
        split_url("http://127.0.0.1:8080/hls/demo/v/playlist.m3u8"),
        Some(("127.0.0.1:8080", "/hls/demo/v/playlist.m3u8"))
    );
    assert_eq!(split_url("https://example.com/x"), None);
    check_discard();
}

/// A part's body discarded with `MSG_TRUNC` takes exactly its bytes off the connection: the
/// answer after it (a large body, then a chunked one) still reads whole and in place.
fn check_discard() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback listener");
        let addr = listener.local_addr().expect("its address");
        let part: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let playlist = b"#EXTM3U\n#EXT-X-VERSION:9\n".repeat(200);
        let server = {
            let (part, playlist) = (part.clone(), playlist.clone());
            tokio::spawn(async move {
                let (mut socket, _) = listener.accept().await.expect("a connection");
                let mut answer =
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", part.len())
                        .into_bytes();
                answer.extend_from_slice(&part);
                answer.extend_from_slice(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                        playlist.len()
                    )
                    .as_bytes(),
                );
                answer.extend_from_slice(&playlist);
                answer.extend_from_slice(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
                answer.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                answer.extend_from_slice(&part);
                answer.extend_from_slice(b"\r\n0\r\n\r\n");
                // In pieces, so that the discard meets a socket with nothing to read yet.
                for piece in answer.chunks(65_000) {
                    socket.write_all(piece).await.expect("the answer");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                socket
            })
        };
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let mut stream = BufReader::with_capacity(BUFFER, tcp);
        assert_eq!(read_response(&mut stream, None).await.expect("a part"), 200);
        let mut body = Vec::new();
        assert_eq!(
            read_response(&mut stream, Some(&mut body))
                .await
                .expect("a playlist"),
            200
        );
        assert_eq!(
            body, playlist,
            "the answer after a discarded body reads whole"
        );
        assert_eq!(
            read_response(&mut stream, None)
                .await
                .expect("a chunked part"),
            200
        );
        let _socket = server.await.expect("the server");
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        self_check();
        println!(
            "cluster_players: the LL-HLS players of benches/cluster/run.sh (run with --bench)"
        );
        return;
    }
    let positional: Vec<&String> = args[1..].iter().filter(|a| !a.starts_with("--")).collect();
    let [edge_url, owner_url, players, duration] = positional[..] else {
        eprintln!(
            "usage: cluster_players --bench EDGE_MEDIA_URL OWNER_MEDIA_URL PLAYERS DURATION_S"
        );
        std::process::exit(2);
    };
    let (Ok(players), Ok(duration)) = (players.parse::<usize>(), duration.parse::<f64>()) else {
        eprintln!("PLAYERS must be a count and DURATION_S a number of seconds");
        std::process::exit(2);
    };
    support::raise_fd_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("tokio runtime: {err}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(async {
        let warmup: f64 = std::env::var("PLAYERS_WARMUP_S")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let owner_metrics = std::env::var("OWNER_METRICS").ok();
        let deadline = Instant::now() + Duration::from_secs_f64(warmup + duration);
        let probe_counters = Arc::new(Counters::default());
        let edge_counters = Arc::new(Counters::default());
        let probe = tokio::spawn(player(
            owner_url.clone(),
            deadline,
            Arc::clone(&probe_counters),
        ));
        let edge: Vec<_> = (0..players)
            .map(|_| {
                tokio::spawn(player(
                    edge_url.clone(),
                    deadline,
                    Arc::clone(&edge_counters),
                ))
            })
            .collect();
        // The measured window: after the warm-up (the players' first loads, catching up).
        tokio::time::sleep(Duration::from_secs_f64(warmup)).await;
        let metrics_http = client();
        let owner_before = match &owner_metrics {
            Some(url) => owner_counts(&metrics_http, url).await,
            None => None,
        };
        probe_counters.measuring.store(true, Ordering::Relaxed);
        edge_counters.measuring.store(true, Ordering::Relaxed);
        tokio::time::sleep(deadline.saturating_duration_since(Instant::now())).await;
        probe_counters.measuring.store(false, Ordering::Relaxed);
        edge_counters.measuring.store(false, Ordering::Relaxed);
        let owner_after = match &owner_metrics {
            Some(url) => owner_counts(&metrics_http, url).await,
            None => None,
        };
        let owner = match (owner_before, owner_after) {
            (Some(before), Some(after)) => serde_json::json!({
                "playlist_requests": after[0] - before[0],
                "part_requests": after[1] - before[1],
                "parts_published": after[2] - before[2],
            }),
            _ => serde_json::Value::Null,
        };
        let probe_done: HashMap<(u64, u32), Instant> =
            probe.await.unwrap_or_default().into_iter().collect();
        let mut added = Vec::new();
        for task in edge {
            for (key, at) in task.await.unwrap_or_default() {
                if let Some(&probe_at) = probe_done.get(&key) {
                    let ms = if at >= probe_at {
                        at.duration_since(probe_at).as_secs_f64() * 1000.0
                    } else {
                        -(probe_at.duration_since(at).as_secs_f64() * 1000.0)
                    };
                    added.push(ms);
                }
            }
        }
        added.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            if added.is_empty() {
                return serde_json::Value::Null;
            }
            let i = ((p / 100.0 * added.len() as f64) as usize).min(added.len() - 1);
            serde_json::json!((added[i] * 10.0).round() / 10.0)
        };
        let mut failures = edge_counters
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (kind, n) in probe_counters
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            *failures.entry(kind.clone()).or_default() += n;
        }
        serde_json::json!({
            "players": players,
            "parts_seen_by_probe": probe_done.len(),
            "probe_requests": probe_counters.requests.load(Ordering::Relaxed),
            "edge_requests": edge_counters.requests.load(Ordering::Relaxed),
            "errors": edge_counters.errors.load(Ordering::Relaxed)
                + probe_counters.errors.load(Ordering::Relaxed),
            "failures": failures,
            "samples": added.len(),
            "added_ms_p50": pct(50.0),
            "added_ms_p99": pct(99.0),
            "owner": owner,
        })
    });
    println!("{result}");
    runtime.shutdown_background();
}
