//! SRT stream ids: which stream a caller wants to publish, and why a caller is refused.
//!
//! Pure functions, no I/O. Three forms are accepted (docs/srt.md):
//! - the SRT Access Control form (`SRT AccessControl.md`, "Standard Keys"):
//!   `#!::r=live/KEY,m=publish` — comma-separated `key=value` pairs in any order; `r` is the
//!   resource, `m` the mode (`publish`; `request` and `bidirectional` are refused with
//!   `SRT_REJX_BAD_MODE`), `u` (user), `s` (session id) and `h` (host) are accepted and ignored,
//!   `t` (type) must be `stream` when present;
//! - `publish:live/KEY` (the MediaMTX / SRS style);
//! - a bare `KEY`.
//!
//! In the resource, `live/KEY` and `KEY` are the same stream: the path before the last `/` must be
//! the application name (RTMP's `rtmp.app`, `live` by default) when present. A `?query` suffix on
//! the key (as OBS and some encoders add) is ignored, like for RTMP keys.

use std::fmt;

use crate::ingest::names::check_key;

/// SRT access-control reject reasons (`srt/access_control.h`), sent to the caller at handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// `SRT_REJX_BAD_REQUEST` (1400): the stream id cannot be parsed.
    BadRequest,
    /// `SRT_REJX_FORBIDDEN` (1403): unknown stream key.
    Forbidden,
    /// `SRT_REJX_NOTFOUND` (1404): no stream id, or a resource outside the application.
    NotFound,
    /// `SRT_REJX_BAD_MODE` (1405): `m=` other than `publish` (cuecast serves playback over HLS).
    BadMode,
    /// `SRT_REJX_CONFLICT` (1409): the stream already has a publisher.
    Conflict,
    /// `SRT_REJX_NOTSUP_MEDIA` (1415): `t=` other than `stream`.
    UnsupportedMedia,
    /// `SRT_REJX_OVERLOAD` (1402): connection limit reached.
    Overload,
}

impl RejectReason {
    /// The numeric code given to `srt_setrejectreason`.
    pub fn code(self) -> i32 {
        match self {
            RejectReason::BadRequest => 1400,
            RejectReason::Overload => 1402,
            RejectReason::Forbidden => 1403,
            RejectReason::NotFound => 1404,
            RejectReason::BadMode => 1405,
            RejectReason::Conflict => 1409,
            RejectReason::UnsupportedMedia => 1415,
        }
    }

    /// The libsrt constant name, for logs.
    pub fn name(self) -> &'static str {
        match self {
            RejectReason::BadRequest => "SRT_REJX_BAD_REQUEST",
            RejectReason::Overload => "SRT_REJX_OVERLOAD",
            RejectReason::Forbidden => "SRT_REJX_FORBIDDEN",
            RejectReason::NotFound => "SRT_REJX_NOTFOUND",
            RejectReason::BadMode => "SRT_REJX_BAD_MODE",
            RejectReason::Conflict => "SRT_REJX_CONFLICT",
            RejectReason::UnsupportedMedia => "SRT_REJX_NOTSUP_MEDIA",
        }
    }
}

/// Why a stream id was refused: the code for the caller and a reason for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Sent to the caller.
    pub reason: RejectReason,
    /// Logged.
    pub detail: String,
}

impl Rejection {
    fn new(reason: RejectReason, detail: impl Into<String>) -> Rejection {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.reason.name(),
            self.reason.code(),
            self.detail
        )
    }
}

/// What a caller asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    /// The stream key (still to be looked up).
    pub key: String,
    /// The `u=` user, if given (logged).
    pub user: Option<String>,
}

/// Longest stream id SRT carries (`SRTO_STREAMID` is limited to 512 bytes).
pub const MAX_STREAM_ID: usize = 512;

/// Parses a stream id into a publish request for application `app` (empty: any application).
pub fn parse(stream_id: &str, app: &str) -> Result<PublishRequest, Rejection> {
    let stream_id = stream_id.trim();
    if stream_id.is_empty() {
        return Err(Rejection::new(
            RejectReason::NotFound,
            "no stream id: set streamid to `#!::r=live/KEY,m=publish`, `publish:live/KEY` or `KEY`",
        ));
    }
    if stream_id.len() > MAX_STREAM_ID {
        return Err(Rejection::new(
            RejectReason::BadRequest,
            "stream id longer than 512 bytes",
        ));
    }
    if stream_id.chars().any(char::is_control) {
        return Err(Rejection::new(
            RejectReason::BadRequest,
            "control character in the stream id",
        ));
    }
    if let Some(pairs) = stream_id.strip_prefix("#!::") {
        return parse_access_control(pairs, app);
    }
    if let Some(resource) = stream_id.strip_prefix("publish:") {
        return Ok(PublishRequest {
            key: resource_key(resource, app)?,
            user: None,
        });
    }
    if let Some((mode, _)) = stream_id.split_once(':')
        && matches!(mode, "read" | "request" | "play")
    {
        return Err(Rejection::new(
            RejectReason::BadMode,
            format!("mode `{mode}` is not served over SRT (play over HLS)"),
        ));
    }
    Ok(PublishRequest {
        key: resource_key(stream_id, app)?,
        user: None,
    })
}

/// The `#!::k=v,k=v` form.
fn parse_access_control(pairs: &str, app: &str) -> Result<PublishRequest, Rejection> {
    let mut resource = None;
    let mut mode = None;
    let mut user = None;
    for pair in pairs.split(',') {
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            Rejection::new(
                RejectReason::BadRequest,
                format!("`{pair}` is not a key=value pair"),
            )
        })?;
        let slot = match key.trim() {
            "r" => &mut resource,
            "m" => &mut mode,
            "u" => &mut user,
            "t" => {
                if value != "stream" {
                    return Err(Rejection::new(
                        RejectReason::UnsupportedMedia,
                        format!("type t={value} is not supported (only t=stream)"),
                    ));
                }
                continue;
            }
            // Session id and host: accepted, not used.
            "s" | "h" => continue,
            other => {
                tracing::debug!(key = other, "SRT stream id: ignoring unknown key");
                continue;
            }
        };
        if slot.replace(value.to_string()).is_some() {
            return Err(Rejection::new(
                RejectReason::BadRequest,
                format!("key `{}` given twice", key.trim()),
            ));
        }
    }
    // The SRT default mode is `request`; a server that only takes publishers treats a missing
    // `m` as `publish` (docs/srt.md) and refuses the modes it does not serve.
    match mode.as_deref() {
        None | Some("publish") => {}
        Some(other) => {
            return Err(Rejection::new(
                RejectReason::BadMode,
                format!(
                    "mode m={other} is not served over SRT (publish with m=publish; play over HLS)"
                ),
            ));
        }
    }
    let resource = resource.ok_or_else(|| {
        Rejection::new(
            RejectReason::NotFound,
            "no resource: add r=live/KEY to the stream id",
        )
    })?;
    Ok(PublishRequest {
        key: resource_key(&resource, app)?,
        user,
    })
}

/// `live/KEY` or `KEY` (optionally with a `?query`, ignored) → `KEY`.
fn resource_key(resource: &str, app: &str) -> Result<String, Rejection> {
    let resource = resource.split('?').next().unwrap_or(resource);
    let key = match resource.rsplit_once('/') {
        Some((prefix, key)) => {
            let prefix = prefix.trim_matches('/');
            if !prefix.is_empty() && !app.is_empty() && prefix != app {
                return Err(Rejection::new(
                    RejectReason::NotFound,
                    format!("unknown application `{prefix}` (use `{app}/KEY`)"),
                ));
            }
            key
        }
        None => resource,
    };
    if key.is_empty() {
        return Err(Rejection::new(
            RejectReason::NotFound,
            "empty stream key in the stream id",
        ));
    }
    check_key(key).map_err(|reason| {
        Rejection::new(
            RejectReason::BadRequest,
            format!("refused stream key: {reason}"),
        )
    })?;
    Ok(key.to_string())
}

/// The stream id for logs, without the stream key: `#!::r=live/***,m=publish`. Ids that do not
/// parse are shown by length only (they may hold a mistyped key).
pub fn redacted(stream_id: &str) -> String {
    match parse(stream_id, "") {
        Ok(request) => stream_id.replace(&request.key, "***"),
        Err(_) => match stream_id.rsplit_once('/') {
            Some((prefix, _)) if stream_id.len() <= MAX_STREAM_ID => format!("{prefix}/***"),
            _ => format!("<{} bytes>", stream_id.len()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_stream_ids_are_bad_requests() {
        let long = format!("publish:live/{}", "k".repeat(1024));
        for id in [
            long.as_str(),
            "publish:live/..",
            "publish:live/%2e%2e",
            "#!::r=live/a%2fb,m=publish",
            "publish:live/demo-key\0",
            "demo\\key",
        ] {
            let rejection = parse(id, "live").expect_err(id);
            assert_eq!(
                rejection.reason,
                RejectReason::BadRequest,
                "{id}: {rejection}"
            );
        }
    }

    fn key(stream_id: &str) -> Result<String, RejectReason> {
        parse(stream_id, "live")
            .map(|r| r.key)
            .map_err(|e| e.reason)
    }

    #[test]
    fn the_three_forms_name_the_same_key() {
        for id in [
            "#!::r=live/abc,m=publish",
            "#!::m=publish,r=live/abc",
            "#!::u=host1,r=live/abc,m=publish",
            "#!::r=abc,m=publish,s=123,h=example.com,t=stream",
            "#!::r=live/abc",
            "publish:live/abc",
            "publish:abc",
            "abc",
            "live/abc",
            "abc?obs=1",
            "publish:live/abc?x=y",
            " abc ",
        ] {
            assert_eq!(key(id), Ok("abc".to_string()), "{id}");
        }
        let request = parse("#!::u=alice,r=live/abc,m=publish", "live").unwrap();
        assert_eq!(request.user.as_deref(), Some("alice"));
    }

    #[test]
    fn other_modes_are_refused_with_bad_mode() {
        for id in [
            "#!::r=live/abc,m=request",
            "#!::r=live/abc,m=bidirectional",
            "read:live/abc",
            "request:abc",
        ] {
            assert_eq!(key(id), Err(RejectReason::BadMode), "{id}");
        }
    }

    #[test]
    fn malformed_ids_are_refused_with_a_reason() {
        assert_eq!(key(""), Err(RejectReason::NotFound));
        assert_eq!(key("#!::"), Err(RejectReason::BadRequest));
        assert_eq!(key("#!::r"), Err(RejectReason::BadRequest));
        assert_eq!(key("#!::m=publish"), Err(RejectReason::NotFound));
        assert_eq!(
            key("#!::r=live/a,r=live/b,m=publish"),
            Err(RejectReason::BadRequest)
        );
        assert_eq!(
            key("#!::r=live/a,t=file"),
            Err(RejectReason::UnsupportedMedia)
        );
        assert_eq!(key("other/abc"), Err(RejectReason::NotFound));
        assert_eq!(key("publish:live/"), Err(RejectReason::NotFound));
        assert_eq!(key(&"k".repeat(600)), Err(RejectReason::BadRequest));
        let rejection = parse("#!::r=live/a,m=request", "live").unwrap_err();
        assert!(rejection.to_string().contains("SRT_REJX_BAD_MODE (1405)"));
    }

    #[test]
    fn logs_never_show_the_key() {
        assert_eq!(
            redacted("#!::r=live/secret,m=publish"),
            "#!::r=live/***,m=publish"
        );
        assert_eq!(redacted("publish:live/secret"), "publish:live/***");
        assert_eq!(redacted("secret"), "***");
        assert_eq!(redacted("#!::r=live/secret,m=request"), "#!::r=live/***");
        assert_eq!(redacted("#!::r"), "<5 bytes>");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut state = 0x2545_f491_u32;
        for _ in 0..2000 {
            let len = (state % 40) as usize;
            let text: String = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    b"#!:=,/?rmuts live"[(state % 17) as usize] as char
                })
                .collect();
            let _ = parse(&text, "live");
        }
    }
}
