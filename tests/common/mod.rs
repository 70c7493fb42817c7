//! Shared helpers for end-to-end tests: a real `cuecast` process on free ports, real ffmpeg and
//! GStreamer publishers, an HTTP client, m3u8-rs parsing and ffprobe checks.
#![allow(dead_code)]

use std::io::Read;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server process, killed on drop.
pub struct Server {
    child: Child,
    pub rtmp_port: u16,
    pub http_port: u16,
    /// UDP port of the SRT listener.
    pub srt_port: u16,
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

/// Two configured streams: `demo` (key `demo-key`) and `second` (key `second-key`).
pub const STREAMS: &str = r#"[{name="demo", key="demo-key"}, {name="second", key="second-key"}]"#;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free UDP port")
}

impl Server {
    /// Starts `cuecast serve` with test ports and waits for /healthz.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Same, with extra `CUECAST_*` environment overrides. The transcoding ladder is off
    /// (`CUECAST_MEDIA_LADDER=[]`: x264 is CPU-heavy on a shared 2-core machine) unless `env`
    /// sets `CUECAST_MEDIA_LADDER` (tests/ladder.rs).
    pub fn start_with(env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let rtmp_port = free_port();
        let http_port = free_port();
        let srt_port = free_udp_port();
        let log = dir.path().join("server.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_cuecast"));
        command
            .arg("serve")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("RUST_LOG", "info,cuecast=debug")
            .env("CUECAST_RTMP_LISTEN", format!("127.0.0.1:{rtmp_port}"))
            .env("CUECAST_HTTP_LISTEN", format!("127.0.0.1:{http_port}"))
            .env("CUECAST_SRT_LISTEN", format!("127.0.0.1:{srt_port}"))
            .env("CUECAST_SERVER_DATA_DIR", dir.path().join("data"))
            .env("CUECAST_STREAMS", STREAMS)
            .env("CUECAST_MEDIA_LADDER", "[]")
            // A lost publisher ends its stream at once, as before reconnect continuity existed;
            // tests of continuity set their own grace period.
            .env("CUECAST_INGEST_RECONNECT_GRACE_S", "0")
            // The chat endpoint on a free UDP port (GET /api/chat/cert tells which).
            .env("CUECAST_CHAT_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(log_file);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("spawn cuecast");
        let server = Server {
            child,
            rtmp_port,
            http_port,
            srt_port,
            dir,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
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

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    pub fn rtmp_url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.rtmp_port)
    }

    /// `srt://127.0.0.1:PORT` (options go in the publisher's arguments).
    pub fn srt_url(&self) -> String {
        format!("srt://127.0.0.1:{}", self.srt_port)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
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
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

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

/// A publisher process (ffmpeg or gst-launch), killed on drop.
pub struct Publisher {
    pub child: Child,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Publisher {
    /// ffmpeg publishing as OBS does: H.264 high, 2 s keyframe interval, AAC 48 kHz stereo,
    /// real-time (`-re`), for `seconds`.
    pub fn ffmpeg(url: &str, seconds: u32) -> Publisher {
        Publisher::ffmpeg_args(url, seconds, "640x360")
    }

    pub fn ffmpeg_args(url: &str, seconds: u32, size: &str) -> Publisher {
        // x264 `veryfast` is OBS's default preset; it keeps the High profile (ultrafast drops to
        // Main/Baseline features).
        let args = format!(
            "-hide_banner -loglevel warning -nostdin -re \
             -f lavfi -i testsrc2=size={size}:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
             -t {seconds} -c:v libx264 -profile:v high -preset veryfast -pix_fmt yuv420p \
             -g 60 -keyint_min 60 -sc_threshold 0 -bf 2 -b:v 800k \
             -c:a aac -ar 48000 -ac 2 -b:a 128k -f flv {url}"
        );
        let args: Vec<String> = args.split_whitespace().map(str::to_string).collect();
        Publisher::spawn("ffmpeg", &args)
    }

    /// ffmpeg publishing MPEG-TS over SRT (libsrt caller) with stream id `stream_id`:
    /// `video` is `libx264` or `libx265`; `options` are extra libsrt options placed before the
    /// URL (e.g. `["-passphrase", "…", "-pbkeylen", "32"]`).
    pub fn ffmpeg_srt(
        url: &str,
        stream_id: &str,
        options: &[&str],
        seconds: u32,
        video: &str,
    ) -> Publisher {
        Publisher::ffmpeg_srt_size(url, stream_id, options, seconds, video, "640x360")
    }

    /// [`Publisher::ffmpeg_srt`] at another picture size.
    pub fn ffmpeg_srt_size(
        url: &str,
        stream_id: &str,
        options: &[&str],
        seconds: u32,
        video: &str,
        size: &str,
    ) -> Publisher {
        let mut args: Vec<String> = format!(
            "-hide_banner -loglevel warning -nostdin -re \
             -f lavfi -i testsrc2=size={size}:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
             -t {seconds} -c:v {video} -preset veryfast -pix_fmt yuv420p \
             -g 60 -keyint_min 60 -sc_threshold 0 -bf 2 -b:v 800k \
             -c:a aac -ar 48000 -ac 2 -b:a 128k -f mpegts"
        )
        .split_whitespace()
        .map(str::to_string)
        .collect();
        if video == "libx265" {
            args.extend(
                [
                    "-x265-params",
                    "log-level=error:keyint=60:min-keyint=60:scenecut=0",
                ]
                .map(String::from),
            );
        }
        args.extend(["-srt_streamid".to_string(), stream_id.to_string()]);
        args.extend(options.iter().map(|o| o.to_string()));
        args.push(url.to_string());
        Publisher::spawn("ffmpeg", &args)
    }

    /// GStreamer's srtsink (caller) publishing H.264 + AAC in MPEG-TS; `uri` carries the
    /// stream id and other options as query parameters. `alignment=7`: one SRT message per
    /// 7 TS packets (1316 bytes), the SRT live payload; larger buffers do not survive srtsink.
    pub fn srtsink(uri: &str, seconds: u32) -> Publisher {
        let buffers = seconds * 30;
        let audio_buffers = seconds * 48000 / 1024;
        let pipeline = format!(
            "videotestsrc is-live=true num-buffers={buffers} ! video/x-raw,format=I420,width=640,height=360,framerate=30/1 \
             ! x264enc key-int-max=60 bitrate=800 speed-preset=ultrafast ! h264parse \
             ! mpegtsmux alignment=7 name=mux ! srtsink uri={uri} wait-for-connection=false \
             audiotestsrc is-live=true num-buffers={audio_buffers} samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 \
             ! voaacenc bitrate=128000 ! aacparse ! mux."
        );
        let mut args = vec!["-q".to_string(), "-e".to_string()];
        args.extend(pipeline.split_whitespace().map(str::to_string));
        Publisher::spawn("gst-launch-1.0", &args)
    }

    /// GStreamer's rtmp2sink publishing H.264 + AAC.
    pub fn rtmp2sink(url: &str, seconds: u32) -> Publisher {
        let buffers = seconds * 30;
        let audio_buffers = seconds * 48000 / 1024;
        let pipeline = format!(
            "videotestsrc is-live=true num-buffers={buffers} ! video/x-raw,width=640,height=360,framerate=30/1 \
             ! x264enc key-int-max=60 bitrate=800 speed-preset=ultrafast ! video/x-h264,profile=high ! h264parse \
             ! flvmux name=mux streamable=true ! rtmp2sink location={url} \
             audiotestsrc is-live=true num-buffers={audio_buffers} samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 \
             ! voaacenc bitrate=128000 ! aacparse ! mux."
        );
        let mut args = vec!["-q".to_string(), "-e".to_string()];
        args.extend(pipeline.split_whitespace().map(str::to_string));
        Publisher::spawn("gst-launch-1.0", &args)
    }

    /// Any program as a publisher whose stdin stays open and empty (a caller that connects and
    /// never sends).
    pub fn spawn_program_stdin(program: &str, args: &[String]) -> Publisher {
        Publisher::spawn_with(program, args, Stdio::piped())
    }

    fn spawn(program: &str, args: &[String]) -> Publisher {
        Publisher::spawn_with(program, args, Stdio::null())
    }

    fn spawn_with(program: &str, args: &[String], stdin: Stdio) -> Publisher {
        let dir = tempfile::tempdir().expect("tempdir");
        let stderr = dir.path().join("stderr.log");
        let file = std::fs::File::create(&stderr).expect("stderr file");
        let child = Command::new(program)
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        Publisher {
            child,
            stderr,
            _dir: dir,
        }
    }

    /// Waits up to `timeout` for exit; the status if it exited.
    pub fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// SIGKILL, as when an encoder crashes or its machine loses the network.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET, returning (status, headers, body).
pub fn get(url: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let response = reqwest::blocking::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().map(|b| b.to_vec()).unwrap_or_default();
    (status, headers, body)
}

/// Polls `url` until it answers 200 (and `accept` likes the body), or panics after `timeout`.
pub fn wait_for(url: &str, timeout: Duration, accept: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        let (status, _, body) = get(url);
        let text = String::from_utf8_lossy(&body).to_string();
        if status == 200 && accept(&text) {
            return text;
        }
        last = format!("{status}: {text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {url}; last answer {last}");
}

/// URL of a rendition's media playlist (`source`, `audio`), read from the multivariant playlist
/// once the stream is playable.
pub fn media_url(server: &Server, stream: &str, rendition: &str) -> String {
    let master = wait_for(
        &server.url(&format!("/hls/{stream}/index.m3u8")),
        Duration::from_secs(20),
        |_| true,
    );
    let uri = master
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .chain(master.lines().filter_map(|l| {
            let start = l.find("URI=\"")? + 5;
            let end = l[start..].find('"')? + start;
            Some(l[start..end].to_string())
        }))
        .find(|uri| uri.ends_with(&format!("/{rendition}/playlist.m3u8")))
        .unwrap_or_else(|| panic!("no rendition {rendition} in\n{master}"));
    server.url(&format!("/hls/{stream}/{uri}"))
}

pub fn parse_master(text: &str) -> m3u8_rs::MasterPlaylist {
    match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(p)) => p,
        other => panic!("not a multivariant playlist: {other:?}\n{text}"),
    }
}

pub fn parse_media(text: &str) -> m3u8_rs::MediaPlaylist {
    match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(p)) => p,
        other => panic!("not a media playlist: {other:?}\n{text}"),
    }
}

/// One stream as ffprobe sees it.
#[derive(Debug)]
pub struct Probe {
    pub codec_name: String,
    pub width: Option<u64>,
    pub height: Option<u64>,
    pub sample_rate: Option<u64>,
    pub channels: Option<u64>,
    pub duration: f64,
}

/// Writes `bytes` (init + segment) to a file and runs ffprobe on it.
pub fn ffprobe(bytes: &[u8], dir: &Path) -> Probe {
    let path = dir.join(format!("probe-{}.mp4", rand_suffix()));
    std::fs::write(&path, bytes).expect("write probe file");
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(&path)
        .output()
        .expect("run ffprobe");
    assert!(
        output.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("ffprobe json");
    let stream = &json["streams"][0];
    let number = |v: &serde_json::Value| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    };
    let seconds = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<f64>().ok());
    // A segment from the middle of a stream starts at its tfdt, not 0.
    let duration = seconds(&json["format"]["duration"]).unwrap_or(0.0)
        - seconds(&json["format"]["start_time"]).unwrap_or(0.0);
    Probe {
        codec_name: stream["codec_name"].as_str().unwrap_or("").to_string(),
        width: number(&stream["width"]),
        height: number(&stream["height"]),
        sample_rate: number(&stream["sample_rate"]),
        channels: number(&stream["channels"]),
        duration,
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
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

/// A part listed in a media playlist: its position and URI.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedPart {
    /// MSN of its segment.
    pub msn: u64,
    /// Index within the segment.
    pub part: u32,
    /// URI as listed.
    pub uri: String,
}

/// Every EXT-X-PART of a media playlist in order, and the position after the last one (the
/// part a client asks for next with `_HLS_msn`/`_HLS_part`).
pub fn listed_parts(text: &str) -> (Vec<ListedPart>, (u64, u32)) {
    let mut msn: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no media sequence:\n{text}"));
    let mut part = 0;
    let mut parts = Vec::new();
    for line in text.lines() {
        if let Some(skip) = line.strip_prefix("#EXT-X-SKIP:SKIPPED-SEGMENTS=") {
            let count = skip.split(',').next().and_then(|n| n.parse::<u64>().ok());
            msn += count.expect("SKIPPED-SEGMENTS");
        } else if line.starts_with("#EXT-X-PART:") {
            parts.push(ListedPart {
                msn,
                part,
                uri: quoted_uri(line),
            });
            part += 1;
        } else if !line.is_empty() && !line.starts_with('#') {
            msn += 1;
            part = 0;
        }
    }
    (parts, (msn, part))
}

/// The `URI="…"` attribute of a tag line.
fn quoted_uri(line: &str) -> String {
    let uri = line
        .split("URI=\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no URI in {line}"));
    uri.split('"').next().unwrap_or_default().to_string()
}

/// (msn, part) of the part a media playlist's EXT-X-PRELOAD-HINT stands for: the position
/// after the last listed part (part URIs carry a rendition-wide part number, not the position).
pub fn preload_hint(text: &str) -> (u64, u32) {
    preload_hint_uri(text);
    listed_parts(text).1
}

/// The URI of a media playlist's EXT-X-PRELOAD-HINT of TYPE=PART.
pub fn preload_hint_uri(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:TYPE=PART"))
        .unwrap_or_else(|| panic!("no preload hint:\n{text}"));
    quoted_uri(line)
}

/// The URI of the EXT-X-PART at position (msn, part) of a media playlist, if listed.
pub fn part_uri_at(text: &str, msn: u64, part: u32) -> Option<String> {
    let (parts, _) = listed_parts(text);
    parts
        .into_iter()
        .find(|p| (p.msn, p.part) == (msn, part))
        .map(|p| p.uri)
}
