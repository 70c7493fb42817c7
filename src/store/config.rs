//! `[store]`: where persistent state lives.

use serde::Deserialize;

use crate::setting::Invalid;

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Empty = the embedded SQLite database in `server.data_dir`; `postgres://…` = PostgreSQL.
    pub url: String,
}

/// Which database backs the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// `<data_dir>/cuecast.db`.
    Embedded,
    /// A PostgreSQL server (the URL as configured).
    Postgres(String),
}

impl Config {
    /// Checks what serde cannot; keys are relative to `[store]`.
    pub fn validate(&self) -> Result<(), Invalid> {
        self.backend().map(|_| ())
    }

    /// The backend the URL names.
    pub fn backend(&self) -> Result<Backend, Invalid> {
        let url = self.url.trim();
        if url.is_empty() {
            return Ok(Backend::Embedded);
        }
        let parsed = reqwest::Url::parse(url)
            .map_err(|err| Invalid::new("url", format!("not a URL: {err}")))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(Invalid::new(
                "url",
                format!(
                    "must be empty (embedded SQLite) or start with postgres://, got {}://",
                    parsed.scheme()
                ),
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(Invalid::new("url", "has no host"));
        }
        Ok(Backend::Postgres(url.to_string()))
    }

    /// The URL with any password replaced by `***` (for logs and errors).
    pub fn display(&self) -> String {
        match reqwest::Url::parse(self.url.trim()) {
            Ok(mut parsed) if parsed.password().is_some() => {
                let _ = parsed.set_password(Some("***"));
                parsed.to_string()
            }
            Ok(parsed) => parsed.to_string(),
            Err(_) => self.url.clone(),
        }
    }

    /// One line for `cuecast check-config`.
    pub fn describe(&self) -> String {
        match self.backend() {
            Ok(Backend::Embedded) => "store: embedded SQLite in server.data_dir".to_string(),
            Ok(Backend::Postgres(_)) => format!("store: PostgreSQL {}", self.display()),
            Err(err) => format!("store: invalid ({err})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> Config {
        Config { url: url.into() }
    }

    #[test]
    fn backends() {
        assert_eq!(config("").backend(), Ok(Backend::Embedded));
        assert_eq!(
            config("postgres://cuecast@127.0.0.1:5432/cuecast").backend(),
            Ok(Backend::Postgres(
                "postgres://cuecast@127.0.0.1:5432/cuecast".into()
            ))
        );
        assert_eq!(
            config("mysql://x@h/db").validate().expect_err("scheme").key,
            "url"
        );
        assert_eq!(
            config("postgres").validate().expect_err("syntax").key,
            "url"
        );
    }

    #[test]
    fn password_is_hidden() {
        let shown = config("postgres://u:hunter2@db:5432/c").display();
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
