//! Accounts for chat: sign-up and login against the embedded store (argon2id password hashes),
//! signed expiring tokens with capabilities, and capability grants by the admin.
//!
//! The token signing secret is generated on first start and kept in the store's `kv` table, so
//! tokens survive restarts.

mod capability;
mod config;
pub mod token;

use std::collections::BTreeSet;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::store::Store;
use token::{Claims, TokenError, TokenKey};

pub use capability::Capability;
pub use config::Config;

/// `kv` key of the token signing secret.
const SECRET_KEY: &str = "users.token_secret";
/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 8;
/// Longest password accepted (argon2 input bound).
pub const MAX_PASSWORD: usize = 256;
/// Username length bounds.
pub const USERNAME_LEN: std::ops::RangeInclusive<usize> = 3..=32;
/// Failed logins allowed per username within [`FAILURE_WINDOW`] before logins are refused.
pub const MAX_FAILURES: u32 = 5;
/// Window of the failed-login limit.
pub const FAILURE_WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Failed-login counts per username (against password guessing), time passed in.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: std::collections::HashMap<String, (u32, std::time::Instant)>,
}

impl LoginThrottle {
    /// How long `user` must wait before trying again, if throttled at `now`.
    pub fn wait(&mut self, user: &str, now: std::time::Instant) -> Option<std::time::Duration> {
        let (count, since) = *self.failures.get(user)?;
        let elapsed = now.saturating_duration_since(since);
        if elapsed >= FAILURE_WINDOW {
            self.failures.remove(user);
            return None;
        }
        (count >= MAX_FAILURES).then(|| FAILURE_WINDOW - elapsed)
    }

    /// Records a failure.
    pub fn failed(&mut self, user: &str, now: std::time::Instant) {
        // Bound the memory an attacker can make us use with made-up names.
        if self.failures.len() >= 100_000 {
            self.failures
                .retain(|_, (_, since)| now.saturating_duration_since(*since) < FAILURE_WINDOW);
        }
        let entry = self.failures.entry(user.to_string()).or_insert((0, now));
        entry.0 += 1;
    }

    /// Forgets failures after a success.
    pub fn succeeded(&mut self, user: &str) {
        self.failures.remove(user);
    }
}

/// `[users]` settings.
#[derive(Debug, Clone)]
pub struct UsersSettings {
    /// Token lifetime.
    pub token_ttl: Duration,
    /// Whether `POST /api/signup` is open.
    pub signup_enabled: bool,
}

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// Bad username.
    #[error(
        "username must be 3-32 characters of letters, digits, '_', '-' or '.', starting with a letter or digit"
    )]
    BadUsername,
    /// Bad password.
    #[error("password must be 8-256 characters")]
    BadPassword,
    /// Username taken.
    #[error("username is taken")]
    Taken,
    /// Wrong username or password.
    #[error("wrong username or password")]
    WrongCredentials,
    /// No such user.
    #[error("no such user")]
    NotFound,
    /// Sign-up is closed.
    #[error("sign-up is disabled on this server")]
    SignupDisabled,
    /// Too many failed logins for this username.
    #[error("too many failed logins; try again in {0} s")]
    Throttled(u64),
    /// Database trouble.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Hashing trouble.
    #[error("password hashing: {0}")]
    Hash(String),
}

/// The account service.
pub struct Users {
    store: Store,
    key: TokenKey,
    settings: UsersSettings,
    throttle: std::sync::Mutex<LoginThrottle>,
}

/// Canonical (lower-case) username, if valid.
pub fn canonical_username(name: &str) -> Option<String> {
    let lower = name.trim().to_ascii_lowercase();
    let ok = USERNAME_LEN.contains(&lower.len())
        && lower
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && lower.as_bytes()[0].is_ascii_alphanumeric();
    ok.then_some(lower)
}

fn caps_to_text(caps: &BTreeSet<Capability>) -> String {
    caps.iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn caps_from_text(text: &str) -> BTreeSet<Capability> {
    text.split(',').filter_map(Capability::parse).collect()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Users {
    /// Opens the service, creating the signing secret on first use.
    pub async fn open(store: Store, settings: UsersSettings) -> Result<Users, UserError> {
        let existing: Option<String> = sqlx::query_scalar("SELECT value FROM kv WHERE key = $1")
            .bind(SECRET_KEY)
            .fetch_optional(store.pool())
            .await?;
        let stored = existing.is_some();
        let secret = match existing.and_then(|s| STANDARD.decode(s).ok()) {
            Some(secret) if secret.len() >= 32 => secret,
            _ => {
                // Nodes sharing a database that start together race here: the first secret
                // inserted wins and every node reads that one back, so tokens work on all.
                let secret: [u8; 32] = rand::random();
                sqlx::query(if stored {
                    "UPDATE kv SET value = $2 WHERE key = $1"
                } else {
                    "INSERT INTO kv (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING"
                })
                .bind(SECRET_KEY)
                .bind(STANDARD.encode(secret))
                .execute(store.pool())
                .await?;
                let stored: String = sqlx::query_scalar("SELECT value FROM kv WHERE key = $1")
                    .bind(SECRET_KEY)
                    .fetch_one(store.pool())
                    .await?;
                STANDARD
                    .decode(stored)
                    .ok()
                    .filter(|stored| stored.len() >= 32)
                    .unwrap_or_else(|| secret.to_vec())
            }
        };
        Ok(Users {
            store,
            key: TokenKey::new(&secret),
            settings,
            throttle: Default::default(),
        })
    }

    /// Creates an account with the `send` capability; returns a token.
    pub async fn signup(&self, username: &str, password: &str) -> Result<String, UserError> {
        if !self.settings.signup_enabled {
            return Err(UserError::SignupDisabled);
        }
        let username = canonical_username(username).ok_or(UserError::BadUsername)?;
        check_password(password)?;
        let hash = hash_password(password.to_string()).await?;
        let caps: BTreeSet<Capability> = [Capability::Send].into();
        let result = sqlx::query(
            "INSERT INTO users (username, password_hash, capabilities, created_at_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(&username)
        .bind(hash)
        .bind(caps_to_text(&caps))
        .bind(now_ms())
        .execute(self.store.pool())
        .await;
        match result {
            Ok(_) => Ok(self.issue(&username, &caps)),
            Err(sqlx::Error::Database(err)) if err.is_unique_violation() => Err(UserError::Taken),
            Err(err) => Err(err.into()),
        }
    }

    /// Checks the password; returns a token with the account's current capabilities.
    pub async fn login(&self, username: &str, password: &str) -> Result<String, UserError> {
        let username = canonical_username(username).ok_or(UserError::WrongCredentials)?;
        if password.len() > MAX_PASSWORD {
            return Err(UserError::WrongCredentials);
        }
        let now = std::time::Instant::now();
        if let Some(wait) = self.throttle().wait(&username, now) {
            return Err(UserError::Throttled(wait.as_secs().max(1)));
        }
        let result = self.check_login(&username, password).await;
        match &result {
            Ok(_) => self.throttle().succeeded(&username),
            Err(UserError::WrongCredentials) => self.throttle().failed(&username, now),
            Err(_) => {}
        }
        result
    }

    fn throttle(&self) -> std::sync::MutexGuard<'_, LoginThrottle> {
        self.throttle.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn check_login(&self, username: &str, password: &str) -> Result<String, UserError> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT password_hash, capabilities FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(self.store.pool())
                .await?;
        let Some((hash, caps)) = row else {
            // Spend the same time as a real check so timing does not reveal accounts.
            let _ = hash_password(password.to_string()).await;
            return Err(UserError::WrongCredentials);
        };
        if verify_password(password.to_string(), hash).await? {
            Ok(self.issue(username, &caps_from_text(&caps)))
        } else {
            Err(UserError::WrongCredentials)
        }
    }

    /// Sets a user's capabilities (admin); returns the new set.
    pub async fn set_capabilities(
        &self,
        username: &str,
        caps: &BTreeSet<Capability>,
    ) -> Result<BTreeSet<Capability>, UserError> {
        let username = canonical_username(username).ok_or(UserError::NotFound)?;
        let done = sqlx::query("UPDATE users SET capabilities = $1 WHERE username = $2")
            .bind(caps_to_text(caps))
            .bind(&username)
            .execute(self.store.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(UserError::NotFound);
        }
        Ok(caps.clone())
    }

    /// A user's capabilities.
    pub async fn capabilities(&self, username: &str) -> Result<BTreeSet<Capability>, UserError> {
        let username = canonical_username(username).ok_or(UserError::NotFound)?;
        let caps: Option<String> =
            sqlx::query_scalar("SELECT capabilities FROM users WHERE username = $1")
                .bind(&username)
                .fetch_optional(self.store.pool())
                .await?;
        caps.map(|c| caps_from_text(&c)).ok_or(UserError::NotFound)
    }

    /// Verifies a token now.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.key.verify(token, chrono::Utc::now().timestamp())
    }

    fn issue(&self, username: &str, caps: &BTreeSet<Capability>) -> String {
        let iat = chrono::Utc::now().timestamp();
        self.key.sign(&Claims {
            sub: username.to_string(),
            caps: caps.iter().copied().collect(),
            iat,
            exp: iat + self.settings.token_ttl.as_secs().max(1) as i64,
        })
    }
}

fn check_password(password: &str) -> Result<(), UserError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD || password.len() > MAX_PASSWORD {
        return Err(UserError::BadPassword);
    }
    Ok(())
}

/// argon2id with the crate's default (OWASP) parameters, off the async workers.
async fn hash_password(password: String) -> Result<String, UserError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
            .map_err(|e| UserError::Hash(e.to_string()))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| UserError::Hash(e.to_string()))
    })
    .await
    .map_err(|e| UserError::Hash(e.to_string()))?
}

async fn verify_password(password: String, hash: String) -> Result<bool, UserError> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash).map_err(|e| UserError::Hash(e.to_string()))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|e| UserError::Hash(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn users() -> Users {
        let store = Store::in_memory().await.unwrap();
        Users::open(
            store,
            UsersSettings {
                token_ttl: Duration::from_secs(60),
                signup_enabled: true,
            },
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn signup_login_grant() {
        let users = users().await;
        let token = users.signup("Alice", "correct horse").await.unwrap();
        let claims = users.verify(&token).unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.caps, [Capability::Send]);
        assert!(matches!(
            users.signup("alice", "another pass").await,
            Err(UserError::Taken)
        ));
        assert!(matches!(
            users.signup("a", "long enough").await,
            Err(UserError::BadUsername)
        ));
        assert!(matches!(
            users.signup("bob", "short").await,
            Err(UserError::BadPassword)
        ));
        assert!(matches!(
            users.login("alice", "wrong horse").await,
            Err(UserError::WrongCredentials)
        ));
        assert!(matches!(
            users.login("nobody", "wrong horse").await,
            Err(UserError::WrongCredentials)
        ));
        let caps: BTreeSet<_> = [Capability::Send, Capability::Host].into();
        users.set_capabilities("ALICE", &caps).await.unwrap();
        let token = users.login("alice", "correct horse").await.unwrap();
        assert_eq!(
            users.verify(&token).unwrap().caps,
            [Capability::Send, Capability::Host]
        );
        assert!(matches!(
            users.set_capabilities("nobody", &caps).await,
            Err(UserError::NotFound)
        ));
    }

    #[test]
    fn throttle_limits_failures_per_window() {
        let mut throttle = LoginThrottle::default();
        let t0 = std::time::Instant::now();
        for _ in 0..MAX_FAILURES {
            assert_eq!(throttle.wait("bob", t0), None);
            throttle.failed("bob", t0);
        }
        assert_eq!(throttle.wait("bob", t0), Some(FAILURE_WINDOW));
        assert_eq!(throttle.wait("alice", t0), None, "per username");
        let later = t0 + FAILURE_WINDOW;
        assert_eq!(throttle.wait("bob", later), None, "window over");
        throttle.failed("carol", t0);
        throttle.succeeded("carol");
        assert_eq!(throttle.wait("carol", t0), None);
    }

    #[tokio::test]
    async fn repeated_wrong_passwords_are_throttled() {
        let users = users().await;
        users.signup("target", "right password").await.unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(matches!(
                users.login("target", "wrong password").await,
                Err(UserError::WrongCredentials)
            ));
        }
        // Even the right password waits now.
        assert!(matches!(
            users.login("target", "right password").await,
            Err(UserError::Throttled(_))
        ));
    }

    #[test]
    fn usernames() {
        assert_eq!(canonical_username(" Bob_1 "), Some("bob_1".into()));
        assert_eq!(canonical_username("_bob"), None);
        assert_eq!(canonical_username("bo b"), None);
        assert_eq!(canonical_username("bö"), None);
    }
}
