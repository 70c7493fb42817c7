//! `[srt]`: the SRT listener, its latency, encryption, limits and read batching.

use std::net::SocketAddr;

use serde::Deserialize;

use super::SrtSettings;
use crate::ingest::StreamConfig;
use crate::ingest::limits::ConnectionLimits;
use crate::setting::{Invalid, millis_or_off, positive_secs, secs};

/// `[srt]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Run the SRT listener.
    pub enabled: bool,
    /// UDP listen address.
    pub listen: SocketAddr,
    /// Receiver latency (SRTO_LATENCY / SRTO_RCVLATENCY), ms.
    pub latency_ms: u32,
    /// Passphrase every caller must use (empty = none), unless its stream has its own.
    pub passphrase: String,
    /// Key length for the listener's passphrase: 16, 24 or 32 bytes (AES-128/192/256).
    pub pbkeylen: u32,
    /// A caller that sends no data for this long is closed, seconds.
    pub idle_timeout_s: f64,
    /// Connection limit.
    pub max_connections: usize,
    /// Connection limit per caller address (IPv6: per /64).
    pub max_connections_per_ip: usize,
    /// Read batching period, ms (0 = off).
    pub read_batch_ms: u64,
}

impl Config {
    /// Checks what serde cannot; keys are relative to `[srt]`.
    pub fn validate(&self) -> Result<(), Invalid> {
        positive_secs("idle_timeout_s", self.idle_timeout_s)?;
        ConnectionLimits::validate(self.max_connections, self.max_connections_per_ip)?;
        if ![16, 24, 32].contains(&self.pbkeylen) {
            return Err(Invalid::new(
                "pbkeylen",
                "must be 16, 24 or 32 (AES-128/192/256)",
            ));
        }
        check_passphrase("passphrase", &self.passphrase)?;
        if self.read_batch_ms > 1000 {
            return Err(Invalid::new("read_batch_ms", "must be at most 1000 ms"));
        }
        if !(20..=60_000).contains(&self.latency_ms) {
            return Err(Invalid::new("latency_ms", "must be within 20..=60000 ms"));
        }
        Ok(())
    }

    /// The listener's settings, `None` when SRT is off. `app` is RTMP's application name
    /// (`rtmp.app`, accepted in stream ids), `streams` give their own passphrases, `takeover`
    /// is `ingest.takeover`.
    pub fn settings(
        &self,
        app: &str,
        streams: &[StreamConfig],
        takeover: bool,
    ) -> Option<SrtSettings> {
        self.enabled.then(|| SrtSettings {
            listen: self.listen,
            app: app.to_string(),
            latency_ms: self.latency_ms,
            passphrase: (!self.passphrase.is_empty()).then(|| self.passphrase.clone()),
            pbkeylen: self.pbkeylen,
            stream_passphrases: SrtSettings::stream_passphrases(streams),
            idle_timeout: secs(self.idle_timeout_s),
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            takeover,
            read_batch: millis_or_off(self.read_batch_ms),
        })
    }
}

/// SRT passphrases are 10 to 79 characters (`SRTO_PASSPHRASE`); empty means none.
pub fn check_passphrase(key: &str, passphrase: &str) -> Result<(), Invalid> {
    if passphrase.is_empty() || (10..=79).contains(&passphrase.len()) {
        Ok(())
    } else {
        Err(Invalid::new(
            key,
            format!(
                "an SRT passphrase has 10 to 79 characters, got {}",
                passphrase.len()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            enabled: true,
            listen: "127.0.0.1:8890".parse().unwrap(),
            latency_ms: 200,
            passphrase: String::new(),
            pbkeylen: 16,
            idle_timeout_s: 10.0,
            max_connections: 10,
            max_connections_per_ip: 4,
            read_batch_ms: 20,
        }
    }

    #[test]
    fn connection_limit_errors_name_the_key() {
        assert_eq!(config().validate(), Ok(()));
        type Change = fn(&mut Config);
        let cases: [(Change, &str); 3] = [
            (|c| c.max_connections = 0, "max_connections"),
            (|c| c.max_connections_per_ip = 0, "max_connections_per_ip"),
            (|c| c.max_connections_per_ip = 11, "max_connections_per_ip"),
        ];
        for (change, key) in cases {
            let mut bad = config();
            change(&mut bad);
            assert_eq!(bad.validate().unwrap_err().key, key);
        }
        let settings = config().settings("live", &[], false).expect("enabled");
        assert_eq!(
            (settings.max_connections, settings.max_connections_per_ip),
            (10, 4)
        );
    }
}
