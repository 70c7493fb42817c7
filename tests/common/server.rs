//! A real `cuecast serve` process for end-to-end tests. Every listener binds port 0 and the
//! test reads the ports the server got from its log (`listening rtmp=127.0.0.1:PORT`, one line
//! per listener), so no port is picked here and then raced for.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server process, killed on drop.
pub struct Server {
    child: Child,
    /// TCP port of the RTMP listener.
    pub rtmp_port: u16,
    /// TCP port of the RTMPS listener (0 when RTMPS is disabled).
    pub rtmps_port: u16,
    /// TCP port of the HTTP origin and API.
    pub http_port: u16,
    /// UDP port of the SRT listener (0 when SRT is disabled).
    pub srt_port: u16,
    /// UDP port of the chat endpoint (0 when chat is disabled).
    pub chat_port: u16,
    /// The server's scratch directory (its data dir is `data/` inside).
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

/// Two configured streams: `demo` (key `demo-key`) and `second` (key `second-key`).
pub const STREAMS: &str = r#"[{name="demo", key="demo-key"}, {name="second", key="second-key"}]"#;

/// How long a server may take to bind its listeners and answer `/healthz`.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// The address a listener reported in `log` (`listening {name}=ADDR`), if it has.
pub fn listener_addr(log: &str, name: &str) -> Option<SocketAddr> {
    let needle = format!("listening {name}=");
    log.lines().find_map(|line| {
        let (_, rest) = line.split_once(&needle)?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

impl Server {
    /// Starts `cuecast serve` on ephemeral ports and waits for /healthz.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Same, with extra `CUECAST_*` environment overrides. The transcoding ladder is off
    /// (`CUECAST_MEDIA_LADDER=[]`: x264 is CPU-heavy on a shared 2-core machine) unless `env`
    /// sets `CUECAST_MEDIA_LADDER` (tests/ladder.rs).
    pub fn start_with(env: &[(&str, &str)]) -> Server {
        Server::start_in(tempfile::tempdir().expect("tempdir"), env)
    }

    /// Stops this server (SIGTERM, then waits for it to exit) and starts a new one on the same
    /// scratch directory, so on the same data dir, with `env` as in [`Server::start_with`].
    pub fn restart(mut self, env: &[(&str, &str)]) -> Server {
        self.terminate();
        assert!(
            self.wait_exit(Duration::from_secs(20)).is_some(),
            "server did not stop:\n{}",
            self.log()
        );
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        drop(self);
        Server::start_in(dir, env)
    }

    /// Kills this server with SIGKILL (`kill -9`: nothing runs on its way out) and starts a new
    /// one on the same scratch directory, with `env` as in [`Server::start_with`].
    pub fn kill_and_restart(mut self, env: &[(&str, &str)]) -> Server {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        drop(self);
        Server::start_in(dir, env)
    }

    /// [`Server::start_with`] in the scratch directory `dir` (its data dir is `data/` inside).
    pub fn start_in(dir: tempfile::TempDir, env: &[(&str, &str)]) -> Server {
        let log = dir.path().join("server.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_cuecast"));
        command
            .arg("serve")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("RUST_LOG", "info,cuecast=debug")
            .env("CUECAST_RTMP_LISTEN", "127.0.0.1:0")
            .env("CUECAST_RTMPS_LISTEN", "127.0.0.1:0")
            .env("CUECAST_HTTP_LISTEN", "127.0.0.1:0")
            .env("CUECAST_SRT_LISTEN", "127.0.0.1:0")
            .env("CUECAST_CHAT_LISTEN", "127.0.0.1:0")
            .env("CUECAST_SERVER_DATA_DIR", dir.path().join("data"))
            .env("CUECAST_STREAMS", STREAMS)
            .env("CUECAST_MEDIA_LADDER", "[]")
            // A lost publisher ends its stream at once, as before reconnect continuity existed;
            // tests of continuity set their own grace period.
            .env("CUECAST_INGEST_RECONNECT_GRACE_S", "0")
            .stdout(Stdio::null())
            .stderr(log_file);
        for (key, value) in env {
            command.env(key, value);
        }
        let disabled = |key: &str| env.iter().any(|(k, v)| *k == key && *v == "false");
        let mut listeners = vec!["rtmp", "http"];
        if !disabled("CUECAST_RTMPS_ENABLED") {
            listeners.push("rtmps");
        }
        if !disabled("CUECAST_SRT_ENABLED") {
            listeners.push("srt");
        }
        if !disabled("CUECAST_CHAT_ENABLED") {
            listeners.push("chat");
        }
        let child = command.spawn().expect("spawn cuecast");
        let mut server = Server {
            child,
            rtmp_port: 0,
            rtmps_port: 0,
            http_port: 0,
            srt_port: 0,
            chat_port: 0,
            dir,
            log,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        server.read_ports(&listeners, deadline);
        while Instant::now() < deadline {
            if let Ok(response) = reqwest::blocking::get(server.url("/healthz"))
                && response.status().is_success()
            {
                return server;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("server did not become healthy:\n{}", server.log());
    }

    /// Waits until every listener in `listeners` has reported its address in the log.
    fn read_ports(&mut self, listeners: &[&str], deadline: Instant) {
        loop {
            let log = self.log();
            let ports: Vec<Option<u16>> = listeners
                .iter()
                .map(|name| listener_addr(&log, name).map(|addr| addr.port()))
                .collect();
            if ports.iter().all(Option::is_some) {
                for (name, port) in listeners.iter().zip(ports.into_iter().flatten()) {
                    match *name {
                        "rtmp" => self.rtmp_port = port,
                        "rtmps" => self.rtmps_port = port,
                        "http" => self.http_port = port,
                        "srt" => self.srt_port = port,
                        _ => self.chat_port = port,
                    }
                }
                return;
            }
            assert!(
                self.is_running(),
                "server exited before listening on {listeners:?}:\n{log}"
            );
            assert!(
                Instant::now() < deadline,
                "server did not report listening on {listeners:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    /// `rtmp://127.0.0.1:PORT/live/{key}`.
    pub fn rtmp_url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.rtmp_port)
    }

    /// `rtmps://127.0.0.1:PORT/live/{key}` (the TLS listener).
    pub fn rtmps_url(&self, key: &str) -> String {
        format!("rtmps://127.0.0.1:{}/live/{key}", self.rtmps_port)
    }

    /// `srt://127.0.0.1:PORT` (options go in the publisher's arguments).
    pub fn srt_url(&self) -> String {
        format!("srt://127.0.0.1:{}", self.srt_port)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        super::wait_child(&mut self.child, timeout)
    }

    /// A TCP connection to the RTMP port.
    pub fn rtmp_connect(&self) -> TcpStream {
        TcpStream::connect(("127.0.0.1", self.rtmp_port)).expect("connect rtmp")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- cuecast log ----\n{}", self.log());
        }
    }
}

/// Waits until the server log contains `needle`; the log then.
pub fn wait_log(server: &Server, needle: &str, timeout: Duration) -> String {
    wait_log_count(server, needle, 1, timeout)
}

/// Waits until the server log contains `needle` at least `count` times; the log then.
pub fn wait_log_count(server: &Server, needle: &str, count: usize, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let log = server.log();
        if log.matches(needle).count() >= count {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "no {count}× `{needle}` in the server log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads until the peer closes or `timeout`; true when closed (EOF or reset).
pub fn closed_by_peer(stream: &mut TcpStream, timeout: Duration) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}
