//! Live statistics of each stream, collected on the ingest and packaging paths (a few atomics
//! and one small lock per frame, nothing allocated per frame), read by `GET /metrics` and
//! `GET /api/streams/{stream}/status`.
//!
//! The arithmetic is sans-IO: [`RateWindow`] (bytes over a sliding window of arrival time) and
//! [`FrameRate`] (frames over the latest decode timestamps) take their times as arguments;
//! [`StreamStats`] reads its own monotonic clock only in its `*_now` conveniences.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// Width of one bucket of the ingest bitrate window, ns.
pub const RATE_BUCKET_NS: u64 = 250_000_000;
/// Buckets of the ingest bitrate window (with [`RATE_BUCKET_NS`]: the latest 5 s).
pub const RATE_BUCKETS: usize = 20;
/// Video frames the frame rate is measured over.
pub const FPS_FRAMES: usize = 64;
/// Part publish delays kept per stream for its quantiles.
pub const PART_DELAY_SAMPLES: usize = 1024;

/// Bytes counted by arrival time over a sliding window of [`RATE_BUCKETS`] buckets of
/// [`RATE_BUCKET_NS`] (the window slides a bucket at a time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateWindow {
    buckets: [u64; RATE_BUCKETS],
    /// Absolute index (time / bucket width) of the newest bucket written.
    head: u64,
    /// When the first byte was counted, ns.
    first_ns: Option<u64>,
}

impl Default for RateWindow {
    fn default() -> RateWindow {
        RateWindow {
            buckets: [0; RATE_BUCKETS],
            head: 0,
            first_ns: None,
        }
    }
}

impl RateWindow {
    /// Counts `bytes` arrived at `now_ns` (times never go back; an earlier time counts in the
    /// newest bucket).
    pub fn add(&mut self, now_ns: u64, bytes: u64) {
        let index = now_ns / RATE_BUCKET_NS;
        if self.first_ns.is_none() {
            self.first_ns = Some(now_ns);
            self.head = index;
        } else if index > self.head {
            let stale = (index - self.head).min(RATE_BUCKETS as u64);
            for step in 1..=stale {
                self.buckets[((self.head + step) % RATE_BUCKETS as u64) as usize] = 0;
            }
            self.head = index;
        }
        let slot = (self.head % RATE_BUCKETS as u64) as usize;
        self.buckets[slot] = self.buckets[slot].saturating_add(bytes);
    }

    /// Bytes per second over the window ending at `now_ns` (over the time since the first
    /// byte while that is shorter); 0 before any byte or once the window holds none.
    pub fn per_second(&self, now_ns: u64) -> f64 {
        let Some(first) = self.first_ns else {
            return 0.0;
        };
        let now_index = now_ns / RATE_BUCKET_NS;
        let oldest = (now_index + 1).saturating_sub(RATE_BUCKETS as u64);
        let bytes: u64 = (oldest..=self.head.min(now_index))
            .filter(|index| *index + (RATE_BUCKETS as u64) > self.head)
            .map(|index| self.buckets[(index % RATE_BUCKETS as u64) as usize])
            .sum();
        let window = (RATE_BUCKETS as u64 - 1) * RATE_BUCKET_NS + now_ns % RATE_BUCKET_NS;
        let span = window.min(now_ns.saturating_sub(first)).max(RATE_BUCKET_NS);
        bytes as f64 * 1e9 / span as f64
    }
}

/// The latest [`FPS_FRAMES`] video decode timestamps: the encoder's frame rate, on media time
/// (independent of how bursty the frames arrive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameRate {
    dts: [u64; FPS_FRAMES],
    /// Frames recorded (the ring holds the latest `min(len, FPS_FRAMES)`).
    len: u64,
}

impl Default for FrameRate {
    fn default() -> FrameRate {
        FrameRate {
            dts: [0; FPS_FRAMES],
            len: 0,
        }
    }
}

impl FrameRate {
    /// Records a video frame's decode timestamp, ns.
    pub fn add(&mut self, dts_ns: u64) {
        self.dts[(self.len % FPS_FRAMES as u64) as usize] = dts_ns;
        self.len += 1;
    }

    /// Frames per second over the kept timestamps; `None` with fewer than two frames or no
    /// media time between them.
    pub fn fps(&self) -> Option<f64> {
        let kept = self.len.min(FPS_FRAMES as u64) as usize;
        if kept < 2 {
            return None;
        }
        let newest = self.dts[((self.len - 1) % FPS_FRAMES as u64) as usize];
        let oldest = self.dts[((self.len - kept as u64) % FPS_FRAMES as u64) as usize];
        let span = newest.checked_sub(oldest).filter(|s| *s > 0)?;
        Some((kept - 1) as f64 * 1e9 / span as f64)
    }
}

/// Exact quantiles over a bounded reservoir of the latest samples (allocated once).
#[derive(Debug, Clone)]
pub struct Reservoir {
    samples: VecDeque<f64>,
    capacity: usize,
}

impl Reservoir {
    /// A reservoir of the latest `capacity` samples.
    pub fn new(capacity: usize) -> Reservoir {
        Reservoir {
            samples: VecDeque::with_capacity(capacity),
            capacity: capacity.max(1),
        }
    }

    /// Adds a sample (the oldest goes when full).
    pub fn add(&mut self, value: f64) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(value);
    }

    /// The `q` quantiles (nearest rank) of the kept samples; empty when there are none.
    pub fn quantiles(&self, qs: &[f64]) -> Vec<f64> {
        if self.samples.is_empty() {
            return Vec::new();
        }
        let mut sorted: Vec<f64> = self.samples.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        qs.iter()
            .map(|&q| {
                let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
                sorted[rank - 1]
            })
            .collect()
    }
}

/// The publisher's video as its decoder configuration declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFacts {
    /// `h264`, `h265` or `av1`.
    pub codec: &'static str,
    /// Coded picture width.
    pub width: u32,
    /// Coded picture height.
    pub height: u32,
}

/// The publisher's audio as its decoder configuration declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFacts {
    /// `aac`.
    pub codec: &'static str,
    /// Samples per second.
    pub sample_rate: u32,
    /// Channels.
    pub channels: u8,
}

/// What the current (or latest) publish declared.
#[derive(Debug, Clone, Default)]
pub struct PublishFacts {
    /// `rtmp`, `rtmps` or `srt`.
    pub protocol: Option<&'static str>,
    /// When the publish started.
    pub started_at: Option<DateTime<Utc>>,
    /// Video track.
    pub video: Option<VideoFacts>,
    /// Audio track.
    pub audio: Option<AudioFacts>,
}

/// Everything measured per frame, behind one lock.
#[derive(Debug, Default)]
struct IngestWindow {
    bytes: RateWindow,
    frames: FrameRate,
    /// Previous video DTS / audio PTS of this publish (late = not after it).
    last_video_dts: Option<u64>,
    last_audio_pts: Option<u64>,
}

/// A snapshot of a stream's statistics at one instant.
#[derive(Debug, Clone)]
pub struct StreamSnapshot {
    /// What the publish declared.
    pub publish: PublishFacts,
    /// Ingest bitrate over the window, bits per second.
    pub ingest_bps: f64,
    /// Video frame rate, when known.
    pub fps: Option<f64>,
    /// Frames dropped since the publish started.
    pub dropped_frames: u64,
    /// Frames that arrived out of order since the publish started.
    pub late_frames: u64,
    /// Part publish delay p50 and p99, seconds.
    pub part_delay_p50_p99: Option<(f64, f64)>,
    /// Time since the latest part was published.
    pub live_edge_age: Option<Duration>,
}

/// One stream's live statistics, shared by its ingest connection, its pipeline's sinks and
/// the readers.
#[derive(Debug)]
pub struct StreamStats {
    /// The stats' own clock origin (times below are ns since it).
    epoch: Instant,
    publish: Mutex<PublishFacts>,
    /// Whether the publish declared its video / audio (read per frame without `publish`'s lock).
    video_declared: AtomicBool,
    audio_declared: AtomicBool,
    window: Mutex<IngestWindow>,
    /// Frames not delivered (before their decoder configuration, or not transcoded because
    /// the ladder was behind), since the server started.
    dropped_frames: AtomicU64,
    /// Frames whose timestamp did not advance past their track's previous one.
    late_frames: AtomicU64,
    /// Media bytes received.
    ingest_bytes: AtomicU64,
    /// `dropped_frames` and `late_frames` when the current publish started.
    dropped_at_begin: AtomicU64,
    late_at_begin: AtomicU64,
    /// Part publish delays (time from a part's last frame arriving to the part being
    /// published), seconds: the latest ones, and the running sum and count.
    part_delay: Mutex<Reservoir>,
    part_delay_sum_us: AtomicU64,
    part_delay_count: AtomicU64,
    /// When the latest part of any rendition was published, ns since `epoch` + 1 (0: never).
    last_part: AtomicU64,
}

impl Default for StreamStats {
    fn default() -> StreamStats {
        StreamStats::new(Instant::now())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl StreamStats {
    /// Statistics whose clock starts at `epoch`.
    pub fn new(epoch: Instant) -> StreamStats {
        StreamStats {
            epoch,
            publish: Mutex::new(PublishFacts::default()),
            video_declared: AtomicBool::new(false),
            audio_declared: AtomicBool::new(false),
            window: Mutex::new(IngestWindow::default()),
            dropped_frames: AtomicU64::new(0),
            late_frames: AtomicU64::new(0),
            ingest_bytes: AtomicU64::new(0),
            dropped_at_begin: AtomicU64::new(0),
            late_at_begin: AtomicU64::new(0),
            part_delay: Mutex::new(Reservoir::new(PART_DELAY_SAMPLES)),
            part_delay_sum_us: AtomicU64::new(0),
            part_delay_count: AtomicU64::new(0),
            last_part: AtomicU64::new(0),
        }
    }

    /// `at` on this stats' clock, ns.
    pub fn ns_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Now on this stats' clock, ns.
    pub fn now_ns(&self) -> u64 {
        self.ns_at(Instant::now())
    }

    /// A publish over `protocol` started at `started_at`: the publish facts, the windows, the
    /// part delay quantiles and the live edge start over (the counters and the summary's sum
    /// and count go on; the snapshot counts from here).
    pub fn begin(&self, protocol: &'static str, started_at: DateTime<Utc>) {
        *lock(&self.publish) = PublishFacts {
            protocol: Some(protocol),
            started_at: Some(started_at),
            video: None,
            audio: None,
        };
        self.video_declared.store(false, Ordering::Relaxed);
        self.audio_declared.store(false, Ordering::Relaxed);
        *lock(&self.window) = IngestWindow::default();
        *lock(&self.part_delay) = Reservoir::new(PART_DELAY_SAMPLES);
        self.last_part.store(0, Ordering::Relaxed);
        self.dropped_at_begin.store(
            self.dropped_frames.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        self.late_at_begin
            .store(self.late_frames.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// The publisher declared its video.
    pub fn set_video(&self, video: VideoFacts) {
        lock(&self.publish).video = Some(video);
        self.video_declared.store(true, Ordering::Relaxed);
    }

    /// The publisher declared its audio.
    pub fn set_audio(&self, audio: AudioFacts) {
        lock(&self.publish).audio = Some(audio);
        self.audio_declared.store(true, Ordering::Relaxed);
    }

    /// A video frame of `bytes` with decode time `dts_ns` arrived at `now_ns`. Dropped (and
    /// counted so) when no video configuration was declared before it.
    pub fn on_video(&self, now_ns: u64, bytes: usize, dts_ns: u64) {
        let configured = self.video_declared.load(Ordering::Relaxed);
        let late = {
            let mut window = lock(&self.window);
            window.bytes.add(now_ns, bytes as u64);
            let late = window.last_video_dts.is_some_and(|last| dts_ns <= last);
            if !late {
                window.frames.add(dts_ns);
                window.last_video_dts = Some(dts_ns);
            }
            late
        };
        self.count(bytes, configured, late);
    }

    /// An audio frame of `bytes` at `pts_ns` arrived at `now_ns` (see [`Self::on_video`]).
    pub fn on_audio(&self, now_ns: u64, bytes: usize, pts_ns: u64) {
        let configured = self.audio_declared.load(Ordering::Relaxed);
        let late = {
            let mut window = lock(&self.window);
            window.bytes.add(now_ns, bytes as u64);
            let late = window.last_audio_pts.is_some_and(|last| pts_ns < last);
            if !late {
                window.last_audio_pts = Some(pts_ns);
            }
            late
        };
        self.count(bytes, configured, late);
    }

    fn count(&self, bytes: usize, configured: bool, late: bool) {
        self.ingest_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        if !configured {
            self.dropped_frames.fetch_add(1, Ordering::Relaxed);
        }
        if late {
            self.late_frames.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `frames` frames were dropped after ingest (the ladder could not keep up).
    pub fn add_dropped(&self, frames: u64) {
        self.dropped_frames.fetch_add(frames, Ordering::Relaxed);
    }

    /// A part was published at `now_ns`; `delay` is the time since its last frame arrived
    /// (known for the passthrough video, whose frames' arrivals are tracked).
    pub fn on_part(&self, now_ns: u64, delay: Option<Duration>) {
        self.last_part
            .store(now_ns.saturating_add(1), Ordering::Relaxed);
        if let Some(delay) = delay {
            lock(&self.part_delay).add(delay.as_secs_f64());
            self.part_delay_sum_us.fetch_add(
                u64::try_from(delay.as_micros()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            self.part_delay_count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Frames dropped since the server started.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_frames.load(Ordering::Relaxed)
    }

    /// Frames late since the server started.
    pub fn late_total(&self) -> u64 {
        self.late_frames.load(Ordering::Relaxed)
    }

    /// Media bytes received since the server started.
    pub fn ingest_bytes_total(&self) -> u64 {
        self.ingest_bytes.load(Ordering::Relaxed)
    }

    /// The statistics at `now_ns`.
    pub fn snapshot(&self, now_ns: u64) -> StreamSnapshot {
        let publish = lock(&self.publish).clone();
        let (bytes_per_s, fps) = {
            let window = lock(&self.window);
            (window.bytes.per_second(now_ns), window.frames.fps())
        };
        let part_delay_p50_p99 = match lock(&self.part_delay).quantiles(&[0.5, 0.99])[..] {
            [p50, p99] => Some((p50, p99)),
            _ => None,
        };
        let last_part = self.last_part.load(Ordering::Relaxed);
        let live_edge_age =
            (last_part > 0).then(|| Duration::from_nanos(now_ns.saturating_sub(last_part - 1)));
        StreamSnapshot {
            publish,
            ingest_bps: bytes_per_s * 8.0,
            fps,
            dropped_frames: self
                .dropped_total()
                .saturating_sub(self.dropped_at_begin.load(Ordering::Relaxed)),
            late_frames: self
                .late_total()
                .saturating_sub(self.late_at_begin.load(Ordering::Relaxed)),
            part_delay_p50_p99,
            live_edge_age,
        }
    }

    /// The part publish delay summary's quantiles (0.5, 0.9, 0.99, 1), sum (s) and count.
    fn part_delay_summary(&self) -> (Vec<(f64, f64)>, f64, u64) {
        const QS: [f64; 4] = [0.5, 0.9, 0.99, 1.0];
        let values = lock(&self.part_delay).quantiles(&QS);
        (
            QS.iter().copied().zip(values).collect(),
            self.part_delay_sum_us.load(Ordering::Relaxed) as f64 / 1e6,
            self.part_delay_count.load(Ordering::Relaxed),
        )
    }
}

/// The statistics of every stream that has published, by name.
#[derive(Debug, Default)]
pub struct StreamStatsSet {
    streams: Mutex<BTreeMap<String, Arc<StreamStats>>>,
}

impl StreamStatsSet {
    /// The statistics of `stream` (created on first use: call it with known streams only).
    pub fn get_or_create(&self, stream: &str) -> Arc<StreamStats> {
        let mut streams = lock(&self.streams);
        if let Some(stats) = streams.get(stream) {
            return Arc::clone(stats);
        }
        let stats = Arc::new(StreamStats::default());
        streams.insert(stream.to_string(), Arc::clone(&stats));
        stats
    }

    /// The statistics of `stream`, if it ever published.
    pub fn get(&self, stream: &str) -> Option<Arc<StreamStats>> {
        lock(&self.streams).get(stream).cloned()
    }

    /// Prometheus text of the streams named in `streams` (the ones that exist: labels stay
    /// bounded by them), with `live` telling which have a publisher now.
    pub fn render(&self, out: &mut String, streams: &[String], live: impl Fn(&str) -> bool) {
        use std::fmt::Write;
        let all = lock(&self.streams).clone();
        let chosen: Vec<(&String, &Arc<StreamStats>)> = streams
            .iter()
            .filter_map(|name| all.get_key_value(name.as_str()))
            .collect();
        let gauge = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        gauge(
            out,
            "cuecast_stream_ingest_bitrate_bps",
            "gauge",
            "Ingest bitrate of a stream's publisher over the latest 5 s, bits per second (0 without a publisher).",
        );
        let snapshots: Vec<(&String, &Arc<StreamStats>, StreamSnapshot, bool)> = chosen
            .iter()
            .map(|(name, stats)| {
                let live = live(name);
                (*name, *stats, stats.snapshot(stats.now_ns()), live)
            })
            .collect();
        for (name, _, snapshot, live) in &snapshots {
            let bps = if *live { snapshot.ingest_bps } else { 0.0 };
            let _ = writeln!(
                out,
                "cuecast_stream_ingest_bitrate_bps{{stream=\"{name}\"}} {bps:.0}"
            );
        }
        gauge(
            out,
            "cuecast_stream_frame_rate",
            "gauge",
            "Video frames per second of a stream's publisher (media time of the latest 64 frames; 0 without a publisher).",
        );
        for (name, _, snapshot, live) in &snapshots {
            let fps = snapshot.fps.filter(|_| *live).unwrap_or(0.0);
            let _ = writeln!(
                out,
                "cuecast_stream_frame_rate{{stream=\"{name}\"}} {fps:.3}"
            );
        }
        for (metric, help, value) in [
            (
                "cuecast_stream_dropped_frames_total",
                "Frames of a stream not delivered: before their decoder configuration, or not transcoded while the ladder was behind.",
                StreamStats::dropped_total as fn(&StreamStats) -> u64,
            ),
            (
                "cuecast_stream_late_frames_total",
                "Frames of a stream whose timestamp did not advance past their track's previous frame.",
                StreamStats::late_total,
            ),
            (
                "cuecast_stream_ingest_bytes_total",
                "Media bytes received from a stream's publishers.",
                StreamStats::ingest_bytes_total,
            ),
        ] {
            gauge(out, metric, "counter", help);
            for (name, stats, _, _) in &snapshots {
                let _ = writeln!(out, "{metric}{{stream=\"{name}\"}} {}", value(stats));
            }
        }
        let metric = "cuecast_stream_part_publish_delay_seconds";
        gauge(
            out,
            metric,
            "summary",
            "Time from the arrival of a part's last frame to the part being published (passthrough video; quantiles over the latest 1024 parts).",
        );
        for (name, stats, _, _) in &snapshots {
            let (quantiles, sum, count) = stats.part_delay_summary();
            for (q, value) in quantiles {
                let _ = writeln!(
                    out,
                    "{metric}{{stream=\"{name}\",quantile=\"{q}\"}} {value:.6}"
                );
            }
            let _ = writeln!(out, "{metric}_sum{{stream=\"{name}\"}} {sum:.6}");
            let _ = writeln!(out, "{metric}_count{{stream=\"{name}\"}} {count}");
        }
        let metric = "cuecast_stream_live_edge_age_seconds";
        gauge(
            out,
            metric,
            "gauge",
            "Time since the latest part of a stream with a publisher was published.",
        );
        for (name, _, snapshot, live) in &snapshots {
            if let Some(age) = snapshot.live_edge_age.filter(|_| *live) {
                let _ = writeln!(
                    out,
                    "{metric}{{stream=\"{name}\"}} {:.3}",
                    age.as_secs_f64()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const SECOND: u64 = 1_000 * MS;

    #[test]
    fn the_rate_window_averages_the_latest_five_seconds() {
        let mut window = RateWindow::default();
        assert_eq!(window.per_second(0), 0.0);
        // 1000 bytes every 100 ms for 10 s: 10 kB/s.
        for step in 0..100 {
            window.add(step * 100 * MS, 1000);
        }
        let rate = window.per_second(10 * SECOND - 1);
        assert!((rate - 10_000.0).abs() < 600.0, "{rate}");
        // Early on, over the time since the first byte (not the whole window).
        let mut young = RateWindow::default();
        for step in 0..10 {
            young.add(step * 100 * MS, 1000);
        }
        let rate = young.per_second(SECOND);
        assert!((rate - 10_000.0).abs() < 1_000.0, "{rate}");
        // Silence empties the window.
        assert_eq!(window.per_second(20 * SECOND), 0.0);
        // And it starts counting again after a long gap.
        window.add(30 * SECOND, 5000);
        let rate = window.per_second(31 * SECOND);
        assert!(rate > 0.0 && rate <= 5000.0, "{rate}");
    }

    #[test]
    fn an_earlier_time_counts_in_the_newest_bucket() {
        let mut window = RateWindow::default();
        window.add(SECOND, 100);
        window.add(SECOND / 2, 100);
        assert!(window.per_second(SECOND + 1) > 0.0);
        let total: u64 = window.buckets.iter().sum();
        assert_eq!(total, 200);
    }

    #[test]
    fn the_frame_rate_follows_decode_timestamps() {
        let mut rate = FrameRate::default();
        assert_eq!(rate.fps(), None);
        rate.add(0);
        assert_eq!(rate.fps(), None);
        // 30 fps (33.333 ms), more frames than the ring holds.
        for frame in 1..200u64 {
            rate.add(frame * SECOND / 30);
        }
        let fps = rate.fps().expect("known");
        assert!((fps - 30.0).abs() < 0.05, "{fps}");
        // Then 25 fps: the ring forgets the 30.
        let base = 200 * SECOND / 30;
        for frame in 0..FPS_FRAMES as u64 {
            rate.add(base + frame * SECOND / 25);
        }
        let fps = rate.fps().expect("known");
        assert!((fps - 25.0).abs() < 0.05, "{fps}");
    }

    #[test]
    fn the_reservoir_keeps_the_latest_samples() {
        let mut reservoir = Reservoir::new(10);
        assert!(reservoir.quantiles(&[0.5]).is_empty());
        for value in 1..=100 {
            reservoir.add(f64::from(value));
        }
        assert_eq!(reservoir.quantiles(&[0.5, 0.99, 1.0]), [95.0, 100.0, 100.0]);
        assert_eq!(reservoir.samples.len(), 10);
    }

    #[test]
    fn a_publish_is_measured_from_its_start() {
        let stats = StreamStats::new(Instant::now());
        // A frame before any configuration is dropped.
        stats.on_video(0, 500, 0);
        stats.begin("rtmp", Utc::now());
        assert_eq!(
            stats.snapshot(0).dropped_frames,
            0,
            "counted from the publish"
        );
        stats.on_audio(0, 100, 0);
        stats.set_video(VideoFacts {
            codec: "h264",
            width: 640,
            height: 360,
        });
        // 2 s of 30 fps video, 1250 bytes a frame (300 kbit/s).
        for frame in 0..60u64 {
            stats.on_video(frame * SECOND / 30, 1250, frame * SECOND / 30);
        }
        // One frame repeating the last DTS: late.
        stats.on_video(2 * SECOND, 1250, 59 * SECOND / 30);
        let snapshot = stats.snapshot(2 * SECOND);
        assert_eq!(snapshot.publish.protocol, Some("rtmp"));
        assert_eq!(snapshot.publish.video.as_ref().map(|v| v.width), Some(640));
        assert_eq!(snapshot.publish.audio, None);
        assert_eq!(
            snapshot.dropped_frames, 1,
            "the audio frame before its config"
        );
        assert_eq!(snapshot.late_frames, 1);
        assert_eq!(stats.dropped_total(), 2);
        let fps = snapshot.fps.expect("fps");
        assert!((fps - 30.0).abs() < 0.1, "{fps}");
        let kbps = snapshot.ingest_bps / 1000.0;
        assert!((250.0..=350.0).contains(&kbps), "{kbps}");
        assert!(snapshot.part_delay_p50_p99.is_none());
        assert!(snapshot.live_edge_age.is_none());
        // Parts: delays of 10..=100 ms; the latest published at 2 s.
        for ms in 1..=10u64 {
            stats.on_part(2 * SECOND, Some(Duration::from_millis(ms * 10)));
        }
        stats.on_part(2 * SECOND, None);
        let snapshot = stats.snapshot(2 * SECOND + 300 * MS);
        assert_eq!(snapshot.part_delay_p50_p99, Some((0.05, 0.1)));
        assert_eq!(snapshot.live_edge_age, Some(Duration::from_millis(300)));
        // A new publish starts the windows and facts over.
        stats.begin("srt", Utc::now());
        let snapshot = stats.snapshot(3 * SECOND);
        assert_eq!(snapshot.publish.protocol, Some("srt"));
        assert!(snapshot.publish.video.is_none() && snapshot.fps.is_none());
        assert!(snapshot.part_delay_p50_p99.is_none() && snapshot.live_edge_age.is_none());
        assert_eq!(snapshot.ingest_bps, 0.0);
        assert_eq!((snapshot.dropped_frames, snapshot.late_frames), (0, 0));
    }

    #[test]
    fn rendered_for_the_named_streams_only() {
        let set = StreamStatsSet::default();
        let demo = set.get_or_create("demo");
        assert!(Arc::ptr_eq(&demo, &set.get_or_create("demo")));
        demo.begin("rtmp", Utc::now());
        demo.add_dropped(3);
        demo.on_part(demo.now_ns(), Some(Duration::from_millis(40)));
        set.get_or_create("gone").add_dropped(1);
        let mut text = String::new();
        set.render(
            &mut text,
            &["demo".to_string(), "never".to_string()],
            |_| true,
        );
        assert!(
            text.contains("cuecast_stream_dropped_frames_total{stream=\"demo\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE cuecast_stream_part_publish_delay_seconds summary\n"));
        assert!(text.contains(
            "cuecast_stream_part_publish_delay_seconds{stream=\"demo\",quantile=\"0.5\"} 0.040000\n"
        ));
        assert!(
            text.contains("cuecast_stream_part_publish_delay_seconds_count{stream=\"demo\"} 1\n")
        );
        assert!(text.contains("cuecast_stream_ingest_bitrate_bps{stream=\"demo\"} "));
        assert!(text.contains("cuecast_stream_live_edge_age_seconds{stream=\"demo\"} "));
        assert!(!text.contains("gone") && !text.contains("never"), "{text}");
        // Without a publisher: no live edge, a zero bitrate.
        let mut text = String::new();
        set.render(&mut text, &["demo".to_string()], |_| false);
        assert!(
            !text.contains("cuecast_stream_live_edge_age_seconds{"),
            "{text}"
        );
        assert!(text.contains("cuecast_stream_ingest_bitrate_bps{stream=\"demo\"} 0\n"));
    }
}
