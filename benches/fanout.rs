//! Blocking-reload fan-out: N clients on loopback hold `playlist.m3u8?_HLS_msn=M&_HLS_part=P`
//! for the next part; the part is published; how long until every held request is released
//! (server side: the last held handler produced its response) and until the last client has read its
//! whole response.
//!
//! The same clients are then held by a floor server (raw writes of the same bytes, no HTTP
//! stack). Rounds alternate between the two servers (cuecast, floor, cuecast, floor, …) so that
//! a busy machine weighs on both alike; each round connects its clients afresh.
//!
//! `cargo bench --bench fanout` (N=10000, 5 rounds per server). `FANOUT_CLIENTS=…`,
//! `FANOUT_ROUNDS=…` override. Under `cargo test --benches` it runs once with 200 clients.
//! A profile of the releases alone: `mkfifo /tmp/ctl; FANOUT_PERF_CTL=/tmp/ctl perf record
//! --control fifo:/tmp/ctl --delay=-1 -g -- <bench binary> --bench` (`FANOUT_PERF_SERVER=floor`
//! profiles the floor's instead).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// One server under test: where its clients connect, what they request, and how the bench
/// sees and triggers its held requests.
struct Target<'a> {
    name: &'a str,
    addr: std::net::SocketAddr,
    path: String,
    /// Requests currently held by the server.
    held: &'a dyn Fn() -> usize,
    /// The `(msn, part)` to request next, then publishes it (releasing the held requests).
    next: &'a dyn Fn() -> (u64, u32),
    publish: &'a dyn Fn(),
    /// Latest "response produced" stamp, ns after `epoch`.
    answered: &'a AtomicU64,
    epoch: Instant,
}

async fn run(clients: usize, rounds: usize) {
    let epoch = Instant::now();
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
    let index = std::sync::atomic::AtomicU64::new(0);
    while index.load(Ordering::Relaxed) < 3 * PARTS_PER_SEGMENT + 3 {
        publish(&rendition, index.fetch_add(1, Ordering::Relaxed));
    }
    let origin = Arc::new(Origin::new(
        Arc::clone(&registry),
        CachePolicy {
            segment_max_age: Duration::from_secs(60),
            multivariant_max_age: Duration::from_secs(2),
            playlist_max_age: Duration::from_secs(1),
            blocking_playlist_max_age: Duration::from_secs(6),
        },
        true,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    // When each response was produced (ns after `epoch`, the latest wins): measured inside the
    // server instead of by polling the held-request gauge, which would keep a third thread
    // spinning on these two cores during the very release it measures.
    let answered = Arc::new(AtomicU64::new(0));
    let app = Stamp {
        inner: origin::router(Arc::clone(&origin)),
        answered: Arc::clone(&answered),
        epoch,
    };
    tokio::spawn(async move {
        let app = axum::ServiceExt::<axum::extract::Request>::into_make_service(app);
        axum::serve(listener, app).await
    });
    let path = format!("/hls/bench/{}/source/playlist.m3u8", stream.session);
    // The same response, byte for byte, for the floor server.
    let response = fetch(addr, &path).await;

    // The floor: the same clients held by a bare tokio loop that answers with the bytes above
    // (no HTTP stack): what one write per held socket costs on this machine.
    let floor_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let floor_addr = floor_listener.local_addr().expect("addr");
    let (release_tx, release_rx) = watch::channel(0u64);
    let floor_held = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let floor_answered = Arc::new(AtomicU64::new(0));
    tokio::spawn(floor_server(
        floor_listener,
        release_rx,
        Arc::clone(&floor_held),
        Arc::clone(&floor_answered),
        epoch,
        response,
    ));

    println!(
        "blocking-reload fan-out: {clients} held clients (separate process), {rounds} rounds per server, \
         alternated (cuecast, floor, cuecast, floor, …), loopback"
    );
    let cuecast = Target {
        name: "cuecast",
        addr,
        path,
        held: &|| origin.held_requests.load(Ordering::Relaxed),
        next: &|| {
            let next: PartId = rendition.packager().next_part();
            (next.msn, next.part)
        },
        publish: &|| publish(&rendition, index.fetch_add(1, Ordering::Relaxed)),
        answered: &answered,
        epoch,
    };
    let floor = Target {
        name: "floor (raw writes)",
        addr: floor_addr,
        path: "/".into(),
        held: &|| floor_held.load(Ordering::Relaxed),
        next: &|| (0, 0),
        publish: &|| {
            release_tx.send_modify(|n| *n += 1);
        },
        answered: &floor_answered,
        epoch,
    };
    let targets = [&cuecast, &floor];
    let mut results: [Vec<Round>; 2] = [Vec::new(), Vec::new()];
    println!(
        "| round | server | all held after | release (server: last response produced) | last response read | p50 read | p99 read | server CPU |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for number in 1..=rounds {
        for (which, target) in targets.iter().enumerate() {
            let round = measure(target, clients).await;
            println!(
                "| {number} | {} | {} | {} | {} | {} | {} | {} |",
                target.name,
                ms(round.all_held),
                ms(round.release),
                ms(round.last),
                ms(round.p50),
                ms(round.p99),
                ms(round.cpu)
            );
            results[which].push(round);
        }
    }
    let median = |rounds: &[Round], pick: fn(&Round) -> Duration| {
        let mut values: Vec<Duration> = rounds.iter().map(pick).collect();
        values.sort();
        percentile(&values, 0.5)
    };
    // Each round's ratio to the floor round right after it (the same machine state, as near
    // as alternation gets), and the median of those.
    let mut pair_ratios: Vec<f64> = results[0]
        .iter()
        .zip(&results[1])
        .map(|(c, f)| c.release.as_secs_f64() / f.release.as_secs_f64().max(1e-9))
        .collect();
    pair_ratios.sort_by(f64::total_cmp);
    let (release, last) = (|r: &Round| r.release, |r: &Round| r.last);
    let (cuecast, floor) = (&results[0], &results[1]);
    println!(
        "release median: cuecast {}, floor {}, ratio {:.2}; last response read median: cuecast {}, floor {}, ratio {:.2}; \
         per-pair release ratios {}",
        ms(median(cuecast, release)),
        ms(median(floor, release)),
        median(cuecast, release).as_secs_f64() / median(floor, release).as_secs_f64().max(1e-9),
        ms(median(cuecast, last)),
        ms(median(floor, last)),
        median(cuecast, last).as_secs_f64() / median(floor, last).as_secs_f64().max(1e-9),
        pair_ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let cpu = |r: &Round| r.cpu;
    println!(
        "server CPU per release, median: cuecast {} ({:.2} µs per response), floor {} ({:.2} µs), ratio {:.2}",
        ms(median(cuecast, cpu)),
        median(cuecast, cpu).as_secs_f64() * 1e6 / clients as f64,
        ms(median(floor, cpu)),
        median(floor, cpu).as_secs_f64() * 1e6 / clients as f64,
        median(cuecast, cpu).as_secs_f64() / median(floor, cpu).as_secs_f64().max(1e-9),
    );
}

/// Records when `response` was produced (the latest stamp wins) and passes it on.
fn stamped<T>(answered: &AtomicU64, epoch: Instant, response: T) -> T {
    let at = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
    answered.fetch_max(at, Ordering::Relaxed);
    response
}

/// Stamps each response the router produces, as the floor stamps its writes: a plain wrapper
/// around the router, polled in place. (An axum middleware layer would add two boxed futures per
/// request to the origin's own, whose cold memory every release touches: the bench would measure
/// its own instrumentation.)
#[derive(Clone)]
struct Stamp<S> {
    inner: S,
    answered: Arc<AtomicU64>,
    epoch: Instant,
}

impl<S, B> tower_service::Service<axum::http::Request<B>> for Stamp<S>
where
    S: tower_service::Service<axum::http::Request<B>>,
    S::Future: Unpin,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Stamped<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        Stamped {
            inner: self.inner.call(request),
            answered: Arc::clone(&self.answered),
            epoch: self.epoch,
        }
    }
}

struct Stamped<F> {
    inner: F,
    answered: Arc<AtomicU64>,
    epoch: Instant,
}

impl<F: std::future::Future + Unpin> std::future::Future for Stamped<F> {
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let output = std::task::ready!(std::pin::Pin::new(&mut self.inner).poll(cx));
        std::task::Poll::Ready(stamped(&self.answered, self.epoch, output))
    }
}

/// One plain GET: the whole response (head and body) as the server sent it.
async fn fetch(addr: std::net::SocketAddr, path: &str) -> Bytes {
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.expect("read");
    // `Connection: close` is the only header the held responses do not carry.
    let text = String::from_utf8_lossy(&response).replace("connection: close\r\n", "");
    assert!(text.starts_with("HTTP/1.1 200"), "plain GET failed: {text}");
    Bytes::from(text.into_bytes())
}

/// Holds every connection's requests until `release` changes, then writes `response`.
async fn floor_server(
    listener: tokio::net::TcpListener,
    release: watch::Receiver<u64>,
    held: Arc<std::sync::atomic::AtomicUsize>,
    answered: Arc<AtomicU64>,
    epoch: Instant,
    response: Bytes,
) {
    while let Ok((mut socket, _)) = listener.accept().await {
        let (mut release, held, answered, response) = (
            release.clone(),
            Arc::clone(&held),
            Arc::clone(&answered),
            response.clone(),
        );
        tokio::spawn(async move {
            let mut head = Vec::with_capacity(256);
            let mut buf = [0; 256];
            loop {
                while !head.ends_with(b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                head.clear();
                release.borrow_and_update();
                held.fetch_add(1, Ordering::Relaxed);
                let released = release.changed().await;
                held.fetch_sub(1, Ordering::Relaxed);
                if released.is_err()
                    || socket
                        .write_all(&stamped(&answered, epoch, response.clone()))
                        .await
                        .is_err()
                {
                    return;
                }
            }
        });
    }
}

/// One release round.
struct Round {
    all_held: Duration,
    release: Duration,
    /// CPU time (user + system) this process (the server) spent from the publication until the
    /// last response was read: the server's own work, which a busy machine delays but does not
    /// inflate the way it inflates wall-clock times.
    cpu: Duration,
    last: Duration,
    p50: Duration,
    p99: Duration,
}

/// CPU time (user + system) this process has used so far.
fn cpu_time() -> Duration {
    // SAFETY: `getrusage` fills the zeroed struct it is given; no other memory is touched.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return Duration::ZERO;
        }
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// With `FANOUT_PERF_CTL=FIFO` (perf's `--control fifo:FIFO`, started with `--delay=-1`), the
/// profile records only the releases (from the publication to the last response read) of the
/// server named by `FANOUT_PERF_SERVER` (default `cuecast`): what the CPU column measures.
fn perf_control(target: &Target<'_>, command: &str) {
    let Ok(fifo) = std::env::var("FANOUT_PERF_CTL") else {
        return;
    };
    let server = std::env::var("FANOUT_PERF_SERVER").unwrap_or_else(|_| "cuecast".into());
    if !target.name.starts_with(server.as_str()) {
        return;
    }
    use std::io::Write;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .and_then(|mut control| control.write_all(format!("{command}\n").as_bytes()));
    if let Err(err) = written {
        eprintln!("perf control {fifo}: {err}");
    }
}

/// Descriptors this process has open.
fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// One release round against `target`: a client process opens `clients` connections, each
/// holds one request, the part is published, every response is read; then the client process
/// is stopped and its connections closed (so the next round, on the other server, stays
/// within this process's descriptor limit).
async fn measure(target: &Target<'_>, clients: usize) -> Round {
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("exe"))
        .env("FANOUT_CLIENT_OF", target.addr.to_string())
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
        .write_all(format!("connect {clients} {}\n", target.path).as_bytes())
        .await
        .expect("to client");
    assert_eq!(
        from_child.next_line().await.expect("ready").as_deref(),
        Some("ready")
    );
    // Let the accepts settle before the round starts.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (msn, part) = (target.next)();
    let asked = Instant::now();
    to_child
        .write_all(format!("get {msn} {part}\n").as_bytes())
        .await
        .expect("to client");
    let deadline = Instant::now() + Duration::from_secs(60);
    while (target.held)() < clients {
        let held = (target.held)();
        assert!(Instant::now() < deadline, "only {held} of {clients} held");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let all_held = asked.elapsed();
    let published_at = wall_ns();
    let published = target.epoch.elapsed();
    perf_control(target, "enable");
    let cpu_before = cpu_time();
    (target.publish)();
    let line = from_child
        .next_line()
        .await
        .expect("done")
        .expect("done line");
    let cpu = cpu_time().saturating_sub(cpu_before);
    perf_control(target, "disable");
    assert_eq!((target.held)(), 0, "every held request was answered");
    let release =
        Duration::from_nanos(target.answered.load(Ordering::Relaxed)).saturating_sub(published);
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
    let round = Round {
        all_held,
        release,
        cpu,
        last: *reads.last().expect("reads"),
        p50: percentile(&reads, 0.5),
        p99: percentile(&reads, 0.99),
    };
    drop(to_child);
    let _ = child.kill().await;
    // The server's side of the connections closes as it reads their end.
    let deadline = Instant::now() + Duration::from_secs(30);
    while open_descriptors() > clients / 10 + 64 {
        assert!(
            Instant::now() < deadline,
            "connections still open after the round"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    round
}
