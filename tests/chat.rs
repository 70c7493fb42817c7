//! End-to-end chat tests against the real `cuecast` binary: native QUIC clients (quinn), a
//! WebTransport client (wtransport, an independent HTTP/3 implementation), WebSocket clients of
//! the HTTP port's fallback (tokio-tungstenite), the show's chat export, accounts over HTTP,
//! moderation, limits, the review hook, persistence across a restart, and the CLI.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use common::Server;
use common::chat::{ChatNode, WAIT, next, post, runtime, wait_for};
use cuecast::chat::client::{self, ChatStream, Trust};
use cuecast::chat::proto::{
    self, ClientMsg, CloseCode, Link, MessageKind, ProductCard, RejectCode, ServerMsg,
};
use cuecast::commerce::Cta;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Chat on an ephemeral UDP port plus `extra` overrides.
fn start(extra: &[(&str, &str)]) -> Server {
    let mut env = vec![("CUECAST_CHAT_LISTEN", "127.0.0.1:0")];
    env.extend_from_slice(extra);
    Server::start_with(&env)
}

/// The chat endpoint of a running server.
struct Chat {
    /// The chat endpoint (tests/common/chat.rs).
    node: ChatNode,
    /// The development certificate's pins the server published.
    pins: Vec<[u8; 32]>,
}

impl std::ops::Deref for Chat {
    type Target = ChatNode;

    fn deref(&self) -> &ChatNode {
        &self.node
    }
}

impl Chat {
    async fn of(server: &Server) -> Chat {
        let node = ChatNode::of(server).await;
        let pins = match &node.trust {
            Trust::Pinned(pins) => pins.clone(),
            Trust::Ca(_) => unreachable!(),
        };
        Chat { node, pins }
    }

    /// Joins `room` and reads up to `live`; returns the stream, the welcome and the backfill.
    async fn join(
        &self,
        room: &str,
        token: Option<&str>,
    ) -> (ChatStream, ServerMsg, Vec<proto::ChatMessage>) {
        self.node.join_checked(room, token).await
    }

    async fn post(
        &self,
        path: &str,
        body: serde_json::Value,
        admin: bool,
    ) -> (u16, serde_json::Value) {
        let mut request = reqwest::Client::new()
            .post(format!("{}{path}", self.http))
            .json(&body);
        if admin {
            request = request.bearer_auth("dev-admin-token");
        }
        let response = request.send().await.expect("POST");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    /// POSTs `user`'s credentials to `path` (sign-up or login), expects `status`, returns the
    /// token.
    async fn token(&self, path: &str, user: &str, status: u16) -> String {
        let (got, body) = self
            .post(
                path,
                serde_json::json!({"username": user, "password": "password-123"}),
                false,
            )
            .await;
        assert_eq!(got, status, "{path}: {body}");
        body["token"].as_str().expect("token").to_string()
    }

    async fn signup(&self, user: &str) -> String {
        self.token("/api/signup", user, 201).await
    }

    /// Signs up `user`, grants `caps` as admin, logs in again for a token carrying them.
    async fn staff(&self, user: &str, caps: &[&str]) -> String {
        self.signup(user).await;
        let response = reqwest::Client::new()
            .put(format!("{}/api/users/{user}/capabilities", self.http))
            .bearer_auth("dev-admin-token")
            .json(&serde_json::json!({ "capabilities": caps }))
            .send()
            .await
            .expect("PUT");
        assert_eq!(response.status().as_u16(), 200);
        self.token("/api/login", user, 200).await
    }
}

fn message_text(text: &str) -> impl FnMut(&ServerMsg) -> Option<proto::ChatMessage> + '_ {
    move |msg| match msg {
        ServerMsg::Message { message, .. } if message.text.contains(text) => Some(message.clone()),
        _ => None,
    }
}

/// The ack or rejection of `nonce`.
async fn answer(stream: &mut ChatStream, nonce: &str) -> Result<(i64, bool), RejectCode> {
    wait_for(stream, |msg| match msg {
        ServerMsg::Ack {
            nonce: Some(n),
            id,
            stripped,
        } if n == nonce => Some(Ok((*id, *stripped))),
        ServerMsg::Rejected {
            nonce: Some(n),
            code,
            ..
        } if n == nonce => Some(Err(*code)),
        _ => None,
    })
    .await
}

/// Waits until the server closes `conn`; its application close code.
async fn closed_with(conn: &quinn::Connection) -> Option<u64> {
    tokio::time::timeout(WAIT, conn.closed())
        .await
        .expect("connection not closed");
    client::close_code(conn)
}

/// Joins `room` on a fresh connection and asserts the server closes it with `code`.
async fn join_refused(chat: &Chat, room: &str, token: Option<String>, code: CloseCode) {
    let conn = chat.conn().await;
    let _stream = ChatStream::join(conn.clone(), room, token, None)
        .await
        .unwrap();
    assert_eq!(closed_with(&conn).await, Some(code.code() as u64), "{room}");
}

#[test]
fn native_clients_exchange_messages_backfill_presence_and_anonymous_read_only() {
    let server = start(&[]);
    runtime().block_on(async {
        let chat = Chat::of(&server).await;
        let alice_token = chat.signup("alice").await;
        let bob_token = chat.signup("bob").await;
        let (mut alice, welcome, backfill) = chat.join("demo", Some(&alice_token)).await;
        assert!(backfill.is_empty());
        let ServerMsg::Welcome {
            user, capabilities, ..
        } = welcome
        else {
            unreachable!()
        };
        assert_eq!(user.as_deref(), Some("alice"));
        assert_eq!(capabilities, [proto::Capability::Send]);
        let (mut bob, _, _) = chat.join("demo", Some(&bob_token)).await;

        alice.send(&post("hello bob", "a1")).await.unwrap();
        let (id, stripped) = answer(&mut alice, "a1").await.expect("accepted");
        assert!(!stripped);
        let got = wait_for(&mut bob, message_text("hello bob")).await;
        assert_eq!(
            (got.id, got.user.as_str(), got.kind),
            (id, "alice", MessageKind::Chat)
        );
        bob.send(&post("hi alice", "b1")).await.unwrap();
        let got = wait_for(&mut alice, message_text("hi alice")).await;
        assert_eq!(got.user, "bob");

        // A late, anonymous joiner gets the backfill, then presence counts all three.
        let (mut carol, welcome, backfill) = chat.join("demo", None).await;
        let texts: Vec<&str> = backfill.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["hello bob", "hi alice"]);
        let ServerMsg::Welcome { presence, user, .. } = welcome else {
            unreachable!()
        };
        assert_eq!((presence, user), (3, None));
        wait_for(&mut alice, |m| {
            matches!(m, ServerMsg::Presence { count: 3 }).then_some(())
        })
        .await;

        // Anonymous viewers read only.
        carol.send(&post("let me in", "c1")).await.unwrap();
        assert_eq!(
            answer(&mut carol, "c1").await,
            Err(RejectCode::LoginRequired)
        );

        // Another room is separate; unknown rooms are refused with their code.
        let (_, _, backfill) = chat.join("second", None).await;
        assert!(backfill.is_empty());
        join_refused(&chat, "nope", None, CloseCode::UnknownRoom).await;

        // A bad token is refused.
        join_refused(
            &chat,
            "demo",
            Some("v1.forged.token".to_string()),
            CloseCode::Unauthorized,
        )
        .await;

        // Presence goes down when a client leaves.
        drop(carol);
        wait_for(&mut alice, |m| {
            matches!(m, ServerMsg::Presence { count: 2 }).then_some(())
        })
        .await;
    });
}

#[test]
fn a_member_joining_between_two_batches_gets_each_message_once() {
    // A long tick, so a message posted just before the join is still waiting for its batch when
    // the new member arrives; two phases, so members are flushed at different points of it.
    let server = start(&[
        ("CUECAST_CHAT_BATCH_MS", "4000"),
        ("CUECAST_CHAT_BATCH_PHASES", "2"),
    ]);
    runtime().block_on(async {
        let chat = Chat::of(&server).await;
        let token = chat.signup("alice").await;
        let (mut alice, _, _) = chat.join("demo", Some(&token)).await;
        alice.send(&post("before the join", "a1")).await.unwrap();
        answer(&mut alice, "a1").await.expect("accepted");

        // The message is in the joiner's backfill...
        let (mut dave, _, backfill) = chat.join("demo", None).await;
        let texts: Vec<&str> = backfill.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["before the join"]);

        // ...and not delivered to it a second time with the batch it was pending in: the
        // first live message it gets is the next one.
        alice.send(&post("after the join", "a2")).await.unwrap();
        let first_live = wait_for(&mut dave, |m| match m {
            ServerMsg::Message {
                message,
                history: false,
            } => Some(message.text.clone()),
            _ => None,
        })
        .await;
        assert_eq!(first_live, "after the join");
    });
}

#[test]
fn accounts_api_validates_and_admin_grants() {
    let server = start(&[]);
    runtime().block_on(async {
        let chat = Chat::of(&server).await;
        chat.signup("dave").await;
        let creds = serde_json::json!({"username": "dave", "password": "password-123"});
        assert_eq!(chat.post("/api/signup", creds.clone(), false).await.0, 409);
        let short = serde_json::json!({"username": "eve", "password": "short"});
        assert_eq!(chat.post("/api/signup", short, false).await.0, 400);
        let wrong = serde_json::json!({"username": "dave", "password": "password-124"});
        assert_eq!(chat.post("/api/login", wrong, false).await.0, 401);
        let response = reqwest::Client::new()
            .post(format!("{}/api/login", chat.http))
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400);
        // Granting needs the admin token.
        let response = reqwest::Client::new()
            .put(format!("{}/api/users/dave/capabilities", chat.http))
            .json(&serde_json::json!({"capabilities": ["host"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401);
        let response = reqwest::Client::new()
            .put(format!("{}/api/users/dave/capabilities", chat.http))
            .bearer_auth("dev-admin-token")
            .json(&serde_json::json!({"capabilities": ["root"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400);
        let token = chat.staff("frank", &["send", "moderate"]).await;
        let (_, welcome, _) = chat.join("demo", Some(&token)).await;
        let ServerMsg::Welcome { capabilities, .. } = welcome else {
            unreachable!()
        };
        assert_eq!(
            capabilities,
            [proto::Capability::Send, proto::Capability::Moderate]
        );
        // The admin API still works with the admin token.
        let response = reqwest::get(format!("{}/api/streams", chat.http))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401);
        let response = reqwest::Client::new()
            .get(format!("{}/api/streams", chat.http))
            .bearer_auth("dev-admin-token")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
    });
}

#[test]
fn viewer_links_stripped_host_links_and_cards_delivered_and_pinned() {
    let server = start(&[("CUECAST_CHAT_LINK_ALLOWLIST", r#"["shop.example"]"#)]);
    runtime().block_on(async {
        let chat = Chat::of(&server).await;
        let host_token = chat.staff("hannah", &["send", "host"]).await;
        let viewer_token = chat.signup("victor").await;
        let (mut host, _, _) = chat.join("demo", Some(&host_token)).await;
        let (mut viewer, _, _) = chat.join("demo", Some(&viewer_token)).await;

        viewer
            .send(&post(
                "cheaper at https://evil.io/deal and shop.example/mug",
                "v1",
            ))
            .await
            .unwrap();
        let (_, stripped) = answer(&mut viewer, "v1").await.expect("accepted");
        assert!(stripped);
        let got = wait_for(&mut host, message_text("cheaper")).await;
        assert_eq!(got.text, "cheaper at [link removed] and shop.example/mug");

        let link = Link {
            url: "https://evil.io/".into(),
            label: Some("deal".into()),
        };
        viewer
            .send(&ClientMsg::Post {
                text: "x".into(),
                link: Some(link),
                product: None,
                nonce: Some("v2".into()),
            })
            .await
            .unwrap();
        assert_eq!(answer(&mut viewer, "v2").await, Err(RejectCode::Forbidden));
        let long = "x".repeat(501);
        viewer.send(&post(&long, "v3")).await.unwrap();
        assert_eq!(answer(&mut viewer, "v3").await, Err(RejectCode::TooLong));

        host.send(&ClientMsg::Post {
            text: "get it at https://brand.example/mug".into(),
            link: Some(Link {
                url: "https://brand.example/mug?ref=live".into(),
                label: Some("Buy the mug".into()),
            }),
            product: Some(Box::new(ProductCard {
                id: "sku-42".into(),
                title: Some("Mug".into()),
                price: Some("12.50".into()),
                currency: Some("EUR".into()),
                image_url: Some("https://brand.example/mug.jpg".into()),
                cta: Some(Cta {
                    label: "Buy now".into(),
                    url: "https://brand.example/mug".into(),
                }),
            })),
            nonce: Some("h1".into()),
        })
        .await
        .unwrap();
        let (id, _) = answer(&mut host, "h1").await.expect("host post");
        let got = wait_for(&mut viewer, message_text("get it at")).await;
        assert_eq!(got.text, "get it at https://brand.example/mug");
        assert_eq!(got.kind, MessageKind::Product);
        assert_eq!(got.role, proto::Role::Host);
        assert_eq!(
            got.link.as_ref().map(|l| l.url.as_str()),
            Some("https://brand.example/mug?ref=live")
        );
        assert_eq!(got.product.as_ref().map(|p| p.id.as_str()), Some("sku-42"));

        host.send(&ClientMsg::Pin { id }).await.unwrap();
        let pinned = wait_for(&mut viewer, |m| match m {
            ServerMsg::Pinned { message } => Some(message.clone()),
            _ => None,
        })
        .await;
        assert_eq!(pinned.map(|m| m.id), Some(id));
        viewer.send(&ClientMsg::Unpin {}).await.unwrap();
        let code = wait_for(&mut viewer, |m| match m {
            ServerMsg::Rejected { code, .. } => Some(*code),
            _ => None,
        })
        .await;
        assert_eq!(code, RejectCode::Forbidden);
        // A new joiner sees the pin in its welcome.
        let (_, welcome, _) = chat.join("demo", None).await;
        let ServerMsg::Welcome { pinned, .. } = welcome else {
            unreachable!()
        };
        assert_eq!(pinned.map(|m| m.id), Some(id));
    });
}

#[test]
fn delete_propagates_and_ban_disconnects_and_refuses() {
    let server = start(&[]);
    runtime().block_on(async {
        let chat = Chat::of(&server).await;
        let mod_token = chat.staff("mona", &["send", "moderate"]).await;
        let troll_token = chat.signup("troll").await;
        let (mut moderator, _, _) = chat.join("demo", Some(&mod_token)).await;
        let conn = chat.conn().await;
        let mut troll = ChatStream::join(conn.clone(), "demo", Some(troll_token.clone()), None)
            .await
            .unwrap();
        wait_for(&mut troll, |m| {
            matches!(m, ServerMsg::Live {}).then_some(())
        })
        .await;

        troll.send(&post("spam spam", "t1")).await.unwrap();
        let (id, _) = answer(&mut troll, "t1").await.unwrap();
        troll.send(&post("keep me", "t2")).await.unwrap();
        answer(&mut troll, "t2").await.unwrap();
        wait_for(&mut moderator, message_text("keep me")).await;

        // Viewers cannot delete.
        troll.send(&ClientMsg::Delete { id }).await.unwrap();
        let code = wait_for(&mut troll, |m| match m {
            ServerMsg::Rejected { code, .. } => Some(*code),
            _ => None,
        })
        .await;
        assert_eq!(code, RejectCode::Forbidden);

        moderator.send(&ClientMsg::Delete { id }).await.unwrap();
        for stream in [&mut moderator, &mut troll] {
            let deleted = wait_for(stream, |m| match m {
                ServerMsg::Deleted { id } => Some(*id),
                _ => None,
            })
            .await;
            assert_eq!(deleted, id);
        }
        let (_, _, backfill) = chat.join("demo", None).await;
        let texts: Vec<&str> = backfill.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["keep me"]);

        moderator
            .send(&ClientMsg::Ban {
                user: "troll".into(),
            })
            .await
            .unwrap();
        assert_eq!(
            closed_with(&conn).await,
            Some(CloseCode::Banned.code() as u64)
        );
        // Coming back is refused with the same code.
        join_refused(&chat, "demo", Some(troll_token.clone()), CloseCode::Banned).await;
        // Unban, then a timeout also disconnects.
        moderator
            .send(&ClientMsg::Unban {
                user: "troll".into(),
            })
            .await
            .unwrap();
        let conn = wait_until_joined(&chat, &troll_token).await;
        moderator
            .send(&ClientMsg::Timeout {
                user: "troll".into(),
                seconds: 600,
            })
            .await
            .unwrap();
        assert_eq!(
            closed_with(&conn).await,
            Some(CloseCode::Banned.code() as u64)
        );
    });
}

/// Joins (retrying while the unban is applied); returns the connection.
async fn wait_until_joined(chat: &Chat, token: &str) -> quinn::Connection {
    for _ in 0..50 {
        let conn = chat.conn().await;
        let mut stream = ChatStream::join(conn.clone(), "demo", Some(token.into()), None)
            .await
            .unwrap();
        if let Ok(Ok(Some(ServerMsg::Welcome { .. }))) =
            tokio::time::timeout(WAIT, stream.next()).await
        {
            // Keep the stream open: leak it into a task that drains it.
            tokio::spawn(async move { while let Ok(Some(_)) = stream.next().await {} });
            return conn;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("could not rejoin");
}

#[test]
fn rate_limit_and_slow_mode_enforce() {
    let server = start(&[
        ("CUECAST_CHAT_RATE_BURST", "2"),
        ("CUECAST_CHAT_RATE_PER_S", "0.1"),
    ]);
    runtime().block_on(async {
        let chat = Chat::of(&server).await;
        let token = chat.signup("rapid").await;
        let (mut rapid, _, _) = chat.join("demo", Some(&token)).await;
        for nonce in ["r1", "r2"] {
            rapid.send(&post("quick", nonce)).await.unwrap();
            assert!(answer(&mut rapid, nonce).await.is_ok());
        }
        rapid.send(&post("quick", "r3")).await.unwrap();
        assert_eq!(answer(&mut rapid, "r3").await, Err(RejectCode::RateLimited));

        let mod_token = chat.staff("modo", &["send", "moderate"]).await;
        let (mut moderator, _, _) = chat.join("demo", Some(&mod_token)).await;
        moderator
            .send(&ClientMsg::SlowMode { seconds: 60 })
            .await
            .unwrap();
        let seconds = wait_for(&mut rapid, |m| match m {
            ServerMsg::SlowMode { seconds } => Some(*seconds),
            _ => None,
        })
        .await;
        assert_eq!(seconds, 60);
        let token = chat.signup("calm").await;
        let (mut calm, welcome, _) = chat.join("demo", Some(&token)).await;
        let ServerMsg::Welcome { slow_mode_s, .. } = welcome else {
            unreachable!()
        };
        assert_eq!(slow_mode_s, 60);
        calm.send(&post("first", "c1")).await.unwrap();
        assert!(answer(&mut calm, "c1").await.is_ok());
        calm.send(&post("second", "c2")).await.unwrap();
        assert_eq!(answer(&mut calm, "c2").await, Err(RejectCode::SlowMode));
        // Moderators are exempt.
        for nonce in ["m1", "m2", "m3"] {
            moderator.send(&post("staff", nonce)).await.unwrap();
            assert!(answer(&mut moderator, nonce).await.is_ok());
        }
    });
}

/// A tiny HTTP review hook: "deny" in the text → deny, "slow" → answers after 2 s, else allow.
async fn review_hook() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the head and the body (Content-Length).
                loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if request.len() >= head_end + 4 + length {
                            break;
                        }
                    }
                }
                let text = String::from_utf8_lossy(&request).to_string();
                if text.contains("slow") {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                let decision = if text.contains("deny") {
                    "deny"
                } else {
                    "allow"
                };
                let body = format!(r#"{{"decision":"{decision}"}}"#);
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/review")
}

#[test]
fn review_hook_allow_deny_and_timeout_fallback() {
    let rt = runtime();
    let hook = rt.block_on(review_hook());
    for (fallback, slow_expected) in [("deny", Err(RejectCode::Denied)), ("allow", Ok(()))] {
        let server = start(&[
            ("CUECAST_CHAT_REVIEW_URL", hook.as_str()),
            ("CUECAST_CHAT_REVIEW_FALLBACK", fallback),
        ]);
        rt.block_on(async {
            let chat = Chat::of(&server).await;
            let token = chat.signup("reviewed").await;
            let (mut viewer, _, _) = chat.join("demo", Some(&token)).await;
            viewer.send(&post("a fine message", "ok")).await.unwrap();
            assert!(answer(&mut viewer, "ok").await.is_ok());
            viewer.send(&post("please deny this", "no")).await.unwrap();
            assert_eq!(answer(&mut viewer, "no").await, Err(RejectCode::Denied));
            viewer.send(&post("a slow one", "slow")).await.unwrap();
            let started = std::time::Instant::now();
            let got = answer(&mut viewer, "slow").await.map(|_| ());
            assert_eq!(got, slow_expected, "fallback {fallback}");
            // The 200 ms timeout decided, not the hook's answer after 2 s.
            assert!(
                started.elapsed() < Duration::from_millis(1900),
                "{:?}",
                started.elapsed()
            );
            let metrics = reqwest::get(format!("{}/metrics", chat.http))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(
                metrics.contains("cuecast_chat_review_total{outcome=\"fallback\"} 1"),
                "{metrics}"
            );
            assert!(
                metrics.contains("cuecast_chat_review_total{outcome=\"deny\"} 1"),
                "{metrics}"
            );
        });
    }
}

/// Writes raw bytes as the first frames of a new connection; returns the close code.
async fn raw_close_code(chat: &Chat, hello_first: bool, payload: &[u8]) -> Option<u64> {
    let conn = chat.conn().await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    if hello_first {
        let hello = proto::encode(&ClientMsg::Hello {
            version: 1,
            room: "demo".into(),
            token: None,
            backfill: None,
        });
        send.write_all(&hello).await.unwrap();
    }
    let _ = send.write_all(payload).await;
    closed_with(&conn).await
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_u32(body.len() as u32);
    buf.put_slice(body);
    buf.to_vec()
}

#[test]
fn bad_input_closes_with_documented_codes_and_others_are_unaffected() {
    let server = start(&[("CUECAST_CHAT_MAX_FRAME_BYTES", "4096")]);
    runtime().block_on(async {
        let chat = Chat::of(&server).await;
        let token = chat.signup("steady").await;
        let (mut steady, _, _) = chat.join("demo", Some(&token)).await;

        let cases: Vec<(&str, bool, Vec<u8>, CloseCode)> = vec![
            (
                "malformed json",
                true,
                frame(b"{oops"),
                CloseCode::MalformedFrame,
            ),
            (
                "bad field type",
                true,
                frame(br#"{"type":"delete","id":"x"}"#),
                CloseCode::MalformedFrame,
            ),
            (
                "oversized",
                true,
                {
                    let mut b = BytesMut::new();
                    b.put_u32(1 << 20);
                    b.put_slice(&[b'x'; 1024]);
                    b.to_vec()
                },
                CloseCode::FrameTooLarge,
            ),
            (
                "unknown type",
                true,
                frame(br#"{"type":"dance"}"#),
                CloseCode::UnknownMessage,
            ),
            (
                "post before hello",
                false,
                frame(br#"{"type":"post","text":"hi"}"#),
                CloseCode::ProtocolViolation,
            ),
            (
                "second hello",
                true,
                proto::encode(&ClientMsg::Hello {
                    version: 1,
                    room: "demo".into(),
                    token: None,
                    backfill: None,
                })
                .to_vec(),
                CloseCode::ProtocolViolation,
            ),
            (
                "wrong version",
                false,
                proto::encode(&ClientMsg::Hello {
                    version: 9,
                    room: "demo".into(),
                    token: None,
                    backfill: None,
                })
                .to_vec(),
                CloseCode::ProtocolViolation,
            ),
        ];
        for (name, hello_first, payload, code) in cases {
            assert_eq!(
                raw_close_code(&chat, hello_first, &payload).await,
                Some(code.code() as u64),
                "{name}"
            );
        }

        // Streams beyond the first one.
        let conn = chat.conn().await;
        let mut first = ChatStream::join(conn.clone(), "demo", None, None)
            .await
            .unwrap();
        next(&mut first).await;
        let (mut extra, _) = conn.open_bi().await.unwrap();
        extra.write_all(b"\0\0\0\x02{}").await.unwrap();
        assert_eq!(
            closed_with(&conn).await,
            Some(CloseCode::StreamLimit.code() as u64)
        );

        // The steady client noticed nothing.
        steady.send(&post("still here", "s1")).await.unwrap();
        assert!(answer(&mut steady, "s1").await.is_ok());
        wait_for(&mut steady, message_text("still here")).await;

        let metrics = reqwest::get(format!("{}/metrics", chat.http))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for (code, count) in [(1, 2), (2, 1), (3, 1), (4, 3), (5, 1)] {
            assert!(
                metrics.lines().any(|l| l
                    .starts_with(&format!("cuecast_chat_closes_total{{code=\"{code}\""))
                    && l.ends_with(&format!(" {count}"))),
                "code {code}: {metrics}"
            );
        }
    });
}

#[test]
fn per_ip_connection_limit_closes_with_its_code() {
    let server = start(&[("CUECAST_CHAT_MAX_CONNECTIONS_PER_IP", "2")]);
    runtime().block_on(async {
        let chat = Chat::of(&server).await;
        let (_a, _, _) = chat.join("demo", None).await;
        let (_b, _, _) = chat.join("demo", None).await;
        let conn = chat.conn().await;
        assert_eq!(
            closed_with(&conn).await,
            Some(CloseCode::ConnectionLimit.code() as u64)
        );
    });
}

#[test]
fn webtransport_client_shares_a_room_with_a_native_client() {
    let server = start(&[]);
    runtime().block_on(async {
        let chat = Chat::of(&server).await;
        let native_token = chat.signup("nativeuser").await;
        let wt_token = chat.signup("browseruser").await;
        let (mut native, _, _) = chat.join("demo", Some(&native_token)).await;

        let config = wtransport::ClientConfig::builder()
            .with_bind_default()
            .with_server_certificate_hashes(
                chat.pins
                    .iter()
                    .map(|p| wtransport::tls::Sha256Digest::new(*p)),
            )
            .build();
        let endpoint = wtransport::Endpoint::client(config).expect("wt endpoint");
        let url = format!("https://127.0.0.1:{}/chat", chat.addr.port());
        let conn = tokio::time::timeout(WAIT, endpoint.connect(url))
            .await
            .expect("wt connect timeout")
            .expect("wt connect");
        let (mut send, mut recv) = conn.open_bi().await.unwrap().await.unwrap();
        send.write_all(&proto::encode(&ClientMsg::Hello {
            version: 1,
            room: "demo".into(),
            token: Some(wt_token),
            backfill: None,
        }))
        .await
        .unwrap();
        let mut buf = BytesMut::new();
        let mut read = async || -> ServerMsg {
            loop {
                if let Some(msg) = proto::read_server_frame(&mut buf, 1 << 20).unwrap() {
                    return msg;
                }
                let mut chunk = [0u8; 4096];
                let n = tokio::time::timeout(WAIT, recv.read(&mut chunk))
                    .await
                    .expect("wt read timeout")
                    .expect("wt read")
                    .expect("wt stream ended");
                buf.extend_from_slice(&chunk[..n]);
            }
        };
        let welcome = read().await;
        assert!(
            matches!(&welcome, ServerMsg::Welcome { user: Some(u), .. } if u == "browseruser"),
            "{welcome:?}"
        );
        native.send(&post("hello browser", "n1")).await.unwrap();
        loop {
            if let ServerMsg::Message { message, .. } = read().await
                && message.text == "hello browser"
            {
                assert_eq!(message.user, "nativeuser");
                break;
            }
        }
        send.write_all(&proto::encode(&post("hello native", "w1")))
            .await
            .unwrap();
        let got = wait_for(&mut native, message_text("hello native")).await;
        assert_eq!(got.user, "browseruser");

        // Malformed frames close the session (code 0x1 in the WebTransport session close;
        // the client library does not expose it, the server's per-code counter does).
        send.write_all(&frame(b"{oops")).await.unwrap();
        tokio::time::timeout(WAIT, conn.closed())
            .await
            .expect("the session was not closed");
        let metrics = reqwest::get(format!("{}/metrics", chat.http))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("cuecast_chat_closes_total{code=\"1\",reason=\"malformed frame\"} 1"),
            "{metrics}"
        );
        // The native client keeps working.
        native.send(&post("after", "n2")).await.unwrap();
        assert!(answer(&mut native, "n2").await.is_ok());
    });
}

#[test]
fn history_survives_a_restart_and_replays_by_media_time() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap().to_string();
    let env = [("CUECAST_SERVER_DATA_DIR", data_dir.as_str())];
    let mut server = start(&env);
    let rt = runtime();
    let mut publisher = common::Publisher::ffmpeg(&server.rtmp_url("demo-key"), 30);
    common::wait_for(
        &server.url("/hls/demo/index.m3u8"),
        Duration::from_secs(30),
        |_| true,
    );
    let (token, cue_ms) = rt.block_on(async {
        let chat = Chat::of(&server).await;
        let token = chat.signup("keeper").await;
        let (mut stream, _, _) = chat.join("demo", Some(&token)).await;
        let mut cue_ms = 0;
        for (i, nonce) in ["k1", "k2", "k3"].iter().enumerate() {
            stream
                .send(&post(&format!("remember {i}"), nonce))
                .await
                .unwrap();
            answer(&mut stream, nonce).await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            if i == 1 {
                // A cue posted between two messages lands between them on the media timeline.
                let cue: serde_json::Value = reqwest::Client::new()
                    .post(format!("{}/api/streams/demo/cues", chat.http))
                    .bearer_auth("dev-admin-token")
                    .json(&serde_json::json!({"kind": "pin", "at": "now"}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                cue_ms = (cue["media_time_s"].as_f64().expect("cue media time") * 1000.0) as i64;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        (token, cue_ms)
    });
    publisher.kill();
    server.terminate();
    assert!(
        server.wait_exit(Duration::from_secs(20)).is_some(),
        "server did not stop"
    );

    let server = start(&env);
    rt.block_on(async {
        let chat = Chat::of(&server).await;
        // The account and its token survive too.
        let (_, _, backfill) = chat.join("demo", Some(&token)).await;
        let texts: Vec<&str> = backfill.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["remember 0", "remember 1", "remember 2"]);
        let media: Vec<i64> = backfill
            .iter()
            .map(|m| m.media_time_ms.expect("media time"))
            .collect();
        assert!(media.windows(2).all(|w| w[0] < w[1]), "{media:?}");
        // Chat and cues share one media timeline ("now" = the latest ingested frame).
        assert!(
            media[1] <= cue_ms && cue_ms <= media[2],
            "cue at {cue_ms} ms between messages at {media:?}"
        );
        let session = backfill[0].session.clone().expect("session");

        let history = |query: String| {
            let url = format!("{}/api/chat/demo/history?{query}", chat.http);
            async move {
                let body: serde_json::Value =
                    reqwest::get(url).await.unwrap().json().await.unwrap();
                body["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["text"].as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(history(String::new()).await.len(), 3);
        let from = media[1];
        let to = media[2];
        assert_eq!(
            history(format!("session={session}&from_ms={from}&to_ms={to}")).await,
            ["remember 1"]
        );
        assert_eq!(
            history("session=other".to_string()).await,
            Vec::<String>::new()
        );
        let response = reqwest::get(format!("{}/api/chat/nope/history", chat.http))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 404);
    });
}

#[test]
fn cli_joins_posts_stdin_lines_and_prints_json_lines() {
    let server = start(&[]);
    let rt = runtime();
    let (chat, token) = rt.block_on(async {
        let chat = Chat::of(&server).await;
        let token = chat.signup("cliuser").await;
        (chat, token)
    });
    let mut child = Command::new(env!("CARGO_BIN_EXE_cuecast"))
        .args([
            "chat",
            "demo",
            "--server",
            &chat.addr.to_string(),
            "--token",
            &token,
            "--json",
            "--http",
            &chat.http,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cuecast chat");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let wait_line = |pred: &dyn Fn(&serde_json::Value) -> bool| -> serde_json::Value {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = lines_rx
                .recv_timeout(left)
                .expect("no matching line from the CLI");
            let value: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
            if pred(&value) {
                return value;
            }
        }
    };
    wait_line(&|v| v["kind"] == "live");
    writeln!(stdin, "hello from the terminal").unwrap();
    stdin.flush().unwrap();
    let got = wait_line(&|v| v["text"] == "hello from the terminal");
    assert_eq!(got["user"], "cliuser");
    assert_eq!(got["kind"], "chat");
    assert!(got["id"].as_i64().is_some());

    // Messages from others are printed too.
    rt.block_on(async {
        let other = chat.signup("otheruser").await;
        let (mut stream, _, _) = chat.join("demo", Some(&other)).await;
        stream.send(&post("hi cli", "o1")).await.unwrap();
        answer(&mut stream, "o1").await.unwrap();
    });
    let got = wait_line(&|v| v["text"] == "hi cli");
    assert_eq!(got["user"], "otheruser");

    // End of input: the CLI exits cleanly.
    drop(stdin);
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "CLI did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn operator_certificate_is_served_and_the_cli_verifies_it_with_a_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let (ca, cert, key) = (
        dir.path().join("ca.pem"),
        dir.path().join("chat.pem"),
        dir.path().join("chat.key"),
    );
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    let server = start(&[
        ("CUECAST_CHAT_CERT_FILE", cert.to_str().unwrap()),
        ("CUECAST_CHAT_KEY_FILE", key.to_str().unwrap()),
    ]);
    let rt = runtime();
    let port = rt.block_on(async {
        let chat = Chat::of(&server).await;
        // The published hash is the operator leaf's.
        assert_eq!(chat.pins, [cuecast::tls::sha256(leaf.der())]);
        // A client trusting the CA (not a pin) gets in.
        let trust = client::load_ca(&ca).unwrap();
        let conn = client::connect(&chat.endpoint, chat.addr, "localhost", &trust)
            .await
            .expect("CA-verified connection");
        let mut stream = ChatStream::join(conn, "demo", None, None).await.unwrap();
        assert!(matches!(next(&mut stream).await, ServerMsg::Welcome { .. }));
        // The wrong name fails verification.
        assert!(
            client::connect(&chat.endpoint, chat.addr, "chat.example", &trust)
                .await
                .is_err()
        );
        chat.addr.port()
    });
    let output = Command::new(env!("CARGO_BIN_EXE_cuecast"))
        .args([
            "chat",
            "demo",
            "--server",
            &format!("localhost:{port}"),
            "--ca",
            ca.to_str().unwrap(),
            "--json",
            // No HTTP fallback: the CA file alone must do.
            "--http",
            "http://127.0.0.1:9",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(r#""kind":"welcome""#), "{stdout}");
}

#[test]
fn a_card_with_only_a_catalog_id_is_filled_from_the_catalog() {
    let server = start(&[]);
    let products = r#"[{"id": "sku-7", "title": "Rose perfume", "price": "49.00", "currency": "USD",
        "image_url": "https://shop.example/i/7.jpg", "url": "https://shop.example/p/7"}]"#;
    let response = reqwest::blocking::Client::new()
        .post(server.url("/api/catalog/products"))
        .bearer_auth("dev-admin-token")
        .header("content-type", "application/json")
        .body(products)
        .send()
        .expect("upsert");
    assert_eq!(response.status().as_u16(), 200);
    runtime().block_on(async {
        let chat = Chat::of(&server).await;
        let host_token = chat.staff("hannah", &["send", "host"]).await;
        let (mut host, _, _) = chat.join("demo", Some(&host_token)).await;
        let (mut viewer, _, _) = chat.join("demo", None).await;
        let card = ProductCard::reference;
        host.send(&ClientMsg::Post {
            text: "tonight only".into(),
            link: None,
            product: Some(Box::new(card("sku-7"))),
            nonce: Some("h1".into()),
        })
        .await
        .unwrap();
        answer(&mut host, "h1").await.expect("host card by id");
        let got = wait_for(&mut viewer, message_text("tonight only")).await;
        let product = got.product.expect("card");
        assert_eq!(product.title.as_deref(), Some("Rose perfume"));
        assert_eq!(product.price.as_deref(), Some("49.00"));
        assert_eq!(
            product.cta.map(|c| c.url).as_deref(),
            Some("https://shop.example/p/7")
        );
        host.send(&ClientMsg::Post {
            text: "missing".into(),
            link: None,
            product: Some(Box::new(card("sku-404"))),
            nonce: Some("h2".into()),
        })
        .await
        .unwrap();
        assert_eq!(answer(&mut host, "h2").await, Err(RejectCode::Invalid));
    });
}

// --- The WebSocket fallback (`GET /api/chat/{room}/ws` on the HTTP port) ---

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Chat {
    fn ws_url(&self, room: &str) -> String {
        format!(
            "{}/api/chat/{room}/ws",
            self.http.trim_end_matches('/').replace("http://", "ws://")
        )
    }

    /// Opens a WebSocket to `room` (nothing sent yet).
    async fn ws(&self, room: &str) -> Ws {
        let (ws, response) = tokio_tungstenite::connect_async(self.ws_url(room))
            .await
            .expect("WebSocket upgrade");
        assert_eq!(response.status().as_u16(), 101);
        ws
    }

    /// Joins `room` over a WebSocket and reads up to `live`: the socket, welcome, backfill.
    async fn ws_join(
        &self,
        room: &str,
        token: Option<&str>,
    ) -> (Ws, ServerMsg, Vec<proto::ChatMessage>) {
        let mut ws = self.ws(room).await;
        ws_send(&mut ws, &hello(room, token)).await;
        let welcome = ws_next(&mut ws).await;
        assert!(matches!(welcome, ServerMsg::Welcome { .. }), "{welcome:?}");
        let mut backfill = Vec::new();
        loop {
            match ws_next(&mut ws).await {
                ServerMsg::Message {
                    message,
                    history: true,
                } => backfill.push(message),
                ServerMsg::Live {} => break,
                ServerMsg::Presence { .. } => {}
                other => panic!("unexpected during backfill: {other:?}"),
            }
        }
        (ws, welcome, backfill)
    }
}

fn hello(room: &str, token: Option<&str>) -> ClientMsg {
    ClientMsg::Hello {
        version: proto::VERSION,
        room: room.into(),
        token: token.map(str::to_string),
        backfill: None,
    }
}

async fn ws_send(ws: &mut Ws, msg: &ClientMsg) {
    let text = serde_json::to_string(msg).expect("JSON");
    ws.send(WsMessage::text(text)).await.expect("ws send");
}

/// The next protocol message: exactly one JSON object per text message.
async fn ws_next(ws: &mut Ws) -> ServerMsg {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("timed out waiting for a WebSocket message")
            .expect("WebSocket ended")
            .expect("WebSocket read");
        match message {
            WsMessage::Text(text) => {
                return serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("not one protocol message: {text}: {e}"));
            }
            WsMessage::Ping(_) | WsMessage::Pong(_) => {}
            other => panic!("unexpected WebSocket message {other:?}"),
        }
    }
}

async fn ws_wait_for<T>(ws: &mut Ws, mut pick: impl FnMut(&ServerMsg) -> Option<T>) -> T {
    loop {
        if let Some(found) = pick(&ws_next(ws).await) {
            return found;
        }
    }
}

/// The ack or rejection of `nonce` on a WebSocket.
async fn ws_answer(ws: &mut Ws, nonce: &str) -> Result<i64, RejectCode> {
    ws_wait_for(ws, |msg| match msg {
        ServerMsg::Ack {
            nonce: Some(n), id, ..
        } if n == nonce => Some(Ok(*id)),
        ServerMsg::Rejected {
            nonce: Some(n),
            code,
            ..
        } if n == nonce => Some(Err(*code)),
        _ => None,
    })
    .await
}

/// Reads until the server closes the WebSocket: its close code and reason.
async fn ws_closed_with(ws: &mut Ws) -> (u16, String) {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("WebSocket not closed");
        match message {
            Some(Ok(WsMessage::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.to_string());
            }
            Some(Ok(WsMessage::Close(None))) | None | Some(Err(_)) => {
                panic!("closed without a close code")
            }
            Some(Ok(_)) => {}
        }
    }
}

/// The next protocol message, or None when the server closed the socket instead.
async fn ws_next_or_close(ws: &mut Ws) -> Option<ServerMsg> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.ok()?? {
            Ok(WsMessage::Text(text)) => return serde_json::from_str(&text).ok(),
            Ok(WsMessage::Ping(_) | WsMessage::Pong(_)) => {}
            _ => return None,
        }
    }
}

fn ws_code(code: CloseCode) -> u16 {
    4000 + code.code() as u16
}

#[test]
fn websocket_clients_share_rooms_rules_and_moderation_with_quic_clients() {
    let server = start(&[]);
    runtime().block_on(async {
        let chat = Chat::of(&server).await;
        let alice_token = chat.signup("alice").await;
        let bob_token = chat.signup("bob").await;
        let mod_token = chat.staff("mona", &["send", "moderate"]).await;
        let (mut alice, _, _) = chat.join("demo", Some(&alice_token)).await;
        let (mut moderator, _, _) = chat.join("demo", Some(&mod_token)).await;
        alice
            .send(&post("before the fallback", "a0"))
            .await
            .unwrap();
        answer(&mut alice, "a0").await.expect("accepted");

        // History on join, over the WebSocket too.
        let (mut anon, welcome, backfill) = chat.ws_join("demo", None).await;
        let ServerMsg::Welcome { user, .. } = welcome else {
            unreachable!()
        };
        assert_eq!(user, None);
        let texts: Vec<&str> = backfill.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["before the fallback"]);

        // A WebSocket member and a QUIC member see each other's posts.
        let (mut bob, welcome, _) = chat.ws_join("demo", Some(&bob_token)).await;
        let ServerMsg::Welcome { user, .. } = welcome else {
            unreachable!()
        };
        assert_eq!(user.as_deref(), Some("bob"));
        ws_send(&mut bob, &post("hello from a websocket", "b1")).await;
        let id = ws_answer(&mut bob, "b1").await.expect("accepted");
        let got = wait_for(&mut alice, message_text("hello from a websocket")).await;
        assert_eq!((got.id, got.user.as_str()), (id, "bob"));
        alice.send(&post("hello from quic", "a1")).await.unwrap();
        let got = ws_wait_for(&mut bob, |m| match m {
            ServerMsg::Message { message, history } if message.text == "hello from quic" => {
                Some((message.user.clone(), *history))
            }
            _ => None,
        })
        .await;
        assert_eq!(got, ("alice".to_string(), false));

        // Anonymous WebSocket viewers read only.
        ws_send(&mut anon, &post("let me in", "c1")).await;
        assert_eq!(
            ws_answer(&mut anon, "c1").await,
            Err(RejectCode::LoginRequired)
        );

        // A moderator's delete over QUIC reaches the WebSocket members.
        moderator.send(&ClientMsg::Delete { id }).await.unwrap();
        for ws in [&mut bob, &mut anon] {
            let deleted = ws_wait_for(ws, |m| match m {
                ServerMsg::Deleted { id } => Some(*id),
                _ => None,
            })
            .await;
            assert_eq!(deleted, id);
        }

        // A ban closes the WebSocket with 4000 + BANNED, and a rejoin is refused the same way.
        moderator
            .send(&ClientMsg::Ban { user: "bob".into() })
            .await
            .unwrap();
        let (code, reason) = ws_closed_with(&mut bob).await;
        assert_eq!(
            (code, reason.as_str()),
            (ws_code(CloseCode::Banned), "banned")
        );
        let mut again = chat.ws("demo").await;
        ws_send(&mut again, &hello("demo", Some(&bob_token))).await;
        assert_eq!(
            ws_closed_with(&mut again).await.0,
            ws_code(CloseCode::Banned)
        );

        // A bad token is refused.
        let mut forged = chat.ws("demo").await;
        ws_send(&mut forged, &hello("demo", Some("v1.forged.token"))).await;
        assert_eq!(
            ws_closed_with(&mut forged).await.0,
            ws_code(CloseCode::Unauthorized)
        );

        // Unknown rooms are 404 before any upgrade; a plain GET is 426 with a JSON error.
        match tokio_tungstenite::connect_async(chat.ws_url("nope")).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 404)
            }
            other => panic!("unknown room upgraded: {:?}", other.map(|r| r.1)),
        }
        let response = reqwest::get(format!("{}/api/chat/demo/ws", chat.http))
            .await
            .expect("GET");
        assert_eq!(response.status().as_u16(), 426);
        let body: serde_json::Value = response.json().await.expect("JSON error");
        assert!(body["error"].as_str().is_some(), "{body}");

        // The QUIC members were not disturbed.
        alice.send(&post("still here", "a2")).await.unwrap();
        answer(&mut alice, "a2").await.expect("accepted");
    });
}

#[test]
fn websocket_bad_input_closes_with_4000_plus_the_chat_code() {
    let server = start(&[
        ("CUECAST_CHAT_HELLO_TIMEOUT_S", "1"),
        ("CUECAST_CHAT_MAX_CONNECTIONS_PER_IP", "4"),
    ]);
    runtime().block_on(async {
        let chat = Chat::of(&server).await;
        // A QUIC member that must stay unaffected (and counts towards the per-IP limit).
        let (mut watcher, _, _) = chat.join("demo", None).await;

        let cases: Vec<(&str, bool, WsMessage, CloseCode)> = vec![
            (
                "garbage",
                false,
                WsMessage::text("{not json"),
                CloseCode::MalformedFrame,
            ),
            (
                "garbage after hello",
                true,
                WsMessage::text("[1,2]"),
                CloseCode::MalformedFrame,
            ),
            (
                "binary",
                true,
                WsMessage::binary(br#"{"type":"post","text":"hi"}"#.to_vec()),
                CloseCode::MalformedFrame,
            ),
            (
                "oversize",
                true,
                WsMessage::text(format!(
                    r#"{{"type":"post","text":"{}"}}"#,
                    "x".repeat(20_000)
                )),
                CloseCode::FrameTooLarge,
            ),
            (
                "far oversize",
                true,
                WsMessage::text("y".repeat(200_000)),
                CloseCode::FrameTooLarge,
            ),
            (
                "unknown type",
                true,
                WsMessage::text(r#"{"type":"dance"}"#),
                CloseCode::UnknownMessage,
            ),
            (
                "post before hello",
                false,
                WsMessage::text(r#"{"type":"post","text":"hi"}"#),
                CloseCode::ProtocolViolation,
            ),
            (
                "hello twice",
                true,
                WsMessage::text(serde_json::to_string(&hello("demo", None)).unwrap()),
                CloseCode::ProtocolViolation,
            ),
            (
                "unknown room in hello",
                false,
                WsMessage::text(serde_json::to_string(&hello("nope", None)).unwrap()),
                CloseCode::UnknownRoom,
            ),
        ];
        for (name, hello_first, payload, code) in cases {
            let mut ws = chat.ws("demo").await;
            if hello_first {
                ws_send(&mut ws, &hello("demo", None)).await;
                ws_wait_for(&mut ws, |m| matches!(m, ServerMsg::Live {}).then_some(())).await;
            }
            ws.send(payload).await.expect("send");
            let (got, reason) = ws_closed_with(&mut ws).await;
            assert_eq!(
                (got, reason.as_str()),
                (ws_code(code), code.reason()),
                "{name}"
            );
        }

        // Silence past the hello timeout.
        let mut silent = chat.ws("demo").await;
        assert_eq!(
            ws_closed_with(&mut silent).await.0,
            ws_code(CloseCode::HelloTimeout)
        );

        // The per-IP limit counts QUIC and WebSocket connections together: with the watcher
        // and three sockets open, the fifth connection is refused.
        let mut open = Vec::new();
        for _ in 0..3 {
            let (ws, _, _) = chat.ws_join("demo", None).await;
            open.push(ws);
        }
        let mut over = chat.ws("demo").await;
        assert_eq!(
            ws_closed_with(&mut over).await.0,
            ws_code(CloseCode::ConnectionLimit)
        );
        // Closed sockets give their slots back.
        drop(open);
        let mut rejoined = None;
        for _ in 0..50 {
            let mut ws = chat.ws("demo").await;
            ws_send(&mut ws, &hello("demo", None)).await;
            if matches!(
                ws_next_or_close(&mut ws).await,
                Some(ServerMsg::Welcome { .. })
            ) {
                rejoined = Some(ws);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(rejoined.is_some(), "slots not given back");

        // The QUIC member was not disturbed: it still gets the room's presence.
        wait_for(&mut watcher, |m| {
            matches!(m, ServerMsg::Presence { .. }).then_some(())
        })
        .await;
    });
}

#[test]
fn websocket_fallback_can_be_turned_off() {
    let server = start(&[("CUECAST_CHAT_WEBSOCKET", "false")]);
    let (status, _, body) = common::call("GET", &server.url("/api/chat/demo/ws"), None, None);
    assert_eq!(status, 404, "{body}");
}

#[test]
fn a_hosts_own_room_has_one_host_who_moderates_it() {
    let server = start(&[]);
    runtime().block_on(async {
        let chat = Chat::of(&server).await;
        let alice_token = chat.staff("alice", &["send", "host"]).await;
        let bob_token = chat.staff("bob", &["send", "host"]).await;
        let created = reqwest::Client::new()
            .post(format!("{}/api/keys", chat.http))
            .bearer_auth(&alice_token)
            .json(&serde_json::json!({ "name": "studio" }))
            .send()
            .await
            .expect("POST /api/keys");
        assert_eq!(created.status().as_u16(), 201);
        let room = created.json::<serde_json::Value>().await.unwrap()["stream"]
            .as_str()
            .expect("stream")
            .to_string();

        // The key's stream is a room at once; its owner is its host and moderates it.
        let capabilities = |welcome: ServerMsg| match welcome {
            ServerMsg::Welcome { capabilities, .. } => capabilities,
            other => panic!("{other:?}"),
        };
        let (mut alice, welcome, _) = chat.join(&room, Some(&alice_token)).await;
        assert_eq!(
            capabilities(welcome),
            [
                proto::Capability::Send,
                proto::Capability::Moderate,
                proto::Capability::Host
            ]
        );
        // Another host is a viewer there (and a host in a configured room, as before).
        let (mut bob, welcome, _) = chat.join(&room, Some(&bob_token)).await;
        assert_eq!(capabilities(welcome), [proto::Capability::Send]);
        let (_, welcome, _) = chat.join("demo", Some(&bob_token)).await;
        assert!(capabilities(welcome).contains(&proto::Capability::Host));

        bob.send(&post("bob was here", "b1")).await.unwrap();
        let (id, _) = answer(&mut bob, "b1").await.unwrap();
        bob.send(&ClientMsg::Pin { id }).await.unwrap();
        let code = wait_for(&mut bob, |m| match m {
            ServerMsg::Rejected { code, .. } => Some(*code),
            _ => None,
        })
        .await;
        assert_eq!(
            code,
            RejectCode::Forbidden,
            "bob cannot pin in alice's room"
        );
        wait_for(&mut alice, message_text("bob was here")).await;
        alice.send(&ClientMsg::Delete { id }).await.unwrap();
        let deleted = wait_for(&mut bob, |m| match m {
            ServerMsg::Deleted { id } => Some(*id),
            _ => None,
        })
        .await;
        assert_eq!(deleted, id, "the owner moderates her room");
    });
}

/// GET `path` with `token`: status and body text.
async fn get_text(chat: &Chat, path: &str, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(format!("{}{path}", chat.http));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("GET");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[test]
fn a_shows_chat_exports_as_csv_for_its_host_only() {
    let server = start(&[]);
    runtime().block_on(async {
        let chat = Chat::of(&server).await;
        let hana = chat.staff("hana", &["send", "host"]).await;
        let olga = chat.staff("olga", &["send", "host"]).await;
        let viewer = chat.signup("vic").await;
        let (mut host, _, _) = chat.join("demo", Some(&hana)).await;
        let (mut vic, _, _) = chat.ws_join("demo", Some(&viewer)).await;

        let request = serde_json::json!({ "title": "Drop", "stream": "demo",
            "scheduled_start": "2030-01-01T18:00:00Z" });
        let response = reqwest::Client::new()
            .post(format!("{}/api/shows", chat.http))
            .bearer_auth(&hana)
            .json(&request)
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status().as_u16(), 201);
        let show: serde_json::Value = response.json().await.expect("show");
        let id = show["id"].as_str().expect("id").to_string();
        let csv_path = format!("/api/shows/{id}/chat.csv");

        // Before the show: not part of its chat.
        ws_send(&mut vic, &post("before the show", "v0")).await;
        ws_answer(&mut vic, "v0").await.expect("accepted");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let response = reqwest::Client::new()
            .patch(format!("{}/api/shows/{id}", chat.http))
            .bearer_auth(&hana)
            .json(&serde_json::json!({ "state": "live" }))
            .send()
            .await
            .expect("PATCH");
        assert_eq!(response.status().as_u16(), 200);
        tokio::time::sleep(Duration::from_millis(50)).await;

        ws_send(&mut vic, &post("=HYPERLINK(\"http://evil.example\")", "v1")).await;
        ws_answer(&mut vic, "v1").await.expect("accepted");
        ws_send(&mut vic, &post("nice, \"really\" nice", "v2")).await;
        ws_answer(&mut vic, "v2").await.expect("accepted");
        host.send(&ClientMsg::Post {
            text: "our shop".into(),
            link: Some(Link {
                url: "https://shop.example/spring".into(),
                label: None,
            }),
            product: None,
            nonce: Some("h1".into()),
        })
        .await
        .unwrap();
        answer(&mut host, "h1").await.expect("accepted");

        assert_eq!(get_text(&chat, &csv_path, None).await.0, 401);
        assert_eq!(get_text(&chat, &csv_path, Some(&olga)).await.0, 403);
        assert_eq!(get_text(&chat, &csv_path, Some(&viewer)).await.0, 403);
        assert_eq!(
            get_text(&chat, "/api/shows/show-0/chat.csv", Some(&hana))
                .await
                .0,
            404
        );

        // History is written behind the room: wait for the three messages.
        let mut rows = Vec::new();
        for _ in 0..50 {
            let (status, text) = get_text(&chat, &csv_path, Some(&hana)).await;
            assert_eq!(status, 200, "{text}");
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            let header: Vec<String> = reader
                .headers()
                .expect("header")
                .iter()
                .map(str::to_string)
                .collect();
            assert_eq!(
                header,
                [
                    "id",
                    "sent_at",
                    "media_time_ms",
                    "user",
                    "role",
                    "kind",
                    "text",
                    "link_url",
                    "product_id"
                ]
            );
            rows = reader.records().map(|r| r.expect("row")).collect();
            if rows.len() >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let cells: Vec<(&str, &str, &str, &str)> =
            rows.iter().map(|r| (&r[3], &r[5], &r[6], &r[7])).collect();
        assert_eq!(
            cells,
            [
                ("vic", "chat", "'=HYPERLINK(\"http://evil.example\")", ""),
                ("vic", "chat", "nice, \"really\" nice", ""),
                ("hana", "link", "our shop", "https://shop.example/spring"),
            ]
        );
        assert!(
            rows[0][1].ends_with('Z'),
            "sent_at in RFC 3339: {:?}",
            &rows[0]
        );
        // The admin may export too.
        let (status, text) = get_text(&chat, &csv_path, Some("dev-admin-token")).await;
        assert_eq!(status, 200);
        assert_eq!(text.lines().count(), 4, "{text}");
    });
}

#[test]
fn a_silent_websocket_is_pinged_and_closed_after_the_idle_timeout() {
    let server = start(&[("CUECAST_CHAT_IDLE_TIMEOUT_S", "1.5")]);
    runtime().block_on(async {
        let chat = Chat::of(&server).await;
        let (mut awake, _, _) = chat.ws_join("demo", None).await;
        let (mut asleep, _, _) = chat.ws_join("demo", None).await;
        // The awake client reads (and so answers the server's pings) for over twice the
        // timeout; the asleep one never reads, never answers, and leaves the room.
        let (mut pings, mut presence) = (0, Vec::new());
        let until = tokio::time::Instant::now() + Duration::from_secs(4);
        while let Ok(message) = tokio::time::timeout_at(until, awake.next()).await {
            match message {
                Some(Ok(WsMessage::Ping(_))) => pings += 1,
                Some(Ok(WsMessage::Text(text))) => {
                    if let Ok(ServerMsg::Presence { count }) = serde_json::from_str(&text) {
                        presence.push(count);
                    }
                }
                other => panic!("an answering client got {other:?}"),
            }
        }
        assert!(pings >= 3, "{pings} pings in 4 s with a 1.5 s idle timeout");
        assert_eq!(
            presence.last(),
            Some(&1),
            "the silent client left: {presence:?}"
        );
        // What the silent client finds: pings, then the end (its close frame, or a reset: it
        // did not read during the closing handshake).
        loop {
            match tokio::time::timeout(WAIT, asleep.next())
                .await
                .expect("ended")
            {
                Some(Ok(WsMessage::Ping(_))) => {}
                Some(Ok(WsMessage::Close(frame))) => {
                    assert_eq!(frame.map(|f| u16::from(f.code)), Some(1000));
                    break;
                }
                Some(Ok(other)) => panic!("{other:?}"),
                None | Some(Err(_)) => break,
            }
        }
        ws_send(&mut awake, &post("still here", "a1")).await;
        assert_eq!(
            ws_answer(&mut awake, "a1").await,
            Err(RejectCode::LoginRequired)
        );
    });
}

#[test]
fn a_websocket_that_does_not_read_is_closed_as_a_slow_consumer_and_the_room_goes_on() {
    let server = start(&[
        ("CUECAST_CHAT_QUEUE_BATCHES", "64"),
        ("CUECAST_CHAT_BATCH_MS", "0"),
    ]);
    runtime().block_on(async {
        let chat = Chat::of(&server).await;
        let host_token = chat.staff("hana", &["send", "host"]).await;
        let (host, _, _) = chat.ws_join("demo", Some(&host_token)).await;
        let (_stalled, _, _) = chat.ws_join("demo", None).await;
        let (mut out, mut incoming) = host.split();
        // The host reads everything (its acks and its own messages) in the background and
        // reports how many of its posts were acknowledged, until the answer to its last post.
        let (acked_tx, mut acked) = tokio::sync::watch::channel(0u64);
        let reader = tokio::spawn(async move {
            while let Some(Ok(message)) = incoming.next().await {
                if let WsMessage::Text(text) = message
                    && let Ok(ServerMsg::Ack { nonce, .. }) = serde_json::from_str(&text)
                {
                    match nonce.as_deref() {
                        Some("last") => return true,
                        Some(n) => {
                            if let Some(seq) = n.strip_prefix('n').and_then(|s| s.parse().ok()) {
                                acked_tx.send_replace(seq);
                            }
                        }
                        None => {}
                    }
                }
            }
            false
        });
        // Far more than the loopback socket buffers hold for a client that reads nothing. The
        // host keeps at most WINDOW posts unacknowledged, so its own queue (64 batches) never
        // fills however slowly this machine runs its reader: only the stalled client's does.
        const WINDOW: u64 = 8;
        let text = "x".repeat(1900);
        let metrics = format!("{}/metrics", chat.http);
        let slow = "cuecast_chat_closes_total{code=\"8\",reason=\"slow consumer\"} 1";
        let mut closed = false;
        let mut seq = 0u64;
        for _round in 0..40 {
            for _ in 0..250 {
                seq += 1;
                let floor = seq.saturating_sub(WINDOW);
                tokio::time::timeout(WAIT, acked.wait_for(|a| *a >= floor))
                    .await
                    .expect("the host's posts are acknowledged")
                    .expect("host reader");
                let msg = post(&text, &format!("n{seq}"));
                out.send(WsMessage::text(serde_json::to_string(&msg).unwrap()))
                    .await
                    .expect("host send");
            }
            let body = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
            if body.contains(slow) {
                closed = true;
                break;
            }
        }
        assert!(
            closed,
            "the stalled client was never closed as a slow consumer"
        );
        // The host was not slowed into a close: it still posts and gets its answer.
        let last = post("after the stall", "last");
        out.send(WsMessage::text(serde_json::to_string(&last).unwrap()))
            .await
            .expect("host send");
        let acked = tokio::time::timeout(WAIT, reader).await.expect("reader");
        assert!(acked.unwrap(), "the host's last post was not acknowledged");
    });
}

#[test]
fn a_websocket_from_a_foreign_origin_is_refused_and_this_hosts_pages_and_allowed_origins_join() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = start(&[("CUECAST_CHAT_ALLOWED_ORIGINS", "[\"https://shop.example\"]")]);
    runtime().block_on(async {
        let chat = Chat::of(&server).await;
        let upgrade = |origin: Option<&str>| {
            let mut request = chat.ws_url("demo").into_client_request().expect("request");
            if let Some(origin) = origin {
                request
                    .headers_mut()
                    .insert("origin", origin.parse().expect("origin header"));
            }
            tokio_tungstenite::connect_async(request)
        };
        // Another site's page: 403 before any upgrade, with a body that says why.
        match upgrade(Some("https://evil.example")).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 403);
                let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                    .to_string();
                assert!(body.contains("evil.example"), "{body}");
                assert!(body.contains("allowed_origins"), "{body}");
            }
            other => panic!("a foreign origin was not refused: {:?}", other.map(|_| ())),
        }
        // This server's own pages (any port of the same host), an allowed origin, and a native
        // client without an Origin are upgraded and join.
        let own_port = chat.http.trim_end_matches('/').to_string();
        for origin in [
            Some(own_port.as_str()),
            Some("http://127.0.0.1:9"),
            Some("https://shop.example"),
            None,
        ] {
            let (mut ws, response) = upgrade(origin)
                .await
                .unwrap_or_else(|e| panic!("origin {origin:?} refused: {e}"));
            assert_eq!(response.status().as_u16(), 101, "origin {origin:?}");
            ws_send(&mut ws, &hello("demo", None)).await;
            let welcome = ws_next(&mut ws).await;
            assert!(matches!(welcome, ServerMsg::Welcome { .. }), "{welcome:?}");
        }
        let metrics = reqwest::get(format!("{}/metrics", chat.http))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("cuecast_chat_origin_refused_total 1"),
            "the refusal is counted"
        );
    });
}
