//! FLV tag bodies (legacy AVC/AAC and Enhanced RTMP HEVC/AV1) through the unpacker a publish
//! uses, and every configuration record it yields through the codec parsers behind the
//! pipeline's caps and the playlists' CODECS. The input is a sequence of tags:
//! `[flags u8][timestamp u32 LE][length u16 LE][body]` (flags bit 0: video, else audio).

#![no_main]

use bytes::Bytes;
use cuecast::ingest::flv::FlvUnpacker;
use libfuzzer_sys::fuzz_target;

mod media_unit;

fuzz_target!(|data: &[u8]| {
    let mut unpacker = FlvUnpacker::new();
    let mut rest = data;
    while rest.len() >= 7 {
        let flags = rest[0];
        let timestamp = u32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]);
        let len = usize::from(u16::from_le_bytes([rest[5], rest[6]]));
        rest = &rest[7..];
        let body = Bytes::copy_from_slice(&rest[..len.min(rest.len())]);
        rest = &rest[len.min(rest.len())..];
        let unit = if flags & 1 == 1 {
            unpacker.video(timestamp, body)
        } else {
            unpacker.audio(timestamp, body)
        };
        if let Ok(Some(unit)) = unit {
            media_unit::check(&unit);
        }
    }
});
