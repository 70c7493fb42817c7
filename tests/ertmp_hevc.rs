//! End to end: an Enhanced RTMP publisher (as OBS 30+ sends HEVC) pushes `hvc1` into a real
//! `cuecast serve` process; the multivariant playlist names HEVC and ffprobe decodes the CMAF.
//!
//! The publisher speaks RTMP itself with the crate's own chunk writer and AMF0 encoder:
//! handshake, `connect` with `fourCcList`, `createStream`, `publish`, then E-RTMP video tags
//! (`SequenceStart` with the hvcC, `CodedFrames` / `CodedFramesX`) in real time. The HEVC comes
//! from libx265 (GStreamer `x265enc`, 2 s GOP, no B-frames) via `h265parse` as `hvc1` access units.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use cuecast::ingest::rtmp::amf0::{Object, Value};
use cuecast::ingest::rtmp::chunk::{ChunkReader, ChunkWriter};
use cuecast::ingest::rtmp::message::{Command, Message};
use cuecast::media::codec::{AV1_OBU_SEQUENCE_HEADER, next_obu};
use gst::prelude::*;

use common::{Server, ffprobe, get, media_url, parse_master, parse_media, wait_for};

const READY: Duration = Duration::from_secs(20);
/// RTMP handshake C1/S1/S2 size.
const HANDSHAKE_SIZE: usize = 1536;
/// Seconds of video published.
const SECONDS: u32 = 8;
const WIDTH: u32 = 640;
const HEIGHT: u32 = 360;

/// One coded access unit: decode/presentation time in ms, keyframe flag, length-prefixed NALs.
struct AccessUnit {
    dts_ms: u32,
    cts_ms: i32,
    keyframe: bool,
    data: Bytes,
}

/// HEVC from x265: the hvcC and the access units of `SECONDS` at 30 fps.
fn encode_hevc() -> (Bytes, Vec<AccessUnit>) {
    let (hvcc, units) = encode(&format!(
        "videotestsrc num-buffers={frames} \
         ! video/x-raw,format=I420,width={WIDTH},height={HEIGHT},framerate=30/1 \
         ! x265enc key-int-max=60 speed-preset=ultrafast bitrate=800 option-string=bframes=0 \
         ! h265parse ! video/x-h265,stream-format=hvc1,alignment=au \
         ! appsink name=out sync=false",
        frames = SECONDS * 30
    ));
    (hvcc.expect("hvcC"), units)
}

/// AV1 from libaom (`av1enc`, 2 s GOP): an av1C built around the first temporal unit's
/// sequence header OBU (av1parse in GStreamer 1.22 writes no codec_data), and the temporal
/// units of `SECONDS` at 30 fps.
fn encode_av1() -> (Bytes, Vec<AccessUnit>) {
    let (_, units) = encode(&format!(
        "videotestsrc num-buffers={frames} \
         ! video/x-raw,format=I420,width={WIDTH},height={HEIGHT},framerate=30/1 \
         ! av1enc usage-profile=realtime cpu-used=9 keyframe-max-dist=60 target-bitrate=600 \
         ! av1parse ! video/x-av1,stream-format=obu-stream,alignment=tu \
         ! appsink name=out sync=false",
        frames = SECONDS * 30
    ));
    let mut obus = &units[0].data[..];
    let mut av1c = vec![0x81, 0x08, 0x0c, 0x00];
    while let Some((kind, _, rest)) = next_obu(obus).expect("OBUs") {
        if kind == AV1_OBU_SEQUENCE_HEADER {
            av1c.extend_from_slice(&obus[..obus.len() - rest.len()]);
            break;
        }
        obus = rest;
    }
    assert!(
        av1c.len() > 4,
        "a sequence header OBU in the first temporal unit"
    );
    (Bytes::from(av1c), units)
}

/// Runs an encoder pipeline ending in appsink `out`: its caps' codec_data (if any) and the
/// access units with timestamps from 0.
fn encode(description: &str) -> (Option<Bytes>, Vec<AccessUnit>) {
    cuecast::media::init().expect("gstreamer");
    let pipeline = gst::parse::launch(description)
        .expect("encoder pipeline")
        .downcast::<gst::Pipeline>()
        .expect("pipeline");
    let sink = pipeline
        .by_name("out")
        .expect("appsink")
        .downcast::<gst_app::AppSink>()
        .expect("appsink");
    pipeline.set_state(gst::State::Playing).expect("playing");
    let mut codec_data = None;
    let mut units = Vec::new();
    // x265enc's timestamps start at 1000 h: publish from 0 like an encoder would.
    let mut first_dts: Option<u64> = None;
    while let Ok(sample) = sink.pull_sample() {
        if units.is_empty() {
            codec_data = sample
                .caps()
                .and_then(|caps| caps.structure(0))
                .and_then(|s| s.get::<gst::Buffer>("codec_data").ok())
                .map(|data| Bytes::copy_from_slice(&data.map_readable().expect("map")));
        }
        let buffer = sample.buffer().expect("buffer");
        let pts = buffer.pts().expect("pts").mseconds();
        let dts = buffer
            .dts()
            .unwrap_or(buffer.pts().expect("pts"))
            .mseconds();
        let origin = *first_dts.get_or_insert(dts);
        units.push(AccessUnit {
            dts_ms: (dts - origin) as u32,
            cts_ms: (pts as i64 - dts as i64) as i32,
            keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
            data: Bytes::copy_from_slice(&buffer.map_readable().expect("map")),
        });
    }
    pipeline.set_state(gst::State::Null).expect("null");
    (codec_data, units)
}

/// E-RTMP video tag: `IsExHeader | FrameType << 4 | PacketType`, FourCC, body.
fn ex_video_tag(fourcc: &[u8; 4], keyframe: bool, packet_type: u8, body: &[&[u8]]) -> Vec<u8> {
    let frame_type: u8 = if keyframe { 1 } else { 2 };
    let mut tag = vec![0x80 | (frame_type << 4) | packet_type];
    tag.extend_from_slice(fourcc);
    for part in body {
        tag.extend_from_slice(part);
    }
    tag
}

/// A minimal RTMP publisher over a blocking socket.
struct Publisher {
    socket: TcpStream,
    writer: ChunkWriter,
    reader: ChunkReader,
    input: BytesMut,
}

impl Publisher {
    fn connect(server: &Server) -> Publisher {
        let mut socket = server.rtmp_connect();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        // C0 C1, read S0 S1 S2, answer C2 (echo of S1).
        let mut c0c1 = vec![3u8];
        c0c1.extend((0..HANDSHAKE_SIZE).map(|i| (i * 13) as u8));
        socket.write_all(&c0c1).expect("C0C1");
        let mut s0s1s2 = vec![0u8; 1 + 2 * HANDSHAKE_SIZE];
        socket.read_exact(&mut s0s1s2).expect("S0S1S2");
        assert_eq!(s0s1s2[0], 3);
        socket.write_all(&s0s1s2[1..=HANDSHAKE_SIZE]).expect("C2");
        Publisher {
            socket,
            writer: ChunkWriter::new(),
            reader: ChunkReader::new(1 << 20),
            input: BytesMut::new(),
        }
    }

    fn send(&mut self, csid: u32, timestamp: u32, stream_id: u32, message: Message) {
        let (type_id, payload) = message.encode();
        let mut out = BytesMut::new();
        self.writer
            .write(&mut out, csid, timestamp, type_id, stream_id, &payload);
        self.socket.write_all(&out).expect("send");
    }

    fn command(&mut self, stream_id: u32, name: &str, txn: f64, object: Value, args: Vec<Value>) {
        let csid = if stream_id == 0 { 3 } else { 8 };
        self.send(
            csid,
            0,
            stream_id,
            Message::Command(Command {
                name: name.into(),
                transaction_id: txn,
                command_object: object,
                arguments: args,
            }),
        );
    }

    /// Reads messages until a command `accept` likes.
    fn wait_command(&mut self, accept: impl Fn(&Command) -> bool) -> Command {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            while let Some(raw) = self.reader.read_message(&mut self.input).expect("chunks") {
                match Message::decode(raw.type_id, raw.payload).expect("message") {
                    Message::SetChunkSize(size) => {
                        self.reader.set_chunk_size(size).expect("chunk size")
                    }
                    Message::Command(c) if accept(&c) => return c,
                    _ => {}
                }
            }
            assert!(Instant::now() < deadline, "no expected command from server");
            let mut buf = [0u8; 8192];
            let n = self.socket.read(&mut buf).expect("read");
            assert!(n > 0, "server closed the connection");
            self.input.extend_from_slice(&buf[..n]);
        }
    }
}

/// Handshake, E-RTMP connect, createStream, publish; returns the publishing stream id.
fn start_publish(p: &mut Publisher, port: u16) -> u32 {
    p.send(2, 0, 0, Message::SetChunkSize(65_536));
    p.writer.set_chunk_size(65_536);
    let connect = Object::new()
        .with("app", "live")
        .with("type", "nonprivate")
        .with("flashVer", "FMLE/3.0 (compatible; FMSc/1.0)")
        .with("tcUrl", format!("rtmp://127.0.0.1:{port}/live"))
        .with(
            "fourCcList",
            Value::StrictArray(vec!["av01".into(), "vp09".into(), "hvc1".into()]),
        );
    p.command(0, "connect", 1.0, connect.into(), vec![]);
    let result = p.wait_command(|c| c.name == "_result" && c.transaction_id == 1.0);
    assert_eq!(result.status_code(), Some("NetConnection.Connect.Success"));
    let fourccs = result
        .command_object
        .as_object()
        .and_then(|o| o.get("fourCcList"))
        .cloned();
    assert_eq!(
        fourccs,
        Some(Value::StrictArray(vec![
            "hvc1".into(),
            "avc1".into(),
            "av01".into()
        ])),
        "E-RTMP server answers with its FourCCs"
    );

    p.command(0, "createStream", 2.0, Value::Null, vec![]);
    let created = p.wait_command(|c| c.name == "_result" && c.transaction_id == 2.0);
    let stream_id = created
        .arguments
        .first()
        .and_then(Value::as_number)
        .expect("stream id") as u32;

    p.command(
        stream_id,
        "publish",
        3.0,
        Value::Null,
        vec!["demo-key".into(), "live".into()],
    );
    let status = p.wait_command(|c| c.name == "onStatus");
    assert_eq!(status.status_code(), Some("NetStream.Publish.Start"));
    stream_id
}

/// Publishes `SECONDS` of x265 HEVC as E-RTMP to `server`'s `demo` stream in real time, on a
/// thread (joined for the connection once the last frame is sent).
fn publish_hevc(server: &Server) -> std::thread::JoinHandle<Publisher> {
    let (hvcc, units) = encode_hevc();
    publish(server, b"hvc1", hvcc, units)
}

/// Publishes `config` (SequenceStart) and `units` as E-RTMP `fourcc` video in real time.
fn publish(
    server: &Server,
    fourcc: &'static [u8; 4],
    config: Bytes,
    units: Vec<AccessUnit>,
) -> std::thread::JoinHandle<Publisher> {
    assert!(units.len() >= 200 && units[0].keyframe);
    let mut p = Publisher::connect(server);
    let stream_id = start_publish(&mut p, server.rtmp_port);

    std::thread::spawn(move || {
        // SequenceStart (the hvcC), then keyframes as CodedFrames (with a composition time)
        // and the other frames as CodedFramesX, paced in real time.
        p.send(
            6,
            0,
            stream_id,
            Message::Video(ex_video_tag(fourcc, true, 0, &[&config]).into()),
        );
        let start = Instant::now();
        for unit in &units {
            let due = start + Duration::from_millis(u64::from(unit.dts_ms));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let tag = if fourcc == b"av01" {
                // AV1 CodedFrames: OBUs only, no composition time.
                ex_video_tag(fourcc, unit.keyframe, 1, &[&unit.data])
            } else if unit.keyframe || unit.cts_ms != 0 {
                let cts = unit.cts_ms.to_be_bytes();
                ex_video_tag(fourcc, unit.keyframe, 1, &[&cts[1..], &unit.data])
            } else {
                ex_video_tag(fourcc, false, 3, &[&unit.data])
            };
            p.send(6, unit.dts_ms, stream_id, Message::Video(tag.into()));
        }
        // SequenceEnd, then close the connection.
        let end_ms = units.last().map_or(0, |u| u.dts_ms);
        p.send(
            6,
            end_ms,
            stream_id,
            Message::Video(ex_video_tag(fourcc, true, 2, &[]).into()),
        );
        p
    })
}

#[test]
fn ertmp_hevc_publish_becomes_hevc_hls() {
    let server = Server::start();
    let publisher = publish_hevc(&server);

    let master_text = wait_for(&server.url("/hls/demo/index.m3u8"), READY, |_| true);
    let master = parse_master(&master_text);
    assert_eq!(master.variants.len(), 1, "{master_text}");
    let variant = &master.variants[0];
    let codecs = variant.codecs.clone().unwrap_or_default();
    assert!(
        codecs.starts_with("hvc1.1.6.L") && codecs.ends_with(".90") && !codecs.contains(','),
        "HEVC Main codec string, video only: {codecs}\n{master_text}"
    );
    let resolution = variant.resolution.expect("RESOLUTION");
    assert_eq!((resolution.width, resolution.height), (640, 360));
    assert!(
        master.alternatives.is_empty(),
        "no audio rendition\n{master_text}"
    );

    let video_url = media_url(&server, "demo", "source");
    let text = wait_for(&video_url, READY, |t| t.matches("#EXTINF").count() >= 2);
    let playlist = parse_media(&text);
    for segment in &playlist.segments {
        assert!(
            (segment.duration - 2.0).abs() < 0.05,
            "2 s segments on the 2 s GOP\n{text}"
        );
    }
    let (status, _, init) = get(&video_url.replace("playlist.m3u8", "init.mp4"));
    assert_eq!(status, 200);
    let (status, _, segment) = get(&video_url.replace("playlist.m3u8", &playlist.segments[0].uri));
    assert_eq!(status, 200);
    let mut file = init;
    file.extend_from_slice(&segment);
    let probe = ffprobe(&file, server.dir.path());
    assert_eq!(probe.codec_name, "hevc");
    assert_eq!((probe.width, probe.height), (Some(640), Some(360)));
    assert!(
        (probe.duration - 2.0).abs() < 0.1,
        "segment duration {}",
        probe.duration
    );

    let p = publisher.join().expect("publisher thread");
    drop(p);
    assert!(
        !server.log().contains("Enhanced RTMP"),
        "no E-RTMP errors:\n{}",
        server.log()
    );
}

/// The `240p` rung's first segment decodes as 426x240 H.264.
fn assert_h264_240p_rung(server: &Server) {
    let url = media_url(server, "demo", "240p");
    let text = wait_for(&url, READY, |t| t.matches("#EXTINF").count() >= 2);
    let playlist = parse_media(&text);
    let (_, _, mut file) = get(&url.replace("playlist.m3u8", "init.mp4"));
    let (status, _, segment) = get(&url.replace("playlist.m3u8", &playlist.segments[0].uri));
    assert_eq!(status, 200);
    file.extend_from_slice(&segment);
    let probe = ffprobe(&file, server.dir.path());
    assert_eq!(probe.codec_name, "h264");
    assert_eq!((probe.width, probe.height), (Some(426), Some(240)));
}

/// An HEVC source reaches the transcoding ladder: avdec_h265 decodes it once and the rung is
/// H.264 (`avc1`) at its own size, next to the `hvc1` passthrough.
#[test]
fn ertmp_hevc_source_feeds_the_h264_ladder() {
    let server = Server::start_with(&[(
        "CUECAST_MEDIA_LADDER",
        r#"[{name="240p", width=426, height=240, video_bitrate_kbps=400, max_fps=30, profile="main", preset="ultrafast"}]"#,
    )]);
    let publisher = publish_hevc(&server);
    let master_text = wait_for(&server.url("/hls/demo/index.m3u8"), READY, |t| {
        t.matches("#EXT-X-STREAM-INF").count() == 2
    });
    let master = parse_master(&master_text);
    let codecs: Vec<String> = master
        .variants
        .iter()
        .map(|v| v.codecs.clone().unwrap_or_default())
        .collect();
    assert!(
        codecs.iter().any(|c| c.starts_with("hvc1."))
            && codecs.iter().any(|c| c.starts_with("avc1.")),
        "{master_text}"
    );
    assert_h264_240p_rung(&server);
    drop(publisher.join().expect("publisher thread"));
    assert!(
        server.log().contains("decoder=\"avdec_h265\""),
        "{}",
        server.log()
    );
}

/// An AV1 source (E-RTMP `av01`, as OBS 30+ sends it) is decoded by av1dec and transcoded by
/// the ladder; there is no AV1 passthrough, so the rungs are the video renditions.
#[test]
fn ertmp_av1_source_is_transcoded_by_the_ladder() {
    let (av1c, units) = encode_av1();
    let server = Server::start_with(&[(
        "CUECAST_MEDIA_LADDER",
        r#"[{name="240p", width=426, height=240, video_bitrate_kbps=400, max_fps=30, profile="main", preset="ultrafast"}]"#,
    )]);
    let publisher = publish(&server, b"av01", av1c, units);
    let master_text = wait_for(&server.url("/hls/demo/index.m3u8"), READY, |_| true);
    let master = parse_master(&master_text);
    assert_eq!(master.variants.len(), 1, "{master_text}");
    assert!(
        master.variants[0].uri.ends_with("/240p/playlist.m3u8"),
        "{master_text}"
    );
    assert_h264_240p_rung(&server);
    drop(publisher.join().expect("publisher thread"));
    assert!(
        server.log().contains("decoder=\"av1dec\""),
        "{}",
        server.log()
    );
}
