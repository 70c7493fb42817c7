//! Strings clients put in URLs, headers and JSON bodies, through the parsers that check them:
//! LL-HLS delivery directives (query string, then the 400 checks against a playlist position),
//! SRT stream ids, bearer tokens, chat links, and the cue API's request body. The first byte
//! picks the parser; the rest is the input.

#![no_main]

use std::time::Duration;

use cuecast::chat::links;
use cuecast::cues::model::CueRequest;
use cuecast::hls::directives::Directives;
use cuecast::hls::packager::PartId;
use cuecast::ingest::srt::streamid;
use cuecast::users::token::TokenKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match which % 5 {
        0 => {
            if let Ok(directives) = Directives::parse(Some(&text)) {
                for (msn, part, per_segment) in [(0, 0, 1), (7, 3, 10), (u64::MAX, u32::MAX, 1)] {
                    let _ = directives.check(
                        PartId { msn, part },
                        per_segment,
                        Duration::from_millis(200),
                    );
                }
            }
        }
        1 => {
            let _ = streamid::parse(&text, "live");
            let _ = streamid::redacted(&text);
        }
        2 => {
            let key = TokenKey::new(b"fuzz secret");
            let _ = key.verify(&text, 1_700_000_000);
        }
        3 => {
            let allow = vec!["shop.example".to_string()];
            let filtered = links::strip_links(&text, &allow);
            assert!(filtered.removed <= text.len());
            for token in text.split_whitespace() {
                if let Some(host) = links::link_host(token) {
                    let _ = links::is_allowed(&host, &allow);
                }
                let _ = links::is_web_url(token);
            }
        }
        _ => {
            if let Ok(request) = serde_json::from_slice::<CueRequest>(rest) {
                let _ = request.validate(4096);
            }
        }
    }
});
