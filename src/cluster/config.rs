//! `[cluster]`: the Redis server nodes share, and the URL other nodes reach this one at.

use std::time::Duration;

use serde::Deserialize;

use crate::setting::Invalid;

/// `[cluster]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `redis://[user:password@]host:port[/db]` (or `rediss://`); empty = a single node.
    pub redis_url: String,
    /// The HTTP base URL other nodes use to reach this node (`http://10.0.0.5:8080`); required
    /// when `redis_url` is set.
    pub node_url: String,
    /// How long a stream ownership lease lives without renewal, milliseconds (renewed at a third
    /// of it); a node that dies loses its streams this long after its last renewal.
    pub lease_ttl_ms: u64,
    /// How long connecting to Redis (and each command) may take, milliseconds.
    pub connect_timeout_ms: u64,
}

/// The validated cluster settings; `None` from [`Config::settings`] when single-node.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The Redis URL as configured.
    pub redis_url: String,
    /// The Redis URL with any password replaced by `***` (for logs and errors).
    pub redis_display: String,
    /// This node's base URL.
    pub node_url: reqwest::Url,
    /// Unique per process: the node URL plus a random suffix, so a restarted node never
    /// mistakes its previous life's leases for its own.
    pub node_id: String,
    /// Lease lifetime.
    pub lease_ttl: Duration,
    /// Connect and command timeout.
    pub connect_timeout: Duration,
}

impl Config {
    /// Checks what serde cannot; keys are relative to `[cluster]`.
    pub fn validate(&self) -> Result<(), Invalid> {
        self.settings().map(|_| ())
    }

    /// Whether this node is part of a cluster.
    pub fn enabled(&self) -> bool {
        !self.redis_url.trim().is_empty()
    }

    /// The settings, or `None` for a single node.
    pub fn settings(&self) -> Result<Option<Settings>, Invalid> {
        if !(100..=600_000).contains(&self.connect_timeout_ms) {
            return Err(Invalid::new("connect_timeout_ms", "must be 100 to 600000"));
        }
        if !(1_000..=600_000).contains(&self.lease_ttl_ms) {
            return Err(Invalid::new("lease_ttl_ms", "must be 1000 to 600000"));
        }
        if !self.enabled() {
            return Ok(None);
        }
        let redis_url = self.redis_url.trim().to_string();
        let parsed = reqwest::Url::parse(&redis_url)
            .map_err(|err| Invalid::new("redis_url", format!("not a URL: {err}")))?;
        if !matches!(parsed.scheme(), "redis" | "rediss") {
            return Err(Invalid::new(
                "redis_url",
                format!(
                    "must start with redis:// or rediss://, got {}://",
                    parsed.scheme()
                ),
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(Invalid::new("redis_url", "has no host"));
        }
        redis::Client::open(redis_url.as_str())
            .map_err(|err| Invalid::new("redis_url", err.to_string()))?;
        let mut display = parsed.clone();
        if display.password().is_some() {
            let _ = display.set_password(Some("***"));
        }
        if self.node_url.trim().is_empty() {
            return Err(Invalid::new(
                "node_url",
                "must be set when cluster.redis_url is (the URL other nodes reach this one at)",
            ));
        }
        let node_url = reqwest::Url::parse(self.node_url.trim())
            .map_err(|err| Invalid::new("node_url", format!("not a URL: {err}")))?;
        if !matches!(node_url.scheme(), "http" | "https") || node_url.host_str().is_none() {
            return Err(Invalid::new(
                "node_url",
                "must be an http:// or https:// URL with a host",
            ));
        }
        if node_url.query().is_some() || node_url.fragment().is_some() {
            return Err(Invalid::new(
                "node_url",
                "must not have a query or fragment",
            ));
        }
        let node_id = format!(
            "{}#{:016x}",
            node_url.as_str().trim_end_matches('/'),
            rand::random::<u64>()
        );
        Ok(Some(Settings {
            redis_url,
            redis_display: display.to_string(),
            node_url,
            node_id,
            lease_ttl: Duration::from_millis(self.lease_ttl_ms),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
        }))
    }

    /// One line for `cuecast check-config`.
    pub fn describe(&self) -> String {
        match self.settings() {
            Ok(Some(settings)) => format!(
                "cluster: Redis {} as node {} (lease {} ms)",
                settings.redis_display,
                settings.node_url.as_str().trim_end_matches('/'),
                self.lease_ttl_ms
            ),
            Ok(None) => "cluster: single node (in-memory fan-out)".to_string(),
            Err(err) => format!("cluster: invalid ({err})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(redis_url: &str, node_url: &str) -> Config {
        Config {
            redis_url: redis_url.into(),
            node_url: node_url.into(),
            lease_ttl_ms: 5_000,
            connect_timeout_ms: 2_000,
        }
    }

    #[test]
    fn empty_redis_url_is_a_single_node() {
        assert!(config("", "").settings().expect("valid").is_none());
    }

    #[test]
    fn clustered_needs_a_node_url() {
        let err = config("redis://127.0.0.1:6379", "")
            .validate()
            .expect_err("refused");
        assert_eq!(err.key, "node_url");
    }

    #[test]
    fn bad_urls_name_their_key() {
        assert_eq!(
            config("http://127.0.0.1:6379", "http://a:8080")
                .validate()
                .expect_err("scheme")
                .key,
            "redis_url"
        );
        assert_eq!(
            config("redis://127.0.0.1:6379", "ftp://a")
                .validate()
                .expect_err("scheme")
                .key,
            "node_url"
        );
        assert_eq!(
            config("not a url", "http://a:8080")
                .validate()
                .expect_err("syntax")
                .key,
            "redis_url"
        );
    }

    #[test]
    fn password_is_hidden_and_node_ids_differ() {
        let c = config("redis://:secret@127.0.0.1:6379/0", "http://10.0.0.5:8080/");
        let a = c.settings().expect("valid").expect("clustered");
        let b = c.settings().expect("valid").expect("clustered");
        assert!(!a.redis_display.contains("secret"), "{}", a.redis_display);
        assert!(
            a.node_id.starts_with("http://10.0.0.5:8080#"),
            "{}",
            a.node_id
        );
        assert_ne!(a.node_id, b.node_id);
    }
}
