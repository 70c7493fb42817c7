//! TLS certificates of the chat endpoint.
//!
//! Operators configure a certificate chain and key (PEM). Without them the server makes its own
//! development certificate as browsers accept for WebTransport `serverCertificateHashes`:
//! ECDSA P-256, X.509v3, valid at most 14 days. It always holds the current certificate and the
//! next one; both SHA-256 hashes are published (`GET /api/chat/cert`) so a page that fetched them
//! keeps working across a rotation. New connections get the new certificate through a rustls
//! certificate resolver; open connections are unaffected.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::tls::{self, hex};
pub use crate::tls::{CertError, Issued};

/// Longest validity Chromium accepts for `serverCertificateHashes`.
pub const MAX_DEV_VALIDITY: Duration = Duration::from_secs(14 * 24 * 3600);
/// Rotation happens this long before the half-life of the next certificate.
const ROTATE_MARGIN: Duration = Duration::from_secs(3600);

/// Makes a chat development certificate valid from `now_s - 1 h` for `validity` (capped at 14
/// days, the longest browsers accept for `serverCertificateHashes`).
pub fn generate(names: &[String], now_s: i64, validity: Duration) -> Result<Issued, CertError> {
    // The whole span from not_before to not_after must stay within the 14 days.
    let validity = validity.min(MAX_DEV_VALIDITY);
    tls::generate(names, "cuecast chat (development)", now_s, validity)
}

/// Rotation state of the development certificate (pure: time is passed in).
#[derive(Debug, Clone)]
pub struct DevCerts {
    names: Vec<String>,
    validity: Duration,
    /// Served now.
    pub current: Issued,
    /// Served after the next rotation; already published.
    pub next: Issued,
}

impl DevCerts {
    /// Current and next certificates made at `now_s`.
    pub fn new(names: Vec<String>, validity: Duration, now_s: i64) -> Result<DevCerts, CertError> {
        let current = generate(&names, now_s, validity)?;
        let next = generate(&names, now_s, validity)?;
        Ok(DevCerts {
            names,
            validity,
            current,
            next,
        })
    }

    /// When to rotate: once the next certificate has been published for half the validity
    /// (less a margin), so the certificate it replaces is never served past its end and a page
    /// that fetched the hashes before a rotation still holds the served one.
    pub fn rotate_at(&self) -> i64 {
        let start = self.next.not_before.unwrap_or(0);
        let end = self.next.not_after.unwrap_or(start);
        start + (end - start) / 2 - ROTATE_MARGIN.as_secs() as i64
    }

    /// Rotates if due at `now_s`: next becomes current, a new next is made. True if rotated.
    pub fn maybe_rotate(&mut self, now_s: i64) -> Result<bool, CertError> {
        if now_s < self.rotate_at() {
            return Ok(false);
        }
        let fresh = generate(&self.names, now_s, self.validity)?;
        self.current = std::mem::replace(&mut self.next, fresh);
        // After a long suspension the promoted one may be (nearly) expired: replace it too.
        let margin = ROTATE_MARGIN.as_secs() as i64;
        if self
            .current
            .not_after
            .is_none_or(|end| now_s >= end - margin)
        {
            self.current = generate(&self.names, now_s, self.validity)?;
        }
        Ok(true)
    }
}

/// What the endpoint serves and publishes.
#[derive(Debug)]
pub enum CertSource {
    /// Operator files.
    Static(Issued),
    /// Self-made, rotating.
    Dev(RwLock<DevCerts>),
}

impl CertSource {
    /// The certificate new connections get.
    pub fn current(&self) -> Issued {
        match self {
            CertSource::Static(issued) => issued.clone(),
            CertSource::Dev(dev) => dev
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .current
                .clone(),
        }
    }

    /// The published certificates: current first, then the next (dev only).
    pub fn published(&self) -> Vec<Issued> {
        match self {
            CertSource::Static(issued) => vec![issued.clone()],
            CertSource::Dev(dev) => {
                let dev = dev.read().unwrap_or_else(|e| e.into_inner());
                vec![dev.current.clone(), dev.next.clone()]
            }
        }
    }

    /// Rotates the development certificate when due.
    pub fn tick(&self, now_s: i64) -> Result<bool, CertError> {
        match self {
            CertSource::Static(_) => Ok(false),
            CertSource::Dev(dev) => dev
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .maybe_rotate(now_s),
        }
    }

    /// JSON for `GET /api/chat/cert`.
    pub fn describe(&self) -> serde_json::Value {
        let certs: Vec<serde_json::Value> = self
            .published()
            .iter()
            .map(|c| {
                serde_json::json!({
                    "sha256_hex": hex(&c.sha256),
                    "sha256_base64": STANDARD.encode(c.sha256),
                    "not_before": c.not_before,
                    "not_after": c.not_after,
                })
            })
            .collect();
        serde_json::json!({
            "development": matches!(self, CertSource::Dev(_)),
            "algorithm": "sha-256",
            "sha256": certs.iter().map(|c| c["sha256_hex"].clone()).collect::<Vec<_>>(),
            "certificates": certs,
        })
    }
}

/// rustls resolver serving [`CertSource::current`].
#[derive(Debug)]
pub struct Resolver(pub Arc<CertSource>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current().key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 3600;

    #[test]
    fn dev_cert_fits_browser_rules() {
        let names = vec!["localhost".to_string()];
        let issued = generate(&names, 1_700_000_000, Duration::from_secs(30 * 86400)).unwrap();
        let span = issued.not_after.unwrap() - issued.not_before.unwrap();
        assert!(span <= 14 * DAY, "{span}");
        assert!(issued.pem.starts_with("-----BEGIN CERTIFICATE-----"));
        // The leaf must be ECDSA P-256: its SubjectPublicKeyInfo carries the prime256v1 OID.
        let der = &issued.key.cert[0];
        let p256_oid = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        assert!(der.windows(p256_oid.len()).any(|w| w == p256_oid));
        assert_eq!(issued.sha256, tls::sha256(der));
    }

    #[test]
    fn rotation_promotes_next_and_publishes_both() {
        let names = vec!["localhost".to_string()];
        let t0 = 1_700_000_000;
        let mut dev = DevCerts::new(names, Duration::from_secs(13 * 86400), t0).unwrap();
        let first_next = dev.next.sha256;
        assert!(!dev.maybe_rotate(t0 + DAY).unwrap());
        let at = dev.rotate_at();
        assert!(at > t0 + 5 * DAY && at < t0 + 7 * DAY, "{at}");
        assert!(dev.maybe_rotate(at).unwrap());
        assert_eq!(dev.current.sha256, first_next);
        assert_ne!(dev.next.sha256, first_next);
        // The second rotation happens before the promoted certificate expires.
        let second = dev.rotate_at();
        assert!(second > at + 5 * DAY, "{second}");
        assert!(second < dev.current.not_after.unwrap(), "{second}");
        assert!(dev.maybe_rotate(second).unwrap());
        // After a long suspension both are replaced by fresh ones.
        assert!(dev.maybe_rotate(t0 + 100 * DAY).unwrap());
        assert!(dev.current.not_after.unwrap() > t0 + 100 * DAY);
    }

    #[test]
    fn source_serves_current_and_publishes_both() {
        let t0 = chrono::Utc::now().timestamp();
        let dev = DevCerts::new(vec!["localhost".into()], MAX_DEV_VALIDITY, t0).unwrap();
        let next = dev.next.sha256;
        let source = CertSource::Dev(RwLock::new(dev));
        let published: Vec<_> = source.published().iter().map(|c| c.sha256).collect();
        assert_eq!(published, [source.current().sha256, next]);
        let json = source.describe();
        assert_eq!(json["sha256"][1], hex(&next));
        assert!(!source.tick(t0 + 60).unwrap());
        assert!(source.tick(t0 + 8 * DAY).unwrap());
        assert_eq!(
            source.current().sha256,
            next,
            "new connections get the next certificate"
        );
    }
}
