//! `[store] url = "postgres://…"`: the real `cuecast` binary on a private PostgreSQL server
//! (tests/common/services.rs). The flows of the embedded store (accounts, host keys, catalog,
//! shows and their rundown, shopper events and recommendations, chat history, recordings) run on
//! it and survive a restart; two servers on one database see each other's writes within a
//! bound; an unreachable database stops a node at start, naming the URL without its password.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::services::{Postgres, free_port};
use common::{Publisher, Server, account, call};
use cuecast::chat::proto::{self, ClientMsg, ServerMsg};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

const ADMIN: &str = "dev-admin-token";

/// How long another node may take to show a write (the change notification's round trip,
/// plus the events tail's interval, with margin for a shared 2-core machine).
const CROSS_NODE_BOUND: Duration = Duration::from_secs(5);

fn on(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CUECAST_STORE_URL", url.to_string()),
        // The WebSocket fallback is enough for chat here.
        ("CUECAST_CHAT_LISTEN", "127.0.0.1:0".to_string()),
    ]
}

fn env<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// One value of `sql` run on the database at `url`, as psql prints it.
fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .arg(url)
        .args(["-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn get(server: &Server, path: &str, token: Option<&str>) -> (u16, Value) {
    let (status, _, body) = call("GET", &server.url(path), token, None);
    (status, body)
}

/// Polls `path` on `server` until `accept` holds; how long it took (panics after `timeout`).
fn poll(
    server: &Server,
    path: &str,
    token: Option<&str>,
    timeout: Duration,
    accept: impl Fn(u16, &Value) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let (status, body) = get(server, path, token);
        if accept(status, &body) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < timeout,
            "{path} not as expected within {timeout:?}: {status} {body}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ids(body: &Value, list: &str, key: &str) -> Vec<String> {
    body[list]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item[key].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn product(id: &str, title: &str, category: &str) -> Value {
    json!({"id": id, "title": title, "brand": "Maison", "category": category,
           "price": "19.00", "currency": "USD"})
}

fn upsert(server: &Server, products: Value) {
    let body = products.to_string();
    let url = server.url("/api/catalog/products");
    let (status, _, answer) = call("POST", &url, Some(ADMIN), Some(&body));
    assert_eq!(status, 200, "{answer}");
}

fn post_events(server: &Server, events: Value) {
    let body = json!({ "events": events }).to_string();
    let (status, _, answer) = call("POST", &server.url("/api/events"), None, Some(&body));
    assert_eq!(status, 202, "{answer}");
}

fn create_show(server: &Server, token: &str, title: &str, products: &[&str]) -> String {
    let body = json!({
        "title": title, "stream": "demo", "tags": ["beauty"], "products": products,
        "scheduled_start": (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339(),
    })
    .to_string();
    let (status, _, show) = call("POST", &server.url("/api/shows"), Some(token), Some(&body));
    assert_eq!(status, 201, "{show}");
    show["id"].as_str().expect("id").to_string()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_next(ws: &mut Ws) -> ServerMsg {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("timed out waiting for a WebSocket message")
            .expect("WebSocket ended")
            .expect("WebSocket read");
        if let WsMessage::Text(text) = message {
            return serde_json::from_str(&text).expect("one protocol message");
        }
    }
}

/// Joins chat `room` over the WebSocket fallback: the socket and the history it backfills.
async fn chat_join(server: &Server, room: &str, token: &str) -> (Ws, Vec<String>) {
    let url = server
        .url(&format!("/api/chat/{room}/ws"))
        .replace("http://", "ws://");
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket upgrade");
    let hello = ClientMsg::Hello {
        version: proto::VERSION,
        room: room.into(),
        token: Some(token.into()),
        backfill: None,
    };
    let text = serde_json::to_string(&hello).expect("JSON");
    ws.send(WsMessage::text(text)).await.expect("send");
    let mut backfill = Vec::new();
    loop {
        match ws_next(&mut ws).await {
            ServerMsg::Message {
                message,
                history: true,
            } => backfill.push(message.text),
            ServerMsg::Live {} => return (ws, backfill),
            _ => {}
        }
    }
}

/// Posts `text` and waits for its ack.
async fn chat_post(ws: &mut Ws, text: &str) {
    let post = ClientMsg::Post {
        text: text.into(),
        link: None,
        product: None,
        nonce: Some("n1".into()),
    };
    let json = serde_json::to_string(&post).expect("JSON");
    ws.send(WsMessage::text(json)).await.expect("send");
    loop {
        match ws_next(ws).await {
            ServerMsg::Ack { nonce: Some(n), .. } if n == "n1" => return,
            ServerMsg::Rejected { nonce: Some(n), .. } if n == "n1" => panic!("rejected"),
            _ => {}
        }
    }
}

#[test]
fn every_flow_runs_on_postgresql_and_survives_a_restart() {
    let pg = Postgres::start();
    let url = pg.create_database("flows");
    let vars = on(&url);
    let server = Server::start_with(&env(&vars));

    // Accounts: sign-up, capabilities, login.
    let host = account(&server, "hana", &["send", "host"]);
    // Host keys.
    let (status, _, key) = call(
        "POST",
        &server.url("/api/keys"),
        Some(&host),
        Some(r#"{"name": "studio"}"#),
    );
    assert_eq!(status, 201, "{key}");
    let key_id = key["id"].as_str().expect("id").to_string();
    // Catalog upsert and search.
    upsert(
        &server,
        json!([
            product("sku-1", "Rose perfume 50 ml", "beauty > fragrance"),
            product("sku-2", "Oud candle", "home"),
        ]),
    );
    let (_, found) = get(&server, "/api/catalog/products?q=perfme", None);
    assert_eq!(ids(&found, "products", "id"), ["sku-1"], "{found}");
    // Shows: create, edit, list.
    let show = create_show(&server, &host, "Spring", &["sku-1", "sku-2"]);
    let patch = r#"{"title": "Spring fragrances"}"#;
    let (status, _, _) = call(
        "PATCH",
        &server.url(&format!("/api/shows/{show}")),
        Some(&host),
        Some(patch),
    );
    assert_eq!(status, 200);
    // A rundown (cues waiting for the media timeline).
    let rundown = r#"{"cues": [{"offset_s": 600, "kind": "pin", "data": {"text": "later"}}]}"#;
    let rundown_url = server.url("/api/streams/second/rundown");
    let (status, _, items) = call("PUT", &rundown_url, Some(ADMIN), Some(rundown));
    assert_eq!(status, 200, "{items}");
    // Shopper events: analytics and trending.
    post_events(
        &server,
        json!([
            {"type": "view_show", "visitor": "v1", "show": show},
            {"type": "click", "visitor": "v1", "show": show, "product": "sku-1"},
            {"type": "add_to_cart", "visitor": "v1", "show": show, "product": "sku-1",
             "quantity": 2, "price": "19.00"},
        ]),
    );
    poll(
        &server,
        "/api/recommendations/trending",
        None,
        CROSS_NODE_BOUND,
        |_, body| ids(body, "items", "product_id").contains(&"sku-1".to_string()),
    );
    let analytics_path = format!("/api/shows/{show}/analytics");
    let (status, analytics) = get(&server, &analytics_path, Some(ADMIN));
    assert_eq!(status, 200, "{analytics}");
    // Chat history.
    runtime().block_on(async {
        let (mut ws, _) = chat_join(&server, "demo", &host).await;
        chat_post(&mut ws, "hello from postgres").await;
    });
    // A recording of a short publish.
    let mut publisher = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 4);
    assert!(
        publisher.wait(Duration::from_secs(60)).is_some(),
        "ffmpeg did not finish"
    );
    poll(
        &server,
        "/api/recordings?stream=demo",
        None,
        Duration::from_secs(30),
        |_, body| body["items"][0]["state"] == "complete",
    );

    // Everything is in PostgreSQL, not in a SQLite file.
    for (table, at_least) in [
        ("users", 1),
        ("stream_keys", 1),
        ("catalog_products", 2),
        ("shows", 1),
        ("show_products", 2),
        ("cues", 1),
        ("events", 3),
        ("chat_messages", 1),
        ("recordings", 1),
    ] {
        let count: i64 = psql(&url, &format!("SELECT COUNT(*) FROM {table}"))
            .parse()
            .expect("count");
        assert!(count >= at_least, "{table}: {count} rows");
    }
    assert_eq!(psql(&url, "SELECT MAX(version) FROM schema_version"), "9");

    // A restart: everything is still there, and tokens issued before still work.
    let server = server.restart(&env(&vars));
    let (status, keys) = get(&server, "/api/keys", Some(&host));
    assert_eq!(status, 200, "{keys}");
    assert_eq!(ids(&keys, "items", "id"), [key_id.as_str()], "{keys}");
    let creds = r#"{"username": "hana", "password": "correct horse battery"}"#;
    assert_eq!(
        call("POST", &server.url("/api/login"), None, Some(creds)).0,
        200
    );
    let (_, found) = get(&server, "/api/catalog/products?q=oud", None);
    assert_eq!(ids(&found, "products", "id"), ["sku-2"], "{found}");
    let (status, got) = get(&server, &format!("/api/shows/{show}"), None);
    assert_eq!(status, 200);
    assert_eq!(got["title"], "Spring fragrances");
    assert_eq!(got["products"], json!(["sku-1", "sku-2"]));
    let rundown_url = server.url("/api/streams/second/rundown");
    let (_, _, items) = call("GET", &rundown_url, Some(ADMIN), None);
    assert_eq!(items["items"].as_array().map(Vec::len), Some(1), "{items}");
    assert_eq!(get(&server, &analytics_path, Some(ADMIN)).1, analytics);
    let (_, trending) = get(&server, "/api/recommendations/trending", None);
    assert!(
        ids(&trending, "items", "product_id").contains(&"sku-1".to_string()),
        "the models rebuild from PostgreSQL: {trending}"
    );
    let (_, recordings) = get(&server, "/api/recordings?stream=demo", None);
    assert_eq!(recordings["items"][0]["state"], "complete", "{recordings}");
    runtime().block_on(async {
        let (_, backfill) = chat_join(&server, "demo", &host).await;
        assert_eq!(backfill, ["hello from postgres"]);
    });
}

#[test]
fn two_servers_on_one_database_see_each_others_writes() {
    let pg = Postgres::start();
    let url = pg.create_database("shared");
    let vars = on(&url);
    let a = Server::start_with(&env(&vars));
    let b = Server::start_with(&env(&vars));

    // A token issued by one node works on the other (one signing secret in the database).
    let host = account(&a, "hana", &["send", "host"]);
    assert_eq!(get(&b, "/api/keys", Some(&host)).0, 200);

    // A product upserted on A is searchable on B.
    upsert(
        &a,
        json!([product("sku-v", "Velvet lipstick", "beauty > lips")]),
    );
    let took = poll(
        &b,
        "/api/catalog/products?q=velvet",
        None,
        CROSS_NODE_BOUND,
        |_, body| ids(body, "products", "id") == ["sku-v"],
    );
    eprintln!("B searched A's product after {took:?}");

    // A show created and edited on A is on B.
    let show = create_show(&a, &host, "Lips", &["sku-v"]);
    let path = format!("/api/shows/{show}");
    poll(&b, &path, None, CROSS_NODE_BOUND, |status, _| status == 200);
    let (status, _, _) = call(
        "PATCH",
        &a.url(&path),
        Some(&host),
        Some(r#"{"title": "Lips, live"}"#),
    );
    assert_eq!(status, 200);
    let took = poll(&b, &path, None, CROSS_NODE_BOUND, |_, body| {
        body["title"] == "Lips, live"
    });
    eprintln!("B saw A's show edit after {took:?}");

    // Events posted on A move trending on B.
    let (_, before) = get(&b, "/api/recommendations/trending", None);
    assert!(
        !ids(&before, "items", "product_id").contains(&"sku-v".to_string()),
        "{before}"
    );
    post_events(
        &a,
        json!([
            {"type": "click", "visitor": "v1", "show": show, "product": "sku-v"},
            {"type": "add_to_cart", "visitor": "v2", "show": show, "product": "sku-v"},
        ]),
    );
    let took = poll(
        &b,
        "/api/recommendations/trending",
        None,
        CROSS_NODE_BOUND,
        |_, body| ids(body, "items", "product_id").contains(&"sku-v".to_string()),
    );
    eprintln!("B's trending moved after {took:?}");

    // A key created on A publishes on B.
    let (status, _, key) = call(
        "POST",
        &a.url("/api/keys"),
        Some(&host),
        Some(r#"{"name": "phone"}"#),
    );
    assert_eq!(status, 201, "{key}");
    let secret = key["key"].as_str().expect("key").to_string();
    let stream = key["stream"].as_str().expect("stream").to_string();
    std::thread::sleep(CROSS_NODE_BOUND);
    let mut publisher = Publisher::ffmpeg(&b.rtmp_url(&secret), 6);
    poll(
        &b,
        &format!("/hls/{stream}/index.m3u8"),
        None,
        Duration::from_secs(30),
        |status, _| status == 200,
    );
    publisher.kill();

    // A product deleted on B leaves A's search.
    let (status, _, _) = call(
        "DELETE",
        &b.url("/api/catalog/products/sku-v"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 204);
    poll(
        &a,
        "/api/catalog/products?q=velvet",
        None,
        CROSS_NODE_BOUND,
        |_, body| ids(body, "products", "id").is_empty(),
    );
}

/// Runs `cuecast serve` against `store_url` until it exits (or 60 s): status and stderr.
fn serve_until_exit(store_url: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cuecast"))
        .arg("serve")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CUECAST_STORE_URL", store_url)
        .env("CUECAST_RTMP_LISTEN", "127.0.0.1:0")
        .env("CUECAST_RTMPS_LISTEN", "127.0.0.1:0")
        .env("CUECAST_HTTP_LISTEN", "127.0.0.1:0")
        .env("CUECAST_SRT_LISTEN", "127.0.0.1:0")
        .env("CUECAST_CHAT_LISTEN", "127.0.0.1:0")
        .env("CUECAST_SERVER_DATA_DIR", dir.path().join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cuecast");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            let out = child.wait_with_output().expect("output");
            return (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("cuecast kept running without its database");
}

#[test]
fn an_unreachable_database_stops_the_node_naming_the_url_without_its_password() {
    let port = free_port();
    let url = format!("postgres://cuecast:hunter2@127.0.0.1:{port}/cuecast");
    let (code, stderr) = serve_until_exit(&url);
    assert!(matches!(code, Some(c) if c != 0), "{code:?}: {stderr}");
    assert!(
        stderr.contains(&format!("postgres://cuecast:***@127.0.0.1:{port}/cuecast")),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    // The driver's reason, not only a timeout.
    assert!(stderr.contains("Connection refused"), "{stderr}");
}

#[test]
fn check_config_rejects_a_bad_store_url_naming_the_key() {
    for bad in ["mysql://db.example/cuecast", "postgres://", "not a url"] {
        let output = Command::new(env!("CARGO_BIN_EXE_cuecast"))
            .arg("check-config")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("CUECAST_STORE_URL", bad)
            .output()
            .expect("cuecast runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("store.url"), "{bad}: {stderr}");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_cuecast"))
        .arg("check-config")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env(
            "CUECAST_STORE_URL",
            "postgres://cuecast:hunter2@db.example:5432/cuecast",
        )
        .output()
        .expect("cuecast runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("store: PostgreSQL postgres://cuecast:***@db.example:5432/cuecast"),
        "{stdout}"
    );
}

#[test]
fn nodes_starting_together_migrate_once() {
    let pg = Postgres::start();
    let url = pg.create_database("together");
    runtime().block_on(async {
        let opens = (0..4).map(|_| cuecast::store::Store::postgres(&url, &url));
        let stores = futures_util::future::join_all(opens).await;
        for store in &stores {
            assert!(store.is_ok(), "{:?}", store.as_ref().err());
        }
    });
    // Each migration applied once, the change triggers installed once.
    assert_eq!(
        psql(
            &url,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_version"
        ),
        "1,2,3,4,5,6,7,8,9"
    );
    assert_eq!(
        psql(
            &url,
            "SELECT COUNT(*) FROM pg_trigger WHERE tgname LIKE '%_changes'"
        ),
        "4"
    );
}
