//! The few ISO BMFF (ISO/IEC 14496-12) facts cue carriage needs from cmafmux output: the
//! track timescale (`moov/trak/mdia/mdhd`), the earliest presentation time of a chunk
//! (`moof/traf/{tfhd,tfdt,trun}`), and where the chunk's `moof` starts. Pure readers over
//! byte slices; anything malformed is `None`.

/// Iterates the boxes of `data`: (type, payload after the header, offset of the box).
fn boxes(data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8], usize)> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let header = data.get(at..at + 8)?;
        let size32 = u32::from_be_bytes(header[0..4].try_into().ok()?);
        let kind: [u8; 4] = header[4..8].try_into().ok()?;
        let (size, header_len) = match size32 {
            0 => (data.len() - at, 8),
            1 => {
                let large = data.get(at + 8..at + 16)?;
                (
                    usize::try_from(u64::from_be_bytes(large.try_into().ok()?)).ok()?,
                    16,
                )
            }
            n => (usize::try_from(n).ok()?, 8),
        };
        if size < header_len {
            return None;
        }
        let payload = data.get(at + header_len..at.checked_add(size)?)?;
        let start = at;
        at += size;
        Some((kind, payload, start))
    })
}

/// The payload of the first child box `kind` of `data`.
fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(data).find(|(k, ..)| k == kind).map(|(_, p, _)| p)
}

fn be_u32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(data.get(at..at + 8)?.try_into().ok()?))
}

/// Facts of a single-track init segment (cmafmux writes one track per rendition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackTiming {
    /// `mdhd` timescale: ticks per second of the track's media timeline.
    pub timescale: u32,
    /// `trex` default_sample_duration (used when neither `tfhd` nor `trun` give one).
    pub default_sample_duration: u32,
}

/// Reads [`TrackTiming`] from an init segment (ftyp+moov).
pub fn track_timing(init: &[u8]) -> Option<TrackTiming> {
    let moov = child(init, b"moov")?;
    let mdhd = child(child(child(moov, b"trak")?, b"mdia")?, b"mdhd")?;
    let timescale = match *mdhd.first()? {
        1 => be_u32(mdhd, 4 + 16)?,
        _ => be_u32(mdhd, 4 + 8)?,
    };
    let default_sample_duration = child(moov, b"mvex")
        .and_then(|mvex| child(mvex, b"trex"))
        .and_then(|trex| be_u32(trex, 4 + 8))
        .unwrap_or(0);
    (timescale > 0).then_some(TrackTiming {
        timescale,
        default_sample_duration,
    })
}

/// Byte offset of the first top-level `moof` in a chunk (after an optional `styp`).
pub fn moof_offset(chunk: &[u8]) -> Option<usize> {
    boxes(chunk).find(|(k, ..)| k == b"moof").map(|(.., at)| at)
}

/// The earliest presentation time (decode time + composition offset) of the samples of the
/// first track fragment of a chunk, in track ticks.
pub fn earliest_presentation_time(chunk: &[u8], timing: TrackTiming) -> Option<u64> {
    let moof = child(chunk, b"moof")?;
    let traf = child(moof, b"traf")?;
    let tfhd = child(traf, b"tfhd")?;
    let tfhd_flags = be_u32(tfhd, 0)? & 0x00FF_FFFF;
    // tfhd: version/flags, track_ID, then optional fields in flag order.
    let mut at = 8;
    if tfhd_flags & 0x01 != 0 {
        at += 8; // base_data_offset
    }
    if tfhd_flags & 0x02 != 0 {
        at += 4; // sample_description_index
    }
    let default_duration = if tfhd_flags & 0x08 != 0 {
        be_u32(tfhd, at)?
    } else {
        timing.default_sample_duration
    };
    let tfdt = child(traf, b"tfdt")?;
    let mut decode_time = match *tfdt.first()? {
        1 => be_u64(tfdt, 4)?,
        _ => u64::from(be_u32(tfdt, 4)?),
    };
    let mut earliest: Option<u64> = None;
    for (kind, trun, _) in boxes(traf) {
        if &kind != b"trun" {
            continue;
        }
        let version = *trun.first()?;
        let flags = be_u32(trun, 0)? & 0x00FF_FFFF;
        let count = be_u32(trun, 4)?;
        let mut at = 8;
        if flags & 0x001 != 0 {
            at += 4; // data_offset
        }
        if flags & 0x004 != 0 {
            at += 4; // first_sample_flags
        }
        let per_sample = [0x100, 0x200, 0x400, 0x800]
            .iter()
            .filter(|&&f| flags & f != 0)
            .count()
            * 4;
        if per_sample == 0 {
            // Every sample has the default duration and no composition offset.
            earliest = Some(earliest.map_or(decode_time, |e| e.min(decode_time)));
            decode_time = decode_time
                .saturating_add(u64::from(count).saturating_mul(u64::from(default_duration)));
            continue;
        }
        // The samples must fit in the box (bounds the loop on hostile counts).
        if trun.len() < at + usize::try_from(count).ok()?.checked_mul(per_sample)? {
            return None;
        }
        for _ in 0..count {
            let duration = if flags & 0x100 != 0 {
                let d = be_u32(trun, at)?;
                at += 4;
                d
            } else {
                default_duration
            };
            if flags & 0x200 != 0 {
                at += 4; // size
            }
            if flags & 0x400 != 0 {
                at += 4; // flags
            }
            let offset: i64 = if flags & 0x800 != 0 {
                let raw = be_u32(trun, at)?;
                at += 4;
                if version == 0 {
                    i64::from(raw)
                } else {
                    i64::from(raw as i32)
                }
            } else {
                0
            };
            let pts =
                u64::try_from(i64::try_from(decode_time).ok()?.saturating_add(offset)).unwrap_or(0);
            earliest = Some(earliest.map_or(pts, |e| e.min(pts)));
            decode_time = decode_time.saturating_add(u64::from(duration));
        }
    }
    earliest.or(Some(decode_time))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A box with `kind` around `payload`.
    pub fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(payload);
        out
    }

    /// An init with one track of `timescale` and trex default duration `default`.
    pub fn init(timescale: u32, default: u32) -> Vec<u8> {
        let mut mdhd = vec![0u8; 4 + 8];
        mdhd.extend_from_slice(&timescale.to_be_bytes());
        mdhd.extend_from_slice(&[0; 8]);
        let trak = mp4_box(b"trak", &mp4_box(b"mdia", &mp4_box(b"mdhd", &mdhd)));
        let mut trex = vec![0u8; 4 + 8];
        trex.extend_from_slice(&default.to_be_bytes());
        let mvex = mp4_box(b"mvex", &mp4_box(b"trex", &trex));
        let moov = mp4_box(b"moov", &[trak, mvex].concat());
        [mp4_box(b"ftyp", b"cmf2\0\0\0\0"), moov].concat()
    }

    /// A chunk: moof (tfhd without defaults, tfdt v1, trun v1 with durations and composition
    /// offsets) + mdat.
    pub fn chunk(decode_time: u64, samples: &[(u32, i32)]) -> Vec<u8> {
        let tfhd = mp4_box(b"tfhd", &[0, 0, 0, 0, 0, 0, 0, 1]);
        let mut tfdt = vec![1, 0, 0, 0];
        tfdt.extend_from_slice(&decode_time.to_be_bytes());
        let mut trun = vec![1, 0, 0x09, 0x01];
        trun.extend_from_slice(&(samples.len() as u32).to_be_bytes());
        trun.extend_from_slice(&0u32.to_be_bytes()); // data offset
        for (duration, offset) in samples {
            trun.extend_from_slice(&duration.to_be_bytes());
            trun.extend_from_slice(&offset.to_be_bytes());
        }
        let traf = mp4_box(
            b"traf",
            &[tfhd, mp4_box(b"tfdt", &tfdt), mp4_box(b"trun", &trun)].concat(),
        );
        let moof = mp4_box(b"moof", &[mp4_box(b"mfhd", &[0; 8]), traf].concat());
        [moof, mp4_box(b"mdat", b"data")].concat()
    }

    #[test]
    fn reads_timescale_and_default_duration() {
        assert_eq!(
            track_timing(&init(90_000, 3000)),
            Some(TrackTiming {
                timescale: 90_000,
                default_sample_duration: 3000
            })
        );
        assert_eq!(track_timing(b"garbage"), None);
    }

    #[test]
    fn earliest_presentation_time_accounts_for_b_frames() {
        let timing = track_timing(&init(90_000, 3000)).expect("timing");
        // I (cto 6000), P (cto 9000), B (cto 0): pts 96000, 102000, 96000+... earliest = B?
        // decode times 90000, 93000, 96000 → pts 96000, 102000, 96000.
        let data = chunk(90_000, &[(3000, 6000), (3000, 9000), (3000, 0)]);
        assert_eq!(earliest_presentation_time(&data, timing), Some(96_000));
        let data = chunk(0, &[(3000, -3000), (3000, 3000)]);
        assert_eq!(earliest_presentation_time(&data, timing), Some(0));
        assert_eq!(moof_offset(&data), Some(0));
        let styp = [mp4_box(b"styp", b"cmf2"), data].concat();
        assert_eq!(moof_offset(&styp), Some(12));
        assert_eq!(earliest_presentation_time(b"junk", timing), None);
    }

    #[test]
    fn truncated_and_mutated_input_never_panics() {
        use super::super::emsg::{Emsg, parse_id3};
        let timing = track_timing(&init(90_000, 3000)).expect("timing");
        let good = [init(90_000, 3000), chunk(0, &[(3000, 100), (3000, -50)])].concat();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for cut in 0..good.len() {
            let data = &good[..cut];
            let _ = (track_timing(data), moof_offset(data));
            let _ = earliest_presentation_time(data, timing);
            let _ = (Emsg::parse(data), parse_id3(data));
        }
        for _ in 0..2000 {
            let mut data = good.clone();
            for _ in 0..4 {
                let at = (next() as usize) % data.len();
                data[at] = next() as u8;
            }
            let _ = (track_timing(&data), moof_offset(&data));
            let _ = earliest_presentation_time(&data, timing);
            let _ = (Emsg::parse(&data), parse_id3(&data));
        }
    }
}
