//! LL-HLS players for `benches/cluster/run.sh` (the compiled twin of `players.py`, which cannot
//! run 1,000 players on two cores): `PLAYERS` players on the edge node (B) and one probe on the
//! owner (A), each looping as hls.js does at the live edge: a blocking playlist reload for the
//! preload-hinted part (`_HLS_msn`/`_HLS_part`), then that part. One tokio runtime (two worker
//! threads), keep-alive HTTP/1.1 connections from a pool (one per player in flight).
//!
//! For every (msn, part) the probe on A and a player on B both received, the edge's added
//! latency is the time B's blocking reload completed minus the time A's completed (same clock,
//! same process). Prints one JSON object, the keys of players.py: `players`,
//! `parts_seen_by_probe`, `probe_requests`, `edge_requests`, `errors`, `samples`,
//! `added_ms_p50`, `added_ms_p99`, and `owner`: with `OWNER_METRICS` (A's `/metrics` URL), A's
//! media playlist and part requests (2xx) and published video parts over the measured window.
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

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const HINT: &str = "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"";

#[derive(Default)]
struct Counters {
    /// Requests sent in the measured window.
    requests: AtomicU64,
    errors: AtomicU64,
    /// Whether the measured window is on.
    measuring: std::sync::atomic::AtomicBool,
}

impl Counters {
    fn request(&self) {
        if self.measuring.load(Ordering::Relaxed) {
            self.requests.fetch_add(1, Ordering::Relaxed);
        }
    }
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

/// GET `url`; the status and the body (read to the end).
async fn get(http: &reqwest::Client, url: &str) -> Option<(u16, bytes::Bytes)> {
    let response = http.get(url).send().await.ok()?;
    let status = response.status().as_u16();
    let body = response.bytes().await.ok()?;
    Some((status, body))
}

/// One player until `deadline`: when each blocking reload completed, per (msn, part).
async fn player(
    http: reqwest::Client,
    url: String,
    deadline: Instant,
    counters: Arc<Counters>,
) -> Vec<((u64, u32), Instant)> {
    let mut done = Vec::new();
    let dir = url
        .rsplit_once('/')
        .map(|(d, _)| d.to_string())
        .unwrap_or_default();
    let error = |counters: &Counters| {
        counters.errors.fetch_add(1, Ordering::Relaxed);
    };
    let mut text = String::new();
    while Instant::now() < deadline {
        let (Some(uri), Some((msn, index))) = (hint(&text), next_part(&text)) else {
            // No playlist yet (or no hint): load it plainly.
            match get(&http, &url).await {
                Some((200, body)) => text = String::from_utf8_lossy(&body).into_owned(),
                _ => {
                    error(&counters);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            continue;
        };
        let part_url = format!("{dir}/{uri}");
        let reload = get(&http, &format!("{url}?_HLS_msn={msn}&_HLS_part={index}")).await;
        let now = Instant::now();
        counters.request();
        match reload {
            Some((200, body)) => {
                if counters.measuring.load(Ordering::Relaxed) {
                    done.push(((msn, index), now));
                }
                text = String::from_utf8_lossy(&body).into_owned();
            }
            _ => {
                error(&counters);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        counters.request();
        if !matches!(get(&http, &part_url).await, Some((200, _))) {
            error(&counters);
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
            client(),
            owner_url.clone(),
            deadline,
            Arc::clone(&probe_counters),
        ));
        let edge_http = client();
        let edge: Vec<_> = (0..players)
            .map(|_| {
                tokio::spawn(player(
                    edge_http.clone(),
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
        serde_json::json!({
            "players": players,
            "parts_seen_by_probe": probe_done.len(),
            "probe_requests": probe_counters.requests.load(Ordering::Relaxed),
            "edge_requests": edge_counters.requests.load(Ordering::Relaxed),
            "errors": edge_counters.errors.load(Ordering::Relaxed)
                + probe_counters.errors.load(Ordering::Relaxed),
            "samples": added.len(),
            "added_ms_p50": pct(50.0),
            "added_ms_p99": pct(99.0),
            "owner": owner,
        })
    });
    println!("{result}");
    runtime.shutdown_background();
}
