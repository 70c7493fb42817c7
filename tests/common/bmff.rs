//! A small ISO BMFF (MP4/CMAF) reader for the tests, independent of the server's.

/// Top-level boxes: (type, whole box bytes).
pub fn top_boxes(data: &[u8]) -> Vec<(String, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= data.len() {
        let size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        assert!(size >= 8 && at + size <= data.len(), "bad box at {at}");
        out.push((
            String::from_utf8_lossy(&data[at + 4..at + 8]).to_string(),
            &data[at..at + size],
        ));
        at += size;
    }
    out
}

/// The payload of the first descendant box along `path`.
pub fn find<'a>(data: &'a [u8], path: &[&str]) -> Option<&'a [u8]> {
    let (first, rest) = path.split_first()?;
    let (_, b) = top_boxes(data).into_iter().find(|(k, _)| k == first)?;
    let payload = &b[8..];
    if rest.is_empty() {
        Some(payload)
    } else {
        find(payload, rest)
    }
}

/// The `mdhd` timescale of an init segment's (first) track.
pub fn timescale(init: &[u8]) -> u64 {
    let mdhd = find(init, &["moov", "trak", "mdia", "mdhd"]).expect("mdhd");
    let at = if mdhd[0] == 1 { 20 } else { 12 };
    u64::from(u32::from_be_bytes(mdhd[at..at + 4].try_into().unwrap()))
}

/// The `tfdt` base media decode time of a fragment (bytes starting with its `moof`).
pub fn tfdt(fragment: &[u8]) -> u64 {
    let tfdt = find(fragment, &["moof", "traf", "tfdt"]).expect("tfdt");
    if tfdt[0] == 1 {
        u64::from_be_bytes(tfdt[4..12].try_into().unwrap())
    } else {
        u64::from(u32::from_be_bytes(tfdt[4..8].try_into().unwrap()))
    }
}

/// The `tfdt` of every top-level `moof` of a segment, in order: one per CMAF chunk.
pub fn fragment_times(segment: &[u8]) -> Vec<u64> {
    top_boxes(segment)
        .into_iter()
        .filter(|(kind, _)| kind == "moof")
        .map(|(_, moof)| tfdt(moof))
        .collect()
}
