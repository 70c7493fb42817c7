//! The publishing name a client sends (RTMP `publish`, the key of an SRT stream id), checked
//! before anything is looked up or built from it.
//!
//! A publishing name is `KEY` or `KEY?query` (encoders append query strings). Refused: names
//! longer than [`MAX_PUBLISH_NAME`] bytes, control characters anywhere (NUL included), and in
//! the key: nothing at all, `/` or `\`, `%` (no percent-decoding is done, so `%2e%2e` is
//! refused rather than trusted to stay undecoded everywhere), and `..`. These are the stream
//! name bugs of RTMP servers that built file paths or store keys from the name.

/// Longest publishing name accepted, bytes (query included).
pub const MAX_PUBLISH_NAME: usize = 1024;

/// `Ok` when `name` may be used as a publishing name; otherwise why not.
pub fn check_publish_name(name: &str) -> Result<(), &'static str> {
    if name.len() > MAX_PUBLISH_NAME {
        return Err("longer than 1024 bytes");
    }
    if name.chars().any(char::is_control) {
        return Err("control character");
    }
    check_key(name.split('?').next().unwrap_or(name))
}

/// `Ok` when `key` (a publishing name without its query) is acceptable.
pub fn check_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("empty key");
    }
    if key.contains(['/', '\\']) {
        return Err("path separator in the key");
    }
    if key.contains('%') {
        return Err("percent-encoding in the key");
    }
    if key.contains("..") {
        return Err("`..` in the key");
    }
    if key.chars().any(char::is_control) {
        return Err("control character");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_names_pass() {
        for name in [
            "demo-key",
            "live_abc?token=1",
            "cck_AbC-dEf_0123456789",
            "key.with.dots?x=%2F",
            &"k".repeat(MAX_PUBLISH_NAME),
        ] {
            assert_eq!(check_publish_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn hostile_names_are_refused() {
        let long = "k".repeat(10 * 1024);
        for name in [
            long.as_str(),
            "../../etc/passwd",
            "..",
            "a/b",
            "a\\b",
            "%2e%2e",
            "%2e%2e%2fsecret",
            "demo-key\0.flv",
            "demo\nkey",
            "",
            "?token=1",
            "x\u{7f}",
        ] {
            assert!(check_publish_name(name).is_err(), "{name:?} accepted");
        }
    }
}
