//! Standard Webhooks signatures (pure): `webhook-signature: v1,<base64 HMAC-SHA256>` over
//! `"{webhook-id}.{webhook-timestamp}.{body}"`, keyed by the bytes of a `whsec_<base64>` secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;

/// A signing secret (the bytes after `whsec_`, base64-decoded). Its `Debug` hides the key.
#[derive(Clone)]
pub struct Secret(hmac::Key);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Parses `whsec_<base64>` (at least 16 key bytes, as Standard Webhooks recommends 24–64).
    pub fn parse(text: &str) -> Result<Secret, String> {
        let Some(encoded) = text.strip_prefix("whsec_") else {
            return Err("must start with `whsec_` followed by base64 (Standard Webhooks)".into());
        };
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|err| format!("is not valid base64 after `whsec_`: {err}"))?;
        if bytes.len() < 16 {
            return Err(format!(
                "is {} bytes after decoding; at least 16 are needed",
                bytes.len()
            ));
        }
        Ok(Secret(hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
    }

    /// The `webhook-signature` header value for message `id` sent at `timestamp` (Unix
    /// seconds) with `body`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(id.as_bytes());
        ctx.update(b".");
        ctx.update(timestamp.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(body);
        format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
    }

    /// Whether `header` (space-separated `v1,<base64>` entries) holds a valid signature of
    /// (`id`, `timestamp`, `body`); compared in constant time. For receivers and tests.
    pub fn verify(&self, header: &str, id: &str, timestamp: i64, body: &[u8]) -> bool {
        let mut message = Vec::with_capacity(id.len() + body.len() + 24);
        message.extend_from_slice(format!("{id}.{timestamp}.").as_bytes());
        message.extend_from_slice(body);
        header.split(' ').any(|entry| {
            entry
                .strip_prefix("v1,")
                .and_then(|sig| STANDARD.decode(sig).ok())
                .is_some_and(|sig| hmac::verify(&self.0, &message, &sig).is_ok())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks reference libraries.
    #[test]
    fn signs_the_reference_vector() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let signature = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(secret.verify(&signature, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body));
        assert!(!secret.verify(&signature, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body));
        assert!(!secret.verify(&signature, "msg_other", 1614265330, body));
        let other = Secret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        assert!(!other.verify(&signature, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body));
        let both = format!("v1,AAAA {signature}");
        assert!(secret.verify(&both, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body));
    }

    #[test]
    fn refuses_bad_secrets() {
        assert!(
            Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                .unwrap_err()
                .contains("whsec_")
        );
        assert!(Secret::parse("whsec_!!!").unwrap_err().contains("base64"));
        assert!(Secret::parse("whsec_AAAA").unwrap_err().contains("16"));
    }
}
