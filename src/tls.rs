//! TLS certificates every TLS listener shares (the chat's QUIC endpoint, RTMPS): an operator's
//! PEM chain and key loaded from files, or a self-signed development certificate made at
//! startup (ECDSA P-256, X.509v3, rcgen). What each listener does with them — chat rotates its
//! development certificates and publishes their hashes (`chat::cert`), RTMPS serves one for
//! its lifetime (`ingest::rtmp::tls`) — stays with the listener.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// Validity backdating, for clients with slightly slow clocks.
const BACKDATE: Duration = Duration::from_secs(3600);

/// Why certificates could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// Reading a file.
    #[error("{path}: {source}")]
    Read {
        /// File.
        path: String,
        /// Error.
        source: std::io::Error,
    },
    /// PEM content.
    #[error("{path}: {reason}")]
    Pem {
        /// File.
        path: String,
        /// Reason.
        reason: String,
    },
    /// Generating.
    #[error("generating the development certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the key.
    #[error("unusable key: {0}")]
    Key(#[from] rustls::Error),
}

/// One certificate with its key.
#[derive(Debug, Clone)]
pub struct Issued {
    /// rustls form.
    pub key: Arc<CertifiedKey>,
    /// SHA-256 of the leaf DER.
    pub sha256: [u8; 32],
    /// Validity start, Unix seconds (None for operator certificates).
    pub not_before: Option<i64>,
    /// Validity end, Unix seconds (None for operator certificates).
    pub not_after: Option<i64>,
    /// The leaf in PEM (for clients that pin by CA file).
    pub pem: String,
}

/// SHA-256 of a DER certificate.
pub fn sha256(der: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes a self-signed development certificate for `names` (DNS names or IP addresses, as
/// subject alternative names) with common name `common_name`, valid from `now_s - 1 h` for
/// `validity` (callers cap it to what their clients accept).
pub fn generate(
    names: &[String],
    common_name: &str,
    now_s: i64,
    validity: Duration,
) -> Result<Issued, CertError> {
    let mut params = rcgen::CertificateParams::new(names.to_vec())?;
    let start = now_s - BACKDATE.as_secs() as i64;
    let end = start + validity.as_secs() as i64;
    params.not_before =
        time::OffsetDateTime::from_unix_timestamp(start).map_err(|_| rcgen::Error::Time)?;
    params.not_after =
        time::OffsetDateTime::from_unix_timestamp(end).map_err(|_| rcgen::Error::Time)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key_pair)?;
    let der = cert.der().clone();
    let key_der = PrivateKeyDer::try_from(key_pair.serialize_der())
        .map_err(|reason| rustls::Error::General(reason.to_string()))?;
    let signing = any_supported_type(&key_der)?;
    Ok(Issued {
        sha256: sha256(&der),
        pem: cert.pem(),
        key: Arc::new(CertifiedKey::new(vec![der], signing)),
        not_before: Some(start),
        not_after: Some(end),
    })
}

/// Loads an operator's PEM chain (leaf first) and private key.
pub fn load(cert_path: &Path, key_path: &Path) -> Result<Issued, CertError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| CertError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    let cert_pem = read(cert_path)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| CertError::Pem {
            path: cert_path.display().to_string(),
            reason: e.to_string(),
        })?;
    let Some(leaf) = chain.first() else {
        return Err(CertError::Pem {
            path: cert_path.display().to_string(),
            reason: "no CERTIFICATE in the file".into(),
        });
    };
    let key = PrivateKeyDer::from_pem_slice(&read(key_path)?).map_err(|e| CertError::Pem {
        path: key_path.display().to_string(),
        reason: e.to_string(),
    })?;
    let signing = any_supported_type(&key)?;
    let certified = CertifiedKey::new(chain.clone(), signing);
    // A key from another certificate would fail every handshake; say so at startup instead.
    certified.keys_match().map_err(|e| CertError::Pem {
        path: key_path.display().to_string(),
        reason: format!("the key does not belong to {}: {e}", cert_path.display()),
    })?;
    Ok(Issued {
        sha256: sha256(leaf),
        pem: String::from_utf8_lossy(&cert_pem).into_owned(),
        key: Arc::new(certified),
        not_before: None,
        not_after: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
        let params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
        (cert, key)
    }

    #[test]
    fn operator_files_load() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = write_pair(dir.path(), "a.example");
        let (crt, key) = (
            dir.path().join("a.example.crt"),
            dir.path().join("a.example.key"),
        );
        let issued = load(&crt, &key).unwrap();
        assert_eq!(issued.sha256, sha256(cert.der()));
        let err = load(&key, &key).unwrap_err();
        assert!(err.to_string().contains("no CERTIFICATE"), "{err}");
        let err = load(&dir.path().join("missing.crt"), &key).unwrap_err();
        assert!(err.to_string().contains("missing.crt"), "{err}");
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path(), "a.example");
        write_pair(dir.path(), "b.example");
        let err = load(
            &dir.path().join("a.example.crt"),
            &dir.path().join("b.example.key"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("does not belong"), "{err}");
    }

    #[test]
    fn dev_cert_names_and_validity() {
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let week = Duration::from_secs(7 * 86400);
        let issued = generate(&names, "test (development)", 1_700_000_000, week).unwrap();
        assert_eq!(issued.not_before, Some(1_700_000_000 - 3600));
        assert_eq!(issued.not_after, Some(1_700_000_000 - 3600 + 7 * 86400));
        let der = &issued.key.cert[0];
        // SAN entries: dNSName "localhost" and iPAddress 127.0.0.1 (tags [2] and [7]).
        assert!(der.windows(11).any(|w| w == b"\x82\x09localhost"));
        assert!(der.windows(6).any(|w| w == [0x87, 4, 127, 0, 0, 1]));
        assert!(issued.key.keys_match().is_ok());
    }
}
