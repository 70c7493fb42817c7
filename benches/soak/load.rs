//! The soak's load and sampler (run by `benches/soak/run.sh`, not by `cargo bench` alone):
//! LL-HLS players doing blocking playlist reloads and fetching each new part, chat members
//! (native QUIC) in one room per stream, a few of them posting timestamped messages, and every
//! `SAMPLE_S` one CSV row: the server's RSS and open file descriptors (from /proc), the part
//! publish delay (the server's `cuecast_stream_part_publish_delay_seconds`, worst stream), the
//! largest gap between two parts a player saw, and chat delivery latency (post → every member).
//!
//! Configured by the environment: `SOAK_HTTP` (http://127.0.0.1:PORT), `SOAK_PID` (the server),
//! `SOAK_STREAMS` (comma-separated), `SOAK_PLAYERS`, `SOAK_MEMBERS`, `SOAK_SENDERS`,
//! `SOAK_SEND_EVERY_S`, `DURATION_S`, `SAMPLE_S`, `SOAK_CSV` (output).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cuecast::chat::client::{self, ChatStream};
use cuecast::chat::proto::{ClientMsg, ServerMsg};

#[derive(Default)]
struct Window {
    chat_ms: Vec<f64>,
    part_gaps_ms: Vec<f64>,
}

#[derive(Default)]
struct Stats {
    window: Mutex<Window>,
    parts: AtomicU64,
    player_errors: AtomicU64,
    chat_errors: AtomicU64,
    members_joined: AtomicU64,
}

fn env<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// The media playlist URL of `stream`'s source rendition.
async fn source_playlist(http: &reqwest::Client, base: &str, stream: &str) -> Option<String> {
    let master = http
        .get(format!("{base}/hls/{stream}/index.m3u8"))
        .send()
        .await
        .ok()?;
    if !master.status().is_success() {
        return None;
    }
    let text = master.text().await.ok()?;
    let uri = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .find(|l| l.ends_with("source/playlist.m3u8"))?;
    Some(format!("{base}/hls/{stream}/{uri}"))
}

/// (the URIs of the parts at or after `from`, the position after the last part).
fn parts_after(text: &str, from: (u64, u32)) -> (Vec<String>, (u64, u32)) {
    let mut msn: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let mut part = 0;
    let mut uris = Vec::new();
    for line in text.lines() {
        if let Some(skip) = line.strip_prefix("#EXT-X-SKIP:SKIPPED-SEGMENTS=") {
            msn += skip
                .split(',')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        } else if line.starts_with("#EXT-X-PART:") {
            if (msn, part) >= from
                && let Some(uri) = line
                    .split("URI=\"")
                    .nth(1)
                    .and_then(|u| u.split('"').next())
            {
                uris.push(uri.to_string());
            }
            part += 1;
        } else if !line.is_empty() && !line.starts_with('#') {
            msn += 1;
            part = 0;
        }
    }
    (uris, (msn, part))
}

/// One LL-HLS player: blocking reload for the next part, then fetch the newest part.
async fn player(base: String, stream: String, stats: Arc<Stats>, stop: Arc<AtomicBool>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    'outer: while !stop.load(Ordering::Relaxed) {
        let Some(url) = source_playlist(&http, &base, &stream).await else {
            stats.player_errors.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let dir = url
            .rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default();
        let mut next = (0, 0);
        let mut last_release: Option<Instant> = None;
        let mut query = String::new();
        while !stop.load(Ordering::Relaxed) {
            let text = match http.get(format!("{url}{query}")).send().await {
                Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
                _ => {
                    stats.player_errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue 'outer;
                }
            };
            let (uris, after) = parts_after(&text, next);
            if after > next {
                let now = Instant::now();
                if let (Some(previous), true) = (last_release, next != (0, 0)) {
                    let gap = now.duration_since(previous).as_secs_f64() * 1000.0;
                    if let Ok(mut window) = stats.window.lock() {
                        window.part_gaps_ms.push(gap);
                    }
                }
                last_release = Some(now);
                if let Some(uri) = uris.last() {
                    match http.get(format!("{dir}/{uri}")).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            stats.parts.fetch_add(uris.len() as u64, Ordering::Relaxed);
                        }
                        _ => {
                            stats.player_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                next = after;
            }
            query = format!("?_HLS_msn={}&_HLS_part={}", next.0, next.1);
        }
    }
}

/// A chat member of `room`; with a token it posts a timestamp every `send_every`.
#[allow(clippy::too_many_arguments)]
async fn member(
    endpoint: quinn::Endpoint,
    addr: SocketAddr,
    trust: Arc<client::Trust>,
    room: String,
    token: Option<String>,
    send_every: Duration,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        let joined = async {
            let conn = client::connect(&endpoint, addr, "localhost", &trust).await?;
            ChatStream::join(conn, &room, token.clone(), Some(0)).await
        };
        let mut stream = match joined.await {
            Ok(stream) => stream,
            Err(_) => {
                stats.chat_errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        stats.members_joined.fetch_add(1, Ordering::Relaxed);
        let mut tick = tokio::time::interval(send_every);
        tick.tick().await;
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            tokio::select! {
                _ = tick.tick(), if token.is_some() => {
                    let post = ClientMsg::Post {
                        text: format!("soak-t={}", unix_nanos()),
                        link: None,
                        product: None,
                        nonce: None,
                    };
                    if stream.send(&post).await.is_err() {
                        break;
                    }
                }
                msg = stream.next() => match msg {
                    Ok(Some(ServerMsg::Message { message, history: false })) => {
                        if let Some(sent) = message.text.strip_prefix("soak-t=").and_then(|t| t.parse::<u128>().ok()) {
                            let ms = unix_nanos().saturating_sub(sent) as f64 / 1e6;
                            if let Ok(mut window) = stats.window.lock() {
                                window.chat_ms.push(ms);
                            }
                        }
                    }
                    Ok(Some(_)) => {}
                    _ => break,
                },
            }
        }
        stats.chat_errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// A sender's token: signs `user` up (or logs in when it exists).
async fn token(http: &reqwest::Client, base: &str, user: &str) -> Option<String> {
    let creds = serde_json::json!({ "username": user, "password": "soak password 1" });
    for path in ["/api/signup", "/api/login"] {
        let response = http
            .post(format!("{base}{path}"))
            .json(&creds)
            .send()
            .await
            .ok()?;
        if response.status().is_success() {
            let body: serde_json::Value = response.json().await.ok()?;
            return body["token"].as_str().map(str::to_string);
        }
    }
    None
}

fn proc_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn proc_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// (worst stream's p99, worst stream's largest quantile) of the part publish delay, ms.
fn part_delay(metrics: &str) -> (f64, f64) {
    let metric = "cuecast_stream_part_publish_delay_seconds{";
    let (mut p99, mut max) = (0.0f64, 0.0f64);
    for line in metrics.lines().filter(|l| l.starts_with(metric)) {
        let Some((labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        if labels.contains("quantile=\"0.99\"") {
            p99 = p99.max(value * 1000.0);
        }
        if labels.contains("quantile=") {
            max = max.max(value * 1000.0);
        }
    }
    (p99, max)
}

fn main() {
    // `cargo test --all-targets` runs every bench target once without `--bench`: this one needs a
    // server and its environment (benches/soak/run.sh passes `--bench`), so it only says so.
    if !std::env::args().any(|a| a == "--bench") {
        println!("soak_load: a load generator for benches/soak/run.sh (run with --bench)");
        return;
    }
    let base: String = env("SOAK_HTTP", "http://127.0.0.1:8080".to_string());
    let pid: u32 = env("SOAK_PID", 0);
    let streams: Vec<String> = env("SOAK_STREAMS", "demo".to_string())
        .split(',')
        .map(str::to_string)
        .collect();
    let players: usize = env("SOAK_PLAYERS", 200);
    let members: usize = env("SOAK_MEMBERS", 1000);
    let senders: usize = env("SOAK_SENDERS", 50);
    let send_every = Duration::from_secs_f64(env("SOAK_SEND_EVERY_S", 5.0));
    let duration = Duration::from_secs(env("DURATION_S", 3600));
    let sample = Duration::from_secs(env("SAMPLE_S", 10));
    let csv_path: String = env("SOAK_CSV", "soak.csv".to_string());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let stats = Arc::new(Stats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let http = reqwest::Client::new();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..players {
            let stream = streams[i % streams.len()].clone();
            tasks.spawn(player(base.clone(), stream, Arc::clone(&stats), Arc::clone(&stop)));
        }
        let (trust, port) = client::fetch_pins(&base).await.expect("chat certificate");
        let addr = SocketAddr::from(([127, 0, 0, 1], port.expect("chat port")));
        let endpoint = client::endpoint(addr).expect("endpoint");
        let trust = Arc::new(trust);
        for i in 0..members {
            let room = streams[i % streams.len()].clone();
            let token = if i < senders {
                token(&http, &base, &format!("soak{i}")).await
            } else {
                None
            };
            tasks.spawn(member(
                endpoint.clone(),
                addr,
                Arc::clone(&trust),
                room,
                token,
                send_every,
                Arc::clone(&stats),
                Arc::clone(&stop),
            ));
        }
        let mut csv = String::from(
            "t_s,rss_kb,fds,part_delay_p99_ms,part_delay_max_ms,parts,part_gap_max_ms,player_errors,chat_members,chat_deliveries,chat_p50_ms,chat_p99_ms,chat_errors\n",
        );
        let started = Instant::now();
        let mut tick = tokio::time::interval(sample);
        tick.tick().await;
        while started.elapsed() < duration {
            tick.tick().await;
            // Once more on a failure: a keep-alive connection the server closed for idleness
            // just as the request went out fails it, and left a sample without a reading.
            let mut metrics = String::new();
            for _ in 0..2 {
                if let Ok(r) = http.get(format!("{base}/metrics")).send().await
                    && let Ok(text) = r.text().await
                {
                    metrics = text;
                    break;
                }
            }
            let (delay_p99, delay_max) = part_delay(&metrics);
            let window = stats
                .window
                .lock()
                .map(|mut w| std::mem::take(&mut *w))
                .unwrap_or_default();
            let mut chat = window.chat_ms;
            chat.sort_by(f64::total_cmp);
            let gap_max = window.part_gaps_ms.iter().copied().fold(0.0, f64::max);
            let row = format!(
                "{:.0},{},{},{:.1},{:.1},{},{:.0},{},{},{},{:.1},{:.1},{}\n",
                started.elapsed().as_secs_f64(),
                proc_rss_kb(pid),
                proc_fds(pid),
                delay_p99,
                delay_max,
                stats.parts.load(Ordering::Relaxed),
                gap_max,
                stats.player_errors.load(Ordering::Relaxed),
                stats.members_joined.load(Ordering::Relaxed),
                chat.len(),
                quantile(&chat, 0.5),
                quantile(&chat, 0.99),
                stats.chat_errors.load(Ordering::Relaxed),
            );
            eprint!("{row}");
            csv.push_str(&row);
            let _ = std::fs::write(&csv_path, &csv);
        }
        stop.store(true, Ordering::Relaxed);
        tasks.abort_all();
    });
}
