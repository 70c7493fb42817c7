//! The readers of cue carriage and CMAF boxes: `emsg` boxes, ID3v2.4 tags, and the
//! `moov`/`moof` walkers that place a cue in a chunk. What parses must write back to bytes
//! that parse to the same value.

#![no_main]

use cuecast::cues::emsg::{self, Emsg};
use cuecast::cues::mp4;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(parsed) = Emsg::parse(data)
        && let Some(bytes) = parsed.to_bytes()
    {
        assert_eq!(
            Emsg::parse(&bytes).as_ref(),
            Some(&parsed),
            "emsg round trip"
        );
    }
    if let Some(frames) = emsg::parse_id3(data)
        && let Some(tag) = emsg::id3_tag(&frames)
    {
        assert_eq!(emsg::parse_id3(&tag), Some(frames), "ID3 round trip");
    }
    let _ = mp4::moof_offset(data);
    if let Some(timing) = mp4::track_timing(data) {
        let _ = mp4::earliest_presentation_time(data, timing);
    }
    let (init, chunk) = data.split_at(data.len() / 2);
    if let Some(timing) = mp4::track_timing(init) {
        let _ = mp4::earliest_presentation_time(chunk, timing);
    }
});
