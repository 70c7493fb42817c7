//! Process metrics, exported in the Prometheus text format at `GET /metrics`; per-stream live
//! statistics in [`stream`] (docs/operations.md, "Metrics", lists every metric).

pub mod heap;
pub mod ingest;
pub mod stream;

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Most latency samples kept for quantiles (a sliding reservoir of the latest ones).
pub const MAX_LATENCY_SAMPLES: usize = 100_000;

/// Quantiles exported for latency summaries.
const QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 1.0];

/// Latency samples with exact quantiles over the latest [`MAX_LATENCY_SAMPLES`].
#[derive(Debug, Default)]
pub struct LatencySummary {
    /// Latest samples, seconds.
    samples: Mutex<VecDeque<f64>>,
    /// All samples ever recorded.
    count: AtomicU64,
    /// Sum of all samples, microseconds.
    sum_micros: AtomicU64,
}

impl LatencySummary {
    /// Records one sample.
    pub fn record(&self, latency: Duration) {
        let seconds = latency.as_secs_f64();
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() == MAX_LATENCY_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(seconds);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// (quantile, value) over the kept samples; empty when there are none.
    pub fn quantiles(&self) -> Vec<(f64, f64)> {
        let mut sorted: Vec<f64> = self
            .samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        if sorted.is_empty() {
            return Vec::new();
        }
        sorted.sort_by(f64::total_cmp);
        QUANTILES
            .iter()
            .map(|&q| {
                let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
                (q, sorted[rank - 1])
            })
            .collect()
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} summary");
        for (q, value) in self.quantiles() {
            let _ = writeln!(out, "{name}{{quantile=\"{q}\"}} {value:.6}");
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum:.6}");
        let _ = writeln!(out, "{name}_count {}", self.count.load(Ordering::Relaxed));
    }
}

/// What an HLS request asked for (the `kind` label of `cuecast_hls_requests_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HlsObject {
    /// `/hls/{stream}/index.m3u8`.
    Multivariant,
    /// A live media playlist.
    MediaPlaylist,
    /// An LL-HLS part.
    Part,
    /// A live segment.
    Segment,
    /// A live init segment.
    Init,
    /// Anything below `/vod` (recordings' playlists and media).
    Vod,
    /// Anything else below `/hls` (an unknown object name).
    Other,
}

impl HlsObject {
    /// Every kind, in label order.
    pub const ALL: [HlsObject; 7] = [
        HlsObject::Multivariant,
        HlsObject::MediaPlaylist,
        HlsObject::Part,
        HlsObject::Segment,
        HlsObject::Init,
        HlsObject::Vod,
        HlsObject::Other,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            HlsObject::Multivariant => "multivariant",
            HlsObject::MediaPlaylist => "media_playlist",
            HlsObject::Part => "part",
            HlsObject::Segment => "segment",
            HlsObject::Init => "init",
            HlsObject::Vod => "vod",
            HlsObject::Other => "other",
        }
    }
}

/// Status classes counted per HLS object kind (1xx..5xx).
const STATUS_CLASSES: usize = 5;

/// HLS requests answered, by object kind and status class.
#[derive(Debug, Default)]
pub struct HlsRequests {
    counts: [[AtomicU64; STATUS_CLASSES]; HlsObject::ALL.len()],
}

impl HlsRequests {
    /// Counts a request for `kind` answered with `status` (100..=599; others are not counted).
    pub fn record(&self, kind: HlsObject, status: u16) {
        let class = usize::from(status / 100);
        if (1..=STATUS_CLASSES).contains(&class) {
            self.counts[kind as usize][class - 1].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Requests for `kind` answered with a status of class `class` (2 for 2xx).
    pub fn count(&self, kind: HlsObject, class: usize) -> u64 {
        class
            .checked_sub(1)
            .and_then(|c| self.counts[kind as usize].get(c))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    fn write(&self, out: &mut String) {
        let name = "cuecast_hls_requests_total";
        let _ = writeln!(
            out,
            "# HELP {name} HLS requests (live /hls and recordings' /vod) by object kind and status class.\n# TYPE {name} counter"
        );
        for kind in HlsObject::ALL {
            for class in 1..=STATUS_CLASSES {
                let value = self.count(kind, class);
                // Every kind's 2xx, 4xx and 5xx are always there; 1xx and 3xx once seen.
                if value > 0 || matches!(class, 2 | 4 | 5) {
                    let label = kind.label();
                    let _ = writeln!(
                        out,
                        "{name}{{kind=\"{label}\",status=\"{class}xx\"}} {value}"
                    );
                }
            }
        }
    }
}

/// Everything the server counts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Per-stream live statistics (bitrate, frame rate, drops, part publish delay, live edge).
    pub streams: stream::StreamStatsSet,
    /// HLS requests by object kind and status class.
    pub hls_requests: HlsRequests,
    /// Video frame arrival (RTMP message parsed) → the LL-HLS part holding it is fetchable.
    pub ingest_to_part: LatencySummary,
    /// RTMP connections accepted.
    pub rtmp_connections: AtomicU64,
    /// Publish attempts refused (unknown key, stream already live, bad application).
    pub publishes_refused: AtomicU64,
    /// RTMP connections ended by a protocol error or bad media.
    pub rtmp_errors: AtomicU64,
    /// Source video frames not transcoded because the ladder was behind (whole GOPs).
    pub ladder_dropped_frames: AtomicU64,
    /// Per (stream, transcoded rendition): how far its latest part trails the source, ns.
    rung_lag: Mutex<BTreeMap<(String, String), u64>>,
    /// SRT callers accepted (handshake completed).
    pub srt_connections: AtomicU64,
    /// SRT callers rejected at handshake (stream id, key, mode, conflict).
    pub srt_rejected: AtomicU64,
    /// Publishes that continued a stream after its publisher was lost (reconnect within grace).
    pub publishes_resumed: AtomicU64,
    /// Connections to the RTMPS port that sent plain RTMP.
    pub rtmps_refused_plain_rtmp: AtomicU64,
    /// Connections to the RTMPS port that did not finish the TLS handshake in time.
    pub rtmps_refused_timeout: AtomicU64,
    /// Connections to the RTMPS port whose TLS handshake failed (not TLS, no common version or
    /// cipher, a client that refused the certificate).
    pub rtmps_refused_tls: AtomicU64,
    /// Ingest connections refused or closed by a limit, by protocol and reason.
    pub ingest_refused: ingest::IngestRefusals,
}

impl Metrics {
    /// Records how far rendition `rung` of `stream` trails the source.
    pub fn set_rung_lag(&self, stream: &str, rung: &str, lag_ns: u64) {
        let mut lags = self.rung_lag.lock().unwrap_or_else(|e| e.into_inner());
        match lags.get_mut(&(stream.to_string(), rung.to_string())) {
            Some(lag) => *lag = lag_ns,
            None => {
                lags.insert((stream.to_string(), rung.to_string()), lag_ns);
            }
        }
    }

    /// How far rendition `rung` of `stream` trails the source, ns (transcoded renditions that
    /// published a part).
    pub fn rung_lag_ns(&self, stream: &str, rung: &str) -> Option<u64> {
        self.rung_lag
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(stream.to_string(), rung.to_string()))
            .copied()
    }

    /// Forgets the per-rendition gauges of an ended stream.
    pub fn remove_stream(&self, stream: &str) {
        self.rung_lag
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(s, _), _| s != stream);
    }

    /// Prometheus text exposition; `gauges` are added as `(name, help, value)`.
    pub fn render(&self, gauges: &[(&str, &str, u64)]) -> String {
        let mut out = String::new();
        self.ingest_to_part.write(
            &mut out,
            "cuecast_ingest_to_part_seconds",
            "Time from a video frame's arrival to the moment the LL-HLS part holding it can be fetched.",
        );
        for (name, help, value) in [
            (
                "cuecast_rtmp_connections_total",
                "RTMP connections accepted.",
                &self.rtmp_connections,
            ),
            (
                "cuecast_rtmp_publishes_refused_total",
                "Publish attempts refused (unknown key, stream already live, unknown application).",
                &self.publishes_refused,
            ),
            (
                "cuecast_rtmp_errors_total",
                "RTMP connections ended by a protocol error or unusable media.",
                &self.rtmp_errors,
            ),
            (
                "cuecast_ladder_dropped_frames_total",
                "Source video frames not transcoded because the ladder could not keep up (whole GOPs; the source rendition keeps them).",
                &self.ladder_dropped_frames,
            ),
            (
                "cuecast_srt_connections_total",
                "SRT callers accepted.",
                &self.srt_connections,
            ),
            (
                "cuecast_srt_rejected_total",
                "SRT callers rejected at handshake by stream id (bad syntax, unknown key, mode, stream live).",
                &self.srt_rejected,
            ),
            (
                "cuecast_publishes_resumed_total",
                "Publishes that continued a stream whose publisher had been lost within the reconnect grace period.",
                &self.publishes_resumed,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        {
            let name = "cuecast_rtmps_handshake_failures_total";
            let _ = writeln!(
                out,
                "# HELP {name} Connections to the RTMPS port closed before RTMP started, by reason.\n# TYPE {name} counter"
            );
            for (reason, value) in [
                ("plain_rtmp", &self.rtmps_refused_plain_rtmp),
                ("timeout", &self.rtmps_refused_timeout),
                ("tls", &self.rtmps_refused_tls),
            ] {
                let value = value.load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {value}");
            }
        }
        self.ingest_refused.write(&mut out);
        self.hls_requests.write(&mut out);
        {
            let lags = self.rung_lag.lock().unwrap_or_else(|e| e.into_inner());
            if !lags.is_empty() {
                let name = "cuecast_ladder_lag_seconds";
                let _ = writeln!(
                    out,
                    "# HELP {name} Rendition encode lag: how far a transcoded rendition's latest part trails the source's latest frame.\n# TYPE {name} gauge"
                );
                for ((stream, rendition), lag) in lags.iter() {
                    let _ = writeln!(
                        out,
                        "{name}{{stream=\"{stream}\",rendition=\"{rendition}\"}} {:.3}",
                        *lag as f64 / 1e9
                    );
                }
            }
        }
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_exact_over_the_samples() {
        let summary = LatencySummary::default();
        assert!(summary.quantiles().is_empty());
        for ms in 1..=100 {
            summary.record(Duration::from_millis(ms));
        }
        let q: Vec<(f64, f64)> = summary.quantiles();
        assert_eq!(q[0], (0.5, 0.050));
        assert_eq!(q[1], (0.9, 0.090));
        assert_eq!(q[2], (0.99, 0.099));
        assert_eq!(q[3], (1.0, 0.100));
    }

    #[test]
    fn render_is_prometheus_text() {
        let metrics = Metrics::default();
        metrics.ingest_to_part.record(Duration::from_millis(120));
        metrics.rtmp_connections.fetch_add(2, Ordering::Relaxed);
        let text = metrics.render(&[("cuecast_live_streams", "Streams with a publisher.", 1)]);
        assert!(text.contains("cuecast_ingest_to_part_seconds{quantile=\"0.5\"} 0.120000\n"));
        assert!(text.contains("cuecast_ingest_to_part_seconds_count 1\n"));
        assert!(text.contains(
            "# TYPE cuecast_rtmp_connections_total counter\ncuecast_rtmp_connections_total 2\n"
        ));
        assert!(text.contains("cuecast_live_streams 1\n"));
    }

    #[test]
    fn rtmps_refusals_by_reason() {
        let metrics = Metrics::default();
        metrics
            .rtmps_refused_plain_rtmp
            .fetch_add(3, Ordering::Relaxed);
        metrics.rtmps_refused_tls.fetch_add(1, Ordering::Relaxed);
        let text = metrics.render(&[]);
        let name = "cuecast_rtmps_handshake_failures_total";
        assert!(text.contains(&format!("# TYPE {name} counter\n")), "{text}");
        assert!(text.contains(&format!("{name}{{reason=\"plain_rtmp\"}} 3\n")));
        assert!(text.contains(&format!("{name}{{reason=\"timeout\"}} 0\n")));
        assert!(text.contains(&format!("{name}{{reason=\"tls\"}} 1\n")));
    }

    #[test]
    fn hls_requests_by_kind_and_status_class() {
        let metrics = Metrics::default();
        metrics.hls_requests.record(HlsObject::Part, 200);
        metrics.hls_requests.record(HlsObject::Part, 204);
        metrics.hls_requests.record(HlsObject::Multivariant, 503);
        metrics.hls_requests.record(HlsObject::Vod, 206);
        metrics.hls_requests.record(HlsObject::Segment, 304);
        metrics.hls_requests.record(HlsObject::Init, 700);
        assert_eq!(metrics.hls_requests.count(HlsObject::Part, 2), 2);
        assert_eq!(metrics.hls_requests.count(HlsObject::Init, 7), 0);
        assert_eq!(metrics.hls_requests.count(HlsObject::Init, 0), 0);
        let text = metrics.render(&[]);
        let name = "cuecast_hls_requests_total";
        assert!(text.contains(&format!("# TYPE {name} counter\n")), "{text}");
        for line in [
            "{kind=\"part\",status=\"2xx\"} 2",
            "{kind=\"multivariant\",status=\"5xx\"} 1",
            "{kind=\"vod\",status=\"2xx\"} 1",
            "{kind=\"segment\",status=\"3xx\"} 1",
            "{kind=\"media_playlist\",status=\"4xx\"} 0",
        ] {
            assert!(text.contains(&format!("{name}{line}\n")), "{line}: {text}");
        }
        assert!(!text.contains("status=\"1xx\""), "{text}");
    }

    #[test]
    fn ladder_metrics() {
        let metrics = Metrics::default();
        assert!(
            metrics
                .render(&[])
                .contains("cuecast_ladder_dropped_frames_total 0\n")
        );
        metrics.set_rung_lag("demo", "480p", 1_500_000_000);
        let text = metrics.render(&[]);
        assert!(
            text.contains("cuecast_ladder_lag_seconds{stream=\"demo\",rendition=\"480p\"} 1.500\n"),
            "{text}"
        );
        assert_eq!(metrics.rung_lag_ns("demo", "480p"), Some(1_500_000_000));
        metrics.remove_stream("demo");
        assert!(!metrics.render(&[]).contains("cuecast_ladder_lag_seconds"));
        assert_eq!(metrics.rung_lag_ns("demo", "480p"), None);
    }
}
