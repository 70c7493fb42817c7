//! `[rtmp]`: the listener, the application name, chunk and message sizes, limits and read
//! batching; `[rtmps]`: the TLS listener beside it and its certificate.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::SessionConfig;
use super::server::RtmpSettings;
use super::tls::{DEV_CERT_VALIDITY, TlsError, TlsSettings};
use crate::ingest::limits::ConnectionLimits;
use crate::setting::{Invalid, millis_or_off, positive_secs, secs};
use crate::tls::{self, Issued};

/// `[rtmp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Application name publishers connect to.
    pub app: String,
    /// Outgoing chunk size.
    pub chunk_size: u32,
    /// Largest accepted message.
    pub max_message_size: usize,
    /// Idle timeout, seconds.
    pub idle_timeout_s: f64,
    /// Time from accepting a connection to its publish starting, seconds.
    pub handshake_timeout_s: f64,
    /// Connection limit (RTMP and RTMPS together).
    pub max_connections: usize,
    /// Connection limit per client address (IPv6: per /64).
    pub max_connections_per_ip: usize,
    /// Read batching period, ms (0 = off).
    pub read_batch_ms: u64,
}

impl Config {
    /// Checks what serde cannot; keys are relative to `[rtmp]`.
    pub fn validate(&self) -> Result<(), Invalid> {
        positive_secs("idle_timeout_s", self.idle_timeout_s)?;
        positive_secs("handshake_timeout_s", self.handshake_timeout_s)?;
        ConnectionLimits::validate(self.max_connections, self.max_connections_per_ip)?;
        if !(128..=65536).contains(&self.chunk_size) {
            return Err(Invalid::new("chunk_size", "must be within 128..=65536"));
        }
        if self.max_message_size < 1024 {
            return Err(Invalid::new("max_message_size", "must be at least 1024"));
        }
        if self.app.is_empty() {
            return Err(Invalid::new("app", "must not be empty"));
        }
        Ok(())
    }

    /// The RTMP server's settings.
    pub fn settings(&self) -> RtmpSettings {
        RtmpSettings {
            app: self.app.clone(),
            session: SessionConfig {
                chunk_size: self.chunk_size,
                max_message_size: self.max_message_size,
                ..SessionConfig::default()
            },
            idle_timeout: secs(self.idle_timeout_s),
            handshake_timeout: secs(self.handshake_timeout_s),
            limits: ConnectionLimits::new(self.max_connections, self.max_connections_per_ip),
            read_batch: millis_or_off(self.read_batch_ms),
        }
    }
}

/// `[rtmps]`: RTMP over TLS on its own listener. Sessions, stream keys and limits are those of
/// `[rtmp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Run the RTMPS listener.
    pub enabled: bool,
    /// Listen address.
    pub listen: SocketAddr,
    /// Operator certificate chain (PEM); empty = development certificate.
    pub cert_file: PathBuf,
    /// Operator private key (PEM).
    pub key_file: PathBuf,
    /// Names in the development certificate (the listen address is added when it is one).
    pub dev_cert_names: Vec<String>,
    /// Time a client has to complete the TLS handshake, seconds.
    pub handshake_timeout_s: f64,
}

impl TlsConfig {
    /// Checks what serde cannot; keys are relative to `[rtmps]`.
    pub fn validate(&self) -> Result<(), Invalid> {
        positive_secs("handshake_timeout_s", self.handshake_timeout_s)?;
        if self.cert_file.as_os_str().is_empty() != self.key_file.as_os_str().is_empty() {
            return Err(Invalid::new(
                "key_file",
                "rtmps.cert_file and rtmps.key_file must be set together",
            ));
        }
        if self.dev_cert_names.is_empty() {
            return Err(Invalid::new("dev_cert_names", "must not be empty"));
        }
        for (i, name) in self.dev_cert_names.iter().enumerate() {
            if name.is_empty() || rcgen::CertificateParams::new(vec![name.clone()]).is_err() {
                return Err(Invalid::new(
                    format!("dev_cert_names[{i}]"),
                    format!("`{name}` is not a DNS name or an IP address"),
                ));
            }
        }
        Ok(())
    }

    /// True when no certificate is configured and a development one is made at startup.
    pub fn is_development(&self) -> bool {
        self.cert_file.as_os_str().is_empty()
    }

    /// The names of the development certificate: `dev_cert_names`, and the listen address when
    /// it is a specific one (not 0.0.0.0 or ::).
    pub fn dev_names(&self) -> Vec<String> {
        let mut names = self.dev_cert_names.clone();
        let ip = self.listen.ip();
        if !ip.is_unspecified() && !names.contains(&ip.to_string()) {
            names.push(ip.to_string());
        }
        names
    }

    /// The certificate the listener presents: the configured files, or a development
    /// certificate made at `now_s` (with a warning that clients cannot verify it).
    pub fn certificate(&self, now_s: i64) -> Result<Issued, TlsError> {
        if !self.is_development() {
            return tls::load(&self.cert_file, &self.key_file).map_err(TlsError::Certificate);
        }
        let names = self.dev_names();
        let issued = tls::generate(
            &names,
            "cuecast rtmps (development)",
            now_s,
            DEV_CERT_VALIDITY,
        )
        .map_err(TlsError::Certificate)?;
        tracing::warn!(
            names = ?names,
            sha256 = %tls::hex(&issued.sha256),
            "rtmps: no rtmps.cert_file/key_file, serving a self-signed development certificate; \
             encoders must skip verification (ffmpeg -tls_verify 0, the default) — configure a real certificate before exposing the server"
        );
        Ok(issued)
    }

    /// The listener's settings with its certificate (`None` when disabled).
    pub fn settings(&self, now_s: i64) -> Result<Option<TlsSettings>, TlsError> {
        if !self.enabled {
            return Ok(None);
        }
        let issued = self.certificate(now_s)?;
        TlsSettings::new(
            self.listen,
            &issued,
            secs(self.handshake_timeout_s),
            self.is_development(),
        )
        .map(Some)
    }

    /// One line for `cuecast check-config`: where RTMPS listens and with which certificate.
    pub fn describe(&self) -> String {
        if !self.enabled {
            return "rtmps: off".to_string();
        }
        if self.is_development() {
            format!(
                "rtmps: {} with a self-signed development certificate for {}",
                self.listen,
                self.dev_names().join(", ")
            )
        } else {
            format!(
                "rtmps: {} with certificate {} (key {})",
                self.listen,
                self.cert_file.display(),
                self.key_file.display()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn rtmp_config() -> Config {
        Config {
            listen: "127.0.0.1:1935".parse().unwrap(),
            app: "live".into(),
            chunk_size: 4096,
            max_message_size: 1 << 20,
            idle_timeout_s: 10.0,
            handshake_timeout_s: 10.0,
            max_connections: 10,
            max_connections_per_ip: 4,
            read_batch_ms: 20,
        }
    }

    #[test]
    fn limit_errors_name_the_key() {
        assert_eq!(rtmp_config().validate(), Ok(()));
        type Change = fn(&mut Config);
        let cases: [(Change, &str); 5] = [
            (|c| c.handshake_timeout_s = 0.0, "handshake_timeout_s"),
            (|c| c.handshake_timeout_s = f64::NAN, "handshake_timeout_s"),
            (|c| c.max_connections = 0, "max_connections"),
            (|c| c.max_connections_per_ip = 0, "max_connections_per_ip"),
            (|c| c.max_connections_per_ip = 11, "max_connections_per_ip"),
        ];
        for (change, key) in cases {
            let mut bad = rtmp_config();
            change(&mut bad);
            assert_eq!(bad.validate().unwrap_err().key, key);
        }
        let settings = rtmp_config().settings();
        assert_eq!(settings.handshake_timeout, Duration::from_secs(10));
        let ip = "10.0.0.1".parse().unwrap();
        let _slots: Vec<_> = (0..4)
            .map(|_| settings.limits.try_acquire(ip).expect("under the limit"))
            .collect();
        assert!(settings.limits.try_acquire(ip).is_err());
    }

    fn config() -> TlsConfig {
        TlsConfig {
            enabled: true,
            listen: "127.0.0.1:1936".parse().unwrap(),
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            dev_cert_names: vec!["localhost".into(), "127.0.0.1".into()],
            handshake_timeout_s: 10.0,
        }
    }

    #[test]
    fn tls_errors_name_the_key() {
        assert_eq!(config().validate(), Ok(()));
        type Change = fn(&mut TlsConfig);
        let cases: [(Change, &str); 4] = [
            (|c| c.handshake_timeout_s = 0.0, "handshake_timeout_s"),
            (|c| c.cert_file = "/etc/c.pem".into(), "key_file"),
            (|c| c.dev_cert_names.clear(), "dev_cert_names"),
            (
                |c| c.dev_cert_names.push("bad name\u{e9}".into()),
                "dev_cert_names[2]",
            ),
        ];
        for (change, key) in cases {
            let mut bad = config();
            change(&mut bad);
            assert_eq!(bad.validate().unwrap_err().key, key);
        }
    }

    #[test]
    fn dev_names_add_a_specific_listen_address() {
        let mut c = config();
        c.listen = "10.0.0.5:1936".parse().unwrap();
        assert_eq!(c.dev_names(), ["localhost", "127.0.0.1", "10.0.0.5"]);
        c.listen = "0.0.0.0:1936".parse().unwrap();
        assert_eq!(c.dev_names(), ["localhost", "127.0.0.1"]);
        c.listen = "127.0.0.1:0".parse().unwrap();
        assert_eq!(c.dev_names(), ["localhost", "127.0.0.1"]);
        assert!(
            c.describe()
                .contains("development certificate for localhost")
        );
        c.enabled = false;
        assert_eq!(c.describe(), "rtmps: off");
    }

    #[test]
    fn missing_files_fail_naming_the_file() {
        let mut c = config();
        c.cert_file = "/nonexistent/rtmps.crt".into();
        c.key_file = "/nonexistent/rtmps.key".into();
        let err = c.settings(0).expect_err("missing files");
        assert!(err.to_string().contains("/nonexistent/rtmps.crt"), "{err}");
    }
}
