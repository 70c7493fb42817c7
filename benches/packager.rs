//! Packager throughput: a synthetic live feed (200 ms chunks of ~60 kB, 10 per 2 s
//! segment, 30 s window) through `handle_chunk`, rendering the media playlist after each
//! chunk — the work the origin does per published part. Reported as chunks/s.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_main};
use cuecast::hls::packager::{CmafChunk, Packager, PackagerConfig};

const CHUNK_NS: u64 = 200_000_000;
const CHUNK_BYTES: usize = 60_000;
const CHUNKS_PER_SEGMENT: u64 = 10;

/// Endless feed over one shared 60 kB buffer (cloning `Bytes` does not copy).
struct Feed {
    packager: Packager,
    payload: Bytes,
    base: DateTime<Utc>,
    index: u64,
}

impl Feed {
    fn new() -> Self {
        let mut packager = Packager::new(PackagerConfig {
            segment_target: Duration::from_secs(2),
            part_target: Duration::from_millis(200),
            window: Duration::from_secs(30),
        });
        packager.handle_init(Bytes::from_static(b"ftyp+moov"));
        let base = Utc
            .with_ymd_and_hms(2024, 5, 1, 12, 0, 0)
            .single()
            .unwrap_or_default();
        let mut feed = Self {
            packager,
            payload: Bytes::from(vec![0x5a; CHUNK_BYTES]),
            base,
            index: 0,
        };
        // Warm up to a full window plus retention: steady state.
        for _ in 0..(2 * 30 * 5) {
            feed.push();
        }
        feed
    }

    fn push(&mut self) {
        let pts = self.index * CHUNK_NS;
        let fragment_start = self.index.is_multiple_of(CHUNKS_PER_SEGMENT);
        let offset = chrono::Duration::nanoseconds(i64::try_from(pts).unwrap_or(i64::MAX));
        let outcome = self.packager.handle_chunk(CmafChunk {
            data: self.payload.clone(),
            pts,
            duration: CHUNK_NS,
            fragment_start,
            independent: fragment_start,
            program_date_time: self.base + offset,
        });
        black_box(outcome);
        self.index += 1;
    }
}

fn bench_packager(c: &mut Criterion) {
    let mut group = c.benchmark_group("packager");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));

    for (name, low_latency) in [("chunk+plain_playlist", false), ("chunk+ll_playlist", true)] {
        let mut feed = Feed::new();
        group.bench_function(name, |b| {
            b.iter(|| {
                feed.push();
                let text = feed.packager.media_playlist(low_latency).to_string();
                black_box(text);
            });
        });
    }
    group.finish();
}

/// criterion's entry points, private so the generated `benches` function needs no docs.
mod harness {
    use criterion::criterion_group;
    criterion_group!(benches, super::bench_packager);
}
criterion_main!(harness::benches);
