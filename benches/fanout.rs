//! Blocking-reload fan-out: N clients on loopback hold `playlist.m3u8?_HLS_msn=M&_HLS_part=P`
//! for the next part; the part is published; how long until every held request is released
//! (server side: the held-request gauge back to 0) and until the last client has read its
//! whole response.
//!
//! `cargo bench --bench fanout` (N=10000, 5 rounds). `FANOUT_CLIENTS=…`, `FANOUT_ROUNDS=…`
//! override. Under `cargo test --benches` it runs once with 200 clients.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use cuecast::hls::origin::{self, CachePolicy, Origin};
use cuecast::hls::packager::{CmafChunk, PackagerConfig, PartId};
use cuecast::hls::registry::Registry;
use cuecast::hls::stream::{Rendition, RenditionKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

const PART_NS: u64 = 200_000_000;
const PARTS_PER_SEGMENT: u64 = 10;

/// Publishes part number `index` of the synthetic feed.
fn publish(rendition: &Rendition, index: u64) {
    rendition.push_chunk(CmafChunk {
        data: Bytes::from(vec![0x5a; 50_000]),
        pts: index * PART_NS,
        duration: PART_NS,
        fragment_start: index.is_multiple_of(PARTS_PER_SEGMENT),
        independent: index.is_multiple_of(PARTS_PER_SEGMENT),
        program_date_time: Utc::now(),
    });
}

async fn read_response(reader: &mut BufReader<TcpStream>) -> std::io::Result<u16> {
    let mut head = Vec::with_capacity(512);
    while !head.ends_with(b"\r\n\r\n") {
        let byte = reader.read_u8().await?;
        head.push(byte);
    }
    let text = String::from_utf8_lossy(&head);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length: usize = text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(status)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    support::raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Ok(addr) = std::env::var("FANOUT_CLIENT_OF") {
        runtime.block_on(client_process(addr));
        return;
    }
    let test_mode = !std::env::args().any(|a| a == "--bench");
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let clients = env("FANOUT_CLIENTS", if test_mode { 200 } else { 10_000 });
    let rounds = env("FANOUT_ROUNDS", if test_mode { 1 } else { 5 });
    runtime.block_on(run(clients, rounds));
}

/// Nanoseconds since the Unix epoch: the clock both processes share.
fn wall_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The clients live in a child process (each process may hold only so many sockets):
/// stdin `connect N PATH` opens N keep-alive connections and answers `ready`; each
/// `get MSN PART` makes every client request that part and answers
/// `done <ns of each response read, comma-separated>` once all responses are read.
async fn client_process(addr: String) {
    use tokio::io::AsyncBufReadExt;
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = tokio::io::stdout();
    let (target_tx, target_rx) = watch::channel(None::<(u64, u32)>);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(u128, u16)>();
    let mut clients = 0;
    while let Ok(Some(line)) = stdin.next_line().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["connect", n, path] => {
                clients = n.parse().expect("client count");
                let mut connected = 0;
                while connected < clients {
                    let batch = (clients - connected).min(500);
                    let mut handles = Vec::with_capacity(batch);
                    for _ in 0..batch {
                        handles.push(tokio::spawn(TcpStream::connect(addr.clone())));
                    }
                    for handle in handles {
                        let socket = handle.await.expect("join").expect("connect");
                        spawn_client(socket, path.to_string(), target_rx.clone(), done_tx.clone());
                    }
                    connected += batch;
                }
                stdout.write_all(b"ready\n").await.expect("stdout");
            }
            ["get", msn, part] => {
                target_tx.send_replace(Some((
                    msn.parse().expect("msn"),
                    part.parse().expect("part"),
                )));
                let mut reads = Vec::with_capacity(clients);
                while reads.len() < clients {
                    let (at, status) = done_rx.recv().await.expect("client result");
                    assert_eq!(status, 200, "a held request failed");
                    reads.push(at.to_string());
                }
                let line = format!("done {}\n", reads.join(","));
                stdout.write_all(line.as_bytes()).await.expect("stdout");
            }
            _ => panic!("unknown command {line}"),
        }
        stdout.flush().await.expect("stdout");
    }
}

fn spawn_client(
    socket: TcpStream,
    path: String,
    mut target_rx: watch::Receiver<Option<(u64, u32)>>,
    done_tx: mpsc::UnboundedSender<(u128, u16)>,
) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(socket);
        loop {
            if target_rx.changed().await.is_err() {
                return;
            }
            let Some((msn, part)) = *target_rx.borrow_and_update() else {
                continue;
            };
            let request = format!(
                "GET {path}?_HLS_msn={msn}&_HLS_part={part} HTTP/1.1\r\nHost: bench\r\n\r\n"
            );
            if reader
                .get_mut()
                .write_all(request.as_bytes())
                .await
                .is_err()
            {
                return;
            }
            let status = read_response(&mut reader).await.unwrap_or(0);
            let _ = done_tx.send((wall_ns(), status));
        }
    });
}

async fn run(clients: usize, rounds: usize) {
    let registry = Arc::new(Registry::new(
        PackagerConfig {
            segment_target: Duration::from_secs(2),
            part_target: Duration::from_millis(200),
            window: Duration::from_secs(30),
        },
        Duration::from_secs(60),
    ));
    let stream = registry.create("bench");
    let rendition = stream.add_rendition("source", RenditionKind::Video);
    rendition.push_init(Bytes::from_static(b"ftyp+moov"), Default::default());
    let mut index = 0;
    while index < 3 * PARTS_PER_SEGMENT + 3 {
        publish(&rendition, index);
        index += 1;
    }
    let origin = Arc::new(Origin {
        registry: Arc::clone(&registry),
        cache: CachePolicy {
            segment_max_age: Duration::from_secs(60),
            multivariant_max_age: Duration::from_secs(2),
            playlist_max_age: Duration::from_secs(1),
            blocking_playlist_max_age: Duration::from_secs(6),
        },
        low_latency: true,
        held_requests: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = origin::router(Arc::clone(&origin));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let path = format!("/hls/bench/{}/source/playlist.m3u8", stream.session);

    let mut child = tokio::process::Command::new(std::env::current_exe().expect("exe"))
        .env("FANOUT_CLIENT_OF", addr.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("client process");
    let mut to_child = child.stdin.take().expect("stdin");
    let mut from_child = {
        use tokio::io::AsyncBufReadExt;
        tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines()
    };
    to_child
        .write_all(format!("connect {clients} {path}\n").as_bytes())
        .await
        .expect("to client");
    assert_eq!(
        from_child.next_line().await.expect("ready").as_deref(),
        Some("ready")
    );

    println!(
        "blocking-reload fan-out: {clients} held clients (separate process), {rounds} rounds, loopback"
    );
    println!(
        "| round | all held after | release (server, gauge → 0) | last response read | p50 read | p99 read |"
    );
    println!("|---|---|---|---|---|---|");
    let mut releases = Vec::new();
    let mut lasts = Vec::new();
    for round in 1..=rounds {
        let next: PartId = rendition.packager().next_part();
        let asked = Instant::now();
        to_child
            .write_all(format!("get {} {}\n", next.msn, next.part).as_bytes())
            .await
            .expect("to client");
        let deadline = Instant::now() + Duration::from_secs(60);
        while origin.held_requests.load(Ordering::Relaxed) < clients {
            let held = origin.held_requests.load(Ordering::Relaxed);
            assert!(Instant::now() < deadline, "only {held} of {clients} held");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let all_held = asked.elapsed();
        let published_at = wall_ns();
        let published = Instant::now();
        publish(&rendition, index);
        index += 1;
        while origin.held_requests.load(Ordering::Relaxed) > 0 {
            tokio::task::yield_now().await;
        }
        let release = published.elapsed();
        let line = from_child
            .next_line()
            .await
            .expect("done")
            .expect("done line");
        let mut reads: Vec<Duration> = line
            .strip_prefix("done ")
            .expect("done")
            .split(',')
            .map(|ns| {
                let ns: u128 = ns.parse().expect("ns");
                Duration::from_nanos(u64::try_from(ns.saturating_sub(published_at)).unwrap_or(0))
            })
            .collect();
        reads.sort();
        let last = *reads.last().expect("reads");
        println!(
            "| {round} | {} | {} | {} | {} | {} |",
            ms(all_held),
            ms(release),
            ms(last),
            ms(percentile(&reads, 0.5)),
            ms(percentile(&reads, 0.99))
        );
        releases.push(release);
        lasts.push(last);
    }
    releases.sort();
    lasts.sort();
    println!(
        "median over rounds: release {}, last response read {}",
        ms(percentile(&releases, 0.5)),
        ms(percentile(&lasts, 0.5))
    );
}
