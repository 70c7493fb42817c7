//! Transcoding ladder throughput: a 720p30 H.264 + AAC file through cuecast's own stream
//! pipeline (the `pipelines/` templates, `StreamPipeline` fed parsed FLV tags as fast as the
//! ladder takes them: passthrough + 720p/480p/360p x264 rungs into the HLS packager) versus
//! ffmpeg doing the same ladder (one decode, split, bilinear scale, libx264 with the same
//! settings, fragmented MP4 out) from the same file, alternating, in one run.
//!
//! `cargo bench --bench ladder` (20 s clip, 3 runs each). `LADDER_SECONDS=…`, `LADDER_RUNS=…`,
//! `LADDER_PIPELINES_DIR=…` (templates to try) override. ffmpeg's encoders get the rungs' x264
//! `threads` (`-threads:v` per output); `LADDER_X264_THREADS=N` (or `N/N/N` per rung) replaces
//! them on both sides, `LADDER_FFMPEG_THREADS=N|N/N/N|auto` on ffmpeg's alone (to find its
//! fastest setting). Under
//! `cargo test --benches` it runs once on a 3 s clip with the rungs at `ultrafast`.
//!
//! Reports wall time, realtime factor (media seconds / wall seconds), CPU seconds (user+sys of
//! the process / of the ffmpeg child) and the ratio ffmpeg wall / cuecast wall.
//!
//! Same work on both sides is checked, not assumed: after the first run the x264 option string
//! each encoder wrote into its first frame (x264's SEI user data, `options: cabac=1 ref=1 …`) is
//! read back from every cuecast rung's first segment and from ffmpeg's output for the same rung,
//! and the bench stops if they differ in anything but the thread counts (`threads`,
//! `lookahead_threads`: the setting each side may choose for itself).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cuecast::hls::packager::PackagerConfig;
use cuecast::hls::stream::HlsStream;
use cuecast::ingest::flv::FlvUnpacker;
use cuecast::media::RungConfig;
use cuecast::media::frame::MediaUnit;
use cuecast::media::ladder::Ladder;
use cuecast::media::template::Template;
use cuecast::media::{MediaSettings, StreamPipeline};

/// (name, width, height, kbit/s, profile, x264 threads): the benchmark ladder. The threads
/// are the rung configuration's `threads` (given to ffmpeg's encoders as `-threads:v`, so both
/// sides run the same settings): the 720p rung, the largest encode, gets 2 frame threads; the
/// smaller ones run in their own rung thread only (BENCHMARKS.md).
const RUNGS: [(&str, u32, u32, u32, &str, u32); 3] = [
    ("720p", 1280, 720, 2500, "high", 2),
    ("480p", 854, 480, 1400, "main", 1),
    ("360p", 640, 360, 800, "main", 1),
];
const SEGMENT: Duration = Duration::from_secs(2);
const PART: Duration = Duration::from_millis(200);

/// CPU seconds (user + system) of this process and of its waited-for children.
fn cpu_seconds() -> (f64, f64) {
    let read = |who| {
        // SAFETY: all-zero is a valid `rusage` (integers and timevals).
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is a live, writable `rusage` that getrusage fills.
        unsafe { libc::getrusage(who, &mut usage) };
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(usage.ru_utime) + tv(usage.ru_stime)
    };
    (read(libc::RUSAGE_SELF), read(libc::RUSAGE_CHILDREN))
}

fn run(program: &str, args: &[String]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The source clip: testsrc2 720p30 H.264 (x264 veryfast, High, 2.5 Mbit/s, 2 s GOP, 2
/// B-frames as OBS sends) + AAC 128 kbit/s, as FLV (what an RTMP publisher sends).
fn make_clip(dir: &Path, seconds: u32) -> PathBuf {
    let path = dir.join("source.flv");
    let args = format!(
        "-hide_banner -loglevel error -nostdin -y \
         -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
         -t {seconds} -c:v libx264 -profile:v high -preset veryfast -pix_fmt yuv420p \
         -g 60 -keyint_min 60 -sc_threshold 0 -bf 2 -b:v 2500k -maxrate 2500k -bufsize 5000k \
         -c:a aac -b:a 128k -f flv {}",
        path.display()
    );
    run(
        "ffmpeg",
        &args
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>(),
    );
    path
}

/// FLV file → media units, as the RTMP ingest produces them.
fn read_flv(path: &Path) -> Vec<MediaUnit> {
    let data = std::fs::read(path).expect("read clip");
    assert_eq!(&data[..3], b"FLV", "FLV header");
    let header = u32::from_be_bytes(data[5..9].try_into().expect("4 bytes")) as usize;
    let mut at = header + 4;
    let mut unpacker = FlvUnpacker::new();
    let mut units = Vec::new();
    while at + 11 <= data.len() {
        let kind = data[at];
        let size = u32::from_be_bytes([0, data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let ts = u32::from_be_bytes([data[at + 7], data[at + 4], data[at + 5], data[at + 6]]);
        let body = Bytes::copy_from_slice(&data[at + 11..at + 11 + size]);
        let unit = match kind {
            8 => unpacker.audio(ts, body).expect("audio tag"),
            9 => unpacker.video(ts, body).expect("video tag"),
            _ => None,
        };
        units.extend(unit);
        at += 11 + size + 4;
    }
    units
}

fn rungs(preset: &str, threads: &[u32]) -> Vec<RungConfig> {
    RUNGS
        .iter()
        .zip(threads)
        .map(
            |(&(name, width, height, kbps, profile, _), &threads)| RungConfig {
                name: name.into(),
                width,
                height,
                video_bitrate_kbps: kbps,
                max_fps: 30,
                profile: profile.into(),
                preset: preset.into(),
                threads,
            },
        )
        .collect()
}

/// The option string x264 writes into its SEI user data (`x264 - core … - options: …`), from
/// the first one in `data` (an H.264 elementary stream, or MP4/CMAF holding one).
fn x264_options(data: &[u8]) -> Option<String> {
    const CORE: &[u8] = b"x264 - core ";
    const OPTIONS: &[u8] = b"options: ";
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let sei = &data[find(data, CORE)?..];
    let text = &sei[find(sei, OPTIONS)? + OPTIONS.len()..];
    // The string ends with its NUL terminator (SEI user data unregistered).
    let end = text
        .iter()
        .position(|b| !(0x20..0x7f).contains(b))
        .unwrap_or(text.len());
    Some(String::from_utf8_lossy(&text[..end]).into_owned())
}

/// Checks that cuecast's and ffmpeg's x264 ran the same options for `rung`, apart from the
/// thread counts; returns a one-line summary.
fn compare_x264_options(rung: &str, cuecast: &str, ffmpeg: &str) -> String {
    let is_threads = |o: &&str| o.starts_with("threads=") || o.starts_with("lookahead_threads=");
    let split = |options: &str| -> (Vec<String>, Vec<String>) {
        let (threads, rest): (Vec<&str>, Vec<&str>) =
            options.split_whitespace().partition(is_threads);
        let own = |v: Vec<&str>| v.into_iter().map(str::to_string).collect();
        (own(threads), own(rest))
    };
    let ((c_threads, c_rest), (f_threads, f_rest)) = (split(cuecast), split(ffmpeg));
    let only = |a: &[String], b: &[String]| {
        a.iter()
            .filter(|o| !b.contains(o))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(
        c_rest == f_rest,
        "x264 options differ for {rung}: cuecast only {:?}, ffmpeg only {:?}\n  cuecast: {cuecast}\n  ffmpeg:  {ffmpeg}",
        only(&c_rest, &f_rest),
        only(&f_rest, &c_rest),
    );
    format!(
        "{rung}: {} options identical; threads cuecast {} | ffmpeg {}",
        c_rest.len(),
        c_threads.join(" "),
        f_threads.join(" ")
    )
}

/// One cuecast run: wall time, CPU seconds, segments per rendition, and each rung's x264
/// options (from its first segment).
async fn cuecast_run(
    units: &[MediaUnit],
    settings: &Arc<MediaSettings>,
) -> (f64, f64, String, Vec<(String, Option<String>)>) {
    let stream = Arc::new(HlsStream::new(
        "bench",
        PackagerConfig {
            segment_target: SEGMENT,
            part_target: PART,
            window: Duration::from_secs(3600),
        },
    ));
    let (cpu0, _) = cpu_seconds();
    let start = Instant::now();
    let mut pipeline = StreamPipeline::new(Arc::clone(&stream), Arc::clone(settings));
    for unit in units {
        pipeline.push(unit.clone()).expect("push");
    }
    pipeline.finish();
    while !stream.is_ended() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let wall = start.elapsed().as_secs_f64();
    let (cpu1, _) = cpu_seconds();
    let segments = stream
        .renditions()
        .iter()
        .map(|r| {
            let text = r.packager().media_playlist(false).to_string();
            format!("{}={}", r.name, text.matches("#EXTINF").count())
        })
        .collect::<Vec<_>>()
        .join(" ");
    let options = RUNGS
        .iter()
        .map(|&(name, ..)| {
            let first_segment = stream.rendition(name).and_then(|r| {
                let packager = r.packager();
                (0..=packager.last_msn()?).find_map(|msn| packager.segment(msn))
            });
            (
                name.to_string(),
                first_segment.and_then(|data| x264_options(&data.to_bytes())),
            )
        })
        .collect();
    (wall, cpu1 - cpu0, segments, options)
}

/// The same ladder with ffmpeg: wall time and CPU seconds of the child.
/// `threads` per rung: x264 threads (0 = automatic), or None to leave ffmpeg's default.
fn ffmpeg_run(clip: &Path, out: &Path, preset: &str, threads: Option<&[u32]>) -> (f64, f64) {
    let mut args: Vec<String> = ["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(clip.display().to_string());
    args.push("-filter_complex".into());
    args.push(
        "[0:v]split=3[v0][v1][v2];[v1]scale=854:480:flags=bilinear[s1];[v2]scale=640:360:flags=bilinear[s2]"
            .into(),
    );
    for (i, &(name, _, _, kbps, profile, _)) in RUNGS.iter().enumerate() {
        let input = if i == 0 {
            "[v0]".to_string()
        } else {
            format!("[s{i}]")
        };
        if let Some(threads) = threads {
            args.extend(["-threads:v".to_string(), threads[i].to_string()]);
        }
        let rung = format!(
            "-map {input} -c:v libx264 -preset {preset} -profile:v {profile} -b:v {kbps}k \
             -maxrate {kbps}k -bufsize {buf}k -bf 0 -x264-params keyint=infinite:scenecut=0:rc-lookahead=10 \
             -force_key_frames expr:gte(t,n_forced*2) -map 0:a -c:a copy \
             -f mp4 -movflags +frag_keyframe+empty_moov+default_base_moof {}",
            out.join(format!("{name}.mp4")).display(),
            buf = kbps * 600 / 1000,
        );
        args.extend(rung.split_whitespace().map(str::to_string));
    }
    let (_, child0) = cpu_seconds();
    let start = Instant::now();
    run("ffmpeg", &args);
    let wall = start.elapsed().as_secs_f64();
    let (_, child1) = cpu_seconds();
    (wall, child1 - child0)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let env = |name: &str, default: u32| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (seconds, runs, preset) = if bench {
        (env("LADDER_SECONDS", 20), env("LADDER_RUNS", 3), "veryfast")
    } else {
        (3, 1, "ultrafast")
    };
    cuecast::media::init().expect("gstreamer");
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(dir.path(), seconds);
    let units = read_flv(&clip);

    let pipelines = std::env::var("LADDER_PIPELINES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines"));
    // x264 threads per rung: the ladder's own, or LADDER_X264_THREADS (N for every rung, or
    // N/N/N per rung); both sides get the same. LADDER_FFMPEG_THREADS=N|N/N/N|auto sets ffmpeg's
    // alone (to find its fastest setting).
    let per_rung = |v: &str| -> Vec<u32> {
        let t: Vec<u32> = v
            .split('/')
            .map(|n| n.parse().expect("x264 threads: N, N/N/N or auto"))
            .collect();
        if t.len() == 1 {
            vec![t[0]; RUNGS.len()]
        } else {
            assert_eq!(t.len(), RUNGS.len(), "one thread count per rung");
            t
        }
    };
    let threads: Vec<u32> = match std::env::var("LADDER_X264_THREADS") {
        Ok(v) => per_rung(&v),
        Err(_) => RUNGS.iter().map(|r| r.5).collect(),
    };
    let ffmpeg_threads: Option<Vec<u32>> = match std::env::var("LADDER_FFMPEG_THREADS").as_deref() {
        Ok("auto") => None,
        Ok(v) => Some(per_rung(v)),
        Err(_) => Some(threads.clone()),
    };
    let values = MediaSettings::placeholder_values(SEGMENT, PART);
    let settings = Arc::new(MediaSettings {
        template: Template::load(&pipelines, "passthrough.pipeline", &values).expect("template"),
        ladder: Some(
            Ladder::load(
                &pipelines,
                "ladder.pipeline",
                "rung.pipeline",
                &rungs(preset, &threads),
                &values,
            )
            .expect("ladder templates"),
        ),
        values,
        track_wait_ns: 1_000_000_000,
        metrics: Arc::default(),
        source_rung: true,
        ladder_block: true,
    });

    let show = |t: &[u32]| t.iter().map(u32::to_string).collect::<Vec<_>>().join("/");
    println!(
        "ladder: {seconds} s 720p30 clip -> 720p/480p/360p x264 {preset}, x264 threads cuecast {} ffmpeg {}, {runs} run(s) each, {} CPUs",
        show(&threads),
        ffmpeg_threads.as_deref().map_or("auto".to_string(), show),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let (mut c_wall, mut c_cpu, mut f_wall, mut f_cpu) = (vec![], vec![], vec![], vec![]);
    for i in 0..runs {
        let (wall, cpu, segments, cuecast_options) = cuecast_run(&units, &settings).await;
        println!(
            "run {i}: cuecast {wall:.2} s wall ({:.2}x realtime), {cpu:.2} s CPU; segments {segments}",
            f64::from(seconds) / wall
        );
        c_wall.push(wall);
        c_cpu.push(cpu);
        let (wall, cpu) = ffmpeg_run(&clip, dir.path(), preset, ffmpeg_threads.as_deref());
        println!(
            "run {i}: ffmpeg  {wall:.2} s wall ({:.2}x realtime), {cpu:.2} s CPU",
            f64::from(seconds) / wall
        );
        f_wall.push(wall);
        f_cpu.push(cpu);
        if i == 0 {
            for (name, cuecast) in &cuecast_options {
                let output =
                    std::fs::read(dir.path().join(format!("{name}.mp4"))).expect("ffmpeg output");
                let cuecast = cuecast
                    .as_deref()
                    .expect("x264 SEI in cuecast's first segment");
                let ffmpeg = x264_options(&output).expect("x264 SEI in ffmpeg's output");
                println!("x264 {}", compare_x264_options(name, cuecast, &ffmpeg));
            }
        }
    }
    let (cw, fw) = (median(&mut c_wall), median(&mut f_wall));
    println!(
        "median: cuecast {cw:.2} s ({:.2}x realtime, {:.2} s CPU) | ffmpeg {fw:.2} s ({:.2}x realtime, {:.2} s CPU) | ffmpeg/cuecast wall {:.2}",
        f64::from(seconds) / cw,
        median(&mut c_cpu),
        f64::from(seconds) / fw,
        median(&mut f_cpu),
        fw / cw
    );
}
