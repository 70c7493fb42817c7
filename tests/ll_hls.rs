//! Low-Latency HLS against a real server fed by ffmpeg: parts, blocking playlist reload
//! (`_HLS_msn`/`_HLS_part`), preload-hinted part requests held until published, the 400/503
//! rules, delta updates (`_HLS_skip`) and rendition reports.

mod common;

use std::time::{Duration, Instant};

use common::{
    Publisher, Server, get, media_url, part_uri_at, preload_hint, preload_hint_uri, wait_for,
};

const READY: Duration = Duration::from_secs(20);

fn attribute<'a>(text: &'a str, tag: &str, name: &str) -> &'a str {
    let line = text
        .lines()
        .find(|l| l.starts_with(tag))
        .unwrap_or_else(|| panic!("no {tag}:\n{text}"));
    let value = line
        .split([':', ','])
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {line}"));
    value.trim_matches('"')
}

/// The value of a single-value tag such as `#EXT-X-TARGETDURATION:`.
fn tag_value<'a>(text: &'a str, tag: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(tag))
        .unwrap_or_else(|| panic!("no {tag}:\n{text}"))
}

/// A CMAF chunk: an optional `styp`, then `moof` and `mdat`.
fn is_cmaf_chunk(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(128)];
    (head[4..8] == *b"styp" || head[4..8] == *b"moof")
        && head.windows(4).any(|w| w == b"moof")
        && bytes.windows(4).any(|w| w == b"mdat")
}

#[test]
fn blocking_reload_releases_each_new_part_and_serves_it() {
    let server = Server::start();
    let _publisher = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 60);
    let url = media_url(&server, "demo", "source");
    let text = wait_for(&url, READY, |t| t.contains("#EXT-X-PRELOAD-HINT"));

    // The LL tags are there and consistent.
    assert!(text.contains("#EXT-X-VERSION:9"), "{text}");
    assert_eq!(
        attribute(&text, "#EXT-X-SERVER-CONTROL", "CAN-BLOCK-RELOAD"),
        "YES"
    );
    let target: f64 = tag_value(&text, "#EXT-X-TARGETDURATION:").parse().unwrap();
    let part_target: f64 = attribute(&text, "#EXT-X-PART-INF", "PART-TARGET")
        .parse()
        .unwrap();
    let hold_back: f64 = attribute(&text, "#EXT-X-SERVER-CONTROL", "HOLD-BACK")
        .parse()
        .unwrap();
    let part_hold_back: f64 = attribute(&text, "#EXT-X-SERVER-CONTROL", "PART-HOLD-BACK")
        .parse()
        .unwrap();
    assert!(hold_back >= 3.0 * target, "{text}");
    assert!(part_hold_back >= 2.0 * part_target, "{text}");
    for line in text.lines().filter(|l| l.starts_with("#EXT-X-PART:")) {
        let duration: f64 = attribute(line, "#EXT-X-PART", "DURATION").parse().unwrap();
        assert!(
            duration <= part_target + 1e-9,
            "{line} > PART-TARGET {part_target}"
        );
    }

    // Ask for each next part before it exists: the server answers when it is published.
    let (mut msn, mut part) = preload_hint(&text);
    let started = Instant::now();
    let mut blocked = 0;
    for _ in 0..12 {
        let request = format!("{url}?_HLS_msn={msn}&_HLS_part={part}");
        let asked = Instant::now();
        let (status, headers, body) = get(&request);
        let waited = asked.elapsed();
        let body = String::from_utf8_lossy(&body).to_string();
        assert_eq!(status, 200, "{request}: {body}");
        assert_eq!(headers["cache-control"], "public, max-age=6");
        if waited > Duration::from_millis(40) {
            blocked += 1;
        }
        // Either the part exists now, or the segment ended first and it means part 0 of
        // the next segment ("P past the last part of M").
        let listed = part_uri_at(&body, msn, part).or_else(|| part_uri_at(&body, msn + 1, 0));
        let listed = listed.unwrap_or_else(|| panic!("{request}:\n{body}"));
        let part_url = url.replace("playlist.m3u8", &listed);
        let (status, headers, bytes) = get(&part_url);
        assert_eq!(status, 200, "{part_url}");
        assert_eq!(headers["content-type"], "video/mp4");
        assert!(is_cmaf_chunk(&bytes), "a part is a CMAF chunk");
        (msn, part) = preload_hint(&body);
    }
    let elapsed = started.elapsed();
    assert!(
        blocked >= 8,
        "only {blocked} of 12 requests waited for their part"
    );
    assert!(
        elapsed > Duration::from_secs_f64(12.0 * part_target * 0.5)
            && elapsed < Duration::from_secs(12),
        "12 parts took {elapsed:?}"
    );

    // A GET for the preload-hinted part is held until the part exists, then served whole
    // (tests/preload_hints.rs follows every hint across segment boundaries).
    let text = String::from_utf8_lossy(&get(&url).2).to_string();
    let hinted = preload_hint_uri(&text);
    let asked = Instant::now();
    let (status, _, bytes) = get(&url.replace("playlist.m3u8", &hinted));
    let waited = asked.elapsed();
    assert_eq!(status, 200, "{hinted}");
    assert!(is_cmaf_chunk(&bytes));
    assert!(
        waited > Duration::from_millis(20),
        "held, not answered at once: {waited:?}"
    );
    // A part far beyond the hint is not held.
    let number: u64 = hinted
        .trim_start_matches("part")
        .trim_end_matches(".m4s")
        .parse()
        .expect("part number");
    let asked = Instant::now();
    let (status, _, _) = get(&url.replace("playlist.m3u8", &format!("part{}.m4s", number + 50)));
    assert_eq!(status, 404);
    assert!(asked.elapsed() < Duration::from_millis(500));
}

#[test]
fn bad_directives_are_400_and_a_stalled_publisher_gives_503() {
    let server = Server::start();
    let mut publisher = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 60);
    let url = media_url(&server, "demo", "source");
    let text = wait_for(&url, READY, |t| t.contains("#EXT-X-PRELOAD-HINT"));
    let (msn, part) = preload_hint(&text);
    for query in [
        "_HLS_part=1".to_string(),
        format!("_HLS_msn={}", msn + 3),
        format!("_HLS_msn={msn}&_HLS_part={}", part + 100),
        "_HLS_msn=abc".to_string(),
        "_HLS_skip=maybe".to_string(),
    ] {
        let (status, headers, body) = get(&format!("{url}?{query}"));
        assert_eq!(status, 400, "{query}: {}", String::from_utf8_lossy(&body));
        assert_eq!(headers["content-type"], "application/json");
    }

    // Freeze the publisher (connection open, no data): a held request times out with 503
    // after 3 target durations.
    let pid = publisher.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let asked = Instant::now();
    let (status, _, body) = get(&format!("{url}?_HLS_msn={}", msn + 2));
    let waited = asked.elapsed();
    let _ = std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status();
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(waited >= Duration::from_secs(5), "held {waited:?}");
    publisher.kill();

    // After the end, directives are ignored: the answer is immediate.
    let ended = wait_for(&url, Duration::from_secs(15), |t| {
        t.contains("#EXT-X-ENDLIST")
    });
    assert!(!ended.contains("#EXT-X-PRELOAD-HINT"));
    let asked = Instant::now();
    let (status, _, _) = get(&format!("{url}?_HLS_msn={}&_HLS_part=0", msn + 2));
    assert_eq!(status, 200);
    assert!(asked.elapsed() < Duration::from_millis(500));
}

#[test]
fn delta_updates_and_rendition_reports() {
    let server = Server::start();
    let _publisher = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 60);
    let url = media_url(&server, "demo", "source");
    let audio_url = media_url(&server, "demo", "audio");
    // CAN-SKIP-UNTIL is 6 target durations (12 s): wait for more than that.
    let full = wait_for(&url, Duration::from_secs(40), |t| {
        t.matches("#EXTINF").count() >= 8
    });
    assert_eq!(
        attribute(&full, "#EXT-X-SERVER-CONTROL", "CAN-SKIP-UNTIL"),
        "12.000"
    );

    let (status, _, body) = get(&format!("{url}?_HLS_skip=YES"));
    assert_eq!(status, 200);
    let delta = String::from_utf8_lossy(&body).to_string();
    let skipped: u64 = attribute(&delta, "#EXT-X-SKIP", "SKIPPED-SEGMENTS")
        .parse()
        .unwrap();
    assert!(skipped >= 1, "{delta}");
    let media_sequence =
        |t: &str| -> u64 { tag_value(t, "#EXT-X-MEDIA-SEQUENCE:").parse().unwrap() };
    assert_eq!(media_sequence(&delta), media_sequence(&full));
    let first_listed = delta
        .lines()
        .find(|l| l.starts_with("seg"))
        .expect("segments after the skip");
    assert_eq!(
        first_listed,
        format!("seg{}.m4s", media_sequence(&delta) + skipped),
        "{delta}"
    );
    assert!(
        delta.contains("#EXT-X-MAP:URI=\"init.mp4\""),
        "the map stays in force:\n{delta}"
    );
    // The segments kept span at least CAN-SKIP-UNTIL.
    let kept: f64 = delta
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').parse::<f64>().unwrap())
        .sum();
    assert!(kept >= 10.0, "{kept} s kept\n{delta}");

    // Rendition reports name the other rendition with its current end.
    let report = attribute(&full, "#EXT-X-RENDITION-REPORT", "URI");
    assert_eq!(report, "../audio/playlist.m3u8");
    let reported: u64 = attribute(&full, "#EXT-X-RENDITION-REPORT", "LAST-MSN")
        .parse()
        .unwrap();
    let audio = String::from_utf8_lossy(&get(&audio_url).2).to_string();
    let (audio_next, _) = preload_hint(&audio);
    assert!(
        reported + 2 >= audio_next && reported <= audio_next,
        "{reported} vs {audio_next}"
    );

    // A complete segment is served as its parts back to back, with its exact Content-Length.
    let latest = String::from_utf8_lossy(&get(&url).2).to_string();
    let mut parts = Vec::new();
    let mut last = None;
    for line in latest.lines() {
        if line.starts_with("#EXT-X-PART:") {
            parts.push(attribute(line, "#EXT-X-PART", "URI").to_string());
        } else if line.starts_with("seg") {
            last = Some((line.to_string(), std::mem::take(&mut parts)));
        }
    }
    let (segment, parts) = last.expect("a complete segment");
    assert!(!parts.is_empty(), "its parts are listed:\n{latest}");
    let (status, headers, body) = get(&url.replace("playlist.m3u8", &segment));
    assert_eq!(status, 200);
    assert_eq!(
        headers
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok()),
        Some(body.len())
    );
    let joined: Vec<u8> = parts
        .iter()
        .flat_map(|part| {
            let (status, _, bytes) = get(&url.replace("playlist.m3u8", part));
            assert_eq!(status, 200, "{part}");
            bytes
        })
        .collect();
    assert_eq!(joined, body, "{segment} = {parts:?}");
}
