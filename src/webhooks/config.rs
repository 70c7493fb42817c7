//! `[webhooks]`: the endpoints that receive signed events, their timeout and retry schedule,
//! and whether private addresses may be targets (SSRF: refused unless `allow_private`).

use std::net::{IpAddr, ToSocketAddrs};
use std::time::Duration;

use serde::Deserialize;

use super::admission::{AdmissionConfig, AdmissionSettings};
use super::event::EventKind;
use super::sign::Secret;
use crate::setting::Invalid;

/// `[webhooks]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where events go; none = webhooks off.
    pub endpoints: Vec<EndpointConfig>,
    /// How long one delivery attempt may take, milliseconds.
    pub timeout_ms: u64,
    /// Delay before the first retry, milliseconds (doubles each retry, with jitter).
    pub retry_initial_ms: u64,
    /// Longest delay between two attempts, milliseconds.
    pub retry_max_ms: u64,
    /// Attempts per event, the first included; then the event is given up (and counted).
    pub max_attempts: u32,
    /// Events waiting per endpoint; when full, the oldest is dropped (and counted).
    pub queue_capacity: usize,
    /// Allow targets on loopback, link-local, private, unspecified or multicast addresses.
    pub allow_private: bool,
    /// The publish admission hook.
    pub admission: AdmissionConfig,
}

/// `[[webhooks.endpoints]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Where to POST (http or https).
    pub url: String,
    /// The signing secret, `whsec_` + base64.
    pub secret: String,
    /// The event types it receives; empty = all.
    #[serde(default)]
    pub events: Vec<String>,
}

/// One endpoint ready to deliver to.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The URL.
    pub url: reqwest::Url,
    /// The signing key.
    pub secret: Secret,
    /// The event types it receives; empty = all.
    pub events: Vec<EventKind>,
}

impl Endpoint {
    /// Whether it receives events of `kind`.
    pub fn wants(&self, kind: EventKind) -> bool {
        self.events.is_empty() || self.events.contains(&kind)
    }
}

/// The delivery settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Per attempt.
    pub timeout: Duration,
    /// The retry schedule.
    pub backoff: super::delivery::Backoff,
    /// Per-endpoint queue bound.
    pub queue_capacity: usize,
    /// Private targets allowed (also at connect time).
    pub allow_private: bool,
}

impl Config {
    /// Checks what serde cannot, the URLs' addresses included; keys are relative to
    /// `[webhooks]`.
    pub fn validate(&self) -> Result<(), Invalid> {
        self.settings()?;
        self.admission().map(|_| ())
    }

    /// The admission hook's settings, `None` when `admission.url` is empty.
    pub fn admission(&self) -> Result<Option<AdmissionSettings>, Invalid> {
        self.admission
            .settings(self.allow_private)
            .map_err(|err| err.within("admission"))
    }

    /// The delivery settings (validated).
    pub fn settings(&self) -> Result<Settings, Invalid> {
        if !(1..=60_000).contains(&self.timeout_ms) {
            return Err(Invalid::new("timeout_ms", "must be 1 to 60000"));
        }
        if self.retry_initial_ms == 0 {
            return Err(Invalid::new("retry_initial_ms", "must be positive"));
        }
        if self.retry_max_ms < self.retry_initial_ms {
            return Err(Invalid::new(
                "retry_max_ms",
                "must be at least webhooks.retry_initial_ms",
            ));
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err(Invalid::new("max_attempts", "must be 1 to 100"));
        }
        if !(1..=1_000_000).contains(&self.queue_capacity) {
            return Err(Invalid::new("queue_capacity", "must be 1 to 1000000"));
        }
        let mut endpoints = Vec::with_capacity(self.endpoints.len());
        for (i, endpoint) in self.endpoints.iter().enumerate() {
            let key = |field: &str| format!("endpoints[{i}].{field}");
            let url = check_url(&endpoint.url, self.allow_private)
                .map_err(|reason| Invalid::new(key("url"), reason))?;
            let secret = Secret::parse(&endpoint.secret)
                .map_err(|reason| Invalid::new(key("secret"), reason))?;
            let events = endpoint
                .events
                .iter()
                .map(|name| {
                    EventKind::parse(name).ok_or_else(|| {
                        Invalid::new(
                            key("events"),
                            format!("unknown event `{name}` (known: {})", EventKind::names()),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            endpoints.push(Endpoint {
                url,
                secret,
                events,
            });
        }
        Ok(Settings {
            endpoints,
            timeout: Duration::from_millis(self.timeout_ms),
            backoff: super::delivery::Backoff {
                initial: Duration::from_millis(self.retry_initial_ms),
                max: Duration::from_millis(self.retry_max_ms),
                max_attempts: self.max_attempts,
            },
            queue_capacity: self.queue_capacity,
            allow_private: self.allow_private,
        })
    }
}

/// Parses a target URL: http or https with a host; unless `allow_private`, a host that is (or
/// resolves to) a forbidden address is refused. A name that does not resolve now is accepted:
/// the address is checked again at every connection.
pub fn check_url(url: &str, allow_private: bool) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|err| format!("`{url}` is not a URL: {err}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("`{url}`: only http and https are allowed"));
    }
    let Some(host) = parsed.host() else {
        return Err(format!("`{url}` has no host"));
    };
    if allow_private {
        return Ok(parsed);
    }
    let port = parsed.port_or_known_default().unwrap_or(80);
    let addrs: Vec<IpAddr> = match host {
        url::Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
        url::Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
        url::Host::Domain(name) => (name, port)
            .to_socket_addrs()
            .map(|addrs| addrs.map(|a| a.ip()).collect())
            .unwrap_or_default(),
    };
    if let Some(ip) = addrs.into_iter().find(|ip| forbidden(*ip)) {
        return Err(format!(
            "`{url}` targets {ip}, a {} address (set webhooks.allow_private = true to allow it)",
            kind_of(ip)
        ));
    }
    Ok(parsed)
}

/// Whether `ip` is a target refused without `allow_private`: loopback, link-local (cloud
/// metadata 169.254.169.254 included), private, shared (100.64/10), unspecified, multicast or
/// broadcast; an IPv4-mapped IPv6 address is judged as its IPv4 address.
pub fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
                || v4.octets()[0] == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

fn kind_of(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => "loopback",
        IpAddr::V6(v6) if v6.is_loopback() => "loopback",
        IpAddr::V4(v4) if v4.is_link_local() => "link-local",
        IpAddr::V4(v4) if v4.is_unspecified() => "unspecified",
        IpAddr::V6(v6) if v6.is_unspecified() => "unspecified",
        ip if ip.is_multicast() => "multicast",
        _ => "private or link-local",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn config(url: &str, allow_private: bool) -> Config {
        Config {
            endpoints: vec![EndpointConfig {
                url: url.into(),
                secret: SECRET.into(),
                events: vec![],
            }],
            timeout_ms: 5000,
            retry_initial_ms: 500,
            retry_max_ms: 60_000,
            max_attempts: 8,
            queue_capacity: 1000,
            allow_private,
            admission: AdmissionConfig {
                url: String::new(),
                secret: String::new(),
                timeout_ms: 1000,
                on_timeout: super::super::admission::OnTimeout::Deny,
            },
        }
    }

    #[test]
    fn private_and_metadata_targets_are_refused_naming_the_key_unless_allowed() {
        for url in [
            "http://127.0.0.1/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://[::1]/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://224.0.0.1/",
            "http://localhost:9/",
        ] {
            let err = config(url, false).validate().unwrap_err();
            assert_eq!(err.key, "endpoints[0].url", "{url}");
            assert!(
                err.reason.contains("allow_private"),
                "{url}: {}",
                err.reason
            );
            assert!(config(url, true).validate().is_ok(), "{url} allowed");
        }
        assert!(
            config("https://93.184.215.14/hook", false)
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn schemes_secrets_events_and_bounds_are_checked() {
        let err = config("ftp://93.184.215.14/", false)
            .validate()
            .unwrap_err();
        assert_eq!(err.key, "endpoints[0].url");
        let mut c = config("http://93.184.215.14/", false);
        c.endpoints[0].secret = "nope".into();
        assert_eq!(c.validate().unwrap_err().key, "endpoints[0].secret");
        let mut c = config("http://93.184.215.14/", false);
        c.endpoints[0].events = vec!["stream.started".into(), "stream.exploded".into()];
        let err = c.validate().unwrap_err();
        assert_eq!(err.key, "endpoints[0].events");
        assert!(err.reason.contains("stream.exploded"));
        let mut c = config("http://93.184.215.14/", false);
        c.retry_max_ms = 10;
        assert_eq!(c.validate().unwrap_err().key, "retry_max_ms");
        let mut c = config("http://93.184.215.14/", false);
        c.admission.url = "http://169.254.169.254/".into();
        c.admission.secret = SECRET.into();
        assert_eq!(c.validate().unwrap_err().key, "admission.url");
        c.allow_private = true;
        assert!(c.validate().is_ok());
        let mut c = config("http://93.184.215.14/", false);
        c.max_attempts = 0;
        assert_eq!(c.validate().unwrap_err().key, "max_attempts");
    }

    #[test]
    fn public_addresses_are_not_forbidden() {
        for ip in ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "172.32.0.1"] {
            assert!(!forbidden(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["100.64.0.1", "169.254.169.254", "fe80::1", "fc00::1", "::"] {
            assert!(forbidden(ip.parse().unwrap()), "{ip}");
        }
    }
}
