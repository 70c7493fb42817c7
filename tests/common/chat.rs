//! A native QUIC chat client for the tests: a node's chat endpoint (pinned development
//! certificate fetched from its HTTP side), joining a room up to `live`, and reading with a
//! timeout.

use std::net::SocketAddr;
use std::time::Duration;

use cuecast::chat::client::{self, ChatStream, Trust};
use cuecast::chat::proto::{self, ClientMsg, ServerMsg};

use super::Server;

/// How long a test waits for one chat event.
pub const WAIT: Duration = Duration::from_secs(15);

/// The runtime chat tests run their clients on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// One server's chat endpoint and a client endpoint to reach it.
pub struct ChatNode {
    /// The server's HTTP base URL (trailing `/`).
    pub http: String,
    /// The chat's QUIC address.
    pub addr: SocketAddr,
    /// How the client trusts the server's certificate.
    pub trust: Trust,
    /// The client's QUIC endpoint.
    pub endpoint: quinn::Endpoint,
}

impl ChatNode {
    /// The chat endpoint of `server`, its certificate pinned from `/api/chat/cert-hashes`.
    pub async fn of(server: &Server) -> ChatNode {
        let http = server.url("");
        let (trust, port) = client::fetch_pins(&http).await.expect("cert hashes");
        let addr: SocketAddr = format!("127.0.0.1:{}", port.expect("port"))
            .parse()
            .expect("address");
        ChatNode {
            http,
            addr,
            trust,
            endpoint: client::endpoint(addr).expect("client endpoint"),
        }
    }

    /// A new QUIC connection to the chat.
    pub async fn conn(&self) -> quinn::Connection {
        client::connect(&self.endpoint, self.addr, "localhost", &self.trust)
            .await
            .expect("connect")
    }

    /// Joins `room` (as `token`'s account, or anonymously) and reads up to `live`: the stream,
    /// its connection and the backfill (anything else before `live` is skipped).
    pub async fn join(
        &self,
        room: &str,
        token: Option<&str>,
    ) -> (ChatStream, quinn::Connection, Vec<proto::ChatMessage>) {
        let conn = self.conn().await;
        let mut stream = ChatStream::join(conn.clone(), room, token.map(str::to_string), None)
            .await
            .expect("join");
        let (_, backfill) = read_to_live(&mut stream, false).await;
        (stream, conn, backfill)
    }

    /// [`Self::join`], checking what comes before `live`: the welcome first, then only the
    /// backfill and presence (panics on anything else). The stream, the welcome and the
    /// backfill.
    pub async fn join_checked(
        &self,
        room: &str,
        token: Option<&str>,
    ) -> (ChatStream, ServerMsg, Vec<proto::ChatMessage>) {
        let conn = self.conn().await;
        let mut stream = ChatStream::join(conn, room, token.map(str::to_string), None)
            .await
            .expect("join");
        let (welcome, backfill) = read_to_live(&mut stream, true).await;
        let welcome = welcome.unwrap_or_else(|| panic!("no welcome before live in {room}"));
        (stream, welcome, backfill)
    }
}

/// Reads a joined `stream` up to `live`: the welcome, if it came, and the backfill. `checked`:
/// the welcome must come first, and nothing but the backfill and presence after it (panics).
async fn read_to_live(
    stream: &mut ChatStream,
    checked: bool,
) -> (Option<ServerMsg>, Vec<proto::ChatMessage>) {
    let mut welcome = None;
    let mut backfill = Vec::new();
    loop {
        let msg = next(stream).await;
        if checked && welcome.is_none() {
            assert!(matches!(msg, ServerMsg::Welcome { .. }), "{msg:?}");
        }
        match msg {
            ServerMsg::Message {
                message,
                history: true,
            } => backfill.push(message),
            ServerMsg::Live {} => break,
            ServerMsg::Welcome { .. } if welcome.is_none() => welcome = Some(msg),
            ServerMsg::Presence { .. } => {}
            other => assert!(!checked, "unexpected during backfill: {other:?}"),
        }
    }
    (welcome, backfill)
}

/// The next server message on `stream`; panics after [`WAIT`] or when the stream ends.
pub async fn next(stream: &mut ChatStream) -> ServerMsg {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("timed out waiting for a server message")
        .expect("read")
        .expect("stream ended")
}

/// Reads `stream` until `pick` returns something.
pub async fn wait_for<T>(
    stream: &mut ChatStream,
    mut pick: impl FnMut(&ServerMsg) -> Option<T>,
) -> T {
    loop {
        let msg = next(stream).await;
        if let Some(found) = pick(&msg) {
            return found;
        }
    }
}

/// A post of `text` with `nonce`.
pub fn post(text: &str, nonce: &str) -> ClientMsg {
    ClientMsg::Post {
        text: text.into(),
        link: None,
        product: None,
        nonce: Some(nonce.into()),
    }
}

/// The application close code of `conn` once it closes (within [`WAIT`]).
pub async fn closed_with(conn: &quinn::Connection) -> Option<u64> {
    match tokio::time::timeout(WAIT, conn.closed()).await {
        Ok(quinn::ConnectionError::ApplicationClosed(close)) => Some(close.error_code.into_inner()),
        _ => None,
    }
}
