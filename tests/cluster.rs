//! Several nodes sharing a real Redis server (docs/scaling.md, "Stream ownership and
//! playback"): the publishing node holds the stream's lease and a second publisher on another
//! node is refused; another node plays the stream from the owner (same session, segment and
//! part numbers, identical bytes) with concurrent identical requests collapsed into one
//! upstream request; a cue posted to a third node reaches the owner's media and so every
//! node's playlists and segments; a killed owner's lease expires and the publisher moves to
//! another node, which continues the session (viewers elsewhere, hls.js too, play on) and
//! records its part of it as a recording of its own (on a shared PostgreSQL store);
//! nodes ride out a Redis restart; a node that cannot reach Redis at start exits naming it.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::services::{Postgres, Redis, free_port};
use common::{
    Publisher, Server, account, call, get, media_url, preload_hint, wait_for, wait_log,
    wait_recordings, wait_show_state,
};

const TOKEN: &str = "dev-admin-token";
const LEASE_KEY: &str = "cuecast:stream:demo:owner";

/// A node of the cluster on `redis`, its HTTP on a port picked here (its node_url must be
/// known before it starts).
fn node(redis: &Redis, lease_ttl_ms: u64) -> Server {
    node_with(redis, lease_ttl_ms, "false")
}

/// [`node`], with SRT ingest enabled or not (`"true"`/`"false"`).
fn node_with(redis: &Redis, lease_ttl_ms: u64, srt: &str) -> Server {
    node_env(redis, lease_ttl_ms, &[("CUECAST_SRT_ENABLED", srt)])
}

/// [`node`] with more environment (SRT is off unless `extra` turns it on).
fn node_env(redis: &Redis, lease_ttl_ms: u64, extra: &[(&str, &str)]) -> Server {
    let env = node_vars(redis, lease_ttl_ms, extra);
    Server::start_with(&as_env(&env))
}

/// The environment of a node of the cluster on `redis`, HTTP on a port picked here (its
/// node_url must be known before it starts; a restart with the same environment keeps it).
fn node_vars(redis: &Redis, lease_ttl_ms: u64, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let port = free_port();
    let mut env: Vec<(String, String)> = [
        ("CUECAST_HTTP_LISTEN", format!("127.0.0.1:{port}")),
        ("CUECAST_CLUSTER_REDIS_URL", redis.url()),
        (
            "CUECAST_CLUSTER_NODE_URL",
            format!("http://127.0.0.1:{port}"),
        ),
        ("CUECAST_CLUSTER_LEASE_TTL_MS", lease_ttl_ms.to_string()),
        ("CUECAST_CLUSTER_CONNECT_TIMEOUT_MS", "1000".into()),
        ("CUECAST_SRT_ENABLED", "false".into()),
        ("CUECAST_CHAT_ENABLED", "false".into()),
        ("CUECAST_RTMPS_ENABLED", "false".into()),
    ]
    .into_iter()
    .filter(|(key, _)| !extra.iter().any(|(k, _)| k == key))
    .map(|(key, value)| (key.to_string(), value))
    .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

/// `env` as [`Server::start_with`] takes it.
fn as_env(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// [`node`] whose lost publishers are waited for `grace` seconds (reconnect continuity).
fn node_with_grace(redis: &Redis, lease_ttl_ms: u64, grace: &str) -> Server {
    node_env(
        redis,
        lease_ttl_ms,
        &[("CUECAST_INGEST_RECONNECT_GRACE_S", grace)],
    )
}

/// The failover tests' cluster: nodes A, B and C on `redis` (lost publishers waited for 15 s,
/// so A keeps a handoff), a publisher on A (120 s), and the URL of the stream's source media
/// playlist on C once C lists two segments.
fn three_nodes(redis: &Redis) -> (Server, Server, Server, Publisher, String) {
    let a = node_with_grace(redis, 2_000, "15");
    let b = node_with_grace(redis, 2_000, "15");
    let c = node_with_grace(redis, 2_000, "15");
    let publisher = Publisher::ffmpeg(&a.rtmp_url("demo-key"), 120);
    let playlist = media_url(&c, "demo", "source");
    wait_for(
        &playlist,
        Duration::from_secs(30),
        common::segments_at_least(2),
    );
    (a, b, c, publisher, playlist)
}

/// The publisher moves to `to` once the dead owner's lease expired (within 5 s): a publisher
/// of `seconds` on `to`, returned once `to` holds the lease.
fn move_publisher(redis: &Redis, to: &Server, seconds: u32) -> Publisher {
    wait_until(
        "the dead owner's lease to expire",
        Duration::from_secs(5),
        || holder(redis).is_empty(),
    );
    let publisher = Publisher::ffmpeg(&to.rtmp_url("demo-key"), seconds);
    wait_until(
        "the new node to take the lease",
        Duration::from_secs(15),
        || holder(redis).starts_with(&id_prefix(to)),
    );
    publisher
}

/// `redis-cli` against `redis`.
fn redis_cli(redis: &Redis, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-p", &redis.port().to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The lease holder's node id ("" when nobody holds it).
fn holder(redis: &Redis) -> String {
    redis_cli(redis, &["GET", LEASE_KEY])
}

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// The node id prefix of `server` (its node_url + '#').
fn id_prefix(server: &Server) -> String {
    format!("{}#", server.url(""))
}

/// The playlist's `#EXT-X-MEDIA-SEQUENCE`.
fn media_sequence(playlist: &str) -> u64 {
    playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no media sequence in\n{playlist}"))
}

#[test]
fn the_publishing_node_holds_the_lease_and_another_nodes_publisher_is_refused() {
    let redis = Redis::start();
    let a = node(&redis, 3_000);
    let b = node_with(&redis, 3_000, "true");
    let _publisher = Publisher::ffmpeg(&a.rtmp_url("demo-key"), 40);
    media_url(&a, "demo", "source");
    assert!(
        holder(&redis).starts_with(&id_prefix(&a)),
        "A holds the lease: {:?}",
        holder(&redis)
    );
    let ttl: i64 = redis_cli(&redis, &["PTTL", LEASE_KEY])
        .parse()
        .expect("pttl");
    assert!(
        (0..=3_000).contains(&ttl),
        "the lease expires by itself: {ttl} ms"
    );
    // Renewed: still A's after more than a lease lifetime.
    std::thread::sleep(Duration::from_millis(3_500));
    assert!(holder(&redis).starts_with(&id_prefix(&a)));

    let mut second = Publisher::ffmpeg(&b.rtmp_url("demo-key"), 10);
    let status = second
        .wait(Duration::from_secs(20))
        .expect("B refuses the second publisher, so ffmpeg stops");
    assert!(!status.success(), "ffmpeg failed to publish on B");
    let log = wait_log(
        &b,
        "RTMP publish refused: the stream is not this node's to publish",
        Duration::from_secs(5),
    );
    assert!(log.contains("is published on node"), "{log}");
    assert!(
        !a.log().contains("RTMP publish refused"),
        "A's publisher is untouched"
    );
    // Over SRT too, at handshake, with the reject code a second publisher gets on one node.
    let mut srt = Publisher::ffmpeg_srt(
        &b.srt_url(),
        "#!::r=live/demo-key,m=publish",
        &[],
        10,
        "libx264",
    );
    let status = srt
        .wait(Duration::from_secs(20))
        .expect("B refuses the SRT publisher, so ffmpeg stops");
    assert!(!status.success(), "ffmpeg failed to publish over SRT on B");
    let log = wait_log(&b, "SRT_REJX_CONFLICT", Duration::from_secs(5));
    assert!(
        log.lines()
            .any(|l| l.contains("SRT caller rejected") && l.contains("is published on node")),
        "{log}"
    );
    // A keeps the stream.
    assert!(holder(&redis).starts_with(&id_prefix(&a)));
}

#[test]
fn a_non_owner_plays_the_owners_stream_collapsed_and_a_cue_posted_anywhere_reaches_it() {
    let redis = Redis::start();
    let a = node(&redis, 5_000);
    let b = node(&redis, 5_000);
    let c = node(&redis, 5_000);
    let _publisher = Publisher::ffmpeg(&a.rtmp_url("demo-key"), 60);
    let a_playlist_url = media_url(&a, "demo", "source");
    let b_playlist_url = media_url(&b, "demo", "source");
    let path = |url: &str| url.split_once("/hls/").map(|(_, p)| p.to_string());
    assert_eq!(
        path(&a_playlist_url),
        path(&b_playlist_url),
        "B's multivariant names A's session and renditions"
    );
    let (status, headers, _) = get(&b.url("/hls/demo/index.m3u8"));
    assert_eq!(status, 200);
    assert!(
        headers.contains_key("x-cuecast-edge"),
        "B fetched it from A: {headers:?}"
    );
    let (_, headers, _) = get(&a.url("/hls/demo/index.m3u8"));
    assert!(!headers.contains_key("x-cuecast-edge"), "A serves its own");

    // The same segment, by the owner's number, is the same bytes on both nodes.
    let b_text = wait_for(
        &b_playlist_url,
        Duration::from_secs(20),
        common::segments_at_least(2),
    );
    let first = b_text
        .lines()
        .find(|l| l.ends_with(".m4s") && !l.starts_with('#'))
        .expect("a segment")
        .to_string();
    let base = |url: &str| {
        url.rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .expect("base")
    };
    let (sa, _, from_a) = get(&format!("{}/{first}", base(&a_playlist_url)));
    let (sb, hb, from_b) = get(&format!("{}/{first}", base(&b_playlist_url)));
    assert_eq!((sa, sb), (200, 200));
    assert_eq!(from_a, from_b, "{first}: B serves A's bytes");
    assert!(hb.contains_key("x-cuecast-edge"));
    let (_, hb2, _) = get(&format!("{}/{first}", base(&b_playlist_url)));
    assert_eq!(
        hb2.get("x-cuecast-edge").and_then(|v| v.to_str().ok()),
        Some("cached"),
        "a segment fetched once is not fetched again"
    );
    let a_text = common::text(&a_playlist_url);
    let (a_seq, b_seq) = (media_sequence(&a_text), media_sequence(&b_text));
    assert!(
        a_seq.abs_diff(b_seq) <= 1,
        "the owner's numbers: A {a_seq}, B {b_seq}"
    );

    // Twenty viewers on B asking for the next part at once: one request to A.
    let text = common::text(&b_playlist_url);
    let (msn, part) = preload_hint(&text);
    let blocking = format!("{b_playlist_url}?_HLS_msn={msn}&_HLS_part={part}");
    let viewers: Vec<_> = (0..20)
        .map(|_| {
            let url = blocking.clone();
            std::thread::spawn(move || get(&url))
        })
        .collect();
    let mut served = Vec::new();
    for viewer in viewers {
        let (status, headers, body) = viewer.join().expect("viewer");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        served.push(
            headers
                .get("x-cuecast-edge")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
        );
    }
    let upstream = served.iter().filter(|s| *s == "upstream").count();
    assert_eq!(
        upstream, 1,
        "twenty identical blocking reloads became {upstream} upstream requests: {served:?}"
    );
    assert!(
        served
            .iter()
            .all(|s| ["upstream", "collapsed", "cached"].contains(&s.as_str())),
        "{served:?}"
    );
    // What the edge answers in front of the router still gets CORS (browsers on the shop's
    // own domain play from any node) and is counted in B's HLS requests.
    let (_, headers, _) = get(&blocking);
    assert_eq!(
        headers
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("*"),
        "{headers:?}"
    );
    let (_, _, metrics) = get(&b.url("/metrics"));
    let metrics = String::from_utf8_lossy(&metrics);
    let counted = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(r#"cuecast_hls_requests_total{kind="media_playlist",status="2xx"} "#)
        })
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        counted >= 21.0,
        "B counts the playlists it served from A (21 at least): {counted}"
    );

    // A cue posted to C (which neither publishes nor was asked for the stream) is forwarded to A.
    let before_cue = common::last_msn(&common::text(&b_playlist_url));
    let (status, _, cue) = call(
        "POST",
        &c.url("/api/streams/demo/cues"),
        Some(TOKEN),
        Some(
            r#"{"kind": "product", "at": "now", "duration_s": 10, "product": {"id": "sku-1", "title": "Rose perfume", "price": "49.00", "currency": "USD"}}"#,
        ),
    );
    assert_eq!(status, 201, "{cue}");
    let id = cue["id"].as_str().expect("cue id").to_string();
    assert!(a.log().contains(&id), "A placed the cue");
    let needle = format!("ID=\"{id}\"");
    let on_b = wait_for(&b_playlist_url, Duration::from_secs(10), |t| {
        t.contains(&needle)
    });
    assert!(
        on_b.lines()
            .any(|l| l.starts_with("#EXT-X-DATERANGE:") && l.contains(&needle)),
        "the cue's DATERANGE on B"
    );
    // Its emsg is in the media B serves: in a segment completed after the cue was posted.
    let after = wait_for(&b_playlist_url, Duration::from_secs(15), |t| {
        common::last_msn(t) > before_cue + 1
    });
    let candidates: Vec<String> = after
        .lines()
        .filter(|l| l.ends_with(".m4s") && !l.starts_with('#'))
        .filter(|l| {
            l.trim_start_matches("seg")
                .trim_end_matches(".m4s")
                .parse::<u64>()
                .is_ok_and(|msn| msn > before_cue)
        })
        .map(str::to_string)
        .collect();
    assert!(!candidates.is_empty(), "segments after the cue in\n{after}");
    let carrying: Vec<&String> = candidates
        .iter()
        .filter(|uri| {
            let (status, _, segment) = get(&format!("{}/{uri}", base(&b_playlist_url)));
            assert_eq!(status, 200, "{uri} from B");
            common::bmff::top_boxes(&segment)
                .iter()
                .any(|(kind, bytes)| kind == "emsg" && String::from_utf8_lossy(bytes).contains(&id))
        })
        .collect();
    assert!(
        !carrying.is_empty(),
        "a segment served by B after the cue carries its emsg: {candidates:?}"
    );
    // C's edge counted the forward; a GET of the cues is answered by C itself.
    let (_, _, metrics) = get(&c.url("/metrics"));
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("cuecast_edge_forwarded_total 1"),
        "{metrics}"
    );
}

#[test]
fn a_killed_owner_loses_its_lease_and_the_publisher_moves_to_another_node() {
    let redis = Redis::start();
    let a = node(&redis, 2_000);
    let b = node(&redis, 2_000);
    let mut publisher = Publisher::ffmpeg(&a.rtmp_url("demo-key"), 60);
    media_url(&a, "demo", "source");
    let b_url = media_url(&b, "demo", "source");
    assert!(holder(&redis).starts_with(&id_prefix(&a)));
    drop(a); // SIGKILL: nothing released on the way out.
    publisher.kill();
    let killed = Instant::now();
    wait_until("A's lease to expire", Duration::from_secs(5), || {
        holder(&redis).is_empty()
    });
    assert!(
        killed.elapsed() <= Duration::from_millis(2_500),
        "expired within the lease lifetime: {:?}",
        killed.elapsed()
    );
    // The publisher reconnects to B, which now owns and serves the stream.
    let _publisher = Publisher::ffmpeg(&b.rtmp_url("demo-key"), 30);
    wait_until("B to take the lease", Duration::from_secs(15), || {
        holder(&redis).starts_with(&id_prefix(&b))
    });
    let _ = b_url;
    let local = media_url(&b, "demo", "source");
    let text = wait_for(
        &local,
        Duration::from_secs(20),
        common::segments_at_least(1),
    );
    assert!(text.contains("#EXT-X-PART"), "{text}");
    let (_, headers, _) = get(&b.url("/hls/demo/index.m3u8"));
    assert!(
        !headers.contains_key("x-cuecast-edge"),
        "B serves its own now"
    );
}

#[test]
fn nodes_ride_out_a_redis_restart_and_take_their_leases_back() {
    let mut redis = Redis::start();
    let mut a = node(&redis, 2_000);
    let mut b = node(&redis, 2_000);
    let _publisher = Publisher::ffmpeg(&a.rtmp_url("demo-key"), 60);
    let a_url = media_url(&a, "demo", "source");
    let b_during = media_url(&b, "demo", "source");
    redis.kill();
    std::thread::sleep(Duration::from_millis(2_500));
    assert!(a.is_running() && b.is_running(), "no node exits");
    // B's viewers keep playing from the owner it last saw.
    let (status, headers, body) = get(&b_during);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(headers.contains_key("x-cuecast-edge"));
    // A keeps serving what it owns without Redis.
    let before = common::last_msn(&common::text(&a_url));
    wait_for(&a_url, Duration::from_secs(10), |t| {
        common::last_msn(t) > before
    });
    redis.restart();
    assert_eq!(holder(&redis), "", "the restarted Redis is empty");
    wait_until("A to take its lease back", Duration::from_secs(10), || {
        holder(&redis).starts_with(&id_prefix(&a))
    });
    wait_log(&a, "Redis is back", Duration::from_secs(5));
    // B plays from A again.
    let b_url = media_url(&b, "demo", "source");
    let text = wait_for(
        &b_url,
        Duration::from_secs(10),
        common::segments_at_least(1),
    );
    assert!(text.contains("#EXT-X-PART"), "{text}");
    assert!(a.is_running() && b.is_running(), "no node exits");
}

#[test]
fn a_node_that_cannot_reach_redis_at_start_says_so_and_exits_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let closed = format!("redis://127.0.0.1:{}", free_port());
    let output = Command::new(env!("CARGO_BIN_EXE_cuecast"))
        .arg("serve")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CUECAST_SERVER_DATA_DIR", dir.path().join("data"))
        .env("CUECAST_HTTP_LISTEN", "127.0.0.1:0")
        .env("CUECAST_RTMP_LISTEN", "127.0.0.1:0")
        .env("CUECAST_SRT_ENABLED", "false")
        .env("CUECAST_CHAT_ENABLED", "false")
        .env("CUECAST_RTMPS_ENABLED", "false")
        .env("CUECAST_CLUSTER_REDIS_URL", &closed)
        .env("CUECAST_CLUSTER_NODE_URL", "http://127.0.0.1:1")
        .env("CUECAST_CLUSTER_CONNECT_TIMEOUT_MS", "500")
        .output()
        .expect("run cuecast");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "exits non-zero:\n{stderr}");
    assert!(
        stderr.contains("cannot reach Redis at redis://127.0.0.1"),
        "names Redis:\n{stderr}"
    );
}

/// hls.js (tests/browser/play.mjs, headless Chromium) plays a stream published on A from node B:
/// started, no stall, no fatal error, low-latency mode with parts and blocking reloads — all of
/// it through B's fetches from A.
#[test]
fn hls_js_plays_from_a_node_that_does_not_own_the_stream() {
    let dir = common::browser::scripts();
    let redis = Redis::start();
    let a = node(&redis, 5_000);
    let b = node(&redis, 5_000);
    let _publisher = Publisher::ffmpeg(&a.rtmp_url("demo-key"), 60);
    let video = media_url(&b, "demo", "source");
    wait_for(&video, Duration::from_secs(30), |t| {
        t.contains("#EXT-X-PART-INF")
    });
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cluster_browser");
    std::fs::create_dir_all(&out).expect("create output dir");
    let output = Command::new("node")
        .arg(dir.join("play.mjs"))
        .args(["--url", &b.url("/hls/demo/index.m3u8")])
        .args(["--seconds", "12", "--start-timeout", "20", "--json"])
        .arg(out.join("play.json"))
        .arg("--log")
        .arg(out.join("hls.log"))
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "play.mjs failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("play.mjs JSON");
    let mut brief = report.clone();
    if let Some(map) = brief.as_object_mut() {
        map.remove("samples");
    }
    assert_eq!(report["started"], true, "{brief}");
    assert_eq!(report["stalls"].as_u64(), Some(0), "{brief}");
    assert!(report["fatal_error"] != true, "{brief}");
    let fatal = report["errors"]
        .as_array()
        .is_some_and(|errors| errors.iter().any(|e| e["fatal"] == true));
    assert!(!fatal, "{brief}");
    assert_eq!(report["low_latency_mode"], true, "{brief}");
    assert_eq!(report["parts_seen"], true, "{brief}");
    let (_, _, metrics) = get(&b.url("/metrics"));
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.lines().any(
            |l| l.starts_with("cuecast_edge_requests_total{served=\"upstream\"}")
                && !l.ends_with(" 0")
        ),
        "B fetched from A:\n{metrics}"
    );
}

/// What a viewer polling a media playlist saw: every playlist answer, and the status of every
/// URL a playlist listed (fetched once, right after the playlist that listed it).
#[derive(Default)]
struct Viewing {
    /// (status, text) of each playlist reload.
    playlists: Vec<(u16, String)>,
    /// (URL, status) of each listed segment, part and init segment.
    objects: Vec<(String, u16)>,
    /// (status, text) of each blocking reload (`_HLS_msn`/`_HLS_part` of the last preload hint).
    blocking: Vec<(u16, String)>,
}

/// The URIs a media playlist lists: segments, parts and EXT-X-MAP init segments (not the
/// preload hint: that part does not exist yet).
fn listed_uris(text: &str) -> Vec<String> {
    let quoted = |line: &str| {
        let start = line.find("URI=\"")? + 5;
        let end = line[start..].find('"')? + start;
        Some(line[start..end].to_string())
    };
    text.lines()
        .filter_map(|l| {
            if l.starts_with("#EXT-X-PART:") || l.starts_with("#EXT-X-MAP:") {
                quoted(l)
            } else if !l.starts_with('#') && !l.trim().is_empty() {
                Some(l.trim().to_string())
            } else {
                None
            }
        })
        .collect()
}

/// GET with a timeout above the edge's failover hold; `None` when no answer came.
fn get_held(client: &reqwest::blocking::Client, url: &str) -> Option<(u16, String)> {
    let response = client
        .get(url)
        .timeout(Duration::from_secs(20))
        .send()
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().unwrap_or_default()))
}

/// Issue #30: the owner (A) is killed with SIGKILL while a viewer plays from C; its lease
/// expires, the publisher reconnects to B, which continues A's session from the handoff A kept
/// in Redis. C's viewer keeps the same playlist URL: the media sequence carries on higher, an
/// EXT-X-DISCONTINUITY marks the seam, and no URL any playlist listed, no reload and no
/// blocking reload held across the failover is answered 404.
#[test]
fn a_killed_owners_viewers_keep_playing_from_the_node_the_publisher_moves_to() {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
    use std::sync::{Arc, Mutex};

    let redis = Redis::start();
    let (a, b, c, mut publisher, playlist) = three_nodes(&redis);
    let handoff: serde_json::Value =
        serde_json::from_str(&redis_cli(&redis, &["GET", "cuecast:stream:demo:handoff"]))
            .expect("A keeps the stream's handoff in Redis");
    let session = handoff["session"].as_str().expect("session").to_string();
    assert!(playlist.contains(&format!("/{session}/")), "{playlist}");

    // The viewer on C: reloads every 200 ms and fetches what each playlist lists. It pauses
    // between rounds when asked (0 run, 1 pause asked, 2 paused), so A is killed between two
    // rounds: a URL listed a moment before A died but never fetched has no bytes anywhere
    // (docs/scaling.md, limits).
    let seen = Arc::new(Mutex::new(Viewing::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let pause = Arc::new(AtomicU8::new(0));
    let viewer = {
        let (seen, stop, pause, url) = (
            Arc::clone(&seen),
            Arc::clone(&stop),
            Arc::clone(&pause),
            playlist.clone(),
        );
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            let base = url
                .rsplit_once('/')
                .map(|(b, _)| b.to_string())
                .expect("base");
            let mut fetched = HashSet::new();
            while !stop.load(Ordering::SeqCst) {
                if pause.load(Ordering::SeqCst) != 0 {
                    pause.store(2, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                let Some((status, text)) = get_held(&client, &url) else {
                    seen.lock()
                        .expect("seen")
                        .playlists
                        .push((0, String::new()));
                    continue;
                };
                let mut objects = Vec::new();
                if status == 200 {
                    for uri in listed_uris(&text) {
                        if fetched.insert(uri.clone()) {
                            let status = get_held(&client, &format!("{base}/{uri}"))
                                .map_or(0, |(status, _)| status);
                            objects.push((uri, status));
                        }
                    }
                }
                let mut seen = seen.lock().expect("seen");
                seen.playlists.push((status, text));
                seen.objects.extend(objects);
                drop(seen);
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    // A player's blocking reloads on C, one after the other: one is held by A when A dies.
    let blocker = {
        let (seen, stop, url) = (Arc::clone(&seen), Arc::clone(&stop), playlist.clone());
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            let mut next = None;
            while !stop.load(Ordering::SeqCst) {
                let target = match next {
                    Some((msn, part)) => format!("{url}?_HLS_msn={msn}&_HLS_part={part}"),
                    None => url.clone(),
                };
                let Some((status, text)) = get_held(&client, &target) else {
                    seen.lock().expect("seen").blocking.push((0, String::new()));
                    continue;
                };
                if status == 200 && text.contains("#EXT-X-PRELOAD-HINT") {
                    next = Some(preload_hint(&text));
                } else {
                    std::thread::sleep(Duration::from_millis(200));
                }
                seen.lock().expect("seen").blocking.push((status, text));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(3));
    pause.store(1, Ordering::SeqCst);
    wait_until("the viewer to pause", Duration::from_secs(15), || {
        pause.load(Ordering::SeqCst) == 2
    });
    let before = {
        let seen = seen.lock().expect("seen");
        let last = seen
            .playlists
            .iter()
            .rev()
            .find(|(status, _)| *status == 200)
            .map(|(_, text)| text.clone())
            .expect("a playlist before the failover");
        common::last_msn(&last)
    };
    drop(a); // SIGKILL: no release, no goodbye.
    publisher.kill();
    pause.store(0, Ordering::SeqCst);
    let _publisher = move_publisher(&redis, &b, 60);
    // The viewer goes on across the seam until B has published a few segments.
    wait_until(
        "C's viewer to play B's segments",
        Duration::from_secs(30),
        || {
            let seen = seen.lock().expect("seen");
            seen.playlists.last().is_some_and(|(status, text)| {
                *status == 200
                    && text.contains("#EXT-X-DISCONTINUITY\n")
                    && common::last_msn(text) >= before + 3
            })
        },
    );
    stop.store(true, Ordering::SeqCst);
    viewer.join().expect("viewer");
    blocker.join().expect("blocker");

    let seen = seen.lock().expect("seen");
    let statuses = |list: &[(u16, String)]| list.iter().map(|(s, _)| *s).collect::<Vec<_>>();
    assert!(
        seen.playlists.iter().all(|(status, _)| *status == 200),
        "every reload of the same playlist URL answered 200 across the failover: {:?}",
        statuses(&seen.playlists)
    );
    let not_found: Vec<_> = seen.objects.iter().filter(|(_, s)| *s != 200).collect();
    assert!(
        not_found.is_empty(),
        "every URL a playlist listed answered 200: {not_found:?} of {}",
        seen.objects.len()
    );
    assert!(
        seen.blocking
            .iter()
            .all(|(status, _)| *status == 200 || *status == 503),
        "blocking reloads answered or asked to retry, never 404: {:?}",
        statuses(&seen.blocking)
    );
    assert!(
        seen.blocking
            .iter()
            .any(|(status, text)| *status == 200 && common::last_msn(text) > before + 1),
        "blocking reloads went on after the seam"
    );
    // The media sequence never went back, and went on past A's last segment.
    let texts: Vec<&String> = seen.playlists.iter().map(|(_, text)| text).collect();
    let sequences: Vec<u64> = texts.iter().map(|t| media_sequence(t)).collect();
    assert!(
        sequences.windows(2).all(|w| w[0] <= w[1]),
        "media sequence never decreases: {sequences:?}"
    );
    let last = texts.last().expect("a playlist");
    assert!(common::last_msn(last) > before, "{last}");
    // The seam: the first segment B published starts a discontinuity, with its own init.
    let lines: Vec<&str> = last.lines().collect();
    let seam = lines
        .iter()
        .position(|l| *l == "#EXT-X-DISCONTINUITY")
        .unwrap_or_else(|| panic!("EXT-X-DISCONTINUITY in\n{last}"));
    assert!(
        lines[seam..]
            .iter()
            .take(3)
            .any(|l| l.starts_with("#EXT-X-MAP:URI=\"init") && !l.contains("\"init.mp4\"")),
        "a new init version after the seam:\n{last}"
    );
    let after_seam = lines[seam..]
        .iter()
        .find(|l| l.ends_with(".m4s") && !l.starts_with('#'))
        .and_then(|l| {
            l.trim_start_matches("seg")
                .trim_end_matches(".m4s")
                .parse::<u64>()
                .ok()
        })
        .expect("a segment after the seam");
    assert!(
        after_seam > before,
        "B numbers on: {after_seam} after {before}"
    );
    // Still the same URLs: C's multivariant names the same session, now B's.
    assert_eq!(media_url(&c, "demo", "source"), playlist);
    let (_, headers, _) = get(&b.url("/hls/demo/index.m3u8"));
    assert!(!headers.contains_key("x-cuecast-edge"), "B owns it now");
    assert!(
        b.log()
            .contains("continuing the session of a node that died"),
        "B continued A's session"
    );
}

/// Issue #30 in a browser: hls.js (tests/browser/play.mjs, headless Chromium, low-latency mode)
/// plays from C a stream published on A; A is killed with SIGKILL, its lease expires and the
/// publisher moves to B. The player rides the failover without a fatal error, and its playback
/// time keeps advancing after the seam (from B's media, through C).
#[test]
fn hls_js_on_a_non_owner_plays_on_across_the_owners_death() {
    let dir = common::browser::scripts();
    let redis = Redis::start();
    let (a, b, c, mut publisher, _) = three_nodes(&redis);
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cluster_failover_browser");
    std::fs::create_dir_all(&out).expect("create output dir");
    let started = out.join("started");
    let _ = std::fs::remove_file(&started);
    let seconds = 35;
    let player = Command::new("node")
        .arg(dir.join("play.mjs"))
        .args(["--url", &c.url("/hls/demo/index.m3u8")])
        .args(["--seconds", &seconds.to_string(), "--start-timeout", "20"])
        .arg("--json")
        .arg(out.join("play.json"))
        .arg("--log")
        .arg(out.join("hls.log"))
        .arg("--started-file")
        .arg(&started)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run node");
    wait_until("hls.js to start playing", Duration::from_secs(40), || {
        started.exists()
    });
    let playing_since = Instant::now();
    std::thread::sleep(Duration::from_secs(4));
    let killed_at = playing_since.elapsed().as_secs_f64();
    drop(a); // SIGKILL
    publisher.kill();
    let _publisher = move_publisher(&redis, &b, 60);
    let output = player.wait_with_output().expect("play.mjs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "play.mjs failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("play.mjs JSON");
    let mut brief = report.clone();
    if let Some(map) = brief.as_object_mut() {
        map.remove("samples");
    }
    assert_eq!(report["started"], true, "{brief}");
    assert!(report["fatal_error"] != true, "{brief}");
    let fatal = report["errors"]
        .as_array()
        .is_some_and(|errors| errors.iter().any(|e| e["fatal"] == true));
    assert!(!fatal, "{brief}");
    assert_eq!(report["low_latency_mode"], true, "{brief}");
    // Playback time (currentTime) at the kill and at the end, from the 500 ms samples.
    let samples: Vec<(f64, f64)> = report["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .filter_map(|s| Some((s["t_s"].as_f64()?, s["ct"].as_f64()?)))
        .collect();
    let at = |t: f64| {
        samples
            .iter()
            .rev()
            .find(|(t_s, _)| *t_s <= t)
            .map_or(0.0, |(_, ct)| *ct)
    };
    let (end_t, end_ct) = *samples.last().expect("a sample");
    let at_kill = at(killed_at);
    assert!(
        end_ct - at_kill >= 8.0,
        "playback went on after the seam: {at_kill:.1} s at the kill ({killed_at:.1} s in), {end_ct:.1} s at the end ({end_t:.1} s in)\n{brief}"
    );
    let five_before_end = at(end_t - 5.0);
    assert!(
        end_ct - five_before_end >= 3.0,
        "still playing at the end: {five_before_end:.1} → {end_ct:.1} s over the last 5 s\n{brief}"
    );
    assert!(
        b.log()
            .contains("continuing the session of a node that died"),
        "B continued A's session"
    );
}

/// The VOD source playlist of recording `id` on `server`, finished (EXT-X-ENDLIST), and the
/// status of its first and last segments.
fn finished_replay(server: &Server, id: &str) -> (String, u16, u16) {
    let base = server.url(&format!("/vod/{id}"));
    let (status, _, body) = get(&format!("{base}/index.m3u8"));
    assert_eq!(status, 200, "{id} on {}", server.url(""));
    assert!(String::from_utf8_lossy(&body).contains("source/playlist.m3u8"));
    let playlist = common::text(&format!("{base}/source/playlist.m3u8"));
    assert!(playlist.ends_with("#EXT-X-ENDLIST\n"), "{playlist}");
    let segments: Vec<&str> = playlist
        .lines()
        .filter(|l| l.ends_with(".m4s") && !l.starts_with('#'))
        .collect();
    let fetch = |uri: Option<&&str>| {
        let uri = uri.unwrap_or_else(|| panic!("no segment in\n{playlist}"));
        get(&format!("{base}/source/{uri}")).0
    };
    let (first, last) = (fetch(segments.first()), fetch(segments.last()));
    (playlist.clone(), first, last)
}

/// Issue #30 (docs/scaling.md "When the owner dies", docs/recordings.md "Failover"): a show's
/// stream published on A, A killed with SIGKILL, the publisher moved to B, which continues
/// the session — on a shared PostgreSQL store. B records its part as a recording of its own
/// (new id, same show, stream and session, its files on B); A's row keeps what A wrote and
/// is closed as cut short by B; `/api/recordings?show=` lists both, B's first (newest); the
/// ended show's replay is B's part, which plays; A, restarted, finishes its part from its
/// manifest (cut short, still its own row) and plays it.
#[test]
fn a_failed_over_show_is_recorded_in_two_parts_one_per_node_neither_overwritten() {
    let pg = Postgres::start();
    let store = pg.create_database("failover_recordings");
    let redis = Redis::start();
    let extra = [
        ("CUECAST_STORE_URL", store.as_str()),
        ("CUECAST_INGEST_RECONNECT_GRACE_S", "8"),
    ];
    let a_env = node_vars(&redis, 2_000, &extra);
    let a = Server::start_with(&as_env(&a_env));
    let b = node_env(&redis, 2_000, &extra);
    account(&a, "hana", &["host"]);
    let new_show = serde_json::json!({
        "title": "Scarves", "stream": "demo", "host": "hana",
        "scheduled_start": chrono::Utc::now().to_rfc3339(),
    })
    .to_string();
    let (status, _, show) = call("POST", &a.url("/api/shows"), Some(TOKEN), Some(&new_show));
    assert_eq!(status, 201, "{show}");
    let show = show["id"].as_str().expect("show id").to_string();

    let mut publisher = Publisher::ffmpeg(&a.rtmp_url("demo-key"), 120);
    let on_a = wait_recordings(
        &a,
        &format!("show={show}"),
        Duration::from_secs(40),
        |items| items.len() == 1 && items[0]["duration_s"].as_f64().unwrap_or(0.0) > 0.0,
    );
    let a_id = on_a[0]["id"].as_str().expect("id").to_string();
    let killed = Command::new("kill")
        .args(["-KILL", &a.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success(), "SIGKILL node A");
    publisher.kill();
    // What A left in the shared index, read on B while A is dead.
    let (status, _, left) = call(
        "GET",
        &b.url(&format!("/api/recordings/{a_id}")),
        None,
        None,
    );
    assert_eq!(status, 200, "{left}");
    assert_eq!(left["state"], "recording", "{left}");

    let mut publisher = move_publisher(&redis, &b, 14);
    wait_log(
        &b,
        "continuing the session of a node that died",
        Duration::from_secs(10),
    );
    let both = wait_recordings(
        &b,
        &format!("show={show}"),
        Duration::from_secs(40),
        |items| items.len() == 2 && items[1]["state"] == "cut_short",
    );
    let b_id = both[0]["id"].as_str().expect("id").to_string();
    assert_ne!(b_id, a_id, "B's part is a recording of its own");
    assert_eq!(
        both[1]["id"],
        a_id.as_str(),
        "newest first: B's part, then A's"
    );
    assert!(b_id.starts_with(&format!("{a_id}-")), "{b_id}");
    for key in ["stream", "session", "show"] {
        assert_eq!(both[0][key], both[1][key], "the same {key}");
    }
    assert_eq!(both[0]["state"], "recording");
    // A's row: what A wrote, closed as cut short at its recorded end.
    let closed = &both[1];
    for key in [
        "started_at",
        "duration_s",
        "renditions",
        "bytes",
        "playlist",
    ] {
        assert_eq!(closed[key], left[key], "A's {key} kept");
    }
    assert!(closed["ended_at"].is_string(), "{closed}");
    assert!(
        b.log()
            .contains("recording of the session's previous owner closed as cut short"),
        "B closed A's part"
    );

    // B's publisher ends: B's part is complete, the show ends, its replay is B's part.
    publisher.wait(Duration::from_secs(40));
    let ended = wait_recordings(
        &b,
        &format!("show={show}"),
        Duration::from_secs(40),
        |items| items.len() == 2 && items[0]["state"] == "complete",
    );
    assert_eq!(ended[0]["id"], b_id.as_str());
    let ended_show = wait_show_state(&b, &show, "ended", Duration::from_secs(30));
    assert_eq!(
        ended_show["replay"]["recording"],
        b_id.as_str(),
        "{ended_show}"
    );
    let (b_playlist, first, last) = finished_replay(&b, &b_id);
    assert_eq!(
        (first, last),
        (200, 200),
        "B's part plays on B:\n{b_playlist}"
    );
    assert!(
        !b_playlist.contains("#EXT-X-DISCONTINUITY\n"),
        "B's part starts at the seam, no discontinuity in it:\n{b_playlist}"
    );

    // A comes back: its crash recovery finishes its part from its own manifest, as its own
    // row; B's part untouched.
    let a = a.kill_and_restart(&as_env(&a_env));
    let after = wait_recordings(
        &a,
        &format!("show={show}"),
        Duration::from_secs(20),
        |items| items.len() == 2,
    );
    assert_eq!(after[0], ended[0], "B's part untouched by A's restart");
    assert_eq!(after[1]["id"], a_id.as_str());
    assert_eq!(after[1]["state"], "cut_short");
    assert!(
        after[1]["duration_s"].as_f64() >= left["duration_s"].as_f64(),
        "{} then {}",
        left,
        after[1]
    );
    let (a_playlist, first, last) = finished_replay(&a, &a_id);
    assert_eq!(
        (first, last),
        (200, 200),
        "A's part plays on A:\n{a_playlist}"
    );
}
