//! Chat rooms spread over several `cuecast` nodes sharing one real Redis server (cluster mode,
//! docs/chat.md "Chat across nodes"): real processes, each with its own data dir, and real QUIC
//! chat clients. One order per room on every node, bans and rate limits across nodes, a node
//! reading a room's stream only while it has members there, and Redis restarts.

mod common;

use std::time::Duration;

use common::Server;
use common::chat::{ChatNode, WAIT, closed_with, next, post, runtime, wait_for};
use common::services::Redis;
use cuecast::chat::client::ChatStream;
use cuecast::chat::proto::{ClientMsg, CloseCode, RejectCode, ServerMsg};

/// A node of a cluster on `redis`, with `extra` overrides.
fn node(redis: &Redis, name: &str, extra: &[(&str, &str)]) -> Server {
    let node_url = format!("http://{name}.invalid:8080");
    let mut env = vec![
        ("CUECAST_CLUSTER_REDIS_URL", redis.url()),
        ("CUECAST_CLUSTER_NODE_URL", node_url),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start_with(&env)
}

/// A node's chat endpoint, with the cluster tests' way of joining and of making accounts.
struct Chat(ChatNode);

impl Chat {
    async fn of(server: &Server) -> Chat {
        Chat(ChatNode::of(server).await)
    }

    async fn conn(&self) -> quinn::Connection {
        self.0.conn().await
    }

    /// Joins `room` as `token`'s account; returns the stream, its connection and the
    /// backfill's texts.
    async fn join(&self, room: &str, token: &str) -> (ChatStream, quinn::Connection, Vec<String>) {
        let (stream, conn, backfill) = self.0.join(room, Some(token)).await;
        (stream, conn, backfill.into_iter().map(|m| m.text).collect())
    }

    /// Signs up `user` on this node (each node has its own accounts here), grants `caps` as
    /// admin when any, and returns a token carrying them.
    async fn account(&self, user: &str, caps: &[&str]) -> String {
        let http = reqwest::Client::new();
        let credentials = serde_json::json!({"username": user, "password": "password-123"});
        let response = http
            .post(format!("{}/api/signup", self.0.http))
            .json(&credentials)
            .send()
            .await
            .expect("signup");
        assert_eq!(response.status().as_u16(), 201);
        if caps.is_empty() {
            let body: serde_json::Value = response.json().await.expect("json");
            return body["token"].as_str().expect("token").to_string();
        }
        let response = http
            .put(format!("{}/api/users/{user}/capabilities", self.0.http))
            .bearer_auth("dev-admin-token")
            .json(&serde_json::json!({ "capabilities": caps }))
            .send()
            .await
            .expect("PUT");
        assert_eq!(response.status().as_u16(), 200);
        let response = http
            .post(format!("{}/api/login", self.0.http))
            .json(&credentials)
            .send()
            .await
            .expect("login");
        let body: serde_json::Value = response.json().await.expect("json");
        body["token"].as_str().expect("token").to_string()
    }
}

/// The ack (message id) or rejection of `nonce`.
async fn answer(stream: &mut ChatStream, nonce: &str) -> Result<i64, RejectCode> {
    wait_for(stream, |msg| match msg {
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

/// The (id, text) of the next `count` live messages whose text starts with `prefix`.
async fn messages(stream: &mut ChatStream, prefix: &str, count: usize) -> Vec<(i64, String)> {
    let mut got = Vec::new();
    while got.len() < count {
        if let ServerMsg::Message {
            message,
            history: false,
        } = next(stream).await
            && message.text.starts_with(prefix)
        {
            got.push((message.id, message.text));
        }
    }
    got
}

/// The next `count` live messages starting with `prefix` and the ids of `acks` acks, read
/// together (an ack may come before or after other members' messages).
async fn messages_and_acks(
    stream: &mut ChatStream,
    prefix: &str,
    count: usize,
    acks: usize,
) -> (Vec<(i64, String)>, Vec<i64>) {
    let (mut got, mut ids) = (Vec::new(), Vec::new());
    while got.len() < count || ids.len() < acks {
        match next(stream).await {
            ServerMsg::Message {
                message,
                history: false,
            } if message.text.starts_with(prefix) => got.push((message.id, message.text)),
            ServerMsg::Ack { id, .. } => ids.push(id),
            ServerMsg::Rejected { code, .. } => panic!("rejected: {code:?}"),
            _ => {}
        }
    }
    (got, ids)
}

/// Whether joining `room` with `token` is refused with `code` (the connection closes before
/// `live`).
async fn join_refused(chat: &Chat, room: &str, token: &str, code: CloseCode) -> bool {
    let conn = chat.conn().await;
    let Ok(mut stream) = ChatStream::join(conn.clone(), room, Some(token.into()), None).await
    else {
        return closed_with(&conn).await == Some(code.code() as u64);
    };
    loop {
        match tokio::time::timeout(WAIT, stream.next()).await {
            Ok(Ok(Some(ServerMsg::Live {}))) => return false,
            Ok(Ok(Some(_))) => {}
            _ => return closed_with(&conn).await == Some(code.code() as u64),
        }
    }
}

/// Redis clients blocked reading a chat room's stream (`XREAD`), i.e. rooms read by nodes.
async fn stream_readers(redis: &Redis) -> usize {
    let client = redis::Client::open(redis.url()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut conn)
        .await
        .expect("CLIENT LIST");
    list.lines().filter(|l| l.contains("cmd=xread")).count()
}

async fn wait_readers(redis: &Redis, want: usize) {
    for _ in 0..100 {
        if stream_readers(redis).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "expected {want} stream readers, found {}",
        stream_readers(redis).await
    );
}

#[test]
fn members_on_three_nodes_see_one_order_and_a_ban_on_c_holds_on_a() {
    let redis = Redis::start();
    let limits = [
        ("CUECAST_CHAT_RATE_BURST", "3"),
        ("CUECAST_CHAT_RATE_PER_S", "0.1"),
    ];
    let servers = [
        node(&redis, "a", &limits),
        node(&redis, "b", &limits),
        node(&redis, "c", &limits),
    ];
    runtime().block_on(async {
        let mut chats = Vec::new();
        for server in &servers {
            chats.push(Chat::of(server).await);
        }
        let [a, b, c] = &chats[..] else {
            unreachable!()
        };
        // Nobody in the room yet: no node reads its stream.
        assert_eq!(stream_readers(&redis).await, 0);
        let (mut alice, _, _) = a.join("demo", &a.account("alice", &[]).await).await;
        let troll_a = a.account("troll", &[]).await;
        let (mut troll, troll_conn, _) = a.join("demo", &troll_a).await;
        let (mut bob, _, _) = b.join("demo", &b.account("bob", &[]).await).await;
        let (mut carol, _, _) = c.join("demo", &c.account("carol", &[]).await).await;
        let (mut mona, _, _) = c
            .join("demo", &c.account("mona", &["send", "moderate"]).await)
            .await;
        wait_readers(&redis, 3).await;

        // Three members on three nodes post at the same time.
        for round in 0..3 {
            for (who, stream) in [
                ("alice", &mut alice),
                ("bob", &mut bob),
                ("carol", &mut carol),
            ] {
                stream
                    .send(&post(&format!("m {who} {round}"), &format!("{who}{round}")))
                    .await
                    .expect("send");
            }
        }
        let mut acked = Vec::new();
        let mut seen = Vec::new();
        for stream in [&mut alice, &mut bob, &mut carol] {
            let (messages, acks) = messages_and_acks(stream, "m ", 9, 3).await;
            seen.push(messages);
            acked.extend(acks);
        }
        let [seen_by_alice, seen_by_bob, seen_by_carol] = &seen[..] else {
            unreachable!()
        };
        let seen_by_troll = messages(&mut troll, "m ", 9).await;
        let seen_by_mona = messages(&mut mona, "m ", 9).await;
        // Every member on every node gets the nine messages in the same order ...
        assert_eq!(seen_by_alice, seen_by_bob);
        assert_eq!(seen_by_alice, seen_by_carol);
        assert_eq!(seen_by_alice, &seen_by_troll);
        assert_eq!(seen_by_alice, &seen_by_mona);
        // ... with ids unique across nodes, increasing in that order, as acknowledged.
        let ids: Vec<i64> = seen_by_alice.iter().map(|(id, _)| *id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        acked.sort_unstable();
        assert_eq!(acked, ids);

        // The rate limit holds across nodes: "rapid" has an account on A and on B; 3 posts per
        // 30 s in all, wherever they are posted.
        let (mut rapid_a, _, _) = a.join("demo", &a.account("rapid", &[]).await).await;
        let (mut rapid_b, _, _) = b.join("demo", &b.account("rapid", &[]).await).await;
        for nonce in ["r1", "r2"] {
            rapid_a.send(&post("quick", nonce)).await.expect("send");
            assert!(answer(&mut rapid_a, nonce).await.is_ok());
        }
        rapid_b.send(&post("quick", "r3")).await.expect("send");
        assert!(answer(&mut rapid_b, "r3").await.is_ok());
        rapid_b.send(&post("quick", "r4")).await.expect("send");
        assert_eq!(
            answer(&mut rapid_b, "r4").await,
            Err(RejectCode::RateLimited)
        );
        rapid_a.send(&post("quick", "r5")).await.expect("send");
        assert_eq!(
            answer(&mut rapid_a, "r5").await,
            Err(RejectCode::RateLimited)
        );

        // A moderator on C deletes on every node, then bans troll, who is on A: A closes its
        // connection, and troll cannot come back on A or B.
        let target = ids[0];
        mona.send(&ClientMsg::Delete { id: target })
            .await
            .expect("send");
        for stream in [&mut alice, &mut bob] {
            let deleted = wait_for(stream, |m| match m {
                ServerMsg::Deleted { id } => Some(*id),
                _ => None,
            })
            .await;
            assert_eq!(deleted, target);
        }
        mona.send(&ClientMsg::Ban {
            user: "troll".into(),
        })
        .await
        .expect("send");
        assert_eq!(
            closed_with(&troll_conn).await,
            Some(CloseCode::Banned.code() as u64)
        );
        drop(troll);
        assert!(join_refused(a, "demo", &troll_a, CloseCode::Banned).await);
        let troll_b = b.account("troll", &[]).await;
        assert!(join_refused(b, "demo", &troll_b, CloseCode::Banned).await);

        // A slow mode set on C holds for a viewer who posts on B, then on A.
        mona.send(&ClientMsg::SlowMode { seconds: 60 })
            .await
            .expect("send");
        wait_for(&mut bob, |m| {
            matches!(m, ServerMsg::SlowMode { seconds: 60 }).then_some(())
        })
        .await;
        let (mut sam_b, _, _) = b.join("demo", &b.account("sam", &[]).await).await;
        let (mut sam_a, _, _) = a.join("demo", &a.account("sam", &[]).await).await;
        sam_b.send(&post("slow one", "s1")).await.expect("send");
        assert!(answer(&mut sam_b, "s1").await.is_ok());
        sam_a.send(&post("slow two", "s2")).await.expect("send");
        assert_eq!(answer(&mut sam_a, "s2").await, Err(RejectCode::SlowMode));

        // Everyone leaves B: B stops reading the room; a newcomer on B later gets the room's
        // recent messages from the other nodes (B's own store never had carol's) and the ban.
        drop(bob);
        drop(rapid_b);
        drop(sam_b);
        wait_readers(&redis, 2).await;
        let (_, _, backfill) = b.join("demo", &b.account("dave", &[]).await).await;
        assert!(backfill.iter().any(|t| t == "m carol 2"), "{backfill:?}");
        assert!(
            !backfill.iter().any(|t| t == &seen_by_alice[0].1),
            "deleted: {backfill:?}"
        );
        wait_readers(&redis, 3).await;
        // B loaded the room again (its store never had C's ban): the ban still holds there.
        assert!(join_refused(b, "demo", &troll_b, CloseCode::Banned).await);
    });
    for mut server in servers {
        assert!(server.is_running(), "{}", server.log());
    }
}

/// Posts from `from` until one reaches `to` (at most 20 s); whether one did.
async fn delivered(from: &mut ChatStream, to: &mut ChatStream, prefix: &str) -> bool {
    for attempt in 0..40 {
        let nonce = format!("{prefix}{attempt}");
        from.send(&post(&format!("{prefix} {attempt}"), &nonce))
            .await
            .expect("send");
        answer(from, &nonce).await.expect("accepted");
        let text = format!("{prefix} {attempt}");
        let seen = tokio::time::timeout(Duration::from_millis(500), messages(to, &text, 1)).await;
        if seen.is_ok() {
            return true;
        }
    }
    false
}

#[test]
fn redis_restarts_nodes_reconnect_chat_resumes_no_node_exits() {
    let mut redis = Redis::start();
    let limits = [
        ("CUECAST_CHAT_RATE_BURST", "1000"),
        ("CUECAST_CHAT_RATE_PER_S", "100"),
    ];
    let mut servers = [node(&redis, "a", &limits), node(&redis, "b", &limits)];
    runtime().block_on(async {
        let a = Chat::of(&servers[0]).await;
        let b = Chat::of(&servers[1]).await;
        let (mut alice, _, _) = a.join("demo", &a.account("alice", &[]).await).await;
        let (mut alice2, _, _) = a.join("demo", &a.account("ann", &[]).await).await;
        let (mut bob, _, _) = b.join("demo", &b.account("bob", &[]).await).await;
        alice.send(&post("before", "p1")).await.expect("send");
        answer(&mut alice, "p1").await.expect("accepted");
        assert_eq!(messages(&mut bob, "before", 1).await[0].1, "before");

        // Redis goes away: A's members still chat among themselves.
        redis.kill();
        alice.send(&post("during", "p2")).await.expect("send");
        answer(&mut alice, "p2").await.expect("accepted locally");
        assert_eq!(messages(&mut alice2, "during", 1).await[0].1, "during");

        // Redis is back (empty): the nodes reconnect and the room is shared again, both ways.
        redis.restart();
        assert!(
            delivered(&mut alice, &mut bob, "after a").await,
            "no message from A reached B after Redis came back"
        );
        assert!(
            delivered(&mut bob, &mut alice, "after b").await,
            "no message from B reached A after Redis came back"
        );
    });
    for server in &mut servers {
        assert!(server.is_running(), "{}", server.log());
    }
}
