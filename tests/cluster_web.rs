//! The viewer app across three nodes (issue #30, docs/scaling.md "Stream ownership and
//! playback"): a private PostgreSQL (the shared store) and Redis (leases, chat), and three
//! `cuecast serve` nodes started by `tests/browser/web-cluster-watch.mjs`. ffmpeg publishes to
//! node A; the real watch page (`/shows/{id}`, web/dist) plays on node B; a product cue POSTed to
//! node C shows as the banner on B's page at the cue's frame; "N watching" counts the viewers of
//! every node. Screenshot: tests/artifacts/cluster-viewer-banner.png.
//!
//! And the chat's presence across nodes (docs/chat.md "Chat across nodes"): members of one room
//! on three nodes, over real QUIC chat clients, are counted together on every node, and a node
//! that dies drops out of the count.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::Server;
use common::services::{Postgres, Redis};
use cuecast::chat::client::{self, ChatStream};
use cuecast::chat::proto::ServerMsg;

#[test]
fn the_watch_page_on_a_non_owner_node_shows_a_cue_posted_on_a_third_node_at_its_frame() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let browser = common::browser::scripts_and_pages();
    let pg = Postgres::start();
    let store = pg.create_database("cluster_web");
    let redis = Redis::start();
    let output = Command::new("node")
        .arg(browser.join("web-cluster-watch.mjs"))
        .env("CUECAST_BIN", env!("CARGO_BIN_EXE_cuecast"))
        .env("WEB_CLUSTER_STORE_URL", &store)
        .env("WEB_CLUSTER_REDIS_URL", redis.url())
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("run node (is Node.js installed?): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "web-cluster-watch.mjs failed ({}):\n{stdout}\n{stderr}\n--- PostgreSQL log (tail) ---\n{}",
        output.status,
        tail(&pg.log(), 30)
    );
    assert!(stdout.contains("B: banner at PDT"), "{stdout}");
    println!("{stdout}");
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A chat-only node of a cluster on `redis`.
fn chat_node(redis: &Redis, name: &str) -> Server {
    let node_url = format!("http://{name}.invalid:8080");
    let redis_url = redis.url();
    Server::start_with(&[
        ("CUECAST_CLUSTER_REDIS_URL", redis_url.as_str()),
        ("CUECAST_CLUSTER_NODE_URL", node_url.as_str()),
        ("CUECAST_SRT_ENABLED", "false"),
        ("CUECAST_RTMPS_ENABLED", "false"),
    ])
}

/// An anonymous member of `room` on `server` over QUIC; returns its stream and the presence in
/// its welcome, with the backfill read up to `live`.
async fn member(server: &Server, room: &str) -> (ChatStream, usize) {
    let (trust, port) = client::fetch_pins(&server.url(""))
        .await
        .expect("cert hashes");
    let addr: SocketAddr = format!("127.0.0.1:{}", port.expect("chat port"))
        .parse()
        .expect("address");
    let endpoint = client::endpoint(addr).expect("client endpoint");
    let conn = client::connect(&endpoint, addr, "localhost", &trust)
        .await
        .expect("connect");
    let mut stream = ChatStream::join(conn, room, None, None)
        .await
        .expect("join");
    let mut welcomed = None;
    loop {
        match next(&mut stream).await {
            ServerMsg::Welcome { presence, .. } => welcomed = Some(presence),
            ServerMsg::Live {} => break,
            _ => {}
        }
    }
    (stream, welcomed.expect("a welcome before live"))
}

async fn next(stream: &mut ChatStream) -> ServerMsg {
    tokio::time::timeout(Duration::from_secs(15), stream.next())
        .await
        .expect("timed out waiting for a server message")
        .expect("read")
        .expect("stream ended")
}

/// Reads `stream` until a presence update of `count`; fails after 15 s (listing what came).
async fn presence(stream: &mut ChatStream, count: usize, who: &str) {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let ServerMsg::Presence { count: got } = next(stream).await {
                seen.push(got);
                if got == count {
                    return;
                }
            }
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "{who}: no presence {count} within 15 s; presence updates seen: {seen:?}"
    );
}

#[test]
fn chat_presence_counts_the_members_of_every_node() {
    let redis = Redis::start();
    let a = chat_node(&redis, "a");
    let b = chat_node(&redis, "b");
    let c = chat_node(&redis, "c");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (mut on_a, _) = member(&a, "demo").await;
        let (mut on_b, _) = member(&b, "demo").await;
        let (mut on_c, _) = member(&c, "demo").await;
        // One member on each node: each node says 3, not its own 1.
        presence(&mut on_a, 3, "A").await;
        presence(&mut on_b, 3, "B").await;
        presence(&mut on_c, 3, "C").await;

        // A member joining on B is welcomed with the room's count across nodes.
        let (mut second_on_b, welcomed) = member(&b, "demo").await;
        assert_eq!(
            welcomed, 4,
            "welcome presence on B with 2 here and 2 elsewhere"
        );
        presence(&mut on_a, 4, "A after a second member on B").await;

        // C's member leaves: the others' counts drop.
        on_c.conn.close(0u32.into(), b"bye");
        drop(on_c);
        presence(&mut on_a, 3, "A after C's member left").await;
        presence(&mut second_on_b, 3, "B after C's member left").await;
        let count = redis_presence_fields(&redis);
        assert_eq!(
            count, 2,
            "C's count is gone from the room's hash (A and B remain)"
        );

        // A node that dies with members drops out of the count once its report expires.
        let (_again_on_c, _) = member(&c, "demo").await;
        presence(&mut on_a, 4, "A with a member on C again").await;
        let killed = Command::new("kill")
            .args(["-KILL", &c.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success(), "SIGKILL node C");
        presence(&mut on_a, 3, "A after node C died").await;
        presence(&mut second_on_b, 3, "B after node C died").await;
    });
}

/// How many nodes have a count in room `demo`'s presence hash.
fn redis_presence_fields(redis: &Redis) -> usize {
    let output = Command::new("redis-cli")
        .args(["-p", &redis.port().to_string()])
        .args(["HLEN", "cuecast:chat:demo:presence"])
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("HLEN is a number")
}
