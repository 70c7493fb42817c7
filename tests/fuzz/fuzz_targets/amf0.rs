//! AMF0 values as they arrive in RTMP command and data messages. Whatever decodes must
//! re-encode to bytes that decode to the same thing (encode ∘ decode is stable).

#![no_main]

use cuecast::ingest::rtmp::amf0;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(values) = amf0::decode_all(data) else {
        return;
    };
    let mut once = Vec::new();
    amf0::encode_all(&mut once, &values);
    let again = amf0::decode_all(&once).expect("what was encoded decodes");
    let mut twice = Vec::new();
    amf0::encode_all(&mut twice, &again);
    assert_eq!(once, twice, "AMF0 re-encoding is not stable");
});
