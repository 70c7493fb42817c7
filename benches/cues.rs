//! Cue carriage cost on the hot paths (criterion):
//! - `Carriage::handle_chunk` per published chunk: nothing due (the cost every chunk of every
//!   rendition now pays) and one cue due (an emsg + ID3 tag written and spliced before `moof`);
//! - `track::render` of a playlist's EXT-X-DATERANGEs with 10 and 100 cues (once per playlist
//!   update and form, shared by all readers through the render cache).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_main};
use cuecast::cues::model::{Cta, Cue, CueKind, CueSpec, Product, Source};
use cuecast::cues::track::{Carriage, CueTrack, View, render};
use cuecast::hls::packager::CmafChunk;

fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(payload);
    out
}

/// ftyp + moov with one 90 kHz track.
fn init() -> Vec<u8> {
    let mut mdhd = vec![0u8; 12];
    mdhd.extend_from_slice(&90_000u32.to_be_bytes());
    mdhd.extend_from_slice(&[0; 8]);
    let trak = mp4_box(b"trak", &mp4_box(b"mdia", &mp4_box(b"mdhd", &mdhd)));
    [mp4_box(b"ftyp", b"cmf2"), mp4_box(b"moov", &trak)].concat()
}

/// A 200 ms chunk of 6 frames (moof with tfhd/tfdt/trun + a 60 kB mdat).
fn chunk(decode_time: u64) -> Vec<u8> {
    let tfhd = mp4_box(b"tfhd", &[0, 0, 0, 0, 0, 0, 0, 1]);
    let mut tfdt = vec![1, 0, 0, 0];
    tfdt.extend_from_slice(&decode_time.to_be_bytes());
    let mut trun = vec![1, 0, 0x09, 0x01, 0, 0, 0, 6, 0, 0, 0, 0];
    for _ in 0..6 {
        trun.extend_from_slice(&3000u32.to_be_bytes());
        trun.extend_from_slice(&3000i32.to_be_bytes());
    }
    let traf = mp4_box(
        b"traf",
        &[tfhd, mp4_box(b"tfdt", &tfdt), mp4_box(b"trun", &trun)].concat(),
    );
    let moof = mp4_box(b"moof", &[mp4_box(b"mfhd", &[0; 8]), traf].concat());
    [moof, mp4_box(b"mdat", &vec![0x5a; 60_000])].concat()
}

fn cue(seq: i64, start_ns: u64) -> Cue {
    let base = Utc
        .with_ymd_and_hms(2026, 1, 1, 12, 0, 0)
        .single()
        .unwrap_or_default();
    Cue {
        seq,
        id: format!("cue-{seq:016x}"),
        stream: "demo".into(),
        session: "s".into(),
        spec: CueSpec {
            kind: CueKind::Product,
            duration: Some(Duration::from_secs(15)),
            end_on_next: false,
            product: Some(Product {
                id: "sku-123".into(),
                title: Some("Rose perfume 50 ml".into()),
                price: Some("49.00".into()),
                currency: Some("USD".into()),
                image_url: Some("https://shop.example/i/sku-123.jpg".into()),
                cta: Some(Cta {
                    label: "Buy now".into(),
                    url: "https://shop.example/p/sku-123".into(),
                }),
            }),
            data: serde_json::json!({}),
        },
        start_ns,
        start_date: base + chrono::Duration::nanoseconds(start_ns as i64),
        ended_ns: None,
        source: Source::Api,
        published_ns: start_ns,
    }
}

fn bench(c: &mut Criterion) {
    let data = Bytes::from(chunk(900_000));
    let make = || CmafChunk {
        data: data.clone(),
        pts: 10_000_000_000,
        duration: 200_000_000,
        fragment_start: false,
        independent: false,
        program_date_time: Utc::now(),
    };
    let idle = CueTrack::default();
    let mut carriage = Carriage::default();
    carriage.handle_init(&init());
    c.bench_function("carriage: chunk, no cue due", |b| {
        b.iter(|| black_box(carriage.handle_chunk(&idle, make())))
    });
    let track = CueTrack::default();
    track.add(cue(1, 10_050_000_000));
    c.bench_function(
        "carriage: chunk carrying one cue (emsg + ID3 spliced)",
        |b| {
            b.iter(|| {
                let (out, carried) = carriage.handle_chunk(&track, make());
                carriage.requeue(carried);
                black_box(out)
            })
        },
    );
    for count in [10u64, 100] {
        let cues: Vec<Arc<Cue>> = (0..count)
            .map(|i| Arc::new(cue(i as i64, i * 20_000_000_000)))
            .collect();
        let view = View {
            window_start: None,
            now_ns: count * 20_000_000_000,
            ended: false,
            delta: None,
        };
        c.bench_function(&format!("render: {count} DATERANGEs"), |b| {
            b.iter(|| black_box(render(&cues, &view)))
        });
    }
}

/// criterion's entry points, private so the generated `benches` function needs no docs.
mod harness {
    use criterion::criterion_group;
    criterion_group!(benches, super::bench);
}
criterion_main!(harness::benches);
