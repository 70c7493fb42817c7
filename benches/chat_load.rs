//! Chat load generator for the end-to-end chat benchmarks (`benches/chat_cpu/run.sh`: server CPU
//! per delivered message, cuecast's QUIC and WebSocket paths against a Socket.IO room;
//! `benches/cluster/chat.sh`: one room spread over several cluster nodes against one node). It
//! runs no server: the scripts start them and pass their addresses and process ids. One run per
//! invocation, printed as one JSON line on stdout.
//!
//! `CHAT_MEMBERS` members join room `demo`, spread round-robin over `CHAT_TARGETS`; `CHAT_SENDERS`
//! host accounts (also spread over the targets) post `CHAT_RATE` messages/s in total, each text
//! starting `t=<µs since this process started>`. After `CHAT_WARMUP_S`, for `CHAT_SECONDS`:
//!
//! - every member counts the messages delivered to it (a cheap scan: a cuecast frame whose JSON
//!   starts `{"type":"message"`, a Socket.IO `42["message",…]` packet), and one member in
//!   `max(1, members / 200)` also reads the `t=` of each and records post → arrival latency;
//! - the servers' CPU: utime + stime of every `CHAT_PIDS` process (from /proc), before and after.
//!
//! Output: `transport`, `members`, `targets`, `sent`, `delivered`, `expected` (sent × members),
//! `server_cpu_s`, `cpu_us_per_msg` (server CPU / delivered), `server_cpu_pct`, `client_cpu_pct`,
//! latency `p50_ms`/`p99_ms`/`max_ms` over `samples`, `lost` (members disconnected), `connect_s`.
//!
//! Environment: `CHAT_TRANSPORT` (`quic`, `ws` — cuecast's WebSocket fallback — or `socketio`),
//! `CHAT_TARGETS` (comma-separated `http://127.0.0.1:PORT`: cuecast HTTP bases, or the Socket.IO
//! server), `CHAT_PIDS` (comma-separated), `CHAT_MEMBERS` (1000), `CHAT_RATE` (50),
//! `CHAT_SENDERS` (5), `CHAT_SECONDS` (10), `CHAT_WARMUP_S` (3), `CHAT_ADMIN_TOKEN`
//! (`dev-admin-token`, grants the senders `host` on cuecast). Under `cargo test --benches`
//! (no `--bench` argument) it only prints what it is.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use cuecast::chat::client::{self, Trust};
use cuecast::chat::proto::{self, ClientMsg};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// Connections per client UDP socket (QUIC).
const PER_SOCKET: usize = 100;
/// Handshakes in flight while connecting.
const CONNECT_PARALLEL: usize = 128;
/// The room.
const ROOM: &str = "demo";
/// A cuecast message frame's JSON starts so (serde writes the tag first).
const MESSAGE_PREFIX: &[u8] = br#"{"type":"message""#;
/// A Socket.IO event packet carrying a broadcast message.
const SOCKETIO_MESSAGE: &str = r#"42["message""#;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Transport {
    Quic,
    Ws,
    SocketIo,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Quic => "quic",
            Transport::Ws => "ws",
            Transport::SocketIo => "socketio",
        }
    }
}

/// What every client task shares.
struct Shared {
    start: Instant,
    measuring: AtomicBool,
    delivered: AtomicU64,
    sent: AtomicU64,
    lost: AtomicU64,
    /// Why the first lost member was lost.
    first_loss: Mutex<Option<String>>,
    latencies: Mutex<Vec<u64>>,
}

impl Shared {
    /// One delivered message (`text` is the frame when this member samples latency).
    fn deliver(&self, sample: Option<&[u8]>) {
        if !self.measuring.load(Ordering::Relaxed) {
            return;
        }
        self.delivered.fetch_add(1, Ordering::Relaxed);
        if let Some(sent) = sample.and_then(sent_at) {
            let now = self.start.elapsed().as_micros() as u64;
            self.latencies
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(now.saturating_sub(sent));
        }
    }

    /// A member that could not join or was disconnected.
    fn lose(&self, why: impl std::fmt::Display) {
        self.lost.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_loss.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(why.to_string());
        }
    }

    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
}

/// The `t=<µs>` a post carried: the digits after the first `"t=`.
fn sent_at(frame: &[u8]) -> Option<u64> {
    let at = frame.windows(3).position(|w| w == b"\"t=")? + 3;
    let digits = frame[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&frame[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

fn env<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn list(key: &str) -> Vec<String> {
    std::env::var(key)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// utime + stime of a process, clock ticks (0 when it is gone).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

fn host_port(base: &str) -> String {
    base.trim_end_matches('/')
        .trim_start_matches("http://")
        .to_string()
}

/// A cuecast node's chat endpoint (QUIC).
struct QuicTarget {
    addr: SocketAddr,
    trust: Trust,
}

/// A host token on the cuecast node at `base` (signs `name` up there, grants `send` and `host`).
async fn host_token(base: &str, name: &str, admin: &str) -> anyhow::Result<String> {
    let http = reqwest::Client::new();
    let creds = serde_json::json!({"username": name, "password": "bench-password"});
    // A second run on the same node: the account exists (409); logging in below still works.
    http.post(format!("{base}/api/signup"))
        .json(&creds)
        .send()
        .await?;
    http.put(format!("{base}/api/users/{name}/capabilities"))
        .bearer_auth(admin)
        .json(&serde_json::json!({"capabilities": ["send", "host"]}))
        .send()
        .await?
        .error_for_status()?;
    let body: serde_json::Value = http
        .post(format!("{base}/api/login"))
        .json(&creds)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    body["token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no token in the login answer"))
}

/// Splits whole length-prefixed frames off `buf`, calling `frame` with each body.
fn frames(buf: &mut BytesMut, mut frame: impl FnMut(&[u8])) {
    while buf.len() >= 4 {
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if buf.len() < 4 + len {
            return;
        }
        frame(&buf[4..4 + len]);
        buf.advance(4 + len);
    }
}

/// A QUIC member: joins, reads to `live`, then counts (and maybe samples) every message.
async fn quic_member(
    endpoint: quinn::Endpoint,
    target: Arc<QuicTarget>,
    sample: bool,
    shared: Arc<Shared>,
    ready: tokio::sync::oneshot::Sender<bool>,
) {
    let joined = async {
        let conn = client::connect(&endpoint, target.addr, "localhost", &target.trust).await?;
        let (mut send, mut recv) = conn.open_bi().await?;
        let hello = ClientMsg::Hello {
            version: proto::VERSION,
            room: ROOM.to_string(),
            token: None,
            backfill: Some(0),
        };
        send.write_all(&proto::encode(&hello)).await?;
        let mut buf = BytesMut::new();
        let mut live = false;
        while !live {
            let chunk = recv
                .read_chunk(1 << 16, true)
                .await?
                .ok_or_else(|| anyhow::anyhow!("stream ended before live"))?;
            buf.extend_from_slice(&chunk.bytes);
            frames(&mut buf, |body| {
                if !live {
                    live = body.starts_with(br#"{"type":"live""#);
                } else if body.starts_with(MESSAGE_PREFIX) {
                    shared.deliver(sample.then_some(body));
                }
            });
        }
        anyhow::Ok((conn, send, recv, buf))
    };
    let (_conn, _send, mut recv, mut buf) = match joined.await {
        Ok(joined) => {
            let _ = ready.send(true);
            joined
        }
        Err(err) => {
            let _ = ready.send(false);
            shared.lose(format!("join: {err:#}"));
            return;
        }
    };
    loop {
        match recv.read_chunk(1 << 16, true).await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk.bytes),
            Ok(None) => {
                shared.lose("the server ended the stream");
                return;
            }
            Err(err) => {
                shared.lose(err);
                return;
            }
        }
        frames(&mut buf, |body| {
            if body.starts_with(MESSAGE_PREFIX) {
                shared.deliver(sample.then_some(body));
            }
        });
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens cuecast's WebSocket for `ROOM` on `base` and reads to `live`.
async fn ws_join(base: &str, token: Option<String>) -> anyhow::Result<Ws> {
    let url = format!("ws://{}/api/chat/{ROOM}/ws", host_port(base));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    let hello = serde_json::to_string(&ClientMsg::Hello {
        version: proto::VERSION,
        room: ROOM.to_string(),
        token,
        backfill: Some(0),
    })?;
    ws.send(Message::text(hello)).await?;
    while let Some(msg) = ws.next().await {
        if let Message::Text(text) = msg?
            && text.as_str().starts_with(r#"{"type":"live""#)
        {
            return Ok(ws);
        }
    }
    anyhow::bail!("WebSocket ended before live")
}

/// Opens a Socket.IO session (Engine.IO 4 over WebSocket) on `base` and connects the default
/// namespace; the server joins it to the room.
async fn socketio_join(base: &str) -> anyhow::Result<Ws> {
    let url = format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket",
        host_port(base)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    while let Some(msg) = ws.next().await {
        if let Message::Text(text) = msg? {
            let text = text.as_str();
            if text.starts_with('0') {
                ws.send(Message::text("40")).await?;
            } else if text.starts_with("40") {
                return Ok(ws);
            } else if text == "2" {
                ws.send(Message::text("3")).await?;
            }
        }
    }
    anyhow::bail!("Socket.IO session ended before the namespace connected")
}

/// A WebSocket member (cuecast's fallback or Socket.IO).
async fn ws_member(
    transport: Transport,
    base: String,
    sample: bool,
    shared: Arc<Shared>,
    ready: tokio::sync::oneshot::Sender<bool>,
) {
    let joined = match transport {
        Transport::SocketIo => socketio_join(&base).await,
        _ => ws_join(&base, None).await,
    };
    let mut ws = match joined {
        Ok(ws) => {
            let _ = ready.send(true);
            ws
        }
        Err(err) => {
            let _ = ready.send(false);
            shared.lose(format!("join: {err:#}"));
            return;
        }
    };
    while let Some(msg) = ws.next().await {
        let msg = match msg {
            Ok(Message::Close(frame)) => {
                shared.lose(format!("closed: {frame:?}"));
                return;
            }
            Ok(msg) => msg,
            Err(err) => {
                shared.lose(err);
                return;
            }
        };
        let Message::Text(text) = msg else { continue };
        let text = text.as_str();
        let is_message = match transport {
            Transport::SocketIo => {
                if text == "2" {
                    // Engine.IO's ping: answer or be dropped.
                    if let Err(err) = ws.send(Message::text("3")).await {
                        shared.lose(err);
                        return;
                    }
                    continue;
                }
                text.starts_with(SOCKETIO_MESSAGE)
            }
            _ => text.as_bytes().starts_with(MESSAGE_PREFIX),
        };
        if is_message {
            shared.deliver(sample.then_some(text.as_bytes()));
        }
    }
    shared.lose("the connection ended");
}

/// The text of a post sent now.
fn post_text(shared: &Shared) -> String {
    format!(
        "t={} a typical chat line of about sixty characters",
        shared.now_us()
    )
}

/// A sender: posts every `every` until `stop`, draining what comes back.
async fn sender(
    transport: Transport,
    base: String,
    quic: Option<(quinn::Endpoint, Arc<QuicTarget>)>,
    token: Option<String>,
    every: Duration,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let count = |shared: &Shared| {
        if shared.measuring.load(Ordering::Relaxed) {
            shared.sent.fetch_add(1, Ordering::Relaxed);
        }
    };
    match (transport, quic) {
        (Transport::Quic, Some((endpoint, target))) => {
            let conn = client::connect(&endpoint, target.addr, "localhost", &target.trust).await?;
            let mut stream = client::ChatStream::join(conn, ROOM, token, Some(0)).await?;
            let mut recv = stream.recv;
            tokio::spawn(
                async move { while let Ok(Some(_)) = recv.read_chunk(1 << 16, true).await {} },
            );
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let post = ClientMsg::Post {
                    text: post_text(&shared),
                    link: None,
                    product: None,
                    nonce: None,
                };
                stream.send.write_all(&proto::encode(&post)).await?;
                count(&shared);
            }
        }
        _ => {
            let ws = match transport {
                Transport::SocketIo => socketio_join(&base).await?,
                _ => ws_join(&base, token).await?,
            };
            let (mut write, mut read) = ws.split();
            let (pong_tx, mut pong_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
            tokio::spawn(async move {
                while let Some(Ok(msg)) = read.next().await {
                    if matches!(&msg, Message::Text(t) if t.as_str() == "2") {
                        let _ = pong_tx.send(());
                    }
                }
            });
            while !stop.load(Ordering::Relaxed) {
                tokio::select! {
                    _ = tick.tick() => {
                        let text = post_text(&shared);
                        let frame = match transport {
                            Transport::SocketIo => {
                                format!("42{}", serde_json::json!(["post", text]))
                            }
                            _ => serde_json::to_string(&ClientMsg::Post {
                                text,
                                link: None,
                                product: None,
                                nonce: None,
                            })?,
                        };
                        write.send(Message::text(frame)).await?;
                        count(&shared);
                    }
                    Some(()) = pong_rx.recv() => write.send(Message::text("3")).await?,
                }
            }
        }
    }
    Ok(())
}

fn quantile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

async fn run(transport: Transport) -> anyhow::Result<serde_json::Value> {
    let targets = list("CHAT_TARGETS");
    anyhow::ensure!(!targets.is_empty(), "CHAT_TARGETS is empty");
    let pids: Vec<u32> = list("CHAT_PIDS")
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect();
    let members: usize = env("CHAT_MEMBERS", 1000);
    let rate: f64 = env("CHAT_RATE", 50.0);
    let senders: usize = env("CHAT_SENDERS", 5).max(1);
    let seconds: f64 = env("CHAT_SECONDS", 10.0);
    let warmup: f64 = env("CHAT_WARMUP_S", 3.0);
    let admin: String = env("CHAT_ADMIN_TOKEN", "dev-admin-token".to_string());
    let shared = Arc::new(Shared {
        start: Instant::now(),
        measuring: AtomicBool::new(false),
        delivered: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        lost: AtomicU64::new(0),
        first_loss: Mutex::default(),
        latencies: Mutex::default(),
    });

    // Each cuecast target's QUIC address and certificate pins.
    let mut quic_targets = Vec::new();
    if transport == Transport::Quic {
        for base in &targets {
            let (trust, port) = client::fetch_pins(base).await?;
            let port = port.ok_or_else(|| anyhow::anyhow!("{base} has no chat port"))?;
            quic_targets.push(Arc::new(QuicTarget {
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                trust,
            }));
        }
    }

    // Members.
    let connect_started = Instant::now();
    let sample_every = (members / 200).max(1);
    let endpoints: Vec<quinn::Endpoint> = if transport == Transport::Quic {
        (0..members.div_ceil(PER_SOCKET))
            .map(|_| client::endpoint(quic_targets[0].addr))
            .collect::<anyhow::Result<_>>()?
    } else {
        Vec::new()
    };
    let gate = Arc::new(tokio::sync::Semaphore::new(CONNECT_PARALLEL));
    let mut readies = Vec::with_capacity(members);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..members {
        let (tx, rx) = tokio::sync::oneshot::channel();
        readies.push(rx);
        let sample = i % sample_every == 0;
        let shared = Arc::clone(&shared);
        let permit = Arc::clone(&gate).acquire_owned().await?;
        let target = i % targets.len();
        match transport {
            Transport::Quic => {
                let endpoint = endpoints[i / PER_SOCKET].clone();
                let target = Arc::clone(&quic_targets[target]);
                tasks.spawn(async move {
                    let (inner_tx, inner_rx) = tokio::sync::oneshot::channel();
                    let member =
                        tokio::spawn(quic_member(endpoint, target, sample, shared, inner_tx));
                    let _ = tx.send(inner_rx.await.unwrap_or(false));
                    drop(permit);
                    let _ = member.await;
                });
            }
            _ => {
                let base = targets[target].clone();
                tasks.spawn(async move {
                    let (inner_tx, inner_rx) = tokio::sync::oneshot::channel();
                    let member = tokio::spawn(ws_member(transport, base, sample, shared, inner_tx));
                    let _ = tx.send(inner_rx.await.unwrap_or(false));
                    drop(permit);
                    let _ = member.await;
                });
            }
        }
    }
    let mut joined = 0;
    for ready in readies {
        if ready.await.unwrap_or(false) {
            joined += 1;
        }
    }
    let connect_s = connect_started.elapsed().as_secs_f64();
    eprintln!(
        "chat_load {}: {joined}/{members} members joined in {connect_s:.1} s",
        transport.name()
    );

    // Senders.
    let stop = Arc::new(AtomicBool::new(false));
    let every = Duration::from_secs_f64(senders as f64 / rate);
    let mut sender_tasks = tokio::task::JoinSet::new();
    for s in 0..senders {
        let target = s % targets.len();
        let base = targets[target].clone();
        let token = match transport {
            Transport::SocketIo => None,
            _ => Some(host_token(&base, &format!("bench-host{s}"), &admin).await?),
        };
        let quic = (transport == Transport::Quic)
            .then(|| {
                client::endpoint(quic_targets[target].addr)
                    .map(|e| (e, Arc::clone(&quic_targets[target])))
            })
            .transpose()?;
        sender_tasks.spawn(sender(
            transport,
            base,
            quic,
            token,
            every,
            Arc::clone(&shared),
            Arc::clone(&stop),
        ));
        // Spread the senders' ticks over the interval.
        tokio::time::sleep(every / senders as u32).await;
    }

    // Warm up, then measure.
    tokio::time::sleep(Duration::from_secs_f64(warmup)).await;
    let ticks = clock_ticks();
    let server_before: u64 = pids.iter().map(|&p| cpu_ticks(p)).sum();
    let client_before = cpu_ticks(std::process::id());
    let measure_start = Instant::now();
    shared.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    shared.measuring.store(false, Ordering::Relaxed);
    let wall = measure_start.elapsed().as_secs_f64();
    let server_after: u64 = pids.iter().map(|&p| cpu_ticks(p)).sum();
    let client_after = cpu_ticks(std::process::id());
    // Members that dropped during the run (not the ones closed below).
    let lost = shared.lost.load(Ordering::Relaxed);
    let first_loss = shared
        .first_loss
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    stop.store(true, Ordering::Relaxed);
    // A sender that failed says why (a refused token, a closed connection).
    sender_tasks.abort_all();
    while let Some(done) = sender_tasks.join_next().await {
        if let Ok(Err(err)) = done {
            eprintln!("chat_load: a sender failed: {err:#}");
        }
    }
    tasks.abort_all();
    for endpoint in &endpoints {
        endpoint.close(0u32.into(), b"done");
    }

    let mut samples =
        std::mem::take(&mut *shared.latencies.lock().unwrap_or_else(|e| e.into_inner()));
    samples.sort_unstable();
    let delivered = shared.delivered.load(Ordering::Relaxed);
    let sent = shared.sent.load(Ordering::Relaxed);
    let server_cpu_s = server_after.saturating_sub(server_before) as f64 / ticks;
    let client_cpu_s = client_after.saturating_sub(client_before) as f64 / ticks;
    Ok(serde_json::json!({
        "transport": transport.name(),
        "members": members,
        "joined": joined,
        "targets": targets.len(),
        "rate": rate,
        "seconds": wall,
        "sent": sent,
        "delivered": delivered,
        "expected": sent * members as u64,
        "server_cpu_s": server_cpu_s,
        "cpu_us_per_msg": if delivered > 0 { server_cpu_s * 1e6 / delivered as f64 } else { f64::NAN },
        "server_cpu_pct": server_cpu_s / wall * 100.0,
        "client_cpu_pct": client_cpu_s / wall * 100.0,
        "p50_ms": quantile(&samples, 0.5),
        "p99_ms": quantile(&samples, 0.99),
        "max_ms": quantile(&samples, 1.0),
        "samples": samples.len(),
        "lost": lost,
        "first_loss": first_loss,
        "connect_s": connect_s,
    }))
}

fn main() -> anyhow::Result<()> {
    // `cargo test --all-targets` runs every bench target once without `--bench`: this one needs
    // servers started by a script (which passes `--bench`), so it only says so.
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "chat_load: the load generator of benches/chat_cpu/run.sh and benches/cluster/chat.sh (run with --bench)"
        );
        return Ok(());
    }
    support::raise_fd_limit();
    let transport = match env("CHAT_TRANSPORT", "quic".to_string()).as_str() {
        "quic" => Transport::Quic,
        "ws" => Transport::Ws,
        "socketio" => Transport::SocketIo,
        other => anyhow::bail!("CHAT_TRANSPORT must be quic, ws or socketio, not {other}"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(run(transport))?;
    println!("{result}");
    // Do not wait for the clients' tasks to wind down.
    runtime.shutdown_background();
    Ok(())
}
