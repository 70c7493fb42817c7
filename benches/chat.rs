//! Chat fan-out: N native QUIC clients in one room on loopback, M messages/s posted by a few
//! host accounts; delivery latency (post → arrival at a receiving client) p50/p99/max, and the
//! server process's CPU and RSS. The server is the real `cuecast` binary (its own process);
//! the clients run here, many connections sharing a few UDP sockets.
//!
//! `cargo bench --bench chat` runs N = 1000 … 10000 at 50 msg/s and reports the
//! largest N whose p99 ≤ 100 ms. Overrides: `CHAT_CLIENTS=1000,5000`, `CHAT_RATE=50`,
//! `CHAT_SECONDS=20` (measured), `CHAT_BATCH_MS=50` (server `chat.batch_ms`),
//! `CHAT_PHASES=10` (server `chat.batch_phases`; a list such as `1,10` runs each N once per
//! value, back to back). Under
//! `cargo test --benches` it runs once with 50 clients for 3 s.
//!
//! Every receiver reads all its bytes; one receiver in `SAMPLE_EVERY` also decodes the frames
//! and records latencies (decoding every copy would measure this process, not the server).

mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use cuecast::chat::client::{self, ChatStream, Trust};
use cuecast::chat::proto::{ClientMsg, ServerMsg};

/// Connections per client UDP socket.
const PER_SOCKET: usize = 100;
/// Handshakes in flight while connecting.
const CONNECT_PARALLEL: usize = 256;
/// Host accounts posting.
const SENDERS: usize = 5;
/// Latency goal.
const GOAL_P99: Duration = Duration::from_millis(100);

struct ServerProcess {
    child: Child,
    http: String,
    _dir: tempfile::TempDir,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(batch_ms: u64, phases: u64) -> ServerProcess {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("server.log");
    let child = Command::new(env!("CARGO_BIN_EXE_cuecast"))
        .arg("serve")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        // Warnings, plus the line each listener logs with the port it got.
        .env("RUST_LOG", "warn,cuecast::listen=info")
        .env("CUECAST_HTTP_LISTEN", "127.0.0.1:0")
        .env("CUECAST_RTMP_LISTEN", "127.0.0.1:0")
        .env("CUECAST_RTMPS_ENABLED", "false")
        .env("CUECAST_SRT_ENABLED", "false")
        .env("CUECAST_CHAT_LISTEN", "127.0.0.1:0")
        .env("CUECAST_SERVER_DATA_DIR", dir.path())
        .env("CUECAST_CHAT_MAX_CONNECTIONS_PER_IP", "100000")
        .env("CUECAST_CHAT_MAX_CONNECTIONS", "100000")
        .env("CUECAST_CHAT_BATCH_MS", batch_ms.to_string())
        .env("CUECAST_CHAT_BATCH_PHASES", phases.to_string())
        .env("CUECAST_CHAT_BACKFILL", "0")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("server log"))
        .spawn()
        .expect("spawn cuecast");
    let mut server = ServerProcess {
        child,
        http: String::new(),
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if server.http.is_empty()
            && let Some(addr) = text.lines().find_map(|line| {
                line.split_once("listening http=")?
                    .1
                    .split_whitespace()
                    .next()
            })
        {
            server.http = format!("http://{addr}");
        }
        if !server.http.is_empty()
            && reqwest::blocking::get(format!("{}/healthz", server.http))
                .is_ok_and(|r| r.status().is_success())
        {
            return server;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "server did not start:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

/// (utime + stime) ticks and RSS kB of a process.
fn proc_usage(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = fields
        .get(11)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (ticks, rss)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

async fn host_token(http: &str, name: &str) -> String {
    let client = reqwest::Client::new();
    let creds = serde_json::json!({"username": name, "password": "bench-password"});
    client
        .post(format!("{http}/api/signup"))
        .json(&creds)
        .send()
        .await
        .expect("signup");
    client
        .put(format!("{http}/api/users/{name}/capabilities"))
        .bearer_auth("dev-admin-token")
        .json(&serde_json::json!({"capabilities": ["send", "host"]}))
        .send()
        .await
        .expect("grant");
    let body: serde_json::Value = client
        .post(format!("{http}/api/login"))
        .json(&creds)
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login json");
    body["token"].as_str().expect("token").to_string()
}

struct Outcome {
    clients: usize,
    rate: u64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    samples: usize,
    expected: u64,
    cpu_percent: f64,
    client_cpu_percent: f64,
    rss_mb: f64,
    connect_s: f64,
    disconnected: u64,
}

/// Sending time of a post, carried in its text: "t=<µs since start>".
fn parse_sent(text: &str) -> Option<u64> {
    text.strip_prefix("t=")?.split(' ').next()?.parse().ok()
}

async fn run(server: &ServerProcess, clients: usize, rate: u64, seconds: u64) -> Outcome {
    let pid = server.child.id();
    let (trust, port) = client::fetch_pins(&server.http).await.expect("pins");
    let addr: SocketAddr = format!("127.0.0.1:{}", port.expect("port"))
        .parse()
        .unwrap();
    let sample_every = (clients / 200).max(1);
    let start = Instant::now();
    let latencies: Arc<Mutex<Vec<u64>>> = Arc::default();
    let measuring = Arc::new(AtomicBool::new(false));
    let disconnected = Arc::new(AtomicU64::new(0));

    // Receivers.
    let connect_started = Instant::now();
    let endpoints: Vec<quinn::Endpoint> = (0..clients.div_ceil(PER_SOCKET))
        .map(|_| client::endpoint(addr).expect("endpoint"))
        .collect();
    let gate = Arc::new(tokio::sync::Semaphore::new(CONNECT_PARALLEL));
    let mut joins = Vec::with_capacity(clients);
    for i in 0..clients {
        let endpoint = endpoints[i / PER_SOCKET].clone();
        let (trust, gate) = (trust.clone(), Arc::clone(&gate));
        let (latencies, measuring, disconnected) = (
            Arc::clone(&latencies),
            Arc::clone(&measuring),
            Arc::clone(&disconnected),
        );
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let stream = receiver(&endpoint, addr, &trust).await;
            drop(permit);
            let _ = ready_tx.send(());
            let Some(stream) = stream else {
                disconnected.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let ok = if i % sample_every == 0 {
                sample_loop(stream, start, &latencies, &measuring).await
            } else {
                drain_loop(stream).await
            };
            if !ok {
                disconnected.fetch_add(1, Ordering::Relaxed);
            }
        });
        joins.push(ready_rx);
    }
    for ready in joins {
        let _ = ready.await;
    }
    let connect_s = connect_started.elapsed().as_secs_f64();

    // Senders.
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let token = host_token(&server.http, &format!("host{s}")).await;
        let endpoint = client::endpoint(addr).expect("endpoint");
        let conn = client::connect(&endpoint, addr, "localhost", &trust)
            .await
            .expect("sender connect");
        let stream = ChatStream::join(conn, "demo", Some(token), Some(0))
            .await
            .expect("sender join");
        senders.push((endpoint, stream));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut sender_tasks = Vec::new();
    let per_sender = rate as f64 / SENDERS as f64;
    for (endpoint, stream) in senders {
        let stop = Arc::clone(&stop);
        let ChatStream {
            mut send, mut recv, ..
        } = stream;
        sender_tasks.push(tokio::spawn(async move {
            let _endpoint = endpoint;
            // Drain the sender's own copies and acks.
            tokio::spawn(
                async move { while let Ok(Some(_)) = recv.read_chunk(1 << 16, true).await {} },
            );
            let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sender));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            while !stop.load(Ordering::Relaxed) {
                interval.tick().await;
                let sent = start.elapsed().as_micros();
                let frame = cuecast::chat::proto::encode(&ClientMsg::Post {
                    text: format!("t={sent} a typical chat line of about sixty characters"),
                    link: None,
                    product: None,
                    nonce: None,
                });
                if send.write_all(&frame).await.is_err() {
                    return;
                }
            }
        }));
    }

    // Warm up, then measure.
    tokio::time::sleep(Duration::from_secs(3.min(seconds))).await;
    let ticks = clock_ticks();
    let (cpu_before, _) = proc_usage(pid);
    let (client_before, _) = proc_usage(std::process::id());
    let measure_start = Instant::now();
    measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let wall = measure_start.elapsed().as_secs_f64();
    let (cpu_after, rss_kb) = proc_usage(pid);
    let (client_after, _) = proc_usage(std::process::id());
    stop.store(true, Ordering::Relaxed);
    for task in sender_tasks {
        task.abort();
    }
    let mut samples = std::mem::take(&mut *latencies.lock().unwrap());
    samples.sort_unstable();
    let pick = |q: f64| {
        if samples.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        Duration::from_micros(samples[rank - 1])
    };
    let sampled_clients = clients.div_ceil(sample_every) as u64;
    let outcome = Outcome {
        clients,
        rate,
        p50: pick(0.5),
        p99: pick(0.99),
        max: pick(1.0),
        samples: samples.len(),
        expected: (rate as f64 * wall) as u64 * sampled_clients,
        cpu_percent: (cpu_after - cpu_before) as f64 / ticks / wall * 100.0,
        client_cpu_percent: (client_after - client_before) as f64 / ticks / wall * 100.0,
        rss_mb: rss_kb as f64 / 1024.0,
        connect_s,
        disconnected: disconnected.load(Ordering::Relaxed),
    };
    for endpoint in endpoints {
        endpoint.close(0u32.into(), b"done");
    }
    outcome
}

async fn receiver(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    trust: &Trust,
) -> Option<ChatStream> {
    let conn = client::connect(endpoint, addr, "localhost", trust)
        .await
        .ok()?;
    let mut stream = ChatStream::join(conn, "demo", None, Some(0)).await.ok()?;
    // Wait for the end of the (empty) backfill.
    loop {
        match stream.next().await.ok()?? {
            ServerMsg::Live {} => return Some(stream),
            _ => continue,
        }
    }
}

async fn drain_loop(mut stream: ChatStream) -> bool {
    loop {
        match stream.recv.read_chunk(1 << 16, true).await {
            Ok(Some(_)) => {}
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

async fn sample_loop(
    mut stream: ChatStream,
    start: Instant,
    latencies: &Mutex<Vec<u64>>,
    measuring: &AtomicBool,
) -> bool {
    let mut buf = BytesMut::new();
    loop {
        match stream.recv.read_chunk(1 << 16, true).await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk.bytes),
            Ok(None) => return true,
            Err(_) => return false,
        }
        let now = start.elapsed().as_micros() as u64;
        while let Ok(Some(msg)) = cuecast::chat::proto::read_server_frame(&mut buf, 1 << 22) {
            if let ServerMsg::Message { message, .. } = msg
                && measuring.load(Ordering::Relaxed)
                && let Some(sent) = parse_sent(&message.text)
            {
                latencies
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(now.saturating_sub(sent));
            }
        }
    }
}

fn main() {
    support::raise_fd_limit();
    let test_mode = !std::env::args().any(|a| a == "--bench");
    let env_list = |name: &str, default: &str| -> Vec<u64> {
        std::env::var(name)
            .unwrap_or_else(|_| default.to_string())
            .split(',')
            .filter_map(|v| v.trim().parse().ok())
            .collect()
    };
    let (clients, rate, seconds) = if test_mode {
        (vec![50], 10, 3)
    } else {
        (
            env_list("CHAT_CLIENTS", "1000,2000,3000,4000,5000,10000"),
            env_list("CHAT_RATE", "50")[0],
            env_list("CHAT_SECONDS", "20")[0],
        )
    };
    let batch_ms = env_list("CHAT_BATCH_MS", "50")
        .first()
        .copied()
        .unwrap_or(50);
    // Several values (e.g. `CHAT_PHASES=1,10`) run each N once per value, back to back.
    let phase_list = env_list("CHAT_PHASES", "10");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // Largest N holding the goal, per phases value.
    let mut best = std::collections::BTreeMap::new();
    println!(
        "chat fan-out: {rate} msg/s in, server batch_ms={batch_ms}, {seconds} s measured per run"
    );
    println!(
        "{:>7} {:>6} {:>9} {:>9} {:>9} {:>10} {:>10} {:>9} {:>9} {:>9} {:>8} {:>6}",
        "clients",
        "phases",
        "p50 ms",
        "p99 ms",
        "max ms",
        "samples",
        "expected",
        "srv CPU%",
        "RSS MB",
        "cli CPU%",
        "conn s",
        "lost"
    );
    for (n, phases) in clients
        .iter()
        .flat_map(|&n| phase_list.iter().map(move |&p| (n, p)))
    {
        let server = start_server(batch_ms, phases);
        let outcome = runtime.block_on(run(&server, n as usize, rate, seconds));
        drop(server);
        println!(
            "{:>7} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>10} {:>10} {:>9.1} {:>9.1} {:>9.1} {:>8.1} {:>6}",
            outcome.clients,
            phases,
            outcome.p50.as_secs_f64() * 1e3,
            outcome.p99.as_secs_f64() * 1e3,
            outcome.max.as_secs_f64() * 1e3,
            outcome.samples,
            outcome.expected,
            outcome.cpu_percent,
            outcome.rss_mb,
            outcome.client_cpu_percent,
            outcome.connect_s,
            outcome.disconnected,
        );
        let delivered_enough = outcome.samples as f64 >= outcome.expected as f64 * 0.95;
        if outcome.p99 <= GOAL_P99 && delivered_enough && outcome.disconnected == 0 {
            best.insert(phases, outcome.clients);
        }
        if test_mode {
            assert!(outcome.samples > 0, "no message was delivered");
            assert_eq!(outcome.disconnected, 0, "clients were disconnected");
        }
        let _ = outcome.rate;
    }
    for phases in phase_list {
        match best.get(&phases) {
            Some(n) => {
                println!("phases={phases}: largest N holding p99 <= 100 ms at {rate} msg/s: {n}")
            }
            None => println!("phases={phases}: no N held p99 <= 100 ms at {rate} msg/s"),
        }
    }
}
