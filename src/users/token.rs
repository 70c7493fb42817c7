//! Login tokens: `v1.<payload>.<signature>`, where payload is base64url (no padding) of a JSON
//! object `{"sub": username, "caps": [...], "iat": unix_s, "exp": unix_s}` and signature is
//! base64url of HMAC-SHA256(secret, "v1." + payload). Pure functions; the caller passes the time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::{Deserialize, Serialize};

use super::Capability;

/// Token format prefix.
const PREFIX: &str = "v1.";
/// Longest token accepted (bytes).
pub const MAX_TOKEN_LEN: usize = 2048;

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Username.
    pub sub: String,
    /// Capabilities.
    pub caps: Vec<Capability>,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not in the token format.
    #[error("malformed token")]
    Malformed,
    /// Signature does not match.
    #[error("bad token signature")]
    BadSignature,
    /// Past its expiry.
    #[error("token expired")]
    Expired,
}

/// Signs and verifies tokens with one secret.
pub struct TokenKey {
    key: hmac::Key,
}

impl TokenKey {
    /// A key from secret bytes (at least 32 recommended).
    pub fn new(secret: &[u8]) -> TokenKey {
        TokenKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// Signs `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        let json = serde_json::to_vec(claims).unwrap_or_default();
        let mut token = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(json));
        let tag = hmac::sign(&self.key, token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(tag.as_ref()));
        token
    }

    /// Checks signature and expiry at `now_s`.
    pub fn verify(&self, token: &str, now_s: i64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN || !token.starts_with(PREFIX) {
            return Err(TokenError::Malformed);
        }
        let (signed, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        hmac::verify(&self.key, signed.as_bytes(), &signature)
            .map_err(|_| TokenError::BadSignature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(&signed[PREFIX.len()..])
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if claims.exp <= now_s {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            sub: "alice".into(),
            caps: vec![Capability::Send, Capability::Host],
            iat: 100,
            exp: 200,
        }
    }

    #[test]
    fn sign_verify_expire_tamper() {
        let key = TokenKey::new(b"0123456789abcdef0123456789abcdef");
        let token = key.sign(&claims());
        assert_eq!(key.verify(&token, 150), Ok(claims()));
        assert_eq!(key.verify(&token, 200), Err(TokenError::Expired));
        let other = TokenKey::new(b"another secret of thirty-two b..");
        assert_eq!(other.verify(&token, 150), Err(TokenError::BadSignature));
        // Swap in a payload granting more.
        let forged_payload = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Claims {
                caps: vec![Capability::Moderate],
                ..claims()
            })
            .unwrap(),
        );
        let signature = token.rsplit_once('.').unwrap().1;
        let forged = format!("v1.{forged_payload}.{signature}");
        assert_eq!(key.verify(&forged, 150), Err(TokenError::BadSignature));
        assert_eq!(key.verify("garbage", 150), Err(TokenError::Malformed));
        assert_eq!(key.verify("v1.x.y", 150), Err(TokenError::Malformed));
        assert_eq!(key.verify("v1.eA.eA", 150), Err(TokenError::BadSignature));
    }
}
