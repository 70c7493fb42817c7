//! Reading what the origin serves: HTTP GETs, polling, playlists (m3u8-rs and a few line
//! helpers), ffprobe on segments.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::Server;

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

/// Text of the body at `url`.
pub fn text(url: &str) -> String {
    String::from_utf8_lossy(&get(url).2).into_owned()
}

/// A [`wait_for`] condition: the playlist lists at least `n` segments.
pub fn segments_at_least(n: usize) -> impl Fn(&str) -> bool {
    move |text: &str| text.matches("#EXTINF").count() >= n
}

/// Media sequence number of the last listed segment.
pub fn last_msn(text: &str) -> u64 {
    let playlist = parse_media(text);
    playlist.media_sequence + playlist.segments.len() as u64 - 1
}
