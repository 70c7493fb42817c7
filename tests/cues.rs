//! Timed product cues end to end: a real server fed by ffmpeg over RTMP; cues posted through the
//! API show up as EXT-X-DATERANGE in the next playlist update and as ID3-in-emsg in every
//! rendition's segments (read back with the small box parser below, independent of the
//! server's), segments still decode, bad requests get the documented errors and store nothing,
//! the replay playlist keeps every cue, a restart loses none, and rundowns fire on the media
//! timeline.

mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::bmff::{tfdt, timescale, top_boxes};
use common::{Publisher, Server, call, get, media_url, preload_hint, wait_for};

const TOKEN: &str = "dev-admin-token";
/// One frame of the 30 fps test publisher, seconds.
const FRAME_S: f64 = 1.0 / 30.0;

/// The request of issue #5, verbatim.
const ISSUE_BODY: &str = r#"{"kind": "product", "at": "now", "duration_s": 15,
 "product": {"id": "sku-123", "title": "Rose perfume 50 ml", "price": "49.00", "currency": "USD",
             "image_url": "https://shop.example/i/sku-123.jpg",
             "cta": {"label": "Buy now", "url": "https://shop.example/p/sku-123"}},
 "data": {}}"#;

/// A parsed emsg v1.
#[derive(Debug)]
struct Emsg {
    timescale: u64,
    presentation_time: u64,
    duration: u32,
    scheme: String,
    /// TXXX value of the ID3 tag.
    txxx: String,
}

fn parse_emsg(b: &[u8]) -> Emsg {
    assert_eq!(b[8], 1, "emsg version 1");
    let u32_at = |at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap());
    let rest = &b[32..];
    let nul = rest.iter().position(|&x| x == 0).unwrap();
    let scheme = String::from_utf8(rest[..nul].to_vec()).unwrap();
    let rest = &rest[nul + 1..];
    let nul = rest.iter().position(|&x| x == 0).unwrap();
    let id3 = &rest[nul + 1..];
    assert_eq!(&id3[..5], b"ID3\x04\x00", "ID3v2.4 header");
    let syncsafe = |s: &[u8]| s.iter().fold(0usize, |a, &x| (a << 7) | x as usize);
    let tag_size = syncsafe(&id3[6..10]);
    assert_eq!(tag_size + 10, id3.len(), "the tag fills message_data");
    assert_eq!(&id3[10..14], b"TXXX");
    let frame_size = syncsafe(&id3[14..18]);
    let frame = &id3[20..20 + frame_size];
    assert_eq!(frame[0], 3, "UTF-8");
    let nul = frame[1..].iter().position(|&x| x == 0).unwrap() + 1;
    assert_eq!(&frame[1..nul], b"com.cuecast.cue");
    Emsg {
        timescale: u64::from(u32_at(12)),
        presentation_time: u64::from_be_bytes(b[16..24].try_into().unwrap()),
        duration: u32_at(24),
        scheme,
        txxx: String::from_utf8(frame[nul + 1..].to_vec()).unwrap(),
    }
}

/// Every emsg of a segment, with the tfdt of the moof it precedes.
fn emsgs(segment: &[u8]) -> Vec<(Emsg, u64)> {
    let boxes = top_boxes(segment);
    let mut out = Vec::new();
    for (index, (kind, bytes)) in boxes.iter().enumerate() {
        if kind == "emsg" {
            let moof = boxes[index..]
                .iter()
                .find(|(k, _)| k == "moof")
                .expect("a moof follows the emsg");
            out.push((parse_emsg(bytes), tfdt(moof.1)));
        }
    }
    out
}

// ---- playlist helpers ----

/// The EXT-X-DATERANGE line with ID `id`.
fn daterange<'a>(playlist: &'a str, id: &str) -> Option<&'a str> {
    playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-DATERANGE:") && l.contains(&format!("ID=\"{id}\"")))
}

fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!(",{name}="))? + name.len() + 2;
    let rest = &line[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        quoted.split('"').next()
    } else {
        rest.split(',').next()
    }
}

fn date(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

/// (PDT, URI) of every complete segment.
fn segments(playlist: &str) -> Vec<(DateTime<Utc>, String)> {
    let mut pdt = None;
    let mut out = Vec::new();
    for line in playlist.lines() {
        if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            pdt = Some(date(v));
        } else if !line.starts_with('#')
            && !line.is_empty()
            && let Some(p) = pdt.take()
        {
            out.push((p, line.to_string()));
        }
    }
    out
}

fn base(playlist_url: &str) -> &str {
    playlist_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .expect("url has a path")
}

/// Media time (s) of the end of the last published part: last segment's tfdt-based start is
/// not needed — the sum of all EXTINF/PART durations from a segment with known media time.
fn fetch(url: &str) -> Vec<u8> {
    let (status, _, body) = get(url);
    assert_eq!(status, 200, "GET {url}");
    body
}

/// Waits until the segment holding media time `t` (by PDT mapping) is complete, returns
/// (PDT, bytes) of the segments from it on.
fn segment_with(playlist_url: &str, start: DateTime<Utc>) -> (DateTime<Utc>, Vec<u8>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = String::from_utf8(get(playlist_url).2).unwrap();
        let segs = segments(&text);
        // The cue is in the segment whose PDT is the last one ≤ start, once a later one exists.
        if let Some(index) = segs.iter().rposition(|(pdt, _)| *pdt <= start)
            && index + 1 < segs.len()
        {
            let (pdt, uri) = &segs[index];
            return (*pdt, fetch(&format!("{}/{uri}", base(playlist_url))));
        }
        assert!(
            Instant::now() < deadline,
            "no complete segment holds {start}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ms(d: chrono::Duration) -> f64 {
    d.num_microseconds().unwrap() as f64 / 1000.0
}

/// Checks the emsg of `cue_id` in the segment holding `start` of rendition `playlist_url`:
/// exact presentation time on the track's timescale, ID3 payload, and that it still decodes.
fn check_in_band(
    playlist_url: &str,
    cue_id: &str,
    start: DateTime<Utc>,
    media_time_s: f64,
    dir: &std::path::Path,
) {
    let init = fetch(&format!("{}/init.mp4", base(playlist_url)));
    let ts = timescale(&init);
    let (pdt, segment) = segment_with(playlist_url, start);
    let found: Vec<_> = emsgs(&segment)
        .into_iter()
        .filter(|(e, _)| e.txxx.contains(cue_id))
        .collect();
    assert_eq!(found.len(), 1, "one emsg for the cue in {playlist_url}");
    let (emsg, moof_tfdt) = &found[0];
    assert_eq!(emsg.scheme, "https://aomedia.org/emsg/ID3");
    assert_eq!(emsg.timescale, ts, "emsg timescale = mdhd timescale");
    let expected = (media_time_s * ts as f64).round() as u64;
    assert!(
        emsg.presentation_time.abs_diff(expected) <= 1,
        "presentation_time {} vs media time {media_time_s} s × {ts} = {expected}",
        emsg.presentation_time
    );
    // The segment's tfdt and PDT map the same instant: the emsg time lands on the cue's date.
    let seg_tfdt = tfdt(
        top_boxes(&segment)
            .iter()
            .find(|(k, _)| k == "moof")
            .map(|(_, b)| *b)
            .expect("moof"),
    );
    let emsg_date = pdt
        + chrono::Duration::microseconds(
            ((emsg.presentation_time as f64 - seg_tfdt as f64) / ts as f64 * 1e6) as i64,
        );
    assert!(
        ms(emsg_date - start).abs() <= FRAME_S * 1000.0 + 1.0,
        "emsg at {emsg_date}, DATERANGE START-DATE {start}"
    );
    // It rides in the chunk that holds its start (or a later one if that one was out).
    assert!(
        *moof_tfdt <= emsg.presentation_time + ts,
        "emsg before a moof near its time"
    );
    assert_eq!(
        emsg.duration,
        (15 * ts) as u32,
        "15 s on the track timescale"
    );
    let payload: serde_json::Value = serde_json::from_str(&emsg.txxx).expect("cue JSON");
    assert_eq!(payload["id"], cue_id);
    assert_eq!(payload["kind"], "product");
    assert_eq!(payload["product"]["id"], "sku-123");
    assert_eq!(payload["product"]["cta"]["label"], "Buy now");
    // Still decodes: ffprobe reads it and ffmpeg decodes every frame without error.
    let probe = common::ffprobe(&[init.as_slice(), &segment].concat(), dir);
    assert!(probe.duration > 0.5, "{probe:?}");
    let path = dir.join(format!("decode-{cue_id}-{}.mp4", ts));
    std::fs::write(&path, [init.as_slice(), &segment].concat()).unwrap();
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "decode errors: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A cheap transcoded rung (below the test publisher's 640x360).
const RUNG: &str = r#"[{name="180p", width=320, height=180, video_bitrate_kbps=300, max_fps=30, profile="main", preset="ultrafast"}]"#;

#[test]
fn posted_cue_reaches_playlists_and_every_rendition_and_survives_end_and_restart() {
    // One small transcoded rung, so carriage is checked in a ladder rendition too.
    let mut server = Server::start_with(&[
        ("CUECAST_CUES_RATE_PER_S", "0.2"),
        ("CUECAST_MEDIA_LADDER", RUNG),
    ]);
    let mut publisher = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 25);
    let video = media_url(&server, "demo", "source");
    let audio = media_url(&server, "demo", "audio");
    let rung = media_url(&server, "demo", "180p");
    let cues_url = server.url("/api/streams/demo/cues");
    // Wait for a few segments so the PDT mapping is established.
    wait_for(&video, Duration::from_secs(30), |t| segments(t).len() >= 2);

    let before = String::from_utf8(get(&video).2).unwrap();
    let (msn, part) = preload_hint(&before);
    let (status, _, cue) = call("POST", &cues_url, Some(TOKEN), Some(ISSUE_BODY));
    assert_eq!(status, 201, "{cue}");
    let id = cue["id"].as_str().expect("id").to_string();
    let media_time_s = cue["media_time_s"].as_f64().expect("media_time_s");
    let start_date = date(cue["start_date"].as_str().expect("start_date"));

    // In the next playlist update: the blocking reload of the next part carries it.
    let next =
        String::from_utf8(get(&format!("{video}?_HLS_msn={msn}&_HLS_part={part}")).2).unwrap();
    let line = daterange(&next, &id).unwrap_or_else(|| panic!("no DATERANGE for {id}:\n{next}"));
    assert_eq!(attr(line, "CLASS"), Some("com.cuecast.product"));
    assert_eq!(date(attr(line, "START-DATE").unwrap()), start_date);
    assert_eq!(attr(line, "PLANNED-DURATION"), Some("15.000"));
    assert_eq!(attr(line, "X-PRODUCT-ID"), Some("sku-123"));
    assert_eq!(attr(line, "X-TITLE"), Some("Rose perfume 50 ml"));
    assert_eq!(attr(line, "X-PRICE"), Some("49.00"));
    assert_eq!(attr(line, "X-CURRENCY"), Some("USD"));
    assert_eq!(
        attr(line, "X-CTA-URL"),
        Some("https://shop.example/p/sku-123")
    );
    let hex = attr(line, "X-DATA").unwrap().strip_prefix("0x").unwrap();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let data: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(data["id"], id.as_str());
    assert!(next.contains("CAN-SKIP-DATERANGES=YES"));
    // The audio rendition lists it too.
    assert!(daterange(&String::from_utf8(get(&audio).2).unwrap(), &id).is_some());

    // START-DATE is the PDT of the returned media time, and that media time is the live edge:
    // the frame latest at POST is at or after the end of what was published before it.
    let init = fetch(&format!("{}/init.mp4", base(&video)));
    let ts = timescale(&init) as f64;
    let (seg_pdt, seg_uri) = segments(&before).last().cloned().expect("a segment");
    let seg = fetch(&format!("{}/{seg_uri}", base(&video)));
    let seg_start_s = tfdt(
        top_boxes(&seg)
            .iter()
            .find(|(k, _)| k == "moof")
            .map(|(_, b)| *b)
            .unwrap(),
    ) as f64
        / ts;
    let mapped =
        seg_pdt + chrono::Duration::microseconds(((media_time_s - seg_start_s) * 1e6) as i64);
    assert!(
        ms(start_date - mapped).abs() <= FRAME_S * 1000.0,
        "START-DATE {start_date} vs PDT mapping of {media_time_s} s: {mapped}"
    );
    assert!(
        media_time_s >= seg_start_s,
        "now is after a published segment"
    );

    // In-band in every rendition.
    let dir = tempfile::tempdir().unwrap();
    check_in_band(&video, &id, start_date, media_time_s, dir.path());
    check_in_band(&audio, &id, start_date, media_time_s, dir.path());
    check_in_band(&rung, &id, start_date, media_time_s, dir.path());
    assert!(daterange(&String::from_utf8(get(&rung).2).unwrap(), &id).is_some());

    // Bad inputs: the documented errors, nothing stored.
    let count = |server: &Server| {
        let (status, _, list) = call(
            "GET",
            &server.url("/api/streams/demo/cues"),
            Some(TOKEN),
            None,
        );
        assert_eq!(status, 200);
        list["cues"].as_array().expect("cues").len()
    };
    assert_eq!(count(&server), 1);
    let (status, headers, _) = call("POST", &cues_url, None, Some(ISSUE_BODY));
    assert_eq!(status, 401);
    assert!(headers.contains_key("www-authenticate"));
    assert_eq!(
        call("POST", &cues_url, Some("wrong-token"), Some(ISSUE_BODY)).0,
        401
    );
    assert_eq!(
        call(
            "POST",
            &server.url("/api/streams/nope/cues"),
            Some(TOKEN),
            Some(ISSUE_BODY)
        )
        .0,
        404
    );
    let (status, _, body) = call(
        "POST",
        &server.url("/api/streams/second/cues"),
        Some(TOKEN),
        Some(ISSUE_BODY),
    );
    assert_eq!(status, 404, "not live: {body}");
    let (status, _, body) = call("POST", &cues_url, Some(TOKEN), Some("{\"kind\": "));
    assert_eq!(status, 400);
    assert!(body["error"].is_string(), "{body}");
    let bad_price = ISSUE_BODY.replace("\"49.00\"", "49");
    let (status, _, body) = call("POST", &cues_url, Some(TOKEN), Some(&bad_price));
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("product.price")),
        "{body}"
    );
    let bad_url = ISSUE_BODY.replace("https://shop.example/p/sku-123", "ftp://x");
    let (status, _, body) = call("POST", &cues_url, Some(TOKEN), Some(&bad_url));
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("product.cta.url")),
        "{body}"
    );
    let oversize = ISSUE_BODY.replace(
        "\"data\": {}",
        &format!("\"data\": {{\"t\": \"{}\"}}", "x".repeat(1200)),
    );
    let (status, _, body) = call("POST", &cues_url, Some(TOKEN), Some(&oversize));
    assert_eq!(status, 413, "{body}");
    assert_eq!(count(&server), 1, "no error stored anything");
    // The other `at` forms: a media time, and a wall-clock time mapped through PDT.
    let (status, _, at_media) = call(
        "POST",
        &cues_url,
        Some(TOKEN),
        Some(r#"{"kind": "clear", "at": {"media_time_s": 1.5}}"#),
    );
    assert_eq!(status, 201, "{at_media}");
    assert_eq!(at_media["media_time_s"].as_f64(), Some(1.5));
    let wall = format!(
        r#"{{"kind": "pin", "at": {{"wall_clock": "{}"}}, "end_on_next": true}}"#,
        cue["start_date"].as_str().unwrap()
    );
    let (status, _, at_wall) = call("POST", &cues_url, Some(TOKEN), Some(&wall));
    assert_eq!(status, 201, "{at_wall}");
    let wall_media = at_wall["media_time_s"].as_f64().unwrap();
    assert!(
        (wall_media - media_time_s).abs() <= 0.001,
        "wall clock {} → {wall_media} s, expected {media_time_s} s",
        cue["start_date"]
    );
    assert_eq!(at_wall["start_date"], cue["start_date"]);
    let (status, _, body) = call(
        "POST",
        &cues_url,
        Some(TOKEN),
        Some(r#"{"kind": "pin", "at": {"wall_clock": "2001-01-01T00:00:00Z"}}"#),
    );
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("at.wall_clock")),
        "{body}"
    );
    assert_eq!(count(&server), 3);
    // Rate: one per 5 s with a burst of 5 — a quick series runs into 429 with Retry-After.
    let mut created = 0;
    let mut limited = None;
    for _ in 0..12 {
        let (status, headers, _) =
            call("POST", &cues_url, Some(TOKEN), Some(r#"{"kind":"clear"}"#));
        match status {
            201 => created += 1,
            429 => {
                limited = Some(headers);
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let headers = limited.expect("429 within 12 quick requests");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(
        count(&server),
        3 + created,
        "rate-limited requests stored nothing"
    );

    // Ending it short: END-DATE = now in the playlists.
    let (status, _, ended) = call("DELETE", &format!("{cues_url}/{id}"), Some(TOKEN), None);
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["ended_early"], true);
    let end_date = date(ended["end_date"].as_str().unwrap());
    let text = wait_for(&video, Duration::from_secs(10), |t| {
        daterange(t, &id).is_some_and(|l| attr(l, "END-DATE").is_some())
    });
    let line = daterange(&text, &id).unwrap();
    assert_eq!(date(attr(line, "END-DATE").unwrap()), end_date);
    assert!(attr(line, "DURATION").is_some());
    assert_eq!(
        call("DELETE", &format!("{cues_url}/nope"), Some(TOKEN), None).0,
        404
    );

    // Replay: after the publisher ends, the ENDLIST playlist keeps the DATERANGE and the
    // segment keeps its emsg.
    publisher.wait(Duration::from_secs(60));
    let ended_playlist = wait_for(&video, Duration::from_secs(20), |t| {
        t.contains("#EXT-X-ENDLIST")
    });
    assert!(
        daterange(&ended_playlist, &id).is_some(),
        "{ended_playlist}"
    );
    let (_, segment) = segment_with(&video, start_date);
    assert_eq!(
        emsgs(&segment)
            .iter()
            .filter(|(e, _)| e.txxx.contains(&id))
            .count(),
        1
    );

    // Restart on the same data directory: every cue is still listed.
    let data_dir = server.dir.path().join("data");
    server.terminate();
    server
        .wait_exit(Duration::from_secs(20))
        .expect("server exits");
    let restarted = Server::start_with(&[("CUECAST_SERVER_DATA_DIR", data_dir.to_str().unwrap())]);
    let (status, _, list) = call(
        "GET",
        &restarted.url("/api/streams/demo/cues"),
        Some(TOKEN),
        None,
    );
    assert_eq!(status, 200);
    let listed = list["cues"].as_array().unwrap();
    assert_eq!(listed.len(), 3 + created);
    let first = listed
        .iter()
        .find(|c| c["id"] == id.as_str())
        .expect("the cue");
    assert_eq!(first["media_time_s"].as_f64(), Some(media_time_s));
    assert_eq!(first["start_date"], cue["start_date"]);
    assert_eq!(first["product"]["id"], "sku-123");
    assert_eq!(first["ended_early"], true);
}

#[test]
fn rundown_fires_on_the_media_timeline_and_becomes_a_cue() {
    let server = Server::start();
    let rundown_url = server.url("/api/streams/second/rundown");
    let body = r#"{"cues": [
        {"offset_s": 4.0, "kind": "offer", "duration_s": 10,
         "product": {"id": "sku-9", "title": "Lip gloss", "price": "12.50", "currency": "EUR"}},
        {"offset_s": 600, "kind": "pin", "end_on_next": true, "data": {"text": "later"}}
    ]}"#;
    // Scheduled before the stream is live.
    let (status, _, scheduled) = call("PUT", &rundown_url, Some(TOKEN), Some(body));
    assert_eq!(status, 200, "{scheduled}");
    let items = scheduled["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let id = items[0]["id"].as_str().unwrap().to_string();
    // Bad items name the field.
    let (status, _, err) = call(
        "PUT",
        &rundown_url,
        Some(TOKEN),
        Some(r#"{"cues": [{"offset_s": 1, "kind": "offer"}]}"#),
    );
    assert_eq!(
        (status, err["field"].as_str()),
        (400, Some("cues[0].product")),
        "{err}"
    );
    let (status, _, err) = call(
        "POST",
        &rundown_url,
        Some(TOKEN),
        Some(r#"{"cues": [{"kind": "pin"}]}"#),
    );
    assert_eq!(
        (status, err["field"].as_str()),
        (400, Some("cues[0].offset_s")),
        "{err}"
    );
    assert_eq!(
        call("GET", &rundown_url, Some(TOKEN), None).2["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let _publisher = Publisher::ffmpeg(&server.rtmp_url("second-key"), 20);
    let video = media_url(&server, "second", "source");
    let text = wait_for(&video, Duration::from_secs(30), |t| {
        daterange(t, &id).is_some()
    });
    let line = daterange(&text, &id).unwrap();
    assert_eq!(attr(line, "CLASS"), Some("com.cuecast.offer"));
    assert_eq!(attr(line, "X-CURRENCY"), Some("EUR"));
    // START-DATE = PDT of media time 4.0 s: map through a segment's tfdt and PDT.
    let start = date(attr(line, "START-DATE").unwrap());
    let init = fetch(&format!("{}/init.mp4", base(&video)));
    let ts = timescale(&init) as f64;
    let (pdt, segment) = segment_with(&video, start);
    let seg_start_s = tfdt(
        top_boxes(&segment)
            .iter()
            .find(|(k, _)| k == "moof")
            .map(|(_, b)| *b)
            .unwrap(),
    ) as f64
        / ts;
    let mapped = pdt + chrono::Duration::microseconds(((4.0 - seg_start_s) * 1e6) as i64);
    assert!(
        ms(start - mapped).abs() <= 1.5,
        "START-DATE {start} vs {mapped}"
    );
    let in_band: Vec<_> = emsgs(&segment)
        .into_iter()
        .filter(|(e, _)| e.txxx.contains(&id))
        .collect();
    assert_eq!(in_band.len(), 1);
    assert_eq!(in_band[0].0.presentation_time, (4.0 * ts) as u64);

    // Now a regular cue; the unfired item stays scheduled.
    let (_, _, list) = call(
        "GET",
        &server.url("/api/streams/second/cues"),
        Some(TOKEN),
        None,
    );
    let fired = &list["cues"].as_array().unwrap()[0];
    assert_eq!(fired["id"], id.as_str());
    assert_eq!(fired["source"], "rundown");
    assert_eq!(fired["media_time_s"].as_f64(), Some(4.0));
    let left = call("GET", &rundown_url, Some(TOKEN), None).2;
    assert_eq!(left["items"].as_array().unwrap().len(), 1, "{left}");
    // An offset already past on the live session is refused.
    let (status, _, err) = call(
        "POST",
        &rundown_url,
        Some(TOKEN),
        Some(r#"{"cues": [{"offset_s": 0.5, "kind": "clear"}]}"#),
    );
    assert_eq!(
        (status, err["field"].as_str()),
        (400, Some("cues[0].offset_s")),
        "{err}"
    );
}
